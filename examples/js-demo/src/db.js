// The isolate's database: one Gluebind, created once at module scope and imported by every
// module that needs the event's session (never a "current session" of our own).
import { Gluebind, migrate } from "gluebind";
import { MIGRATIONS } from "./migrations.js";
import { MODELS } from "./models.js";

export const db = new Gluebind({
  // Bindings and variables arrive with the first event: the registry is created then.
  url: (env) => env.DATABASE_URL ?? "memory://",
  // Debug aid: every statement with its parameters, duration and rows.
  recordQueries: (env) => debug(env),
  // Serializable by default; the bench compares ISOLATION = "snapshot" (read when the first
  // event creates the registry, as url is a function).
  isolation: (env) => (env?.ISOLATION === "snapshot" ? "snapshot" : "serializable"),
  // Once per isolate before the first event: the migrations this database has not run, then
  // createAll and the check of every model against its table (flask db upgrade + create_all).
  init: async (session) => {
    await migrate(session, MIGRATIONS, MODELS);
  },
});

/** True when GLUEBIND_DEBUG is "1". */
export function debug(env) {
  return env?.GLUEBIND_DEBUG === "1";
}
