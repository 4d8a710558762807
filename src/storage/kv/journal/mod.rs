//! The commit record (journal) that makes a `kv://` commit atomic and lets commits of
//! different isolates see each other.
//!
//! KV has no transactions and no compare-and-swap: a commit is many `put`s and `delete`s, and
//! a Worker can be cut off between any two (a `waitUntil` stops after ~30 s, an isolate can
//! die). So every commit first writes one record holding its whole write-set — each key's new
//! entry and the entry it replaces — and only then checks and writes:
//!
//! ```text
//! put c/{stamp} → list c/ → bulk get of every key it writes or relies on (∥ the records it
//!   found that may overlap) → puts, then deletes → (acknowledged) → delete c/{stamp} after
//!   the response
//! ```
//!
//! **Seeing each other.** A record is an intent: a commit lists the journal *after* putting
//! its own record, and refuses (`CONFLICT`) when another record it finds writes a key it
//! writes or relies on (unless that commit is finished: see `check.rs`, `check_records`).
//! Of two overlapping commits, at least one lists after the other's
//! record was put (each puts before it lists), so at least one of them sees the other: on a
//! linearizable store two overlapping commits never both write. Its check then reads every
//! key after its own record, so a commit that finished before it started writing shows there.
//! Workers KV is eventually consistent, so across isolates this holds once writes have
//! propagated (best effort within KV's window); within an isolate the isolate's own record of
//! its commits (`local/`) gives the same guarantee exactly.
//!
//! **Cut off.** Every key gluebind writes (row, unique entry, schema) carries the stamp of the
//! commit that wrote it (`"v"`), and the record keeps, for each key, the entry it replaces
//! (`was`) and the new one (`put`). That makes each key's state readable: still as `was` (not
//! written yet), written by this commit (`"v"` is its stamp), or anything else (changed by a
//! commit that did not see this one). A record older than [`REPLAY_AFTER_MS`] belongs to a
//! commit that was cut off (a commit stops writing after [`COMMIT_DEADLINE_MS`]), and the next
//! session that finds it settles it all or nothing (`recover.rs`, [`replay_plan`]):
//! - nothing written yet: it may not have passed its check, so it is **rolled back** (there is
//!   nothing to undo). "Written" needs evidence: an entry carrying the commit's stamp (an
//!   absent key proves nothing, another commit may have deleted it), or for a commit that
//!   only deletes, its marker (see [`marker_key`]), put before its deletes;
//! - some keys written: it had passed its check (nothing writes before it), so it is **rolled
//!   forward** — the keys still as they were are written, and keys another commit changed
//!   after this one wrote them stay as they are (a fully applied commit whose record's delete
//!   was cut off, built on by a later commit: nothing to do but delete the record);
//! - some keys written, some still as they were and some changed by another commit: the
//!   other commit wrote a key this one had not reached (only possible when KV's lag hid this
//!   record from it): this one was never acknowledged, and is **rolled back** — its written
//!   keys get their `was` entry back.
//!
//! Either way the record is deleted last, so a settlement cut off is finished by the next one.

use super::{
    backend::KvEntry,
    layout::{MAX_METADATA_BYTES, MAX_VALUE_BYTES},
};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Age after which a commit record is taken as abandoned and settled: a commit stops writing
/// (and undoing) [`COMMIT_DEADLINE_MS`] after its record, and what it did by then — the
/// record's delete included — reaches every location within KV's propagation window (about
/// 60 s), so no location settles a record whose commit already finished or undid itself.
pub const REPLAY_AFTER_MS: u64 = 120_000;

/// A commit does not start a write (nor an undo) later than this after writing its record, so
/// that it never races a settlement of its own record. It then reports an unknown outcome and
/// leaves the rest to the settlement.
pub const COMMIT_DEADLINE_MS: u64 = 30_000;

/// An isolate lists the journal for abandoned records at most this often on its read path
/// (commits list it every time), so a cold read pays the `list` once per isolate and interval.
pub const SCAN_EVERY_MS: u64 = 10_000;

/// The format of records this version writes (`"f"`); records without it are from an older
/// gluebind, whose settlement rules differ: they are left alone with a note.
pub const FORMAT: u32 = 2;

/// One key of a commit's write-set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordWrite {
    /// The KV key.
    pub k: String,
    /// What the key held before the commit, as the committing session saw it (`None`:
    /// absent): what a rollback puts back.
    pub was: Option<RecordPut>,
    /// The new entry; `None` deletes the key.
    pub put: Option<RecordPut>,
    /// True for a unique-index entry, whose state is its owner (its version is not tracked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub u: bool,
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

impl RecordPut {
    /// The entry this puts in KV.
    #[must_use]
    pub fn entry(&self) -> KvEntry {
        KvEntry {
            value: self.v.clone(),
            metadata: self.m.clone(),
        }
    }

    /// The put that leaves `entry`.
    #[must_use]
    pub fn of(entry: &KvEntry) -> Self {
        Self {
            v: entry.value.clone(),
            m: entry.metadata.clone(),
        }
    }
}

/// A whole commit, as stored under `c/{stamp}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// Format ([`FORMAT`]).
    #[serde(default)]
    pub f: u32,
    /// The commit's stamp: the version every key it writes carries.
    pub s: u64,
    /// When the record was written (ms since the Unix epoch).
    pub at: u64,
    /// Tables written (a row, an entry or the schema).
    pub t: Vec<String>,
    /// Tables whose every row the commit may change (created, altered or dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub d: Vec<String>,
    /// Keys the commit relies on without writing them (the schemas of tables whose rows it
    /// writes): a commit changing one of them overlaps this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r: Vec<String>,
    /// The write-set, in the order the commit writes it.
    pub w: Vec<RecordWrite>,
    /// For the record of a settlement (not a commit): the stamp of the record it settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<u64>,
}

/// What a `list` of the journal shows for each record without a `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// When the record was written (ms since the Unix epoch).
    #[serde(deserialize_with = "whole_ms")]
    pub at: u64,
    /// Hashes of every key the record writes ([`key_hash`], 8 hex digits each, concatenated),
    /// so that a commit tells an unrelated record apart without reading it. This and the
    /// fields below are left out when they do not fit in KV's metadata: the record must then
    /// be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
    /// Hashes of the keys it relies on without writing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr: Option<String>,
    /// Tables whose every row the record may change ([`CommitRecord::d`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Vec<String>>,
    /// Tables it writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<Vec<String>>,
}

/// What a commit writes and relies on, as [`CommitRecord::overlaps`] and
/// [`RecordMeta::may_overlap`] compare it with another commit's record.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    /// Keys it writes.
    pub writes: std::collections::BTreeSet<String>,
    /// Keys it relies on without writing them.
    pub relies: std::collections::BTreeSet<String>,
    /// Tables it writes.
    pub tables: std::collections::BTreeSet<String>,
    /// Tables whose every row it may change.
    pub whole: std::collections::BTreeSet<String>,
    /// Keys it read and must find unchanged (a serializable commit's point reads). Other
    /// commits that write them overlap it; its own record does not list them (a commit that
    /// only read a key needs no protection from later writers).
    pub reads: std::collections::BTreeSet<String>,
    /// Tables it scanned (a serializable commit's predicate reads): commits that write them
    /// overlap it.
    pub scans: std::collections::BTreeSet<String>,
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

/// A 32-bit hash of a key (FNV-1a): what record metadata lists.
#[must_use]
pub fn key_hash(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn hashes(h: &str) -> Vec<u32> {
    let mut out: Vec<u32> = (0..h.len() / 8)
        .filter_map(|i| u32::from_str_radix(h.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    out.sort_unstable();
    out
}

fn hash_list<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    keys.map(|k| format!("{:08x}", key_hash(k))).collect()
}

/// Two writes conflict, and so do a write and a reliance; two reliances do not (two inserts
/// into one table both rely on its schema).
fn tables_overlap(t: &[String], d: &[String], other: &Footprint) -> bool {
    d.iter()
        .any(|name| other.tables.contains(name) || other.whole.contains(name))
        || t.iter().any(|name| other.whole.contains(name))
}

impl RecordMeta {
    /// Whether the record may overlap a commit with footprint `other` (see
    /// [`CommitRecord::overlaps`]); `None` when the metadata cannot tell: read the record.
    #[must_use]
    pub fn may_overlap(&self, other: &Footprint) -> Option<bool> {
        let (Some(h), Some(hr), Some(t), Some(d)) = (&self.h, &self.hr, &self.t, &self.d) else {
            return None;
        };
        if tables_overlap(t, d, other) || t.iter().chain(d).any(|n| other.scans.contains(n)) {
            return Some(true);
        }
        let (writes, relies) = (hashes(h), hashes(hr));
        let hit = |list: &[u32], keys: &std::collections::BTreeSet<String>| {
            keys.iter()
                .any(|k| list.binary_search(&key_hash(k)).is_ok())
        };
        Some(
            hit(&writes, &other.writes)
                || hit(&writes, &other.relies)
                || hit(&writes, &other.reads)
                || hit(&relies, &other.writes),
        )
    }
}

impl CommitRecord {
    /// Whether this record overlaps a commit with footprint `other`: one writes a key the other
    /// writes or relies on, or one may change every row of a table the other writes — or this
    /// record writes a key `other` read or a table it scanned.
    #[must_use]
    pub fn overlaps(&self, other: &Footprint) -> bool {
        tables_overlap(&self.t, &self.d, other)
            || self
                .t
                .iter()
                .chain(&self.d)
                .any(|n| other.scans.contains(n))
            || self.w.iter().any(|w| {
                other.writes.contains(&w.k)
                    || other.relies.contains(&w.k)
                    || other.reads.contains(&w.k)
            })
            || self.r.iter().any(|k| other.writes.contains(k))
    }

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
                    "this commit writes {} bytes (new entries and the ones they replace), more \
                     than the 25 MiB a KV commit record can hold (Workers KV's value limit); \
                     commit in smaller units of work",
                    value.len()
                ),
            });
        }
        let full = RecordMeta {
            at: self.at,
            h: Some(hash_list(self.w.iter().map(|w| w.k.as_str()))),
            hr: Some(hash_list(self.r.iter().map(String::as_str))),
            d: Some(self.d.clone()),
            t: Some(self.t.clone()),
        };
        let fits = |m: &RecordMeta| {
            serde_json::to_string(m).is_ok_and(|json| json.len() <= MAX_METADATA_BYTES)
        };
        // The age is what a scan needs; the rest lets most commits skip reading the record.
        let meta = if fits(&full) {
            full
        } else {
            RecordMeta {
                at: self.at,
                h: None,
                hr: None,
                d: None,
                t: None,
            }
        };
        Ok((value, serde_json::to_value(&meta).expect("plain data")))
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

/// The owner (`"k"`) of a unique entry, as JSON text, for comparing owners.
fn owner_of(entry: Option<&KvEntry>) -> Option<Option<String>> {
    match entry {
        None => Some(None),
        Some(e) => serde_json::from_str::<serde_json::Value>(&e.value)
            .ok()
            .and_then(|v| v.get("k").map(|k| Some(k.to_string()))),
    }
}

/// Where one key of a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Still what the commit replaces (not written yet).
    Before,
    /// Written by the commit.
    Written,
    /// Changed by another commit (or not gluebind's data).
    Other,
}

/// Where `write` (of the commit stamped `stamp`) stands, given what KV holds for its key.
#[must_use]
pub fn key_state(write: &RecordWrite, stamp: u64, found: Option<&KvEntry>) -> KeyState {
    let Ok(now) = version_of(&write.k, found) else {
        return KeyState::Other; // not gluebind's data: never overwrite it
    };
    let written = match &write.put {
        Some(_) => now == Some(stamp),
        None => now.is_none(),
    };
    let was = write.was.as_ref().map(RecordPut::entry);
    let before = if write.u {
        match (owner_of(found), owner_of(was.as_ref())) {
            (Some(now), Some(then)) => now == then,
            _ => false,
        }
    } else {
        version_of(&write.k, was.as_ref()).is_ok_and(|v| v == now)
    };
    // A key both states describe (a delete of an absent key) counts as not written yet.
    if before {
        KeyState::Before
    } else if written {
        KeyState::Written
    } else {
        KeyState::Other
    }
}

/// How an abandoned commit is settled.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement<'r> {
    /// Write these keys (still as they were): the commit is applied in full.
    Forward(Vec<&'r RecordWrite>),
    /// Put back the `was` entry of these keys (written by the commit): nothing of it stays.
    Back(Vec<&'r RecordWrite>),
}

impl CommitRecord {
    /// True when the commit writes no entry, only deletes: whether it began writing then
    /// shows only through its marker (see [`marker_key`]).
    #[must_use]
    pub fn deletes_only(&self) -> bool {
        self.w.iter().all(|w| w.put.is_none())
    }
}

/// The key a commit that only deletes puts before its deletes, so that a settlement can tell
/// that it had passed its check: an absent key is no evidence (another commit may have
/// deleted it), a key carrying the commit's stamp is.
#[must_use]
pub fn marker_key(record_key: &str) -> String {
    format!("{record_key}.w")
}

/// How to settle `record`, given what KV holds for each of its writes (`current[i]` for
/// `record.w[i].k`) and, for a commit that only deletes, whether its marker is there.
///
/// The commit had passed its check (nothing writes before it) when one of its entries carries
/// its stamp, or its marker exists; only then may it roll forward, or need undoing.
#[must_use]
pub fn replay_plan<'r>(
    record: &'r CommitRecord,
    current: &[Option<KvEntry>],
    marker: bool,
) -> Settlement<'r> {
    let states: Vec<KeyState> = record
        .w
        .iter()
        .zip(current)
        .map(|(w, found)| key_state(w, record.s, found.as_ref()))
        .collect();
    let pick = |state: KeyState| {
        record
            .w
            .iter()
            .zip(&states)
            .filter(|(_, s)| **s == state)
            .map(|(w, _)| w)
            .collect::<Vec<_>>()
    };
    let changed = states.contains(&KeyState::Other);
    let unfinished = states.contains(&KeyState::Before);
    let started = if record.deletes_only() {
        marker
    } else {
        record
            .w
            .iter()
            .zip(&states)
            .any(|(w, s)| w.put.is_some() && *s == KeyState::Written)
    };
    if !started {
        // No entry carries its stamp: its deletes never began (they wait for its entries,
        // and an undo puts its deletes back before its entries), so a key absent is not its
        // doing.
        Settlement::Back(Vec::new())
    } else if changed && unfinished {
        Settlement::Back(pick(KeyState::Written))
    } else {
        Settlement::Forward(pick(KeyState::Before))
    }
}

#[cfg(test)]
mod tests;
