#!/usr/bin/env bash
# tests/integration/run_newwork.sh - no server work for what the run knows
# is new (issue 14; docs/loading.md, "No work for what the run knows is
# new"), counted with statement-level triggers (they fire once per DELETE
# statement, even one that deletes no row):
#   1. a first import sends no DELETE on knowledge_chunks, in any batch;
#   2. a run that edits one stored file and adds one sends DELETEs that
#      remove exactly the edited file's old chunks, and both end stored;
#   3. in an empty store, rows of new sources are not looked up: a text
#      repeated in a later batch of a first import is computed, not reused;
#   4. in a store that holds rows, a renamed file (a new source) reuses
#      every stored vector of its text;
#   5. the rank table is read only when a document needs chunking: an
#      unchanged re-run succeeds without it; a run with a changed file and
#      no table (or a broken one) fails as a whole (exit 2, naming the
#      table), rejects no document and stores nothing of it.
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_newwork.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/docs"
for i in 1 2 3 4 5 6; do
  printf '# Page %s\n\nThe text of page %s, in two paragraphs.\n\nIts second paragraph, %s.\n' \
    "$i" "$i" "$i" >"$tmp/docs/p$i.md"
done
cat >"$tmp/nw.yaml" <<YAML
name: it-newwork
project: it-newwork
chunking:
  splitter: markdown
  size: 12
  overlap: 0
embedding:
  provider: hash
load:
  batch_rows: 2
sources:
  - name: docs
    type: files
    roots: ["$tmp/docs"]
YAML
triggers() {   # DB: count DELETE statements on knowledge_chunks in kb_deletes
  sql "$1" "CREATE TABLE kb_deletes (n int);
            CREATE FUNCTION kb_note_delete() RETURNS trigger LANGUAGE plpgsql AS
              \$\$BEGIN INSERT INTO kb_deletes VALUES (1); RETURN NULL; END\$\$;
            CREATE TRIGGER kb_note_delete AFTER DELETE ON knowledge_chunks
              FOR EACH STATEMENT EXECUTE FUNCTION kb_note_delete()" >/dev/null
}
deletes() { sql "$1" "SELECT count(*) FROM kb_deletes"; }

echo "# 1. a first import"
db=$(new_db newwork)
triggers "$db"
kb "$db" run "$tmp/nw.yaml" -q --report "$tmp/r1.json"
check_rc "the first import succeeds" 0
check "... in several batches" test "$(jget "$tmp/r1.json" .load.batches)" -ge 3
check_eq "... and sends no DELETE on knowledge_chunks" 0 "$(deletes "$db")"
check_eq "... every page stored" 6 "$(sql "$db" "SELECT count(*) FROM knowledge_sources")"

echo "# 2. one stored file edited, one file added"
old=$(sql "$db" "SELECT string_agg(c.id::text, ',' ORDER BY c.id) FROM knowledge_chunks c
                 JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'p2.md'")
printf '# Page 2\n\nThe edited text of page 2.\n' >"$tmp/docs/p2.md"
printf '# Page 7\n\nA new page.\n' >"$tmp/docs/p7.md"
kb "$db" run "$tmp/nw.yaml" -q --report "$tmp/r2.json"
check_rc "the run succeeds" 0
check "... sends a DELETE" test "$(deletes "$db")" -ge 1
check_eq "... which removed exactly the edited file's old chunks" "$(echo "$old" | tr ',' '\n' | wc -l)" \
  "$(jget "$tmp/r2.json" .load.chunks_deleted)"
check_eq "... none of them is left" 0 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks WHERE id::text = ANY(string_to_array('$old', ','))")"
check_eq "... p2.md holds its new text only" "# Page 2 The edited text of page 2." \
  "$(sql "$db" "SELECT string_agg(content, ' ' ORDER BY chunk_index) FROM knowledge_chunks c
                JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'p2.md'" | tr '\n' ' ' | sed 's/  */ /g; s/ $//')"
check_eq "... p7.md stored" 1 "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s
                                        ON s.id = c.source_id WHERE s.source_id = 'p7.md'")"

echo "# 3. an empty store: new sources' rows are not looked up"
mkdir -p "$tmp/rep"
printf '# Same\n\nA paragraph that two files share word for word.\n' >"$tmp/rep/a.md"
for f in b c d; do printf '# Own %s\n\nThe own text of file %s.\n' "$f" "$f" >"$tmp/rep/$f.md"; done
cp "$tmp/rep/a.md" "$tmp/rep/e.md"
sed "s|$tmp/docs|$tmp/rep|; s/batch_rows: 2/batch_rows: 1/" "$tmp/nw.yaml" >"$tmp/rep.yaml"
db3=$(new_db newwork_rep)
kb "$db3" run "$tmp/rep.yaml" -q --report "$tmp/r3.json"
check_rc "the first import of five files in one-row batches succeeds" 0
check_eq "... computes every vector, the repeated text in e.md too" \
  "$(sql "$db3" "SELECT count(*) FROM knowledge_chunks") 0" \
  "$(computed "$tmp/r3.json") $(jget "$tmp/r3.json" '[.sources[].vectors_reused] | add')"

echo "# 4. a store with rows: a renamed file reuses its vectors"
mv "$tmp/docs/p3.md" "$tmp/docs/p3-renamed.md"
kb "$db" run "$tmp/nw.yaml" -q --report "$tmp/r4.json"
check_rc "the run succeeds" 0
check_eq "... the renamed file's chunks are all reused, none computed" \
  "$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s
                ON s.id = c.source_id WHERE s.source_id = 'p3.md'") 0" \
  "$(jget "$tmp/r4.json" '[.sources[].vectors_reused] | add') $(computed "$tmp/r4.json")"
echo "# 5. the rank table is read only when a document needs chunking"
rows "$db" >"$tmp/rows.before"
KBPIPE_TOKENIZER_FILE=$tmp/no-such-table.json kb "$db" run "$tmp/nw.yaml" -q
check_rc "an unchanged re-run with no rank table succeeds" 0
check_same "... and writes nothing" "$tmp/rows.before" <(rows "$db")
printf '# Page 8\n\nOne more page.\n' >"$tmp/docs/p8.md"
KBPIPE_TOKENIZER_FILE=$tmp/no-such-table.json kb "$db" run "$tmp/nw.yaml" -q
check_rc "a run that must chunk a file, with no rank table, exits 2" 2
check "... naming the table" grep -q "no-such-table.json" "$tmp/err"
check "... rejecting no document" sh -c "! grep -q 'skipped' '$tmp/err'"
check_eq "... p8.md not stored" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'p8.md'")"
printf '{"pat_str": "x", "bpe_ranks": "! 0 YQ=="}' >"$tmp/bad-table.json"
sed 's/^  - name: docs$/  - name: docs\n    on_error: skip/' "$tmp/nw.yaml" >"$tmp/nw-skip.yaml"
KBPIPE_TOKENIZER_FILE=$tmp/bad-table.json kb "$db" run "$tmp/nw-skip.yaml" -q
check_rc "a broken rank table fails the run (exit 2) even with on_error: skip" 2
check "... naming the table" grep -q "bad-table.json" "$tmp/err"
check_eq "... p8.md not stored" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'p8.md'")"
kb "$db" run "$tmp/nw.yaml" -q
check_rc "with the table back, the run succeeds" 0
check_eq "... and stores p8.md" 1 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'p8.md'")"
finish
