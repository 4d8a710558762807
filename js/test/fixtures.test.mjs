// The shared model fixtures (tests/fixtures/models/*.json in the repository), run through the
// package's public API. The Rust core runs the same files natively
// (src/model/dynamic/fixtures.rs), so the SQL both write, the rows they read, the pages they
// count and the errors they give cannot drift apart. Format: tests/fixtures/models/README.md.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { and, createAll, defineModel, dropAll, not, or } from "gluebind";
import { memoryDb } from "./helpers.mjs";

const dir = new URL("../../tests/fixtures/models/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();

/** A condition of a query description as the builder makes it: column handles, and/or/not. */
function condition(model, desc) {
  if (Array.isArray(desc)) {
    const [column, op, ...value] = desc;
    return model.c[column][op](...value);
  }
  if (desc.and) return and(...desc.and.map((d) => condition(model, d)));
  if (desc.or) return or(...desc.or.map((d) => condition(model, d)));
  return not(condition(model, desc.not));
}

/** The query a fixture's description describes, built with the public builder. */
function query(model, session, desc = {}) {
  let q = model.query(session);
  for (const f of desc.filters ?? []) q = Array.isArray(f) ? q.filter(...f) : q.filter(condition(model, f));
  if (desc.filterBy !== undefined) q = q.filterBy(desc.filterBy);
  if (desc.orders) q = q.orderBy(...desc.orders);
  if (desc.limit !== undefined && desc.limit !== null) q = q.limit(desc.limit);
  if (desc.offset !== undefined && desc.offset !== null) q = q.offset(desc.offset);
  return q;
}

const plain = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

async function run(state, step) {
  const { session, models, objects } = state;
  const model = models[step.model];
  switch (step.do) {
    case "createAll":
      return createAll(session, Object.values(models));
    case "dropAll":
      return dropAll(session, Object.values(models));
    case "commit":
      return session.commit();
    case "rollback":
      return session.rollback();
    case "flush":
      return session.flush();
    case "insert":
      return { row: await model.insert(session, step.values) };
    case "insertMany":
      for (let n = step.from; n <= step.to; n++) {
        const values = Object.fromEntries(
          Object.entries(step.values).map(([k, v]) => [k, typeof v === "string" ? v.replaceAll("{n}", String(n)) : v]),
        );
        await model.insert(session, { [model.primaryKey]: n, ...values });
      }
      return undefined;
    case "update":
      return { row: await model.update(session, step.key, step.changes) };
    case "delete":
      return model.delete(session, step.key);
    case "bulkDelete":
      return { count: await query(model, session, step.query).delete() };
    case "bulkUpdate":
      return { count: await query(model, session, step.query).update(step.changes) };
    case "query": {
      const q = query(model, session, step.query);
      switch (step.run ?? "all") {
        case "all":
          return { rows: await q.all(), key: model.primaryKey };
        case "get":
          return { row: await q.get(step.key) };
        case "getOr404":
          return { row: await q.getOr404(step.key) };
        case "count":
          return { count: await q.count() };
        default:
          return { row: await q[step.run]() };
      }
    }
    case "paginate": {
      const q = query(model, session, step.query);
      const page = step.args === undefined ? await q.paginate(step.options) : await q.paginateArgs(step.args, step.options);
      return { page, rows: page.items, key: model.primaryKey };
    }
    case "add": {
      const object = structuredClone(step.object);
      assert.equal(session.add(model, object), object, "add returns the object it tracks");
      if (step.as) objects[step.as] = object;
      return undefined;
    }
    case "get": {
      const found = await session.get(model, step.key);
      if (step.as && found !== null) {
        if (step.same) assert.equal(found, objects[step.same], `get gives the tracked ${step.same}`);
        if (step.notSame) assert.notEqual(found, objects[step.notSame], `get no longer gives ${step.notSame}`);
        objects[step.as] = found;
      }
      return { row: found };
    }
    case "set":
      Object.assign(objects[step.object], step.values);
      return undefined;
    case "remove":
      return session.delete(model, objects[step.object]);
    case "define":
      return defineModel(step.table, step.columns, step.options);
    default:
      throw new Error(`unknown step ${step.do}`);
  }
}

function check(step, outcome, thrown, ran) {
  if (step.sql !== undefined) assert.deepEqual(ran.map((q) => q.sql), step.sql, "SQL");
  if (step.params !== undefined) assert.deepEqual(ran.map((q) => q.params), step.params, "params");
  if (step.error !== undefined) {
    assert.ok(thrown !== undefined, `expected the error ${JSON.stringify(step.error)}`);
    assert.equal(thrown.code, step.error.code, `error code (${thrown.message})`);
    if (step.error.message !== undefined) assert.equal(thrown.message, step.error.message);
    if (step.error.includes !== undefined) assert.ok(thrown.message.includes(step.error.includes), thrown.message);
    return;
  }
  if (thrown !== undefined) throw thrown;
  if (step.row !== undefined) assert.deepEqual(plain(outcome.row), step.row, "row");
  if (step.rows !== undefined) assert.deepEqual(plain(outcome.rows), step.rows, "rows");
  if (step.ids !== undefined) assert.deepEqual(outcome.rows.map((r) => r[outcome.key]), step.ids, "ids");
  if (step.count !== undefined) assert.equal(outcome.count, step.count, "count");
  for (const [key, want] of Object.entries(step.page ?? {})) {
    const got = key === "iterPages" ? outcome.page.iterPages() : outcome.page[key];
    assert.deepEqual(got, want, `page.${key}`);
  }
}

describe("shared model fixtures (tests/fixtures/models)", () => {
  for (const file of files) {
    it(file, async () => {
      const fixture = JSON.parse(readFileSync(new URL(file, dir), "utf8"));
      const binds = Object.fromEntries((fixture.binds ?? []).map((key) => [key, `memory://fixture_${process.pid}_${file}_${key}`]));
      const options = { binds, recordQueries: true };
      if (fixture.autoflush !== undefined) options.autoflush = fixture.autoflush;
      const db = memoryDb(options);
      const models = {};
      for (const [name, def] of Object.entries(fixture.models ?? {})) models[name] = defineModel(def.table, def.columns, def.options);
      const state = { session: db.openSession(), models, objects: {} };
      let seen = 0;
      for (const [i, step] of fixture.steps.entries()) {
        let outcome;
        let thrown;
        try {
          outcome = await run(state, step);
        } catch (err) {
          thrown = err;
        }
        const recorded = state.session.recordedQueries();
        const ran = recorded.slice(seen);
        seen = recorded.length;
        try {
          check(step, outcome, thrown, ran);
        } catch (err) {
          err.message = `${file}, step ${i + 1} ${JSON.stringify(step)}: ${err.message}`;
          throw err;
        }
      }
      state.session.close();
    });
  }
});
