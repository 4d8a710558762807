// Many events interleaved in one isolate: nothing lost, uniqueness holds across sessions
// (first committer wins), and every session is removed afterwards.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startWorker } from "./harness.mjs";
import {
  assertError,
  assertUser,
  createUser,
  describeRes,
  json,
  listAll,
  settledStats,
  uniqueEmail,
  uniqueName,
} from "./helpers.mjs";

describe("concurrency", () => {
  let worker;
  let url;

  before(async () => {
    worker = await startWorker();
    url = worker.url;
  });

  after(async () => {
    await worker?.stop();
  });

  it("200 concurrent POSTs: all 201, distinct ids, none lost", async () => {
    const N = 200;
    const inputs = Array.from({ length: N }, (_, i) => ({ name: uniqueName(`Conc ${i}`), email: uniqueEmail("conc") }));
    const results = await Promise.all(inputs.map((body) => json(url, "/users", { method: "POST", body })));
    const failures = results
      .map((res, i) => [res, i])
      .filter(([res]) => res.status !== 201)
      .map(([res, i]) => describeRes(`POST /users ${JSON.stringify(inputs[i])}`, res));
    const statusCounts = {};
    for (const r of results) statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
    assert.deepEqual(failures, [], `statuses: ${JSON.stringify(statusCounts)}; first failures:\n${failures.slice(0, 5).join("\n")}`);
    results.forEach((res, i) => assertUser(res.body, inputs[i], "POST /users (concurrent)"));
    const ids = results.map((r) => r.body.id);
    assert.equal(new Set(ids).size, N, "duplicate ids handed out");

    const { items } = await listAll(url);
    const byId = new Map(items.map((u) => [u.id, u]));
    const lost = results.filter((r) => !byId.has(r.body.id)).map((r) => r.body);
    assert.deepEqual(lost, [], `${lost.length} created users missing from the list`);
    for (const r of results) assert.deepEqual(byId.get(r.body.id), r.body);
    const listed = items.map((u) => u.id);
    assert.deepEqual(listed, [...listed].sort((a, b) => a - b), "list is not ordered by id");
  });

  it("20 concurrent POSTs of the same email: exactly one 201, 19 × 409", async () => {
    const email = uniqueEmail("race");
    const results = await Promise.all(
      Array.from({ length: 20 }, () => json(url, "/users", { method: "POST", body: { name: uniqueName("Race"), email } })),
    );
    const created = results.filter((r) => r.status === 201);
    const conflicts = results.filter((r) => r.status === 409);
    const other = results.filter((r) => r.status !== 201 && r.status !== 409);
    assert.deepEqual(other.map((r) => describeRes("POST /users (same email)", r)), [], "unexpected statuses");
    assert.equal(created.length, 1, `expected exactly one 201, got ${created.length}: ${created.map((r) => JSON.stringify(r.body)).join(", ")}`);
    assert.equal(conflicts.length, 19);
    for (const r of conflicts) assertError(r, 409, "POST /users (same email)");
    const { items } = await listAll(url);
    const holders = items.filter((u) => u.email === email);
    assert.deepEqual(holders, [created[0].body], "the list must hold exactly the one created user for that email");
  });

  it("10 concurrent PATCHes to the same new email: exactly one 200, 9 × 409", async () => {
    const users = [];
    for (let i = 0; i < 10; i++) users.push(await createUser(url));
    const email = uniqueEmail("patchrace");
    const results = await Promise.all(users.map((u) => json(url, `/users/${u.id}`, { method: "PATCH", body: { email } })));
    const statuses = results.map((r) => r.status);
    const unexpected = results.filter((r) => r.status !== 200 && r.status !== 409);
    assert.deepEqual(unexpected.map((r) => describeRes("PATCH /users/{id} (same email)", r)), [], "unexpected statuses");
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(",")}`);
    for (const r of results.filter((x) => x.status === 409)) assertError(r, 409, "PATCH /users/{id} (same email)");
    const { items } = await listAll(url);
    assert.equal(items.filter((u) => u.email === email).length, 1, "email not unique after concurrent PATCHes");
  });

  it("10 concurrent DELETEs of one user: exactly one 204, 9 × 404", async () => {
    const u = await createUser(url);
    const results = await Promise.all(Array.from({ length: 10 }, () => json(url, `/users/${u.id}`, { method: "DELETE" })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 204).length, 1, `statuses: ${statuses.join(",")}`);
    for (const r of results.filter((x) => x.status !== 204)) assertError(r, 404, `DELETE /users/${u.id} (concurrent)`);
    assertError(await json(url, `/users/${u.id}`), 404, `GET /users/${u.id} after DELETE`);
  });

  it("stats settle: no active session, one registry", async () => {
    const s = await settledStats(url, 20_000);
    assert.equal(s.sessions_active, 0);
    assert.equal(s.registries_created, 1, `a second registry appeared (instance reset?): ${JSON.stringify(s)}`);
  });
});
