#!/usr/bin/env bash
# Builds what `npm run bench` serves: the demo (scripts/build.sh → build/demo), the bench
# workers (bare, session → build/bench/<name>), the demo after wasm-opt (build/bench/demo-opt,
# redone only when the demo or the wasm-opt level changed: what `npm run deploy` ships), and the
# npm package's optimized build (js/dist, for its size).
# Usage: bench/build.sh [--no-opt]   (--no-opt leaves the wasm-opt copy alone)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
opt=1
for arg in "$@"; do
  case "$arg" in
    --no-opt) opt=0 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

bash scripts/build.sh

step "cargo build (bench workers bare + session, wasm32, release)"
cargo build -p gluebind-bench-bare -p gluebind-bench-session --target wasm32-unknown-unknown --release

shim() {
  cat > "$1/shim.mjs" <<'JS'
import { fetch } from "./index.js";
export default { fetch };
JS
}

for name in bare session; do
  step "wasm-bindgen $name"
  out=build/bench/$name
  rm -rf "$out" && mkdir -p "$out"
  wasm-bindgen "target/wasm32-unknown-unknown/release/gluebind_bench_${name}.wasm" \
    --out-dir "$out" --out-name index --target module
  shim "$out"
done

# Size only: the demo without wasm's "name" section (function names for stack traces).
step "wasm-bindgen --remove-name-section (demo → build/bench/demo-strip, size only)"
rm -rf build/bench/demo-strip
wasm-bindgen target/wasm32-unknown-unknown/release/gluebind_demo.wasm \
  --out-dir build/bench/demo-strip --out-name index --target module --remove-name-section

# The demo after wasm-opt: the optimised wasm is cached beside the copy
# (build/bench/demo-opt.wasm) and redone only when the demo's wasm or the level changed (stamp);
# the JS glue (index.js, snippets/, shim.mjs) is copied from build/demo every time.
out=build/bench/demo-opt
if [ "$opt" = 1 ]; then
  sum="$(sha256sum build/demo/index_bg.wasm | cut -d' ' -f1) $WASM_OPT_LEVEL"
  if [ -f "$out.wasm" ] && [ -f "$out.sha256" ] && [ "$(cat "$out.sha256")" = "$sum" ]; then
    step "wasm-opt $WASM_OPT_LEVEL (demo → $out): up to date"
  else
    step "wasm-opt $WASM_OPT_LEVEL (demo → $out)"
    rm -f "$out.sha256"
    wasm_opt build/demo/index_bg.wasm "$out.wasm"
    echo "$sum" > "$out.sha256"
  fi
  rm -rf "$out"
  cp -r build/demo "$out"
  cp "$out.wasm" "$out/index_bg.wasm"
fi

# The npm package as packed (its size is a bench figure: wasm_npm_gzip_bytes).
[ "$opt" = 1 ] && bash scripts/build-js.sh --opt

step "sizes"
for f in build/demo/index_bg.wasm build/bench/*/index_bg.wasm js/dist/gluebind_bg.wasm; do
  [ -f "$f" ] && printf '    %-36s %9d bytes raw, %8d bytes gzip -9\n' "$f" "$(wc -c < "$f")" "$(gzip -9 -c "$f" | wc -c)"
done
done_steps
