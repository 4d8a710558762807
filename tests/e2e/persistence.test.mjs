// kv:// and do:// keep data across `wrangler dev` restarts (local KV and Durable Objects
// persisted in a directory), and
// memory:// does not (it is a cache/test engine): stop the worker, start it again on the same
// persistence directory, and read what was written before.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ENGINE_URL, PERSISTENT, json, startWorker, waitFor } from "./harness.mjs";
import { assertOk, createUser, listAll } from "./helpers.mjs";

describe("data across a wrangler dev restart", () => {
  it(`${ENGINE_URL}: ${PERSISTENT ? "kept" : "gone (memory is a cache)"}`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "gluebind-persist-"));
    try {
      let worker = await startWorker({ persistTo: dir });
      const user = await createUser(worker.url);
      const patched = await json(worker.url, `/users/${user.id}`, {
        method: "PATCH",
        body: { name: "Renamed before restart" },
      });
      assertOk(patched, 200, "PATCH before restart");
      // A write-behind event: accepted with 202, stored by the completion callback.
      const event = await json(worker.url, "/events", { method: "POST", body: { type: "before-restart", data: [1] } });
      assert.equal(event.status, 202);
      await waitFor(async () => (await listAll(worker.url, "events")).items.some((e) => e.id === event.body.id), 15_000, {
        message: "the accepted event was never listed",
      });
      await worker.stop();

      worker = await startWorker({ persistTo: dir });
      try {
        const got = await json(worker.url, `/users/${user.id}`);
        if (PERSISTENT) {
          assertOk(got, 200, `GET /users/${user.id} after restart`);
          assert.deepEqual(got.body, { ...user, name: "Renamed before restart" });
          // The unique email is still taken after the restart.
          const dup = await json(worker.url, "/users", {
            method: "POST",
            body: { name: "Dup", email: user.email },
          });
          assert.equal(dup.status, 409);
          const { items } = await listAll(worker.url, "events");
          assert.deepEqual(items.filter((e) => e.id === event.body.id), [event.body], "the deferred commit was stored");
        } else {
          assert.equal(got.status, 404, "memory:// data does not outlive the isolate");
        }
      } finally {
        await worker.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
