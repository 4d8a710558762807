// kv:// from JavaScript: the KV namespace binding comes from the first event's env and is called
// through its JavaScript API (here an in-memory FakeKv with the same shapes). Two Gluebind
// instances over one namespace stand for two isolates.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, Gluebind, UniqueError } from "gluebind";
import { FakeKv } from "./fake-kv.mjs";

const URL = "kv://GLUEBIND_KV";
const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";

/** Runs fn(session) in a scope of db with env (teardown awaited: no ctx). */
function inEvent(db, env, fn) {
  return db.run(() => fn(db.session()), { env });
}

describe("kv:// engine over a JavaScript KV binding", () => {
  it("creates a table, inserts, and a second isolate reads the row back", async () => {
    const kv = new FakeKv({ pageSize: 2 }); // small pages: list cursors are followed
    const env = { GLUEBIND_KV: kv };
    const a = new Gluebind({ url: URL });
    assert.equal(a.engine, null, "created on the first event, whose env holds the binding");
    await inEvent(a, env, async (s) => {
      await s.executeBatch(USERS);
      await s.commit();
    });
    assert.equal(a.engine, URL);
    await inEvent(a, env, async (s) => {
      await s.execute("INSERT INTO users (id, name, email) VALUES ($1, $2, $3)", [1, "Ada", "ada@x"]);
      await s.execute("INSERT INTO users (id, name, email) VALUES ($1, $2, $3)", [2, "Bob", "bob@x"]);
      const info = await s.commit();
      assert.equal(info.rowsWritten, 2);
    });
    assert.ok(kv.ops.put > 0, "the commit wrote to the namespace");
    assert.ok(kv.keys().length > 0);

    const b = new Gluebind({ url: URL });
    const rows = await inEvent(b, env, (s) => s.execute("SELECT id, name, email FROM users ORDER BY id"));
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [
        { id: 1, name: "Ada", email: "ada@x" },
        { id: 2, name: "Bob", email: "bob@x" },
      ],
    );
    const one = await inEvent(b, env, (s) => s.execute("SELECT name FROM users WHERE id = $1", [2]));
    assert.equal(one[0].name, "Bob");
  });

  it("UNIQUE holds across the two isolates", async () => {
    const kv = new FakeKv();
    const env = { GLUEBIND_KV: kv };
    const a = new Gluebind({ url: URL, init: (s) => s.executeBatch(USERS).then(() => s.commit()) });
    await inEvent(a, env, async (s) => {
      await s.execute("INSERT INTO users VALUES ($1, $2, $3)", [1, "Ada", "ada@x"]);
      await s.commit();
    });
    const b = new Gluebind({ url: URL });
    await assert.rejects(
      inEvent(b, env, async (s) => {
        await s.execute("INSERT INTO users VALUES ($1, $2, $3)", [2, "Eve", "ada@x"]);
        await s.commit();
      }),
      (err) => err instanceof UniqueError && err.code === "UNIQUE",
    );
    // b's own row goes in; then a's duplicate of it is refused.
    await inEvent(b, env, async (s) => {
      await s.execute("INSERT INTO users VALUES ($1, $2, $3)", [3, "Cy", "cy@x"]);
      await s.commit();
    });
    await assert.rejects(
      inEvent(a, env, async (s) => {
        await s.execute("INSERT INTO users VALUES ($1, $2, $3)", [4, "Cy again", "cy@x"]);
        await s.commit();
      }),
      UniqueError,
    );
    const count = await inEvent(a, env, (s) => s.execute("SELECT COUNT(*) AS n FROM users"));
    assert.equal(Number(count[0].n), 2);
  });

  it("a transient failure of the binding is retried", async () => {
    const kv = new FakeKv();
    const env = { GLUEBIND_KV: kv };
    const a = new Gluebind({ url: URL, init: (s) => s.executeBatch(USERS).then(() => s.commit()) });
    await inEvent(a, env, async () => {}); // runs init
    kv.failNext.push("KV PUT failed: 503 Service Unavailable");
    await inEvent(a, env, async (s) => {
      await s.execute("INSERT INTO users VALUES ($1, $2, $3)", [1, "Ada", "ada@x"]);
      await s.commit();
    });
    const b = new Gluebind({ url: URL });
    const rows = await inEvent(b, env, (s) => s.execute("SELECT name FROM users"));
    assert.deepEqual(
      rows.map((r) => r.name),
      ["Ada"],
    );
  });

  it("a missing binding is a ConfigError naming it and the wrangler.toml fix", async () => {
    const db = new Gluebind({ url: URL });
    assert.throws(() => db.openSession(), ConfigError, "no registry before the first event");
    for (const env of [{}, undefined, { OTHER_KV: new FakeKv() }]) {
      await assert.rejects(
        db.run(() => "unreached", { env }),
        (err) =>
          err instanceof ConfigError &&
          err.code === "CONFIG" &&
          err.message.includes('"GLUEBIND_KV"') &&
          err.message.includes("[[kv_namespaces]]") &&
          err.message.includes("wrangler.toml"),
      );
    }
    // Not a KV namespace (e.g. a [vars] string of that name).
    await assert.rejects(db.run(() => "unreached", { env: { GLUEBIND_KV: "oops" } }), (err) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /not a KV namespace/);
      return true;
    });
    // Once the binding is there, the next event creates the registry.
    const served = await db.run(() => db.session().id, { env: { GLUEBIND_KV: new FakeKv() } });
    assert.equal(typeof served, "string");
    assert.equal(db.engine, URL);
  });

  it("a url function may return kv://", async () => {
    const db = new Gluebind({ url: (env) => env.DATABASE_URL ?? "memory://" });
    const env = { DATABASE_URL: URL, GLUEBIND_KV: new FakeKv() };
    await inEvent(db, env, async (s) => {
      await s.executeBatch(USERS);
      await s.commit();
    });
    assert.equal(db.engine, URL);
  });
});
