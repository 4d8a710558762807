#!/usr/bin/env bash
# Set-up, build the npm package, then serve the JavaScript demo (examples/js-demo: Hono +
# gluebind) on http://127.0.0.1:8787 (memory://) with wrangler dev.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build-js.sh
step "wrangler dev (JS demo) on http://127.0.0.1:${PORT:-8787} (Ctrl-C stops it)"
exec wrangler dev --config examples/js-demo/wrangler.toml --ip 127.0.0.1 --port "${PORT:-8787}" "$@"
