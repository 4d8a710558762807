#!/usr/bin/env bash
# `npm run bench:scale`: set-up, build the demo, then bench/scale.mjs (arguments go to it, e.g.
# --sizes 1000,10000 --engines memory,do --duration 3).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
step "bench/scale.mjs $*"
node bench/scale.mjs "$@"
done_steps
