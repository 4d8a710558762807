// The phases of one engine's soak run, in order: setUp (anchors and race targets), load (each
// connection's own users, and race groups), readBack (GET /users, paged), checkLedger (the
// read-back against the ledger) and diagnose (the first mismatches in detail). Each takes the
// engine's SoakRun (scripts/soak/run.mjs) and what the phase before returned.

import { listAll } from "../../tests/e2e/helpers.mjs";
import { Permits, isError, last, same, show, userKey } from "./run.mjs";

const RACE_SHARE = 0.1; // of the load's requests, in race groups
const ANCHORS = 8; // users created first and never changed: their emails are the known duplicates
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
const RACE_KINDS = ["emailPost", "samePatch", "emailPatch", "sameDelete", "patchDelete"];

/** Connections per race group: 4 to 8, fewer when there are fewer connections. */
function raceSizes(connections) {
  const max = Math.min(8, connections);
  return { min: Math.min(4, max), max };
}

/** Creates the anchors and the rows the race groups will fight over; plans the race groups. */
export async function setUp(run) {
  const { requests, connections } = run.opts;
  run.phase = "setup";
  const anchors = [];
  for (let i = 0; i < ANCHORS; i++) {
    const { row } = await run.post(run.fresh("anchor"));
    if (!row) throw new Error("setup: could not create an anchor user");
    anchors.push(last(row));
  }
  const { min, max } = raceSizes(connections);
  const groups = [];
  const avgSize = (min + max) / 2;
  const groupCount = Math.round((requests * RACE_SHARE) / avgSize);
  const needRows = [];
  for (let i = 0; i < groupCount; i++) {
    const kind = RACE_KINDS[i % RACE_KINDS.length];
    const size = min + Math.floor(run.rand() * (max - min + 1));
    const g = { kind, size, rows: [] };
    const rows = { emailPost: 0, emailPatch: size }[kind] ?? 1;
    for (let r = 0; r < rows; r++) needRows.push(g);
    groups.push(g);
  }
  // Created --connections at a time; a group whose rows could not be made is skipped.
  for (let i = 0; i < needRows.length; i += connections) {
    await Promise.all(
      needRows.slice(i, i + connections).map(async (g) => {
        const { row } = await run.post(run.fresh("target"));
        if (row) g.rows.push(row);
        else g.skip = true;
      }),
    );
  }
  return { anchors, raceQueue: groups.filter((g) => !g.skip), avgSize };
}

/** One race group: its requests at once; only first-committer-wins invariants are checked. */
async function raceGroup(run, g) {
  const kind = g.kind;
  run.t.races.groups += 1;
  const broken = (msg) => {
    run.t.races.broken += 1;
    run.problem(`race ${kind}: ${msg}`);
  };
  const count = (rs, status) => rs.filter((r) => r.status === status).length;
  const anyError = (rs) => rs.some((r) => isError(r.status));
  const badStatus = (rs, allowed) => {
    for (const r of rs) if (!isError(r.status) && !allowed.includes(r.status)) broken(`status ${r.status}`);
  };
  if (kind === "emailPost") {
    // Several connections register the same new email: exactly one 201.
    const email = run.fresh("race").email;
    const inputs = Array.from({ length: g.size }, () => ({ name: run.fresh("racer").name, email }));
    const rs = await Promise.all(inputs.map((input) => run.post(input)));
    badStatus(rs, [201, 409]);
    if (count(rs, 201) > 1 || (count(rs, 201) === 0 && !anyError(rs))) broken(`${count(rs, 201)} × 201 for ${email}`);
  } else if (kind === "samePatch" || kind === "patchDelete") {
    // Several renames of one row (and, for patchDelete, one DELETE among them): first
    // committer wins, a later commit on a stale read is a 409, a PATCH after the DELETE a 404.
    const row = g.rows[0];
    const before = last(row);
    const ops = Array.from({ length: g.size }, (_, i) =>
      kind === "patchDelete" && i === 0 ? { method: "DELETE" } : { method: "PATCH", body: { name: run.fresh("rename").name } },
    );
    const rs = await Promise.all(ops.map((op) => run.call(op.method, `/users/${before.id}`, op.body)));
    const versions = [];
    let deleted = false;
    rs.forEach((r, i) => {
      const op = ops[i];
      if (op.method === "PATCH") {
        const want = { ...before, name: op.body.name };
        if (r.status === 200) {
          if (!same(r.body, want)) broken(`PATCH answered ${JSON.stringify(r.body)}, sent ${JSON.stringify(op.body)}`);
          run.acknowledge(row, "PATCH", want);
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
      run.acknowledge(row, "DELETE", null);
      row.accept = row.accept.filter((s) => s === null);
    } else {
      // Which acknowledged rename committed last is not visible to the client: any of them.
      row.accept.push(...versions);
      if (versions.length === 0 && !anyError(rs) && kind === "samePatch") broken("no PATCH won");
    }
    if (kind === "patchDelete" && !deleted && !anyError(rs) && rs[0].status !== 409) broken(`DELETE got ${rs[0].status}`);
  } else if (kind === "emailPatch") {
    // Several rows take the same new email at once: exactly one 200.
    const email = run.fresh("race").email;
    const rs = await Promise.all(g.rows.map((row) => run.call("PATCH", `/users/${last(row).id}`, { email })));
    rs.forEach((r, i) => {
      const row = g.rows[i];
      const want = { ...last(row), email };
      if (r.status === 200) {
        if (!same(r.body, want)) broken(`PATCH answered ${JSON.stringify(r.body)}`);
        run.acknowledge(row, "PATCH", want);
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
    const rs = await Promise.all(Array.from({ length: g.size }, () => run.call("DELETE", `/users/${id}`)));
    const wins = count(rs, 204);
    for (let i = 0; i < wins; i++) run.acknowledge(row, "DELETE", null);
    if (anyError(rs)) row.accept.push(null);
    badStatus(rs, [204, 404]);
    if (wins > 1 || (wins === 0 && !anyError(rs))) broken(`${wins} × 204 for id ${id}`);
  }
}

/** One request of connection `c` on the users it owns (c.live, c.gone), checked against them. */
async function ownOp(run, c, anchors) {
  let [op] = MIX[MIX.length - 1];
  let r = run.rand() * MIX_TOTAL;
  for (const [name, w] of MIX) {
    if ((r -= w) < 0) {
      op = name;
      break;
    }
  }
  if (c.live.length === 0 && !["post", "postTaken", "list"].includes(op)) op = "post";
  if (c.gone.length === 0 && (op === "deleteGone" || op === "getGone")) op = "get";
  const liveIndex = Math.floor(run.rand() * c.live.length);
  const row = c.live[liveIndex];
  const cur = row && last(row);
  // An answer that contradicts what this connection alone did to its own rows.
  const wrong = (what, res) => {
    run.t.wrongAnswers += 1;
    run.problem(`${what} -> ${res.status} ${JSON.stringify(res.body)?.slice(0, 200)}; ledger: ${show(cur)}`);
  };
  const expect409 = (what, res) => {
    if (res.status === 201 || res.status === 200) wrong(`${what} (taken email accepted)`, res);
    else if (res.status !== 409 && !isError(res.status)) wrong(what, res);
  };
  if (op === "post") {
    const input = run.fresh(`c${c.n}`);
    const res = await run.post(input);
    if (res.row) c.live.push(res.row);
    else if (res.status === 409) run.unexpectedConflict(`POST ${JSON.stringify(input)}`);
    else if (!isError(res.status)) wrong(`POST ${JSON.stringify(input)}`, res);
  } else if (op === "postTaken") {
    const input = { name: run.fresh(`c${c.n}`).name, email: run.pick(anchors).email };
    // A 201 makes a second holder of the email: the read-back counts it as duplicated.
    expect409(`POST ${JSON.stringify(input)}`, await run.post(input));
  } else if (op === "patchName" || op === "patchEmail" || op === "patchTaken") {
    const body =
      op === "patchName" ? { name: run.fresh(`c${c.n}`).name }
      : op === "patchEmail" ? { email: run.fresh(`c${c.n}`).email }
      : { email: run.pick(anchors).email };
    const want = { ...cur, ...body };
    const what = `PATCH /users/${cur.id} ${JSON.stringify(body)}`;
    const res = await run.call("PATCH", `/users/${cur.id}`, body);
    if (isError(res.status)) {
      // Maybe applied: accept either, and leave the row alone from now on.
      row.accept.push(want);
      c.live.splice(liveIndex, 1);
    } else if (op === "patchTaken") {
      expect409(what, res);
      if (res.status === 200) run.acknowledge(row, "PATCH", want);
    } else if (res.status === 200) {
      if (!same(res.body, want)) wrong(what, res);
      run.acknowledge(row, "PATCH", want);
    } else if (res.status === 409) run.unexpectedConflict(what);
    else wrong(what, res);
  } else if (op === "delete") {
    const res = await run.call("DELETE", `/users/${cur.id}`);
    c.live.splice(liveIndex, 1);
    if (res.status === 204) {
      run.acknowledge(row, "DELETE", null);
      c.gone.push(cur.id);
    } else if (isError(res.status)) row.accept.push(null);
    else {
      if (res.status === 409) run.unexpectedConflict(`DELETE /users/${cur.id}`);
      else wrong(`DELETE /users/${cur.id}`, res);
      c.live.push(row); // unchanged: still this connection's
    }
  } else if (op === "deleteGone" || op === "getGone") {
    const id = run.pick(c.gone);
    const method = op === "deleteGone" ? "DELETE" : "GET";
    const res = await run.call(method, `/users/${id}`);
    if (res.status !== 404 && !isError(res.status)) wrong(`${method} /users/${id} (deleted)`, res);
  } else if (op === "get") {
    const res = await run.call("GET", `/users/${cur.id}`);
    if (!isError(res.status) && (res.status !== 200 || !same(res.body, cur))) wrong(`GET /users/${cur.id}`, res);
  } else if (op === "list") {
    const page = 1 + Math.floor(run.rand() * 5);
    const res = await run.call("GET", `/users?page=${page}&per_page=20`);
    if (!isError(res.status) && (res.status !== 200 || !Array.isArray(res.body?.items))) wrong(`GET /users?page=${page}`, res);
  }
}

/**
 * --requests requests through --connections connections: each connection works on its own users,
 * and now and then runs the next race group (all its requests at once). Returns { loadMs, timedOut }.
 */
export async function load(run, { anchors, raceQueue, avgSize }) {
  const { requests, connections, deadline } = run.opts;
  run.phase = "load";
  const permits = new Permits(connections);
  // Chance per step of starting a race group, so that ~RACE_SHARE of requests are in races.
  const groupChance = RACE_SHARE / (avgSize - RACE_SHARE * (avgSize - 1));
  let budget = requests;
  let timedOut = false;
  const loadStart = Date.now();
  const progress = setInterval(() => {
    const done = run.t.sent.load;
    console.log(`    ${done}/${requests} requests, ${Math.round(done / ((Date.now() - loadStart) / 1000))}/s`);
  }, 5_000);
  progress.unref();
  const connection = async (c) => {
    for (;;) {
      if (Date.now() >= deadline) {
        timedOut = true;
        return;
      }
      if (raceQueue.length > 0 && budget >= raceQueue[0].size && run.rand() < groupChance) {
        const g = raceQueue.shift();
        budget -= g.size;
        await permits.acquire(g.size);
        try {
          await raceGroup(run, g);
        } finally {
          permits.release(g.size);
        }
        continue;
      }
      if (budget <= 0) return;
      budget -= 1;
      await permits.acquire(1);
      try {
        await ownOp(run, c, anchors);
      } finally {
        permits.release(1);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, n) => connection({ n, live: [], gone: [] })));
  clearInterval(progress);
  if (timedOut) run.problem(`global timeout (${run.opts.timeout} s) reached: load stopped early`);
  return { loadMs: Date.now() - loadStart, timedOut };
}

/** Every user, through GET /users (100 per page). Returns { items, readBackError, readBackStart }. */
export async function readBack(run) {
  run.phase = "readBack";
  const readBackStart = Date.now();
  let items = [];
  let readBackError = null;
  try {
    ({ items } = await listAll(run.worker.url));
    run.t.sent.readBack = Math.max(1, Math.ceil(items.length / 100));
  } catch (err) {
    readBackError = err.message.split("\n")[0];
    run.problem(`read-back failed: ${readBackError}`);
  }
  return { items, readBackError, readBackStart };
}

/**
 * The read-back against the ledger: every acknowledged write found (or an accepted outcome of a
 * race or a maybe-applied write), no id or email twice, no row nobody acknowledged.
 * Returns { writesFound, lost, duplicated, maybe, mismatched }.
 */
export function checkLedger(run, items) {
  const found = new Map();
  let duplicated = run.duplicateIds;
  const emails = new Map();
  for (const u of items) {
    if (found.has(u.id)) {
      duplicated += 1;
      run.problem(`id ${u.id} listed twice`);
    }
    found.set(u.id, u);
    emails.set(u.email, (emails.get(u.email) ?? 0) + 1);
  }
  for (const [email, n] of emails) {
    if (n > 1) {
      duplicated += n - 1;
      run.problem(`${n} users hold ${email}`);
    }
  }
  let maybe = 0;
  for (const u of found.values()) {
    if (run.ledger.has(u.id)) continue;
    if (run.maybeCreated.has(userKey(u))) {
      maybe += 1;
      continue;
    }
    duplicated += 1; // a row nobody acknowledged
    run.problem(`unacknowledged row ${JSON.stringify(u)}`);
  }
  let writesFound = 0;
  let lost = 0;
  const mismatched = [];
  for (const [id, row] of run.ledger) {
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
    run.problem(`id ${id}: expected ${show(last(row))}, found ${show(final)}`);
  }
  return { writesFound, lost, duplicated, maybe, mismatched };
}

/**
 * For the first few mismatched users: what a point read says now (the isolate's view of that one
 * row), and the requests on that user, with their times since the start of this engine's run.
 */
export async function diagnose(run, mismatched, readBackStart) {
  const readBackAt = ((readBackStart - run.t0) / 1000).toFixed(2);
  for (const id of mismatched.slice(0, 3)) {
    const res = await run.call("GET", `/users/${id}`);
    run.t.problems.push(`id ${id}: read back at ${readBackAt}s; GET now -> ${res.status} ${JSON.stringify(res.body)}; requests: ${run.trail.get(id)?.join(" | ")}`);
  }
}
