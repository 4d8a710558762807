// Serializable sessions (the default) and db.transaction: run, commit, rerun on conflict.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, ConflictError, Gluebind, SqlError } from "gluebind";
import { fakeCtx, memoryDb } from "./helpers.mjs";

const NOTES = "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL)";

async function notesDb(options = {}) {
  const db = memoryDb(options);
  const s = db.openSession();
  await s.executeBatch(NOTES);
  await s.commit();
  s.close();
  return db;
}

async function count(db, owner) {
  const s = db.openSession();
  const [{ n }] = await s.execute("SELECT COUNT(*) AS n FROM notes WHERE owner = $1", [owner]);
  s.close();
  return n;
}

/** Commits a note of `owner` from another session. */
async function interfere(db, owner) {
  const other = db.openSession();
  await other.execute("INSERT INTO notes VALUES ($1, $2)", [await other.nextId("notes"), owner]);
  await other.commit();
  other.close();
}

/** The notes route: at most 5 per owner, in a transaction. */
function addNote(db, owner, retries) {
  return db.run(() =>
    db.transaction(
      async (s) => {
        const [{ n }] = await s.execute("SELECT COUNT(*) AS n FROM notes WHERE owner = $1", [owner]);
        await new Promise((r) => setTimeout(r, Math.random() * 3)); // others run here
        if (n >= 5) return "full";
        await s.execute("INSERT INTO notes VALUES ($1, $2)", [await s.nextId("notes"), owner]);
        return "added";
      },
      { retries },
    ).catch((e) => (e instanceof ConflictError ? "conflict" : Promise.reject(e))),
  );
}

describe("isolation", () => {
  it("is serializable by default, snapshot by option or per session", async () => {
    const db = await notesDb();
    const s = db.openSession();
    assert.equal(s.isolation, "serializable");
    s.isolation = "snapshot";
    assert.equal(s.isolation, "snapshot");
    assert.throws(() => (s.isolation = "read committed"), ConfigError);
    s.close();
    const snap = memoryDb({ isolation: "snapshot" });
    assert.equal(snap.openSession().isolation, "snapshot");
    assert.throws(() => new Gluebind({ url: "memory://", isolation: "serial" }), /isolation must be/);
  });

  it("serializable refuses write skew; snapshot allows it", async () => {
    for (const isolation of ["serializable", "snapshot"]) {
      const db = await notesDb({ isolation });
      const [a, b] = [db.openSession(), db.openSession()];
      for (const s of [a, b]) await s.execute("SELECT COUNT(*) AS n FROM notes WHERE owner = 1");
      await a.execute("INSERT INTO notes VALUES (1, 1)");
      await b.execute("INSERT INTO notes VALUES (2, 1)");
      await a.commit();
      if (isolation === "serializable") {
        const err = await b.commit().then(() => null, (e) => e);
        assert.ok(err instanceof ConflictError, String(err));
        assert.match(err.message, /notes/);
      } else {
        await b.commit();
      }
      assert.equal(await count(db, 1), isolation === "serializable" ? 1 : 2);
    }
  });
});

describe("db.transaction", () => {
  it("holds a rule under concurrency: 20 requests, exactly 5 notes", async () => {
    const db = await notesDb();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => addNote(db, 7, 10)));
    assert.equal(await count(db, 7), 5);
    assert.equal(outcomes.filter((o) => o === "added").length, 5, outcomes.join());
    assert.equal(outcomes.filter((o) => o === "full").length, 15, outcomes.join());
  });

  it("breaks the rule under snapshot isolation (why serializable is the default)", async () => {
    const db = await notesDb({ isolation: "snapshot" });
    await Promise.all(Array.from({ length: 20 }, () => addNote(db, 7, 10)));
    assert.ok((await count(db, 7)) > 5);
  });

  it("reruns the work after a conflict at commit, on fresh data", async () => {
    const db = await notesDb();
    let attempts = 0;
    const seen = await db.run(() =>
      db.transaction(async (s) => {
        attempts += 1;
        const [{ n }] = await s.execute("SELECT COUNT(*) AS n FROM notes WHERE owner = 1");
        if (attempts === 1) await interfere(db, 1);
        await s.execute("INSERT INTO notes VALUES ($1, 1)", [await s.nextId("notes")]);
        return n;
      }),
    );
    assert.equal(attempts, 2);
    assert.equal(seen, 1, "the rerun saw the interfering note");
    assert.equal(await count(db, 1), 2);
  });

  it("gives up after `retries` reruns with the last ConflictError, storing nothing of its own", async () => {
    const db = await notesDb();
    let attempts = 0;
    const err = await db
      .run(() =>
        db.transaction(
          async (s) => {
            attempts += 1;
            await s.execute("SELECT COUNT(*) AS n FROM notes WHERE owner = 1");
            await interfere(db, 1);
            await s.execute("INSERT INTO notes VALUES ($1, 1)", [1000 + attempts]);
          },
          { retries: 2 },
        ),
      )
      .then(() => null, (e) => e);
    assert.ok(err instanceof ConflictError, String(err));
    assert.equal(attempts, 3);
    assert.equal(await count(db, 1), 3, "only the interfering notes");
  });

  it("passes other errors through unchanged, once, and rolls back", async () => {
    const db = await notesDb();
    const ctx = fakeCtx();
    const mine = new Error("refused by the work");
    let attempts = 0;
    const thrown = await db
      .run(
        () =>
          db.transaction(async (s) => {
            attempts += 1;
            await s.execute("INSERT INTO notes VALUES (1, 1)");
            throw mine;
          }),
        { ctx },
      )
      .then(() => null, (e) => e);
    await ctx.settle();
    assert.equal(thrown, mine);
    assert.equal(attempts, 1);
    assert.equal(await count(db, 1), 0);
    const sql = await db
      .run(() => db.transaction((s) => s.execute("INSERT INTO nope VALUES (1)")))
      .then(() => null, (e) => e);
    assert.ok(sql instanceof SqlError, String(sql));
  });

  it("refuses pending writes, bad options, and use outside a scope", async () => {
    const db = await notesDb();
    await db.run(async () => {
      await db.session().execute("INSERT INTO notes VALUES (1, 1)");
      await assert.rejects(db.transaction(async () => {}), ConfigError);
      assert.throws(() => db.transaction(async () => {}, { retries: -1 }), ConfigError);
      assert.throws(() => db.transaction(async () => {}, { retry: 1 }), ConfigError);
      assert.throws(() => db.transaction("nope"), ConfigError);
    });
    assert.throws(() => db.transaction(async () => {}), /outside a request scope/);
  });
});
