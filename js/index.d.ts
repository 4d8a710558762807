// Types of the npm package "gluebind" (the whole public API; see README.md).

/** What a column value is in JavaScript (see the value mapping in README.md). */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

/** One row: column name → value. */
export type Row = Record<string, Value>;

/** What a parameter may be: `$1, $2, …` or `?` placeholders bind these. */
export type Param = null | boolean | number | bigint | string | Date | Uint8Array | ArrayBuffer;

/** The statement kind behind a result. */
export type Command = "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "SCHEMA";

/**
 * The result of one statement: the rows (an empty array for statements without rows), plus
 * non-enumerable `columns`, `affected` and `command` (so `Response.json(rows)` sends rows only).
 */
export type Rows<T = Row> = T[] & {
  /** Column names in select order (empty unless `command` is `"SELECT"`). */
  readonly columns: readonly string[];
  /** Rows inserted, updated or deleted (0 for queries and schema statements). */
  readonly affected: number;
  readonly command: Command;
};

/** What `commit()` did. */
export interface CommitInfo {
  /** Engine version created by the commit, or null when there was nothing to commit. */
  version: number | null;
  rowsWritten: number;
  tablesChanged: number;
}

/** One unit of work: SQL with bound parameters, read-your-writes, atomic commit. */
export interface Session {
  /** The session id (unique per isolate; what the demo sends as `x-gluebind-session`). */
  readonly id: string;
  /** True while writes are pending. */
  readonly isDirty: boolean;
  /** True once the session was removed (its event ended) or closed. */
  readonly isClosed: boolean;
  /**
   * Runs exactly one statement. Placeholders are `$1, $2, …`, or `?` / `?1` (one style per
   * statement); numbers and strings bind like SQL literals (converted to the column's type).
   * @throws SqlError, UniqueError, SessionClosedError
   */
  execute<T = Row>(sql: string, params?: readonly Param[]): Promise<Rows<T>>;
  /** Runs a script of statements without parameters; one result per statement. */
  executeBatch(sql: string): Promise<Rows[]>;
  /**
   * Commits pending writes atomically: the durable path — commit before responding.
   * @throws ConflictError, UniqueError (nothing applied; pending writes discarded: retry)
   */
  commit(): Promise<CommitInfo>;
  /**
   * Write-behind: validates pending writes now (throws ConflictError / UniqueError, discarding
   * them, when they already conflict) and commits them in the event's `ctx.waitUntil` teardown.
   * Not durable when it returns: other sessions see the writes after the response, and they
   * are lost (logged) if they then conflict, the handler throws, or the callback is cut off.
   * For append-only logs and counters; use `commit()` for anything a client relies on.
   */
  commitDeferred(): void;
  /** True when teardown will commit the pending writes (after `commitDeferred()`). */
  readonly isDeferred: boolean;
  /** Discards pending writes. */
  rollback(): Promise<void>;
  /**
   * The next value of the engine-wide ID sequence `name` (unique across sessions, never
   * rolled back). A number, or a bigint beyond `Number.MAX_SAFE_INTEGER` (option `int64`).
   */
  nextId(name: string): number | bigint;
  /** Closes a session from `openSession()`, discarding pending writes. */
  close(): void;
}

/** `ctx` of a module worker's fetch handler (only `waitUntil` is used). */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

export interface GluebindOptions<Env = any> {
  /**
   * `"memory://"`, `"memory://NAME"`, or `"kv://BINDING"` (the Workers KV namespace bound as
   * `BINDING` in wrangler.toml's `[[kv_namespaces]]`, taken from the first event's env), or a
   * function of the Worker's env returning one.
   */
  url: string | ((env: Env) => string);
  /**
   * What teardown does with writes a handler left uncommitted: `"rollback"` (default) or
   * `"commit"` (write-behind after the response; a conflict is then only logged).
   */
  teardown?: "rollback" | "commit";
  /** Autoflush of the session factory (default true). */
  autoflush?: boolean;
  /**
   * 64/128-bit integers out: `"auto"` (default) gives a number when it is a safe integer and a
   * bigint beyond, `"bigint"` always a bigint, `"string"` always a decimal string.
   */
  int64?: "auto" | "bigint" | "string";
  /** TIMESTAMP out: `"date"` (default; a UTC Date, milliseconds) or `"string"` (ISO, all digits). */
  timestamps?: "date" | "string";
  /**
   * Runs once per isolate before the first event is served, in a session of its own (create
   * tables here; commit in it). A failure is retried by the next event.
   */
  init?: (session: Session) => unknown | Promise<unknown>;
}

export interface RunOptions<T, Env = any> {
  /** Teardown goes to `ctx.waitUntil`; without it, run() awaits teardown before returning. */
  ctx?: ExecutionContextLike;
  /** The Worker's env (for a `url` function, and a kv:// URL's KV namespace binding). */
  env?: Env;
  /** Decides whether a normally returned result counts as a failure (pending writes rolled back). */
  failed?: (result: T) => boolean;
}

/** The registry's counters. */
export interface Stats {
  /** Registries created in this isolate: 1 when the app creates its Gluebind once. */
  registriesCreated: number;
  scopesBegun: number;
  sessionsOpened: number;
  sessionsRemoved: number;
  sessionsActive: number;
  teardownCommits: number;
  teardownRollbacks: number;
  teardownErrors: number;
}

/**
 * One database for the isolate. Create it once, at module scope; needs the `nodejs_als` (or
 * `nodejs_compat`) compatibility flag.
 * @throws ConfigError for a bad URL or option, or when AsyncLocalStorage is unavailable.
 */
export declare class Gluebind<Env = any> {
  constructor(options: GluebindOptions<Env>);
  /** Wraps a fetch handler: a scope per call, teardown in `ctx.waitUntil`. */
  bind<Req = Request, Ctx extends ExecutionContextLike | undefined = ExecutionContextLike, R = Response>(
    handler: (request: Req, env: Env, ctx: Ctx) => R | Promise<R>,
  ): (request: Req, env: Env, ctx: Ctx) => Promise<R>;
  /** Runs `fn` in a new scope (what `bind` does per event; the Hono middleware uses it). */
  run<T>(fn: () => T | Promise<T>, options?: RunOptions<T, Env>): Promise<T>;
  /**
   * The current event's session: the same one anywhere in the event.
   * @throws OutsideScopeError outside a scope, or after the event's teardown.
   */
  session(): Session;
  /** The current event's session id if it opened a session, else null (opens none). */
  sessionId(): string | null;
  /** True inside a scope. */
  readonly inScope: boolean;
  /** A session outside any scope (start-up work); commit and `close()` it yourself. */
  openSession(): Session;
  /** The registry's counters. @throws ConfigError before the registry exists (url function). */
  stats(): Stats;
  /** The engine URL (`"memory://"`, `"kv://GLUEBIND_KV"`), or null before the registry exists. */
  readonly engine: string | null;
}

export type ErrorCode =
  | "CONFIG"
  | "SQL"
  | "UNIQUE"
  | "CONFLICT"
  | "OUTSIDE_SCOPE"
  | "SESSION_CLOSED"
  | "STORAGE";

/** Every error gluebind throws; `message` is the Rust core's. */
/**
 * Panics inside gluebind's wasm, to test panic recovery from a debug-only route: the call
 * throws, and the next event runs on a new wasm instance with a new registry (memory:// data
 * is gone, as in a Rust worker). Never call it in production.
 */
export declare function panicForTesting(): void;

export declare class GluebindError extends Error {
  readonly code: ErrorCode;
  static readonly code: string;
}
export declare class ConfigError extends GluebindError {
  readonly code: "CONFIG";
}
export declare class SqlError extends GluebindError {
  readonly code: "SQL";
}
export declare class UniqueError extends GluebindError {
  readonly code: "UNIQUE";
  readonly table: string;
  /** The column, or `"PRIMARY KEY"`. */
  readonly column: string;
  readonly value: string;
}
export declare class ConflictError extends GluebindError {
  readonly code: "CONFLICT";
  readonly table: string;
  readonly detail: string;
}
export declare class OutsideScopeError extends GluebindError {
  readonly code: "OUTSIDE_SCOPE";
  readonly reason: string;
}
export declare class SessionClosedError extends GluebindError {
  readonly code: "SESSION_CLOSED";
  readonly sessionId: string;
}
export declare class StorageError extends GluebindError {
  readonly code: "STORAGE";
}
