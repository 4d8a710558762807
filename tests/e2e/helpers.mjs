// Assertions and small API helpers shared by the e2e test files (not a test file itself).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import { json, startWorker, waitFor } from "./harness.mjs";

let counter = 0;
const runTag = randomBytes(3).toString("hex");

/** A unique email for this run: never collides across tests or files. */
export function uniqueEmail(prefix = "user") {
  counter += 1;
  return `${prefix}-${runTag}-${counter}-${randomBytes(2).toString("hex")}@example.com`;
}

export function uniqueName(prefix = "User") {
  counter += 1;
  return `${prefix} ${runTag} ${counter}`;
}

/** Request summary for assertion messages. */
export function describeRes(req, res) {
  const body = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
  return `${req} -> ${res.status} ${res.headers.get("content-type") ?? "(no content-type)"} ${body.slice(0, 500)}`;
}

export function isJsonType(res) {
  return /^application\/([a-z0-9.+-]*\+)?json\b/i.test(res.headers.get("content-type") ?? "");
}

/**
 * Assert an error response: one of `statuses`, never 5xx, JSON content-type, body exactly
 * {"error": "<non-empty string>"}.
 */
export function assertError(res, statuses, req = "request") {
  const allowed = Array.isArray(statuses) ? statuses : [statuses];
  const what = describeRes(req, res);
  assert.ok(res.status < 500, `server error: ${what}`);
  assert.ok(allowed.includes(res.status), `expected status ${allowed.join(" or ")}: ${what}`);
  assert.ok(isJsonType(res), `error content-type is not JSON: ${what}`);
  assert.equal(typeof res.body, "object", `error body is not a JSON object: ${what}`);
  assert.notEqual(res.body, null, `error body is null: ${what}`);
  assert.deepEqual(Object.keys(res.body), ["error"], `error body must be {"error": ...}: ${what}`);
  assert.equal(typeof res.body.error, "string", `"error" is not a string: ${what}`);
  assert.ok(res.body.error.trim().length > 0, `"error" is empty: ${what}`);
}

/** Assert a JSON success response with the given status. */
export function assertOk(res, status, req = "request") {
  const what = describeRes(req, res);
  assert.equal(res.status, status, `expected ${status}: ${what}`);
  assert.ok(isJsonType(res), `content-type is not JSON: ${what}`);
}

/** Assert `body` is exactly a user {id, name, email} (id an integer). */
export function assertUser(body, expected = {}, req = "request") {
  const what = `${req}: ${JSON.stringify(body)}`;
  assert.equal(typeof body, "object", what);
  assert.deepEqual(Object.keys(body).sort(), ["email", "id", "name"], `user must be {id,name,email}: ${what}`);
  assert.equal(typeof body.id, "number", `id must be a number: ${what}`);
  assert.ok(Number.isSafeInteger(body.id), `id must be an integer: ${what}`);
  assert.equal(typeof body.name, "string", what);
  assert.equal(typeof body.email, "string", what);
  for (const [k, v] of Object.entries(expected)) assert.equal(body[k], v, `${k} differs: ${what}`);
}

/** POST /users, asserting 201 and the echoed user; returns the user. */
export async function createUser(url, { name = uniqueName(), email = uniqueEmail() } = {}) {
  const res = await json(url, "/users", { method: "POST", body: { name, email } });
  assertOk(res, 201, `POST /users ${JSON.stringify({ name, email })}`);
  assertUser(res.body, { name, email }, "POST /users");
  return res.body;
}

/** GET /__gluebind/stats, asserting its shape. */
export async function getStats(url) {
  const res = await json(url, "/__gluebind/stats");
  assertOk(res, 200, "GET /__gluebind/stats");
  const s = res.body;
  for (const k of ["registries_created", "sessions_opened", "sessions_removed", "sessions_active"]) {
    assert.ok(Number.isSafeInteger(s[k]) && s[k] >= 0, `stats.${k} must be a non-negative integer: ${JSON.stringify(s)}`);
  }
  assert.equal(typeof s.engine, "string", `stats.engine must be a string: ${JSON.stringify(s)}`);
  return s;
}

/** Poll stats until no session is active and every opened session was removed. */
export async function settledStats(url, timeoutMs = 15_000) {
  return waitFor(
    async () => {
      const s = await getStats(url);
      return s.sessions_active === 0 && s.sessions_removed === s.sessions_opened ? s : false;
    },
    timeoutMs,
    { message: "stats did not settle (sessions_active 0, removed == opened)" },
  );
}

/** Every item of a list route (GET /users by default), paging with per_page=100. */
export async function listAll(url, collection = "users") {
  const items = [];
  let total;
  for (let page = 1; page < 10_000; page++) {
    const req = `GET /${collection}?page=${page}&per_page=100`;
    const res = await json(url, `/${collection}?page=${page}&per_page=100`);
    assertOk(res, 200, req);
    assert.ok(Array.isArray(res.body.items), `items is not an array: ${describeRes(req, res)}`);
    total = res.body.total;
    items.push(...res.body.items);
    if (res.body.items.length < 100 || items.length >= total) break;
  }
  assert.equal(items.length, total, `paging through the list gave ${items.length} items, total says ${total}`);
  return { items, total };
}

/**
 * Starts a worker (`startWorker(options)`) before the enclosing suite's tests and stops it after
 * them. Returns a handle whose `url` and `worker` are set once the suite has started.
 */
export function useWorker(options) {
  const handle = { worker: null, url: null };
  before(async () => {
    handle.worker = await startWorker(options);
    handle.url = handle.worker.url;
  });
  after(async () => {
    await handle.worker?.stop();
  });
  return handle;
}

export { json, waitFor };
