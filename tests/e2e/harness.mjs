// End-to-end harness: serves a worker config with wrangler's programmatic API
// (`unstable_startWorker`'s DevEnv: the same config reading, bundling, local bindings and dev proxy
// as `wrangler dev`, in this process) and stops it again.
//
// It never builds anything: the demo must already be built (`npm run build` produces build/demo/
// for the top-level wrangler.toml). Each worker gets a loopback port chosen by the OS, the
// inspector off, its own persistence directory (or the one given, which outlives a restart), and
// its vars overridden as `--var` would. wrangler's output while a worker starts or runs is kept
// with the worker (`output()`, and in start-up errors) instead of being printed; set
// GLUEBIND_E2E_VERBOSE=1 to print it as well. Its two workerd processes are children of this
// process: stop() ends them (also when a test fails: call it from an `after` hook, or use
// helpers.mjs's useWorker), and miniflare ends them when this process exits or gets SIGINT/SIGTERM.
//
// Run: `node --test tests/e2e/` from the repo root (after `npm run build`).
// GLUEBIND_E2E_CONFIG=<path to a wrangler.toml> points the tests at another worker;
// GLUEBIND_E2E_DATABASE_URL=<url> passes DATABASE_URL to every worker (e.g. kv://GLUEBIND_KV,
// do://GLUEBIND_DB).

import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "node:util";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEFAULT_CONFIG = "wrangler.toml";
const START_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const OUTPUT_LIMIT = 64 * 1024;

/**
 * The engine the suite runs against: GLUEBIND_E2E_DATABASE_URL (e.g. kv://GLUEBIND_KV) is passed
 * to every worker as DATABASE_URL; without it the config's own (memory://) is used.
 */
export const ENGINE_URL = process.env.GLUEBIND_E2E_DATABASE_URL || "memory://";
/** True when the engine's data outlives the isolate (kv://, do://); memory:// is a cache. */
export const PERSISTENT = ENGINE_URL.startsWith("kv://") || ENGINE_URL.startsWith("do://");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A timer that does not keep the process alive (the workers' child processes do, while running).
const later = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Poll `fn` (sync or async) every `intervalMs` until it returns a truthy value, and return it.
 * Errors thrown by `fn` count as "not yet". On timeout, throws with the last value/error.
 */
export async function waitFor(fn, timeoutMs = 10_000, { intervalMs = POLL_MS, message } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastErr ? `last error: ${lastErr.stack ?? lastErr}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`${message ?? "waitFor timed out"} after ${timeoutMs} ms; ${detail}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * One HTTP request; returns { status, headers, body, text }. `body` is the parsed JSON when the
 * response's content-type is JSON (the raw text if it does not parse), else the text.
 * A request `body` that is a string is sent verbatim; anything else (not undefined) is
 * JSON-encoded with content-type application/json.
 */
export async function json(url, pathname = "/", { method = "GET", body, headers = {}, timeoutMs = 30_000 } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    const hasType = Object.keys(init.headers).some((k) => k.toLowerCase() === "content-type");
    if (!hasType) init.headers["content-type"] = "application/json";
  }
  const res = await fetch(new URL(pathname, url), init);
  const text = await res.text();
  let parsed = text;
  if (/\bjson\b/i.test(res.headers.get("content-type") ?? "")) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

// wrangler logs through console.* from inside each worker's asynchronous context (it scopes its
// own log level the same way), so console output made in a worker's context is that worker's.
const workerContext = new AsyncLocalStorage();
let consoleHooked = false;
function hookConsole() {
  if (consoleHooked) return;
  consoleHooked = true;
  const verbose = process.env.GLUEBIND_E2E_VERBOSE === "1";
  for (const method of ["debug", "info", "log", "warn", "error"]) {
    const original = console[method].bind(console);
    console[method] = (...args) => {
      const handle = workerContext.getStore();
      // wrangler's exit hook names its debug log file once a worker logged an error: not news.
      if (!handle && /^\u{1FAB5}  Logs were written to /u.test(String(args[0]))) return;
      if (!handle) return original(...args);
      handle.record(format(...args));
      if (verbose) original(...args);
    };
  }
}

/** Own persistence directories of running workers, removed at exit if stop() never ran. */
const ownDirs = new Set();
process.on("exit", () => {
  for (const dir of ownDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

let wrangler;

/**
 * Start a worker and wait until it answers HTTP. The config defaults to the repo's wrangler.toml
 * (the built demo); GLUEBIND_E2E_CONFIG overrides it. `vars` override the config's [vars];
 * `persistTo` is the local storage directory (KV, Durable Objects) — by default a fresh one,
 * removed by stop(); `registry` a dev registry directory shared with other workers (to bind
 * another worker's Durable Object); `probe: false` sends no first request (the worker has
 * started, but its first request is the test's).
 * @returns {Promise<{url: string, port: number, innerUrl: string, persistTo: string,
 *   output: () => string, stop: () => Promise<void>}>} `innerUrl` is the user worker's own
 *   socket behind wrangler's dev proxy.
 */
export async function startWorker({ config = process.env.GLUEBIND_E2E_CONFIG || DEFAULT_CONFIG, vars = {}, persistTo, registry, probe = true } = {}) {
  if (process.env.GLUEBIND_E2E_DATABASE_URL && !("DATABASE_URL" in vars)) {
    vars = { DATABASE_URL: process.env.GLUEBIND_E2E_DATABASE_URL, ...vars };
  }
  const configPath = path.resolve(REPO_ROOT, config);
  if (configPath === path.join(REPO_ROOT, DEFAULT_CONFIG)) {
    const shim = path.join(REPO_ROOT, "build", "demo", "shim.mjs");
    if (!existsSync(shim) || !existsSync(configPath)) {
      throw new Error(
        `The demo is not built (${!existsSync(shim) ? shim : configPath} is missing). ` +
          "Run `npm run build` in the repo root first; the e2e tests never build.",
      );
    }
  } else if (!existsSync(configPath)) {
    throw new Error(`wrangler config not found: ${configPath}`);
  }
  process.env.WRANGLER_SEND_METRICS = "false";
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_CI_DISABLE_CONFIG_WATCHING = "true"; // no file watcher on wrangler.toml
  try {
    wrangler ??= await import("wrangler");
  } catch (err) {
    throw new Error(`cannot load wrangler (${err.message}): run \`npm install\` (or \`npm run setup\`) first.`);
  }
  hookConsole();

  let ownPersistDir;
  if (!persistTo) {
    ownPersistDir = await mkdtemp(path.join(os.tmpdir(), "gluebind-e2e-"));
    ownDirs.add(ownPersistDir);
    persistTo = ownPersistDir;
  }

  let output = "";
  let innerUrl = null;
  let failure = null;
  let wake = () => {};
  const devEnv = new wrangler.unstable_DevEnv();
  // Every controller event passes through dispatch: the user worker's own address arrives with
  // "reloadComplete", a failed start (a worker that throws at start-up, a port taken) as "error".
  const dispatch = devEnv.dispatch.bind(devEnv);
  devEnv.dispatch = (event) => {
    if (event.type === "reloadComplete") {
      const { protocol, hostname, port } = event.proxyData.userWorkerUrl;
      innerUrl = `${protocol}//${hostname}:${port}`;
      wake();
    } else if (event.type === "error" && !failure && !benign(event)) {
      failure = `${event.source}: ${event.reason}: ${event.cause?.message ?? event.cause}`;
      wake();
    }
    dispatch(event);
  };
  devEnv.on("error", () => {}); // reported through `failure`
  // What wrangler itself only logs at debug level: retried messages to its proxy worker.
  function benign(event) {
    return event.source === "ProxyController" && /^(Failed to send message to|Could not connect to InspectorProxyWorker)/.test(event.reason);
  }

  let stopped = false;
  const handle = {
    url: null,
    port: null,
    innerUrl: null,
    persistTo,
    output: () => output,
    record(line) {
      output += `${line}\n`;
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        // Not worker.dispose(): it waits for the proxy to be ready, which a failed start never is.
        await workerContext.run(handle, () => devEnv.teardown());
      } catch {
        // a worker that failed to start rejects its teardown with that failure again
      } finally {
        if (ownPersistDir) {
          rmSync(ownPersistDir, { recursive: true, force: true, maxRetries: 3 });
          ownDirs.delete(ownPersistDir);
        }
      }
    },
  };

  // eslint-disable-next-line no-control-regex
  const tail = () => output.replace(/\x1b\[[0-9;]*m/g, "").split("\n").slice(-40).join("\n");
  const fail = async (what) => {
    await handle.stop();
    throw new Error(`${what} (config ${configPath})\n--- wrangler output ---\n${tail()}`);
  };
  const input = {
    config: configPath,
    bindings: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, { type: "plain_text", value: String(v) }])),
    sendMetrics: false,
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      persist: persistTo,
      watch: false,
      liveReload: false,
      logLevel: "warn",
      // A dev registry shared by several workers lets one bind another's Durable Object.
      ...(registry ? { registry } : {}),
    },
  };
  let worker;
  try {
    worker = await workerContext.run(handle, () => devEnv.startWorker(input));
  } catch (err) {
    return fail(`wrangler could not start the worker: ${err.message}${err.cause ? ` (${err.cause.message ?? err.cause})` : ""}`);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  const proxyFailed = (err) => {
    failure ??= `dev proxy: ${err.message}`;
    return null;
  };
  const url = await Promise.race([worker.url.catch(proxyFailed), later(START_TIMEOUT_MS).then(() => null)]);
  if (!url && failure) return fail(`the worker failed to start: ${failure}`);
  if (!url) return fail(`wrangler's dev proxy did not start within ${START_TIMEOUT_MS / 1000} s`);
  handle.url = url.origin;
  handle.port = Number(url.port);
  while (!innerUrl && !failure && Date.now() < deadline) {
    await Promise.race([new Promise((r) => (wake = r)), later(Math.max(1, deadline - Date.now()))]);
  }
  if (failure) return fail(`the worker failed to start: ${failure}`);
  if (!innerUrl) return fail(`the worker did not start within ${START_TIMEOUT_MS / 1000} s`);
  handle.innerUrl = innerUrl;
  // The proxy holds requests until the worker is in place: one answer (any status) proves it.
  // (`probe: false` leaves the worker's first request to the test.)
  if (!probe) return handle;
  try {
    await (await fetch(handle.url, { signal: AbortSignal.timeout(Math.max(1_000, deadline - Date.now())) })).arrayBuffer();
  } catch (err) {
    return fail(`the worker did not answer on ${handle.url}: ${err.message}`);
  }
  return handle;
}
