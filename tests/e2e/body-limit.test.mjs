// The 64 KiB request-body limit (413 above it), also for bodies sent without Content-Length
// (Transfer-Encoding: chunked): the worker must read the body as a stream and answer 413 as soon
// as more than the limit arrived, never buffering the rest (a 50 MB chunked body once grew
// workerd by ~160 MB; in production an isolate has 128 MB).

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import { before, describe, it } from "node:test";
import {
  assertError,
  assertOk,
  assertUser,
  createUser,
  describeRes,
  json,
  listAll,
  uniqueEmail,
  uniqueName,
  useWorker,
} from "./helpers.mjs";

const MAX_BODY = 64 * 1024;
const TOO_LARGE = `request body larger than ${MAX_BODY} bytes`;

/** `json` followed by spaces up to exactly `size` bytes (still valid JSON: trailing whitespace). */
function padded(value, size) {
  const text = JSON.stringify(value);
  assert.ok(Buffer.byteLength(text) <= size, `${text.length} bytes of JSON do not fit in ${size}`);
  return Buffer.from(text.padEnd(size, " "));
}

/** `buf` cut into chunks of `size` bytes. */
function* chunksOf(buf, size) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

const CRLF = Buffer.from("\r\n");

/**
 * The HTTP/1.1 response at the start of `raw` ({ status, headers, body, text }), or null while
 * it is incomplete. `closed`: the connection ended, so a body without Content-Length is complete.
 */
function parseResponse(raw, closed = false) {
  const headEnd = raw.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const [statusLine, ...lines] = raw.subarray(0, headEnd).toString("latin1").split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const length = headers.get("content-length");
  const rest = raw.subarray(headEnd + 4);
  if (length === null ? !closed : rest.length < Number(length)) return null;
  const text = rest.subarray(0, length === null ? rest.length : Number(length)).toString("utf8");
  let body = text;
  if (/\bjson\b/i.test(headers.get("content-type") ?? "")) {
    try {
      body = JSON.parse(text);
    } catch {}
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body, text };
}

/**
 * Sends `chunks` (an iterable of Buffers) as a request body with Transfer-Encoding: chunked and
 * no Content-Length, over a raw socket that reads the response while it writes: a server may
 * answer early and then reset the connection, and node's http client drops such a response on
 * the write error (EPIPE / ECONNRESET). Writing stops as soon as any response byte or a
 * connection error arrives; errors are reported in `error`, never thrown. With `end: false`
 * the body is left open after the last chunk: only a server that answers before the body ends
 * gets a response. Resolves { status, headers, body, text, sent, ended, error, ms }; `status`
 * is null when no complete response came (within `timeoutMs`, or before the connection ended).
 *
 * A write that meets the server's reset before node has read the answer loses the answer (1 in
 * 60 tries of a 128 KiB body). `atOnce` hands the whole body to the socket in one write, which
 * the kernel takes before the server can answer when it fits its buffers (60 of 60 tries up to
 * 1 MiB; a 20 MiB one lost the answer 18 times in 60): then nothing is written after the answer.
 */
function sendChunked(url, pathname, { method = "POST", chunks, end = true, atOnce = false, timeoutMs = 8_000 }) {
  return new Promise((resolve) => {
    const { hostname, port, host } = new URL(url);
    const started = Date.now();
    const socket = net.connect(Number(port), hostname);
    let raw = Buffer.alloc(0);
    let sent = 0;
    let ended = false;
    let error = null;
    let settled = false;
    let wake = () => {};
    const none = { status: null, headers: new Headers(), body: "", text: "" };
    const finish = (res) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      wake();
      socket.destroy();
      resolve({ ...res, sent, ended, error, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(none), timeoutMs);
    socket.on("data", (data) => {
      raw = Buffer.concat([raw, data]);
      const res = parseResponse(raw);
      if (res) finish(res);
    });
    socket.on("error", (err) => {
      error ??= err;
      wake();
    });
    socket.on("close", () => finish(parseResponse(raw, true) ?? none));
    socket.on("drain", () => wake());
    socket.write(
      `${method} ${pathname} HTTP/1.1\r\nHost: ${host}\r\ncontent-type: application/json\r\n` +
        "transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    const stop = () => settled || error !== null || raw.length > 0;
    const frame = (chunk) => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]);
    if (atOnce) {
      const parts = [...chunks].filter((c) => c.length > 0); // a zero-size chunk would end the body
      sent = parts.reduce((n, c) => n + c.length, 0);
      const frames = parts.map(frame);
      ended = end;
      socket.write(Buffer.concat(end ? [...frames, Buffer.from("0\r\n\r\n")] : frames));
      return;
    }
    (async () => {
      for (const chunk of chunks) {
        // Let the event loop read first: an answer (or reset) that arrived ends the writing, and
        // a write into a reset connection makes node drop an answer it has not read yet.
        await new Promise(setImmediate);
        if (stop()) return;
        if (chunk.length === 0) continue; // a zero-size chunk would end the body
        sent += chunk.length;
        if (!socket.write(frame(chunk))) {
          // Wait for the socket to drain, or for the answer / failure that makes it moot.
          await new Promise((r) => {
            wake = r;
          });
        }
      }
      if (end && !stop()) {
        ended = true;
        socket.write("0\r\n\r\n");
      }
    })();
  });
}

/*
 * The user worker's own socket (the harness's `innerUrl`). Requests to the harness's URL go
 * through wrangler's dev proxy (a second workerd), which does not pass on an early answer to a
 * body it is still forwarding: when the worker answers 413 and cancels the body, the proxy's
 * forwarding fails and it answers 503 "Your worker restarted mid-request" or resets the
 * connection (half of 30 tries of a 128 KiB body; none of 30 on the worker's own socket). The
 * worker's own 413 is observable on its own socket, so the early-answer tests talk to it directly.
 */

/** A JSON document that would be accepted, then spaces in `chunk`-byte pieces: `total` bytes. */
function* oversized(value, total, chunk = 16 * 1024) {
  const head = Buffer.from(JSON.stringify(value));
  yield head;
  const spaces = Buffer.alloc(chunk, " ");
  for (let left = total - head.length; left > 0; left -= chunk) {
    yield left >= chunk ? spaces : spaces.subarray(0, left);
  }
}

/**
 * An oversized body written at once and never ended. A reset that reaches this host before it
 * read the worker's 413 makes the kernel drop the answer (ECONNRESET, no response): a race of
 * TCP, not of the worker, so such an attempt is made again (3 at most); a worker that waits for
 * the body's end never answers, in any attempt.
 */
async function sendOpen(base, pathname, { method = "POST", chunks }) {
  let res;
  for (let attempt = 0; attempt < 3; attempt++) {
    res = await sendChunked(base, pathname, { method, chunks: chunks(), end: false, atOnce: true });
    if (res.status !== null || res.error?.code !== "ECONNRESET") break;
  }
  return res;
}

function assertTooLarge(res, req) {
  assert.notEqual(res.status, null, `${req}: no response (${res.error ?? "timed out"}) after ${res.sent} bytes sent`);
  assertError(res, 413, req);
  assert.deepEqual(res.body, { error: TOO_LARGE }, describeRes(req, res));
}

/** Pids of the workerd processes started by this process (the harness runs them as children). */
function childWorkerd() {
  const pids = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // comm is in parentheses and may contain spaces; the fields after it: state ppid ...
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid && comm.startsWith("workerd")) pids.push(pid);
    } catch {}
  }
  return pids;
}

/** Resident memory (bytes) of this process's workerd children (the dev proxy and the worker). */
function workerdRss() {
  let total = 0;
  for (const pid of childWorkerd()) {
    try {
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (kb) total += Number(kb[1]) * 1024;
    } catch {}
  }
  return total;
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// The 20 MiB tests measure workerd through /proc.
const noProc = (() => {
  try {
    readdirSync("/proc/self/fd");
    return false;
  } catch {
    return "needs Linux /proc";
  }
})();

describe("request body limit (64 KiB)", () => {
  const w = useWorker();
  let inner; // the user worker's own socket (see above)

  before(() => {
    inner = w.worker.innerUrl;
  });

  it("413 for a Content-Length over the limit; nothing stored", async () => {
    const before = await listAll(w.url);
    const body = padded({ name: uniqueName("Big"), email: uniqueEmail("big") }, MAX_BODY + 1).toString();
    const res = await json(w.url, "/users", { method: "POST", body });
    assertError(res, 413, "POST /users (Content-Length 65537)");
    assert.deepEqual(res.body, { error: TOO_LARGE });
    assert.deepEqual(await listAll(w.url), before, "a refused POST changed the users");
  });

  // Oversized bodies written in one go (see sendChunked's `atOnce`): the 413 arrives before the
  // worker's side resets the connection. A client still writing when that reset comes may lose
  // the answer (see the 20 MiB test).
  it("413 for a chunked POST /users over the limit (body ended, and body left open); nothing stored", async () => {
    const before = await listAll(w.url);
    const user = () => ({ name: uniqueName("Chunked"), email: uniqueEmail("chunked") });
    // One byte over the limit, in 4 KiB chunks, body ended.
    const over = await sendChunked(inner, "/users", { chunks: chunksOf(padded(user(), MAX_BODY + 1), 4096), atOnce: true });
    assertTooLarge(over, "POST /users (chunked, 65537 bytes)");
    // Twice the limit, and 1 MiB (64 chunks of 16 KiB), and the body never ends: only a worker
    // that stops reading at the limit answers (one that buffers the whole body waits for its end).
    for (const size of [2 * MAX_BODY, 64 * 16 * 1024]) {
      const open = await sendOpen(inner, "/users", { chunks: () => oversized(user(), size) });
      assertTooLarge(open, `POST /users (chunked, ${size / 1024} KiB, body left open)`);
    }
    assert.deepEqual(await listAll(w.url), before, "a refused POST changed the users");
  });

  it("413 for a chunked PATCH /users/{id} over the limit (body ended, and body left open); the user is unchanged", async () => {
    const u = await createUser(w.url);
    const patch = () => ({ name: uniqueName("Patched") });
    const path = `/users/${u.id}`;
    const over = await sendChunked(inner, path, { method: "PATCH", chunks: chunksOf(padded(patch(), MAX_BODY + 1), 4096), atOnce: true });
    assertTooLarge(over, `PATCH ${path} (chunked, 65537 bytes)`);
    for (const size of [2 * MAX_BODY, 64 * 16 * 1024]) {
      const open = await sendOpen(inner, path, { method: "PATCH", chunks: () => oversized(patch(), size) });
      assertTooLarge(open, `PATCH ${path} (chunked, ${size / 1024} KiB, body left open)`);
    }
    const got = await json(w.url, path);
    assertOk(got, 200, `GET ${path}`);
    assert.deepEqual(got.body, u, "a refused PATCH changed the user");
  });

  it("a chunked body of exactly 65536 bytes (valid JSON padded with spaces) is accepted by POST and PATCH", async () => {
    const name = uniqueName("Streamed");
    const email = uniqueEmail("streamed");
    const created = await sendChunked(w.url, "/users", { chunks: chunksOf(padded({ name, email }, MAX_BODY), 4096) });
    assert.ok(created.ended, "the whole body was sent");
    assertOk(created, 201, "POST /users (chunked, 65536 bytes in 4096-byte chunks)");
    assertUser(created.body, { name, email }, "POST /users (chunked)");
    const path = `/users/${created.body.id}`;
    const renamed = uniqueName("Restreamed");
    const patched = await sendChunked(w.url, path, { method: "PATCH", chunks: chunksOf(padded({ name: renamed }, MAX_BODY), 1000) });
    assertOk(patched, 200, `PATCH ${path} (chunked, 65536 bytes in 1000-byte chunks)`);
    assert.deepEqual(patched.body, { ...created.body, name: renamed });
    const got = await json(w.url, path);
    assert.deepEqual(got.body, { ...created.body, name: renamed }, "the streamed PATCH was not stored");
  });

  it("a missing or empty body is still a 400 (invalid JSON), not a 413 or 500", async () => {
    assertError(await json(w.url, "/users", { method: "POST" }), 400, "POST /users (no body)");
    assertError(await sendChunked(w.url, "/users", { chunks: [] }), 400, "POST /users (chunked, empty body)");
  });

  /**
   * Sends 20 MiB in 64 KiB chunks to `base` (stopping at the first answer or error) and checks
   * that the worker stopped reading early without growing, and that it still has its data (an
   * isolate crash would wipe memory://; read on the worker's own socket, see below). Returns the
   * result of sendChunked.
   */
  async function hugeBody(t, base, label, timeoutMs = 8_000) {
    const u = await createUser(w.url);
    const before = await listAll(w.url);
    const total = 20 * 1024 * 1024;
    const rssBefore = workerdRss();
    const res = await sendChunked(base, "/users", {
      chunks: oversized({ name: uniqueName("Huge"), email: uniqueEmail("huge") }, total, 64 * 1024),
      timeoutMs,
    });
    const rssAfter = workerdRss();
    t.diagnostic(
      `20 MiB chunked POST ${label}: status ${res.status} after ${res.ms} ms, ${res.sent} bytes written, ` +
        `error ${res.error?.code ?? "none"}; workerd rss ${mib(rssBefore)} -> ${mib(rssAfter)}`,
    );
    assert.ok(res.ms < 10_000, `the answer took ${res.ms} ms`); // (or the wait for one)
    assert.ok(!res.ended && res.sent < total / 2, `${res.sent} of ${total} bytes were read before an answer`);
    // Buffering the body costs several times its size (the JS buffer, its copy into wasm).
    assert.ok(rssAfter - rssBefore < 8 * 2 ** 20, `workerd grew by ${mib(rssAfter - rssBefore)}`);
    // The worker's data, read on its own socket: after passing on an early 413 to a body it was
    // still forwarding, wrangler's dev proxy has left the next request through it hanging (2 of
    // ~60 runs of this file, both on kv://) — its trouble, not the worker's.
    const got = await json(inner, `/users/${u.id}`);
    assertOk(got, 200, `GET /users/${u.id} after the 20 MiB body`);
    assert.deepEqual(got.body, u);
    assert.deepEqual(await listAll(inner), before, "the refused POST changed the users");
    return res;
  }

  it("a 20 MiB chunked body is refused early: no memory growth, the worker keeps serving and its data", { skip: noProc }, async (t) => {
    const res = await hugeBody(t, inner, "to the worker");
    // The answer is the 413, unless the worker's reset of the connection (it does not read the
    // rest of the body) overtook it while the client was still writing.
    if (res.status !== null || res.error === null) assertTooLarge(res, "POST /users (chunked, 20 MiB)");
    else assert.match(res.error.code, /^(ECONNRESET|EPIPE)$/, `POST /users (chunked, 20 MiB): ${res.error}`);
  });

  it("the same through wrangler's dev proxy: no memory growth, the data stays", { skip: noProc }, async (t) => {
    const res = await hugeBody(t, w.url, "through the dev proxy", 5_000);
    const req = "POST /users (chunked, 20 MiB, through the dev proxy)";
    // The worker's 413, or the proxy's failure to forward an early answer (see above):
    // a 503 of its fixed text, a reset connection, or (seldom) one that stalls: no answer, no
    // error (the worker's own socket never did in these tests).
    if (res.status === 413) assertTooLarge(res, req);
    else if (res.status !== null) {
      assert.equal(res.status, 503, describeRes(req, res));
      assert.match(res.text, /^Your worker restarted mid-request/, describeRes(req, res));
    } else if (res.error !== null) assert.match(res.error.code ?? "", /^(ECONNRESET|EPIPE)$/, `${req}: ${res.error}`);
  });
});
