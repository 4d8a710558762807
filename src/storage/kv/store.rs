//! `KvStorage`: the KV side of a `kv://` engine — the namespace, its key layout, the
//! isolate's log of its own commits, and the calls every other module makes through it
//! (bounded retries, a per-session budget, reads as of a snapshot).
//!
//! The work itself is in the sibling modules: `load.rs` (loading on demand), `plan.rs` (a
//! write-set as KV keys), `commit.rs` (claim, record, acknowledge), `check.rs` (the check),
//! `write.rs` (the writes and their undo), `recover.rs` (settling commits that were cut off).

use super::{
    backend::{KvBackend, KvEntry, KvFailure, KvResult, ListedKey, MAX_BULK_GET, MAX_LIST},
    journal,
    layout::Layout,
    local::{Belief, LocalLog, Lsn},
};
use crate::error::{Error, Result};
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet, VecDeque},
    future::Future,
    rc::Rc,
};

/// Attempts per KV call (the first try plus retries) for 429s and transient failures.
const ATTEMPTS: u32 = 4;

/// Workers' hard limit of KV operations per invocation. Undoing a failed commit may go past a
/// session's own budget (`max_ops`), never past this.
pub(super) const WORKERS_MAX_OPS: u64 = 1000;

/// Most notes (skipped commit records, settlements left for later) an isolate keeps.
const MAX_NOTES: usize = 100;

/// Most records of acknowledged commits one teardown deletes (the rest: the next one): with
/// retries at most 4 operations each, within the 100 that Workers allow beyond a session's
/// default budget.
const DELETES_PER_FLUSH: usize = 20;

/// The KV side of a `kv://` engine.
pub(crate) struct KvStorage {
    pub(crate) kv: Rc<dyn KvBackend>,
    pub(super) layout: Layout,
    /// How long the isolate cache may serve data without asking KV again.
    pub cache_ttl_ms: u64,
    /// Most KV operations one session may use (Workers allow 1000 per invocation).
    pub max_ops: u64,
    /// This isolate's commits (see `local/`).
    pub(super) log: RefCell<LocalLog>,
    /// Commit records this isolate will not settle (corrupt, or an older format), by key.
    pub(super) skipped: RefCell<BTreeSet<String>>,
    /// What the journal skipped or left for later, newest last (see `Engine::kv_notes`).
    notes: RefCell<VecDeque<String>>,
    /// Records of this isolate's finished commits, still to delete (after the response).
    pub(super) done_records: RefCell<BTreeSet<String>>,
    /// Records (and markers) whose delete is in flight, since when (ms): taken out of
    /// `done_records` so that concurrent events of the isolate never delete one twice. One
    /// whose event was cut off counts as in flight for at most `COMMIT_DEADLINE_MS`.
    deleting: RefCell<BTreeMap<String, u64>>,
    /// When this isolate last listed the journal for abandoned records (ms).
    pub(crate) journal_listed: Cell<Option<u64>>,
}

impl std::fmt::Debug for KvStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStorage")
            .field("layout", &self.layout)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("max_ops", &self.max_ops)
            .finish_non_exhaustive()
    }
}

/// Where a listing from a prefix's first key may stop.
pub(super) enum Stop<'a> {
    /// At the end.
    Never,
    /// Once it has `keys` keys (or more) and `at` accepts the last one.
    After {
        keys: usize,
        at: &'a dyn Fn(&ListedKey) -> bool,
    },
}

/// What a listing shows of one key, as a session should believe it.
#[derive(Debug, Clone)]
pub(super) enum Listed {
    /// As KV listed it (its metadata).
    Kv(Option<serde_json::Value>),
    /// This entry, from the isolate's own commits.
    Local(KvEntry),
}

impl KvStorage {
    pub fn new(kv: Rc<dyn KvBackend>, prefix: &str, cache_ttl_ms: u64, max_ops: u64) -> Self {
        Self {
            kv,
            layout: Layout::new(prefix),
            cache_ttl_ms,
            max_ops,
            log: RefCell::new(LocalLog::default()),
            skipped: RefCell::new(BTreeSet::new()),
            notes: RefCell::new(VecDeque::new()),
            done_records: RefCell::new(BTreeSet::new()),
            deleting: RefCell::new(BTreeMap::new()),
            journal_listed: Cell::new(None),
        }
    }

    /// Remembers why something was skipped or left for later: gluebind has no logger, and a
    /// settlement must not fail the unrelated session that runs it.
    pub(crate) fn note(&self, note: String) {
        let mut notes = self.notes.borrow_mut();
        if notes.len() == MAX_NOTES {
            notes.pop_front();
        }
        notes.push_back(note);
    }

    /// The notes so far, oldest first.
    pub fn notes(&self) -> Vec<String> {
        self.notes.borrow().iter().cloned().collect()
    }

    pub fn now_ms(&self) -> u64 {
        self.kv.now_ms()
    }

    pub async fn sleep(&self, ms: u64) {
        self.kv.sleep(ms).await;
    }

    /// The latest commit this isolate acknowledged (what a new session reads as of).
    pub fn latest(&self) -> Lsn {
        self.log.borrow().latest()
    }

    /// How many other isolates' records this isolate settled so far: after one, its cache
    /// must start over.
    pub fn settled(&self) -> u64 {
        self.log.borrow().settled()
    }

    /// Runs one KV call with bounded retries, counting every attempt against the budget.
    pub(super) async fn call<'a, T, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        f: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<T>> + 'a,
    {
        self.call_within(ops, what, self.max_ops, &|| true, f).await
    }

    /// [`KvStorage::call`] with `limit` operations at most (counting every attempt), trying
    /// again only while `live()` (a commit that lost its lease stops retrying).
    pub(super) async fn call_within<'a, T, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        limit: u64,
        live: &dyn Fn() -> bool,
        f: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<T>> + 'a,
    {
        self.call_with(ops, what, limit, live, true, f).await
    }

    /// A write of a commit's data: retried after a 429 (which has no effect), but not after a
    /// transient failure, which may have landed: written again blindly, it could overwrite a
    /// commit that built on it meanwhile. The caller reads the key to find out instead.
    pub(super) async fn write_call<'a, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        limit: u64,
        live: &dyn Fn() -> bool,
        f: F,
    ) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<()>> + 'a,
    {
        self.call_with(ops, what, limit, live, false, f).await
    }

    async fn call_with<'a, T, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        limit: u64,
        live: &dyn Fn() -> bool,
        transient: bool,
        f: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<T>> + 'a,
    {
        let mut attempt = 0;
        loop {
            // Checked right before every attempt: a commit suspended past its lease (taken
            // over and settled meanwhile) must not write once it wakes up.
            if !live() {
                return Err(Error::Storage {
                    message: format!(
                        "KV {what} not started: the commit took longer than {} s, or was taken \
                         over after its lease expired",
                        super::journal::COMMIT_DEADLINE_MS / 1000
                    ),
                });
            }
            if ops.get() >= limit {
                return Err(Error::Storage {
                    message: format!(
                        "this session reached its budget of {limit} KV operations (Workers allow \
                         1000 per invocation); split the work across requests or read fewer rows"
                    ),
                });
            }
            ops.set(ops.get() + 1);
            attempt += 1;
            let failure = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retry = attempt < ATTEMPTS && live();
            match failure {
                // KV allows one write per second per key.
                KvFailure::RateLimited(_) if retry => {
                    self.kv.sleep(1000 * u64::from(attempt)).await;
                }
                KvFailure::Transient(_) if retry && transient => {
                    self.kv.sleep(50 << attempt).await;
                }
                e => {
                    return Err(Error::Storage {
                        message: format!("KV {what} failed after {attempt} attempt(s): {e}"),
                    })
                }
            }
        }
    }

    /// Runs a KV read whose answer is then read through this isolate's log: again when the
    /// log forgot, while the read was in flight, a commit KV may still have lagged behind when
    /// the read was sent (a read suspended for minutes); at most 3 times. While it is in
    /// flight, the log keeps such commits (see [`LocalLog::begin_read`]).
    pub(super) async fn through_log<T, F: std::future::Future<Output = Result<T>>>(
        &self,
        read: impl Fn() -> F,
    ) -> Result<T> {
        struct Pinned<'a>(&'a RefCell<LocalLog>, u64);
        impl Drop for Pinned<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().end_read(self.1);
            }
        }
        for _ in 0..3 {
            let start = self.now_ms();
            let before = {
                let mut log = self.log.borrow_mut();
                log.begin_read(start);
                log.forgot_at()
            };
            let _pinned = Pinned(&self.log, start);
            let out = read().await?;
            let after = self.log.borrow().forgot_at();
            if after == before || after + super::local::RECENT_MS <= start {
                return Ok(out);
            }
        }
        Err(Error::Conflict {
            table: "?".to_owned(),
            detail: "a read (this isolate forgot commits it may have needed while it was in \
                     flight, three times)"
                .to_owned(),
        })
    }

    /// Point reads as KV answers them, in bulk gets of up to 100 keys (one operation each),
    /// the chunks in parallel.
    pub(super) async fn get_raw(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
    ) -> Result<Vec<Option<KvEntry>>> {
        self.get_raw_within(ops, keys, self.max_ops).await
    }

    /// [`KvStorage::get_raw`] with `limit` operations at most.
    pub(super) async fn get_raw_within(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
        limit: u64,
    ) -> Result<Vec<Option<KvEntry>>> {
        let chunks = keys.chunks(MAX_BULK_GET).map(|chunk| async move {
            if let [one] = chunk {
                let found = self
                    .call_within(ops, "get", limit, &|| true, || self.kv.get(one))
                    .await?;
                Ok(vec![found])
            } else {
                self.call_within(ops, "bulk get", limit, &|| true, || self.kv.get_many(chunk))
                    .await
            }
        });
        let found = futures_util::future::join_all(chunks).await;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in found {
            out.extend(chunk?);
        }
        Ok(out)
    }

    /// What a session as of `as_of` should believe KV holds for `key`, given `found`
    /// (`checking`: for a commit's check, see [`LocalLog::belief_except`]).
    pub(super) fn believe(
        &self,
        key: &str,
        found: Option<KvEntry>,
        as_of: Lsn,
        checking: bool,
    ) -> Option<KvEntry> {
        let Ok(version) = journal::version_of(key, found.as_ref()) else {
            return found; // not gluebind's: the caller's decoding reports it
        };
        match self
            .log
            .borrow()
            .belief_except(key, version, as_of, 0, checking)
        {
            Belief::Kv => found,
            Belief::Local(entry) => entry,
        }
    }

    /// Point reads as a session as of `as_of` should believe them: this isolate's commits
    /// after the snapshot (or in flight) are hidden, and its own writes win over KV's lag.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the snapshot is older than what the isolate remembers.
    pub(super) async fn get_many(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
        as_of: Lsn,
    ) -> Result<Vec<Option<KvEntry>>> {
        let found = self.through_log(|| self.get_raw(ops, keys)).await?;
        self.covers(as_of)?;
        Ok(keys
            .iter()
            .zip(found)
            .map(|(key, found)| self.believe(key, found, as_of, false))
            .collect())
    }

    /// Point reads for a commit's check: KV as it is now, through this isolate's log only
    /// where KV surely lags (see [`LocalLog::belief_except`]).
    pub(super) async fn check_many(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
    ) -> Result<Vec<Option<KvEntry>>> {
        let found = self.through_log(|| self.get_raw(ops, keys)).await?;
        let latest = self.latest();
        Ok(keys
            .iter()
            .zip(found)
            .map(|(key, found)| self.believe(key, found, latest, true))
            .collect())
    }

    /// Point reads of commit `id`'s keys as KV holds them now, for settling it: through this
    /// isolate's log where KV surely lags behind its other commits (a version one of them
    /// replaced), never through commit `id`'s own entry.
    pub(super) async fn settle_reads(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
        id: u64,
        limit: u64,
    ) -> Result<Vec<Option<KvEntry>>> {
        let raw = self
            .through_log(|| self.get_raw_within(ops, keys, limit))
            .await?;
        let log = self.log.borrow();
        let latest = log.latest();
        Ok(keys
            .iter()
            .zip(raw)
            .map(|(k, found)| {
                let version = journal::version_of(k, found.as_ref()).ok();
                match version.map(|v| log.belief_except(k, v, latest, id, true)) {
                    Some(Belief::Local(e)) => e,
                    _ => found,
                }
            })
            .collect())
    }

    /// `Err(CONFLICT)` when a session as of `as_of` is older than the isolate's memory of its
    /// commits: its reads could no longer be kept consistent.
    pub(super) fn covers(&self, as_of: Lsn) -> Result<()> {
        if self.log.borrow().covers(as_of) {
            Ok(())
        } else {
            Err(Error::Conflict {
                table: "?".to_owned(),
                detail: format!(
                    "the session's snapshot: it is older than this isolate's memory of its own \
                     commits ({} s, or 10 000 keys)",
                    super::local::RECENT_MS / 1000
                ),
            })
        }
    }

    /// Every key under `prefix`, in `list` calls of up to 1000 keys.
    pub(super) async fn list_all(&self, ops: &Cell<u64>, prefix: &str) -> Result<Vec<ListedKey>> {
        Ok(self.list_until(ops, prefix, &Stop::Never).await?.0)
    }

    /// The keys under `prefix` from its first, page after page until `stop` says so, and
    /// whether the listing stopped before its end.
    async fn list_until(
        &self,
        ops: &Cell<u64>,
        prefix: &str,
        stop: &Stop<'_>,
    ) -> Result<(Vec<ListedKey>, bool)> {
        let mut keys: Vec<ListedKey> = Vec::new();
        let mut cursor = None;
        loop {
            // Only as many keys as wanted (KV's pages cost by the key): then whole pages.
            let limit = match stop {
                Stop::Never => MAX_LIST,
                Stop::After { keys: want, .. } => want.saturating_sub(keys.len()),
            };
            let limit = if limit == 0 {
                MAX_LIST
            } else {
                limit.min(MAX_LIST)
            };
            let page = self
                .call(ops, "list", || self.kv.list(prefix, cursor.clone(), limit))
                .await?;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok((keys, false)),
            }
            if let (Stop::After { keys: want, at }, Some(last)) = (stop, keys.last()) {
                if keys.len() >= *want && at(last) {
                    return Ok((keys, true));
                }
            }
        }
    }

    /// Every key under `prefix` as a session as of `as_of` should believe it, in key order:
    /// KV's listing, with this isolate's commits after the snapshot (or in flight) undone and
    /// its own writes put in where KV's list still lags behind them.
    pub(super) async fn list_as_of(
        &self,
        ops: &Cell<u64>,
        prefix: &str,
        as_of: Lsn,
        checking: bool,
    ) -> Result<Vec<(String, Listed)>> {
        Ok(self
            .list_first_as_of(ops, prefix, as_of, checking, &Stop::Never)
            .await?
            .0)
    }

    /// As [`KvStorage::list_as_of`], for the first keys under `prefix` only: the listing stops
    /// where `stop` says (see [`KvStorage::list_until`]). When it stopped before its end,
    /// also the last key it listed: what is believed is then exactly every key up to that one.
    pub(super) async fn list_first_as_of(
        &self,
        ops: &Cell<u64>,
        prefix: &str,
        as_of: Lsn,
        checking: bool,
        stop: &Stop<'_>,
    ) -> Result<(Vec<(String, Listed)>, Option<ListedKey>)> {
        let (listed, cut) = self
            .through_log(|| self.list_until(ops, prefix, stop))
            .await?;
        let last = if cut { listed.last().cloned() } else { None };
        self.covers(as_of)?;
        let log = self.log.borrow();
        let mut out: std::collections::BTreeMap<String, Listed> = std::collections::BTreeMap::new();
        let mut seen = BTreeSet::new();
        for key in listed {
            seen.insert(key.name.clone());
            let version = key
                .metadata
                .as_ref()
                .and_then(|m| super::layout::decode_metadata::<Versioned>(&key.name, m).ok())
                .map(|r| r.v);
            let belief = match version {
                Some(v) => log.belief_except(&key.name, Some(v), as_of, 0, checking),
                None => Belief::Kv,
            };
            match belief {
                Belief::Kv => {
                    out.insert(key.name, Listed::Kv(key.metadata));
                }
                Belief::Local(Some(entry)) => {
                    out.insert(key.name, Listed::Local(entry));
                }
                Belief::Local(None) => {}
            }
        }
        for name in log.keys_under(prefix) {
            if seen.contains(&name) || checking {
                continue; // a check believes what KV lists as absent (deleted elsewhere)
            }
            if last.as_ref().is_some_and(|last| name > last.name) {
                continue; // past where the listing stopped
            }
            if let Belief::Local(Some(entry)) = log.belief(&name, None, as_of) {
                out.insert(name, Listed::Local(entry));
            }
        }
        Ok((out.into_iter().collect(), last))
    }

    /// Deletes the records of this isolate's finished commits (at most
    /// [`DELETES_PER_FLUSH`]): the engine's flush, run by the completion callback after the
    /// response. Returns how many it deleted; a failed delete stays for the next flush.
    pub async fn flush_records(&self) -> usize {
        let keys: Vec<String> = self
            .done_records
            .borrow()
            .iter()
            .take(DELETES_PER_FLUSH)
            .cloned()
            .collect();
        self.delete_records(&keys, None).await
    }

    /// A record of a finished commit seen in the journal: to delete, unless its delete is
    /// already on its way.
    pub(super) fn record_to_delete(&self, key: String) {
        if !self.delete_in_flight(&key) {
            self.done_records.borrow_mut().insert(key);
        }
    }

    fn delete_in_flight(&self, key: &str) -> bool {
        let now = self.now_ms();
        self.deleting
            .borrow()
            .get(key)
            .is_some_and(|since| now.saturating_sub(*since) < super::journal::COMMIT_DEADLINE_MS)
    }

    /// Takes `key` out of `done_records` for this event to delete; false when it is not
    /// there (another event took it).
    fn take_to_delete(&self, key: &str) -> bool {
        let taken = self.done_records.borrow_mut().remove(key);
        if taken {
            self.deleting
                .borrow_mut()
                .insert(key.to_owned(), self.now_ms());
        }
        taken
    }

    /// Deletes records of finished commits, then the markers whose record is gone (a marker
    /// is evidence only while its record exists); what fails stays for later. Returns how
    /// many keys it deleted. Keys not in `done_records` (taken by another event's delete
    /// meanwhile) are left to that one.
    pub(super) async fn delete_records(&self, keys: &[String], ops: Option<&Cell<u64>>) -> usize {
        let own = Cell::new(0);
        let ops = ops.unwrap_or(&own);
        let (markers, records): (Vec<&String>, Vec<&String>) =
            keys.iter().partition(|k| k.ends_with(".w"));
        let mut deleted = 0;
        for batch in [records, markers] {
            let batch: Vec<&String> = batch
                .into_iter()
                .filter(|k| match k.strip_suffix(".w") {
                    Some(record) => {
                        !self.done_records.borrow().contains(record)
                            && !self.delete_in_flight(record)
                    }
                    None => true,
                })
                .filter(|k| self.take_to_delete(k))
                .collect();
            let deletes = batch.iter().map(|key| async move {
                let done = self
                    .call_within(
                        ops,
                        "delete of a commit record",
                        WORKERS_MAX_OPS,
                        &|| true,
                        || self.kv.delete(key),
                    )
                    .await;
                (*key, done.is_ok())
            });
            for (key, ok) in futures_util::future::join_all(deletes).await {
                // A delete cut off (its future dropped or abandoned) stays in `deleting` and
                // counts as in flight until its time is up; then it is deleted again.
                self.deleting.borrow_mut().remove(key);
                if ok {
                    deleted += 1;
                } else {
                    self.done_records.borrow_mut().insert(key.clone());
                }
            }
        }
        deleted
    }
}

/// The version every gluebind record carries.
#[derive(serde::Deserialize)]
struct Versioned {
    v: u64,
}
