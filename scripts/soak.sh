#!/usr/bin/env bash
# `npm run soak`: set-up, build what the soak serves (the demo, scripts/build.sh; with --js the
# npm package the JS demo imports, scripts/build-js.sh), then scripts/soak.mjs with the given
# arguments (e.g. --engine kv, --requests 2000, --connections 16, --js).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
if [[ " $* " == *" --js "* ]]; then
  bash scripts/build-js.sh
else
  bash scripts/build.sh
fi
step "scripts/soak.mjs $*"
node scripts/soak.mjs "$@"
done_steps
