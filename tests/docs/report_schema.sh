#!/usr/bin/env bash
# tests/docs/report_schema.sh - docs/report.schema.json describes the run
# report, and real reports follow it (docs/operations.md, "Reports"):
#   * the schema is a valid JSON Schema (draft 2020-12) and forbids fields it
#     does not describe (additionalProperties: false everywhere);
#   * the reports of real runs validate against it (python3-jsonschema,
#     installed by scripts/deps.sh): the three sample pipelines (files,
#     issues, learnings with the dedup pass), a plan (dry run), a shard, a
#     run that rejects an input (partial, a reject file), and the copies
#     stored in kbpipe_runs.report;
#   * report_version is 2, kbpipe_version is kbpipe --version's;
#   * every number is written with at most 3 decimals, never an exponent.
. "$(dirname "$0")/../integration/lib.sh"
schema=docs/report.schema.json
validate() {   # FILE...: each validates; prints the first error
  python3 - "$schema" "$@" <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(path))):
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}"); bad = 1; break
sys.exit(bad)
PY
}
check "the schema is a valid JSON Schema" python3 -c "
import json, jsonschema; jsonschema.Draft202012Validator.check_schema(json.load(open('$schema')))"
check "every object of the schema is closed (additionalProperties: false)" python3 -c "
import json, sys
def walk(n):
    if isinstance(n, dict):
        if n.get('type') == 'object' and n.get('additionalProperties') is not False: sys.exit(1)
        for v in n.values(): walk(v)
    elif isinstance(n, list):
        for v in n: walk(v)
walk(json.load(open('$schema')))"

db=$(new_db report)
reports=()
for p in docs issues learnings; do
  kb "$db" -q run "pipelines/$p.yaml" --report "$tmp/$p.json"
  check_rc "run pipelines/$p.yaml" 0
  reports+=("$tmp/$p.json")
done
kb "$db" -q plan pipelines/docs.yaml --full --report "$tmp/plan.json"; check_rc "plan --full" 0
kb "$db" -q run pipelines/docs.yaml --shard 2/3 --report "$tmp/shard.json"; check_rc "run --shard 2/3" 0
reports+=("$tmp/plan.json" "$tmp/shard.json")
# a run with a rejected input: a file that is not UTF-8
mkdir -p "$tmp/docs"
printf '# Good\n\nfine text\n' >"$tmp/docs/good.md"
printf '# Bad \xe9\xff\n' >"$tmp/docs/bad.md"
cat >"$tmp/rej.yaml" <<YAML
name: rej
project: rep-rej
embedding: {provider: hash}
reject_file: $tmp/rej.jsonl
sources:
  - name: d
    type: files
    roots: ["$tmp/docs"]
    include: ["*.md"]
    on_error: skip
YAML
kb "$db" -q run "$tmp/rej.yaml" --report "$tmp/rej.json"
check_rc "a run with a rejected input exits 3" 3
check_eq "  ... its report says partial and names the reject file" "partial 1 $tmp/rej.jsonl" \
  "$(jget "$tmp/rej.json" '"\(.status) \(.rejected) \(.reject_file)"')"
reports+=("$tmp/rej.json")

check "the reports validate against docs/report.schema.json" validate "${reports[@]}"
check "  ... and the learnings run's has the dedup object" test "$(jget "$tmp/learnings.json" '.dedup.action')" = mark
check "  ... and the shard run's the shard object" test "$(jget "$tmp/shard.json" '"\(.shard.k)/\(.shard.n)"')" = 2/3
n=0
while IFS= read -r line; do
  n=$((n + 1)); printf '%s\n' "$line" >"$tmp/stored.$n.json"
done < <(sql "$db" "SELECT report FROM kbpipe_runs WHERE report IS NOT NULL ORDER BY id")
# every run but the plan (a dry run: no row) and the first report of the table
check_eq "kbpipe_runs.report holds the reports of the runs" 5 "$n"
check "  ... which validate too" validate "$tmp"/stored.*.json

want=$("$bin" --version | cut -d' ' -f2)
for f in "${reports[@]}"; do
  check_eq "$(basename "$f"): report_version 2, kbpipe_version $want" "2 $want" \
    "$(jget "$f" '"\(.report_version) \(.kbpipe_version)"')"
  # every number as written: no exponent, at most 3 decimals
  check_eq "$(basename "$f"): every number rounded to the ms" "" \
    "$(grep -oE ':\s*-?[0-9][0-9.eE+-]*' "$f" | grep -E '[eE]|\.[0-9]{4,}' | head -3)"
done
# seven phases and the seconds, each rounded to the ms: 8 x 0.0005 at most
check "the phases add up to seconds (to the rounding)" python3 -c "
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))
    if abs(sum(r['phases'].values()) - r['seconds']) > 0.004: print(f, r['phases'], r['seconds']); sys.exit(1)" "${reports[@]}"
check "a run that took time has a non-zero seconds" \
  python3 -c "import json,sys; sys.exit(0 if json.load(open('$tmp/docs.json'))['seconds'] > 0 else 1)"
finish
