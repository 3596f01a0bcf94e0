#!/usr/bin/env bash
# tests/integration/catalog.sh - the catalogue commands of issue 16 against
# the real server: `kbpipe delete` (one transaction: a refusal, a missing
# --yes off a terminal or a fault leaves everything; --dry-run writes
# nothing; what it prints is what went), `kbpipe sources`, `kbpipe show` and
# `kbpipe export` (JSON Lines, and CSV read back with python's csv module).
#   KBPIPE_BIN=build/kbpipe-test bash tests/integration/catalog.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/docs" "$tmp/notes"
printf '# Alpha\n\nThe alpha page.\n\n## Detail\n\nMore about alpha.\n' >"$tmp/docs/a.md"
printf '# Beta\n\nThe beta page.\n' >"$tmp/docs/b.md"
printf '# Gamma\n\nThe gamma note.\n' >"$tmp/notes/g.md"
one_learning_csv "$tmp/l.csv"
pipe() {   # pipe NAME ROOT [extra source yaml]
  { hash_pipeline "$1" cat; echo "sources:"; files_source pages "$2"
    [ -z "${3:-}" ] || echo "$3"; } >"$tmp/$1.yaml"
}
pipe p-docs "$tmp/docs" "$(learnings_source notes "$tmp/l.csv")"
pipe p-notes "$tmp/notes"

db=$(new_db catalog)
kb "$db" run "$tmp/p-docs.yaml"; check_rc "the docs pipeline loads" 0
kb "$db" run "$tmp/p-notes.yaml"; check_rc "the notes pipeline loads" 0
n_src() { sql "$db" "SELECT count(*) FROM knowledge_sources"; }
n_chk() { sql "$db" "SELECT count(*) FROM knowledge_chunks"; }
n_lrn() { sql "$db" "SELECT count(*) FROM learnings"; }
before=$(state "$db" cat)
check "there are sources, chunks and a learning to delete" \
  test "$(n_src)" -ge 4 -a "$(n_chk)" -ge 3 -a "$(n_lrn)" = 1

# --- sources ------------------------------------------------------------------
kb "$db" sources --project cat
check_rc "sources lists a project" 0
check_eq "... with the columns of the docs" "id type source_id chunks tokens updated pipeline" \
  "$(head -n 1 "$tmp/out" | tr -s ' ')"
check_eq "... one line per source (and two header lines)" $(($(n_src) + 2)) "$(wc -l <"$tmp/out")"
want=$(sql "$db" "SELECT s.source_id || ' ' || count(c.id) || ' ' || coalesce(sum(c.token_count), 0) || ' ' || s.pipeline
                  FROM knowledge_sources s LEFT JOIN knowledge_chunks c ON c.source_id = s.id
                  WHERE s.source_id = 'a.md' GROUP BY s.id")
got=$(awk '$3 == "a.md" { print $3, $4, $5, $8 }' "$tmp/out")
check_eq "... a.md's line holds its chunks, tokens and pipeline" "$want" "$got"
kb "$db" sources --project cat --pipeline p-notes --json
check_rc "sources --pipeline --json" 0
check_eq "... only that pipeline's source" "g.md" "$(jq -r '.[].source_id' "$tmp/out" 2>/dev/null)"
check_eq "... with numbers as numbers" "number number" \
  "$(jq -r '.[0] | "\(.chunks | type) \(.tokens | type)"' "$tmp/out" 2>/dev/null)"
kb "$db" sources --project cat --path '?.md' --json
check_eq "sources --path GLOB filters source_ids" "a.md b.md g.md" \
  "$(jq -r '[.[].source_id] | sort | join(" ")' "$tmp/out" 2>/dev/null)"
kb "$db" sources --project nope
check_rc "sources of an unknown project fails" 1
check "... naming it" grep -q "sources: no project named 'nope'" "$tmp/err"

kb "$db" sources
check_rc "sources without --project is a usage error" 2
check "... saying what it needs" grep -q "sources needs --project NAME" "$tmp/err"
kb "$db" show
check_rc "show without a SOURCE is a usage error" 2
check "... saying what it needs" grep -q "show needs exactly one SOURCE" "$tmp/err"

# --- show -------------------------------------------------------------------------
kb "$db" show a.md
check_rc "show a.md" 0
n_a=$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'a.md'")
check "... a.md has chunks" test "$n_a" -ge 1
check "... the chunk table has the columns of the docs" \
  grep -qE '^chunk +tokens +heading +content' "$tmp/out"
check_eq "... one line per chunk" "$n_a" "$(sed -n '/^chunk /,$p' "$tmp/out" | tail -n +3 | wc -l)"
kb "$db" show a.md --json
want=$(sql "$db" "SELECT string_agg(c.chunk_index || ':' || c.token_count || ':' || coalesce(c.metadata->>'heading_path', ''), ',' ORDER BY c.chunk_index)
                  FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'a.md'")
check_eq "show --json: each chunk's index, tokens and heading path" "$want" \
  "$(jq -r '[.chunks[] | "\(.chunk):\(.tokens):\(.heading)"] | join(",")' "$tmp/out" 2>/dev/null)"
check_eq "... with each chunk's whole content" "$(sql "$db" "SELECT string_agg(c.content, '|' ORDER BY c.chunk_index) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'a.md'")" \
  "$(jq -r '[.chunks[].content] | join("|")' "$tmp/out" 2>/dev/null)"
check_eq "... and the source" "a.md cat" "$(jq -r '.source | "\(.source_id) \(.project)"' "$tmp/out" 2>/dev/null)"
scans() { table_stat "$db" "$1" "seq_scan + coalesce(idx_scan, 0)"; }
s0=$(scans knowledge_chunks)
kb "$db" show a.md --json
check_eq "show --json reads knowledge_chunks once (the table form's query is not run)" \
  $((s0 + 1)) "$(scans knowledge_chunks)"
s0=$(scans knowledge_chunks)
kb "$db" show a.md
check_eq "... the table form once too" $((s0 + 1)) "$(scans knowledge_chunks)"
# the source found by its id through the primary key: with sequential scans
# off, knowledge_sources is never scanned whole (s.id::text = $1 was)
id_a=$(sql "$db" "SELECT id FROM knowledge_sources WHERE source_id = 'a.md'")
seq0=$(table_stat "$db" knowledge_sources seq_scan)
PGOPTIONS="-c enable_seqscan=off" kb "$db" show "$id_a"
check_rc "show UUID" 0
check "... shows that source" grep -q "a.md" "$tmp/out"
check_eq "... without a sequential scan of knowledge_sources" "$seq0" \
  "$(table_stat "$db" knowledge_sources seq_scan)"
PGOPTIONS="-c enable_seqscan=off" kb "$db" show "$(tr a-f A-F <<<"$id_a")" --json
check_eq "... an id in capitals finds it too" "a.md" "$(jq -r .source.source_id "$tmp/out" 2>/dev/null)"
kb "$db" show 0123456789abcdef0123456789abcdef----
check_rc "show of 36 hex digits and dashes that are no uuid: no such source" 1
check "... says no source, not a uuid syntax error" grep -q "show: no source with id or source_id" "$tmp/err"
db2_proj=$(sql "$db" "INSERT INTO projects (name) VALUES ('other') RETURNING 'x'")
sql "$db" "INSERT INTO knowledge_sources (project_id, source_type, source_id) SELECT id, 'files', 'a.md' FROM projects WHERE name = 'other'" >/dev/null
kb "$db" show a.md
check_rc "show of a source_id in two projects fails" 1
check "... asking for --project" grep -q "'a.md' names 2 sources .*give --project NAME" "$tmp/err"
kb "$db" show a.md --project cat --json
check_eq "... and --project picks one" "cat" "$(jq -r '.source.project' "$tmp/out" 2>/dev/null)"
kb "$db" show nothing.md
check_rc "show of an unknown source fails" 1
check "... naming it" grep -q "show: no source with id or source_id 'nothing.md'" "$tmp/err"
sql "$db" "DELETE FROM projects WHERE name = 'other'" >/dev/null
: "$db2_proj"

# --- export -----------------------------------------------------------------------
kb "$db" export --project cat -o "$tmp/x.jsonl"
check_rc "export -o FILE" 0
want=$(sql "$db" "SELECT s.source_type || '|' || s.source_id || '|' || coalesce(c.chunk_index::text, '-') || '|' || coalesce(c.token_count::text, '-') || '|' || coalesce(c.content_hash, '-')
                  FROM knowledge_sources s JOIN projects p ON p.id = s.project_id LEFT JOIN knowledge_chunks c ON c.source_id = s.id
                  WHERE p.name = 'cat' ORDER BY 1")
got=$(jq -r '"\(.source_type)|\(.source_id)|\(.chunk_index // "-")|\(.token_count // "-")|\(.content_hash // "-")"' "$tmp/x.jsonl" | LC_ALL=C sort)
want=$(LC_ALL=C sort <<<"$want")
check_eq "... one line per chunk, matching the rows" "$want" "$got"
got=$(jq -r 'select(.content != null) | .content' "$tmp/x.jsonl" | sha256sum)
want=$(sql "$db" "SELECT c.content FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id ORDER BY s.source_type, s.source_id, c.chunk_index" | sha256sum)
check_eq "... the contents round-trip byte for byte" "$want" "$got"
check_eq "... without --vectors, no embedding" "null" "$(jq -r '.embedding' "$tmp/x.jsonl" | sort -u)"
kb "$db" export --project cat --vectors
check_rc "export --vectors to stdout" 0
want=$(sql "$db" "SELECT c.embedding::text FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.source_id = 'a.md' ORDER BY c.chunk_index LIMIT 1" | tr -d ' ')
got=$(jq -c 'select(.source_id == "a.md" and .chunk_index == 0) | .embedding' "$tmp/out")
check "... the vector matches the stored one" python3 -c "
import json, sys
a = json.loads(sys.argv[1]); b = json.loads(sys.argv[2])
sys.exit(not (len(a) == len(b) == 1536 and all(abs(x - y) < 1e-6 for x, y in zip(a, b))))" "$want" "$got"
kb "$db" export --project nope
check_rc "export of an unknown project fails" 1
check "... naming it" grep -q "export: no project named 'nope'" "$tmp/err"
kb "$db" export --project cat -o /nonexistent/dir/x.jsonl
check_rc "export to an unwritable file fails" 1
check "... naming the file" grep -q "/nonexistent/dir/x.jsonl: cannot write" "$tmp/err"

# --- export --format csv --------------------------------------------------------
# tricky content inserted by SQL in a project of its own (removed after):
# commas, quotes, LF, CRLF, a lone CR, a tab, non-ASCII, '' beside NULL
sql "$db" "INSERT INTO projects (name) VALUES ('csvp')" >/dev/null
sql "$db" "INSERT INTO knowledge_sources (project_id, source_type, source_id, title, url, pipeline, doc_hash, metadata)
           SELECT id, 'files', 'dir, \"q\"/tricky.md', 'Tricky, \"quoted\" title', NULL, '', 'h1',
                  '{\"note\": \"a, \\\"b\\\"\", \"ü\": [1, 2]}' FROM projects WHERE name = 'csvp'" >/dev/null
sql "$db" "INSERT INTO knowledge_sources (project_id, source_type, source_id, title)
           SELECT id, 'files', 'empty-source.md', 'no chunks' FROM projects WHERE name = 'csvp'" >/dev/null
sql "$db" "INSERT INTO knowledge_chunks (source_id, project_id, chunk_index, content, content_hash, token_count, metadata, embedding)
           SELECT s.id, s.project_id, i, c, encode(digest(c, 'sha256'), 'hex'), t, m::jsonb,
                  CASE WHEN i = 0 THEN array_fill(0.25, ARRAY[1536])::vector END
           FROM knowledge_sources s,
                (VALUES (0, E'a, b \"q\" \"\"\nline two\r\nline three\rafter CR\tand a tab: é ü 日本 ✓', 7, '{\"heading_path\": \"A, \\\"B\\\"\"}'),
                        (1, '', NULL, '{}'),
                        (2, E' leading space, trailing \"', 3, '{}')) v(i, c, t, m)
           WHERE s.source_id = 'dir, \"q\"/tricky.md'" >/dev/null
cat >"$tmp/csvcmp.py" <<'PY'
# csvcmp.py CSV DB_JSON HAS_VECTORS: the CSV parsed with python's csv module
# equals the database's rows (NULL: an empty field; '' comes quoted)
import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    got = list(csv.reader(f))
want = json.loads(sys.argv[2]) or []
cols = ["source_type", "source_id", "title", "url", "pipeline", "doc_hash", "source_metadata",
        "chunk_index", "token_count", "content_hash", "content", "metadata", "embedding"]
ok = True
if got[0] != cols:
    print("# header:", got[0]); ok = False
if len(got) - 1 != len(want):
    print("# %d records, %d rows" % (len(got) - 1, len(want))); ok = False
for g, w in zip(got[1:], want):
    if sys.argv[3] == "0":
        w[12] = None
    w = ["" if x is None else x for x in w]
    if g != w:
        print("# got ", g, "\n# want", w); ok = False
raw = open(sys.argv[1], 'rb').read()
if not raw.endswith(b"\r\n") or raw.count(b"\r\n") < len(got):
    print("# records do not end in CRLF"); ok = False
sys.exit(0 if ok else 1)
PY
# the rows as the database has them, in the export's order, each field as text
db_rows() {
  sql "$db" "SELECT json_agg(json_build_array(s.source_type, s.source_id, s.title, s.url, s.pipeline,
                 s.doc_hash, s.metadata::text, c.chunk_index::text, c.token_count::text, c.content_hash,
                 c.content, c.metadata::text, c.embedding::text) ORDER BY s.source_type, s.source_id, c.chunk_index)
             FROM knowledge_sources s JOIN projects p ON p.id = s.project_id
             LEFT JOIN knowledge_chunks c ON c.source_id = s.id WHERE p.name = '$1'"
}
kb "$db" export --project csvp --format csv --vectors -o "$tmp/x.csv"
check_rc "export --format csv --vectors -o FILE" 0
check "... python's csv module reads back every field of the tricky rows, NULL as empty" \
  python3 "$tmp/csvcmp.py" "$tmp/x.csv" "$(db_rows csvp)" 1
check_eq "... one header line and a record per chunk (a source without chunks: one)" 5 \
  "$(python3 -c 'import csv,sys; print(len(list(csv.reader(open(sys.argv[1], newline="")))))' "$tmp/x.csv")"
check "... the empty content is \"\", the NULL token_count nothing" \
  grep -qE ',1,,[0-9a-f]{64},"",\{\},'$'\r''$' "$tmp/x.csv"
check "... and the empty pipeline is quoted (\"\") where the NULL url is not" \
  grep -qF ',"Tricky, ""quoted"" title",,"",h1,' "$tmp/x.csv"
check "... the vector in pgvector's text form, quoted" grep -qF ',"[0.25,0.25,' "$tmp/x.csv"
check "... fields without special characters are not quoted" \
  grep -q '^files,empty-source.md,no chunks,,,,{},,,,,,'$'\r''$' "$tmp/x.csv"
kb "$db" export --project cat --format csv
check_rc "export --format csv of a loaded project, to stdout" 0
check "... matches its rows, without vectors" python3 "$tmp/csvcmp.py" "$tmp/out" "$(db_rows cat)" 0
sql "$db" "INSERT INTO projects (name) VALUES ('csv-empty')" >/dev/null
kb "$db" export --project csv-empty --format csv
check_eq "export --format csv of an empty project: the header line only" \
  "source_type,source_id,title,url,pipeline,doc_hash,source_metadata,chunk_index,token_count,content_hash,content,metadata,embedding"$'\r' \
  "$(cat "$tmp/out")"
kb "$db" export --project cat --format xml
check_rc "an unknown --format is a usage error" 2
check "... naming the formats" grep -q "format 'xml' is not a format; give jsonl or csv" "$tmp/err"
sql "$db" "DELETE FROM projects WHERE name IN ('csvp', 'csv-empty')" >/dev/null

# --- delete: refusals leave everything ---------------------------------------
kb "$db" delete --project cat --pipeline p-docs </dev/null
check_rc "delete off a terminal without --yes is refused" 2
check "... saying to add --yes" grep -q "stdin is not a terminal to ask; add --yes" "$tmp/err"
check_eq "... and nothing is removed" "$before" "$(state "$db" cat)"

kb "$db" delete --project cat --pipeline p-docs --dry-run
check_rc "delete --dry-run succeeds" 0
want_src=$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE pipeline = 'p-docs'")
want_chk=$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.pipeline = 'p-docs'")
check_eq "... prints what it would delete" \
  "would delete $want_src sources, $want_chk chunks, 1 learnings from project 'cat'" "$(tail -n 1 "$tmp/out")"
check "... listing a.md" grep -q " a.md " "$tmp/out"
check_eq "... and removes nothing" "$before" "$(state "$db" cat)"

KBPIPE_FAULT=delete.commit kb "$db" delete --project cat --pipeline p-docs --yes
check_rc "a fault before the commit fails the delete" 1
check "... at the fault point" grep -q "fault point delete.commit; nothing was deleted" "$tmp/err"
check_eq "... and the transaction leaves everything" "$before" "$(state "$db" cat)"

kb "$db" delete --project cat --source no-such.md --yes
check_rc "an unknown source is an error" 1
check "... naming it and the listing command" \
  grep -q "no source with id or source_id 'no-such.md' in project 'cat'; 'kbpipe sources --project cat' lists them" "$tmp/err"
kb "$db" delete --project nope --all --yes
check_rc "an unknown project is an error" 1
check "... naming it" grep -q "delete: no project named 'nope'" "$tmp/err"
kb "$db" delete --project cat --all --pipeline p-docs --yes
check_rc "two selectors are a usage error" 2

if script -qec true /dev/null >/dev/null 2>&1; then
  # a terminal: `script` gives kbpipe a pty; the answer comes on its stdin
  printf 'n\n' | script -qec "$bin --db dbname=$db delete --project cat --source b.md" /dev/null >"$tmp/tty" 2>&1
  check "on a terminal it asks" grep -q "delete 1 source, 1 chunks, 0 learnings from project 'cat'? \[y/N\]" "$tmp/tty"
  check_eq "... and a 'n' removes nothing" "$before" "$(state "$db" cat)"
  printf 'y\n' | script -qec "$bin --db dbname=$db delete --project cat --source b.md" /dev/null >"$tmp/tty" 2>&1
  check "... a 'y' deletes" grep -q "deleted 1 source, 1 chunks, 0 learnings from project 'cat'" "$tmp/tty"
  check_eq "... that one source" 0 "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE source_id = 'b.md'")"
  before=$(state "$db" cat)
else
  note "no script(1): the terminal prompt is not tested"
fi

# --- delete: a pipeline, with its chunks and learnings -----------------------
# the marks an API source keeps between runs (kbpipe_source_state): the
# pipeline's, its shards', a pipeline whose name only starts alike, another's
mark() { sql "$db" "INSERT INTO kbpipe_source_state (project_id, pipeline, source_name, key, value)
                    SELECT id, '$1', 'issues', 'since acme/api', '2024-01-01T00:00:00Z'
                    FROM projects WHERE name = 'cat'" >/dev/null; }
mark p-docs; mark 'p-docs#1/2'; mark p-docs-x; mark p-notes
marks_left() { sql "$db" "SELECT coalesce(string_agg(pipeline, ',' ORDER BY pipeline), '')
                          FROM kbpipe_source_state"; }
kb "$db" delete --project cat --pipeline p-docs --dry-run
check_eq "delete --dry-run keeps the pipeline's marks" "p-docs,p-docs#1/2,p-docs-x,p-notes" \
  "$(marks_left)"
src0=$(n_src); chk0=$(n_chk)
want_src=$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE pipeline = 'p-docs'")
want_chk=$(sql "$db" "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id WHERE s.pipeline = 'p-docs'")
kb "$db" delete --project cat --pipeline p-docs --yes
check_rc "delete --pipeline --yes succeeds" 0
check_eq "... prints what it deleted" \
  "deleted $want_src sources, $want_chk chunks, 1 learnings from project 'cat'" "$(tail -n 1 "$tmp/out")"
check_eq "... the sources are gone" $((src0 - want_src)) "$(n_src)"
check_eq "... their chunks too" $((chk0 - want_chk)) "$(n_chk)"
check_eq "... and the learning loaded from the CSV" 0 "$(n_lrn)"
check_eq "... the other pipeline's sources stay" 1 \
  "$(sql "$db" "SELECT count(*) FROM knowledge_sources WHERE pipeline = 'p-notes'")"
check_eq "... its marks and its shards' go, other pipelines' stay" "p-docs-x,p-notes" \
  "$(marks_left)"
check "... and it says so" grep -q "deleted 2 source mark(s) (kbpipe_source_state) of pipeline p-docs" \
  "$tmp/err"

# the next run of the pipeline loads everything again
kb "$db" run "$tmp/p-docs.yaml"; check_rc "a re-run after the delete succeeds" 0
check_eq "... and reloads the learning" 1 "$(n_lrn)"

# --- delete --all by uuid-free selector --------------------------------------
id=$(sql "$db" "SELECT id FROM knowledge_sources WHERE source_id = 'g.md'")
seq0=$(table_stat "$db" knowledge_sources seq_scan)
PGOPTIONS="-c enable_seqscan=off" kb "$db" delete --project cat --source "$id" --yes
check_rc "delete --source UUID succeeds" 0
check "... listing the source" grep -q "$id" "$tmp/out"
check_eq "... finding it by the primary key (no sequential scan of knowledge_sources)" "$seq0" \
  "$(table_stat "$db" knowledge_sources seq_scan)"
kb "$db" delete --project cat --all --yes
check_rc "delete --all succeeds" 0
check_eq "... and the project holds no source" 0 "$(n_src)"
check_eq "... nor any mark" "" "$(marks_left)"
kb "$db" delete --project cat --all --yes
check_rc "delete --all on an empty project is not an error" 0
check_eq "... and says so" "deleted 0 sources, 0 chunks, 0 learnings from project 'cat'" "$(cat "$tmp/out")"

finish
