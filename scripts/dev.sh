#!/usr/bin/env bash
# Set-up, build, then serve the demo on http://127.0.0.1:8787 (memory://) with wrangler dev.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
step "wrangler dev on http://127.0.0.1:${PORT:-8787} (Ctrl-C stops it)"
exec wrangler dev --config wrangler.toml --ip 127.0.0.1 --port "${PORT:-8787}" "$@"
