//! Loading on demand: what a statement missed, read from KV as of the session's snapshot, and
//! how it fills the session (and the isolate cache).

use super::{
    backend::ListedKey,
    layout::{self, RowRecord, SchemaRecord, UniqueRecord},
    local::Lsn,
    store::{KvStorage, Listed, Stop},
};
use crate::{
    error::{Error, Result},
    session::store::Miss,
    snapshot::{unique_key, Prefix, StoredAs, StoredRow},
    storage::patch::Patch,
};
use gluesql_core::prelude::Key;
use std::{cell::Cell, sync::Arc};

/// Rows of one index value loaded through its entries (a bulk `get` per 100: 50 operations
/// at most); a value more rows hold loads the table instead (a `list` per 1 000 rows).
const MAX_INDEXED_ROWS: usize = 5_000;

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

/// Where `table`'s keys are: under its own name unless it was renamed in place.
fn at<'a>(stored_as: &'a StoredAs, table: &'a str) -> &'a str {
    stored_as.get(table).map_or(table, |s| s)
}

impl Patch {
    /// Takes a table's stored schema (and the indexes its entries back).
    fn schema(&mut self, record: SchemaRecord) {
        let name = record.schema.table_name.clone();
        if !record.x.is_empty() {
            self.backed.push((name.clone(), record.x));
        }
        if let Some(at) = record.at {
            self.stored_as.push((name.clone(), at));
        }
        self.schemas.push((name, Some((record.schema, record.v))));
    }
}

impl KvStorage {
    /// Loads what the misses ask for, as of the session's snapshot `as_of`.
    ///
    /// # Errors
    /// [`Error::Storage`] when KV fails or holds data not in gluebind's layout;
    /// [`Error::Conflict`] when the snapshot is too old to be read consistently.
    /// `stored_as` names where tables renamed in place keep their rows (`Table::stored_as`).
    pub async fn load(
        &self,
        misses: &[Miss],
        stored_as: &StoredAs,
        ops: &Cell<u64>,
        as_of: Lsn,
    ) -> Result<Patch> {
        let mut patch = Patch::default();
        let mut schema_keys = Vec::new();
        let mut row_keys = Vec::new();
        let mut unique_keys = Vec::new();
        let mut wanted = std::collections::HashSet::new();
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
                                patch.schema(layout::decode(&name, &entry.value)?);
                            }
                            Listed::Kv(_) => names.push(name),
                        }
                    }
                    for (name, entry) in names.iter().zip(self.get_many(ops, &names, as_of).await?)
                    {
                        if let Some(entry) = entry {
                            patch.schema(layout::decode(name, &entry.value)?);
                        }
                    }
                    patch.all_schemas = true;
                }
                Miss::Row(table, key) => {
                    let row_key = self.layout.row_key(at(stored_as, table), key)?;
                    if wanted.insert(row_key.clone()) {
                        row_keys.push((table.clone(), key.clone(), row_key));
                    }
                }
                // (Only do:// asks for a count: KV cannot count without listing.)
                Miss::Table(table) | Miss::Count(table) => {
                    let (rows, _) = self
                        .load_rows(at(stored_as, table), ops, as_of, usize::MAX, None)
                        .await?;
                    patch.complete.push((table.clone(), rows));
                }
                Miss::Prefix {
                    table,
                    rows: want,
                    past,
                } => {
                    let wanted = usize::try_from(*want).unwrap_or(usize::MAX);
                    match self
                        .load_rows(at(stored_as, table), ops, as_of, wanted, past.as_ref())
                        .await?
                    {
                        (rows, None) => patch.complete.push((table.clone(), rows)),
                        (rows, Some(through)) => patch.prefixes.push((
                            table.clone(),
                            rows,
                            Prefix {
                                through,
                                rows: *want,
                            },
                        )),
                    }
                }
                Miss::Indexed {
                    table,
                    index,
                    created,
                    value,
                } => {
                    let prefix = self.layout.index_value_prefix(
                        at(stored_as, table),
                        index,
                        *created,
                        value,
                    )?;
                    let stop = Stop::After {
                        keys: MAX_INDEXED_ROWS + 1,
                        at: &|_| true,
                    };
                    let (listed, cut) = self
                        .list_first_as_of(ops, &prefix, as_of, false, &stop)
                        .await?;
                    if cut.is_some() {
                        // A value so many rows hold that their bulk gets would take much of
                        // the session's budget: the table's listing instead (rows inlined).
                        let (rows, _) = self
                            .load_rows(at(stored_as, table), ops, as_of, usize::MAX, None)
                            .await?;
                        patch.complete.push((table.clone(), rows));
                        continue;
                    }
                    for (name, listed) in listed {
                        let entry = match listed {
                            Listed::Local(entry) => {
                                layout::decode::<UniqueRecord>(&name, &entry.value)?
                            }
                            // (No metadata: not gluebind's layout, which the decoder says.)
                            Listed::Kv(meta) => layout::decode_metadata(
                                &name,
                                meta.as_ref().unwrap_or(&serde_json::Value::Null),
                            )?,
                        };
                        // The rows themselves (an entry may outlive its value: the reader
                        // keeps the rows that hold it).
                        let row_key = self.layout.row_key(at(stored_as, table), &entry.k)?;
                        if wanted.insert(row_key.clone()) {
                            row_keys.push((table.clone(), entry.k, row_key));
                        }
                    }
                    patch
                        .indexed
                        .push((table.clone(), index.clone(), *created, value.clone()));
                }
                Miss::Unique {
                    table,
                    pos,
                    entries,
                    value,
                    ..
                } => unique_keys.push((
                    table.clone(),
                    *pos,
                    value.clone(),
                    self.layout
                        .unique_key(at(stored_as, table), entries, value)?,
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
            match entries.next().flatten() {
                Some(e) => patch.schema(layout::decode(&key_name, &e.value)?),
                None => patch.schemas.push((name, None)),
            }
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
                owners.push(self.layout.row_key(at(stored_as, table), owner)?);
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

    /// The rows of a table as of `as_of`, from its first key: `list` calls of up to 1000 keys (at
    /// least `want` rows and past key `past`, or all), plus bulk gets for rows too large to be
    /// inlined in metadata.
    /// Also the last key listed when the listing stopped before the table's end, which it does
    /// only at a key whose KV name sorts as the key does ([`layout::listed_in_key_order`]).
    async fn load_rows(
        &self,
        table: &str,
        ops: &Cell<u64>,
        as_of: Lsn,
        want: usize,
        past: Option<&Key>,
    ) -> Result<(Vec<(Key, StoredRow)>, Option<Key>)> {
        let prefix = self.layout.rows_prefix(table);
        // The key a listing may stop at: one whose KV name sorts as the key does.
        let boundary = |last: &ListedKey| {
            let record = layout::decode_metadata::<RowRecord>(&last.name, last.metadata.as_ref()?);
            record.ok().map(|r| r.k).filter(layout::listed_in_key_order)
        };
        let stop = if want == usize::MAX {
            Stop::Never
        } else {
            // Past what is loaded already, whatever the listing shows now.
            Stop::After {
                keys: want,
                at: &|last| boundary(last).is_some_and(|k| past.is_none_or(|past| k > *past)),
            }
        };
        let (listed, last) = self
            .list_first_as_of(ops, &prefix, as_of, false, &stop)
            .await?;
        let through = last.as_ref().and_then(boundary);
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
        Ok((rows, through))
    }
}
