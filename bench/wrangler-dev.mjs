// The benchmark's own way to serve a variant: a `wrangler dev` process in its own process group.
//
// Why not the programmatic API the tests use (tests/e2e/harness.mjs): bench/run.mjs reports the
// CPU each variant costs — the inner workerd's and the whole `wrangler dev`'s (node, the proxy
// workerd, esbuild) — from /proc, by process group. In-process, every variant's workerd would be a
// child of the bench's own node process, which also runs the load generator. So each variant
// gets its own group, started with `setsid`-like `detached: true` and stopped by the group's id
// (never by name): on stop(), and on this process's exit or SIGINT/SIGTERM/SIGHUP.
//
// The inspector is off (VSCODE_INSPECTOR_OPTIONS: wrangler 4.86 then skips it; it slows binding
// calls), --log-level warn, a free loopback port, and a temporary persistence directory.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../tests/e2e/harness.mjs";

const WRANGLER = path.join(REPO_ROOT, "node_modules", ".bin", "wrangler");
const START_TIMEOUT_MS = 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Process groups started here and not stopped yet: pgid -> persistence directory. */
const running = new Map();
const killGroup = (pgid, signal) => {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // gone already
  }
};
const stopAll = () => {
  for (const pgid of running.keys()) killGroup(pgid, "SIGKILL");
  for (const dir of running.values()) if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  running.clear();
};
process.on("exit", stopAll);
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
  process.once(signal, () => {
    stopAll();
    process.exit(code);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Serve `config` (relative to the repo root) with `vars` overriding its [vars] (and the local
 * state in `persistTo` when given); resolves once it answers HTTP. @returns {Promise<{url: string, port: number, pid: number, stop: () => Promise<void>}>}
 * `pid` is the process group's id.
 */
export async function startWorker({ config = "wrangler.toml", vars = {}, persistTo: given } = {}) {
  const port = await freePort();
  // A directory given by the caller is the caller's (kept on stop: another worker may serve
  // the same local state next); else a temporary one, removed on stop.
  const persistTo = given ?? mkdtempSync(path.join(os.tmpdir(), "gluebind-bench-"));
  const args = ["dev", "--config", path.resolve(REPO_ROOT, config), "--port", String(port), "--ip", "127.0.0.1"];
  args.push("--inspector-port", String(await freePort()), "--log-level", "warn", "--persist-to", persistTo);
  args.push("--show-interactive-dev-session=false");
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const child = spawn(WRANGLER, args, {
    cwd: REPO_ROOT,
    detached: true, // its own process group
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      VSCODE_INSPECTOR_OPTIONS: "1",
      CI: "true",
      NO_COLOR: "1",
    },
  });
  const pid = child.pid;
  running.set(pid, given ? null : persistTo);
  let output = "";
  const collect = (chunk) => {
    output = (output + chunk).slice(-16_384);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  let exited = false;
  child.once("exit", () => (exited = true));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!running.has(pid)) return;
    killGroup(pid, "SIGTERM");
    for (let i = 0; i < 50 && killGroup(pid, 0); i++) await sleep(100);
    killGroup(pid, "SIGKILL");
    for (let i = 0; i < 50 && killGroup(pid, 0); i++) await sleep(100);
    if (!given) rmSync(persistTo, { recursive: true, force: true, maxRetries: 3 });
    running.delete(pid);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).arrayBuffer();
      return { url, port, pid, stop }; // any status: it answers
    } catch {}
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev ${exited ? "exited" : "did not answer"} (${config}):\n${output}`);
    }
    await sleep(100);
  }
}
