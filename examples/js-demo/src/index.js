// The JavaScript demo: the seed's user-registration app (contract: docs/demo.md) on the npm
// package "gluebind" and Hono. Every error is {"error": "..."} with its status.
import { Hono } from "hono";
import { ConflictError, UniqueError, appliedMigrations, panicForTesting } from "gluebind";
import { gluebind } from "gluebind/hono";
import { db, debug } from "./db.js";
import { etagOf } from "./etag.js";
import { listEvents, recordEvent } from "./events.js";
import { addNote, listNotes } from "./notes.js";
import { sessionIdFromAnotherModule } from "./probe.js";
import {
  ApiError,
  createUser,
  decode,
  deleteUser,
  getUser,
  listUsers,
  parseI64,
  parsePaging,
  updateUser,
  userId,
  usersAfter,
} from "./users.js";

/** Largest accepted request body (bytes); larger bodies get 413. */
const MAX_BODY = 64 * 1024;

const app = new Hono({ strict: false });

function executionCtx(c) {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

// The stats route runs in a scope (like every event) but opens no session of its own, so it is
// registered before the middleware that opens one.
app.get("/__gluebind/stats", (c) =>
  db.run(
    () => {
      if (!debug(c.env)) return c.json({ error: "no such route" }, 404);
      const s = db.stats();
      return c.json({
        registries_created: s.registriesCreated,
        sessions_opened: s.sessionsOpened,
        sessions_removed: s.sessionsRemoved,
        sessions_active: s.sessionsActive,
        engine: db.engine,
        // The last statements of ended sessions: SQL, params, duration, rows.
        queries: db.recentQueries().map((q) => ({
          session: q.session,
          sql: q.sql,
          params: q.params,
          duration_ms: q.durationMs,
          rows: q.rows,
          ok: q.ok,
        })),
      });
    },
    { ctx: executionCtx(c), env: c.env },
  ),
);

// Every other route works in the event's session: c.var.session.
app.use(gluebind(db));

// With debug on, every response carries the event's session id and how many statements it ran.
app.use(async (c, next) => {
  await next();
  if (debug(c.env)) {
    const id = db.sessionId();
    if (id !== null) {
      c.res.headers.set("x-gluebind-session", id);
      c.res.headers.set("x-gluebind-queries", String(db.session().recordedQueries().length));
    }
  }
});

/** Reads the body, refusing more than MAX_BODY bytes with 413. */
async function body(c) {
  const tooLarge = () => new ApiError(413, `request body larger than ${MAX_BODY} bytes`);
  const length = c.req.header("content-length");
  if (length !== undefined && !(Number(length) <= MAX_BODY)) throw tooLarge();
  // No body at all (GET-like): empty, as arrayBuffer() gives.
  const stream = c.req.raw.body;
  if (stream === null) return new Uint8Array(0);
  // A chunked body has no Content-Length: read it chunk by chunk and stop past the limit, so at
  // most MAX_BODY plus one chunk is ever held (buffering all of it can exhaust the isolate).
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY) {
      // Tell the runtime we want no more of it (errors of the cancel itself do not matter).
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

const methodNotAllowed = (allow) => new ApiError(405, `method not allowed; allowed: ${allow}`);

/** A user's JSON with its ETag (the version a later PATCH may name in If-Match). */
async function userJson(c, user, status = 200) {
  c.header("etag", await etagOf(user));
  return c.json(user, status);
}

app.post("/users", async (c) => {
  const input = decode(await body(c), { required: ["name", "email"] });
  return userJson(c, await createUser(c.var.session, input), 201);
});

/** A list answer: {"items", "page", "per_page", "total"}. */
const listJson = (c, { items, page, perPage, total }) => c.json({ items, page, per_page: perPage, total });

/** The paging of a list request (400 for bad page or per_page). */
const paging = (c) => parsePaging(new URL(c.req.url).search);

app.get("/users", async (c) => {
  const query = new URL(c.req.url).searchParams;
  const email = c.req.query("email");
  const { perPage } = paging(c);
  if (query.has("after")) {
    // A keyset page: {"items", "per_page", "next"}, no total (see docs/demo.md).
    if (query.has("page")) throw new ApiError(400, "page and after exclude each other: page through with after=<next>");
    const raw = query.get("after");
    const after = parseI64(raw);
    if (after === null) throw new ApiError(400, `after must be an integer, got ${JSON.stringify(raw)}`);
    const { items, next } = await usersAfter(c.var.session, after, perPage, email);
    return c.json({ items, per_page: perPage, next });
  }
  return listJson(c, await listUsers(c.var.session, paging(c), email));
});

app.all("/users", () => {
  throw methodNotAllowed("GET, POST");
});

app.get("/users/:id", async (c) => userJson(c, await getUser(c.var.session, userId(c.req.param("id")))));

app.patch("/users/:id", async (c) => {
  const id = userId(c.req.param("id"));
  const patch = decode(await body(c), { optional: ["name", "email"] });
  return userJson(c, await updateUser(c.var.session, id, patch, c.req.header("if-match")));
});

app.delete("/users/:id", async (c) => {
  await deleteUser(c.var.session, userId(c.req.param("id")));
  return c.body(null, 204);
});

app.all("/users/:id", () => {
  throw methodNotAllowed("GET, PATCH, DELETE");
});

app.post("/users/:id/notes", async (c) => c.json(await addNote(userId(c.req.param("id")), await body(c)), 201));

app.get("/users/:id/notes", async (c) => c.json({ items: await listNotes(c.var.session, userId(c.req.param("id"))) }));

app.all("/users/:id/notes", () => {
  throw methodNotAllowed("GET, POST");
});

// 202: validated and accepted, stored in the completion callback (write-behind).
app.post("/events", async (c) => c.json(await recordEvent(c.var.session, await body(c)), 202));

app.get("/events", async (c) => listJson(c, await listEvents(c.var.session, paging(c))));

app.all("/events", () => {
  throw methodNotAllowed("GET, POST");
});

// Measures panic recovery (tests/e2e/panic.test.mjs): the panic throws here (a 500), and the
// next event runs on a fresh wasm instance with a new registry.
app.post("/__gluebind/panic", (c) => {
  if (!debug(c.env)) throw new ApiError(404, "no such route");
  panicForTesting();
  return c.json({ error: "unreachable" }, 500);
});

app.get("/__gluebind/probe", (c) => {
  if (!debug(c.env)) throw new ApiError(404, "no such route");
  // Two look-ups in two modules: the middleware's (c.var.session) and probe.js's own.
  return c.json({ first: c.var.session.id, second: sessionIdFromAnotherModule() });
});

// The migration steps this database ran (or was created with), in order.
app.get("/__gluebind/migrations", async (c) => {
  if (!debug(c.env)) throw new ApiError(404, "no such route");
  const applied = await appliedMigrations(c.var.session);
  return c.json({
    applied: applied.map((a) => ({ position: a.position, name: a.name, checksum: a.checksum, applied_at: a.appliedAt, how: a.how })),
  });
});

app.notFound((c) => c.json({ error: "no such route" }, 404));

app.onError((err, c) => {
  if (err instanceof ApiError) return c.json({ error: err.message }, err.status);
  if (err instanceof UniqueError && err.column === "email") return c.json({ error: "email already registered" }, 409);
  if (err instanceof UniqueError || err instanceof ConflictError) return c.json({ error: err.message }, 409);
  console.error("unhandled error:", err);
  return c.json({ error: `internal error: ${err.message}` }, 500);
});

export default app;
// The Durable Object class of DATABASE_URL = "do://GLUEBIND_DB" (the do:// engine's database).
export { GluebindDatabase } from "gluebind";
