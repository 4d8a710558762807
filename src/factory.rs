//! `SessionFactory`: SQLAlchemy's `sessionmaker`, configured once, opening sessions.

use crate::{
    engine::Engine,
    error::{Error, Result},
    hooks::{Committed, Hooks},
    model::Change,
    session::Session,
};
use std::{
    cell::{Cell, OnceCell},
    collections::BTreeMap,
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

/// How much a session's commit checks of what it read (SQL's isolation levels; both levels
/// always refuse lost updates, first committer wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// The default: `commit()` also fails with [`Error::Conflict`] when a row the session
    /// read (by primary key), or a table it scanned (any query that is not a primary-key
    /// lookup), was changed by a commit after the session's snapshot. Every committed unit of
    /// work then behaves as if the units had run one after the other (PostgreSQL's
    /// SERIALIZABLE, validated optimistically like FoundationDB's read-conflict ranges): the
    /// "count, check a limit, insert" pattern holds its rule under concurrency. Read-only
    /// sessions never fail; retry a failed unit of work whole (`Registry::transaction` does).
    #[default]
    Serializable,
    /// Snapshot isolation (PostgreSQL's REPEATABLE READ): reads are not checked, only writes.
    /// Fewer conflicts, but two sessions may each read what the other then changes (write
    /// skew): a rule that spans rows ("at most 5 notes per user") can be broken.
    Snapshot,
}

/// Builder for [`SessionFactory`]; start with [`SessionFactory::builder`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct SessionFactoryBuilder {
    engine: Option<Engine>,
    autoflush: bool,
    teardown: TeardownPolicy,
    binds: BTreeMap<String, Engine>,
    record_queries: bool,
    hooks: Hooks,
    isolation: Isolation,
}

/// What every session of one factory shares: its settings, bind engines and hooks.
#[derive(Debug, Default)]
pub(crate) struct Config {
    pub autoflush: bool,
    pub teardown: TeardownPolicy,
    /// Engines of the bind keys (Flask-SQLAlchemy's `SQLALCHEMY_BINDS`).
    pub binds: BTreeMap<String, Engine>,
    pub record_queries: bool,
    pub hooks: Hooks,
    pub isolation: Isolation,
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

    /// Binds models with `#[gluebind(bind_key = "key")]` to `engine` (one entry of
    /// Flask-SQLAlchemy's `SQLALCHEMY_BINDS`), e.g. `memory://` cache tables beside `kv://`
    /// durable ones. Models without a bind key use the engine of [`bind`](Self::bind). See
    /// [`Session::for_bind`] for how a session spans several engines.
    pub fn bind_key(mut self, key: impl Into<String>, engine: Engine) -> Self {
        self.binds.insert(key.into(), engine);
        self
    }

    /// Records every statement sessions run — SQL, parameters, duration, rows
    /// (Flask-SQLAlchemy's `SQLALCHEMY_RECORD_QUERIES`); read them with
    /// [`Session::recorded_queries`]. Off by default: meant for debugging.
    pub fn record_queries(mut self, on: bool) -> Self {
        self.record_queries = on;
        self
    }

    /// The isolation level of the factory's sessions (default [`Isolation::Serializable`]);
    /// a session can change its own with [`Session::set_isolation`].
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Runs `hook` in [`Session::commit`] after the pending model objects are flushed and
    /// before anything is committed, with the model changes about to be committed
    /// (Flask-SQLAlchemy's `before_models_committed` signal). An error from the hook stops the
    /// commit: nothing is committed and the writes stay pending. Hooks run in the order added.
    pub fn before_commit(
        mut self,
        hook: impl Fn(&Session, &[Change]) -> Result<()> + 'static,
    ) -> Self {
        self.hooks.before.push(Rc::new(hook));
        self
    }

    /// Runs `hook` after a commit succeeded, with what it committed (Flask-SQLAlchemy's
    /// `models_committed` signal). Hooks cannot fail the commit (it already happened); they run
    /// in the order added, also for commits made by teardown.
    pub fn after_commit(mut self, hook: impl Fn(&Committed<'_>) + 'static) -> Self {
        self.hooks.after.push(Rc::new(hook));
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
            config: Rc::new(Config {
                autoflush: self.autoflush,
                teardown: self.teardown,
                binds: self.binds,
                record_queries: self.record_queries,
                hooks: self.hooks,
                isolation: self.isolation,
            }),
            prefix: Rc::new(OnceCell::new()),
            opened: Rc::new(Cell::new(0)),
        })
    }
}

/// Opens sessions bound to one engine with one configuration (SQLAlchemy's `sessionmaker`).
#[derive(Clone)]
pub struct SessionFactory {
    engine: Engine,
    config: Rc<Config>,
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
            .field("autoflush", &self.config.autoflush)
            .field("teardown", &self.config.teardown)
            .field("binds", &self.config.binds.keys().collect::<Vec<_>>())
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
        self.config.teardown
    }

    /// The engine of bind key `key`, if the factory has one.
    #[must_use]
    pub fn bind_engine(&self, key: &str) -> Option<&Engine> {
        self.config.binds.get(key)
    }

    /// Every engine: the default one first, then the binds' in key order.
    pub fn engines(&self) -> impl Iterator<Item = &Engine> {
        std::iter::once(&self.engine).chain(self.config.binds.values())
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
            Rc::clone(&self.config),
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
