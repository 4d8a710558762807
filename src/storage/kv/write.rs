//! The write phase of a `kv://` commit: its record, its writes (in parallel), and on a
//! failure the undo; what the caller is told when the outcome cannot be known.

use super::{
    backend::KvEntry,
    journal::{
        key_state, marker_key, CommitRecord, KeyState, RecordPut, RecordWrite, COMMIT_DEADLINE_MS,
        REPLAY_AFTER_MS,
    },
    store::{KvStorage, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use std::cell::Cell;

/// The error of a commit whose outcome is unknown. The rule: a commit that cannot tell whether
/// it was applied never reports a plain failure, so no client is told "failed" for something
/// that later appears (as with a connection lost during COMMIT in PostgreSQL).
pub(super) fn unknown(cause: &str) -> Error {
    Error::Storage {
        message: format!(
            "commit outcome unknown ({cause}): its commit record stays in KV, so a later \
             session settles it all or nothing (within {} s); re-read before retrying, do not \
             assume it failed",
            REPLAY_AFTER_MS / 1000
        ),
    }
}

/// The write phase of one commit: claimed as `id` in the isolate's log, holding `token`.
pub(super) struct Writer<'a> {
    pub store: &'a KvStorage,
    pub ops: &'a Cell<u64>,
    pub id: u64,
    pub token: u64,
    pub record_key: String,
    /// No write (or undo) starts after this (ms).
    pub deadline: u64,
}

/// Rounds of "read the keys, then finish or undo" after a failed write.
const ROUNDS: usize = 3;

impl Writer<'_> {
    /// True while the commit may still write: within its deadline, and not taken over by
    /// another commit of the isolate (its lease expired while it was suspended).
    fn live(&self) -> bool {
        self.store.now_ms() <= self.deadline && self.store.log.borrow().holds(self.id, self.token)
    }

    /// Writes `key` (`None`: deletes it); retried after 429s only (see
    /// [`KvStorage::write_call`]).
    async fn write(
        &self,
        key: &str,
        entry: Option<&KvEntry>,
        limit: u64,
        what: &str,
    ) -> Result<()> {
        let store = self.store;
        let live = || self.live();
        match entry {
            Some(e) => {
                store
                    .write_call(self.ops, what, limit, &live, || {
                        store.kv.put(key, e.value.clone(), e.metadata.clone())
                    })
                    .await
            }
            None => {
                store
                    .write_call(self.ops, what, limit, &live, || store.kv.delete(key))
                    .await
            }
        }
    }

    /// Writes in parallel; how each went.
    async fn write_each(
        &self,
        writes: &[(String, Option<KvEntry>)],
        limit: u64,
        what: &str,
    ) -> Vec<Result<()>> {
        futures_util::future::join_all(
            writes
                .iter()
                .map(|(key, entry)| self.write(key, entry.as_ref(), limit, what)),
        )
        .await
    }

    /// Puts the commit record (retried like any call: the record is this commit's own).
    /// On a failure nothing else was written; the record itself may have landed (a timeout),
    /// so it is deleted, or left for later when that fails too.
    pub async fn put_record(&self, value: &str, metadata: &serde_json::Value) -> Result<()> {
        let store = self.store;
        let key = self.record_key.as_str();
        let live = || self.live();
        let put = store
            .call_within(
                self.ops,
                "put of the commit record",
                store.max_ops,
                &live,
                || store.kv.put(key, value.to_owned(), Some(metadata.clone())),
            )
            .await;
        let Err(e) = put else { return Ok(()) };
        self.abort().await;
        Err(Error::Storage {
            message: format!("commit failed, nothing was written: {e}"),
        })
    }

    /// Gives up before any write: deletes the record (or leaves it for a later delete; a
    /// settlement finds nothing written and rolls it back), and the commit counts as undone.
    pub async fn abort(&self) -> bool {
        let store = self.store;
        let key = self.record_key.as_str();
        let deleted = store
            .call_within(
                self.ops,
                "delete of the commit record",
                WORKERS_MAX_OPS,
                &|| true,
                || store.kv.delete(key),
            )
            .await
            .is_ok();
        let mut log = store.log.borrow_mut();
        if log.holds(self.id, self.token) {
            log.undone(self.id, store.now_ms());
        }
        drop(log);
        if !deleted {
            store
                .done_records
                .borrow_mut()
                .insert(self.record_key.clone());
        }
        deleted
    }

    /// Deletes the records of finished commits this one builds on (records first, then
    /// their markers), before any write: one left behind could be judged later on keys this
    /// commit changes. On a failure the commit gives up: nothing of it was written yet.
    pub async fn retire(&self, finished: &[String]) -> Result<()> {
        let (markers, records): (Vec<&String>, Vec<&String>) =
            finished.iter().partition(|k| k.ends_with(".w"));
        let store = self.store;
        let live = || self.live();
        let live: &dyn Fn() -> bool = &live;
        for batch in [records, markers] {
            let deletes = batch.iter().map(|key| {
                store.call_within(
                    self.ops,
                    "delete of a finished commit's record",
                    WORKERS_MAX_OPS,
                    live,
                    move || store.kv.delete(key),
                )
            });
            let failed = futures_util::future::join_all(deletes)
                .await
                .into_iter()
                .find_map(std::result::Result::err);
            if let Some(e) = failed {
                self.abort().await;
                return Err(Error::Storage {
                    message: format!("commit failed, nothing was written: {e}"),
                });
            }
        }
        Ok(())
    }

    /// Deletes `garbage` (keys no one owns: an earlier table's leftovers), before the
    /// write-set. On a failure the commit gives up: nothing of it was written yet.
    pub async fn clear(&self, garbage: &[(String, Option<KvEntry>)]) -> Result<()> {
        if let Some(cause) = self.early(garbage).await {
            self.abort().await;
            return Err(Error::Storage {
                message: format!("commit failed, nothing was written: {cause}"),
            });
        }
        Ok(())
    }

    async fn early(&self, writes: &[(String, Option<KvEntry>)]) -> Option<String> {
        if !self.live() {
            return Some(late());
        }
        self.write_each(writes, self.store.max_ops, "write")
            .await
            .into_iter()
            .find_map(std::result::Result::err)
            .map(|e| e.to_string())
    }

    /// Makes the write-set (`record`'s writes, less `skip`) in parallel. When a write fails
    /// it reads every key back and settles its own commit, with the rule an unacknowledged
    /// commit may choose: applied when every key is written (a failed write may have landed:
    /// `Ok`), else undone — what it wrote, or may have written, gets its `was` entry back, and
    /// the record goes ("failed and was undone"). When that cannot finish, the record stays
    /// and the outcome is unknown.
    pub async fn write_all(
        &self,
        record: &CommitRecord,
        skip: &std::collections::BTreeSet<String>,
        before: &std::collections::BTreeMap<String, Option<KvEntry>>,
    ) -> Result<()> {
        let writes: Vec<&RecordWrite> = record.w.iter().filter(|w| !skip.contains(&w.k)).collect();
        if !self.live() {
            // Nothing written yet: the record can only settle back.
            self.abort().await;
            return Err(Error::Storage {
                message: format!("commit failed, nothing was written: {}", late()),
            });
        }
        if record.deletes_only() && !writes.is_empty() {
            // The evidence that it began (see `journal::marker_key`), before any delete.
            let marker = marker_key(&self.record_key);
            let entry = KvEntry {
                value: format!("{{\"s\":{}}}", record.s),
                // Its age, for a listing of the journal (a marker left alone is removed).
                metadata: Some(serde_json::json!({ "at": self.store.now_ms() })),
            };
            if let Err(e) = self
                .write(
                    &marker,
                    Some(&entry),
                    self.store.max_ops,
                    "put of the marker",
                )
                .await
            {
                // The marker may have landed (a timeout): with the record it would be the
                // evidence that the deletes began. Gone, either of them, nothing can apply.
                let store = self.store;
                let marker_gone = store
                    .call_within(
                        self.ops,
                        "delete of the marker",
                        WORKERS_MAX_OPS,
                        &|| true,
                        || store.kv.delete(&marker),
                    )
                    .await
                    .is_ok();
                let record_gone = self.abort().await;
                if !marker_gone && !record_gone {
                    store.done_records.borrow_mut().insert(marker);
                    return Err(unknown(&format!(
                        "{e}; the marker and the record could not be deleted"
                    )));
                }
                return Err(Error::Storage {
                    message: format!("commit failed, nothing was written: {e}"),
                });
            }
        }
        // The entries first, then the deletes, once every entry landed: an entry carrying the
        // commit's stamp is the evidence that it began (an absent key proves nothing), so no
        // delete may land without one (a commit that only deletes puts its marker instead).
        let mut landed = vec![Landed::No; writes.len()];
        let mut cause = None;
        for deletes in [false, true] {
            let batch: Vec<usize> = (0..writes.len())
                .filter(|i| writes[*i].put.is_none() == deletes)
                .collect();
            let pairs: Vec<(String, Option<KvEntry>)> = batch
                .iter()
                .map(|i| {
                    (
                        writes[*i].k.clone(),
                        writes[*i].put.as_ref().map(RecordPut::entry),
                    )
                })
                .collect();
            // Within Workers' limit: the budget check counted these before anything started.
            let results = self.write_each(&pairs, WORKERS_MAX_OPS, "write").await;
            for (i, r) in batch.iter().zip(&results) {
                landed[*i] = match r {
                    Ok(()) => Landed::Yes,
                    Err(e) if no_effect(e) => Landed::No,
                    Err(_) => Landed::Maybe,
                };
            }
            if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
                cause = Some(e.to_string());
                break;
            }
        }
        let Some(cause) = cause else {
            return Ok(());
        };
        if !self.live() {
            return Err(self.stop(&cause));
        }
        self.undo(record, &writes, landed, before, &cause).await
    }

    /// Stops half-way: the record decides (a settlement, by this isolate or another).
    fn stop(&self, cause: &str) -> Error {
        let mut log = self.store.log.borrow_mut();
        if log.holds(self.id, self.token) {
            log.unknown(self.id);
        }
        unknown(cause)
    }

    /// Reads the keys back and finishes the commit's own settlement: `Ok` when every key is
    /// written (or changed by a commit that built on it), else the error to report ("undone",
    /// or "outcome unknown" when that cannot finish). What a write answered counts with what
    /// a read shows: KV may serve a stale value even to the location that wrote it.
    async fn undo(
        &self,
        record: &CommitRecord,
        writes: &[&RecordWrite],
        mut landed: Vec<Landed>,
        before: &std::collections::BTreeMap<String, Option<KvEntry>>,
        cause: &str,
    ) -> Result<()> {
        let keys: Vec<String> = writes.iter().map(|w| w.k.clone()).collect();
        let mut undoing = false;
        // Writes to put back, as first counted.
        let mut to_restore = None;
        for _ in 0..ROUNDS {
            if !self.live() {
                break;
            }
            // Through the isolate's log: KV may serve a value its earlier commits replaced.
            let Ok(found) = self
                .store
                .settle_reads(self.ops, &keys, self.id, WORKERS_MAX_OPS)
                .await
            else {
                continue;
            };
            // Keys to put back (`None`: keep), and whether anything is left unwritten.
            let mut back = Vec::new();
            let mut unfinished = false;
            // Keys another commit changed since: theirs now, never overwritten (nor counted).
            let mut theirs = Vec::new();
            for (i, ((w, found), landed)) in writes.iter().zip(&found).zip(&landed).enumerate() {
                let state = key_state(w, record.s, found.as_ref());
                let delete = w.put.is_none();
                let written = match (state, landed) {
                    (KeyState::Other, _) => {
                        theirs.push(i);
                        back.push(None);
                        continue;
                    }
                    (_, Landed::Yes) => true,
                    // An absent key proves nothing (KV may lag behind the entry): a delete
                    // never sent left it as it was; one that may have failed may have too.
                    (KeyState::Written, Landed::No) if delete => {
                        unfinished = true;
                        false
                    }
                    (KeyState::Written, Landed::Maybe) if delete => {
                        unfinished = true;
                        true // undo, to be sure
                    }
                    (KeyState::Written, _) => true, // an entry carrying the commit's stamp
                    (KeyState::Before, Landed::No) => {
                        unfinished = true;
                        false
                    }
                    (KeyState::Before, Landed::Maybe) => {
                        unfinished = true;
                        true // a stale read, perhaps: put it back to be sure
                    }
                };
                // Exactly what the check found; where it found nothing, what the session saw
                // (a check believes an absent key, which may be KV's lag: a unique entry the
                // commit gives up, seen by the session and its row, is put back).
                let was = match before.get(&w.k) {
                    Some(Some(found)) => Some(found.clone()),
                    _ => w.was.as_ref().map(RecordPut::entry),
                };
                back.push(written.then(|| (w.k.clone(), was)));
            }
            if !unfinished && !undoing {
                return Ok(()); // every write landed (a failed one too)
            }
            undoing = true;
            for i in theirs {
                landed[i] = Landed::No;
            }
            let n = *to_restore.get_or_insert(back.iter().flatten().count());
            // What its deletes removed goes back first, then its entries: a settlement that
            // finds an entry of this commit's never finds one of its deletes undone before
            // it, so an undo cut off half-way rolls forward or back whole (see
            // `journal::replay_plan`).
            for deletes in [true, false] {
                let phase: Vec<usize> = (0..back.len())
                    .filter(|i| back[*i].is_some() && (writes[*i].put.is_none()) == deletes)
                    .collect();
                let pairs: Vec<(String, Option<KvEntry>)> =
                    phase.iter().filter_map(|i| back[*i].clone()).collect();
                let results = self.write_each(&pairs, WORKERS_MAX_OPS, "undo").await;
                let mut all = true;
                for (i, result) in phase.iter().zip(results) {
                    if result.is_ok() {
                        landed[*i] = Landed::No; // put back: as before
                    } else {
                        all = false;
                    }
                }
                if !all {
                    break;
                }
            }
            if landed.iter().any(|l| *l != Landed::No) {
                continue;
            }
            let store = self.store;
            let key = self.record_key.as_str();
            let live = || self.live();
            // The marker of a commit that only deletes first (it is evidence of writes only
            // while the record exists), then the record.
            if record.deletes_only() {
                let marker = marker_key(key);
                let gone = self
                    .write(&marker, None, WORKERS_MAX_OPS, "delete of the marker")
                    .await
                    .is_ok();
                if !gone {
                    break;
                }
            }
            let deleted = store
                .call_within(
                    self.ops,
                    "delete of the commit record",
                    WORKERS_MAX_OPS,
                    &live,
                    || store.kv.delete(key),
                )
                .await
                .is_ok();
            if !deleted {
                break;
            }
            let mut log = store.log.borrow_mut();
            if log.holds(self.id, self.token) {
                log.undone(self.id, store.now_ms());
            }
            return Err(Error::Storage {
                message: format!(
                    "commit failed and was undone ({n} of {n} writes restored): {cause}"
                ),
            });
        }
        let left = landed.iter().filter(|l| **l != Landed::No).count();
        let n = to_restore.unwrap_or(left);
        Err(self.stop(&format!(
            "{cause}; {} of {n} writes undone",
            n.saturating_sub(left)
        )))
    }
}

/// Whether a write of this key may have landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landed {
    Yes,
    No,
    Maybe,
}

/// True for a failure that left KV unchanged: a 429 (refused), every retry included.
fn no_effect(e: &Error) -> bool {
    e.to_string().contains("rate limited (429)")
}

fn late() -> String {
    format!(
        "the commit took longer than {} s, or was taken over after its lease expired",
        COMMIT_DEADLINE_MS / 1000
    )
}
