// Query recording, the model layer's debug aid: with GLUEBIND_DEBUG on, every response tells how
// many statements its event ran (x-gluebind-queries), and /__gluebind/stats lists the last
// statements of ended events with their SQL, bound parameters, duration and row count.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertOk, createUser, describeRes, getStats, json, uniqueName, useWorker, waitFor } from "./helpers.mjs";

describe("query recording (debug)", () => {
  const w = useWorker();

  const statements = (res) => Number(res.headers.get("x-gluebind-queries"));

  it("a read by primary key is one statement; a PATCH changing nothing writes nothing", async () => {
    const u = await createUser(w.url);
    const read = await json(w.url, `/users/${u.id}`);
    assertOk(read, 200, "GET /users/{id}");
    assert.equal(statements(read), 1, describeRes("GET /users/{id}", read));

    const same = await json(w.url, `/users/${u.id}`, { method: "PATCH", body: { name: u.name } });
    assertOk(same, 200, "PATCH without a change");
    assert.equal(statements(same), 1, "only the read: an unchanged object is not written");

    const renamed = await json(w.url, `/users/${u.id}`, { method: "PATCH", body: { name: uniqueName("Q") } });
    assertOk(renamed, 200, "PATCH");
    assert.equal(statements(renamed), 2, "the read and one UPDATE");
  });

  it("the stats list recent statements with SQL, bound parameters, duration and rows", async () => {
    const name = uniqueName("Recorded");
    const u = await createUser(w.url, { name });
    await json(w.url, `/users/${u.id}`);
    // Teardown (which hands the session's statements to the registry) runs after the response.
    const stats = await waitFor(
      async () => {
        const s = await getStats(w.url);
        assert.ok(Array.isArray(s.queries), JSON.stringify(s));
        return s.queries.some((q) => q.params.includes(name)) ? s : false;
      },
      10_000,
      { message: `no recorded statement binds ${name}` },
    );
    const insert = stats.queries.find((q) => q.params.includes(name));
    assert.ok(insert, `an INSERT binding ${name} in ${JSON.stringify(stats.queries)}`);
    assert.match(insert.sql, /^INSERT INTO "?users"?/i);
    assert.ok(!insert.sql.includes(name), "the value is bound, never in the SQL text");
    assert.equal(insert.rows, 1);
    assert.equal(insert.ok, true);
    assert.equal(typeof insert.duration_ms, "number");
    for (const q of stats.queries) {
      assert.deepEqual(Object.keys(q).sort(), ["duration_ms", "ok", "params", "rows", "session", "sql"]);
    }
    assert.ok(stats.queries.length <= 50, "bounded");
  });
});
