//! The one error type of gluebind. Every variant says what went wrong and what to do about it.

use std::fmt;

/// Result alias used across gluebind.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gluebind.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a fallback arm.
/// Each message names the problem and the next step, so it can be logged or shown as is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (a bad engine URL, a factory without an engine, ...).
    Config {
        /// What is wrong and what is accepted instead.
        message: String,
    },
    /// A SQL statement could not be parsed, planned or executed. The session's data is
    /// unchanged by the failed statement (statements are atomic).
    Sql {
        /// GlueSQL's description of the failure.
        message: String,
    },
    /// A UNIQUE or PRIMARY KEY constraint would be violated, either by the statement itself or,
    /// at commit, by a row another session committed first. The offending write is not applied.
    Unique {
        /// Table of the constraint.
        table: String,
        /// Column of the constraint.
        column: String,
        /// The duplicate value, rendered as text.
        value: String,
    },
    /// Another session committed first a change to a row (or table) this session wrote — or,
    /// under [`crate::Isolation::Serializable`] (the default), read. This session's pending
    /// writes were discarded; run the whole unit of work again from fresh reads
    /// ([`crate::Session::transaction`] does).
    Conflict {
        /// Table where the conflict was found.
        table: String,
        /// What collided (a row key or the table's schema).
        detail: String,
    },
    /// A session was requested for a scope that is not active: the fetch event has ended, or
    /// the scope belongs to another registry.
    OutsideScope {
        /// Why the scope is not usable.
        reason: String,
    },
    /// The session was already removed (its fetch event ended); it can no longer run
    /// statements.
    SessionClosed {
        /// Id of the closed session.
        session_id: String,
    },
    /// The storage backend failed.
    Storage {
        /// The backend's description of the failure.
        message: String,
    },
    /// No row was found where one was required: `get_or_404`, `first_or_404`, `one()`, a
    /// model's `update`/`delete`, or a page that does not exist (Flask-SQLAlchemy's
    /// `abort(404)`). HTTP handlers answer 404 ([`Error::http_status`]).
    NotFound {
        /// The model's table.
        table: String,
        /// What was looked for.
        detail: String,
    },
    /// `one()` found more than one row (SQLAlchemy's `MultipleResultsFound`).
    MultipleResults {
        /// The model's table.
        table: String,
    },
    /// A call into the Workers runtime failed in a handler that returns gluebind's
    /// [`Result`] (reading the request body, building a response, a binding): `?` on a
    /// `worker::Result` gives this error, answered 500.
    Runtime {
        /// The runtime's description of the failure.
        message: String,
    },
    /// A model's table, as stored, does not have the model's shape (found at start-up by
    /// `create_all` and `Migrations::run`): a column the model added, a type or nullability
    /// that changed. That table is left as it was; write the migration step the message
    /// suggests.
    Drift {
        /// The model's table.
        table: String,
        /// The differences, and the migration step that would resolve them.
        message: String,
    },
    /// A migration step could not be applied, or the database's record of applied steps does
    /// not match the code's steps (a step changed after it ran, or the database ran steps this
    /// code does not have). Nothing of the failing step was written.
    Migration {
        /// The step's name.
        step: String,
        /// What went wrong and what to do.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub(crate) fn conflict(table: &str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            table: table.to_owned(),
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Sql`].
    pub(crate) fn sql(message: impl Into<String>) -> Self {
        Self::Sql {
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for the variant (`CONFIG`, `SQL`, `UNIQUE`, `CONFLICT`,
    /// `OUTSIDE_SCOPE`, `SESSION_CLOSED`, `STORAGE`, `NOT_FOUND`, `MULTIPLE_RESULTS`,
    /// `RUNTIME`, `DRIFT`, `MIGRATION`), for logs, HTTP mapping and the JS bindings.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "CONFIG",
            Self::Sql { .. } => "SQL",
            Self::Unique { .. } => "UNIQUE",
            Self::Conflict { .. } => "CONFLICT",
            Self::OutsideScope { .. } => "OUTSIDE_SCOPE",
            Self::SessionClosed { .. } => "SESSION_CLOSED",
            Self::Storage { .. } => "STORAGE",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::MultipleResults { .. } => "MULTIPLE_RESULTS",
            Self::Runtime { .. } => "RUNTIME",
            Self::Drift { .. } => "DRIFT",
            Self::Migration { .. } => "MIGRATION",
        }
    }

    /// The HTTP status a handler usually answers with: 404 for [`Error::NotFound`], 409 for
    /// [`Error::Unique`] and [`Error::Conflict`], 500 otherwise (a bug or an outage, not the
    /// client's doing).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Unique { .. } | Self::Conflict { .. } => 409,
            _ => 500,
        }
    }

    /// True for the errors a client can resolve by retrying the whole unit of work
    /// ([`Error::Conflict`]); HTTP handlers usually answer 409 for these and for
    /// [`Error::Unique`].
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Unique { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { message } => write!(f, "configuration error: {message}"),
            Self::Sql { message } => write!(f, "SQL error: {message}"),
            Self::Unique {
                table,
                column,
                value,
            } => write!(
                f,
                "unique constraint violated: {table}.{column} already has the value {value}; \
                 use another value or update the existing row"
            ),
            Self::Conflict { table, detail } => write!(
                f,
                "conflict on table {table}: {detail} was changed by another session that \
                 committed first; this session's pending writes were discarded: retry the whole \
                 unit of work from fresh reads (`transaction()` does it for you)"
            ),
            Self::OutsideScope { reason } => write!(
                f,
                "no session outside a request scope: {reason}; open a scope per fetch event \
                 with `Registry::begin()` (or wrap the handler with `gluebind::wasm::serve`) and \
                 pass that scope down to where the session is needed"
            ),
            Self::SessionClosed { session_id } => write!(
                f,
                "session {session_id} is closed: it was removed when its fetch event ended; \
                 do not keep sessions beyond the event, ask the registry for the current one"
            ),
            Self::Storage { message } => write!(f, "storage error: {message}"),
            Self::NotFound { table, detail } => write!(f, "not found in table {table}: {detail}"),
            Self::MultipleResults { table } => write!(
                f,
                "one() expected exactly one row of table {table} and found several; filter \
                 by the primary key or a unique column, or use first() or all()"
            ),
            Self::Runtime { message } => write!(f, "Workers runtime error: {message}"),
            Self::Drift { table, message } => {
                write!(f, "table {table} does not match its model: {message}")
            }
            Self::Migration { step, message } => write!(f, "migration {step}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_actionable() {
        let e = Error::OutsideScope {
            reason: "scope 3 has ended".into(),
        };
        assert_eq!(e.code(), "OUTSIDE_SCOPE");
        assert!(e.to_string().contains("Registry::begin()"));
        let c = Error::Conflict {
            table: "users".into(),
            detail: "row 1".into(),
        };
        assert!(c.is_conflict());
        assert!(c.to_string().contains("retry the whole unit of work"));
        assert!(!Error::config("x").is_conflict());
        let n = Error::NotFound {
            table: "users".into(),
            detail: "no row with id = 7".into(),
        };
        assert_eq!((n.code(), n.http_status()), ("NOT_FOUND", 404));
        assert!(n.to_string().contains("id = 7"), "{n}");
        assert_eq!(c.http_status(), 409);
        assert_eq!(Error::config("x").http_status(), 500);
    }
}
