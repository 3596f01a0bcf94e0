#!/usr/bin/env bash
# tests/integration/run_secrets_print.sh - no password or key kbpipe is given
# shows in anything it writes (issue 13 point 4):
#   1. a run whose embedding.base_url holds user:PASSWORD@ (and an API key)
#      against a closed port on 127.0.0.1, with a rejected input, under -v -v:
#      stderr, stdout, the --report file, the reject file and the kbpipe_runs
#      row hold neither the password nor the key, and the endpoint is still
#      named (masked)
#   2. the same run with --db in every libpq password form (unquoted with a
#      backslash-escaped space, single-quoted with \' and \\, spaces around
#      '=', URL userinfo, URL ?password=, sslpassword) against the test
#      cluster (trust authentication: the password is sent and ignored)
#   3. a failed connection with each form: the error names the target, masked
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_secrets_print.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

closed_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port=$(closed_port)
db=$(new_db secrets)

# every secret below holds one of these markers; none may appear anywhere
markers=(UrlPw7d3e sk-Key9a1b PwAlpha PwBravo PwCharlie PwDelta PwEcho PwFoxtrot)
export SEC_API_KEY=sk-Key9a1b-never-printed

mkdir -p "$tmp/docs"
printf '# Ports\n\nThe port allocator hands out ranges.\n' >"$tmp/docs/ports.md"
printf 'bad \xff\xfe bytes\n' >"$tmp/docs/bad.md"
cat >"$tmp/p.yaml" <<EOF
name: it-secrets
project: it-secrets
reject_file: $tmp/rejects.jsonl
embedding:
  provider: openai
  base_url: http://kbuser:UrlPw7d3e%40x@127.0.0.1:$port/v1
  model: stub-embedding-1
  api_key_env: SEC_API_KEY
  max_retries: 0
  timeout_ms: 5000
sources:
  - name: docs
    type: files
    roots: ["$tmp/docs"]
    on_error: skip
EOF

# leaks FILE...: the markers found in the files (empty when none)
leaks() {
  local m
  for m in "${markers[@]}"; do grep -l -F -- "$m" "$@" 2>/dev/null | sed "s|^|$m in |"; done
}
# run_with CONNINFO LABEL: run the pipeline with --db CONNINFO; every output
# into $tmp/LABEL.*; the kbpipe_runs rows of this run into $tmp/LABEL.runs
run_with() {
  local conninfo=$1 label=$2
  rm -f "$tmp/rejects.jsonl"
  rc=0
  timeout -s KILL "$KB_TIMEOUT" "$bin" -v -v --db "$conninfo" run "$tmp/p.yaml" \
    --report "$tmp/$label.report" >"$tmp/$label.out" 2>"$tmp/$label.err" || rc=$?
  cp "$tmp/rejects.jsonl" "$tmp/$label.rejects" 2>/dev/null || : >"$tmp/$label.rejects"
  sql "$db" "SELECT row_to_json(r) FROM kbpipe_runs r ORDER BY id" >"$tmp/$label.runs"
}

echo "# 1. base_url with a password, a closed port"
run_with "dbname=$db" url
check_eq "the run fails on the embedding server (exit 1)" 1 "$rc"
check "the error names the endpoint, masked" grep -q -F "kbuser:****@127.0.0.1:$port" "$tmp/url.err"
check "the report holds the error" grep -q "gave up" "$tmp/url.report"
check "the kbpipe_runs row holds the error" grep -q "gave up" "$tmp/url.runs"
check "the reject file has the bad input" grep -q -F "bad.md" "$tmp/url.rejects"
check_eq "no password or key in stderr, stdout, report, rejects, kbpipe_runs" "" \
  "$(leaks "$tmp"/url.*)"

echo "# 2. --db with each password form"
forms=(
  "dbname=$db password=Esc\\ aped-PwAlpha"
  "dbname=$db password='Quo\\'ted \\\\PwBravo'"
  "dbname=$db password = PwCharlie"
  "postgresql://$PGUSER:PwDelta%40x@/$db"
  "postgresql:///$db?password=PwEcho&application_name=password"
  "dbname=$db sslpassword=PwFoxtrot"
)
i=0
for f in "${forms[@]}"; do
  i=$((i + 1))
  run_with "$f" "form$i"
  check_eq "form $i: the run connects and fails only on the embedding server" 1 "$rc"
  check "form $i: -v shows the masked target" grep -q "connected to .*\\*\\*\\*\\*" "$tmp/form$i.err"
  check_eq "form $i: no password in any output" "" "$(leaks "$tmp"/form"$i".*)"
done
check "form 5: a parameter value named password is not damaged" \
  grep -q -F "application_name=password" "$tmp/form5.err"

echo "# 3. a failed connection with each form"
i=0
for f in "${forms[@]}"; do
  i=$((i + 1))
  bad=${f/dbname=$db/host=127.0.0.1 port=$port dbname=$db}
  bad=${bad/@\//@127.0.0.1:$port/}
  bad=${bad/:\/\/\//://127.0.0.1:$port/}
  rc=0
  "$bin" --db "$bad" migrate status >"$tmp/conn$i.out" 2>"$tmp/conn$i.err" || rc=$?
  check_eq "form $i: a refused connection exits 1" 1 "$rc"
  check "form $i: ... naming the target" grep -q "cannot connect .*127.0.0.1" "$tmp/conn$i.err"
  check_eq "form $i: ... without the password" "" "$(leaks "$tmp"/conn"$i".*)"
done

finish
