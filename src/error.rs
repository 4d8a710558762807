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
    /// Another session committed a change to the same row (or table) first: first committer
    /// wins. This session's pending writes were discarded; re-read and retry the unit of work.
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
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Sql`].
    pub(crate) fn sql(message: impl Into<String>) -> Self {
        Self::Sql {
            message: message.into(),
        }
    }

    /// A stable, machine-readable code for the variant (`CONFIG`, `SQL`, `UNIQUE`, `CONFLICT`,
    /// `OUTSIDE_SCOPE`, `SESSION_CLOSED`, `STORAGE`), for logs, HTTP mapping and the JS
    /// bindings.
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
                 committed first; this session's pending writes were discarded, re-read and retry"
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
        assert!(c.to_string().contains("retry"));
        assert!(!Error::config("x").is_conflict());
    }
}
