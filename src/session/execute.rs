//! Running statements: parse (cached), bind, plan and execute on the session's store, and
//! when a statement reads something not loaded yet (`kv://`), load it and run the statement
//! again.

use super::{store::Miss, Session};
use crate::{
    dyn_params::{bind, DynParam},
    error::{Error, Result},
    model::arg::Arg,
    recording::now_ms,
    rows::QueryResult,
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
use std::collections::HashMap;

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
        self.run_unflushed(sql, &params, false).await
    }

    /// [`Session::execute`] without autoflush: what a flush itself runs (`defer` as
    /// [`Session::run_args_with`]).
    async fn run_unflushed(
        &self,
        sql: &str,
        params: &[ParamLiteral],
        defer: bool,
    ) -> Result<QueryResult> {
        let mut results = self.run_with(sql, params, Some(1), defer).await?;
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
        self.run_dyn_unflushed(sql, params, false).await
    }

    /// Runs a model statement (SQL from `model::sql`) without autoflush: typed parameters
    /// only (typed models, and JavaScript values that converted to their columns' types) go
    /// through the parsed-statement cache; otherwise the literals are bound as
    /// [`Session::execute_dyn`] binds them.
    pub(crate) async fn run_args(&self, sql: &str, params: &[Arg]) -> Result<QueryResult> {
        self.run_args_with(sql, params, false).await
    }

    /// [`Session::run_args`]; with `defer`, an INSERT leaves its key and unique checks to the
    /// commit where the engine checks them there (`do://`: see `Engine::checks_inserts`), for
    /// the INSERTs of `commit()`'s own flush.
    pub(crate) async fn run_args_with(
        &self,
        sql: &str,
        params: &[Arg],
        defer: bool,
    ) -> Result<QueryResult> {
        let defer = defer && self.inner.engine.checks_inserts();
        let typed: Vec<ParamLiteral> = params
            .iter()
            .filter_map(|p| match p {
                Arg::Typed(param) => Some(param.clone()),
                Arg::Literal(_) => None,
            })
            .collect();
        if typed.len() == params.len() {
            return self.run_unflushed(sql, &typed, defer).await;
        }
        self.usable()?;
        let params = params.iter().cloned().map(Arg::into_dyn).collect();
        self.run_dyn_unflushed(sql, params, defer).await
    }

    /// [`Session::execute_dyn`] without autoflush.
    async fn run_dyn_unflushed(
        &self,
        sql: &str,
        params: Vec<DynParam>,
        defer: bool,
    ) -> Result<QueryResult> {
        // Numbers and strings are spliced into the parsed statement as literals, so record
        // the parameters as given.
        let shown = self.inner.recorder.as_ref().map(|_| {
            params
                .iter()
                .map(crate::recording::dyn_param_json)
                .collect()
        });
        let bound = bind(sql, params)?;
        let mut results = self
            .run_statements(sql, &bound.statements, &bound.typed, Some(1), shown, defer)
            .await?;
        Ok(results.remove(0))
    }

    pub(super) async fn run(
        &self,
        sql: &str,
        params: &[ParamLiteral],
        expect: Option<usize>,
    ) -> Result<Vec<QueryResult>> {
        self.run_with(sql, params, expect, false).await
    }

    /// [`Session::run`]; `defer` as [`Session::run_args_with`].
    async fn run_with(
        &self,
        sql: &str,
        params: &[ParamLiteral],
        expect: Option<usize>,
        defer: bool,
    ) -> Result<Vec<QueryResult>> {
        self.usable()?;
        let statements = match self.inner.engine.parse(sql) {
            Ok(statements) => statements,
            Err(e) => {
                if let Some(recorder) = &self.inner.recorder {
                    let shown = params.iter().map(crate::recording::param_json).collect();
                    recorder.push(&self.inner.id, sql, shown, now_ms(), None);
                }
                return Err(from_glue(e, target_table(sql)));
            }
        };
        self.run_statements(sql, &statements, params, expect, None, defer)
            .await
    }

    /// Runs parsed statements in order, loading what each one misses and retrying it.
    pub(super) async fn run_statements(
        &self,
        sql: &str,
        statements: &[SqlStatement],
        params: &[ParamLiteral],
        expect: Option<usize>,
        shown: Option<Vec<serde_json::Value>>,
        defer: bool,
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
            let outcome = self.run_one(statement, params, hint, defer).await;
            if let (Some(recorder), Some(started)) = (&self.inner.recorder, started) {
                let text = if statements.len() == 1 {
                    sql.to_owned()
                } else {
                    statement.to_string()
                };
                let params = shown
                    .clone()
                    .unwrap_or_else(|| params.iter().map(crate::recording::param_json).collect());
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
    pub(super) async fn run_one(
        &self,
        statement: &SqlStatement,
        params: &[ParamLiteral],
        hint: Option<&str>,
        defer: bool,
    ) -> Result<QueryResult> {
        let statement: StatementPlan = translate_with_params(statement, params)
            .map_err(|e| from_glue(e, hint))?
            .into();
        let mut loads = 0;
        let mut point_loads = HashMap::new();
        let fresh = self
            .inner
            .store
            .borrow()
            .as_ref()
            .is_some_and(|ws| !ws.observed && ws.writes.is_empty());
        // The snapshot is taken at the first statement (as PostgreSQL's REPEATABLE READ
        // does), after the engine settled commits left half-way, if any were due.
        if fresh {
            self.inner.engine.prepare(&self.inner.kv_ops).await?;
            if let Some(ws) = self.inner.store.borrow_mut().as_mut() {
                if !ws.observed && ws.writes.is_empty() {
                    *ws = self.inner.engine.session_store();
                }
            }
        }
        let payload = loop {
            match self.attempt(&statement, hint, defer)? {
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
                    let (as_of, stored_as) = {
                        let slot = self.inner.store.borrow();
                        let ws = slot.as_ref().ok_or_else(|| self.closed())?;
                        (ws.as_of, ws.db.stored_as())
                    };
                    let patch = self
                        .inner
                        .engine
                        .load(&misses, &stored_as, &self.inner.kv_ops, as_of)
                        .await?;
                    let mut slot = self.inner.store.borrow_mut();
                    let ws = slot.as_mut().ok_or_else(|| self.closed())?;
                    // do://: a session that started from an empty cache reads as of the
                    // version its first load was answered at.
                    if ws.as_of == crate::engine::UNKNOWN_VERSION {
                        if let Some(at) = patch.at {
                            ws.as_of = at;
                        }
                    }
                    patch.absorb_session(&mut ws.base, None);
                    let mut db = ws.db.clone();
                    patch.absorb_session(&mut db, Some(&*ws));
                    ws.db = db;
                }
            }
        };
        Ok(QueryResult::from_payload(payload))
    }

    /// Plans and executes one statement on the session store. `Ok(Err(misses))` means data was
    /// missing: the attempt left no trace, and the caller loads and retries.
    pub(super) fn attempt(
        &self,
        statement: &StatementPlan,
        hint: Option<&str>,
        defer: bool,
    ) -> Result<std::result::Result<Payload, Vec<Miss>>> {
        let mut slot = self.inner.store.borrow_mut();
        let ws = slot.as_mut().ok_or_else(|| self.closed())?;
        let saved = ws.save();
        let outcome = ws.plan(statement.clone()).and_then(|plan| {
            if let Some(counted) = ws.counted(&plan)? {
                return Ok(counted);
            }
            ws.narrow = super::narrow::narrow(&plan, &ws.db);
            ws.defer_inserts = defer && matches!(plan, StatementPlan::Insert { .. });
            let done = execute(ws, &plan);
            ws.narrow = None;
            done
        });
        let mut misses = ws.take_misses();
        if ws.defer_inserts {
            ws.defer_inserts = false;
            // GlueSQL's primary-key check read the keys this INSERT then wrote unseen: the
            // commit checks them (a key read for anything else stays a miss).
            misses.retain(|miss| !matches!(miss, Miss::Row(table, key) if ws.assumed(table, key)));
        }
        if !misses.is_empty() {
            // Whatever GlueSQL did with the failed read, undo it before retrying.
            ws.restore(saved);
            return Ok(Err(misses));
        }
        ws.observed = true;
        outcome.map(Ok).map_err(|e| from_glue(e, hint))
    }
}
