// Boundary benchmark: a 100-row SELECT crossing from Rust (wasm) to JavaScript objects, with
// each candidate encoding. Run after `npm run build:js`:  node js/bench/boundary.mjs
//
//   count                 baseline: the query runs, only the row count crosses
//   objects               serde-wasm-bindgen, row objects, column-name keys converted per value
//   objects-cached-keys   serde-wasm-bindgen, row objects, keys converted once per query
//   arrays                serde-wasm-bindgen arrays of values; JavaScript builds the objects
//   json                  serde_json text; JavaScript runs JSON.parse (loses bigint/Date/bytes)
//
// Prints the median time per call (µs) over several rounds, per result shape.

import { Gluebind } from "gluebind";

const ROWS = 100;
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const ITERATIONS = Number(process.env.ITERATIONS ?? 100);

const db = new Gluebind({ url: "memory://bench" });
const setup = db.openSession();
await setup.executeBatch(`
  CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
  CREATE TABLE wide (id INTEGER PRIMARY KEY, name TEXT, email TEXT, age INTEGER, score FLOAT,
                     active BOOLEAN, created TIMESTAMP, note TEXT NULL)`);
for (let i = 1; i <= ROWS; i++) {
  await setup.execute("INSERT INTO users VALUES ($1, $2, $3)", [i, `User number ${i}`, `user${i}@example.com`]);
  await setup.execute("INSERT INTO wide VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", [
    i, `User number ${i}`, `user${i}@example.com`, 20 + (i % 50), i * 1.5, i % 2 === 0,
    new Date(Date.UTC(2024, 0, 1) + i * 3_600_000), i % 3 === 0 ? null : "some note text",
  ]);
}
await setup.commit();
setup.close();

const decoders = {
  count: (v) => v,
  objects: (v) => v,
  "objects-cached-keys": (v) => v,
  arrays: ([columns, rows]) => {
    const n = columns.length;
    const out = new Array(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const values = rows[r];
      const o = {};
      for (let i = 0; i < n; i++) o[columns[i]] = values[i];
      out[r] = o;
    }
    return out;
  },
  json: (text) => JSON.parse(text),
};

const shapes = {
  "users (id, name, email)": "SELECT id, name, email FROM users ORDER BY id LIMIT 100",
  "wide (8 columns, TIMESTAMP, NULLs)": "SELECT * FROM wide ORDER BY id LIMIT 100",
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const session = db.openSession();
const results = {};
for (const [shape, sql] of Object.entries(shapes)) {
  results[shape] = {};
  // Check every encoding decodes to the same rows (modulo JSON's types).
  const reference = await session.execute(sql);
  for (const enc of Object.keys(decoders)) {
    const rows = decoders[enc](await session.executeEncoded(sql, undefined, enc));
    if (enc === "count") {
      if (rows !== ROWS) throw new Error(`count: ${rows}`);
    } else if (rows.length !== ROWS || rows[5].email !== reference[5].email) {
      throw new Error(`${enc} decoded wrongly: ${JSON.stringify(rows[5])}`);
    }
  }
  const runs = {};
  for (const enc of [...Object.keys(decoders), "execute()"]) {
    runs[enc] =
      enc === "execute()"
        ? () => session.execute(sql)
        : async () => decoders[enc](await session.executeEncoded(sql, undefined, enc));
    for (let i = 0; i < 100; i++) await runs[enc](); // warm-up
  }
  // Rounds interleave the encodings, so drift (JIT, GC, a busy machine) hits all of them alike.
  const perRound = Object.fromEntries(Object.keys(runs).map((enc) => [enc, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [enc, run] of Object.entries(runs)) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) await run();
      perRound[enc].push(Number(process.hrtime.bigint() - t0) / 1000 / ITERATIONS);
    }
  }
  for (const enc of Object.keys(runs)) results[shape][enc] = median(perRound[enc]);
}
session.close();

console.log(`100-row SELECT, median µs per call (${ROUNDS} rounds × ${ITERATIONS}), Node ${process.version}`);
for (const [shape, byEnc] of Object.entries(results)) {
  console.log(`\n${shape}`);
  const base = byEnc.count;
  for (const [enc, us] of Object.entries(byEnc)) {
    const extra = enc === "count" ? "(query only)" : `boundary ≈ ${(us - base).toFixed(0)} µs`;
    console.log(`  ${enc.padEnd(22)} ${us.toFixed(0).padStart(6)} µs   ${extra}`);
  }
}
if (process.env.BENCH_JSON) console.log(JSON.stringify(results));
