// The demo's previous deploy, for tests/e2e/migrations.test.mjs: its tables as the first
// deploy created them (notes without created_at, with createAll: no migrations yet), and one
// route that writes users and notes in that shape. The test runs it under the demo's worker
// name and bindings, on the demo's persisted state, then starts the demo on the same state.
import { Gluebind, createAll, defineModel } from "gluebind";

export { GluebindDatabase } from "gluebind";

const User = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT" },
  email: { type: "TEXT", unique: true },
});
const Event = defineModel("events", {
  id: { type: "INTEGER", primaryKey: true },
  kind: { type: "TEXT" },
  data: { type: "TEXT" },
});
const Note = defineModel("notes", {
  id: { type: "INTEGER", primaryKey: true },
  user_id: { type: "INTEGER" },
  body: { type: "TEXT" },
});

const db = new Gluebind({
  url: (env) => env.DATABASE_URL,
  init: async (session) => {
    await createAll(session, [User, Event, Note]);
    await session.commit();
  },
});

export default {
  fetch: db.bind(async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "POST" || pathname !== "/previous/seed") return Response.json({ error: "no such route" }, { status: 404 });
    // Two users with two notes each, by the sequences the demo goes on with.
    const s = db.session();
    const out = { users: [], notes: [] };
    for (let u = 0; u < 2; u += 1) {
      const user = await User.insert(s, { id: await User.nextId(s), name: `Before ${u}`, email: `before-${u}-${Date.now()}@x.test` });
      out.users.push(user);
      for (let n = 0; n < 2; n += 1) {
        out.notes.push(await Note.insert(s, { id: await Note.nextId(s), user_id: user.id, body: `old note ${n}` }));
      }
    }
    await s.commit();
    return Response.json(out, { status: 201 });
  }),
};
