// The package's error classes. Every error gluebind throws is a GluebindError with a stable
// `code`; the Rust core's message is kept verbatim (`message`), and the variant's fields
// (`table`, `column`, `value`, `detail`, `sessionId`, `reason`) are own properties.

export class GluebindError extends Error {
  /** @type {string} */
  static code = "GLUEBIND";

  constructor(message, details = {}, options = undefined) {
    super(message, options);
    this.name = new.target.name;
    this.code = new.target.code;
    for (const [key, value] of Object.entries(details)) {
      if (!(key in this)) this[key] = value;
    }
  }
}

/** A bad URL or option. */
export class ConfigError extends GluebindError {
  static code = "CONFIG";
}

/** SQL that does not parse, plan or run; parameters that do not match. */
export class SqlError extends GluebindError {
  static code = "SQL";
}

/** A UNIQUE or PRIMARY KEY value already taken (in the statement, or found at commit). */
export class UniqueError extends GluebindError {
  static code = "UNIQUE";
}

/**
 * Another session committed first a change to a row this session wrote — or, under serializable
 * isolation (the default), read: run the unit of work again (db.transaction does).
 */
export class ConflictError extends GluebindError {
  static code = "CONFLICT";
}

/** `db.session()` outside a request scope, or after the scope ended. */
export class OutsideScopeError extends GluebindError {
  static code = "OUTSIDE_SCOPE";
}

/** A session used after its fetch event ended (it was removed at teardown). */
export class SessionClosedError extends GluebindError {
  static code = "SESSION_CLOSED";
}

/** The storage backend failed. */
export class StorageError extends GluebindError {
  static code = "STORAGE";
}

/**
 * No row where the model layer needed one: `getOr404`, `firstOr404`, `one()`, `update`/`delete`
 * of a missing key, a page that does not exist (Flask-SQLAlchemy's `abort(404)`).
 */
export class NotFoundError extends GluebindError {
  static code = "NOT_FOUND";
  /** The HTTP status to answer with. */
  status = 404;
}

/** `one()` found more than one row (SQLAlchemy's `MultipleResultsFound`). */
export class MultipleResultsError extends GluebindError {
  static code = "MULTIPLE_RESULTS";
}

/**
 * A model's table, as stored, does not have the model's shape (found by `createAll` and
 * `migrate`): the message names the difference and the migration step to write.
 */
export class DriftError extends GluebindError {
  static code = "DRIFT";
}

/**
 * A migration step failed (nothing of it was written), or the database's record of applied
 * steps does not match the code's steps. `step` names the step.
 */
export class MigrationError extends GluebindError {
  static code = "MIGRATION";
}

const BY_CODE = new Map(
  [
    ConfigError,
    SqlError,
    UniqueError,
    ConflictError,
    OutsideScopeError,
    SessionClosedError,
    StorageError,
    NotFoundError,
    MultipleResultsError,
    DriftError,
    MigrationError,
  ].map((cls) => [cls.code, cls]),
);

const JS_HINT = {
  OUTSIDE_SCOPE:
    " (JavaScript: call db.session() inside a handler wrapped with db.bind(...), db.run(...) or the " +
    "gluebind/hono middleware, and do not use it after the response's teardown)",
};

/**
 * The error for a gluebind error `code` with the core's `message` and fields: what the wasm
 * module throws (registered with setErrorFactory when the package loads).
 */
export function errorFromCode(code, message, details) {
  const cls = BY_CODE.get(code) ?? GluebindError;
  const err = new cls(message + (JS_HINT[code] ?? ""), details ?? {});
  if (cls === GluebindError) err.code = code;
  return err;
}
