// Models (js/src/model.js): defineModel's checks, createAll/dropAll, the query API with bound
// parameters, getOr404, writes, bulk verbs and Flask-SQLAlchemy 3's pagination — the cases of
// the Rust core's tests/models.rs, tests/bulk.rs and src/model/paginate.rs, ported. Over 600
// lines on purpose: one file per layer of the Rust core it mirrors, each case a scenario of its
// own.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  ConflictError,
  MultipleResultsError,
  NotFoundError,
  Pagination,
  SqlError,
  UniqueError,
  createAll,
  defineModel,
  dropAll,
} from "gluebind";
import { memoryDb } from "./helpers.mjs";

const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT" },
  email: { type: "TEXT", unique: true },
  age: { type: "INT32", nullable: true },
});

/** Flask-SQLAlchemy's test model, on a bind of its own. */
const Todo = defineModel("todo", { id: { type: "INTEGER", primaryKey: true }, title: { type: "TEXT" } }, { bindKey: "cache" });

/**
 * A fresh database with Todo's "cache" bind, recording every statement (the sessions'
 * recordedQueries() show the SQL the models wrote).
 */
const db = () => memoryDb({ binds: { cache: "memory://" }, recordQueries: true });

/** A session of a fresh database where `models` exist (committed). */
async function sessionWith(models) {
  const s = db().openSession();
  await createAll(s, models);
  await s.commit();
  return s;
}

async function usersSession(database = db()) {
  const s = database.openSession();
  await createAll(s, [User]);
  await s.commit();
  for (const [id, name, age] of [
    [1, "Ada", 36],
    [2, "Bob", null],
    [3, "Cy", 17],
    [4, "Dee", 52],
    [5, "Abe", 18],
  ]) {
    await User.insert(s, { id, name, email: `${name.toLowerCase()}@example.com`, age });
  }
  await s.commit();
  return s;
}

async function todos(n) {
  const s = await sessionWith([Todo]);
  for (let id = 1; id <= n; id++) await Todo.insert(s, { id, title: `task ${id}` });
  await s.commit();
  return s;
}

/** The SQL of the statements `s` (and its binds) ran so far. */
const sqlOf = (s) => s.recordedQueries().map((q) => q.sql);

const ids = (rows) => rows.map((r) => r.id);
const code = (expected) => (err) => err.code === expected;

describe("defineModel", () => {
  it("records table, columns, primary key and bind key", () => {
    assert.equal(User.table, "users");
    assert.equal(User.primaryKey, "id");
    assert.equal(User.bindKey, null);
    assert.equal(Todo.bindKey, "cache");
    assert.deepEqual(User.columns.age, { type: "INT32", primaryKey: false, unique: false, nullable: true, bigint: false });
    assert.deepEqual(Object.keys(User.columns), ["id", "name", "email", "age"]);
    assert.ok(Object.isFrozen(User) && Object.isFrozen(User.columns) && Object.isFrozen(User.columns.id));
  });

  it("refuses names that are not identifiers, with a ConfigError naming the rule", () => {
    const pk = { id: { type: "INTEGER", primaryKey: true } };
    for (const table of ["", "1a", "a b", 'a"b', "users; DROP TABLE x", "x".repeat(64), "é", 7]) {
      assert.throws(() => defineModel(table, pk), (err) => err instanceof ConfigError && /\[A-Za-z_\]/.test(err.message), String(table));
    }
    assert.ok(defineModel("x".repeat(63), pk));
    for (const name of ['a"b', "a b", "1x", "__proto__"]) {
      const columns = JSON.parse(`{"id": {"type": "INTEGER", "primaryKey": true}, ${JSON.stringify(name)}: {"type": "TEXT"}}`);
      assert.throws(() => defineModel("t", columns), /column name .* is not valid/, name);
    }
  });

  it("needs exactly one primary key, not nullable, and known types and keys", () => {
    const cases = [
      [{ a: { type: "TEXT" } }, /exactly one column needs primaryKey: true \(found none\)/],
      [{ a: { type: "INTEGER", primaryKey: true }, b: { type: "INTEGER", primaryKey: true } }, /found a, b/],
      [{ a: { type: "INTEGER", primaryKey: true, nullable: true } }, /primary key a cannot be nullable/],
      [{ a: { type: "VARCHAR", primaryKey: true } }, /type "VARCHAR" is not one of INTEGER, .*TIMESTAMP/],
      [{ a: { type: "integer", primaryKey: true } }, /type "integer" is not one of/],
      [{ a: { type: "INTEGER", primary_key: true } }, /unknown key "primary_key"; keys are type, primaryKey, unique, index, nullable, bigint/],
      [{ a: { type: "INTEGER", primaryKey: "yes" } }, /primaryKey must be true or false/],
      [{ a: { type: "FLOAT", primaryKey: true } }, /FLOAT primary key or unique/],
      [{ a: "INTEGER" }, /expected \{ type, … \}, got string/],
      [{}, /at least one column/],
    ];
    for (const [columns, message] of cases) {
      assert.throws(() => defineModel("t", columns), (err) => err instanceof ConfigError && message.test(err.message), message);
    }
    const pk = { id: { type: "INTEGER", primaryKey: true } };
    assert.throws(() => defineModel("t", pk, { bind: "x" }), /unknown option "bind"; the only option is bindKey/);
    assert.throws(() => defineModel("t", pk, { bindKey: "" }), /bindKey must be a non-empty string/);
  });
});

describe("createAll / dropAll", () => {
  it("create the SQL shape of the Rust core, idempotently", async () => {
    const s = db().openSession();
    await createAll(s, [User, Todo]);
    assert.deepEqual(
      sqlOf(s),
      [
        'CREATE TABLE IF NOT EXISTS "users" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "email" TEXT NOT NULL UNIQUE, "age" INT32)',
        'CREATE TABLE IF NOT EXISTS "todo" ("id" INTEGER PRIMARY KEY, "title" TEXT NOT NULL)',
      ],
    );
    await s.commit();
    await User.insert(s, { id: 1, name: "Ada", email: "ada@x" });
    await s.commit();
    // Again, in the same session: no error, nothing written.
    await createAll(s, [User, Todo]);
    assert.equal(s.isDirty, false, "createAll on existing tables writes nothing");
    assert.equal(await User.query(s).count(), 1);

    await dropAll(s, [User, Todo]);
    assert.equal(sqlOf(s).at(-1), 'DROP TABLE IF EXISTS "todo"');
    assert.ok(s.recordedQueries().at(-1).session.endsWith(".cache"), "run on Todo's bind");
    await dropAll(s, [User, Todo]);
    await s.commit();
    await assert.rejects(User.query(s).count(), SqlError, "the table is gone");
    await createAll(s, [User]);
    assert.equal(await User.query(s).count(), 0);
  });

  it("select models by bindKey: undefined all, null the default bind, a string that bind", async () => {
    const s = db().openSession();
    await createAll(s, [User, Todo], { bindKey: "cache" });
    assert.equal(await Todo.query(s).count(), 0);
    await assert.rejects(User.query(s).count(), SqlError, "users is on the default bind");
    await createAll(s, [User, Todo], { bindKey: null });
    assert.equal(await User.query(s).count(), 0);
    await dropAll(s, [User, Todo], { bindKey: "cache" });
    await assert.rejects(Todo.query(s).count(), SqlError);
    assert.equal(await User.query(s).count(), 0);
    await dropAll(s, [User, Todo], { bindKey: undefined });
    await assert.rejects(User.query(s).count(), SqlError);
  });

  it("refuse what is not a model list or a session", async () => {
    const s = db().openSession();
    await assert.rejects(createAll(s, User), /models must be an array of defineModel\(\) results/);
    await assert.rejects(createAll(s, [{ table: "x" }]), ConfigError);
    await assert.rejects(createAll(s, [User], { bind: "x" }), /unknown option "bind"/);
    await assert.rejects(createAll(memoryDb(), [User]), /needs a session \(db.session\(\)/);
    assert.throws(() => User.query(undefined), /users.query\(session\) needs a session/);
  });
});

describe("values of every column type", () => {
  const Every = defineModel("every_type", {
    key: { type: "TEXT", primaryKey: true },
    i8: { type: "INT8" },
    i16: { type: "INT16" },
    i32: { type: "INT32" },
    i64: { type: "INTEGER", bigint: true },
    i128: { type: "INT128", bigint: true },
    u8: { type: "UINT8" },
    u16: { type: "UINT16" },
    u32: { type: "UINT32" },
    u64: { type: "UINT64", bigint: true },
    u128: { type: "UINT128" },
    f64: { type: "FLOAT" },
    flag: { type: "BOOLEAN" },
    bytes: { type: "BYTEA" },
    day: { type: "DATE" },
    time: { type: "TIME" },
    at: { type: "TIMESTAMP" },
    uuid: { type: "UUID" },
    ip: { type: "INET" },
    maybe: { type: "TEXT", nullable: true },
    maybe_int: { type: "INTEGER", nullable: true },
  });

  it("round-trip through insert and get, NULLs included", async () => {
    const s = await sessionWith([Every]);
    const required = {
      key: "full",
      i8: -128,
      i16: 32767,
      i32: -7,
      i64: 2n ** 63n - 1n,
      i128: -(2n ** 100n),
      u8: 255,
      u16: 65000,
      u32: 2 ** 32 - 1,
      u64: 2n ** 64n - 1n,
      u128: 1,
      f64: -1.5,
      flag: true,
      bytes: new Uint8Array([0, 1, 255]),
      day: "2024-01-02",
      time: "12:34:56",
      at: new Date("2024-01-02T03:04:05.123Z"),
      uuid: "936da01f-9abd-4d9d-80c7-02af85c822a8",
      ip: "127.0.0.1",
    };
    const full = { ...required, maybe: "x", maybe_int: 0 };
    assert.deepEqual(await Every.insert(s, full), full);
    const nulls = { ...required, key: "nulls", maybe: null, maybe_int: null };
    assert.deepEqual(await Every.insert(s, { ...required, key: "nulls" }), nulls);
    await s.commit();
    assert.deepEqual({ ...(await Every.get(s, "full")) }, full);
    assert.deepEqual({ ...(await Every.get(s, "nulls")) }, nulls);
    assert.equal(await Every.query(s).filter("maybe", "isNull").count(), 1);
    assert.equal(await Every.query(s).filterBy({ at: full.at, bytes: full.bytes, u64: full.u64 }).count(), 2);
  });
});

describe("integer columns: a number, or a bigint with bigint: true", () => {
  const Plain = defineModel("plain_ids", { id: { type: "INTEGER", primaryKey: true }, n: { type: "UINT64", nullable: true } });
  const Big = defineModel("big_ids", { id: { type: "INTEGER", primaryKey: true, bigint: true }, n: { type: "UINT128", bigint: true } });

  it("a safe value is a number by default, whatever the engine's ID; bigint: true gives a bigint", async () => {
    const s = await sessionWith([Plain, Big]);
    const id = await Plain.nextId(s);
    assert.equal(typeof id, "number");
    await Plain.insert(s, { id, n: 2n ** 53n - 1n });
    const row = await Plain.getOr404(s, id);
    assert.deepEqual({ ...row }, { id, n: Number.MAX_SAFE_INTEGER });
    assert.equal(typeof (await Plain.query(s).first()).id, "number");
    const bigId = await Big.nextId(s);
    assert.equal(typeof bigId, "bigint");
    await Big.insert(s, { id: 7, n: 1 });
    await Big.insert(s, { id: 2n ** 60n, n: 2n ** 100n });
    assert.deepEqual(
      (await Big.query(s).orderBy("id").all()).map((r) => ({ ...r })),
      [{ id: 7n, n: 1n }, { id: 2n ** 60n, n: 2n ** 100n }],
      "always a bigint, small values too",
    );
    assert.deepEqual(Plain.columns.id, { type: "INTEGER", primaryKey: true, unique: false, nullable: false, bigint: false });
    assert.equal(Big.columns.n.bigint, true);
  });

  it("a value beyond Number.MAX_SAFE_INTEGER in a number column is an error naming the fix, and changes nothing", async () => {
    const s = await sessionWith([Plain]);
    await Plain.insert(s, { id: 1, n: 5 });
    await s.execute("INSERT INTO plain_ids (id, n) VALUES ($1, $2)", [2n ** 60n, 2n ** 53n]);
    await s.commit();
    const named = (column, value) => (err) =>
      err instanceof SqlError &&
      err.message.includes(`column plain_ids.${column} holds ${value}, beyond Number.MAX_SAFE_INTEGER`) &&
      err.message.includes("bigint: true");
    await assert.rejects(Plain.query(s).all(), named("id", 2n ** 60n));
    await assert.rejects(Plain.get(s, 2n ** 60n), named("id", 2n ** 60n));
    await assert.rejects(Plain.update(s, 2n ** 60n, { n: 1 }), named("id", 2n ** 60n));
    // A failed read leaves the stored rows as they were, and raw queries still give a bigint.
    const rows = await s.execute("SELECT id, n FROM plain_ids ORDER BY id");
    assert.deepEqual([...rows].map((r) => ({ ...r })), [{ id: 1, n: 5 }, { id: 2n ** 60n, n: 2n ** 53n }]);
    assert.deepEqual({ ...(await Plain.get(s, 1)) }, { id: 1, n: 5 }, "safe rows still read");
    // The same rows read through a model whose columns say bigint: true.
    const Wide = defineModel("plain_ids", { id: { type: "INTEGER", primaryKey: true, bigint: true }, n: { type: "UINT64", nullable: true, bigint: true } });
    assert.deepEqual((await Wide.query(s).orderBy("id").all()).map((r) => ({ ...r })), [{ id: 1n, n: 5n }, { id: 2n ** 60n, n: 2n ** 53n }]);
    s.close();
  });

  it("a number column refuses a value beyond 2^53 on every write, and writes resolve to the column's type", async () => {
    const s = await sessionWith([Plain, Big]);
    await Plain.insert(s, { id: 1, n: 5 });
    const beyond = (err) =>
      err instanceof SqlError && /1152921504606846976 for n is beyond Number\.MAX_SAFE_INTEGER/.test(err.message) && /bigint: true/.test(err.message);
    await assert.rejects(Plain.insert(s, { id: 2, n: 2n ** 60n }), beyond);
    await assert.rejects(Plain.update(s, 1, { n: 2n ** 60n }), beyond);
    await assert.rejects(Plain.query(s).filterBy({ id: 1 }).update({ n: 2n ** 60n }), beyond);
    s.add(Plain, { id: 3, n: 2n ** 60n });
    await assert.rejects(s.flush(), beyond);
    await s.rollback();
    await Plain.insert(s, { id: 1, n: 5 });
    assert.deepEqual((await Plain.query(s).all()).map((r) => ({ ...r })), [{ id: 1, n: 5 }], "nothing else was written");
    // What insert and update resolve to has the row type's JavaScript types, whatever was passed.
    assert.deepEqual({ ...(await Plain.insert(s, { id: 7n, n: "4" })) }, { id: 7, n: 4 });
    assert.deepEqual({ ...(await Plain.update(s, 7, { n: 3n })) }, { id: 7, n: 3 });
    assert.deepEqual({ ...(await Big.insert(s, { id: 8, n: 1 })) }, { id: 8n, n: 1n });
    assert.deepEqual({ ...(await Big.update(s, 8, { n: 2 })) }, { id: 8n, n: 2n });
    s.close();
  });

  it("the registry's int64 option still applies to columns without the flag", async () => {
    for (const [int64, expected] of [["bigint", 3n], ["string", "3"]]) {
      const db = memoryDb({ int64 });
      const s = db.openSession();
      await createAll(s, [Plain]);
      await Plain.insert(s, { id: 3, n: null });
      assert.deepEqual({ ...(await Plain.get(s, 3)) }, { id: expected, n: null }, int64);
      // The column reads as a bigint or a string here, so a value beyond 2^53 is written.
      const big = int64 === "bigint" ? 2n ** 60n : String(2n ** 60n);
      assert.deepEqual({ ...(await Plain.insert(s, { id: 4, n: 2n ** 60n })) }, { id: int64 === "bigint" ? 4n : "4", n: big }, int64);
      await Plain.update(s, 3, { n: 2n ** 61n });
      s.add(Plain, { id: 5, n: 2n ** 62n });
      await s.flush();
      assert.equal((await Plain.query(s).count()), 3, int64);
      s.close();
    }
  });
});

describe("queries", () => {
  it("filter, filterBy, orderBy, limit, offset, count", async () => {
    const s = await usersSession();
    const q = User.query(s);
    assert.deepEqual(ids(await q.all()), [1, 2, 3, 4, 5]);
    assert.deepEqual(ids(await q.orderBy("-id").all()), [5, 4, 3, 2, 1]);
    assert.deepEqual(ids(await q.filter("age", "ge", 18).orderBy("age").all()), [5, 1, 4]);
    assert.deepEqual(ids(await q.filter("age", "isNull").all()), [2]);
    assert.deepEqual(ids(await q.filter("age", "eq", null).all()), [2]);
    assert.deepEqual(ids(await q.filterBy({ age: null }).all()), [2]);
    assert.deepEqual(ids(await q.filter("age", "ne", null).all()), [1, 3, 4, 5]);
    assert.deepEqual(ids(await q.filter("age", "isNotNull").filter("age", "le", 36).all()), [1, 3, 5]);
    // NULL ages (Bob) match no comparison, ne included.
    assert.deepEqual(ids(await q.filter("age", "gt", 17).filter("age", "ne", 52).all()), [1, 5]);
    assert.deepEqual(ids(await q.filter("age", "lt", 18).all()), [3]);
    assert.deepEqual(ids(await q.filter("name", "like", "A%").all()), [1, 5]);
    assert.deepEqual(ids(await q.filter("id", "in", [4, 2, 9]).all()), [2, 4]);
    assert.deepEqual(await q.filter("id", "in", []).all(), []);
    assert.deepEqual(ids(await q.filterBy({ email: "bob@example.com" }).all()), [2]);
    assert.deepEqual(ids(await q.filterBy({ name: "Ada", age: 36 }).all()), [1]);
    assert.deepEqual(ids(await q.orderBy("age", "-id").filter("id", "ne", 2).all()), [3, 5, 1, 4]);
    const paged = q.orderBy("id").limit(2).offset(1);
    assert.deepEqual(ids(await paged.all()), [2, 3]);
    assert.equal(await paged.count(), 2);
    assert.equal(await q.offset(4).count(), 1);
    assert.equal(await q.offset(9).count(), 0);
    assert.equal(await q.filter("age", "ge", 18).count(), 3);
    assert.equal(await q.count(), 5, "builders return new queries: q is unchanged");
    assert.equal(q.session, s);
    assert.deepEqual(Object.keys((await q.first()) ?? {}), ["id", "name", "email", "age"]);
  });

  it("like on a nullable column skips NULLs (GlueSQL 0.20 fails on NULL LIKE)", async () => {
    const Note = defineModel("notes", { id: { type: "INTEGER", primaryKey: true }, bio: { type: "TEXT", nullable: true } });
    const s = await sessionWith([Note]);
    await Note.insert(s, { id: 1 });
    await Note.insert(s, { id: 2, bio: "xy" });
    await Note.insert(s, { id: 3, bio: "ab" });
    assert.deepEqual(ids(await Note.query(s).filter("bio", "like", "x%").all()), [2]);
    assert.deepEqual(ids(await Note.query(s).filter("bio", "like", "%").all()), [2, 3]);
  });

  it("first, one, get", async () => {
    const s = await usersSession();
    const q = User.query(s);
    assert.equal((await q.orderBy("name").first()).name, "Abe");
    assert.equal(await q.filter("id", "gt", 99).first(), null);
    assert.equal((await q.filterBy({ name: "Cy" }).one()).id, 3);
    await assert.rejects(q.filterBy({ name: "Zed" }).one(), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.match(err.message, /^not found in table users: one\(\) found no row .* use first\(\)/);
      return true;
    });
    await assert.rejects(q.filter("age", "ge", 18).one(), (err) => {
      assert.ok(err instanceof MultipleResultsError);
      assert.equal(err.code, "MULTIPLE_RESULTS");
      assert.equal(err.table, "users");
      assert.match(err.message, /first\(\)/);
      return true;
    });
    assert.equal((await User.get(s, 4)).name, "Dee");
    assert.equal((await User.get(s, 4n)).name, "Dee");
    assert.equal(await User.get(s, 40), null);
    // get() on a filtered query: the row must match the filters too; order and limit do not apply.
    const adults = q.filter("age", "ge", 18).orderBy("-id").limit(1).offset(3);
    assert.equal((await adults.get(1)).id, 1);
    assert.equal(await adults.get(3), null);
    await assert.rejects(q.get(undefined), /users.get: the primary key id is undefined/);
  });

  it("getOr404 and firstOr404: NotFoundError, status 404, naming table and key", async () => {
    const s = await usersSession();
    assert.equal((await User.getOr404(s, 2)).name, "Bob");
    await assert.rejects(User.getOr404(s, 404), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, "NOT_FOUND");
      assert.equal(err.status, 404);
      assert.equal(err.table, "users");
      assert.equal(err.detail, "no row with id = 404");
      assert.equal(err.message, "not found in table users: no row with id = 404");
      return true;
    });
    assert.equal((await User.query(s).filterBy({ name: "Ada" }).firstOr404()).id, 1);
    await assert.rejects(User.query(s).filterBy({ name: "Nobody" }).firstOr404(), (err) => err.status === 404);
    const Setting = defineModel("settings", { key: { type: "TEXT", primaryKey: true } });
    await createAll(s, [Setting]);
    await assert.rejects(Setting.getOr404(s, 'it\'s "x"'), (err) => err.message.includes('key = "it\'s \\"x\\""'));
  });

  it("reads see the session's own writes only", async () => {
    const db = memoryDb();
    const a = db.openSession();
    await createAll(a, [User]);
    await a.commit();
    const b = db.openSession();
    await User.insert(a, { id: 1, name: "Ada", email: "ada@x" });
    assert.equal(await User.query(a).count(), 1, "read your writes");
    assert.equal(await User.query(b).count(), 0, "isolation");
  });
});

describe("writes", () => {
  it("insert, update, delete by primary key; nextId", async () => {
    const s = await usersSession();
    const bob = await User.update(s, 2, { age: 40, name: "Robert" });
    assert.deepEqual(bob, { id: 2, name: "Robert", email: "bob@example.com", age: 40 });
    assert.deepEqual({ ...(await User.getOr404(s, 2)) }, bob);
    await User.delete(s, 2);
    assert.equal(await User.get(s, 2), null);
    await assert.rejects(User.delete(s, 2), (err) => err instanceof NotFoundError && /delete\(\) found no row with id = 2/.test(err.message));
    await assert.rejects(User.update(s, 2, { name: "x" }), (err) => err.status === 404 && /update\(\)/.test(err.message));
    await assert.rejects(User.insert(s, { id: 6, name: "Ada", email: "ada@example.com" }), (err) => {
      assert.ok(err instanceof UniqueError);
      assert.equal(err.column, "email");
      return true;
    });
    const first = await User.nextId(s);
    assert.equal(await User.nextId(s), first + 1);
  });

  it("update SETs only changed columns: an unchanged unique value is not written again", async () => {
    const s = await usersSession();
    const same = await User.update(s, 1, { id: 1, email: "ada@example.com", name: "Ada L", age: undefined });
    assert.deepEqual(same, { id: 1, name: "Ada L", email: "ada@example.com", age: 36 });
    assert.equal(sqlOf(s).at(-1), 'UPDATE "users" SET "name" = $1 WHERE "id" = $2');
    await s.commit();
    // Nothing changes: nothing is written.
    assert.deepEqual({ ...(await User.update(s, 1n, { email: "ada@example.com", age: 36n })) }, same);
    assert.equal(s.isDirty, false);
    // A unique value taken by another row is still a UniqueError.
    await assert.rejects(User.update(s, 1, { email: "bob@example.com" }), (err) => err instanceof UniqueError);
    await s.rollback();
    await assert.rejects(User.update(s, 1, { id: 9 }), /users.update: the primary key id cannot be changed/);
    await assert.rejects(User.update(s, 1, { name: null }), /users.update: name is NOT NULL/);
    assert.deepEqual((await User.update(s, 1, { age: null })).age, null);
  });

  it("insert checks the row: unknown fields and missing NOT NULL values are SqlErrors", async () => {
    const s = await sessionWith([User]);
    await assert.rejects(User.insert(s, { id: 1, name: "A", email: "a@x", admin: true }), (err) => {
      assert.ok(err instanceof SqlError);
      assert.match(err.message, /users has no column "admin"; its columns are id, name, email, age/);
      return true;
    });
    await assert.rejects(User.insert(s, { id: 1, name: "A" }), /missing a value for email, which is NOT NULL/);
    await assert.rejects(User.insert(s, { name: "A", email: "a@x" }), /missing a value for id.*users.nextId\(session\)/);
    await assert.rejects(User.insert(s, null), /expected an object of column name → value, got null/);
  });
});

describe("bulk verbs: query.delete(), query.update(changes)", () => {
  it("count the rows their filters match; the session reads its writes, rollback undoes, commit publishes", async () => {
    const database = db();
    const s = await usersSession(database);
    const minors = User.query(s).filter("age", "lt", 20);
    const n = s.recordedQueries().length;
    assert.equal(await minors.update({ name: "minor", age: undefined }), 2, "undefined values are left out");
    assert.deepEqual(sqlOf(s).slice(n), ['UPDATE "users" SET "name" = $1 WHERE COALESCE("age" < $2, FALSE)']);
    assert.deepEqual(s.recordedQueries().at(-1).params, ["minor", 20]);
    assert.deepEqual(ids(await User.query(s).filterBy({ name: "minor" }).orderBy("id").all()), [3, 5]);
    assert.equal(await User.query(database.openSession()).filterBy({ name: "minor" }).count(), 0, "not visible before commit");
    await s.rollback();
    assert.equal(await User.query(s).filterBy({ name: "minor" }).count(), 0, "rollback undoes it");
    // Filters combine; no match is 0; no filters is every row.
    const query = User.query(s).filter(User.c.age.ge(18).or(User.c.age.isNull())).filter("name", "like", "A%");
    assert.equal(await query.delete(), 2);
    assert.deepEqual(ids(await User.query(s).orderBy("id").all()), [2, 3, 4]);
    assert.equal(await User.query(s).filterBy({ name: "nobody" }).delete(), 0);
    assert.equal(await User.query(s).filterBy({ name: "nobody" }).update({ age: 1 }), 0);
    assert.equal(await User.query(s).update({}), 3, "nothing to set: the matching rows, counted");
    await s.commit();
    assert.deepEqual(ids(await User.query(database.openSession()).orderBy("id").all()), [2, 3, 4], "a new session sees the commit");
    assert.equal(await User.query(s).delete(), 3);
    assert.equal(await User.query(s).count(), 0);
  });

  it("values convert as Model.update converts them; refusals and errors change nothing", async () => {
    const s = await usersSession();
    const before = await User.query(s).orderBy("id").all();
    const n = s.recordedQueries().length;
    assert.equal(await User.query(s).filterBy({ id: 1n }).update({ age: "37" }), 1);
    assert.deepEqual(s.recordedQueries().at(-1).params, [37, 1], "an integer string into an INT32 column");
    assert.equal((await User.get(s, 1)).age, 37);
    assert.equal(await User.query(s).filterBy({ id: 1 }).update({ age: 36n }), 1);
    const refused = [
      [User.query(s).limit(1).delete(), /users.query\(\).delete\(\) cannot be combined with limit\(\), offset\(\) or orderBy\(\) \(this query has limit\(\)\)/],
      [User.query(s).orderBy("-id").update({ name: "x" }), /this query has orderBy\(\)\): .*filter\("id", "in", keys\)/],
      [User.query(s).offset(2).delete(), /this query has offset\(\)/],
      [User.query(s).update({ id: 9 }), /users.query\(\).update: the primary key id cannot be changed/],
      [User.query(s).update({ name: null }), /users.query\(\).update: name is NOT NULL/],
      [User.query(s).update({ admin: true }), /users has no column "admin"; its columns are id, name, email, age/],
      [User.query(s).update(null), /expected an object of column name → value, got null/],
      [User.query(s).update({ age: "abc" }), /SQL error/],
      [User.query(s).update({ name: { nested: 1 } }), /the value of name is of type object/],
    ];
    for (const [promise, message] of refused) {
      await assert.rejects(promise, (err) => {
        assert.ok(err instanceof SqlError, err.message);
        assert.match(err.message, message);
        return true;
      });
    }
    // Two rows set to one unique value: UniqueError, and neither row changed.
    await assert.rejects(User.query(s).filter("id", "in", [1, 2]).update({ name: "x", email: "same@x" }), (err) => {
      assert.ok(err instanceof UniqueError);
      assert.equal(err.column, "email");
      return true;
    });
    await assert.rejects(User.query(s).filterBy({ id: 1 }).update({ email: "bob@example.com" }), UniqueError);
    assert.deepEqual(await User.query(s).orderBy("id").all(), before);
    assert.equal(sqlOf(s).slice(n).filter((q) => q.startsWith("DELETE")).length, 0);
    // A row's own unique value is no violation.
    assert.equal(await User.query(s).filterBy({ id: 1 }).update({ email: "ada@example.com", name: "Ada L" }), 1);
  });

  it("a bulk delete and an update of its rows in two sessions: the second commit is a ConflictError", async () => {
    const database = db();
    const a = database.openSession();
    await createAll(a, [User]);
    for (const [id, age] of [[1, 10], [2, 40]]) await User.insert(a, { id, name: `u${id}`, email: `${id}@x`, age });
    await a.commit();
    const b = database.openSession();
    assert.equal(await User.query(a).filter("age", "lt", 18).delete(), 1);
    await User.update(b, 1, { name: "kept?" });
    await a.commit();
    await assert.rejects(b.commit(), (err) => err instanceof ConflictError && err.code === "CONFLICT");
    assert.equal(await User.get(database.openSession(), 1), null);
  });
});

describe("hostile input", () => {
  it("names that are not columns or operators are refused before any SQL", async () => {
    const s = await usersSession();
    const before = sqlOf(s).length;
    const q = User.query(s);
    assert.throws(() => q.filterBy({ nope: 1 }), (err) => err instanceof SqlError && /users has no column "nope"; its columns are id, name, email, age/.test(err.message));
    assert.throws(() => q.filterBy({ "name = name OR 1": 1 }), /has no column "name = name OR 1"/);
    assert.throws(() => q.filterBy(JSON.parse('{"__proto__": 1}')), /has no column "__proto__"/);
    assert.throws(() => q.filterBy({ toString: "x" }), /has no column "toString"/);
    assert.throws(() => q.filter("id", "= 1 OR 1 =", 1), /unknown operator "= 1 OR 1 ="; operators are eq, ne/);
    assert.throws(() => q.filter("id", "constructor", 1), /unknown operator/);
    assert.throws(() => q.orderBy("id; DROP TABLE users"), /has no column "id; DROP TABLE users"/);
    assert.throws(() => q.orderBy("--id"), /has no column "-id"/);
    assert.throws(() => q.filterBy({ email: undefined }), /the value is undefined \(a missing variable\?\)/);
    assert.throws(() => q.filter("id", "in", "1,2"), /in takes an array/);
    assert.throws(() => q.filter("age", "like", "1%"), /like needs a TEXT column/);
    assert.throws(() => q.filter("email", "isNull"), /email is NOT NULL, so isNull is never true/);
    assert.throws(() => q.filter("id", "lt", null), /use isNull/);
    assert.throws(() => q.limit(-1), /limit\(n\) needs an integer ≥ 0, got -1/);
    assert.throws(() => q.offset("10"), /offset\(n\) needs an integer/);
    assert.equal(sqlOf(s).length, before, "no statement ran");
  });

  it("values are bound, never spliced, and stored verbatim", async () => {
    const s = await sessionWith([User]);
    const nasty = [
      "'; DROP TABLE users; --",
      '" OR 1=1 --',
      "$1",
      "Robert'); DELETE FROM users WHERE ('1' = '1",
      "back\\slash\0nul",
      "ünï©ødé 🦀",
    ];
    for (const [i, text] of nasty.entries()) {
      await User.insert(s, { id: i + 1, name: text, email: `${text}@${i + 1}` });
    }
    await s.commit();
    for (const [i, text] of nasty.entries()) {
      const found = await User.query(s).filterBy({ name: text }).one();
      assert.equal(found.id, i + 1);
      assert.equal(found.name, text, "stored verbatim");
      assert.ok((await User.query(s).filter("name", "like", text).count()) >= 1, `LIKE with ${text}`);
      assert.equal((await User.update(s, i + 1, { email: `${text};` })).email, `${text};`);
    }
    assert.equal(await User.query(s).count(), nasty.length);
    for (const sql of sqlOf(s)) {
      // ("$1" is also a placeholder.)
      for (const text of nasty.filter((t) => t !== "$1")) assert.ok(!sql.includes(text), `${JSON.stringify(text)} in ${sql}`);
    }
  });
});

describe("paginate (Flask-SQLAlchemy 3's tests/test_pagination.py)", () => {
  it("defaults and request arguments", async () => {
    const s = await todos(250);
    const q = Todo.query(s).orderBy("id");
    // test_paginate: page 1 of 20 by default.
    let p = await q.paginateArgs("");
    assert.deepEqual([p.page, p.perPage, p.items.length, p.total, p.pages], [1, 20, 20, 250, 13]);
    assert.equal(p.items[0].title, "task 1");
    assert.ok(p instanceof Pagination);
    // test_paginate_qs, three ways of passing the arguments.
    for (const args of ["?page=2&per_page=10", new URLSearchParams({ page: "2", per_page: "10" }), { page: "2", per_page: "10" }]) {
      p = await q.paginateArgs(args);
      assert.deepEqual([p.page, p.perPage, p.items[0].id, p.prevNum, p.nextNum], [2, 10, 11, 1, 3]);
    }
    // test_paginate_max: a larger per_page is capped, not refused.
    p = await q.paginate({ page: 1, perPage: 100, maxPerPage: 50 });
    assert.deepEqual([p.perPage, p.items.length, p.maxPerPage], [50, 50, 50]);
    p = await q.paginateArgs("per_page=100", { maxPerPage: 50 });
    assert.equal(p.perPage, 50);
    // test_next_page_size
    p = await q.paginate({ page: 2, perPage: 110, maxPerPage: 250 });
    assert.deepEqual([p.page, p.perPage, p.items.length], [2, 110, 110]);
    p = await q.paginateArgs({}, { defaultPerPage: 7 });
    assert.equal(p.perPage, 7);
    p = await q.paginate();
    assert.deepEqual([p.page, p.perPage], [1, 20]);
  });

  it("first, middle, last page and past the end", async () => {
    const s = await todos(25);
    const q = Todo.query(s).orderBy("id");
    const first = await q.paginate({ page: 1, perPage: 10 });
    assert.deepEqual([first.hasPrev, first.hasNext, first.prevNum, first.nextNum, first.first, first.last], [false, true, null, 2, 1, 10]);
    const middle = await q.paginate({ page: 2, perPage: 10 });
    assert.deepEqual([middle.prevNum, middle.nextNum], [1, 3]);
    const last = await q.paginate({ page: 3, perPage: 10 });
    assert.equal(last.items.length, 5);
    assert.deepEqual([last.hasPrev, last.hasNext, last.prevNum, last.nextNum], [true, false, 2, null]);
    assert.deepEqual([last.first, last.last, last.pages], [21, 25, 3]);
    // Past the end: 404 with errorOut (Flask), an empty page without.
    await assert.rejects(q.paginate({ page: 4, perPage: 10 }), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.status, 404);
      assert.match(err.message, /page 4 \(of 10 rows each\) is past the last page/);
      return true;
    });
    const empty = await q.paginate({ page: 4, perPage: 10, errorOut: false });
    assert.deepEqual([empty.items, empty.total, empty.pages, empty.hasNext, empty.prevNum], [[], 25, 3, false, 3]);
    // Filters apply to items and total alike.
    const few = await Todo.query(s).filter("id", "le", 5).paginate({ page: 1, perPage: 2 });
    assert.deepEqual([few.total, few.pages], [5, 3]);
  });

  it("an empty table: page 1 is a page, page 2 is not (test_no_items_404)", async () => {
    const s = await todos(0);
    const p = await Todo.query(s).paginate({ page: 1, perPage: 20 });
    assert.deepEqual([p.items, p.total, p.pages, p.hasNext, p.hasPrev, p.first, p.last], [[], 0, 0, false, false, 0, 0]);
    assert.deepEqual(p.iterPages(), []);
    await assert.rejects(Todo.query(s).paginate({ page: 2, perPage: 20 }), code("NOT_FOUND"));
  });

  it("bad values: 404 with errorOut, the defaults without (test_error_out)", async () => {
    const s = await todos(30);
    const q = Todo.query(s).orderBy("id");
    for (const [page, perPage] of [["abc", null], [null, "abc"], ["0", null], [null, "-1"], ["", null], ["1.5", null], ["99999999999999999999", null]]) {
      const args = new URLSearchParams();
      if (page !== null) args.set("page", page);
      if (perPage !== null) args.set("per_page", perPage);
      await assert.rejects(q.paginateArgs(args), code("NOT_FOUND"), args.toString());
    }
    const min = Number.MIN_SAFE_INTEGER;
    for (const [page, perPage] of [[0, 20], [-3, 20], [1, 0], [1, -1], [min, min], [1.5, 20], [Number.NaN, 20]]) {
      await assert.rejects(q.paginate({ page, perPage }), (err) => err.status === 404 && /not valid/.test(err.message), `${page} ${perPage}`);
    }
    // maxPerPage 0 makes every perPage 0: an error, as in Flask.
    await assert.rejects(q.paginate({ page: 1, perPage: 5, maxPerPage: 0 }), code("NOT_FOUND"));
    let p = await q.paginate({ page: 0, perPage: -1, errorOut: false });
    assert.deepEqual([p.page, p.perPage], [1, 20]);
    p = await q.paginateArgs("page=x&per_page=y", { errorOut: false });
    assert.deepEqual([p.page, p.perPage, p.items.length], [1, 20, 20]);
    p = await q.paginateArgs("page=+2&per_page= 5 ");
    assert.deepEqual([p.page, p.perPage], [2, 5]);
    // A huge page is past the end, not an overflow.
    const max = Number.MAX_SAFE_INTEGER;
    await assert.rejects(q.paginate({ page: max, perPage: max }), code("NOT_FOUND"));
    // Options are checked.
    await assert.rejects(q.paginate({ per_page: 5 }), (err) => err instanceof ConfigError && /unknown option "per_page"/.test(err.message));
    await assert.rejects(q.paginateArgs("", { page: 2 }), /unknown option "page"/);
    await assert.rejects(q.paginate({ maxPerPage: -1 }), /maxPerPage must be an integer ≥ 0/);
    await assert.rejects(q.paginate({ errorOut: "no" }), /errorOut must be true or false/);
  });

  it("iterPages as Flask-SQLAlchemy's test_iter_pages (150 rows, 10 a page)", async () => {
    const s = await todos(150);
    const expected = [
      [1, 2, 3, 4, 5, 0, 14, 15],
      [1, 2, 3, 4, 5, 6, 0, 14, 15],
      [1, 2, 3, 4, 5, 6, 7, 0, 14, 15],
      [1, 2, 3, 4, 5, 6, 7, 8, 0, 14, 15],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 14, 15],
      [1, 2, 0, 4, 5, 6, 7, 8, 9, 10, 0, 14, 15],
      [1, 2, 0, 5, 6, 7, 8, 9, 10, 11, 0, 14, 15],
      [1, 2, 0, 6, 7, 8, 9, 10, 11, 12, 0, 14, 15],
      [1, 2, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      [1, 2, 0, 8, 9, 10, 11, 12, 13, 14, 15],
      [1, 2, 0, 9, 10, 11, 12, 13, 14, 15],
      [1, 2, 0, 10, 11, 12, 13, 14, 15],
      [1, 2, 0, 11, 12, 13, 14, 15],
      [1, 2, 0, 12, 13, 14, 15],
      [1, 2, 0, 13, 14, 15],
    ];
    for (const [i, pages] of expected.entries()) {
      const p = await Todo.query(s).paginate({ page: i + 1, perPage: 10 });
      assert.deepEqual(p.iterPages(), pages.map((n) => (n === 0 ? null : n)), `page ${i + 1}`);
    }
    for (let page = 1; page <= 4; page++) {
      assert.deepEqual(new Pagination({ items: [1], page, perPage: 10, total: 40 }).iterPages(), [1, 2, 3, 4]);
    }
    const wide = new Pagination({ items: [1], page: 10, perPage: 1, total: 20 });
    assert.deepEqual(wide.iterPages({ leftEdge: 1, leftCurrent: 1, rightCurrent: 1, rightEdge: 1 }), [1, null, 9, 10, 11, null, 20]);
  });

  it("serializes for JSON answers", async () => {
    const s = await todos(3);
    const p = await Todo.query(s).paginate({ page: 1, perPage: 2 });
    assert.deepEqual(JSON.parse(JSON.stringify(p)), {
      items: [
        { id: 1, title: "task 1" },
        { id: 2, title: "task 2" },
      ],
      page: 1,
      perPage: 2,
      total: 3,
      pages: 2,
      hasPrev: false,
      hasNext: true,
      prevNum: null,
      nextNum: 2,
    });
  });
});
