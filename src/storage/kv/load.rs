//! Loading on demand: what a statement missed, read from KV as of the session's snapshot, and
//! how it fills the session (and the isolate cache).

use super::{
    layout::{self, RowRecord, SchemaRecord, UniqueRecord},
    local::Lsn,
    store::{KvStorage, Listed},
};
use crate::{
    error::{Error, Result},
    session::store::{Miss, SessionStore},
    snapshot::{unique_key, Database, StoredRow, Table, UniqueLookup, Version},
};
use gluesql_core::prelude::Key;
use std::{cell::Cell, collections::BTreeSet, sync::Arc};

/// What a load brought back, applied to the isolate cache and to the session.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    schemas: Vec<(String, Option<(gluesql_core::data::Schema, Version)>)>,
    all_schemas: bool,
    rows: Vec<(String, Key, Option<StoredRow>)>,
    complete: Vec<(String, Vec<(Key, StoredRow)>)>,
    uniques: Vec<(String, usize, Key, Option<Key>)>,
}

impl Patch {
    /// Fills the isolate cache: as [`Patch::absorb_session`], except that a complete load of
    /// a table also drops cached rows KV no longer lists (deleted elsewhere).
    pub fn absorb(&self, db: &mut Database, own: Option<&SessionStore>) {
        self.absorb_with(db, own, true);
    }

    /// Fills a session's snapshot (`own`: the session, whose writes are never overridden).
    /// Rows the snapshot already holds stay, even where a table's listing lacks them: the
    /// session has seen them (repeatable reads), and KV's `list` may lag behind its `get`.
    /// A row deleted meanwhile elsewhere then surfaces as a conflict at commit, never as a
    /// write that silently matched nothing.
    pub fn absorb_session(&self, db: &mut Database, own: Option<&SessionStore>) {
        self.absorb_with(db, own, false);
    }

    /// Fills in what `db` does not know yet (it never overrides known data, so a session's own
    /// writes and earlier reads stay as they are). `own` holds keys the session wrote.
    fn absorb_with(&self, db: &mut Database, own: Option<&SessionStore>, drop_unlisted: bool) {
        for (name, schema) in &self.schemas {
            if db.tables.contains_key(name) || db.absent_tables.contains(name) {
                continue;
            }
            match schema {
                Some((schema, v)) => {
                    db.tables
                        .insert(name.clone(), Table::partial(schema.clone(), *v));
                }
                None => {
                    db.absent_tables.insert(name.clone());
                }
            }
        }
        if self.all_schemas {
            db.schemas_complete = true;
            db.absent_tables = im::OrdSet::new();
        }
        for (name, key, row) in &self.rows {
            let Some(table) = db.tables.get_mut(name) else {
                continue;
            };
            if table.lookup(key).is_some() {
                continue;
            }
            match row {
                Some(row) => {
                    table.rows.insert(key.clone(), row.clone());
                }
                None => {
                    table.absent.insert(key.clone());
                }
            }
        }
        for (name, rows) in &self.complete {
            let Some(table) = db.tables.get_mut(name) else {
                continue;
            };
            if table.complete {
                continue;
            }
            let written = own.and_then(|ws| ws.writes.rows.get(name));
            let is_own = |k: &Key| written.is_some_and(|w| w.contains(k));
            let listed: BTreeSet<&Key> = rows.iter().map(|(k, _)| k).collect();
            // Rows gone from KV meanwhile (and not the session's own) disappear from the cache.
            let stale: Vec<Key> = table
                .rows
                .keys()
                .filter(|k| drop_unlisted && !listed.contains(k) && !is_own(k))
                .cloned()
                .collect();
            for key in stale {
                table.rows.remove(&key);
            }
            for (key, row) in rows {
                if table.rows.contains_key(key) || is_own(key) {
                    continue;
                }
                table.rows.insert(key.clone(), row.clone());
            }
            table.complete = true;
            table.absent = im::OrdSet::new();
            // The full row set determines the unique index.
            let columns = table.unique_columns();
            let mut index = crate::snapshot::UniqueIndex::new();
            for (key, row) in &table.rows {
                for (pos, _) in &columns {
                    if let Some(v) = row.values.get(*pos).and_then(unique_key) {
                        index.insert((*pos, v), key.clone());
                    }
                }
            }
            table.unique = index;
            table.unique_complete = true;
            table.unique_absent = im::OrdSet::new();
        }
        for (name, pos, value, owner) in &self.uniques {
            let Some(table) = db.tables.get_mut(name) else {
                continue;
            };
            if let UniqueLookup::Unknown = table.unique_lookup(*pos, value) {
                table.set_unique(*pos, value.clone(), owner.clone());
            }
        }
    }
}

pub(super) fn entry_row(key_name: &str, value: &str) -> Result<RowRecord> {
    layout::decode::<RowRecord>(key_name, value)
}

pub(super) fn stored(record: RowRecord, key_name: &str) -> Result<StoredRow> {
    let values = record.d.ok_or_else(|| Error::Storage {
        message: format!("KV row {key_name:?} has no values"),
    })?;
    Ok(StoredRow {
        values: Arc::new(values),
        version: record.v,
    })
}

impl KvStorage {
    /// Loads what the misses ask for, as of the session's snapshot `as_of`.
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails or holds data not in gluebind's layout;
    /// [`Error::Conflict`] when the snapshot is too old to be read consistently.
    pub async fn load(&self, misses: &[Miss], ops: &Cell<u64>, as_of: Lsn) -> Result<Patch> {
        let mut patch = Patch::default();
        let mut schema_keys = Vec::new();
        let mut row_keys = Vec::new();
        let mut unique_keys = Vec::new();
        for miss in misses {
            match miss {
                Miss::Schema(name) => {
                    schema_keys.push((name.clone(), self.layout.schema_key(name)?));
                }
                Miss::AllSchemas => {
                    let prefix = self.layout.schemas_prefix();
                    let listed = self.list_as_of(ops, &prefix, as_of, false).await?;
                    let mut names = Vec::new();
                    for (name, listed) in listed {
                        match listed {
                            Listed::Local(entry) => {
                                let rec: SchemaRecord = layout::decode(&name, &entry.value)?;
                                patch.schemas.push((
                                    rec.schema.table_name.clone(),
                                    Some((rec.schema, rec.v)),
                                ));
                            }
                            Listed::Kv(_) => names.push(name),
                        }
                    }
                    for (name, entry) in names.iter().zip(self.get_many(ops, &names, as_of).await?)
                    {
                        if let Some(entry) = entry {
                            let rec: SchemaRecord = layout::decode(name, &entry.value)?;
                            patch
                                .schemas
                                .push((rec.schema.table_name.clone(), Some((rec.schema, rec.v))));
                        }
                    }
                    patch.all_schemas = true;
                }
                Miss::Row(table, key) => {
                    row_keys.push((table.clone(), key.clone(), self.layout.row_key(table, key)?));
                }
                Miss::Table(table) => {
                    let rows = self.load_table(table, ops, as_of).await?;
                    patch.complete.push((table.clone(), rows));
                }
                Miss::Unique {
                    table,
                    pos,
                    column,
                    value,
                } => unique_keys.push((
                    table.clone(),
                    *pos,
                    value.clone(),
                    self.layout.unique_key(table, column, value)?,
                )),
            }
        }
        // Point reads share bulk gets (one operation per 100 keys).
        let names: Vec<String> = schema_keys
            .iter()
            .map(|(_, k)| k.clone())
            .chain(row_keys.iter().map(|(_, _, k)| k.clone()))
            .chain(unique_keys.iter().map(|(.., k)| k.clone()))
            .collect();
        if names.is_empty() {
            return Ok(patch);
        }
        let mut entries = self.get_many(ops, &names, as_of).await?.into_iter();
        for (name, key_name) in schema_keys {
            let schema = match entries.next().flatten() {
                Some(e) => {
                    let rec: SchemaRecord = layout::decode(&key_name, &e.value)?;
                    Some((rec.schema, rec.v))
                }
                None => None,
            };
            patch.schemas.push((name, schema));
        }
        for (table, key, key_name) in row_keys {
            let row = match entries.next().flatten() {
                Some(e) => Some(stored(entry_row(&key_name, &e.value)?, &key_name)?),
                None => None,
            };
            patch.rows.push((table, key, row));
        }
        let mut owners = Vec::new();
        for (table, pos, value, key_name) in unique_keys {
            let owner = match entries.next().flatten() {
                Some(e) => Some(layout::decode::<UniqueRecord>(&key_name, &e.value)?.k),
                None => None,
            };
            patch.uniques.push((table, pos, value, owner));
        }
        // An entry names its owner; the value is taken only if that row still holds it (an
        // entry can outlive its row after a race across isolates: the commit check judges it
        // the same way).
        for (table, _, _, owner) in &patch.uniques {
            if let Some(owner) = owner {
                owners.push(self.layout.row_key(table, owner)?);
            }
        }
        if !owners.is_empty() {
            let rows = self.get_many(ops, &owners, as_of).await?;
            let mut rows = owners.iter().zip(rows);
            for (table, pos, value, owner) in &mut patch.uniques {
                if owner.is_none() {
                    continue;
                }
                let (name, row) = rows.next().expect("one row per owner");
                let row = row
                    .map(|e| stored(entry_row(name, &e.value)?, name))
                    .transpose()?;
                let holds = row
                    .as_ref()
                    .and_then(|r| r.values.get(*pos))
                    .and_then(unique_key)
                    .is_some_and(|v| v == *value);
                if !holds {
                    *owner = None;
                }
                if let Some(key) = owner.clone() {
                    patch.rows.push((table.clone(), key, row));
                }
            }
        }
        Ok(patch)
    }

    /// Every row of a table as of `as_of`: one `list` per 1000 rows, plus bulk gets for rows
    /// too large to be inlined in metadata.
    async fn load_table(
        &self,
        table: &str,
        ops: &Cell<u64>,
        as_of: Lsn,
    ) -> Result<Vec<(Key, StoredRow)>> {
        let prefix = self.layout.rows_prefix(table);
        let listed = self.list_as_of(ops, &prefix, as_of, false).await?;
        let mut rows = Vec::with_capacity(listed.len());
        let mut large = Vec::new();
        for (name, listed) in listed {
            let record = match listed {
                Listed::Local(entry) => Some(entry_row(&name, &entry.value)?),
                Listed::Kv(Some(meta)) => Some(layout::decode_metadata::<RowRecord>(&name, &meta)?),
                Listed::Kv(None) => None,
            };
            match record {
                Some(rec) if rec.d.is_some() => {
                    let k = rec.k.clone();
                    rows.push((k, stored(rec, &name)?));
                }
                _ => large.push(name),
            }
        }
        for (name, entry) in large.iter().zip(self.get_many(ops, &large, as_of).await?) {
            if let Some(entry) = entry {
                let rec = entry_row(name, &entry.value)?;
                let k = rec.k.clone();
                rows.push((k, stored(rec, name)?));
            }
        }
        Ok(rows)
    }
}
