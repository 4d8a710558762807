//! Settling commits that stopped half-way (see `journal.rs` for the rules): records other
//! isolates left in KV, found by a listing of the journal, and this isolate's own commits
//! whose future was dropped or abandoned, or whose undo failed.
//!
//! A settlement claims the record's keys in the isolate's log like a commit (so no commit of
//! the isolate interleaves with it, and sessions see it whole or not at all), reads the keys,
//! writes forward or back, and deletes the record last: cut off anywhere, the next settlement
//! finishes it.

use super::{
    backend::KvEntry,
    journal::{replay_plan, CommitRecord, RecordMeta, Settlement, FORMAT, REPLAY_AFTER_MS},
    local::TakeOver,
    store::{KvStorage, WORKERS_MAX_OPS},
};
use crate::error::{Error, Result};
use std::{cell::Cell, collections::BTreeMap};

/// The stamp a journal key names, if it is one (16 hex digits after the prefix); other keys
/// under the prefix are not ours.
pub(super) fn stamp_of(key: &str, prefix: &str) -> Option<u64> {
    let hex = key.strip_prefix(prefix)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// How a settlement of this isolate's own commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Local {
    /// Settled (or nothing left to settle).
    Done,
    /// Stopped at the session's budget.
    Partial,
    /// Not before this time (ms).
    NotYet(u64),
}

/// How a settlement ended.
enum Settled {
    Forward,
    Back,
    /// Another session is settling it, or a commit overlaps it: not now.
    Busy,
    /// Its record is gone: settled or finished by another session (`true`: applied, as its
    /// keys show).
    Gone(bool),
    /// Stopped at the session's budget: the record stays, a later session goes on.
    Partial,
}

impl KvStorage {
    /// Settles this isolate's own commits that stopped half-way, then lists the journal and settles every record older than [`REPLAY_AFTER_MS`] that no
    /// commit of this isolate holds, within 3/4 of the session's
    /// budget (the rest is the session's own). Returns how many it settled. A corrupt record
    /// is skipped with a note, never retried by this isolate; a settlement that does not fit
    /// is left for a later session.
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails.
    pub async fn recover(&self, ops: &Cell<u64>) -> Result<usize> {
        // This isolate's own commits that stopped half-way first: no need to wait a minute,
        // the isolate knows they stopped.
        let own = self.log.borrow().unsettled_ids(self.now_ms());
        for id in own {
            if self.settle_local(id, ops).await? == Local::Partial {
                return Ok(0); // out of budget: the rest waits for a later session
            }
        }
        let prefix = self.layout.journal_prefix();
        // The whole journal (as a commit's check lists it): a record on its first page may
        // wait for one past it, which must be reached to be settled.
        let journal = self.list_all(ops, &prefix).await?;
        let now = self.now_ms();
        let mut settled = 0;
        // Markers whose record is gone (its commit finished, or was settled while the
        // marker's put was still on its way): garbage, once old.
        let names: std::collections::BTreeSet<&str> =
            journal.iter().map(|k| k.name.as_str()).collect();
        let orphans: Vec<String> = journal
            .iter()
            .filter(|k| {
                k.name
                    .strip_suffix(".w")
                    .is_some_and(|record| !names.contains(record))
                    && k.metadata
                        .as_ref()
                        .and_then(|m| serde_json::from_value::<RecordMeta>(m.clone()).ok())
                        .is_none_or(|m| now.saturating_sub(m.at) >= REPLAY_AFTER_MS)
            })
            .map(|k| k.name.clone())
            .collect();
        for orphan in &orphans {
            self.call(ops, "delete of a marker", || self.kv.delete(orphan))
                .await?;
        }
        for listed in journal {
            let Some(stamp) = stamp_of(&listed.name, &prefix) else {
                continue;
            };
            if self.skipped.borrow().contains(&listed.name) {
                continue;
            }
            {
                let log = self.log.borrow();
                if log.finished(stamp) {
                    drop(log);
                    self.record_to_delete(listed.name);
                    continue;
                }
                if log.unsettled(stamp) {
                    continue; // this isolate's own: settled through its log
                }
            }
            let meta = listed
                .metadata
                .and_then(|m| serde_json::from_value::<RecordMeta>(m).ok());
            if meta.is_some_and(|m| now.saturating_sub(m.at) < REPLAY_AFTER_MS) {
                continue; // a commit in flight
            }
            if ops.get() >= self.replay_limit() {
                self.note(format!(
                    "settlement of {} left for a later session (budget)",
                    listed.name
                ));
                break;
            }
            let key = listed.name;
            let Some(entry) = self.call(ops, "get", || self.kv.get(&key)).await? else {
                continue; // settled meanwhile
            };
            let record = match serde_json::from_str::<CommitRecord>(&entry.value) {
                Ok(r) if r.s == stamp && r.f == FORMAT => r,
                Ok(r) if r.s != stamp => {
                    self.skip_record(&key, "its stamp differs from its key");
                    continue;
                }
                Ok(_) => {
                    self.skip_record(&key, "written by an older gluebind (another format)");
                    continue;
                }
                Err(e) => {
                    self.skip_record(&key, &format!("not a gluebind commit record: {e}"));
                    continue;
                }
            };
            if now.saturating_sub(record.at) < REPLAY_AFTER_MS {
                continue;
            }
            if self.settle_remote(&record, ops, 0, 0).await? {
                settled += 1;
            } else if ops.get() >= self.replay_limit() {
                break; // out of budget: the rest waits too
            }
        }
        Ok(settled)
    }

    /// Most operations settlements may bring a session to.
    fn replay_limit(&self) -> u64 {
        self.max_ops - self.max_ops / 4
    }

    /// Settles another isolate's abandoned `record`. False when one of its keys is claimed
    /// by a commit of this isolate in flight other than `except` (left for later), or when it
    /// stopped at the session's budget.
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails (the record stays for a later settlement).
    pub(super) async fn settle_remote(
        &self,
        record: &CommitRecord,
        ops: &Cell<u64>,
        except: u64,
        except_stamp: u64,
    ) -> Result<bool> {
        let Some((id, token)) = self
            .log
            .borrow_mut()
            .settling(record, self.now_ms(), except)
        else {
            return Ok(false);
        };
        let outcome = self.settle(id, token, record, ops, except_stamp).await;
        let mut log = self.log.borrow_mut();
        match outcome {
            Ok(Settled::Partial) => {
                // Ours to finish now: its entry says which record, and it hides the keys
                // from this isolate's sessions until then.
                log.unknown(id);
                Ok(false)
            }
            Ok(Settled::Busy | Settled::Gone(_)) => {
                // Nothing written by this settlement: its claim goes (marked undone, it would
                // pass for the record's own commit, finished, and the record would be deleted
                // unsettled).
                log.release(id);
                Ok(false)
            }
            Ok(Settled::Forward | Settled::Back) => {
                log.acknowledged_settlement(id, self.now_ms());
                Ok(true)
            }
            Err(e) => {
                if log.holds(id, token) {
                    log.unknown(id);
                }
                Err(e)
            }
        }
    }

    /// Settles this isolate's own commit `id`, which stopped half-way (or whose lease
    /// expired): forward (acknowledged now) or back (undone), or not yet (see
    /// [`LocalLog::take_over`](super::local::LocalLog::take_over)).
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails (it stays unsettled; the next commit that needs its
    /// keys tries again).
    pub(super) async fn settle_local(&self, id: u64, ops: &Cell<u64>) -> Result<Local> {
        let (record, token) = match self.log.borrow_mut().take_over(id, self.now_ms()) {
            TakeOver::Settle(record, token) => (record, token),
            TakeOver::NotYet(at) => return Ok(Local::NotYet(at)),
            TakeOver::Nothing => return Ok(Local::Done),
        };
        let outcome = self.settle(id, token, &record, ops, 0).await;
        let mut log = self.log.borrow_mut();
        let now = self.now_ms();
        match outcome {
            Ok(Settled::Forward | Settled::Gone(true)) => {
                log.acknowledged_settlement(id, now);
                Ok(Local::Done)
            }
            Ok(Settled::Back | Settled::Gone(false)) => {
                log.undone(id, now);
                Ok(Local::Done)
            }
            Ok(Settled::Busy) => {
                log.unknown(id);
                Ok(Local::NotYet(now + 1_000))
            }
            Ok(Settled::Partial) => {
                log.unknown(id);
                Ok(Local::Partial)
            }
            Err(e) => {
                if log.holds(id, token) {
                    log.unknown(id);
                }
                Err(e)
            }
        }
    }

    /// Announces the settlement, reads `record`'s keys, writes forward or back, deletes the
    /// record; holds `token` of the log's entry `id` throughout. `except_stamp`: the commit
    /// that asks for the settlement (its record overlaps, and waits for this one).
    async fn settle(
        &self,
        id: u64,
        token: u64,
        record: &CommitRecord,
        ops: &Cell<u64>,
        except_stamp: u64,
    ) -> Result<Settled> {
        // This isolate's own commit keeps what its own check found as "before".
        let local = self
            .log
            .borrow()
            .get(id)
            .is_some_and(|c| c.keys.values().any(|k| k.before.is_some()));
        let record_key = self.layout.record_key(record.s);
        let marker_key = super::journal::marker_key(&record_key);
        // 1. Announce the settlement with a record of its own, as a commit does: it deletes
        // the settled record and relies on its keys, so that a commit writing them, or another
        // settlement of the same record, sees it and waits — and this one sees them.
        let ours = self.announce(record, &record_key, ops).await?;
        let ours_key = self.layout.record_key(ours.s);
        let deadline = ours.at + super::journal::COMMIT_DEADLINE_MS;
        let live = || self.log.borrow().holds(id, token) && self.now_ms() <= deadline;
        let outcome = async {
            // A settlement's own record (an announcement) writes nothing but its deletion:
            // settling one never contends with anything.
            if record.a.is_none()
                && self.contested(&[record.s, except_stamp], &ours, record, ops).await?
            {
                return Ok(Settled::Busy);
            }
            // 2. Read the record (still there?), its keys and its marker.
            let mut keys: Vec<String> = record.w.iter().map(|w| w.k.clone()).collect();
            keys.push(record_key.clone());
            if record.deletes_only() {
                keys.push(marker_key.clone());
            }
            // KV as it is, through this isolate's other commits (not this one's hiding).
            let mut current = self.settle_reads(ops, &keys, id, self.max_ops).await?;
            let marker = if record.deletes_only() {
                keys.pop();
                current.pop().flatten().is_some()
            } else {
                false
            };
            keys.pop();
            if current.pop().flatten().is_none() {
                // Settled (or finished) by another session: its keys tell how.
                let applied = matches!(replay_plan(record, &current, marker), Settlement::Forward(w) if w.is_empty());
                return Ok(Settled::Gone(applied));
            }
            self.settle_keys(id, record, &keys, current, marker, local, ops, &live)
                .await
        }
        .await;
        // 4. The announcement goes, whatever happened (a settlement of it finds nothing
        // written and only deletes it).
        let _ = self
            .call_within(
                ops,
                "delete of a settlement's record",
                WORKERS_MAX_OPS,
                &|| true,
                || self.kv.delete(&ours_key),
            )
            .await;
        let how = outcome?;
        if matches!(how, Settled::Forward | Settled::Back) {
            if record.deletes_only() {
                self.write_call(
                    ops,
                    "delete of a commit's marker",
                    WORKERS_MAX_OPS,
                    &live,
                    || self.kv.delete(&marker_key),
                )
                .await?;
            }
            self.call_within(
                ops,
                "delete of a settled commit record",
                WORKERS_MAX_OPS,
                &live,
                || self.kv.delete(&record_key),
            )
            .await?;
        }
        Ok(how)
    }

    /// Puts the record announcing a settlement of `record`.
    async fn announce(
        &self,
        record: &CommitRecord,
        record_key: &str,
        ops: &Cell<u64>,
    ) -> Result<CommitRecord> {
        let stamp = crate::engine::random_53(Some(self.kv.as_ref()))?;
        let ours = CommitRecord {
            f: FORMAT,
            s: stamp,
            at: self.now_ms(),
            t: record.t.clone(),
            d: Vec::new(),
            r: record.w.iter().map(|w| w.k.clone()).collect(),
            w: vec![super::journal::RecordWrite {
                k: record_key.to_owned(),
                was: None,
                put: None,
                u: false,
            }],
            a: Some(record.s),
        };
        let (value, metadata) = ours.encode()?;
        let key = self.layout.record_key(stamp);
        self.call(ops, "put of a settlement's record", || {
            self.kv.put(&key, value.clone(), Some(metadata.clone()))
        })
        .await?;
        Ok(ours)
    }

    /// True when a record other than `ours` and those stamped `except` (the settled one, and
    /// the commit asking for the settlement) overlaps the
    /// settlement: a commit writing its keys, or another settlement of it. Both wait then
    /// (each lists after announcing, so at least one sees the other).
    async fn contested(
        &self,
        except: &[u64],
        ours: &CommitRecord,
        settled: &CommitRecord,
        ops: &Cell<u64>,
    ) -> Result<bool> {
        let now = self.now_ms();
        let prefix = self.layout.journal_prefix();
        let footprint = super::journal::Footprint {
            writes: ours.w.iter().map(|w| w.k.clone()).collect(),
            relies: ours.r.iter().cloned().collect(),
            tables: ours.t.iter().cloned().collect(),
            ..super::journal::Footprint::default()
        };
        let listed = self.list_all(ops, &prefix).await?;
        let mut unread = Vec::new();
        for key in listed {
            let Some(stamp) = stamp_of(&key.name, &prefix) else {
                continue;
            };
            if except.contains(&stamp) || stamp == ours.s || self.log.borrow().finished(stamp) {
                continue;
            }
            let meta = key
                .metadata
                .as_ref()
                .and_then(|m| serde_json::from_value::<RecordMeta>(m.clone()).ok());
            if meta.and_then(|m| m.may_overlap(&footprint)) == Some(false) {
                continue;
            }
            unread.push(key.name);
        }
        for entry in self.get_raw(ops, &unread).await?.into_iter().flatten() {
            if let Ok(other) = serde_json::from_str::<CommitRecord>(&entry.value) {
                // Another settlement of the same record decides as this one does (both read
                // the same evidence, and the committer stopped writing long ago): no contest.
                if other.a.is_some() && other.a == ours.a {
                    continue;
                }
                // An abandoned commit younger than the settled one waits for it (two abandoned
                // records over one key would otherwise wait for each other forever): it can no
                // longer write, and its own settlement comes after this one. An abandoned
                // settlement (its settler is past its deadline) writes nothing more at all.
                let old = now.saturating_sub(other.at) >= REPLAY_AFTER_MS;
                if old && (other.a.is_some() || (other.at, other.s) > (settled.at, settled.s)) {
                    continue;
                }
                if other.overlaps(&footprint) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Step 3 of a settlement: decides forward or back from what the keys hold (`current`),
    /// and writes.
    #[allow(clippy::too_many_arguments)]
    async fn settle_keys(
        &self,
        id: u64,
        record: &CommitRecord,
        keys: &[String],
        current: Vec<Option<KvEntry>>,
        marker: bool,
        local: bool,
        ops: &Cell<u64>,
        live: &dyn Fn() -> bool,
    ) -> Result<Settled> {
        let settlement = replay_plan(record, &current, marker);
        let (writes, how): (Vec<(String, Option<KvEntry>)>, Settled) = match &settlement {
            Settlement::Forward(ws) => (
                ws.iter()
                    .map(|w| (w.k.clone(), w.put.as_ref().map(|p| p.entry())))
                    .collect(),
                Settled::Forward,
            ),
            Settlement::Back(ws) => (
                ws.iter()
                    .map(|w| (w.k.clone(), w.was.as_ref().map(|p| p.entry())))
                    .collect(),
                Settled::Back,
            ),
        };
        {
            let before: BTreeMap<String, Option<KvEntry>> =
                keys.iter().cloned().zip(current.iter().cloned()).collect();
            // What the keys hold after the settlement: another isolate's record starts from
            // what KV shows; a commit of this isolate keeps what its own check found as
            // "before", and what it meant to write where the settlement writes nothing.
            let mut after = if local {
                BTreeMap::new()
            } else {
                before.clone()
            };
            for (k, e) in &writes {
                after.insert(k.clone(), e.clone());
            }
            self.log.borrow_mut().checked(id, &before, &after);
        }
        // Within 3/4 of the session's budget (one operation kept for the record's delete):
        // what does not fit is left for a later session (writing is idempotent).
        let limit = self.replay_limit();
        let room = limit.saturating_sub(ops.get() + 1) as usize;
        let partial = writes.len() > room;
        let writes = if partial {
            self.note(format!(
                "settlement of {} stopped at the session's budget ({room} of its {} writes \
                 done); a later session continues it",
                self.layout.record_key(record.s),
                writes.len()
            ));
            writes[..room].to_vec()
        } else {
            writes
        };
        // Retried after 429s only: a write that failed otherwise is read again by the next
        // settlement (see `KvStorage::write_call`).
        let puts = writes.iter().map(|(k, e)| async move {
            match e {
                Some(e) => {
                    self.write_call(ops, "settlement put", limit, live, || {
                        self.kv.put(k, e.value.clone(), e.metadata.clone())
                    })
                    .await
                }
                None => {
                    self.write_call(ops, "settlement delete", limit, live, || self.kv.delete(k))
                        .await
                }
            }
        });
        for result in futures_util::future::join_all(puts).await {
            result?;
        }
        if !live() {
            return Err(Error::Storage {
                message: "a settlement was taken over by another session".to_owned(),
            });
        }
        if partial {
            return Ok(Settled::Partial);
        }
        Ok(how)
    }
}
