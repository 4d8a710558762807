// Benchmark peer (e): the demo's user-registration routes in JavaScript with Drizzle ORM on D1 —
// what a Workers developer picks today. Same routes, JSON shapes and status codes as the Rust
// demo (POST /users, GET /users?page&per_page, GET /users/{id}); the schema is created on the
// first request of an isolate, as the demo does.
import { drizzle } from "drizzle-orm/d1";
import { asc, count, eq } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const users = sqliteTable("users", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").notNull().unique(),
});

const SCHEMA =
  "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";
const MAX_BODY = 64 * 1024;
let schemaReady;

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
const error = (status, message) => json({ error: message }, status);

function validate(user) {
  if (user === null || typeof user !== "object" || Array.isArray(user)) return "expected a JSON object";
  for (const key of Object.keys(user)) {
    if (key !== "name" && key !== "email") return `unknown field ${JSON.stringify(key)}`;
  }
  const { name, email } = user;
  if (typeof name !== "string") return "name: expected a string";
  if (typeof email !== "string") return "email: expected a string";
  // eslint-disable-next-line no-control-regex
  if ([...name].length < 1 || [...name].length > 100 || !name.trim() || /[\u0000-\u001f\u007f]/.test(name)) {
    return "name must be 1-100 characters, not blank, without control characters";
  }
  const at = email.lastIndexOf("@");
  if (email.length > 254 || /\s/.test(email) || at < 1 || at === email.length - 1) {
    return "email must look like user@host (at most 254 characters, no whitespace)";
  }
  return null;
}

export default {
  async fetch(request, env) {
    schemaReady ??= env.DB.prepare(SCHEMA).run();
    await schemaReady;
    const db = drizzle(env.DB);
    const url = new URL(request.url);
    const segments = url.pathname.replace(/^\/+|\/+$/g, "").split("/");

    if (segments.length === 1 && segments[0] === "users") {
      if (request.method === "POST") {
        const raw = await request.text();
        if (raw.length > MAX_BODY) return error(413, `request body larger than ${MAX_BODY} bytes`);
        let body;
        try {
          body = JSON.parse(raw);
        } catch (e) {
          return error(400, `invalid JSON: ${e.message}`);
        }
        const invalid = validate(body);
        if (invalid) return error(400, invalid);
        try {
          const user = await db.insert(users).values({ name: body.name, email: body.email }).returning().get();
          return json(user, 201);
        } catch (e) {
          if (/UNIQUE constraint failed/.test(String(e?.cause?.message ?? e?.message ?? e))) {
            return error(409, `email ${JSON.stringify(body.email)} is already registered`);
          }
          throw e;
        }
      }
      if (request.method === "GET") {
        const page = Number(url.searchParams.get("page") ?? "1");
        const perPage = Number(url.searchParams.get("per_page") ?? "20");
        if (!Number.isInteger(page) || page < 1 || !Number.isInteger(perPage) || perPage < 1 || perPage > 100) {
          return error(400, "page must be >= 1 and per_page between 1 and 100");
        }
        const [items, [{ total }]] = await db.batch([
          db.select().from(users).orderBy(asc(users.id)).limit(perPage).offset((page - 1) * perPage),
          db.select({ total: count() }).from(users),
        ]);
        return json({ items, page, per_page: perPage, total });
      }
      return error(405, "method not allowed; allowed: GET, POST");
    }
    if (segments.length === 2 && segments[0] === "users") {
      const id = Number(segments[1]);
      if (request.method !== "GET") return error(405, "method not allowed (the peer implements GET only)");
      if (!Number.isSafeInteger(id) || id < 1) return error(404, `no user with id ${JSON.stringify(segments[1])}`);
      const user = await db.select().from(users).where(eq(users.id, id)).get();
      return user ? json(user) : error(404, `no user with id ${id}`);
    }
    return error(404, "no such route");
  },
};
