//! What crosses between a worker's `do://` engine and its Durable Object: requests, answers,
//! and a session's commit as the parts of its store the object needs to validate it.
//!
//! A commit carries, per table it touched, what the session saw (its snapshot's versions of the
//! rows it wrote or read, and of the table) and what it leaves (the rows it wrote, or the whole
//! new table for a schema change), with its write-set and read-set. The object rebuilds a
//! session store from that and validates it exactly as `memory://` does
//! ([`crate::storage::validate`]), against its complete state.

use crate::{
    error::{Error, Result},
    session::store::{ReadSet, SessionStore, WriteSet},
    snapshot::{unique_key, Database, StoredRow, Table, Version},
};
use gluesql_core::{
    data::Schema,
    prelude::{Key, Value},
};
use serde::{Deserialize, Serialize};
use std::{cell::Cell, rc::Rc, sync::Arc};

/// A request to the object. Externally tagged (`{"load": {…}}`): an internally tagged enum
/// is buffered by serde, which loses 128-bit integers (INT128, UINT128 and UUID values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Reads, as of version `at` (`None`: the latest).
    Load(Load),
    /// Validates and applies a session's commit. `id` makes a retry idempotent; `cache` is the
    /// version of the worker's isolate cache, to which the answer brings the commits since.
    ///
    /// `mine`: the worker brings its cache this commit's own changes itself
    /// ([`own_changes`]), so the answer's `since` stops before the commit's version (an older
    /// object, which does not read it, answers them all).
    Commit {
        id: u64,
        cache: Option<Version>,
        delta: Delta,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        mine: bool,
    },
    /// Reserves `count` values of the ID sequence `name` (above the largest integer key of
    /// the table of that name, as `memory://` starts its sequences).
    Ids { name: String, count: u32 },
    /// Several requests (commits of one isolate's sessions), answered in order in one
    /// [`Response::Batch`] as if each came alone, one after the other ([`WIRE`] 3).
    Batch(Vec<Request>),
}

/// What a load reads, as of version `at` (`None`: the latest).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Load {
    pub at: Option<Version>,
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub all_schemas: bool,
    #[serde(default)]
    pub rows: Vec<(String, Key)>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub uniques: Vec<(String, usize, Key)>,
    /// The first rows of tables in key order: (table, at least that many rows, past this
    /// key). An object older than this field answers without `firsts` (the worker then loads
    /// those tables whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firsts: Vec<(String, u32, Option<Key>)>,
    /// The rows holding a value under an index: (table, index, value). As `firsts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexed: Vec<(String, String, Key)>,
    /// How many rows tables hold. As `firsts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<String>,
}

impl Load {
    /// The tables the load names (with repeats).
    pub(crate) fn tables(&self) -> impl Iterator<Item = &String> {
        self.schemas
            .iter()
            .chain(self.rows.iter().map(|(t, _)| t))
            .chain(&self.tables)
            .chain(self.uniques.iter().map(|(t, _, _)| t))
            .chain(self.firsts.iter().map(|(t, _, _)| t))
            .chain(self.indexed.iter().map(|(t, _, _)| t))
            .chain(&self.counts)
    }
}

/// A row as it crosses: its values and version, or `None` where it is known absent (deleted).
pub type RowWire = Option<(Vec<Value>, Version)>;
/// A row of a whole table as it crosses: key, values, version.
pub type KeyedRow = (Key, Vec<Value>, Version);
/// A table's first rows as they cross, with the last key of them (`None`: every row).
pub type FirstRows = (Vec<KeyedRow>, Option<Key>);

/// What this gluebind's object reads and answers beyond the first release of the wire, as a
/// number its answers carry (`wire`; absent from an older object's): 2 reads a table without
/// its schema ([`TableWire::schema`]); 3 reads a batch of requests ([`Request::Batch`]). A
/// worker sends what the object it last heard from reads.
pub const WIRE: u32 = 3;

/// A table as a session holds it (part of it, unless `complete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableWire {
    /// `None`: the object's own schema of the table (which changed since if its schema version
    /// is not `schema_version`: validation then compares versions as usual). Left out, to an
    /// object of [`WIRE`] 2 or later (an older one refuses the request), of every snapshot
    /// table and of every table whose schema the session kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    pub schema_version: Version,
    pub version: Version,
    /// Rows by key: values and version, or `None` where the key is known to be absent.
    pub rows: Vec<(Key, RowWire)>,
    pub complete: bool,
}

/// One table of a commit: as the session saw it, and as it leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDelta {
    pub name: String,
    pub base: Option<TableWire>,
    pub mine: Option<TableWire>,
}

/// A session's commit (see the module documentation).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The object version the session read as of.
    pub at: Version,
    pub tables: Vec<TableDelta>,
    /// Keys written, per table; tables created, altered or dropped.
    pub wrote: Vec<(String, Vec<Key>)>,
    pub ddl: Vec<String>,
    /// Tables whose schema alone changed, in place (indexes, a column renamed or added: the
    /// stored rows stay; their schema is in `tables`).
    #[serde(default)]
    pub indexed: Vec<String>,
    /// Keys read by primary key, per table; tables scanned.
    pub read: Vec<(String, Vec<Key>)>,
    pub scanned: Vec<String>,
    /// Keys inserted without being read, per table (also in `base` as absent, so that an
    /// object that predates this field refuses a taken key as a conflict, never overwrites it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<(String, Vec<Key>)>,
    /// Tables renamed in place: (new name, old name). The old name is in `indexed` as well, so
    /// that an object that predates this field refuses the commit as a conflict (its schema
    /// changed in place, yet the session no longer holds it) instead of committing nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<(String, String)>,
}

/// A table as a load answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaWire {
    pub schema: Schema,
    pub schema_version: Version,
    pub version: Version,
}

/// A change of one commit, to bring an isolate cache up to date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A row written (`None`: deleted), and the unique values (column position, value) it
    /// held before, which caches release (found without scanning their unique index).
    Row(String, Key, RowWire, Vec<(usize, Key)>),
    /// A table created, altered or dropped: caches forget it.
    Table(String),
}

/// What a load answers, each part in the order its [`Load`] asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loaded {
    pub at: Version,
    /// The object's [`WIRE`] (0 from an older object).
    #[serde(default)]
    pub wire: u32,
    pub schemas: Vec<Option<SchemaWire>>,
    pub all_schemas: Option<Vec<(String, SchemaWire)>>,
    pub rows: Vec<RowWire>,
    pub tables: Vec<Option<Vec<KeyedRow>>>,
    pub uniques: Vec<Option<Key>>,
    /// Per `firsts` asked: the table's first rows up to the last key given (`None`: to its
    /// end), or `None` for a table that does not exist. Absent from an older object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firsts: Option<Vec<Option<FirstRows>>>,
    /// Per `indexed` asked: the rows holding the value (`None`: no such table or index).
    /// Absent from an older object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexed: Option<Vec<Option<Vec<KeyedRow>>>>,
    /// Per `counts` asked: the table's rows (`None`: no such table). Absent from an older
    /// object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<Option<u64>>>,
}

/// The object's answer (externally tagged, as [`Request`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Loaded(Loaded),
    Committed {
        version: Version,
        rows_written: usize,
        tables_changed: usize,
        /// The object's [`WIRE`] (0 from an older object).
        #[serde(default)]
        wire: u32,
        /// Every change of the commits after the request's `cache` version up to this one,
        /// in order (`None`: too many, or too old: the cache starts over).
        since: Option<Vec<(Version, Vec<Change>)>>,
    },
    Ids {
        first: i64,
        count: u32,
    },
    /// A load as of a version the object no longer keeps.
    TooOld {
        oldest: Version,
    },
    /// The answers of a [`Request::Batch`], in its order.
    Batch(Vec<Response>),
    Failed {
        error: ErrorWire,
        /// For a refused commit (`CONFLICT`, `UNIQUE`): the changes after the request's cache
        /// version, as a commit's answer brings them, so that the cache catches up rather than
        /// starting over (absent from an older object: the cache starts over).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Vec<(Version, Vec<Change>)>>,
    },
}

/// A gluebind error as the object reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorWire {
    Conflict {
        table: String,
        detail: String,
    },
    Unique {
        table: String,
        column: String,
        value: String,
    },
    Storage {
        message: String,
    },
    Request {
        message: String,
    },
}

impl From<&Error> for ErrorWire {
    fn from(error: &Error) -> Self {
        match error {
            Error::Conflict { table, detail } => Self::Conflict {
                table: table.clone(),
                detail: detail.clone(),
            },
            Error::Unique {
                table,
                column,
                value,
            } => Self::Unique {
                table: table.clone(),
                column: column.clone(),
                value: value.clone(),
            },
            other => Self::Storage {
                message: other.to_string(),
            },
        }
    }
}

impl From<ErrorWire> for Error {
    fn from(error: ErrorWire) -> Self {
        match error {
            ErrorWire::Conflict { table, detail } => Error::Conflict { table, detail },
            ErrorWire::Unique {
                table,
                column,
                value,
            } => Error::Unique {
                table,
                column,
                value,
            },
            ErrorWire::Storage { message } => Error::Storage {
                message: format!("the database object failed: {message}"),
            },
            ErrorWire::Request { message } => Error::Storage {
                message: format!("the database object refused the request: {message}"),
            },
        }
    }
}

fn wire(table: &Table, keys: impl Iterator<Item = Key>, schema: bool) -> TableWire {
    let rows = keys
        .filter_map(|key| {
            table.lookup(&key).map(|row| {
                let row = row.map(|r| (r.values.as_ref().clone(), r.version));
                (key, row)
            })
        })
        .collect();
    TableWire {
        schema: schema.then(|| Schema::clone(&table.schema)),
        schema_version: table.schema_version,
        version: table.version,
        rows,
        complete: false,
    }
}

fn whole(table: &Table) -> TableWire {
    TableWire {
        schema: Some(Schema::clone(&table.schema)),
        schema_version: table.schema_version,
        version: table.version,
        rows: table
            .rows
            .iter()
            .map(|(k, r)| (k.clone(), Some((r.values.as_ref().clone(), r.version))))
            .collect(),
        complete: true,
    }
}

/// Largest row the object stores (SQLite-backed Durable Objects refuse a row, string or blob
/// over 2 MB), as its values' JSON.
pub const MAX_ROW_BYTES: usize = 2_000_000;

/// Refuses, before anything is sent, a written row the object could not store: a NaN or
/// infinite float (JSON has none) or a row over [`MAX_ROW_BYTES`].
fn check_rows(name: &str, table: &TableWire) -> Result<()> {
    for (key, row) in &table.rows {
        let Some((values, _)) = row else { continue };
        if let Some(bad) = values
            .iter()
            .find_map(crate::storage::kv::layout::non_finite)
        {
            return Err(Error::Storage {
                message: format!(
                    "a row of {name} (key {key:?}) holds the float {bad}, which the database \
                     object cannot store; store NULL (or the text) instead"
                ),
            });
        }
        // The stored row holds the table's name, the key and the values, each as JSON.
        fn json_len<T: Serialize>(v: &T) -> usize {
            serde_json::to_string(v).map_or(usize::MAX, |json| json.len())
        }
        let size = name
            .len()
            .saturating_add(json_len(key))
            .saturating_add(json_len(values));
        if size > MAX_ROW_BYTES {
            let mut shown = format!("{key:?}");
            if shown.len() > 80 {
                shown = format!("{}…", shown.chars().take(80).collect::<String>());
            }
            return Err(Error::Storage {
                message: format!(
                    "a row of {name} (key {shown}) is {size} bytes as stored, over the Durable \
                     Object's {MAX_ROW_BYTES}-byte row limit: keep large values elsewhere (R2) \
                     or split them"
                ),
            });
        }
    }
    Ok(())
}

/// One row `ws` wrote: table, key, the row it leaves (`None`: deleted) and the one it held
/// before (`None`: none).
type OwnRow<'a> = (
    &'a Table,
    &'a String,
    &'a Key,
    Option<&'a StoredRow>,
    Option<&'a StoredRow>,
);

/// The rows `ws` wrote, when the session alone can tell what its commit changes: it wrote rows
/// only (no schema changed), at most [`super::object::CATCH_UP_MAX`] of them, and knew at its
/// snapshot every row it wrote — which the commit then checks unchanged, so what they held
/// before is the snapshot's. `None` otherwise. Copies nothing.
pub(crate) fn own_rows(ws: &SessionStore) -> Option<Vec<OwnRow<'_>>> {
    if !ws.writes.tables.is_empty()
        || ws.writes.in_place_only().next().is_some()
        || !ws.writes.renamed.is_empty()
        || ws.writes.rows.values().map(im::OrdSet::len).sum::<usize>() > super::object::CATCH_UP_MAX
    {
        return None;
    }
    let mut rows = Vec::new();
    for (name, keys) in &ws.writes.rows {
        let (mine, base) = (ws.db.tables.get(name)?, ws.base.tables.get(name)?);
        let assumed = ws.writes.assumed.get(name);
        for key in keys {
            // An insert that read nothing held nothing: the commit checks the key free.
            let before = match assumed.is_some_and(|a| a.contains(key)) {
                true => None,
                false => base.lookup(key)?,
            };
            rows.push((base, name, key, mine.lookup(key)?, before));
        }
    }
    Some(rows)
}

/// The unique values (column position, value) `old` held in `columns`: what a cache releases
/// when the row changes ([`Change::Row`]).
pub(crate) fn released(columns: &[(usize, String)], old: &StoredRow) -> Vec<(usize, Key)> {
    columns
        .iter()
        .filter_map(|(pos, _)| Some((*pos, old.values.get(*pos).and_then(unique_key)?)))
        .collect()
}

/// The changes the object records for a commit at version `stamp` of the rows [`own_rows`]
/// gave (what its answer would bring the committing isolate's cache).
pub(crate) fn own_changes(rows: Vec<OwnRow<'_>>, stamp: Version) -> Vec<Change> {
    let mut columns: Option<(&String, Vec<(usize, String)>)> = None;
    let mut changes = Vec::with_capacity(rows.len());
    for (base, name, key, row, before) in rows {
        if columns.as_ref().is_none_or(|(of, _)| *of != name) {
            columns = Some((name, base.unique_columns()));
        }
        let unique = columns.as_ref().map_or(&[][..], |(_, c)| c.as_slice());
        let released = before.map(|old| released(unique, old)).unwrap_or_default();
        let row = row.map(|r| (r.values.as_ref().clone(), stamp));
        changes.push(Change::Row(name.clone(), key.clone(), row, released));
    }
    changes
}

impl Delta {
    /// The parts of `ws` the object needs to validate and apply its commit; `compact` leaves
    /// out the schemas the object has (an object of [`WIRE`] 2 or later: see
    /// [`TableWire::schema`]).
    ///
    /// # Errors
    /// [`Error::Storage`] for a written row the object could not store ([`check_rows`]).
    pub fn of(ws: &SessionStore, compact: bool) -> Result<Self> {
        let reads = ws.reads.borrow();
        let mut names: std::collections::BTreeSet<&String> = ws.writes.tables.iter().collect();
        names.extend(ws.writes.in_place_only());
        names.extend(ws.writes.rows.keys());
        names.extend(ws.writes.renamed.iter().flat_map(|(new, old)| [new, old]));
        names.extend(reads.rows.keys());
        names.extend(reads.tables.iter());
        let keys_of = |name: &str| -> Vec<Key> {
            let mut keys: std::collections::BTreeSet<Key> = std::collections::BTreeSet::new();
            keys.extend(ws.writes.rows.get(name).into_iter().flatten().cloned());
            keys.extend(reads.rows.get(name).into_iter().flatten().cloned());
            keys.into_iter().collect()
        };
        let tables = names
            .into_iter()
            .map(|name| {
                let ddl = ws.writes.tables.contains(name);
                let keys = keys_of(name);
                let base_table = ws.base.tables.get(name);
                // The session's schema is the one it read (the object's at that version).
                let schema_read = |t: &Table| {
                    base_table.is_some_and(|b| {
                        b.schema_version == t.schema_version
                            && (Arc::ptr_eq(&b.schema, &t.schema) || b.schema == t.schema)
                    })
                };
                TableDelta {
                    name: name.clone(),
                    base: base_table.map(|t| {
                        let mut base = wire(t, keys.iter().cloned(), !compact);
                        // Inserted unread: absent, whatever was loaded since (an older object
                        // then refuses a taken key instead of overwriting it).
                        if let Some(assumed) = ws.writes.assumed.get(name) {
                            base.rows.retain(|(key, _)| !assumed.contains(key));
                            base.rows
                                .extend(assumed.iter().map(|key| (key.clone(), None)));
                        }
                        base
                    }),
                    mine: ws.db.tables.get(name).map(|t| match ddl {
                        true => whole(t),
                        false => wire(
                            t,
                            ws.writes.rows.get(name).into_iter().flatten().cloned(),
                            !(compact && schema_read(t)),
                        ),
                    }),
                }
            })
            .collect::<Vec<TableDelta>>();
        for t in &tables {
            if let Some(mine) = &t.mine {
                check_rows(&t.name, mine)?;
            }
        }
        Ok(Self {
            at: ws.as_of,
            tables,
            wrote: ws
                .writes
                .rows
                .iter()
                .map(|(t, keys)| (t.clone(), keys.iter().cloned().collect()))
                .collect(),
            ddl: ws.writes.tables.iter().cloned().collect(),
            indexed: ws
                .writes
                .in_place_only()
                .chain(ws.writes.renamed.values())
                .cloned()
                .collect(),
            read: reads
                .rows
                .iter()
                .map(|(t, keys)| (t.clone(), keys.iter().cloned().collect()))
                .collect(),
            scanned: reads.tables.iter().cloned().collect(),
            assumed: ws
                .writes
                .assumed
                .iter()
                .map(|(t, keys)| (t.clone(), keys.iter().cloned().collect()))
                .collect(),
            renamed: ws
                .writes
                .renamed
                .iter()
                .map(|(new, old)| (new.clone(), old.clone()))
                .collect(),
        })
    }

    /// The session store this delta came from, as far as validation needs it; the schemas it
    /// left out are `committed`'s.
    ///
    /// # Errors
    /// [`Error::Storage`] when the delta is inconsistent (a written table the session did not
    /// hold); [`Error::Conflict`] when it left out a schema `committed` no longer has.
    pub fn into_store(self, committed: &Database) -> Result<SessionStore> {
        let mut base = Database::partial();
        let mut db = Database::partial();
        for t in self.tables {
            if let Some(b) = t.base {
                base.tables
                    .insert(t.name.clone(), table(&t.name, b, committed)?);
            }
            match t.mine {
                Some(m) => {
                    let complete = m.complete;
                    let mut table = table(&t.name, m, committed)?;
                    if complete {
                        reindex(&mut table);
                    }
                    db.tables.insert(t.name, table);
                }
                None => {
                    db.absent_tables.insert(t.name);
                }
            }
        }
        let mut ws = SessionStore::new(base, Rc::new(Cell::new(0)), self.at);
        ws.db = db;
        ws.writes = WriteSet {
            rows: self
                .wrote
                .into_iter()
                .map(|(t, keys)| (t, keys.into_iter().collect::<im::OrdSet<Key>>()))
                .collect(),
            tables: self.ddl.into_iter().collect(),
            in_place: self.indexed.into_iter().collect(),
            assumed: self
                .assumed
                .into_iter()
                .map(|(t, keys)| (t, keys.into_iter().collect::<im::OrdSet<Key>>()))
                .collect(),
            renamed: self.renamed.into_iter().collect(),
        };
        for name in ws.writes.rows.keys() {
            if !ws.db.tables.contains_key(name) && !ws.writes.tables.contains(name) {
                return Err(Error::Storage {
                    message: format!("a commit wrote rows of table {name} without the table"),
                });
            }
        }
        *ws.reads.get_mut() = ReadSet {
            rows: self
                .read
                .into_iter()
                .map(|(t, keys)| (t, keys.into_iter().collect::<im::OrdSet<Key>>()))
                .collect(),
            tables: self.scanned.into_iter().collect(),
        };
        Ok(ws)
    }
}

/// The table `w` describes, with `committed`'s schema where `w` left it out, at the schema
/// version `w` names: where the schema changed since, validation compares the versions as it
/// would have with the session's schema (a written table conflicts; a scan alone compares the
/// table's version).
fn table(name: &str, w: TableWire, committed: &Database) -> Result<Table> {
    let mut t = match w.schema {
        Some(schema) => Table::partial(schema, w.schema_version),
        None => match committed.tables.get(name) {
            Some(c) => Table::partial_like(c),
            // Dropped since the session read it: validation refuses any commit that read or
            // wrote it.
            None => return Err(Error::conflict(name, "the table (dropped)")),
        },
    };
    t.schema_version = w.schema_version;
    t.version = w.version;
    for (key, row) in w.rows {
        match row {
            Some((values, version)) => {
                t.put_row(
                    key,
                    StoredRow {
                        values: Arc::new(values),
                        version,
                    },
                );
            }
            None => {
                t.absent.insert(key);
            }
        }
    }
    if w.complete {
        t.complete = true;
        t.absent = im::OrdSet::new();
    }
    Ok(t)
}

/// Builds a complete table's unique index from its rows.
pub(crate) fn reindex(t: &mut Table) {
    // Committed rows (and a session's, checked as it wrote them) hold no repeats.
    let _ = t.reindex_unique();
}
