//! `SessionFactory`: SQLAlchemy's `sessionmaker`, configured once, opening sessions.

use crate::{
    engine::Engine,
    error::{Error, Result},
    session::Session,
};
use std::{
    cell::{Cell, OnceCell},
    fmt,
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

/// What the completion callback does with writes a handler left uncommitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TeardownPolicy {
    /// Discard them (the default, as in Flask-SQLAlchemy 3: commit explicitly).
    #[default]
    Rollback,
    /// Commit them after the response was sent (write-behind). The client never learns of a
    /// conflict, and the platform may cut the callback short: use it only for writes that
    /// cannot conflict and may be lost (counters, logs). A failed handler still rolls back.
    Commit,
}

/// Builder for [`SessionFactory`]; start with [`SessionFactory::builder`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct SessionFactoryBuilder {
    engine: Option<Engine>,
    autoflush: bool,
    teardown: TeardownPolicy,
}

impl SessionFactoryBuilder {
    /// The engine sessions run on (required).
    pub fn bind(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Whether pending model objects are flushed before queries (default `true`, as in
    /// SQLAlchemy). Plain SQL always reads the session's own writes.
    pub fn autoflush(mut self, autoflush: bool) -> Self {
        self.autoflush = autoflush;
        self
    }

    /// What teardown does with uncommitted writes (default [`TeardownPolicy::Rollback`]).
    pub fn teardown(mut self, policy: TeardownPolicy) -> Self {
        self.teardown = policy;
        self
    }

    /// Builds the factory.
    ///
    /// # Errors
    /// [`Error::Config`] when no engine was bound.
    pub fn build(self) -> Result<SessionFactory> {
        let engine = self.engine.ok_or_else(|| {
            Error::config(
                "SessionFactory has no engine: call .bind(Engine::from_url(\"memory://\")?) \
                 before .build()",
            )
        })?;
        Ok(SessionFactory {
            engine,
            autoflush: self.autoflush,
            teardown: self.teardown,
            prefix: Rc::new(OnceCell::new()),
            opened: Rc::new(Cell::new(0)),
        })
    }
}

/// Opens sessions bound to one engine with one configuration (SQLAlchemy's `sessionmaker`).
#[derive(Clone)]
pub struct SessionFactory {
    engine: Engine,
    autoflush: bool,
    teardown: TeardownPolicy,
    /// Random per-factory prefix so session ids differ across isolates and restarts. Drawn on
    /// the first `open()`, not at construction: Workers forbid random values in global scope,
    /// which is where a JavaScript app creates its registry.
    prefix: Rc<OnceCell<String>>,
    opened: Rc<Cell<u64>>,
}

impl fmt::Debug for SessionFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFactory")
            .field("engine", &self.engine.url())
            .field("autoflush", &self.autoflush)
            .field("teardown", &self.teardown)
            .finish_non_exhaustive()
    }
}

impl SessionFactory {
    /// A builder with the defaults: autoflush on, teardown [`TeardownPolicy::Rollback`].
    pub fn builder() -> SessionFactoryBuilder {
        SessionFactoryBuilder {
            autoflush: true,
            ..SessionFactoryBuilder::default()
        }
    }

    /// The bound engine.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The teardown policy given to new sessions.
    #[must_use]
    pub fn teardown(&self) -> TeardownPolicy {
        self.teardown
    }

    /// Opens a new session on the latest committed state.
    #[must_use]
    pub fn open(&self) -> Session {
        let n = self.opened.get() + 1;
        self.opened.set(n);
        let prefix = self.prefix.get_or_init(isolate_token);
        Session::new(
            format!("{prefix}-{n}"),
            self.engine.clone(),
            self.autoflush,
            self.teardown,
        )
    }
}

/// A short random token (8 hex digits) identifying this factory instance.
fn isolate_token() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No entropy source: still unique within the process.
        let n = FALLBACK.fetch_add(1, Ordering::Relaxed);
        return format!("f{n:07x}");
    }
    format!("{:08x}", u32::from_le_bytes(bytes))
}
