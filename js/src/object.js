// GluebindDatabase: the Durable Object class of do:// URLs. A worker that uses do:// exports it
// from its entry module (`export { GluebindDatabase } from "gluebind";`) and declares it in
// wrangler.toml (a durable_objects binding and a new_sqlite_classes migration). The object
// validates and applies commits in Rust (the DatabaseObject of the wasm module), over its own
// SQLite storage; it runs no user code.

import { wasm } from "./wasm.js";

export class GluebindDatabase {
  #storage;
  #object = null;
  #epoch = null;

  /** @param {{ storage: unknown }} ctx the Durable Object's state */
  constructor(ctx, _env) {
    this.#storage = ctx.storage;
  }

  /** Answers a request of a do:// engine (JSON in, JSON out), synchronously once read. */
  async fetch(request) {
    const body = await request.text();
    // A panic elsewhere in the isolate replaces the wasm instance, and an object of the old one
    // cannot be called: make it again (it reloads the database from the object's storage).
    const epoch = wasm().instanceEpoch();
    if (this.#object === null || epoch !== this.#epoch) {
      this.#object = new (wasm().DatabaseObject)(this.#storage);
      this.#epoch = epoch;
    }
    return new Response(this.#object.handle(body), { headers: { "content-type": "application/json" } });
  }
}
