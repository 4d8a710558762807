// `npm run bench`: serves every variant under its own `wrangler dev` (loopback, inspector off,
// --log-level warn), seeds the same data, and drives each with autocannon — through wrangler's
// dev proxy (what a user sees) and directly against the inner workerd socket (what the worker
// itself costs) — interleaving the variants in every round so they see the same machine load.
//
//   node bench/run.mjs [--quick] [--duration S] [--reps N] [--connections C] [--users N]
//                      [--no-write] [--only KEY,KEY…]
//
// --only runs the scenarios named (e.g. `--only f_kv,f_floor,f_peer`; keys as printed) and
// writes no results file.
// --quick is the smoke check run by `npm test`: fewer variants, 1 s runs, 1 repetition, no
// results file. Expects the builds of bench/build.sh (the demo, bench workers, demo-opt).
// Each variant is a `wrangler dev` process in its own process group (bench/wrangler-dev.mjs), so
// that its CPU can be read from /proc; stopped by the group's id.

import autocannon from "autocannon";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { REPO_ROOT } from "../tests/e2e/harness.mjs";
import { cpuSeconds, groupPids, innerSocket } from "./proc.mjs";
import { startWorker } from "./wrangler-dev.mjs";

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const QUICK = flag("--quick");
const DURATION = option("--duration", QUICK ? 1 : 3);
const REPS = option("--reps", QUICK ? 1 : 3);
const CONNECTIONS = option("--connections", QUICK ? 16 : 32);
const USERS = option("--users", QUICK ? 100 : 1000);
const WARMUP = QUICK ? 0.5 : 1;
const ONLY = argv.includes("--only") ? argv[argv.indexOf("--only") + 1].split(",") : null;
const WRITE = !QUICK && !ONLY && !flag("--no-write");
const benchStart = Date.now();

const built = (p) => existsSync(path.join(REPO_ROOT, p));
for (const p of ["build/demo/shim.mjs", "build/bench/bare/shim.mjs", "build/bench/session/shim.mjs"]) {
  if (!built(p)) throw new Error(`${p} is missing: run \`bash bench/build.sh\` first`);
}
const haveOpt = !QUICK && built("build/bench/demo-opt/shim.mjs");

// ---------------------------------------------------------------- instances
const DEMO = "wrangler.toml";
const instances = [
  { key: "bare", label: "(a) bare workers-rs", config: "bench/workers/bare/wrangler.toml", ready: "/" },
  { key: "session", label: "(b) + gluebind scope/session", config: "bench/workers/session/wrangler.toml", ready: "/" },
  { key: "memory", label: "demo memory://", config: DEMO, vars: { DATABASE_URL: "memory://", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true },
  // The same demo with snapshot isolation: what serializable's read-set tracking costs.
  { key: "memory_snapshot", label: "demo memory://, snapshot isolation", config: DEMO, vars: { DATABASE_URL: "memory://", GLUEBIND_DEBUG: "0", ISOLATION: "snapshot" }, ready: "/users?per_page=1", seed: true, quick: false },
  // (d) is defined with a warm isolate cache: its TTL outlasts the run, so every read is served
  // from the cache (0 KV operations). kv_ttl10 keeps the default 10 s TTL: a read is cold (one
  // KV get) whenever the cache restarted since that id was last read.
  { key: "kv", label: "demo kv:// (cache_ttl=3600)", config: DEMO, vars: { DATABASE_URL: "kv://GLUEBIND_KV?cache_ttl=3600", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true, quick: false },
  { key: "kv_ttl10", label: "demo kv:// (default cache_ttl=10)", config: DEMO, vars: { DATABASE_URL: "kv://GLUEBIND_KV", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true, quick: false },
  // do:// with a warm isolate cache (reads served by the isolate, as (d)) and with none
  // (cache_ttl=0: every session loads from the Durable Object, one round trip per request).
  { key: "do", label: "demo do:// (cache_ttl=3600)", config: DEMO, vars: { DATABASE_URL: "do://GLUEBIND_DB?cache_ttl=3600", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true, quick: false },
  { key: "do_cold", label: "demo do:// (cache_ttl=0)", config: DEMO, vars: { DATABASE_URL: "do://GLUEBIND_DB?cache_ttl=0", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true, quick: false },
  { key: "peer", label: "peer Drizzle+D1 (JS)", config: "bench/workers/peer/wrangler.toml", ready: "/users?per_page=1", seed: true },
  { key: "kv_floor", label: "KV floor: one commit's KV calls from JS", config: "bench/workers/kv-floor/wrangler.toml", ready: "/", quick: false },
  { key: "do_floor", label: "Durable Object floor: one RPC, one SQLite INSERT, from JS", config: "bench/workers/do-floor/wrangler.toml", ready: "/", quick: false },
  { key: "memory_opt", label: "demo memory:// as deployed (wasm-opt)", config: "bench/workers/demo-opt/wrangler.toml", vars: { DATABASE_URL: "memory://", GLUEBIND_DEBUG: "0" }, ready: "/users?per_page=1", seed: true, opt: true },
].filter((i) => (!QUICK || i.quick !== false) && (!i.opt || haveOpt));

// ---------------------------------------------------------------- scenarios
let emailSeq = 0;
const runTag = Date.now().toString(36);
const newUser = () => {
  const n = emailSeq++;
  return JSON.stringify({ name: `Bench User ${n}`, email: `u${n}-${runTag}@bench.test` });
};
const getById = (inst) => {
  let i = 0;
  return (req) => {
    req.path = `/users/${inst.ids[i++ % inst.ids.length]}`;
    return req;
  };
};
const postUser = () => (req) => {
  req.method = "POST";
  req.path = "/users";
  req.headers = { "content-type": "application/json" };
  req.body = newUser();
  return req;
};
const scenarios = [
  { key: "a", inst: "bare", route: "GET /", label: "(a) bare workers-rs \"ok\"", make: () => (r) => ({ ...r, path: "/" }) },
  { key: "b", inst: "session", route: "GET /", label: "(b) + gluebind scope/session", make: () => (r) => ({ ...r, path: "/" }) },
  { key: "c", inst: "memory", route: "GET /users/{id}", label: "(c) demo memory://", make: getById },
  { key: "c_snap", inst: "memory_snapshot", route: "GET /users/{id}", label: "(c'') demo memory://, snapshot isolation", make: getById },
  { key: "c_opt", inst: "memory_opt", route: "GET /users/{id}", label: "(c') demo memory://, as deployed (wasm-opt)", make: getById },
  { key: "d", inst: "kv", route: "GET /users/{id}", label: "(d) demo kv:// (warm cache)", make: getById },
  { key: "d_ttl10", inst: "kv_ttl10", route: "GET /users/{id}", label: "(d'') demo kv://, default cache_ttl (10 s: warm and cold mixed)", make: getById },
  { key: "d_do", inst: "do", route: "GET /users/{id}", label: "(g) demo do:// (warm cache)", make: getById },
  { key: "d_do_cold", inst: "do_cold", route: "GET /users/{id}", label: "(g') demo do:// (cold: cache_ttl=0)", make: getById },
  { key: "e", inst: "peer", route: "GET /users/{id}", label: "(e) peer: Drizzle on D1", make: getById },
  { key: "f_memory", inst: "memory", route: "POST /users", label: "(f) demo memory://", make: postUser, status: 201 },
  { key: "f_snap", inst: "memory_snapshot", route: "POST /users", label: "(f'') demo memory://, snapshot isolation", make: postUser, status: 201 },
  { key: "f_memory_opt", inst: "memory_opt", route: "POST /users", label: "(f') demo memory://, as deployed (wasm-opt)", make: postUser, status: 201 },
  { key: "f_kv", inst: "kv", route: "POST /users", label: "(f) demo kv://", make: postUser, status: 201 },
  { key: "f_do", inst: "do", route: "POST /users", label: "(g) demo do://", make: postUser, status: 201 },
  { key: "f_do_floor", inst: "do_floor", route: "POST /users", label: "(g0) floor: one RPC to a JS Durable Object, one INSERT", make: postUser, status: 201 },
  { key: "f_floor", inst: "kv_floor", route: "POST /users", label: "(f0) floor: the same KV calls from JS, nothing else", make: postUser, status: 201 },
  { key: "f_peer", inst: "peer", route: "POST /users", label: "(f) peer: Drizzle on D1", make: postUser, status: 201 },
].filter((s) => instances.some((i) => i.key === s.inst) && (!ONLY || ONLY.includes(s.key)));
if (ONLY) {
  const unknown = ONLY.filter((k) => !scenarios.some((s) => s.key === k));
  if (unknown.length) throw new Error(`--only: no scenario ${unknown.join(", ")} (in this mode)`);
  instances.splice(0, instances.length, ...instances.filter((i) => scenarios.some((s) => s.inst === i.key)));
}

// ---------------------------------------------------------------- helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (...a) => console.log(...a);


/** The inner workerd's entry socket: a loopback port of the group that answers like the proxy. */
async function findDirectPort(inst) {
  const expected = await fetch(inst.worker.url + inst.ready);
  const expectedText = await expected.text();
  const accepts = (status, text) =>
    status === expected.status && (inst.seed ? text.startsWith("{\"items\"") : text === expectedText);
  try {
    return await innerSocket(inst.worker, inst.ready, accepts, 2000);
  } catch {
    throw new Error(`no direct workerd socket found for ${inst.key}`);
  }
}

async function start(inst) {
  const t0 = performance.now();
  inst.worker = await startWorker({ config: inst.config, vars: inst.vars ?? {} });
  const answered = performance.now() - t0;
  // Time to the first 200 of a route that works (for the demo: creates the schema).
  for (;;) {
    const res = await fetch(inst.worker.url + inst.ready);
    await res.arrayBuffer();
    if (res.status === 200) break;
    if (performance.now() - t0 > 60_000) throw new Error(`${inst.key}: no 200 on ${inst.ready}`);
    await sleep(50);
  }
  inst.firstOkMs = Math.round(performance.now() - t0);
  inst.firstAnswerMs = Math.round(answered);
  const direct = await findDirectPort(inst);
  inst.directUrl = `http://127.0.0.1:${direct.port}`;
  inst.innerPid = direct.pid;
  log(`  ${inst.key.padEnd(11)} proxy ${inst.worker.url}  direct ${inst.directUrl}  first 200 after ${inst.firstOkMs} ms`);
}

async function seed(inst, n) {
  inst.ids = [];
  let next = 0;
  const one = async () => {
    while (next < n) {
      next++;
      const res = await fetch(inst.directUrl + "/users", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: newUser(),
      });
      const body = await res.json();
      if (res.status !== 201) throw new Error(`${inst.key}: seeding got ${res.status} ${JSON.stringify(body)}`);
      inst.ids.push(body.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, one));
  // Random order, the same sequence length for every variant.
  for (let i = inst.ids.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [inst.ids[i], inst.ids[j]] = [inst.ids[j], inst.ids[i]];
  }
}

async function load(base, scenario, inst, duration) {
  const cpuPids = groupPids(inst.worker.pid).map((p) => p.pid);
  const cpu0 = cpuPids.map(cpuSeconds);
  const inner0 = cpuSeconds(inst.innerPid);
  const result = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration,
    requests: [{ setupRequest: scenario.make(inst) }],
  });
  const inner = cpuSeconds(inst.innerPid) - inner0;
  const group = cpuPids.map(cpuSeconds).reduce((s, v, i) => s + v - cpu0[i], 0);
  const ok = result["2xx"];
  const total = result.requests.total;
  return {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    requests: total,
    innerCpuUsPerReq: total ? (inner / total) * 1e6 : null,
    groupCpuUsPerReq: total ? (group / total) * 1e6 : null,
  };
}

// KV operations per request type, read from the demo's debug header x-gluebind-kv-ops.
async function kvOps() {
  const out = {};
  const reqOps = async (w, method, p, body) => {
    const res = await fetch(w.url + p, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body,
    });
    const json = await res.json();
    return { status: res.status, ops: Number(res.headers.get("x-gluebind-kv-ops")), json };
  };
  for (const [mode, url] of [["warm", "kv://GLUEBIND_KV"], ["cold", "kv://GLUEBIND_KV?cache_ttl=0"]]) {
    const w = await startWorker({ vars: { DATABASE_URL: url, GLUEBIND_DEBUG: "1" } });
    try {
      await reqOps(w, "GET", "/users?per_page=1"); // schema
      const first = await reqOps(w, "POST", "/users", newUser());
      const second = await reqOps(w, "POST", "/users", newUser());
      const get = await reqOps(w, "GET", `/users/${first.json.id}`);
      const miss = await reqOps(w, "GET", "/users/12345");
      const list = await reqOps(w, "GET", "/users?per_page=20");
      out[mode] = {
        "POST /users (first in isolate)": first.ops,
        "POST /users": second.ops,
        "GET /users/{id}": get.ops,
        "GET /users/{id} (404)": miss.ops,
        "GET /users?per_page=20": list.ops,
      };
    } finally {
      await w.stop();
    }
  }
  return out;
}

function wasmSizes() {
  const sizes = {};
  for (const [key, p] of [
    ["demo", "build/demo/index_bg.wasm"],
    ["demo_no_name_section", "build/bench/demo-strip/index_bg.wasm"],
    // What `npm run deploy` ships (scripts/build.sh --opt: no name section, wasm-opt).
    ["demo_deployed", "build/bench/demo-opt/index_bg.wasm"],
    // What the npm package carries (scripts/build-js.sh --opt, as packed).
    ["npm_package", "js/dist/gluebind_bg.wasm"],
    ["session", "build/bench/session/index_bg.wasm"],
    ["bare", "build/bench/bare/index_bg.wasm"],
  ]) {
    const full = path.join(REPO_ROOT, p);
    if (!existsSync(full)) continue;
    const raw = readFileSync(full);
    // The gzip binary's -9 (zlib's level 9 comes out a little larger).
    let gz;
    try {
      gz = execFileSync("gzip", ["-9", "-c", full], { maxBuffer: 64 << 20 }).length;
    } catch {
      gz = gzipSync(raw, { level: 9 }).length;
    }
    sizes[key] = { raw: raw.length, gzip9: gz };
  }
  return sizes;
}

// ---------------------------------------------------------------- run
const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(d));
const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;

async function main() {
  log(`gluebind bench${QUICK ? " (quick smoke run)" : ""}: ${DURATION} s runs, ${REPS} repetition(s), ${CONNECTIONS} connections, ${USERS} users seeded`);
  const sizes = wasmSizes();
  log("\nstarting workers (wrangler dev, inspector off, --log-level warn)");
  try {
    for (const inst of instances) await start(inst);
    log(`\nseeding ${USERS} users per database`);
    for (const inst of instances.filter((i) => i.seed)) await seed(inst, USERS);
    const byKey = Object.fromEntries(instances.map((i) => [i.key, i]));

    const samples = {}; // `${scenario}|${target}` -> [result]
    for (const target of ["direct", "proxy"]) {
      const base = (inst) => (target === "direct" ? inst.directUrl : inst.worker.url);
      log(`\n${target === "direct" ? "directly against workerd" : "through the wrangler dev proxy"}: warm-up`);
      for (const s of scenarios) await load(base(byKey[s.inst]), s, byKey[s.inst], WARMUP);
      for (let rep = 1; rep <= REPS; rep++) {
        log(`  round ${rep}/${REPS}`);
        // Alternate the order each round so a drift in machine load does not favour one end.
        for (const s of rep % 2 ? scenarios : [...scenarios].reverse()) {
          const inst = byKey[s.inst];
          const r = await load(base(inst), s, inst, DURATION);
          (samples[`${s.key}|${target}`] ??= []).push(r);
          log(`    ${s.key.padEnd(13)} ${s.route.padEnd(16)} ${fmt(r.rps).padStart(6)} rps  p50 ${r.p50} ms  p99 ${r.p99} ms${r.non2xx || r.errors ? `  NON-2XX ${r.non2xx} ERRORS ${r.errors}` : ""}`);
        }
      }
    }

    const rows = scenarios.map((s) => {
      const row = { key: s.key, label: s.label, route: s.route };
      for (const target of ["proxy", "direct"]) {
        const rs = samples[`${s.key}|${target}`];
        row[target] = {
          rps: median(rs.map((r) => r.rps)),
          p50_ms: median(rs.map((r) => r.p50)),
          p99_ms: median(rs.map((r) => r.p99)),
          non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
          errors: rs.reduce((a, r) => a + r.errors, 0),
          rps_runs: rs.map((r) => Math.round(r.rps)),
        };
      }
      const direct = samples[`${s.key}|direct`];
      row.workerd_cpu_us_per_req = median(direct.map((r) => r.innerCpuUsPerReq));
      row.group_cpu_us_per_req = median(direct.map((r) => r.groupCpuUsPerReq));
      return row;
    });
    const row = Object.fromEntries(rows.map((r) => [r.key, r]));
    const ratio = (x, y, target = "direct") => (row[x] && row[y] ? row[x][target].rps / row[y][target].rps : null);
    const ratios = {
      session_over_bare: ratio("b", "a"),
      memory_over_peer: ratio("c", "e"),
      kv_over_memory: ratio("d", "c"),
      kv_ttl10_over_memory: ratio("d_ttl10", "c"),
      post_memory_over_peer: ratio("f_memory", "f_peer"),
      post_kv_over_memory: ratio("f_kv", "f_memory"),
      post_kv_over_peer: ratio("f_kv", "f_peer"),
      post_kv_over_floor: ratio("f_kv", "f_floor"),
      serializable_over_snapshot_get: ratio("c", "c_snap"),
      serializable_over_snapshot_post: ratio("f_memory", "f_snap"),
      post_floor_over_peer: ratio("f_floor", "f_peer"),
      do_over_memory: ratio("d_do", "c"),
      do_cold_over_memory: ratio("d_do_cold", "c"),
      post_do_over_peer: ratio("f_do", "f_peer"),
      wasm_opt_get: ratio("c_opt", "c"),
      wasm_opt_post: ratio("f_memory_opt", "f_memory"),
    };
    const proxyRatios = {
      session_over_bare: ratio("b", "a", "proxy"),
      memory_over_peer: ratio("c", "e", "proxy"),
      kv_over_memory: ratio("d", "c", "proxy"),
      do_over_memory: ratio("d_do", "c", "proxy"),
      post_do_over_peer: ratio("f_do", "f_peer", "proxy"),
    };
    for (const r of rows) {
      const ref = { b: "a", c: "e", d: "c", d_ttl10: "c", c_opt: "c", f_memory: "f_peer", f_kv: "f_floor", f_floor: "f_peer", f_memory_opt: "f_memory", c_snap: "c", f_snap: "f_memory", d_do: "c", d_do_cold: "c", f_do: "f_peer" }[r.key];
      r.ratio_ref = ref && row[ref] ? ref : null;
      r.direct_ratio = ref && row[ref] ? r.direct.rps / row[ref].direct.rps : null;
      r.proxy_ratio = ref && row[ref] ? r.proxy.rps / row[ref].proxy.rps : null;
    }

    const ops = QUICK || ONLY ? null : await kvOps();
    const result = {
      date: new Date().toISOString(),
      machine: `${os.cpus().length}× ${os.cpus()[0]?.model?.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, node ${process.version}, load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
      settings: { duration_s: DURATION, repetitions: REPS, warmup_s: WARMUP, connections: CONNECTIONS, users_seeded: USERS, quick: QUICK, load_generator: "autocannon (in-process, same machine)" },
      ratios,
      proxy_ratios: proxyRatios,
      targets: { session_over_bare: ">= 0.95", memory_over_peer: ">= 1.5", kv_over_memory: ">= 0.8", do_over_memory: ">= 0.8", post_do_over_peer: ">= 1.0", wasm_deploy_gzip_bytes: "<= 1200000", wasm_npm_gzip_bytes: "<= 1200000" },
      wasm_deploy_gzip_bytes: sizes.demo_deployed?.gzip9 ?? null,
      wasm_npm_gzip_bytes: sizes.npm_package?.gzip9 ?? null,
      wasm_sizes: sizes,
      first_200_ms: Object.fromEntries(instances.map((i) => [i.key, i.firstOkMs])),
      kv_ops_per_request: ops,
      rows,
      bench_seconds: Math.round((Date.now() - benchStart) / 1000),
    };
    const md = markdown(result);
    log("\n" + md);
    if (WRITE) {
      const dir = path.join(REPO_ROOT, "bench", "results");
      mkdirSync(dir, { recursive: true });
      const stamp = result.date.slice(0, 16).replace(/:/g, "");
      writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + "\n");
      writeFileSync(path.join(dir, `${stamp}.md`), md);
      writeFileSync(path.join(dir, "latest.json"), JSON.stringify(result, null, 2) + "\n");
      writeFileSync(path.join(dir, "latest.md"), md);
      log(`results: bench/results/${stamp}.json, .md, latest.json, latest.md`);
    }
  } finally {
    for (const inst of instances) await inst.worker?.stop();
  }
}

function markdown(r) {
  const L = [];
  L.push(`## gluebind bench — ${r.date.slice(0, 16).replace("T", " ")} UTC${r.settings.quick ? " (quick smoke run)" : ""}`);
  L.push("");
  L.push(`Machine: ${r.machine}. autocannon, ${r.settings.connections} connections, ${r.settings.duration_s} s runs after a ${r.settings.warmup_s} s warm-up, median of ${r.settings.repetitions}, variants interleaved in each round; ${r.settings.users_seeded} users seeded per database. rps counts 2xx answers only.`);
  L.push("");
  L.push("| variant | route | direct rps | p50 ms | p99 ms | vs | ratio | proxy rps | p50 ms | p99 ms | workerd CPU µs/req |");
  L.push("|---|---|--:|--:|--:|---|--:|--:|--:|--:|--:|");
  for (const x of r.rows) {
    const bad = x.direct.non2xx + x.direct.errors + x.proxy.non2xx + x.proxy.errors;
    L.push(`| ${x.label}${bad ? ` (⚠ ${bad} non-2xx/errors)` : ""} | ${x.route} | ${fmt(x.direct.rps)} | ${x.direct.p50_ms} | ${x.direct.p99_ms} | ${x.ratio_ref ?? ""} | ${x.direct_ratio === null ? "" : fmt(x.direct_ratio, 2)} | ${fmt(x.proxy.rps)} | ${x.proxy.p50_ms} | ${x.proxy.p99_ms} | ${fmt(x.workerd_cpu_us_per_req)} |`);
  }
  L.push("");
  const t = (v, goal, ok) => `${v === null ? "–" : v.toFixed(2)} (target ${goal}: ${v === null ? "n/a" : ok(v) ? "met" : "missed"})`;
  L.push("Ratios (direct to workerd; through the proxy in brackets):");
  L.push(`- session/bare b/a = ${t(r.ratios.session_over_bare, "≥ 0.95", (v) => v >= 0.95)} [${fmt(r.proxy_ratios.session_over_bare, 2)}]`);
  L.push(`- memory/peer c/e = ${t(r.ratios.memory_over_peer, "≥ 1.5", (v) => v >= 1.5)} [${fmt(r.proxy_ratios.memory_over_peer, 2)}]`);
  L.push(`- kv/memory d/c = ${t(r.ratios.kv_over_memory, "≥ 0.8", (v) => v >= 0.8)} [${fmt(r.proxy_ratios.kv_over_memory, 2)}]`);
  L.push(`- POST: memory/peer ${fmt(r.ratios.post_memory_over_peer, 2)}, kv/memory ${fmt(r.ratios.post_kv_over_memory, 2)}, kv/peer ${fmt(r.ratios.post_kv_over_peer, 2)}, kv/floor ${fmt(r.ratios.post_kv_over_floor, 2)} (the floor: local KV's own cost for the same calls; floor/peer ${fmt(r.ratios.post_floor_over_peer, 2)})`);
  if (r.ratios.do_over_memory !== null) L.push(`- do:// warm GET over memory:// g/c = ${t(r.ratios.do_over_memory, "≥ 0.8", (v) => v >= 0.8)} [${fmt(r.proxy_ratios.do_over_memory, 2)}]; cold (cache_ttl=0) g'/c ${fmt(r.ratios.do_cold_over_memory, 2)}; do:// POST over the peer's = ${t(r.ratios.post_do_over_peer, "≥ 1.0", (v) => v >= 1.0)} [${fmt(r.proxy_ratios.post_do_over_peer, 2)}]`);
  if (r.ratios.serializable_over_snapshot_get !== null) L.push(`- serializable (default) over snapshot isolation, memory://: GET ${fmt(r.ratios.serializable_over_snapshot_get, 2)}, POST ${fmt(r.ratios.serializable_over_snapshot_post, 2)} (target ≥ 0.95: ${Math.min(r.ratios.serializable_over_snapshot_get, r.ratios.serializable_over_snapshot_post) >= 0.95 ? "met" : "missed"})`);
  if (r.ratios.wasm_opt_get !== null) L.push(`- the deployed build (wasm-opt) over the plain build: GET ${fmt(r.ratios.wasm_opt_get, 2)}, POST ${fmt(r.ratios.wasm_opt_post, 2)}`);
  L.push("");
  L.push("Wasm sizes (`gzip -9`):");
  for (const [k, v] of Object.entries(r.wasm_sizes)) L.push(`- ${k}: ${v.raw} bytes raw (${kb(v.raw)}), ${v.gzip9} bytes gzip (${kb(v.gzip9)})`);
  for (const [what, bytes] of [["deployed demo", r.wasm_deploy_gzip_bytes], ["npm package", r.wasm_npm_gzip_bytes]]) {
    if (bytes == null) continue;
    L.push(`- ${what}, target ≤ 1.2 MB gzip: ${bytes <= 1_200_000 ? "met" : "missed"} (${(bytes / 1e6).toFixed(3)} MB)`);
  }
  L.push("");
  L.push(`Start of \`wrangler dev\` to the first 200 (ms): ${Object.entries(r.first_200_ms).map(([k, v]) => `${k} ${v}`).join(", ")}.`);
  if (r.kv_ops_per_request) {
    L.push("");
    L.push("KV operations per request (the demo's `x-gluebind-kv-ops` debug header: the session's own count; warm = default cache, cold = `cache_ttl=0`):");
    L.push("");
    L.push("| request | warm | cold |");
    L.push("|---|--:|--:|");
    for (const k of Object.keys(r.kv_ops_per_request.warm)) L.push(`| ${k} | ${r.kv_ops_per_request.warm[k]} | ${r.kv_ops_per_request.cold[k]} |`);
  }
  L.push("");
  L.push("CPU per request: workerd's own CPU time is not reported under `wrangler dev`; the last column is the inner workerd process's user+system CPU (/proc) during the direct runs divided by the requests served — the worker plus workerd's HTTP handling and miniflare's entry worker (and, for KV/D1, their local simulators).");
  L.push(`\nBench took ${r.bench_seconds} s.`);
  return L.join("\n") + "\n";
}

await main();
