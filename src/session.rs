//! `Session`: one unit of work over an engine, with snapshot isolation.
//!
//! A session sees the committed state as of its start (or its last commit) plus its own
//! writes; other sessions never see its writes until [`Session::commit`]. `rollback()` or
//! dropping the last handle discards them. Handles are cheap clones of one session, so a fetch
//! event can reach "its" session from anywhere it passes the scope.

use crate::{
    bind::{self, DynParam},
    engine::Engine,
    error::{Error, Result},
    factory::{Config, TeardownPolicy},
    model::Unit,
    record::{now_ms, RecordedQuery, Recorder},
    rows::QueryResult,
    workspace::{Miss, Savepoint, Workspace},
};
use gluesql_core::sqlparser::ast::Statement as SqlStatement;
use gluesql_core::{
    error::{Error as GlueError, ValidateError},
    executor::execute,
    plan::StatementPlan,
    prelude::{ParamLiteral, Payload},
    store::Planner,
    translate::{translate_with_params, IntoParamLiteral},
};
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, HashMap},
    fmt,
    rc::Rc,
};

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
    /// `None` once the session is closed.
    workspace: RefCell<Option<Workspace>>,
    /// True while a commit awaits its engine.
    committing: Cell<bool>,
    /// KV operations this session and its binds used (shared with the binds: the budget,
    /// each engine's `max_ops`, is per fetch event, not per engine).
    kv_ops: Rc<Cell<u64>>,
    /// Set by [`Session::commit_deferred`]: teardown commits the pending writes.
    deferred: Cell<bool>,
}

/// How often one statement may fault on missing data before gluebind gives up (each retry
/// loads what the previous attempt missed).
const MAX_LOADS_PER_STATEMENT: usize = 64;

/// Point loads (rows, unique values) of one table a statement may make before gluebind loads
/// the whole table instead. GlueSQL checks the keys of a multi-row INSERT one at a time, so
/// without this an N-row INSERT into a table not yet loaded would fault N times (and fail
/// beyond [`MAX_LOADS_PER_STATEMENT`]).
const POINT_LOADS_BEFORE_TABLE_LOAD: usize = 8;

/// Replaces point misses of a table that already faulted too often by one load of the table.
fn escalate(misses: Vec<Miss>, point_loads: &mut HashMap<String, usize>) -> Vec<Miss> {
    let mut out: Vec<Miss> = Vec::with_capacity(misses.len());
    for miss in misses {
        let table = match &miss {
            Miss::Row(table, _) | Miss::Unique { table, .. } => table,
            _ => {
                out.push(miss);
                continue;
            }
        };
        let count = point_loads.entry(table.clone()).or_default();
        *count += 1;
        if *count > POINT_LOADS_BEFORE_TABLE_LOAD {
            let whole = Miss::Table(table.clone());
            if !out.contains(&whole) {
                out.push(whole);
            }
        } else {
            out.push(miss);
        }
    }
    out
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

/// Maps GlueSQL's errors onto gluebind's, keeping constraint violations distinguishable.
fn from_glue(error: GlueError, table_hint: Option<&str>) -> Error {
    let table = table_hint.unwrap_or("?").to_owned();
    match error {
        GlueError::Validate(ValidateError::DuplicateEntryOnUniqueField(value, column)) => {
            Error::Unique {
                table,
                column,
                value: match value {
                    gluesql_core::prelude::Value::Str(s) => format!("{s:?}"),
                    other => String::from(other),
                },
            }
        }
        GlueError::Validate(ValidateError::DuplicateEntryOnPrimaryKeyField(key)) => Error::Unique {
            table,
            column: "PRIMARY KEY".to_owned(),
            value: String::from(gluesql_core::prelude::Value::from(key)),
        },
        other => Error::sql(other.to_string()),
    }
}

/// Best-effort name of the table a statement writes, for error messages.
fn target_table(sql: &str) -> Option<&str> {
    let mut words = sql.split_whitespace();
    let first = words.next()?.to_ascii_uppercase();
    let name = match first.as_str() {
        "INSERT" => words.nth(1),
        "UPDATE" => words.next(),
        _ => None,
    }?;
    Some(name.trim_matches(|c: char| c == '"' || c == '(' || c == '`'))
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
        let workspace = engine.workspace();
        Self {
            inner: Rc::new(Inner {
                id,
                engine,
                config,
                bind_key,
                binds: RefCell::new(BTreeMap::new()),
                unit: RefCell::new(Unit::default()),
                recorder,
                workspace: RefCell::new(Some(workspace)),
                committing: Cell::new(false),
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
            .workspace
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

    /// The session of bind `key` (Flask-SQLAlchemy's binds): `None` gives this session (the
    /// default bind's), a key the session on that bind's engine — opened on first use, part of this unit of
    /// work from then on. Models with `#[gluebind(bind_key = "...")]` route there by
    /// themselves; use this for plain SQL on a bind.
    ///
    /// The binds commit, roll back and end together with this session. Each engine commits
    /// on its own (no two-phase commit, as in SQLAlchemy by default; see [`Session::commit`]
    /// for the order and the checks made first), so keep the writes a client relies on in one
    /// engine.
    ///
    /// A bind's session runs statements, but commits, rolls back and tracks model objects only
    /// through the session it came from.
    ///
    /// # Errors
    /// [`Error::Config`] when the factory has no engine for `key`, or when a bind's session is
    /// asked for another bind (or the default one); [`Error::SessionClosed`] after removal.
    pub fn for_bind(&self, key: Option<&str>) -> Result<Session> {
        if self.is_closed() {
            return Err(self.closed());
        }
        if let Some(own) = &self.inner.bind_key {
            if key == Some(own.as_str()) {
                return Ok(self.clone());
            }
            return Err(Error::config(format!(
                "for_bind({key:?}) was called on the session of bind {own:?}: ask the \
                 registry's session, which opens the session of every bind"
            )));
        }
        let Some(key) = key else {
            return Ok(self.clone());
        };
        if let Some(found) = self.inner.binds.borrow().get(key) {
            return Ok(found.clone());
        }
        let engine = self.inner.config.binds.get(key).ok_or_else(|| {
            let known: Vec<&String> = self.inner.config.binds.keys().collect();
            Error::config(format!(
                "no engine is bound to bind key {key:?} (configured: {known:?}): add \
                 .bind_key({key:?}, Engine::from_url(\"memory://\")?) to the SessionFactory"
            ))
        })?;
        let session = Session::with(
            format!("{}.{key}", self.inner.id),
            engine.clone(),
            Rc::clone(&self.inner.config),
            Some(key.to_owned()),
            self.inner.recorder.clone(),
            Rc::clone(&self.inner.kv_ops),
        );
        self.inner
            .binds
            .borrow_mut()
            .insert(key.to_owned(), session.clone());
        Ok(session)
    }

    /// The bind sessions opened so far, in key order.
    fn bind_sessions(&self) -> Vec<Session> {
        self.inner.binds.borrow().values().cloned().collect()
    }

    /// This session, then its bind sessions in key order: what a unit of work spans.
    fn all_sessions(&self) -> Vec<Session> {
        std::iter::once(self.clone())
            .chain(self.bind_sessions())
            .collect()
    }

    /// The session that owns the model unit of work (the default bind's).
    pub(crate) fn unit_owner(&self) -> Result<Session> {
        if let Some(key) = &self.inner.bind_key {
            return Err(Error::config(format!(
                "model objects are tracked by the registry's session, not by the session of \
                 bind {key:?}: call add/delete/get/flush on that one (it routes each model to \
                 its bind)"
            )));
        }
        if self.is_closed() {
            return Err(self.closed());
        }
        Ok(self.clone())
    }

    pub(crate) fn unit(&self) -> &RefCell<Unit> {
        &self.inner.unit
    }

    /// Savepoints of this session and its binds, for an all-or-nothing flush.
    pub(crate) fn save_all(&self) -> Result<Vec<(Session, Savepoint)>> {
        self.all_sessions()
            .into_iter()
            .map(|s| {
                let saved = s.inner.workspace.borrow().as_ref().map(Workspace::save);
                saved.map(|sp| (s.clone(), sp)).ok_or_else(|| s.closed())
            })
            .collect()
    }

    /// Undoes everything since [`Session::save_all`]; a bind session opened since starts over.
    pub(crate) fn restore_all(&self, saved: Vec<(Session, Savepoint)>) {
        let mut restored = Vec::new();
        for (session, savepoint) in saved {
            if let Some(ws) = session.inner.workspace.borrow_mut().as_mut() {
                ws.restore(savepoint);
            }
            restored.push(session.inner.id.clone());
        }
        for bind in self.bind_sessions() {
            if !restored.contains(&bind.inner.id) {
                if let Some(ws) = bind.inner.workspace.borrow_mut().as_mut() {
                    *ws = bind.inner.engine.workspace();
                }
            }
        }
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
    /// [`MAX_RECORDED`](crate::MAX_RECORDED).
    #[must_use]
    pub fn recorded_queries_dropped(&self) -> u64 {
        self.inner.recorder.as_ref().map_or(0, |r| r.dropped())
    }

    /// True once the session was removed by its registry (or closed explicitly).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.workspace.borrow().is_none()
    }

    fn closed(&self) -> Error {
        Error::SessionClosed {
            session_id: self.inner.id.clone(),
        }
    }

    /// Runs exactly one SQL statement with bound parameters (`$1`, `$2`, ...).
    ///
    /// Parameters are bound by GlueSQL, never spliced into the SQL text. A failing statement
    /// changes nothing (statements are atomic within the session).
    ///
    /// # Errors
    /// [`Error::Sql`] for parse, planning and execution errors (and when `sql` holds more or
    /// fewer than one statement: use [`Session::execute_batch`] for scripts),
    /// [`Error::Unique`] for constraint violations, [`Error::SessionClosed`] after removal.
    pub async fn execute<I, P>(&self, sql: &str, params: I) -> Result<QueryResult>
    where
        I: IntoIterator<Item = P>,
        P: IntoParamLiteral,
    {
        let params: Vec<ParamLiteral> = params
            .into_iter()
            .map(IntoParamLiteral::into_param_literal)
            .collect();
        self.autoflush_now().await?;
        self.run_unflushed(sql, &params).await
    }

    /// [`Session::execute`] without autoflush: what a flush itself runs.
    pub(crate) async fn run_unflushed(
        &self,
        sql: &str,
        params: &[ParamLiteral],
    ) -> Result<QueryResult> {
        let mut results = self.run(sql, params, Some(1)).await?;
        Ok(results.remove(0))
    }

    /// Runs a script of statements without parameters (`CREATE TABLE ...; INSERT ...;`), in
    /// order; stops at the first failing statement (earlier ones stay applied in the session).
    ///
    /// # Errors
    /// As [`Session::execute`].
    pub async fn execute_batch(&self, sql: &str) -> Result<Vec<QueryResult>> {
        self.autoflush_now().await?;
        self.run(sql, &[], None).await
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

    /// Runs exactly one SQL statement with parameters from a dynamically typed caller
    /// (JavaScript, decoded JSON): numbers and strings bind like literals written in the SQL,
    /// so they convert to the column's type (see [`DynParam`]). Placeholders are `$1, $2, …`,
    /// or `?` / `?1` (one style per statement); a placeholder inside a string literal, a
    /// quoted identifier or a comment is text, and the parameter count must match.
    ///
    /// # Errors
    /// As [`Session::execute`], and [`Error::Sql`] when placeholders and parameters do not
    /// match.
    pub async fn execute_dyn(&self, sql: &str, params: Vec<DynParam>) -> Result<QueryResult> {
        self.usable()?;
        self.autoflush_now().await?;
        // Numbers and strings are spliced into the parsed statement as literals, so record
        // the parameters as given.
        let shown = self
            .inner
            .recorder
            .as_ref()
            .map(|_| params.iter().map(crate::record::dyn_param_json).collect());
        let bound = bind::bind(sql, params)?;
        let mut results = self
            .run_statements(sql, &bound.statements, &bound.typed, Some(1), shown)
            .await?;
        Ok(results.remove(0))
    }

    async fn run(
        &self,
        sql: &str,
        params: &[ParamLiteral],
        expect: Option<usize>,
    ) -> Result<Vec<QueryResult>> {
        self.usable()?;
        let statements = match self.inner.engine.parse(sql) {
            Ok(statements) => statements,
            Err(e) => {
                if let Some(recorder) = &self.inner.recorder {
                    let shown = params.iter().map(crate::record::param_json).collect();
                    recorder.push(&self.inner.id, sql, shown, now_ms(), None);
                }
                return Err(from_glue(e, target_table(sql)));
            }
        };
        self.run_statements(sql, &statements, params, expect, None)
            .await
    }

    /// Runs parsed statements in order, loading what each one misses and retrying it.
    async fn run_statements(
        &self,
        sql: &str,
        statements: &[SqlStatement],
        params: &[ParamLiteral],
        expect: Option<usize>,
        shown: Option<Vec<serde_json::Value>>,
    ) -> Result<Vec<QueryResult>> {
        let hint = target_table(sql);
        if let Some(n) = expect {
            if statements.len() != n {
                return Err(Error::sql(format!(
                    "expected exactly {n} SQL statement, found {}; use execute_batch for \
                     scripts",
                    statements.len()
                )));
            }
        }
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            let started = self.inner.recorder.as_ref().map(|_| now_ms());
            let outcome = self.run_one(statement, params, hint).await;
            if let (Some(recorder), Some(started)) = (&self.inner.recorder, started) {
                let text = if statements.len() == 1 {
                    sql.to_owned()
                } else {
                    statement.to_string()
                };
                let params = shown
                    .clone()
                    .unwrap_or_else(|| params.iter().map(crate::record::param_json).collect());
                recorder.push(
                    &self.inner.id,
                    &text,
                    params,
                    started,
                    outcome.as_ref().ok(),
                );
            }
            results.push(outcome?);
        }
        Ok(results)
    }

    /// Runs one parsed statement, loading what it misses and retrying it.
    async fn run_one(
        &self,
        statement: &SqlStatement,
        params: &[ParamLiteral],
        hint: Option<&str>,
    ) -> Result<QueryResult> {
        let statement: StatementPlan = translate_with_params(statement, params)
            .map_err(|e| from_glue(e, hint))?
            .into();
        let mut loads = 0;
        let mut point_loads = HashMap::new();
        let fresh = self
            .inner
            .workspace
            .borrow()
            .as_ref()
            .is_some_and(|ws| !ws.observed && ws.writes.is_empty());
        // The snapshot is taken at the first statement (as PostgreSQL's REPEATABLE READ
        // does), after the engine settled commits left half-way, if any were due.
        if fresh {
            self.inner.engine.prepare(&self.inner.kv_ops).await?;
            if let Some(ws) = self.inner.workspace.borrow_mut().as_mut() {
                if !ws.observed && ws.writes.is_empty() {
                    *ws = self.inner.engine.workspace();
                }
            }
        }
        let payload = loop {
            match self.attempt(&statement, hint)? {
                Ok(payload) => break payload,
                Err(misses) => {
                    loads += 1;
                    if loads > MAX_LOADS_PER_STATEMENT {
                        return Err(Error::Storage {
                            message: format!(
                                "a statement needed data {MAX_LOADS_PER_STATEMENT} times in \
                                 a row; last missing: {misses:?}"
                            ),
                        });
                    }
                    let misses = escalate(misses, &mut point_loads);
                    let as_of = self
                        .inner
                        .workspace
                        .borrow()
                        .as_ref()
                        .ok_or_else(|| self.closed())?
                        .as_of;
                    let patch = self
                        .inner
                        .engine
                        .load(&misses, &self.inner.kv_ops, as_of)
                        .await?;
                    let mut slot = self.inner.workspace.borrow_mut();
                    let ws = slot.as_mut().ok_or_else(|| self.closed())?;
                    patch.absorb_session(&mut ws.base, None);
                    let mut db = ws.db.clone();
                    patch.absorb_session(&mut db, Some(&*ws));
                    ws.db = db;
                }
            }
        };
        Ok(QueryResult::from_payload(payload))
    }

    /// Plans and executes one statement on the workspace. `Ok(Err(misses))` means data was
    /// missing: the attempt left no trace, and the caller loads and retries.
    fn attempt(
        &self,
        statement: &StatementPlan,
        hint: Option<&str>,
    ) -> Result<std::result::Result<Payload, Vec<Miss>>> {
        let mut slot = self.inner.workspace.borrow_mut();
        let ws = slot.as_mut().ok_or_else(|| self.closed())?;
        let saved = ws.save();
        let outcome = ws
            .plan(statement.clone())
            .and_then(|plan| execute(ws, &plan));
        let misses = ws.take_misses();
        if !misses.is_empty() {
            // Whatever GlueSQL did with the failed read, undo it before retrying.
            ws.restore(saved);
            return Ok(Err(misses));
        }
        ws.observed = true;
        outcome.map(Ok).map_err(|e| from_glue(e, hint))
    }

    /// Allocates the next value of the engine's ID sequence `name` (see
    /// [`Engine::next_id`]): unique across concurrent sessions, never rolled back.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal; [`Error::Storage`] if the sequence is exhausted.
    pub fn next_id(&self, name: &str) -> Result<i64> {
        if self.is_closed() {
            return Err(self.closed());
        }
        self.inner.engine.next_id(name)
    }

    /// Commits pending writes atomically and starts over on the latest committed state (the
    /// session stays usable, as in SQLAlchemy). Pending model objects are flushed first, and
    /// the factory's commit hooks run around it. Tracked objects are expired: get them again
    /// to keep working with them.
    ///
    /// This is the durable path: when it returns `Ok`, other sessions see the writes, and on a
    /// durable engine they are stored. Commit before responding whenever the client relies on
    /// the write.
    ///
    /// With binds ([`Session::for_bind`]), every engine's pending writes are checked first (a
    /// conflict already visible commits nothing), then each engine commits atomically, the
    /// default engine's first, then the binds' in key order. A failure past that check (a
    /// storage error, a conflict committed meanwhile on `kv://`) stops there: engines committed
    /// before it stay committed, the rest is discarded, and no after-commit hook runs.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another session committed a change to a row (or table) this
    /// session wrote, after this session read it; [`Error::Unique`] when a row committed
    /// meanwhile holds the same unique value. In both cases nothing was applied (see above for
    /// binds) and the pending writes are discarded, so the session can retry from fresh data.
    /// [`Error::Storage`] when the backend fails: "failed and was undone" (or "nothing was
    /// written") means nothing was applied; "commit outcome unknown" means the commit may still
    /// be applied (on `kv://`, by a later session's replay of its commit record), so re-read
    /// before retrying. The flush's errors (then, too, nothing was applied and the pending
    /// writes are discarded). A before-commit hook's error is the one failure that keeps the
    /// pending writes (nothing committed): fix what it refused, or roll back.
    /// [`Error::Config`] on a bind's session (commit the session that opened it).
    pub async fn commit(&self) -> Result<CommitInfo> {
        self.usable()?;
        self.refuse_on_bind("commit")?;
        self.flush_or_discard().await?;
        let hooks = &self.inner.config.hooks;
        if !hooks.before.is_empty() && self.is_dirty() {
            let changes = self.inner.unit.borrow().changes().to_vec();
            for hook in &hooks.before {
                hook(self, &changes)?;
            }
            // What a hook added or changed is part of this commit.
            self.flush_or_discard().await?;
        }
        let changes = self.inner.unit.borrow().changes().to_vec();
        let info = match self.commit_engines().await {
            Ok(info) => info,
            Err(e) => {
                self.discard();
                return Err(e);
            }
        };
        self.inner.unit.borrow_mut().clear();
        if info.version.is_some() {
            let committed = crate::hooks::Committed {
                session: self,
                info,
                changes: &changes,
            };
            for hook in &hooks.after {
                hook(&committed);
            }
        }
        Ok(info)
    }

    /// [`Session::flush`]; on failure the whole unit of work is discarded, as by any failed
    /// commit.
    async fn flush_or_discard(&self) -> Result<()> {
        let flushed = self.flush().await;
        if flushed.is_err() {
            self.discard();
        }
        flushed
    }

    /// [`Error::Config`] for `verb` on a bind's session: its unit of work is its root's.
    fn refuse_on_bind(&self, verb: &str) -> Result<()> {
        match &self.inner.bind_key {
            Some(key) => Err(Error::config(format!(
                "{verb}() was called on the session of bind {key:?}: call it on the session \
                 that opened the bind (the registry's), which covers every bind"
            ))),
            None => Ok(()),
        }
    }

    /// Commits this session's engine, then each bind's. With more than one engine to write,
    /// every write-set is checked first, so a conflict already visible commits nothing.
    async fn commit_engines(&self) -> Result<CommitInfo> {
        let sessions = self.all_sessions();
        if sessions[1..].iter().any(Session::has_writes) {
            for session in &sessions {
                session.validate_own()?;
            }
        }
        let mut info = self.commit_own().await?;
        for bind in &sessions[1..] {
            let more = bind.commit_own().await?;
            info.version = info.version.or(more.version);
            info.rows_written += more.rows_written;
            info.tables_changed += more.tables_changed;
        }
        Ok(info)
    }

    /// Checks this session's pending writes against its engine's committed state.
    fn validate_own(&self) -> Result<()> {
        let slot = self.inner.workspace.borrow();
        let ws = slot.as_ref().ok_or_else(|| self.closed())?;
        if ws.writes.is_empty() {
            return Ok(());
        }
        self.inner.engine.validate(ws)
    }

    /// Commits this session's own workspace (one engine).
    async fn commit_own(&self) -> Result<CommitInfo> {
        self.usable()?;
        self.inner.deferred.set(false);
        let ws = {
            let mut slot = self.inner.workspace.borrow_mut();
            let ws = slot.as_mut().ok_or_else(|| self.closed())?;
            if ws.writes.is_empty() {
                // Nothing to write: just move to the latest committed state.
                *ws = self.inner.engine.workspace();
                return Ok(CommitInfo {
                    version: None,
                    rows_written: 0,
                    tables_changed: 0,
                });
            }
            std::mem::take(ws)
        };
        self.inner.committing.set(true);
        let outcome = self.inner.engine.commit(&ws, &self.inner.kv_ops).await;
        self.inner.committing.set(false);
        // Success or not, continue from the latest committed state.
        if let Some(slot) = self.inner.workspace.borrow_mut().as_mut() {
            *slot = self.inner.engine.workspace();
        }
        let applied = outcome?;
        Ok(CommitInfo {
            version: Some(applied.version),
            rows_written: applied.rows_written,
            tables_changed: applied.tables_changed,
        })
    }

    /// Validates the pending writes now and commits them in the event's completion callback
    /// (write-behind), whatever the factory's teardown policy.
    ///
    /// The check against the latest committed state of this isolate (row conflicts, UNIQUE)
    /// runs now, so a conflict that is already visible fails fast, and the session keeps its
    /// writes (read-your-writes) until teardown commits them — with any written later in the
    /// same event. This is **not** durable when it returns: the commit runs after the response
    /// is sent, other sessions see the writes only then, and it is lost if it then conflicts
    /// (counted in [`crate::Stats::teardown_errors`] and logged), if the handler fails (teardown
    /// rolls back), or if Cloudflare cuts the callback off. Use it where that is acceptable and
    /// latency matters — append-only logs, counters, analytics — and [`Session::commit`]
    /// for anything a client relies on. A later `commit()` or `rollback()` in the same event
    /// supersedes it. Outside a registry scope nothing commits at teardown: call `commit()`.
    /// Model objects not flushed yet are flushed by that teardown commit (flush first to have
    /// them checked now).
    ///
    /// # Errors
    /// [`Error::Conflict`] or [`Error::Unique`] when the writes already conflict with committed
    /// state (the pending writes are then discarded, as by a failed `commit()`);
    /// [`Error::SessionClosed`] after removal.
    pub fn commit_deferred(&self) -> Result<()> {
        self.usable()?;
        self.refuse_on_bind("commit_deferred")?;
        for session in self.all_sessions() {
            if let Err(e) = session.validate_own() {
                self.discard();
                return Err(e);
            }
        }
        self.inner.deferred.set(true);
        Ok(())
    }

    /// True when teardown will commit this session's pending writes because of
    /// [`Session::commit_deferred`].
    #[must_use]
    pub fn is_deferred(&self) -> bool {
        self.inner.deferred.get() && self.is_dirty()
    }

    /// Discards pending writes (the binds' too, and pending model objects) and starts over on
    /// the latest committed state. Tracked objects are expired.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal.
    #[allow(clippy::unused_async)]
    pub async fn rollback(&self) -> Result<()> {
        if self.is_closed() {
            return Err(self.closed());
        }
        self.refuse_on_bind("rollback")?;
        self.discard();
        Ok(())
    }

    /// Starts this session and its binds over on the latest committed state.
    fn discard(&self) {
        for session in self.all_sessions() {
            if let Some(ws) = session.inner.workspace.borrow_mut().as_mut() {
                *ws = session.inner.engine.workspace();
            }
            session.inner.deferred.set(false);
        }
        self.inner.unit.borrow_mut().clear();
    }

    /// Finishes the session per `policy` and closes it; later use gives
    /// [`Error::SessionClosed`]. Used by the registry's teardown.
    pub(crate) async fn finish(&self, commit_pending: bool) -> Result<Finish> {
        let finish = if !self.is_dirty() {
            Finish::Clean
        } else if commit_pending {
            match self.commit().await {
                Ok(_) => Finish::Committed,
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        } else {
            Finish::RolledBack
        };
        self.close();
        Ok(finish)
    }

    /// Closes the session and its binds, discarding pending writes.
    pub(crate) fn close(&self) {
        for bind in self.bind_sessions() {
            bind.close();
        }
        self.inner.unit.borrow_mut().clear();
        self.inner.workspace.borrow_mut().take();
    }
}
