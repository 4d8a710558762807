// Write-behind: POST /events answers 202 after validating, and the event is stored by the
// session's deferred commit in the completion callback. Every accepted event must land.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { waitFor } from "./harness.mjs";
import { assertError, describeRes, json, listAll, settledStats, useWorker } from "./helpers.mjs";

describe("event log (write-behind)", () => {
  const w = useWorker();

  /** Waits until every event in `expected` is listed, then returns the listed items. */
  async function landed(expected) {
    let items = [];
    await waitFor(
      async () => {
        ({ items } = await listAll(w.url, "events"));
        const ids = new Set(items.map((e) => e.id));
        return expected.every((e) => ids.has(e.id));
      },
      20_000,
      { message: "accepted events missing from GET /events" },
    );
    return items;
  }

  it("202 echoes the event; it is then listed exactly as sent", async () => {
    const body = { type: "signup", data: { plan: "pro", seats: 3, tags: ["a", "b"], nested: { ok: true } } };
    const res = await json(w.url, "/events", { method: "POST", body });
    assert.equal(res.status, 202, describeRes("POST /events", res));
    assert.deepEqual(Object.keys(res.body).sort(), ["data", "id", "type"]);
    assert.ok(Number.isSafeInteger(res.body.id) && res.body.id > 0);
    assert.deepEqual({ type: res.body.type, data: res.body.data }, body);
    const items = await landed([res.body]);
    assert.deepEqual(items.filter((e) => e.id === res.body.id), [res.body]);
    const bare = await json(w.url, "/events", { method: "POST", body: { type: "ping" } });
    assert.equal(bare.status, 202);
    assert.equal(bare.body.data, null, "data defaults to null");
  });

  it("200 concurrent POSTs: all 202, distinct ids, every one lands exactly once", async () => {
    const N = 200;
    const bodies = Array.from({ length: N }, (_, i) => ({ type: `burst-${i % 7}`, data: { i, text: `event ${i} ✓` } }));
    const results = await Promise.all(bodies.map((body) => json(w.url, "/events", { method: "POST", body })));
    const failed = results.filter((r) => r.status !== 202).map((r) => describeRes("POST /events", r));
    assert.deepEqual(failed, [], "every event accepted");
    const accepted = results.map((r) => r.body);
    assert.equal(new Set(accepted.map((e) => e.id)).size, N, "distinct ids");
    const items = await landed(accepted);
    const byId = new Map();
    for (const e of items) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
    for (const [i, e] of accepted.entries()) {
      assert.deepEqual(byId.get(e.id), [{ id: e.id, ...bodies[i] }], `event ${i} stored once, as sent`);
    }
    const s = await settledStats(w.url, 20_000);
    assert.equal(s.sessions_active, 0);
  });

  it("bad bodies are 400 and store nothing; other methods are 405", async () => {
    const before = (await listAll(w.url, "events")).total;
    for (const body of [
      "{",
      "[]",
      { data: 1 },
      { type: 5 },
      { type: "   " },
      { type: "x".repeat(65) },
      { type: "t", extra: true },
      { type: "t", data: "x".repeat(9000) },
    ]) {
      assertError(await json(w.url, "/events", { method: "POST", body }), 400, `POST /events ${JSON.stringify(body).slice(0, 60)}`);
    }
    const injection = await json(w.url, "/events", { method: "POST", body: { type: "'); DROP TABLE events; --" } });
    assert.equal(injection.status, 202, "an injection string is data, stored verbatim");
    const items = await landed([injection.body]);
    assert.equal(items.length, before + 1, "only the one valid event was added");
    assert.equal(items.find((e) => e.id === injection.body.id).type, "'); DROP TABLE events; --");
    assertError(await json(w.url, "/events", { method: "PUT", body: { type: "t" } }), 405, "PUT /events");
    assertError(await json(w.url, "/events?per_page=0"), 400, "GET /events?per_page=0");
  });
});
