//! Query recording (Flask-SQLAlchemy's `SQLALCHEMY_RECORD_QUERIES` and
//! `get_recorded_queries()`): what each statement of a session ran, how long it took and how
//! many rows it gave.

use crate::{rows::QueryResult, DynParam, ParamLiteral};
use serde::Serialize;
use std::cell::RefCell;

/// Longest text or byte parameter recorded in full; longer ones are cut (and say so), so a
/// session writing large values does not keep them twice.
const MAX_SHOWN: usize = 256;

/// `value` with long strings cut to [`MAX_SHOWN`] characters.
fn shortened(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) if s.chars().count() > MAX_SHOWN => {
            let cut: String = s.chars().take(MAX_SHOWN).collect();
            serde_json::Value::String(format!("{cut}… ({} bytes)", s.len()))
        }
        serde_json::Value::Array(items) if items.len() > MAX_SHOWN => {
            serde_json::Value::String(format!("<{} items, not recorded>", items.len()))
        }
        other => other,
    }
}

/// One statement a session ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RecordedQuery {
    /// The session (or bind session, `id.bind`) that ran it.
    pub session: String,
    /// The statement's SQL text, placeholders as written.
    pub sql: String,
    /// The bound parameters, as JSON.
    pub params: Vec<serde_json::Value>,
    /// Wall-clock milliseconds, loads from storage included. On Workers the clock only moves
    /// across I/O (Spectre mitigation), so this shows storage waits, not CPU time.
    pub duration_ms: f64,
    /// Rows returned by a query, or rows inserted, updated or deleted.
    pub rows: usize,
    /// `false` when the statement failed (its error went to the caller).
    pub ok: bool,
}

impl RecordedQuery {
    /// Statements recorded per session at most; later ones are counted in
    /// [`Session::recorded_queries_dropped`](crate::Session::recorded_queries_dropped) only,
    /// so a long unit of work cannot grow memory without bound.
    pub const MAX_PER_SESSION: usize = 1000;
}

/// The statements of one session and its bind sessions.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    queries: RefCell<Vec<RecordedQuery>>,
    dropped: std::cell::Cell<u64>,
}

impl Recorder {
    pub fn push(
        &self,
        session: &str,
        sql: &str,
        params: Vec<serde_json::Value>,
        started: f64,
        result: Option<&QueryResult>,
    ) {
        let mut queries = self.queries.borrow_mut();
        if queries.len() >= RecordedQuery::MAX_PER_SESSION {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        queries.push(RecordedQuery {
            session: session.to_owned(),
            sql: sql.to_owned(),
            params: params.into_iter().map(shortened).collect(),
            duration_ms: (now_ms() - started).max(0.0),
            rows: result.map_or(0, |r| match r {
                QueryResult::Rows(rows) => rows.len(),
                other => other.affected(),
            }),
            ok: result.is_some(),
        });
    }

    pub fn queries(&self) -> Vec<RecordedQuery> {
        self.queries.borrow().clone()
    }

    /// The last `n` statements.
    pub fn last(&self, n: usize) -> Vec<RecordedQuery> {
        let queries = self.queries.borrow();
        queries[queries.len().saturating_sub(n)..].to_vec()
    }

    pub fn len(&self) -> usize {
        self.queries.borrow().len()
    }

    /// Statements not recorded because [`RecordedQuery::MAX_PER_SESSION`] was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// A parameter as JSON (its value; a type GlueSQL cannot render in JSON shows as its debug
/// text).
pub(crate) fn param_json(param: &ParamLiteral) -> serde_json::Value {
    use gluesql_core::ast::Expr;
    match param.clone().into_expr() {
        Expr::Value(value) => crate::to_json(value)
            .unwrap_or_else(|_| serde_json::Value::String(format!("{param:?}"))),
        _ => serde_json::Value::String(format!("{param:?}")),
    }
}

/// A dynamically typed parameter as JSON: a number as the number it spells (its text when JSON
/// cannot hold it), text as a string, a typed value as [`param_json`] renders it.
pub(crate) fn dyn_param_json(param: &DynParam) -> serde_json::Value {
    match param {
        DynParam::Number(repr) => serde_json::from_str::<serde_json::Number>(repr)
            .map_or_else(|_| serde_json::Value::String(repr.clone()), Into::into),
        DynParam::Text(text) => serde_json::Value::String(text.clone()),
        DynParam::Value(value) => crate::to_json(value.clone())
            .unwrap_or_else(|_| serde_json::Value::String(format!("{value:?}"))),
    }
}

/// Milliseconds on a monotonic-enough clock: `Date.now()` on wasm32 (std's `Instant` panics
/// there), `Instant` natively.
#[cfg(target_arch = "wasm32")]
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds on a monotonic-enough clock: `Date.now()` on wasm32 (std's `Instant` panics
/// there), `Instant` natively.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn now_ms() -> f64 {
    use std::{sync::OnceLock, time::Instant};
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}
