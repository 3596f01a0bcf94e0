#!/usr/bin/env bash
# tests/docs/db_settings.sh - docs/operations.md ("Server settings for
# search"): `scripts/db.sh settings` prints the rule the doc states for this
# machine's RAM (shared_buffers an eighth of it, at least 128MB, at most 2GB;
# effective_cache_size half of it; shared_preload_libraries the search's
# libraries the server has); `scripts/db.sh start` wrote them into the
# cluster's kbpipe-settings.conf, which the server reads without an error
# (pg_file_settings); and the running server has each value, or reports it
# waiting for a restart (pg_settings.pending_restart) when the cluster was
# started before the file said so; and the environment `scripts/db.sh
# start` gives the server (`scripts/db.sh environment`).
. "$(dirname "$0")/../integration/lib.sh"

mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
sb_mb=$(( mem_mb / 8 ))
[ "$sb_mb" -lt 128 ] && sb_mb=128
[ "$sb_mb" -gt 2048 ] && sb_mb=2048
want=$(printf 'shared_buffers = %dMB\neffective_cache_size = %dMB' "$sb_mb" "$(( mem_mb / 2 ))")
# the libraries of a search that this server has, preloaded (never one it
# lacks: the server would not start)
libs=
for lib in vector plpgsql dict_snowball; do
  [ -f "/usr/lib/postgresql/15/lib/$lib.so" ] && libs=${libs:+$libs,}$lib
done
[ -n "$libs" ] && want=$(printf "%s\nshared_preload_libraries = '%s'" "$want" "$libs")
check_eq "db.sh settings follows the documented rule (RAM $mem_mb MB)" "$want" \
  "$(scripts/db.sh settings)"
doc=$(tr -s '\n' ' ' <docs/operations.md)   # the phrases may wrap
check "docs/operations.md states the rule" grep -qF \
  'shared_buffers` an eighth of the RAM, at least 128MB, at most 2GB' <<<"$doc"
check "  ... for effective_cache_size too" grep -qF '`effective_cache_size` half the RAM' \
  <<<"$doc"

# the file the server reads: every setting of it, no error
got=$(psql -X -At -d postgres -c "SELECT name || ' = ' || setting || coalesce(' ERROR ' || error, '')
                                    FROM pg_file_settings
                                   WHERE sourcefile LIKE '%/kbpipe-settings.conf' ORDER BY seqno")
check_eq "the cluster's kbpipe-settings.conf holds them, read without an error" \
  "$(tr -d "'" <<<"$want")" "$got"

# in force, or waiting for a restart (shared_buffers takes one)
while IFS=' =' read -r name value; do
  [ -n "$name" ] || continue
  value=$(tr -d "'" <<<"$value")
  if [ "$name" = shared_preload_libraries ]; then   # a list, not a size
    st=$(psql -X -At -d postgres -c "SELECT CASE WHEN pending_restart THEN 'pending restart'
                                                 WHEN setting = '$value' THEN 'in force'
                                                 ELSE setting END
                                        FROM pg_settings WHERE name = '$name'")
    note "$name: $st"
    check "$name $value is in force or waiting for a restart" \
      [ "$st" = "in force" -o "$st" = "pending restart" ]
    continue
  fi
  st=$(psql -X -At -d postgres -c "SELECT CASE WHEN pending_restart THEN 'pending restart'
                                               WHEN pg_size_bytes(current_setting(name))
                                                    = pg_size_bytes('$value') THEN 'in force'
                                               ELSE current_setting(name) END
                                      FROM pg_settings WHERE name = '$name'")
  note "$name: $st"
  check "$name $value is in force or waiting for a restart" \
    [ "$st" = "in force" -o "$st" = "pending restart" ]
done <<<"$want"

# the server's environment (docs/operations.md, same section): glibc's
# malloc on transparent huge pages, the caller's own tunables kept after
# kbpipe's (so they win), and the running postmaster started with it, unless
# it was started before scripts/db.sh said so
thp='glibc.malloc.hugetlb=1:glibc.malloc.top_pad=16777216'
check_eq "db.sh environment prints the documented tunables" "GLIBC_TUNABLES=$thp" \
  "$(env -u GLIBC_TUNABLES scripts/db.sh environment)"
check_eq "  ... and keeps the caller's after them" "GLIBC_TUNABLES=$thp:glibc.malloc.arena_max=2" \
  "$(GLIBC_TUNABLES=glibc.malloc.arena_max=2 scripts/db.sh environment)"
check "docs/operations.md gives the same value" grep -qF "$thp" docs/operations.md
pm=$(head -1 "$PGHOST/data/postmaster.pid")
if [ "$(date -d "$(ps -o lstart= -p "$pm")" +%s)" -lt "$(stat -c %Y scripts/db.sh)" ]; then
  note "the postmaster started before scripts/db.sh last changed: its environment is not checked"
else
  check_eq "the running server has them" "yes (GLIBC_TUNABLES $thp)" \
    "$(. bench/lib.sh >/dev/null; malloc_thp_of_server)"
fi

# a library the server lacks is never listed (a server that cannot load a
# preloaded library does not start): scripts/db.sh's rule run against a
# server folder holding plpgsql alone, then none of the three
fake=$(mktemp -d)
mkdir -p "$fake/pg/bin" "$fake/pg/lib" "$fake/scripts"
sed "s#^PGBIN=.*#PGBIN=$fake/pg/bin#" scripts/db.sh >"$fake/scripts/db.sh"
touch "$fake/pg/lib/plpgsql.so"
check_eq "a server without pgvector and dict_snowball: plpgsql alone is preloaded" \
  "shared_preload_libraries = 'plpgsql'" \
  "$(bash "$fake/scripts/db.sh" settings | grep shared_preload_libraries)"
rm "$fake/pg/lib/plpgsql.so"
check_eq "a server with none of them: no shared_preload_libraries line" "" \
  "$(bash "$fake/scripts/db.sh" settings | grep shared_preload_libraries || true)"
rm -rf "$fake"
finish
