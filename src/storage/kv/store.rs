//! Loading on demand and committing to KV, with an isolate cache in front.

use super::{
    backend::{KvBackend, KvEntry, KvFailure, KvResult, MAX_BULK_GET},
    flush::Writer,
    journal::{self, CommitRecord, RecordPut, RecordWrite, TableGuard},
    layout::{self, Layout, RowRecord, SchemaRecord, UniqueRecord},
};
use crate::{
    error::{Error, Result},
    snapshot::{unique_key, Database, StoredRow, Table, UniqueLookup, Version},
    storage::memory::render,
    workspace::{Miss, Workspace},
};
use gluesql_core::prelude::Key;
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet, VecDeque},
    future::Future,
    rc::Rc,
    sync::Arc,
};

/// Attempts per KV call (the first try plus retries) for 429s and transient failures.
const ATTEMPTS: u32 = 4;

/// Workers' hard limit of KV operations per invocation. Undoing a failed commit may go past a
/// session's own budget (`max_ops`), never past this.
pub(super) const WORKERS_MAX_OPS: u64 = 1000;

/// How long this isolate remembers its own writes: KV can take this long to show a write,
/// even (though rarely) at the location that made it.
const RECENT_MS: u64 = 60_000;
/// At most this many remembered writes, and this many bytes of their values (oldest go
/// first): the memory an isolate spends on it stays small.
const RECENT_MAX_KEYS: usize = 10_000;
const RECENT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// This isolate's latest write of one key.
#[derive(Debug)]
struct Recent {
    /// Values KV held before this isolate's writes of the key (None: absent): all stale now.
    replaced: Vec<Option<String>>,
    /// What the latest write left (None: deleted).
    after: Option<KvEntry>,
    /// Its place in `RecentWrites::order`.
    seq: u64,
}

/// This isolate's latest writes, so that its sessions see them, and its commits check
/// against them, while KV may still return what they replaced. A KV read that returns a
/// value a recent write replaced is taken as stale and answered with the write.
#[derive(Debug, Default)]
pub(super) struct RecentWrites {
    by_key: std::collections::HashMap<String, Recent>,
    /// (time, seq, key), oldest first.
    order: VecDeque<(u64, u64, String)>,
    seq: u64,
    bytes: usize,
}

impl RecentWrites {
    fn size(key: &str, r: &Recent) -> usize {
        key.len()
            + r.replaced.iter().flatten().map(String::len).sum::<usize>()
            + r.after.as_ref().map_or(0, |e| e.value.len())
    }

    /// Forgets writes older than [`RECENT_MS`], and the oldest beyond the size limits.
    pub(super) fn prune(&mut self, now: u64) {
        while let Some(&(at, _, _)) = self.order.front() {
            let full = self.by_key.len() > RECENT_MAX_KEYS || self.bytes > RECENT_MAX_BYTES;
            if now.saturating_sub(at) < RECENT_MS && !full {
                break;
            }
            let (_, seq, key) = self.order.pop_front().expect("not empty");
            // Only if no later write of the key replaced this one.
            if self.by_key.get(&key).is_some_and(|r| r.seq == seq) {
                let gone = self.by_key.remove(&key).expect("present");
                self.bytes -= Self::size(&key, &gone);
            }
        }
    }

    pub(super) fn record(
        &mut self,
        key: String,
        before: Option<String>,
        after: Option<KvEntry>,
        at: u64,
    ) {
        self.seq += 1;
        let mut replaced = match self.by_key.remove(&key) {
            Some(old) => {
                self.bytes -= Self::size(&key, &old);
                old.replaced
            }
            None => Vec::new(),
        };
        if after.as_ref().map(|e| &e.value) != before.as_ref() {
            replaced.push(before);
        }
        let recent = Recent {
            replaced,
            after,
            seq: self.seq,
        };
        self.bytes += Self::size(&key, &recent);
        self.order.push_back((at, self.seq, key.clone()));
        self.by_key.insert(key, recent);
    }

    /// This isolate's recent writes of keys under `prefix`: key → (values they replaced,
    /// latest value left; `None`: absent).
    fn under(&self, prefix: &str) -> Vec<(String, Vec<Option<String>>, Option<KvEntry>)> {
        self.by_key
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, r)| (key.clone(), r.replaced.clone(), r.after.clone()))
            .collect()
    }

    /// The entry to believe for `key` when KV returned `found`.
    fn overlay(&self, key: &str, found: Option<KvEntry>) -> Option<KvEntry> {
        let value = found.as_ref().map(|e| e.value.as_str());
        match self.by_key.get(key) {
            Some(r) if r.replaced.iter().any(|v| v.as_deref() == value) => r.after.clone(),
            _ => found,
        }
    }
}

/// What a load brought back, applied to the isolate cache and to the session.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    schemas: Vec<(String, Option<(gluesql_core::data::Schema, Version)>)>,
    all_schemas: bool,
    rows: Vec<(String, Key, Option<StoredRow>)>,
    complete: Vec<(String, Vec<(Key, StoredRow)>)>,
    uniques: Vec<(String, usize, Key, Option<Key>)>,
}

impl Patch {
    /// Fills the isolate cache: as [`Patch::absorb_session`], except that a complete load of
    /// a table also drops cached rows KV no longer lists (deleted elsewhere).
    pub fn absorb(&self, db: &mut Database, own: Option<&Workspace>) {
        self.absorb_with(db, own, true);
    }

    /// Fills a session's snapshot (`own`: the session, whose writes are never overridden).
    /// Rows the snapshot already holds stay, even where a table's listing lacks them: the
    /// session has seen them (repeatable reads), and KV's `list` may lag behind its `get`.
    /// A row deleted meanwhile elsewhere then surfaces as a conflict at commit, never as a
    /// write that silently matched nothing.
    pub fn absorb_session(&self, db: &mut Database, own: Option<&Workspace>) {
        self.absorb_with(db, own, false);
    }

    /// Fills in what `db` does not know yet (it never overrides known data, so a session's own
    /// writes and earlier reads stay as they are). `own` holds keys the session wrote.
    fn absorb_with(&self, db: &mut Database, own: Option<&Workspace>, drop_unlisted: bool) {
        for (name, schema) in &self.schemas {
            if db.tables.contains_key(name) || db.absent_tables.contains(name) {
                continue;
            }
            match schema {
                Some((schema, v)) => {
                    db.tables
                        .insert(name.clone(), Table::partial(schema.clone(), *v));
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
                    table.rows.insert(key.clone(), row.clone());
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
            let is_own = |k: &Key| written.is_some_and(|w| w.contains(k));
            let listed: BTreeSet<&Key> = rows.iter().map(|(k, _)| k).collect();
            // Rows gone from KV meanwhile (and not the session's own) disappear from the cache.
            let stale: Vec<Key> = table
                .rows
                .keys()
                .filter(|k| drop_unlisted && !listed.contains(k) && !is_own(k))
                .cloned()
                .collect();
            for key in stale {
                table.rows.remove(&key);
            }
            for (key, row) in rows {
                if table.rows.contains_key(key) || is_own(key) {
                    continue;
                }
                table.rows.insert(key.clone(), row.clone());
            }
            table.complete = true;
            table.absent = im::OrdSet::new();
            // The full row set determines the unique index.
            let columns = table.unique_columns();
            let mut index = crate::snapshot::UniqueIndex::new();
            for (key, row) in &table.rows {
                for (pos, _) in &columns {
                    if let Some(v) = row.values.get(*pos).and_then(unique_key) {
                        index.insert((*pos, v), key.clone());
                    }
                }
            }
            table.unique = index;
            table.unique_complete = true;
            table.unique_absent = im::OrdSet::new();
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

/// One planned write of a commit.
#[derive(Debug, Clone)]
pub(super) enum Write {
    Put(String, String, Option<serde_json::Value>),
    Delete(String),
}

impl Write {
    pub(super) fn key(&self) -> &str {
        match self {
            Self::Put(k, ..) | Self::Delete(k) => k,
        }
    }

    /// The entry the write leaves (`None`: deleted).
    pub(super) fn after(&self) -> Option<KvEntry> {
        match self {
            Self::Put(_, value, metadata) => Some(KvEntry {
                value: value.clone(),
                metadata: metadata.clone(),
            }),
            Self::Delete(_) => None,
        }
    }
}

/// A commit's writes, each with the table it belongs to.
#[derive(Debug, Default)]
struct Plan {
    writes: Vec<Write>,
    tables: Vec<String>,
}

impl Plan {
    fn push(&mut self, table: &str, write: Write) {
        self.writes.push(write);
        self.tables.push(table.to_owned());
    }
}

/// Most notes (skipped commit records, replays left for later) an isolate keeps.
const MAX_NOTES: usize = 100;

/// The KV side of a `kv://` engine.
pub(crate) struct KvStore {
    pub(super) kv: Rc<dyn KvBackend>,
    pub(super) layout: Layout,
    /// How long the isolate cache may serve data without asking KV again.
    pub cache_ttl_ms: u64,
    /// Most KV operations one session may use (Workers allow 1000 per invocation).
    pub max_ops: u64,
    pub(super) recent: RefCell<RecentWrites>,
    /// Commit records this isolate will not replay (corrupt), by key.
    pub(super) skipped: RefCell<BTreeSet<String>>,
    /// What the journal skipped or left for later, newest last (see `Engine::kv_notes`).
    notes: RefCell<VecDeque<String>>,
    /// (time, stamp) of this isolate's journaled commits of the last minute: applied in full,
    /// whatever KV still shows of their records.
    applied: RefCell<VecDeque<(u64, Version)>>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("layout", &self.layout)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("max_ops", &self.max_ops)
            .finish_non_exhaustive()
    }
}

fn entry_row(key_name: &str, entry: &KvEntry) -> Result<RowRecord> {
    layout::decode::<RowRecord>(key_name, &entry.value)
}

/// The version of a row record stored as `value`.
fn entry_row_value(key_name: &str, value: &str) -> Result<Version> {
    Ok(layout::decode::<RowRecord>(key_name, value)?.v)
}

fn stored(record: RowRecord, key_name: &str) -> Result<StoredRow> {
    let values = record.d.ok_or_else(|| Error::Storage {
        message: format!("KV row {key_name:?} has no values"),
    })?;
    Ok(StoredRow {
        values: Arc::new(values),
        version: record.v,
    })
}

impl KvStore {
    pub fn new(kv: Rc<dyn KvBackend>, prefix: &str, cache_ttl_ms: u64, max_ops: u64) -> Self {
        Self {
            kv,
            layout: Layout::new(prefix),
            cache_ttl_ms,
            max_ops,
            recent: RefCell::new(RecentWrites::default()),
            skipped: RefCell::new(BTreeSet::new()),
            notes: RefCell::new(VecDeque::new()),
            applied: RefCell::new(VecDeque::new()),
        }
    }

    /// Remembers why something was skipped or left for later: gluebind has no logger, and a
    /// replay must not fail the unrelated session that runs it.
    pub(super) fn note(&self, note: String) {
        let mut notes = self.notes.borrow_mut();
        if notes.len() == MAX_NOTES {
            notes.pop_front();
        }
        notes.push_back(note);
    }

    /// The notes so far, oldest first.
    pub fn notes(&self) -> Vec<String> {
        self.notes.borrow().iter().cloned().collect()
    }

    pub fn now_ms(&self) -> u64 {
        self.kv.now_ms()
    }

    pub async fn sleep(&self, ms: u64) {
        self.kv.sleep(ms).await;
    }

    /// Runs one KV call with bounded retries, counting every attempt against the budget.
    pub(super) async fn call<'a, T, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        f: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<T>> + 'a,
    {
        self.call_within(ops, what, self.max_ops, f).await
    }

    /// [`KvStore::call`] with `limit` operations at most (counting every attempt).
    pub(super) async fn call_within<'a, T, F, Fut>(
        &'a self,
        ops: &Cell<u64>,
        what: &str,
        limit: u64,
        f: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = KvResult<T>> + 'a,
    {
        let mut attempt = 0;
        loop {
            if ops.get() >= limit {
                return Err(Error::Storage {
                    message: format!(
                        "this session reached its budget of {limit} KV operations (Workers allow \
                         1000 per invocation); split the work across requests or read fewer rows"
                    ),
                });
            }
            ops.set(ops.get() + 1);
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(KvFailure::RateLimited(_)) if attempt < ATTEMPTS => {
                    // KV allows one write per second per key.
                    self.kv.sleep(1000 * u64::from(attempt)).await;
                }
                Err(KvFailure::Transient(_)) if attempt < ATTEMPTS => {
                    self.kv.sleep(50 << attempt).await;
                }
                Err(e) => {
                    return Err(Error::Storage {
                        message: format!("KV {what} failed after {attempt} attempt(s): {e}"),
                    })
                }
            }
        }
    }

    /// Point reads, in bulk gets of up to 100 keys, as this isolate should believe them.
    pub(super) async fn get_many(
        &self,
        ops: &Cell<u64>,
        keys: &[String],
    ) -> Result<Vec<Option<KvEntry>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BULK_GET) {
            if let [one] = chunk {
                out.push(self.call(ops, "get", || self.kv.get(one)).await?);
            } else {
                out.extend(
                    self.call(ops, "bulk get", || self.kv.get_many(chunk))
                        .await?,
                );
            }
        }
        // This isolate's recent writes win over KV's older values.
        let mut recent = self.recent.borrow_mut();
        recent.prune(self.now_ms());
        Ok(keys
            .iter()
            .zip(out)
            .map(|(key, found)| recent.overlay(key, found))
            .collect())
    }

    async fn list_all(
        &self,
        ops: &Cell<u64>,
        prefix: &str,
    ) -> Result<Vec<super::backend::ListedKey>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .call(ops, "list", || self.kv.list(prefix, cursor.clone()))
                .await?;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }

    /// Loads what the misses ask for.
    pub async fn load(&self, misses: &[Miss], ops: &Cell<u64>) -> Result<Patch> {
        let mut patch = Patch::default();
        let mut schema_keys = Vec::new();
        let mut row_keys = Vec::new();
        let mut unique_keys = Vec::new();
        for miss in misses {
            match miss {
                Miss::Schema(name) => {
                    schema_keys.push((name.clone(), self.layout.schema_key(name)?))
                }
                Miss::AllSchemas => {
                    let listed = self.list_all(ops, &self.layout.schemas_prefix()).await?;
                    let names: Vec<String> = listed.into_iter().map(|k| k.name).collect();
                    for (name, entry) in names.iter().zip(self.get_many(ops, &names).await?) {
                        if let Some(entry) = entry {
                            let rec: SchemaRecord = layout::decode(name, &entry.value)?;
                            patch
                                .schemas
                                .push((rec.schema.table_name.clone(), Some((rec.schema, rec.v))));
                        }
                    }
                    patch.all_schemas = true;
                }
                Miss::Row(table, key) => {
                    row_keys.push((table.clone(), key.clone(), self.layout.row_key(table, key)?));
                }
                Miss::Table(table) => {
                    let rows = self.load_table(table, ops).await?;
                    patch.complete.push((table.clone(), rows));
                }
                Miss::Unique {
                    table,
                    pos,
                    column,
                    value,
                } => unique_keys.push((
                    table.clone(),
                    *pos,
                    value.clone(),
                    self.layout.unique_key(table, column, value)?,
                )),
            }
        }
        // Point reads share bulk gets (one operation per 100 keys).
        let names: Vec<String> = schema_keys
            .iter()
            .map(|(_, k)| k.clone())
            .chain(row_keys.iter().map(|(_, _, k)| k.clone()))
            .chain(unique_keys.iter().map(|(.., k)| k.clone()))
            .collect();
        if names.is_empty() {
            return Ok(patch);
        }
        let mut entries = self.get_many(ops, &names).await?.into_iter();
        for (name, key_name) in schema_keys {
            let entry = entries.next().flatten();
            let schema = match entry {
                Some(e) => {
                    let rec: SchemaRecord = layout::decode(&key_name, &e.value)?;
                    Some((rec.schema, rec.v))
                }
                None => None,
            };
            patch.schemas.push((name, schema));
        }
        for (table, key, key_name) in row_keys {
            let row = match entries.next().flatten() {
                Some(e) => Some(stored(entry_row(&key_name, &e)?, &key_name)?),
                None => None,
            };
            patch.rows.push((table, key, row));
        }
        for (table, pos, value, key_name) in unique_keys {
            let owner = match entries.next().flatten() {
                Some(e) => Some(layout::decode::<UniqueRecord>(&key_name, &e.value)?.k),
                None => None,
            };
            patch.uniques.push((table, pos, value, owner));
        }
        Ok(patch)
    }

    /// Every row of a table: one `list` per 1000 rows, plus bulk gets for rows too large to
    /// be inlined in metadata.
    async fn load_table(&self, table: &str, ops: &Cell<u64>) -> Result<Vec<(Key, StoredRow)>> {
        let prefix = self.layout.rows_prefix(table);
        let mut listed = self.list_all(ops, &prefix).await?;
        // KV's list lags behind writes (longer than get does): as for point reads, this
        // isolate's recent writes of the table's rows win over what the listing shows.
        let recent = {
            let mut recent = self.recent.borrow_mut();
            recent.prune(self.now_ms());
            recent.under(&prefix)
        };
        let mut rows = Vec::with_capacity(listed.len() + recent.len());
        if !recent.is_empty() {
            let shown: std::collections::HashMap<&str, Option<&serde_json::Value>> = listed
                .iter()
                .map(|k| (k.name.as_str(), k.metadata.as_ref()))
                .collect();
            let mut overridden = BTreeSet::new();
            for (name, replaced, after) in &recent {
                let version = match shown.get(name.as_str()) {
                    Some(Some(meta)) => Some(layout::decode_metadata::<RowRecord>(name, meta)?.v),
                    // No version to compare: the bulk get below overlays it.
                    Some(None) => continue,
                    None => None,
                };
                // Our write wins only over what it replaced (`None`: absent); any other
                // version is a later write elsewhere, and KV's to believe.
                let replaced_it = replaced.iter().any(|v| match v {
                    Some(v) => entry_row_value(name, v).ok() == version,
                    None => version.is_none(),
                });
                if !replaced_it {
                    continue;
                }
                overridden.insert(name.clone());
                if let Some(entry) = after {
                    let rec = entry_row(name, entry)?;
                    let k = rec.k.clone();
                    rows.push((k, stored(rec, name)?));
                }
            }
            listed.retain(|k| !overridden.contains(&k.name));
        }
        let mut large = Vec::new();
        for key in listed {
            let record = match &key.metadata {
                Some(meta) => Some(layout::decode_metadata::<RowRecord>(&key.name, meta)?),
                None => None,
            };
            match record {
                Some(rec) if rec.d.is_some() => {
                    let k = rec.k.clone();
                    rows.push((k, stored(rec, &key.name)?));
                }
                _ => large.push(key.name),
            }
        }
        for (name, entry) in large.iter().zip(self.get_many(ops, &large).await?) {
            if let Some(entry) = entry {
                let rec = entry_row(name, &entry)?;
                let k = rec.k.clone();
                rows.push((k, stored(rec, name)?));
            }
        }
        Ok(rows)
    }

    /// Checks the session's write-set against KV and writes it. `stamp` versions the rows.
    ///
    /// Cross-isolate conflicts are detected where KV shows them: a row whose stored version
    /// differs from the one the session read, or a unique value another row holds. KV has no
    /// compare-and-swap, so two isolates committing the same row within KV's propagation
    /// window can both pass (best effort, documented). Conflicts between sessions of this
    /// isolate are always detected: by the isolate cache while it lives, and after it started
    /// over by the isolate's record of its own writes of the last 60 s, which the check reads
    /// through (KV may still serve what they replaced).
    ///
    /// More than one write goes through a commit record (see [`journal`]): check, put the
    /// record, the writes, delete the record. A failed write is retried, then the writes are
    /// undone and the record deleted; if that cannot finish, the record stays and a later
    /// replay applies the whole commit, and the error says the outcome is unknown.
    pub async fn persist(&self, ws: &Workspace, stamp: Version, ops: &Cell<u64>) -> Result<()> {
        let mut plan = Plan::default();
        // Keys whose current KV state must match what the session saw: key → expected version
        // (None = absent).
        let mut expect: BTreeMap<String, (String, Option<Version>)> = BTreeMap::new();
        // Unique entries the commit takes: key → (table, column position, column, value text,
        // our row key).
        let mut claims: BTreeMap<String, Claim> = BTreeMap::new();
        // Unique entries the commit releases: key → (table, row key that must still own it).
        let mut releases: BTreeMap<String, (String, Key)> = BTreeMap::new();
        // Row keys that held a unique value before this commit and no longer do.
        let mut moved_from: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
        // The schema state each written table relies on (for a replay).
        let mut guards: Vec<TableGuard> = Vec::new();

        for name in &ws.writes.tables {
            let key = self.layout.schema_key(name)?;
            let before = ws.base.tables.get(name);
            expect.insert(
                key.clone(),
                (name.clone(), before.map(|t| t.schema_version)),
            );
            let after = ws.db.tables.get(name);
            guards.push(TableGuard {
                name: name.clone(),
                key: key.clone(),
                pre: before.map(|t| t.schema_version),
                post: after.map(|_| stamp),
            });
            if let Some(old) = before {
                // The whole old table goes (rows and unique entries), then the new one is
                // written in full.
                for (k, row) in &old.rows {
                    if after.is_none_or(|t| !t.rows.contains_key(k)) {
                        plan.push(name, Write::Delete(self.layout.row_key(name, k)?));
                    }
                    for (pos, column) in old.unique_columns() {
                        if let Some(v) = row.values.get(pos).and_then(unique_key) {
                            let uk = self.layout.unique_key(name, &column, &v)?;
                            moved_from.entry(uk.clone()).or_default().insert(k.clone());
                            releases.insert(uk, (name.clone(), k.clone()));
                        }
                    }
                }
            }
            match after {
                Some(table) => {
                    let rec = SchemaRecord {
                        schema: gluesql_core::data::Schema::clone(&table.schema),
                        v: stamp,
                    };
                    let value = serde_json::to_string(&rec).map_err(|e| Error::Storage {
                        message: format!("cannot encode schema of {name}: {e}"),
                    })?;
                    plan.push(name, Write::Put(key, value, None));
                    for (k, row) in &table.rows {
                        plan.push(name, self.row_write(name, k, row, stamp)?);
                        for (pos, column) in table.unique_columns() {
                            if let Some(v) = row.values.get(pos).and_then(unique_key) {
                                let uk = self.layout.unique_key(name, &column, &v)?;
                                releases.remove(&uk);
                                let value = render(&row.values[pos]);
                                claims.insert(
                                    uk,
                                    Claim {
                                        table: name.clone(),
                                        pos,
                                        column,
                                        value,
                                        row: k.clone(),
                                    },
                                );
                            }
                        }
                    }
                }
                None => plan.push(name, Write::Delete(key)),
            }
        }

        for (name, keys) in &ws.writes.rows {
            if ws.writes.tables.contains(name) {
                continue;
            }
            let (Some(base), Some(mine)) = (ws.base.tables.get(name), ws.db.tables.get(name))
            else {
                return Err(Error::Conflict {
                    table: name.clone(),
                    detail: "the table (dropped)".to_owned(),
                });
            };
            guards.push(TableGuard {
                name: name.clone(),
                key: self.layout.schema_key(name)?,
                pre: Some(base.schema_version),
                post: Some(base.schema_version),
            });
            let columns = mine.unique_columns();
            for k in keys {
                let row_key = self.layout.row_key(name, k)?;
                let old = base.rows.get(k);
                expect.insert(row_key.clone(), (name.clone(), old.map(|r| r.version)));
                let new = mine.rows.get(k);
                match new {
                    Some(row) => plan.push(name, self.row_write(name, k, row, stamp)?),
                    None => plan.push(name, Write::Delete(row_key)),
                }
                for (pos, column) in &columns {
                    let old_v = old.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    let new_v = new.and_then(|r| r.values.get(*pos)).and_then(unique_key);
                    if old_v == new_v {
                        continue;
                    }
                    if let Some(v) = old_v {
                        let uk = self.layout.unique_key(name, column, &v)?;
                        moved_from.entry(uk.clone()).or_default().insert(k.clone());
                        releases.insert(uk, (name.clone(), k.clone()));
                    }
                    if let (Some(v), Some(row)) = (new_v, new) {
                        let uk = self.layout.unique_key(name, column, &v)?;
                        releases.remove(&uk);
                        claims.insert(
                            uk,
                            Claim {
                                table: name.clone(),
                                pos: *pos,
                                column: column.clone(),
                                value: render(&row.values[*pos]),
                                row: k.clone(),
                            },
                        );
                    }
                }
            }
        }

        // 1. Check: one bulk read of every row, schema and unique key involved, and of every
        // other key the commit writes (a schema change rewrites all rows of its table), so
        // that a failed commit can put back what each key held. The same read looks for the
        // commit records of the versions the session read: one still there means that commit
        // is not applied in full, and this one must not build on it (nor on a table it
        // created or altered).
        let bases: BTreeMap<Version, String> = expect
            .values()
            .filter_map(|(table, v)| v.map(|v| (v, table.clone())))
            .chain(
                guards
                    .iter()
                    .filter_map(|g| g.pre.map(|v| (v, g.name.clone()))),
            )
            .collect();
        let check: BTreeSet<String> = expect
            .keys()
            .chain(claims.keys())
            .chain(releases.keys())
            .cloned()
            .chain(plan.writes.iter().map(|w| w.key().to_owned()))
            .chain(bases.keys().map(|v| self.layout.record_key(*v)))
            .collect();
        let check: Vec<String> = check.into_iter().collect();
        let current = self.get_many(ops, &check).await?;
        let current: BTreeMap<&String, Option<KvEntry>> = check.iter().zip(current).collect();
        for (key, (table, expected)) in &expect {
            let found = match current.get(key).cloned().flatten() {
                Some(e) if key.starts_with(&self.layout.schemas_prefix()) => {
                    Some(layout::decode::<SchemaRecord>(key, &e.value)?.v)
                }
                Some(e) => Some(entry_row(key, &e)?.v),
                None => None,
            };
            if found != *expected {
                return Err(Error::Conflict {
                    table: table.clone(),
                    detail: format!("a row or schema stored in KV ({key})"),
                });
            }
        }
        let applied: BTreeSet<Version> = self.applied.borrow().iter().map(|(_, s)| *s).collect();
        for (v, table) in bases.iter().filter(|(v, _)| !applied.contains(v)) {
            let record_key = self.layout.record_key(*v);
            if let Some(record) = current.get(&record_key).cloned().flatten() {
                if let Some(e) = self.unsettled(ops, table, &record_key, &record).await {
                    return Err(e);
                }
            }
        }
        // A value is free if KV has no entry, the entry names our row, the named row gives the
        // value up in this commit, or the entry is stale (its row no longer holds the value,
        // e.g. after an interrupted commit elsewhere) and no commit record of its version is
        // left (else its commit is still being applied, or will be by a replay).
        let mut contested = Vec::new();
        for (uk, claim) in &claims {
            if let Some(e) = current.get(uk).cloned().flatten() {
                let entry = layout::decode::<UniqueRecord>(uk, &e.value)?;
                let moved = moved_from
                    .get(uk)
                    .is_some_and(|keys| keys.contains(&entry.k));
                if entry.k != claim.row && !moved {
                    let owner_key = self.layout.row_key(&claim.table, &entry.k)?;
                    contested.push((claim, owner_key, uk, entry.v));
                }
            }
        }
        if !contested.is_empty() {
            let owner_keys: Vec<String> = contested
                .iter()
                .flat_map(|(_, k, _, v)| [k.clone(), self.layout.record_key(*v)])
                .collect();
            let found = self.get_many(ops, &owner_keys).await?;
            for ((claim, owner_key, uk, v), pair) in contested.iter().zip(found.chunks(2)) {
                if let Some(record) = &pair[1] {
                    let record_key = self.layout.record_key(*v);
                    if let Some(e) = self.unsettled(ops, &claim.table, &record_key, record).await {
                        return Err(e);
                    }
                }
                let holds = match &pair[0] {
                    Some(e) => {
                        let rec = entry_row(owner_key, e)?;
                        let current_value = rec
                            .d
                            .as_ref()
                            .and_then(|d| d.get(claim.pos))
                            .and_then(unique_key);
                        let uk_now = match current_value {
                            Some(v) => {
                                Some(self.layout.unique_key(&claim.table, &claim.column, &v)?)
                            }
                            None => None,
                        };
                        uk_now.as_deref() == Some(uk.as_str())
                    }
                    None => false,
                };
                if holds {
                    return Err(Error::Unique {
                        table: claim.table.clone(),
                        column: claim.column.clone(),
                        value: claim.value.clone(),
                    });
                }
            }
        }
        for (uk, claim) in &claims {
            let rec = UniqueRecord {
                k: claim.row.clone(),
                v: stamp,
            };
            let value = serde_json::to_string(&rec).map_err(|e| Error::Storage {
                message: format!("cannot encode unique entry: {e}"),
            })?;
            plan.push(&claim.table, Write::Put(uk.clone(), value, None));
        }
        for (uk, (table, owner)) in &releases {
            // Only delete an entry that still names the row releasing it.
            if let Some(e) = current.get(uk).cloned().flatten() {
                if &layout::decode::<UniqueRecord>(uk, &e.value)?.k == owner {
                    plan.push(table, Write::Delete(uk.clone()));
                }
            }
        }

        // 2. The commit record, when there is more than one write (one write is atomic by
        // itself), encoded now so that one too large is refused before anything is written.
        let now = self.now_ms();
        let record = if plan.writes.len() > 1 {
            Some(self.commit_record(&plan, guards, &current, stamp, now)?)
        } else {
            None
        };

        // 3. Budget: refuse before writing anything rather than stop half-way.
        let needed = plan.writes.len() as u64 + if record.is_some() { 2 } else { 0 };
        if ops.get() + needed > self.max_ops {
            return Err(Error::Storage {
                message: format!(
                    "committing needs {needed} KV writes, more than the {} operations left in \
                     this session's budget ({} per session; Workers allow 1000 per invocation); \
                     commit in smaller units of work",
                    self.max_ops.saturating_sub(ops.get()),
                    self.max_ops
                ),
            });
        }

        // 4. Write.
        let writer = Writer {
            store: self,
            ops,
            current: &current,
            record_key: self.layout.record_key(stamp),
            deadline: now + journal::COMMIT_DEADLINE_MS,
        };
        if let Some((value, metadata)) = &record {
            writer.put_record(value, metadata).await?;
        }
        writer.write_all(&plan.writes, record.is_some()).await?;
        let record_deleted = match &record {
            Some(_) => writer.delete_record().await,
            None => true,
        };

        let now = self.now_ms();
        let mut recent = self.recent.borrow_mut();
        for write in &plan.writes {
            let key = write.key().to_owned();
            let before = current.get(&key).cloned().flatten().map(|e| e.value);
            recent.record(key, before, write.after(), now);
        }
        recent.prune(now);
        drop(recent);
        if record.is_some() {
            // So that this isolate does not take its own applied commit for one in flight
            // while KV still shows the record (or if its delete failed: the commit is applied
            // in full either way, and a later replay removes the record).
            let mut applied = self.applied.borrow_mut();
            while applied
                .front()
                .is_some_and(|&(at, _)| now.saturating_sub(at) >= RECENT_MS)
            {
                applied.pop_front();
            }
            applied.push_back((now, stamp));
            drop(applied);
            if !record_deleted {
                self.note(format!(
                    "commit {stamp:016x} is applied, but its record could not be deleted; a \
                     later replay removes it"
                ));
            }
        }
        Ok(())
    }

    /// The commit record of `plan`: every write with the version it replaces.
    fn commit_record(
        &self,
        plan: &Plan,
        guards: Vec<TableGuard>,
        current: &BTreeMap<&String, Option<KvEntry>>,
        stamp: Version,
        now: u64,
    ) -> Result<(String, serde_json::Value)> {
        let index: BTreeMap<&str, usize> = guards
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.as_str(), i))
            .collect();
        let mut w = Vec::with_capacity(plan.writes.len());
        for (write, table) in plan.writes.iter().zip(&plan.tables) {
            let key = write.key().to_owned();
            let pre = journal::version_of(&key, current.get(&key).and_then(Option::as_ref))?;
            w.push(RecordWrite {
                k: key,
                pre,
                put: write.after().map(|e| RecordPut {
                    v: e.value,
                    m: e.metadata,
                }),
                t: index.get(table.as_str()).copied().unwrap_or(usize::MAX),
            });
        }
        CommitRecord {
            s: stamp,
            at: now,
            t: guards,
            w,
        }
        .encode()
    }

    fn row_write(&self, table: &str, key: &Key, row: &StoredRow, stamp: Version) -> Result<Write> {
        let rec = RowRecord {
            k: key.clone(),
            v: stamp,
            d: Some(row.values.as_ref().clone()),
        };
        let (value, metadata) = layout::encode_row(&rec)?;
        Ok(Write::Put(
            self.layout.row_key(table, key)?,
            value,
            Some(metadata),
        ))
    }
}

/// A unique value a commit takes.
#[derive(Debug)]
struct Claim {
    table: String,
    pos: usize,
    column: String,
    value: String,
    row: Key,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &str) -> Option<KvEntry> {
        Some(KvEntry {
            value: v.to_owned(),
            metadata: None,
        })
    }

    #[test]
    fn recent_writes_answer_stale_reads_for_a_while() {
        let mut recent = RecentWrites::default();
        recent.record("k".into(), Some("v0".into()), entry("v1"), 0);
        recent.record("k".into(), Some("v1".into()), entry("v2"), 10);
        recent.record("gone".into(), Some("g".into()), None, 10);
        // KV still shows a value the isolate replaced: the isolate's write wins.
        assert_eq!(recent.overlay("k", entry("v0")), entry("v2"));
        assert_eq!(recent.overlay("k", entry("v1")), entry("v2"));
        assert_eq!(recent.overlay("gone", entry("g")), None);
        // Anything else is newer than the isolate's write (another isolate's): KV wins.
        assert_eq!(recent.overlay("k", entry("other")), entry("other"));
        assert_eq!(recent.overlay("k", None), None);
        assert_eq!(recent.overlay("x", entry("x")), entry("x"));
        recent.prune(RECENT_MS + 9);
        assert_eq!(recent.overlay("k", entry("v0")), entry("v2"), "10 ms to go");
        recent.prune(RECENT_MS + 10);
        assert_eq!(recent.overlay("k", entry("v0")), entry("v0"));
        assert_eq!((recent.by_key.len(), recent.bytes), (0, 0));
    }
}
