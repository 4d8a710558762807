//! Step 3 of a `kv://` commit: after its record is in KV, read the journal, every key the
//! commit writes or relies on, and the rows of tables it rewrites — and decide whether it may
//! write (see `commit.rs` for the steps, `journal.rs` for why in this order).

use super::{
    backend::KvEntry,
    journal::{self, CommitRecord, RecordMeta, FORMAT, REPLAY_AFTER_MS},
    layout::{self, SchemaRecord, UniqueRecord},
    load::entry_row,
    local::LEASE_MS,
    plan::{Ddl, Expect, Planned},
    recover::stamp_of,
    store::{KvStorage, Listed},
};
use crate::{
    error::{Error, Result},
    snapshot::{unique_key, Version},
};
use std::{
    cell::Cell,
    collections::{BTreeMap, BTreeSet},
};

impl KvStorage {
    /// The names the tables renamed in place keep their keys under (`SchemaRecord::at`), with
    /// the table: every schema record, as KV holds it now seen through this isolate's log (its
    /// own commits win over KV's lag, as for every read of the check): one `list` per 1 000
    /// records and a bulk get per 100.
    async fn stored_elsewhere(&self, ops: &Cell<u64>) -> Result<BTreeMap<String, String>> {
        let listed = self
            .list_as_of(ops, &self.layout.schemas_prefix(), self.latest(), true)
            .await?;
        let mut records = Vec::new();
        let mut names = Vec::new();
        for (name, listed) in listed {
            match listed {
                Listed::Local(entry) => records.push((name, entry)),
                Listed::Kv(_) => names.push(name),
            }
        }
        let found = self.check_many(ops, &names).await?;
        records.extend(
            names
                .into_iter()
                .zip(found)
                .filter_map(|(name, entry)| Some((name, entry?))),
        );
        let mut at = BTreeMap::new();
        for (name, entry) in records {
            let record: SchemaRecord = layout::decode(&name, &entry.value)?;
            if let Some(storage) = record.at {
                at.insert(storage, record.schema.table_name);
            }
        }
        Ok(at)
    }

    /// Step 3 of a commit: reads, after the commit's record, the journal, every key the
    /// commit relies on, and the rows of tables it rewrites, and decides whether it may write.
    pub(super) async fn check(
        &self,
        planned: &Planned,
        ours: &CommitRecord,
        ops: &Cell<u64>,
        id: u64,
    ) -> Result<Checked> {
        let keys: Vec<String> = planned.expect.keys().cloned().collect();
        let journal_prefix = self.layout.journal_prefix();
        let latest = self.latest();
        let ddl_lists = planned.ddl.iter().map(|ddl| async move {
            let rows = self
                .list_as_of(ops, &self.layout.rows_prefix(&ddl.storage), latest, true)
                .await?;
            // Unique and index entries: garbage of an earlier table of the name, or no row's.
            let entries = if ddl.dropped || ddl.rows_before.is_none() {
                let mut entries = self
                    .list_all(ops, &self.layout.uniques_prefix(&ddl.storage))
                    .await?;
                entries.extend(
                    self.list_all(ops, &self.layout.indexes_prefix(&ddl.storage))
                        .await?,
                );
                entries
            } else {
                Vec::new()
            };
            Ok::<_, Error>((rows, entries))
        });
        // The journal first: a commit that finished before this listing shows in the reads
        // after it; one that did not is in the listing (see `journal.rs`).
        let journal = self.list_all(ops, &journal_prefix).await?;
        let unread = self.candidates(planned, ours, journal);
        let (found, ddl, records) = futures_util::future::join3(
            self.check_many(ops, &keys),
            futures_util::future::join_all(ddl_lists),
            self.get_raw(ops, &unread),
        )
        .await;
        let (found, records) = (found?, records?);
        let current: BTreeMap<String, Option<KvEntry>> = keys.into_iter().zip(found).collect();
        // A new table's keys must be no other table's: a table renamed in place keeps its
        // rows under its old name (this session may have picked the name from a view of the
        // tables that was out of date, and whatever the keys hold would pass for leftovers of
        // a dropped table). First: its values would look taken.
        let created: Vec<&Ddl> = planned.ddl.iter().filter(|d| d.creates()).collect();
        if !created.is_empty() {
            let elsewhere = self.stored_elsewhere(ops).await?;
            for ddl in created {
                if let Some(owner) = elsewhere.get(&ddl.storage) {
                    return Err(Error::conflict(
                        &ddl.table,
                        format!(
                            "its keys (table {}, renamed in place or dropped in place, keeps its rows \
                             under {:?})",
                            crate::snapshot::shown_table(owner),
                            ddl.storage
                        ),
                    ));
                }
            }
        }
        let mut skip = BTreeSet::new();
        self.check_expectations(planned, &current, &mut skip, ops)
            .await?;
        let finished = self
            .check_records(planned, &unread, records, &current, ops, (id, ours.s))
            .await?;
        let mut leftovers = Vec::new();
        // What the session's budget leaves for leftovers, read in bulk (one get per 100) and
        // deleted one by one, beside the commit's own writes, the records it retires (and
        // their markers), the record's delete and what is taken already.
        let room = |ops: &Cell<u64>, taken: usize| -> usize {
            let spent = ops.get()
                + planned.writes.len() as u64
                + 2 * finished.len() as u64
                + 4
                + taken as u64;
            let room = self.max_ops.saturating_sub(spent);
            usize::try_from(room.saturating_sub(room.div_ceil(100))).unwrap_or(usize::MAX)
        };
        for (ddl, listed) in planned.ddl.iter().zip(ddl) {
            let (rows, entries) = listed?;
            match &ddl.rows_before {
                Some(before) => {
                    let now: BTreeMap<String, Option<Version>> = rows
                        .iter()
                        .map(|(name, listed)| (name.clone(), listed_version(name, listed)))
                        .collect();
                    let same = now.len() == before.len()
                        && before.iter().all(|(k, v)| now.get(k) == Some(&Some(*v)));
                    if !same {
                        return Err(Error::conflict(
                            &ddl.table,
                            "the table's rows (another commit changed them after this session \
                             read them)"
                                .to_owned(),
                        ));
                    }
                    // Entries no row names (left by a bug or a lost race) go with the table.
                    if ddl.dropped {
                        let planned_keys: BTreeSet<&String> =
                            planned.writes.iter().map(|w| &w.key).collect();
                        let mut names: Vec<String> = entries
                            .into_iter()
                            .map(|e| e.name)
                            .filter(|name| !planned_keys.contains(name))
                            .collect();
                        // Garbage (a reader or a claim takes an entry only where its row
                        // holds the value): deleted as far as the session's budget allows
                        // (entries of an index dropped in place on a large table are not in
                        // the commit's estimate); the rest stays, unread.
                        names.truncate(room(ops, leftovers.len()));
                        // In bulk (what each held is what an undo puts back).
                        for (name, e) in names.iter().zip(self.get_raw(ops, &names).await?) {
                            if let Some(e) = e {
                                leftovers.push((name.clone(), e));
                            }
                        }
                    }
                }
                None => {
                    // A new table: whatever an earlier table of the name left is garbage
                    // (unless a renamed table keeps its rows there: refused above). Rows
                    // must all go (the new table would read them); entries as far as the
                    // budget allows (never taken: their rows are gone).
                    let rows: Vec<String> = rows.into_iter().map(|(name, _)| name).collect();
                    let left = room(ops, leftovers.len());
                    if rows.len() > left {
                        return Err(Error::Storage {
                            message: format!(
                                "committing needs about {} more KV operations than this \
                                 session's budget leaves: an earlier table stored as {:?} \
                                 left {} rows there, which the new table must not read; \
                                 create it in a unit of work of its own",
                                rows.len() - left,
                                ddl.storage,
                                rows.len()
                            ),
                        });
                    }
                    let mut entries: Vec<String> = entries.into_iter().map(|e| e.name).collect();
                    entries.truncate(left - rows.len());
                    let names: Vec<String> = rows.into_iter().chain(entries).collect();
                    for (name, e) in names.iter().zip(self.get_raw(ops, &names).await?) {
                        if let Some(e) = e {
                            leftovers.push((name.clone(), e));
                        }
                    }
                }
            }
        }
        let before = current
            .into_iter()
            .filter(|(k, _)| planned.footprint.writes.contains(k))
            .collect();
        Ok(Checked {
            before,
            leftovers,
            skip,
            finished,
        })
    }

    /// Every key must hold what the session saw; a unique value taken by a row that still
    /// holds it is a UNIQUE violation.
    async fn check_expectations(
        &self,
        planned: &Planned,
        current: &BTreeMap<String, Option<KvEntry>>,
        skip: &mut BTreeSet<String>,
        ops: &Cell<u64>,
    ) -> Result<()> {
        let mut contested = Vec::new();
        for (key, (table, expect)) in &planned.expect {
            let found = current.get(key).cloned().flatten();
            match expect {
                Expect::Version(expected) => {
                    let now = match &found {
                        Some(e) if key.starts_with(&self.layout.schemas_prefix()) => {
                            Some(layout::decode::<SchemaRecord>(key, &e.value)?.v)
                        }
                        Some(e) => Some(entry_row(key, &e.value)?.v),
                        None => None,
                    };
                    if now != *expected {
                        return Err(Error::conflict(
                            table,
                            format!("a row or schema stored in KV ({key})"),
                        ));
                    }
                }
                Expect::Claim {
                    row,
                    moved,
                    storage,
                    ..
                } => {
                    if let Some(e) = found {
                        let owner = layout::decode::<UniqueRecord>(key, &e.value)?.k;
                        if &owner != row && !moved.contains(&owner) {
                            contested.push((
                                key,
                                table,
                                expect,
                                self.layout.row_key(storage, &owner)?,
                            ));
                        }
                    }
                }
                Expect::Entry => {}
                Expect::Release { row } => {
                    // Never delete an entry naming another row. (One that seems absent is
                    // deleted all the same: KV may only lag behind it.)
                    if let Some(e) = found {
                        if &layout::decode::<UniqueRecord>(key, &e.value)?.k != row {
                            skip.insert(key.clone());
                        }
                    }
                }
            }
        }
        if contested.is_empty() {
            return Ok(());
        }
        // A value held by another row: taken, unless that row no longer holds it (an entry
        // left stale, e.g. by a race across isolates).
        let owners: Vec<String> = contested.iter().map(|(.., k)| k.clone()).collect();
        let found = self.check_many(ops, &owners).await?;
        for ((uk, table, expect, owner_key), row) in contested.iter().zip(found) {
            let Expect::Claim {
                pos,
                column,
                entries,
                value,
                storage,
                ..
            } = expect
            else {
                continue;
            };
            let holds = match row {
                Some(e) => {
                    let rec = entry_row(owner_key, &e.value)?;
                    let held = rec
                        .d
                        .as_ref()
                        .and_then(|d| d.get(*pos))
                        .and_then(unique_key);
                    match held {
                        Some(v) => self.layout.unique_key(storage, entries, &v)? == **uk,
                        None => false,
                    }
                }
                None => false,
            };
            if holds {
                return Err(Error::Unique {
                    table: (*table).clone(),
                    column: column.clone(),
                    value: value.clone(),
                });
            }
        }
        Ok(())
    }

    /// The records of the journal that may overlap this commit (their metadata cannot rule
    /// it out): to be read.
    fn candidates(
        &self,
        planned: &Planned,
        ours: &CommitRecord,
        journal: Vec<super::backend::ListedKey>,
    ) -> Vec<String> {
        let prefix = self.layout.journal_prefix();
        let mut unread = Vec::new();
        for listed in journal {
            let Some(stamp) = stamp_of(&listed.name, &prefix) else {
                continue;
            };
            if stamp == ours.s || self.skipped.borrow().contains(&listed.name) {
                continue;
            }
            {
                let log = self.log.borrow();
                if log.finished(stamp) {
                    drop(log);
                    self.record_to_delete(listed.name.clone());
                    continue;
                }
                if log.unsettled(stamp) {
                    continue; // a commit of this isolate: its claim does not overlap ours
                }
            }
            let meta = listed
                .metadata
                .as_ref()
                .and_then(|m| serde_json::from_value::<RecordMeta>(m.clone()).ok());
            if meta.and_then(|m| m.may_overlap(&planned.footprint)) == Some(false) {
                continue;
            }
            unread.push(listed.name);
        }
        unread
    }

    /// No other commit's record may overlap this one, unless that commit is finished: past
    /// its writer's deadline (it can no longer write or undo) and applied in full (every key
    /// written), while this session read what it wrote (the check compares versions). Those
    /// records are returned, to be deleted before this commit writes. An abandoned one is
    /// settled first.
    async fn check_records(
        &self,
        planned: &Planned,
        unread: &[String],
        records: Vec<Option<KvEntry>>,
        current: &BTreeMap<String, Option<KvEntry>>,
        ops: &Cell<u64>,
        (id, ours_stamp): (u64, u64),
    ) -> Result<Vec<String>> {
        let mut finished = Vec::new();
        let table = planned.table_name();
        for (key, entry) in unread.iter().zip(records) {
            let Some(entry) = entry else {
                // Gone since the listing: that commit may have finished writing after this
                // commit's check read its keys.
                return Err(Error::conflict(
                    &table,
                    format!("a row (of a commit that finished meanwhile, record {key})"),
                ));
            };
            let record = match serde_json::from_str::<CommitRecord>(&entry.value) {
                Ok(r) if r.f == FORMAT => r,
                Ok(_) => {
                    self.skip_record(key, "written by an older gluebind (another format)");
                    continue;
                }
                Err(e) => {
                    self.skip_record(key, &format!("not a gluebind commit record: {e}"));
                    continue;
                }
            };
            if !record.overlaps(&planned.footprint) {
                continue;
            }
            if self.now_ms().saturating_sub(record.at) >= REPLAY_AFTER_MS {
                let detail = match self.settle_remote(&record, ops, id, ours_stamp).await {
                    Ok(true) => {
                        format!("a row (of a commit cut off half-way, settled now from {key})")
                    }
                    Ok(false) => {
                        format!("a row (of a commit cut off half-way, record {key}, being settled)")
                    }
                    Err(e) => format!("a row (of a commit cut off half-way, record {key}: {e})"),
                };
                return Err(Error::conflict(&table, detail));
            }
            let past_deadline = self.now_ms().saturating_sub(record.at) > LEASE_MS;
            if past_deadline && self.applied_where_read(&record, current, ops).await? {
                finished.push(key.clone());
                if record.deletes_only() {
                    finished.push(journal::marker_key(key));
                }
                continue;
            }
            return Err(Error::conflict(
                &table,
                format!("a row (of a commit still being applied, record {key})"),
            ));
        }
        Ok(finished)
    }

    /// True when every key of `record` carries what its commit wrote (read now, after this
    /// commit's record: see [`KvStorage::check_records`] for when that is enough).
    async fn applied_where_read(
        &self,
        record: &CommitRecord,
        current: &BTreeMap<String, Option<KvEntry>>,
        ops: &Cell<u64>,
    ) -> Result<bool> {
        let missing: Vec<String> = record
            .w
            .iter()
            .filter(|w| !current.contains_key(&w.k))
            .map(|w| w.k.clone())
            .collect();
        let found = self.check_many(ops, &missing).await?;
        let more: BTreeMap<&String, Option<KvEntry>> = missing.iter().zip(found).collect();
        Ok(record.w.iter().all(|w| {
            let now = current
                .get(&w.k)
                .cloned()
                .or_else(|| more.get(&w.k).cloned())
                .flatten();
            journal::key_state(w, record.s, now.as_ref()) == journal::KeyState::Written
        }))
    }
}

/// What a commit's check found.
pub(super) struct Checked {
    /// What each key the commit writes holds now.
    pub before: BTreeMap<String, Option<KvEntry>>,
    /// Keys no one owns any more (an earlier table's rows and entries) to delete first.
    pub leftovers: Vec<(String, KvEntry)>,
    /// Planned writes to leave out (a unique entry no longer the releasing row's).
    pub skip: BTreeSet<String>,
    /// Records (and markers) of finished commits this one builds on: deleted before it
    /// writes, so that no settlement judges them on keys this commit changes.
    pub finished: Vec<String>,
}

fn listed_version(name: &str, listed: &Listed) -> Option<Version> {
    match listed {
        Listed::Local(e) => entry_row(name, &e.value).ok().map(|r| r.v),
        Listed::Kv(Some(meta)) => layout::decode_metadata::<layout::RowRecord>(name, meta)
            .ok()
            .map(|r| r.v),
        Listed::Kv(None) => None,
    }
}
