#!/usr/bin/env bash
# tests/integration/run_torture.sh - the short form of the torture test in
# `make check`: 12 trials (kill -9 at random instants and at every phase's
# exact point, server stops, corpus edits, in one trial of four the re-run
# killed too) over a third of the corpus.
# `make torture` runs 100 over the whole one; tests/torture/torture.sh says
# what a trial checks.
TORTURE_TRIALS=${TORTURE_TRIALS:-12} TORTURE_SCALE=${TORTURE_SCALE:-3} \
  exec bash "$(dirname "$0")/../torture/torture.sh"
