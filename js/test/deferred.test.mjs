// session.commitDeferred(): validated in the handler, committed by the ctx.waitUntil teardown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UniqueError } from "gluebind";
import { fakeCtx, usersDb } from "./helpers.mjs";

async function count(db) {
  const s = db.openSession();
  const [{ n }] = await s.execute("SELECT COUNT(*) AS n FROM users");
  s.close();
  return n;
}

describe("commitDeferred", () => {
  it("commits in the teardown, after the response; invisible to others until then", async () => {
    const db = await usersDb();
    const ctx = fakeCtx();
    const handler = db.bind(async () => {
      const s = db.session();
      await s.execute("INSERT INTO users VALUES (1, 'a', 'a@x')");
      s.commitDeferred();
      assert.equal(s.isDeferred, true);
      return new Response(null, { status: 202 });
    });
    const res = await handler(new Request("http://x/"), {}, ctx);
    assert.equal(res.status, 202);
    assert.equal(await count(db), 0, "not committed before the teardown ran");
    await ctx.settle();
    assert.equal(await count(db), 1);
    assert.equal(db.stats().teardownCommits, 1);
  });

  it("throws UniqueError at once for a conflict already committed, and stores nothing", async () => {
    const db = await usersDb();
    const ctx = fakeCtx();
    const handler = db.bind(async () => {
      const s = db.session();
      await s.execute("SELECT COUNT(*) AS n FROM users"); // its snapshot: taken at its first statement
      const first = db.openSession();
      await first.execute("INSERT INTO users VALUES (1, 'first', 'same@x')");
      await first.commit();
      first.close();
      // `s` read before `first` committed: GlueSQL's statement-level check passes on its
      // snapshot, the deferred commit's validation does not.
      await s.execute("INSERT INTO users VALUES (2, 'late', 'same@x')");
      assert.throws(() => s.commitDeferred(), UniqueError);
      assert.equal(s.isDirty, false, "the pending writes were discarded");
      return new Response(null, { status: 409 });
    });
    await handler(new Request("http://x/"), {}, ctx);
    await ctx.settle();
    assert.equal(await count(db), 1);
  });
});
