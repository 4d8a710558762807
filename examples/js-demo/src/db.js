// The isolate's database: one Gluebind, created once at module scope and imported by every
// module that needs the event's session (never a "current session" of our own).
import { Gluebind } from "gluebind";
import { EVENTS_SCHEMA } from "./events.js";

/** The schema, created once per isolate before the first event (the `create_all` analog). */
export const SCHEMA = `CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE
)`;

export const db = new Gluebind({
  // Bindings and variables arrive with the first event: the registry is created then.
  url: (env) => env.DATABASE_URL ?? "memory://",
  init: async (session) => {
    await session.executeBatch(SCHEMA);
    await session.executeBatch(EVENTS_SCHEMA);
    await session.commit();
  },
});

/** True when GLUEBIND_DEBUG is "1". */
export function debug(env) {
  return env?.GLUEBIND_DEBUG === "1";
}
