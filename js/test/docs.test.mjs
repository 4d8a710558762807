// Every code block of the docs is tagged and checked (HACKING.md, "The docs' code blocks"):
// - ```js blocks run: each is written to a module that imports the package, and its worker
//   answers requests (CHECKS below names, per block, what it is asked and what it must answer);
// - ```rust blocks are doctests (docs/*.md included in src/lib.rs) or, when they need a Worker,
//   files of examples/hello (whose own tests compare them byte for byte);
// - ```toml blocks parse with wrangler's config reader;
// - ```sh blocks name npm scripts, files and cargo targets that exist.
// Needs js/dist (scripts/build-js.sh).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { FakeKv } from "./fake-kv.mjs";
import { fakeCtx } from "./helpers.mjs";
import { ROOT, docFiles, parse, read } from "./markdown.mjs";

const LANGS = new Set(["rust", "js", "toml", "sh", "text"]);

// The blocks of every doc file, with their number among the file's blocks of that language.
const ALL = docFiles().flatMap((file) => {
  const count = new Map();
  return parse(read(file)).blocks.map((block) => {
    const n = (count.get(block.lang) ?? 0) + 1;
    count.set(block.lang, n);
    return { ...block, file, key: `${file} ${block.lang} #${n}` };
  });
});
const where = (b) => `${b.file}:${b.line}`;

// Modules of the js blocks live under target/ so that "gluebind" and "hono" resolve from the
// repository's node_modules, as they would in a worker project.
const TMP = join(ROOT, "target", "docs-blocks");
after(() => rmSync(TMP, { recursive: true, force: true }));

let loaded = 0;
async function load(block, { prelude = "", epilogue = "" } = {}) {
  mkdirSync(TMP, { recursive: true });
  loaded += 1;
  const path = join(TMP, `block${loaded}.mjs`);
  writeFileSync(path, `${prelude}${block.text}${epilogue}`);
  return import(pathToFileURL(path).href);
}

/** Sends one request to a module worker; teardown (ctx.waitUntil) is awaited before returning. */
async function send(worker, method, path, { body, env = {} } = {}) {
  const ctx = fakeCtx();
  const init = { method, headers: body === undefined ? {} : { "content-type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await worker.fetch(new Request(`http://docs.test${path}`, init), env, ctx);
  await ctx.settle();
  const text = await response.text();
  return { status: response.status, json: text === "" ? null : JSON.parse(text) };
}

// What each ```js block is asked, and what it must answer. Keyed by file and the block's number
// among that file's js blocks: a new or moved block fails until it has an entry here.
const CHECKS = {
  // The README's worker: an id from the query string, the rows of that user.
  "README.md js #1": async (block) => {
    const worker = (await load(block)).default;
    assert.deepEqual(await send(worker, "GET", "/?id=1"), { status: 200, json: [] });
  },

  // docs/models.md: the model worker — insert, a paged list, a row, a 404.
  "docs/models.md js #1": async (block) => {
    const worker = (await load(block)).default;
    const created = await send(worker, "POST", "/", { body: { name: "Ada", email: "ada@x.org" } });
    assert.equal(created.status, 201);
    assert.deepEqual({ ...created.json, id: undefined }, { id: undefined, name: "Ada", email: "ada@x.org" });
    const page = await send(worker, "GET", "/users?page=1&per_page=10");
    assert.equal(page.status, 200);
    assert.equal(page.json.total, 1);
    assert.deepEqual(page.json.items, [created.json]);
    assert.deepEqual(await send(worker, "GET", `/users/${created.json.id}`), { status: 200, json: created.json });
    const missing = await send(worker, "GET", `/users/${created.json.id + 1}`);
    assert.equal(missing.status, 404);
    assert.match(missing.json.error, /users/);
  },

  // docs/migrations.md: a worker whose init runs the migrations on a new database: the table is
  // created in the model's shape, the step recorded as created, and the model writes bio.
  "docs/migrations.md js #1": async (block) => {
    const worker = (await load(block)).default;
    const created = await send(worker, "POST", "/", { body: { email: "ada@x.org" } });
    assert.equal(created.status, 201);
    assert.deepEqual({ ...created.json, id: undefined }, { id: undefined, email: "ada@x.org", bio: null });
    const applied = await send(worker, "GET", "/");
    assert.deepEqual(
      applied.json.map((a) => [a.position, a.name, a.how]),
      [[1, "0001_users_bio", "created"]],
    );
  },

  // docs/isolation.md: a fragment (db.transaction in an event); run inside an event, with the
  // model, the database and the error class it names. Five notes go in, the sixth is refused.
  "docs/isolation.md js #1": async (block) => {
    const { addNote, ApiError } = await load(block, {
      prelude: `import { Gluebind, createAll, defineModel } from "gluebind";
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
const Note = defineModel("notes", {
  id: { type: "INTEGER", primaryKey: true },
  user_id: { type: "INTEGER" },
  body: { type: "TEXT" },
});
const db = new Gluebind({ url: "memory://", init: async (s) => { await createAll(s, [Note]); await s.commit(); } });
export { ApiError };
export const addNote = (userId, body) => db.run(async () => {
`,
      epilogue: "return note;\n});\n",
    });
    for (let i = 1; i <= 5; i += 1) {
      assert.deepEqual({ ...(await addNote(7, `note ${i}`)), id: 0 }, { id: 0, user_id: 7, body: `note ${i}` });
    }
    await assert.rejects(addNote(7, "a sixth"), (err) => err instanceof ApiError && err.status === 409);
    assert.equal((await addNote(8, "another user's first")).user_id, 8);
  },

  // js/README.md: the first worker, as in the README.
  "js/README.md js #1": async (block) => {
    const worker = (await load(block)).default;
    assert.deepEqual(await send(worker, "GET", "/?id=7"), { status: 200, json: [] });
  },

  // js/README.md, "Keeping data: kv://": a fragment; run with its import, then used in an event
  // whose env holds a KV namespace (an in-memory stand-in), and in one whose env lacks it.
  "js/README.md js #2": async (block) => {
    const { db, ConfigError } = await load(block, {
      prelude: 'import { Gluebind, ConfigError } from "gluebind";\n',
      epilogue: "export { db, ConfigError };\n",
    });
    await assert.rejects(
      db.run(() => db.session(), { env: {} }),
      (err) => err instanceof ConfigError && /GLUEBIND_KV/.test(err.message) && /kv_namespaces/.test(err.message),
    );
    const env = { GLUEBIND_KV: new FakeKv() };
    await db.run(
      async () => {
        const session = db.session();
        await session.executeBatch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
        await session.execute("INSERT INTO notes VALUES ($1, $2)", [1, "kept in KV"]);
        await session.commit();
      },
      { env },
    );
    assert.ok(env.GLUEBIND_KV.keys().length > 0, "the commit wrote to the namespace");
    const rows = await db.run(() => db.session().execute("SELECT body FROM notes"), { env });
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ body: "kept in KV" }]);
  },

  // js/README.md, "Keeping data: kv:// or do://": the do:// worker exports the database
  // object's class; an event whose env lacks the namespace fails naming the binding and its fix.
  // (The object itself runs under wrangler dev: tests/e2e on do://.)
  "js/README.md js #3": async (block) => {
    const mod = await load(block);
    assert.equal(typeof mod.GluebindDatabase, "function", "GluebindDatabase is exported");
    const { GluebindDatabase } = await import("gluebind");
    assert.equal(mod.GluebindDatabase, GluebindDatabase);
    const ctx = fakeCtx();
    await assert.rejects(
      mod.default.fetch(new Request("http://docs.test/"), {}, ctx),
      (err) => /GLUEBIND_DB/.test(err.message) && /durable_objects/.test(err.message),
    );
    await ctx.settle();
  },

  // js/README.md, "Hono": the middleware puts the session at c.var.session.
  "js/README.md js #4": async (block) => {
    const app = (await load(block)).default;
    assert.deepEqual(await send(app, "GET", "/users/1"), { status: 404, json: { error: "not found" } });
  },

  // js/README.md, "Models": the Hono app on models.
  "js/README.md js #5": async (block) => {
    const app = (await load(block)).default;
    const ada = await send(app, "POST", "/users", { body: { name: "Ada", email: "ada@x.org" } });
    assert.equal(ada.status, 201);
    assert.deepEqual({ name: ada.json.name, email: ada.json.email, bio: ada.json.bio }, { name: "Ada", email: "ada@x.org", bio: null });
    const list = await send(app, "GET", "/users?page=1&per_page=500");
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, { items: [ada.json], page: 1, pages: 1, total: 1 });
    assert.deepEqual(await send(app, "GET", `/users/${ada.json.id}`), { status: 200, json: ada.json });
    const found = await send(app, "GET", "/search?prefix=A");
    assert.deepEqual(found, { status: 200, json: [ada.json] });
    const patched = await send(app, "PATCH", `/users/${ada.json.id}`, { body: { bio: "Analyst" } });
    assert.deepEqual(patched, { status: 200, json: { ...ada.json, bio: "Analyst" } });
    assert.deepEqual((await send(app, "GET", "/search?prefix=A")).json, [], "bio is no longer NULL");
    const missing = await send(app, "GET", `/users/${ada.json.id + 1}`);
    assert.equal(missing.status, 404);
    // The bulk verbs.
    assert.deepEqual(await send(app, "POST", "/users/forget-bios"), { status: 200, json: { cleared: 1 } });
    assert.deepEqual((await send(app, "GET", "/search?prefix=A")).json, [ada.json], "bio is NULL again");
    assert.deepEqual(await send(app, "DELETE", "/users?name=Bob"), { status: 200, json: { deleted: 0 } });
    assert.deepEqual(await send(app, "DELETE", "/users?name=Ada"), { status: 200, json: { deleted: 1 } });
    assert.equal((await send(app, "GET", `/users/${ada.json.id}`)).status, 404);
  },

  // js/README.md, "Transactions": 20 concurrent requests for one owner — exactly five 201s.
  "js/README.md js #6": async (block) => {
    const worker = (await load(block)).default;
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(worker, "GET", "/?owner=7")));
    assert.equal(answers.filter((a) => a.status === 201).length, 5, JSON.stringify(answers.map((a) => a.status)));
    assert.ok(answers.every((a) => a.status === 201 || a.status === 409));
    assert.equal((await send(worker, "GET", "/?owner=8")).status, 201, "another owner's first");
  },
};

describe("the docs' code blocks", () => {
  it("every block is tagged with a language that is checked", () => {
    const bad = ALL.filter((b) => !LANGS.has(b.lang)).map((b) => `${where(b)}: \`\`\`${b.info}`);
    assert.deepEqual(bad, [], `tag these blocks (${[...LANGS].join(", ")})`);
  });

  for (const block of ALL.filter((b) => b.lang === "js")) {
    it(`${block.key} (${where(block)}) runs and answers`, async () => {
      const check = CHECKS[block.key];
      assert.ok(check, `no check for ${block.key} in js/test/docs.test.mjs; its first line: ${block.text.split("\n")[0]}`);
      await check(block);
    });
  }

  it("every js check has its block", () => {
    const keys = new Set(ALL.map((b) => b.key));
    assert.deepEqual(Object.keys(CHECKS).filter((k) => !keys.has(k)), []);
  });

  it("every rust block is a doctest or a file of examples/hello", () => {
    const lib = readFileSync(join(ROOT, "src/lib.rs"), "utf8");
    const hello = ["worker_app.rs", "binds.rs", "handlers.rs"].map((f) => readFileSync(join(ROOT, "examples/hello/src", f), "utf8"));
    const bad = [];
    for (const b of ALL.filter((b) => b.lang === "rust")) {
      const ignored = b.info.split(/[,\s]/).some((a) => a === "ignore" || a === "no_run");
      const doctest = b.file.startsWith("docs/") && lib.includes(`include_str!("../${b.file}")`);
      if (b.file === "README.md" || ignored) {
        if (!hello.includes(b.text)) bad.push(`${where(b)}: not a file of examples/hello/src`);
      } else if (!doctest) {
        bad.push(`${where(b)}: ${b.file} is not included as a doctest in src/lib.rs`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it("every toml block parses (wrangler's config reader)", async () => {
    const { experimental_readRawConfig: readRawConfig } = await import("wrangler");
    mkdirSync(TMP, { recursive: true });
    for (const b of ALL.filter((b) => b.lang === "toml")) {
      const path = join(TMP, "wrangler.toml");
      writeFileSync(path, b.text);
      assert.doesNotThrow(() => readRawConfig({ config: path }), `${where(b)}`);
    }
  });

  it("every sh block names scripts, files and cargo targets that exist", () => {
    const scripts = JSON.parse(read("package.json")).scripts;
    const cargo = read("Cargo.toml");
    const bad = [];
    for (const b of ALL.filter((b) => b.lang === "sh")) {
      for (const line of b.text.split("\n")) {
        const command = line.replace(/#.*/, "");
        for (const [, name] of command.matchAll(/npm run ([\w:-]+)/g)) {
          if (!(name in scripts)) bad.push(`${where(b)}: no npm script ${name}`);
        }
        for (const [, file] of command.matchAll(/\b(?:bash|node(?: --test(?: --test-concurrency=\d+)?)?) ([\w./-]+\.(?:sh|mjs|js)|[\w./-]+\/)/g)) {
          if (!existsSync(join(ROOT, file))) bad.push(`${where(b)}: no file ${file}`);
        }
        if (!/\bcargo\b/.test(command)) continue;
        for (const [, name] of command.matchAll(/--test (\w+)/g)) {
          if (!existsSync(join(ROOT, `tests/${name}.rs`)) && !existsSync(join(ROOT, `tests/${name}/main.rs`))) {
            bad.push(`${where(b)}: no test target ${name}`);
          }
        }
        for (const [, name] of command.matchAll(/--bench (\w+)/g)) {
          if (!cargo.includes(`name = "${name}"`)) bad.push(`${where(b)}: no bench target ${name}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });
});
