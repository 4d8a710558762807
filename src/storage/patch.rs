//! What a load brought back — schemas, rows, whole tables, unique entries — and how it fills
//! a session's snapshot or an isolate cache without overriding what they already know.

use crate::{
    session::store::SessionStore,
    snapshot::{unique_key, Database, Prefix, StoredRow, Table, UniqueLookup, Version},
};
use gluesql_core::prelude::Key;
use std::{collections::BTreeSet, ops::Bound};

/// Rows of one table as loaded, in key order.
pub(crate) type LoadedRows = Vec<(Key, StoredRow)>;

/// What a load brought back, applied to the isolate cache and to the session.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    pub schemas: Vec<(String, Option<(gluesql_core::data::Schema, Version)>)>,
    pub all_schemas: bool,
    pub rows: Vec<(String, Key, Option<StoredRow>)>,
    pub complete: Vec<(String, LoadedRows)>,
    /// The first rows of tables, each up to the last key its listing saw.
    pub prefixes: Vec<(String, LoadedRows, Prefix)>,
    pub uniques: Vec<(String, usize, Key, Option<Key>)>,
    /// The indexes through which each loaded table's value lookups load (see
    /// `Table::backed`: on `kv://` those with entries, on `do://` all).
    pub backed: Vec<(String, Vec<String>)>,
    /// `kv://`: where loaded tables' rows are stored under another name (`Table::stored_as`).
    pub stored_as: Vec<(String, String)>,
    /// (table, index, its creation in µs, value) whose rows the load brought, all of them (in
    /// `rows`).
    pub indexed: Vec<(String, String, i64, Key)>,
    /// `do://`: how many rows tables held at the load's version (for a session only: an
    /// isolate cache cannot keep a count true as other commits reach it).
    pub counts: Vec<(String, u64)>,
    /// `do://`: the object version the load read as of.
    pub at: Option<Version>,
    /// `do://`: each loaded table's version (the commit that last changed it), which a
    /// serializable commit's scans are checked against.
    pub versions: Vec<(String, Version)>,
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
                    let mut table = Table::partial(schema.clone(), *v);
                    if let Some((_, version)) = self.versions.iter().find(|(n, _)| n == name) {
                        table.version = *version;
                    }
                    if let Some((_, backed)) = self.backed.iter().find(|(n, _)| n == name) {
                        table.backed = backed.iter().cloned().collect();
                    }
                    if let Some((_, at)) = self.stored_as.iter().find(|(n, _)| n == name) {
                        table.stored_as = Some(at.as_str().into());
                    }
                    db.tables.insert(name.clone(), table);
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
                    table.put_row(key.clone(), row.clone());
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
            merge_listed(table, rows, None, written, drop_unlisted);
            table.complete = true;
            table.absent = im::OrdSet::new();
            // The full row set determines the unique index (committed rows hold no repeats).
            let _ = table.reindex_unique();
        }
        for (name, rows, prefix) in &self.prefixes {
            let Some(table) = db.tables.get_mut(name) else {
                continue;
            };
            if table.complete {
                continue;
            }
            if table
                .prefix
                .as_ref()
                .is_some_and(|p| p.through >= prefix.through)
            {
                continue; // knows as much already (a load lists past what was loaded)
            }
            let written = own.and_then(|ws| ws.writes.rows.get(name));
            merge_listed(table, rows, Some(&prefix.through), written, drop_unlisted);
            table.prefix = Some(prefix.clone());
        }
        for (name, index, created, value) in &self.indexed {
            let Some(table) = db.tables.get_mut(name) else {
                continue;
            };
            // Only while the index is the one loaded through (not dropped meanwhile).
            if !table.complete
                && table.backed.contains(index)
                && table.index_created(index) == Some(*created)
            {
                table
                    .indexed
                    .insert(std::sync::Arc::new((index.clone(), value.clone())));
            }
        }
        for (name, count) in self.counts.iter().filter(|_| !drop_unlisted) {
            if let Some(table) = db.tables.get_mut(name) {
                if !table.complete && table.count.is_none() {
                    table.count = Some(*count);
                }
            }
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

/// Puts the rows a listing brought back (of the whole table, or up to `through`) into `table`,
/// except those it already holds, those the session wrote (`written`) and those a session has
/// seen absent ([`Table::seen`]). For an isolate cache (`drop_unlisted`), rows within the
/// listed part that the listing lacks (deleted from KV meanwhile, not the session's own) go,
/// with the unique entries naming them (unknown again).
fn merge_listed(
    table: &mut Table,
    rows: &[(Key, StoredRow)],
    through: Option<&Key>,
    written: Option<&im::OrdSet<Key>>,
    drop_unlisted: bool,
) {
    let is_own = |k: &Key| written.is_some_and(|w| w.contains(k));
    let seen = table.seen(!drop_unlisted);
    if drop_unlisted {
        let listed: BTreeSet<&Key> = rows.iter().map(|(k, _)| k).collect();
        let end = through.map_or(Bound::Unbounded, |t| Bound::Included(t.clone()));
        let stale: Vec<Key> = table
            .rows
            .range((Bound::Unbounded, end))
            .map(|(k, _)| k)
            .filter(|k| !listed.contains(k) && !is_own(k))
            .cloned()
            .collect();
        let columns = table.unique_columns();
        for key in stale {
            let Some(row) = table.remove_row(&key) else {
                continue;
            };
            for (pos, _) in &columns {
                if let Some(v) = row.values.get(*pos).and_then(unique_key) {
                    let entry = (*pos, v);
                    if table.unique.get(&entry) == Some(&key) {
                        table.unique.remove(&entry);
                    }
                }
            }
        }
    }
    for (key, row) in rows {
        if table.rows.contains_key(key) || is_own(key) || seen(key) {
            continue;
        }
        table.put_row(key.clone(), row.clone());
    }
}
