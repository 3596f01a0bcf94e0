#!/usr/bin/env bash
# tests/docs/examples.sh - run every example in README.md and docs/*.md, so
# the documentation cannot rot.  Fenced blocks by info string:
#
#   sh      every line is run with bash -e from the repository root, against a
#           scratch database (kbpipe_docs, recreated here) with bin/ on PATH;
#           lines that start with `make ` are checked with `make -n` (they
#           would start the set-up this test runs inside); lines that start
#           with `gh ` (GitHub's CLI: network, an account) are checked for
#           shell syntax with `bash -n` only; a line that runs one of the
#           repository's test or benchmark scripts (`bash tests/...sh`,
#           `bash bench/...sh`, with VAR=value prefixes) is checked to name an
#           existing script that `bash -n` accepts: `make check` and
#           `make bench` run those scripts themselves
#   yaml    a block holding a pipeline (a `sources:` key) must pass
#           `kbpipe validate`
#   cron    five time fields and a command that names kbpipe
#   ini     a systemd unit: [Section] lines and Key=Value lines only
#   other   (text, console, sql-citus, c ...) shown, not run
#
# Prints one line per block and fails on the first broken one it reports.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
kb=${KBPIPE_BIN:-$root/bin/kbpipe}
[ -x "$root/bin/kbpipe" ] || { echo "examples: build bin/kbpipe first" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# a scratch database for the examples
export PGDATABASE=kbpipe_docs
unset DATABASE_URL PGOPTIONS
psql -q -d postgres -c "DROP DATABASE IF EXISTS kbpipe_docs" >/dev/null 2>&1
psql -q -d postgres -c "CREATE DATABASE kbpipe_docs" >/dev/null || exit 1
psql -q -d kbpipe_docs -c 'SET client_min_messages=warning; CREATE EXTENSION IF NOT EXISTS "uuid-ossp"; CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS vector' >/dev/null || exit 1

# split every document into numbered blocks: tmp/NNN.<lang> + tmp/NNN.where
python3 - "$tmp" README.md docs/*.md <<'PY'
import sys, re, os
out = sys.argv[1]; n = 0
for path in sys.argv[2:]:
    if not os.path.exists(path): continue
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    while i < len(lines):
        m = re.match(r'^(\s*)```+\s*([A-Za-z0-9_-]*)', lines[i])
        if m:
            lang, start, body = m.group(2) or 'text', i + 1, []
            i += 1
            while i < len(lines) and not re.match(r'^\s*```', lines[i]):
                body.append(lines[i]); i += 1
            n += 1
            open(f'{out}/{n:03d}.{lang}', 'w').write('\n'.join(body) + '\n')
            open(f'{out}/{n:03d}.where', 'w').write(f'{path}:{start}')
        i += 1
PY

export PATH=$root/bin:$PATH
passed=0; failed=0
for block in "$tmp"/*.*; do
  case "$block" in *.where) continue ;; esac
  where=$(cat "${block%.*}.where"); lang=${block##*.}; ok=1; why=""
  case "$lang" in
    sh|bash)
      while IFS= read -r line; do
        case "$line" in
          make\ *) cmd=${line%%#*}; ( make -n ${cmd#make } >/dev/null 2>"$tmp/err" ) || { ok=0; why="make -n ${cmd#make }: $(head -c 300 "$tmp/err")"; break; } ;;
          gh\ *) bash -n -c "$line" 2>"$tmp/err" || { ok=0; why="bash -n: $(head -c 300 "$tmp/err")"; break; } ;;
          *bash\ tests/*.sh*|*bash\ bench/*.sh*)
             script=$(printf '%s\n' "$line" | grep -o '\(tests\|bench\)/[A-Za-z0-9_/.-]*\.sh' | head -1)
             [ -f "$root/$script" ] && bash -n "$root/$script" 2>"$tmp/err" ||
               { ok=0; why="'$line': no script $script, or bash -n failed: $(head -c 300 "$tmp/err")"; break; } ;;
          ""|\#*) ;;
          *) ( cd "$root" && bash -ec "$line" ) >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
             [ $rc = 0 ] || { ok=0; why="'$line' exited $rc: $(tail -c 400 "$tmp/err")"; break; } ;;
        esac
      done < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$block" | sed 's/[[:space:]]\{1,\}#.*$//') ;;
    yaml|yml)
      if grep -q '^sources:' "$block"; then
        cp "$block" "$root/pipelines/.docs-example.yaml"
        ( cd "$root" && "$kb" validate pipelines/.docs-example.yaml ) >"$tmp/out" 2>&1 || { ok=0; why=$(tail -c 600 "$tmp/out"); }
        rm -f "$root/pipelines/.docs-example.yaml"
      fi ;;
    cron)
      while IFS= read -r line; do
        case "$line" in ""|\#*|*=*) continue ;; esac
        set -f; set -- $line; set +f
        [ $# -ge 6 ] && [[ "$line" == *kbpipe* ]] || { ok=0; why="not a cron line running kbpipe: $line"; }
      done < "$block" ;;
    ini)
      grep -vE '^\s*($|#|;|\[[A-Za-z]+\]$|[A-Za-z]+=.*)' "$block" >"$tmp/bad" && { ok=0; why="not systemd syntax: $(head -1 "$tmp/bad")"; } ;;
    *) continue ;;
  esac
  if [ $ok = 1 ]; then passed=$((passed + 1)); echo "ok    $where ($lang)"
  else failed=$((failed + 1)); echo "FAIL  $where ($lang): $why"; fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
