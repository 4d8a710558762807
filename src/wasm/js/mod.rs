//! The wasm-bindgen exports behind the npm package `gluebind` (feature `js`).
//!
//! JavaScript sees three classes, `Registry`, `Session` and `ModelHandle`, and a few functions
//! (`setErrorFactory`, the page numbers of `Pagination`). The package's JavaScript layer
//! (`js/src/`) adds what only JavaScript can do — finding the fetch event's scope through
//! `AsyncLocalStorage`, `ctx.waitUntil`, the error classes, Hono, the typed query builder — and
//! nothing else: sessions, scopes, teardown policy, parameter binding, value mapping and the
//! model layer are the Rust core's ([`crate::Registry`], [`crate::Session`],
//! [`crate::DynParam`], `crate::model` through `model.rs`, and the value mapping in
//! `convert.rs`).
//!
//! Scopes cross the boundary as numbers (the registry's scope ids), so a fetch event costs no
//! JavaScript object on the Rust side. Every `async` method returns a settled promise when the
//! engine needs no I/O (`memory://` never does) and a pending one otherwise.

mod convert;
mod error;
mod hooks;
mod kv;
mod migrate;
mod model;
mod session;

pub use error::set_error_factory;
pub use migrate::{applied_migrations, JsMigrator};
pub use model::{iter_pages, pagination_numbers, JsModel};

use crate::{
    Engine, Error, Finish, Isolation, Outcome, QueryResult, Registry, Session, SessionFactory,
    TeardownPolicy,
};
use convert::{Encoding, Int64, Output, Timestamps};
use hooks::with_hooks;
use js_sys::{Array, Object, Promise, Reflect};
use serde::{Deserialize, Serialize as _};
pub use session::JsSession;
use std::{
    cell::RefCell,
    future::Future,
    rc::Rc,
    task::{Context, Poll, Waker},
};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str, error: &JsValue);
}

fn undefined() -> JsValue {
    JsValue::UNDEFINED
}

/// Options of `new Registry(options)` (the package's `new Gluebind(options)`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    url: String,
    #[serde(default)]
    teardown: Option<String>,
    #[serde(default)]
    autoflush: Option<bool>,
    #[serde(default)]
    int64: Int64,
    #[serde(default)]
    timestamps: Timestamps,
    /// Bind key → engine URL (Flask-SQLAlchemy's `SQLALCHEMY_BINDS`).
    #[serde(default)]
    binds: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    record_queries: bool,
    /// `beforeCommit(session, changes)`: Flask-SQLAlchemy's `before_models_committed`; a
    /// throw refuses the commit.
    #[serde(default = "undefined", with = "serde_wasm_bindgen::preserve")]
    before_commit: JsValue,
    /// `afterCommit({ session, info, changes })`: `models_committed`.
    #[serde(default = "undefined", with = "serde_wasm_bindgen::preserve")]
    after_commit: JsValue,
    /// `"serializable"` (the default) or `"snapshot"`.
    #[serde(default)]
    isolation: Option<String>,
}

/// What a `beforeCommit` hook threw, kept for the `commit()` it stopped (which throws it as
/// is, so an application catches its own error): the Rust error the hook returned instead,
/// and the thrown value. Shared by a registry's sessions; set and taken within the same
/// synchronous call (the hook runs inside `commit()`, which returns its error at once).
#[derive(Default)]
struct Thrown(RefCell<Option<(Error, JsValue)>>);

impl Thrown {
    /// The JavaScript error for `error`: what the hook threw, when `error` is its refusal.
    fn to_js(&self, error: &Error) -> JsValue {
        match self.0.borrow_mut().take() {
            Some((refusal, thrown)) if refusal == *error => thrown,
            _ => error::to_js(error),
        }
    }
}

/// `{ version, rowsWritten, tablesChanged }`.
fn commit_info(info: &crate::CommitInfo) -> Object {
    let o = Object::new();
    #[allow(clippy::cast_precision_loss)] // counters stay far below 2^53
    {
        set(
            &o,
            "version",
            info.version.map_or(JsValue::NULL, |v| (v as f64).into()),
        );
        set(&o, "rowsWritten", info.rows_written as f64);
        set(&o, "tablesChanged", info.tables_changed as f64);
    }
    o
}

/// JSON as JavaScript values, an integer beyond `Number.MAX_SAFE_INTEGER` as a bigint (as the
/// `int64: "auto"` option gives it in rows).
fn json_to_js(value: &serde_json::Value) -> JsValue {
    use serde_json::Value as J;
    match value {
        J::Null => JsValue::NULL,
        J::Bool(b) => (*b).into(),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            #[allow(clippy::cast_precision_loss)] // exact: within ±2^53
            (Some(i), _) if crate::model::dynamic::is_safe_integer(i128::from(i)) => {
                JsValue::from_f64(i as f64)
            }
            (Some(i), _) => js_sys::BigInt::from(i).into(),
            (None, Some(u)) => js_sys::BigInt::from(u).into(),
            (None, None) => JsValue::from_f64(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => JsValue::from_str(s),
        J::Array(items) => items.iter().map(json_to_js).collect::<Array>().into(),
        J::Object(map) => {
            let o = Object::new();
            for (k, v) in map {
                set(&o, k, json_to_js(v));
            }
            o.into()
        }
    }
}

/// `"serializable"` / `"snapshot"` as an [`Isolation`].
fn isolation(name: &str) -> Result<Isolation, JsValue> {
    match name {
        "serializable" => Ok(Isolation::Serializable),
        "snapshot" => Ok(Isolation::Snapshot),
        other => Err(config(format!(
            "isolation must be \"serializable\" (the default) or \"snapshot\", got {other:?}"
        ))),
    }
}

/// Recorded statements as JavaScript objects `{ session, sql, params, durationMs, rows, ok }`.
fn queries_to_js(queries: &[crate::RecordedQuery]) -> Result<JsValue, JsValue> {
    let array = Array::new();
    for q in queries {
        let o = Object::new();
        set(&o, "session", q.session.as_str());
        set(&o, "sql", q.sql.as_str());
        let params: Array = q.params.iter().map(json_to_js).collect();
        set(&o, "params", params);
        set(&o, "durationMs", q.duration_ms);
        #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
        set(&o, "rows", q.rows as f64);
        set(&o, "ok", q.ok);
        array.push(&o);
    }
    Ok(array.into())
}

/// Runs `fut` to completion now if it needs no I/O (a settled promise), else hands it to the
/// JavaScript event loop.
fn promise<F>(fut: F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let mut fut = Box::pin(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(value)) => Promise::resolve(&value),
        Poll::Ready(Err(error)) => Promise::reject(&error),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(fut),
    }
}

fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

/// The engine for `url`; a `kv://BINDING` URL takes its KV namespace, a `do://BINDING` URL its
/// Durable Object namespace, from `env[BINDING]`.
fn engine(url: &str, env: &JsValue) -> crate::Result<Engine> {
    match crate::EngineUrl::parse(url)? {
        crate::EngineUrl::Kv { binding, .. } => {
            let kv = kv::JsKv::from_env(env, &binding)?;
            Engine::with_kv(url, std::rc::Rc::new(kv))
        }
        crate::EngineUrl::Durable { binding, name, .. } => {
            let transport = super::durable::NamespaceTransport::from_env(env, &binding, &name)?;
            Engine::with_object(url, std::rc::Rc::new(transport))
        }
        _ => Engine::from_url(url),
    }
}

/// The database object of `do://` URLs, inside the package's Durable Object class
/// `GluebindDatabase` (js/src/object.js), over the object's `ctx.storage`.
#[wasm_bindgen(js_name = DatabaseObject)]
pub struct JsDatabaseObject {
    host: super::durable::DatabaseHost,
}

#[wasm_bindgen(js_class = DatabaseObject)]
impl JsDatabaseObject {
    /// Over `storage`: the Durable Object's `ctx.storage` (SQLite-backed).
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new(storage: JsValue) -> Self {
        // An isolate may serve only the object, never a worker event: a panic here must also
        // replace the instance (object.js then makes the object again).
        super::init_panic_hook();
        Self {
            host: super::durable::DatabaseHost::new(storage),
        }
    }

    /// Answers one request (JSON text) with its answer (JSON text), synchronously.
    #[must_use]
    pub fn handle(&self, body: &str) -> String {
        self.host.handle(body)
    }
}

fn config(message: String) -> JsValue {
    error::to_js(&Error::Config { message })
}

/// Checks an engine URL without creating the engine (a `kv://` URL's namespace arrives later,
/// with the first event's `env`); returns it in canonical form.
///
/// # Errors
/// A `CONFIG` error for a bad URL.
#[wasm_bindgen(js_name = checkUrl)]
pub fn check_url(url: &str) -> Result<String, JsValue> {
    error::js(crate::EngineUrl::parse(url)).map(|u| u.as_string())
}

/// Panics inside gluebind's wasm, to test recovery (the demo's debug-only panic route). Never
/// call it in production.
#[wasm_bindgen(js_name = panicForTesting)]
pub fn panic_for_testing() {
    panic!("deliberate panic from panicForTesting() (debug only)");
}

/// The isolate's registry (SQLAlchemy's `scoped_session`), with the options of the values it
/// hands to JavaScript. Create it once per isolate, at module scope.
#[wasm_bindgen(js_name = Registry)]
pub struct JsRegistry {
    registry: Registry,
    out: Output,
    thrown: Rc<Thrown>,
}

#[wasm_bindgen(js_class = Registry)]
impl JsRegistry {
    /// `new Registry({ url, teardown?, autoflush?, int64?, timestamps? }, env?)`. A
    /// `kv://BINDING` URL takes its KV namespace from `env[BINDING]` (the Worker's `env`).
    ///
    /// # Errors
    /// A `CONFIG` error for a bad URL or option, or a missing KV binding.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, env: JsValue) -> Result<JsRegistry, JsValue> {
        // Logs a panic and replaces the instance on the next call; the JS wrapper notices
        // (instanceEpoch) and starts over.
        super::init_panic_hook();
        let options: Options = serde_wasm_bindgen::from_value(options)
            .map_err(|e| config(format!("invalid gluebind options: {e}")))?;
        let teardown = match options.teardown.as_deref() {
            None | Some("rollback") => TeardownPolicy::Rollback,
            Some("commit") => TeardownPolicy::Commit,
            Some(other) => {
                return Err(config(format!(
                    "teardown must be \"rollback\" (the default) or \"commit\", got {other:?}"
                )))
            }
        };
        let out = Output {
            int64: options.int64,
            timestamps: options.timestamps,
            json: false,
        };
        let thrown = Rc::new(Thrown::default());
        let default = error::js(engine(&options.url, &env))?;
        let mut builder = SessionFactory::builder()
            .bind(default)
            .autoflush(options.autoflush.unwrap_or(true))
            .teardown(teardown)
            .record_queries(options.record_queries)
            .isolation(isolation(
                options.isolation.as_deref().unwrap_or("serializable"),
            )?);
        for (key, url) in &options.binds {
            builder = builder.bind_key(key, error::js(engine(url, &env))?);
        }
        builder = with_hooks(builder, &options, out, &thrown)?;
        let factory = error::js(builder.build())?;
        Ok(Self {
            registry: Registry::new(factory),
            out,
            thrown,
        })
    }

    /// Begins the scope of one fetch event; returns its id.
    pub fn begin(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // scope counters stay far below 2^53
        let id = self.registry.begin().id().0 as f64;
        id
    }

    fn scope(&self, scope: f64) -> crate::Scope {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.registry.scope_from_id(scope as u64)
    }

    /// The scope's session, opened on first use; the same session on every later call.
    ///
    /// # Errors
    /// `OUTSIDE_SCOPE` once the scope has been removed.
    pub fn session(&self, scope: f64) -> Result<JsSession, JsValue> {
        let session = error::js(self.registry.session(&self.scope(scope)))?;
        Ok(JsSession::new(session, self.out, &self.thrown))
    }

    /// The scope's session id if it has opened a session (opens none).
    #[wasm_bindgen(js_name = sessionId)]
    pub fn session_id(&self, scope: f64) -> Option<String> {
        self.registry.session_id(&self.scope(scope))
    }

    /// True while the scope is active (begun and not yet removed).
    #[wasm_bindgen(js_name = isActive)]
    pub fn is_active(&self, scope: f64) -> bool {
        self.registry.is_active(&self.scope(scope))
    }

    /// Ends the scope: finishes its session per the teardown policy (always a rollback when
    /// `failed`), removes it. Resolves to `{ sessionId, finish }` (`finish`: `"clean"`,
    /// `"committed"`, `"rolledBack"`, or `null` when no session was opened).
    pub fn remove(&self, scope: f64, failed: bool) -> Promise {
        let registry = self.registry.clone();
        let scope = self.scope(scope);
        let thrown = Rc::clone(&self.thrown);
        promise(async move {
            let outcome = if failed {
                Outcome::Failed
            } else {
                Outcome::Completed
            };
            let teardown = registry
                .remove(&scope, outcome)
                .await
                .map_err(|e| thrown.to_js(&e))?;
            let result = Object::new();
            set(
                &result,
                "sessionId",
                teardown.session_id.map_or(JsValue::NULL, JsValue::from),
            );
            let finish = match teardown.finish {
                Some(Finish::Clean) => JsValue::from_str("clean"),
                Some(Finish::Committed) => JsValue::from_str("committed"),
                Some(Finish::RolledBack) => JsValue::from_str("rolledBack"),
                None => JsValue::NULL,
            };
            set(&result, "finish", finish);
            Ok(result.into())
        })
    }

    /// The registry's counters: `{ registriesCreated, scopesBegun, sessionsOpened,
    /// sessionsRemoved, sessionsActive, teardownCommits, teardownRollbacks, teardownErrors }`.
    pub fn stats(&self) -> Object {
        let s = self.registry.stats();
        let o = Object::new();
        #[allow(clippy::cast_precision_loss)] // counters stay far below 2^53
        for (key, value) in [
            ("registriesCreated", s.registries_created),
            ("scopesBegun", s.scopes_begun),
            ("sessionsOpened", s.sessions_opened),
            ("sessionsRemoved", s.sessions_removed),
            ("sessionsActive", s.sessions_active),
            ("teardownCommits", s.teardown_commits),
            ("teardownRollbacks", s.teardown_rollbacks),
            ("teardownErrors", s.teardown_errors),
        ] {
            set(&o, key, value as f64);
        }
        o
    }

    /// The last statements of ended sessions, oldest first (with `recordQueries: true`).
    ///
    /// # Errors
    /// Never in practice (a parameter JavaScript cannot hold).
    #[wasm_bindgen(js_name = recentQueries)]
    pub fn recent_queries(&self) -> Result<JsValue, JsValue> {
        queries_to_js(&self.registry.recent_queries())
    }

    /// The engine URL in canonical form (`memory://`, `kv://GLUEBIND_KV`).
    #[wasm_bindgen(getter)]
    pub fn engine(&self) -> String {
        self.registry.engine().url()
    }

    /// A session outside any scope (start-up work such as creating tables). Its owner commits
    /// and closes it; the registry's stats do not count it.
    #[wasm_bindgen(js_name = openSession)]
    pub fn open_session(&self) -> JsSession {
        JsSession::new(self.registry.factory().open(), self.out, &self.thrown)
    }
}
