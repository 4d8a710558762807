//! `Scope`: the lifetime of one fetch event, the key the registry maps to its session.
//!
//! Flask-SQLAlchemy keys `scoped_session` on the app context; a Worker has no such implicit
//! context that survives interleaved `.await`s safely, so the scope is an explicit value the
//! glue creates per event and the handler passes down.

use std::fmt;

/// Identifier of a scope, unique within its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub(crate) u64);

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One fetch event's handle to the registry. Cheap to clone; pass it to every function that
/// needs the event's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub(crate) id: ScopeId,
    /// Identifies the registry that opened the scope.
    pub(crate) registry: u64,
}

impl Scope {
    /// The scope's id.
    #[must_use]
    pub fn id(&self) -> ScopeId {
        self.id
    }
}
