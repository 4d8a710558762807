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
//! (`recover.rs`). A younger record is a commit in flight in another isolate: left alone.
//!
//! A commit must not build on a half-applied one: if it deleted a row that the other commit
//! inserted, the replay would find the key absent (its `pre`) and bring the row back. So a
//! commit's check also reads `c/{v}` for every version `v` it read (the record key follows from
//! the version: free within the same bulk get) and for the version of any unique entry it would
//! take over as stale; a record there means CONFLICT (after replaying it, when abandoned).
//!
//! A write-set of exactly one key is atomic in KV by itself and skips the record. The flush
//! itself (record, writes, undo, what the caller is told) is in `flush.rs`.

use super::{
    backend::KvEntry,
    layout::{MAX_METADATA_BYTES, MAX_VALUE_BYTES},
};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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
    #[serde(deserialize_with = "whole_ms")]
    pub at: u64,
    /// Names of the tables written (left out when they do not fit in KV's metadata).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub t: Vec<String>,
}

/// Metadata crosses JavaScript, where a binding may hand a whole number back as a float.
fn whole_ms<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let ms = f64::deserialize(d)?;
    if ms.is_finite() && ms >= 0.0 && ms.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(ms as u64)
    } else {
        Err(serde::de::Error::custom(format!(
            "{ms} is not a time in ms"
        )))
    }
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
        let from_js: RecordMeta =
            serde_json::from_value(serde_json::json!({"at": 1.764e12})).unwrap();
        assert_eq!(from_js.at, 1_764_000_000_000);
        assert_eq!(
            serde_json::from_value::<RecordMeta>(meta).unwrap().at,
            5,
            "integers too"
        );
        assert_eq!(version_of("k", at(4).as_ref()).unwrap(), Some(4));
        let foreign = KvEntry {
            value: "hello".into(),
            metadata: None,
        };
        assert!(version_of("k", Some(&foreign)).is_err());
    }
}
