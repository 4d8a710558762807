// Soak test of the demo: a bounded mix of POST/PATCH/DELETE/GET at a fixed number of concurrent
// connections against the demo served by wrangler on 127.0.0.1 (memory://, kv:// and do://), then a full
// read-back (GET /users, paged) checked against a client-side ledger of every acknowledged write.
//
//   node scripts/soak.mjs [--requests N] [--connections C] [--engine memory|kv|do|all] [--js]
//                         [--seed S] [--timeout SECONDS]
//
// `npm run soak` builds first (scripts/soak.sh) and runs 10 000 requests at 64 connections on
// every engine; `npm test` runs a small one. --js targets the JS demo (examples/js-demo, needs
// scripts/build-js.sh). Workers are started and stopped by tests/e2e/harness.mjs (wrangler's
// programmatic API, a loopback port chosen by the OS). The phases of one engine's run are in
// scripts/soak/phases.mjs, its ledger in scripts/soak/run.mjs, the report in scripts/soak/report.mjs.
//
// Why the final state is known although requests run concurrently: each connection owns the
// users it creates, and only it touches them, one request at a time, so their outcome is
// sequential. Contention comes from separate race groups (several connections at once on one
// shared row or one email), where only the invariants first-committer-wins guarantees are
// asserted: exactly one winner of an email, exactly one 204 per deleted row, a raced row ending
// as one of the acknowledged versions. 409 and 404 change nothing; a 5xx or a network error is
// an error, and its write counts as "maybe applied" (either outcome accepted afterwards).
//
// Exit status 1 when anything was lost or duplicated, a race invariant broke, an answer
// contradicted the ledger, or any request got a 5xx or a network error; 2 for bad options.

import { parseArgs } from "node:util";
import { startWorker } from "../tests/e2e/harness.mjs";
import { checkLedger, diagnose, load, readBack, setUp } from "./soak/phases.mjs";
import { result, table } from "./soak/report.mjs";
import { SoakRun } from "./soak/run.mjs";

const ENGINES = { memory: "memory://", kv: "kv://GLUEBIND_KV", do: "do://GLUEBIND_DB" };
const USAGE = `usage: node scripts/soak.mjs [options]
  --requests N       requests of the load, per engine (10-1000000; default 10000)
  --connections C    concurrent connections (1-256; default 64)
  --engine E         memory, kv, do or all (default all)
  --js               soak the JS demo (examples/js-demo) instead of the Rust demo
  --isolation L      the demo's sessions: serializable (default) or snapshot
  --seed S           seed of the run's random choices (0-2147483648; default random)
  --timeout SECONDS  for the whole run (10-7200; default 900)
  -h, --help         this text`;

/** The options, checked; on a bad one prints the usage and exits with status 2. */
function parseOptions(args) {
  const usageError = (msg) => {
    console.error(`soak.mjs: ${msg}\n${USAGE}`);
    process.exit(2);
  };
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        requests: { type: "string", default: "10000" },
        connections: { type: "string", default: "64" },
        engine: { type: "string", default: "all" },
        js: { type: "boolean", default: false },
        isolation: { type: "string", default: "serializable" },
        seed: { type: "string", default: String(Math.floor(Math.random() * 2 ** 31)) },
        timeout: { type: "string", default: "900" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    usageError(err.message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  // Bounded so that a typo cannot turn the soak into a flood.
  const int = (name, min, max) => {
    const v = Number(values[name]);
    if (!/^\d+$/.test(values[name]) || !Number.isSafeInteger(v) || v < min || v > max) {
      usageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(values[name])})`);
    }
    return v;
  };
  const opts = {
    requests: int("requests", 10, 1_000_000),
    connections: int("connections", 1, 256),
    timeout: int("timeout", 10, 7_200),
    seed: int("seed", 0, 2 ** 31),
    engine: values.engine,
    js: values.js,
    isolation: values.isolation,
  };
  if (!["serializable", "snapshot"].includes(opts.isolation)) {
    usageError(`--isolation must be serializable or snapshot (got ${JSON.stringify(opts.isolation)})`);
  }
  if (opts.engine !== "all" && !(opts.engine in ENGINES)) usageError(`--engine must be memory, kv, do or all (got ${JSON.stringify(opts.engine)})`);
  opts.deadline = Date.now() + opts.timeout * 1000;
  opts.runTag = `${Date.now().toString(36)}${opts.seed.toString(36)}`;
  opts.config = opts.js ? "examples/js-demo/wrangler.toml" : "wrangler.toml";
  opts.app = opts.js ? "JS demo" : "Rust demo";
  return opts;
}

/** One engine: serve the demo on it, then the phases in order. */
async function soakEngine(opts, engineKey) {
  const run = new SoakRun(opts, ENGINES[engineKey]);
  try {
    run.worker = await startWorker({
      config: opts.config,
      vars: { DATABASE_URL: run.engineUrl, ISOLATION: opts.isolation },
    });
    const startMs = Date.now() - run.t0;
    const plan = await setUp(run);
    const { loadMs, timedOut } = await load(run, plan);
    const { items, readBackError, readBackStart } = await readBack(run);
    const check = checkLedger(run, items);
    await diagnose(run, check.mismatched, readBackStart);
    return result(run, { startMs, loadMs, timedOut, items, readBackError, check });
  } finally {
    await run.worker?.stop();
  }
}

const opts = parseOptions(process.argv.slice(2));
const engines = opts.engine === "all" ? Object.keys(ENGINES) : [opts.engine];
console.log(
  `gluebind soak (${opts.app}, ${opts.config}): ${opts.requests} requests at ${opts.connections} connections per engine, ` +
    `engines ${engines.map((e) => ENGINES[e]).join(", ")}, ${opts.isolation} isolation, seed ${opts.seed}, timeout ${opts.timeout} s`,
);
const results = [];
for (const e of engines) {
  console.log(`\n${ENGINES[e]}: starting wrangler dev, setup, load`);
  const r = await soakEngine(opts, e);
  results.push(r);
  for (const p of r.problems) console.log(`    ! ${p}`);
  console.log(`    ${r.pass ? "PASS" : "FAIL"} in ${(r.totalMs / 1000).toFixed(1)} s`);
}
console.log(`\n${table(opts.app, results)}\n`);
// One line per engine for scripts/test.sh to count.
for (const r of results) console.log(`soak result: ${r.engine} ${r.pass ? "pass" : "fail"}`);
process.exitCode = results.every((r) => r.pass) ? 0 : 1;
