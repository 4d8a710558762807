// The Hono middleware: c.var.session is the event's session; scope and teardown per request.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { gluebind } from "gluebind/hono";
import { fakeCtx, tick, usersDb } from "./helpers.mjs";

async function app(options) {
  const db = await usersDb(options);
  const app = new Hono().use(gluebind(db));
  app.get("/same", async (c) => {
    await tick();
    return c.json({ var: c.var.session.id, lookUp: db.session().id });
  });
  app.post("/users/:id", async (c) => {
    const id = Number(c.req.param("id"));
    await c.var.session.execute("INSERT INTO users VALUES ($1, $2, $3)", [id, `u${id}`, `u${id}@x`]);
    if (c.req.query("fail")) throw new Error("handler failed");
    if (c.req.query("commit")) await c.var.session.commit();
    return c.json({ id }, 201);
  });
  app.onError((err, c) => c.json({ error: err.message }, 500));
  return { db, app };
}

async function count(db) {
  const s = db.openSession();
  const [{ n }] = await s.execute("SELECT COUNT(*) AS n FROM users");
  s.close();
  return n;
}

describe("gluebind/hono", () => {
  it("c.var.session is the session db.session() finds, distinct per request", async () => {
    const { db, app: a } = await app();
    const ctx = fakeCtx();
    const bodies = await Promise.all(
      Array.from({ length: 20 }, () => a.fetch(new Request("http://x/same"), {}, ctx).then((r) => r.json())),
    );
    for (const b of bodies) assert.equal(b.var, b.lookUp);
    assert.equal(new Set(bodies.map((b) => b.var)).size, 20);
    assert.equal(ctx.pending.length, 20, "teardown through c.executionCtx.waitUntil");
    await ctx.settle();
    assert.equal(db.stats().sessionsActive, 0);
    assert.equal(db.stats().sessionsRemoved, 20);
  });

  it("commit before responding persists; a thrown handler (c.error) rolls back even with teardown commit", async () => {
    const { db, app: a } = await app({ teardown: "commit" });
    const ctx = fakeCtx();
    assert.equal((await a.fetch(new Request("http://x/users/1?commit=1", { method: "POST" }), {}, ctx)).status, 201);
    assert.equal((await a.fetch(new Request("http://x/users/2?fail=1", { method: "POST" }), {}, ctx)).status, 500);
    assert.equal((await a.fetch(new Request("http://x/users/3", { method: "POST" }), {}, ctx)).status, 201);
    await ctx.settle();
    assert.equal(await count(db), 2, "user 2 rolled back, user 3 committed by the write-behind teardown");
  });

  it("works without an executionCtx (app.request): teardown is awaited", async () => {
    const { db, app: a } = await app();
    const res = await a.request("/users/7", { method: "POST" });
    assert.equal(res.status, 201);
    assert.equal(db.stats().sessionsActive, 0);
    assert.equal(await count(db), 0, "the default policy rolled the uncommitted insert back");
  });

  it("inside db.bind(app.fetch) the middleware joins the existing scope", async () => {
    const { db, app: a } = await app();
    const fetch = db.bind((req, env, ctx) => a.fetch(req, env, ctx));
    const ctx = fakeCtx();
    const body = await (await fetch(new Request("http://x/same"), {}, ctx)).json();
    assert.equal(body.var, body.lookUp);
    await ctx.settle();
    assert.equal(db.stats().sessionsOpened, 1);
    assert.equal(db.stats().scopesBegun, 1);
  });

  it("rejects a non-Gluebind argument", () => {
    assert.throws(() => gluebind({}), TypeError);
  });
});
