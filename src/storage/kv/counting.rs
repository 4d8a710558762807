//! `CountingKv`: a wrapper that counts KV operations, to assert the cost budget in tests and
//! to report operations per request.

use super::backend::{BoxFuture, KvBackend, KvEntry, KvResult, ListPage};
use std::cell::Cell;

/// Operations counted by [`CountingKv`], by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvOps {
    /// Single-key reads.
    pub gets: u64,
    /// Bulk reads (each counts as one operation, whatever its size).
    pub bulk_gets: u64,
    /// Writes.
    pub puts: u64,
    /// Deletes.
    pub deletes: u64,
    /// List pages.
    pub lists: u64,
    /// Keys the list pages returned (not operations: what a listing costs to read).
    pub listed_keys: u64,
}

impl KvOps {
    /// All operations, as Workers KV counts them against the per-invocation limit.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.gets + self.bulk_gets + self.puts + self.deletes + self.lists
    }
}

/// Wraps a backend and counts every call.
#[derive(Debug, Default)]
pub struct CountingKv<B> {
    inner: B,
    ops: Cell<KvOps>,
}

impl<B> CountingKv<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            ops: Cell::new(KvOps::default()),
        }
    }

    /// Operations so far.
    #[must_use]
    pub fn ops(&self) -> KvOps {
        self.ops.get()
    }

    /// Resets the counters (e.g. between measured steps).
    pub fn reset(&self) {
        self.ops.set(KvOps::default());
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn count(&self, f: impl FnOnce(&mut KvOps)) {
        let mut ops = self.ops.get();
        f(&mut ops);
        self.ops.set(ops);
    }
}

impl<B: KvBackend> KvBackend for CountingKv<B> {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        self.count(|o| o.gets += 1);
        self.inner.get(key)
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        self.count(|o| o.bulk_gets += 1);
        self.inner.get_many(keys)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        self.count(|o| o.puts += 1);
        self.inner.put(key, value, metadata)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        self.count(|o| o.deletes += 1);
        self.inner.delete(key)
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        self.count(|o| o.lists += 1);
        Box::pin(async move {
            let page = self.inner.list(prefix, cursor, limit).await?;
            self.count(|o| o.listed_keys += page.keys.len() as u64);
            Ok(page)
        })
    }
    fn random_u64(&self) -> Option<u64> {
        self.inner.random_u64()
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        self.inner.sleep(ms)
    }
}
