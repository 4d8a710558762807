//! The small async interface gluebind needs from Workers KV, so the KV engine runs natively
//! over an in-memory map in tests and over the real binding in a Worker.

use std::{future::Future, pin::Pin};

/// A boxed, non-`Send` future: Workers run one thread per isolate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One stored value with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    /// The value (gluebind stores JSON text).
    pub value: String,
    /// The metadata object stored with the value, if any.
    pub metadata: Option<serde_json::Value>,
}

/// One key returned by [`KvBackend::list`], with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedKey {
    /// Full key name.
    pub name: String,
    /// Metadata stored with the key, if any.
    pub metadata: Option<serde_json::Value>,
}

/// One page of [`KvBackend::list`] (at most 1000 keys, in key order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListPage {
    /// The keys of this page.
    pub keys: Vec<ListedKey>,
    /// Cursor for the next page; `None` when the listing is complete.
    pub cursor: Option<String>,
}

/// Why a KV call failed, which decides whether gluebind retries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvFailure {
    /// HTTP 429: more than one write per second to the same key. Retried with backoff.
    RateLimited(String),
    /// A transient failure (5xx, timeout, network). Retried with backoff.
    Transient(String),
    /// Anything else (bad request, missing binding). Not retried.
    Permanent(String),
}

impl KvFailure {
    /// Sorts a failure into retryable or not from the error message a KV binding gave: 429 or
    /// "too many requests" is [`KvFailure::RateLimited`]; a 5xx, timeout, network or internal
    /// error is [`KvFailure::Transient`]; anything else is [`KvFailure::Permanent`].
    #[must_use]
    pub fn classify(message: String) -> Self {
        let lower = message.to_ascii_lowercase();
        if lower.contains("429") || lower.contains("too many requests") {
            Self::RateLimited(message)
        } else if [
            "500",
            "502",
            "503",
            "504",
            "timeout",
            "timed out",
            "network",
            "internal",
        ]
        .iter()
        .any(|needle| lower.contains(needle))
        {
            Self::Transient(message)
        } else {
            Self::Permanent(message)
        }
    }
}

impl std::fmt::Display for KvFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RateLimited(m) => write!(f, "rate limited (429): {m}"),
            Self::Transient(m) => write!(f, "transient failure: {m}"),
            Self::Permanent(m) => write!(f, "{m}"),
        }
    }
}

/// Result of a KV call.
pub type KvResult<T> = Result<T, KvFailure>;

/// Most keys a single [`KvBackend::get_many`] call may ask for (Workers KV's bulk-get limit).
pub const MAX_BULK_GET: usize = 100;
/// Most keys a [`KvBackend::list`] page returns.
pub const MAX_LIST: usize = 1000;

/// What gluebind needs from a KV namespace. Implemented by the Workers binding
/// (`gluebind::wasm::WorkersKv`), by `gluebind::kv::MemoryKv` (feature `testing`) for native
/// tests, and by wrappers that count operations or inject faults.
pub trait KvBackend {
    /// Reads one key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>>;
    /// Reads up to [`MAX_BULK_GET`] keys in one operation; the result is in `keys` order.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>>;
    /// Writes one key with optional metadata.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>>;
    /// Deletes one key (deleting a missing key succeeds).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>>;
    /// Lists keys with `prefix` in key order, with metadata: at most `limit` per page (1 to
    /// [`MAX_LIST`]; a page may hold fewer, as KV's may).
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>>;
    /// Milliseconds since the Unix epoch (the isolate cache's clock).
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds (retry backoff).
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()>;

    /// Random bits for commit stamps and IDs. `None` (the default) uses the platform's
    /// randomness; a simulation returns its own, so that a run replays from its seed.
    fn random_u64(&self) -> Option<u64> {
        None
    }
}

impl<T: KvBackend + ?Sized> KvBackend for std::rc::Rc<T> {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        (**self).get(key)
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        (**self).get_many(keys)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        (**self).put(key, value, metadata)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        (**self).delete(key)
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        (**self).list(prefix, cursor, limit)
    }
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        (**self).sleep(ms)
    }
    fn random_u64(&self) -> Option<u64> {
        (**self).random_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::KvFailure;

    #[test]
    fn classify_sorts_messages_by_retryability() {
        let c = |m: &str| KvFailure::classify(m.to_owned());
        assert!(matches!(
            c("KV PUT failed: 429 Too Many Requests"),
            KvFailure::RateLimited(_)
        ));
        assert!(matches!(c("too many requests"), KvFailure::RateLimited(_)));
        assert!(matches!(
            c("KV GET failed: 503 Service Unavailable"),
            KvFailure::Transient(_)
        ));
        assert!(matches!(
            c("Network connection lost."),
            KvFailure::Transient(_)
        ));
        assert!(matches!(c("operation timed out"), KvFailure::Transient(_)));
        assert!(matches!(
            c("KV PUT failed: 400 Bad Request"),
            KvFailure::Permanent(_)
        ));
        assert_eq!(
            c("key too long"),
            KvFailure::Permanent("key too long".to_owned())
        );
    }
}
