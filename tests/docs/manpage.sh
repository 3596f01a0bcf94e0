#!/usr/bin/env bash
# tests/docs/manpage.sh - docs/kbpipe.1 is complete and renders cleanly:
#   * every command `kbpipe --help` lists has a COMMANDS entry and a SYNOPSIS
#     line, and every option that `kbpipe --help` or `kbpipe CMD --help`
#     prints (--long and -x) appears in the page, so a new option without a
#     man page entry fails here;
#   * the page renders without a warning: groff -man -ww -z when groff is
#     installed, else mandoc -Tlint, else man -l; with none of them, a
#     syntax check (every request is a man(7) macro we use, fonts balanced);
#   * the examples in EXAMPLES name commands and options that exist.
. "$(dirname "$0")/../integration/lib.sh"
page=docs/kbpipe.1
check "the man page exists" test -f "$page"

# the page as text: escapes undone, so options read as on a terminal
text=$(sed -e 's/\\-/-/g' -e 's/\\(en/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$page")

cmds=$("$bin" --help | awk '/^Commands:/{s=1; next} s && /^  [a-z]/{print $1} s && /^$/{exit}')
check "kbpipe --help lists commands" test -n "$cmds"
for c in $cmds; do
  check "COMMANDS has an entry for $c" grep -qxF ".B $c" "$page"
  check "SYNOPSIS has a line for $c" grep -q "^\.B kbpipe $c\b" "$page"
  "$bin" "$c" --help >"$tmp/help.$c" 2>&1
  check "kbpipe $c --help exits 0" test $? = 0
  for o in $(grep -oE '(^|[][ ,(|])--?[a-zA-Z][a-zA-Z-]*' "$tmp/help.$c" | sed 's/^[][ ,(|]//' | sort -u); do
    case "$o" in --help|-h) continue ;; esac     # every command has them: OPTIONS says so once
    grep -qE -- "(^|[^a-zA-Z-])$o([^a-zA-Z-]|$)" <<<"$text" && ok "kbpipe $c: $o is in the man page" ||
      fail "kbpipe $c --help has $o, the man page does not"
  done
done
for o in $("$bin" --help | grep -oE '(^| |,)--?[a-zA-Z][a-zA-Z-]*' | sed 's/^[ ,]//' | sort -u); do
  grep -qE -- "(^|[^a-zA-Z-])$o([^a-zA-Z-]|$)" <<<"$text" && ok "global option $o is in the man page" ||
    fail "kbpipe --help has $o, the man page does not"
done

# EXAMPLES: each line runs a command that exists, with options its --help knows
sed -n '/^\.SH EXAMPLES/,/^\.SH/p' "$page" | sed -e 's/\\-/-/g' | grep '^kbpipe ' >"$tmp/examples"
check "EXAMPLES has examples" test -s "$tmp/examples"
while read -r _ c rest; do
  [ -f "$tmp/help.$c" ] || { fail "EXAMPLES: kbpipe $c is not a command"; continue; }
  for o in $(grep -oE '(^| )--?[a-zA-Z][a-zA-Z-]*' <<<" $rest"); do
    case "$o" in -q|-v|--db) continue ;; esac
    grep -qE -- "(^|[^a-zA-Z-])$o([^a-zA-Z-]|$)" "$tmp/help.$c" && ok "EXAMPLES: kbpipe $c $o exists" ||
      fail "EXAMPLES: kbpipe $c has no option $o"
  done
done <"$tmp/examples"

# rendering ------------------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
  LC_ALL=C groff -man -Tutf8 -ww -z "$page" >"$tmp/render.err" 2>&1
  check "groff -man -ww renders the page without a warning" test ! -s "$tmp/render.err" ||
    sed 's/^/#   /' "$tmp/render.err"
elif command -v mandoc >/dev/null 2>&1; then
  mandoc -Tlint -Wwarning "$page" >"$tmp/render.err" 2>&1
  check "mandoc -Tlint finds nothing" test ! -s "$tmp/render.err" || sed 's/^/#   /' "$tmp/render.err"
else
  note "neither groff nor mandoc: a syntax check only"
fi
if command -v man >/dev/null 2>&1; then
  MANWIDTH=80 MANPAGER=cat man -l "$page" >"$tmp/man.out" 2>"$tmp/man.err"
  check "man -l renders the page" test $? = 0 -a -s "$tmp/man.out"
  check "  ... with nothing on stderr" test ! -s "$tmp/man.err" || sed 's/^/#   /' "$tmp/man.err"
fi
# the syntax check every machine runs: requests are the man(7) macros this page uses
bad=$(grep -nE '^\.' "$page" | grep -vE '^[0-9]+:\.(TH|SH|SS|TP|PP|LP|P|RS|RE|IP|B|I|BR|BI|IR|RB|RI|IB|br|nf|fi|sp|\\")( |$)')
check_eq "every request is a known man(7) macro" "" "$bad"
check "the page starts with .TH KBPIPE 1" grep -q '^\.TH KBPIPE 1 ' <(head -1 "$page")
check_eq ".nf and .fi balance" "$(grep -c '^\.nf' "$page")" "$(grep -c '^\.fi' "$page")"
check_eq ".RS and .RE balance" "$(grep -c '^\.RS' "$page")" "$(grep -c '^\.RE' "$page")"
version=$(sed -n "s/.*-DKB_VERSION='\"\\([^\"]*\\)\"'.*/\\1/p" Makefile)
check "the page's version is the Makefile's ($version)" grep -q "^\.TH KBPIPE 1 \"[^\"]*\" \"kbpipe $version\"" "$page"
finish
