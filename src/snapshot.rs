//! Committed data as persistent maps, so a session's snapshot is an O(1) clone.
//!
//! `im`'s ordered maps share structure between versions: cloning a [`Database`] copies a
//! pointer, and a write copies only the path to the changed entry. A session works on its own
//! clone; other sessions never see its writes until commit swaps in a new version.

use gluesql_core::{ast::ColumnUniqueOption, data::Schema, prelude::Key, prelude::Value};
use std::sync::Arc;

/// Commit number that last wrote a row or table. `0` means "written by this session, not yet
/// committed".
pub(crate) type Version = u64;

/// One row: its values and the commit that wrote it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub values: Arc<Vec<Value>>,
    pub version: Version,
}

/// One table: schema plus rows in primary-key order.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub schema: Arc<Schema>,
    /// Commit that last changed the schema (create, alter).
    pub schema_version: Version,
    /// Commit that last changed anything in the table.
    pub version: Version,
    pub rows: im::OrdMap<Key, StoredRow>,
}

impl Table {
    pub fn new(schema: Schema) -> Self {
        Self {
            schema: Arc::new(schema),
            schema_version: 0,
            version: 0,
            rows: im::OrdMap::new(),
        }
    }

    /// Positions and names of the non-primary-key UNIQUE columns.
    pub fn unique_columns(&self) -> Vec<(usize, String)> {
        self.schema
            .column_defs
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| c.unique == Some(ColumnUniqueOption { is_primary: false }))
            .map(|(i, c)| (i, c.name.clone()))
            .collect()
    }
}

/// All tables of one database, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Database {
    pub tables: im::OrdMap<String, Table>,
}
