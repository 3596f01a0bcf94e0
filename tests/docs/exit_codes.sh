#!/usr/bin/env bash
# tests/docs/exit_codes.sh - docs/operations.md "Exit status" and `kbpipe
# --help`: one status per cause, in every command, and the command line's
# did-you-mean and aliases:
#   * 2: no command, an unknown command (with the nearest one suggested), an
#     unknown option in each command (nearest option suggested), a pipeline
#     file that cannot be read (validate, run, plan alike), an invalid one;
#   * 1: the database unreachable;
#   * 130: a run interrupted with SIGINT, which leaves nothing half-written
#     (the next run ends in the state of one clean run);
#   * migrate:up, migrate:down, migrate:create, db:seed are the commands the
#     spec's npm scripts name.
. "$(dirname "$0")/../integration/lib.sh"
db=$(new_db exit)

# the table in the docs and in --help say the same
check "docs/operations.md has the interrupted row" grep -q '^| 130, 143 | interrupted' docs/operations.md
"$bin" --help >"$tmp/help"
check "--help lists the exit statuses" grep -q '^  130/143  interrupted' "$tmp/help"

# 2: usage -----------------------------------------------------------------
rc=0; "$bin" >/dev/null 2>&1 || rc=$?; check_rc "no command: exit 2" 2
kb "$db" serach --project p x;  check_rc "an unknown command: exit 2" 2
check_eq "  ... with the nearest command" \
  "kbpipe: unknown command 'serach' (did you mean 'search'?); 'kbpipe --help' lists the commands" "$(cat "$tmp/err")"
kb "$db" migrate:dwn;  check_rc "an unknown alias: exit 2" 2
check "  ... suggests the alias" grep -qF "(did you mean 'migrate:down'?)" "$tmp/err"
kb "$db" zzzzzzzz;    check_rc "a far-off word: exit 2" 2
check "  ... and no suggestion" bash -c "! grep -q 'did you mean' '$tmp/err'"

while read -r cmd bad near; do
  kb "$db" $cmd "$bad"
  check_rc "$cmd $bad: exit 2" 2
  check "  ... suggests $near" grep -qF "unknown option '$bad' (did you mean '$near'?); see 'kbpipe ${cmd% *} --help'" "$tmp/err"
done <<'LIST'
run --dry-rn --dry-run
plan --reprot=x.json --report
search --projct --project
stats --jsn --json
dedup --treshold --threshold
seed --rest --reset
migrate --repiar --repair
delete --dry-rn --dry-run
sources --pipelin --pipeline
export --vektors --vectors
secret --shard --shared
LIST
# a known option without its value, or with one it does not take
kb "$db" dedup --project;     check_rc "dedup --project (no value): exit 2" 2
check "  ... says it needs a value" grep -qxF "kbpipe: option '--project' needs a value; see 'kbpipe dedup --help'" "$tmp/err"
kb "$db" sources --json=1;    check_rc "sources --json=1: exit 2" 2
check "  ... says it takes none" grep -qxF "kbpipe: option '--json' takes no value; see 'kbpipe sources --help'" "$tmp/err"
kb "$db" migrate up --dri x;  check_rc "migrate up --dri (after the subcommand): exit 2" 2
check "  ... suggests --dir" grep -qF "(did you mean '--dir'?)" "$tmp/err"
kb "$db" stats --xyzzyq;      check_rc "a far-off option: exit 2" 2
check "  ... without a guess" grep -qxF "kbpipe: unknown option '--xyzzyq'; see 'kbpipe stats --help'" "$tmp/err"

for c in validate run plan; do
  kb "$db" $c "$tmp/missing.yaml"
  check_rc "$c of a pipeline file that cannot be read: exit 2" 2
  check "  ... saying so, located" grep -qF "$tmp/missing.yaml: cannot read the pipeline" "$tmp/err"
done
printf 'name: x\nproject: p\nchunking: {sise: 3}\nsources: []\n' >"$tmp/bad.yaml"
for c in validate run; do
  kb "$db" $c "$tmp/bad.yaml"; check_rc "$c of an invalid pipeline: exit 2" 2
done

# 1: the database unreachable ---------------------------------------------
rc=0; "$bin" --db "host=$tmp/nope dbname=x" stats >/dev/null 2>"$tmp/err" || rc=$?
check_rc "stats with the database unreachable: exit 1" 1

# aliases --------------------------------------------------------------------
adb=$(psql -X -At -d postgres -c "SELECT 'kbpipe_it_alias_$$'")
psql -X -q -d postgres -c "CREATE DATABASE $adb" >/dev/null
kb "$adb" -q migrate:up;  check_rc "migrate:up migrates" 0
check_eq "  ... as migrate up does" "$(sql "$db" 'SELECT count(*) FROM schema_migrations')" \
  "$(sql "$adb" 'SELECT count(*) FROM schema_migrations')"
kb "$adb" -q db:seed;     check_rc "db:seed seeds" 0
check "  ... the seed projects are there" test "$(sql "$adb" 'SELECT count(*) FROM projects')" -gt 0
kb "$adb" -q migrate:down; check_rc "migrate:down rolls one back" 0
check_eq "  ... one fewer applied" "$(( $(sql "$db" 'SELECT count(*) FROM schema_migrations') - 1 ))" \
  "$(sql "$adb" 'SELECT count(*) FROM schema_migrations')"
mkdir -p "$tmp/mig"; kb "$adb" migrate:create add_thing --dir "$tmp/mig"; check_rc "migrate:create makes a file" 0
check "  ... in --dir" bash -c "ls '$tmp/mig' | grep -q 'add_thing'"
kb "$adb" migrate:up --help; check_rc "migrate:up --help" 0

# 130: interrupted -----------------------------------------------------------
export RUN_DOCS=$tmp/corpus RUN_BATCH_ROWS=20 RUN_PIPELINE=it-int RUN_PROJECT=it-int
gen "$tmp/corpus" --files 400 --sections 4 --seed 3
rdb=$(new_db int)
# the run is made to wait where it writes: another session holds
# knowledge_chunks locked, so the SIGINT lands in the middle of the run,
# whatever the machine's speed
psql -X -q -d "$rdb" -c "BEGIN" -c "LOCK TABLE knowledge_chunks IN ACCESS EXCLUSIVE MODE" \
  -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
_bg+=($!)
poll 30 bash -c "[ \"\$(psql -X -At -d $rdb -c \"SELECT count(*) FROM pg_locks WHERE relation = 'knowledge_chunks'::regclass AND mode = 'AccessExclusiveLock' AND granted\")\" = 1 ]"
# a background job of a script starts with SIGINT ignored: put it back to
# its default first, as a terminal's Ctrl-C finds it
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$bin" --db "dbname=$rdb" run tests/data/run/gen.yaml -q >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!; _bg+=("$pid")
check "the run waits on the lock" poll 60 bash -c "[ \"\$(psql -X -At -d $rdb -c \"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'\")\" -gt 0 ]"
kill -INT "$pid"
# then free the lock (end its holder), so the run goes on at once, commits
# the batch it holds and stops, instead of waiting out the holder's sleep
psql -X -q -d "$rdb" -c "SELECT pg_terminate_backend(pid) FROM pg_locks
                         WHERE relation = 'knowledge_chunks'::regclass
                           AND mode = 'AccessExclusiveLock' AND granted" >/dev/null
rc=0; wait "$pid" || rc=$?
psql -X -q -d "$rdb" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
check_rc "a run interrupted with SIGINT: exit 130" 130
kb "$rdb" -q run tests/data/run/gen.yaml; check_rc "the next run finishes the job" 0
check_eq "  ... every section loaded" 1600 "$(sql "$rdb" 'SELECT count(*) FROM knowledge_chunks')"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $adb WITH (FORCE)" >/dev/null
finish
