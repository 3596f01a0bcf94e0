#!/usr/bin/env bash
# tests/integration/run_lazy_libs.sh - poppler-glib, OpenBLAS and libxml2 are
# opened at their first use, not at start (docs/operations.md, "Installing";
# docs/loading.md, "What kbpipe controls", (4)):
#   1. `kbpipe --version` opens neither library and starts no thread (the
#      linked OpenBLAS started its thread pool before main)
#   2. a first run of a Markdown file embeds and reads no PDF, and opens
#      neither: its vectors are normalized by plain loops (src/embed/
#      normalize.c), OpenBLAS is opened only for matrix products (dedup)
#   3. a run that reads a PDF opens poppler-glib and stores its chunks
#   4. an unchanged re-run opens neither: it embeds nothing and reads no file
#   5. `kbpipe search` opens neither and starts no thread: the query's
#      vector is one normalization (OpenBLAS's thread pool spun ~25 ms of CPU)
#   6. libxml2 is opened by a run that reads an HTML file, by no other
#      process above (their traces list no libxml2)
#   7. libcurl is opened by a run that embeds through an OpenAI-compatible
#      server (tests/data/run/openai_stub.py), by no process above:
#      --version, a files run, its re-runs and search never map it
#   8. libcurl missing (the test build's fault point util.curl_open opens
#      a library name no system has): that run exits 2 naming the openai
#      provider, dlopen's reason and the package libcurl4, and stores nothing
#   KBPIPE_BIN=build/debug/kbpipe-test bash tests/integration/run_lazy_libs.sh
# Needs strace (the project's test dependencies) and a test build (8).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { echo "run_lazy_libs.sh: strace is needed" >&2; exit 1; }

# traced ARGS...: kbpipe under strace -f (openat, clone); $tmp/libs holds the
# libraries it opened (poppler-glib, openblas, xml2, curl; an openat that
# failed is not an opening), $tmp/threads its clones
traced() {
  rc=0
  # LeakSanitizer cannot run under ptrace: leaks are checked by the untraced runs
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat,clone,clone3 -o "$tmp/trace" \
    timeout -s KILL "$KB_TIMEOUT" "$bin" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  grep -v ENOENT "$tmp/trace" | grep -oE 'lib(poppler-glib|openblas|xml2|curl)[^"/]*\.so[^"]*' |
    sed -E 's/\.so.*//' | sort -u >"$tmp/libs"
  grep -c 'CLONE_THREAD' "$tmp/trace" >"$tmp/threads" || true   # threads, not timeout's fork
}

echo "# 1. --version"
traced --version
check_rc "kbpipe --version exits 0" 0
check_eq "it opens none of poppler-glib, OpenBLAS, libxml2, libcurl" "" "$(cat "$tmp/libs")"
check_eq "it starts no thread" 0 "$(cat "$tmp/threads")"

mkdir -p "$tmp/docs" "$tmp/pdf"
printf '# A page\n\nSome text to embed.\n' >"$tmp/docs/a.md"
cp samples/pdf/runbook.pdf "$tmp/pdf/"
touch -d '1 hour ago' "$tmp/docs/a.md" "$tmp/pdf/runbook.pdf"
cat >"$tmp/md.yaml" <<EOF
name: it-lazy
project: it-lazy
embedding: { provider: hash }
sources:
  - { name: docs, type: files, roots: ["$tmp/docs"] }
EOF
cat >"$tmp/pdf.yaml" <<EOF
name: it-lazy-pdf
project: it-lazy
embedding: { provider: hash }
sources:
  - { name: pdf, type: files, roots: ["$tmp/pdf"] }
EOF
db=$(new_db lazy)

echo "# 2. a Markdown run"
traced --db "dbname=$db" run "$tmp/md.yaml" -q
check_rc "the run exits 0" 0
check_eq "it opens no OpenBLAS (its vector is normalized without it), poppler-glib, libcurl" "" "$(cat "$tmp/libs")"

echo "# 3. a PDF run"
traced --db "dbname=$db" run "$tmp/pdf.yaml" -q
check_rc "the run exits 0" 0
check_eq "it opens poppler-glib only" libpoppler-glib "$(cat "$tmp/libs")"
check "the PDF's chunks are stored" test "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c
  JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'runbook.pdf'")" -gt 0

echo "# 4. unchanged re-runs"
traced --db "dbname=$db" run "$tmp/pdf.yaml" -q
check_rc "the PDF re-run exits 0" 0
check_eq "it opens neither library" "" "$(cat "$tmp/libs")"
traced --db "dbname=$db" run "$tmp/md.yaml" -q
check_eq "nor does the Markdown re-run" "" "$(cat "$tmp/libs")"
kb "$db" run "$tmp/pdf.yaml" -q     # untraced (a sanitizer build checks its leaks)
check_rc "an untraced PDF re-run exits 0" 0

echo "# 5. kbpipe search"
traced --db "dbname=$db" search --project it-lazy --mode vector "some text"
check_rc "the search exits 0" 0
check "it finds the Markdown file" grep -q 'a.md' "$tmp/out"
check_eq "it opens none of the four libraries" "" "$(cat "$tmp/libs")"
check_eq "it starts no thread" 0 "$(cat "$tmp/threads")"

echo "# 6. an HTML run"
mkdir -p "$tmp/html"
printf '<html><body><h1>Page</h1><p>Some text &amp; more.</p></body></html>\n' >"$tmp/html/a.html"
cat >"$tmp/html.yaml" <<EOF
name: it-lazy-html
project: it-lazy
embedding: { provider: hash }
sources:
  - { name: web, type: files, roots: ["$tmp/html"] }
EOF
traced --db "dbname=$db" run "$tmp/html.yaml" -q
check_rc "the HTML run exits 0" 0
check_eq "it opens libxml2 only" libxml2 "$(cat "$tmp/libs")"
check_eq "the HTML's text is stored" "# Page|Some text & more." \
  "$(sql "$db" "SELECT c.content FROM knowledge_chunks c JOIN knowledge_sources s
                ON s.id = c.source_id WHERE s.source_id = 'a.html'" | grep -v '^$' | paste -sd'|')"

echo "# 7. a run embedding through an OpenAI-compatible server"
export RUN_API_KEY=sk-test-lazy RUN_DOCS=$tmp/docs RUN_PROJECT=it-lazy-openai
python3 tests/data/run/openai_stub.py "$tmp/requests.log" >"$tmp/port" &
_bg+=("$!")
poll 60 test -s "$tmp/port"   # python starts slowly on a loaded machine
export RUN_BASE_URL=http://127.0.0.1:$(cat "$tmp/port")/v1
traced --db "dbname=$db" run tests/data/run/openai.yaml -q
check_rc "the run exits 0" 0
check_eq "it opens libcurl only" libcurl "$(cat "$tmp/libs")"
check_eq "its chunk went to the server and is stored with the server's model" \
  "1 stub-embedding-1" "$(sql "$db" "SELECT count(*), min(c.metadata->>'embedding_model')
    FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id WHERE p.name = 'it-lazy-openai'" |
    tr '|' ' ')"

echo "# 8. libcurl missing"
echo "# Another page" >"$tmp/docs/b.md"
KBPIPE_FAULT=util.curl_open kb "$db" run tests/data/run/openai.yaml -q
check_rc "a run that needs libcurl and cannot load it exits 2 (configuration)" 2
check "it names the openai provider, the reason and the package" \
  grep -qE 'the openai embedding provider needs libcurl, which cannot be loaded \(libcurl-kbpipe-fault\.so\.4: .*\); install it \(Debian: apt-get install libcurl4\)' "$tmp/err"
[ "$rc" = 2 ] || show
check_eq "nothing of b.md is stored" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources
                                                     WHERE source_id = 'b.md'")"
finish
