//! A `kv://` commit: claim the keys in this isolate, put the commit record, check KV (and the
//! other commits' records) after it, write, acknowledge. See `journal.rs` for why in this
//! order, and `local/` for what the isolate's own log adds.

use super::{
    backend::KvEntry,
    check::Checked,
    journal::{self, CommitRecord, RecordPut, RecordWrite, FORMAT},
    local::{Claim, Lsn, LEASE_MS},
    plan::Planned,
    recover::Local,
    store::KvStorage,
    write::Writer,
};
use crate::{
    error::{Error, Result},
    session::store::SessionStore,
    snapshot::Version,
};
use std::{cell::Cell, collections::BTreeMap};

/// Marks this isolate's entry of a commit unsettled if the commit future is dropped half-way,
/// so that the next overlapping commit settles it at once instead of waiting for its lease.
/// Only a shortcut: an abandoned future that is never dropped is taken over when its lease
/// expires.
struct Claimed<'a> {
    store: &'a KvStorage,
    id: u64,
    token: u64,
    done: bool,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut log = self.store.log.borrow_mut();
            if log.holds(self.id, self.token) {
                log.unknown(self.id);
            }
        }
    }
}

impl KvStorage {
    /// Checks the session's write-set against KV and writes it, every key stamped `stamp`;
    /// returns the commit's sequence number in this isolate.
    ///
    /// Within the isolate, conflicts are always detected (through its log of its commits).
    /// Across isolates, through the commit records: exactly on a store where writes are seen
    /// at once, best effort within Workers KV's propagation window (see `journal.rs`).
    ///
    /// # Errors
    /// [`Error::Conflict`] / [`Error::Unique`] (nothing written); [`Error::Storage`] when KV
    /// fails: "nothing was written" / "failed and was undone" (nothing applied), or "commit
    /// outcome unknown" (its record stays, and settles it all or nothing later).
    pub async fn commit(&self, ws: &SessionStore, stamp: Version, ops: &Cell<u64>) -> Result<Lsn> {
        let planned = self.plan(ws, stamp)?;
        let record_key = self.layout.record_key(stamp);
        // Budget: refuse before writing anything rather than stop half-way (record put, list,
        // check reads, writes; the record's delete runs after the response).
        // Record put, journal list (and the records it shows, read in one bulk get), the check
        // (and the owners of contested unique values), the writes (and a marker), and per
        // rewritten table its listings.
        let checks = planned.expect.len().div_ceil(super::backend::MAX_BULK_GET) as u64;
        let marker = u64::from(planned.writes.iter().all(|w| w.put.is_none()));
        let needed = planned.writes.len() as u64
            + 2
            + 1
            + 2 * checks
            + marker
            + 4 * planned.ddl.len() as u64
            // (A new table's keys are checked against every schema record: a list per 1 000,
            // a bulk get per 100, of as many as the session knows of.)
            + u64::from(planned.ddl.iter().any(super::plan::Ddl::creates))
                * (ws.db.tables.len().div_ceil(1000).max(1) + ws.db.tables.len().div_ceil(100))
                    as u64;
        if ops.get() + needed > self.max_ops {
            return Err(Error::Storage {
                message: format!(
                    "committing needs about {needed} KV operations, more than the {} left in \
                     this session's budget ({} per session; Workers allow 1000 per invocation); \
                     commit in smaller units of work",
                    self.max_ops.saturating_sub(ops.get()),
                    self.max_ops
                ),
            });
        }
        let mut record = CommitRecord {
            f: FORMAT,
            s: stamp,
            at: 0,
            t: planned.footprint.tables.iter().cloned().collect(),
            d: planned.footprint.whole.iter().cloned().collect(),
            r: planned.footprint.relies.iter().cloned().collect(),
            w: planned
                .writes
                .iter()
                .map(|w| RecordWrite {
                    k: w.key.clone(),
                    was: w.was.as_ref().map(RecordPut::of),
                    put: w.put.as_ref().map(RecordPut::of),
                    u: w.unique,
                })
                .collect(),
            a: None,
        };
        record.encode()?; // too large: refused before claiming anything

        // 1. Claim the keys in this isolate: wait for an overlapping commit in flight, settle
        // one that stopped half-way, conflict with one acknowledged after the snapshot.
        let (id, token) = self.claim_keys(&planned, ws.as_of, stamp, ops).await?;
        let mut claimed = Claimed {
            store: self,
            id,
            token,
            done: false,
        };
        let now = self.now_ms();
        record.at = now;
        let (value, metadata) = record.encode()?;
        {
            let mut log = self.log.borrow_mut();
            log.renew(id, token, now);
            if let Some(c) = log.get_mut(id) {
                c.record = Some(record.clone());
            }
        }
        let writer = Writer {
            store: self,
            ops,
            id,
            token,
            record_key: record_key.clone(),
            deadline: now + journal::COMMIT_DEADLINE_MS,
        };

        // 2. The record (the intent), then records of finished commits deleted alongside.
        // Up to 8 of them, counted, when the budget has room beside this commit's own.
        let room = self.max_ops.saturating_sub(ops.get() + needed) / 4;
        let stale_records: Vec<String> = self
            .done_records
            .borrow()
            .iter()
            .take(room.min(8) as usize)
            .cloned()
            .collect();
        let (put, _) = futures_util::future::join(
            writer.put_record(&value, &metadata),
            self.delete_records(&stale_records, Some(ops)),
        )
        .await;
        if let Err(e) = put {
            claimed.done = true;
            return Err(e);
        }

        // 3. Check, after the record: the journal, every key relied on, DDL tables' rows.
        let checked = self.check(&planned, &record, ops, id).await;
        let current = match checked {
            Ok(current) => current,
            Err(e) => {
                claimed.done = true;
                writer.abort().await;
                return Err(match e {
                    Error::Storage { message } => Error::Storage {
                        message: format!("commit failed, nothing was written: {message}"),
                    },
                    other => other,
                });
            }
        };
        let Checked {
            before,
            leftovers,
            skip,
            finished,
        } = current;

        // 4. Write: leftovers of an earlier table first (a new table must not show them),
        // then the write-set.
        // A write left out leaves its key as it is.
        let after: BTreeMap<String, Option<KvEntry>> = planned
            .writes
            .iter()
            .map(|w| match skip.contains(&w.key) {
                false => (w.key.clone(), w.put.clone()),
                true => (w.key.clone(), before.get(&w.key).cloned().flatten()),
            })
            .collect();
        {
            let mut log = self.log.borrow_mut();
            log.checked(id, &before, &after);
            if !leftovers.is_empty() {
                let extra = leftovers
                    .iter()
                    .map(|(k, e)| (k.clone(), (Some(e.clone()), None)))
                    .collect();
                log.add_keys(id, &extra);
            }
        }
        let garbage: Vec<(String, Option<KvEntry>)> =
            leftovers.iter().map(|(k, _)| (k.clone(), None)).collect();
        let result = async {
            if !finished.is_empty() {
                writer.retire(&finished).await?;
            }
            if !garbage.is_empty() {
                writer.clear(&garbage).await?;
            }
            writer.write_all(&record, &skip, &before).await
        }
        .await;
        claimed.done = true;
        result?;

        // 5. Acknowledged: the record is deleted after the response (`flush_records`).
        let lsn = self.log.borrow_mut().acknowledged(id, self.now_ms());
        if record.deletes_only() {
            let marker = journal::marker_key(&record_key);
            self.done_records.borrow_mut().insert(marker);
        }
        self.done_records.borrow_mut().insert(record_key);
        Ok(lsn)
    }

    /// Step 1 of a commit (see [`KvStorage::commit`]).
    async fn claim_keys(
        &self,
        planned: &Planned,
        as_of: Lsn,
        stamp: Version,
        ops: &Cell<u64>,
    ) -> Result<(u64, u64)> {
        let started = self.now_ms();
        loop {
            let claim =
                self.log
                    .borrow_mut()
                    .claim(&planned.footprint, as_of, stamp, self.now_ms());
            match claim {
                Claim::Claimed(id, token) => return Ok((id, token)),
                Claim::Conflict(detail) => {
                    let table = planned.table_name();
                    return Err(Error::conflict(&table, detail));
                }
                Claim::Wait => {
                    // Bounded: the other commit's lease expires (then it is settled).
                    debug_assert!(self.now_ms().saturating_sub(started) <= 2 * LEASE_MS + 1_000);
                    self.sleep(2).await;
                }
                Claim::Settle(other) => {
                    match self
                        .settle_local(other, ops)
                        .await
                        .map_err(|e| Error::Storage {
                            message: format!(
                                "commit failed, nothing was written: an earlier commit of this \
                             isolate that stopped half-way must be settled first: {e}"
                            ),
                        })? {
                        Local::Done => {}
                        Local::Partial => {
                            return Err(Error::Storage {
                                message: "an earlier commit of this isolate that stopped half-way \
                                      must be settled first, and this session's KV budget \
                                      does not allow it; retry in a new request"
                                    .to_owned(),
                            });
                        }
                        Local::NotYet(at) => {
                            let table = planned.table_name();
                            return Err(Error::conflict(
                                &table,
                                format!(
                                    "a row (of a commit of this isolate cut off half-way, settled \
                                 {} s from now)",
                                    at.saturating_sub(self.now_ms()).div_ceil(1000)
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }

    pub(super) fn skip_record(&self, key: &str, why: &str) {
        if self.skipped.borrow_mut().insert(key.to_owned()) {
            self.note(format!("commit record {key} skipped: {why}"));
        }
    }
}
