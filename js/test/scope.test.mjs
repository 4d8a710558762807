// Request scopes through AsyncLocalStorage: one session per event, found from anywhere in the
// event (interleaved async handlers included), torn down in ctx.waitUntil per the policy.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, Gluebind, OutsideScopeError, UniqueError } from "gluebind";
import { fakeCtx, tick, usersDb } from "./helpers.mjs";

/** "Another module": finds the session on its own. */
function lookUp(db) {
  return db.session().id;
}

describe("scopes", () => {
  it("the same session everywhere in one event, across awaits and helper functions", async () => {
    const db = await usersDb();
    const handler = db.bind(async () => {
      const a = db.session();
      await tick();
      const b = await (async () => {
        await tick();
        return db.session();
      })();
      const c = await new Promise((resolve) => setTimeout(() => resolve(lookUp(db)), 1));
      assert.equal(a, b, "the same Session object");
      assert.equal(c, a.id);
      assert.equal(db.sessionId(), a.id);
      return new Response(a.id);
    });
    const ctx = fakeCtx();
    const res = await handler(new Request("http://x/"), {}, ctx);
    assert.match(await res.text(), /^[0-9a-f]{8}-\d+$/);
    await ctx.settle();
  });

  it("100 interleaved events: each sees only its own session, and all are removed", async () => {
    const db = await usersDb();
    const before = db.stats();
    const ctx = fakeCtx();
    const handler = db.bind(async (request) => {
      const i = Number(new URL(request.url).searchParams.get("i"));
      const mine = db.session();
      const seen = new Set();
      for (let step = 0; step < 5; step++) {
        await tick(); // other events run here
        seen.add(lookUp(db));
        await mine.execute("INSERT INTO users VALUES ($1, $2, $3)", [i * 10 + step, `u${i}`, `u${i}-${step}@x`]);
      }
      // Read-your-writes: this session sees its own five rows, no one else's (uncommitted).
      const rows = await db.session().execute("SELECT COUNT(*) AS n FROM users");
      // The count scanned the table every other event inserts into: serializable isolation
      // would (rightly) refuse most of these commits. This test is about sessions per event.
      db.session().isolation = "snapshot";
      if (i % 2 === 0) await db.session().commit();
      return Response.json({ i, seen: [...seen], id: mine.id, n: rows[0].n });
    });
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => handler(new Request(`http://x/?i=${i}`), {}, ctx).then((r) => r.json())),
    );
    const ids = new Set();
    for (const r of responses) {
      assert.deepEqual(r.seen, [r.id], `event ${r.i} saw another session`);
      assert.ok(r.n >= 5, `event ${r.i} did not see its own writes`);
      ids.add(r.id);
    }
    assert.equal(ids.size, 100, "events shared a session");
    await ctx.settle();
    const after = db.stats();
    assert.equal(after.sessionsOpened - before.sessionsOpened, 100);
    assert.equal(after.sessionsRemoved - before.sessionsRemoved, 100);
    assert.equal(after.sessionsActive, 0);
    // Odd events never committed: the default teardown rolled them back.
    assert.equal(after.teardownRollbacks - before.teardownRollbacks, 50);
    const check = db.openSession();
    assert.equal((await check.execute("SELECT COUNT(*) AS n FROM users"))[0].n, 250);
    check.close();
  });

  it("teardown runs in ctx.waitUntil, after the response", async () => {
    const db = await usersDb();
    const ctx = fakeCtx();
    let session;
    const res = await db.bind(async () => {
      session = db.session();
      return new Response("ok");
    })(new Request("http://x/"), {}, ctx);
    assert.equal(res.status, 200);
    assert.equal(ctx.pending.length, 1, "teardown handed to waitUntil");
    assert.equal(db.stats().sessionsActive, 1, "not yet removed when the response is returned");
    await ctx.settle();
    assert.equal(db.stats().sessionsActive, 0);
    assert.equal(session.isClosed, true);
  });

  it("without a ctx, run() awaits the teardown itself", async () => {
    const db = await usersDb();
    const s = await db.run(async () => db.session());
    assert.equal(s.isClosed, true);
    assert.equal(db.stats().sessionsActive, 0);
  });

  it("a handler that throws: pending writes are rolled back, the error propagates", async () => {
    const db = await usersDb({ teardown: "commit" });
    const ctx = fakeCtx();
    const boom = new Error("boom");
    await assert.rejects(
      db.bind(async () => {
        await db.session().execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
        throw boom;
      })(new Request("http://x/"), {}, ctx),
      (err) => err === boom,
    );
    await ctx.settle();
    const s = db.openSession();
    assert.equal((await s.execute("SELECT COUNT(*) AS n FROM users"))[0].n, 0);
    assert.equal(db.stats().teardownRollbacks, 1);
    s.close();
  });

  it("teardown policy 'commit' commits what a completed handler left (write-behind)", async () => {
    const db = await usersDb({ teardown: "commit" });
    const ctx = fakeCtx();
    await db.bind(async () => {
      await db.session().execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
      return new Response("ok");
    })(new Request("http://x/"), {}, ctx);
    await ctx.settle();
    const s = db.openSession();
    assert.equal((await s.execute("SELECT COUNT(*) AS n FROM users"))[0].n, 1);
    assert.equal(db.stats().teardownCommits, 1);
    s.close();
  });

  it("a failing write-behind commit is counted and logged, never thrown at the caller", async (t) => {
    const db = await usersDb({ teardown: "commit" });
    const logged = [];
    t.mock.method(console, "error", (...args) => logged.push(args));
    const ctx = fakeCtx();
    const write = db.bind(async () => {
      await db.session().execute("INSERT INTO users VALUES (1, 'a', 'same@x')");
      return new Response("ok");
    });
    const other = db.bind(async () => {
      await db.session().execute("INSERT INTO users VALUES (2, 'b', 'same@x')");
      return new Response("ok");
    });
    await Promise.all([write(new Request("http://x/"), {}, ctx), other(new Request("http://x/"), {}, ctx)]);
    await ctx.settle();
    assert.equal(db.stats().teardownErrors, 1);
    assert.equal(db.stats().teardownCommits, 1);
    assert.equal(logged.length, 1);
    assert.ok(logged[0].some((a) => a instanceof UniqueError));
  });

  it("failed(result) marks a normally returned result as failed", async () => {
    const db = await usersDb({ teardown: "commit" });
    await db.run(
      async () => {
        await db.session().execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
        return { status: 500 };
      },
      { failed: (r) => r.status >= 500 },
    );
    const s = db.openSession();
    assert.equal((await s.execute("SELECT COUNT(*) AS n FROM users"))[0].n, 0);
    s.close();
  });

  it("events that never ask for a session open none", async () => {
    const db = await usersDb();
    await db.run(async () => {
      assert.equal(db.sessionId(), null);
      assert.equal(db.inScope, true);
    });
    assert.equal(db.inScope, false);
    assert.equal(db.sessionId(), null);
    const stats = db.stats();
    assert.equal(stats.sessionsOpened, 0);
    assert.equal(stats.scopesBegun, 1);
  });

  it("nested scopes are separate events; two Gluebinds have separate scopes", async () => {
    const a = await usersDb();
    const b = await usersDb();
    await a.run(async () => {
      const outer = a.session().id;
      const inner = await a.run(async () => a.session().id);
      assert.notEqual(inner, outer);
      assert.equal(a.session().id, outer, "the outer scope is back after the inner one");
      assert.throws(() => b.session(), OutsideScopeError, "b has no scope here");
      await b.run(async () => {
        assert.equal(a.session().id, outer);
        assert.notEqual(b.session().id, outer);
      });
    });
  });

  it("one registry per Gluebind: registriesCreated counts them (once per isolate in a Worker)", async () => {
    const before = (await usersDb()).stats().registriesCreated;
    const db = new Gluebind({ url: "memory://" });
    assert.equal(db.stats().registriesCreated, before + 1);
    for (let i = 0; i < 5; i++) await db.run(async () => db.session());
    assert.equal(db.stats().registriesCreated, before + 1, "events never create registries");
  });
});

describe("url from env and init", () => {
  it("a url function creates the registry on the first event; init runs once, before it", async () => {
    let inits = 0;
    const db = new Gluebind({
      url: (env) => env.DATABASE_URL,
      init: async (session) => {
        inits += 1;
        await new Promise((r) => setTimeout(r, 5));
        await session.executeBatch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)");
        await session.commit();
      },
    });
    assert.equal(db.engine, null);
    assert.throws(() => db.stats(), ConfigError);
    assert.throws(() => db.openSession(), ConfigError);
    const handler = db.bind(async (request) => {
      const k = new URL(request.url).pathname;
      await db.session().execute("INSERT INTO kv VALUES ($1, 'x')", [k]);
      await db.session().commit();
      return new Response(k);
    });
    const env = { DATABASE_URL: "memory://from-env" };
    const ctx = fakeCtx();
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => handler(new Request(`http://x/${i}`), env, ctx)));
    assert.deepEqual(responses.map((r) => r.status), Array(10).fill(200));
    assert.equal(inits, 1, "init ran once for ten concurrent first events");
    assert.equal(db.engine, "memory://from-env");
    assert.equal(db.stats().sessionsOpened, 10, "init's session is not counted");
    await ctx.settle();
  });

  it("a failing init fails the event and is retried by the next one", async () => {
    let attempts = 0;
    const db = new Gluebind({
      url: "memory://",
      init: async () => {
        attempts += 1;
        if (attempts === 1) throw new Error("not yet");
      },
    });
    await assert.rejects(db.run(async () => "x"), /not yet/);
    assert.equal(await db.run(async () => "ok"), "ok");
    assert.equal(attempts, 2);
  });

  it("a url function returning a non-string is a ConfigError", async () => {
    const db = new Gluebind({ url: () => undefined });
    await assert.rejects(db.run(async () => 1), ConfigError);
  });
});
