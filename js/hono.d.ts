// Types of "gluebind/hono".
import type { MiddlewareHandler } from "hono";
import type { Gluebind, Session } from "./index.js";

/** The Hono env the middleware provides: `c.var.session`. */
export type GluebindEnv = {
  Variables: {
    /** The request's session (the same one `db.session()` returns anywhere in the request). */
    session: Session;
  };
};

/**
 * Runs every request in a scope of `db`, with its session at `c.var.session`; teardown in
 * `c.executionCtx.waitUntil`, a rollback when the handler threw.
 *
 *   const app = new Hono<GluebindEnv>();   // or: new Hono().use(gluebind(db))
 *   app.use(gluebind(db));
 */
export declare function gluebind(db: Gluebind): MiddlewareHandler<GluebindEnv>;
