# tests/integration/lib.sh - shared helpers of the shell tests of `kbpipe run`
# (run_e2e.sh, run_kill.sh).  Source it; it:
#   * cds to the checkout, picks the binary ($KBPIPE_BIN, else bin/kbpipe) and
#     the local cluster (PGHOST/PGUSER, else scripts/db.sh);
#   * makes a temp folder $tmp and removes it, every database made with
#     new_db and every background process started with bg on exit;
#   * counts checks and ends with "N passed, N failed" (finish).
# Every database is kbpipe_it_<name>_<pid>, created with `kbpipe migrate up`
# (which creates the extensions uuid-ossp, pgcrypto and vector).
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top" || exit 1
bin=${KBPIPE_BIN:-$top/bin/kbpipe}
[ -x "$bin" ] || { echo "lib.sh: no kbpipe binary at $bin; run make bin/kbpipe" >&2; exit 1; }
export PGHOST=${PGHOST:-$(scripts/db.sh dir)} PGUSER=${PGUSER:-$(scripts/db.sh user)}
export PGOPTIONS="-c client_min_messages=warning"
# the connection is always given with --db; nothing else may choose it
unset DATABASE_URL PGDATABASE KBPIPE_DB
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kbpipe-it.XXXXXX")
chmod 755 "$tmp"
n_pass=0
n_fail=0
_bg=()
KB_TIMEOUT=${KB_TIMEOUT:-150}     # no single kbpipe call may hang a test run

_cleanup() {
  local p
  for p in "${_bg[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${_bg[@]}"; do wait "$p" 2>/dev/null; done
  # every database new_db made (it may run in a command substitution, so
  # they are found by name: kbpipe_it_<name>_<this shell's pid>)
  local d
  for d in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database
                                          WHERE datname LIKE 'kbpipe\\_it\\_%\\_$$'" 2>/dev/null); do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
  done
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
  [ -z "${_extra_cleanup:-}" ] || eval "$_extra_cleanup"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

ok()   { n_pass=$((n_pass + 1)); echo "ok - $*"; }
fail() { n_fail=$((n_fail + 1)); echo "not ok - $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
# check_eq DESCRIPTION EXPECTED GOT
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"
  else fail "$1"; printf '#   expected: %s\n#   got:      %s\n' "$2" "$3"; fi
}
# check_file_same DESCRIPTION FILE1 FILE2: byte-equal, with a short diff when not
check_same() {
  if cmp -s "$2" "$3"; then ok "$1"
  else fail "$1"; diff "$2" "$3" | head -n 10 | sed 's/^/#   /'; fi
}
note() { echo "# $*"; }
finish() {
  echo "$n_pass passed, $n_fail failed"
  [ "$n_fail" = 0 ]
  exit $?
}

# new_db NAME: a fresh migrated database; prints its name
new_db() {
  local d="kbpipe_it_${1}_$$"
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" -c "CREATE DATABASE $d" \
    >/dev/null || { echo "lib.sh: cannot create database $d" >&2; exit 1; }
  "$bin" -q --db "dbname=$d" migrate up >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; echo "lib.sh: kbpipe migrate up failed on $d" >&2; exit 1; }
  echo "$d"
}

# Pipeline files of the tests that load a small corpus (catalog.sh,
# run_search_config.sh, run_dup.sh, run_max_errors.sh), written as
# { hash_pipeline NAME PROJECT; echo "sources:"; files_source ...; } >FILE:
# hash_pipeline NAME PROJECT: the head: Markdown chunks of at most 64
# tokens, no overlap, the built-in hash embedder (the caller adds the rest:
# sources:, load:, reject_file: ...)
hash_pipeline() {
  printf '%s\n' "name: $1" "project: $2" "chunking:" "  splitter: markdown" "  size: 64" \
    "  overlap: 0" "embedding:" "  provider: hash"
}
# files_source NAME ROOT...: a sources: entry reading the files under the roots
files_source() {
  local name=$1 roots r sep=
  shift
  for r in "$@"; do roots+="$sep\"$r\""; sep=", "; done
  printf '%s\n' "  - name: $name" "    type: files" "    roots: [$roots]"
}
# learnings_source NAME CSV: a sources: entry loading CSV's rows as learnings, keyed by id
learnings_source() {
  printf '%s\n' "  - name: $1" "    type: csv" "    path: $2" "    target: learnings" "    key: id"
}
# one_learning_csv FILE: a learnings CSV of one row, key K-1, title "A learning"
one_learning_csv() {
  printf '%s\n' "id,title,content,learning_type,category,tags,confidence_score,impact_level" \
    'K-1,A learning,"A learning loaded from a row.",insight,test,a,0.6,low' >"$1"
}

# sql DB QUERY: one query, unaligned tuples only
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# table_stat DB TABLE EXPR: EXPR over TABLE's row of pg_stat_user_tables
# (seq_scan, idx_scan, n_tup_upd, n_dead_tup...), read once every other
# client session of DB has ended: a backend flushes its counts as it exits
table_stat() {
  local _i
  for _i in $(seq 200); do
    [ "$(sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND pid <> pg_backend_pid() AND backend_type = 'client backend'")" = 0 ] && break
    sleep 0.05
  done
  sql "$1" "SELECT $3 FROM pg_stat_user_tables WHERE relname = '$2'"
}

# kb DB ARGS...: kbpipe against DB; stdout/stderr go to $tmp/out, $tmp/err; sets $rc
kb() {
  local d=$1; shift
  rc=0
  timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$d" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" != 137 ] || echo "# kbpipe $* was killed after ${KB_TIMEOUT}s" >>"$tmp/err"
}
# show the last command's output (in a failure's context)
show() { sed -n '1,15p' "$tmp/err" | sed 's/^/#   stderr: /'; sed -n '1,8p' "$tmp/out" | sed 's/^/#   stdout: /'; }
# check_rc DESCRIPTION EXPECTED: the last kb's exit status
check_rc() {
  if [ "$rc" = "$2" ]; then ok "$1"
  else fail "$1 (exit $rc, expected $2)"; show; fi
}

# bg DB OUTPREFIX ARGS...: kbpipe in the background; its pid in $bg_pid,
# stdout/stderr in OUTPREFIX.out/.err; wait with bg_wait PID (sets $rc)
bg() {
  local d=$1 o=$2; shift 2
  timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$d" "$@" >"$o.out" 2>"$o.err" &
  bg_pid=$!
  _bg+=("$bg_pid")
}
bg_wait() { rc=0; wait "$1" || rc=$?; }

# poll SECONDS COMMAND...: true as soon as the command succeeds, false after SECONDS
poll() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$end" ]; do
    "$@" && return 0
    sleep 0.05
  done
  "$@"
}

# state DB PROJECT: what a project holds, one line per row, sorted:
#   S type source_id doc_hash                          (knowledge_sources)
#   C type source_id chunk_index content_hash model    (knowledge_chunks)
#   L type source_id title content_hash                (learnings from a source)
state() {
  sql "$1" "
    SELECT 'S', s.source_type, s.source_id, coalesce(s.doc_hash, '-')
      FROM knowledge_sources s JOIN projects p ON p.id = s.project_id WHERE p.name = '$2'
    UNION ALL
    SELECT 'C', s.source_type, s.source_id, c.chunk_index::text || ' ' || c.content_hash || ' ' ||
           coalesce(c.metadata->>'embedding_model', '-') || ' ' || (c.embedding IS NOT NULL)::text
      FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
      JOIN projects p ON p.id = c.project_id WHERE p.name = '$2'
    UNION ALL
    SELECT 'L', s.source_type, s.source_id, l.title || ' ' ||
           coalesce(l.metadata->>'content_hash', md5(l.content)) || ' ' || (l.embedding IS NOT NULL)::text
      FROM learnings l JOIN knowledge_sources s ON s.id = l.knowledge_source_id
      JOIN projects p ON p.id = l.project_id WHERE p.name = '$2'" | LC_ALL=C sort
}

# rows DB: the physical identity of every row of the knowledge tables (and
# the projects): a table's line changes when a row is inserted, updated or
# deleted (xmin and ctid change on every write, ids are new on re-insert)
rows() {
  local t
  for t in projects knowledge_sources knowledge_chunks learnings kbpipe_dropped_indexes; do
    echo "== $t"
    sql "$1" "SELECT xmin::text || ' ' || ctid::text FROM $t ORDER BY ctid"
  done
}
# runs DB: the kbpipe_runs rows
runs() { sql "$1" "SELECT id, pipeline, status FROM kbpipe_runs ORDER BY id"; }

# jget FILE JQ-EXPR: one value of a JSON report
jget() { jq -r "$2" "$1" 2>/dev/null; }
# vectors computed over every source of a report
computed() { jget "$1" '[.sources[].vectors_computed] | add // 0'; }

# hnsw_present DB: the HNSW index on knowledge_chunks.embedding exists and is valid
hnsw_present() {
  [ "$(sql "$1" "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_am am ON am.oid = c.relam
                 WHERE i.indrelid = 'knowledge_chunks'::regclass AND am.amname = 'hnsw'
                   AND i.indisvalid")" = 1 ]
}

# gin_present DB: the full-text index on knowledge_chunks.search_tsv exists and
# is valid (the index strategy drops and rebuilds it beside the HNSW index)
gin_present() {
  [ "$(sql "$1" "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_am am ON am.oid = c.relam
                 WHERE i.indrelid = 'knowledge_chunks'::regclass AND am.amname = 'gin'
                   AND c.relname = 'idx_knowledge_chunks_search_tsv' AND i.indisvalid")" = 1 ]
}
# gin_oid DB: the oid of that full-text index ("" when there is none)
gin_oid() { sql "$1" "SELECT coalesce(to_regclass('idx_knowledge_chunks_search_tsv')::oid::text, '')"; }

# gen OUTDIR ARGS...: the generated corpus (bench/gen_corpus.py)
gen() { python3 "$top/bench/gen_corpus.py" "$@" >/dev/null; }
