// Benchmark floor (g0): `POST /users` as one RPC from a JavaScript worker to a JavaScript
// Durable Object that runs one SQLite INSERT (UNIQUE email) — the least a commit through a
// Durable Object costs under `wrangler dev`, with no ORM, no validation of a read set and no
// copy of the data in the worker. Compare do:// with it as kv:// is compared with its floor.
import { DurableObject } from "cloudflare:workers";

export class FloorDatabase extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)",
    );
  }

  insert(name, email) {
    try {
      return this.ctx.storage.sql.exec("INSERT INTO users (name, email) VALUES (?, ?) RETURNING id, name, email", name, email).one();
    } catch (e) {
      if (/UNIQUE constraint failed/.test(String(e?.message ?? e))) return null;
      throw e;
    }
  }
}

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/users" && request.method === "POST") {
      let body;
      try {
        body = JSON.parse(await request.text());
      } catch (e) {
        return json({ error: `invalid JSON: ${e.message}` }, 400);
      }
      const stub = env.FLOOR_DB.get(env.FLOOR_DB.idFromName("default"));
      const user = await stub.insert(String(body.name), String(body.email));
      return user ? json(user, 201) : json({ error: "email already registered" }, 409);
    }
    return new Response("ok");
  },
};
