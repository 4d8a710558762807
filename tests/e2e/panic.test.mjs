// A Rust panic in the worker (debug-only POST /__gluebind/panic): the panicking request fails,
// gluebind's panic hook schedules a reset of the wasm instance, and the next requests are served
// by a fresh instance with a sane registry. memory:// data is gone (it is a cache/test engine);
// kv:// and do:// data are not.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PERSISTENT } from "./harness.mjs";
import { assertOk, createUser, json, listAll, settledStats, useWorker } from "./helpers.mjs";

describe("panic recovery", () => {
  const w = useWorker();

  it("after a panic the next requests succeed on a fresh instance with a sane registry", async (t) => {
    const user = await createUser(w.url);
    const started = Date.now();
    const panicked = await json(w.url, "/__gluebind/panic", { method: "POST" }).catch((err) => ({ status: 0, text: String(err) }));
    t.diagnostic(`panicking request: status ${panicked.status} after ${Date.now() - started} ms`);
    assert.ok(panicked.status === 0 || panicked.status >= 500, `the panicking request must fail, got ${panicked.status}`);

    // Every request after it succeeds: no poisoned instance, no stuck borrow.
    for (let i = 0; i < 5; i++) assertOk(await json(w.url, "/users"), 200, `GET /users #${i + 1} after the panic`);
    const fresh = await createUser(w.url);
    assertOk(await json(w.url, `/users/${fresh.id}`), 200, "GET the user created after the panic");

    const stats = await settledStats(w.url, 15_000);
    assert.equal(stats.registries_created, 1, "one registry in the new instance");
    assert.equal(stats.sessions_active, 0, "no scope leaked by the panicking request");

    const old = await json(w.url, `/users/${user.id}`);
    if (PERSISTENT) {
      assertOk(old, 200, "kv:// and do:// data survive the reset");
      assert.deepEqual(old.body, user);
    } else {
      // The new instance's sequence starts over, so the id may name the user created since.
      const { items } = await listAll(w.url);
      assert.deepEqual(items, [fresh], "memory:// data is gone with the reset instance");
    }
  });
});
