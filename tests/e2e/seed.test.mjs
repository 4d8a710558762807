// The seed's five behaviours of the request-scoped session pattern, checked over HTTP against
// the demo under `wrangler dev` (DATABASE_URL = memory://, GLUEBIND_DEBUG = "1").

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startWorker, ENGINE_URL } from "./harness.mjs";
import {
  assertError,
  assertOk,
  describeRes,
  getStats,
  json,
  settledStats,
  uniqueEmail,
  uniqueName,
  waitFor,
} from "./helpers.mjs";

const SESSION_HEADER = "x-gluebind-session";

function sessionOf(res, req) {
  const id = res.headers.get(SESSION_HEADER);
  assert.ok(id && id.trim().length > 0, `missing ${SESSION_HEADER} header: ${describeRes(req, res)}`);
  return id;
}

describe("seed: request-scoped sessions over HTTP", () => {
  let worker;
  let url;

  before(async () => {
    worker = await startWorker();
    url = worker.url;
  });

  after(async () => {
    await worker?.stop();
  });

  it("stats reports the engine under test", async () => {
    const s = await getStats(url);
    assert.equal(s.engine, ENGINE_URL, `engine: ${JSON.stringify(s)}`);
  });

  it("(1) one registry per isolate: registries_created is 1 and stays 1", async () => {
    const first = await getStats(url);
    assert.equal(first.registries_created, 1, `stats: ${JSON.stringify(first)}`);
    // Many events of several kinds, some concurrent.
    for (let i = 0; i < 10; i++) {
      await json(url, "/__gluebind/probe");
      await json(url, `/users/${900_000 + i}`);
    }
    await Promise.all(Array.from({ length: 20 }, () => json(url, "/users?per_page=1")));
    await Promise.all(
      Array.from({ length: 5 }, () =>
        json(url, "/users", { method: "POST", body: { name: uniqueName(), email: uniqueEmail("seed1") } }),
      ),
    );
    const later = await getStats(url);
    assert.equal(later.registries_created, 1, `stats after many requests: ${JSON.stringify(later)}`);
    assert.ok(later.sessions_opened > first.sessions_opened, `sessions were opened: ${JSON.stringify(later)}`);
  });

  it("(2) reachable app-wide and (4) the same session within an event: probe first === second === header", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await json(url, "/__gluebind/probe");
      const req = "GET /__gluebind/probe";
      assertOk(res, 200, req);
      const { first, second } = res.body;
      assert.equal(typeof first, "string", describeRes(req, res));
      assert.equal(typeof second, "string", describeRes(req, res));
      assert.ok(first.length > 0, `first is empty: ${describeRes(req, res)}`);
      assert.equal(first, second, `two look-ups in one event gave different sessions: ${describeRes(req, res)}`);
      assert.equal(sessionOf(res, req), first, `header differs from the probed session: ${describeRes(req, res)}`);
    }
  });

  it("(4) the same session within an event, under concurrent events", async () => {
    const results = await Promise.all(Array.from({ length: 25 }, () => json(url, "/__gluebind/probe")));
    const ids = new Set();
    for (const res of results) {
      const req = "GET /__gluebind/probe (concurrent)";
      assertOk(res, 200, req);
      assert.equal(res.body.first, res.body.second, describeRes(req, res));
      assert.equal(sessionOf(res, req), res.body.first, describeRes(req, res));
      ids.add(res.body.first);
    }
    assert.equal(ids.size, results.length, "concurrent events shared a session");
  });

  it("(3) a removal after every event, including failed ones", async () => {
    const before = await settledStats(url);
    const N = 10;
    const sessions = [];
    const dup = uniqueEmail("seed3");
    const requests = [
      ["POST /users", { method: "POST", body: { name: uniqueName(), email: dup } }, "/users", 201],
      ["POST /users", { method: "POST", body: { name: uniqueName(), email: uniqueEmail("seed3") } }, "/users", 201],
      ["POST /users", { method: "POST", body: { name: uniqueName(), email: uniqueEmail("seed3") } }, "/users", 201],
      ["POST /users (duplicate)", { method: "POST", body: { name: uniqueName(), email: dup } }, "/users", 409],
      ["POST /users (duplicate)", { method: "POST", body: { name: uniqueName(), email: dup } }, "/users", 409],
      ["GET /users/1999999", {}, "/users/1999999", 404],
      ["GET /users/1999998", {}, "/users/1999998", 404],
      ["GET /users/1999997", {}, "/users/1999997", 404],
      ["GET /users", {}, "/users", 200],
      ["GET /__gluebind/probe", {}, "/__gluebind/probe", 200],
    ];
    assert.equal(requests.length, N);
    for (const [req, init, path, status] of requests) {
      const res = await json(url, path, init);
      if (status >= 400) assertError(res, status, req);
      else assertOk(res, status, req);
      sessions.push(sessionOf(res, req));
    }
    assert.equal(new Set(sessions).size, N, `session ids not distinct: ${sessions.join(", ")}`);

    // Removal runs in ctx.waitUntil after the response: poll.
    const afterStats = await waitFor(
      async () => {
        const s = await getStats(url);
        return s.sessions_removed - before.sessions_removed >= N && s.sessions_active === 0 ? s : false;
      },
      15_000,
      { message: `expected ${N} removals and no active session (before: ${JSON.stringify(before)})` },
    );
    assert.equal(afterStats.sessions_opened - before.sessions_opened, N,
      `sessions_opened grew by ${afterStats.sessions_opened - before.sessions_opened}, expected ${N} (the stats route must open no session): before ${JSON.stringify(before)}, after ${JSON.stringify(afterStats)}`);
    assert.equal(afterStats.sessions_removed - before.sessions_removed, N,
      `sessions_removed grew by ${afterStats.sessions_removed - before.sessions_removed}, expected ${N}: before ${JSON.stringify(before)}, after ${JSON.stringify(afterStats)}`);
    assert.equal(afterStats.sessions_active, 0);
    assert.equal(afterStats.registries_created, 1);
  });

  it("the stats route opens no session of its own", async () => {
    const a = await settledStats(url);
    for (let i = 0; i < 5; i++) await getStats(url);
    const b = await getStats(url);
    assert.equal(b.sessions_opened, a.sessions_opened, `stats opened sessions: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
    assert.equal(b.sessions_removed, a.sessions_removed);
    assert.equal(b.sessions_active, 0);
  });

  it("(5) different sessions across events: 20 sequential requests, 20 distinct session ids", async () => {
    const paths = ["/__gluebind/probe", "/users?per_page=1", "/users/2999999"];
    const ids = [];
    for (let i = 0; i < 20; i++) {
      const path = paths[i % paths.length];
      const res = await json(url, path);
      assert.ok(res.status < 500, describeRes(`GET ${path}`, res));
      ids.push(sessionOf(res, `GET ${path}`));
    }
    assert.equal(new Set(ids).size, 20, `session ids repeat across events: ${ids.join(", ")}`);
  });

  it("sessions settle after all of the above", async () => {
    const s = await settledStats(url);
    assert.equal(s.registries_created, 1, JSON.stringify(s));
  });
});

describe("seed: debug routes are off without GLUEBIND_DEBUG", () => {
  let worker;

  before(async () => {
    worker = await startWorker({ vars: { GLUEBIND_DEBUG: "0" } });
  });

  after(async () => {
    await worker?.stop();
  });

  it("stats and probe answer 404 JSON, and no session header is sent", async () => {
    for (const path of ["/__gluebind/stats", "/__gluebind/probe"]) {
      const res = await json(worker.url, path);
      assertError(res, 404, `GET ${path} (debug off)`);
      assert.equal(res.headers.get(SESSION_HEADER), null, describeRes(`GET ${path} (debug off)`, res));
    }
    const res = await json(worker.url, "/users?per_page=1");
    assertOk(res, 200, "GET /users (debug off)");
    assert.equal(res.headers.get(SESSION_HEADER), null, "x-gluebind-session sent with debug off");
  });
});
