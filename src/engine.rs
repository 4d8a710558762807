//! `Engine`: the committed state of one database URL, shared by every session of an isolate.
//!
//! The analog of SQLAlchemy's `create_engine(url)`: create one per URL, once per isolate (the
//! [`crate::Registry`] holds it). Cloning an `Engine` is cheap and yields a handle to the same
//! database.

use crate::{
    error::{Error, Result},
    snapshot::Database,
    storage::memory::{Applied, Committed},
    url::EngineUrl,
    workspace::Workspace,
};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    fmt,
    rc::Rc,
};

struct Inner {
    url: EngineUrl,
    committed: RefCell<Committed>,
    /// Key counter for tables without a primary key (shared by all sessions).
    row_ids: Rc<Cell<i64>>,
    /// Named ID sequences (see [`Engine::next_id`]).
    sequences: RefCell<HashMap<String, i64>>,
}

/// A database: committed data behind a URL, shared by every session of the isolate.
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("url", &self.inner.url.as_string())
            .field("version", &self.inner.committed.borrow().version)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates an engine from a URL: `memory://` (default database) or `memory://NAME`.
    ///
    /// Every call creates a new, empty database; keep the engine (or the registry holding
    /// it) for the lifetime of the isolate.
    ///
    /// # Errors
    /// [`Error::Config`] naming the accepted schemes when the URL is not valid.
    ///
    /// ```
    /// let engine = gluebind::Engine::from_url("memory://").unwrap();
    /// assert_eq!(engine.url(), "memory://");
    /// assert!(gluebind::Engine::from_url("postgres://db").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let url = EngineUrl::parse(url)?;
        Ok(Self {
            inner: Rc::new(Inner {
                url,
                committed: RefCell::new(Committed::default()),
                row_ids: Rc::new(Cell::new(0)),
                sequences: RefCell::new(HashMap::new()),
            }),
        })
    }

    /// The engine's URL in canonical form.
    #[must_use]
    pub fn url(&self) -> String {
        self.inner.url.as_string()
    }

    /// The parsed URL.
    #[must_use]
    pub fn engine_url(&self) -> &EngineUrl {
        &self.inner.url
    }

    /// Number of commits applied so far.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.inner.committed.borrow().version
    }

    /// True when both handles point at the same database.
    #[must_use]
    pub fn same_as(&self, other: &Engine) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Allocates the next value of the ID sequence `name`, unique across all sessions of this
    /// engine (like a PostgreSQL sequence: not rolled back, so a rolled-back insert leaves a
    /// gap). A sequence named after a table starts above that table's largest committed
    /// integer primary key and skips past keys committed by explicit inserts.
    ///
    /// On `memory://` this is an isolate-local counter. A KV engine cannot offer it that way
    /// (KV has no atomic increment and many isolates write at once): there IDs come from
    /// isolate-unique blocks or random 63-bit values, documented with that engine.
    ///
    /// # Errors
    /// [`Error::Storage`] when the sequence is exhausted.
    pub fn next_id(&self, name: &str) -> Result<i64> {
        let floor = self
            .inner
            .committed
            .borrow()
            .max_integer_key(name)
            .unwrap_or(0);
        let mut sequences = self.inner.sequences.borrow_mut();
        let current = sequences.entry(name.to_owned()).or_insert(0);
        let next = (*current)
            .max(floor)
            .checked_add(1)
            .ok_or_else(|| Error::Storage {
                message: format!("ID sequence {name:?} is exhausted (reached i64::MAX)"),
            })?;
        *current = next;
        Ok(next)
    }

    /// A fresh workspace over the latest committed state (O(1)).
    pub(crate) fn workspace(&self) -> Workspace {
        Workspace::new(self.snapshot(), Rc::clone(&self.inner.row_ids))
    }

    pub(crate) fn snapshot(&self) -> Database {
        self.inner.committed.borrow().db.clone()
    }

    /// Validates and applies a session's write-set atomically (first committer wins).
    pub(crate) fn apply(&self, ws: &Workspace) -> Result<Applied> {
        let mut committed = self.inner.committed.borrow_mut();
        let (next, applied) = committed.apply(ws)?;
        *committed = next;
        Ok(applied)
    }

    /// Makes applied commits durable. On `memory://` the isolate's memory is the only copy,
    /// so there is nothing to write; durable engines do their I/O here, and the completion
    /// callback awaits it after every event.
    ///
    /// # Errors
    /// [`Error::Storage`] when the backend fails (never on `memory://`).
    #[allow(clippy::unused_async)] // the seam is async for the durable backends
    pub async fn flush(&self) -> Result<usize> {
        match self.inner.url {
            EngineUrl::Memory { .. } => Ok(0),
        }
    }
}
