//! The GlueSQL storage a session executes on: its snapshot plus its own writes.
//!
//! GlueSQL's `MemoryStorage` has no transactions, so each session gets this storage instead.
//! It reads and writes a private copy of the database (an O(1) clone of the committed state),
//! records which rows and tables it wrote (the write-set the engine validates at commit), and
//! makes every statement atomic with a savepoint taken in `Transaction::begin`.
//!
//! Two more jobs:
//! - **Faults.** GlueSQL executes synchronously, but the KV engine loads data on demand. A read
//!   of something not loaded yet records a [`Miss`] and fails the statement; the session loads
//!   what was missed (asynchronously) and runs the statement again.
//! - **UNIQUE.** GlueSQL's own check scans the whole table on every insert (which would load a
//!   whole KV table) and counts the updated row as its own duplicate. The session store hides
//!   non-primary-key UNIQUE flags from GlueSQL and enforces them itself through the table's
//!   unique index: a point lookup per value.

mod count;
mod gluesql;
mod indexed;
mod ordered;
#[cfg(test)]
mod plan_tests;

use crate::{
    session::narrow::{By, Narrow},
    snapshot::{unique_key, Database, StoredRow, Table, UniqueLookup},
    storage::kv::Lsn,
};
use gluesql_core::{
    ast::{ColumnDef, ColumnUniqueOption},
    data::Schema,
    error::{Error as GlueError, Result as GlueResult, ValidateError},
    prelude::{Key, Value},
    store::{
        AlterTable, CustomFunction, CustomFunctionMut, Index, IndexMut, Metadata, Planner, RowIter,
        Store, StoreMut, Transaction,
    },
};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
};

/// Something a statement needed that is not loaded yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Miss {
    /// A table's schema (or that it does not exist).
    Schema(String),
    /// Every table's schema.
    AllSchemas,
    /// One row (or that it does not exist).
    Row(String, Key),
    /// Every row of a table.
    Table(String),
    /// The first rows of a table in key order: at least `rows` of them and past key `past`
    /// (what is loaded already), or every row.
    Prefix {
        table: String,
        rows: u32,
        past: Option<Key>,
    },
    /// The rows holding `value` under index `index` (created at `created` µs), through the
    /// index's entries (`kv://`; other engines load the table).
    Indexed {
        table: String,
        index: String,
        created: i64,
        value: Key,
    },
    /// How many rows a table holds (`do://`: the object counts; other engines load the
    /// table).
    Count(String),
    /// The owner of a unique value (or that it is free).
    Unique {
        table: String,
        pos: usize,
        column: String,
        /// The name the column's kv:// entries are stored under (`column_notes`).
        entries: String,
        value: Key,
    },
}

/// Message of the error a miss raises inside GlueSQL; never shown to users (the session
/// loads the data and retries).
const MISS: &str = "gluebind: data not loaded yet";

/// Rows and tables a session wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteSet {
    /// Keys of rows inserted, updated or deleted, per table. Persistent sets, so the
    /// per-statement savepoint stays O(1) however large the write-set grows.
    pub rows: im::OrdMap<String, im::OrdSet<Key>>,
    /// Tables created, altered or dropped.
    pub tables: im::OrdSet<String>,
    /// Tables whose schema changed in place, the stored rows readable as they are: secondary
    /// indexes created or dropped, a column renamed (rows hold values by position), a column
    /// added with a value every row shares (rows written before read it from the schema:
    /// `Table::values_of`). A commit stores the new schema alone, with no rewrite of the rows. A
    /// table also in `tables` is committed as a whole instead.
    pub in_place: im::OrdSet<String>,
    /// Keys this session inserted without knowing whether a committed row held them (`do://`
    /// checks an INSERT that `commit()` flushes at the object instead of loading first): the
    /// commit fails with UNIQUE PRIMARY KEY where a row held the key at the snapshot. A subset
    /// of `rows`.
    pub assumed: im::OrdMap<String, im::OrdSet<Key>>,
    /// Tables renamed in place, new name → name at the snapshot: the commit stores the schema
    /// under its new name and drops the old one; the rows stay where they are
    /// ([`crate::snapshot::Table::stored_as`]). Neither name is in `tables` or `rows`.
    pub renamed: im::OrdMap<String, String>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.tables.is_empty()
            && self.in_place.is_empty()
            && self.renamed.is_empty()
    }

    /// Tables whose schema changed in place only (see [`WriteSet::in_place`]).
    pub fn in_place_only(&self) -> impl Iterator<Item = &String> {
        self.in_place
            .iter()
            .filter(|t| !self.tables.contains(*t) && !self.renamed.values().any(|old| old == *t))
    }
}

/// What a session read: the read set a serializable commit validates (see
/// `crate::storage::validate`). Rows by key, and every scan as a read of its whole table (a
/// predicate read: GlueSQL has no secondary indexes, so any filter other than a primary-key
/// lookup scans). Persistent sets, as the write-set's.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadSet {
    /// Keys of rows read by primary key (found or absent), per table.
    pub rows: im::OrdMap<String, im::OrdSet<Key>>,
    /// Tables scanned.
    pub tables: im::OrdSet<String>,
}

/// State restored when a statement fails part-way.
#[derive(Debug, Clone)]
pub(crate) struct Savepoint {
    db: Database,
    writes: WriteSet,
    reads: ReadSet,
}

/// A session's private storage.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    /// Committed state as of the session start (or its last commit), plus what was loaded
    /// since: the versions the engine checks at commit.
    pub base: Database,
    /// `base` plus this session's writes: what its statements read (read-your-writes).
    pub db: Database,
    pub writes: WriteSet,
    /// What its statements read (recorded whatever the isolation level; a snapshot-isolation
    /// commit clears it before validation).
    pub reads: RefCell<ReadSet>,
    /// While a statement runs: the rows its scan of a table may be narrowed to (see
    /// `narrow.rs`).
    pub narrow: Option<Narrow>,
    savepoint: Option<Savepoint>,
    /// Engine-wide counter for keys of tables without a primary key, shared so that keys
    /// generated by concurrent sessions never collide.
    row_ids: Rc<Cell<i64>>,
    /// The engine's commit sequence number the snapshot is as of: on `kv://`, loads read KV
    /// as of it (this isolate's later commits stay invisible).
    pub as_of: Lsn,
    /// True once a statement ran on the snapshot (its reads reached the caller): until then
    /// the snapshot may still be taken afresh.
    pub observed: bool,
    /// While an INSERT runs whose checks the commit leaves to the engine's storage: a key or a
    /// unique value not loaded is taken as free (the key is recorded in
    /// [`WriteSet::assumed`]) instead of missed.
    pub defer_inserts: bool,
    /// `kv://`: how many index entries this session's `CREATE INDEX`es may write (an entry
    /// per row of the table, within the session's KV budget; 0 elsewhere), so that lookups
    /// list one value's entries instead of loading the table (see [`Table::backed`]).
    pub back_indexes: usize,
    /// `do://`: `SELECT COUNT(*)` of a table not loaded asks the object for its count.
    pub remote_count: bool,
    misses: RefCell<Vec<Miss>>,
}

/// The index read (index, operator, constant) that answers a scan of the table `schema`
/// filtered by `filter`, if one does (see `indexed.rs`).
pub(crate) fn index_access(
    schema: &Schema,
    filter: &gluesql_core::plan::ExprPlan,
) -> Option<(String, gluesql_core::ast::IndexOperator, Value)> {
    let gluesql_core::plan::TableAccessPlan::Index {
        name,
        predicate: Some(predicate),
        ..
    } = indexed::access(schema, filter, false)?
    else {
        return None;
    };
    let gluesql_core::plan::ExprPlan::Value(value) = predicate.expr else {
        return None;
    };
    Some((name, predicate.operator, value))
}

/// Hides non-primary-key UNIQUE flags (the session store enforces those itself), and the
/// columns dropped in place.
pub(super) fn for_gluesql(schema: &Schema) -> Schema {
    let mut schema = crate::snapshot::visible(schema);
    for column in schema.column_defs.iter_mut().flatten() {
        if column.unique == Some(ColumnUniqueOption { is_primary: false }) {
            column.unique = None;
        }
    }
    schema
}

fn duplicate(value: &Value, column: &str) -> GlueError {
    ValidateError::DuplicateEntryOnUniqueField(value.clone(), column.to_owned()).into()
}

impl SessionStore {
    pub fn new(base: Database, row_ids: Rc<Cell<i64>>, as_of: Lsn) -> Self {
        Self {
            db: base.clone(),
            base,
            writes: WriteSet::default(),
            reads: RefCell::new(ReadSet::default()),
            narrow: None,
            savepoint: None,
            row_ids,
            as_of,
            observed: false,
            defer_inserts: false,
            back_indexes: 0,
            remote_count: false,
            misses: RefCell::new(Vec::new()),
        }
    }

    /// Misses recorded since the last call, each once (an attempt that reads a missing row
    /// as absent may miss it again: GlueSQL's key check, then the write).
    pub fn take_misses(&self) -> Vec<Miss> {
        let misses = std::mem::take(&mut *self.misses.borrow_mut());
        let mut seen = std::collections::HashSet::with_capacity(misses.len());
        let first: Vec<bool> = misses.iter().map(|miss| seen.insert(miss)).collect();
        drop(seen);
        misses
            .into_iter()
            .zip(first)
            .filter_map(|(miss, first)| first.then_some(miss))
            .collect()
    }

    /// A copy of the current state, to undo a statement attempt.
    pub fn save(&self) -> Savepoint {
        Savepoint {
            db: self.db.clone(),
            writes: self.writes.clone(),
            reads: self.reads.borrow().clone(),
        }
    }

    pub fn restore(&mut self, savepoint: Savepoint) {
        self.db = savepoint.db;
        self.writes = savepoint.writes;
        *self.reads.get_mut() = savepoint.reads;
        self.savepoint = None;
    }

    /// The keys a scan of `table` is narrowed to, unless a foreign key of a loaded table
    /// references it (GlueSQL reads referencing rows by scanning).
    fn narrowed(&self, table: &str) -> Option<&By> {
        let narrow = self.narrow.as_ref().filter(|n| n.table == table)?;
        let referenced = self.db.tables.values().any(|t| {
            t.schema
                .foreign_keys
                .iter()
                .any(|fk| fk.referenced_table_name == table)
        });
        (!referenced).then_some(&narrow.by)
    }

    /// Records a read of row `key` of `table` (found or absent).
    fn read_row(&self, table: &str, key: &Key) {
        let mut reads = self.reads.borrow_mut();
        if reads.tables.contains(table) {
            return; // the table read covers it
        }
        reads
            .rows
            .entry(table.to_owned())
            .or_default()
            .insert(key.clone());
    }

    /// Records a scan of `table`.
    fn read_table(&self, table: &str) {
        let mut reads = self.reads.borrow_mut();
        reads.rows.remove(table);
        reads.tables.insert(table.to_owned());
    }

    fn miss<T>(&self, miss: Miss) -> GlueResult<T> {
        self.misses.borrow_mut().push(miss);
        Err(GlueError::StorageMsg(MISS.to_owned()))
    }

    fn table(&self, name: &str) -> GlueResult<Option<&Table>> {
        // A table dropped in place is gone for SQL, whatever name a statement gives.
        if crate::snapshot::dropped_table(name) {
            return Ok(None);
        }
        if self.writes.renamed.contains_key(name) {
            return Err(GlueError::StorageMsg(format!(
                "table {name:?} was renamed in place in this unit of work: commit the rename \
                 before using the table (in a migration, a step of its own)"
            )));
        }
        match self.db.lookup(name) {
            Some(table) => Ok(table),
            None => self.miss(Miss::Schema(name.to_owned())),
        }
    }

    fn existing_mut(&mut self, name: &str) -> GlueResult<&mut Table> {
        self.db
            .tables
            .get_mut(name)
            .ok_or_else(|| GlueError::StorageMsg(format!("table {name:?} does not exist")))
    }

    /// The schema with its UNIQUE flags, as SQL sees it (the columns dropped in place left
    /// out: see [`crate::snapshot::dropped`]).
    pub(crate) fn real_schema(&self, name: &str) -> GlueResult<Option<Schema>> {
        Ok(self
            .table(name)?
            .map(|t| crate::snapshot::visible(&t.schema)))
    }

    /// The schema as stored, the columns dropped in place included: what a change in place
    /// edits (the stored rows keep their positions).
    pub(crate) fn physical_schema(&self, name: &str) -> GlueResult<Option<Schema>> {
        Ok(self.table(name)?.map(|t| Schema::clone(&t.schema)))
    }

    /// Rows as SQL wrote them, as stored (see [`Table::to_stored`]).
    fn to_stored(
        &self,
        table_name: &str,
        rows: impl IntoIterator<Item = (Key, Vec<Value>)>,
    ) -> GlueResult<Vec<(Key, Vec<Value>)>> {
        let table = self
            .table(table_name)?
            .ok_or_else(|| GlueError::StorageMsg(format!("table {table_name:?} does not exist")))?;
        Ok(rows
            .into_iter()
            .map(|(key, values)| (key, table.to_stored(values)))
            .collect())
    }

    /// A table whose rows must all be loaded (schema changes rewrite every row).
    fn complete_table(&self, name: &str) -> GlueResult<()> {
        if let Some(table) = self.table(name)? {
            if !table.complete {
                return self.miss(Miss::Table(name.to_owned()));
            }
        }
        Ok(())
    }

    fn touch(&mut self, table_name: &str, key: Key) {
        self.writes
            .rows
            .entry(table_name.to_owned())
            .or_default()
            .insert(key);
    }

    /// Writes a batch of rows (one statement's), enforcing UNIQUE on the way.
    fn put_rows(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> GlueResult<()> {
        let table = self
            .table(table_name)?
            .ok_or_else(|| GlueError::StorageMsg(format!("table {table_name:?} does not exist")))?;
        let columns = table.unique_entries();
        let mut old_rows = Vec::with_capacity(rows.len());
        // Every row and unique value not loaded yet is collected before failing, so that one
        // load (one KV round trip) brings them all.
        let mut misses = Vec::new();
        let mut assumed = Vec::new();
        for (key, _) in &rows {
            match table.lookup(key) {
                Some(old) => old_rows.push(old.map(|r| Arc::clone(&r.values))),
                None if self.defer_inserts => {
                    old_rows.push(None);
                    assumed.push(key.clone());
                }
                None => misses.push(Miss::Row(table_name.to_owned(), key.clone())),
            }
        }
        // Check every new unique value before changing anything, so misses leave no trace.
        for (_, values) in &rows {
            for (pos, column, entries) in &columns {
                let Some(v) = values.get(*pos).and_then(unique_key) else {
                    continue;
                };
                if !self.defer_inserts
                    && matches!(table.unique_lookup(*pos, &v), UniqueLookup::Unknown)
                {
                    misses.push(Miss::Unique {
                        table: table_name.to_owned(),
                        pos: *pos,
                        column: column.clone(),
                        entries: entries.clone(),
                        value: v,
                    });
                }
            }
        }
        if !misses.is_empty() {
            self.misses.borrow_mut().extend(misses);
            return Err(GlueError::StorageMsg(MISS.to_owned()));
        }
        let table = self.existing_mut(table_name)?;
        // Two passes, so values can move between rows of one statement.
        for ((key, _), old) in rows.iter().zip(&old_rows) {
            if let Some(old) = old {
                for (pos, ..) in &columns {
                    if let Some(v) = old.get(*pos).and_then(unique_key) {
                        if matches!(table.unique_lookup(*pos, &v), UniqueLookup::Owner(ref o) if o == key)
                        {
                            table.set_unique(*pos, v, None);
                        }
                    }
                }
            }
        }
        for (key, values) in &rows {
            for (pos, column, _) in &columns {
                let Some(v) = values.get(*pos).and_then(unique_key) else {
                    continue;
                };
                match table.unique_lookup(*pos, &v) {
                    UniqueLookup::Owner(owner) if &owner != key => {
                        return Err(duplicate(&values[*pos], column));
                    }
                    _ => table.set_unique(*pos, v, Some(key.clone())),
                }
            }
        }
        let mut written = Vec::with_capacity(rows.len());
        for (key, values) in rows {
            table.absent.remove(&key);
            table.put_row(
                key.clone(),
                StoredRow {
                    values: Arc::new(values),
                    version: 0,
                },
            );
            written.push(key);
        }
        for key in written {
            self.touch(table_name, key);
        }
        if !assumed.is_empty() {
            let keys = self
                .writes
                .assumed
                .entry(table_name.to_owned())
                .or_default();
            keys.extend(assumed);
        }
        Ok(())
    }

    /// Whether this session inserted `key` of `table` without reading it (see
    /// [`WriteSet::assumed`]).
    pub fn assumed(&self, table: &str, key: &Key) -> bool {
        self.writes
            .assumed
            .get(table)
            .is_some_and(|keys| keys.contains(key))
    }

    /// The value `ADD COLUMN column` gives existing rows: its default as an INSERT evaluates
    /// it, in the column's type (an error where an INSERT relying on the default would fail:
    /// `DEFAULT 300` on an INT8 column, `DEFAULT 1.5` on an INTEGER one), or `None` without a
    /// default. GlueSQL's own `ADD COLUMN` stores the default as evaluated, untyped (`DEFAULT
    /// 1` on an INT8 column as an INTEGER), which keys — unique and secondary indexes — of the
    /// typed value then miss.
    fn added_default(column: &ColumnDef) -> GlueResult<Option<Value>> {
        let Some(default) = &column.default else {
            return Ok(None);
        };
        let default = gluesql_core::plan::plan_scalar_expr(default.clone());
        gluesql_core::executor::evaluate_stateless(None, &default)?
            .try_into_value(&column.data_type, column.nullable)
            .map(Some)
    }

    /// After GlueSQL's `ADD COLUMN`: every existing row holds `default` (see
    /// [`SessionStore::added_default`]) in the new column.
    fn set_added_column(
        &mut self,
        table_name: &str,
        column: &ColumnDef,
        default: Value,
    ) -> GlueResult<()> {
        let Some(table) = self.table(table_name)? else {
            return Ok(());
        };
        let Some(pos) = table
            .schema
            .column_defs
            .iter()
            .flatten()
            .position(|c| c.name == column.name)
        else {
            return Ok(());
        };
        let rows: Vec<(Key, Vec<Value>)> = table
            .rows
            .iter()
            .map(|(key, row)| {
                let mut values = row.values.as_ref().clone();
                if let Some(value) = values.get_mut(pos) {
                    *value = default.clone();
                }
                (key.clone(), values)
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.put_rows(table_name, rows)
    }
}
