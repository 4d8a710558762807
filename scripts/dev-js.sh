#!/usr/bin/env bash
# Set-up, build the npm package, then serve the JavaScript demo (examples/js-demo: Hono +
# gluebind) on http://127.0.0.1:8787 (memory://; --kv or --do as scripts/dev.sh) with wrangler dev.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
engine=()
case "${1:-}" in
  --kv) shift; engine=(--var "DATABASE_URL:kv://GLUEBIND_KV" --persist-to .wrangler/state) ;;
  --do) shift; engine=(--var "DATABASE_URL:do://GLUEBIND_DB" --persist-to .wrangler/state) ;;
esac
bash scripts/setup.sh
bash scripts/build-js.sh
step "wrangler dev (JS demo) on http://127.0.0.1:${PORT:-8787} (Ctrl-C stops it)"
exec wrangler dev --config examples/js-demo/wrangler.toml --ip 127.0.0.1 --port "${PORT:-8787}" "${engine[@]}" "$@"
