// A typed example of the whole public API; `tsc --noEmit -p js/test/types` runs in `npm test`.
// Lines marked @ts-expect-error must NOT type-check (the types are strict enough).
import {
  ConfigError,
  ConflictError,
  Gluebind,
  GluebindError,
  OutsideScopeError,
  SessionClosedError,
  SqlError,
  StorageError,
  UniqueError,
  type CommitInfo,
  type ErrorCode,
  type Rows,
  type Session,
  type Stats,
} from "gluebind";
import { gluebind, type GluebindEnv } from "gluebind/hono";
import { Hono } from "hono";

interface Env {
  DATABASE_URL: string;
  GLUEBIND_DEBUG?: string;
}

interface User {
  id: number;
  name: string;
  email: string;
}

const db = new Gluebind<Env>({
  url: (env) => env.DATABASE_URL,
  teardown: "rollback",
  int64: "auto",
  timestamps: "date",
  init: async (session) => {
    await session.executeBatch("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE)");
    await session.commit();
  },
});

// @ts-expect-error: unknown teardown policy
new Gluebind({ url: "memory://", teardown: "flush" });
// @ts-expect-error: url is required
new Gluebind({});

// A plain module worker.
export const worker = {
  fetch: db.bind(async (request: Request, env: Env, ctx: ExecutionContext) => {
    const session: Session = db.session();
    const id = new URL(request.url).searchParams.get("id") ?? "1";
    const rows: Rows<User> = await session.execute<User>("SELECT * FROM users WHERE id = $1", [Number(id)]);
    const first: User | undefined = rows[0];
    const columns: readonly string[] = rows.columns;
    const affected: number = rows.affected;
    if (rows.command === "SELECT" && first) console.log(first.email, columns, affected, env.DATABASE_URL);
    // Parameters of every supported type; positional `?` too.
    await session.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", [
      1, 2n, "x", true, null, new Date(), new Uint8Array([1]),
    ]);
    // @ts-expect-error: objects are not parameters
    await session.execute("SELECT $1", [{ a: 1 }]);
    const next: number | bigint = session.nextId("users");
    const info: CommitInfo = await session.commit();
    const version: number | null = info.version;
    await session.rollback();
    const batch: Rows[] = await session.executeBatch("SELECT 1; SELECT 2");
    const sid: string = session.id;
    const flags: boolean = session.isDirty || session.isClosed;
    const current: string | null = db.sessionId();
    ctx.waitUntil(Promise.resolve());
    return Response.json({ rows, next: String(next), version, batch: batch.length, sid, flags, current });
  }),
};

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  props: any;
}

// run() with a failure predicate, stats, engine, openSession.
async function housekeeping(): Promise<void> {
  const n: number = await db.run(async () => (await db.session().execute("SELECT 1 AS one")).length, {
    failed: (count) => count === 0,
  });
  const stats: Stats = db.stats();
  const engine: string | null = db.engine;
  const inScope: boolean = db.inScope;
  const setup = db.openSession();
  setup.close();
  console.log(n, stats.registriesCreated, stats.sessionsActive, engine, inScope);
}

// Errors: classes with stable codes and fields.
function status(err: unknown): number {
  if (err instanceof UniqueError) return err.column === "email" ? 409 : 409;
  if (err instanceof ConflictError) return err.table.length > 0 ? 409 : 409;
  if (err instanceof OutsideScopeError || err instanceof SessionClosedError) return 500;
  if (err instanceof SqlError || err instanceof ConfigError || err instanceof StorageError) return 500;
  if (err instanceof GluebindError) {
    const code: ErrorCode = err.code;
    return code === "CONFLICT" ? 409 : 500;
  }
  return 500;
}

// Hono: typed c.var.session, both ways of declaring it.
const app = new Hono<GluebindEnv & { Bindings: Env }>();
app.use(gluebind(db));
app.get("/users/:id", async (c) => {
  const session: Session = c.var.session;
  const [user] = await session.execute<User>("SELECT * FROM users WHERE id = $1", [Number(c.req.param("id"))]);
  // @ts-expect-error: no such variable
  c.var.nope;
  return user ? c.json(user) : c.json({ error: "not found" }, 404);
});

const chained = new Hono().use(gluebind(db)).get("/", (c) => c.text(c.var.session.id));

export default { fetch: db.bind((req: Request, env: Env, ctx: ExecutionContext) => app.fetch(req, env, ctx)) };
export { housekeeping, status, chained };
