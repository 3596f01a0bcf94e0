#!/usr/bin/env bash
# db.sh - the project-local PostgreSQL 15 cluster used by the demo and tests.
#
#   scripts/db.sh dir      print the cluster's folder (data/, socket, log)
#   scripts/db.sh start    initdb the first time, start, create databases
#   scripts/db.sh stop     stop it
#   scripts/db.sh user     print the role to connect as
#   scripts/db.sh env      print the `export PG...` lines that point psql and
#                          kbpipe at the cluster: eval "$(scripts/db.sh env)"
#   scripts/db.sh settings print the server settings start writes for the
#                          cluster (docs/operations.md, "Server settings for search")
#   scripts/db.sh environment  print the environment start gives the server
#                          (the same section: glibc's malloc on transparent huge pages)
#
# The cluster lives in .pg/ inside the checkout and listens only on a unix
# socket in that folder (listen_addresses=''), so it clashes with no TCP port.
# initdb refuses to run as root: as root the server runs as `postgres`, and if
# the checkout sits under a folder other users cannot enter (CI clones under
# /root), the cluster goes to /var/tmp/kbpipe-pg-<hash of the checkout path>.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
top=$(cd "$(dirname "$0")/.." && pwd)

reachable_by_others() {   # every ancestor must be enterable by "other"
  local d=$1
  while [ "$d" != "/" ]; do
    [ -d "$d" ] || { d=$(dirname "$d"); continue; }
    [ "$(( 0$(stat -c '%a' "$d") & 1 ))" = 1 ] || return 1
    d=$(dirname "$d")
  done
}

cluster_dir() {
  local d=$top/.pg
  # socket paths are limited to 107 bytes: "$d/.s.PGSQL.5432" must fit
  if [ ${#d} -gt 80 ] || { [ "$(id -u)" = 0 ] && ! reachable_by_others "$top"; }; then
    d=/var/tmp/kbpipe-pg-$(printf '%s' "$top" | sha256sum | cut -c1-12)
  fi
  printf '%s\n' "$d"
}

db_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

# The settings a search over a 200,000-chunk project needs (docs/operations.md,
# "Server settings for search"): shared_buffers holds the HNSW index and the
# heap (1.5 GB + 0.3 GB at 200,079 chunks of 1,536 dimensions), so a query
# reads no block from the OS: an eighth of the RAM (several clusters share a
# test machine), at least 128MB, at most 2GB; effective_cache_size tells the
# planner the OS cache is there too (half the RAM).
settings() {
  local mem_mb sb_mb
  mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  sb_mb=$(( mem_mb / 8 ))
  [ "$sb_mb" -lt 128 ] && sb_mb=128
  [ "$sb_mb" -gt 2048 ] && sb_mb=2048
  printf 'shared_buffers = %dMB\n' "$sb_mb"
  printf 'effective_cache_size = %dMB\n' "$(( mem_mb / 2 ))"
  preload_libraries
}

# The libraries a search loads in each new backend (pgvector, PL/pgSQL, the
# english configuration's Snowball stemmer), loaded once by the postmaster
# instead (docs/operations.md, "Server settings for search"): only those the
# server has, since a server that cannot find a preloaded library does not
# start at all; a library installed later is preloaded from the next start.
preload_libraries() {
  local lib libs=
  for lib in vector plpgsql dict_snowball; do
    [ -f "$PGBIN/../lib/$lib.so" ] && libs=${libs:+$libs,}$lib
  done
  [ -z "$libs" ] || printf "shared_preload_libraries = '%s'\n" "$libs"
}

# The server's environment (docs/operations.md, "Server settings for
# search"): glibc's malloc asks the kernel for transparent huge pages for
# its heap (glibc.malloc.hugetlb=1, madvise: no memory is reserved, and a
# kernel with THP off ignores it) and grows the heap 16 MB of address space
# at a time (top_pad), so that the 2 MB pages fit in it.  A new backend,
# which every `kbpipe search` is, then takes one page fault per 2 MB of
# the memory it fills (its plans, caches, the plpgsql function) instead of
# one per 4 kB.  Tunables already in the caller's GLIBC_TUNABLES come last,
# so they win.
server_glibc_tunables() {
  printf 'glibc.malloc.hugetlb=1:glibc.malloc.top_pad=16777216%s\n' "${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
}

as_owner() {   # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-start}
# the server runs as another user, who may not be able to enter the checkout
cd /
dir=$(cluster_dir)
case "$cmd" in
  dir)  echo "$dir" ;;
  user) db_user ;;
  environment) printf 'GLIBC_TUNABLES=%s\n' "$(server_glibc_tunables)" ;;
  env)   # shell-quoted, so a folder with spaces survives eval
    printf 'export PGHOST=%q\n' "$dir"
    printf 'export PGUSER=%q\n' "$(db_user)"
    printf 'export PGDATABASE=%q\n' supervisor_service
    [ -S "$dir/.s.PGSQL.5432" ] ||
      echo "db: the cluster in $dir is not running; start it with 'make db'" >&2 ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
      echo "db: stopped the cluster in $dir" >&2
    fi ;;
  start)
    [ -x "$PGBIN/initdb" ] || { echo "db: PostgreSQL 15 is not installed; run 'make deps'" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$PGBIN/initdb" -D "$dir/data" -U "$(db_user)" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { echo "db: initdb failed, see $dir/initdb.log" >&2; exit 1; }
      cat >>"$dir/data/postgresql.conf" <<CONF
# kbpipe's local cluster: unix socket only, sized for a 2-core test machine
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 200
maintenance_work_mem = 512MB
fsync = on
CONF
      echo "db: initialized a PostgreSQL 15 cluster in $dir" >&2
    fi
    # rewritten at every start, so a cluster made before a change of settings()
    # gets it at its next start; postgresql.conf includes it (appended once)
    { echo "# written by scripts/db.sh start at every start: edit settings() there"
      settings; } >"$dir/data/kbpipe-settings.conf"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/data/kbpipe-settings.conf"
    grep -qxF "include_if_exists = 'kbpipe-settings.conf'" "$dir/data/postgresql.conf" ||
      echo "include_if_exists = 'kbpipe-settings.conf'" >>"$dir/data/postgresql.conf"
    if ! as_owner "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner env GLIBC_TUNABLES="$(server_glibc_tunables)" \
        "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { echo "db: the server did not start, see $dir/server.log" >&2; exit 1; }
      echo "db: started PostgreSQL on unix socket $dir (log: $dir/server.log)" >&2
    elif "$PGBIN/psql" -h "$dir" -U "$(db_user)" -d postgres -Atqc "SELECT pg_reload_conf()" \
           >/dev/null && sleep 0.3 &&
         [ "$("$PGBIN/psql" -h "$dir" -U "$(db_user)" -d postgres -Atqc \
              "SELECT count(*) FROM pg_settings WHERE pending_restart")" != 0 ]; then
      echo "db: the running cluster in $dir has settings waiting for a restart" \
           "(make db-stop, then make db)" >&2
    elif pm=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null) && [ -r "/proc/$pm/environ" ] &&
         ! tr '\0' '\n' <"/proc/$pm/environ" | grep -q '^\(GLIBC_TUNABLES=\)\?glibc\.malloc\.hugetlb=1$'; then
      echo "db: the running cluster in $dir was started without the environment of" \
           "'scripts/db.sh environment' (make db-stop, then make db)" >&2
    fi
    for db in supervisor_service kbpipe_test; do
      if ! "$PGBIN/psql" -h "$dir" -U "$(db_user)" -d postgres -Atqc \
          "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
        "$PGBIN/psql" -h "$dir" -U "$(db_user)" -d postgres -qc "CREATE DATABASE $db" >/dev/null
      fi
      "$PGBIN/psql" -h "$dir" -U "$(db_user)" -d "$db" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS vector;
SQL
      [ "$db" = kbpipe_test ] && "$PGBIN/psql" -h "$dir" -U "$(db_user)" -d "$db" -qc \
          "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pgtap" >/dev/null
    done ;;
  settings) settings ;;
  *) echo "usage: scripts/db.sh dir|env|settings|start|stop|user" >&2; exit 2 ;;
esac
