// Models: tables described once in JavaScript (`defineModel`), created with `createAll`, read
// and written through the model — Flask-SQLAlchemy's `db.Model`, `Model.query`, `create_all`,
// `get_or_404`, `paginate` and the session's unit of work.
//
// This file is the typed builder only. The model layer is the Rust core's (src/model/ in the
// repository, reached through the wasm `ModelHandle`): it checks the column spec, turns a query
// description into SQL (src/model/sql.rs renders every statement), converts values to their
// columns' types, runs and paginates queries, and tracks objects in the session's unit of work.
// A `Query` here only records what was asked for — `{ filters, orders, limit, offset }` — and
// hands that description over; each builder call has Rust check its part at once, so a mistake
// throws where it was made.

import { ConfigError } from "./errors.js";
import { wasm } from "./wasm.js";

const described = (value) => (value === null ? "null" : Array.isArray(value) ? "an array" : typeof value);

export function checkSession(session, where) {
  if (session === null || typeof session !== "object" || typeof session.execute !== "function") {
    throw new ConfigError(
      `${where} needs a session (db.session(), c.var.session or db.openSession()), got ${described(session)}`,
    );
  }
  return session;
}

/**
 * Defines a model: the table `table` with `columns` (name → `{ type, primaryKey?, unique?,
 * nullable? }`). Columns are NOT NULL unless `nullable`; exactly one is the primary key.
 * `options.bindKey` names the model's bind (`new Gluebind({ binds })`).
 * @throws ConfigError for a bad name, type, flag or primary key.
 */
export function defineModel(table, columns, options = undefined) {
  const handle = new (wasm().ModelHandle)(table, columns, options);
  return new Model(handle);
}

/** Where a model keeps its Rust handle (the package's other modules reach it by handleOf). */
const HANDLE = Symbol("gluebind.model");

/** What defineModel returns: the table's description and the model-level verbs. */
class Model {
  /** The Rust model (rebuilt from the checked spec if the wasm instance was replaced). */
  #handle;
  #epoch;

  constructor(handle) {
    this.#handle = handle;
    this.#epoch = wasm().instanceEpoch();
    /** The table name. */
    this.table = handle.table;
    /** Column name → `{ type, primaryKey, unique, nullable }`, in definition order. */
    this.columns = Object.freeze(Object.fromEntries(Object.entries(handle.columns).map(([n, s]) => [n, Object.freeze(s)])));
    /** The primary key's column name. */
    this.primaryKey = handle.primaryKey;
    /** The model's bind (`null`: the default one). */
    this.bindKey = handle.bindKey;
    /** Column handles for conditions: `User.c.name.like("A%").or(User.c.bio.isNull())`. */
    this.c = Object.freeze(Object.fromEntries(Object.keys(this.columns).map((name) => [name, new Column(this, name)])));
    Object.freeze(this);
  }

  /** The Rust model of the current wasm instance (a panic replaces the instance). */
  get [HANDLE]() {
    const epoch = wasm().instanceEpoch();
    if (epoch !== this.#epoch) {
      this.#handle = new (wasm().ModelHandle)(this.table, this.columns, { bindKey: this.bindKey });
      this.#epoch = epoch;
    }
    return this.#handle;
  }

  /** A query over the table, in `session` (`User.query` in Flask-SQLAlchemy). */
  query(session) {
    checkSession(session, `${this.table}.query(session)`);
    this[HANDLE].checkSession(session);
    return new Query(this, session, EMPTY);
  }

  /** The row with primary key `key`, or null. */
  get(session, key) {
    return this.query(session).get(key);
  }

  /** The row with primary key `key`, or NotFoundError (404). */
  getOr404(session, key) {
    return this.query(session).getOr404(key);
  }

  /** The next value of the engine's ID sequence named after the table (on the model's bind). */
  nextId(session) {
    return this[HANDLE].nextId(checkSession(session, `${this.table}.nextId(session)`));
  }

  /**
   * Inserts a row: every NOT NULL column needs a value; absent nullable ones are NULL. Resolves
   * to the row as inserted (all columns, values as given; numbers and bigints as the column
   * reads them).
   * @throws UniqueError when the key or a unique value is taken; SqlError for a bad row.
   */
  async insert(session, values) {
    return this[HANDLE].insert(checkSession(session, `${this.table}.insert(session, row)`), values);
  }

  /**
   * Changes the row with primary key `key`: SETs only the columns of `changes` whose value
   * differs from the stored one (undefined values are left out). Resolves to the row after
   * the change.
   * @throws NotFoundError when no row has the key; UniqueError; SqlError for a bad change.
   */
  async update(session, key, changes) {
    return this[HANDLE].update(checkSession(session, `${this.table}.update(session, key, changes)`), key, changes);
  }

  /**
   * Deletes the row with primary key `key`.
   * @throws NotFoundError when no row has the key.
   */
  async delete(session, key) {
    await this[HANDLE].delete(checkSession(session, `${this.table}.delete(session, key)`), key);
  }
}

/** The Rust model of `model` (a defineModel() result), for the session's unit-of-work verbs. */
export function handleOf(model, where) {
  if (!(model instanceof Model)) {
    throw new ConfigError(`${where} needs a model (a defineModel() result) first, got ${described(model)}`);
  }
  return model[HANDLE];
}

/**
 * A condition on a model's rows, for `query.filter(condition)`: from the column handles
 * (`User.c.age.ge(18)`), combined with `and`, `or` and `not` (SQL's NULL semantics: a NULL
 * compares neither true nor false, and `not` of such a comparison is not true either).
 */
export class Condition {
  #model;
  #description;

  constructor(model, description) {
    this.#model = model;
    this.#description = description;
    Object.freeze(this);
  }

  /** Both this and every other condition hold. */
  and(...others) {
    return combine("and", [this, ...others]);
  }

  /** This or another condition holds. */
  or(...others) {
    return combine("or", [this, ...others]);
  }

  /** This condition does not hold. */
  not() {
    return new Condition(this.#model, { not: this.#description });
  }

  /** The condition's model, after checking it is `model`. */
  static describe(condition, model, where) {
    if (!(condition instanceof Condition)) {
      throw new ConfigError(`${where} needs conditions from a model's column handles (User.c.name.eq(…)), got ${described(condition)}`);
    }
    if (model !== null && condition.#model !== model) {
      throw new ConfigError(`${where}: a condition on ${condition.#model.table} cannot filter ${model.table}`);
    }
    return [condition.#model, condition.#description];
  }
}

function combine(kind, conditions) {
  if (conditions.length === 0) throw new ConfigError(`${kind}() needs at least one condition`);
  const [model] = Condition.describe(conditions[0], null, kind);
  return new Condition(model, { [kind]: conditions.map((c) => Condition.describe(c, model, kind)[1]) });
}

/** All of the conditions hold (`and(a, b, …)`, as `a.and(b, …)`). */
export const and = (...conditions) => combine("and", conditions);
/** One of the conditions holds. */
export const or = (...conditions) => combine("or", conditions);
/** The condition does not hold. */
export const not = (condition) => {
  const [model, description] = Condition.describe(condition, null, "not");
  return new Condition(model, { not: description });
};

/** A column handle (`User.c.email`): builds the model's conditions. */
class Column {
  #model;
  #name;

  constructor(model, name) {
    this.#model = model;
    this.#name = name;
    Object.freeze(this);
  }

  #condition(op, ...value) {
    const description = [this.#name, op, ...value];
    this.#model[HANDLE].checkFilter(description, "filter");
    return new Condition(this.#model, description);
  }

  eq(value) {
    return this.#condition("eq", value);
  }
  ne(value) {
    return this.#condition("ne", value);
  }
  lt(value) {
    return this.#condition("lt", value);
  }
  le(value) {
    return this.#condition("le", value);
  }
  gt(value) {
    return this.#condition("gt", value);
  }
  ge(value) {
    return this.#condition("ge", value);
  }
  /** `%` any run of characters, `_` one character (TEXT columns); NULLs never match. */
  like(pattern) {
    return this.#condition("like", pattern);
  }
  /** One of `values` (an empty array matches nothing). */
  in(values) {
    return this.#condition("in", values);
  }
  isNull() {
    return this.#condition("isNull");
  }
  isNotNull() {
    return this.#condition("isNotNull");
  }
}

const EMPTY = Object.freeze({ filters: Object.freeze([]), orders: Object.freeze([]), limit: null, offset: null });

/**
 * A query over a model's table: filters (ANDed), order, limit and offset. Builder methods
 * return a new query, so a base query can be refined and run several times.
 */
class Query {
  #model;
  #session;
  /** The description handed to Rust: `{ filters, orders, limit, offset }`. */
  #state;

  constructor(model, session, state) {
    this.#model = model;
    this.#session = session;
    this.#state = state;
  }

  #with(changes) {
    return new Query(this.#model, this.#session, Object.freeze({ ...this.#state, ...changes }));
  }

  #filtered(conditions) {
    return this.#with({ filters: Object.freeze([...this.#state.filters, ...conditions]) });
  }

  /** Keeps the rows whose columns equal the given values (`null`: IS NULL), as SQLAlchemy's filter_by. */
  filterBy(values) {
    this.#model[HANDLE].checkFilterBy(values);
    return this.#filtered(Object.entries(values).map(([name, value]) => [name, "eq", value]));
  }

  /**
   * Keeps the rows where `column op value` holds — `eq ne lt le gt ge` compare, `like` matches
   * a pattern (TEXT columns), `in` takes an array, `isNull`/`isNotNull` take no value; `eq`
   * and `ne` with null are IS NULL / IS NOT NULL — or where a condition holds
   * (`filter(User.c.age.lt(18).or(User.c.age.isNull()))`).
   */
  filter(column, op, value) {
    if (column instanceof Condition) {
      if (arguments.length > 1) throw new ConfigError(`${this.#model.table}.filter(condition) takes one condition`);
      return this.#filtered([Condition.describe(column, this.#model, `${this.#model.table}.filter`)[1]]);
    }
    const condition = arguments.length > 2 ? [column, op, value] : [column, op];
    this.#model[HANDLE].checkFilter(condition, "filter");
    return this.#filtered([condition]);
  }

  /** Orders by columns, in turn: `"name"` ascending, `"-name"` descending. */
  orderBy(...columns) {
    for (const order of columns) this.#model[HANDLE].checkOrder(order);
    return this.#with({ orders: Object.freeze([...this.#state.orders, ...columns]) });
  }

  /** At most `n` rows. */
  limit(n) {
    this.#model[HANDLE].checkCount(n, "limit");
    return this.#with({ limit: n });
  }

  /** Skips the first `n` rows. */
  offset(n) {
    this.#model[HANDLE].checkCount(n, "offset");
    return this.#with({ offset: n });
  }

  /** The session the query runs in. */
  get session() {
    return this.#session;
  }

  /** Every matching row. */
  async all() {
    return this.#model[HANDLE].all(this.#session, this.#state);
  }

  /** The first matching row, or null. */
  async first() {
    return this.#model[HANDLE].first(this.#session, this.#state);
  }

  /** The first matching row, or NotFoundError (404). */
  async firstOr404() {
    return this.#model[HANDLE].firstOr404(this.#session, this.#state);
  }

  /** The only matching row: NotFoundError when none, MultipleResultsError when several. */
  async one() {
    return this.#model[HANDLE].one(this.#session, this.#state);
  }

  /**
   * The row with primary key `key` that also matches the filters, or null (order, limit and
   * offset do not apply). A primary-key read: one KV get at most on kv://.
   */
  async get(key) {
    return this.#model[HANDLE].get(this.#session, this.#state, key);
  }

  /** The row with primary key `key`, or NotFoundError (404) naming the table and key. */
  async getOr404(key) {
    return this.#model[HANDLE].getOr404(this.#session, this.#state, key);
  }

  /** How many rows the query yields (its limit and offset applied). */
  async count() {
    return this.#model[HANDLE].count(this.#session, this.#state);
  }

  /**
   * Deletes every row the filters match (every row without filters) in the session — one
   * `DELETE … WHERE <filters>`, part of the session until commit or rollback — and resolves to
   * how many it deleted (SQLAlchemy's `query.delete()`). The session's pending objects are
   * flushed first; tracked objects of the deleted rows are no longer tracked.
   * @throws SqlError for a query with orderBy, limit or offset (filter on the rows instead).
   */
  async delete() {
    return this.#model[HANDLE].bulkDelete(this.#session, this.#state);
  }

  /**
   * Sets the columns of `changes` (undefined ones are left out; values converted as
   * `Model.update` converts them) on every row the filters match — one `UPDATE … SET … WHERE
   * <filters>`, part of the session until commit or rollback — and resolves to how many rows
   * matched (SQLAlchemy's `query.update({...})`). The session's pending objects are flushed
   * first; tracked objects of the updated rows take the new values.
   * @throws SqlError for a query with orderBy, limit or offset, a field that is no column, the
   *   primary key, a null in a NOT NULL column; UniqueError when the values would repeat a
   *   unique value.
   */
  async update(changes) {
    return this.#model[HANDLE].bulkUpdate(this.#session, this.#state, changes);
  }

  /**
   * One page, with Flask-SQLAlchemy 3's rules (see README.md, "Models"): `page` and `perPage`
   * are integers or the strings of a query string; `maxPerPage` caps perPage; with `errorOut`
   * (default) a bad value or a page past the end (but page 1) is NotFoundError, without it
   * the default is used and a page past the end is empty.
   */
  async paginate(options = undefined) {
    return new Pagination(await this.#model[HANDLE].paginate(this.#session, this.#state, options, undefined));
  }

  /**
   * paginate() from request arguments `page` and `per_page`: a query string, URLSearchParams,
   * or an object of strings (Hono's `c.req.query()`); an absent one takes its default.
   */
  async paginateArgs(args, options = undefined) {
    if (typeof args === "string") args = new URLSearchParams(args);
    if (args === null || typeof args !== "object") {
      throw new ConfigError(`paginateArgs: args must be a query string, URLSearchParams or an object, got ${described(args)}`);
    }
    const get = (name) => (typeof args.get === "function" ? args.get(name) : Object.hasOwn(args, name) ? args[name] : null);
    const request = { page: get("page"), per_page: get("per_page") };
    return new Pagination(await this.#model[HANDLE].paginate(this.#session, this.#state, options, request));
  }
}

/**
 * One page of a query's rows and where it stands (Flask-SQLAlchemy's `Pagination`). The
 * numbers derived from `page`, `perPage`, `total` and the items are computed by the Rust core.
 */
export class Pagination {
  constructor({ items, page, perPage, total, maxPerPage = null, more = false }) {
    /** The rows of this page. */
    this.items = items;
    /** This page's number, from 1. */
    this.page = page;
    /** The page size (after maxPerPage). */
    this.perPage = perPage;
    /** How many rows match the query, on all pages; null when not counted (`count: false`). */
    this.total = total;
    /** The cap on perPage the page was asked with, or null. */
    this.maxPerPage = maxPerPage;
    /** Uncounted: whether a row follows this page (what hasNext says then). */
    this.more = more;
  }

  #numbers() {
    return wasm().paginationNumbers(this.page, this.perPage, this.total, this.items.length, this.more);
  }

  /** The number of pages (0 when there are no rows; null when not counted). */
  get pages() {
    return this.#numbers().pages;
  }

  get hasPrev() {
    return this.#numbers().hasPrev;
  }

  get hasNext() {
    return this.#numbers().hasNext;
  }

  /** The previous page's number, null on page 1. */
  get prevNum() {
    return this.#numbers().prevNum;
  }

  /** The next page's number, null on the last page. */
  get nextNum() {
    return this.#numbers().nextNum;
  }

  /** The number (from 1) of this page's first row among all rows, 0 for an empty page. */
  get first() {
    return this.#numbers().first;
  }

  /** The number of this page's last row, 0 for an empty page. */
  get last() {
    return this.#numbers().last;
  }

  /**
   * Page numbers for a pagination widget, null marking a gap; Flask-SQLAlchemy's defaults
   * (2, 2, 4, 2) give `1 2 … 5 6 7 8 9 10 11 … 19 20` for page 7 of 20.
   */
  iterPages({ leftEdge, leftCurrent, rightCurrent, rightEdge } = {}) {
    return wasm().iterPages(this.page, this.perPage, this.total, leftEdge, leftCurrent, rightCurrent, rightEdge);
  }

  /** `JSON.stringify`/`Response.json` form: the fields and the derived numbers. */
  toJSON() {
    const { items, page, perPage, total } = this;
    const { pages, hasPrev, hasNext, prevNum, nextNum } = this.#numbers();
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
    if (key !== "bindKey") throw new ConfigError(`${where}: unknown option ${JSON.stringify(key)}; the only option is bindKey`);
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
  for (const model of ofBind(models, options, "createAll")) await model[HANDLE].create(session);
}

/** Drops the tables of `models` that exist, with their rows (`db.drop_all()`); idempotent. */
export async function dropAll(session, models, options = {}) {
  checkSession(session, "dropAll(session, models)");
  for (const model of ofBind(models, options, "dropAll")) await model[HANDLE].drop(session);
}

/**
 * Adds the unit-of-work verbs to the wasm `Session` class (called once by install()):
 * `session.add(User, object)`, `session.delete(User, object)`, `session.get(User, key)`; the
 * Rust session tracks the objects (`session.flush()` is its own).
 */
export function installSessionVerbs(Session) {
  Object.defineProperties(Session.prototype, {
    add: {
      value(model, object) {
        return this.addObject(handleOf(model, "session.add(Model, object)"), object);
      },
      configurable: true,
      writable: true,
    },
    delete: {
      value(model, object) {
        this.deleteObject(handleOf(model, "session.delete(Model, object)"), object);
      },
      configurable: true,
      writable: true,
    },
    get: {
      value(model, key) {
        return this.getObject(handleOf(model, "session.get(Model, key)"), key);
      },
      configurable: true,
      writable: true,
    },
  });
}
