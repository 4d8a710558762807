// do:// across isolates: two workers — two wrangler dev sessions, so two isolates, each with its
// own registry and isolate cache — bound to one GluebindDatabase Durable Object through
// wrangler's local dev registry (the peer's config: tests/e2e/peer/). What kv:// cannot promise
// across isolates holds here: a raced email and a raced business rule have exactly the allowed
// winners, and with cache_ttl=0 a commit in one isolate is read at once in the other; another
// database name of the namespace is a separate object. Runs when
// the suite runs on do:// (GLUEBIND_E2E_DATABASE_URL=do://…).

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ENGINE_URL, REPO_ROOT, startWorker } from "./harness.mjs";
import { assertError, assertOk, createUser, json, uniqueEmail } from "./helpers.mjs";

const JS_DEMO = (process.env.GLUEBIND_E2E_CONFIG || "").includes("js-demo");
const PEER = JS_DEMO ? "tests/e2e/peer/js.toml" : "tests/e2e/peer/rust.toml";

describe("do:// across isolates (two workers, one Durable Object)", { skip: !ENGINE_URL.startsWith("do://") && "do:// only" }, () => {
  let a;
  let b;
  let registry;
  before(async () => {
    registry = await mkdtemp(path.join(os.tmpdir(), "gluebind-registry-"));
    a = await startWorker({ registry });
    // The peer reads with no isolate cache: every session asks the object.
    b = await startWorker({ config: PEER, registry, vars: { DATABASE_URL: "do://GLUEBIND_DB?cache_ttl=0" } });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(registry, { recursive: true, force: true });
  });

  it("a user created in one isolate is read, and its email taken, in the other at once", async () => {
    for (let i = 0; i < 3; i++) {
      const user = await createUser(a.url);
      const got = await json(b.url, `/users/${user.id}`);
      assertOk(got, 200, `GET /users/${user.id} on the peer`);
      assert.deepEqual(got.body, user);
      assertError(await json(b.url, "/users", { method: "POST", body: { name: "Dup", email: user.email } }), [409], "POST the same email on the peer");
    }
  });

  it("one email raced from both isolates: exactly one 201", async () => {
    for (let round = 0; round < 5; round++) {
      const email = uniqueEmail(`race${round}`);
      const results = await Promise.all(
        [a, b, a, b, a, b, a, b].map((w, i) => json(w.url, "/users", { method: "POST", body: { name: `racer ${i}`, email } })),
      );
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 201).length, 1, `round ${round}: ${statuses.join(" ")}`);
      for (const r of results.filter((r) => r.status !== 201)) assertError(r, [409], `round ${round}`);
    }
  });

  it("at most 5 notes per user, raced from both isolates: exactly 5 stored", async () => {
    const user = await createUser(a.url);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        json((i % 2 ? a : b).url, `/users/${user.id}/notes`, { method: "POST", body: { body: `note ${i}` } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 5, statuses.join(" "));
    for (const r of results.filter((r) => r.status !== 201)) assertError(r, [409], "POST notes");
    const list = await json(b.url, `/users/${user.id}/notes`);
    assert.equal(list.body.items.length, 5);
  });

  it("a read-modify-write of one row raced from both isolates (If-Match): exactly one 200, no lost update", async () => {
    for (let round = 0; round < 3; round++) {
      const user = await createUser(a.url);
      const read = await json(b.url, `/users/${user.id}`);
      assertOk(read, 200, "GET on the peer");
      const tag = read.headers.get("etag");
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          json((i % 2 ? a : b).url, `/users/${user.id}`, { method: "PATCH", body: { name: `name ${i}` }, headers: { "if-match": tag } }),
        ),
      );
      const statuses = results.map((r) => r.status);
      const ok = results.filter((r) => r.status === 200);
      assert.equal(ok.length, 1, `round ${round}: every PATCH read the same version, one may win: ${statuses.join(" ")}`);
      for (const r of results.filter((r) => r.status !== 200)) assertError(r, [409, 412], `round ${round} PATCH`);
      const final = await json(b.url, `/users/${user.id}`);
      assert.equal(final.body.name, ok[0].body.name, "the stored name is the winner's");
    }
  });

  it("another database NAME of the same namespace is another object: it sees nothing of this one", async () => {
    const c = await startWorker({ config: PEER, registry, vars: { DATABASE_URL: "do://GLUEBIND_DB/other" } });
    try {
      const user = await createUser(a.url);
      assertError(await json(c.url, `/users/${user.id}`), [404], "GET on do://GLUEBIND_DB/other");
      const again = await json(c.url, "/users", { method: "POST", body: { name: "Other", email: user.email } });
      assertOk(again, 201, "the same email in the other database");
      assertError(await json(a.url, "/users", { method: "POST", body: { name: "Dup", email: user.email } }), [409], "still taken in the first");
    } finally {
      await c.stop();
    }
  });
});

// The do:// engine calls the object's RPC method; an object class without one is reached by fetch:
// one exported without `extends DurableObject` (the way gluebind's entry modules did before: a
// worker and its object on different versions during a deploy, or an entry module written by
// hand), and one that extends it without the method.
const FETCH_ONLY = {
  "without extends DurableObject": `import { fetch, GluebindDatabase as Database } from "./index.js";
export default { fetch };
export class GluebindDatabase {
  #object;
  constructor(...args) { this.#object = new Database(...args); }
  fetch(request) { return this.#object.fetch(request); }
}
`,
  "extending DurableObject without the method": `import { DurableObject } from "cloudflare:workers";
import { fetch, GluebindDatabase as Database } from "./index.js";
export default { fetch };
export class GluebindDatabase extends DurableObject {
  #object;
  constructor(ctx, env) { super(ctx, env); this.#object = new Database(ctx, env); }
  fetch(request) { return this.#object.fetch(request); }
}
`,
};

for (const [variant, source] of Object.entries(FETCH_ONLY)) {
  describe(`do:// to an object class ${variant}`, { skip: (!ENGINE_URL.startsWith("do://") && "do:// only") || (JS_DEMO && "the Rust demo's entry module") }, () => {
    let w;
    let dir;
    const shim = path.join(REPO_ROOT, "build", "demo", `shim-fetch-only-${variant.length}.mjs`);
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "gluebind-fetch-only-"));
      await writeFile(shim, source);
      const config = path.join(dir, "wrangler.toml");
      await writeFile(
        config,
        `name = "gluebind-demo-fetch-only"
main = ${JSON.stringify(shim)}
compatibility_date = "2025-06-01"

[vars]
DATABASE_URL = "do://GLUEBIND_DB"
GLUEBIND_DEBUG = "1"

[[durable_objects.bindings]]
name = "GLUEBIND_DB"
class_name = "GluebindDatabase"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["GluebindDatabase"]
`,
      );
      w = await startWorker({ config, vars: { DATABASE_URL: "do://GLUEBIND_DB" } });
    });
    after(async () => {
      await w?.stop();
      await rm(shim, { force: true });
      await rm(dir, { recursive: true, force: true });
    });

    it("creates, reads and refuses a taken email as on any object", async () => {
      const user = await createUser(w.url);
      const got = await json(w.url, `/users/${user.id}`);
      assertOk(got, 200, `GET /users/${user.id}`);
      assert.deepEqual(got.body, user);
      assertError(await json(w.url, "/users", { method: "POST", body: { name: "Dup", email: user.email } }), [409], "POST the same email");
    });
  });
}
