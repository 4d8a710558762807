#!/usr/bin/env bash
# `npm run bench`: set-up, build every variant (bench/build.sh), then measure (bench/run.mjs).
# Arguments go to bench/run.mjs (e.g. --quick, --duration 5, --reps 5, --no-write).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
opt=()
for arg in "$@"; do [ "$arg" = "--quick" ] && opt=(--no-opt); done
bash bench/build.sh "${opt[@]}"
step "bench/run.mjs $*"
node bench/run.mjs "$@"
done_steps
