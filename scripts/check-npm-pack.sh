#!/usr/bin/env bash
# `npm pack --dry-run` of the npm package (js/): lists what a user would install and fails if
# anything but the package's sources, types, README, package.json and the built dist/ is in it.
# Expects js/dist to be built (scripts/build-js.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT/js"
step "npm pack --dry-run (js/)"
node "$ROOT/scripts/check-wasm-opt.mjs"
list=$(npm pack --dry-run --json 2>/dev/null | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    for (const f of JSON.parse(s)[0].files) console.log(f.path + " " + f.size);
  });')
echo "$list" | sed 's/^/    /'
bad=$(echo "$list" | awk '{print $1}' \
  | grep -Ev '^(README\.md|package\.json|index\.d\.ts|hono\.d\.ts|src/[a-z]+\.js|dist/gluebind(\.node)?\.js|dist/gluebind_bg\.wasm|dist/snippets/.*\.js)$' || true)
if [ -n "$bad" ]; then
  echo "unexpected files in the npm package:"; echo "$bad"; exit 1
fi
for needed in package.json index.d.ts src/workerd.js dist/gluebind_bg.wasm; do
  echo "$list" | grep -q "^$needed " || { echo "the npm package lacks $needed"; exit 1; }
done
done_steps
