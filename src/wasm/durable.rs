//! `do://` in a Worker, for Rust workers and the npm package alike (through js-sys, so that
//! both share it): the transport to the database's Durable Object (its stub's `fetch`), and
//! the object's side — [`DatabaseHost`], which the Durable Object classes (`GluebindDatabase`)
//! wrap — over the object's SQLite storage (`ctx.storage.sql`, `transactionSync`).

use crate::{
    error::{Error, Result},
    storage::{
        durable::{
            client::{ObjectTransport, TransportFailure},
            object::{failure_json, DatabaseObject},
            sql::{SqlExec, SqlPersistence, SqlValue},
        },
        kv::backend::BoxFuture,
    },
};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};
use wasm_bindgen::{prelude::*, JsCast};
use wasm_bindgen_futures::JsFuture;

/// The URL of the requests to the object (a Durable Object's `fetch` needs one; it goes
/// nowhere else).
const OBJECT_URL: &str = "https://gluebind.internal/";

fn field(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn message(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| field(value, "message").as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn call(target: &JsValue, method: &str, args: &[JsValue]) -> std::result::Result<JsValue, JsValue> {
    let f: Function = field(target, method)
        .dyn_into()
        .map_err(|_| JsValue::from_str(&format!("{method} is not a function")))?;
    Reflect::apply(&f, target, &args.iter().collect::<Array>())
}

/// Durable Objects mark the errors worth retrying (`retryable`) and those never to retry
/// (`overloaded`): see [`TransportFailure::of_object_error`].
fn classify(error: &JsValue) -> TransportFailure {
    let flag = |name| field(error, name).as_bool() == Some(true);
    TransportFailure::of_object_error(message(error), flag("retryable"), flag("overloaded"))
}

/// Requests larger than this go by `fetch`: an RPC argument or result has a size limit (1 MiB
/// in older runtimes), an HTTP body none that matters here.
const RPC_MAX_BYTES: usize = 1 << 20;
/// After the object's class turned out to have no RPC method, how long `fetch` serves before
/// RPC is tried again (a deploy that rolls out replaces the class).
const RPC_RETRY_MS: f64 = 60_000.0;

/// Whether a failed RPC call means the object's class has no such method (a class exported
/// without `extends DurableObject` or without the method, e.g. of an older gluebind during a
/// deploy): nothing ran, and its `fetch` serves instead.
fn rpc_unsupported(error: &JsValue) -> bool {
    let text = message(error);
    text.contains("does not support RPC") || text.contains("does not implement the method")
}

/// Reaches the Durable Object named `name` of a namespace binding through its stub: by RPC
/// (the class's `gluebind` method), or by `fetch` where the class has no RPC method.
pub(crate) struct NamespaceTransport {
    namespace: Namespace,
    name: String,
    /// The object's id (a value, not an I/O object: kept across requests, unlike stubs).
    id: RefCell<Option<JsValue>>,
    /// Until when (ms since the epoch) `fetch` serves: the object's class had no RPC method.
    fetch_until: Cell<f64>,
}

impl NamespaceTransport {
    /// Takes the namespace bound as `binding` from `env`.
    ///
    /// # Errors
    /// [`Error::Config`] when `env` has no Durable Object namespace of that name.
    pub fn from_env(env: &JsValue, binding: &str, name: &str) -> Result<Self> {
        let namespace = if env.is_object() {
            field(env, binding)
        } else {
            JsValue::UNDEFINED
        };
        if !field(&namespace, "idFromName").is_function() {
            return Err(Error::Config {
                message: format!(
                    "no Durable Object namespace bound as {binding:?}: add \
                     [[durable_objects.bindings]] name = \"{binding}\", class_name = \
                     \"GluebindDatabase\" and a [[migrations]] entry with new_sqlite_classes = \
                     [\"GluebindDatabase\"] to wrangler.toml, and export GluebindDatabase from \
                     the worker's entry module"
                ),
            });
        }
        Ok(Self {
            namespace: namespace.unchecked_into(),
            name: name.to_owned(),
            id: RefCell::new(None),
            fetch_until: Cell::new(0.0),
        })
    }

    /// A stub for the object (made per request: a stub is cheap, and one kept across requests
    /// would outlive the request it was made in).
    fn stub(&self) -> std::result::Result<Stub, JsValue> {
        let id = match self.id.borrow().clone() {
            Some(id) => id,
            None => self.namespace.id_from_name(&self.name)?,
        };
        *self.id.borrow_mut() = Some(id.clone());
        self.namespace.get(&id)
    }
}

#[wasm_bindgen]
extern "C" {
    /// A Durable Object namespace binding (typed: every request to the object makes a stub).
    type Namespace;
    #[wasm_bindgen(method, catch, js_name = idFromName)]
    fn id_from_name(this: &Namespace, name: &str) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn get(this: &Namespace, id: &JsValue) -> std::result::Result<Stub, JsValue>;

    /// A stub of the database object.
    type Stub;
    /// The object's RPC method (see `object.rs`); throws where the runtime or the class has
    /// no RPC.
    #[wasm_bindgen(method, catch, js_name = gluebind)]
    fn gluebind_rpc(this: &Stub, body: &str) -> std::result::Result<Promise, JsValue>;
}

impl NamespaceTransport {
    /// Sends `body` to the object's RPC method; `None` when `fetch` should serve it instead:
    /// the class has no such method (then for [`RPC_RETRY_MS`]), the request is large, or the
    /// call failed in a way a retry cannot cure (a size limit, a message this code does not
    /// know) — safe to send again, as every request is (loads are idempotent, a commit carries
    /// its id). A retryable or overloaded object's error is returned as it is.
    async fn rpc(&self, body: &str) -> std::result::Result<Option<String>, JsValue> {
        let now = js_sys::Date::now();
        if now < self.fetch_until.get() || body.len() > RPC_MAX_BYTES {
            return Ok(None);
        }
        let answer = match self.stub()?.gluebind_rpc(body) {
            Ok(promise) => JsFuture::from(promise).await,
            // Thrown before any call: a runtime without RPC (an old compatibility date), whose
            // stubs have no such method.
            Err(e) if message(&e).contains("is not a function") => {
                self.fetch_until.set(now + RPC_RETRY_MS);
                return Ok(None);
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok(text) => Ok(Some(text.as_string().unwrap_or_default())),
            Err(e) if rpc_unsupported(&e) => {
                self.fetch_until.set(now + RPC_RETRY_MS);
                Ok(None)
            }
            Err(e) => {
                let flag = |name| field(&e, name).as_bool() == Some(true);
                if flag("retryable") || flag("overloaded") {
                    Err(e)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Sends `body` to the object's `fetch` (on a stub of its own: a stub that threw is broken
    /// for good); its status and text.
    async fn fetch(&self, body: &str) -> std::result::Result<(f64, String), JsValue> {
        let init = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&init, &JsValue::from_str(k), v);
        let _ = set("method", &JsValue::from_str("POST"));
        let _ = set("body", &JsValue::from_str(body));
        let stub: JsValue = self.stub()?.into();
        let promise = call(
            &stub,
            "fetch",
            &[JsValue::from_str(OBJECT_URL), init.into()],
        )?;
        let response = JsFuture::from(Promise::from(promise)).await?;
        let status = field(&response, "status").as_f64().unwrap_or(0.0);
        let text = call(&response, "text", &[])?;
        let text = JsFuture::from(Promise::from(text)).await?;
        Ok((status, text.as_string().unwrap_or_default()))
    }
}

impl ObjectTransport for NamespaceTransport {
    fn send(&self, body: String) -> BoxFuture<'_, std::result::Result<String, TransportFailure>> {
        Box::pin(async move {
            let response = async {
                match self.rpc(&body).await? {
                    Some(text) => Ok((200.0, text)),
                    None => self.fetch(&body).await,
                }
            }
            .await
            .map_err(|e| classify(&e))?;
            match response {
                (status, text) if (200.0..300.0).contains(&status) => Ok(text),
                (status, text) => Err(TransportFailure::Permanent(format!(
                    "the Durable Object answered HTTP {status}: {text} (is its class \
                     GluebindDatabase?)"
                ))),
            }
        })
    }

    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        super::sleep(ms)
    }
}

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage` of a Durable Object (typed: a commit calls it on every request, where
    /// looking each method up by name cost about as much as the statements).
    #[derive(Clone)]
    type ObjectStorage;
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &ObjectStorage,
        work: &Function,
    ) -> std::result::Result<JsValue, JsValue>;

    /// `ctx.storage.sql`.
    #[derive(Clone)]
    type SqlStorage;
    /// `exec(query, ...bindings)`: runs the statement at once; its cursor gives the rows.
    #[wasm_bindgen(method, catch, variadic)]
    fn exec(
        this: &SqlStorage,
        query: &str,
        bindings: &[JsValue],
    ) -> std::result::Result<SqlCursor, JsValue>;

    type SqlCursor;
    /// The rows as arrays of values (an iterator).
    #[wasm_bindgen(method, catch)]
    fn raw(this: &SqlCursor) -> std::result::Result<JsValue, JsValue>;
}

/// A Durable Object's SQLite storage (`ctx.storage`), as the object's SQL.
#[derive(Clone)]
pub(crate) struct ObjectSql {
    storage: ObjectStorage,
    sql: SqlStorage,
}

impl ObjectSql {
    /// Over `ctx.storage` of a SQLite-backed Durable Object.
    ///
    /// # Errors
    /// [`Error::Config`] when the storage has no SQL API (a Durable Object class declared
    /// with `new_classes`, which is KV-backed, instead of `new_sqlite_classes`).
    pub fn new(storage: JsValue) -> Result<Self> {
        let sql = field(&storage, "sql");
        if !field(&sql, "exec").is_function() {
            return Err(Error::Config {
                message: "the GluebindDatabase Durable Object has no SQL storage: declare the \
                          class in a [[migrations]] entry with new_sqlite_classes (not \
                          new_classes) in wrangler.toml"
                    .to_owned(),
            });
        }
        Ok(Self {
            storage: storage.unchecked_into(),
            sql: sql.unchecked_into(),
        })
    }
}

fn from_js(value: JsValue) -> SqlValue {
    if let Some(n) = value.as_f64() {
        // Durable Objects' SQL gives integers as numbers; gluebind's stay below 2^53.
        return SqlValue::Integer(n as i64);
    }
    match value.as_string() {
        Some(s) => SqlValue::Text(s),
        None => SqlValue::Null,
    }
}

fn to_js(value: SqlValue) -> JsValue {
    match value {
        SqlValue::Null => JsValue::NULL,
        SqlValue::Integer(n) => JsValue::from_f64(n as f64),
        SqlValue::Text(s) => JsValue::from_str(&s),
    }
}

fn storage_error(what: &str, e: &JsValue) -> Error {
    Error::Storage {
        message: format!(
            "the Durable Object's SQL storage failed ({what}): {}",
            message(e)
        ),
    }
}

impl SqlExec for ObjectSql {
    fn exec(&self, query: &str, args: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>> {
        let args: Vec<JsValue> = args.into_iter().map(to_js).collect();
        let cursor = self
            .sql
            .exec(query, &args)
            .map_err(|e| storage_error(query, &e))?;
        let raw = cursor.raw().map_err(|e| storage_error(query, &e))?;
        let rows = Array::from(&raw);
        Ok(rows
            .iter()
            .map(|row| Array::from(&row).iter().map(from_js).collect())
            .collect())
    }

    fn run(&self, query: &str, args: Vec<SqlValue>) -> Result<()> {
        // `exec` runs a write at once: its cursor need not be read.
        let args: Vec<JsValue> = args.into_iter().map(to_js).collect();
        self.sql
            .exec(query, &args)
            .map(drop)
            .map_err(|e| storage_error(query, &e))
    }

    fn transaction(&self, work: Box<dyn FnOnce() -> Result<()>>) -> Result<()> {
        // `transactionSync` rolls back when its callback throws: a failed `work` throws, and
        // its error is handed back as it was.
        let failed: Rc<RefCell<Option<Error>>> = Rc::new(RefCell::new(None));
        let slot = failed.clone();
        let callback = Closure::once(move || -> std::result::Result<JsValue, JsValue> {
            work().map(|()| JsValue::UNDEFINED).map_err(|e| {
                let thrown = JsValue::from_str(&e.to_string());
                *slot.borrow_mut() = Some(e);
                thrown
            })
        });
        let outcome = self
            .storage
            .transaction_sync(callback.as_ref().unchecked_ref());
        drop(callback);
        let thrown = failed.borrow_mut().take();
        match (outcome, thrown) {
            (_, Some(e)) => Err(e),
            (Ok(_), None) => Ok(()),
            (Err(e), None) => Err(storage_error("transactionSync", &e)),
        }
    }
}

/// The database object inside a Durable Object: opened from the object's SQL storage at its
/// first request (again after a failed open), then answering every request synchronously —
/// so that no other request of the object runs in the middle of one.
pub(crate) struct DatabaseHost {
    sql: Result<ObjectSql>,
    object: RefCell<Option<DatabaseObject<SqlPersistence<ObjectSql>>>>,
}

impl DatabaseHost {
    /// Over `ctx.storage` of the Durable Object.
    pub fn new(storage: JsValue) -> Self {
        Self {
            sql: ObjectSql::new(storage),
            object: RefCell::new(None),
        }
    }

    /// Answers one request (JSON) with its answer (JSON).
    pub fn handle(&self, body: &str) -> String {
        let mut slot = self.object.borrow_mut();
        if slot.is_none() {
            let opened = self
                .sql
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|sql| DatabaseObject::open(SqlPersistence::new(sql.clone())));
            match opened {
                Ok(object) => *slot = Some(object),
                Err(e) => return failure_json(&e),
            }
        }
        slot.as_mut()
            .map(|object| object.handle_json(body))
            .unwrap_or_default()
    }
}
