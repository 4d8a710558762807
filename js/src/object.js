// GluebindDatabase: the Durable Object class of do:// URLs. A worker that uses do:// exports it
// from its entry module (`export { GluebindDatabase } from "gluebind";`) and declares it in
// wrangler.toml (a durable_objects binding and a new_sqlite_classes migration). The object
// validates and applies commits in Rust (the DatabaseObject of the wasm module), over its own
// SQLite storage; it runs no user code.
//
// The do:// engine calls its RPC method `gluebind` (JSON text in and out), which needs the class
// to extend `DurableObject` from "cloudflare:workers" (workerd.js passes it; Node, which has no
// such module, a plain base); `fetch` answers the same requests as HTTP.

import { wasm } from "./wasm.js";

/** The class over `Base` (the runtime's DurableObject, or a plain class outside Workers). */
export function databaseClass(Base) {
  return class GluebindDatabase extends Base {
    #storage;
    #object = null;
    #epoch = null;

    /** @param {{ storage: unknown }} ctx the Durable Object's state */
    constructor(ctx, env) {
      super(ctx, env);
      this.#storage = ctx.storage;
    }

    /** Answers a request of a do:// engine (JSON text in, JSON text out), synchronously. */
    gluebind(body) {
      // A panic elsewhere in the isolate replaces the wasm instance, and an object of the old
      // one cannot be called: make it again (it reloads the database from the object's storage).
      const epoch = wasm().instanceEpoch();
      if (this.#object === null || epoch !== this.#epoch) {
        this.#object = new (wasm().DatabaseObject)(this.#storage);
        this.#epoch = epoch;
      }
      return this.#object.handle(String(body));
    }

    /** The same, as HTTP (a POST of the JSON text). */
    async fetch(request) {
      const answer = this.gluebind(await request.text());
      return new Response(answer, { headers: { "content-type": "application/json" } });
    }
  };
}
