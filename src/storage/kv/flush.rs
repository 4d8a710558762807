//! The write phase of a `kv://` commit: the commit record, the writes in order, and on a
//! failure the undo; what the caller is told when the outcome cannot be known.

use super::{
    backend::KvEntry,
    journal::{COMMIT_DEADLINE_MS, REPLAY_AFTER_MS},
    store::{KvStore, Write, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use std::{cell::Cell, collections::BTreeMap};

/// The error of a commit whose outcome is unknown. The rule: a commit that cannot tell whether
/// it was applied never reports a plain failure, so no client is told "failed" for something
/// that later appears (as with a connection lost during COMMIT in PostgreSQL).
fn unknown(cause: &str, journaled: bool) -> Error {
    let what = if journaled {
        format!(
            "its commit record stays in KV, so a later session's replay may still apply the \
             whole commit (after {} s)",
            REPLAY_AFTER_MS / 1000
        )
    } else {
        "its one write may have reached KV before the failure".to_owned()
    };
    Error::Storage {
        message: format!(
            "commit outcome unknown ({cause}): {what}; re-read before retrying, do not assume it \
             failed"
        ),
    }
}

/// The write phase of one commit.
pub(super) struct Writer<'a> {
    pub store: &'a KvStore,
    pub ops: &'a Cell<u64>,
    /// What KV held for each key before the commit (what an undo puts back).
    pub current: &'a BTreeMap<&'a String, Option<KvEntry>>,
    pub record_key: String,
    /// No write (or undo) starts after this (ms).
    pub deadline: u64,
}

impl Writer<'_> {
    fn late(&self) -> bool {
        self.store.now_ms() > self.deadline
    }

    /// Puts the commit record.
    pub async fn put_record(&self, value: &str, metadata: &serde_json::Value) -> Result<()> {
        let (store, key) = (self.store, self.record_key.as_str());
        let put = store
            .call(self.ops, "put of the commit record", || {
                store.kv.put(key, value.to_owned(), Some(metadata.clone()))
            })
            .await;
        let Err(e) = put else { return Ok(()) };
        // A put that timed out may still land, and a replay would then apply the commit.
        let cleared = store
            .call_within(
                self.ops,
                "delete of the commit record",
                WORKERS_MAX_OPS,
                || store.kv.delete(key),
            )
            .await
            .is_ok();
        Err(if cleared {
            Error::Storage {
                message: format!("commit failed, nothing was written: {e}"),
            }
        } else {
            unknown(&e.to_string(), true)
        })
    }

    async fn write(&self, write: &Write) -> Result<()> {
        let store = self.store;
        match write {
            Write::Put(k, v, m) => {
                store
                    .call(self.ops, "put", || store.kv.put(k, v.clone(), m.clone()))
                    .await
            }
            Write::Delete(k) => store.call(self.ops, "delete", || store.kv.delete(k)).await,
        }
    }

    /// Makes every write in order; on a failure undoes them (see [`Writer::undo`]).
    pub async fn write_all(&self, writes: &[Write], journaled: bool) -> Result<()> {
        for (i, write) in writes.iter().enumerate() {
            if journaled && self.late() {
                return Err(unknown(
                    &format!(
                        "the commit took longer than {} s",
                        COMMIT_DEADLINE_MS / 1000
                    ),
                    true,
                ));
            }
            if let Err(e) = self.write(write).await {
                return Err(self.undo(&writes[..=i], journaled, &e).await);
            }
        }
        Ok(())
    }

    /// Puts back what `done` replaced, newest first (the failed write included: a timeout
    /// does not prove it did not land), then deletes the record. Undo writes are retried like
    /// any write (KV refuses a second write of a key within a second, which an undo always
    /// is), within Workers' limit rather than the session's budget.
    async fn undo(&self, done: &[Write], journaled: bool, cause: &Error) -> Error {
        let store = self.store;
        let mut restored = 0;
        for undone in done.iter().rev() {
            if journaled && self.late() {
                break;
            }
            let key = undone.key();
            let before = self.current.get(&key.to_owned()).cloned().flatten();
            let undo = match &before {
                Some(entry) => {
                    store
                        .call_within(self.ops, "undo put", WORKERS_MAX_OPS, || {
                            store
                                .kv
                                .put(key, entry.value.clone(), entry.metadata.clone())
                        })
                        .await
                }
                None => {
                    store
                        .call_within(self.ops, "undo delete", WORKERS_MAX_OPS, || {
                            store.kv.delete(key)
                        })
                        .await
                }
            };
            if undo.is_ok() {
                restored += 1;
            }
        }
        let n = done.len();
        let settled = restored == n && (!journaled || self.delete_record().await);
        if settled {
            Error::Storage {
                message: format!(
                    "commit failed and was undone ({restored} of {n} writes restored): {cause}"
                ),
            }
        } else {
            unknown(
                &format!("{cause}; {restored} of {n} writes undone"),
                journaled,
            )
        }
    }

    /// Deletes the commit record ("applied"); false when that failed.
    pub async fn delete_record(&self) -> bool {
        let (store, key) = (self.store, self.record_key.as_str());
        store
            .call_within(
                self.ops,
                "delete of the commit record",
                WORKERS_MAX_OPS,
                || store.kv.delete(key),
            )
            .await
            .is_ok()
    }
}
