//! A session's write-set as KV keys: what the commit writes, what each key held as the
//! session saw it (what a rollback puts back), and what the commit's check must find in KV.

use super::{
    backend::KvEntry,
    journal::Footprint,
    layout::{self, RowRecord, SchemaRecord, UniqueRecord},
    store::KvStorage,
};
use crate::{
    error::{Error, Result},
    session::store::SessionStore,
    snapshot::{unique_key, StoredRow, Table, Version},
    storage::validate::render,
};
use gluesql_core::prelude::Key;
use std::collections::{BTreeMap, BTreeSet};

/// One key a commit writes.
#[derive(Debug, Clone)]
pub(super) struct PlannedWrite {
    pub key: String,
    /// What the key held as the session saw it (`None`: absent).
    pub was: Option<KvEntry>,
    /// What the commit leaves (`None`: deleted).
    pub put: Option<KvEntry>,
    /// A unique-index entry (its state is its owner).
    pub unique: bool,
}

/// What the commit's check must find under a key.
#[derive(Debug, Clone)]
pub(super) enum Expect {
    /// A row or a schema: the version the session read (`None`: absent).
    Version(Option<Version>),
    /// A unique value the commit takes: free, already `row`'s, or owned by a row that gives
    /// it up in this commit (`moved`).
    Claim {
        row: Key,
        moved: BTreeSet<Key>,
        pos: usize,
        column: String,
        /// The name the column's entries are stored under (`column_notes::entries_name`).
        entries: String,
        value: String,
        /// The name the table's keys use (`Table::stored_as`).
        storage: String,
    },
    /// A unique value the commit gives up: owned by `row` (or gone).
    Release { row: Key },
    /// A secondary-index entry: nothing to check (its key names its row, whose own check
    /// covers it); read so that its state before the commit is known.
    Entry,
}

/// A table the commit creates, alters or drops.
#[derive(Debug, Clone)]
pub(super) struct Ddl {
    pub table: String,
    /// The name its keys use (`Table::stored_as`).
    pub storage: String,
    /// Row key → version of every row the session saw before (`None`: a new table).
    pub rows_before: Option<BTreeMap<String, Version>>,
    /// True when the table is dropped.
    pub dropped: bool,
}

impl Ddl {
    /// True for a table the commit creates (its keys must be no other table's).
    pub fn creates(&self) -> bool {
        self.rows_before.is_none() && !self.dropped
    }
}

/// A planned commit.
#[derive(Debug, Default)]
pub(super) struct Planned {
    pub writes: Vec<PlannedWrite>,
    /// Key → (table, what the check must find).
    pub expect: BTreeMap<String, (String, Expect)>,
    pub footprint: Footprint,
    pub ddl: Vec<Ddl>,
}

impl Planned {
    /// A table the commit writes, to name in a conflict.
    pub fn table_name(&self) -> String {
        self.footprint
            .tables
            .iter()
            .next()
            .cloned()
            .unwrap_or_default()
    }
}

fn encode_unique(row: &Key, stamp: Version) -> Result<String> {
    serde_json::to_string(&UniqueRecord {
        k: row.clone(),
        v: stamp,
    })
    .map_err(|e| Error::Storage {
        message: format!("cannot encode unique entry: {e}"),
    })
}

fn unique_entry(row: &Key, stamp: Version) -> Result<KvEntry> {
    Ok(KvEntry {
        value: encode_unique(row, stamp)?,
        metadata: None,
    })
}

fn schema_entry(table: &Table, version: Version) -> Result<KvEntry> {
    let rec = SchemaRecord {
        schema: gluesql_core::data::Schema::clone(&table.schema),
        v: version,
        x: table.backed.iter().cloned().collect(),
        at: table.stored_as.as_deref().map(str::to_owned),
    };
    let value = serde_json::to_string(&rec).map_err(|e| Error::Storage {
        message: format!("cannot encode schema of {}: {e}", table.schema.table_name),
    })?;
    Ok(KvEntry {
        value,
        metadata: None,
    })
}

/// Unique entries a commit takes and gives up, collected over its rows.
#[derive(Default)]
struct Uniques {
    claims: BTreeMap<String, (String, Expect)>,
    releases: BTreeMap<String, (String, Key)>,
    /// Entry key → rows that held the value before this commit and no longer do.
    moved_from: BTreeMap<String, BTreeSet<Key>>,
}

impl Uniques {
    fn release(&mut self, uk: String, table: &str, row: &Key) {
        self.moved_from
            .entry(uk.clone())
            .or_default()
            .insert(row.clone());
        // Taken by another row of this commit already (a swap): the claim's write replaces
        // the entry, and its `was` names this row (from `moved_from`). A release kept beside
        // it would delete the entry the claim puts.
        if self.claims.contains_key(&uk) {
            return;
        }
        self.releases.insert(uk, (table.to_owned(), row.clone()));
    }

    #[allow(clippy::too_many_arguments)]
    fn claim(
        &mut self,
        uk: String,
        (table, storage): (&str, &str),
        row: &Key,
        pos: usize,
        (column, entries): (&str, &str),
        value: String,
    ) {
        self.releases.remove(&uk);
        self.claims.insert(
            uk,
            (
                table.to_owned(),
                Expect::Claim {
                    row: row.clone(),
                    moved: BTreeSet::new(),
                    pos,
                    column: column.to_owned(),
                    entries: entries.to_owned(),
                    value,
                    storage: storage.to_owned(),
                },
            ),
        );
    }
}

impl KvStorage {
    fn row_entry(&self, key: &Key, row: &StoredRow, version: Version) -> Result<KvEntry> {
        let rec = RowRecord {
            k: key.clone(),
            v: version,
            d: Some(row.values.as_ref().clone()),
        };
        let (value, metadata) = layout::encode_row(&rec)?;
        Ok(KvEntry {
            value,
            metadata: Some(metadata),
        })
    }

    /// Plans the commit of `ws`, its keys stamped `stamp`. Encodes every value, so that one
    /// KV cannot hold is refused before anything is written.
    ///
    /// # Errors
    /// [`Error::Storage`] for a key or value beyond KV's limits; [`Error::Conflict`] when a
    /// table whose rows the session wrote is gone from its snapshot.
    pub(super) fn plan(&self, ws: &SessionStore, stamp: Version) -> Result<Planned> {
        let mut planned = Planned::default();
        let mut uniques = Uniques::default();
        let push = |planned: &mut Planned, key: String, was, put| {
            planned.footprint.writes.insert(key.clone());
            planned.writes.push(PlannedWrite {
                key,
                was,
                put,
                unique: false,
            });
        };

        for name in &ws.writes.tables {
            let key = self.layout.schema_key(name)?;
            let before = ws.base.tables.get(name);
            let after = ws.db.tables.get(name);
            planned.footprint.tables.insert(name.clone());
            planned.footprint.whole.insert(name.clone());
            planned.expect.insert(
                key.clone(),
                (
                    name.clone(),
                    Expect::Version(before.map(|t| t.schema_version)),
                ),
            );
            let mut rows_before = None;
            // Where the old table's keys and the new one's are (apart when a table renamed in
            // place is dropped and one of its old name created).
            let at_before = before.map(Table::storage_name);
            let at_after = after.map(Table::storage_name);
            let same = at_before.is_some() && at_before == at_after;
            if let (Some(old), Some(at)) = (before, at_before) {
                let mut versions = BTreeMap::new();
                // The whole old table goes (rows and unique entries), then the new one is
                // written in full.
                // The entries the old table's rows hold: its UNIQUE columns' and those UNIQUE
                // columns dropped in place left (a rewrite leaves their columns out, and their
                // name may be taken again).
                let released: Vec<(usize, String)> = old
                    .unique_entries()
                    .into_iter()
                    .map(|(p, _, e)| (p, e))
                    .chain(crate::snapshot::dropped_unique_entries(&old.schema))
                    .collect();
                for (k, row) in &old.rows {
                    let row_key = self.layout.row_key(at, k)?;
                    versions.insert(row_key.clone(), row.version);
                    let was = Some(self.row_entry(k, row, row.version)?);
                    if !same || after.is_none_or(|t| !t.rows.contains_key(k)) {
                        planned.expect.insert(
                            row_key.clone(),
                            (name.clone(), Expect::Version(Some(row.version))),
                        );
                        push(&mut planned, row_key, was, None);
                    }
                    for (pos, entries) in &released {
                        if let Some(v) = row.values.get(*pos).and_then(unique_key) {
                            uniques.release(self.layout.unique_key(at, entries, &v)?, name, k);
                        }
                    }
                }
                rows_before = Some(versions);
            }
            // (A table created and dropped in this unit of work has no keys to check.)
            if before.is_some() || after.is_some() {
                planned.ddl.push(Ddl {
                    table: name.clone(),
                    storage: at_after.or(at_before).unwrap_or(name).to_owned(),
                    rows_before: rows_before.filter(|_| same || after.is_none()),
                    dropped: after.is_none(),
                });
            }
            if let (Some(at), false, Some(_)) = (at_before, same, after) {
                // The old table's keys, apart from the new one's: checked as a drop's.
                planned.ddl.push(Ddl {
                    table: name.clone(),
                    storage: at.to_owned(),
                    rows_before: rows_before_of(self, before)?,
                    dropped: true,
                });
            }
            let Some(table) = after else {
                push(
                    &mut planned,
                    key,
                    before
                        .map(|t| schema_entry(t, t.schema_version))
                        .transpose()?,
                    None,
                );
                continue;
            };
            push(
                &mut planned,
                key,
                before
                    .map(|t| schema_entry(t, t.schema_version))
                    .transpose()?,
                Some(schema_entry(table, stamp)?),
            );
            let at = table.storage_name();
            for (k, row) in &table.rows {
                let row_key = self.layout.row_key(at, k)?;
                let old = before.filter(|_| same).and_then(|t| t.rows.get(k));
                planned.expect.insert(
                    row_key.clone(),
                    (name.clone(), Expect::Version(old.map(|r| r.version))),
                );
                let was = old.map(|r| self.row_entry(k, r, r.version)).transpose()?;
                push(
                    &mut planned,
                    row_key,
                    was,
                    Some(self.row_entry(k, row, stamp)?),
                );
                for (pos, column, entries) in table.unique_entries() {
                    if let Some(v) = row.values.get(pos).and_then(unique_key) {
                        let uk = self.layout.unique_key(at, &entries, &v)?;
                        let value = render(&row.values[pos]);
                        uniques.claim(uk, (name, at), k, pos, (&column, &entries), value);
                    }
                }
            }
        }

        // Tables renamed in place: the schema record moves to the new name, saying where the
        // rows are (`SchemaRecord::at`); the rows and their entries stay.
        for (new, old) in &ws.writes.renamed {
            let (Some(before), Some(after)) = (ws.base.tables.get(old), ws.db.tables.get(new))
            else {
                return Err(Error::Conflict {
                    table: old.clone(),
                    detail: "the table (renamed)".to_owned(),
                });
            };
            let (old_key, new_key) = (self.layout.schema_key(old)?, self.layout.schema_key(new)?);
            planned.footprint.tables.insert(old.clone());
            planned.footprint.tables.insert(new.clone());
            planned.expect.insert(
                old_key.clone(),
                (old.clone(), Expect::Version(Some(before.schema_version))),
            );
            planned
                .expect
                .insert(new_key.clone(), (new.clone(), Expect::Version(None)));
            push(
                &mut planned,
                old_key,
                Some(schema_entry(before, before.schema_version)?),
                None,
            );
            push(
                &mut planned,
                new_key,
                None,
                Some(schema_entry(after, stamp)?),
            );
        }

        // Schemas changed in place (indexes, columns added or renamed): the schema record
        // alone (the rows stay), if it still has the version the session saw.
        for name in ws.writes.in_place_only() {
            let (Some(before), Some(after)) = (ws.base.tables.get(name), ws.db.tables.get(name))
            else {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table's schema".to_owned(),
                });
            };
            let key = self.layout.schema_key(name)?;
            planned.footprint.tables.insert(name.clone());
            planned.expect.insert(
                key.clone(),
                (name.clone(), Expect::Version(Some(before.schema_version))),
            );
            push(
                &mut planned,
                key,
                Some(schema_entry(before, before.schema_version)?),
                Some(schema_entry(after, stamp)?),
            );
        }

        for (name, keys) in &ws.writes.rows {
            if ws.writes.tables.contains(name) {
                continue;
            }
            let (Some(base), Some(mine)) = (ws.base.tables.get(name), ws.db.tables.get(name))
            else {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table (dropped)".to_owned(),
                });
            };
            let schema_key = self.layout.schema_key(name)?;
            planned.footprint.tables.insert(name.clone());
            planned.footprint.relies.insert(schema_key.clone());
            planned.expect.insert(
                schema_key,
                (name.clone(), Expect::Version(Some(base.schema_version))),
            );
            let columns = mine.unique_entries();
            // UNIQUE columns dropped in place: a row written since holds NULL there, so the
            // entry its old value kept goes with the write.
            let stale = crate::snapshot::dropped_unique_entries(&mine.schema);
            let at = mine.storage_name();
            for k in keys {
                let row_key = self.layout.row_key(at, k)?;
                let old = base.rows.get(k);
                planned.expect.insert(
                    row_key.clone(),
                    (name.clone(), Expect::Version(old.map(|r| r.version))),
                );
                let new = mine.rows.get(k);
                let was = old.map(|r| self.row_entry(k, r, r.version)).transpose()?;
                let put = new.map(|r| self.row_entry(k, r, stamp)).transpose()?;
                push(&mut planned, row_key, was, put);
                for (pos, column, entries) in &columns {
                    let old_v = old.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    let new_v = new.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    if old_v == new_v {
                        continue;
                    }
                    if let Some(v) = old_v {
                        uniques.release(self.layout.unique_key(at, entries, &v)?, name, k);
                    }
                    if let (Some(v), Some(row)) = (new_v, new) {
                        let uk = self.layout.unique_key(at, entries, &v)?;
                        let value = render(&row.values[*pos]);
                        uniques.claim(uk, (name, at), k, *pos, (column, entries), value);
                    }
                }
                for (pos, entries) in &stale {
                    let old_v = old.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    let new_v = new.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    if let (Some(v), true) = (old_v.as_ref(), old_v != new_v) {
                        uniques.release(self.layout.unique_key(at, entries, v)?, name, k);
                    }
                }
            }
        }

        let Uniques {
            claims,
            releases,
            moved_from,
        } = uniques;
        for (uk, (table, mut expect)) in claims {
            let Expect::Claim { row, moved, .. } = &mut expect else {
                unreachable!("claims expect a claim")
            };
            let prior = moved_from.get(&uk);
            if let Some(from) = prior {
                moved.extend(from.iter().filter(|k| *k != row).cloned());
            }
            // The value's holder before this commit: the row itself (a table rewritten by
            // DDL), a row giving it up in this commit, or none.
            let holder = match prior {
                Some(from) if from.contains(row) => Some(row.clone()),
                _ => moved.iter().next().cloned(),
            };
            let was = holder.map(|owner| unique_entry(&owner, 0)).transpose()?;
            let put = Some(unique_entry(row, stamp)?);
            planned.footprint.writes.insert(uk.clone());
            planned.writes.push(PlannedWrite {
                key: uk.clone(),
                was,
                put,
                unique: true,
            });
            planned.expect.insert(uk, (table, expect));
        }
        for (uk, (table, row)) in releases {
            planned.footprint.writes.insert(uk.clone());
            planned.writes.push(PlannedWrite {
                key: uk.clone(),
                was: Some(unique_entry(&row, 0)?),
                put: None,
                unique: true,
            });
            planned.expect.insert(uk, (table, Expect::Release { row }));
        }
        self.plan_index_entries(ws, stamp, &mut planned)?;
        self.plan_reads(ws, &mut planned)?;
        Ok(planned)
    }

    /// The secondary-index entries the commit puts and deletes (see `layout.rs`): for each
    /// row it writes, the entries of the indexes its table's entries back, as the row held
    /// them before and holds them after; for every row of a table rewritten whole or whose
    /// index got entries in this commit (`CREATE INDEX` on a small table).
    fn plan_index_entries(
        &self,
        ws: &SessionStore,
        stamp: Version,
        planned: &mut Planned,
    ) -> Result<()> {
        let names: BTreeSet<&String> = ws
            .writes
            .tables
            .iter()
            .chain(ws.writes.in_place.iter())
            .chain(ws.writes.rows.keys())
            .collect();
        // Entries dropped indexes may delete, beside what new ones write.
        let mut room = ws.back_indexes.saturating_sub(ws.backfills());
        for name in names {
            let before = ws.base.tables.get(name);
            let after = ws.db.tables.get(name);
            let backed = |t: Option<&Table>| t.is_some_and(|t| !t.backed.is_empty());
            if !backed(before) && !backed(after) {
                continue;
            }
            // Indexes whose entries start in this commit (created, or created again under
            // their name) need one for every row, and the rows must be those the session saw
            // (a row another commit writes meanwhile would get none): the table's rows are
            // checked unchanged, as for a rewrite. Indexes whose entries end (dropped) take
            // them along where the table is loaded whole.
            let started = after.is_some_and(|a| {
                a.backed
                    .iter()
                    .any(|ix| before.is_none_or(|b| !b.same_backed_index(a, ix)))
            });
            // (Within the session's budget for entries, beside its new indexes': else they
            // stay in KV, never read again.)
            let ended_indexes = before.map_or(0, |b| {
                b.backed
                    .iter()
                    .filter(|ix| after.is_none_or(|a| !b.same_backed_index(a, ix)))
                    .count()
            });
            let ended = before.is_some_and(|b| {
                let deletes = b.rows.len() * ended_indexes;
                let fits = b.complete && ended_indexes > 0 && deletes <= room;
                if fits {
                    room -= deletes;
                }
                fits
            });
            let rewritten = ws.writes.tables.contains(name);
            if started && !rewritten {
                let whole = |t: Option<&Table>| t.is_some_and(|t| t.complete);
                let (Some(b), true) = (before, whole(before) && whole(after)) else {
                    return Err(Error::Conflict {
                        table: name.clone(),
                        detail: "the table's rows (an index needs them all loaded)".to_owned(),
                    });
                };
                planned.footprint.whole.insert(name.clone());
                planned.ddl.push(Ddl {
                    table: name.clone(),
                    storage: b.storage_name().to_owned(),
                    rows_before: rows_before_of(self, Some(b))?,
                    dropped: false,
                });
            }
            let keys: BTreeSet<&Key> = if rewritten || started || ended {
                before
                    .into_iter()
                    .chain(after)
                    .flat_map(|t| t.rows.keys())
                    .collect()
            } else {
                ws.writes.rows.get(name).into_iter().flatten().collect()
            };
            let entries = |t: Option<&Table>, k: &Key| -> Result<BTreeSet<String>> {
                let Some((t, row)) = t.and_then(|t| Some((t, t.rows.get(k)?))) else {
                    return Ok(BTreeSet::new());
                };
                t.index_values(&row.values)
                    .into_iter()
                    .map(|(index, created, value)| {
                        self.layout
                            .index_key(t.storage_name(), index, created, &value, k)
                    })
                    .collect()
            };
            for k in keys {
                let (old, new) = (entries(before, k)?, entries(after, k)?);
                let entry = |stamp| -> Result<KvEntry> {
                    let (value, metadata) = layout::encode_index_entry(k, stamp)?;
                    Ok(KvEntry {
                        value,
                        metadata: Some(metadata),
                    })
                };
                let gone = old.difference(&new).map(|key| (key, Some(entry(0)), None));
                let added = new
                    .difference(&old)
                    .map(|key| (key, None, Some(entry(stamp))));
                for (key, was, put) in gone.chain(added) {
                    planned.footprint.writes.insert(key.clone());
                    planned.writes.push(PlannedWrite {
                        key: key.clone(),
                        was: was.transpose()?,
                        put: put.transpose()?,
                        // Its state is its owner, as a unique entry's (a delete's `was` does
                        // not know the stamp that put it).
                        unique: true,
                    });
                    planned
                        .expect
                        .insert(key.clone(), (name.clone(), Expect::Entry));
                }
            }
        }
        Ok(())
    }

    /// The serializable part (empty under snapshot isolation, whose commit clears the reads):
    /// every row read by key and not written must still have the version the session saw
    /// (checked in the same bulk read as the writes' keys), with its table's schema; every
    /// table scanned must not be written by a commit this one does not see — checked against
    /// this isolate's log exactly, and against other isolates' records still in the journal
    /// (see `local/` and `check.rs`).
    fn plan_reads(&self, ws: &SessionStore, planned: &mut Planned) -> Result<()> {
        let reads = ws.reads.borrow();
        for name in &reads.tables {
            if !ws.writes.tables.contains(name) {
                planned.footprint.scans.insert(name.clone());
            }
        }
        for (name, keys) in &reads.rows {
            if ws.writes.tables.contains(name) {
                continue; // rewritten whole: checked as a write
            }
            let Some(base) = ws.base.tables.get(name) else {
                continue;
            };
            let schema_key = self.layout.schema_key(name)?;
            if !planned.expect.contains_key(&schema_key) {
                planned.footprint.reads.insert(schema_key.clone());
                planned.expect.insert(
                    schema_key,
                    (name.clone(), Expect::Version(Some(base.schema_version))),
                );
            }
            for k in keys {
                // Known rows only (a read that found nothing to load found the key absent).
                let Some(seen) = base.lookup(k) else {
                    continue;
                };
                let row_key = self.layout.row_key(base.storage_name(), k)?;
                if planned.expect.contains_key(&row_key) {
                    continue; // written: checked as a write
                }
                planned.footprint.reads.insert(row_key.clone());
                planned.expect.insert(
                    row_key,
                    (name.clone(), Expect::Version(seen.map(|r| r.version))),
                );
            }
        }
        Ok(())
    }
}

/// Row key → version of every row of `table` as the session saw it.
fn rows_before_of(
    kv: &KvStorage,
    table: Option<&Table>,
) -> Result<Option<BTreeMap<String, Version>>> {
    let Some(table) = table else {
        return Ok(None);
    };
    let mut versions = BTreeMap::new();
    for (k, row) in &table.rows {
        versions.insert(kv.layout.row_key(table.storage_name(), k)?, row.version);
    }
    Ok(Some(versions))
}
