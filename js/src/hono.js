// Hono middleware: `app.use(gluebind(db))` runs every request in a scope of `db` and puts the
// event's session at `c.var.session`. Teardown goes to `c.executionCtx.waitUntil`; a request
// whose handler threw (Hono's `c.error`) rolls back whatever the policy.

/**
 * @param {import("./gluebind.js").Gluebind} db
 * @returns {(c: any, next: () => Promise<void>) => Promise<void>}
 */
export function gluebind(db) {
  if (db === null || typeof db !== "object" || typeof db.run !== "function" || typeof db.session !== "function") {
    throw new TypeError("gluebind(db) needs a Gluebind instance: gluebind(new Gluebind({ url }))");
  }
  return async function gluebindMiddleware(c, next) {
    if (db.inScope) {
      // Already in a scope (db.bind(app.fetch), or the middleware twice): use that one.
      c.set("session", db.session());
      await next();
      return;
    }
    let ctx;
    try {
      ctx = c.executionCtx; // Hono throws when the runtime gave none (e.g. app.request in tests)
    } catch {
      ctx = undefined;
    }
    await db.run(
      async () => {
        c.set("session", db.session());
        await next();
      },
      { ctx, env: c.env, failed: () => c.error !== undefined },
    );
  };
}
