//! The `Session` class of the npm package: one unit of work ([`crate::Session`]) with the
//! value conversions of its registry's options.

use super::*;

/// How a transaction's attempt failed: its work threw (a JavaScript value), or the core
/// returned an error (turned into its JavaScript error at the end, where a `beforeCommit`
/// hook's own thrown value can be given back).
enum WorkError {
    Thrown(JsValue),
    Core(Error),
}

impl From<Error> for WorkError {
    fn from(error: Error) -> Self {
        Self::Core(error)
    }
}

/// One unit of work (see [`crate::Session`]).
#[wasm_bindgen(js_name = Session)]
pub struct JsSession {
    pub(super) session: Session,
    pub(super) out: Output,
    pub(super) thrown: Rc<Thrown>,
}

impl JsSession {
    pub(super) fn new(session: Session, out: Output, thrown: &Rc<Thrown>) -> Self {
        Self {
            session,
            out,
            thrown: Rc::clone(thrown),
        }
    }

    /// A 64-bit integer as the `int64` option says.
    pub(super) fn number(&self, n: i64) -> Result<JsValue, JsValue> {
        let cell = convert::Cell {
            value: &crate::Value::I64(n),
            out: &self.out,
        };
        cell.serialize(&serde_wasm_bindgen::Serializer::new())
            .map_err(|e| JsValue::from_str(&e.to_string()))
    }
}

fn sql_text(sql: &JsValue) -> Result<String, JsValue> {
    sql.as_string().ok_or_else(|| {
        error::to_js(&Error::Sql {
            message: "the SQL must be a string".to_owned(),
        })
    })
}

#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// The session id (what the demo sends as `x-gluebind-session`).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.session.id().to_owned()
    }

    /// True when writes are pending.
    #[wasm_bindgen(getter, js_name = isDirty)]
    pub fn is_dirty(&self) -> bool {
        self.session.is_dirty()
    }

    /// True once the session was removed (its event ended) or closed.
    #[wasm_bindgen(getter, js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// The session of bind `key` (`null`/`undefined`: this one), opened on first use; it
    /// commits, rolls back and ends with this session (see `Session::for_bind`).
    ///
    /// # Errors
    /// `CONFIG` for a bind key without an engine; `SESSION_CLOSED` after removal.
    #[wasm_bindgen(js_name = forBind)]
    pub fn for_bind(&self, key: Option<String>) -> Result<JsSession, JsValue> {
        let session = error::js(self.session.for_bind(key.as_deref()))?;
        Ok(JsSession::new(session, self.out, &self.thrown))
    }

    /// The bind key of this session (`undefined` for the default bind).
    #[wasm_bindgen(getter, js_name = bindKey)]
    pub fn bind_key(&self) -> Option<String> {
        self.session.bind_key().map(str::to_owned)
    }

    /// The statements this session and its binds ran so far (with `recordQueries: true`).
    ///
    /// # Errors
    /// Never in practice (a parameter JavaScript cannot hold).
    #[wasm_bindgen(js_name = recordedQueries)]
    pub fn recorded_queries(&self) -> Result<JsValue, JsValue> {
        queries_to_js(&self.session.recorded_queries())
    }

    /// Runs one statement with parameters (`$1` or `?` placeholders); resolves to the rows
    /// (an array of objects, empty for statements without rows) with non-enumerable
    /// `columns`, `affected` and `command`.
    pub fn execute(&self, sql: JsValue, params: JsValue) -> Promise {
        let session = self.session.clone();
        let out = self.out;
        promise(async move {
            let sql = sql_text(&sql)?;
            let params = error::js(convert::params(&params))?;
            let result = error::js(session.execute_dyn(&sql, params).await)?;
            error::js(convert::result_to_js(&result, &out))
        })
    }

    /// Runs a script of statements without parameters; resolves to one result (as from
    /// `execute`) per statement.
    #[wasm_bindgen(js_name = executeBatch)]
    pub fn execute_batch(&self, sql: JsValue) -> Promise {
        let session = self.session.clone();
        let out = self.out;
        promise(async move {
            let sql = sql_text(&sql)?;
            let results = error::js(session.execute_batch(&sql).await)?;
            let array = Array::new();
            for result in &results {
                array.push(&error::js(convert::result_to_js(result, &out))?);
            }
            Ok(array.into())
        })
    }

    /// Benchmark hook: runs a query and returns its rows in one of the candidate encodings
    /// (`"objects"`, `"objects-cached-keys"`, `"arrays"`, `"json"`; `"count"` returns only the
    /// row count), undecorated.
    #[wasm_bindgen(js_name = executeEncoded)]
    pub fn execute_encoded(&self, sql: JsValue, params: JsValue, encoding: &str) -> Promise {
        let session = self.session.clone();
        let out = self.out;
        let encoding = Encoding::parse(encoding);
        promise(async move {
            let encoding = error::js(encoding)?;
            let sql = sql_text(&sql)?;
            let params = error::js(convert::params(&params))?;
            let result = error::js(session.execute_dyn(&sql, params).await)?;
            let QueryResult::Rows(rows) = result else {
                return Ok(JsValue::NULL);
            };
            error::js(convert::encode_rows(&rows, encoding, &out))
        })
    }

    /// Commits pending writes atomically (pending model objects are flushed first, and the
    /// commit hooks run around it); resolves to `{ version, rowsWritten, tablesChanged }`
    /// (`version` is `null` when there was nothing to commit). A `beforeCommit` hook's throw
    /// rejects with what it threw.
    pub fn commit(&self) -> Promise {
        let session = self.session.clone();
        let thrown = Rc::clone(&self.thrown);
        promise(async move {
            let info = session.commit().await.map_err(|e| thrown.to_js(&e))?;
            Ok(commit_info(&info).into())
        })
    }

    /// Validates pending writes now and commits them in the event's `ctx.waitUntil` teardown
    /// (write-behind: not durable when it returns; see `Session::commit_deferred`).
    ///
    /// # Errors
    /// `CONFLICT` / `UNIQUE` when the writes already conflict (they are then discarded);
    /// `SESSION_CLOSED` after removal.
    #[wasm_bindgen(js_name = commitDeferred)]
    pub fn commit_deferred(&self) -> Result<(), JsValue> {
        error::js(self.session.commit_deferred())
    }

    /// True when teardown will commit the pending writes (after `commitDeferred()`).
    #[wasm_bindgen(getter, js_name = isDeferred)]
    pub fn is_deferred(&self) -> bool {
        self.session.is_deferred()
    }

    /// The isolation level of this session's commits: `"serializable"` or `"snapshot"`.
    #[wasm_bindgen(getter)]
    pub fn isolation(&self) -> String {
        match self.session.isolation() {
            Isolation::Snapshot => "snapshot",
            _ => "serializable",
        }
        .to_owned()
    }

    /// Sets the isolation level of this session's commits.
    ///
    /// # Errors
    /// `CONFIG` for anything but `"serializable"` or `"snapshot"`.
    #[wasm_bindgen(setter)]
    pub fn set_isolation(&self, level: &str) -> Result<(), JsValue> {
        self.session.set_isolation(isolation(level)?);
        Ok(())
    }

    /// `transaction(work, retries?)`: runs `work(session)` (an async function), commits, and
    /// on a `CONFLICT` at commit rolls back and runs both again, at most `retries` times
    /// (default 3) — [`crate::Session::transaction_with`]. Resolves to what `work` resolved to;
    /// rejects with what `work` threw, or the commit's error, after a rollback.
    pub fn transaction(&self, work: js_sys::Function, retries: Option<u32>) -> Promise {
        let session = self.session.clone();
        let (out, thrown) = (self.out, Rc::clone(&self.thrown));
        promise(async move {
            let retries = retries.unwrap_or(Session::DEFAULT_RETRIES);
            session
                .transaction_with(retries, |s| {
                    let (work, thrown) = (work.clone(), Rc::clone(&thrown));
                    async move {
                        let handle = JsValue::from(JsSession::new(s, out, &thrown));
                        let returned = work
                            .call1(&JsValue::NULL, &handle)
                            .map_err(WorkError::Thrown)?;
                        wasm_bindgen_futures::JsFuture::from(Promise::resolve(&returned))
                            .await
                            .map_err(WorkError::Thrown)
                    }
                })
                .await
                .map_err(|e| match e {
                    WorkError::Thrown(value) => value,
                    WorkError::Core(error) => thrown.to_js(&error),
                })
        })
    }

    /// Discards pending writes.
    pub fn rollback(&self) -> Promise {
        let session = self.session.clone();
        promise(async move {
            error::js(session.rollback().await)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next value of the engine's ID sequence `name`: resolves to a number, or a bigint
    /// per the `int64` option (a promise: on `do://` the database object keeps the sequence).
    /// Rejects with `SESSION_CLOSED` after removal, `STORAGE` when the sequence is exhausted.
    #[wasm_bindgen(js_name = nextId)]
    pub fn next_id(&self, name: String) -> Promise {
        let (session, out) = (self.session.clone(), self.out);
        let thrown = Rc::clone(&self.thrown);
        promise(async move {
            let id = error::js(session.next_id(&name).await)?;
            JsSession::new(session, out, &thrown).number(id)
        })
    }

    /// Closes the session, discarding pending writes (for sessions from `openSession`; the
    /// registry closes scoped sessions at teardown).
    pub fn close(&self) {
        self.session.close();
    }
}
