// Errors: Error subclasses with stable codes, the Rust message, the variant's fields.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  ConflictError,
  Gluebind,
  GluebindError,
  MultipleResultsError,
  NotFoundError,
  OutsideScopeError,
  SessionClosedError,
  SqlError,
  StorageError,
  UniqueError,
} from "gluebind";
import { errorFromCode } from "../src/errors.js";
import { fakeCtx, usersDb } from "./helpers.mjs";

describe("error classes", () => {
  it("have stable codes and are GluebindErrors and Errors", () => {
    const expected = {
      CONFIG: ConfigError,
      SQL: SqlError,
      UNIQUE: UniqueError,
      CONFLICT: ConflictError,
      OUTSIDE_SCOPE: OutsideScopeError,
      SESSION_CLOSED: SessionClosedError,
      STORAGE: StorageError,
      NOT_FOUND: NotFoundError,
      MULTIPLE_RESULTS: MultipleResultsError,
    };
    for (const [code, cls] of Object.entries(expected)) {
      const err = errorFromCode(code, "msg", { table: "t" });
      assert.ok(err instanceof cls, code);
      assert.ok(err instanceof GluebindError);
      assert.ok(err instanceof Error);
      assert.equal(err.code, code);
      assert.equal(cls.code, code);
      assert.equal(err.name, cls.name);
      assert.equal(err.table, "t");
      assert.ok(err.stack.includes(cls.name));
    }
    assert.equal(errorFromCode("NOT_FOUND", "m", { status: 500 }).status, 404, "a model's 404, whatever the details");
    const unknown = errorFromCode("NEW_CODE", "m", {});
    assert.equal(unknown.constructor, GluebindError);
    assert.equal(unknown.code, "NEW_CODE");
  });

  it("details never overwrite the error's own fields", () => {
    const err = errorFromCode("SQL", "the message", { message: "other", code: "X", name: "Y" });
    assert.equal(err.message, "the message");
    assert.equal(err.code, "SQL");
    assert.equal(err.name, "SqlError");
  });
});

describe("errors thrown by the wasm core", () => {
  it("CONFIG for a bad URL, with the core's message naming the accepted schemes", () => {
    assert.throws(() => new Gluebind({ url: "postgres://db" }), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /unknown engine scheme postgres:\/\/.*memory:\/\//);
      return true;
    });
    // A kv:// URL is checked at once; its binding is looked up in the first event's env.
    assert.throws(() => new Gluebind({ url: "kv://X?bogus=1" }), ConfigError);
    assert.throws(() => new Gluebind({ url: "kv://" }), ConfigError);
  });

  it("CONFIG on the first event for a kv:// URL whose binding is missing", async () => {
    const db = new Gluebind({ url: "kv://X" });
    await assert.rejects(db.run(() => null, { env: {} }), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /no KV namespace bound as "X".*\[\[kv_namespaces\]\] with binding = "X".*wrangler\.toml/);
      return true;
    });
  });

  it("CONFIG for bad options", () => {
    assert.throws(() => new Gluebind({ url: "memory://", teardown: "flush" }), /teardown must be "rollback"/);
    assert.throws(() => new Gluebind({ url: "memory://", int64: "huge" }), ConfigError);
    assert.throws(() => new Gluebind({ url: "memory://", timestamps: 1 }), ConfigError);
    assert.throws(() => new Gluebind({ url: "memory://", teardwn: "commit" }), /unknown option "teardwn"/);
    assert.throws(() => new Gluebind({ url: 42 }), /url must be a string/);
    assert.throws(() => new Gluebind(), ConfigError);
    assert.throws(() => new Gluebind({ url: "memory://", init: "no" }), /init must be a function/);
  });

  it("SQL for a bad statement, with the core's message", async () => {
    const db = await usersDb();
    const s = db.openSession();
    await assert.rejects(s.execute("SELEC nonsense"), (err) => {
      assert.ok(err instanceof SqlError);
      assert.equal(err.code, "SQL");
      assert.match(err.message, /^SQL error: /);
      return true;
    });
    await assert.rejects(s.execute("SELECT * FROM missing"), SqlError);
    await assert.rejects(s.execute("SELECT 1; SELECT 2"), /use execute_batch/);
    await assert.rejects(s.execute(42), /SQL must be a string/);
    await assert.rejects(s.execute("BEGIN"), SqlError);
    s.close();
  });

  it("UNIQUE with table, column and value", async () => {
    const db = await usersDb();
    const s = db.openSession();
    await s.execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
    await assert.rejects(s.execute("INSERT INTO users VALUES (2, 'b', 'a@x')"), (err) => {
      assert.ok(err instanceof UniqueError);
      assert.deepEqual([err.table, err.column, err.value], ["users", "email", "a@x"], "the plain value");
      assert.match(err.message, /unique constraint violated: users\.email/);
      return true;
    });
    await assert.rejects(s.execute("INSERT INTO users VALUES (1, 'c', 'c@x')"), (err) => {
      assert.ok(err instanceof UniqueError);
      assert.equal(err.table, "users");
      assert.ok(["id", "PRIMARY KEY"].includes(err.column), err.column);
      assert.equal(err.value, 1, "a number for an integer key");
      return true;
    });
    // Quotes, backslashes, control characters and non-ASCII come back as they were stored.
    const odd = 'O"Brien \\ tab\t bell\u0007 ü@x';
    await s.execute("INSERT INTO users VALUES (3, 'o', $1)", [odd]);
    await assert.rejects(s.execute("INSERT INTO users VALUES (4, 'p', $1)", [odd]), (err) => {
      assert.ok(err instanceof UniqueError);
      assert.equal(err.value, odd);
      return true;
    });
    s.close();
  });

  it("UNIQUE at commit when a concurrent session took the value first", async () => {
    const db = await usersDb();
    const a = db.openSession();
    const b = db.openSession();
    await a.execute("INSERT INTO users VALUES (1, 'a', 'same@x')");
    await b.execute("INSERT INTO users VALUES (2, 'b', 'same@x')");
    await a.commit();
    await assert.rejects(b.commit(), UniqueError);
    assert.equal(b.isDirty, false, "the failed commit discarded the pending writes");
    a.close();
    b.close();
  });

  it("CONFLICT with table and detail when another session committed the row first", async () => {
    const db = await usersDb();
    const setup = db.openSession();
    await setup.execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
    await setup.commit();
    const a = db.openSession();
    const b = db.openSession();
    await a.execute("UPDATE users SET name = 'A' WHERE id = 1");
    await b.execute("UPDATE users SET name = 'B' WHERE id = 1");
    await a.commit();
    await assert.rejects(b.commit(), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.code, "CONFLICT");
      assert.equal(err.table, "users");
      assert.equal(typeof err.detail, "string");
      assert.match(err.message, /retry/);
      return true;
    });
    const fresh = db.openSession();
    const [row] = await fresh.execute("SELECT name FROM users WHERE id = 1");
    assert.equal(row.name, "A", "first committer wins");
    for (const s of [setup, a, b, fresh]) s.close();
  });

  it("OUTSIDE_SCOPE outside any scope, and after the scope was torn down", async () => {
    const db = await usersDb();
    assert.throws(() => db.session(), (err) => {
      assert.ok(err instanceof OutsideScopeError);
      assert.equal(err.code, "OUTSIDE_SCOPE");
      assert.match(err.message, /db\.bind/);
      return true;
    });
    let later;
    const ctx = fakeCtx();
    await db.run(
      async () => {
        db.session();
        // Work that outlives the event (it keeps the event's async context).
        later = new Promise((resolve, reject) =>
          setTimeout(() => {
            try {
              resolve(db.session());
            } catch (err) {
              reject(err);
            }
          }, 20),
        );
      },
      { ctx },
    );
    await ctx.settle();
    await assert.rejects(later, (err) => {
      assert.ok(err instanceof OutsideScopeError);
      assert.match(err.message, /has ended/);
      assert.match(err.message, /JavaScript: /);
      return true;
    });
  });

  it("SESSION_CLOSED when a session is used after its event", async () => {
    const db = await usersDb();
    const kept = await db.run(async () => db.session());
    assert.equal(kept.isClosed, true);
    await assert.rejects(kept.execute("SELECT 1"), (err) => {
      assert.ok(err instanceof SessionClosedError);
      assert.equal(err.sessionId, kept.id);
      return true;
    });
    await assert.rejects(kept.nextId("users"), SessionClosedError);
    await assert.rejects(kept.commit(), SessionClosedError);
  });
});
