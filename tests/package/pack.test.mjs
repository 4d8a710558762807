// The npm package as users get it: `npm pack js`, install the tarball into a fresh worker
// project outside the repository, run it under `wrangler dev` and call it over HTTP. Needs the
// package built first (`npm run build:js`); never builds anything itself.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT, json, startWorker } from "../e2e/harness.mjs";

const run = promisify(execFile);
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

const WORKER = `
import { Gluebind, OutsideScopeError, UniqueError, SqlError } from "gluebind";
import { gluebind } from "gluebind/hono"; // the subpath resolves without hono installed

// Module scope, string URL: the registry is created at start-up (global scope, where Workers
// forbid random values: the session-id prefix must be drawn later, inside a request).
const db = new Gluebind({
  url: "memory://",
  init: async (session) => {
    await session.executeBatch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, big INT64, at TIMESTAMP, data BYTEA)");
    await session.commit();
  },
});

let outside = null;
try { db.session(); } catch (err) { outside = err instanceof OutsideScopeError ? err.code : String(err); }

export default {
  fetch: db.bind(async (request) => {
    const session = db.session();
    const url = new URL(request.url);
    if (url.pathname === "/insert") {
      const id = await session.nextId("items");
      try {
        await session.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [
          id, url.searchParams.get("name"), 2n ** 62n + BigInt(id), new Date(Date.UTC(2024, 0, id)), new Uint8Array([id, 255]),
        ]);
        await session.commit();
      } catch (err) {
        return Response.json({ error: err.code }, { status: err instanceof UniqueError ? 409 : 500 });
      }
      return Response.json({ id }, { status: 201 });
    }
    if (url.pathname === "/items") {
      const rows = await session.execute("SELECT * FROM items ORDER BY id");
      return Response.json(rows.map((r) => ({
        id: r.id, name: r.name, big: r.big.toString(), bigType: typeof r.big,
        at: r.at.toISOString(), data: [...r.data],
      })));
    }
    if (url.pathname === "/errors") {
      let sql = null;
      try { await session.execute("SELEC 1"); } catch (err) { sql = err instanceof SqlError ? err.code : String(err); }
      return Response.json({ outside, sql, session: session.id, same: db.session() === session, hono: typeof gluebind });
    }
    return Response.json({ stats: db.stats(), engine: db.engine });
  }),
};
`;

async function project(dir, tarball, { flags }) {
  await mkdir(path.join(dir, "src"), { recursive: true });
  await writeFile(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "gluebind-pack-test", private: true, type: "module", dependencies: { gluebind: `file:${tarball}` } }, null, 2),
  );
  await writeFile(path.join(dir, "src", "index.js"), WORKER);
  await writeFile(
    path.join(dir, "wrangler.toml"),
    [
      'name = "gluebind-pack-test"',
      'main = "src/index.js"',
      'compatibility_date = "2025-06-01"',
      flags ? `compatibility_flags = ${JSON.stringify(flags)}` : "",
      "[vars]",
      'DATABASE_URL = "memory://"',
    ].join("\n"),
  );
  await run(NPM, ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], { cwd: dir });
}

describe("npm pack → install → wrangler dev", () => {
  let tmp;
  let tarball;
  let files;

  before(async () => {
    if (!existsSync(path.join(REPO_ROOT, "js", "dist", "gluebind_bg.wasm"))) {
      throw new Error("js/dist is not built: run `npm run build:js` first");
    }
    tmp = await mkdtemp(path.join(os.tmpdir(), "gluebind-pack-"));
    const { stdout } = await run(NPM, ["pack", "--json", "--pack-destination", tmp, "--loglevel=error"], {
      cwd: path.join(REPO_ROOT, "js"),
    });
    const [info] = JSON.parse(stdout);
    tarball = path.join(tmp, info.filename);
    files = info.files.map((f) => f.path);
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("the tarball holds the wasm, both bindings, the sources and the types — no tests", () => {
    for (const f of [
      "package.json",
      "README.md",
      "index.d.ts",
      "hono.d.ts",
      "src/workerd.js",
      "src/node.js",
      "src/gluebind.js",
      "src/errors.js",
      "src/model.js",
      "src/hono.js",
      "dist/gluebind.js",
      "dist/gluebind.node.js",
      "dist/gluebind_bg.wasm",
    ]) {
      assert.ok(files.includes(f), `${f} missing from the tarball: ${files.join(", ")}`);
    }
    assert.ok(files.some((f) => f.startsWith("dist/snippets/")), "wasm-bindgen snippets missing");
    assert.deepEqual(files.filter((f) => /(^|\/)(test|bench)\//.test(f)), []);
  });

  describe("a worker project using the installed tarball", () => {
    let worker;
    before(async () => {
      const dir = path.join(tmp, "app");
      await project(dir, tarball, { flags: ["nodejs_als"] });
      worker = await startWorker({ config: path.join(dir, "wrangler.toml") });
    });
    after(async () => {
      await worker?.stop();
    });

    it("serves requests: sessions, commit, UNIQUE, values round-trip", async () => {
      assert.equal((await json(worker.url, "/insert?name=a", { method: "POST" })).status, 201);
      assert.equal((await json(worker.url, "/insert?name=b", { method: "POST" })).status, 201);
      const dup = await json(worker.url, "/insert?name=a", { method: "POST" });
      assert.equal(dup.status, 409);
      assert.deepEqual(dup.body, { error: "UNIQUE" });
      const items = await json(worker.url, "/items");
      assert.equal(items.status, 200);
      assert.deepEqual(items.body, [
        { id: 1, name: "a", big: String(2n ** 62n + 1n), bigType: "bigint", at: "2024-01-01T00:00:00.000Z", data: [1, 255] },
        { id: 2, name: "b", big: String(2n ** 62n + 2n), bigType: "bigint", at: "2024-01-02T00:00:00.000Z", data: [2, 255] },
      ]);
    });

    it("errors are the package's classes; db.session() is the same within an event", async () => {
      const res = await json(worker.url, "/errors");
      assert.equal(res.status, 200);
      assert.equal(res.body.outside, "OUTSIDE_SCOPE");
      assert.equal(res.body.sql, "SQL");
      assert.equal(res.body.same, true);
      assert.equal(res.body.hono, "function");
      // A random per-isolate prefix, not the fallback used when randomness is unavailable.
      assert.match(res.body.session, /^[0-9a-f]{8}-\d+$/);
      assert.doesNotMatch(res.body.session, /^f0{7}-/);
    });

    it("one registry; every event's session removed after it", async () => {
      let stats;
      for (let i = 0; i < 50; i++) {
        stats = (await json(worker.url, "/stats")).body.stats;
        if (stats.sessionsActive <= 1) break; // this request's own session
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(stats.registriesCreated, 1);
      assert.equal(stats.sessionsActive, 1, JSON.stringify(stats));
      assert.equal(stats.sessionsRemoved, stats.sessionsOpened - 1, JSON.stringify(stats));
    });
  });

  it("without the nodejs_als flag, start-up fails with gluebind's explanation", async () => {
    const dir = path.join(tmp, "no-als");
    await project(dir, tarball, { flags: null });
    await assert.rejects(startWorker({ config: path.join(dir, "wrangler.toml") }), (err) => {
      assert.match(err.message, /ConfigError: gluebind needs AsyncLocalStorage/);
      assert.match(err.message, /nodejs_als/);
      return true;
    });
  });
});
