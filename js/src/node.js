// Entry for Node.js (export condition "node"): the same wasm module, compiled from the file
// next to the bindings (dist/gluebind.node.js). For tests, benchmarks and scripts; Workers use
// workerd.js.

import { AsyncLocalStorage } from "node:async_hooks";
import * as bindings from "../dist/gluebind.node.js";
import { install } from "./gluebind.js";
import { databaseClass } from "./object.js";

install(bindings, AsyncLocalStorage, null);

export { Gluebind, panicForTesting } from "./gluebind.js";
/** The Durable Object class of do:// URLs (see object.js), over a plain base outside Workers. */
export const GluebindDatabase = databaseClass(class {});
export { Condition, Pagination, and, createAll, defineModel, dropAll, not, or } from "./model.js";
export * from "./migrate.js";
export * from "./errors.js";
