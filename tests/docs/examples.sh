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
#           `kbpipe validate`; a fragment without `sources:` (an
#           `embedding:` block, a source list item `- name: ...`) is wrapped
#           into a minimal pipeline (name, project, one files source over
#           samples/docs) and validated in a scratch folder where the files
#           its `file:`/`path:` keys name exist (empty): the keys, values and
#           types are checked, not the reader's own files
#   sql     run with psql (ON_ERROR_STOP) in one transaction that is rolled
#           back, against the scratch database with the schema migrated
#   cron    five time fields and a command that names kbpipe
#   ini     a systemd unit: [Section] lines and Key=Value lines only
#   text, console
#           shown, unless the line before the fence is a marker:
#             <!-- output: COMMAND -->   the block is COMMAND's exact output
#               (stdout then stderr, run like an sh line, with the three
#               sample pipelines loaded); `...` in the block matches any text
#             <!-- illustrative: why -->   shown, never compared (say why)
#           An exact output in the docs gets an output marker; an unmarked
#           text block is illustrative.
#   other   (sql-citus, c ...) shown, not run
#
# Inline commands in prose: every `kbpipe ...` code span must name a command
# that exists, and each of its options must be in that command's --help
# (or kbpipe --help); every `make ...` code span must pass `make -n`.
# Placeholders in capitals (PIPELINE, K/N) and [optional] brackets are fine.
#
# docs/schema.md must name every table, column, index and constraint that
# migration 006 or a later one creates.
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
    prose = []
    while i < len(lines):
        m = re.match(r'^(\s*)```+\s*([A-Za-z0-9_-]*)', lines[i])
        if m:
            lang, start, body = m.group(2) or 'text', i + 1, []
            prev = lines[i - 1].strip() if i > 0 else ''
            mk = re.match(r'^<!--\s*output:\s*(.*?)\s*-->$', prev)
            i += 1
            while i < len(lines) and not re.match(r'^\s*```', lines[i]):
                body.append(lines[i]); i += 1
            n += 1
            if mk and lang in ('text', 'console'):
                lang = 'output'
                open(f'{out}/{n:03d}.cmd', 'w').write(mk.group(1) + '\n')
            open(f'{out}/{n:03d}.{lang}', 'w').write('\n'.join(body) + '\n')
            open(f'{out}/{n:03d}.where', 'w').write(f'{path}:{start}')
            prose.append('')
        else:
            prose.append(lines[i])
        i += 1
    # inline code spans in prose (a span may wrap onto the next line)
    text = '\n'.join(prose)
    for m in re.finditer(r'`((?:kbpipe|make) [^`]*)`', text):
        span = ' '.join(m.group(1).split())
        line = text.count('\n', 0, m.start()) + 1
        n += 1
        open(f'{out}/{n:03d}.inline', 'w').write(span + '\n')
        open(f'{out}/{n:03d}.where', 'w').write(f'{path}:{line}')
PY

export PATH=$root/bin:$PATH
# the three sample pipelines, loaded as `make demo` loads them, for the output markers
( cd "$root" && "$kb" -q migrate up && for p in docs issues learnings; do "$kb" -q run "pipelines/$p.yaml" || exit 1; done ) ||
  { echo "examples: loading the sample pipelines failed" >&2; exit 1; }

# match TEXT_FILE BLOCK_FILE: the text equals the block, where `...` in the block matches anything
match() {
  python3 - "$1" "$2" <<'PY'
import re, sys
got = open(sys.argv[1], encoding='utf-8', errors='replace').read().rstrip('\n')
want = open(sys.argv[2], encoding='utf-8').read().rstrip('\n')
rx = '.*?'.join(re.escape(p) for p in want.split('...'))
if re.fullmatch(rx, got, re.S): sys.exit(0)
import difflib
sys.stdout.write(''.join(list(difflib.unified_diff(want.splitlines(True), got.splitlines(True), 'doc', 'real'))[:12]))
sys.exit(1)
PY
}
# the options a command's --help (or kbpipe --help) names
mkdir -p "$tmp/h"; "$kb" --help >"$tmp/h/global"
passed=0; failed=0
for block in "$tmp"/*.*; do
  case "$block" in *.where|*.cmd) continue ;; esac
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
      else   # a fragment: wrapped into a minimal pipeline, in a scratch folder
        frag=$tmp/frag; rm -rf "$frag"; mkdir -p "$frag"; ln -s "$root/samples" "$frag/samples"
        for f in $(sed -n 's/^ *-\{0,1\} *\(file\|path\|comments\): *\([^ #]*\).*/\2/p' "$block"); do
          case "$f" in /*|*'$'*) continue ;; esac
          mkdir -p "$frag/$(dirname "$f")"; [ -e "$frag/$f" ] || : >"$frag/$f"
        done
        { grep -q '^name:' "$block" || echo "name: docs-fragment"
          grep -q '^project:' "$block" || echo "project: docs-fragment"
          if grep -q '^- ' "$block"; then echo "sources:"; sed 's/^/  /' "$block"
          else cat "$block"; printf 'sources:\n  - {name: docs, type: files, roots: [samples/docs], include: ["**/*.md"]}\n'; fi
        } >"$frag/pipeline.yaml"
        ( cd "$frag" && "$kb" validate pipeline.yaml ) >"$tmp/out" 2>&1 || { ok=0; why="(wrapped) $(tail -c 600 "$tmp/out")"; }
      fi ;;
    sql)
      { echo "BEGIN;"; cat "$block"; echo "ROLLBACK;"; } >"$tmp/block.sql"
      psql -X -q -v ON_ERROR_STOP=1 -d kbpipe_docs -f "$tmp/block.sql" >"$tmp/out" 2>&1 || { ok=0; why=$(tail -c 600 "$tmp/out"); } ;;
    output)
      cmd=$(cat "${block%.*}.cmd")
      ( cd "$root" && bash -c "$cmd" ) >"$tmp/out" 2>"$tmp/err" </dev/null; cat "$tmp/err" >>"$tmp/out"
      match "$tmp/out" "$block" >"$tmp/diff" || { ok=0; why="output of '$cmd' differs: $(cat "$tmp/diff")"; } ;;
    inline)
      span=$(cat "$block")
      set -f; set -- $span; set +f
      if [ "$1" = make ]; then
        shift
        ( cd "$root" && make -n "$@" >/dev/null 2>"$tmp/err" ) || { ok=0; why="make -n $*: $(head -c 300 "$tmp/err")"; }
      else
        sub=${2:-}
        if [ -z "$sub" ] || [[ "$sub" == -* ]] || [[ "$sub" =~ ^[A-Z] ]]; then help=$tmp/h/global
        elif "$kb" "$sub" --help >"$tmp/h/$sub" 2>/dev/null; then help=$tmp/h/$sub
        else ok=0; why="'$span': kbpipe has no command '$sub'"; fi
        if [ $ok = 1 ]; then
          for o in $(printf '%s\n' "$span" | tr '[]|' '   ' | grep -oE '(^| )--?[a-zA-Z][a-zA-Z-]*' ); do
            grep -qE -- "(^|[^a-zA-Z-])$o([^a-zA-Z-]|$)" "$help" "$tmp/h/global" ||
              { ok=0; why="'$span': $o is not an option of kbpipe ${sub:-} (see its --help)"; break; }
          done
        fi
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
# docs/schema.md names everything migration 006 and later create
for m in "$root"/migrations/[0-9][0-9][0-9]_*.sql; do
  [ "$(basename "$m" | cut -c1-3)" -ge 6 ] || continue
  for name in $(sed -n '/^-- migrate:up/,/^-- migrate:down/p' "$m" |
                grep -oiE '(CREATE TABLE|ADD COLUMN|ADD CONSTRAINT|CREATE (UNIQUE )?INDEX) +[a-z_]+' | awk '{print $NF}'); do
    if grep -q "\b$name\b" "$root/docs/schema.md"; then passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL  docs/schema.md: $(basename "$m") creates $name, the page does not name it"; fi
  done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
