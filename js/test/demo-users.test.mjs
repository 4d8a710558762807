// The JS demo's unit-of-work operations (examples/js-demo/src/users.js) on a real memory://
// database: the races whose HTTP answers the e2e tests check, made deterministic here.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAll } from "gluebind";
import { etagOf } from "../../examples/js-demo/src/etag.js";
import { MODELS, User } from "../../examples/js-demo/src/models.js";
import { deleteUser, getUser, updateUser } from "../../examples/js-demo/src/users.js";
import { memoryDb } from "./helpers.mjs";

/** The demo's schema (as its init creates it) holding user 1, Ada. */
async function withAda() {
  const db = memoryDb();
  const s = db.openSession();
  await createAll(s, MODELS);
  await User.insert(s, { id: 1, name: "Ada", email: "ada@x" });
  await s.commit();
  s.close();
  return db;
}

describe("js-demo users", () => {
  it("a DELETE racing a committed DELETE answers 404, not 409", async () => {
    const db = await withAda();
    const late = db.openSession();
    assert.equal((await getUser(late, 1)).name, "Ada", "late's snapshot holds the row");
    await deleteUser(db.openSession(), 1);
    await assert.rejects(deleteUser(late, 1), (err) => err.status === 404);
    await assert.rejects(getUser(db.openSession(), 1), (err) => err.status === 404);
  });

  it("a DELETE racing a committed UPDATE deletes the updated row", async () => {
    const db = await withAda();
    const late = db.openSession();
    await getUser(late, 1);
    await updateUser(db.openSession(), 1, { name: "Ada L" });
    await deleteUser(late, 1);
    await assert.rejects(getUser(db.openSession(), 1), (err) => err.status === 404);
  });

  it("a PATCH racing a committed PATCH of the same row is a conflict (no lost update)", async () => {
    const db = await withAda();
    const late = db.openSession();
    await getUser(late, 1);
    await updateUser(db.openSession(), 1, { name: "First" });
    await assert.rejects(updateUser(late, 1, { name: "Second" }), (err) => err.name === "ConflictError");
    assert.equal((await getUser(db.openSession(), 1)).name, "First");
  });

  it("If-Match: a stale ETag is 412 and stores nothing; the current one or * applies", async () => {
    const db = await withAda();
    const seen = await etagOf(await getUser(db.openSession(), 1));
    assert.match(seen, /^"[0-9a-f]{32}"$/);
    const theirs = await updateUser(db.openSession(), 1, { name: "Theirs" }, seen);
    await assert.rejects(updateUser(db.openSession(), 1, { name: "Mine" }, seen), (err) => err.status === 412);
    assert.deepEqual(await getUser(db.openSession(), 1), theirs);
    const fresh = await etagOf(theirs);
    assert.equal((await updateUser(db.openSession(), 1, { name: "Mine" }, `"x", ${fresh}`)).name, "Mine");
    assert.equal((await updateUser(db.openSession(), 1, { name: "Star" }, "*")).name, "Star");
  });
});
