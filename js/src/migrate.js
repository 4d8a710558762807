// Migrations: ordered, named steps that change tables already holding data, applied once per
// database and recorded in it (table gluebind_migrations) — the Rust core's gluebind::migrate
// (src/migrate/), reached through the wasm `Migrator`. This file is the typed builder only.

import { ConfigError } from "./errors.js";
import { checkSession, handleOf } from "./model.js";
import { wasm } from "./wasm.js";

/** One named step; its operations run in order and commit together with its record. */
export class Migration {
  /** @type {string} */
  name;
  /** @type {unknown[][]} */
  ops = [];

  constructor(name) {
    if (typeof name !== "string" || name === "") throw new ConfigError("migration(name) needs a non-empty string name");
    this.name = name;
  }

  #push(op) {
    this.ops.push(op);
    return this;
  }

  /** `ALTER TABLE table ADD COLUMN definition` (`"bio TEXT NULL"`; NOT NULL needs a DEFAULT). */
  addColumn(table, definition) {
    return this.#push(["addColumn", table, definition]);
  }

  /** `ALTER TABLE table DROP COLUMN column`. */
  dropColumn(table, column) {
    return this.#push(["dropColumn", table, column]);
  }

  /** `ALTER TABLE table RENAME COLUMN from TO to`. */
  renameColumn(table, from, to) {
    return this.#push(["renameColumn", table, from, to]);
  }

  /** `ALTER TABLE from RENAME TO to`. */
  renameTable(from, to) {
    return this.#push(["renameTable", from, to]);
  }

  /** `DROP TABLE IF EXISTS table`. */
  dropTable(table) {
    return this.#push(["dropTable", table]);
  }

  /** Any one SQL statement, as written. */
  sql(statement) {
    return this.#push(["sql", statement]);
  }

  /**
   * A data step: `fn(session)` reads and writes with the step's session (do not commit: the
   * step commits its writes with its record). `label` goes into the step's checksum.
   */
  data(label, fn) {
    if (typeof fn !== "function") throw new ConfigError(`migration ${JSON.stringify(this.name)}: data(label, fn) needs a function`);
    return this.#push(["data", label, fn]);
  }
}

/** A new step named `name` (unique in its list; a sortable prefix such as `0002_` helps). */
export function migration(name) {
  return new Migration(name);
}

function migrator(migrations, models) {
  if (!Array.isArray(migrations) || !migrations.every((m) => m instanceof Migration)) {
    throw new ConfigError("migrate(session, migrations, models): migrations must be an array of migration() steps");
  }
  if (!Array.isArray(models)) throw new ConfigError("migrate(session, migrations, models): models must be an array");
  const m = new (wasm().Migrator)();
  try {
    for (const step of migrations) m.step(step.name, step.ops);
    for (const model of models) m.addModel(handleOf(model, "migrate(session, migrations, models)"));
  } catch (err) {
    m.free();
    throw err;
  }
  return m;
}

/**
 * Brings the session's database up to date: on a new database creates the models' tables and
 * records every step as done; otherwise runs each step not recorded yet, in order, each in one
 * commit with its record; then createAll(models) and the drift check. Resolves to
 * `{ applied: string[], created: boolean, newer: string[] }` (`newer`: steps the database ran
 * that these migrations lack — a newer deploy's).
 */
export async function migrate(session, migrations, models) {
  checkSession(session, "migrate(session, migrations, models)");
  if (models === undefined) {
    throw new ConfigError("migrate(session, migrations, models): pass the models (an empty array if none): a new database is created from them");
  }
  const m = migrator(migrations, models);
  try {
    return await m.run(session);
  } finally {
    m.free();
  }
}

/** The checksum each step records, in order. */
export function migrationChecksums(migrations) {
  const m = migrator(migrations, []);
  try {
    return m.checksums();
  } finally {
    m.free();
  }
}

/**
 * The models' tables as JSON (table → columns): commit it beside your steps; `nextMigration`
 * compares the models with it (the `gluebind-migrations` command writes both).
 */
export function migrationSnapshot(models) {
  const m = migrator([], models);
  try {
    return m.snapshot();
  } finally {
    m.free();
  }
}

/**
 * The step named `name` that takes the tables of `snapshot` (what migrationSnapshot wrote
 * when the last step was written) to `models` as they are now: `{ js, rust, notes }` — the
 * builder call in JavaScript and Rust (empty strings when nothing changed), and what no
 * builder call resolves alone.
 */
export function nextMigration(name, models, snapshot) {
  if (typeof name !== "string" || name === "") throw new ConfigError("nextMigration(name, models, snapshot) needs a step name");
  if (typeof snapshot !== "string") throw new ConfigError("nextMigration(name, models, snapshot): snapshot is the JSON text migrationSnapshot returned");
  const m = migrator([], models);
  try {
    return m.nextStep(name, snapshot);
  } finally {
    m.free();
  }
}

/** The steps the session's database recorded: `{ position, name, checksum, appliedAt, how }[]`. */
export function appliedMigrations(session) {
  checkSession(session, "appliedMigrations(session)");
  return wasm().appliedMigrations(session);
}
