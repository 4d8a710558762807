// Migrations from JavaScript: the same runner as Rust's (gluebind::migrate), driven through the
// package's builder — a new database gets the models' tables with every step recorded, an old
// one runs the steps it lacks (data steps call their function with the step's session), and
// drift or a changed step throws DriftError / MigrationError before anything is written.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  ConfigError,
  DriftError,
  Gluebind,
  MigrationError,
  appliedMigrations,
  createAll,
  defineModel,
  migrate,
  migration,
  migrationChecksums,
} from "gluebind";
import { FakeKv } from "./fake-kv.mjs";
import { memoryDb } from "./helpers.mjs";

const UserV1 = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  email: { type: "TEXT", unique: true },
});
const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  email: { type: "TEXT", unique: true },
  created_at: { type: "TEXT" },
  handle: { type: "TEXT", nullable: true },
});

const steps = [
  migration("0001_users_created_at").addColumn("users", "created_at TEXT NOT NULL DEFAULT 'before'"),
  migration("0002_handles")
    .addColumn("users", "handle TEXT NULL")
    .data("handle from email", async (session) => {
      for (const row of await session.execute("SELECT id, email FROM users")) {
        await session.execute("UPDATE users SET handle = $1 WHERE id = $2", [row.email.split("@")[0], row.id]);
      }
    }),
];

/** Runs fn(session) in a scope of db (teardown awaited). */
const inEvent = (db, env, fn) => db.run(() => fn(db.session()), { env });

async function seedV1(db, env) {
  await inEvent(db, env, async (s) => {
    await migrate(s, [], [UserV1]);
    for (const id of [1, 2]) await UserV1.insert(s, { id, email: `u${id}@x` });
    await s.commit();
  });
}

for (const [engine, make] of [
  ["memory://", () => ({ db: memoryDb(), env: undefined })],
  ["kv://", () => ({ db: new Gluebind({ url: "kv://GLUEBIND_KV" }), env: { GLUEBIND_KV: new FakeKv() } })],
]) {
  describe(`migrations on ${engine}`, () => {
    it("an old database runs the missing steps once; old rows read in the new shape", async () => {
      const { db, env } = make();
      await seedV1(db, env);
      const report = await inEvent(db, env, (s) => migrate(s, steps, [User]));
      assert.deepEqual(report, { applied: ["0001_users_created_at", "0002_handles"], created: false, newer: [] });
      const users = await inEvent(db, env, (s) => User.query(s).orderBy("id").all());
      assert.deepEqual(
        users.map((u) => [u.id, u.created_at, u.handle]),
        [
          [1, "before", "u1"],
          [2, "before", "u2"],
        ],
      );
      const again = await inEvent(db, env, (s) => migrate(s, steps, [User]));
      assert.deepEqual(again, { applied: [], created: false, newer: [] });
      const applied = await inEvent(db, env, (s) => appliedMigrations(s));
      assert.deepEqual(
        applied.map((a) => [a.position, a.name, a.how, a.checksum]),
        [
          [1, "0001_users_created_at", "applied", migrationChecksums(steps)[0]],
          [2, "0002_handles", "applied", migrationChecksums(steps)[1]],
        ],
      );
      assert.match(applied[0].appliedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    it("a new database gets the models' tables and every step recorded, not run", async () => {
      const { db, env } = make();
      const report = await inEvent(db, env, (s) => migrate(s, steps, [User]));
      assert.deepEqual(report, { applied: [], created: true, newer: [] });
      const applied = await inEvent(db, env, (s) => appliedMigrations(s));
      assert.deepEqual(
        applied.map((a) => a.how),
        ["created", "created"],
      );
      await inEvent(db, env, async (s) => {
        await User.insert(s, { id: 1, email: "a@x", created_at: "now", handle: null });
        await s.commit();
      });
    });
  });
}

describe("migration errors", () => {
  it("a thrown data step writes nothing of its step and names it", async () => {
    const db = memoryDb();
    await seedV1(db);
    const broken = [
      steps[0],
      migration("0002_boom")
        .addColumn("users", "handle TEXT NULL")
        .data("boom", async (session) => {
          await session.execute("UPDATE users SET handle = 'x'");
          throw new Error("no handles today");
        }),
    ];
    const err = await inEvent(db, undefined, (s) => migrate(s, broken, [])).catch((e) => e);
    assert.ok(err instanceof MigrationError, String(err));
    assert.equal(err.code, "MIGRATION");
    assert.equal(err.step, "0002_boom");
    assert.match(err.message, /data step "boom" failed.*no handles today/);
    const applied = await inEvent(db, undefined, (s) => appliedMigrations(s));
    assert.deepEqual(
      applied.map((a) => a.name),
      ["0001_users_created_at"],
    );
    await assert.rejects(
      inEvent(db, undefined, (s) => s.execute("SELECT handle FROM users")),
      /identifier not found: handle/,
    );
  });

  it("a step changed after it ran is refused", async () => {
    const db = memoryDb();
    await seedV1(db);
    await inEvent(db, undefined, (s) => migrate(s, [steps[0]], []));
    const changed = [migration("0001_users_created_at").addColumn("users", "created_at TEXT NULL")];
    const err = await inEvent(db, undefined, (s) => migrate(s, changed, [])).catch((e) => e);
    assert.ok(err instanceof MigrationError, String(err));
    assert.match(err.message, /must not change once a database ran it/);
  });

  it("a model that does not match its table throws DriftError naming the step", async () => {
    const db = memoryDb();
    await seedV1(db);
    const err = await inEvent(db, undefined, (s) => createAll(s, [User])).catch((e) => e);
    assert.ok(err instanceof DriftError, String(err));
    assert.equal(err.table, "users");
    assert.match(err.message, /the model has column created_at \(TEXT NOT NULL\) that the table lacks/);
    assert.match(err.message, /\.add_column\("users", "created_at TEXT NOT NULL DEFAULT ''"\)/);
  });

  it("checksums are the Rust ones (tests/migrations.rs pins the same values), whatever the whitespace", () => {
    const [a, b] = migrationChecksums([
      migration("0001_users_created_at").addColumn("users", "created_at TEXT NOT NULL DEFAULT 'before 2026'"),
      migration("0002_x").addColumn("users", "bio   TEXT\n NULL").sql("UPDATE users SET bio = ''; "),
    ]);
    assert.equal(a, "fe1b8f71e99154d4");
    assert.equal(b, "1571bd3bad2d4ffd");
  });

  it("an older deploy runs against a database a newer one migrated: the newer steps are reported", async () => {
    const db = memoryDb();
    await seedV1(db);
    await inEvent(db, undefined, (s) => migrate(s, steps, [User]));
    const report = await inEvent(db, undefined, (s) => migrate(s, [steps[0]], []));
    assert.deepEqual(report, { applied: [], created: false, newer: ["0002_handles"] });
  });

  it("bad steps are refused where they are written", async () => {
    assert.throws(() => migration(""), ConfigError);
    assert.throws(() => migration("x").data("label", "not a function"), ConfigError);
    assert.throws(() => migrationChecksums([migration("x").addColumn("users")]), /addColumn needs 2 string argument/);
    assert.throws(() => migrationChecksums(["x"]), /array of migration\(\) steps/);
    await assert.rejects(() => migrate({ execute() {} }, []), /pass the models/);
  });
});

describe("writing the next step from the models' diff", () => {
  it("nextMigration: an added column is an addColumn step, in JS and Rust; notes for what no call resolves", async () => {
    const { migrationSnapshot, nextMigration } = await import("gluebind");
    const before = migrationSnapshot([UserV1]);
    assert.deepEqual(nextMigration("0002_x", [UserV1], before), { js: "", rust: "", notes: [] });
    const next = nextMigration("0002_x", [User], before);
    assert.equal(next.js, `migration("0002_x").addColumn("users", "created_at TEXT NOT NULL DEFAULT ''").addColumn("users", "handle TEXT NULL")`);
    assert.equal(next.rust, `Migration::new("0002_x").add_column("users", "created_at TEXT NOT NULL DEFAULT ''").add_column("users", "handle TEXT NULL")`);
    const retyped = defineModel("users", { id: { type: "INTEGER", primaryKey: true }, email: { type: "INTEGER", unique: true } });
    const notes = nextMigration("0002_x", [retyped], before).notes;
    assert.match(notes[0], /column email is TEXT in the table and INT in the model/);
    assert.match(nextMigration("0002_x", [], before).notes[0], /table users has no model any more/);
    assert.throws(() => nextMigration("0002_x", [User], "{"), /does not read as one/);
  });

  it("the JS demo's models match its committed snapshot (npm run migrations:new -- <name> --js writes both)", async () => {
    const { nextMigration } = await import("gluebind");
    const { MODELS } = await import("../../examples/js-demo/src/models.js");
    const snapshot = readFileSync(new URL("../../examples/js-demo/src/schema.json", import.meta.url), "utf8");
    assert.deepEqual(nextMigration("<next>", MODELS, snapshot), { js: "", rust: "", notes: [] });
  });

  it("gluebind-migrations new: writes the snapshot, then the step of a changed model", () => {
    const dir = new URL("../../target/migrations-cli/", import.meta.url);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const models = new URL("models.js", dir);
    const cli = fileURLToPath(new URL("../src/cli.js", import.meta.url));
    const write = (extra) =>
      writeFileSync(
        models,
        `import { defineModel } from "gluebind";\nexport const MODELS = [defineModel("users", { id: { type: "INTEGER", primaryKey: true }${extra} })];\n`,
      );
    const run = (...args) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
    write("");
    const first = run("new", "0001_x", "--models", fileURLToPath(models));
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /no snapshot yet: wrote .*schema\.json/);
    write(`, bio: { type: "TEXT", nullable: true }`);
    const second = run("new", "0002_bio", "--models", fileURLToPath(models));
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /migration\("0002_bio"\)\.addColumn\("users", "bio TEXT NULL"\)/);
    const third = run("new", "0003_none", "--models", fileURLToPath(models));
    assert.match(third.stdout, /the models match the snapshot/);
    assert.equal(run("new").status, 2, "usage");
  });
});
