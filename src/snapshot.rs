//! Committed data as persistent maps, so a session's snapshot is an O(1) clone.
//!
//! `im`'s ordered maps share structure between versions: cloning a [`Database`] copies a
//! pointer, and a write copies only the path to the changed entry. A session works on its own
//! clone; other sessions never see its writes until commit swaps in a new version.
//!
//! A database may be *partial*: the KV engine loads schemas, rows and unique entries on demand,
//! so each table says which of its parts are complete, and which keys are known to be absent.
//! On `memory://` everything is always complete.

use gluesql_core::{ast::ColumnUniqueOption, data::Schema, prelude::Key, prelude::Value};
use std::sync::Arc;

/// Commit stamp that last wrote a row or table. `0` means "written by this session, not yet
/// committed".
pub(crate) type Version = u64;

/// Non-primary-key UNIQUE entries of a table: (column position, value) → row key.
pub(crate) type UniqueIndex = im::OrdMap<(usize, Key), Key>;

/// One row: its values and the commit that wrote it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub values: Arc<Vec<Value>>,
    pub version: Version,
}

/// One table: schema, rows in primary-key order, and its unique index.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub schema: Arc<Schema>,
    /// Commit that last changed the schema (create, alter).
    pub schema_version: Version,
    /// Commit that last changed anything in the table.
    pub version: Version,
    pub rows: im::OrdMap<Key, StoredRow>,
    /// True when `rows` holds every row (else rows load on demand).
    pub complete: bool,
    /// Keys known not to exist (meaningful while `complete` is false).
    pub absent: im::OrdSet<Key>,
    pub unique: UniqueIndex,
    /// True when `unique` holds every entry.
    pub unique_complete: bool,
    /// Unique values known to be free (while `unique_complete` is false).
    pub unique_absent: im::OrdSet<(usize, Key)>,
}

/// Where a unique value stands in a possibly partial index.
pub(crate) enum UniqueLookup {
    Owner(Key),
    Free,
    Unknown,
}

impl Table {
    /// A new, empty table: complete, since it has no rows anywhere yet.
    pub fn new(schema: Schema) -> Self {
        Self {
            schema: Arc::new(schema),
            schema_version: 0,
            version: 0,
            rows: im::OrdMap::new(),
            complete: true,
            absent: im::OrdSet::new(),
            unique: UniqueIndex::new(),
            unique_complete: true,
            unique_absent: im::OrdSet::new(),
        }
    }

    /// A table known by its schema only: rows and unique entries load on demand.
    pub fn partial(schema: Schema, schema_version: Version) -> Self {
        Self {
            schema_version,
            version: schema_version,
            complete: false,
            unique_complete: false,
            ..Self::new(schema)
        }
    }

    /// Positions and names of the non-primary-key UNIQUE columns.
    pub fn unique_columns(&self) -> Vec<(usize, String)> {
        unique_columns(&self.schema)
    }

    /// Looks a row up: `Some(Some(row))` found, `Some(None)` known absent, `None` unknown.
    pub fn lookup(&self, key: &Key) -> Option<Option<&StoredRow>> {
        match self.rows.get(key) {
            Some(row) => Some(Some(row)),
            None if self.complete || self.absent.contains(key) => Some(None),
            None => None,
        }
    }

    /// Looks a unique value up.
    pub fn unique_lookup(&self, pos: usize, value: &Key) -> UniqueLookup {
        let entry = (pos, value.clone());
        match self.unique.get(&entry) {
            Some(owner) => UniqueLookup::Owner(owner.clone()),
            None if self.unique_complete || self.unique_absent.contains(&entry) => {
                UniqueLookup::Free
            }
            None => UniqueLookup::Unknown,
        }
    }

    /// Sets or clears the unique entry `(pos, value)`.
    pub fn set_unique(&mut self, pos: usize, value: Key, owner: Option<Key>) {
        let entry = (pos, value);
        match owner {
            Some(owner) => {
                self.unique_absent.remove(&entry);
                self.unique.insert(entry, owner);
            }
            None => {
                self.unique.remove(&entry);
                self.unique_absent.insert(entry);
            }
        }
    }
}

/// Positions and names of the non-primary-key UNIQUE columns of `schema`.
pub(crate) fn unique_columns(schema: &Schema) -> Vec<(usize, String)> {
    schema
        .column_defs
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.unique == Some(ColumnUniqueOption { is_primary: false }))
        .map(|(i, c)| (i, c.name.clone()))
        .collect()
}

/// The key a value takes in a unique index: `None` for NULL (NULLs never collide, as in SQL
/// and GlueSQL's own check) and for values that cannot be keys.
pub(crate) fn unique_key(value: &Value) -> Option<Key> {
    match Key::try_from(value) {
        Ok(Key::None) | Err(_) => None,
        Ok(key) => Some(key),
    }
}

/// All tables of one database, by name.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub tables: im::OrdMap<String, Table>,
    /// True when `tables` holds every table.
    pub schemas_complete: bool,
    /// Tables known not to exist (while `schemas_complete` is false).
    pub absent_tables: im::OrdSet<String>,
}

impl Default for Database {
    fn default() -> Self {
        Self::complete()
    }
}

impl Database {
    /// An empty database that knows it is empty (`memory://`).
    pub fn complete() -> Self {
        Self {
            tables: im::OrdMap::new(),
            schemas_complete: true,
            absent_tables: im::OrdSet::new(),
        }
    }

    /// An empty database whose tables load on demand (`kv://`).
    pub fn partial() -> Self {
        Self {
            schemas_complete: false,
            ..Self::complete()
        }
    }

    /// `Some(Some(table))` found, `Some(None)` known absent, `None` unknown.
    pub fn lookup(&self, name: &str) -> Option<Option<&Table>> {
        match self.tables.get(name) {
            Some(t) => Some(Some(t)),
            None if self.schemas_complete || self.absent_tables.contains(name) => Some(None),
            None => None,
        }
    }
}
