//! GlueSQL's storage traits for the session store: reads answer from the snapshot (or record
//! a miss), writes go through the store's unique enforcement, and every statement runs inside
//! a savepoint (`Transaction::begin`).

use super::*;
use gluesql_core::{
    ast::{IndexOperator, OrderByExpr},
    plan::StatementPlan,
    store::AlterTableError,
};

impl Store for SessionStore {
    fn fetch_schema(&self, table_name: &str) -> GlueResult<Option<Schema>> {
        Ok(self.table(table_name)?.map(|t| for_gluesql(&t.schema)))
    }

    fn fetch_all_schemas(&self) -> GlueResult<Vec<Schema>> {
        if !self.db.schemas_complete {
            return self.miss(Miss::AllSchemas);
        }
        // Real schemas: GlueSQL uses these for dictionaries (GLUE_TABLE_COLUMNS) and foreign
        // keys, never for UNIQUE validation. Tables dropped in place are gone for SQL.
        Ok(self
            .db
            .tables
            .iter()
            .filter(|(name, _)| !crate::snapshot::dropped_table(name))
            .map(|(_, t)| crate::snapshot::visible(&t.schema))
            .collect())
    }

    fn fetch_data(&self, table_name: &str, key: &Key) -> GlueResult<Option<Vec<Value>>> {
        let Some(table) = self.table(table_name)? else {
            return Ok(None);
        };
        match table.lookup(key) {
            Some(row) => {
                self.read_row(table_name, key);
                Ok(row.map(|r| table.values_of(r)))
            }
            None => {
                // Not loaded: recorded, and read as absent for the rest of this attempt, so
                // that what the statement would miss next (an INSERT's unique values after its
                // key check) is recorded too and one load brings all of it. The attempt is
                // discarded whatever it did, as for every miss.
                self.misses
                    .borrow_mut()
                    .push(Miss::Row(table_name.to_owned(), key.clone()));
                Ok(None)
            }
        }
    }

    fn scan_data<'a>(&'a self, table_name: &str) -> GlueResult<RowIter<'a>> {
        let Some(table) = self.table(table_name)? else {
            return Ok(Box::new(std::iter::empty()));
        };
        if let Some(By::Index { name, op, value }) = self.narrowed(table_name) {
            return self.scan_index(table_name, name, Some((op, value.clone())));
        }
        if let Some(By::Keys(keys)) = self.narrowed(table_name) {
            let mut rows = Vec::with_capacity(keys.len());
            let mut misses = Vec::new();
            for key in keys {
                match table.lookup(key) {
                    Some(Some(row)) => rows.push((key.clone(), table.values_of(row))),
                    Some(None) => {}
                    None => misses.push(Miss::Row(table_name.to_owned(), key.clone())),
                }
            }
            if !misses.is_empty() {
                self.misses.borrow_mut().extend(misses);
                return Err(GlueError::StorageMsg(MISS.to_owned()));
            }
            for key in keys {
                self.read_row(table_name, key);
            }
            return Ok(Box::new(rows.into_iter().map(Ok)));
        }
        if !table.complete {
            return self.miss(Miss::Table(table_name.to_owned()));
        }
        self.read_table(table_name);
        // Iterates the persistent map in key order without copying the table first.
        Ok(Box::new(
            table
                .rows
                .iter()
                .map(|(k, r)| Ok((k.clone(), table.values_of(r)))),
        ))
    }
}

impl StoreMut for SessionStore {
    fn insert_schema(&mut self, schema: &Schema) -> GlueResult<()> {
        let name = schema.table_name.clone();
        match self.table(&name)? {
            // Only the table's own fields changed (`DROP TABLE … CASCADE` takes the foreign
            // keys of the tables referring to the dropped one, and rewrites no row): they go
            // into the stored schema, whose columns (dropped in place, UNIQUE, recorded
            // defaults) stay as they are.
            Some(t) if columns_of_gluesql(&t.schema, schema) => {
                // Loaded whole, as before (a schema change's check knows the table's rows).
                self.complete_table(&name)?;
                let mut stored = Schema::clone(&t.schema);
                stored.foreign_keys = schema.foreign_keys.clone();
                stored.comment = schema.comment.clone();
                stored.engine = schema.engine.clone();
                self.set_schema_in_place(&name, stored)?;
            }
            Some(_) => {
                // A schema change on an existing table (GlueSQL's ALTER): every row is
                // rewritten next, in the new shape (the columns dropped in place go), and
                // builds the unique index again.
                self.complete_table(&name)?;
                let table = self.existing_mut(&name)?;
                table.set_schema(Arc::new(schema.clone()));
                table.clear_unique();
            }
            None => {
                reserved_table_name(&name)?;
                reserved_names(schema.column_defs.iter().flatten().map(|c| c.name.as_str()))?;
                reserved_comments(schema.column_defs.iter().flatten())?;
                // A name renamed away in this unit of work still names its rows until the
                // rename is committed.
                if let Some((new, _)) = self.writes.renamed.iter().find(|(_, old)| **old == name) {
                    if crate::snapshot::dropped_table(new) {
                        return Err(GlueError::StorageMsg(format!(
                            "table {name:?} was dropped in place in this unit of work (kv://: \
                             too large to delete its rows in one commit): commit the drop \
                             before creating a table of its name (in a migration, a step of \
                             its own)"
                        )));
                    }
                    return Err(GlueError::StorageMsg(format!(
                        "table {name:?} was renamed in place in this unit of work: commit the \
                         rename before creating a table of its name (in a migration, a step of \
                         its own)"
                    )));
                }
                // A table renamed in place keeps its rows under its old name: a new table of
                // that name stores its own elsewhere (every schema is needed to know) — also
                // apart from the tables this unit of work dropped, whose keys its commit
                // deletes.
                if !self.db.schemas_complete {
                    return self.miss(Miss::AllSchemas);
                }
                let mut table = Table::new(schema.clone());
                let taken = |storage: &str| {
                    self.db.tables.values().any(|t| t.storage_name() == storage)
                        || self
                            .base
                            .tables
                            .iter()
                            .any(|(other, t)| *other != name && t.storage_name() == storage)
                };
                if taken(&name) {
                    let from = super::indexed::created_now().and_utc().timestamp_millis();
                    let storage = (from..)
                        .map(|at| format!("{name}{}{at}", crate::snapshot::DROPPED))
                        .find(|storage| !taken(storage));
                    table.stored_as = storage.map(Into::into);
                }
                self.db.absent_tables.remove(&name);
                self.db.tables.insert(name.clone(), table);
            }
        }
        self.writes.tables.insert(name);
        Ok(())
    }

    fn delete_schema(&mut self, table_name: &str) -> GlueResult<()> {
        if self.drops_in_place(table_name)? {
            return self.drop_in_place(table_name);
        }
        // Dropping rewrites the table (its rows are deleted too): load them all first.
        self.complete_table(table_name)?;
        self.db.tables.remove(table_name);
        if !self.db.schemas_complete {
            self.db.absent_tables.insert(table_name.to_owned());
        }
        self.writes.tables.insert(table_name.to_owned());
        self.writes.rows.remove(table_name);
        Ok(())
    }

    fn append_data(&mut self, table_name: &str, rows: Vec<Vec<Value>>) -> GlueResult<()> {
        // Generated keys must be new rows. In a partial (kv://) table a key is checked like
        // any row (a miss loads it), and a key another isolate already used is skipped. The
        // counter moves only once the rows are in, so an attempt that missed tries the same
        // keys again (consuming keys per attempt would miss forever).
        let table = self
            .table(table_name)?
            .ok_or_else(|| GlueError::StorageMsg(format!("table {table_name:?} does not exist")))?;
        let mut id = self.row_ids.get();
        let mut keyed = Vec::with_capacity(rows.len());
        for values in rows {
            loop {
                id = id.checked_add(1).ok_or_else(|| {
                    GlueError::StorageMsg("generated row keys are exhausted".to_owned())
                })?;
                match table.lookup(&Key::I64(id)) {
                    Some(None) => break,
                    Some(Some(_)) => continue,
                    None => return self.miss(Miss::Row(table_name.to_owned(), Key::I64(id))),
                }
            }
            keyed.push((Key::I64(id), values));
        }
        let keyed = self.to_stored(table_name, keyed)?;
        self.put_rows(table_name, keyed)?;
        self.row_ids.set(self.row_ids.get().max(id));
        Ok(())
    }

    fn insert_data(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> GlueResult<()> {
        let rows = self.to_stored(table_name, rows)?;
        self.put_rows(table_name, rows)
    }

    fn delete_data(&mut self, table_name: &str, keys: Vec<Key>) -> GlueResult<()> {
        let table = self
            .table(table_name)?
            .ok_or_else(|| GlueError::StorageMsg(format!("table {table_name:?} does not exist")))?;
        for key in &keys {
            if table.lookup(key).is_none() {
                return self.miss(Miss::Row(table_name.to_owned(), key.clone()));
            }
        }
        let columns = table.unique_columns();
        let table = self.existing_mut(table_name)?;
        for key in &keys {
            if let Some(old) = table.remove_row(key) {
                for (pos, _) in &columns {
                    if let Some(v) = old.values.get(*pos).and_then(unique_key) {
                        if matches!(table.unique_lookup(*pos, &v), UniqueLookup::Owner(ref o) if o == key)
                        {
                            table.set_unique(*pos, v, None);
                        }
                    }
                }
            }
            if !table.complete {
                table.absent.insert(key.clone());
            }
        }
        for key in keys {
            self.touch(table_name, key);
        }
        Ok(())
    }
}

impl Transaction for SessionStore {
    fn begin(&mut self, autocommit: bool) -> GlueResult<bool> {
        if !autocommit {
            return Err(GlueError::StorageMsg(
                "BEGIN is not supported: a gluebind session is already a transaction; \
                 call session.commit() or session.rollback() instead"
                    .to_owned(),
            ));
        }
        // Per-statement savepoint: O(1) thanks to persistent maps.
        self.savepoint = Some(self.save());
        Ok(true)
    }

    fn rollback(&mut self) -> GlueResult<()> {
        match self.savepoint.take() {
            Some(savepoint) => {
                self.restore(savepoint);
                Ok(())
            }
            None => Err(GlueError::StorageMsg(
                "ROLLBACK in SQL is not supported: call session.rollback() instead".to_owned(),
            )),
        }
    }

    fn commit(&mut self) -> GlueResult<()> {
        match self.savepoint.take() {
            Some(_) => Ok(()),
            None => Err(GlueError::StorageMsg(
                "COMMIT in SQL is not supported: call session.commit() instead".to_owned(),
            )),
        }
    }
}

/// The session store with its real schemas visible, for GlueSQL's default ALTER TABLE logic
/// (which reads a schema, changes it and writes it back: the UNIQUE flags must survive).
struct RealSchemas<'a>(&'a mut SessionStore);

impl Store for RealSchemas<'_> {
    fn fetch_schema(&self, table_name: &str) -> GlueResult<Option<Schema>> {
        self.0.real_schema(table_name)
    }
    fn fetch_all_schemas(&self) -> GlueResult<Vec<Schema>> {
        self.0.fetch_all_schemas()
    }
    fn fetch_data(&self, table_name: &str, key: &Key) -> GlueResult<Option<Vec<Value>>> {
        self.0.fetch_data(table_name, key)
    }
    fn scan_data<'a>(&'a self, table_name: &str) -> GlueResult<RowIter<'a>> {
        self.0.scan_data(table_name)
    }
}

impl StoreMut for RealSchemas<'_> {
    fn insert_schema(&mut self, schema: &Schema) -> GlueResult<()> {
        self.0.insert_schema(schema)
    }
    fn delete_schema(&mut self, table_name: &str) -> GlueResult<()> {
        self.0.delete_schema(table_name)
    }
    fn append_data(&mut self, table_name: &str, rows: Vec<Vec<Value>>) -> GlueResult<()> {
        self.0.append_data(table_name, rows)
    }
    fn insert_data(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> GlueResult<()> {
        self.0.insert_data(table_name, rows)
    }
    fn delete_data(&mut self, table_name: &str, keys: Vec<Key>) -> GlueResult<()> {
        self.0.delete_data(table_name, keys)
    }
}

impl AlterTable for RealSchemas<'_> {}

impl AlterTable for SessionStore {
    fn rename_schema(&mut self, table_name: &str, new_table_name: &str) -> GlueResult<()> {
        reserved_table_name(new_table_name)?;
        if self.table(table_name)?.is_none() {
            return Err(AlterTableError::TableNotFound(table_name.to_owned()).into());
        }
        if self.table(new_table_name)?.is_some() {
            return Err(GlueError::StorageMsg(format!(
                "ALTER TABLE {table_name} RENAME TO {new_table_name}: table {new_table_name} \
                 already exists"
            )));
        }
        // In place — the schema moves to the new name, the rows stay where they are stored
        // (`Table::stored_as`): a schema-only commit, whatever the table's size — unless this
        // unit of work already changed either table (then its rows are rewritten).
        if !(self.untouched(table_name) && self.untouched(new_table_name)) {
            self.complete_table(table_name)?;
            return RealSchemas(self).rename_schema(table_name, new_table_name);
        }
        self.move_in_place(table_name, new_table_name, |_| {})
    }

    fn rename_column(&mut self, table_name: &str, old: &str, new: &str) -> GlueResult<()> {
        reserved_names([old, new])?;
        // Rows hold values by position: a rename leaves them as they are (a schema-only
        // commit, whatever the table's size). A UNIQUE column's kv:// entries stay under the
        // name they were stored under, which its stored schema notes.
        // The indexes whose entries KV holds keep them (they name values, not columns): the
        // steps below drop them from `backed` while the index still names the old column.
        let backed = self
            .table(table_name)?
            .map(|t| t.backed.clone())
            .unwrap_or_default();
        self.reshape(table_name, |columns| {
            if columns.iter().any(|c| c.name == new) {
                return Err(AlterTableError::AlreadyExistingColumn(new.to_owned()).into());
            }
            let column = columns
                .iter_mut()
                .find(|c| c.name == old)
                .ok_or(AlterTableError::RenamingColumnNotFound)?;
            let entries = crate::column_notes::entries_name(column).to_owned();
            let notes = crate::column_notes::notes(column);
            *column = crate::column_notes::with_notes(
                column,
                crate::column_notes::Notes {
                    entries: (column.unique == Some(ColumnUniqueOption { is_primary: false })
                        && entries != new)
                        .then_some(entries.as_str()),
                    ..notes
                },
            );
            new.clone_into(&mut column.name);
            Ok(())
        })?;
        self.rename_indexed_column(table_name, old, new)?;
        if !backed.is_empty() {
            self.existing_mut(table_name)?.keep_backed(backed);
        }
        Ok(())
    }

    fn add_column(&mut self, table_name: &str, column_def: &ColumnDef) -> GlueResult<()> {
        reserved_names([column_def.name.as_str()])?;
        reserved_comments([column_def])?;
        // Rows are keyed by the primary key from the table's creation on: a key added later
        // would leave the existing rows keyed by their row ids (lookups and key order wrong).
        if column_def.unique == Some(ColumnUniqueOption { is_primary: true }) {
            return Err(GlueError::StorageMsg(format!(
                "ALTER TABLE {table_name} ADD COLUMN {} PRIMARY KEY is not supported: a table's \
                 primary key is set by CREATE TABLE (create a new table and copy the rows)",
                column_def.name
            )));
        }
        // Checked first, so a default an INSERT would refuse fails on an empty table too.
        let default = Self::added_default(column_def)?;
        // A column every stored row gets the same value in (NULL, a constant DEFAULT) — and,
        // if UNIQUE, NULL (which never repeats a value: the stored rows add no unique entry):
        // the rows stay as they are and read the value from the schema (`Table::values_of`);
        // the commit stores the schema alone, whatever the table's size.
        let lazy = (column_def.nullable || column_def.default.is_some())
            && crate::snapshot::added_value(column_def)
                .is_some_and(|v| column_def.unique.is_none() || matches!(v, Value::Null));
        // Any other DEFAULT (`NOW()`, `GENERATE_UUID()`): evaluated once, as GlueSQL's rewrite
        // writes that one value in every row, and recorded in the stored schema for the rows
        // stored before (not UNIQUE: they would all repeat it).
        let filled = match &default {
            Some(value) if !lazy && column_def.unique.is_none() => {
                crate::snapshot::with_fill(column_def, value)
            }
            _ => None,
        };
        if lazy || filled.is_some() {
            let column = filled.unwrap_or_else(|| column_def.clone());
            return self.reshape(table_name, |columns| {
                if columns.iter().any(|c| c.name == column.name) {
                    return Err(AlterTableError::AlreadyExistingColumn(column.name.clone()).into());
                }
                columns.push(unique_entries_apart(columns, column));
                Ok(())
            });
        }
        self.complete_table(table_name)?;
        RealSchemas(self).add_column(table_name, column_def)?;
        match default {
            Some(default) => self.set_added_column(table_name, column_def, default),
            None => Ok(()),
        }
    }

    fn drop_column(
        &mut self,
        table_name: &str,
        column_name: &str,
        if_exists: bool,
    ) -> GlueResult<()> {
        let Some(schema) = self.physical_schema(table_name)? else {
            return Err(AlterTableError::TableNotFound(table_name.to_owned()).into());
        };
        let column = schema
            .column_defs
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, c)| c.name == column_name && !crate::snapshot::dropped(c));
        let Some((at, column)) = column else {
            if if_exists {
                return Ok(());
            }
            return Err(AlterTableError::DroppingColumnNotFound(column_name.to_owned()).into());
        };
        // A column other than the primary key is dropped in place: the stored rows keep their
        // values there, unread (a schema-only commit, whatever the table's size). A UNIQUE
        // column's kv:// entries stay too, noted in the dropped column (`dropped_column`): no
        // UNIQUE column added later stores its own under their name, and a rewrite or drop of
        // the table deletes them. The primary key rewrites every row (rows are keyed by it).
        if column.unique != Some(ColumnUniqueOption { is_primary: true }) {
            return self.reshape(table_name, |columns| {
                columns[at] = crate::snapshot::dropped_column(&columns[at], at);
                Ok(())
            });
        }
        self.complete_table(table_name)?;
        RealSchemas(self).drop_column(table_name, column_name, if_exists)
    }
}

impl Index for SessionStore {
    fn scan_indexed_data<'a>(
        &'a self,
        table_name: &str,
        index_name: &str,
        asc: Option<bool>,
        cmp_value: Option<(&IndexOperator, Value)>,
    ) -> GlueResult<RowIter<'a>> {
        if index_name == super::ordered::PRIMARY {
            self.scan_in_key_order(table_name, asc, cmp_value)
        } else if let Some(asc) = asc {
            self.scan_index_in_order(table_name, index_name, asc, cmp_value)
        } else {
            self.scan_index(table_name, index_name, cmp_value)
        }
    }
}

impl IndexMut for SessionStore {
    fn create_index(
        &mut self,
        table_name: &str,
        index_name: &str,
        column: &OrderByExpr,
    ) -> GlueResult<()> {
        self.add_index(table_name, index_name, column)
    }

    fn drop_index(&mut self, table_name: &str, index_name: &str) -> GlueResult<()> {
        self.remove_index(table_name, index_name)
    }
}
impl Metadata for SessionStore {}
impl CustomFunction for SessionStore {}
impl CustomFunctionMut for SessionStore {}

impl Planner for SessionStore {
    fn plan(&self, statement: StatementPlan) -> GlueResult<StatementPlan> {
        super::ordered::plan(self, statement)
    }
}

/// True when `schema` (from GlueSQL) has the columns and indexes GlueSQL was shown of `stored`:
/// a change of the table's own fields only.
fn columns_of_gluesql(stored: &Schema, schema: &Schema) -> bool {
    let shown = super::for_gluesql(stored);
    shown.column_defs == schema.column_defs && shown.indexes == schema.indexes
}

/// Refuses column comments holding the control character that starts gluebind's notes in
/// stored schemas (see [`crate::column_notes`]).
pub(super) fn reserved_comments<'a>(
    columns: impl IntoIterator<Item = &'a ColumnDef>,
) -> GlueResult<()> {
    match columns.into_iter().find(|c| {
        c.comment
            .as_deref()
            .is_some_and(|c| c.contains(crate::column_notes::MARK))
    }) {
        Some(column) => Err(GlueError::StorageMsg(format!(
            "the comment of column {:?} holds the control character U+0001, which gluebind \
             reserves in stored schemas; write it without",
            column.name
        ))),
        None => Ok(()),
    }
}

/// A column about to be added to `columns`, its UNIQUE entries (kv://) under a name no other
/// UNIQUE column's are: its own, unless a column renamed or dropped in place keeps its entries
/// there.
fn unique_entries_apart(columns: &[ColumnDef], column: ColumnDef) -> ColumnDef {
    let unique = |c: &ColumnDef| c.unique == Some(ColumnUniqueOption { is_primary: false });
    // Also by a UNIQUE column dropped in place, whose entries stay.
    let taken = |name: &str| {
        columns.iter().any(|c| {
            let entries = match crate::snapshot::dropped(c) {
                true => crate::column_notes::notes(c).entries,
                false => unique(c).then(|| crate::column_notes::entries_name(c)),
            };
            entries == Some(name)
        })
    };
    if !unique(&column) || !taken(&column.name) {
        return column;
    }
    let Some(entries) = (1..)
        .map(|n| format!("{}.{n}", column.name))
        .find(|name| !taken(name))
    else {
        return column;
    };
    crate::column_notes::with_notes(
        &column,
        crate::column_notes::Notes {
            entries: Some(&entries),
            ..crate::column_notes::notes(&column)
        },
    )
}

/// Refuses table names holding the control character that starts gluebind's names for tables
/// dropped in place.
fn reserved_table_name(name: &str) -> GlueResult<()> {
    if name.contains(crate::snapshot::DROPPED) {
        return Err(GlueError::StorageMsg(format!(
            "table name {name:?} is reserved: names holding the control character U+0001 name \
             dropped tables in gluebind's stored schemas; choose another name"
        )));
    }
    Ok(())
}

/// Refuses column names holding the control character that starts gluebind's names for
/// columns dropped in place and its notes.
pub(super) fn reserved_names<'a>(names: impl IntoIterator<Item = &'a str>) -> GlueResult<()> {
    match names
        .into_iter()
        .find(|n| n.contains(crate::snapshot::DROPPED))
    {
        Some(name) => Err(GlueError::StorageMsg(format!(
            "column name {name:?} is reserved: names holding the control character U+0001 \
             name dropped columns in gluebind's stored schemas; choose another name"
        ))),
        None => Ok(()),
    }
}
