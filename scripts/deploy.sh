#!/usr/bin/env bash
# Builds the demo with wasm-opt and deploys it with `wrangler deploy --env production`
# (debug routes off). Usage: scripts/deploy.sh [--do] [wrangler deploy options]
#   (default) DATABASE_URL = kv://GLUEBIND_KV, the production environment's value
#   --do      DATABASE_URL = do://GLUEBIND_DB: the Durable Object engine (every guarantee holds
#             across isolates); the environment's Durable Object binding and the top-level
#             new_sqlite_classes migration are already in wrangler.toml
# Extra arguments go to wrangler, e.g. --dry-run --outdir DIR.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
engine=()
if [ "${1:-}" = "--do" ]; then
  shift
  engine=(--var "DATABASE_URL:do://GLUEBIND_DB")
fi
bash scripts/setup.sh
bash scripts/build.sh --opt
step "wrangler deploy --env production ${engine[*]} $*"
wrangler deploy --config wrangler.toml --env production "${engine[@]}" "$@"
done_steps
