// Binds (several engines in one session, Flask-SQLAlchemy's SQLALCHEMY_BINDS) and query
// recording (SQLALCHEMY_RECORD_QUERIES) from JavaScript.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, createAll, defineModel } from "gluebind";
import { memoryDb } from "./helpers.mjs";

const Note = defineModel("notes", { id: { type: "INTEGER", primaryKey: true }, text: { type: "TEXT" } });
const Hit = defineModel("hits", { path: { type: "TEXT", primaryKey: true }, count: { type: "INTEGER" } }, { bindKey: "cache" });

async function setUp(options = {}) {
  const db = memoryDb({ binds: { cache: "memory://" }, recordQueries: true, ...options });
  const s = db.openSession();
  await createAll(s, [Note, Hit]);
  await s.commit();
  s.close();
  return db;
}

describe("binds", () => {
  it("route a model to its bind's engine, in one unit of work", async () => {
    const db = await setUp();
    await db.run(async () => {
      const s = db.session();
      await Note.insert(s, { id: 1, text: "a" });
      await Hit.insert(s, { path: "/", count: 1 });
      const cache = s.forBind("cache");
      assert.equal(cache.bindKey, "cache");
      assert.equal(s.bindKey, undefined, "the default bind's session has no key");
      assert.deepEqual([...(await cache.execute("SELECT count FROM hits"))], [{ count: 1 }]);
      await assert.rejects(s.execute("SELECT * FROM hits"), /hits/, "not on the default engine");
      assert.equal(s.isDirty, true);
      await s.commit();
      assert.equal(s.isDirty, false);
    });
    const t = db.openSession();
    assert.equal(await Note.query(t).count(), 1);
    assert.equal((await Hit.get(t, "/")).count, 1, "committed with the default bind");
    await Hit.insert(t, { path: "/b", count: 1 });
    await t.rollback();
    assert.equal(await Hit.query(t).count(), 1, "rollback covers the binds");
    t.close();
  });

  it("an unknown bind key or a bad binds option is a ConfigError naming it", async () => {
    const db = await setUp();
    const s = db.openSession();
    assert.throws(() => s.forBind("nope"), (err) => err instanceof ConfigError && /"nope"/.test(err.message));
    const Lost = defineModel("lost", { id: { type: "INTEGER", primaryKey: true } }, { bindKey: "other" });
    await assert.rejects(createAll(s, [Lost]), (err) => err instanceof ConfigError && /"other"/.test(err.message));
    assert.throws(() => memoryDb({ binds: { cache: "ftp://x" } }), ConfigError);
    assert.throws(() => memoryDb({ binds: ["memory://"] }), ConfigError);
    s.close();
  });
});

describe("query recording", () => {
  it("lists each statement with SQL, bound params, duration and rows; the registry keeps recent ones", async () => {
    const db = await setUp();
    await db.run(async () => {
      const s = db.session();
      await Note.insert(s, { id: 7, text: "it's" });
      await Note.query(s).filterBy({ text: "it's" }).all();
      await assert.rejects(s.execute("SELECT nope FROM notes"));
      const [insert, select, failed] = s.recordedQueries();
      assert.match(insert.sql, /^INSERT INTO "notes"/);
      assert.deepEqual(insert.params, [7, "it's"]);
      assert.equal(insert.rows, 1);
      assert.equal(select.rows, 1);
      assert.equal(typeof select.durationMs, "number");
      assert.equal(select.ok, true);
      assert.equal(failed.ok, false);
      assert.equal(insert.session, s.id);
    });
    const recent = db.recentQueries();
    assert.ok(recent.some((q) => q.sql.startsWith("INSERT") && q.params.includes("it's")), JSON.stringify(recent));
  });

  it("is off by default", async () => {
    const db = memoryDb();
    const s = db.openSession();
    await s.execute("SELECT 1");
    assert.deepEqual(s.recordedQueries(), []);
    assert.deepEqual(db.recentQueries(), []);
    s.close();
  });
});

describe("a bind's session", () => {
  it("runs its own models only, and leaves commit and rollback to the session that opened it", async () => {
    const db = await setUp();
    const s = db.openSession();
    const cache = s.forBind("cache");
    assert.equal(await Hit.query(cache).count(), 0, "its own model");
    assert.throws(() => Note.query(cache), (err) => err instanceof ConfigError && /default bind/.test(err.message));
    await assert.rejects(cache.commit(), ConfigError);
    await assert.rejects(cache.rollback(), ConfigError);
    assert.throws(() => cache.commitDeferred(), ConfigError);
    s.close();
  });
});
