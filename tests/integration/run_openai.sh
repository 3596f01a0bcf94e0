#!/usr/bin/env bash
# tests/integration/run_openai.sh - `kbpipe run` with the OpenAI-compatible
# provider against a local stub server (tests/data/run/openai_stub.py):
#   1. a first run embeds every chunk through the server, in requests of at
#      most batch_size texts and max_tokens_per_request tokens, at most
#      max_in_flight at once, sending the key from api_key_env, which never
#      appears in kbpipe's output, even with -v -v
#   2. an unchanged re-run sends no request at all
#   3. one edited paragraph sends exactly one text
#   4. the same corpus in a second project reuses every stored vector by
#      (content_hash, model): no request
#   5. on a terminal (script(1)), against a server that holds each request
#      0.7 s, the progress line shows the requests in flight while the
#      batch is embedded: 2 (max_in_flight), never more
#   6. the server gone: exit 1 with a message naming the endpoint; nothing
#      of the failed batch is stored
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_openai.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

P=tests/data/run/openai.yaml
cp -r tests/data/run/docs "$tmp/docs"
export RUN_DOCS=$tmp/docs RUN_API_KEY=sk-test-4f9c2a7e-do-not-print
log=$tmp/requests.log
: >"$log"
python3 tests/data/run/openai_stub.py "$log" >"$tmp/port" &
stub=$!
_bg+=("$stub")
poll 60 test -s "$tmp/port"   # python starts slowly on a loaded machine
export RUN_BASE_URL=http://127.0.0.1:$(cat "$tmp/port")/v1
texts() { awk '{n += $1} END {print n + 0}' "$log"; }
requests() { wc -l <"$log" | tr -d ' '; }

echo "# 1. first run"
db=$(new_db openai)
kb "$db" -v -v run "$P" --report "$tmp/r1.json"
check_rc "first run exits 0" 0
n_chunks=$(sql "$db" "SELECT count(*) FROM knowledge_chunks")
check "chunks were loaded" test "$n_chunks" -gt 4
check_eq "every chunk's text went to the server once" "$n_chunks" "$(texts)"
check_eq "no request held more than batch_size (4) texts" 0 "$(awk '$1 > 4' "$log" | wc -l)"
check "more than two requests (so the default of four in flight would show)" test "$(requests)" -gt 2
check_eq "the server never saw more than max_in_flight (2) requests at once" 2 \
  "$(awk '$3 > m {m = $3} END {print m}' "$log")"
sql "$db" "SELECT content_hash || ' ' || token_count FROM knowledge_chunks" >"$tmp/tokens"
check_eq "every text sent is a stored chunk (its SHA-256 is the content_hash)" 0 \
  "$(awk 'NR == FNR {t[$1] = $2; next} {n = split($4, h, ","); for (i = 1; i <= n; i++) if (!(h[i] in t)) bad++}
          END {print bad + 0}' "$tmp/tokens" "$log")"
check_eq "no request of several texts held more than max_tokens_per_request (100) tokens" 0 \
  "$(awk 'NR == FNR {t[$1] = $2; next} $1 > 1 {n = split($4, h, ","); s = 0; for (i = 1; i <= n; i++) s += t[h[i]];
          if (s > 100) bad++} END {print bad + 0}' "$tmp/tokens" "$log")"
check_eq "every request carried the key (Bearer + the variable's value)" 0 \
  "$(awk -v n=$((7 + ${#RUN_API_KEY})) '$2 != n' "$log" | wc -l)"
check_eq "every chunk records the model and has a unit vector" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE metadata->>'embedding_model' <> 'stub-embedding-1'
                OR embedding IS NULL OR abs(vector_norm(embedding) - 1) > 1e-5")"
check "the key is not in the output of a run with -v -v" \
  sh -c "! grep -q -F '$RUN_API_KEY' '$tmp/out' '$tmp/err' '$tmp/r1.json'"

echo "# 2. an unchanged re-run sends nothing"
before=$(requests)
kb "$db" run "$P" -q --report "$tmp/r2.json"
check_rc "re-run exits 0" 0
check_eq "no request" "$before" "$(requests)"
check_eq "report: vectors computed 0" 0 "$(computed "$tmp/r2.json")"

echo "# 3. one edited paragraph sends one text"
before=$(texts)
sed -i 's/instead of locking the whole range/instead of locking the entire range/' "$tmp/docs/guide/ports.md"
kb "$db" run "$P" -q --report "$tmp/r3.json"
check_rc "run after the edit exits 0" 0
check_eq "exactly one text sent" $((before + 1)) "$(texts)"
check_eq "report: the other chunks of the file reused" 2 "$(jget "$tmp/r3.json" .load.vectors_reused)"

echo "# 4. another project over the same text reuses the stored vectors"
before=$(requests)
RUN_PIPELINE=it-openai-2 RUN_PROJECT=it-openai-2 kb "$db" run "$P" -q --report "$tmp/r4.json"
check_rc "second project's run exits 0" 0
check_eq "no request" "$before" "$(requests)"
check_eq "every chunk reused" "$n_chunks" "$(jget "$tmp/r4.json" .load.vectors_reused)"

echo "# 5. requests in flight on the progress line (a slow server, a terminal)"
if script -qec true /dev/null >/dev/null 2>&1; then
  : >"$tmp/slow.log"
  python3 tests/data/run/openai_stub.py "$tmp/slow.log" 0.7 >"$tmp/slow.port" &
  slow=$!
  _bg+=("$slow")
  poll 60 test -s "$tmp/slow.port"
  db6=$(new_db openai_tty)
  printf -v cmd '%q ' env RUN_BASE_URL="http://127.0.0.1:$(cat "$tmp/slow.port")/v1" \
    timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$db6" run "$P" --report "$tmp/r6.json"
  script -qec "$cmd" /dev/null >"$tmp/screen6" 2>&1 </dev/null
  check_eq "the run on a terminal succeeds" succeeded "$(jget "$tmp/r6.json" .status)"
  check "... it sent several requests, two at a time" test "$(wc -l <"$tmp/slow.log")" -gt 2
  tr '\r' '\n' <"$tmp/screen6" | sed 's/\x1b\[K//g' >"$tmp/lines6"
  # the writer thread embeds, so a corpus this small is embedded while the
  # line already says loading (the scan is over)
  check "the progress line shows '2 requests in flight' while embedding" \
    grep -qE '^kbpipe: it-openai: (scanning|loading): [0-9]+ documents, [0-9]+ chunks, [0-9]+ vectors embedded, 2 requests in flight, ' "$tmp/lines6"
  check_eq "... never more than max_in_flight (2)" "" \
    "$(grep -oE '[0-9]+ requests? in flight' "$tmp/lines6" | grep -vE '^[12] ')"
  check "... and the finished line has none" \
    grep -qE "^kbpipe: it-openai: [0-9]+ documents, $n_chunks chunks, $n_chunks vectors embedded in [0-9.]+ s" "$tmp/lines6"
  kill -9 "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
else
  note "no script(1): the progress line is not tested"
fi

echo "# 6. the server gone"
kill -9 "$stub" 2>/dev/null; wait "$stub" 2>/dev/null
echo "A new paragraph that nobody has embedded yet." >>"$tmp/docs/guide/setup.md"
state "$db" it-openai >"$tmp/s6.before"
kb "$db" run "$P" -q
check_rc "a run without its embedding server exits 1" 1
check "... naming the endpoint" grep -q "127.0.0.1" "$tmp/err"
check "... without the key" sh -c "! grep -q -F '$RUN_API_KEY' '$tmp/err'"
state "$db" it-openai >"$tmp/s6.after"
check_same "nothing of the failed batch is stored" "$tmp/s6.before" "$tmp/s6.after"

finish
