// End-to-end harness: starts a real `wrangler dev` for one test file and stops it again.
//
// It never builds anything: the demo must already be built (`npm run build` produces
// build/demo/ and the top-level wrangler.toml). Every wrangler is started in its own process
// group and stopped by that group's id (never by name). Three layers make sure a failing or
// interrupted run never leaves one behind: stop() in the test's `after` hook, a process
// 'exit'/signal hook, and a per-worker watchdog process that fires if this process dies abruptly.
//
// Run: `node --test tests/e2e/` from the repo root (after `npm run build`).
// GLUEBIND_E2E_CONFIG=<path to a wrangler.toml> points the tests at another worker.

import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRANGLER = path.join(REPO_ROOT, "node_modules", ".bin", "wrangler");
const DEFAULT_CONFIG = "wrangler.toml";
const START_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const KILL_GRACE_MS = 5_000;
const OUTPUT_LIMIT = 64 * 1024;

/** Workers started by this process that have not been stopped yet: pid -> handle. */
const running = new Map();
let cleanupInstalled = false;

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    if (err.code === "ESRCH") return false; // group already gone
    throw err;
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  // Synchronous last resort: only our own process groups, by id.
  const killAll = () => {
    if (running.size === 0) return;
    const handles = [...running.values()];
    running.clear();
    for (const h of handles) {
      try {
        killGroup(h.pid, "SIGKILL");
      } catch {}
    }
    for (const h of handles) {
      try {
        h.watchdog.kill("SIGTERM");
      } catch {}
    }
    // SIGKILL is delivered asynchronously: give the group a moment to die before removing its
    // persistence directory, or a dying workerd may write into it again.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    for (const h of handles) {
      if (!h.ownPersistDir) continue;
      try {
        rmSync(h.ownPersistDir, { recursive: true, force: true, maxRetries: 3 });
      } catch {}
    }
  };
  process.on("exit", killAll);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
    process.once(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

// A tiny detached process per worker that holds the read end of a pipe from this process. If
// this process dies in any way (even SIGKILL, where no 'exit' hook runs), the pipe reaches EOF
// and the watchdog stops the worker's process group (by its id), removes the worker's own
// persistence directory, and exits. stop() ends it.
const WATCHDOG_SOURCE = `
const pgid = Number(process.argv[1]);
const dir = process.argv[2];
const kill = (sig) => { try { process.kill(-pgid, sig); return true; } catch { return false; } };
const done = () => {
  if (dir) { try { require("node:fs").rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch {} }
  process.exit(0);
};
const fire = () => {
  if (!kill("SIGTERM")) done();
  setTimeout(() => { kill("SIGKILL"); setTimeout(done, 300); }, 3000);
};
process.stdin.on("end", fire);
process.stdin.on("error", fire);
process.on("SIGTERM", () => process.exit(0));
process.stdin.resume();
`;

function startWatchdog(pgid, dir) {
  const dog = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, String(pgid), dir ?? ""], {
    detached: true, // not in our process group: a Ctrl-C to the test run must not kill it first
    stdio: ["pipe", "ignore", "ignore"],
  });
  dog.on("error", () => {});
  dog.stdin.on("error", () => {});
  dog.unref();
  dog.stdin.unref?.();
  return dog;
}

/** A free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
    if (typeof body === "string") {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
    }
    const hasType = Object.keys(init.headers).some((k) => k.toLowerCase() === "content-type");
    if (!hasType) init.headers["content-type"] = "application/json";
  }
  const res = await fetch(new URL(pathname, url), init);
  const text = await res.text();
  let parsed = text;
  const type = res.headers.get("content-type") ?? "";
  if (/\bjson\b/i.test(type)) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/**
 * Start `wrangler dev` and wait until it answers HTTP. The config defaults to the repo's
 * wrangler.toml (the built demo); GLUEBIND_E2E_CONFIG overrides it (e.g. to try another worker).
 * @returns {Promise<{url: string, port: number, pid: number, persistTo: string,
 *   output: () => string, stop: () => Promise<void>}>}
 */
/**
 * The engine the suite runs against: GLUEBIND_E2E_DATABASE_URL (e.g. kv://GLUEBIND_KV) is passed
 * to every worker as DATABASE_URL; without it the config's own (memory://) is used.
 */
export const ENGINE_URL = process.env.GLUEBIND_E2E_DATABASE_URL || "memory://";

export async function startWorker({ config = process.env.GLUEBIND_E2E_CONFIG || DEFAULT_CONFIG, vars = {}, persistTo } = {}) {
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
  if (!existsSync(WRANGLER)) {
    throw new Error(`${WRANGLER} is missing: run \`npm install\` (or \`npm run setup\`) first.`);
  }

  installCleanup();
  const port = await freePort();
  const inspectorPort = await freePort();
  let ownPersistDir;
  if (!persistTo) {
    ownPersistDir = await mkdtemp(path.join(os.tmpdir(), "gluebind-e2e-"));
    persistTo = ownPersistDir;
  }
  const args = [
    "dev",
    "--config", configPath,
    "--port", String(port),
    "--ip", "127.0.0.1",
    // The inspector is disabled through VSCODE_INSPECTOR_OPTIONS below; an explicit free port
    // keeps parallel test files from racing for the default 9229 if it ever gets bound.
    "--inspector-port", String(inspectorPort),
    "--log-level", "warn",
    "--persist-to", persistTo,
    "--show-interactive-dev-session=false",
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);

  const child = spawn(WRANGLER, args, {
    cwd: REPO_ROOT,
    detached: true, // own process group: stop() kills the whole group by its id
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      // wrangler 4.86 skips its DevTools inspector proxy when this is set (it thinks it runs in
      // a VS Code debug terminal); the inspector slows binding calls.
      VSCODE_INSPECTOR_OPTIONS: "1",
      CI: "true",
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    },
  });
  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`could not spawn ${WRANGLER}`);
  }
  const watchdog = startWatchdog(pid, ownPersistDir);

  let output = "";
  const collect = (chunk) => {
    output += chunk.toString();
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  // Do not let the worker keep the test process alive if a test forgets stop(): the 'exit'
  // hook then kills its group.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });

  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const handle = {
    url,
    port,
    pid,
    persistTo,
    ownPersistDir,
    watchdog,
    output: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        if (exitInfo === null || groupAlive(pid)) {
          killGroup(pid, "SIGTERM");
          const deadline = Date.now() + KILL_GRACE_MS;
          // Wait for the leader to exit and for the rest of the group (workerd, esbuild) to go.
          while ((exitInfo === null || groupAlive(pid)) && Date.now() < deadline) {
            await Promise.race([exited, sleep(POLL_MS)]);
          }
          if (exitInfo === null || groupAlive(pid)) {
            killGroup(pid, "SIGKILL");
            const killDeadline = Date.now() + KILL_GRACE_MS;
            while ((exitInfo === null || groupAlive(pid)) && Date.now() < killDeadline) {
              await Promise.race([exited, sleep(POLL_MS)]);
            }
          }
        }
      } finally {
        // Synchronous, so a signal cannot cut it half-way; the 'exit' hook covers the rest.
        if (ownPersistDir) {
          try {
            rmSync(ownPersistDir, { recursive: true, force: true, maxRetries: 3 });
          } catch {}
        }
        running.delete(pid);
        if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill("SIGTERM");
      }
    },
  };
  running.set(pid, handle);

  // eslint-disable-next-line no-control-regex
  const tail = () => output.replace(/\x1b\[[0-9;]*m/g, "").split("\n").slice(-40).join("\n");
  const deadline = Date.now() + START_TIMEOUT_MS;
  // The child and its pipes are unref'd and AbortSignal.timeout's timer is too: while a probe
  // fetch hangs on a starting wrangler, nothing else may keep Node's event loop alive, and the
  // test runner would cancel the test ("Promise resolution is still pending but the event loop
  // has already resolved"). A ref'd interval holds it open until start-up ends.
  const keepAlive = setInterval(() => {}, 1_000);
  try {
    return await waitUntilServing();
  } finally {
    clearInterval(keepAlive);
  }

  async function waitUntilServing() {
    for (;;) {
      if (exitInfo !== null) {
        await handle.stop();
        throw new Error(
          `wrangler dev exited during start-up (code ${exitInfo.code}, signal ${exitInfo.signal}); ` +
            `args: ${args.join(" ")}\n--- output tail ---\n${tail()}`,
        );
      }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        return handle; // any status means the worker answers
      } catch {
        // not listening yet
      }
      if (Date.now() >= deadline) {
        await handle.stop();
        throw new Error(
          `wrangler dev did not answer on ${url} within ${START_TIMEOUT_MS / 1000} s\n--- output tail ---\n${tail()}`,
        );
      }
      await sleep(POLL_MS);
    }
  }
}
