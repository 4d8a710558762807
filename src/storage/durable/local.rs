//! `LocalObject`: a database object in the test's own process, as a `do://` transport, with
//! the faults a network and an evicted object bring (feature `testing`).

use super::{
    client::{ObjectTransport, TransportFailure},
    object::{DatabaseObject, MemoryPersistence, Persistence},
};
use crate::storage::kv::{backend::BoxFuture, faulty::yield_once};
use std::cell::{Cell, RefCell};

/// A database object reached without a network: several engines over one `LocalObject` are
/// several isolates over one Durable Object. Faults: requests lost before the object
/// ([`LocalObject::lose_requests`]), answers lost after it applied them
/// ([`LocalObject::lose_answers`]), an eviction ([`LocalObject::restart`]), and a yield before
/// every request ([`LocalObject::interleave`]) so that joined futures interleave.
pub struct LocalObject {
    storage: MemoryPersistence,
    /// Opens the object over its storage (again, after an eviction).
    open: Box<dyn Fn() -> DatabaseObject<Box<dyn Persistence>>>,
    object: RefCell<DatabaseObject<Box<dyn Persistence>>>,
    lose_requests: Cell<u32>,
    lose_answers: Cell<u32>,
    fail_to_open: Cell<u32>,
    most_commits: Cell<usize>,
    interleave: Cell<bool>,
    older: Cell<bool>,
    requests: Cell<u64>,
    request_bytes: Cell<u64>,
    answer_bytes: Cell<u64>,
    clock: Cell<u64>,
}

impl std::fmt::Debug for LocalObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObject")
            .field("version", &self.version())
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl Default for LocalObject {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalObject {
    /// A new object over empty storage.
    ///
    /// # Panics
    /// Never: memory storage cannot fail to load.
    #[must_use]
    pub fn new() -> Self {
        let storage = MemoryPersistence::new();
        let memory = storage.clone();
        Self::over(storage, move || Box::new(memory.clone()))
    }

    /// A new object over the storage `open` gives (each call: the same storage, opened again).
    fn over(storage: MemoryPersistence, open: impl Fn() -> Box<dyn Persistence> + 'static) -> Self {
        let open = Box::new(move || DatabaseObject::open(open()).expect("test storage loads"));
        let object = open();
        Self {
            storage,
            open,
            object: RefCell::new(object),
            lose_requests: Cell::new(0),
            lose_answers: Cell::new(0),
            fail_to_open: Cell::new(0),
            most_commits: Cell::new(0),
            interleave: Cell::new(false),
            older: Cell::new(false),
            requests: Cell::new(0),
            request_bytes: Cell::new(0),
            answer_bytes: Cell::new(0),
            clock: Cell::new(1_000_000),
        }
    }

    /// The next `n` requests fail before they reach the object.
    pub fn lose_requests(&self, n: u32) {
        self.lose_requests.set(n);
    }

    /// The next `n` requests reach the object, which answers them; the answers are lost.
    pub fn lose_answers(&self, n: u32) {
        self.lose_answers.set(n);
    }

    /// The next `n` requests are answered, unread, with the failure of an object whose storage
    /// cannot be opened.
    pub fn fail_to_open(&self, n: u32) {
        self.fail_to_open.set(n);
    }

    /// The next store of the object fails (the request is answered with a storage error);
    /// memory storage only.
    pub fn fail_next_store(&self) {
        self.storage.fail_next_store();
    }

    /// Evicts the object: the next request is served by one opened again from its storage
    /// (recent versions and the memory of answered commits that were not stored are gone).
    ///
    /// # Panics
    /// Never: memory storage cannot fail to load.
    pub fn restart(&self) {
        *self.object.borrow_mut() = (self.open)();
    }

    /// A new object whose storage is a real SQLite database (as a Durable Object's).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn over_sqlite() -> Self {
        let sqlite = super::sql::sqlite::Sqlite::new();
        Self::over(MemoryPersistence::new(), move || {
            Box::new(super::sql::SqlPersistence::new(sqlite.clone()))
        })
    }

    /// Every request yields once first (as a network round trip does).
    pub fn interleave(&self, on: bool) {
        self.interleave.set(on);
    }

    /// Serves requests as an object deployed before commits named the keys they inserted
    /// unread, loads asked for first rows and index reads, and commits left out schemas (a
    /// worker and its object on different versions during a deploy): the object does not see
    /// those parts, refuses a commit without its schemas unread, and its answers carry no
    /// wire level.
    pub fn as_older_object(&self, on: bool) {
        self.older.set(on);
    }

    /// Requests sent so far (lost ones included).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// The most commits one request carried so far (a batch carries several).
    #[must_use]
    pub fn most_commits_per_request(&self) -> usize {
        self.most_commits.get()
    }

    /// Bytes of the requests sent so far (lost ones included).
    #[must_use]
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes.get()
    }

    /// Bytes of the answers the object gave so far (lost ones included).
    #[must_use]
    pub fn answer_bytes(&self) -> u64 {
        self.answer_bytes.get()
    }

    /// How many whole states of earlier versions the object keeps (see the object's
    /// checkpoints: a load as of a version in between rolls one forward).
    #[must_use]
    pub fn kept_states(&self) -> usize {
        self.object.borrow().kept_states()
    }

    /// The estimated bytes of the changes of recent versions the object keeps (bounded: see
    /// the object's memory).
    #[must_use]
    pub fn kept_change_bytes(&self) -> usize {
        self.object.borrow().kept_change_bytes()
    }

    /// The object's latest version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.object.borrow().version()
    }

    /// The object's latest committed state.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn snapshot(&self) -> crate::snapshot::Database {
        self.object.borrow().database().clone()
    }

    /// Moves the clock of the engines over this object (their cache lifetime) by `ms`.
    pub fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
}

/// `body` without what an older object does not know: a commit's `assumed` keys and `mine`,
/// a load's first rows and index reads; `Err` with its answer for a commit it cannot read (a table
/// without its schema).
fn older(body: &str) -> Result<String, String> {
    let Ok(mut request) = serde_json::from_str::<serde_json::Value>(body) else {
        return Ok(body.to_owned());
    };
    if request.get("batch").is_some() {
        return Err(
            r#"{"failed":{"error":{"code":"REQUEST","message":"not a gluebind request: unknown variant `batch`"}}}"#
                .to_owned(),
        );
    }
    let tables = request
        .pointer("/commit/delta/tables")
        .and_then(|t| t.as_array());
    let schemaless = tables.into_iter().flatten().any(|t| {
        ["base", "mine"]
            .iter()
            .any(|side| t[side].is_object() && t[side].get("schema").is_none())
    });
    if schemaless {
        return Err(
            r#"{"failed":{"error":{"code":"REQUEST","message":"not a gluebind request: missing field `schema`"}}}"#
                .to_owned(),
        );
    }
    for (at, fields) in [
        ("/commit/delta", &["assumed", "renamed"][..]),
        ("/commit", &["mine"][..]),
        ("/load", &["firsts", "indexed", "counts"][..]),
    ] {
        if let Some(part) = request.pointer_mut(at).and_then(|p| p.as_object_mut()) {
            for field in fields {
                part.remove(*field);
            }
        }
    }
    Ok(request.to_string())
}

/// An answer as an older object gives it: without its wire level.
fn older_answer(answer: String) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&answer) else {
        return answer;
    };
    for at in ["/loaded", "/committed"] {
        if let Some(part) = value.pointer_mut(at).and_then(|p| p.as_object_mut()) {
            part.remove("wire");
        }
    }
    value.to_string()
}

impl ObjectTransport for LocalObject {
    fn send(&self, body: String) -> BoxFuture<'_, Result<String, TransportFailure>> {
        Box::pin(async move {
            self.requests.set(self.requests.get() + 1);
            // Only a batch is read here (the object reads every request anyway).
            if body.starts_with("{\"batch\"") {
                if let Ok(super::wire::Request::Batch(commits)) = serde_json::from_str(&body) {
                    self.most_commits
                        .set(self.most_commits.get().max(commits.len()));
                }
            }
            self.request_bytes
                .set(self.request_bytes.get() + body.len() as u64);
            if self.interleave.get() {
                yield_once().await;
            }
            if self.lose_requests.get() > 0 {
                self.lose_requests.set(self.lose_requests.get() - 1);
                return Err(TransportFailure::Transient(
                    "request lost (injected)".into(),
                ));
            }
            if self.fail_to_open.get() > 0 {
                self.fail_to_open.set(self.fail_to_open.get() - 1);
                return Ok(super::object::failure_json(&crate::error::Error::Storage {
                    message: "the object's storage cannot be opened (injected)".into(),
                }));
            }
            let answer = match self.older.get() {
                false => self.object.borrow_mut().handle_json(&body),
                true => match older(&body) {
                    Ok(body) => older_answer(self.object.borrow_mut().handle_json(&body)),
                    Err(refused) => refused,
                },
            };
            self.answer_bytes
                .set(self.answer_bytes.get() + answer.len() as u64);
            if self.lose_answers.get() > 0 {
                self.lose_answers.set(self.lose_answers.get() - 1);
                return Err(TransportFailure::Transient("answer lost (injected)".into()));
            }
            Ok(answer)
        })
    }

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        let _ = ms;
        Box::pin(yield_once())
    }
}
