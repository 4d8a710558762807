// Optimistic concurrency on PATCH /users/{id}: every user response carries an ETag, and a PATCH
// sent with If-Match answers 412 (storing nothing) when the user changed since that version.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertError, assertOk, createUser, describeRes, json, uniqueEmail, uniqueName, useWorker } from "./helpers.mjs";

const STRONG_TAG = /^"[0-9a-f]{32}"$/;

describe("ETag and If-Match", () => {
  const w = useWorker();

  async function get(id) {
    const res = await json(w.url, `/users/${id}`);
    assertOk(res, 200, `GET /users/${id}`);
    return res;
  }

  function patch(id, body, headers = {}) {
    return json(w.url, `/users/${id}`, { method: "PATCH", body, headers });
  }

  it("POST, GET and PATCH carry a strong ETag that tracks the stored user; the JSON stays {id,name,email}", async () => {
    const created = await json(w.url, "/users", { method: "POST", body: { name: uniqueName(), email: uniqueEmail("etag") } });
    assertOk(created, 201, "POST /users");
    const tag = created.headers.get("etag");
    assert.match(tag ?? "", STRONG_TAG, describeRes("POST /users", created));
    const read = await get(created.body.id);
    assert.equal(read.headers.get("etag"), tag, "GET of the unchanged user has the POST's tag");
    assert.deepEqual(Object.keys(read.body).sort(), ["email", "id", "name"]);

    const renamed = await patch(created.body.id, { name: uniqueName("Renamed") });
    assertOk(renamed, 200, "PATCH");
    const newTag = renamed.headers.get("etag");
    assert.match(newTag ?? "", STRONG_TAG);
    assert.notEqual(newTag, tag, "a changed user has a new tag");
    assert.equal((await get(created.body.id)).headers.get("etag"), newTag);
  });

  it("If-Match with the current tag (or *) applies the PATCH", async () => {
    const u = await createUser(w.url);
    const tag = (await get(u.id)).headers.get("etag");
    const name = uniqueName("Matched");
    const res = await patch(u.id, { name }, { "if-match": tag });
    assertOk(res, 200, "PATCH If-Match current");
    assert.equal(res.body.name, name);
    const star = await patch(u.id, { name: uniqueName("Star") }, { "if-match": "*" });
    assertOk(star, 200, "PATCH If-Match *");
  });

  it("If-Match with a stale, weak or unknown tag is 412 JSON and stores nothing", async () => {
    const u = await createUser(w.url);
    const stale = (await get(u.id)).headers.get("etag");
    const theirs = await patch(u.id, { name: uniqueName("Theirs") });
    assertOk(theirs, 200, "PATCH by someone else");
    for (const header of [stale, `W/${theirs.headers.get("etag")}`, '"0000"', "garbage"]) {
      const res = await patch(u.id, { name: uniqueName("Mine") }, { "if-match": header });
      assertError(res, 412, `PATCH If-Match ${header}`);
      assert.match(res.body.error, /precondition failed/);
    }
    const now = await get(u.id);
    assert.deepEqual(now.body, theirs.body, "nothing stored by the refused PATCHes");
  });

  it("If-Match on an unknown user is 404", async () => {
    assertError(await patch(987654321, { name: "x" }, { "if-match": "*" }), 404, "PATCH unknown id");
  });

  it("10 concurrent PATCHes with the same If-Match tag: exactly one 200, the rest 412 or 409", async () => {
    const u = await createUser(w.url);
    const tag = (await get(u.id)).headers.get("etag");
    const names = Array.from({ length: 10 }, (_, i) => uniqueName(`Racer ${i}`));
    const results = await Promise.all(names.map((name) => patch(u.id, { name }, { "if-match": tag })));
    const ok = results.filter((r) => r.status === 200);
    const unexpected = results.filter((r) => ![200, 409, 412].includes(r.status));
    assert.deepEqual(unexpected.map((r) => describeRes("PATCH If-Match (race)", r)), [], "unexpected statuses");
    assert.equal(ok.length, 1, `statuses: ${results.map((r) => r.status).join(",")}`);
    for (const r of results.filter((x) => x.status !== 200)) assertError(r, [409, 412], "PATCH If-Match (race)");
    assert.deepEqual((await get(u.id)).body, ok[0].body, "the one winner is what is stored");
  });
});
