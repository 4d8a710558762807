# Shared helpers for the project's scripts: step timing and paths. Source it, don't run it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$ROOT/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
# Cargo target directory of the npm package's builds (feature js, no workers-rs). Separate from
# target/ because cargo keeps one fingerprint per cdylib package: building gluebind with the
# package's features and as the demo's dependency in one directory rebuilds it every time.
JS_TARGET_DIR="$ROOT/target/js-package"

_step_name=""
_step_start=0
# step "what": prints what is starting; the previous step's duration is printed when the next
# step starts or when `done_steps` runs (cold set-up takes minutes: silence looks like a hang).
step() {
  _finish_step
  _step_name="$1"
  _step_start=$(date +%s)
  printf '\n==> %s\n' "$_step_name"
}
_finish_step() {
  if [ -n "$_step_name" ]; then
    printf '    (%s: %ss)\n' "$_step_name" "$(( $(date +%s) - _step_start ))"
  fi
  _step_name=""
}
done_steps() { _finish_step; }

# The level of every wasm-opt run (what `npm run deploy` ships, what the npm package carries):
# measured on the demo (2026-12-05), -O1 gives the smallest gzip — 1.160 MB, against 1.174 MB
# without wasm-opt and 1.238 MB at -Oz, whose smaller raw output compresses worse — and keeps
# wasm-opt's speed-up (bench rows c'/f', docs/benchmarks.md).
WASM_OPT_LEVEL=-O1

# wasm_opt IN OUT: wasm-opt at $WASM_OPT_LEVEL (npm binaryen) with the wasm features rustc emits
# enabled.
wasm_opt() {
  wasm-opt "$WASM_OPT_LEVEL" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue "$1" -o "$2"
}
