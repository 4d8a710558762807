#!/usr/bin/env bash
# Set-up, build, then serve the demo on http://127.0.0.1:8787 with wrangler dev.
# Usage: scripts/dev.sh [--kv | --do] [wrangler dev options]
#   --kv   DATABASE_URL = kv://GLUEBIND_KV (local KV, persisted in .wrangler/state across
#          restarts) instead of memory://
#   --do   DATABASE_URL = do://GLUEBIND_DB (a local Durable Object, persisted in .wrangler/state)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
engine=()
case "${1:-}" in
  --kv) shift; engine=(--var "DATABASE_URL:kv://GLUEBIND_KV" --persist-to .wrangler/state) ;;
  --do) shift; engine=(--var "DATABASE_URL:do://GLUEBIND_DB" --persist-to .wrangler/state) ;;
esac
bash scripts/setup.sh
bash scripts/build.sh
step "wrangler dev on http://127.0.0.1:${PORT:-8787} (Ctrl-C stops it)"
exec wrangler dev --config wrangler.toml --ip 127.0.0.1 --port "${PORT:-8787}" "${engine[@]}" "$@"
