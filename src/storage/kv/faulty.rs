//! `FaultyKv`: a wrapper that injects Workers KV's failures and its eventual consistency, for
//! tests. Local KV under `wrangler dev` is strongly consistent and never rate-limits, so the
//! behaviours gluebind must survive in production can only be shown with a wrapper like this.
//!
//! # Failures
//!
//! Calls are numbered from 1 across all kinds (`get`, `get_many`, `put`, `delete`, `list`),
//! counting every attempt, since the wrapper was created or [`FaultyKv::reset_calls`] was
//! last called. [`FaultyKv::fail_call`] fails one numbered call, [`FaultyKv::fail_from`] every
//! call from a number on (a Worker cut off there), [`FaultyKv::fail_next`] the next `n` calls
//! of a [`CallKind`], [`FaultyKv::fail_every`] every call of a kind until [`FaultyKv::heal`].
//! A failed call has no effect on the data. [`FaultyKv::hang_from`] makes every call from a
//! number on never answer, without effect: drop the future that awaits it, and the Worker
//! running it is gone at exactly that call (no undo, no cleanup runs).
//!
//! [`FaultyKv::limit_write_rate`]`(ms)` models KV's limit of one write per second per key: a
//! `put` or `delete` of a key written less than `ms` ago (by the clock) fails with
//! [`KvFailure::RateLimited`] (HTTP 429), without effect.
//!
//! [`FaultyKv::stale_call`]`(k)` makes read call number `k` stale: every key it reads that
//! was written through the wrapper shows the value before its latest write (a `list` page
//! shows such keys with their previous metadata, or leaves out those created by it; a key
//! deleted by its latest write stays out).
//!
//! # Visibility
//!
//! With [`FaultyKv::delay_writes`]`(ms)`, a `put` or `delete` is applied to the wrapped
//! namespace at once but becomes visible to reads (`get`, `get_many`, `list`) only when the
//! clock ([`KvBackend::now_ms`] of the wrapped backend) has advanced `ms` past the write.
//! Until then every read of that key — by anyone, the writer included — returns the value
//! it had before the oldest write not yet visible: a stale read. This is the worst case KV
//! allows (changes can take 60 s to reach other locations; read-after-write at the same
//! location is usual, not guaranteed). [`FaultyKv::publish`] makes every write visible now.
//! A `list` page holds the keys of the wrapped backend's page with stale keys put back or
//! left out, so a page can hold slightly more or fewer than 1000 keys.
//!
//! Over 600 lines on purpose: one type and its catalogue of faults, each documented where it is
//! injected; split, the catalogue would no longer read as one.

use super::backend::{BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey};
use std::cell::{Cell, RefCell};

/// Which calls a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallKind {
    /// Single-key reads.
    Get,
    /// Bulk reads.
    BulkGet,
    /// Writes.
    Put,
    /// Deletes.
    Delete,
    /// List pages.
    List,
    /// `get`, `get_many` and `list`.
    Read,
    /// `put` and `delete`.
    Write,
    /// Every call.
    Any,
}

impl CallKind {
    fn covers(self, call: CallKind) -> bool {
        match self {
            Self::Any => true,
            Self::Read => matches!(call, Self::Get | Self::BulkGet | Self::List),
            Self::Write => matches!(call, Self::Put | Self::Delete),
            kind => kind == call,
        }
    }
}

/// Which calls fail.
#[derive(Debug, Clone)]
enum Target {
    /// The call with this number.
    Call(u64),
    /// Every call from this number on.
    From(u64),
    /// The next `n` calls of a kind (`None`: every one).
    Kind(CallKind, Option<u64>),
}

#[derive(Debug, Clone)]
struct Fault {
    target: Target,
    failure: KvFailure,
}

/// A write not yet visible to reads.
#[derive(Debug, Clone)]
struct Pending {
    key: String,
    visible_at: u64,
    /// What reads return until then.
    before: Option<KvEntry>,
}

/// Resolves after being polled once more: other futures of a `join` run in between.
pub(crate) async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Wraps a backend and injects failures, stale reads and delayed visibility (see the module
/// documentation for the exact model).
#[derive(Debug)]
pub struct FaultyKv<B> {
    inner: B,
    calls: Cell<u64>,
    log: RefCell<Vec<(CallKind, bool)>>,
    faults: RefCell<Vec<Fault>>,
    delay_ms: Cell<u64>,
    pending: RefCell<Vec<Pending>>,
    rate_ms: Cell<u64>,
    last_write: RefCell<std::collections::HashMap<String, u64>>,
    /// Calls from this number on never answer (0: none).
    hang_at: Cell<u64>,
    /// Read calls (by number) that return stale values (see [`FaultyKv::stale_call`]).
    stale_calls: RefCell<std::collections::BTreeSet<u64>>,
    /// Each written key's value before its latest write through this wrapper.
    previous: RefCell<std::collections::HashMap<String, Option<KvEntry>>>,
    /// The call with this number waits until [`FaultyKv::resume`] (0: none).
    pause_at: Cell<u64>,
    /// True once the paused call may go on.
    resumed: Cell<bool>,
    /// Every call yields once before it runs (see [`FaultyKv::interleave`]).
    interleave: Cell<bool>,
}

impl<B: KvBackend> FaultyKv<B> {
    /// Wraps `inner`: no faults, writes visible at once.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            calls: Cell::new(0),
            log: RefCell::new(Vec::new()),
            faults: RefCell::new(Vec::new()),
            delay_ms: Cell::new(0),
            pending: RefCell::new(Vec::new()),
            rate_ms: Cell::new(0),
            last_write: RefCell::new(std::collections::HashMap::new()),
            hang_at: Cell::new(0),
            stale_calls: RefCell::new(std::collections::BTreeSet::new()),
            previous: RefCell::new(std::collections::HashMap::new()),
            pause_at: Cell::new(0),
            resumed: Cell::new(false),
            interleave: Cell::new(false),
        }
    }

    /// Makes every call yield once to the executor before it runs, as a real KV call's
    /// network round trip does: futures joined over this namespace then interleave at every
    /// KV call (a `MemoryKv` call alone answers at once).
    pub fn interleave(&self, on: bool) {
        self.interleave.set(on);
    }

    /// The wrapped backend (the namespace as it really is, stale reads aside).
    #[must_use]
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Calls so far (every attempt counts), since creation or [`FaultyKv::reset_calls`].
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// The calls so far, in order: their kind and whether they failed.
    #[must_use]
    pub fn log(&self) -> Vec<(CallKind, bool)> {
        self.log.borrow().clone()
    }

    /// Calls of `kind` so far (attempts, failed ones included).
    #[must_use]
    pub fn calls_of(&self, kind: CallKind) -> u64 {
        self.log
            .borrow()
            .iter()
            .filter(|(k, _)| kind.covers(*k))
            .count() as u64
    }

    /// Failed calls so far.
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.log
            .borrow()
            .iter()
            .filter(|(_, failed)| *failed)
            .count() as u64
    }

    /// Numbers calls from 1 again (and clears the log); faults already set keep their
    /// numbers, so set them after this.
    pub fn reset_calls(&self) {
        self.calls.set(0);
        self.log.borrow_mut().clear();
    }

    /// Fails call number `k` with `failure`.
    pub fn fail_call(&self, k: u64, failure: KvFailure) {
        self.add(Target::Call(k), failure);
    }

    /// Fails every call from number `k` on (a Worker cut off at call `k`).
    pub fn fail_from(&self, k: u64, failure: KvFailure) {
        self.add(Target::From(k), failure);
    }

    /// Fails the next `n` calls of `kind`.
    pub fn fail_next(&self, kind: CallKind, n: u64, failure: KvFailure) {
        self.add(Target::Kind(kind, Some(n)), failure);
    }

    /// Fails every call of `kind` until [`FaultyKv::heal`].
    pub fn fail_every(&self, kind: CallKind, failure: KvFailure) {
        self.add(Target::Kind(kind, None), failure);
    }

    /// Makes every call from number `k` on never answer (a Worker that died at call `k`;
    /// drop the future awaiting it). Logged as failed; no effect on the data.
    pub fn hang_from(&self, k: u64) {
        self.hang_at.set(k);
    }

    /// Makes read call number `k` stale: for every key it reads, it returns the value the key
    /// had before its latest write through this wrapper, as if that write had not reached
    /// this location yet (KV's eventual consistency, one call at a time).
    pub fn stale_call(&self, k: u64) {
        self.stale_calls.borrow_mut().insert(k);
    }

    /// Makes call number `k` wait, before it has any effect, until [`FaultyKv::resume`]: a
    /// Worker suspended at that call while others run (poll the future by hand to interleave).
    pub fn pause_at(&self, k: u64) {
        self.pause_at.set(k);
        self.resumed.set(false);
    }

    /// Lets the paused call go on.
    pub fn resume(&self) {
        self.resumed.set(true);
    }

    /// True while the paused call is waiting.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        let at = self.pause_at.get();
        at > 0 && self.calls.get() >= at && !self.resumed.get()
    }

    /// Removes every fault (hangs and stale calls included).
    pub fn heal(&self) {
        self.faults.borrow_mut().clear();
        self.hang_at.set(0);
        self.stale_calls.borrow_mut().clear();
    }

    /// `Some(previous value)` when call `n` is a stale one and `key` was written.
    fn stale_now(&self, n: u64, key: &str) -> Option<Option<KvEntry>> {
        if !self.stale_calls.borrow().contains(&n) {
            return None;
        }
        self.previous.borrow().get(key).cloned()
    }

    /// From now on, writes become visible to reads `ms` milliseconds (of the wrapped backend's
    /// clock) after they were made; 0 makes later writes visible at once.
    pub fn delay_writes(&self, ms: u64) {
        self.delay_ms.set(ms);
    }

    /// Fails (429) a write of a key written less than `ms` ago; 0 lifts the limit.
    pub fn limit_write_rate(&self, ms: u64) {
        self.rate_ms.set(ms);
    }

    /// Makes every write visible now.
    pub fn publish(&self) {
        self.pending.borrow_mut().clear();
    }

    /// Writes not yet visible.
    #[must_use]
    pub fn invisible_writes(&self) -> usize {
        self.prune();
        self.pending.borrow().len()
    }

    fn add(&self, target: Target, failure: KvFailure) {
        self.faults.borrow_mut().push(Fault { target, failure });
    }

    /// Numbers the call and decides whether it fails (or never answers); returns its number.
    async fn enter(&self, kind: CallKind) -> KvResult<u64> {
        let n = self.calls.get() + 1;
        let hang = self.hang_at.get();
        if hang > 0 && n >= hang {
            self.calls.set(n);
            self.log.borrow_mut().push((kind, true));
            return std::future::pending().await;
        }
        self.calls.set(n);
        if self.interleave.get() {
            yield_once().await;
        }
        if self.pause_at.get() == n {
            std::future::poll_fn(|cx| {
                if self.resumed.get() {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
        }
        let mut faults = self.faults.borrow_mut();
        let mut failure = None;
        for fault in faults.iter_mut() {
            let hit = match &mut fault.target {
                Target::Call(k) => *k == n,
                Target::From(k) => n >= *k,
                Target::Kind(of, left) => {
                    of.covers(kind)
                        && match left {
                            None => true,
                            Some(0) => false,
                            Some(left) => {
                                *left -= 1;
                                true
                            }
                        }
                }
            };
            if hit && failure.is_none() {
                failure = Some(fault.failure.clone());
            }
        }
        self.log.borrow_mut().push((kind, failure.is_some()));
        failure.map_or(Ok(n), Err)
    }

    fn prune(&self) {
        let now = self.inner.now_ms();
        self.pending.borrow_mut().retain(|p| p.visible_at > now);
    }

    /// What a read of `key` returns while a write to it is not visible: `Some(stale)`, or
    /// `None` when reads see the wrapped backend.
    fn stale(&self, key: &str) -> Option<Option<KvEntry>> {
        self.prune();
        self.pending
            .borrow()
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.before.clone())
    }

    /// What a read of `key` in the current call returns instead of the backend's value: the
    /// stale call's previous value, else a not-yet-visible write's older one (`None`: none).
    fn stale_read(&self, n: u64, key: &str) -> Option<Option<KvEntry>> {
        self.stale_now(n, key).or_else(|| self.stale(key))
    }

    /// Refuses a write of a key written too recently (when the rate is limited).
    fn check_rate(&self, key: &str) -> KvResult<()> {
        let now = self.inner.now_ms();
        let limit = self.rate_ms.get();
        let mut last = self.last_write.borrow_mut();
        if limit > 0 {
            if let Some(at) = last.get(key) {
                if now < at + limit {
                    self.log.borrow_mut().last_mut().expect("entered").1 = true;
                    return Err(KvFailure::RateLimited(format!(
                        "{key} was written {} ms ago",
                        now - at
                    )));
                }
            }
        }
        last.insert(key.to_owned(), now);
        Ok(())
    }

    /// Records a write about to be applied: the value it replaces (for stale calls), and its
    /// visibility if writes are delayed.
    async fn remember(&self, key: &str) -> KvResult<()> {
        let before = self.inner.get(key).await?;
        self.previous
            .borrow_mut()
            .insert(key.to_owned(), before.clone());
        let delay = self.delay_ms.get();
        if delay == 0 {
            return Ok(());
        }
        if self.stale(key).is_some() {
            // Already invisible: reads keep returning the older value.
            return Ok(());
        }
        let visible_at = self.inner.now_ms() + delay;
        self.pending.borrow_mut().push(Pending {
            key: key.to_owned(),
            visible_at,
            before,
        });
        Ok(())
    }
}

impl<B: KvBackend> KvBackend for FaultyKv<B> {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        Box::pin(async move {
            let n = self.enter(CallKind::Get).await?;
            match self.stale_read(n, key) {
                Some(before) => Ok(before),
                None => self.inner.get(key).await,
            }
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        Box::pin(async move {
            let n = self.enter(CallKind::BulkGet).await?;
            let found = self.inner.get_many(keys).await?;
            Ok(keys
                .iter()
                .zip(found)
                .map(|(key, entry)| self.stale_read(n, key).unwrap_or(entry))
                .collect())
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move {
            self.enter(CallKind::Put).await?;
            self.check_rate(key)?;
            self.remember(key).await?;
            self.inner.put(key, value, metadata).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move {
            self.enter(CallKind::Delete).await?;
            self.check_rate(key)?;
            self.remember(key).await?;
            self.inner.delete(key).await
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        Box::pin(async move {
            let n = self.enter(CallKind::List).await?;
            let mut page = self.inner.list(prefix, cursor.clone(), limit).await?;
            if self.stale_calls.borrow().contains(&n) {
                // Written keys of this page show their previous state (or are left out).
                let previous = self.previous.borrow();
                let mut keys = Vec::with_capacity(page.keys.len());
                for key in page.keys {
                    match previous.get(&key.name) {
                        Some(Some(entry)) => keys.push(ListedKey {
                            name: key.name,
                            metadata: entry.metadata.clone(),
                        }),
                        Some(None) => {}
                        None => keys.push(key),
                    }
                }
                page.keys = keys;
                return Ok(page);
            }
            self.prune();
            let pending = self.pending.borrow().clone();
            if pending.is_empty() {
                return Ok(page);
            }
            // Keys of this page's range whose visible state is older than the backend's.
            let last = page.keys.last().map(|k| k.name.clone());
            let in_range = |key: &str| {
                key.starts_with(prefix)
                    && cursor.as_deref().is_none_or(|c| key > c)
                    && (page.cursor.is_none() || last.as_deref().is_some_and(|l| key <= l))
            };
            let mut seen = std::collections::BTreeSet::new();
            for p in &pending {
                if !in_range(&p.key) || !seen.insert(p.key.clone()) {
                    continue;
                }
                // The oldest pending write of a key decides what reads see.
                page.keys.retain(|k| k.name != p.key);
                if let Some(before) = &p.before {
                    page.keys.push(ListedKey {
                        name: p.key.clone(),
                        metadata: before.metadata.clone(),
                    });
                }
            }
            page.keys.sort_by(|a, b| a.name.cmp(&b.name));
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
        // Yields once after the wrapped sleep, so that a loop of sleeps polled by hand returns
        // control between them (as a real timer does).
        let sleep = self.inner.sleep(ms);
        Box::pin(async move {
            sleep.await;
            yield_once().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::kv::{backend::MAX_LIST, memory_kv::MemoryKv};

    fn entry(v: &str) -> KvEntry {
        KvEntry {
            value: v.to_owned(),
            metadata: Some(serde_json::json!({ "m": v })),
        }
    }

    #[test]
    fn numbered_and_kind_faults() {
        let kv = FaultyKv::new(MemoryKv::new());
        pollster::block_on(async {
            kv.fail_call(2, KvFailure::Permanent("two".into()));
            kv.fail_next(CallKind::Put, 2, KvFailure::RateLimited("slow".into()));
            assert!(kv.get("a").await.is_ok());
            assert_eq!(kv.get("a").await, Err(KvFailure::Permanent("two".into())));
            assert!(kv.put("a", "1".into(), None).await.is_err());
            assert!(kv.put("a", "1".into(), None).await.is_err());
            assert!(kv.put("a", "1".into(), None).await.is_ok());
            assert_eq!(
                (kv.calls(), kv.failures(), kv.calls_of(CallKind::Put)),
                (5, 3, 3)
            );
            kv.fail_from(6, KvFailure::Transient("cut".into()));
            assert!(kv.delete("a").await.is_err());
            assert!(kv.list("", None, MAX_LIST).await.is_err());
            kv.heal();
            assert_eq!(kv.get("a").await.unwrap().unwrap().value, "1");
            kv.hang_from(kv.calls() + 2);
            assert!(kv.get("a").await.is_ok());
            let hung = futures::FutureExt::now_or_never(kv.get("a"));
            assert!(hung.is_none(), "never answers");
            kv.heal();
            kv.limit_write_rate(1000);
            kv.inner().advance(1000);
            assert!(kv.put("a", "2".into(), None).await.is_ok());
            assert!(matches!(
                kv.delete("a").await,
                Err(KvFailure::RateLimited(_))
            ));
            kv.inner().advance(1000);
            assert!(kv.delete("a").await.is_ok());
        });
    }

    #[test]
    fn delayed_writes_serve_stale_reads_until_the_clock_passes() {
        let kv = FaultyKv::new(MemoryKv::new());
        pollster::block_on(async {
            kv.inner().poke("p/a", entry("old"));
            kv.inner().poke("p/c", entry("c"));
            kv.delay_writes(1000);
            kv.put("p/a", "new".into(), None).await.unwrap();
            kv.put("p/b", "b".into(), None).await.unwrap();
            kv.delete("p/c").await.unwrap();
            assert_eq!(kv.invisible_writes(), 3);
            assert_eq!(kv.get("p/a").await.unwrap(), Some(entry("old")));
            assert_eq!(kv.get("p/b").await.unwrap(), None);
            let many = kv
                .get_many(&["p/a".into(), "p/b".into(), "p/c".into()])
                .await
                .unwrap();
            assert_eq!(many, vec![Some(entry("old")), None, Some(entry("c"))]);
            let names = |page: ListPage| page.keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
            assert_eq!(
                names(kv.list("p/", None, MAX_LIST).await.unwrap()),
                ["p/a", "p/c"]
            );
            assert_eq!(kv.inner().keys(), ["p/a", "p/b"], "applied underneath");
            kv.inner().advance(1000);
            assert_eq!(kv.get("p/a").await.unwrap().unwrap().value, "new");
            assert_eq!(
                names(kv.list("p/", None, MAX_LIST).await.unwrap()),
                ["p/a", "p/b"]
            );
            kv.put("p/a", "newer".into(), None).await.unwrap();
            kv.publish();
            assert_eq!(kv.get("p/a").await.unwrap().unwrap().value, "newer");
        });
    }
}
