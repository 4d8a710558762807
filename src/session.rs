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
    factory::TeardownPolicy,
    rows::QueryResult,
    workspace::Workspace,
};
use gluesql_core::{
    error::{Error as GlueError, ValidateError},
    plan::StatementPlan,
    prelude::Glue,
    store::Planner,
    translate::{translate_with_params, IntoParamLiteral},
};
use std::{cell::RefCell, fmt, rc::Rc};

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
    autoflush: bool,
    teardown: TeardownPolicy,
    /// `None` once the session is closed.
    workspace: RefCell<Option<Workspace>>,
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
    pub(crate) fn new(
        id: String,
        engine: Engine,
        autoflush: bool,
        teardown: TeardownPolicy,
    ) -> Self {
        let workspace = engine.workspace();
        Self {
            inner: Rc::new(Inner {
                id,
                engine,
                autoflush,
                teardown,
                workspace: RefCell::new(Some(workspace)),
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
        self.inner.autoflush
    }

    /// What teardown does with writes still pending when the fetch event ends.
    #[must_use]
    pub fn teardown_policy(&self) -> TeardownPolicy {
        self.inner.teardown
    }

    /// True when writes are pending (not yet committed).
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.inner
            .workspace
            .borrow()
            .as_ref()
            .is_some_and(|ws| !ws.writes.is_empty())
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
    #[allow(clippy::unused_async)] // async so durable engines can load data first
    pub async fn execute<I, P>(&self, sql: &str, params: I) -> Result<QueryResult>
    where
        I: IntoIterator<Item = P>,
        P: IntoParamLiteral,
    {
        let mut results = self.run(sql, params, Some(1))?;
        Ok(results.remove(0))
    }

    /// Runs a script of statements without parameters (`CREATE TABLE ...; INSERT ...;`), in
    /// order; stops at the first failing statement (earlier ones stay applied in the session).
    ///
    /// # Errors
    /// As [`Session::execute`].
    #[allow(clippy::unused_async)]
    pub async fn execute_batch(&self, sql: &str) -> Result<Vec<QueryResult>> {
        self.run(sql, crate::NO_PARAMS, None)
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
    #[allow(clippy::unused_async)] // async so durable engines can load data first
    pub async fn execute_dyn(&self, sql: &str, params: Vec<DynParam>) -> Result<QueryResult> {
        let mut results = self.run_with(sql, Some(1), |glue| {
            let bound = bind::bind(sql, params)?;
            bound
                .statements
                .iter()
                .map(|statement| {
                    translate_with_params(statement, &bound.typed)
                        .and_then(|statement| glue.storage.plan(statement.into()))
                        .map_err(|e| from_glue(e, target_table(sql)))
                })
                .collect()
        })?;
        Ok(results.remove(0))
    }

    fn run<I, P>(&self, sql: &str, params: I, expect: Option<usize>) -> Result<Vec<QueryResult>>
    where
        I: IntoIterator<Item = P>,
        P: IntoParamLiteral,
    {
        self.run_with(sql, expect, |glue| {
            glue.plan_with_params(sql, params)
                .map_err(|e| from_glue(e, target_table(sql)))
        })
    }

    /// Plans with `plan` on the session's workspace, checks the statement count, executes.
    fn run_with<F>(&self, sql: &str, expect: Option<usize>, plan: F) -> Result<Vec<QueryResult>>
    where
        F: FnOnce(&mut Glue<Workspace>) -> Result<Vec<StatementPlan>>,
    {
        let mut slot = self.inner.workspace.borrow_mut();
        let ws = slot.as_mut().ok_or_else(|| self.closed())?;
        let mut glue = Glue::new(std::mem::take(ws));
        let outcome = (|| {
            let plans = plan(&mut glue)?;
            if let Some(n) = expect {
                if plans.len() != n {
                    return Err(Error::sql(format!(
                        "expected exactly {n} SQL statement, found {}; use execute_batch for \
                         scripts",
                        plans.len()
                    )));
                }
            }
            let mut results = Vec::with_capacity(plans.len());
            for plan in &plans {
                let payload = glue
                    .execute_stmt(plan)
                    .map_err(|e| from_glue(e, target_table(sql)))?;
                results.push(QueryResult::from_payload(payload));
            }
            Ok(results)
        })();
        *ws = glue.storage;
        outcome
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
    /// session stays usable, as in SQLAlchemy).
    ///
    /// This is the durable path: when it returns `Ok`, other sessions see the writes, and on a
    /// durable engine they are stored. Commit before responding whenever the client relies on
    /// the write.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another session committed a change to a row (or table) this
    /// session wrote, after this session read it; [`Error::Unique`] when a row committed
    /// meanwhile holds the same unique value. In both cases nothing was applied and the
    /// pending writes are discarded, so the session can retry from fresh data.
    pub async fn commit(&self) -> Result<CommitInfo> {
        let outcome = {
            let mut slot = self.inner.workspace.borrow_mut();
            let ws = slot.as_mut().ok_or_else(|| self.closed())?;
            let outcome = if ws.writes.is_empty() {
                Ok(CommitInfo {
                    version: None,
                    rows_written: 0,
                    tables_changed: 0,
                })
            } else {
                self.inner.engine.apply(ws).map(|a| CommitInfo {
                    version: Some(a.version),
                    rows_written: a.rows_written,
                    tables_changed: a.tables_changed,
                })
            };
            // Success or not, continue from the latest committed state.
            *ws = self.inner.engine.workspace();
            outcome
        }?;
        self.inner.engine.flush().await?;
        Ok(outcome)
    }

    /// Discards pending writes and starts over on the latest committed state.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal.
    #[allow(clippy::unused_async)]
    pub async fn rollback(&self) -> Result<()> {
        let mut slot = self.inner.workspace.borrow_mut();
        let ws = slot.as_mut().ok_or_else(|| self.closed())?;
        *ws = self.inner.engine.workspace();
        Ok(())
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

    /// Closes the session, discarding pending writes.
    pub(crate) fn close(&self) {
        self.inner.workspace.borrow_mut().take();
    }
}
