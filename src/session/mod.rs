//! `Session`: one unit of work over an engine, with snapshot isolation.
//!
//! A session sees the committed state as of its start (or its last commit) plus its own
//! writes; other sessions never see its writes until [`Session::commit`]. `rollback()` or
//! dropping the last handle discards them. Handles are cheap clones of one session, so a fetch
//! event can reach "its" session from anywhere it passes the scope.
//!
//! The [`Session`] API, by the file that implements it:
//!
//! | | |
//! |---|---|
//! | statements (`execute.rs`) | [`Session::execute`], [`Session::execute_batch`], [`Session::execute_dyn`] |
//! | ending the unit of work (`commit.rs`) | [`Session::commit`], [`Session::commit_deferred`], [`Session::rollback`], [`Session::is_deferred`] |
//! | binds (`binds.rs`) | [`Session::for_bind`], [`Session::bind_key`] |
//! | model objects (`crate::model::unit`) | [`Session::add`], [`Session::delete`], [`Session::get`], [`Session::flush`] |
//! | state (here) | [`Session::id`], [`Session::engine`], [`Session::is_dirty`], [`Session::is_closed`], [`Session::next_id`], [`Session::kv_ops`], [`Session::recorded_queries`] |
//!
//! The session's GlueSQL storage — its snapshot plus its writes — is [`store`].

mod binds;
mod commit;
mod execute;
mod narrow;
mod schema;
pub(crate) mod store;
mod transaction;

use crate::{
    engine::Engine,
    error::{Error, Result},
    factory::{Config, Isolation, TeardownPolicy},
    model::Unit,
    recording::{RecordedQuery, Recorder},
};
use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    fmt,
    rc::Rc,
};
use store::SessionStore;

/// What [`Session::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitInfo {
    /// Engine version created by this commit (`None` when there was nothing to commit).
    pub version: Option<u64>,
    /// Rows inserted, updated or deleted.
    pub rows_written: usize,
    /// Tables created, altered or dropped.
    pub tables_changed: usize,
}

/// How a session was finished when its scope was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finish {
    /// No writes were pending.
    Clean,
    /// Pending writes were committed (teardown policy [`TeardownPolicy::Commit`]).
    Committed,
    /// Pending writes were discarded (policy [`TeardownPolicy::Rollback`], or the handler
    /// failed).
    RolledBack,
}

struct Inner {
    id: String,
    engine: Engine,
    config: Rc<Config>,
    /// The bind key of a bind's session (see [`Session::for_bind`]); `None` for the session
    /// of the default engine, which owns the binds' sessions and the model unit of work.
    bind_key: Option<String>,
    /// Sessions of the factory's bind keys, opened on first use.
    binds: RefCell<BTreeMap<String, Session>>,
    /// Model objects: identity map and pending inserts, updates, deletes.
    unit: RefCell<Unit>,
    /// Shared with the bind sessions, when the factory records queries.
    recorder: Option<Rc<Recorder>>,
    /// Its snapshot plus its writes; `None` once the session is closed.
    store: RefCell<Option<SessionStore>>,
    /// True while a commit awaits its engine.
    committing: Cell<bool>,
    /// KV operations this session and its binds used (shared with the binds: the budget,
    /// each engine's `max_ops`, is per fetch event, not per engine).
    kv_ops: Rc<Cell<u64>>,
    /// Set by [`Session::commit_deferred`]: teardown commits the pending writes.
    deferred: Cell<bool>,
    /// What its commits check of its reads (the factory's, unless set on the session).
    isolation: Cell<Isolation>,
    /// While set (a migration's data step runs): why `commit`, `rollback` and `transaction`
    /// are refused — the unit of work is not the caller's to end.
    guard: Cell<Option<&'static str>>,
}

/// One unit of work: SQL with bound parameters, read-your-writes, atomic commit.
///
/// ```
/// # pollster::block_on(async {
/// use gluebind::{params, Engine, SessionFactory};
/// let factory = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?;
/// let session = factory.open();
/// session.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)").await?;
/// session.execute("INSERT INTO t VALUES ($1, $2)", params![1i64, "ada"]).await?;
/// session.commit().await?;
/// let rows = session.execute("SELECT name FROM t WHERE id = $1", params![1i64]).await?.into_rows()?;
/// assert_eq!(rows.get(0).unwrap().get::<String>("name")?, "ada");
/// # Ok::<(), gluebind::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Rc<Inner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("engine", &self.inner.engine.url())
            .field("closed", &self.is_closed())
            .field("dirty", &self.is_dirty())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(id: String, engine: Engine, config: Rc<Config>) -> Self {
        let recorder = config.record_queries.then(Rc::default);
        Self::with(id, engine, config, None, recorder, Rc::default())
    }

    fn with(
        id: String,
        engine: Engine,
        config: Rc<Config>,
        bind_key: Option<String>,
        recorder: Option<Rc<Recorder>>,
        kv_ops: Rc<Cell<u64>>,
    ) -> Self {
        let store = engine.session_store();
        let isolation = config.isolation;
        Self {
            inner: Rc::new(Inner {
                id,
                engine,
                config,
                bind_key,
                binds: RefCell::new(BTreeMap::new()),
                unit: RefCell::new(Unit::default()),
                recorder,
                store: RefCell::new(Some(store)),
                committing: Cell::new(false),
                isolation: Cell::new(isolation),
                guard: Cell::new(None),
                kv_ops,
                deferred: Cell::new(false),
            }),
        }
    }

    /// The session's id, unique within the isolate (and, with high probability, across
    /// isolates): what the demo reports in `x-gluebind-session`.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The engine this session is bound to.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The factory's autoflush setting. SQL statements always see the session's own writes
    /// (they execute on the session's snapshot directly); the flag governs pending model
    /// objects of the model layer.
    #[must_use]
    pub fn autoflush(&self) -> bool {
        self.inner.config.autoflush
    }

    /// The isolation level its commits check (see [`Isolation`]).
    #[must_use]
    pub fn isolation(&self) -> Isolation {
        self.inner.isolation.get()
    }

    /// Sets the isolation level of this session's commits (and its binds'), from now on; the
    /// factory's ([`crate::SessionFactoryBuilder::isolation`]) is the default. Reads are
    /// recorded either way, so it may be changed at any point before `commit()`.
    pub fn set_isolation(&self, isolation: Isolation) {
        self.inner.isolation.set(isolation);
        for bind in self.bind_sessions() {
            bind.inner.isolation.set(isolation);
        }
    }

    /// What teardown does with writes still pending when the fetch event ends.
    #[must_use]
    pub fn teardown_policy(&self) -> TeardownPolicy {
        self.inner.config.teardown
    }

    /// True when writes are pending (not yet committed), in this session, a bind's session
    /// or as model objects not flushed yet.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.has_writes()
            || self.bind_sessions().iter().any(Session::has_writes)
            || self.inner.unit.borrow().has_pending()
    }

    fn has_writes(&self) -> bool {
        self.inner
            .store
            .borrow()
            .as_ref()
            .is_some_and(|ws| !ws.writes.is_empty())
    }

    /// The bind key of this session: `None` for a registry's (or factory's) session, the key
    /// for a session from [`Session::for_bind`].
    #[must_use]
    pub fn bind_key(&self) -> Option<&str> {
        self.inner.bind_key.as_deref()
    }

    /// The statements recorded so far by this session and its binds (empty unless the
    /// factory was built with [`record_queries(true)`](crate::SessionFactoryBuilder::record_queries)).
    #[must_use]
    pub fn recorded_queries(&self) -> Vec<RecordedQuery> {
        self.inner
            .recorder
            .as_ref()
            .map_or_else(Vec::new, |r| r.queries())
    }

    /// The last `n` recorded statements.
    pub(crate) fn recent_recorded(&self, n: usize) -> Vec<RecordedQuery> {
        self.inner
            .recorder
            .as_ref()
            .map_or_else(Vec::new, |r| r.last(n))
    }

    /// How many statements [`Session::recorded_queries`] holds, without copying them.
    #[must_use]
    pub fn recorded_query_count(&self) -> usize {
        self.inner.recorder.as_ref().map_or(0, |r| r.len())
    }

    /// Statements not recorded because the session reached
    /// [`RecordedQuery::MAX_PER_SESSION`].
    #[must_use]
    pub fn recorded_queries_dropped(&self) -> u64 {
        self.inner.recorder.as_ref().map_or(0, |r| r.dropped())
    }

    /// True once the session was removed by its registry (or closed explicitly).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.store.borrow().is_none()
    }

    fn closed(&self) -> Error {
        Error::SessionClosed {
            session_id: self.inner.id.clone(),
        }
    }

    /// KV operations this session and its binds have used (0 on `memory://`).
    #[must_use]
    pub fn kv_ops(&self) -> u64 {
        self.inner.kv_ops.get()
    }

    fn usable(&self) -> Result<()> {
        if self.inner.committing.get() {
            return Err(Error::sql(
                "the session is committing: await commit() before running more statements",
            ));
        }
        if self.is_closed() {
            return Err(self.closed());
        }
        Ok(())
    }

    /// Refuses `commit`, `rollback` and `transaction` with `reason` (the end of a sentence:
    /// "in a migration's data step: …") while set; `None` lifts it.
    pub(crate) fn set_guard(&self, reason: Option<&'static str>) {
        self.inner.guard.set(reason);
    }

    /// Allocates the next value of the engine's ID sequence `name` (see
    /// [`Engine::next_id`]): unique across concurrent sessions, never rolled back. Async
    /// because on `do://` the database object keeps the sequence.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal; [`Error::Storage`] if the sequence is exhausted
    /// (or, on `do://`, the object cannot be reached).
    pub async fn next_id(&self, name: &str) -> Result<i64> {
        if self.is_closed() {
            return Err(self.closed());
        }
        self.inner.engine.next_id(name).await
    }
}
