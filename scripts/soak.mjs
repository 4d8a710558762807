// Soak test of the demo: a bounded mix of POST/PATCH/DELETE/GET at a fixed number of concurrent
// connections against `wrangler dev` on 127.0.0.1 (memory:// and kv://), then a full read-back
// (GET /users, paged) checked against a client-side ledger of every acknowledged write.
//
//   node scripts/soak.mjs [--requests N] [--connections C] [--engine memory|kv|both] [--js]
//                         [--seed S] [--timeout SECONDS]
//
// `npm run soak` builds first (scripts/soak.sh) and runs 10 000 requests at 64 connections on
// both engines; `npm test` runs a small one. --js targets the JS demo (examples/js-demo, needs
// scripts/build-js.sh). Workers are started and stopped by tests/e2e/harness.mjs (a free
// loopback port, own process group, stopped by id).
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
// contradicted the ledger, or any request got a 5xx or a network error.

import { json, startWorker } from "../tests/e2e/harness.mjs";
import { listAll } from "../tests/e2e/helpers.mjs";

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
};
const int = (name, fallback, min, max) => {
  const v = Number(option(name, fallback));
  // Bounded so that a typo cannot turn the soak into a flood.
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer from ${min} to ${max}`);
  return v;
};
const REQUESTS = int("--requests", 10_000, 10, 1_000_000);
const CONNECTIONS = int("--connections", 64, 1, 256);
const TIMEOUT_S = int("--timeout", 900, 10, 7_200);
const SEED = int("--seed", Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31);
const ENGINE = option("--engine", "both");
const JS = argv.includes("--js");
const ENGINES = { memory: "memory://", kv: "kv://GLUEBIND_KV" };
if (ENGINE !== "both" && !(ENGINE in ENGINES)) throw new Error("--engine must be memory, kv or both");
const CONFIG = JS ? "examples/js-demo/wrangler.toml" : "wrangler.toml";
const APP = JS ? "JS demo" : "Rust demo";

const RACE_SHARE = 0.1; // of the load's requests, in race groups
const RACE_MAX = Math.min(8, CONNECTIONS); // connections per race group
const RACE_MIN = Math.min(4, RACE_MAX);
const ANCHORS = 8; // users created first and never changed: their emails are the known duplicates
const REQUEST_TIMEOUT_MS = 30_000;
// What a connection does with the users it owns (weights; a race group is picked besides).
const MIX = [
  ["post", 22], // 201
  ["postTaken", 3], // an anchor's email: 409
  ["patchName", 14], // 200
  ["patchEmail", 6], // 200
  ["patchTaken", 2], // an anchor's email: 409
  ["delete", 8], // 204
  ["deleteGone", 2], // 404
  ["get", 25], // 200, the ledger's version
  ["getGone", 3], // 404
  ["list", 5], // 200
];
const MIX_TOTAL = MIX.reduce((s, [, w]) => s + w, 0);
const deadline = Date.now() + TIMEOUT_S * 1000;
const runTag = `${Date.now().toString(36)}${SEED.toString(36)}`;

// A small seeded PRNG (mulberry32): --seed repeats a run's choices (race group sizes, the mix);
// which connection draws which number still depends on timing.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Fair (FIFO) counting semaphore: at most CONNECTIONS requests in flight, and a race group
// takes all of its permits at once so that its requests really run together.
class Permits {
  constructor(n) {
    this.free = n;
    this.queue = [];
  }
  acquire(k) {
    if (this.queue.length === 0 && this.free >= k) {
      this.free -= k;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ k, resolve }));
  }
  release(k) {
    this.free += k;
    while (this.queue.length > 0 && this.free >= this.queue[0].k) {
      const w = this.queue.shift();
      this.free -= w.k;
      w.resolve();
    }
  }
}

const same = (a, b) => (a === null || b === null ? a === b : a.id === b.id && a.name === b.name && a.email === b.email);
const show = (s) => (s === null ? "absent" : JSON.stringify(s));
const isError = (status) => status === 0 || status >= 500;

// ---------------------------------------------------------------- one engine
async function soak(engineKey) {
  const engineUrl = ENGINES[engineKey];
  const rand = prng(SEED);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const t = {
    sent: { setup: 0, load: 0, readBack: 0 },
    statuses: new Map(), // status (0 = network error) -> count
    acked: { POST: 0, PATCH: 0, DELETE: 0 },
    conflicts: { expected: 0, unexpected: 0 },
    wrongAnswers: 0,
    races: { groups: 0, broken: 0 },
    problems: [],
  };
  const problem = (msg) => {
    if (t.problems.length < 12) t.problems.push(msg);
  };
  // The ledger: id -> { history: states after each acknowledged write in order, accept: other
  // acceptable final states (races, maybe-applied writes), acked: acknowledged writes }.
  const ledger = new Map();
  const maybeCreated = new Set(); // `email name` of users a POST with a 5xx/network error may have made
  const key = (u) => `${u.email} ${u.name}`;
  let duplicateIds = 0;
  // id -> the requests on that user ("12.34s PATCH 200 {...}"), to diagnose a lost write.
  const trail = new Map();
  let seq = 0;
  const fresh = (label) => {
    seq += 1;
    return { name: `Soak ${label} ${seq}`, email: `soak-${runTag}-${label}-${seq}@soak.test` };
  };

  let phase = "setup";
  let worker;
  const t0 = Date.now();
  const call = async (method, path, body) => {
    t.sent[phase] += 1;
    let status = 0;
    let res;
    const timeoutMs = Math.max(1, Math.min(REQUEST_TIMEOUT_MS, deadline - Date.now()));
    try {
      res = await json(worker.url, path, { method, body, timeoutMs });
      status = res.status;
    } catch (err) {
      res = { status: 0, body: null, error: err };
      problem(`${method} ${path}: network error ${err.message}`);
    }
    t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
    if (status >= 500) problem(`${method} ${path} -> ${status} ${res.text?.slice(0, 200)}`);
    if (status === 409) t.conflicts.expected += 1; // reclassified by the caller when unexpected
    const id = Number(/^\/users\/(\d+)$/.exec(path)?.[1] ?? (status === 201 ? res.body?.id : NaN));
    if (!Number.isNaN(id)) {
      if (!trail.has(id)) trail.set(id, []);
      const seen = body ?? (status === 200 ? res.body : undefined);
      trail.get(id).push(`${((Date.now() - t0) / 1000).toFixed(2)}s ${method} ${status}${seen ? ` ${JSON.stringify(seen)}` : ""}`);
    }
    return res;
  };
  const unexpectedConflict = (what) => {
    t.conflicts.expected -= 1;
    t.conflicts.unexpected += 1;
    problem(`unexpected 409: ${what}`);
  };
  // A 201's user: must echo what was sent; enters the ledger.
  const created = (res, input) => {
    const user = { id: res.body?.id, name: input.name, email: input.email };
    if (!Number.isSafeInteger(user.id) || !same(res.body, user)) {
      t.wrongAnswers += 1;
      problem(`POST /users ${JSON.stringify(input)} answered ${JSON.stringify(res.body)}`);
    }
    if (ledger.has(user.id)) {
      duplicateIds += 1;
      problem(`id ${user.id} handed out twice`);
    }
    t.acked.POST += 1;
    const row = { history: [user], accept: [], acked: 1 };
    ledger.set(user.id, row);
    return row;
  };
  const last = (row) => row.history[row.history.length - 1];
  const acknowledge = (row, method, state) => {
    t.acked[method] += 1;
    row.acked += 1;
    row.history.push(state);
  };
  // POST /users; a 201 enters the ledger (res.row), an error leaves a maybe-created user.
  const post = async (input) => {
    const res = await call("POST", "/users", input);
    if (res.status === 201) res.row = created(res, input);
    else if (isError(res.status)) maybeCreated.add(key(input));
    return res;
  };

  try {
    worker = await startWorker({ config: CONFIG, vars: { DATABASE_URL: engineUrl } });
    const startMs = Date.now() - t0;

    // ------------------------------------------------ setup: anchors and race targets
    const anchors = [];
    for (let i = 0; i < ANCHORS; i++) {
      const { row } = await post(fresh("anchor"));
      if (!row) throw new Error("setup: could not create an anchor user");
      anchors.push(last(row));
    }
    const groups = [];
    const kinds = ["emailPost", "samePatch", "emailPatch", "sameDelete", "patchDelete"];
    const avgSize = (RACE_MIN + RACE_MAX) / 2;
    const groupCount = Math.round((REQUESTS * RACE_SHARE) / avgSize);
    const needRows = [];
    for (let i = 0; i < groupCount; i++) {
      const kind = kinds[i % kinds.length];
      const size = RACE_MIN + Math.floor(rand() * (RACE_MAX - RACE_MIN + 1));
      const g = { kind, size, rows: [] };
      const rows = { emailPost: 0, emailPatch: size }[kind] ?? 1;
      for (let r = 0; r < rows; r++) needRows.push(g);
      groups.push(g);
    }
    // Created CONNECTIONS at a time; a group whose rows could not be made is skipped.
    for (let i = 0; i < needRows.length; i += CONNECTIONS) {
      await Promise.all(
        needRows.slice(i, i + CONNECTIONS).map(async (g) => {
          const { row } = await post(fresh("target"));
          if (row) g.rows.push(row);
          else g.skip = true;
        }),
      );
    }
    const raceQueue = groups.filter((g) => !g.skip);

    // ------------------------------------------------ race groups
    const runGroup = async (g) => {
      const kind = g.kind;
      t.races.groups += 1;
      const broken = (msg) => {
        t.races.broken += 1;
        problem(`race ${kind}: ${msg}`);
      };
      const count = (rs, status) => rs.filter((r) => r.status === status).length;
      const anyError = (rs) => rs.some((r) => isError(r.status));
      const badStatus = (rs, allowed) => {
        for (const r of rs) if (!isError(r.status) && !allowed.includes(r.status)) broken(`status ${r.status}`);
      };
      if (kind === "emailPost") {
        // Several connections register the same new email: exactly one 201.
        const email = fresh("race").email;
        const inputs = Array.from({ length: g.size }, () => ({ name: fresh("racer").name, email }));
        const rs = await Promise.all(inputs.map(post));
        badStatus(rs, [201, 409]);
        if (count(rs, 201) > 1 || (count(rs, 201) === 0 && !anyError(rs))) broken(`${count(rs, 201)} × 201 for ${email}`);
      } else if (kind === "samePatch" || kind === "patchDelete") {
        // Several renames of one row (and, for patchDelete, one DELETE among them): first
        // committer wins, a later commit on a stale read is a 409, a PATCH after the DELETE a 404.
        const row = g.rows[0];
        const before = last(row);
        const ops = Array.from({ length: g.size }, (_, i) =>
          kind === "patchDelete" && i === 0 ? { method: "DELETE" } : { method: "PATCH", body: { name: fresh("rename").name } },
        );
        const rs = await Promise.all(ops.map((op) => call(op.method, `/users/${before.id}`, op.body)));
        const versions = [];
        let deleted = false;
        rs.forEach((r, i) => {
          const op = ops[i];
          if (op.method === "PATCH") {
            const want = { ...before, name: op.body.name };
            if (r.status === 200) {
              if (!same(r.body, want)) broken(`PATCH answered ${JSON.stringify(r.body)}, sent ${JSON.stringify(op.body)}`);
              acknowledge(row, "PATCH", want);
              versions.push(want);
            } else if (isError(r.status)) {
              row.accept.push(want);
            }
          } else if (r.status === 204) {
            deleted = true;
          } else if (isError(r.status)) {
            row.accept.push(null);
          }
        });
        badStatus(rs, kind === "samePatch" ? [200, 409] : [200, 204, 404, 409]);
        if (deleted) {
          acknowledge(row, "DELETE", null);
          row.accept = row.accept.filter((s) => s === null);
        } else {
          // Which acknowledged rename committed last is not visible to the client: any of them.
          row.accept.push(...versions);
          if (versions.length === 0 && !anyError(rs) && kind === "samePatch") broken("no PATCH won");
        }
        if (kind === "patchDelete" && !deleted && !anyError(rs) && rs[0].status !== 409) broken(`DELETE got ${rs[0].status}`);
      } else if (kind === "emailPatch") {
        // Several rows take the same new email at once: exactly one 200.
        const email = fresh("race").email;
        const rs = await Promise.all(g.rows.map((row) => call("PATCH", `/users/${last(row).id}`, { email })));
        rs.forEach((r, i) => {
          const row = g.rows[i];
          const want = { ...last(row), email };
          if (r.status === 200) {
            if (!same(r.body, want)) broken(`PATCH answered ${JSON.stringify(r.body)}`);
            acknowledge(row, "PATCH", want);
          } else if (isError(r.status)) {
            row.accept.push(want);
          }
        });
        badStatus(rs, [200, 409]);
        if (count(rs, 200) > 1 || (count(rs, 200) === 0 && !anyError(rs))) broken(`${count(rs, 200)} × 200 for ${email}`);
      } else if (kind === "sameDelete") {
        // Several DELETEs of one row: exactly one 204, the others 404.
        const row = g.rows[0];
        const id = last(row).id;
        const rs = await Promise.all(Array.from({ length: g.size }, () => call("DELETE", `/users/${id}`)));
        const wins = count(rs, 204);
        for (let i = 0; i < wins; i++) acknowledge(row, "DELETE", null);
        if (anyError(rs)) row.accept.push(null);
        badStatus(rs, [204, 404]);
        if (wins > 1 || (wins === 0 && !anyError(rs))) broken(`${wins} × 204 for id ${id}`);
      }
    };

    // ------------------------------------------------ each connection's own users
    const ownOp = async (c) => {
      let [op] = MIX[MIX.length - 1];
      let r = rand() * MIX_TOTAL;
      for (const [name, w] of MIX) {
        if ((r -= w) < 0) {
          op = name;
          break;
        }
      }
      if (c.live.length === 0 && !["post", "postTaken", "list"].includes(op)) op = "post";
      if (c.gone.length === 0 && (op === "deleteGone" || op === "getGone")) op = "get";
      const liveIndex = Math.floor(rand() * c.live.length);
      const row = c.live[liveIndex];
      const cur = row && last(row);
      // An answer that contradicts what this connection alone did to its own rows.
      const wrong = (what, res) => {
        t.wrongAnswers += 1;
        problem(`${what} -> ${res.status} ${JSON.stringify(res.body)?.slice(0, 200)}; ledger: ${show(cur)}`);
      };
      const expect409 = (what, res) => {
        if (res.status === 201 || res.status === 200) wrong(`${what} (taken email accepted)`, res);
        else if (res.status !== 409 && !isError(res.status)) wrong(what, res);
      };
      if (op === "post") {
        const input = fresh(`c${c.n}`);
        const res = await post(input);
        if (res.row) c.live.push(res.row);
        else if (res.status === 409) unexpectedConflict(`POST ${JSON.stringify(input)}`);
        else if (!isError(res.status)) wrong(`POST ${JSON.stringify(input)}`, res);
      } else if (op === "postTaken") {
        const input = { name: fresh(`c${c.n}`).name, email: pick(anchors).email };
        // A 201 makes a second holder of the email: the read-back counts it as duplicated.
        expect409(`POST ${JSON.stringify(input)}`, await post(input));
      } else if (op === "patchName" || op === "patchEmail" || op === "patchTaken") {
        const body =
          op === "patchName" ? { name: fresh(`c${c.n}`).name }
          : op === "patchEmail" ? { email: fresh(`c${c.n}`).email }
          : { email: pick(anchors).email };
        const want = { ...cur, ...body };
        const what = `PATCH /users/${cur.id} ${JSON.stringify(body)}`;
        const res = await call("PATCH", `/users/${cur.id}`, body);
        if (isError(res.status)) {
          // Maybe applied: accept either, and leave the row alone from now on.
          row.accept.push(want);
          c.live.splice(liveIndex, 1);
        } else if (op === "patchTaken") {
          expect409(what, res);
          if (res.status === 200) acknowledge(row, "PATCH", want);
        } else if (res.status === 200) {
          if (!same(res.body, want)) wrong(what, res);
          acknowledge(row, "PATCH", want);
        } else if (res.status === 409) unexpectedConflict(what);
        else wrong(what, res);
      } else if (op === "delete") {
        const res = await call("DELETE", `/users/${cur.id}`);
        c.live.splice(liveIndex, 1);
        if (res.status === 204) {
          acknowledge(row, "DELETE", null);
          c.gone.push(cur.id);
        } else if (isError(res.status)) row.accept.push(null);
        else {
          if (res.status === 409) unexpectedConflict(`DELETE /users/${cur.id}`);
          else wrong(`DELETE /users/${cur.id}`, res);
          c.live.push(row); // unchanged: still this connection's
        }
      } else if (op === "deleteGone" || op === "getGone") {
        const id = pick(c.gone);
        const method = op === "deleteGone" ? "DELETE" : "GET";
        const res = await call(method, `/users/${id}`);
        if (res.status !== 404 && !isError(res.status)) wrong(`${method} /users/${id} (deleted)`, res);
      } else if (op === "get") {
        const res = await call("GET", `/users/${cur.id}`);
        if (!isError(res.status) && (res.status !== 200 || !same(res.body, cur))) wrong(`GET /users/${cur.id}`, res);
      } else if (op === "list") {
        const page = 1 + Math.floor(rand() * 5);
        const res = await call("GET", `/users?page=${page}&per_page=20`);
        if (!isError(res.status) && (res.status !== 200 || !Array.isArray(res.body?.items))) wrong(`GET /users?page=${page}`, res);
      }
    };

    // ------------------------------------------------ load
    phase = "load";
    const permits = new Permits(CONNECTIONS);
    // Chance per step of starting a race group, so that ~RACE_SHARE of requests are in races.
    const groupChance = RACE_SHARE / (avgSize - RACE_SHARE * (avgSize - 1));
    let budget = REQUESTS;
    let timedOut = false;
    const loadStart = Date.now();
    const progress = setInterval(() => {
      const done = t.sent.load;
      console.log(`    ${done}/${REQUESTS} requests, ${Math.round(done / ((Date.now() - loadStart) / 1000))}/s`);
    }, 5_000);
    progress.unref();
    const connection = async (c) => {
      for (;;) {
        if (Date.now() >= deadline) {
          timedOut = true;
          return;
        }
        if (raceQueue.length > 0 && budget >= raceQueue[0].size && rand() < groupChance) {
          const g = raceQueue.shift();
          budget -= g.size;
          await permits.acquire(g.size);
          try {
            await runGroup(g);
          } finally {
            permits.release(g.size);
          }
          continue;
        }
        if (budget <= 0) return;
        budget -= 1;
        await permits.acquire(1);
        try {
          await ownOp(c);
        } finally {
          permits.release(1);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, n) => connection({ n, live: [], gone: [] })));
    clearInterval(progress);
    const loadMs = Date.now() - loadStart;
    if (timedOut) problem(`global timeout (${TIMEOUT_S} s) reached: load stopped early`);

    // ------------------------------------------------ read back and compare
    phase = "readBack";
    const readBackStart = Date.now();
    let items = [];
    let readBackError = null;
    try {
      ({ items } = await listAll(worker.url));
      t.sent.readBack = Math.max(1, Math.ceil(items.length / 100));
    } catch (err) {
      readBackError = err.message.split("\n")[0];
      problem(`read-back failed: ${readBackError}`);
    }
    const found = new Map();
    let duplicated = duplicateIds;
    const emails = new Map();
    for (const u of items) {
      if (found.has(u.id)) {
        duplicated += 1;
        problem(`id ${u.id} listed twice`);
      }
      found.set(u.id, u);
      emails.set(u.email, (emails.get(u.email) ?? 0) + 1);
    }
    for (const [email, n] of emails) {
      if (n > 1) {
        duplicated += n - 1;
        problem(`${n} users hold ${email}`);
      }
    }
    let maybe = 0;
    for (const u of found.values()) {
      if (ledger.has(u.id)) continue;
      if (maybeCreated.has(key(u))) {
        maybe += 1;
        continue;
      }
      duplicated += 1; // a row nobody acknowledged
      problem(`unacknowledged row ${JSON.stringify(u)}`);
    }
    let writesFound = 0;
    let lost = 0;
    const mismatched = [];
    for (const [id, row] of ledger) {
      const final = found.get(id) ?? null;
      if (same(final, last(row)) || row.accept.some((s) => same(s, final))) {
        writesFound += row.acked;
        continue;
      }
      // The longest prefix of this row's acknowledged writes the final state still reflects.
      let k = 0;
      row.history.forEach((s, i) => {
        if (same(s, final)) k = i + 1;
      });
      writesFound += k;
      lost += row.acked - k;
      mismatched.push(id);
      problem(`id ${id}: expected ${show(last(row))}, found ${show(final)}`);
    }
    // For the first few: what a point read says now (the isolate's view of that one row), and
    // the requests on that user, with their times since the start of this engine's run.
    const readBackAt = ((readBackStart - t0) / 1000).toFixed(2);
    for (const id of mismatched.slice(0, 3)) {
      const res = await call("GET", `/users/${id}`);
      t.problems.push(`id ${id}: read back at ${readBackAt}s; GET now -> ${res.status} ${JSON.stringify(res.body)}; requests: ${trail.get(id)?.join(" | ")}`);
    }
    const errors = [...t.statuses].filter(([s]) => isError(s)).reduce((a, [, n]) => a + n, 0);
    const acked = t.acked.POST + t.acked.PATCH + t.acked.DELETE;
    const pass =
      lost === 0 && duplicated === 0 && errors === 0 && t.wrongAnswers === 0 && t.races.broken === 0 && !timedOut && !readBackError;
    return {
      engine: engineUrl,
      pass,
      startMs,
      loadMs,
      totalMs: Date.now() - t0,
      sent: t.sent,
      acked,
      ackedBy: t.acked,
      writesFound,
      lost,
      duplicated,
      maybe,
      conflicts: t.conflicts,
      wrongAnswers: t.wrongAnswers,
      races: t.races,
      statuses: t.statuses,
      errors,
      rows: items.length,
      problems: t.problems,
    };
  } finally {
    await worker?.stop();
  }
}

// ---------------------------------------------------------------- report
function table(results) {
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const statuses = (r) =>
    [...r.statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s === 0 ? "network" : s} ${n}`)
      .join(", ");
  const lines = [
    ["requests sent (load)", (r) => r.sent.load],
    ["  + setup, read-back", (r) => `${r.sent.setup} + ${r.sent.readBack}`],
    ["load duration", (r) => `${secs(r.loadMs)} (${Math.round(r.sent.load / (r.loadMs / 1000))}/s)`],
    ["wrangler start-up", (r) => secs(r.startMs)],
    ["acknowledged writes", (r) => `${r.acked} (POST ${r.ackedBy.POST}, PATCH ${r.ackedBy.PATCH}, DELETE ${r.ackedBy.DELETE})`],
    ["writes found afterwards", (r) => r.writesFound],
    ["lost", (r) => r.lost],
    ["duplicated", (r) => r.duplicated],
    ["conflicts (409)", (r) => `${r.conflicts.expected + r.conflicts.unexpected} (${r.conflicts.unexpected} unexpected)`],
    ["race groups (broken)", (r) => `${r.races.groups} (${r.races.broken})`],
    ["wrong answers", (r) => r.wrongAnswers],
    ["maybe-applied rows", (r) => r.maybe],
    ["responses by status", statuses],
    ["5xx + network errors", (r) => r.errors],
    ["users afterwards", (r) => r.rows],
    ["result", (r) => (r.pass ? "PASS" : "FAIL")],
  ];
  const cells = lines.map(([label, f]) => [label, ...results.map((r) => String(f(r)))]);
  const head = [APP, ...results.map((r) => r.engine)];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const fmt = (row) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [fmt(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(fmt)].join("\n");
}

const engines = ENGINE === "both" ? ["memory", "kv"] : [ENGINE];
console.log(
  `gluebind soak (${APP}, ${CONFIG}): ${REQUESTS} requests at ${CONNECTIONS} connections per engine, ` +
    `engines ${engines.map((e) => ENGINES[e]).join(", ")}, seed ${SEED}, timeout ${TIMEOUT_S} s`,
);
const results = [];
for (const e of engines) {
  console.log(`\n${ENGINES[e]}: starting wrangler dev, setup, load`);
  const r = await soak(e);
  results.push(r);
  for (const p of r.problems) console.log(`    ! ${p}`);
  console.log(`    ${r.pass ? "PASS" : "FAIL"} in ${(r.totalMs / 1000).toFixed(1)} s`);
}
console.log(`\n${table(results)}\n`);
// One line per engine for scripts/test.sh to count.
for (const r of results) console.log(`soak result: ${r.engine} ${r.pass ? "pass" : "fail"}`);
process.exitCode = results.every((r) => r.pass) ? 0 : 1;
