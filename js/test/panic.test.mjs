// A panic inside gluebind's wasm: the call throws, the wasm instance is replaced, and the next
// event runs on a new registry (init runs again; memory:// data is gone).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Gluebind, createAll, defineModel, panicForTesting } from "gluebind";
import { fakeCtx } from "./helpers.mjs";

describe("panic recovery", () => {
  it("the next event gets a new registry, with init run again", async () => {
    let inits = 0;
    const db = new Gluebind({
      url: "memory://panic",
      init: async (session) => {
        inits += 1;
        await session.executeBatch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)");
        await session.commit();
      },
    });
    const ctx = fakeCtx();
    const insert = db.bind(async () => {
      await db.session().execute("INSERT INTO t VALUES (1)");
      await db.session().commit();
      return new Response("ok");
    });
    const count = db.bind(async () => {
      const [{ n }] = await db.session().execute("SELECT COUNT(*) AS n FROM t");
      return Response.json(n);
    });
    await insert(new Request("http://x/"), {}, ctx);
    assert.equal(await (await count(new Request("http://x/"), {}, ctx)).json(), 1);
    await ctx.settle();

    const originalError = console.error;
    console.error = () => {}; // the panic and the reset are logged on purpose
    try {
      assert.throws(() => panicForTesting(), /unreachable|panic/i);
      const res = await count(new Request("http://x/"), {}, ctx);
      assert.equal(await res.json(), 0, "a new instance: memory:// starts empty");
      await ctx.settle();
    } finally {
      console.error = originalError;
    }
    assert.equal(inits, 2, "init ran again for the new registry");
    assert.equal(db.stats().sessionsActive, 0);
    assert.equal(db.stats().registriesCreated, 1);
  });

  it("a model defined before the panic works after it (its Rust handle is rebuilt)", async () => {
    const Note = defineModel("notes", { id: { type: "INTEGER", primaryKey: true }, text: { type: "TEXT" } });
    const db = new Gluebind({
      url: "memory://panic_models",
      init: async (session) => {
        await createAll(session, [Note]);
        await session.commit();
      },
    });
    const ctx = fakeCtx();
    const write = db.bind(async () => {
      const session = db.session();
      session.add(Note, { id: await Note.nextId(session), text: "kept?" });
      await session.commit();
      return Response.json(await Note.query(session).filter(Note.c.text.eq("kept?")).count());
    });
    assert.equal(await (await write(new Request("http://x/"), {}, ctx)).json(), 1);
    await ctx.settle();
    const originalError = console.error;
    console.error = () => {};
    try {
      assert.throws(() => panicForTesting(), /unreachable|panic/i);
      assert.equal(await (await write(new Request("http://x/"), {}, ctx)).json(), 1, "a new, empty database");
      await ctx.settle();
    } finally {
      console.error = originalError;
    }
  });
});
