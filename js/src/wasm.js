// The wasm bindings (dist/gluebind.js), handed over once by the entry module (workerd.js,
// node.js) through install() in gluebind.js; the other modules reach them here.

import { ConfigError } from "./errors.js";

let bindings = null;

/** Called by install() with the wasm-bindgen module. */
export function setBindings(module) {
  bindings = module;
}

/** The wasm-bindgen module. */
export function wasm() {
  if (bindings === null) throw new ConfigError("gluebind's wasm module is not loaded: import from \"gluebind\"");
  return bindings;
}
