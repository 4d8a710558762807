//! Commit validation over the committed state held in this isolate's memory.
//!
//! For `memory://` this state is the database itself: a cache and test engine whose data lives
//! as long as the isolate (a Rust panic or an eviction wipes it). For `kv://` it is the isolate
//! cache in front of KV, and the same validation runs before anything is written to KV.

use crate::{
    error::{Error, Result},
    session::store::SessionStore,
    snapshot::{unique_key, Database, StoredRow, Table, UniqueLookup, Version},
};
use gluesql_core::prelude::{Key, Value};
use std::sync::Arc;

/// Committed state plus the commit counter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Committed {
    pub db: Database,
    /// Number of commits applied in this isolate.
    pub version: Version,
}

/// What a successful commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub version: Version,
    pub rows_written: usize,
    pub tables_changed: usize,
}

pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        other => String::from(other),
    }
}

/// Which of a session's reads [`Committed::apply`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadCheck {
    /// Rows read and tables scanned: `memory://`, where this state is the whole database and
    /// a table's version is the stamp of the last commit that changed it.
    All,
    /// Rows read only: `kv://`'s isolate cache, where a table's version does not follow every
    /// commit (the cache starts over, other isolates commit); its storage checks scans.
    Rows,
    /// None (applying a commit the storage already validated).
    Skip,
}

/// Version of `key` in `table` as far as this state knows: `Some(None)` absent, `None` unknown.
fn row_version(table: &Table, key: &Key) -> Option<Option<Version>> {
    table.lookup(key).map(|r| r.map(|r| r.version))
}

impl Committed {
    /// Validates `ws`'s write-set against this committed state and returns the next state, the
    /// rows stamped with `stamp` (a fresh commit identifier).
    ///
    /// Rules (snapshot isolation, first committer wins):
    /// - a row written by the session must still have the version the session saw (or still
    ///   be absent), else [`Error::Conflict`];
    /// - a table the session created, altered or dropped must be unchanged since the session
    ///   started, and tables whose rows it wrote must keep their schema;
    /// - UNIQUE columns are re-checked against rows other sessions committed meanwhile, else
    ///   [`Error::Unique`];
    /// - a key inserted without being read ([`crate::session::store::WriteSet::assumed`]) must
    ///   be free: [`Error::Unique`] where a row held it at the snapshot, else
    ///   [`Error::Conflict`].
    ///
    /// - with `reads` (a serializable commit), every row the session read must still have the
    ///   version it saw, and (with [`ReadCheck::All`]) every table it scanned must be unchanged,
    ///   else [`Error::Conflict`] naming the read.
    ///
    /// Where this state does not know a row or a unique value (a partial KV cache), that check
    /// is left to the engine's storage. Nothing changes when an error is returned.
    pub fn apply(
        &self,
        ws: &SessionStore,
        stamp: Version,
        reads: ReadCheck,
    ) -> Result<(Self, Applied)> {
        let mut next = self.clone();
        next.version = self.version + 1;
        let mut applied = Applied {
            version: next.version,
            ..Applied::default()
        };

        // Whole-table changes (DDL): the table must not have changed meanwhile.
        for name in &ws.writes.tables {
            // The schema's version too: a change in place meanwhile (an index, a column added
            // or renamed) changes the schema alone (see `WriteSet::in_place`), which this
            // commit would overwrite.
            let seen = ws
                .base
                .tables
                .get(name)
                .map(|t| (t.version, t.schema_version));
            // Unknown to a partial cache: the storage checks it instead.
            let now = match self.db.lookup(name) {
                Some(table) => table.map(|t| (t.version, t.schema_version)),
                None => seen,
            };
            if seen != now {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table (created, altered or dropped)".to_owned(),
                });
            }
            match ws.db.tables.get(name) {
                Some(table) => {
                    let mut table = table.clone();
                    table.schema_version = stamp;
                    table.version = stamp;
                    for key in ws.writes.rows.get(name).into_iter().flatten() {
                        if let Some(row) = table.rows.get_mut(key) {
                            row.version = stamp;
                        }
                        applied.rows_written += 1;
                    }
                    next.db.absent_tables.remove(name);
                    next.db.tables.insert(name.clone(), table);
                }
                None => {
                    next.db.tables.remove(name);
                    if !next.db.schemas_complete {
                        next.db.absent_tables.insert(name.clone());
                    }
                }
            }
            applied.tables_changed += 1;
        }

        // Tables renamed in place: the schema must be the one the session saw, the new name
        // free; the table moves, with the rows committed meanwhile (they stay where they are
        // stored: `Table::stored_as`).
        for (new, old) in &ws.writes.renamed {
            let conflict = |table: &String, detail: &str| Error::Conflict {
                table: crate::snapshot::shown_table(table),
                detail: detail.to_owned(),
            };
            let base = ws
                .base
                .tables
                .get(old)
                .ok_or_else(|| conflict(old, "the table (created meanwhile)"))?;
            let mine = ws
                .db
                .tables
                .get(new)
                .ok_or_else(|| conflict(new, "the table (renamed)"))?;
            if matches!(next.db.lookup(new), Some(Some(_))) {
                return Err(conflict(new, "the table (created meanwhile)"));
            }
            let mut table = match next.db.lookup(old) {
                Some(Some(current)) if current.schema_version == base.schema_version => {
                    current.clone()
                }
                Some(_) => return Err(conflict(old, "the table (altered or dropped)")),
                // Not in a partial cache: the storage checks the schema's version, and the
                // cache loads the rows when next needed.
                None => Table::partial(gluesql_core::data::Schema::clone(&mine.schema), stamp),
            };
            if crate::snapshot::dropped_table(new) {
                // Dropped in place: never read again, so nothing of it is kept.
                table = Table::partial(gluesql_core::data::Schema::clone(&mine.schema), stamp);
            }
            table.schema = Arc::clone(&mine.schema);
            table.stored_as.clone_from(&mine.stored_as);
            table.backed = mine.backed.clone();
            table.schema_version = stamp;
            table.version = stamp;
            next.db.tables.remove(old);
            if !next.db.schemas_complete {
                next.db.absent_tables.insert(old.clone());
            }
            next.db.absent_tables.remove(new);
            next.db.tables.insert(new.clone(), table);
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
            let current = match self.db.lookup(name) {
                Some(table) => table.ok_or_else(gone)?,
                // Not in a partial cache (it expired meanwhile): the storage checks the rows,
                // and the cache loads them again when next needed.
                None => {
                    applied.rows_written += keys.len();
                    continue;
                }
            };
            if current.schema_version != base.schema_version {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table's schema".to_owned(),
                });
            }
            let mine = ws.db.tables.get(name).ok_or_else(gone)?;
            for key in keys {
                let now = row_version(current, key);
                if ws.assumed(name, key) {
                    // Inserted without reading it: a row that held the key at the snapshot
                    // makes the INSERT a duplicate (what the statement would have said), one
                    // committed since a conflict (as for any row written).
                    if let Some(Some(version)) = now {
                        let value = Value::from(key.clone());
                        return Err(if version <= ws.as_of {
                            // As GlueSQL's own duplicate-key error shows it.
                            Error::Unique {
                                table: name.clone(),
                                column: "PRIMARY KEY".to_owned(),
                                value: String::from(value),
                            }
                        } else {
                            Error::Conflict {
                                table: name.clone(),
                                detail: format!("the row with key {}", render(&value)),
                            }
                        });
                    }
                    continue;
                }
                let seen = row_version(base, key);
                if let (Some(seen), Some(now)) = (seen, now) {
                    if seen != now {
                        return Err(Error::Conflict {
                            table: name.clone(),
                            detail: format!(
                                "the row with key {}",
                                render(&Value::from(key.clone()))
                            ),
                        });
                    }
                }
            }

            let columns = current.unique_columns();
            let mut table = current.clone();
            // Two passes so that swapping unique values between rows in one session works.
            for key in keys {
                if let Some(old) = current.rows.get(key) {
                    for (pos, _) in &columns {
                        if let Some(v) = old.values.get(*pos).and_then(unique_key) {
                            table.set_unique(*pos, v, None);
                        }
                    }
                }
            }
            for key in keys {
                match mine.rows.get(key) {
                    Some(row) => {
                        for (pos, column) in &columns {
                            let Some(v) = row.values.get(*pos).and_then(unique_key) else {
                                continue;
                            };
                            if let UniqueLookup::Owner(owner) = table.unique_lookup(*pos, &v) {
                                if &owner != key {
                                    return Err(Error::Unique {
                                        table: name.clone(),
                                        column: column.clone(),
                                        value: render(&row.values[*pos]),
                                    });
                                }
                            }
                            table.set_unique(*pos, v, Some(key.clone()));
                        }
                        table.absent.remove(key);
                        table.put_row(
                            key.clone(),
                            StoredRow {
                                values: Arc::clone(&row.values),
                                version: stamp,
                            },
                        );
                    }
                    None => {
                        table.remove_row(key);
                        if !table.complete {
                            table.absent.insert(key.clone());
                        }
                    }
                }
                applied.rows_written += 1;
            }
            table.version = stamp;
            next.db.tables.insert(name.clone(), table);
        }

        // Schemas changed in place (indexes, columns added or renamed; the rows stay): the
        // schema must be the one the session saw; indexes are built over the rows as
        // committed, and rows shorter than the new schema read its added columns' values.
        for name in ws.writes.in_place_only() {
            let changed = || Error::Conflict {
                table: name.clone(),
                detail: "the table's schema".to_owned(),
            };
            let base = ws.base.tables.get(name).ok_or_else(changed)?;
            let mine = ws.db.tables.get(name).ok_or_else(changed)?;
            match next.db.lookup(name) {
                Some(Some(_)) => {}
                Some(None) => return Err(changed()),
                // Not in a partial cache: the storage checks the schema's version.
                None => {
                    applied.tables_changed += 1;
                    continue;
                }
            }
            let table = next.db.tables.get_mut(name).ok_or_else(changed)?;
            if table.schema_version != base.schema_version {
                return Err(changed());
            }
            table.set_schema(Arc::clone(&mine.schema));
            table.backed = mine.backed.clone();
            table.schema_version = stamp;
            applied.tables_changed += 1;
        }
        // After the writes: a UNIQUE violation or a lost update says more than a read that
        // changed (and is not cured by a retry).
        if reads != ReadCheck::Skip {
            self.check_reads(ws, reads)?;
        }
        Ok((next, applied))
    }

    /// The serializable part of validation: nothing the session read was changed by a commit
    /// after its snapshot. (Rows it also wrote are checked as writes.)
    fn check_reads(&self, ws: &SessionStore, check: ReadCheck) -> Result<()> {
        let reads = ws.reads.borrow();
        let changed = |table: &str, what: String| Error::Conflict {
            table: table.to_owned(),
            detail: format!("{what}, which this session read (serializable isolation)"),
        };
        if check == ReadCheck::All {
            for name in &reads.tables {
                if ws.writes.tables.contains(name) {
                    continue; // created, altered or dropped: checked as a write
                }
                let seen = ws.base.tables.get(name).map(|t| t.version);
                let now = match self.db.lookup(name) {
                    Some(table) => table.map(|t| t.version),
                    None => continue,
                };
                if seen != now {
                    return Err(changed(
                        name,
                        format!("what a scan of table {name} returned"),
                    ));
                }
            }
        }
        for (name, keys) in &reads.rows {
            if ws.writes.tables.contains(name) {
                continue;
            }
            let Some(base) = ws.base.tables.get(name) else {
                continue; // a table the session did not see: the read found nothing to check
            };
            let current = match self.db.lookup(name) {
                Some(Some(table)) => table,
                Some(None) => {
                    return Err(changed(name, format!("table {name} (dropped)")));
                }
                None => continue,
            };
            if current.schema_version != base.schema_version {
                return Err(changed(name, format!("the schema of table {name}")));
            }
            let written = ws.writes.rows.get(name);
            for key in keys {
                if written.is_some_and(|w| w.contains(key)) {
                    continue;
                }
                if let (Some(seen), Some(now)) = (row_version(base, key), row_version(current, key))
                {
                    if seen != now {
                        return Err(changed(
                            name,
                            format!("the row with key {}", render(&Value::from(key.clone()))),
                        ));
                    }
                }
            }
        }
        Ok(())
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
