//! `MemoryKv`: an in-memory KV namespace with Workers KV's interface and limits, for native
//! tests (and for trying the KV engine without Cloudflare).

use super::backend::{
    BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey, MAX_BULK_GET, MAX_LIST,
};
use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    ops::Bound,
};

/// An in-memory KV namespace: strongly consistent, with a manual clock.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: RefCell<BTreeMap<String, KvEntry>>,
    clock_ms: Cell<u64>,
}

impl MemoryKv {
    /// An empty namespace whose clock starts at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward (to age the isolate cache in tests).
    pub fn advance(&self, ms: u64) {
        self.clock_ms.set(self.clock_ms.get() + ms);
    }

    /// Number of stored keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.borrow().len()
    }

    /// True when nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.borrow().is_empty()
    }

    /// All keys, in order (for inspecting the layout in tests).
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.data.borrow().keys().cloned().collect()
    }

    /// The entry under `key`, read without counting as an operation.
    #[must_use]
    pub fn peek(&self, key: &str) -> Option<KvEntry> {
        self.data.borrow().get(key).cloned()
    }

    /// Stores an entry directly (to simulate another isolate's write in tests).
    pub fn poke(&self, key: &str, entry: KvEntry) {
        self.data.borrow_mut().insert(key.to_owned(), entry);
    }

    /// Removes an entry directly (to simulate another isolate's delete in tests).
    pub fn unpoke(&self, key: &str) {
        self.data.borrow_mut().remove(key);
    }
}

impl KvBackend for MemoryKv {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        let found = self.data.borrow().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        let result = if keys.len() > MAX_BULK_GET {
            Err(KvFailure::Permanent(format!(
                "bulk get of {} keys; at most {MAX_BULK_GET}",
                keys.len()
            )))
        } else {
            let data = self.data.borrow();
            Ok(keys.iter().map(|k| data.get(k).cloned()).collect())
        };
        Box::pin(async move { result })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        self.data
            .borrow_mut()
            .insert(key.to_owned(), KvEntry { value, metadata });
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        self.data.borrow_mut().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        let limit = limit.clamp(1, MAX_LIST);
        let data = self.data.borrow();
        // Pages continue strictly after the cursor (the last key of the previous page).
        let lower = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Included(prefix.to_owned()),
        };
        let mut keys: Vec<ListedKey> = data
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit + 1)
            .map(|(k, e)| ListedKey {
                name: k.clone(),
                metadata: e.metadata.clone(),
            })
            .collect();
        let cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().map(|k| k.name.clone())
        } else {
            None
        };
        Box::pin(async move { Ok(ListPage { keys, cursor }) })
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms.get()
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        // Time is simulated: sleeping advances the clock instead of blocking.
        self.advance(ms);
        Box::pin(async {})
    }
}
