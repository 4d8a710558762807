// The demo's migration (0001_notes_created_at) against a database holding data: the previous
// deploy (tests/e2e/previous/worker.js, notes without created_at) writes users and notes, then
// the demo starts on the same persisted state (kv://, do://): it runs the step once, every old
// note reads created_at null, new notes store their time, and a restart runs nothing again.
// On memory:// (no state across starts) a new database records the step as created.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ENGINE_URL, PERSISTENT, REPO_ROOT, json, startWorker } from "./harness.mjs";
import { assertOk, createUser } from "./helpers.mjs";

const CONFIG = process.env.GLUEBIND_E2E_CONFIG || "wrangler.toml";
const STEP = "0001_notes_created_at";
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A wrangler config for the previous deploy under the demo's name and bindings. */
async function previousConfig(dir) {
  const demo = await readFile(path.resolve(REPO_ROOT, CONFIG), "utf8");
  const name = /^name\s*=\s*"([^"]+)"/m.exec(demo)[1];
  const kvId = /binding = "GLUEBIND_KV"\s*\nid = "([^"]+)"/.exec(demo)[1];
  const config = path.join(dir, "previous.toml");
  await writeFile(
    config,
    [
      `name = ${JSON.stringify(name)}`,
      `main = ${JSON.stringify(path.join(REPO_ROOT, "tests", "e2e", "previous", "worker.js"))}`,
      'compatibility_date = "2025-06-01"',
      'compatibility_flags = ["nodejs_als"]',
      "[[kv_namespaces]]",
      'binding = "GLUEBIND_KV"',
      `id = ${JSON.stringify(kvId)}`,
      "[[durable_objects.bindings]]",
      'name = "GLUEBIND_DB"',
      'class_name = "GluebindDatabase"',
      "[[migrations]]",
      'tag = "v1"',
      'new_sqlite_classes = ["GluebindDatabase"]',
      "",
    ].join("\n"),
  );
  return config;
}

async function appliedSteps(url) {
  const res = await json(url, "/__gluebind/migrations");
  assertOk(res, 200, "GET /__gluebind/migrations");
  return res.body.applied;
}

describe("the demo's migration", () => {
  it(`${ENGINE_URL}: ${PERSISTENT ? "runs once on the previous deploy's data" : "is recorded as created on a new database"}`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "gluebind-migrate-"));
    try {
      let old = null;
      if (PERSISTENT) {
        if (!existsSync(path.join(REPO_ROOT, "js", "dist", "gluebind.js"))) {
          throw new Error("the previous-deploy worker imports the npm package: run `bash scripts/build-js.sh` first");
        }
        const previous = await startWorker({ config: await previousConfig(dir), persistTo: dir, probe: false });
        try {
          const seeded = await json(previous.url, "/previous/seed", { method: "POST" });
          assertOk(seeded, 201, "POST /previous/seed");
          old = seeded.body;
        } finally {
          await previous.stop();
        }
        assert.equal(old.notes.length, 4);
        assert.ok(old.notes.every((n) => !("created_at" in n)), "the previous deploy has no created_at");
      }

      let worker = await startWorker({ persistTo: dir });
      try {
        const applied = await appliedSteps(worker.url);
        assert.deepEqual(
          applied.map((a) => [a.position, a.name, a.how]),
          [[1, STEP, PERSISTENT ? "applied" : "created"]],
        );
        assert.match(applied[0].applied_at, ISO);
        if (PERSISTENT) {
          for (const user of old.users) {
            const got = await json(worker.url, `/users/${user.id}`);
            assertOk(got, 200, `GET /users/${user.id}`);
            assert.deepEqual(got.body, user, "a user of the previous deploy reads as it was");
            const notes = await json(worker.url, `/users/${user.id}/notes`);
            assertOk(notes, 200, "GET notes");
            const expected = old.notes
              .filter((n) => n.user_id === user.id)
              .sort((a, b) => a.id - b.id)
              .map((n) => ({ ...n, created_at: null }));
            assert.deepEqual(notes.body.items, expected, "old notes read with the column's default");
          }
          // A new note of an old user keeps its time, under an id of its own.
          const added = await json(worker.url, `/users/${old.users[0].id}/notes`, { method: "POST", body: { body: "new" } });
          assertOk(added, 201, "POST a note");
          assert.match(added.body.created_at, ISO);
          assert.ok(!old.notes.some((n) => n.id === added.body.id));
        }
        const user = await createUser(worker.url);
        const note = await json(worker.url, `/users/${user.id}/notes`, { method: "POST", body: { body: "fresh" } });
        assertOk(note, 201, "POST a note");
        assert.deepEqual(Object.keys(note.body).sort(), ["body", "created_at", "id", "user_id"]);
        assert.match(note.body.created_at, ISO);
        const listed = await json(worker.url, `/users/${user.id}/notes`);
        assert.deepEqual(listed.body.items, [note.body]);
      } finally {
        await worker.stop();
      }

      if (PERSISTENT) {
        // A restart (a new isolate of the same deploy): the step is not run again.
        worker = await startWorker({ persistTo: dir });
        try {
          const applied = await appliedSteps(worker.url);
          assert.equal(applied.length, 1);
          assert.equal(applied[0].how, "applied");
          const notes = await json(worker.url, `/users/${old.users[1].id}/notes`);
          assert.deepEqual(
            notes.body.items.map((n) => n.created_at),
            [null, null],
          );
        } finally {
          await worker.stop();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
