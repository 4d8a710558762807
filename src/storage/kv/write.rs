//! The write phase of a `kv://` commit: its record, its writes (in parallel), and on a
//! failure the undo; what the caller is told when the outcome cannot be known.

use super::{
    backend::KvEntry,
    journal::{COMMIT_DEADLINE_MS, REPLAY_AFTER_MS},
    store::{KvStorage, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use std::{cell::Cell, collections::BTreeMap};

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

impl Writer<'_> {
    /// True while the commit may still write: within its deadline, and not taken over by
    /// another commit of the isolate (its lease expired while it was suspended).
    fn live(&self) -> bool {
        self.store.now_ms() <= self.deadline && self.store.log.borrow().holds(self.id, self.token)
    }

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
                    .call_within(self.ops, what, limit, &live, || {
                        store.kv.put(key, e.value.clone(), e.metadata.clone())
                    })
                    .await
            }
            None => {
                store
                    .call_within(self.ops, what, limit, &live, || store.kv.delete(key))
                    .await
            }
        }
    }

    /// Puts the commit record. On a failure nothing else was written; the record itself may
    /// have landed (a timeout), so it is deleted, or left for later when that fails too.
    pub async fn put_record(&self, value: &str, metadata: &serde_json::Value) -> Result<()> {
        let entry = KvEntry {
            value: value.to_owned(),
            metadata: Some(metadata.clone()),
        };
        let put = self
            .write(
                &self.record_key,
                Some(&entry),
                self.store.max_ops,
                "put of the commit record",
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
    pub async fn abort(&self) {
        let deleted = self
            .write(
                &self.record_key,
                None,
                WORKERS_MAX_OPS,
                "delete of the commit record",
            )
            .await
            .is_ok();
        let mut log = self.store.log.borrow_mut();
        if log.holds(self.id, self.token) {
            log.undone(self.id, self.store.now_ms());
        }
        drop(log);
        if !deleted {
            self.store
                .done_records
                .borrow_mut()
                .insert(self.record_key.clone());
        }
    }

    /// Makes `writes` (key, entry to leave; `None`: delete) in parallel. `undo`: on a failure,
    /// put back what `before` says each key held, delete the record, and report "undone" —
    /// or "outcome unknown" when that cannot finish (the record then settles it). Without
    /// `undo` (garbage removed before the write-set) a failure just gives up: nothing of the
    /// commit was written yet.
    pub async fn write_all(
        &self,
        writes: &[(String, Option<KvEntry>)],
        before: &BTreeMap<String, Option<KvEntry>>,
        undo: bool,
    ) -> Result<()> {
        if !self.live() {
            let cause = format!(
                "the commit took longer than {} s, or was taken over after its lease expired",
                COMMIT_DEADLINE_MS / 1000
            );
            if !undo {
                self.abort().await;
                return Err(Error::Storage {
                    message: format!("commit failed, nothing was written: {cause}"),
                });
            }
            return Err(self.stop(&cause));
        }
        let max = self.store.max_ops;
        let results = futures_util::future::join_all(
            writes
                .iter()
                .map(|(key, entry)| self.write(key, entry.as_ref(), max, "write")),
        )
        .await;
        let Some(cause) = results.into_iter().find_map(std::result::Result::err) else {
            return Ok(());
        };
        if !undo {
            self.abort().await;
            return Err(Error::Storage {
                message: format!("commit failed, nothing was written: {cause}"),
            });
        }
        Err(self.undo(writes, before, &cause).await)
    }

    /// Stops half-way: the record decides (a settlement, by this isolate or another).
    fn stop(&self, cause: &str) -> Error {
        let mut log = self.store.log.borrow_mut();
        if log.holds(self.id, self.token) {
            log.unknown(self.id);
        }
        unknown(cause)
    }

    /// Puts back what `writes` replaced (every one: a timeout does not prove a write did not
    /// land), in parallel, within Workers' limit rather than the session's budget (KV refuses
    /// a second write of a key within a second, which an undo always is: retried), then
    /// deletes the record.
    async fn undo(
        &self,
        writes: &[(String, Option<KvEntry>)],
        before: &BTreeMap<String, Option<KvEntry>>,
        cause: &Error,
    ) -> Error {
        let undos = writes.iter().map(|(key, _)| {
            let was = before.get(key).cloned().flatten();
            async move {
                if !self.live() {
                    return false;
                }
                self.write(key, was.as_ref(), WORKERS_MAX_OPS, "undo")
                    .await
                    .is_ok()
            }
        });
        let restored = futures_util::future::join_all(undos)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        let n = writes.len();
        if restored == n
            && self.live()
            && self
                .write(
                    &self.record_key,
                    None,
                    WORKERS_MAX_OPS,
                    "delete of the commit record",
                )
                .await
                .is_ok()
        {
            let mut log = self.store.log.borrow_mut();
            if log.holds(self.id, self.token) {
                log.undone(self.id, self.store.now_ms());
            }
            return Error::Storage {
                message: format!(
                    "commit failed and was undone ({restored} of {n} writes restored): {cause}"
                ),
            };
        }
        self.stop(&format!("{cause}; {restored} of {n} writes undone"))
    }
}
