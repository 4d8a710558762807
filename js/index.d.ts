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
   * What this session's commits check: `"serializable"` (the default: a commit also fails
   * with ConflictError when something the session read was changed after its snapshot) or
   * `"snapshot"` (writes only). Settable per session.
   */
  isolation: Isolation;
  /**
   * Runs `work(session)`, commits, and when the commit throws ConflictError rolls back and
   * runs both again (jittered backoff), at most `retries` times (default 3). Resolves to what
   * `work` resolved to; rejects with what `work` threw (after a rollback, not retried) or the
   * last error. Side effects outside the session may happen once per attempt.
   * @throws ConfigError when the session has pending writes (commit or roll back first)
   */
  transaction<T>(work: (session: Session) => T | Promise<T>, retries?: number): Promise<T>;
  /**
   * The next value of the engine-wide ID sequence `name` (unique across sessions, never
   * rolled back). A number, or a bigint beyond `Number.MAX_SAFE_INTEGER` (option `int64`).
   */
  nextId(name: string): Promise<number | bigint>;
  /** Closes a session from `openSession()`, discarding pending writes. */
  close(): void;
  /**
   * The session of bind `key` (a key of option `binds`), opened on first use; it commits,
   * rolls back and ends with this session. Models with a `bindKey` use it by themselves.
   * @throws ConfigError for a key without an engine
   */
  forBind(key: string | null): Session;
  /** The bind key of a session from `forBind`; undefined for the default bind's session. */
  readonly bindKey: string | undefined;
  /** The statements this session and its binds ran so far (option `recordQueries`). */
  recordedQueries(): RecordedQuery[];

  // --- The unit of work (README.md, "The unit of work") ---------------------------------------

  /**
   * Tracks `object` as a new row of `model` (SQLAlchemy's `session.add`): it is inserted at the
   * next flush — before the next query (autoflush), at `flush()` or `commit()` — and stays
   * tracked: change its properties and the flush writes them. Returns `object` itself.
   * @throws SqlError for a field that is no column or a missing primary key; UniqueError when
   *   the session tracks an object with this key already.
   */
  add<C extends ColumnSpecs, R, O extends InsertOf<C>>(model: Model<C, R>, object: O): O;
  /**
   * The tracked object of `model` with primary key `key` (the identity map: within a session
   * the same key gives the same object, and a tracked one costs no query), else the row read
   * and tracked from now on; null when no row has the key or it was deleted in this session.
   * Change its properties: the next flush writes the changed columns (an UPDATE of only those).
   */
  get<C extends ColumnSpecs, R>(model: Model<C, R>, key: KeyOf<C>): Promise<R | null>;
  /**
   * Deletes the row of `object` (any object holding the model's primary key: a tracked object
   * or a plain row) at the next flush.
   */
  delete<C extends ColumnSpecs, R>(model: Model<C, R>, object: KeyObject<C>): void;
  /**
   * Writes pending model changes (not a commit): UPDATEs of changed tracked objects in the order
   * they were first tracked, then INSERTs and DELETEs in call order. All or nothing: when one
   * statement fails, the session's data is as before and the objects stay pending.
   */
  flush(): Promise<void>;
}

/** What a commit hook learns about one model object (Flask-SQLAlchemy's `models_committed`). */
export interface ModelChange {
  /** The model's table. */
  table: string;
  /** The primary key (a number, bigint or string as the column holds it). */
  key: unknown;
  operation: "insert" | "update" | "delete";
}

/** What `afterCommit` receives. */
export interface Committed {
  /** The session that committed (it already starts over on the new committed state). */
  session: Session;
  info: CommitInfo;
  /** The model objects committed, in flush order (plain SQL writes are not listed). */
  changes: ModelChange[];
}

/** One statement a session ran (option `recordQueries: true`). */
export interface RecordedQuery {
  /** The session id (`id.bindKey` for a bind's session). */
  session: string;
  /** The SQL text, placeholders as written. */
  sql: string;
  /** The parameters as given. */
  params: unknown[];
  /** Wall-clock milliseconds; on Workers the clock moves only across I/O. */
  durationMs: number;
  /** Rows returned, or rows inserted, updated or deleted. */
  rows: number;
  /** False when the statement failed. */
  ok: boolean;
}

/** `ctx` of a module worker's fetch handler (only `waitUntil` is used). */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

/** See `Session.isolation`. */
export type Isolation = "serializable" | "snapshot";

export interface GluebindOptions<Env = any> {
  /**
   * `"memory://"`, `"memory://NAME"`, `"kv://BINDING"` (the Workers KV namespace bound as
   * `BINDING` in wrangler.toml's `[[kv_namespaces]]`, taken from the first event's env),
   * `"do://BINDING[/NAME]"` (the `GluebindDatabase` Durable Object named NAME, default
   * `default`, of the namespace bound as `BINDING`), or a function of the Worker's env
   * returning one.
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
   * 64/128-bit integers out of `execute`/`query`: `"auto"` (default) gives a number when it is
   * a safe integer and a bigint beyond, `"bigint"` always a bigint, `"string"` always a decimal
   * string. Model rows differ under `"auto"`: a column is a `number` (an error beyond
   * `Number.MAX_SAFE_INTEGER`), or a `bigint` with `bigint: true` in `defineModel`.
   */
  int64?: "auto" | "bigint" | "string";
  /** TIMESTAMP out: `"date"` (default; a UTC Date, milliseconds) or `"string"` (ISO, all digits). */
  timestamps?: "date" | "string";
  /**
   * Runs once per isolate before the first event is served, in a session of its own (create
   * tables here; commit in it). A failure is retried by the next event.
   */
  init?: (session: Session) => unknown | Promise<unknown>;
  /**
   * Bind key → engine URL (Flask-SQLAlchemy's `SQLALCHEMY_BINDS`), e.g. `{ cache: "memory://" }`:
   * models with that `bindKey` run on that engine, in the same session.
   */
  binds?: Record<string, string>;
  /**
   * Record every statement (SQL, params, duration, rows): `session.recordedQueries()`. A
   * function of env (e.g. a debug variable) is called when the registry is created: with the
   * first event's env when `url` is a function or a kv:// or do:// URL.
   */
  recordQueries?: boolean | ((env: Env) => boolean);
  /**
   * Runs in `commit()` after pending model objects are flushed, before anything is committed,
   * with the model changes about to be committed (Flask-SQLAlchemy's
   * `before_models_committed`). Synchronous. A throw refuses the commit: `commit()` rejects with
   * what the hook threw, nothing is committed and the writes stay pending. Objects the hook adds
   * or changes through `session` are committed with the rest.
   */
  beforeCommit?: (session: Session, changes: ModelChange[]) => void;
  /**
   * Runs after a commit wrote something (`models_committed`), teardown commits included; a
   * throw is logged (the commit already happened).
   */
  afterCommit?: (committed: Committed) => void;
  /**
   * `"serializable"` (default): every commit checks that nothing its session read (rows by
   * key, tables scanned) was changed by another commit since its snapshot, so a rule such as
   * "at most 5 notes per user" holds under concurrency (retry with `transaction`).
   * `"snapshot"`: writes only — fewer conflicts, but write skew is possible. A function of env
   * is called when the registry is created (as for `recordQueries`).
   */
  isolation?: Isolation | ((env: Env) => Isolation);
}

export interface TransactionOptions {
  /** Reruns after the first attempt while the commit conflicts (default 3). */
  retries?: number;
}

export interface RunOptions<T, Env = any> {
  /** Teardown goes to `ctx.waitUntil`; without it, run() awaits teardown before returning. */
  ctx?: ExecutionContextLike;
  /** The Worker's env (for a `url` function, and a kv:// or do:// URL's binding). */
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
 * The Durable Object class of `do://BINDING[/NAME]` URLs: one object per database validates and
 * applies every commit (it runs no user code). Export it from the worker's entry module
 * (`export { GluebindDatabase } from "gluebind";`) and declare it in wrangler.toml: a
 * `durable_objects` binding with `class_name = "GluebindDatabase"` and a migration with
 * `new_sqlite_classes = ["GluebindDatabase"]`.
 */
export declare class GluebindDatabase {
  constructor(ctx: { storage: unknown }, env: unknown);
  /** Answers a request of a do:// engine (JSON text in and out): its RPC method. */
  gluebind(body: string): string;
  /** The same requests as HTTP (a POST of the JSON text). */
  fetch(request: Request): Promise<Response>;
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
  /**
   * Runs `work` on the current event's session and commits it, rerunning both while the
   * commit throws ConflictError (`session.transaction`): the way to write a unit of work with
   * a business rule that must hold under concurrency.
   * @throws OutsideScopeError outside a scope; ConfigError for bad options or pending writes.
   */
  transaction<T>(work: (session: Session) => T | Promise<T>, options?: TransactionOptions): Promise<T>;
  /** The current event's session id if it opened a session, else null (opens none). */
  sessionId(): string | null;
  /** True inside a scope. */
  readonly inScope: boolean;
  /** A session outside any scope (start-up work); commit and `close()` it yourself. */
  openSession(): Session;
  /** The registry's counters. @throws ConfigError before the registry exists (url function). */
  stats(): Stats;
  /** The last 50 statements of ended sessions, oldest first (option `recordQueries`). */
  recentQueries(): RecordedQuery[];
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
  | "STORAGE"
  | "NOT_FOUND"
  | "MULTIPLE_RESULTS"
  | "DRIFT"
  | "MIGRATION";

/**
 * Panics inside gluebind's wasm, to test panic recovery from a debug-only route: the call
 * throws, and the next event runs on a new wasm instance with a new registry (memory:// data
 * is gone, as in a Rust worker). Never call it in production.
 */
export declare function panicForTesting(): void;

/** Every error gluebind throws; `message` is the Rust core's. */
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
  /**
   * The taken value as JavaScript has it: a string, a number (a bigint beyond 2^53), a boolean;
   * other types (dates, UUIDs) as their SQL text.
   */
  readonly value: string | number | bigint | boolean;
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
/**
 * No row where the model layer needed one: `getOr404`, `firstOr404`, `one()`, `update` or
 * `delete` of a missing key, a page that does not exist (Flask-SQLAlchemy's `abort(404)`).
 */
export declare class NotFoundError extends GluebindError {
  readonly code: "NOT_FOUND";
  /** The HTTP status to answer with. */
  readonly status: 404;
  readonly table: string;
  /** What was looked for (`"no row with id = 7"`). */
  readonly detail: string;
}
/** `one()` found more than one row (SQLAlchemy's `MultipleResultsFound`). */
export declare class MultipleResultsError extends GluebindError {
  readonly code: "MULTIPLE_RESULTS";
  readonly table: string;
}
/**
 * A model's table, as stored, does not have the model's shape (`createAll`, `migrate`): the
 * message names each difference and the migration step to write. Nothing was written.
 */
export declare class DriftError extends GluebindError {
  readonly code: "DRIFT";
  readonly table: string;
}
/**
 * A migration step failed (nothing of it was written; the steps before it stay applied), or
 * the database's record of applied steps does not match the code's steps.
 */
export declare class MigrationError extends GluebindError {
  readonly code: "MIGRATION";
  /** The step's name. */
  readonly step: string;
}

// --- Models (README.md, "Models") -----------------------------------------------------------

/** The column types of a model (GlueSQL's names). */
export type ColumnType =
  | "INTEGER"
  | "INT8"
  | "INT16"
  | "INT32"
  | "INT128"
  | "UINT8"
  | "UINT16"
  | "UINT32"
  | "UINT64"
  | "UINT128"
  | "FLOAT"
  | "BOOLEAN"
  | "TEXT"
  | "BYTEA"
  | "DATE"
  | "TIME"
  | "TIMESTAMP"
  | "UUID"
  | "INET";

/** The integer types whose values can pass `Number.MAX_SAFE_INTEGER` (see `ColumnSpec.bigint`). */
export type WideIntegerType = "INTEGER" | "INT128" | "UINT64" | "UINT128";

/** The flags every column spec may have (`ColumnSpec` adds its type, and `bigint` for wide integers). */
export interface ColumnSpecBase {
  primaryKey?: boolean;
  unique?: boolean;
  /**
   * A secondary index `ix_{table}_{column}` (created by `createAll`, also on a table that
   * exists): equality and range filters on the column read only the rows they match. For
   * integer, BOOLEAN, TEXT, DATE, TIME, TIMESTAMP and UUID columns; not the primary key.
   */
  index?: boolean;
  nullable?: boolean;
}

/** One column of `defineModel`: NOT NULL unless `nullable`. */
export type ColumnSpec =
  | (ColumnSpecBase & {
      type: WideIntegerType;
      /**
       * Read the column as a `bigint`, always. Default: a `number` — the column then holds safe
       * integers only (a larger value is refused when written, and is an error naming this flag
       * when SQL stored one).
       */
      bigint?: boolean;
    })
  | (ColumnSpecBase & { type: Exclude<ColumnType, WideIntegerType>; bigint?: false });

/** Column name → spec. */
export type ColumnSpecs = Record<string, ColumnSpec>;

/**
 * A column's value in model rows, with the default options (`int64: "auto"`, `timestamps:
 * "date"`; a column with `bigint: true` is a `bigint`); with others, give the model your row
 * type: `defineModel(…) as Model<typeof columns, MyRow>`.
 */
export interface ColumnValues {
  INTEGER: number;
  INT8: number;
  INT16: number;
  INT32: number;
  INT128: number;
  UINT8: number;
  UINT16: number;
  UINT32: number;
  UINT64: number;
  UINT128: number;
  FLOAT: number;
  BOOLEAN: boolean;
  TEXT: string;
  BYTEA: Uint8Array;
  DATE: string;
  TIME: string;
  TIMESTAMP: Date;
  UUID: string;
  INET: string;
}

/** What a column accepts as a value (a parameter). */
export interface ColumnParams
  extends Omit<ColumnValues, "INTEGER" | "INT128" | "UINT64" | "UINT128" | "BYTEA" | "TIMESTAMP"> {
  INTEGER: number | bigint;
  INT128: number | bigint;
  UINT64: number | bigint;
  UINT128: number | bigint;
  BYTEA: Uint8Array | ArrayBuffer;
  TIMESTAMP: Date | string;
}

type NullIf<S> = S extends { nullable: true } ? null : never;
type ValueOf<S extends ColumnSpec> = (S extends { bigint: true } ? bigint : ColumnValues[S["type"]]) | NullIf<S>;
type ParamOf<S extends ColumnSpec> = ColumnParams[S["type"]];
type NullableKeys<C extends ColumnSpecs> = { [K in keyof C]: C[K] extends { nullable: true } ? K : never }[keyof C];
type ColumnName<C extends ColumnSpecs> = keyof C & string;
type NullableColumn<C extends ColumnSpecs> = NullableKeys<C> & string;
type TextColumn<C extends ColumnSpecs> = { [K in keyof C]: C[K]["type"] extends "TEXT" ? K : never }[keyof C] & string;

/** An object holding a model's primary key (what `session.delete` needs). */
export type KeyObject<C extends ColumnSpecs> = { readonly [K in PrimaryKeyOf<C>]: ParamOf<C[K]> } & {
  readonly [K in keyof C]?: unknown;
};
/** A model's row type, inferred from its columns. */
export type RowOf<C extends ColumnSpecs> = { -readonly [K in keyof C]: ValueOf<C[K]> };
/** What `insert` takes: every NOT NULL column; nullable ones may be absent. */
export type InsertOf<C extends ColumnSpecs> = {
  -readonly [K in Exclude<keyof C, NullableKeys<C>>]: ParamOf<C[K]>;
} & { -readonly [K in NullableKeys<C>]?: ParamOf<C[K]> | null | undefined };
/** What `update` takes: any columns (undefined ones are left out). */
export type ChangesOf<C extends ColumnSpecs> = { -readonly [K in keyof C]?: ParamOf<C[K]> | NullIf<C[K]> | undefined };
/** What a query's bulk `update` takes: any columns but the primary key (undefined ones are left out). */
export type BulkChangesOf<C extends ColumnSpecs> = Omit<ChangesOf<C>, PrimaryKeyOf<C>>;
/** The name of the primary key column. */
export type PrimaryKeyOf<C extends ColumnSpecs> = { [K in keyof C]: C[K] extends { primaryKey: true } ? K : never }[keyof C] & string;
/** The primary key's value. */
export type KeyOf<C extends ColumnSpecs> = ParamOf<C[PrimaryKeyOf<C>]>;
/** The row type of a model: `type User = ModelRow<typeof User>`. */
export type ModelRow<M> = M extends Model<any, infer R> ? R : never;

/** Comparison operators of `filter`. */
export type ComparisonOperator = "eq" | "ne" | "lt" | "le" | "gt" | "ge";

/** Options of `paginate`/`paginateArgs` besides the page and its size. */
export interface PageOptions {
  /** The largest page size: a larger one is lowered to it (not an error). */
  maxPerPage?: number | null;
  /** The page size when none is given, or a bad one without `errorOut` (default 20). */
  defaultPerPage?: number;
  /**
   * True (default): a bad page or size, or a page past the end other than page 1, is a
   * NotFoundError (404). False: they become 1, the default size, and an empty page.
   */
  errorOut?: boolean;
  /**
   * True (default): count the matching rows for `total`. False (Flask-SQLAlchemy's
   * `count=False`): `total` and `pages` are null and `hasNext` comes from reading one row past
   * the page, so the page costs what it returns (on kv:// a count lists the whole table).
   */
  count?: boolean;
}

export interface PaginateOptions extends PageOptions {
  /** From 1 (default 1); a string is parsed as a request argument. */
  page?: number | string | null;
  /** Rows per page (default `defaultPerPage`); a string is parsed as a request argument. */
  perPage?: number | string | null;
}

/**
 * A condition on a model's rows for `query.filter(condition)`, from the model's column handles
 * (`User.c.age.lt(18)`), combined with `and` / `or` / `not` (SQL's NULL semantics: a comparison
 * with NULL is neither true nor false, and so is its `not`).
 */
export declare class Condition<C extends ColumnSpecs = ColumnSpecs> {
  private constructor();
  /** The model's columns (types only). */
  private readonly __columns: C;
  /** This and every other condition hold. */
  and(...others: Condition<C>[]): Condition<C>;
  /** This or another condition holds. */
  or(...others: Condition<C>[]): Condition<C>;
  /** This condition does not hold. */
  not(): Condition<C>;
}
/** The condition type of a model: `ConditionOf<typeof User>`. */
export type ConditionOf<M> = M extends Model<infer C, any> ? Condition<C> : never;
/** Every condition holds. */
export declare function and<C extends ColumnSpecs>(first: Condition<C>, ...rest: Condition<C>[]): Condition<C>;
/** One of the conditions holds. */
export declare function or<C extends ColumnSpecs>(first: Condition<C>, ...rest: Condition<C>[]): Condition<C>;
/** The condition does not hold. */
export declare function not<C extends ColumnSpecs>(condition: Condition<C>): Condition<C>;

/** The conditions of one column (`User.c.email`); `like` on TEXT columns, IS NULL on nullable ones. */
export type ColumnHandle<C extends ColumnSpecs, K extends keyof C> = {
  eq(value: ParamOf<C[K]>): Condition<C>;
  ne(value: ParamOf<C[K]>): Condition<C>;
  lt(value: ParamOf<C[K]>): Condition<C>;
  le(value: ParamOf<C[K]>): Condition<C>;
  gt(value: ParamOf<C[K]>): Condition<C>;
  ge(value: ParamOf<C[K]>): Condition<C>;
  /** An empty array matches no row. */
  in(values: readonly ParamOf<C[K]>[]): Condition<C>;
} & (C[K]["type"] extends "TEXT"
  ? {
      /** `%` any run of characters, `_` one character; NULLs never match. */
      like(pattern: string): Condition<C>;
    }
  : unknown) &
  (C[K] extends { nullable: true }
    ? {
        isNull(): Condition<C>;
        isNotNull(): Condition<C>;
        /** `eq(null)` is IS NULL. */
        eq(value: null): Condition<C>;
        /** `ne(null)` is IS NOT NULL. */
        ne(value: null): Condition<C>;
      }
    : unknown);

/** Request arguments: a query string, URLSearchParams, or an object of strings (Hono's `c.req.query()`). */
export type PageArgs = string | { get(name: string): string | null } | Record<string, string | undefined>;

/**
 * A query over a model's table: filters (ANDed), order, limit and offset. Builder methods
 * return a new query; the runners resolve to plain row objects.
 * @throws SqlError (synchronously, from a builder) for an unknown column or operator, or an
 *   undefined value.
 */
export interface Query<C extends ColumnSpecs, R = RowOf<C>> {
  /** Rows whose columns equal the values (`null`: IS NULL). */
  filterBy(values: { [K in keyof C]?: ParamOf<C[K]> | NullIf<C[K]> }): Query<C, R>;
  filter<K extends ColumnName<C>>(column: K, op: ComparisonOperator, value: ParamOf<C[K]>): Query<C, R>;
  /** `eq null` is IS NULL, `ne null` IS NOT NULL. */
  filter<K extends NullableColumn<C>>(column: K, op: "eq" | "ne", value: null): Query<C, R>;
  /** An empty array matches no row. */
  filter<K extends ColumnName<C>>(column: K, op: "in", values: readonly ParamOf<C[K]>[]): Query<C, R>;
  /** `%` any run of characters, `_` one character; NULLs never match. */
  filter<K extends TextColumn<C>>(column: K, op: "like", pattern: string): Query<C, R>;
  filter<K extends NullableColumn<C>>(column: K, op: "isNull" | "isNotNull"): Query<C, R>;
  /** Rows where the condition holds: `filter(User.c.age.lt(18).or(User.c.age.isNull()))`. */
  filter(condition: Condition<C>): Query<C, R>;
  /** Orders by columns in turn: `"name"` ascending, `"-name"` descending. */
  orderBy(...columns: (ColumnName<C> | `-${ColumnName<C>}`)[]): Query<C, R>;
  limit(n: number): Query<C, R>;
  offset(n: number): Query<C, R>;
  readonly session: Session;
  all(): Promise<R[]>;
  first(): Promise<R | null>;
  /** @throws NotFoundError when no row matches. */
  firstOr404(): Promise<R>;
  /** @throws NotFoundError when no row matches, MultipleResultsError when several do. */
  one(): Promise<R>;
  /** The row with this primary key that matches the filters, or null: a primary-key read. */
  get(key: KeyOf<C>): Promise<R | null>;
  /** @throws NotFoundError when no row has the key. */
  getOr404(key: KeyOf<C>): Promise<R>;
  /** How many rows the query yields (limit and offset applied). */
  count(): Promise<number>;
  /** One page, with Flask-SQLAlchemy 3's rules. @throws NotFoundError (see PageOptions.errorOut). */
  paginate(options?: PaginateOptions & { count?: true }): Promise<Pagination<R>>;
  /** An uncounted page: `total` and `pages` null (see PageOptions.count). */
  paginate(options: PaginateOptions & { count: false }): Promise<Pagination<R, null>>;
  paginate(options?: PaginateOptions): Promise<Pagination<R, number | null>>;
  /** `paginate` from the request arguments `page` and `per_page`. */
  paginateArgs(args: PageArgs, options?: PageOptions & { count?: true }): Promise<Pagination<R>>;
  paginateArgs(args: PageArgs, options: PageOptions & { count: false }): Promise<Pagination<R, null>>;
  paginateArgs(args: PageArgs, options?: PageOptions): Promise<Pagination<R, number | null>>;
  /**
   * Deletes every row the filters match (every row without filters), in the session; resolves
   * to how many. Pending objects are flushed first; tracked objects of the deleted rows are no
   * longer tracked.
   * @throws SqlError for a query with orderBy, limit or offset.
   */
  delete(): Promise<number>;
  /**
   * SETs the columns of `changes` on every row the filters match, in the session; resolves to
   * how many rows matched. Pending objects are flushed first; tracked objects of those rows
   * take the new values.
   * @throws SqlError for a query with orderBy, limit or offset, or a bad change; UniqueError.
   */
  update(changes: BulkChangesOf<C>): Promise<number>;
}

/** What `defineModel` returns: the table's description and the model-level verbs. */
export interface Model<C extends ColumnSpecs = ColumnSpecs, R = RowOf<C>> {
  readonly table: string;
  /** Column name → spec, with every flag filled in. */
  readonly columns: { readonly [K in keyof C]: Readonly<Required<ColumnSpec> & { type: C[K]["type"] }> };
  readonly primaryKey: PrimaryKeyOf<C>;
  /** The model's bind (null: the default one). */
  readonly bindKey: string | null;
  /** Column handles for conditions: `User.c.name.like("A%").or(User.c.bio.isNull())`. */
  readonly c: { readonly [K in keyof C]: ColumnHandle<C, K> };
  /** A query over the table, in `session`. */
  query(session: Session): Query<C, R>;
  get(session: Session, key: KeyOf<C>): Promise<R | null>;
  /** @throws NotFoundError when no row has the key. */
  getOr404(session: Session, key: KeyOf<C>): Promise<R>;
  /**
   * `session.nextId(table)`: the next value of the table's ID sequence, typed as the primary
   * key reads (a number; a bigint with `bigint: true`).
   */
  nextId(session: Session): Promise<C[PrimaryKeyOf<C>] extends { bigint: true } ? bigint : number>;
  /**
   * Inserts a row; resolves to it with every column (values as given; a number column's as it
   * reads: under the default `int64`, `{ id: 1n }` resolves to `{ id: 1 }` unless the column
   * says `bigint: true`).
   * @throws UniqueError when the key or a unique value is taken.
   */
  insert(session: Session, row: InsertOf<C>): Promise<R>;
  /**
   * SETs the columns of `changes` that differ from the stored row (an unchanged unique value
   * is not written again); resolves to the row after the change.
   * @throws NotFoundError when no row has the key; UniqueError.
   */
  update(session: Session, key: KeyOf<C>, changes: ChangesOf<C>): Promise<R>;
  /** @throws NotFoundError when no row has the key. */
  delete(session: Session, key: KeyOf<C>): Promise<void>;
}

/**
 * Defines a model: the table `table` with `columns`. Exactly one column is the primary key;
 * names match `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes). The row type is inferred.
 * @throws ConfigError for a bad name, type, flag or primary key.
 */
export declare function defineModel<const C extends ColumnSpecs>(
  table: string,
  columns: C,
  options?: { bindKey?: string | null },
): Model<C>;

/** Which models `createAll`/`dropAll` handle: all (`bindKey` undefined), the default bind (null), or one bind. */
export interface BindOptions {
  bindKey?: string | null | undefined;
}

/**
 * Creates the tables that do not exist yet (`CREATE TABLE IF NOT EXISTS`), in `session`:
 * commit to make them visible to other sessions. Idempotent.
 */
export declare function createAll(session: Session, models: readonly Model<any, any>[], options?: BindOptions): Promise<void>;
/** Drops the tables that exist, with their rows (`DROP TABLE IF EXISTS`), in `session`. Idempotent. */
export declare function dropAll(session: Session, models: readonly Model<any, any>[], options?: BindOptions): Promise<void>;

// --- Migrations (docs/migrations.md) ---------------------------------------------------------

/** One named migration step; its operations run in order and commit with its record. */
export declare class Migration {
  /** A step named `name`; `migration(name)` is the same. */
  constructor(name: string);
  readonly name: string;
  /** `ALTER TABLE table ADD COLUMN definition`: `"bio TEXT NULL"`, `"n INTEGER NOT NULL DEFAULT 0"`. */
  addColumn(table: string, definition: string): this;
  /** `ALTER TABLE table DROP COLUMN column`. */
  dropColumn(table: string, column: string): this;
  /** `ALTER TABLE table RENAME COLUMN from TO to`. */
  renameColumn(table: string, from: string, to: string): this;
  /** `ALTER TABLE from RENAME TO to`. */
  renameTable(from: string, to: string): this;
  /** `DROP TABLE IF EXISTS table`. */
  dropTable(table: string): this;
  /** Any one SQL statement, as written. */
  sql(statement: string): this;
  /** A data step: `fn` reads and writes with the step's session (it must not commit). */
  data(label: string, fn: (session: Session) => Promise<void> | void): this;
}
/** A new step named `name` (unique in its list; never change or remove one a database ran). */
export declare function migration(name: string): Migration;
/** What `migrate` did. */
export interface MigrationReport {
  /** The steps it ran, in order. */
  applied: string[];
  /** True on a new database: the models' tables were created and every step recorded, not run. */
  created: boolean;
  /** Steps the database ran that these migrations lack (a newer deploy's): not an error. */
  newer: string[];
}
/**
 * Brings the session's database up to date (run it in `init`, on a session without pending
 * writes): on a new database creates the models' tables and records every step; otherwise runs
 * each step not recorded yet, in order, each in one commit with its record; then `createAll`
 * of `models` and the drift check.
 * @throws MigrationError, DriftError
 */
export declare function migrate(
  session: Session,
  migrations: readonly Migration[],
  models: readonly Model<any, any>[],
): Promise<MigrationReport>;
/** A step the database recorded (table `gluebind_migrations`). */
export interface AppliedMigration {
  position: number;
  name: string;
  checksum: string;
  /** UTC, ISO 8601. */
  appliedAt: string;
  /** `"applied"`: it ran here; `"created"`: the database was created in its shape. */
  how: "applied" | "created";
}
/** The steps the session's database recorded, in order. */
export declare function appliedMigrations(session: Session): Promise<AppliedMigration[]>;
/** The checksum each step records, in order. */
export declare function migrationChecksums(migrations: readonly Migration[]): string[];
/** The models' tables as JSON (table → columns): commit it beside your steps. */
export declare function migrationSnapshot(models: readonly Model<any, any>[]): string;
/** The next step from a snapshot to the models: builder calls, empty when nothing changed. */
export interface NextMigration {
  /** `migration("name").addColumn(…)…`, or `""`. */
  js: string;
  /** `Migration::new("name").add_column(…)…`, or `""`. */
  rust: string;
  /** Differences no builder call resolves alone (a changed type or constraint), with the way round. */
  notes: string[];
}
/** The step named `name` that takes the tables of `snapshot` to `models` as they are now. */
export declare function nextMigration(name: string, models: readonly Model<any, any>[], snapshot: string): NextMigration;

/**
 * One page of a query's rows and where it stands (Flask-SQLAlchemy's `Pagination`). `Total` is
 * `null` for a page asked for with `count: false`.
 */
export declare class Pagination<T = Row, Total extends number | null = number> {
  constructor(init: { items: T[]; page: number; perPage: number; total: Total; maxPerPage?: number | null; more?: boolean });
  /** The rows of this page. */
  items: T[];
  /** This page's number, from 1. */
  page: number;
  /** The page size (after `maxPerPage`). */
  perPage: number;
  /** How many rows match the query, on all pages; null when not counted. */
  total: Total;
  maxPerPage: number | null;
  /** Uncounted: whether a row follows this page (what `hasNext` says then). */
  more: boolean;
  /** The number of pages (0 when there are no rows; null when not counted). */
  readonly pages: Total extends null ? null : number;
  readonly hasPrev: boolean;
  readonly hasNext: boolean;
  readonly prevNum: number | null;
  readonly nextNum: number | null;
  /** The number (from 1) of this page's first row among all rows; 0 for an empty page. */
  readonly first: number;
  /** The number of this page's last row; 0 for an empty page. */
  readonly last: number;
  /** Page numbers for a pagination widget, null marking a gap (Flask-SQLAlchemy's defaults 2, 2, 4, 2). */
  iterPages(options?: { leftEdge?: number; leftCurrent?: number; rightCurrent?: number; rightEdge?: number }): (number | null)[];
  toJSON(): {
    items: T[];
    page: number;
    perPage: number;
    total: Total;
    pages: Total extends null ? null : number;
    hasPrev: boolean;
    hasNext: boolean;
    prevNum: number | null;
    nextNum: number | null;
  };
}
