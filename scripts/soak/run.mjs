// One engine's soak run: its tallies, the client-side ledger of acknowledged writes, and the
// requests that keep both up to date (scripts/soak.mjs drives the phases in scripts/soak/phases.mjs).

import { json } from "../../tests/e2e/harness.mjs";

const REQUEST_TIMEOUT_MS = 30_000;

// A small seeded PRNG (mulberry32): --seed repeats a run's choices (race group sizes, the mix);
// which connection draws which number still depends on timing.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Fair (FIFO) counting semaphore: at most --connections requests in flight, and a race group
// takes all of its permits at once so that its requests really run together.
export class Permits {
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

export const same = (a, b) => (a === null || b === null ? a === b : a.id === b.id && a.name === b.name && a.email === b.email);
export const show = (s) => (s === null ? "absent" : JSON.stringify(s));
export const isError = (status) => status === 0 || status >= 500;
/** The state a ledger row's last acknowledged write left. */
export const last = (row) => row.history[row.history.length - 1];
/** How a user is recognised among maybe-created ones. */
export const userKey = (u) => `${u.email} ${u.name}`;

export class SoakRun {
  /** `opts`: the parsed options (scripts/soak.mjs); `engineUrl`: the DATABASE_URL served. */
  constructor(opts, engineUrl) {
    this.opts = opts;
    this.engineUrl = engineUrl;
    this.rand = prng(opts.seed);
    this.t = {
      sent: { setup: 0, load: 0, readBack: 0 },
      statuses: new Map(), // status (0 = network error) -> count
      acked: { POST: 0, PATCH: 0, DELETE: 0 },
      conflicts: { expected: 0, unexpected: 0 },
      wrongAnswers: 0,
      races: { groups: 0, broken: 0 },
      problems: [],
    };
    // The ledger: id -> { history: states after each acknowledged write in order, accept: other
    // acceptable final states (races, maybe-applied writes), acked: acknowledged writes }.
    this.ledger = new Map();
    this.maybeCreated = new Set(); // userKey of users a POST with a 5xx/network error may have made
    this.duplicateIds = 0;
    // id -> the requests on that user ("12.34s PATCH 200 {...}"), to diagnose a lost write.
    this.trail = new Map();
    this.seq = 0;
    this.phase = "setup"; // counts requests in t.sent[phase]
    this.worker = null;
    this.t0 = Date.now();
  }

  pick(xs) {
    return xs[Math.floor(this.rand() * xs.length)];
  }

  problem(msg) {
    if (this.t.problems.length < 12) this.t.problems.push(msg);
  }

  fresh(label) {
    this.seq += 1;
    return { name: `Soak ${label} ${this.seq}`, email: `soak-${this.opts.runTag}-${label}-${this.seq}@soak.test` };
  }

  /** One request, counted by phase and status; a network error is status 0. */
  async call(method, path, body) {
    const t = this.t;
    t.sent[this.phase] += 1;
    let status = 0;
    let res;
    const timeoutMs = Math.max(1, Math.min(REQUEST_TIMEOUT_MS, this.opts.deadline - Date.now()));
    try {
      res = await json(this.worker.url, path, { method, body, timeoutMs });
      status = res.status;
    } catch (err) {
      res = { status: 0, body: null, error: err };
      this.problem(`${method} ${path}: network error ${err.message}`);
    }
    t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
    if (status >= 500) this.problem(`${method} ${path} -> ${status} ${res.text?.slice(0, 200)}`);
    if (status === 409) t.conflicts.expected += 1; // reclassified by the caller when unexpected
    const id = Number(/^\/users\/(\d+)$/.exec(path)?.[1] ?? (status === 201 ? res.body?.id : NaN));
    if (!Number.isNaN(id)) {
      if (!this.trail.has(id)) this.trail.set(id, []);
      const seen = body ?? (status === 200 ? res.body : undefined);
      const at = ((Date.now() - this.t0) / 1000).toFixed(2);
      this.trail.get(id).push(`${at}s ${method} ${status}${seen ? ` ${JSON.stringify(seen)}` : ""}`);
    }
    return res;
  }

  unexpectedConflict(what) {
    this.t.conflicts.expected -= 1;
    this.t.conflicts.unexpected += 1;
    this.problem(`unexpected 409: ${what}`);
  }

  /** A 201's user: must echo what was sent; enters the ledger. */
  created(res, input) {
    const user = { id: res.body?.id, name: input.name, email: input.email };
    if (!Number.isSafeInteger(user.id) || !same(res.body, user)) {
      this.t.wrongAnswers += 1;
      this.problem(`POST /users ${JSON.stringify(input)} answered ${JSON.stringify(res.body)}`);
    }
    if (this.ledger.has(user.id)) {
      this.duplicateIds += 1;
      this.problem(`id ${user.id} handed out twice`);
    }
    this.t.acked.POST += 1;
    const row = { history: [user], accept: [], acked: 1 };
    this.ledger.set(user.id, row);
    return row;
  }

  acknowledge(row, method, state) {
    this.t.acked[method] += 1;
    row.acked += 1;
    row.history.push(state);
  }

  /** POST /users; a 201 enters the ledger (res.row), an error leaves a maybe-created user. */
  async post(input) {
    const res = await this.call("POST", "/users", input);
    if (res.status === 201) res.row = this.created(res, input);
    else if (isError(res.status)) this.maybeCreated.add(userKey(input));
    return res;
  }
}
