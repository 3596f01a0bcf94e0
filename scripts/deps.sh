#!/usr/bin/env bash
# deps.sh [--test] - install what kbpipe needs on Debian 12, idempotently;
# with --test (make check) also what its tests need: node, npm and the
# reference tokenizer (scripts/fetch-tokenizer.sh).
#
# Debian packages first (only those missing), then pgvector, which bookworm
# does not carry: Debian's own source package is fetched from trixie with
# apt's source tooling and built against PostgreSQL 15 with PGXS.  A second
# run finds everything present and does nothing.
set -euo pipefail

PGVER=15
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

pkgs=(build-essential pkg-config ca-certificates dpkg-dev
      libpq-dev libyaml-dev libcsv-dev libopenblas-dev libsodium-dev
      libcmocka-dev libjansson-dev libcurl4-openssl-dev
      libxml2-dev           # the HTML reader (src/ingest/html.c)
      libpoppler-glib-dev   # the PDF reader (src/ingest/pdf.c): poppler's C API
      postgresql-$PGVER postgresql-client-$PGVER postgresql-server-dev-$PGVER
      postgresql-$PGVER-pgtap libtap-parser-sourcehandler-pgtap-perl
      procps python3
      jq      # the shell tests read run reports with it
      python3-jsonschema   # tests only: reports checked against docs/report.schema.json
      strace  # tests only: run_stat.sh and run_lazy_libs.sh see which files and libraries open
      time)   # /usr/bin/time -v: peak RSS in bench/load.sh
# --test (make check): node + npm, for the reference tokenizer the tests compare
# against; kbpipe never needs them (make demo, make install run without)
is_test=0
[ "${1:-}" != --test ] || is_test=1
if [ "$is_test" = 1 ]; then
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm  >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pgvector: built from Debian's source package (trixie) against PostgreSQL 15
pgconf=/usr/lib/postgresql/$PGVER/bin/pg_config
if [ ! -f "$($pgconf --sharedir)/extension/vector.control" ]; then
  src=/etc/apt/sources.list.d/kbpipe-trixie-src.sources
  if [ ! -f "$src" ]; then
    $SUDO tee "$src" >/dev/null <<'SRC'
# added by kbpipe's scripts/deps.sh: source packages only, for pgvector
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    updated=0
  fi
  [ "$updated" = 1 ] || $SUDO apt-get update -qq
  work=$(mktemp -d /tmp/kbpipe-pgvector.XXXXXX)
  echo "deps: building pgvector from Debian's source package in $work" >&2
  ( cd "$work" && apt-get source -qq pgvector >/dev/null 2>&1 ) \
    || { echo "deps: 'apt-get source pgvector' failed; check that deb.debian.org is reachable" >&2; exit 1; }
  dir=$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
  # OPTFLAGS="" : no -march=native, so the build runs on any x86-64 machine
  make -s -C "$dir" USE_PGXS=1 PG_CONFIG="$pgconf" OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$dir" USE_PGXS=1 PG_CONFIG="$pgconf" OPTFLAGS="" install >/dev/null
  rm -rf "$work"
  echo "deps: pgvector installed into PostgreSQL $PGVER" >&2
fi
# the reference encoder (tests only); the rank table is data/cl100k_base.json
[ "$is_test" = 0 ] || bash "$(dirname "$0")/fetch-tokenizer.sh"
exit 0
