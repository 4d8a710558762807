// A user's notes: an interactive transaction with a business rule (at most 5 notes per user),
// held under concurrency by serializable sessions and the retrying transaction helper.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertError, createUser, describeRes, json, useWorker } from "./helpers.mjs";

const LIMIT = 5;

describe("notes (at most 5 per user, under concurrency)", () => {
  const w = useWorker();

  it("20 parallel POSTs for one user leave exactly 5 notes: 201 five times, 409 for the rest", async () => {
    const user = await createUser(w.url);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        json(w.url, `/users/${user.id}/notes`, { method: "POST", body: { body: `note ${i}` } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    const created = results.filter((r) => r.status === 201);
    assert.equal(created.length, LIMIT, `statuses: ${statuses.join(" ")}`);
    for (const r of results.filter((r) => r.status !== 201)) assertError(r, [409], "POST notes");
    for (const r of created) {
      assert.deepEqual(Object.keys(r.body).sort(), ["body", "created_at", "id", "user_id"]);
      assert.equal(r.body.user_id, user.id);
    }
    const list = await json(w.url, `/users/${user.id}/notes`);
    assert.equal(list.status, 200, describeRes("GET notes", list));
    assert.equal(list.body.items.length, LIMIT);
    assert.deepEqual(
      list.body.items.map((n) => n.id).sort(),
      created.map((r) => r.body.id).sort(),
      "the listed notes are the acknowledged ones",
    );
    const more = await json(w.url, `/users/${user.id}/notes`, { method: "POST", body: { body: "one more" } });
    assertError(more, [409], "POST a sixth note");
    assert.match(more.body.error, /5 notes/);
  });

  it("another user's notes are not limited by this one's", async () => {
    const [a, b] = [await createUser(w.url), await createUser(w.url)];
    for (let i = 0; i < LIMIT; i++) {
      const r = await json(w.url, `/users/${a.id}/notes`, { method: "POST", body: { body: `a${i}` } });
      assert.equal(r.status, 201, describeRes("POST", r));
    }
    const r = await json(w.url, `/users/${b.id}/notes`, { method: "POST", body: { body: "b0" } });
    assert.equal(r.status, 201, describeRes("POST for b", r));
    assert.equal((await json(w.url, `/users/${b.id}/notes`)).body.items.length, 1);
  });

  it("unknown users are 404, bad bodies 400 (storing nothing), other methods 405", async () => {
    assertError(await json(w.url, "/users/987654321/notes", { method: "POST", body: { body: "x" } }), [404], "POST");
    assertError(await json(w.url, "/users/987654321/notes"), [404], "GET");
    const user = await createUser(w.url);
    for (const body of [{}, { body: "" }, { body: "  " }, { body: 1 }, { body: "x", extra: 1 }, { body: "x".repeat(1001) }]) {
      assertError(await json(w.url, `/users/${user.id}/notes`, { method: "POST", body }), [400], JSON.stringify(body).slice(0, 40));
    }
    assertError(await json(w.url, `/users/${user.id}/notes`, { method: "POST", body: "not json" }), [400], "raw");
    assert.deepEqual((await json(w.url, `/users/${user.id}/notes`)).body.items, []);
    assertError(await json(w.url, `/users/${user.id}/notes`, { method: "DELETE" }), [405], "DELETE");
  });
});
