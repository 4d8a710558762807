// The unit of work from JavaScript (Rust's src/model/unit.rs behind session.add / get / delete
// / flush), conditions with and/or/not, and the commit hooks. The shared fixtures
// (fixtures.test.mjs) check the SQL of the same operations against the Rust core; these cases
// check what only JavaScript has: object identity, values a plain object holds (Dates, bytes,
// bigints, int64 strings), binds, scopes and hooks that are JavaScript functions.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  Condition,
  NotFoundError,
  SqlError,
  UniqueError,
  and,
  createAll,
  defineModel,
  not,
  or,
} from "gluebind";
import { fakeCtx, memoryDb } from "./helpers.mjs";

const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT" },
  email: { type: "TEXT", unique: true },
  age: { type: "INT32", nullable: true },
});
const Hit = defineModel("hits", { path: { type: "TEXT", primaryKey: true }, count: { type: "INTEGER" } }, { bindKey: "cache" });

/** A database with users 1 Ada (36), 2 Bob (no age), 3 Cy (17), committed; queries recorded. */
async function seeded(options = {}) {
  const db = memoryDb({ binds: { cache: `memory://uow_${process.pid}_${Math.random()}` }, recordQueries: true, ...options });
  const s = db.openSession();
  await createAll(s, [User, Hit]);
  for (const [id, name, age] of [
    [1, "Ada", 36],
    [2, "Bob", null],
    [3, "Cy", 17],
  ]) {
    await User.insert(s, { id, name, email: `${name.toLowerCase()}@x`, age });
  }
  await s.commit();
  s.close();
  return db;
}

const sqlSince = (s, n) => s.recordedQueries().slice(n).map((q) => q.sql);

describe("conditions: and, or, not", () => {
  it("combine with SQL's NULL semantics, from column handles or the module's functions", async () => {
    const db = await seeded();
    const s = db.openSession();
    const ids = async (cond) => (await User.query(s).filter(cond).orderBy("id").all()).map((u) => u.id);
    const minor = User.c.age.lt(18);
    assert.ok(minor instanceof Condition);
    assert.deepEqual(await ids(minor.or(User.c.age.isNull())), [2, 3]);
    assert.deepEqual(await ids(or(minor, User.c.age.isNull())), [2, 3]);
    // NOT of a comparison with NULL is not true either: Bob (no age) is in neither.
    assert.deepEqual(await ids(not(minor)), [1]);
    assert.deepEqual(await ids(minor.not()), [1]);
    assert.deepEqual(await ids(and(User.c.name.like("%y"), minor)), [3]);
    assert.deepEqual(await ids(User.c.id.in([1, 3]).and(User.c.age.ge(18))), [1]);
    assert.deepEqual(await ids(User.c.id.in([])), []);
    assert.deepEqual(await ids(not(User.c.id.in([]))), [1, 2, 3]);
    // Filters and conditions mix; a condition can be reused.
    assert.deepEqual((await User.query(s).filter("name", "ne", "Ada").filter(minor.not()).all()).map((u) => u.id), []);
    assert.equal(await User.query(s).filter(minor).count(), 1);
    s.close();
  });

  it("are checked where they are made", () => {
    assert.throws(() => User.c.email.isNull(), (err) => err instanceof SqlError && /email is NOT NULL/.test(err.message));
    assert.throws(() => User.c.age.like("1%"), /like needs a TEXT column/);
    assert.throws(() => User.c.id.in(5), /in takes an array of values, got number/);
    assert.throws(() => User.c.id.eq(undefined), /the value is undefined \(a missing variable\?\)/);
    assert.throws(() => User.c.name.eq({ a: 1 }), /is of type object; bind null/);
    assert.throws(() => and(), /and\(\) needs at least one condition/);
    assert.throws(() => or(["id", "eq", 1]), (err) => err instanceof ConfigError && /column handles/.test(err.message));
    const other = Hit.c.count.gt(1);
    assert.throws(() => User.c.id.eq(1).and(other), /a condition on hits cannot filter users/);
    const db = memoryDb();
    assert.throws(() => User.query(db.openSession()).filter(other), /a condition on hits cannot filter users/);
  });
});

describe("the unit of work", () => {
  it("session.get: one object per model and key; changes become UPDATEs of the changed columns", async () => {
    const db = await seeded();
    const s = db.openSession();
    const ada = await s.get(User, 1);
    assert.deepEqual({ ...ada }, { id: 1, name: "Ada", email: "ada@x", age: 36 });
    const n = s.recordedQueries().length;
    assert.equal(await s.get(User, 1), ada, "the identity map: no query, the same object");
    assert.equal(await s.get(User, 1n), ada, "1n is the same key");
    assert.equal(s.recordedQueries().length, n);
    assert.equal(s.isDirty, false);
    ada.name = "Ada L";
    assert.equal(s.isDirty, true, "a changed tracked object is pending");
    await s.flush();
    assert.deepEqual(sqlSince(s, n), ['UPDATE "users" SET "name" = $1 WHERE "id" = $2']);
    await s.flush();
    assert.deepEqual(sqlSince(s, n + 1), [], "nothing changed since");
    assert.equal(await s.get(User, 404), null);
    await s.commit();
    assert.equal((await User.get(db.openSession(), 1)).name, "Ada L", "committed");
    s.close();
  });

  it("session.add tracks the object itself; autoflush writes it before the next query", async () => {
    const db = await seeded();
    const s = db.openSession();
    const dee = { id: 4, name: "Dee", email: "dee@x" };
    assert.equal(s.add(User, dee), dee);
    dee.age = 52; // still pending: one INSERT with the age
    assert.equal(await User.query(s).count(), 4, "autoflush before the query");
    assert.equal(await s.get(User, 4), dee, "the added object is the tracked one");
    assert.equal((await User.get(s, 4)).age, 52);
    assert.throws(() => s.add(User, { id: 4, name: "x", email: "y" }), UniqueError);
    assert.throws(() => s.add({ table: "users" }, dee), (err) => err instanceof ConfigError && /needs a model/.test(err.message));
    await s.rollback();
    assert.equal(await User.query(s).count(), 3, "rolled back");
    dee.name = "Detached"; // expired: no longer tracked
    assert.equal(s.isDirty, false);
    s.close();
  });

  it("session.delete, then get gives null; a deleted row's flush is one DELETE", async () => {
    const db = await seeded();
    const s = db.openSession();
    const bob = await User.get(s, 2); // a plain row, not tracked: delete takes any row object
    s.delete(User, bob);
    assert.equal(await s.get(User, 2), null);
    await s.commit();
    assert.equal(await User.get(s, 2), null);
    assert.throws(() => s.delete(User, { name: "no key" }), /session.delete\(users\): the primary key id is undefined/);
    s.close();
  });

  it("autoflush: false leaves pending objects to flush() and commit()", async () => {
    const db = await seeded({ autoflush: false });
    const s = db.openSession();
    s.add(User, { id: 9, name: "Nine", email: "9@x" });
    assert.equal(await User.query(s).count(), 3);
    await s.flush();
    assert.equal(await User.query(s).count(), 4);
    s.close();
  });

  it("bulk verbs flush pending objects first and keep tracked objects in step", async () => {
    for (const autoflush of [true, false]) {
      const db = await seeded({ autoflush });
      const s = db.openSession();
      const ada = await s.get(User, 1);
      const cy = await s.get(User, 3);
      const dee = s.add(User, { id: 4, name: "Dee", email: "dee@x", age: 10 }); // a pending insert
      ada.name = "Ada L"; // a pending change
      const minors = User.query(s).filter("age", "lt", 18);
      assert.equal(await minors.update({ age: null, name: "minor" }), 2, `autoflush ${autoflush}`);
      assert.deepEqual({ ...cy }, { id: 3, name: "minor", email: "cy@x", age: null }, "the tracked object itself");
      assert.deepEqual({ ...dee }, { id: 4, name: "minor", email: "dee@x", age: null });
      assert.equal(await s.get(User, 3), cy);
      let n = s.recordedQueries().length;
      await s.flush();
      assert.deepEqual(sqlSince(s, n), [], "refreshed values are not written again");
      cy.age = 18; // changed afterwards: written as any change
      await s.flush();
      assert.deepEqual(sqlSince(s, n), ['UPDATE "users" SET "age" = $1 WHERE "id" = $2']);
      // A delete: the tracked objects of its rows are no longer tracked.
      assert.equal(await User.query(s).filterBy({ name: "minor" }).delete(), 2);
      assert.equal(await s.get(User, 3), null);
      cy.name = "ghost"; // detached: never written
      n = s.recordedQueries().length;
      await s.flush();
      assert.deepEqual(sqlSince(s, n), []);
      assert.equal(await s.get(User, 1), ada);
      await s.commit();
      const rows = await User.query(db.openSession()).orderBy("id").all();
      assert.deepEqual(rows.map((r) => [r.id, r.name]), [[1, "Ada L"], [2, "Bob"]]);
      s.close();
    }
  });

  it("bulk verbs of a bind's model run on the bind", async () => {
    const db = await seeded();
    const s = db.openSession();
    await Hit.insert(s, { path: "/a", count: 1 });
    await Hit.insert(s, { path: "/b", count: 2 });
    const tracked = await s.get(Hit, "/a");
    assert.equal(await Hit.query(s).filter("count", "lt", 5).update({ count: 5 }), 2);
    assert.equal(tracked.count, 5);
    assert.equal(await Hit.query(s).filterBy({ path: "/b" }).delete(), 1);
    await s.commit();
    assert.deepEqual(await Hit.query(db.openSession()).all(), [{ path: "/a", count: 5 }]);
    s.close();
  });

  it("tracked objects of a bind's model write to the bind", async () => {
    const db = await seeded();
    const s = db.openSession();
    s.add(Hit, { path: "/", count: 1 });
    await s.commit();
    const hit = await s.get(Hit, "/");
    hit.count += 1;
    await s.commit();
    assert.deepEqual([...(await s.forBind("cache").execute("SELECT count FROM hits"))], [{ count: 2 }]);
    assert.throws(() => s.forBind("cache").add(Hit, { path: "/x", count: 1 }), /tracked by the registry's session/);
    s.close();
  });

  it("values of every kind compare as the column holds them: unchanged ones are not written", async () => {
    const Every = defineModel("every_kind", {
      key: { type: "TEXT", primaryKey: true },
      big: { type: "INTEGER", bigint: true },
      at: { type: "TIMESTAMP" },
      bytes: { type: "BYTEA" },
      day: { type: "DATE" },
      ratio: { type: "FLOAT" },
    });
    for (const int64 of ["auto", "bigint", "string"]) {
      const db = memoryDb({ recordQueries: true, int64 });
      const s = db.openSession();
      await createAll(s, [Every]);
      await Every.insert(s, { key: "k", big: 2n ** 60n, at: new Date("2024-01-02T03:04:05.123Z"), bytes: new Uint8Array([1, 2]), day: "2024-01-02", ratio: 0.5 });
      await s.commit();
      const row = await s.get(Every, "k");
      const n = s.recordedQueries().length;
      row.at = new Date(row.at.getTime()); // equal values, new objects
      row.bytes = Uint8Array.from(row.bytes);
      await s.flush();
      assert.deepEqual(sqlSince(s, n), [], `${int64}: nothing written`);
      row.ratio = 0.25;
      await s.flush();
      assert.deepEqual(sqlSince(s, n), ['UPDATE "every_kind" SET "ratio" = $1 WHERE "key" = $2'], int64);
      s.close();
    }
  });

  it("a flush that fails changes nothing and keeps the objects pending", async () => {
    const db = await seeded();
    const s = db.openSession();
    const ada = await s.get(User, 1);
    ada.email = "bob@x"; // taken
    s.add(User, { id: 5, name: "Eve", email: "eve@x" });
    await assert.rejects(s.flush(), UniqueError);
    await assert.rejects(User.query(s).count(), UniqueError, "autoflush tries again");
    ada.email = "ada@x";
    assert.equal(await User.query(s).count(), 4);
    s.close();
  });

  it("works in a request scope: db.session() sees its own tracked objects", async () => {
    const db = await seeded();
    const ctx = fakeCtx();
    const handler = db.bind(async () => {
      const user = await db.session().get(User, 3);
      user.age += 1;
      await db.session().commit();
      return Response.json(user);
    });
    assert.equal((await (await handler(new Request("http://x/"), {}, ctx)).json()).age, 18);
    await ctx.settle();
    assert.equal((await User.get(db.openSession(), 3)).age, 18);
  });
});

describe("commit hooks", () => {
  it("beforeCommit sees the model changes in flush order; afterCommit what was committed", async () => {
    const calls = [];
    const db = await seeded({
      beforeCommit: (session, changes) => calls.push(["before", session.id, changes]),
      afterCommit: ({ session, info, changes }) => calls.push(["after", session.id, info, changes]),
    });
    calls.length = 0; // the seeding commit (plain inserts: no model changes)
    const s = db.openSession();
    s.add(User, { id: 4, name: "Dee", email: "dee@x" });
    (await s.get(User, 1)).name = "Ada L"; // get's query autoflushes the INSERT first
    s.delete(User, { id: 2 });
    await s.commit();
    const changes = [
      { table: "users", key: 4, operation: "insert" },
      { table: "users", key: 1, operation: "update" },
      { table: "users", key: 2, operation: "delete" },
    ];
    assert.deepEqual(calls, [
      ["before", s.id, changes],
      ["after", s.id, { version: calls[1][2].version, rowsWritten: 3, tablesChanged: 0 }, changes],
    ]);
    assert.equal(typeof calls[1][2].version, "number");
    calls.length = 0;
    await s.commit();
    assert.deepEqual(calls, [], "nothing to commit: no hook runs");
    s.close();
  });

  it("a throwing beforeCommit refuses the commit with its own error; the writes stay pending", async () => {
    class Refused extends Error {}
    const db = await seeded({
      beforeCommit: (_session, changes) => {
        if (changes.some((c) => c.operation === "delete")) throw new Refused("no deletes");
      },
    });
    const s = db.openSession();
    s.delete(User, { id: 1 });
    const err = await s.commit().then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof Refused, `the hook's own error, got ${err}`);
    assert.equal(s.isDirty, true, "the writes stay pending");
    assert.equal(await User.query(db.openSession()).count(), 3, "nothing committed");
    await s.rollback();
    await s.commit();
    s.close();
  });

  it("objects a beforeCommit hook adds are committed with the rest; hooks run at teardown too", async () => {
    let after = 0;
    const db = await seeded({
      teardown: "commit",
      beforeCommit: (session, changes) => {
        if (changes.some((c) => c.table === "users" && c.operation === "insert")) {
          session.add(Hit, { path: `/audit/${changes.length}`, count: 1 });
        }
      },
      afterCommit: () => {
        after += 1;
      },
    });
    after = 0; // the seeding commit
    const ctx = fakeCtx();
    await db.bind(async () => {
      db.session().add(User, { id: 7, name: "Gus", email: "gus@x" });
      return new Response("later");
    })(new Request("http://x/"), {}, ctx);
    await ctx.settle();
    const s = db.openSession();
    assert.equal((await User.getOr404(s, 7)).name, "Gus");
    assert.equal((await Hit.get(s, "/audit/1")).count, 1);
    assert.equal(after, 1);
    s.close();
  });

  it("bad hooks: a Promise from beforeCommit refuses the commit; a throwing afterCommit is logged", async () => {
    let armed = false; // (not for the seeding commit)
    const db = await seeded({ beforeCommit: () => (armed ? Promise.resolve() : undefined) });
    armed = true;
    const s = db.openSession();
    s.add(User, { id: 8, name: "H", email: "h@x" });
    await assert.rejects(s.commit(), (err) => err instanceof ConfigError && /returned a Promise/.test(err.message));
    s.close();
    const logged = [];
    const original = console.error;
    console.error = (...args) => logged.push(args);
    try {
      const loud = await seeded({
        afterCommit: () => {
          throw new Error("boom");
        },
      });
      const t = loud.openSession();
      await User.insert(t, { id: 8, name: "H", email: "h@x" });
      await t.commit();
      assert.equal(await User.query(loud.openSession()).count(), 4, "committed all the same");
      t.close();
    } finally {
      console.error = original;
    }
    assert.match(String(logged[0]?.[0]), /afterCommit hook threw/);
    assert.throws(() => memoryDb({ beforeCommit: "no" }), (err) => err instanceof ConfigError && /beforeCommit must be a function/.test(err.message));
  });

  it("NotFoundError from the model layer keeps its status", async () => {
    const db = await seeded();
    await assert.rejects(User.getOr404(db.openSession(), 99), (err) => err instanceof NotFoundError && err.status === 404);
  });
});
