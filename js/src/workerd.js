// Entry for Cloudflare Workers (export conditions "workerd", "worker", "default"): the wasm
// module is imported as a module (`import source` in dist/gluebind.js), which wrangler's bundler
// uploads as a compiled module — Workers forbid compiling wasm at run time.
//
// AsyncLocalStorage comes from node:async_hooks, which needs the `nodejs_als` (or
// `nodejs_compat`) compatibility flag. It is imported dynamically so that a missing flag gives
// gluebind's own clear error instead of "No such module" at start-up.

import * as bindings from "../dist/gluebind.js";
import { install } from "./gluebind.js";
import { databaseClass } from "./object.js";

let AsyncLocalStorage = null;
let failure = null;
try {
  ({ AsyncLocalStorage } = await import("node:async_hooks"));
} catch (err) {
  failure = err;
}
install(bindings, AsyncLocalStorage, failure);

// DurableObject (for the object's RPC method) likewise: outside workerd, under the "worker" or
// "default" condition, the package still loads, with a class reached by fetch only.
let DurableObject = class {};
try {
  ({ DurableObject } = await import("cloudflare:workers"));
} catch {
  // not in workerd
}

export { Gluebind, panicForTesting } from "./gluebind.js";
/** The Durable Object class of do:// URLs (see object.js). */
export const GluebindDatabase = databaseClass(DurableObject);
export { Condition, Pagination, and, createAll, defineModel, dropAll, not, or } from "./model.js";
export * from "./migrate.js";
export * from "./errors.js";
