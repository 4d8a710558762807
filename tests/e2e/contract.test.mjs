// The demo's HTTP contract (docs/demo.md), against `wrangler dev` with memory://.
// Tests share one worker but never depend on each other's data: every test makes its own users
// with unique emails, and list assertions only look at ids a test created itself (or at deltas).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startWorker, ENGINE_URL } from "./harness.mjs";
import {
  assertError,
  assertOk,
  assertUser,
  createUser,
  describeRes,
  isJsonType,
  json,
  listAll,
  uniqueEmail,
  uniqueName,
} from "./helpers.mjs";

let worker;
let url;

before(async () => {
  worker = await startWorker();
  url = worker.url;
});

after(async () => {
  await worker?.stop();
});

async function total() {
  const res = await json(url, "/users?per_page=1");
  assertOk(res, 200, "GET /users?per_page=1");
  assert.ok(Number.isSafeInteger(res.body.total), describeRes("GET /users?per_page=1", res));
  return res.body.total;
}

async function getUser(id) {
  return json(url, `/users/${id}`);
}

/** An email of exactly `len` characters that is otherwise valid (local part ≤ 64, labels ≤ 63). */
function emailOfLength(len) {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const local = `e${tag}`.padEnd(64, "x");
  let domain = "";
  const tld = ".com";
  let remaining = len - local.length - 1 - tld.length;
  const labels = [];
  while (remaining > 0) {
    const n = Math.min(63, remaining);
    // a label plus its dot; a label must leave room for its dot unless it is the last one
    const take = remaining > 63 ? Math.min(63, remaining - 2) : n;
    labels.push("d".repeat(take));
    remaining -= take + (remaining - take > 0 ? 1 : 0);
  }
  domain = labels.join(".") + tld;
  const email = `${local}@${domain}`;
  assert.equal(email.length, len, `emailOfLength(${len}) built ${email.length}`);
  return email;
}

describe("POST /users", () => {
  it("201 with {id, name, email}; GET /users/{id} returns the same object", async () => {
    const name = uniqueName("Ada");
    const email = uniqueEmail("ada");
    const res = await json(url, "/users", { method: "POST", body: { name, email } });
    assertOk(res, 201, "POST /users");
    assertUser(res.body, { name, email }, "POST /users");
    const got = await getUser(res.body.id);
    assertOk(got, 200, `GET /users/${res.body.id}`);
    assert.deepEqual(got.body, res.body);
  });

  it("ids are distinct safe integers (increasing on memory:// and do://; random on kv://)", async () => {
    const a = await createUser(url);
    const b = await createUser(url);
    assert.notEqual(a.id, b.id);
    assert.ok(Number.isSafeInteger(a.id) && Number.isSafeInteger(b.id), `ids ${a.id}, ${b.id}`);
    if (!ENGINE_URL.startsWith("kv://")) {
      assert.ok(b.id > a.id, `second id ${b.id} not greater than first ${a.id}`);
    }
  });

  it("stores an SQL-injection-looking name verbatim and the table still works", async () => {
    const name = "Robert'); DROP TABLE users;--";
    const user = await createUser(url, { name, email: uniqueEmail("bobby") });
    const got = await getUser(user.id);
    assertOk(got, 200, `GET /users/${user.id}`);
    assert.equal(got.body.name, name);
    const quoteEmail = `o'brien-${uniqueEmail("q")}`;
    const quoted = await createUser(url, { name: `x' OR '1'='1`, email: quoteEmail });
    assert.equal((await getUser(quoted.id)).body.email, quoteEmail);
    // The table is still there and usable.
    await createUser(url);
    const list = await json(url, "/users?per_page=1");
    assertOk(list, 200, "GET /users after injection attempt");
  });

  it("stores unicode verbatim", async () => {
    const name = "Zoë Ünïcödé 李小龙 🚀";
    const user = await createUser(url, { name, email: uniqueEmail("uni") });
    assert.equal((await getUser(user.id)).body.name, name);
  });

  it("accepts the boundary lengths: name of 100 chars, email of 254 chars", async () => {
    const name = "n".repeat(100);
    await createUser(url, { name, email: uniqueEmail("len") });
    const email = emailOfLength(254);
    await createUser(url, { name: uniqueName(), email });
  });

  it("400 for every bad input, and nothing is stored", async () => {
    const before = await total();
    const e = () => uniqueEmail("bad");
    const cases = [
      ["not JSON", "{not json"],
      ["empty body", ""],
      ["JSON array", JSON.stringify([{ name: "A", email: e() }])],
      ["JSON string", JSON.stringify("hello")],
      ["JSON null", "null"],
      ["missing name", { email: e() }],
      ["missing email", { name: uniqueName() }],
      ["empty name", { name: "", email: e() }],
      ["empty email", { name: uniqueName(), email: "" }],
      ["name of 101 chars", { name: "n".repeat(101), email: e() }],
      ["email without '@'", { name: uniqueName(), email: "no-at-sign.example.com" }],
      ["email of 255 chars", { name: uniqueName(), email: emailOfLength(255) }],
      ["name as number", { name: 42, email: e() }],
      ["name as null", { name: null, email: e() }],
      ["email as number", { name: uniqueName(), email: 12345 }],
      ["unknown field", { name: uniqueName(), email: e(), admin: true }],
      ["id supplied", { id: 1, name: uniqueName(), email: e() }],
    ];
    for (const [label, body] of cases) {
      const res = await json(url, "/users", { method: "POST", body });
      assertError(res, 400, `POST /users (${label}) body=${typeof body === "string" ? body : JSON.stringify(body)}`.slice(0, 300));
    }
    assert.equal(await total(), before, "a rejected POST stored something");
  });

  it("409 for a duplicate email, and the count is unchanged", async () => {
    const email = uniqueEmail("dup");
    const first = await createUser(url, { email });
    const before = await total();
    const res = await json(url, "/users", { method: "POST", body: { name: uniqueName(), email } });
    assertError(res, 409, "POST /users (duplicate email)");
    assert.equal(await total(), before, "the duplicate was stored");
    assert.deepEqual((await getUser(first.id)).body, first, "the original user changed");
  });
});

describe("GET /users (list and paging)", () => {
  const mine = [];

  before(async () => {
    // At least 25 users exist (defaults: per_page 20 must truncate).
    for (let i = 0; i < 25; i++) mine.push(await createUser(url, { name: `Page ${i}`, email: uniqueEmail("page") }));
  });

  it("shape {items, page, per_page, total}, ordered by id, total counts everyone", async () => {
    const res = await json(url, "/users?page=1&per_page=100");
    assertOk(res, 200, "GET /users?page=1&per_page=100");
    assert.deepEqual(Object.keys(res.body).sort(), ["items", "page", "per_page", "total"], describeRes("GET /users", res));
    assert.equal(res.body.page, 1);
    assert.equal(res.body.per_page, 100);
    assert.ok(Array.isArray(res.body.items));
    for (const u of res.body.items) assertUser(u, {}, "list item");
    const { items, total } = await listAll(url);
    assert.ok(total >= mine.length);
    const ids = items.map((u) => u.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "list is not ordered by id");
    assert.equal(new Set(ids).size, ids.length, "list repeats an id");
    const byId = new Map(items.map((u) => [u.id, u]));
    for (const u of mine) assert.deepEqual(byId.get(u.id), u, `user ${u.id} missing or different in the list`);
  });

  it("page=2&per_page=2 gives the right slice", async () => {
    const { items } = await listAll(url);
    const res = await json(url, "/users?page=2&per_page=2");
    assertOk(res, 200, "GET /users?page=2&per_page=2");
    assert.equal(res.body.page, 2);
    assert.equal(res.body.per_page, 2);
    assert.equal(res.body.total, items.length);
    assert.deepEqual(res.body.items, items.slice(2, 4));
  });

  it("the last page is partial", async () => {
    const { items } = await listAll(url);
    const perPage = 7;
    const lastPage = Math.ceil(items.length / perPage);
    const res = await json(url, `/users?page=${lastPage}&per_page=${perPage}`);
    assertOk(res, 200, `GET /users?page=${lastPage}&per_page=${perPage}`);
    assert.deepEqual(res.body.items, items.slice((lastPage - 1) * perPage));
  });

  it("defaults are page=1, per_page=20", async () => {
    const { items } = await listAll(url);
    const res = await json(url, "/users");
    assertOk(res, 200, "GET /users");
    assert.equal(res.body.page, 1);
    assert.equal(res.body.per_page, 20);
    assert.equal(res.body.total, items.length);
    assert.deepEqual(res.body.items, items.slice(0, 20));
    const onlyPage = await json(url, "/users?page=2");
    assertOk(onlyPage, 200, "GET /users?page=2");
    assert.equal(onlyPage.body.per_page, 20);
    assert.deepEqual(onlyPage.body.items, items.slice(20, 40));
  });

  it("per_page=100 is allowed", async () => {
    const res = await json(url, "/users?per_page=100");
    assertOk(res, 200, "GET /users?per_page=100");
    assert.equal(res.body.per_page, 100);
  });

  it("a page past the end is empty (200) or a 404 JSON error, never a 5xx", async () => {
    const res = await json(url, "/users?page=100000&per_page=100");
    if (res.status === 200) {
      assert.deepEqual(res.body.items, [], describeRes("GET /users?page=100000", res));
      assert.ok(res.body.total >= mine.length);
    } else {
      assertError(res, 404, "GET /users?page=100000&per_page=100");
    }
  });

  it("?email= narrows the list to that user (a UNIQUE column: an index read)", async () => {
    const email = uniqueEmail("find+me");
    const user = await createUser(url, { name: "Findable", email });
    const path = `/users?email=${encodeURIComponent(email)}&per_page=5`;
    const res = await json(url, path);
    assertOk(res, 200, `GET ${path}`);
    assert.deepEqual(res.body, { items: [user], page: 1, per_page: 5, total: 1 }, describeRes(path, res));
    const none = await json(url, `/users?email=${encodeURIComponent(uniqueEmail("nobody"))}`);
    assertOk(none, 200, "GET /users?email=<unknown>");
    assert.deepEqual(none.body, { items: [], page: 1, per_page: 20, total: 0 });
    // Exact, not a pattern: another case or a prefix matches nobody.
    for (const other of [email.toUpperCase(), email.slice(0, -1), "%"]) {
      const res = await json(url, `/users?email=${encodeURIComponent(other)}`);
      assertOk(res, 200, `GET /users?email=${other}`);
      assert.equal(res.body.total, 0, `${other} matched ${JSON.stringify(res.body.items)}`);
    }
  });

  it("?after= pages by key: {items, per_page, next}, every user once, in id order", async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await createUser(url, { name: `Keyset ${i}`, email: uniqueEmail("keyset") }));
    const seen = [];
    let after = 0;
    for (let guard = 0; guard < 10_000; guard++) {
      const path = `/users?after=${after}&per_page=7`;
      const res = await json(url, path);
      assertOk(res, 200, `GET ${path}`);
      assert.deepEqual(Object.keys(res.body).sort(), ["items", "next", "per_page"], describeRes(path, res));
      assert.equal(res.body.per_page, 7);
      assert.ok(res.body.items.length <= 7);
      seen.push(...res.body.items);
      if (res.body.next === null) break;
      assert.equal(res.body.next, res.body.items.at(-1).id, describeRes(path, res));
      after = res.body.next;
    }
    const ids = seen.map((u) => u.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "keyset pages are not in id order");
    assert.equal(new Set(ids).size, ids.length, "keyset pages repeat an id");
    const byId = new Map(seen.map((u) => [u.id, u]));
    for (const u of made) assert.deepEqual(byId.get(u.id), u, `user ${u.id} missing from the keyset pages`);
    // Past the last user: an empty page; with an email: that user, if above `after`.
    const last = ids.at(-1);
    const end = await json(url, `/users?after=${last}`);
    assert.deepEqual(end.body, { items: [], per_page: 20, next: null });
    const one = made[2];
    const path = `/users?after=${one.id - 1}&email=${encodeURIComponent(one.email)}`;
    const found = await json(url, path);
    assert.deepEqual(found.body, { items: [one], per_page: 20, next: null }, describeRes(path, found));
  });

  for (const query of ["after=abc", "after=1.5", "after=", "after=1&page=2", "after=1&per_page=0", "after=99999999999999999999"]) {
    it(`400 for ${query}`, async () => {
      const res = await json(url, `/users?${query}`);
      assertError(res, 400, `GET /users?${query}`);
    });
  }

  for (const query of [
    "per_page=101",
    "per_page=0",
    "per_page=-1",
    "per_page=abc",
    "page=0",
    "page=-1",
    "page=abc",
    "page=1.5",
    "per_page=99999999999999999999999",
  ]) {
    it(`400 for ${query}`, async () => {
      const res = await json(url, `/users?${query}`);
      assertError(res, 400, `GET /users?${query}`);
    });
  }
});

describe("GET /users/{id}", () => {
  it("404 JSON for an unknown id", async () => {
    assertError(await getUser(987_654_321), 404, "GET /users/987654321");
  });

  for (const id of ["abc", "0", "-1", "1.5", "99999999999999999999999", "1%20OR%201=1"]) {
    it(`400 or 404 JSON for /users/${id}`, async () => {
      const res = await json(url, `/users/${id}`);
      assertError(res, [400, 404], `GET /users/${id}`);
    });
  }
});

describe("PATCH /users/{id}", () => {
  it("updates the name; persisted", async () => {
    const u = await createUser(url);
    const name = uniqueName("Renamed");
    const res = await json(url, `/users/${u.id}`, { method: "PATCH", body: { name } });
    assertOk(res, 200, `PATCH /users/${u.id} {name}`);
    assert.deepEqual(res.body, { ...u, name });
    assert.deepEqual((await getUser(u.id)).body, { ...u, name });
  });

  it("updates the email; persisted", async () => {
    const u = await createUser(url);
    const email = uniqueEmail("moved");
    const res = await json(url, `/users/${u.id}`, { method: "PATCH", body: { email } });
    assertOk(res, 200, `PATCH /users/${u.id} {email}`);
    assert.deepEqual(res.body, { ...u, email });
    assert.deepEqual((await getUser(u.id)).body, { ...u, email });
    // The old email is free again.
    await createUser(url, { email: u.email });
  });

  it("updates both fields at once", async () => {
    const u = await createUser(url);
    const patch = { name: uniqueName("Both"), email: uniqueEmail("both") };
    const res = await json(url, `/users/${u.id}`, { method: "PATCH", body: patch });
    assertOk(res, 200, `PATCH /users/${u.id} {name,email}`);
    assert.deepEqual(res.body, { id: u.id, ...patch });
    assert.deepEqual((await getUser(u.id)).body, { id: u.id, ...patch });
  });

  it("setting a user's email to its own current email is not a conflict", async () => {
    const u = await createUser(url);
    const res = await json(url, `/users/${u.id}`, { method: "PATCH", body: { email: u.email } });
    assertOk(res, 200, `PATCH /users/${u.id} {email: own email}`);
    assert.deepEqual(res.body, u);
  });

  it("409 for an email another user has, and nothing changes", async () => {
    const a = await createUser(url);
    const b = await createUser(url);
    const res = await json(url, `/users/${b.id}`, { method: "PATCH", body: { name: uniqueName("Nope"), email: a.email } });
    assertError(res, 409, `PATCH /users/${b.id} {email: taken}`);
    assert.deepEqual((await getUser(a.id)).body, a);
    assert.deepEqual((await getUser(b.id)).body, b, "a rejected PATCH changed the user");
  });

  it("404 for an unknown id", async () => {
    const res = await json(url, "/users/987654322", { method: "PATCH", body: { name: uniqueName() } });
    assertError(res, 404, "PATCH /users/987654322");
  });

  it("400 for bad input, and nothing changes", async () => {
    const u = await createUser(url);
    const cases = [
      ["not JSON", "{oops"],
      ["JSON array", "[]"],
      ["empty name", { name: "" }],
      ["name of 101 chars", { name: "n".repeat(101) }],
      ["email without '@'", { email: "nope" }],
      ["email of 255 chars", { email: emailOfLength(255) }],
      ["name as number", { name: 7 }],
      ["unknown field", { name: uniqueName(), role: "admin" }],
    ];
    for (const [label, body] of cases) {
      const res = await json(url, `/users/${u.id}`, { method: "PATCH", body });
      assertError(res, 400, `PATCH /users/${u.id} (${label})`);
    }
    assert.deepEqual((await getUser(u.id)).body, u, "a rejected PATCH changed the user");
  });
});

describe("DELETE /users/{id}", () => {
  it("204, then GET 404, then DELETE again 404; the email is free again", async () => {
    const u = await createUser(url);
    const before = await total();
    const del = await json(url, `/users/${u.id}`, { method: "DELETE" });
    assert.equal(del.status, 204, describeRes(`DELETE /users/${u.id}`, del));
    assert.equal(del.text, "", "204 must have an empty body");
    assert.equal(await total(), before - 1);
    assertError(await getUser(u.id), 404, `GET /users/${u.id} after DELETE`);
    assertError(await json(url, `/users/${u.id}`, { method: "DELETE" }), 404, `DELETE /users/${u.id} again`);
    assertError(await json(url, `/users/${u.id}`, { method: "PATCH", body: { name: "x" } }), 404, `PATCH /users/${u.id} after DELETE`);
    await createUser(url, { email: u.email });
  });

  it("404 for an unknown id", async () => {
    assertError(await json(url, "/users/987654323", { method: "DELETE" }), 404, "DELETE /users/987654323");
  });
});

describe("routing and error format", () => {
  it("unknown routes are 404 JSON", async () => {
    for (const path of ["/", "/nope", "/users/1/extra", "/__gluebind/nope"]) {
      assertError(await json(url, path), 404, `GET ${path}`);
    }
  });

  it("a wrong method on a known route is a 404 or 405 JSON error", async () => {
    const u = await createUser(url);
    for (const [method, path] of [["PUT", `/users/${u.id}`], ["DELETE", "/users"], ["POST", `/users/${u.id}`]]) {
      const res = await json(url, path, { method, body: method === "DELETE" ? undefined : { name: "x" } });
      assertError(res, [404, 405], `${method} ${path}`);
    }
    assert.deepEqual((await getUser(u.id)).body, u);
  });

  it("success responses are JSON", async () => {
    const u = await createUser(url);
    const res = await getUser(u.id);
    assert.ok(isJsonType(res), describeRes(`GET /users/${u.id}`, res));
  });
});
