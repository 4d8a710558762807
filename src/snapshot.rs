//! Committed data as persistent maps, so a session's snapshot is an O(1) clone.
//!
//! `im`'s ordered maps share structure between versions: cloning a [`Database`] copies a
//! pointer, and a write copies only the path to the changed entry. A session works on its own
//! clone; other sessions never see its writes until commit swaps in a new version.
//!
//! A database may be *partial*: the KV engine loads schemas, rows and unique entries on demand,
//! so each table says which of its parts are complete, and which keys are known to be absent.
//! On `memory://` everything is always complete.

use crate::column_notes::{notes, with_notes, Notes};
use gluesql_core::{
    ast::{ColumnUniqueOption, DataType, Expr},
    data::Schema,
    prelude::{Key, Value},
};
use std::{ops::RangeBounds, sync::Arc};

/// Commit stamp that last wrote a row or table. `0` means "written by this session, not yet
/// committed".
pub(crate) type Version = u64;

/// Tables whose rows are stored under another name (a table renamed in place), by name: where
/// their keys are ([`Table::stored_as`]).
pub(crate) type StoredAs = std::collections::BTreeMap<String, Arc<str>>;

/// A unique value: (column position, value). Shared, so that the copies a persistent map makes
/// of the nodes it changes (every version keeps its own) copy pointers, not text.
pub(crate) type UniqueEntry = Arc<(usize, Key)>;

/// Non-primary-key UNIQUE entries of a table: (column position, value) → row key.
pub(crate) type UniqueIndex = im::OrdMap<UniqueEntry, Key>;

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
    pub unique_absent: im::OrdSet<UniqueEntry>,
    /// While `complete` is false: how far a listing from the table's first key has loaded
    /// it (a first page on kv:// lists the rows it needs, not the table).
    pub prefix: Option<Prefix>,
    /// The secondary indexes (`CREATE INDEX`) over the rows loaded, kept in step with `rows`
    /// by [`Table::put_row`] and [`Table::remove_row`].
    indexes: Indexes,
    /// The secondary indexes a lookup of one value may load that value's rows through,
    /// instead of the table: on `kv://` those whose entries KV holds for every row; on
    /// `do://` every index (the object answers); none on `memory://` (always complete).
    pub backed: im::OrdSet<String>,
    /// While `complete` is false: (index, value) pairs whose rows are all in `rows` (loaded
    /// through the index's entries). Writes keep it true: they put and remove rows by key.
    pub indexed: im::OrdSet<Arc<(String, Key)>>,
    /// `do://`, in a session's snapshot only: how many rows the table held at the snapshot,
    /// as the object counted them (a session adds its own inserts and deletes).
    pub count: Option<u64>,
    /// The name the table's rows and entries are stored under, where it is not the table's
    /// own: a table renamed in place (`ALTER TABLE … RENAME TO`) keeps its rows where they
    /// are. On `kv://` the keys' table segment (kept in the schema record); on `do://` the
    /// name at the session's snapshot (the object moves the rows when it commits the rename).
    pub stored_as: Option<Arc<str>>,
}

/// The first rows of a partial table in key order, as a listing from its first key brought
/// them: every row whose key is at most `through` is in [`Table::rows`] (rows past it may be
/// there too, loaded by key). Kept true by writes, which put and remove rows by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// The last key the listing saw.
    pub through: Key,
    /// How many rows it asked for (the next load asks for more).
    pub rows: u32,
}

/// A table's secondary indexes: for each, the keys of the rows in `rows` by the value they
/// hold, in value order. NULLs (and values that cannot be keys) are kept apart: no comparison
/// with a constant admits them, and an ORDER BY puts them after every value.
#[derive(Debug, Clone, Default)]
struct Indexes {
    /// Name and column position of each index the schema declares on one plain column.
    defs: Arc<Vec<(String, usize)>>,
    /// Entries of each index, parallel to `defs`: value → keys of the rows holding it.
    entries: Vec<im::OrdMap<Key, im::OrdSet<Key>>>,
    /// Per index, parallel to `defs`: the keys of the rows holding NULL.
    nulls: Vec<im::OrdSet<Key>>,
    /// Per column, what a row too short for it holds there (see [`Table::values_of`]).
    fill: Arc<Vec<Value>>,
    /// Positions of the columns dropped in place, ascending (see [`dropped`]).
    dropped: Arc<Vec<usize>>,
}

/// How a column dropped in place starts its name in the stored schema (a control character no
/// statement names by accident; names starting with it are refused).
pub(crate) const DROPPED: char = '\u{1}';

/// True for a column `ALTER TABLE … DROP COLUMN` dropped in place: the stored rows keep its
/// values (no table rewrite), SQL no longer sees it, and rows written since hold NULL there.
/// Its position stays, so later columns keep theirs (the rows' length is still their shape).
pub(crate) fn dropped(column: &gluesql_core::ast::ColumnDef) -> bool {
    column.name.starts_with(DROPPED)
}

/// The column `column` (at `position`) becomes when dropped in place.
pub(crate) fn dropped_column(
    column: &gluesql_core::ast::ColumnDef,
    position: usize,
) -> gluesql_core::ast::ColumnDef {
    // A UNIQUE column's kv:// entries stay in KV: noted, so that no UNIQUE column added later
    // stores its own under their name, and a rewrite of the table deletes them.
    let entries = (column.unique == Some(ColumnUniqueOption { is_primary: false }))
        .then(|| crate::column_notes::entries_name(column).to_owned());
    let dropped = gluesql_core::ast::ColumnDef {
        name: format!("{DROPPED}dropped {position} {}", column.name),
        nullable: true,
        default: None,
        unique: None,
        comment: None,
        ..column.clone()
    };
    with_notes(
        &dropped,
        Notes {
            entries: entries.as_deref(),
            ..Notes::default()
        },
    )
}

/// The columns dropped in place that were UNIQUE, with the name their kv:// entries are
/// stored under: (position, entries name). Those entries stay in KV after the drop.
pub(crate) fn dropped_unique_entries(schema: &Schema) -> Vec<(usize, String)> {
    schema
        .column_defs
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| dropped(c))
        .filter_map(|(pos, c)| Some((pos, notes(c).entries?.to_owned())))
        .collect()
}

/// True for the name a table dropped in place goes by (kv://: a table too large to delete
/// in one commit keeps its rows, unread, under a name no statement gives: see
/// `SessionStore::drop_in_place`).
pub(crate) fn dropped_table(name: &str) -> bool {
    name.starts_with(DROPPED)
}

/// The name the table `name` goes by once dropped in place at `millis` (see [`dropped_table`]).
pub(crate) fn dropped_table_name(name: &str, millis: i64) -> String {
    format!("{DROPPED}dropped {millis} {name}")
}

/// `name` as messages show it: a table dropped in place by its own name.
pub(crate) fn shown_table(name: &str) -> String {
    match name
        .strip_prefix(DROPPED)
        .and_then(|rest| rest.strip_prefix("dropped "))
        .and_then(|rest| rest.split_once(' '))
    {
        Some((_, table)) => format!("{table} (dropped)"),
        None => name.to_owned(),
    }
}

/// The schema as SQL sees it: without the columns dropped in place.
pub(crate) fn visible(schema: &Schema) -> Schema {
    let mut schema = schema.clone();
    if let Some(columns) = schema.column_defs.as_mut() {
        columns.retain(|c| !dropped(c));
        for column in columns.iter_mut() {
            column.comment = notes(column).comment.map(str::to_owned);
        }
    }
    schema
}

/// `column` added in place with `value` as what the rows stored before it read there (a note
/// in its stored comment, beside the user's own: see [`crate::column_notes`]): for a DEFAULT
/// that is not constant (`NOW()`, `GENERATE_UUID()`), evaluated once by the `ALTER` — the value
/// a rewrite would have written in every row. `None` where the value has no JSON form.
pub(crate) fn with_fill(
    column: &gluesql_core::ast::ColumnDef,
    value: &Value,
) -> Option<gluesql_core::ast::ColumnDef> {
    let json = serde_json::to_string(value).ok()?;
    Some(with_notes(
        column,
        Notes {
            fill: Some(&json),
            ..notes(column)
        },
    ))
}

/// True for a DEFAULT that evaluates to the same value every time (literals and operators
/// over them; no function such as `NOW()`): what a row stored before its column was added
/// may read on demand instead of having it written.
pub(crate) fn constant(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(_) | Expr::Value(_) | Expr::TypedString { .. } => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => constant(expr),
        Expr::BinaryOp { left, right, .. } => constant(left) && constant(right),
        _ => false,
    }
}

/// What a row stored before `column` was added reads there: the value recorded when it was
/// added (see [`with_fill`]), else the value its constant DEFAULT gives, in the column's type
/// (as an INSERT relying on the default stores it); NULL without a default. `None` for a
/// DEFAULT that is not constant or does not evaluate.
pub(crate) fn added_value(column: &gluesql_core::ast::ColumnDef) -> Option<Value> {
    if let Some(json) = notes(column).fill {
        return serde_json::from_str(json).ok();
    }
    let Some(default) = &column.default else {
        return Some(Value::Null);
    };
    if !constant(default) {
        return None;
    }
    let default = gluesql_core::plan::plan_scalar_expr(default.clone());
    gluesql_core::executor::evaluate_stateless(None, &default)
        .ok()?
        .try_into_value(&column.data_type, column.nullable)
        .ok()
}

/// Per column of `schema`, what a row stored before the column was added reads there.
fn fill_of(schema: &Schema) -> Arc<Vec<Value>> {
    Arc::new(
        schema
            .column_defs
            .iter()
            .flatten()
            .map(|c| added_value(c).unwrap_or(Value::Null))
            .collect(),
    )
}

impl Indexes {
    fn of(schema: &Schema) -> Self {
        let columns = schema.column_defs.as_deref().unwrap_or_default();
        let defs: Vec<(String, usize)> = schema
            .indexes
            .iter()
            .filter_map(|index| {
                let Expr::Identifier(column) = &index.expr else {
                    return None;
                };
                let pos = columns.iter().position(|c| &c.name == column)?;
                Some((index.name.clone(), pos))
            })
            .collect();
        Self {
            entries: vec![im::OrdMap::new(); defs.len()],
            nulls: vec![im::OrdSet::new(); defs.len()],
            defs: Arc::new(defs),
            fill: fill_of(schema),
            dropped: Arc::new(
                columns
                    .iter()
                    .enumerate()
                    .filter_map(|(pos, c)| dropped(c).then_some(pos))
                    .collect(),
            ),
        }
    }

    /// The same indexes without entries.
    fn emptied(&self) -> Self {
        Self {
            defs: self.defs.clone(),
            entries: vec![im::OrdMap::new(); self.defs.len()],
            nulls: vec![im::OrdSet::new(); self.defs.len()],
            fill: self.fill.clone(),
            dropped: self.dropped.clone(),
        }
    }

    fn add(&mut self, key: &Key, values: &[Value]) {
        let indexes = self.defs.iter().zip(&mut self.entries).zip(&mut self.nulls);
        for (((_, pos), entries), nulls) in indexes {
            let value = values.get(*pos).or_else(|| self.fill.get(*pos));
            match value.and_then(unique_key) {
                Some(v) => {
                    entries.entry(v).or_default().insert(key.clone());
                }
                None => {
                    nulls.insert(key.clone());
                }
            }
        }
    }

    fn remove(&mut self, key: &Key, values: &[Value]) {
        let indexes = self.defs.iter().zip(&mut self.entries).zip(&mut self.nulls);
        for (((_, pos), entries), nulls) in indexes {
            let value = values.get(*pos).or_else(|| self.fill.get(*pos));
            match value.and_then(unique_key) {
                Some(v) => {
                    if let Some(keys) = entries.get_mut(&v) {
                        keys.remove(key);
                        if keys.is_empty() {
                            entries.remove(&v);
                        }
                    }
                }
                None => {
                    nulls.remove(key);
                }
            }
        }
    }
}

/// Whether an index over a column of this type may answer comparisons with a constant of the
/// same type: the key order must be SQL's (floats are not: `-0.0 = 0.0` in SQL, not as keys).
pub(crate) fn indexable(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16
            | Int32
            | Int
            | Int128
            | Uint8
            | Uint16
            | Uint32
            | Uint64
            | Uint128
            | Text
            | Boolean
            | Date
            | Timestamp
            | Time
            | Uuid
            | Decimal
    )
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
        Self::with(Indexes::of(&schema), Arc::new(schema))
    }

    /// A new, empty, complete table of `schema` and its `indexes` (without entries).
    fn with(indexes: Indexes, schema: Arc<Schema>) -> Self {
        Self {
            indexes,
            schema,
            schema_version: 0,
            version: 0,
            rows: im::OrdMap::new(),
            complete: true,
            absent: im::OrdSet::new(),
            unique: UniqueIndex::new(),
            unique_complete: true,
            unique_absent: im::OrdSet::new(),
            prefix: None,
            backed: im::OrdSet::new(),
            indexed: im::OrdSet::new(),
            count: None,
            stored_as: None,
        }
    }

    /// The name the table's rows and entries are stored under (see [`Table::stored_as`]).
    pub fn storage_name(&self) -> &str {
        self.stored_as.as_deref().unwrap_or(&self.schema.table_name)
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

    /// An empty partial table with `like`'s schema (shared, not copied) and schema version.
    pub fn partial_like(like: &Table) -> Self {
        Self {
            schema_version: like.schema_version,
            version: like.schema_version,
            complete: false,
            unique_complete: false,
            ..Self::with(like.indexes.emptied(), like.schema.clone())
        }
    }

    /// Writes row `key` (replacing the row it had), keeping the secondary indexes in step.
    pub fn put_row(&mut self, key: Key, row: StoredRow) {
        if let Some(old) = self.rows.get(&key) {
            self.indexes.remove(&key, &old.values);
        }
        self.indexes.add(&key, &row.values);
        self.rows.insert(key, row);
    }

    /// Removes row `key`, keeping the secondary indexes in step.
    pub fn remove_row(&mut self, key: &Key) -> Option<StoredRow> {
        let old = self.rows.remove(key)?;
        self.indexes.remove(key, &old.values);
        Some(old)
    }

    /// Replaces the schema; the secondary indexes are rebuilt when their definitions change
    /// (and an index the schema no longer declares is no longer backed by KV entries).
    pub fn set_schema(&mut self, schema: Arc<Schema>) {
        let indexes = Indexes::of(&schema);
        if indexes.defs != self.indexes.defs {
            // An index on a column dropped since stays declared (GlueSQL keeps it) but indexes
            // nothing: its entries went with the column's values.
            self.indexed = im::OrdSet::new();
            self.indexes = indexes;
            let backed = std::mem::take(&mut self.backed);
            self.keep_backed(backed);
            for (key, row) in &self.rows {
                self.indexes.add(key, &row.values);
            }
        } else {
            // Columns added at the end, or dropped in place, leave the indexed positions as
            // they were.
            self.indexes.fill = indexes.fill;
            self.indexes.dropped = indexes.dropped;
        }
        self.schema = schema;
    }

    /// A row's values as the schema has them: the stored ones, and for the columns added
    /// after it was written the value each gives every row (its constant DEFAULT, or NULL).
    /// `ALTER TABLE ... ADD COLUMN` with such a value leaves the stored rows as they were (no
    /// table rewrite: see `SessionStore::add_column`), so a row may be shorter than the schema.
    /// The columns dropped in place are left out (see [`dropped`]): these are the values of
    /// the columns SQL sees ([`visible`]).
    pub fn values_of(&self, row: &StoredRow) -> Vec<Value> {
        let mut values = row.values.as_ref().clone();
        if let Some(missing) = self.indexes.fill.get(values.len()..) {
            values.extend_from_slice(missing);
        }
        for pos in self.indexes.dropped.iter().rev() {
            if *pos < values.len() {
                values.remove(*pos);
            }
        }
        values
    }

    /// A row as SQL wrote it (the columns it sees), as stored: NULL where a column was
    /// dropped in place. The inverse of [`Table::values_of`].
    pub fn to_stored(&self, mut values: Vec<Value>) -> Vec<Value> {
        for pos in self.indexes.dropped.iter() {
            values.insert((*pos).min(values.len()), Value::Null);
        }
        values
    }

    /// Forgets the unique index, which a rewrite of every row (an `ALTER TABLE` GlueSQL
    /// carries out) builds again: the stored rows are in the old shape until then, so their
    /// values would be taken at the new schema's positions.
    pub fn clear_unique(&mut self) {
        self.unique = UniqueIndex::new();
        self.unique_absent = im::OrdSet::new();
        self.unique_complete = self.complete;
    }

    /// The keys of the loaded rows whose column under index `name` holds a value in `range`,
    /// in the index's order (`asc` false: its values descending), rows holding one value in
    /// primary-key order either way — as a stable sort of a scan orders them; with `nulls`,
    /// also the rows holding NULL, where such a sort puts them (after every value: last, or
    /// first when descending). `None` when the table has no such index.
    pub fn index_in_order(
        &self,
        name: &str,
        range: (std::ops::Bound<Key>, std::ops::Bound<Key>),
        asc: bool,
        nulls: bool,
    ) -> Option<Box<dyn Iterator<Item = &Key> + '_>> {
        let at = self.indexes.defs.iter().position(|(n, _)| n == name)?;
        let values = self.indexes.entries[at].range(range);
        let nulls = self.indexes.nulls[at].iter().filter(move |_| nulls);
        Some(if asc {
            Box::new(values.flat_map(|(_, keys)| keys.iter()).chain(nulls))
        } else {
            Box::new(nulls.chain(values.rev().flat_map(|(_, keys)| keys.iter())))
        })
    }

    /// When index `name` was created, in µs (what names its entries in KV); `None` when the
    /// schema declares no such index.
    pub fn index_created(&self, name: &str) -> Option<i64> {
        self.schema
            .indexes
            .iter()
            .find(|index| index.name == name)
            .map(|index| index.created.and_utc().timestamp_micros())
    }

    /// The backed indexes (see [`Table::backed`]) with the value each takes in a row holding
    /// `values` (NULLs and values that cannot be keys take none): (name, created µs, value).
    pub fn index_values(&self, values: &[Value]) -> Vec<(&str, i64, Key)> {
        self.indexes
            .defs
            .iter()
            .filter(|(name, _)| self.backed.contains(name))
            .filter_map(|(name, pos)| {
                let value = values.get(*pos).or_else(|| self.indexes.fill.get(*pos))?;
                Some((name.as_str(), self.index_created(name)?, unique_key(value)?))
            })
            .collect()
    }

    /// Takes `backed` back as the indexes with entries, those of them the table still has.
    pub fn keep_backed(&mut self, backed: im::OrdSet<String>) {
        self.backed = backed
            .into_iter()
            .filter(|name| self.indexes.defs.iter().any(|(n, _)| n == name))
            .collect();
    }

    /// True when `other` (a later state of this table) has index `name` with entries as this
    /// one has them: under the same creation time, which names them in KV (one dropped and
    /// created again differs; a renamed column keeps its index's entries).
    pub fn same_backed_index(&self, other: &Table, name: &str) -> bool {
        self.backed.contains(name)
            && other.backed.contains(name)
            && self.index_created(name) == other.index_created(name)
    }

    /// True when every row holding `value` under index `name` is in `rows`.
    pub fn index_value_known(&self, name: &str, value: &Key) -> bool {
        self.complete || self.indexed.contains(&(name.to_owned(), value.clone()))
    }

    /// The keys of the loaded rows whose column under index `name` holds a value in `range`;
    /// `None` when the table has no such index.
    pub fn index_lookup(
        &self,
        name: &str,
        range: impl RangeBounds<Key>,
    ) -> Option<std::collections::BTreeSet<Key>> {
        let at = self.indexes.defs.iter().position(|(n, _)| n == name)?;
        Some(
            self.indexes.entries[at]
                .range(range)
                .flat_map(|(_, keys)| keys.iter().cloned())
                .collect(),
        )
    }

    /// True when the secondary indexes are exactly those of the schema over `rows` (what
    /// [`Table::put_row`], [`Table::remove_row`] and [`Table::set_schema`] maintain).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub fn indexes_in_step(&self) -> bool {
        let mut rebuilt = Indexes::of(&self.schema);
        for (key, row) in &self.rows {
            rebuilt.add(key, &row.values);
        }
        rebuilt.defs == self.indexes.defs
            && rebuilt.entries == self.indexes.entries
            && rebuilt.nulls == self.indexes.nulls
    }

    /// Positions and names of the non-primary-key UNIQUE columns.
    pub fn unique_columns(&self) -> Vec<(usize, String)> {
        unique_columns(&self.schema)
    }

    /// [`unique_entries`] of the table's schema.
    pub fn unique_entries(&self) -> Vec<(usize, String, String)> {
        unique_entries(&self.schema)
    }

    /// Keys a session has seen absent — read as absent by key, or missing from the first
    /// rows it read in key order — which a later, larger load must not show it (repeatable
    /// reads: KV may list a row another isolate inserted since). Always false for an isolate
    /// cache (`session` false), which takes what KV shows now.
    pub fn seen(&self, session: bool) -> impl Fn(&Key) -> bool {
        let table = self.clone(); // O(1): persistent maps
        move |key| session && table.known_absent(key)
    }

    /// True when `key` is known not to hold a row beyond `rows`: the table is complete, the key
    /// was read as absent, or it lies among the first rows loaded ([`Prefix`]).
    fn known_absent(&self, key: &Key) -> bool {
        self.complete
            || self.absent.contains(key)
            || self.prefix.as_ref().is_some_and(|p| *key <= p.through)
    }

    /// Looks a row up: `Some(Some(row))` found, `Some(None)` known absent (also a key among
    /// the first rows loaded: [`Prefix`]), `None` unknown.
    pub fn lookup(&self, key: &Key) -> Option<Option<&StoredRow>> {
        match self.rows.get(key) {
            Some(row) => Some(Some(row)),
            None if self.known_absent(key) => Some(None),
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
                if !self.unique_absent.is_empty() {
                    self.unique_absent.remove(&entry);
                }
                self.unique.insert(Arc::new(entry), owner);
            }
            None => {
                self.unique.remove(&entry);
                // A complete index needs no record of free values.
                if !self.unique_complete {
                    self.unique_absent.insert(Arc::new(entry));
                }
            }
        }
    }

    /// Builds the unique index of a complete table from its rows. A value two rows hold is
    /// given to the later one; the first such value (column position and value) is returned.
    pub fn reindex_unique(&mut self) -> std::result::Result<(), (usize, Value)> {
        let columns = self.unique_columns();
        let mut index = UniqueIndex::new();
        let mut repeated = None;
        for (key, row) in &self.rows {
            for (pos, _) in &columns {
                if let Some(v) = row.values.get(*pos).and_then(unique_key) {
                    if index.insert(Arc::new((*pos, v)), key.clone()).is_some()
                        && repeated.is_none()
                    {
                        repeated = Some((*pos, row.values[*pos].clone()));
                    }
                }
            }
        }
        self.unique = index;
        self.unique_complete = true;
        self.unique_absent = im::OrdSet::new();
        repeated.map_or(Ok(()), Err)
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

/// Like [`unique_columns`], with the name each column's kv:// entries are stored under (its
/// own, unless renamed in place: see [`crate::column_notes`]): (position, name, entries name).
pub(crate) fn unique_entries(schema: &Schema) -> Vec<(usize, String, String)> {
    unique_columns(schema)
        .into_iter()
        .map(|(pos, name)| {
            let column = &schema.column_defs.as_deref().unwrap_or_default()[pos];
            let entries = crate::column_notes::entries_name(column).to_owned();
            (pos, name, entries)
        })
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

    /// The tables whose rows are stored under another name ([`Table::stored_as`]).
    pub fn stored_as(&self) -> StoredAs {
        self.tables
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), t.stored_as.clone()?)))
            .collect()
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
