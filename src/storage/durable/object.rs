//! The Durable Object's side of `do://`: one object per database holds its committed state,
//! validates every commit against it — exactly as `memory://` does, with the session's read
//! set (serializable) — and applies it in one synchronous step, so that commits from every
//! isolate and location are serialized in one place. It runs no user code.
//!
//! The state lives in memory as persistent maps (a snapshot per version is an O(1) clone) and
//! in the object's storage through [`Persistence`]: every commit is stored before it is
//! answered, and an object that was evicted loads it again. Recent versions are kept so that a
//! session reads as of one version throughout (`Load { at }`), and so that an isolate's cache
//! can catch up with the commits after its own version.

use super::wire::{
    Change, Delta, ErrorWire, KeyedRow, Load, Loaded, Request, Response, RowWire, SchemaWire, WIRE,
};
use crate::{
    error::{Error, Result},
    snapshot::{Database, StoredRow, Table, Version},
    storage::validate::{Committed, ReadCheck},
};
use gluesql_core::prelude::Key;
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

/// Earlier versions kept for loads as of them and for cache catch-up (their changes).
const HISTORY: usize = 4096;
/// Every this many versions, the whole state of one is kept (a checkpoint); a load as of a
/// version in between rolls the checkpoint before it forward with the changes since. Keeping
/// every version whole would keep every node copied by every commit: tens of MB after a few
/// thousand commits, beyond a Durable Object's 128 MB.
const CHECKPOINT_EVERY: Version = 64;
/// A checkpoint is kept sooner when this many rows changed since the last one (a load rolls
/// no more than about this many forward).
const CHECKPOINT_ROWS: usize = 1000;
/// Most bytes (estimated) the changes of recent versions may hold: beyond, the oldest go, and
/// with them the versions a load can be answered as of (large rows would otherwise fill the
/// object's memory within the 4 096 versions).
const CHANGES_MAX_BYTES: usize = 16 << 20;

/// A rough size in memory of one version's changes.
fn change_bytes(changes: &[Change]) -> usize {
    let value = |v: &gluesql_core::prelude::Value| {
        use gluesql_core::prelude::Value;
        match v {
            Value::Str(s) => 32 + s.len(),
            Value::Bytea(b) => 32 + b.len(),
            Value::Map(_) | Value::List(_) => 32 + String::from(v).len(),
            _ => 32,
        }
    };
    changes
        .iter()
        .map(|c| match c {
            Change::Table(name) => 64 + name.len(),
            Change::Row(name, _, row, released) => {
                let values = row.as_ref().map_or(0, |(v, _)| v.iter().map(value).sum());
                96 + name.len() + values + 48 * released.len()
            }
        })
        .sum()
}
/// Most changes a commit's answer brings an isolate cache (more: the cache starts over).
pub(crate) const CATCH_UP_MAX: usize = 1000;
/// Commit ids remembered, so that a retried commit is answered, not applied twice.
const DONE_MAX: usize = 10_000;

/// Everything an object stores, as [`Persistence::load`] gives it back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub version: Version,
    /// Table → its schema, versions and rows.
    pub tables: BTreeMap<String, (SchemaWire, Vec<KeyedRow>)>,
    /// Sequence name → the next value it gives.
    pub sequences: BTreeMap<String, i64>,
    /// Recent commit ids and the version each created.
    pub commits: Vec<(u64, Version)>,
}

/// What one commit (or one reservation of IDs) changes in storage, applied atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub version: Version,
    /// Tables renamed (old name, new name): their rows move first.
    pub renamed: Vec<(String, String)>,
    /// Tables whose schema is set (`Some`) or that are dropped (`None`, rows included).
    pub schemas: Vec<(String, Option<SchemaWire>)>,
    /// Tables whose rows are all replaced by `rows` (a schema change rewrites every row).
    pub cleared: Vec<String>,
    /// Table versions to set (a table whose rows changed).
    pub table_versions: Vec<(String, Version)>,
    /// Rows written (`None`: deleted).
    pub rows: Vec<(String, Key, RowWire)>,
    pub sequences: Vec<(String, i64)>,
    /// The commit's id, remembered for retries; ids up to `forget_below` can be forgotten.
    pub commit: Option<(u64, Version)>,
    pub forget_below: Option<Version>,
}

/// Where an object keeps its state: the Durable Object's SQLite storage in a Worker, memory in
/// tests.
pub trait Persistence {
    /// Everything stored (an empty [`Stored`] for a new database).
    ///
    /// # Errors
    /// [`Error::Storage`] when the storage cannot be read.
    fn load(&mut self) -> Result<Stored>;
    /// Stores `batch` all or nothing.
    ///
    /// # Errors
    /// [`Error::Storage`] when it cannot: nothing was stored.
    fn store(&mut self, batch: &Batch) -> Result<()>;
}

impl Persistence for Box<dyn Persistence> {
    fn load(&mut self) -> Result<Stored> {
        (**self).load()
    }

    fn store(&mut self, batch: &Batch) -> Result<()> {
        (**self).store(batch)
    }
}

/// The database object (see the module documentation).
pub struct DatabaseObject<P> {
    persistence: P,
    committed: Committed,
    /// Checkpoints of earlier versions (see [`CHECKPOINT_EVERY`]), oldest first.
    history: VecDeque<(Version, Database)>,
    /// What each recent version changed, oldest first.
    changes: VecDeque<(Version, Vec<Change>)>,
    /// [`change_bytes`] of `changes`.
    changes_bytes: usize,
    /// Rows changed since the last checkpoint.
    rows_since_checkpoint: usize,
    /// The last state a load rolled forward (the next load as of that version reuses it).
    rolled: std::cell::RefCell<Option<(Version, Database)>>,
    sequences: BTreeMap<String, i64>,
    done: HashMap<u64, Version>,
    done_order: VecDeque<u64>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for DatabaseObject<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseObject")
            .field("version", &self.committed.version)
            .field("tables", &self.committed.db.tables.len())
            .finish_non_exhaustive()
    }
}

fn stored_table(schema: &SchemaWire, rows: Vec<KeyedRow>) -> Table {
    let mut t = Table::new(schema.schema.clone());
    t.schema_version = schema.schema_version;
    t.version = schema.version;
    for (key, values, version) in rows {
        t.put_row(
            key,
            StoredRow {
                values: Arc::new(values),
                version,
            },
        );
    }
    super::wire::reindex(&mut t);
    t
}

/// The first rows of `t` in key order: at least `want` of them and past key `past`, with the
/// last key given (`None` when they reach the table's end): what `Miss::Prefix` asks for.
fn first_rows(t: &Table, want: u32, past: Option<&Key>) -> (Vec<KeyedRow>, Option<Key>) {
    let want = usize::try_from(want).unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    let mut keys = t.rows.iter();
    for (k, r) in &mut keys {
        rows.push((k.clone(), r.values.as_ref().clone(), r.version));
        if rows.len() >= want && past.is_none_or(|past| k > past) {
            break;
        }
    }
    let through = keys.next().and(rows.last().map(|(k, _, _)| k.clone()));
    (rows, through)
}

fn schema_wire(t: &Table) -> SchemaWire {
    SchemaWire {
        schema: gluesql_core::data::Schema::clone(&t.schema),
        schema_version: t.schema_version,
        version: t.version,
    }
}

fn row_wire(row: Option<&StoredRow>) -> RowWire {
    row.map(|r| (r.values.as_ref().clone(), r.version))
}

/// The JSON answer of a request that failed before the object could take it (its storage
/// could not be opened).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn failure_json(error: &Error) -> String {
    serde_json::to_string(&failed(error)).unwrap_or_default()
}

fn failed(error: &Error) -> Response {
    Response::Failed {
        error: ErrorWire::from(error),
        since: None,
    }
}

impl<P: Persistence> DatabaseObject<P> {
    /// Opens the database stored in `persistence`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the storage cannot be read.
    pub fn open(mut persistence: P) -> Result<Self> {
        let stored = persistence.load()?;
        let mut db = Database::complete();
        for (name, (schema, rows)) in stored.tables {
            db.tables.insert(name, stored_table(&schema, rows));
        }
        let mut done = HashMap::new();
        let mut done_order = VecDeque::new();
        for (id, version) in stored.commits {
            done.insert(id, version);
            done_order.push_back(id);
        }
        Ok(Self {
            persistence,
            committed: Committed {
                db,
                version: stored.version,
            },
            history: VecDeque::new(),
            changes: VecDeque::new(),
            changes_bytes: 0,
            rows_since_checkpoint: 0,
            rolled: std::cell::RefCell::new(None),
            sequences: stored.sequences,
            done,
            done_order,
        })
    }

    /// The latest version.
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn version(&self) -> Version {
        self.committed.version
    }

    /// How many whole states of earlier versions the object keeps (its checkpoints).
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn kept_states(&self) -> usize {
        self.history.len()
    }

    /// The estimated bytes of the changes of recent versions the object keeps.
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn kept_change_bytes(&self) -> usize {
        self.changes_bytes
    }

    /// The latest committed state.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn database(&self) -> &Database {
        &self.committed.db
    }

    /// Answers a request given as JSON, as JSON (what the object's `fetch` does).
    pub fn handle_json(&mut self, body: &str) -> String {
        let response = match serde_json::from_str::<Request>(body) {
            Ok(request) => self.handle(request),
            Err(e) => Response::Failed {
                error: ErrorWire::Request {
                    message: format!("not a gluebind request: {e}"),
                },
                since: None,
            },
        };
        serde_json::to_string(&response).unwrap_or_else(|e| {
            serde_json::json!({"failed": {"error": {"code": "STORAGE", "message": e.to_string()}}})
                .to_string()
        })
    }

    /// Answers a request.
    pub fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Load(load) => self.load(&load),
            Request::Commit {
                id,
                cache,
                delta,
                mine,
            } => self.commit(id, cache, delta, mine),
            Request::Ids { name, count } => self.ids(&name, count),
            Request::Batch(requests) => Response::Batch(
                requests
                    .into_iter()
                    .map(|request| match request {
                        Request::Batch(_) => Response::Failed {
                            error: ErrorWire::Request {
                                message: "a batch inside a batch".to_owned(),
                            },
                            since: None,
                        },
                        request => self.handle(request),
                    })
                    .collect(),
            ),
        }
    }

    /// The database as of `at` (`None`: the latest).
    fn at(
        &self,
        at: Option<Version>,
    ) -> std::result::Result<(Version, std::borrow::Cow<'_, Database>), Box<Response>> {
        use std::borrow::Cow;
        let latest = self.committed.version;
        match at {
            None => Ok((latest, Cow::Borrowed(&self.committed.db))),
            Some(v) if v == latest => Ok((latest, Cow::Borrowed(&self.committed.db))),
            Some(v) if v > latest => Err(Box::new(Response::Failed {
                error: ErrorWire::Request {
                    message: format!("version {v} is newer than the database's ({latest})"),
                },
                since: None,
            })),
            Some(v) => self
                .rolled_forward(v)
                .map(|db| (v, Cow::Owned(db)))
                .ok_or_else(|| {
                    Box::new(Response::TooOld {
                        oldest: self.history.front().map_or(latest, |(v, _)| *v),
                    })
                }),
        }
    }

    /// The state as of version `v`: the last checkpoint at or before it, with the changes of
    /// the versions after it up to `v` applied. `None` when no checkpoint is that old, a change
    /// in between is missing, or one changed a schema (changes do not carry schemas).
    fn rolled_forward(&self, v: Version) -> Option<Database> {
        if let Some((at, db)) = self.rolled.borrow().as_ref() {
            if *at == v {
                return Some(db.clone());
            }
        }
        let (checkpoint, db) = self.history.iter().rev().find(|(c, _)| *c <= v)?;
        let mut db = db.clone();
        let changes: Vec<&(Version, Vec<Change>)> = self
            .changes
            .iter()
            .filter(|(c, _)| *c > *checkpoint && *c <= v)
            .collect();
        if changes.len() as Version != v - checkpoint {
            return None;
        }
        for (version, list) in changes {
            if list.iter().any(|c| matches!(c, Change::Table(_))) {
                return None;
            }
            super::apply_changes(&mut db, *version, list);
        }
        *self.rolled.borrow_mut() = Some((v, db.clone()));
        Some(db)
    }

    fn load(&self, load: &Load) -> Response {
        // Tables unchanged since the version asked for answer from the latest state as they
        // are: exact, with no state to roll forward, and also for a version no longer kept (the
        // object restarted, or many commits since).
        let unchanged = |v: Version| {
            !load.all_schemas && load.tables().all(|name| self.unchanged_since(name, v))
        };
        let found = match load.at {
            Some(v) if v != self.committed.version && unchanged(v) => {
                Ok((v, std::borrow::Cow::Borrowed(&self.committed.db)))
            }
            _ => self.at(load.at),
        };
        let (at, db) = match found {
            Ok(found) => found,
            Err(answer) => return *answer,
        };
        let table = |name: &str| db.tables.get(name);
        let keyed = |t: &Table, k: &Key| {
            t.rows
                .get(k)
                .map(|r| (k.clone(), r.values.as_ref().clone(), r.version))
        };
        Response::Loaded(Loaded {
            at,
            wire: WIRE,
            schemas: load
                .schemas
                .iter()
                .map(|name| table(name).map(schema_wire))
                .collect(),
            all_schemas: load.all_schemas.then(|| {
                db.tables
                    .iter()
                    .map(|(name, t)| (name.clone(), schema_wire(t)))
                    .collect()
            }),
            rows: load
                .rows
                .iter()
                .map(|(name, key)| row_wire(table(name).and_then(|t| t.rows.get(key))))
                .collect(),
            tables: load
                .tables
                .iter()
                .map(|name| {
                    table(name).map(|t| t.rows.keys().filter_map(|k| keyed(t, k)).collect())
                })
                .collect(),
            uniques: load
                .uniques
                .iter()
                .map(|(name, pos, value)| {
                    table(name).and_then(|t| t.unique.get(&(*pos, value.clone())).cloned())
                })
                .collect(),
            firsts: (!load.firsts.is_empty()).then(|| {
                load.firsts
                    .iter()
                    .map(|(name, want, past)| {
                        table(name).map(|t| first_rows(t, *want, past.as_ref()))
                    })
                    .collect()
            }),
            counts: (!load.counts.is_empty()).then(|| {
                load.counts
                    .iter()
                    .map(|name| table(name).map(|t| t.rows.len() as u64))
                    .collect()
            }),
            indexed: (!load.indexed.is_empty()).then(|| {
                load.indexed
                    .iter()
                    .map(|(name, index, value)| {
                        let t = table(name)?;
                        let keys = t.index_lookup(index, value.clone()..=value.clone())?;
                        Some(keys.iter().filter_map(|k| keyed(t, k)).collect())
                    })
                    .collect()
            }),
        })
    }

    /// True when table `name` exists and no commit after `v` changed it (its rows or schema):
    /// as of `v` it was what it is now. (A table that does not exist now may have been dropped
    /// after `v`: unknown.)
    fn unchanged_since(&self, name: &str, v: Version) -> bool {
        self.committed
            .db
            .tables
            .get(name)
            .is_some_and(|t| t.version <= v && t.schema_version <= v)
    }

    fn commit(&mut self, id: u64, cache: Option<Version>, delta: Delta, mine: bool) -> Response {
        if let Some(&version) = self.done.get(&id) {
            // A retry of a commit already applied: the same answer (without its counts), with
            // the changes up to it while they are kept (an object started since has none).
            let upto = if mine { version - 1 } else { version };
            return Response::Committed {
                version,
                rows_written: 0,
                tables_changed: 0,
                wire: WIRE,
                since: cache.and_then(|c| self.since(c, upto)),
            };
        }
        let stamp = self.committed.version + 1;
        let checked = delta.into_store(&self.committed.db).and_then(|ws| {
            let done = self.committed.apply(&ws, stamp, ReadCheck::All)?;
            Ok((ws, done))
        });
        let (ws, (next, applied)) = match checked {
            Ok(checked) => checked,
            // Refused: the cache learns what it missed (it was behind what refused it).
            Err(e) => {
                return Response::Failed {
                    error: ErrorWire::from(&e),
                    since: cache.and_then(|c| self.since(c, self.committed.version)),
                }
            }
        };
        // What storage must hold now, and what caches must learn.
        let mut batch = Batch {
            version: stamp,
            commit: Some((id, stamp)),
            ..Batch::default()
        };
        let mut changes = Vec::new();
        for name in &ws.writes.tables {
            changes.push(Change::Table(name.clone()));
            match next.db.tables.get(name) {
                Some(t) => {
                    batch.schemas.push((name.clone(), Some(schema_wire(t))));
                    batch.cleared.push(name.clone());
                    for (k, r) in &t.rows {
                        batch
                            .rows
                            .push((name.clone(), k.clone(), row_wire(Some(r))));
                    }
                }
                None => batch.schemas.push((name.clone(), None)),
            }
        }
        // Tables renamed: the rows move to the new name (one statement in the object's
        // storage), the schema with them; caches drop both names.
        for (new, old) in &ws.writes.renamed {
            if let Some(t) = next.db.tables.get(new) {
                changes.push(Change::Table(old.clone()));
                changes.push(Change::Table(new.clone()));
                batch.renamed.push((old.clone(), new.clone()));
                batch.schemas.push((old.clone(), None));
                batch.schemas.push((new.clone(), Some(schema_wire(t))));
            }
        }
        // Schemas changed in place (indexes, columns added or renamed): the schema is stored,
        // the rows stay; caches drop the table (its next read loads it with the new schema).
        for name in ws.writes.in_place_only() {
            if let Some(t) = next.db.tables.get(name) {
                changes.push(Change::Table(name.clone()));
                batch.schemas.push((name.clone(), Some(schema_wire(t))));
            }
        }
        for (name, keys) in &ws.writes.rows {
            if ws.writes.tables.contains(name) {
                continue;
            }
            let t = next.db.tables.get(name);
            let before = self.committed.db.tables.get(name);
            let columns = before.map(Table::unique_columns).unwrap_or_default();
            batch.table_versions.push((name.clone(), stamp));
            for key in keys {
                let row = row_wire(t.and_then(|t| t.rows.get(key)));
                let released = before
                    .and_then(|t| t.rows.get(key))
                    .map(|old| super::wire::released(&columns, old))
                    .unwrap_or_default();
                batch.rows.push((name.clone(), key.clone(), row.clone()));
                changes.push(Change::Row(name.clone(), key.clone(), row, released));
            }
        }
        if self.done_order.len() >= DONE_MAX {
            batch.forget_below = self
                .done_order
                .get(DONE_MAX / 2)
                .and_then(|id| self.done.get(id))
                .copied();
        }
        // What the worker tells itself must be what the object records.
        debug_assert!(
            !mine
                || super::wire::own_rows(&ws)
                    .is_none_or(|rows| super::wire::own_changes(rows, stamp) == changes),
            "own changes differ from the object's"
        );
        if let Err(e) = self.persistence.store(&batch) {
            return failed(&e);
        }
        // Stored: now the state moves on.
        let previous = std::mem::replace(&mut self.committed, next);
        self.committed.version = stamp;
        if previous.version % CHECKPOINT_EVERY == 0
            || self.history.is_empty()
            || self.rows_since_checkpoint >= CHECKPOINT_ROWS
        {
            self.history.push_back((previous.version, previous.db));
            self.rows_since_checkpoint = 0;
        }
        // Changes carry no schemas: a schema change starts a checkpoint of its own, so that no
        // version needs one rolled over.
        if changes.iter().any(|c| matches!(c, Change::Table(_))) {
            self.history.push_back((stamp, self.committed.db.clone()));
            self.rows_since_checkpoint = 0;
        }
        self.rows_since_checkpoint += changes.len();
        self.changes_bytes += change_bytes(&changes);
        self.changes.push_back((stamp, changes));
        while self.changes.len() > HISTORY || self.changes_bytes > CHANGES_MAX_BYTES {
            let Some((_, gone)) = self.changes.pop_front() else {
                break;
            };
            self.changes_bytes = self.changes_bytes.saturating_sub(change_bytes(&gone));
        }
        // Versions from `oldest` on can be rolled forward: keep the last checkpoint at or
        // before it, drop those before that one.
        let oldest = self.changes.front().map_or(stamp, |(v, _)| v - 1);
        while self.history.len() > 1 && self.history.get(1).is_some_and(|(v, _)| *v <= oldest) {
            self.history.pop_front();
        }
        self.remember(id, stamp, batch.forget_below);
        Response::Committed {
            version: stamp,
            rows_written: applied.rows_written,
            tables_changed: applied.tables_changed,
            wire: WIRE,
            since: cache.and_then(|c| self.since(c, if mine { stamp - 1 } else { stamp })),
        }
    }

    fn remember(&mut self, id: u64, version: Version, forget_below: Option<Version>) {
        self.done.insert(id, version);
        self.done_order.push_back(id);
        if let Some(below) = forget_below {
            while let Some(old) = self.done_order.front() {
                if self.done.get(old).is_some_and(|v| *v > below) {
                    break;
                }
                let old = self.done_order.pop_front().expect("front");
                self.done.remove(&old);
            }
        }
    }

    /// The changes of versions after `cache` up to `upto`, when they are all kept and few.
    fn since(&self, cache: Version, upto: Version) -> Option<Vec<(Version, Vec<Change>)>> {
        if cache >= upto {
            return Some(Vec::new());
        }
        let first = self.changes.front()?.0;
        if cache + 1 < first {
            return None;
        }
        // Versions ascend: found by bisection, not by a walk over every version kept.
        let start = self.changes.partition_point(|(v, _)| *v <= cache);
        let out: Vec<(Version, Vec<Change>)> = self
            .changes
            .range(start..)
            .take_while(|(v, _)| *v <= upto)
            .cloned()
            .collect();
        let size: usize = out.iter().map(|(_, c)| c.len()).sum();
        (size <= CATCH_UP_MAX).then_some(out)
    }

    fn ids(&mut self, name: &str, count: u32) -> Response {
        if count == 0 || count > 10_000 {
            return Response::Failed {
                error: ErrorWire::Request {
                    message: format!("ids: count must be 1 to 10000, got {count}"),
                },
                since: None,
            };
        }
        // Above the table's largest integer key, as memory:// starts its sequences.
        let floor = self
            .committed
            .max_integer_key(name)
            .unwrap_or(0)
            .checked_add(1);
        let first = floor.map(|floor| self.sequences.get(name).copied().unwrap_or(1).max(floor));
        let Some((first, next)) =
            first.and_then(|first| Some((first, first.checked_add(i64::from(count))?)))
        else {
            return failed(&Error::Storage {
                message: format!("the ID sequence {name} is exhausted"),
            });
        };
        let batch = Batch {
            version: self.committed.version,
            sequences: vec![(name.to_owned(), next)],
            ..Batch::default()
        };
        if let Err(e) = self.persistence.store(&batch) {
            return failed(&e);
        }
        self.sequences.insert(name.to_owned(), next);
        Response::Ids { first, count }
    }
}

/// Persistence in memory (tests), shared by the objects opened over it (a test restarts an object by
/// opening another over the same store).
#[derive(Debug, Clone, Default)]
#[cfg(any(test, feature = "testing"))]
pub struct MemoryPersistence {
    state: std::rc::Rc<std::cell::RefCell<Stored>>,
    fail_next: std::rc::Rc<std::cell::Cell<bool>>,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryPersistence {
    /// A new, empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next [`Persistence::store`] fail (and store nothing).
    pub fn fail_next_store(&self) {
        self.fail_next.set(true);
    }
}

/// Applies `batch` to `state` (what a SQL store does with its statements).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn apply_batch(state: &mut Stored, batch: &Batch) {
    state.version = state.version.max(batch.version);
    for (old, new) in &batch.renamed {
        if let Some(table) = state.tables.remove(old) {
            state.tables.insert(new.clone(), table);
        }
    }
    for (name, schema) in &batch.schemas {
        match schema {
            Some(schema) => {
                let entry = state
                    .tables
                    .entry(name.clone())
                    .or_insert_with(|| (schema.clone(), Vec::new()));
                entry.0 = schema.clone();
            }
            None => {
                state.tables.remove(name);
            }
        }
    }
    for name in &batch.cleared {
        if let Some(t) = state.tables.get_mut(name) {
            t.1.clear();
        }
    }
    for (name, version) in &batch.table_versions {
        if let Some(t) = state.tables.get_mut(name) {
            t.0.version = *version;
        }
    }
    for (name, key, row) in &batch.rows {
        let Some(t) = state.tables.get_mut(name) else {
            continue;
        };
        t.1.retain(|(k, _, _)| k != key);
        if let Some((values, version)) = row {
            t.1.push((key.clone(), values.clone(), *version));
        }
    }
    for (name, next) in &batch.sequences {
        state.sequences.insert(name.clone(), *next);
    }
    if let Some((id, version)) = batch.commit {
        state.commits.push((id, version));
    }
    if let Some(below) = batch.forget_below {
        state.commits.retain(|(_, v)| *v > below);
    }
}

#[cfg(any(test, feature = "testing"))]
impl Persistence for MemoryPersistence {
    fn load(&mut self) -> Result<Stored> {
        Ok(self.state.borrow().clone())
    }

    fn store(&mut self, batch: &Batch) -> Result<()> {
        if self.fail_next.replace(false) {
            return Err(Error::Storage {
                message: "the object's storage failed (injected)".to_owned(),
            });
        }
        apply_batch(&mut self.state.borrow_mut(), batch);
        Ok(())
    }
}
