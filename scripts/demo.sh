#!/usr/bin/env bash
# demo.sh - the main job on the bundled samples, from an empty database:
# migrate, seed, load the sample pipelines, then show what was loaded.
# Run through `make demo`, which installs, builds and starts the database.
set -euo pipefail
cd "$(dirname "$0")/.."
kb=bin/kbpipe
step() { printf '\n==> %s\n' "$*"; }

step "kbpipe migrate up"
$kb migrate up
$kb migrate status

if $kb seed --help >/dev/null 2>&1; then
  step "kbpipe seed"
  $kb seed
fi
if $kb run --help >/dev/null 2>&1; then
  for p in pipelines/docs.yaml pipelines/issues.yaml pipelines/learnings.yaml; do
    [ -f "$p" ] || continue
    step "kbpipe run $p"
    $kb run "$p"
  done
fi
if $kb search --help >/dev/null 2>&1 && [ -f pipelines/docs.yaml ]; then
  step "kbpipe search --project supervisor-docs 'how do I rotate a secret?'"
  $kb search --project supervisor-docs -k 3 "how do I rotate a secret?"
fi
if $kb stats --help >/dev/null 2>&1; then
  step "kbpipe stats"
  $kb stats
fi
echo
echo "demo: done.  The database is the local cluster (scripts/db.sh dir); 'make db-stop' stops it."
