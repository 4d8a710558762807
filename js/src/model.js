// Models: tables described once in JavaScript (`defineModel`), created with `createAll`, read
// and written through the model — the npm package's counterpart of the Rust core's
// `gluebind::model` (Flask-SQLAlchemy's `db.Model`, `Model.query`, `create_all`,
// `get_or_404`, `paginate`), built on `session.execute`.
//
// The SQL text holds only the identifiers checked by defineModel and fixed keywords: every
// value is a `$n` parameter. The statements have the shapes of src/model/sql.rs.

import { ConfigError, MultipleResultsError, NotFoundError, SqlError } from "./errors.js";

/**
 * The column types: what GlueSQL 0.20 stores and the package maps both ways (README, "Values").
 * Left out: DECIMAL and INTERVAL (a bound parameter compares unequal to the stored value),
 * FLOAT32 (f32 rounding), MAP, LIST and POINT (no parameter form).
 */
const TYPES = new Set([
  "INTEGER", "INT8", "INT16", "INT32", "INT128",
  "UINT8", "UINT16", "UINT32", "UINT64", "UINT128",
  "FLOAT", "BOOLEAN", "TEXT", "BYTEA", "DATE", "TIME", "TIMESTAMP", "UUID", "INET",
]);
const INTEGER_TYPES = new Set([...TYPES].filter((t) => t.includes("INT")));
const SPEC_KEYS = ["type", "primaryKey", "unique", "nullable"];
/** The only text besides keywords that goes into SQL, as in src/model/meta.rs. */
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** `filter`'s comparisons and their SQL; `condition` renders the other operators. */
const COMPARISONS = { eq: "=", ne: "<>", lt: "<", le: "<=", gt: ">", ge: ">=" };
const OPERATORS = [...Object.keys(COMPARISONS), "like", "in", "isNull", "isNotNull"];
/** GlueSQL 0.20 reads LIMIT and OFFSET as UINT32; past that is past the end of any table. */
const UINT32_MAX = 2 ** 32 - 1;
const DEFAULT_PER_PAGE = 20;

/** `"name"`: quoted so that `user` or `order` never reads as a keyword; IDENT needs no escaping. */
const quote = (name) => `"${name}"`;

/** A key or value for a message, as the Rust core shows it (JSON). */
const show = (value) => (typeof value === "bigint" ? String(value) : (JSON.stringify(value) ?? String(value)));

const described = (value) => (value === null ? "null" : Array.isArray(value) ? "an array" : typeof value);

function checkIdent(name, what) {
  // "__proto__" matches IDENT but would set a row object's prototype instead of a field.
  if (typeof name !== "string" || !IDENT.test(name) || name === "__proto__") {
    throw new ConfigError(
      `${what} ${show(name)} is not valid: names must match [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes), ` +
        "because they are written into SQL",
    );
  }
}

function checkSession(session, where) {
  if (session === null || typeof session !== "object" || typeof session.execute !== "function") {
    throw new ConfigError(
      `${where} needs a session (db.session(), c.var.session or db.openSession()), got ${described(session)}`,
    );
  }
  return session;
}

/**
 * The session a model's statements run in: the session of its bind when it has a bindKey
 * (Flask-SQLAlchemy's binds: `new Gluebind({ binds: { cache: "memory://" } })`), else `session`.
 */
function on(model, session) {
  const own = session.bindKey ?? null; // a session from forBind(key)
  if (own !== null && own !== model.bindKey) {
    throw new ConfigError(
      `${model.table} is on ${model.bindKey === null ? "the default bind" : `bind ${show(model.bindKey)}`}, ` +
        `but this is the session of bind ${show(own)}: pass the session that opened it (db.session())`,
    );
  }
  if (model.bindKey === null || own !== null) return session;
  if (typeof session.forBind !== "function") {
    throw new ConfigError(`${model.table} is on bind ${show(model.bindKey)}: it needs a gluebind session (db.session()), whose forBind() opens that bind`);
  }
  return session.forBind(model.bindKey);
}

/**
 * Defines a model: the table `table` with `columns` (name → `{ type, primaryKey?, unique?,
 * nullable? }`). Columns are NOT NULL unless `nullable`; exactly one is the primary key.
 * `options.bindKey` names the model's bind for `createAll(…, { bindKey })`.
 * @throws ConfigError for a bad name, type, flag or primary key.
 */
export function defineModel(table, columns, options = {}) {
  checkIdent(table, "defineModel: table name");
  const where = `defineModel(${show(table)})`;
  if (columns === null || typeof columns !== "object" || Array.isArray(columns) || Object.keys(columns).length === 0) {
    throw new ConfigError(`${where}: columns must be an object of column name → { type, … } with at least one column`);
  }
  const specs = {};
  for (const [name, spec] of Object.entries(columns)) {
    checkIdent(name, `${where}: column name`);
    specs[name] = columnSpec(spec, `${where}, column ${name}`);
  }
  const keys = Object.keys(specs).filter((name) => specs[name].primaryKey);
  if (keys.length !== 1) {
    const found = keys.length ? keys.join(", ") : "none";
    throw new ConfigError(`${where}: exactly one column needs primaryKey: true (found ${found})`);
  }
  const [primaryKey] = keys;
  if (specs[primaryKey].nullable) throw new ConfigError(`${where}: the primary key ${primaryKey} cannot be nullable`);
  if (options === null || typeof options !== "object") throw new ConfigError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (key !== "bindKey") throw new ConfigError(`${where}: unknown option ${show(key)}; the only option is bindKey`);
  }
  const bindKey = options.bindKey ?? null;
  if (bindKey !== null && (typeof bindKey !== "string" || bindKey === "")) {
    throw new ConfigError(`${where}: bindKey must be a non-empty string (or null for the default bind)`);
  }
  return new Model(table, specs, primaryKey, bindKey);
}

function columnSpec(spec, where) {
  if (spec === null || typeof spec !== "object") {
    throw new ConfigError(`${where}: expected { type, … }, got ${described(spec)}`);
  }
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.includes(key)) {
      throw new ConfigError(`${where}: unknown key ${show(key)}; keys are ${SPEC_KEYS.join(", ")}`);
    }
  }
  if (!TYPES.has(spec.type)) {
    throw new ConfigError(`${where}: type ${show(spec.type)} is not one of ${[...TYPES].join(", ")}`);
  }
  const flag = (key) => {
    if (spec[key] !== undefined && typeof spec[key] !== "boolean") {
      throw new ConfigError(`${where}: ${key} must be true or false`);
    }
    return spec[key] === true;
  };
  const out = { type: spec.type, primaryKey: flag("primaryKey"), unique: flag("unique"), nullable: flag("nullable") };
  // GlueSQL's own rule, caught here rather than at createAll.
  if (out.type === "FLOAT" && (out.primaryKey || out.unique)) {
    throw new ConfigError(`${where}: GlueSQL 0.20 does not support a FLOAT primary key or unique column`);
  }
  return Object.freeze(out);
}

/** What defineModel returns: the table's description and the model-level verbs. */
class Model {
  constructor(table, columns, primaryKey, bindKey) {
    /** The table name. */
    this.table = table;
    /** Column name → `{ type, primaryKey, unique, nullable }`, in definition order. */
    this.columns = Object.freeze(columns);
    /** The primary key's column name. */
    this.primaryKey = primaryKey;
    /** The model's bind (`null`: the default one). */
    this.bindKey = bindKey;
    Object.freeze(this);
  }

  /** A query over the table, in `session` (`User.query` in Flask-SQLAlchemy). */
  query(session) {
    return new Query(this, on(this, checkSession(session, `${this.table}.query(session)`)));
  }

  /** The row with primary key `key`, or null. */
  get(session, key) {
    return this.query(session).get(key);
  }

  /** The row with primary key `key`, or NotFoundError (404). */
  getOr404(session, key) {
    return this.query(session).getOr404(key);
  }

  /** The next value of the engine's ID sequence named after the table (`session.nextId`). */
  nextId(session) {
    return on(this, checkSession(session, `${this.table}.nextId(session)`)).nextId(this.table);
  }

  /**
   * Inserts a row: every NOT NULL column needs a value; absent nullable ones are NULL. Resolves
   * to the row as inserted (all columns, values as given).
   * @throws UniqueError when the key or a unique value is taken; SqlError for a bad row.
   */
  async insert(session, values) {
    session = on(this, checkSession(session, `${this.table}.insert(session, row)`));
    const where = `${this.table}.insert`;
    checkColumns(this, values, where);
    const row = {};
    for (const [name, spec] of Object.entries(this.columns)) {
      const value = values[name] ?? (spec.nullable ? null : undefined);
      if (value === undefined) {
        const hint = spec.primaryKey ? ` (an integer key from the ID sequence: ${name}: ${this.table}.nextId(session))` : "";
        throw new SqlError(`${where}: missing a value for ${name}, which is NOT NULL${hint}`);
      }
      row[name] = value;
    }
    const names = Object.keys(row);
    const sql =
      `INSERT INTO ${quote(this.table)} (${names.map(quote).join(", ")}) ` +
      `VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")})`;
    await session.execute(sql, Object.values(row));
    return row;
  }

  /**
   * Changes the row with primary key `key`: SETs only the columns of `changes` whose value
   * differs from the stored one (undefined values are left out). Resolves to the row after
   * the change. A stored value is not written again because GlueSQL 0.20 checks a UNIQUE
   * column in SET against every stored row, the updated one included.
   * @throws NotFoundError when no row has the key; UniqueError; SqlError for a bad change.
   */
  async update(session, key, changes) {
    const where = `${this.table}.update`;
    checkColumns(this, changes, where);
    const missing = () => notFound(this, `update() found no row with ${this.primaryKey} = ${show(key)}`);
    const stored = await this.query(session).get(key);
    if (stored === null) throw missing();
    const changed = Object.entries(changes).filter(
      ([name, value]) => value !== undefined && !same(this.columns[name].type, stored[name], value),
    );
    if (changed.length === 0) return stored;
    const params = [];
    const sets = changed.map(([name, value]) => {
      if (name === this.primaryKey) throw new SqlError(`${where}: the primary key ${name} cannot be changed`);
      if (value === null && !this.columns[name].nullable) throw new SqlError(`${where}: ${name} is NOT NULL`);
      return `${quote(name)} = $${params.push(value)}`;
    });
    const byKey = `${quote(this.primaryKey)} = $${params.push(key)}`;
    const sql = `UPDATE ${quote(this.table)} SET ${sets.join(", ")} WHERE ${byKey}`;
    const { affected } = await on(this, session).execute(sql, params);
    // The session read the row above, so this holds; if it ever did not, resolving would
    // report a write that matched nothing: a silently lost update.
    if (affected !== 1) throw missing();
    return { ...stored, ...Object.fromEntries(changed) };
  }

  /**
   * Deletes the row with primary key `key`.
   * @throws NotFoundError when no row has the key.
   */
  async delete(session, key) {
    session = on(this, checkSession(session, `${this.table}.delete(session, key)`));
    checkKey(this, key, `${this.table}.delete`);
    const sql = `DELETE FROM ${quote(this.table)} WHERE ${quote(this.primaryKey)} = $1`;
    const { affected } = await session.execute(sql, [key]);
    if (affected === 0) throw notFound(this, `delete() found no row with ${this.primaryKey} = ${show(key)}`);
  }
}

/** Refuses a row or changes object with a field that is not a column (a typo, or client input). */
function checkColumns(model, values, where) {
  if (values === null || typeof values !== "object" || Array.isArray(values)) {
    throw new SqlError(`${where}: expected an object of column name → value, got ${described(values)}`);
  }
  for (const name of Object.keys(values)) column(model, name, where);
}

/** The spec of `model`'s column `name`, or an SqlError naming the columns there are. */
function column(model, name, where) {
  if (typeof name !== "string" || !Object.hasOwn(model.columns, name)) {
    const columns = Object.keys(model.columns).join(", ");
    throw new SqlError(`${where}: ${model.table} has no column ${show(name)}; its columns are ${columns}`);
  }
  return model.columns[name];
}

function checkKey(model, key, where) {
  if (key === undefined || key === null) throw new SqlError(`${where}: the primary key ${model.primaryKey} is ${key}`);
}

function notFound(model, detail) {
  return new NotFoundError(`not found in table ${model.table}: ${detail}`, { table: model.table, detail });
}

/** An integer however the package represents it: number, bigint, or decimal string (`int64`). */
const integral = (v) => typeof v === "bigint" || Number.isSafeInteger(v) || (typeof v === "string" && /^-?[0-9]+$/.test(v));

/** True when `given` is the value `stored` holds (then update() does not SET it). */
function same(type, stored, given) {
  if (stored === given) return true;
  if (stored === null || given === null) return false;
  if (INTEGER_TYPES.has(type) && integral(stored) && integral(given)) return BigInt(stored) === BigInt(given);
  if (stored instanceof Date && given instanceof Date) return stored.getTime() === given.getTime();
  if (stored instanceof Uint8Array && (ArrayBuffer.isView(given) || given instanceof ArrayBuffer)) {
    const bytes =
      given instanceof ArrayBuffer ? new Uint8Array(given) : new Uint8Array(given.buffer, given.byteOffset, given.byteLength);
    return stored.length === bytes.length && stored.every((b, i) => b === bytes[i]);
  }
  return false;
}

/**
 * A query over a model's table: filters (ANDed), order, limit and offset. Builder methods
 * return a new query, so a base query can be refined and run several times.
 */
class Query {
  #model;
  #session;
  #state;

  constructor(model, session, state = { filters: [], orders: [], limit: null, offset: null }) {
    this.#model = model;
    this.#session = session;
    this.#state = state;
  }

  #with(changes) {
    return new Query(this.#model, this.#session, { ...this.#state, ...changes });
  }

  #filtered(filters) {
    return this.#with({ filters: [...this.#state.filters, ...filters] });
  }

  /** Keeps the rows whose columns equal the given values (`null`: IS NULL), as SQLAlchemy's filter_by. */
  filterBy(values) {
    checkColumns(this.#model, values, `${this.#model.table}.filterBy`);
    return this.#filtered(Object.entries(values).map(([name, value]) => this.#filter(name, "eq", value, "filterBy")));
  }

  /**
   * Keeps the rows where `column op value` holds: `eq ne lt le gt ge` compare, `like` matches
   * a pattern (TEXT columns), `in` takes an array, `isNull`/`isNotNull` take no value. `eq`
   * and `ne` with null are IS NULL / IS NOT NULL.
   */
  filter(column, op, value) {
    return this.#filtered([this.#filter(column, op, value, "filter")]);
  }

  #filter(name, op, value, method) {
    const model = this.#model;
    const where = `${model.table}.${method}(${show(name)})`;
    const spec = column(model, name, `${model.table}.${method}`);
    if (!OPERATORS.includes(op)) {
      throw new SqlError(`${where}: unknown operator ${show(op)}; operators are ${OPERATORS.join(", ")}`);
    }
    if (value === null && (op === "eq" || op === "ne")) {
      return this.#filter(name, op === "eq" ? "isNull" : "isNotNull", undefined, method);
    }
    if (op === "isNull" || op === "isNotNull") {
      if (value !== undefined) throw new SqlError(`${where}: ${op} takes no value`);
      if (!spec.nullable) {
        throw new SqlError(`${where}: ${name} is NOT NULL, so ${op} is ${op === "isNull" ? "never" : "always"} true`);
      }
      return { name, op, spec };
    }
    const values = op === "in" ? value : [value];
    if (!Array.isArray(values)) throw new SqlError(`${where}: in takes an array of values, got ${described(value)}`);
    for (const v of values) {
      if (v === undefined || v === null) {
        const hint = v === undefined ? " (a missing variable?)" : "";
        throw new SqlError(`${where}: the value is ${v}${hint}; use isNull to match NULL`);
      }
    }
    if (op === "like" && (spec.type !== "TEXT" || typeof value !== "string")) {
      throw new SqlError(`${where}: like needs a TEXT column and a string pattern`);
    }
    return { name, op, spec, value };
  }

  /** Orders by columns, in turn: `"name"` ascending, `"-name"` descending. */
  orderBy(...columns) {
    const orders = columns.map((order) => {
      const descending = typeof order === "string" && order.startsWith("-");
      const name = descending ? order.slice(1) : order;
      column(this.#model, name, `${this.#model.table}.orderBy`);
      return { name, descending };
    });
    return this.#with({ orders: [...this.#state.orders, ...orders] });
  }

  /** At most `n` rows. */
  limit(n) {
    return this.#with({ limit: nonNegative(n, "limit") });
  }

  /** Skips the first `n` rows. */
  offset(n) {
    return this.#with({ offset: nonNegative(n, "offset") });
  }

  /** The session the query runs in. */
  get session() {
    return this.#session;
  }

  /** The statement: rows (or `count`) matching the filters, after `first` (a key comparison). */
  #statement({ count = false, first = null } = {}) {
    const { table, columns } = this.#model;
    const params = [];
    const param = (value) => `$${params.push(value)}`;
    const what = count ? "COUNT(*)" : Object.keys(columns).map((c) => `${quote(c)} AS ${quote(c)}`).join(", ");
    // Without the alias GlueSQL labels a quoted column with its quotes.
    let sql = `SELECT ${what} FROM ${quote(table)}`;
    // A key comparison goes first, so that GlueSQL's planner reads by key and filters the rest.
    const filters = first ? [first, ...this.#state.filters] : this.#state.filters;
    if (filters.length > 0) sql += ` WHERE ${filters.map((f) => condition(f, param)).join(" AND ")}`;
    if (!count && !first) {
      const { orders, limit, offset } = this.#state;
      if (orders.length > 0) {
        sql += ` ORDER BY ${orders.map((o) => `${quote(o.name)} ${o.descending ? "DESC" : "ASC"}`).join(", ")}`;
      }
      if (limit !== null) sql += ` LIMIT ${param(Math.min(limit, UINT32_MAX))}`;
      if (offset > 0) sql += ` OFFSET ${param(Math.min(offset, UINT32_MAX))}`;
    }
    return [sql, params];
  }

  /** Every matching row. */
  async all() {
    return this.#session.execute(...this.#statement());
  }

  /** The first matching row, or null. */
  async first() {
    const [row] = await this.#with({ limit: Math.min(this.#state.limit ?? 1, 1) }).all();
    return row ?? null;
  }

  /** The first matching row, or NotFoundError (404). */
  async firstOr404() {
    const row = await this.first();
    if (row === null) throw notFound(this.#model, "no row matches the query");
    return row;
  }

  /** The only matching row: NotFoundError when none, MultipleResultsError when several. */
  async one() {
    const rows = await this.#with({ limit: Math.min(this.#state.limit ?? 2, 2) }).all();
    if (rows.length === 0) {
      throw notFound(this.#model, "one() found no row matching the query; use first() when the row may be absent");
    }
    if (rows.length > 1) {
      const { table } = this.#model;
      throw new MultipleResultsError(
        `one() expected exactly one row of table ${table} and found several; filter by the primary key or a ` +
          "unique column, or use first() or all()",
        { table },
      );
    }
    return rows[0];
  }

  /**
   * The row with primary key `key` that also matches the filters, or null (order, limit and
   * offset do not apply). A primary-key read: one KV get at most on kv://.
   */
  async get(key) {
    const model = this.#model;
    checkKey(model, key, `${model.table}.get`);
    const first = { name: model.primaryKey, op: "eq", spec: model.columns[model.primaryKey], value: key };
    const [row] = await this.#session.execute(...this.#statement({ first }));
    return row ?? null;
  }

  /** The row with primary key `key`, or NotFoundError (404) naming the table and key. */
  async getOr404(key) {
    const row = await this.get(key);
    if (row === null) throw notFound(this.#model, `no row with ${this.#model.primaryKey} = ${show(key)}`);
    return row;
  }

  /** How many rows the query yields (its limit and offset applied). */
  async count() {
    const { limit, offset } = this.#state;
    const after = Math.max(0, (await this.#countMatching()) - (offset ?? 0));
    return limit === null ? after : Math.min(after, limit);
  }

  /** How many rows match the filters (limit and offset ignored). */
  async #countMatching() {
    const [row] = await this.#session.execute(...this.#statement({ count: true }));
    // A number, or a bigint/string under the `int64` option.
    return Number(Object.values(row)[0]);
  }

  /**
   * One page, with Flask-SQLAlchemy 3's rules (see README.md, "Models"): `page` and `perPage`
   * are integers or the strings of a query string; `maxPerPage` caps perPage; with `errorOut`
   * (default) a bad value or a page past the end (but page 1) is NotFoundError, without it
   * the default is used and a page past the end is empty.
   */
  async paginate(options = {}) {
    const opts = pageOptions(options, ["page", "perPage"], `${this.#model.table}.paginate`);
    const { page, perPage } = pageArgs(this.#model, opts);
    const items = await this.#with({ limit: perPage, offset: (page - 1) * perPage }).all();
    if (items.length === 0 && page !== 1 && opts.errorOut) {
      throw notFound(
        this.#model,
        `page ${page} (of ${perPage} rows each) is past the last page; ask for a page between 1 and the ` +
          "pagination's `pages`",
      );
    }
    const total = await this.#countMatching();
    return new Pagination({ items, page, perPage, total, maxPerPage: opts.maxPerPage });
  }

  /**
   * paginate() from request arguments `page` and `per_page`: a query string, URLSearchParams,
   * or an object of strings (Hono's `c.req.query()`); an absent one takes its default.
   */
  async paginateArgs(args, options = {}) {
    pageOptions(options, [], `${this.#model.table}.paginateArgs`);
    if (typeof args === "string") args = new URLSearchParams(args);
    if (args === null || typeof args !== "object") {
      throw new ConfigError(`paginateArgs: args must be a query string, URLSearchParams or an object, got ${described(args)}`);
    }
    const get = (name) => (typeof args.get === "function" ? args.get(name) : Object.hasOwn(args, name) ? args[name] : null);
    return this.paginate({ ...options, page: get("page"), perPage: get("per_page") });
  }
}

function nonNegative(n, what) {
  if (!Number.isSafeInteger(n) || n < 0) throw new SqlError(`${what}(n) needs an integer ≥ 0, got ${show(n)}`);
  return n;
}

/** `filter`'s SQL, its values added as parameters. */
function condition({ name, op, spec, value }, param) {
  const col = quote(name);
  switch (op) {
    case "isNull":
      return `${col} IS NULL`;
    case "isNotNull":
      return `${col} IS NOT NULL`;
    case "in":
      // `IN ()` is not SQL; an empty list matches nothing.
      return value.length === 0 ? "FALSE" : `${col} IN (${value.map(param).join(", ")})`;
    case "like":
      // GlueSQL 0.20 fails on `NULL LIKE …` (rather than yielding NULL), COALESCE and AND
      // included; CASE evaluates LIKE only for the rows that have a value.
      return spec.nullable
        ? `CASE WHEN ${col} IS NULL THEN FALSE ELSE ${col} LIKE ${param(value)} END`
        : `${col} LIKE ${param(value)}`;
    default:
      // Filters are only ANDed, so a NULL comparison (NULL, not FALSE) drops its row either way.
      return `${col} ${COMPARISONS[op]} ${param(value)}`;
  }
}

/** Checks paginate's options; `args` are the argument keys allowed besides the options. */
function pageOptions(options, args, where) {
  if (options === null || typeof options !== "object") throw new ConfigError(`${where}: options must be an object`);
  const keys = [...args, "maxPerPage", "defaultPerPage", "errorOut"];
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw new ConfigError(`${where}: unknown option ${show(key)}; options are ${keys.join(", ")}`);
  }
  const { maxPerPage = null, defaultPerPage = DEFAULT_PER_PAGE, errorOut = true } = options;
  if (maxPerPage !== null && !(Number.isSafeInteger(maxPerPage) && maxPerPage >= 0)) {
    throw new ConfigError(`${where}: maxPerPage must be an integer ≥ 0`);
  }
  if (!(Number.isSafeInteger(defaultPerPage) && defaultPerPage >= 1)) {
    throw new ConfigError(`${where}: defaultPerPage must be an integer ≥ 1`);
  }
  if (typeof errorOut !== "boolean") throw new ConfigError(`${where}: errorOut must be true or false`);
  return { ...options, maxPerPage, defaultPerPage, errorOut };
}

/** A page argument: absent (undefined), an integer, or `{ bad }` (not an integer). */
function pageArg(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : { bad: value };
  if (typeof value === "string") {
    // As Rust's `str::parse::<i64>` on the trimmed text (Flask: `int(request.args[…])`).
    const text = value.trim();
    return /^[+-]?[0-9]+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : { bad: value };
  }
  throw new ConfigError(`paginate: page and perPage must be integers or strings, got ${described(value)}`);
}

/** Flask-SQLAlchemy's `_prepare_page_args` (src/model/paginate.rs `page_args`). */
function pageArgs(model, { page: rawPage, perPage: rawPerPage, maxPerPage, defaultPerPage, errorOut }) {
  const invalid = (what, shown) =>
    notFound(
      model,
      `${what} ${shown} is not valid: page numbers start at 1 and per_page is at least 1; pass integers in range`,
    );
  const number = (arg, fallback, what) => {
    if (arg === undefined) return fallback;
    if (typeof arg === "number") return arg;
    if (!errorOut) return fallback;
    throw invalid(what, show(arg.bad));
  };
  let page = number(pageArg(rawPage), 1, "page");
  let perPage = number(pageArg(rawPerPage), defaultPerPage, "per_page");
  if (maxPerPage !== null) perPage = Math.min(perPage, maxPerPage);
  if (page < 1) {
    if (errorOut) throw invalid("page", page);
    page = 1;
  }
  if (perPage < 1) {
    if (errorOut) throw invalid("per_page", perPage);
    perPage = defaultPerPage;
  }
  return { page, perPage };
}

/** One page of a query's rows and where it stands (Flask-SQLAlchemy's `Pagination`). */
export class Pagination {
  constructor({ items, page, perPage, total, maxPerPage = null }) {
    /** The rows of this page. */
    this.items = items;
    /** This page's number, from 1. */
    this.page = page;
    /** The page size (after maxPerPage). */
    this.perPage = perPage;
    /** How many rows match the query, on all pages. */
    this.total = total;
    /** The cap on perPage the page was asked with, or null. */
    this.maxPerPage = maxPerPage;
  }

  /** The number of pages (0 when there are no rows). */
  get pages() {
    return Math.ceil(this.total / this.perPage);
  }

  get hasPrev() {
    return this.page > 1;
  }

  get hasNext() {
    return this.page < this.pages;
  }

  /** The previous page's number, null on page 1. */
  get prevNum() {
    return this.hasPrev ? this.page - 1 : null;
  }

  /** The next page's number, null on the last page. */
  get nextNum() {
    return this.hasNext ? this.page + 1 : null;
  }

  /** The number (from 1) of this page's first row among all rows, 0 for an empty page. */
  get first() {
    return this.items.length === 0 ? 0 : (this.page - 1) * this.perPage + 1;
  }

  /** The number of this page's last row, 0 for an empty page. */
  get last() {
    return this.items.length === 0 ? 0 : this.first + this.items.length - 1;
  }

  /**
   * Page numbers for a pagination widget, null marking a gap; Flask-SQLAlchemy's defaults
   * give `1 2 … 5 6 7 8 9 10 11 … 19 20` for page 7 of 20.
   */
  iterPages({ leftEdge = 2, leftCurrent = 2, rightCurrent = 4, rightEdge = 2 } = {}) {
    const out = [];
    const range = (from, to) => {
      for (let n = from; n < to; n++) out.push(n);
    };
    const pagesEnd = this.pages + 1;
    if (pagesEnd === 1) return out;
    const leftEnd = Math.min(1 + leftEdge, pagesEnd);
    range(1, leftEnd);
    if (leftEnd === pagesEnd) return out;
    const midStart = Math.max(leftEnd, this.page - leftCurrent);
    const midEnd = Math.min(this.page + rightCurrent + 1, pagesEnd);
    if (midStart > leftEnd) out.push(null);
    range(midStart, midEnd);
    if (midEnd === pagesEnd) return out;
    const rightStart = Math.max(midEnd, pagesEnd - rightEdge);
    if (rightStart > midEnd) out.push(null);
    range(rightStart, pagesEnd);
    return out;
  }

  /** `JSON.stringify`/`Response.json` form: the fields and the derived numbers. */
  toJSON() {
    const { items, page, perPage, total, pages, hasPrev, hasNext, prevNum, nextNum } = this;
    return { items, page, perPage, total, pages, hasPrev, hasNext, prevNum, nextNum };
  }
}

/** The models of `models` selected by `options.bindKey` (undefined: all; null: the default bind). */
function ofBind(models, options, where) {
  if (!Array.isArray(models) || !models.every((m) => m instanceof Model)) {
    throw new ConfigError(`${where}(session, models): models must be an array of defineModel() results`);
  }
  if (options === null || typeof options !== "object") throw new ConfigError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (key !== "bindKey") throw new ConfigError(`${where}: unknown option ${show(key)}; the only option is bindKey`);
  }
  const { bindKey } = options;
  return bindKey === undefined ? models : models.filter((m) => m.bindKey === bindKey);
}

/**
 * Creates the tables of `models` that do not exist yet (`db.create_all()`); running it again
 * changes nothing. It runs in `session`: commit to make the tables visible to other sessions.
 * `{ bindKey }` selects the models of one bind (null: those without a bindKey).
 */
export async function createAll(session, models, options = {}) {
  checkSession(session, "createAll(session, models)");
  for (const model of ofBind(models, options, "createAll")) {
    const columns = Object.entries(model.columns).map(([name, spec]) => {
      if (spec.primaryKey) return `${quote(name)} ${spec.type} PRIMARY KEY`;
      return `${quote(name)} ${spec.type}${spec.nullable ? "" : " NOT NULL"}${spec.unique ? " UNIQUE" : ""}`;
    });
    await on(model, session).execute(`CREATE TABLE IF NOT EXISTS ${quote(model.table)} (${columns.join(", ")})`);
  }
}

/** Drops the tables of `models` that exist, with their rows (`db.drop_all()`); idempotent. */
export async function dropAll(session, models, options = {}) {
  checkSession(session, "dropAll(session, models)");
  for (const model of ofBind(models, options, "dropAll")) {
    await on(model, session).execute(`DROP TABLE IF EXISTS ${quote(model.table)}`);
  }
}
