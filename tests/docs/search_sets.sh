#!/usr/bin/env bash
# tests/docs/search_sets.sh - the search benchmark's two labelled sets
# (bench/search/questions.tsv, the tuning set; heldout.tsv, the held-out
# set) as bench/search/README.md and docs/search.md describe them:
#   1. each is QUESTION<TAB>EXPECTED a line, and every EXPECTED names (or
#      matches, as a glob) a Markdown file of bench/search/corpus;
#   2. the held-out set has the 60 questions the docs give, covers all 16
#      files of the corpus, each at least twice, and repeats no question of
#      the tuning set word for word (a paraphrase is the writer's rule to
#      keep: no script can tell one);
#   3. the corpus loaded at 512 and 128 tokens a chunk (bench/search/corpus.yaml,
#      as bench/search.sh (a) loads it) and scored by `kbpipe eval` gives
#      every figure of docs/search.md's two quality tables (recall@1,
#      recall@5, MRR@5 per chunk size and mode), and the chunk counts it
#      gives: a change of ranking that moves a figure must move the docs.
#   KBPIPE_BIN=build/kbpipe-test bash tests/docs/search_sets.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

corpus=bench/search/corpus
tuning=bench/search/questions.tsv
heldout=bench/search/heldout.tsv
(cd "$corpus" && find . -name '*.md' | sed 's|^\./||' | sort) >"$tmp/files"

echo "# 1. the format and the labels"
for set in "$tuning" "$heldout"; do
  check_eq "$set: every question line has one tab and two fields" "" \
    "$(awk -F'\t' '!/^#/ && !/^[[:space:]]*$/ && (NF != 2 || $1 == "" || $2 == "") { print FILENAME ":" FNR }' "$set")"
  bad=$(python3 - "$set" "$tmp/files" <<'EOF'
import fnmatch, sys
files = open(sys.argv[2]).read().split()
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if line.startswith("#") or not line.strip():
        continue
    for e in line.rstrip("\n").split("\t")[1:]:
        if not any(e == f or fnmatch.fnmatchcase(f, e) for f in files):
            print("%s:%d %s" % (sys.argv[1], n, e))
EOF
)
  check_eq "  ... and every label names a file of $corpus" "" "$bad"
done

echo "# 2. the held-out set"
check_eq "$heldout has 60 questions" 60 "$(grep -v '^#' "$heldout" | grep -vc '^[[:space:]]*$')"
check_eq "$tuning has 48 questions" 48 "$(grep -v '^#' "$tuning" | grep -vc '^[[:space:]]*$')"
check_eq "the corpus has 16 Markdown files" 16 "$(wc -l <"$tmp/files")"
grep -v '^#' "$heldout" | cut -f2 | sort | uniq -c | awk '$1 >= 2 { print $2 }' >"$tmp/covered"
check_same "the held-out set asks about every file at least twice" "$tmp/files" "$tmp/covered"
lower() { grep -v '^#' "$1" | cut -f1 | tr '[:upper:]' '[:lower:]' | sort -u; }
check_eq "no held-out question is a tuning question word for word" "" \
  "$(comm -12 <(lower "$tuning") <(lower "$heldout"))"

echo "# 3. docs/search.md's tables are what kbpipe eval gives"
db=$(new_db searchsets)
for chunk in 512 128; do
  BENCH_CHUNK=$chunk BENCH_PROJECT=bench-$chunk kb "$db" -q run bench/search/corpus.yaml
  check_rc "the corpus loads at $chunk tokens a chunk" 0
  for set in questions heldout; do
    kb "$db" eval "bench/search/$set.tsv" --project "bench-$chunk" -k 5 --json
    check_rc "  ... kbpipe eval scores $set.tsv" 0
    cp "$tmp/out" "$tmp/eval-$set-$chunk.json"
  done
done
n512=$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id
                  WHERE p.name = 'bench-512'")
n128=$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN projects p ON p.id = c.project_id
                  WHERE p.name = 'bench-128'")
check_eq "chunks at 512 and 128 tokens" "79 335" "$n512 $n128"
check "  ... as docs/search.md says" grep -q "79 chunks at 512 tokens, 335 at$" docs/search.md
for set in questions heldout; do
  # the table under the line "Tuning set (...)" / "Held-out set (...)"
  diff_out=$(python3 - docs/search.md "$set" "$tmp" <<'EOF'
import json, re, sys
doc, name, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
head = {"questions": "Tuning set (bench/search/questions.tsv",
        "heldout": "Held-out set (bench/search/heldout.tsv"}[name]
lines = open(doc, encoding="utf-8").read().split("\n")
at = next(i for i, l in enumerate(lines) if l.startswith(head))
rows, chunk = {}, None
for l in lines[at + 1:]:
    if rows and not l.startswith("|"):
        break
    m = re.match(r"\| *([^|]*?) *\| *(vector|text|hybrid) *\|(.*)\|$", l)
    if not m:
        continue
    if m.group(1):
        chunk = m.group(1).split()[0]
    rows[(chunk, m.group(2))] = [c.strip().strip("*") for c in m.group(3).split("|")]
got = {}
for chunk in ("512", "128"):
    r = json.load(open("%s/eval-%s-%s.json" % (tmp, name, chunk)))
    for m in r["modes"]:
        got[(chunk, m["mode"])] = ["%.3f" % m[k] for k in ("recall_at_1", "recall_at_k", "mrr_at_k")]
for key in sorted(set(rows) | set(got)):
    if rows.get(key) != got.get(key):
        print("%s %s: docs %s, eval %s" % (key[0], key[1], rows.get(key), got.get(key)))
EOF
)
  check_eq "docs/search.md's $set.tsv table: the 6 rows kbpipe eval gives" "" "$diff_out"
done
finish
