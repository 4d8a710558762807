#!/usr/bin/env bash
# Builds the demo with wasm-opt and deploys it with `wrangler deploy --env production`
# (KV engine, debug routes off). Extra arguments go to wrangler, e.g. --dry-run --outdir DIR.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh --opt
step "wrangler deploy --env production $*"
wrangler deploy --config wrangler.toml --env production "$@"
done_steps
