#!/usr/bin/env bash
# tests/integration/run_memory_worst.sh - peak RSS of `kbpipe run` on the
# single inputs of issue 13 point 5, at the default limits (max_file_size
# 8 MB), each one document of thousands of chunks (docs/loading.md, "One
# large input"):
#   blob   one 8 MB line of base64, no blank (2.7 million pre-token pieces)
#   words  one 8 MB line of words
#   issue  an issue export (gh format) whose one issue's body is 8 MB of words
#   csv    a CSV (type csv) whose one content field is 8 MB
#   letters one 8 MB line of random [a-z]: ONE pre-token piece, merged in
#          windows of 32 KiB (src/chunk/tokenizer.c; whole it took ~490 MB)
#   aletter one 8 MB line of the letter a: one piece, every merge a tie
#   rest   an issue export (REST) whose one issue and its 7 comments (comments
#          export) are together just under max_record_size (8 MB): the
#          largest issue document the defaults allow
# Case spanreject: a document over several batches whose chunk is rejected
# in its fourth batch (KBPIPE_FAULT=run.embed_row, a test build) is rejected
# with its place named, its earlier batches are rolled back and nothing else
# is lost: the file before it in its first batch and the file after it are
# loaded, and the run goes on and exits 3; the next run loads it.
# Then (case over) the inputs just past the default limits must be rejected
# with their place named and the peak RSS still under the bound, and the
# next input loaded: a CSV field of 40 MB (over max_record_size, 8 MB, and
# the reader's old hard cap of 32 MB), an issue export whose one element is
# 40 MB, and a REST issue whose comments add up to 9 MB.
# Each run is timed by /usr/bin/time -v and must stay under its bound
# (100 MiB); and what it loaded must be right, not just present: the chunk
# texts in chunk_index order are the input's text (blanks aside; overlap 0),
# chunk_index is 0..n-1, no chunk is over the size, and the stored
# token_count of every chunk adds up to the reference tokenizer's count of
# the chunk texts (npm tiktoken, tests/ref; KBPIPE_REQUIRE_REF=1 makes its
# absence a failure).  A document of thousands of rows goes out in several
# batches of one transaction; the source row is one.
# First (case span) a document over several batches is checked to be one
# transaction: a failure or a kill -9 between its batches leaves it as it
# was, and the next run ends as a clean run does.
#   KBPIPE_BIN=build/rel/kbpipe-test bash tests/integration/run_memory_worst.sh [CASE...]
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/time ] || { echo "run_memory_worst.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
cases=${*:-span spanreject blob words issue csv letters aletter rest over}
max=$((8 * 1024 * 1024))
bound_mib=100

# the reference count: node + tiktoken (tests/ref/encode.js finds it the same way)
ref_sum() {   # FILE (a JSON array of strings) -> the sum of their token counts
  node -e '
    const fs = require("fs"), path = require("path");
    let t; try { t = require(path.join(process.argv[2], ".cache/ref/node_modules/tiktoken")); }
           catch (e) { t = require("tiktoken"); }
    const enc = t.get_encoding("cl100k_base");
    let n = 0;
    for (const s of JSON.parse(fs.readFileSync(process.argv[1], "utf8")))
      n += enc.encode_ordinary(s).length;
    process.stdout.write(String(n));
    enc.free();' "$1" "$top" 2>/dev/null
}
has_ref=1
ref_sum <(echo '["a b"]') >/dev/null || has_ref=0
if [ "$has_ref" = 0 ]; then
  if [ "${KBPIPE_REQUIRE_REF:-0}" = 1 ]; then
    fail "the reference tokenizer (node + tiktoken) is missing; run make deps-test"
  else
    note "no reference tokenizer (node + tiktoken): token sums are not compared"
  fi
fi

# the inputs, deterministic; $tmp/CASE.text is the text the chunks must give back
gen() {
  local kind=$1 d=$tmp/$1
  mkdir -p "$d/in"
  python3 - "$kind" "$d" "$max" "$top/bench/gen_line.py" <<'PY'
import base64, json, random, subprocess, sys
kind, d, n, gen_line = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def words(size):
    subprocess.run([sys.executable, gen_line, d + "/words.tmp", str(size)], check=True)
    return open(d + "/words.tmp").read().rstrip("\n")
if kind == "letters":
    r = random.Random(13)
    text = "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n - 1))
    open(d + "/in/letters.md", "w").write(text + "\n")
elif kind == "aletter":
    text = "a" * (n - 1)
    open(d + "/in/aletter.md", "w").write(text + "\n")
elif kind == "blob":
    raw = random.Random(13).randbytes(n // 4 * 3 - 3)
    text = base64.b64encode(raw).decode()
    open(d + "/in/blob.md", "w").write(text + "\n")
elif kind == "words":
    text = words(n)
    open(d + "/in/line.md", "w").write(text + "\n")
elif kind == "issue":
    # the element is the limit's size: the body, the rest of the issue and the JSON around it
    body = words(n - 1024)
    issue = {"number": 1, "title": "One huge issue", "body": body, "state": "OPEN",
             "author": {"login": "octo"}, "createdAt": "2024-01-01T00:00:00Z",
             "updatedAt": "2024-01-02T00:00:00Z", "closedAt": None, "labels": [],
             "comments": [], "url": "https://github.com/acme/big/issues/1"}
    line = json.dumps(issue)
    assert len(line) <= n, len(line)
    open(d + "/in/issues.jsonl", "w").write(line + "\n")
    text = "# One huge issue\n\n" + body
elif kind == "rest":
    # the issue's element and its comments add up to the limit, less 4 KiB
    parts = [words(n // 8 - 1024) for _ in range(8)]
    issue = {"number": 1, "title": "One huge issue", "body": parts[0], "state": "open",
             "user": {"login": "octo"}, "created_at": "2024-01-01T00:00:00Z",
             "updated_at": "2024-01-02T00:00:00Z", "closed_at": None, "labels": [],
             "comments": 7, "html_url": "https://github.com/acme/big/issues/1"}
    lines = [json.dumps(issue)]
    text = "# One huge issue\n\n" + parts[0] + "\n"
    for k, body in enumerate(parts[1:]):
        c = {"issue_url": "https://api.github.com/repos/acme/big/issues/1",
             "html_url": "https://github.com/acme/big/issues/1#issuecomment-%d" % k,
             "user": {"login": "octo"}, "created_at": "2024-01-0%dT00:00:00Z" % (k + 2),
             "body": body}
        lines.append(json.dumps(c))
        text += "\n---\nComment by octo on 2024-01-0%dT00:00:00Z:\n\n%s\n" % (k + 2, body)
    assert sum(len(l) for l in lines) <= n - 4096, sum(len(l) for l in lines)
    open(d + "/in/issues.jsonl", "w").write(lines[0] + "\n")
    open(d + "/in/comments.jsonl", "w").write("\n".join(lines[1:]) + "\n")
else:
    field = words(n - 64)
    open(d + "/in/rows.csv", "w").write('id,title,content\nR-1,one big field,"%s"\n' % field)
    text = field
open(d + "/text", "w").write(text)
PY
  case $kind in
    blob|words|letters|aletter) src="    type: files
    roots: [\"$d/in\"]" ;;
    issue) src="    type: github_issues
    path: $d/in/issues.jsonl" ;;
    rest) src="    type: github_issues
    path: $d/in/issues.jsonl
    comments: $d/in/comments.jsonl
    format: rest" ;;
    csv) src="    type: csv
    path: $d/in/rows.csv
    key: id" ;;
  esac
  cat >"$d/p.yaml" <<YAML
name: it-worst-$kind
project: it-worst-$kind
chunking:
  overlap: 0
embedding:
  provider: hash
sources:
  - name: big
$src
YAML
}

# span: one document over several batches is one transaction.  batch_rows
# 10 and ~60 chunks: a failure or a kill -9 at the third batch (inside the
# document) leaves the source as it was; the next run loads all of it, as
# one clean run does.  Needs a test build (KBPIPE_FAULT).  The large
# version makes index strategy auto drop the HNSW index while rows are
# stored (so each batch looks up reusable vectors on the second connection):
# a drop inside a batch kept open would hold its lock while the lookup waits
# for it, and the run would hang (the timeout fails it).
if [[ " $cases " == *" span "* ]] || [ -z "${*:-}" ]; then
  mkdir -p "$tmp/span/in"
  span_yaml() {
    cat >"$tmp/span/p.yaml" <<YAML
name: it-span
project: it-span
chunking:
  size: 64
  overlap: 0
load:
  batch_rows: 10
  rebuild_min_rows: 10        # auto drops the index for the large version
embedding:
  provider: hash
sources:
  - name: docs
    type: files
    roots: ["$tmp/span/in"]
YAML
  }
  span_yaml
  python3 "$top/bench/gen_line.py" "$tmp/span/in/a.md" 2000
  echo "a small neighbour" >"$tmp/span/in/b.md"
  sdb=$(new_db span)
  kb "$sdb" run "$tmp/span/p.yaml" -q; check_rc "span: the small first version loads" 0
  before=$(state "$sdb" it-span)
  python3 "$top/bench/gen_line.py" "$tmp/span/in/a.md" 20000   # ~60 chunks of 64 tokens
  if strings "$bin" | grep -q KBPIPE_FAULT; then
    KBPIPE_FAULT=load.flush:3 kb "$sdb" run "$tmp/span/p.yaml" -q
    check "span: a failure at the third batch of the document fails the run (exit $rc)" \
      test "$rc" != 0 -a "$rc" != 137
    check_eq "span: ... and the source is as it was (no batch of it committed)" "$before" \
      "$(state "$sdb" it-span)"
    check_eq "span: ... and the run is not left running" "0" \
      "$(sql "$sdb" "SELECT count(*) FROM kbpipe_runs WHERE status = 'running'")"
    KBPIPE_FAULT=load.flush:3:kill kb "$sdb" run "$tmp/span/p.yaml" -q
    check_eq "span: a kill -9 at the third batch of the document" 137 "$rc"
    check_eq "span: ... leaves the source as it was" "$before" "$(state "$sdb" it-span)"
  else
    note "span: not a test build (no KBPIPE_FAULT): the failure and kill cases are not run"
  fi
  kb "$sdb" run "$tmp/span/p.yaml" -q; check_rc "span: the next run loads the large version" 0
  n=$(sql "$sdb" "SELECT count(*) FROM knowledge_chunks")
  check "span: ... in more than one batch ($n chunks, batch_rows 10)" test "$n" -gt 30
  check_eq "span: ... with the HNSW index dropped and rebuilt by that run" "true" \
    "$(sql "$sdb" "SELECT counts->>'index_rebuilt' FROM kbpipe_runs ORDER BY id DESC LIMIT 1")"
  check_eq "span: ... and the HNSW index is back, no drop note left" "1|0" \
    "$(sql "$sdb" "SELECT (SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_knowledge_chunks_embedding'),
                          (SELECT count(*) FROM kbpipe_dropped_indexes)")"
  cdb=$(new_db span_clean)
  kb "$cdb" run "$tmp/span/p.yaml" -q; check_rc "span: a clean run of the large version" 0
  check_eq "span: ... ends in the same state as the resumed one" "$(state "$cdb" it-span)" \
    "$(state "$sdb" it-span)"
fi

# spanreject: see the head.  batch_rows 10: a.md (1 chunk) and b.md's first
# rows share a batch, whose flush commits a.md before it begins b.md's
# open transaction; the 35th row embedded is one of b.md's (about 60 chunks)
if [[ " $cases " == *" spanreject "* ]]; then
  if strings "$bin" | grep -q KBPIPE_FAULT; then
    sr=$tmp/spanreject
    mkdir -p "$sr/in"
    cat >"$sr/p.yaml" <<YAML
name: it-spanrej
project: it-spanrej
reject_file: $sr/rejects.jsonl
chunking:
  size: 64
  overlap: 0
load:
  batch_rows: 10
embedding:
  provider: hash
sources:
  - name: docs
    type: files
    roots: ["$sr/in"]
YAML
    echo "alpha first version" >"$sr/in/a.md"
    python3 "$top/bench/gen_line.py" "$sr/in/b.md" 2000
    echo "gamma first version" >"$sr/in/c.md"
    rdb=$(new_db spanrej)
    kb "$rdb" run "$sr/p.yaml" -q; check_rc "spanreject: the first versions load" 0
    b_before=$(state "$rdb" it-spanrej | grep -F 'b.md')
    echo "alpha second version" >"$sr/in/a.md"
    python3 "$top/bench/gen_line.py" "$sr/in/b.md" 20000   # ~60 chunks of 64 tokens
    echo "gamma second version" >"$sr/in/c.md"
    KBPIPE_FAULT=run.embed_row:35 kb "$rdb" run "$sr/p.yaml"
    check_eq "spanreject: a rejected chunk in b.md's fourth batch: the run goes on, exits 3" 3 "$rc"
    [ "$rc" = 3 ] || show
    check "spanreject: ... the message names the chunk and says why" \
      grep -qE 'b\.md#[0-9]+: fault injected at run\.embed_row; the document is left as it was \(it spans batches' "$tmp/err"
    grep -m1 'fault injected' "$tmp/err" | cut -c1-220 | sed 's/^/#   stderr: /'
    check "spanreject: ... and so does the reject file" grep -q 'b\.md#[0-9]*' "$sr/rejects.jsonl"
    check_eq "spanreject: ... b.md is as it was (its batches rolled back)" "$b_before" \
      "$(state "$rdb" it-spanrej | grep -F 'b.md')"
    check_eq "spanreject: ... a.md (in b.md's first batch) and c.md (after it) are the new versions" \
      "alpha second version|gamma second version" \
      "$(sql "$rdb" "SELECT string_agg(content, '|' ORDER BY content) FROM knowledge_chunks c
                     JOIN knowledge_sources s ON s.id = c.source_id
                     WHERE s.source_id IN ('a.md', 'c.md')")"
    check_eq "spanreject: ... the run is not left running" "0" \
      "$(sql "$rdb" "SELECT count(*) FROM kbpipe_runs WHERE status = 'running'")"
    kb "$rdb" run "$sr/p.yaml" -q; check_rc "spanreject: the next run loads b.md" 0
    cdb=$(new_db spanrej_clean)
    kb "$cdb" run "$sr/p.yaml" -q; check_rc "spanreject: a clean run of the second versions" 0
    check_eq "spanreject: ... ends in the same state as the run after the reject" \
      "$(state "$cdb" it-spanrej)" "$(state "$rdb" it-spanrej)"
  else
    note "spanreject: not a test build (no KBPIPE_FAULT): not run"
  fi
fi

# over: inputs just past the default limits are rejected, in bounded memory
if [[ " $cases " == *" over "* ]]; then
  o=$tmp/over
  mkdir -p "$o"
  python3 - "$o" "$top/bench/gen_line.py" <<'PY'
import json, subprocess, sys
o, gen_line = sys.argv[1], sys.argv[2]
mb = 1024 * 1024
def words(size):
    subprocess.run([sys.executable, gen_line, o + "/w.tmp", str(size)], check=True)
    return open(o + "/w.tmp").read().rstrip("\n")
big = words(40 * mb)
open(o + "/rows.csv", "w").write('id,title,content\nR-1,too big,"%s"\nR-2,small,"a small row"\n' % big)
def issue(number, body, rest=False):
    d = {"number": number, "title": "Issue %d" % number, "body": body, "labels": [],
         "created_at" if rest else "createdAt": "2024-01-01T00:00:00Z"}
    if rest:
        d.update({"state": "open", "user": {"login": "octo"}, "comments": 9,
                  "html_url": "https://github.com/acme/big/issues/%d" % number})
    else:
        d.update({"state": "OPEN", "author": {"login": "octo"}, "comments": [],
                  "url": "https://github.com/acme/big/issues/%d" % number})
    return json.dumps(d)
open(o + "/issues.jsonl", "w").write(issue(1, big) + "\n" + issue(2, "a small issue") + "\n")
mb1 = big[: mb]
open(o + "/rest.jsonl", "w").write(issue(1, "the first", True) + "\n" + issue(2, "a small issue", True) + "\n")
open(o + "/comments.jsonl", "w").write("".join(json.dumps(
    {"issue_url": "https://api.github.com/repos/acme/big/issues/1", "user": {"login": "octo"},
     "created_at": "2024-01-02T00:00:00Z", "body": mb1}) + "\n" for _ in range(9)))
PY
  rm -f "$o/w.tmp"
  for k in csv issue rest; do
    case $k in
      csv) src="    type: csv
    path: $o/rows.csv
    key: id"; want="rows.csv:2: row 1 is over 8388608 bytes (max_record_size)" ;;
      issue) src="    type: github_issues
    path: $o/issues.jsonl"; want="issues.jsonl:1: element 1 is" ;;
      rest) src="    type: github_issues
    path: $o/rest.jsonl
    comments: $o/comments.jsonl
    format: rest"; want="rest.jsonl:1: issue #1 with its 9 comments is" ;;
    esac
    cat >"$o/$k.yaml" <<YAML
name: it-over-$k
project: it-over-$k
embedding:
  provider: hash
sources:
  - name: big
    on_error: skip
$src
YAML
    db=$(new_db "over_$k")
    rc=0
    /usr/bin/time -v -o "$o/time" timeout -s KILL 900 "$bin" --db "dbname=$db" run "$o/$k.yaml" \
      >"$o/out" 2>"$o/err" || rc=$?
    check_eq "over $k: the input over the limit is rejected, the run goes on (exit 3)" 3 "$rc"
    check "over $k: ... with its place and the limit named ($want)" grep -qF "$want" "$o/err"
    grep -F "$want" "$o/err" | head -1 | cut -c1-200 | sed 's/^/#   stderr: /'
    check_eq "over $k: ... and the next input is loaded" 1 \
      "$(sql "$db" "SELECT count(*) FROM knowledge_sources")"
    kib=$(awk '/Maximum resident set size/ { print $NF }' "$o/time")
    note "over $k: peak RSS $((kib / 1024)) MiB ($kib KiB)"
    if ! ldd "$bin" 2>/dev/null | grep -q libasan; then
      check "over $k: peak RSS under $bound_mib MiB (measured $((kib / 1024)) MiB)" \
        test "$kib" -lt $((bound_mib * 1024))
    fi
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  done
  rm -rf "$o"
fi

for kind in $cases; do
  [ "$kind" != span ] && [ "$kind" != spanreject ] && [ "$kind" != over ] || continue
  gen "$kind"
  d=$tmp/$kind
  db=$(new_db "worst_$kind")
  rc=0
  /usr/bin/time -v -o "$d/time" timeout -s KILL 900 "$bin" --db "dbname=$db" run "$d/p.yaml" -q \
    >"$d/out" 2>"$d/err" || rc=$?
  check_eq "$kind: the run on one 8 MB input succeeds" 0 "$rc"
  [ "$rc" = 0 ] || sed -n '1,10p' "$d/err" | sed 's/^/#   stderr: /'
  kib=$(awk '/Maximum resident set size/ { print $NF }' "$d/time")
  secs=$(awk -F': ' '/Elapsed/ { print $2 }' "$d/time")
  note "$kind: peak RSS $((kib / 1024)) MiB ($kib KiB), $secs elapsed"
  if ldd "$bin" 2>/dev/null | grep -q libasan; then
    # ASan's shadow memory and quarantine are not kbpipe's footprint
    note "$kind: under AddressSanitizer: the bound is checked by the release build"
  else
    check "$kind: peak RSS under $bound_mib MiB (measured $((kib / 1024)) MiB)" \
      test "$kib" -lt $((bound_mib * 1024))
  fi

  # what was loaded
  check_eq "$kind: one source, written once" "1" "$(sql "$db" "SELECT count(*) FROM knowledge_sources")"
  sql "$db" "SELECT json_agg(content ORDER BY chunk_index) FROM knowledge_chunks" >"$d/chunks.json"
  IFS='|' read -r n_chunks n_idx max_tok sum_tok < <(sql "$db" "
    SELECT count(*), count(DISTINCT chunk_index) FILTER (WHERE chunk_index < (SELECT count(*) FROM knowledge_chunks)),
           max(token_count), sum(token_count) FROM knowledge_chunks")
  note "$kind: $n_chunks chunks, $sum_tok tokens"
  check "$kind: thousands of chunks (more than one batch of 1,000): $n_chunks" test "${n_chunks:-0}" -gt 1000
  check_eq "$kind: chunk_index is 0..n-1" "$n_chunks" "$n_idx"
  check "$kind: no chunk over 512 tokens (max $max_tok)" test "${max_tok:-999}" -le 512
  check_eq "$kind: the chunks in order are the input's text (blanks aside)" "ok" \
    "$(python3 - "$d/chunks.json" "$d/text" <<'PY'
import json, sys
chunks = json.load(open(sys.argv[1]))
got = "".join("".join(c.split()) for c in chunks)
want = "".join(open(sys.argv[2]).read().split())
print("ok" if got == want else "differ: %d vs %d non-blank characters" % (len(got), len(want)))
PY
)"
  if [ "$has_ref" = 1 ]; then
    check_eq "$kind: the stored token counts add up to tiktoken's count of the chunk texts" \
      "$(ref_sum "$d/chunks.json")" "$sum_tok"
  fi
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$d"
done
finish
