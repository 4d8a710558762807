#!/usr/bin/env bash
# `npm run sim -- --seeds N [--first F]`: runs the deterministic simulation of the kv:// engine
# (tests/sim) for seeds F..F+N in a release build on every core, and prints the figures. A
# failing seed prints its trace and the command that replays it (SEED=n).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
seeds=10000
first=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --first) first="$2"; shift 2 ;;
    *) echo "usage: npm run sim -- [--seeds N] [--first F]" >&2; exit 2 ;;
  esac
done
SIM_SEEDS="$seeds" SIM_FIRST="$first" \
  cargo test --release --test sim -- --nocapture --test-threads 1 simulated_seeds
