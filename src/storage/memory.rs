//! The `memory://` backend: committed state in this isolate's memory.
//!
//! It is a cache and test engine: data lives as long as the isolate (a Rust panic or an
//! isolate eviction wipes it). Commit validation lives here because it is pure logic over
//! persistent maps; durable backends reuse it for their isolate cache.

use crate::{
    error::{Error, Result},
    snapshot::{Database, StoredRow, Table, Version},
    workspace::Workspace,
};
use gluesql_core::prelude::{Key, Value};
use std::sync::Arc;

/// Non-primary-key UNIQUE entries of one committed table: (column position, value) → row key.
type UniqueIndex = im::OrdMap<(usize, Key), Key>;

/// Committed state plus the unique indexes commit validation needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Committed {
    pub db: Database,
    unique: im::OrdMap<String, UniqueIndex>,
    /// Number of the last commit.
    pub version: Version,
}

/// What a successful commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub version: Version,
    pub rows_written: usize,
    pub tables_changed: usize,
}

fn unique_key(value: &Value) -> Option<Key> {
    // NULLs never collide (SQL semantics, and GlueSQL's own check skips them). Values that
    // cannot be keys (floats, maps) are skipped here as GlueSQL rejects them at insert.
    match Key::try_from(value) {
        Ok(Key::None) | Err(_) => None,
        Ok(key) => Some(key),
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        other => String::from(other),
    }
}

fn build_index(table_name: &str, table: &Table) -> Result<UniqueIndex> {
    let columns = table.unique_columns();
    let mut index = UniqueIndex::new();
    if columns.is_empty() {
        return Ok(index);
    }
    for (key, row) in &table.rows {
        for (pos, name) in &columns {
            if let Some(value_key) = row.values.get(*pos).and_then(unique_key) {
                if index.insert((*pos, value_key), key.clone()).is_some() {
                    return Err(Error::Unique {
                        table: table_name.to_owned(),
                        column: name.clone(),
                        value: render(&row.values[*pos]),
                    });
                }
            }
        }
    }
    Ok(index)
}

impl Committed {
    /// Validates `ws`'s write-set against this committed state and returns the next state.
    ///
    /// Rules (snapshot isolation, first committer wins):
    /// - a row written by the session must still have the version the session saw (or still
    ///   be absent), else [`Error::Conflict`];
    /// - a table the session created, altered or dropped must be unchanged since the session
    ///   started, and tables whose rows it wrote must keep their schema;
    /// - UNIQUE columns are re-checked against rows other sessions committed meanwhile, else
    ///   [`Error::Unique`].
    ///
    /// Nothing is changed when an error is returned: the caller swaps the returned state in.
    pub fn apply(&self, ws: &Workspace) -> Result<(Self, Applied)> {
        let version = self.version + 1;
        let mut next = self.clone();
        next.version = version;
        let mut applied = Applied {
            version,
            ..Applied::default()
        };

        // Whole-table changes (DDL): the table must not have changed meanwhile.
        for name in &ws.writes.tables {
            let seen = ws.base.tables.get(name).map(|t| t.version);
            let now = self.db.tables.get(name).map(|t| t.version);
            if seen != now {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table (created, altered or dropped)".to_owned(),
                });
            }
            match ws.db.tables.get(name) {
                Some(table) => {
                    let mut table = table.clone();
                    table.schema_version = version;
                    table.version = version;
                    for key in ws.writes.rows.get(name).into_iter().flatten() {
                        if let Some(row) = table.rows.get_mut(key) {
                            row.version = version;
                        }
                        applied.rows_written += 1;
                    }
                    next.unique.insert(name.clone(), build_index(name, &table)?);
                    next.db.tables.insert(name.clone(), table);
                }
                None => {
                    next.db.tables.remove(name);
                    next.unique.remove(name);
                }
            }
            applied.tables_changed += 1;
        }

        // Row changes in tables whose schema the session left alone.
        for (name, keys) in &ws.writes.rows {
            if ws.writes.tables.contains(name) {
                continue;
            }
            let gone = || Error::Conflict {
                table: name.clone(),
                detail: "the table (dropped)".to_owned(),
            };
            let base = ws.base.tables.get(name).ok_or_else(gone)?;
            let current = self.db.tables.get(name).ok_or_else(gone)?;
            if current.schema_version != base.schema_version {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table's schema".to_owned(),
                });
            }
            let mine = ws.db.tables.get(name).ok_or_else(gone)?;
            for key in keys {
                let seen = base.rows.get(key).map(|r| r.version);
                let now = current.rows.get(key).map(|r| r.version);
                if seen != now {
                    return Err(Error::Conflict {
                        table: name.clone(),
                        detail: format!("the row with key {}", render(&Value::from(key.clone()))),
                    });
                }
            }

            let columns = current.unique_columns();
            let mut index = next.unique.get(name).cloned().unwrap_or_default();
            // Two passes so that swapping unique values between rows in one session works.
            for key in keys {
                if let Some(old) = current.rows.get(key) {
                    for (pos, _) in &columns {
                        if let Some(v) = old.values.get(*pos).and_then(unique_key) {
                            index.remove(&(*pos, v));
                        }
                    }
                }
            }
            let mut table = current.clone();
            for key in keys {
                match mine.rows.get(key) {
                    Some(row) => {
                        for (pos, column) in &columns {
                            let Some(v) = row.values.get(*pos).and_then(unique_key) else {
                                continue;
                            };
                            if let Some(owner) = index.insert((*pos, v), key.clone()) {
                                if &owner != key {
                                    return Err(Error::Unique {
                                        table: name.clone(),
                                        column: column.clone(),
                                        value: render(&row.values[*pos]),
                                    });
                                }
                            }
                        }
                        table.rows.insert(
                            key.clone(),
                            StoredRow {
                                values: Arc::clone(&row.values),
                                version,
                            },
                        );
                    }
                    None => {
                        table.rows.remove(key);
                    }
                }
                applied.rows_written += 1;
            }
            table.version = version;
            next.unique.insert(name.clone(), index);
            next.db.tables.insert(name.clone(), table);
        }
        Ok((next, applied))
    }

    /// Largest integer primary key committed in `table`, used to seed ID sequences.
    pub fn max_integer_key(&self, table: &str) -> Option<i64> {
        let (key, _) = self.db.tables.get(table)?.rows.get_max()?;
        match key {
            Key::I64(v) => Some(*v),
            Key::I32(v) => Some(i64::from(*v)),
            Key::I16(v) => Some(i64::from(*v)),
            Key::I8(v) => Some(i64::from(*v)),
            Key::U32(v) => Some(i64::from(*v)),
            Key::U16(v) => Some(i64::from(*v)),
            Key::U8(v) => Some(i64::from(*v)),
            Key::U64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }
}
