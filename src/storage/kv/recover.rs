//! Replaying commit records left by Workers cut off half-way (see [`super::journal`]).

use super::{
    backend::KvEntry,
    journal::{replay_plan, CommitRecord, RecordMeta, REPLAY_AFTER_MS},
    store::{KvStore, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use std::{cell::Cell, collections::BTreeMap};

/// The stamp a journal key names, if it is one (16 hex digits after the prefix); other keys
/// under the prefix (another database's, with a prefix that looks like ours) are not ours.
fn stamp_of(key: &str, prefix: &str) -> Option<u64> {
    let hex = key.strip_prefix(prefix)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl KvStore {
    /// Why a commit cannot build on a row whose commit record `key` is still in KV: a conflict
    /// (the session retries on fresh data). An abandoned record is replayed first, so that the
    /// retry finds the commit applied. `None` for a corrupt record (noted and ignored).
    pub(super) async fn unsettled(
        &self,
        ops: &Cell<u64>,
        table: &str,
        key: &str,
        entry: &KvEntry,
    ) -> Option<Error> {
        let record = match serde_json::from_str::<CommitRecord>(&entry.value) {
            Ok(record) => record,
            Err(e) => {
                self.skip(key, &format!("not a gluebind commit record: {e}"));
                return None;
            }
        };
        let detail = if self.now_ms().saturating_sub(record.at) < REPLAY_AFTER_MS {
            format!("a row (of a commit still being applied, record {key})")
        } else {
            match self.replay(ops, key, &record).await {
                Ok(true) => {
                    format!("a row (of a commit cut off half-way, replayed now from {key})")
                }
                Ok(false) => {
                    format!("a row (of a commit cut off half-way, partly replayed from {key})")
                }
                Err(e) => format!("a row (of a commit cut off half-way, record {key}: {e})"),
            }
        };
        Some(Error::Conflict {
            table: table.to_owned(),
            detail,
        })
    }

    fn skip(&self, key: &str, why: &str) {
        if self.skipped.borrow_mut().insert(key.to_owned()) {
            self.note(format!("commit record {key} skipped: {why}"));
        }
    }

    /// Lists the journal (one `list`: its first 1000 records) and replays every record older
    /// than [`REPLAY_AFTER_MS`], within 3/4 of the session's budget (the rest is the
    /// session's own). Returns how many records it replayed in full. A corrupt record is
    /// skipped with a note, never retried by this isolate; a replay that does not fit is left
    /// for a later session (replays are idempotent, so a partial one is safe).
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails.
    pub async fn recover(&self, ops: &Cell<u64>) -> Result<usize> {
        let prefix = self.layout.journal_prefix();
        let page = self
            .call(ops, "list of the journal", || self.kv.list(&prefix, None))
            .await?;
        let now = self.now_ms();
        let mut replayed = 0;
        for listed in page.keys {
            let Some(stamp) = stamp_of(&listed.name, &prefix) else {
                continue;
            };
            if self.skipped.borrow().contains(&listed.name) {
                continue;
            }
            let meta = listed
                .metadata
                .and_then(|m| serde_json::from_value::<RecordMeta>(m).ok());
            if meta.is_some_and(|m| now.saturating_sub(m.at) < REPLAY_AFTER_MS) {
                continue; // a commit in flight
            }
            let key = listed.name;
            let Some(entry) = self.call(ops, "get", || self.kv.get(&key)).await? else {
                continue; // applied meanwhile
            };
            let record = match serde_json::from_str::<CommitRecord>(&entry.value) {
                Ok(r) if r.s == stamp => r,
                Ok(_) => {
                    self.skip(&key, "its stamp differs from its key");
                    continue;
                }
                Err(e) => {
                    self.skip(&key, &format!("not a gluebind commit record: {e}"));
                    continue;
                }
            };
            if now.saturating_sub(record.at) < REPLAY_AFTER_MS {
                continue;
            }
            if ops.get() >= self.replay_limit() {
                self.note(format!("replay of {key} left for a later session (budget)"));
                break;
            }
            if !self.replay(ops, &key, &record).await? {
                break; // out of budget: the rest waits too
            }
            replayed += 1;
        }
        Ok(replayed)
    }

    /// Most operations replays may bring a session to.
    fn replay_limit(&self) -> u64 {
        self.max_ops - self.max_ops / 4
    }

    /// Applies `record`'s writes that KV does not show yet (see [`replay_plan`]), then deletes
    /// the record. Safe to cut off and run again: every step is idempotent. False when it
    /// stopped at the budget (the record stays for a later session).
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails.
    pub(super) async fn replay(
        &self,
        ops: &Cell<u64>,
        key: &str,
        record: &CommitRecord,
    ) -> Result<bool> {
        let limit = self.replay_limit();
        let keys: Vec<String> = record
            .w
            .iter()
            .map(|w| w.k.clone())
            .chain(record.t.iter().map(|t| t.key.clone()))
            .collect();
        let found = self.get_many(ops, &keys).await?;
        let (current, schemas) = found.split_at(record.w.len());
        let before: BTreeMap<&str, Option<String>> = record
            .w
            .iter()
            .zip(current)
            .map(|(w, e)| (w.k.as_str(), e.as_ref().map(|e| e.value.clone())))
            .collect();
        let plan = replay_plan(record, current, schemas);
        let mut written = Vec::new();
        let mut finished = true;
        for w in plan {
            // One op kept for the record's delete.
            if ops.get() + 2 > limit {
                finished = false;
                break;
            }
            let result = match &w.put {
                Some(p) => {
                    self.call_within(ops, "replay put", limit, || {
                        self.kv.put(&w.k, p.v.clone(), p.m.clone())
                    })
                    .await
                }
                None => {
                    self.call_within(ops, "replay delete", limit, || self.kv.delete(&w.k))
                        .await
                }
            };
            result?;
            written.push(w);
        }
        let now = self.now_ms();
        {
            let mut recent = self.recent.borrow_mut();
            for w in &written {
                let after = w.put.as_ref().map(|p| KvEntry {
                    value: p.v.clone(),
                    metadata: p.m.clone(),
                });
                let before = before.get(w.k.as_str()).cloned().flatten();
                recent.record(w.k.clone(), before, after, now);
            }
        }
        if !finished {
            self.note(format!(
                "replay of {key} stopped at the session's budget ({} of its writes done); a \
                 later session continues it",
                written.len()
            ));
            return Ok(false);
        }
        self.call_within(
            ops,
            "delete of a replayed commit record",
            WORKERS_MAX_OPS,
            || self.kv.delete(key),
        )
        .await?;
        Ok(true)
    }
}
