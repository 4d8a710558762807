// Model-layer benchmark: what one model verb costs from JavaScript, boundary crossings
// included — a point read, a filtered 20-row query, a page with its count, an insert and an
// update (each rolled back). Run after `npm run build:js`:  node js/bench/models.mjs
//
// Prints the median time per call (µs) over several rounds.

import { Gluebind, createAll, defineModel } from "gluebind";

const ROWS = 100;
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const ITERATIONS = Number(process.env.ITERATIONS ?? 100);

const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT" },
  email: { type: "TEXT", unique: true },
  age: { type: "INT32", nullable: true },
});

const db = new Gluebind({ url: "memory://bench-models" });
const setup = db.openSession();
await createAll(setup, [User]);
for (let i = 1; i <= ROWS; i++) {
  await User.insert(setup, { id: i, name: `User number ${i}`, email: `user${i}@example.com`, age: i % 7 ? 20 + (i % 50) : null });
}
await setup.commit();
setup.close();

const session = db.openSession();
let next = ROWS + 1;
const cases = {
  "Model.get(session, key)": () => User.get(session, 42),
  // (No LIKE: GlueSQL 0.20 runs a regex per row, which would hide everything else.)
  "query: filter ×2, orderBy, limit 20, all()": () =>
    User.query(session).filter("age", "ge", 30).filter("id", "lt", 90).orderBy("-id").limit(20).all(),
  "query: filterBy, first()": () => User.query(session).filterBy({ email: "user7@example.com" }).first(),
  "query: count()": () => User.query(session).filter("age", "isNull").count(),
  "paginate({ page: 2, perPage: 20 })": () => User.query(session).orderBy("id").paginate({ page: 2, perPage: 20 }),
  "Model.insert + rollback": async () => {
    await User.insert(session, { id: next++, name: "New", email: `new${next}@example.com` });
    await session.rollback();
  },
  "Model.update (one column) + rollback": async () => {
    await User.update(session, 5, { name: `Renamed ${next++}` });
    await session.rollback();
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const run of Object.values(cases)) for (let i = 0; i < 100; i++) await run(); // warm-up
const perRound = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) await run();
    perRound[name].push(Number(process.hrtime.bigint() - t0) / 1000 / ITERATIONS);
  }
}
session.close();

console.log(`\nmodel verbs, median µs per call (${ROUNDS} rounds × ${ITERATIONS}), Node ${process.version}`);
const results = {};
for (const [name, times] of Object.entries(perRound)) {
  results[name] = median(times);
  console.log(`  ${name.padEnd(44)} ${results[name].toFixed(0).padStart(6)} µs`);
}
if (process.env.BENCH_JSON) console.log(JSON.stringify(results));
