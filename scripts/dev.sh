#!/usr/bin/env bash
# Set-up, build, then serve the demo on http://127.0.0.1:8787 with wrangler dev.
# Usage: scripts/dev.sh [--kv] [wrangler dev options]
#   --kv   DATABASE_URL = kv://GLUEBIND_KV (local KV, persisted in .wrangler/state across
#          restarts) instead of memory://
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
engine=()
if [ "${1:-}" = "--kv" ]; then
  shift
  engine=(--var "DATABASE_URL:kv://GLUEBIND_KV" --persist-to .wrangler/state)
fi
bash scripts/setup.sh
bash scripts/build.sh
step "wrangler dev on http://127.0.0.1:${PORT:-8787} (Ctrl-C stops it)"
exec wrangler dev --config wrangler.toml --ip 127.0.0.1 --port "${PORT:-8787}" "${engine[@]}" "$@"
