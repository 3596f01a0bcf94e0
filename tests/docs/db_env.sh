#!/usr/bin/env bash
# tests/docs/db_env.sh - README.md and docs/operations.md ("The local
# database"): after `eval "$(scripts/db.sh env)"`, a shell with no PG*
# variables of its own reaches the local cluster's supervisor_service
# database, with psql and with kbpipe; without it, kbpipe fails (it would
# try the system socket).  The lines are shell-quoted.
. "$(dirname "$0")/../integration/lib.sh"

env_out=$(scripts/db.sh env 2>"$tmp/env.err")
check_eq "db.sh env prints three export lines" "PGHOST PGUSER PGDATABASE" \
  "$(printf '%s\n' "$env_out" | sed -n 's/^export \([A-Z]*\)=.*/\1/p' | paste -sd' ')"
check_eq "  ... and nothing on stderr while the cluster runs" "" "$(cat "$tmp/env.err")"
check "README.md tells the newcomer to eval it" grep -qF 'eval "$(scripts/db.sh env)"' README.md
check "docs/operations.md too" grep -qF 'eval "$(scripts/db.sh env)"' docs/operations.md

# a clean shell: none of the PG* variables lib.sh or make exported
clean() { env -u PGHOST -u PGUSER -u PGDATABASE -u PGOPTIONS -u DATABASE_URL -u KBPIPE_DB \
          HOME="$tmp" "$@"; }
got=$(cd "$tmp" && clean bash -c 'eval "$('"$top"'/scripts/db.sh env)" &&
      psql -X -At -c "SELECT current_database()"' 2>&1)
check_eq "psql after the eval reaches supervisor_service" "supervisor_service" "$got"
rc=0
(clean bash -c 'eval "$(scripts/db.sh env)" && "$1" -q migrate status' _ "$bin") \
  >"$tmp/out" 2>"$tmp/err" || rc=$?
check_rc "kbpipe migrate status after the eval connects" 0
rc=0
(clean env PGHOST=/nonexistent-kbpipe "$bin" -q migrate status) >"$tmp/out" 2>"$tmp/err" || rc=$?
check "  ... and without it, it cannot" [ "$rc" != 0 ]

# the eval gives back exactly the cluster's folder (quoted, so any folder survives)
got=$(env -u PGHOST bash -c 'eval "$(scripts/db.sh env 2>/dev/null)"; printf %s "$PGHOST"')
check_eq "PGHOST after the eval is scripts/db.sh dir" "$(scripts/db.sh dir)" "$got"
finish
