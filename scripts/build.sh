#!/usr/bin/env bash
# Builds the Rust demo worker into build/demo/ (wasm-bindgen output plus a module shim that
# wrangler serves). Usage: scripts/build.sh [--opt]   (--opt: no name section, then wasm-opt
# from npm binaryen; what `npm run deploy` ships)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
opt=0
for arg in "$@"; do
  case "$arg" in
    --opt) opt=1 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
out=build/demo

step "cargo build (demo, wasm32, release)"
cargo build -p gluebind-demo --target wasm32-unknown-unknown --release
wasm=target/wasm32-unknown-unknown/release/gluebind_demo.wasm

step "wasm-bindgen --target module"
rm -rf "$out.tmp"
# --opt (deploys) also drops wasm's "name" section: function names in stack traces, 0.3 MB gzip.
names=()
[ "$opt" = 1 ] && names=(--remove-name-section)
wasm-bindgen "$wasm" --out-dir "$out.tmp" --out-name index --target module "${names[@]}"
if [ "$opt" = 1 ]; then
  step "wasm-opt $WASM_OPT_LEVEL"
  wasm_opt "$out.tmp/index_bg.wasm" "$out.tmp/index_bg.opt.wasm"
  mv "$out.tmp/index_bg.opt.wasm" "$out.tmp/index_bg.wasm"
fi
# The entry wrangler serves: forwards fetch events to the wasm-bindgen module, and exports
# gluebind's Durable Object class (the do:// engine's database object) — made again when a
# panic has replaced the wasm instance, whose objects can no longer be called (worker-build's
# shim does the same for every class). It extends DurableObject, so that the do:// engine
# reaches it by RPC (its method `gluebind`), cheaper than a fetch.
cat > "$out.tmp/shim.mjs" <<'JS'
import { DurableObject } from "cloudflare:workers";
import { fetch, instanceEpoch, GluebindDatabase as Database } from "./index.js";
export default { fetch };
export class GluebindDatabase extends DurableObject {
  #args;
  #object;
  #epoch;
  constructor(ctx, env) {
    super(ctx, env);
    this.#args = [ctx, env];
    this.#make();
  }
  #make() {
    this.#object = new Database(...this.#args);
    this.#epoch = instanceEpoch();
  }
  #current() {
    if (instanceEpoch() !== this.#epoch) this.#make();
    return this.#object;
  }
  fetch(request) {
    return this.#current().fetch(request);
  }
  gluebind(body) {
    return this.#current().gluebind(body);
  }
}
JS
rm -rf "$out"
mv "$out.tmp" "$out"

step "size"
raw=$(wc -c < "$out/index_bg.wasm")
gz=$(gzip -9 -c "$out/index_bg.wasm" | wc -c)
echo "    demo wasm: $raw bytes raw, $gz bytes gzip -9"
done_steps
