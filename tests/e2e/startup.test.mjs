// A worker's start: the first requests of a fresh isolate on an empty database — eight at
// once — all succeed (the tables are created once, before the first handler, and the others
// wait for it; a CONFLICT with a concurrent creation is rerun, never answered 409), and a
// database URL whose binding is missing answers 500 JSON naming the binding, on every request.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startWorker } from "./harness.mjs";
import { json } from "./helpers.mjs";

describe("a worker's start", () => {
  it("eight concurrent first requests on a fresh database: all answered 200", async () => {
    const w = await startWorker({ probe: false });
    try {
      const answers = await Promise.all(Array.from({ length: 8 }, () => json(w.innerUrl, "/users?per_page=5")));
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(8).fill(200),
        answers.map((a) => a.text.slice(0, 200)).join("\n"),
      );
      for (const a of answers) assert.deepEqual(a.body.items, []);
    } finally {
      await w.stop();
    }
  });

  it("a kv:// URL without its binding: 500 JSON naming the binding, on every request", async () => {
    const w = await startWorker({ vars: { DATABASE_URL: "kv://NO_SUCH_KV" } });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await json(w.url, "/users");
        assert.equal(res.status, 500, res.text);
        assert.match(res.text, /NO_SUCH_KV/);
        assert.match(res.text, /kv_namespaces/);
      }
    } finally {
      await w.stop();
    }
  });
});
