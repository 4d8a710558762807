// A typed example of the whole public API; `tsc --noEmit -p js/test/types` runs in `npm test`.
// Lines marked @ts-expect-error must NOT type-check (the types are strict enough).
import {
  Condition,
  ConfigError,
  ConflictError,
  DriftError,
  Gluebind,
  GluebindError,
  MigrationError,
  MultipleResultsError,
  NotFoundError,
  OutsideScopeError,
  Pagination,
  SessionClosedError,
  SqlError,
  StorageError,
  UniqueError,
  and,
  appliedMigrations,
  createAll,
  defineModel,
  dropAll,
  migrate,
  migration,
  migrationChecksums,
  not,
  or,
  type AppliedMigration,
  type CommitInfo,
  type Committed,
  type ConditionOf,
  type Migration,
  type MigrationReport,
  type ModelChange,
  type ErrorCode,
  type ModelRow,
  type RecordedQuery,
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
    const next: number | bigint = await session.nextId("users");
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
  if (err instanceof NotFoundError) return err.table.length > 0 ? err.status : 404;
  if (err instanceof MultipleResultsError) return err.table.length > 0 ? 500 : 500;
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
  // The worker's own bindings, typed beside the session.
  const url: string = c.env.DATABASE_URL;
  // @ts-expect-error: no such binding
  c.env.NOPE;
  return user ? c.json({ ...user, url }) : c.json({ error: "not found" }, 404);
});

const chained = new Hono().use(gluebind(db)).get("/", (c) => c.text(c.var.session.id));

// Models: the row type is inferred from the columns.
const UserModel = defineModel("users", {
  id: { type: "INTEGER", primaryKey: true },
  name: { type: "TEXT", index: true },
  email: { type: "TEXT", unique: true },
  bio: { type: "TEXT", nullable: true },
  joined: { type: "TIMESTAMP" },
});
type UserRow = ModelRow<typeof UserModel>;
const Cache = defineModel("cache", { key: { type: "TEXT", primaryKey: true }, data: { type: "BYTEA" } }, { bindKey: "cache" });

async function models(session: Session): Promise<Response> {
  await createAll(session, [UserModel, Cache], { bindKey: null });
  const row: UserRow = await UserModel.insert(session, { id: await UserModel.nextId(session), name: "Ada", email: "a@x", joined: new Date() });
  const bio: string | null = row.bio;
  const joined: Date = row.joined;
  const id: number = row.id;
  const nextKey: number = await UserModel.nextId(session);
  // @ts-expect-error: an INTEGER column reads as a number unless it says bigint: true
  const notBig: bigint = row.id;
  const Snowflake = defineModel("snowflakes", {
    id: { type: "INTEGER", primaryKey: true, bigint: true },
    parent: { type: "UINT64", nullable: true, bigint: true },
    n: { type: "INT128" },
  });
  const flake: ModelRow<typeof Snowflake> = await Snowflake.getOr404(session, 2n ** 60n);
  const big: bigint = flake.id;
  const parent: bigint | null = flake.parent;
  const small: number = flake.n;
  const nextBig: bigint = await Snowflake.nextId(session);
  // @ts-expect-error: a bigint column does not read as a number
  const notSmall: number = flake.id;
  // @ts-expect-error: bigint: true is for INTEGER, INT128, UINT64 and UINT128 only
  defineModel("narrow", { id: { type: "INTEGER", primaryKey: true }, n: { type: "INT32", bigint: true } });
  const Tagged = defineModel("tags", { name: { type: "TEXT", primaryKey: true } });
  const tagSeq: number = await Tagged.nextId(session);
  // @ts-expect-error: a NOT NULL column is required
  await UserModel.insert(session, { id: 1, name: "Ada", joined: "2024-01-02T03:04:05" });
  // @ts-expect-error: no such column
  UserModel.query(session).filterBy({ nope: 1 });
  // @ts-expect-error: a number for a TEXT column
  UserModel.query(session).filterBy({ name: 1 });
  // @ts-expect-error: like needs a TEXT column
  UserModel.query(session).filter("id", "like", "1%");
  // @ts-expect-error: isNull on a NOT NULL column
  UserModel.query(session).filter("email", "isNull");
  // @ts-expect-error: unknown operator
  UserModel.query(session).filter("id", "between", 1);
  // @ts-expect-error: no such column to order by
  UserModel.query(session).orderBy("-nope");
  const q = UserModel.query(session)
    .filterBy({ bio: null, email: "a@x" })
    .filter("id", "in", [1, 2n])
    .filter("name", "like", "A%")
    .filter("bio", "isNotNull")
    .filter("joined", "ge", "2024-01-01T00:00:00")
    .orderBy("name", "-id")
    .limit(10)
    .offset(5);
  const all: UserRow[] = await q.all();
  const first: UserRow | null = await q.first();
  const one: UserRow = await q.one();
  const n: number = await q.count();
  const got: UserRow = await UserModel.getOr404(session, 1);
  const maybe: UserRow | null = await q.get(2n);
  const page: Pagination<UserRow> = await UserModel.query(session)
    .orderBy("id")
    .paginate({ page: 1, perPage: 20, maxPerPage: 100, errorOut: false });
  const fromArgs = await UserModel.query(session).paginateArgs(new URLSearchParams("page=2"), { maxPerPage: 100 });
  const counted: number = page.total + fromArgs.total;
  // Uncounted pages: no total, no page count; whether a row follows.
  const uncounted: Pagination<UserRow, null> = await UserModel.query(session).orderBy("id").paginate({ count: false });
  const noTotal: null = uncounted.total;
  const noPages: null = uncounted.pages;
  const pageCount: number = new Pagination({ items: [1], page: 1, perPage: 10, total: 50 }).pages;
  const more: boolean = uncounted.hasNext && uncounted.more;
  const maybeCounted = await UserModel.query(session).paginate({ count: Math.random() > 0.5 });
  // @ts-expect-error: a page that may be uncounted has a total that may be null
  const sure: number = maybeCounted.total;
  const nums: (number | null)[] = page.iterPages({ leftEdge: 1 });
  const next: number | null = fromArgs.nextNum;
  const updated: UserRow = await UserModel.update(session, 1, { email: "b@x", bio: null });
  // @ts-expect-error: a NOT NULL column cannot be set to null
  await UserModel.update(session, 1, { name: null });
  // @ts-expect-error: a text key for an INTEGER primary key
  await UserModel.get(session, "1");
  await UserModel.delete(session, 1);
  // Bulk verbs of a query: how many rows they deleted / matched.
  const renamed: number = await UserModel.query(session).filterBy({ bio: null }).update({ name: "x", bio: null });
  const deleted: number = await UserModel.query(session).filter("id", "in", [1, 2]).delete();
  // @ts-expect-error: a bulk update cannot set the primary key
  await UserModel.query(session).update({ id: 2 });
  // @ts-expect-error: a NOT NULL column cannot be set to null
  await UserModel.query(session).update({ name: null });
  // @ts-expect-error: no such column
  await UserModel.query(session).update({ nope: 1 });
  const entry = await Cache.getOr404(session, "k");
  const data: Uint8Array = entry.data;
  await dropAll(session, [UserModel, Cache]);
  return Response.json({ bio, joined, id: String(id), all, first, one, n, got, maybe, page, nums, next, updated, renamed, deleted, data });
}

// @ts-expect-error: unknown column type
defineModel("t", { id: { type: "VARCHAR", primaryKey: true } });

// Conditions: column handles, and/or/not; like only on TEXT, IS NULL only on nullable columns.
function conditions(session: Session): Promise<UserRow[]> {
  const young: ConditionOf<typeof UserModel> = UserModel.c.id.lt(10);
  const plain: Condition = young;
  const either = or(UserModel.c.bio.isNull(), UserModel.c.name.like("A%"));
  const both = and(young, either).and(UserModel.c.email.ne("x@y")).or(not(UserModel.c.bio.eq(null)));
  // @ts-expect-error: like needs a TEXT column
  UserModel.c.id.like("1%");
  // @ts-expect-error: email is NOT NULL
  UserModel.c.email.isNull();
  // @ts-expect-error: a number for a TEXT column
  UserModel.c.name.eq(1);
  // @ts-expect-error: no such column
  UserModel.c.nope;
  // @ts-expect-error: a condition on another model
  UserModel.query(session).filter(Cache.c.key.eq("k"));
  return UserModel.query(session).filter(both.not()).filter("id", "gt", 0).filter(young).all().then((rows) => (plain ? rows : []));
}

// The unit of work: session.add / get / delete / flush.
async function unitOfWork(session: Session): Promise<UserRow | null> {
  const added = session.add(UserModel, { id: 7, name: "Gus", email: "g@x", joined: new Date() });
  const again: number = added.id;
  // @ts-expect-error: a NOT NULL column is missing
  session.add(UserModel, { id: 8, name: "H", joined: new Date() });
  const user: UserRow | null = await session.get(UserModel, 1);
  if (user) {
    user.name = "Renamed"; // written at the next flush
    session.delete(UserModel, user);
  }
  session.delete(Cache, { key: "k" });
  // @ts-expect-error: the primary key is missing
  session.delete(UserModel, { name: "x" });
  // @ts-expect-error: a text key for an INTEGER primary key
  await session.get(UserModel, "1");
  await session.flush();
  return again > 0 ? user : null;
}

// Commit hooks.
const hooked = new Gluebind({
  url: "memory://",
  autoflush: true,
  beforeCommit: (session: Session, changes: ModelChange[]) => {
    if (changes.some((c) => c.operation === "delete" && c.table === "users")) throw new Error(`no deletes in ${session.id}`);
  },
  afterCommit: ({ session, info, changes }: Committed) => console.log(session.id, info.rowsWritten, changes.length),
});

/** Binds and query recording. */
async function debugAids(): Promise<RecordedQuery[]> {
  const traced = new Gluebind({ url: "memory://", binds: { cache: "memory://cache" }, recordQueries: true });
  const session = traced.openSession();
  const cache: Session = session.forBind("cache");
  const key: string | undefined = cache.bindKey;
  const ran: RecordedQuery[] = session.recordedQueries();
  const ms: number = ran[0]?.durationMs ?? 0;
  session.close();
  return [...traced.recentQueries(), ...ran].filter(() => key !== undefined || ms >= 0);
}

/** Migrations. */
async function migrations(session: Session): Promise<string[]> {
  const steps: Migration[] = [
    migration("0001_users_bio").addColumn("users", "bio TEXT NULL"),
    migration("0002_fill").data("fill bios", async (s: Session) => {
      await s.execute("UPDATE users SET bio = ''");
    }),
  ];
  const report: MigrationReport = await migrate(session, steps, [UserModel]);
  const applied: AppliedMigration[] = await appliedMigrations(session);
  const how: "applied" | "created" | undefined = applied[0]?.how;
  // @ts-expect-error: a column definition is one string
  migration("0003").addColumn("users", "bio", "TEXT");
  try {
    await migrate(session, steps, []);
  } catch (err) {
    if (err instanceof DriftError) return [err.table];
    if (err instanceof MigrationError) return [err.step];
  }
  return [...report.applied, ...report.newer, ...migrationChecksums(steps), String(report.created), String(how)];
}

export default { fetch: db.bind((req: Request, env: Env, ctx: ExecutionContext) => app.fetch(req, env, ctx)) };
export { migrations, housekeeping, status, chained, models, debugAids, conditions, unitOfWork, hooked };
