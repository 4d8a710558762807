//! The commit record (journal) that makes a `kv://` commit crash-safe.
//!
//! KV has no transactions: a commit is many `put`s and `delete`s, and a Worker can be cut off
//! between any two (a `waitUntil` stops after ~30 s, an isolate can die). So a commit of more
//! than one key first writes one record holding its whole write-set, then the keys, then
//! deletes the record:
//!
//! ```text
//! check (bulk get) → put c/{stamp} → put/delete each key → delete c/{stamp}
//! ```
//!
//! Every key gluebind writes (row, unique entry, schema) carries the stamp of the commit that
//! wrote it (`"v"`), and the record keeps, for each key, the version it replaces (`pre`). That
//! makes every write idempotent and lets a replay tell the three states of a key apart: still
//! at `pre` (not written yet: write it), at the record's stamp (written: skip), anything else (a
//! later commit changed it: the later commit wins, skip).
//!
//! A record older than [`REPLAY_AFTER_MS`] belongs to a commit that was cut off (a commit stops
//! writing after [`COMMIT_DEADLINE_MS`]): the next session that lists the journal replays it
//! (see `KvStore::recover`), and a commit that finds it under a version it builds on replays it
//! first. A younger record is a commit in flight in another isolate: left alone.
//!
//! A write-set of exactly one key is atomic in KV by itself and skips the record.

use super::{
    backend::KvEntry,
    layout::{MAX_METADATA_BYTES, MAX_VALUE_BYTES},
    store::{KvStore, Write, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::{cell::Cell, collections::BTreeMap};

/// Age after which a commit record is taken as abandoned and replayed. Longer than a commit can
/// take: a commit stops writing after [`COMMIT_DEADLINE_MS`], and a `waitUntil` is cut off at
/// about 30 s.
pub const REPLAY_AFTER_MS: u64 = 60_000;

/// A commit does not start a write (nor an undo) later than this after writing its record, so
/// that it never races a replay of its own record. It then reports an unknown outcome and leaves
/// the rest to the replay.
pub const COMMIT_DEADLINE_MS: u64 = 30_000;

/// An isolate lists the journal at most this often (on a session's first KV read or commit
/// after that), so a cold read pays the `list` once per isolate and interval, not per session.
pub const SCAN_EVERY_MS: u64 = 10_000;

/// One key of a commit's write-set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordWrite {
    /// The KV key.
    pub k: String,
    /// Version the key held when the commit checked it (`None`: absent).
    pub pre: Option<u64>,
    /// The new entry; `None` deletes the key.
    pub put: Option<RecordPut>,
    /// Index into [`CommitRecord::t`]: the table the key belongs to.
    pub t: usize,
}

/// A value (and its metadata) a commit writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPut {
    /// The value.
    pub v: String,
    /// Its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<serde_json::Value>,
}

/// A table a commit writes, and the state of its schema key the commit relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableGuard {
    /// Table name.
    pub name: String,
    /// Its schema key.
    pub key: String,
    /// Schema version before the commit (`None`: the commit creates the table).
    pub pre: Option<u64>,
    /// Schema version after it (`None`: dropped; the stamp when the commit changes the schema,
    /// else `pre`).
    pub post: Option<u64>,
}

/// A whole commit, as stored under `c/{stamp}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The commit's stamp: the version every key it writes carries.
    pub s: u64,
    /// When the record was written (ms since the Unix epoch).
    pub at: u64,
    /// Tables written.
    pub t: Vec<TableGuard>,
    /// The write-set, in the order the commit writes it.
    pub w: Vec<RecordWrite>,
}

/// What a `list` of the journal shows for each record without a `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// When the record was written (ms since the Unix epoch).
    pub at: u64,
    /// Names of the tables written (left out when they do not fit in KV's metadata).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub t: Vec<String>,
}

impl CommitRecord {
    /// Encodes the record as (value, metadata), within KV's limits.
    ///
    /// # Errors
    /// [`Error::Storage`] when the write-set exceeds KV's 25 MiB value limit.
    pub fn encode(&self) -> Result<(String, serde_json::Value)> {
        let value = serde_json::to_string(self).map_err(|e| Error::Storage {
            message: format!("cannot encode the commit record: {e}"),
        })?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::Storage {
                message: format!(
                    "this commit writes {} bytes, more than the 25 MiB a KV commit record can \
                     hold (Workers KV's value limit); commit in smaller units of work",
                    value.len()
                ),
            });
        }
        let mut meta = RecordMeta {
            at: self.at,
            t: self.t.iter().map(|t| t.name.clone()).collect(),
        };
        let mut metadata = serde_json::to_value(&meta).expect("plain data");
        if metadata.to_string().len() > MAX_METADATA_BYTES {
            // The age is what a scan needs; the names are a convenience.
            meta.t.clear();
            metadata = serde_json::to_value(&meta).expect("plain data");
        }
        Ok((value, metadata))
    }
}

/// The version (`"v"`) of what gluebind stores under `key` (`None`: absent).
///
/// # Errors
/// [`Error::Storage`] when the value is not gluebind's.
pub fn version_of(key: &str, entry: Option<&KvEntry>) -> Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u64,
    }
    match entry {
        None => Ok(None),
        Some(e) => serde_json::from_str::<Versioned>(&e.value)
            .map(|r| Some(r.v))
            .map_err(|e| Error::Storage {
                message: format!(
                    "KV key {key:?} does not hold gluebind v1 data ({e}); remove it or use \
                     another ?prefix="
                ),
            }),
    }
}

/// What a replay writes: the record's writes whose key still holds the version the commit
/// replaced, in tables whose schema is still the one the commit relied on (before or after
/// it). `current[i]` is what KV holds for `record.w[i].k`, `schemas[j]` for `record.t[j].key`.
#[must_use]
pub fn replay_plan<'r>(
    record: &'r CommitRecord,
    current: &[Option<KvEntry>],
    schemas: &[Option<KvEntry>],
) -> Vec<&'r RecordWrite> {
    let table_ok: Vec<bool> = record
        .t
        .iter()
        .zip(schemas)
        .map(|(guard, found)| {
            version_of(&guard.key, found.as_ref()).is_ok_and(|v| v == guard.pre || v == guard.post)
        })
        .collect();
    record
        .w
        .iter()
        .zip(current)
        .filter(|(w, found)| {
            let Ok(now) = version_of(&w.k, found.as_ref()) else {
                return false; // not gluebind's data: never overwrite it
            };
            let done = match &w.put {
                Some(_) => now == Some(record.s),
                None => now.is_none(),
            };
            !done && now == w.pre && table_ok.get(w.t).copied().unwrap_or(false)
        })
        .map(|(w, _)| w)
        .collect()
}

/// The stamp a journal key names, if it is one (16 hex digits after the prefix); other keys
/// under the prefix (another database's, with a prefix that looks like ours) are not ours.
fn stamp_of(key: &str, prefix: &str) -> Option<u64> {
    let hex = key.strip_prefix(prefix)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: u64) -> Option<KvEntry> {
        Some(KvEntry {
            value: format!(r#"{{"k":{{"I64":1}},"v":{v}}}"#),
            metadata: None,
        })
    }

    fn record() -> CommitRecord {
        let put = |k: &str, pre| RecordWrite {
            k: k.into(),
            pre,
            put: Some(RecordPut {
                v: r#"{"v":9}"#.into(),
                m: None,
            }),
            t: 0,
        };
        CommitRecord {
            s: 9,
            at: 5,
            t: vec![TableGuard {
                name: "users".into(),
                key: "s/users".into(),
                pre: Some(1),
                post: Some(1),
            }],
            w: vec![
                put("new", None),
                put("changed", Some(2)),
                put("done", Some(2)),
                put("later", Some(2)),
                RecordWrite {
                    k: "gone".into(),
                    pre: Some(3),
                    put: None,
                    t: 0,
                },
                RecordWrite {
                    k: "deleted".into(),
                    pre: Some(3),
                    put: None,
                    t: 0,
                },
            ],
        }
    }

    #[test]
    fn replay_writes_only_keys_still_at_their_pre_image() {
        let rec = record();
        let current = [None, at(2), at(9), at(7), at(3), None];
        let keys: Vec<&str> = replay_plan(&rec, &current, &[at(1)])
            .iter()
            .map(|w| w.k.as_str())
            .collect();
        assert_eq!(keys, ["new", "changed", "gone"]);
        // Everything applied: a second replay writes nothing (idempotent).
        let applied = [at(9), at(9), at(9), at(7), None, None];
        assert!(replay_plan(&rec, &applied, &[at(1)]).is_empty());
        // The table was dropped or altered since: nothing of it is written.
        assert!(replay_plan(&rec, &current, &[None]).is_empty());
        assert!(replay_plan(&rec, &current, &[at(4)]).is_empty());
    }

    #[test]
    fn records_round_trip_and_metadata_stays_small() {
        let mut rec = record();
        let (value, meta) = rec.encode().unwrap();
        assert_eq!(serde_json::from_str::<CommitRecord>(&value).unwrap(), rec);
        assert_eq!(meta, serde_json::json!({"at": 5, "t": ["users"]}));
        rec.t = (0..200)
            .map(|i| TableGuard {
                name: format!("table_{i}"),
                key: String::new(),
                pre: None,
                post: None,
            })
            .collect();
        let (_, meta) = rec.encode().unwrap();
        assert_eq!(meta, serde_json::json!({"at": 5}));
        assert_eq!(version_of("k", at(4).as_ref()).unwrap(), Some(4));
        let foreign = KvEntry {
            value: "hello".into(),
            metadata: None,
        };
        assert!(version_of("k", Some(&foreign)).is_err());
    }
}
