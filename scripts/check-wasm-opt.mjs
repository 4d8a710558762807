// Fails unless js/dist carries the optimized wasm (scripts/build-js.sh --opt): wasm-opt drops
// the "name" section that a plain build keeps. Run before every pack (js/package.json's
// prepack) and by scripts/check-npm-pack.sh, so no tarball ships the 1.7 MB unoptimized build.
import { existsSync, readFileSync } from "node:fs";

const wasm = new URL("../js/dist/gluebind_bg.wasm", import.meta.url);
if (!existsSync(wasm)) {
  console.error("js/dist is not built: run `npm run build:js -- --opt` first");
  process.exit(1);
}
const module = new WebAssembly.Module(readFileSync(wasm));
if (WebAssembly.Module.customSections(module, "name").length > 0) {
  console.error("js/dist/gluebind_bg.wasm is not the optimized build: run `npm run build:js -- --opt` before packing");
  process.exit(1);
}
// On stderr: `npm pack --json` prints its JSON on stdout, after this (prepack).
console.error("    js/dist/gluebind_bg.wasm is the optimized build (no name section)");
