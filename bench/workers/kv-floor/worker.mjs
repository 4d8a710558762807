// Benchmark floor (f0): the KV calls of one kv:// `POST /users` commit, made straight from
// JavaScript with nothing else — what local KV alone costs under `wrangler dev`, measured
// beside the demo so that the rest of the demo's figure is gluebind's own. The shape follows
// src/storage/kv/commit.rs for a one-row insert with a UNIQUE column: put the commit record,
// list the journal, one bulk get (the check), the row and its unique entry at once, and the
// record's delete after the response (ctx.waitUntil).
const PREFIX = "gluebind/v1/";

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "POST") return new Response("ok");
    const body = await request.json();
    const stamp = Math.floor(Math.random() * 2 ** 53).toString(16).padStart(16, "0");
    const id = Math.floor(Math.random() * 2 ** 53);
    const kv = env.GLUEBIND_KV;
    const row = `${PREFIX}r/users/${id}`;
    const unique = `${PREFIX}u/users/email/${JSON.stringify(body.email)}`;
    const value = JSON.stringify({ v: stamp, row: [id, body.name, body.email] });
    const record = `${PREFIX}c/${stamp}`;
    await kv.put(record, JSON.stringify({ s: stamp, w: [{ k: row, put: value }, { k: unique, put: String(id) }] }), {
      metadata: { at: Date.now(), h: [row.length, unique.length] },
    });
    await kv.list({ prefix: `${PREFIX}c/` });
    await kv.get([row, unique]);
    await Promise.all([
      kv.put(row, value, { metadata: { v: stamp, row: [id, body.name, body.email] } }),
      kv.put(unique, String(id), { metadata: { v: stamp } }),
    ]);
    ctx.waitUntil(kv.delete(record));
    return Response.json({ id, ...body }, { status: 201 });
  },
};
