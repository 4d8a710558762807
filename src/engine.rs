//! `Engine`: the committed state of one database URL, shared by every session of an isolate.
//!
//! The analog of SQLAlchemy's `create_engine(url)`: create one per URL, once per isolate (the
//! [`crate::Registry`] holds it). Cloning an `Engine` is cheap and yields a handle to the same
//! database.

use crate::{
    error::{Error, Result},
    parse_cache::StatementCache,
    session::store::{Miss, SessionStore},
    snapshot::{Database, Version},
    storage::{
        durable::{
            self,
            client::{DurableStorage, ObjectTransport},
            wire::{own_changes, own_rows, Change, Delta, ErrorWire, Request, Response},
        },
        kv::{backend::KvBackend, journal, KvStorage, Lsn},
        patch::Patch,
        validate::{Applied, Committed, ReadCheck},
    },
    url::EngineUrl,
};
use gluesql_core::{error::Error as GlueError, sqlparser::ast::Statement};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    fmt,
    rc::Rc,
};

enum Backend {
    Memory,
    Kv(Box<KvStorage>),
    Durable(Box<DurableStorage>),
}

/// The version of a `do://` isolate cache (and of a session's snapshot) not known yet: it is
/// the object's version at the first load after the cache started over.
pub(crate) const UNKNOWN_VERSION: Version = Version::MAX;

struct Inner {
    url: EngineUrl,
    backend: Backend,
    /// memory://: the database. kv://: the isolate cache in front of KV, as of the latest
    /// commit this isolate acknowledged (its `version`).
    committed: RefCell<Committed>,
    /// When the kv:// isolate cache was last started afresh (ms).
    cache_started: Cell<u64>,
    /// Bumped whenever the kv:// cache starts afresh: a load that began before must not
    /// fill the new one.
    cache_epoch: Cell<u64>,
    /// Settlements of abandoned commits the cache has taken into account (kv://).
    settled_seen: Cell<u64>,
    /// Key counter for tables without a primary key (shared by all sessions).
    row_ids: Rc<Cell<i64>>,
    /// Named ID sequences (see [`Engine::next_id`]).
    sequences: RefCell<HashMap<String, i64>>,
    /// SQL texts parsed so far (shared by every session of the isolate).
    statements: RefCell<StatementCache>,
}

/// A database: committed data behind a URL, shared by every session of the isolate.
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("url", &self.inner.url.as_string())
            .field("version", &self.inner.committed.borrow().version)
            .finish_non_exhaustive()
    }
}

/// A random integer in `1..2^53` (safe as a JSON number in JavaScript), from `kv` when it
/// brings its own randomness (a simulation), else from the platform.
pub(crate) fn random_53(kv: Option<&dyn KvBackend>) -> Result<u64> {
    let bits = match kv.and_then(KvBackend::random_u64) {
        Some(bits) => bits,
        None => platform_random()?,
    };
    Ok((bits >> 11).max(1))
}

/// 64 random bits from the platform, drawn 32 values at a time: each draw is a call into
/// JavaScript (`crypto.getRandomValues`) that costs about as much as 32 values.
fn platform_random() -> Result<u64> {
    thread_local! {
        static POOL: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.is_empty() {
            let mut bytes = [0u8; 256];
            getrandom::getrandom(&mut bytes).map_err(|e| Error::Storage {
                message: format!("no randomness available for IDs: {e}"),
            })?;
            pool.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
            );
        }
        Ok(pool.pop().expect("filled"))
    })
}

impl Engine {
    fn build(url: EngineUrl, backend: Backend, db: Database) -> Self {
        Self {
            inner: Rc::new(Inner {
                url,
                backend,
                committed: RefCell::new(Committed { db, version: 0 }),
                cache_started: Cell::new(0),
                cache_epoch: Cell::new(0),
                settled_seen: Cell::new(0),
                row_ids: Rc::new(Cell::new(0)),
                sequences: RefCell::new(HashMap::new()),
                statements: RefCell::new(StatementCache::default()),
            }),
        }
    }

    /// Creates an engine from a URL: `memory://` (default database) or `memory://NAME`.
    ///
    /// Every call creates a new, empty database; keep the engine (or the registry holding
    /// it) for the lifetime of the isolate. `kv://` URLs need a KV namespace: use
    /// [`Engine::with_kv`] (or `gluebind::wasm::engine` in a Worker).
    ///
    /// # Errors
    /// [`Error::Config`] naming the accepted schemes when the URL is not valid.
    ///
    /// ```
    /// let engine = gluebind::Engine::from_url("memory://").unwrap();
    /// assert_eq!(engine.url(), "memory://");
    /// assert!(gluebind::Engine::from_url("postgres://db").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        match EngineUrl::parse(url)? {
            url @ EngineUrl::Memory { .. } => {
                Ok(Self::build(url, Backend::Memory, Database::complete()))
            }
            EngineUrl::Kv { binding, .. } => Err(Error::config(format!(
                "kv://{binding} needs its KV namespace: in a Worker call \
                 gluebind::wasm::engine(&env, url); natively Engine::with_kv(url, backend)"
            ))),
            EngineUrl::Durable { binding, .. } => Err(Error::config(format!(
                "do://{binding} needs its Durable Object namespace: in a Worker call \
                 gluebind::wasm::engine(&env, url); natively Engine::with_object(url, transport)"
            ))),
        }
    }

    /// Creates a `kv://` engine over `kv` (the namespace the URL's binding names).
    ///
    /// # Errors
    /// [`Error::Config`] when `url` is not a valid `kv://` URL.
    ///
    /// With the test doubles of the cargo feature `testing`:
    ///
    /// ```
    /// use std::rc::Rc;
    /// let kv = Rc::new(gluebind::kv::MemoryKv::new());
    /// let engine = gluebind::Engine::with_kv("kv://GLUEBIND_KV?prefix=app1", kv).unwrap();
    /// assert_eq!(engine.url(), "kv://GLUEBIND_KV?prefix=app1");
    /// ```
    pub fn with_kv(url: &str, kv: Rc<dyn KvBackend>) -> Result<Self> {
        let parsed = EngineUrl::parse(url)?;
        let EngineUrl::Kv {
            prefix,
            cache_ttl_secs,
            max_ops,
            ..
        } = &parsed
        else {
            return Err(Error::config(format!(
                "Engine::with_kv needs a kv:// URL, got {}",
                parsed.as_string()
            )));
        };
        let store = KvStorage::new(kv, prefix, cache_ttl_secs.saturating_mul(1000), *max_ops);
        let engine = Self::build(parsed, Backend::Kv(Box::new(store)), Database::partial());
        engine.inner.cache_started.set(engine.now_ms());
        // Keys of tables without a primary key: many isolates append to the same tables, so
        // each starts its counter at a point of its own (the clock in the high bits, chance in
        // the low ones) instead of at 0, where every key would already be taken; a key found
        // taken is skipped (see `SessionStore::append_data`).
        let seed = (engine.now_ms().min(1 << 42) << 20) | (engine.random()? & 0xF_FFFF);
        engine.inner.row_ids.set(seed as i64);
        Ok(engine)
    }

    /// Creates a `do://` engine whose database object is reached through `transport` (in a
    /// Worker, `gluebind::wasm::engine` builds one over the Durable Object binding).
    ///
    /// # Errors
    /// [`Error::Config`] when `url` is not a valid `do://` URL.
    pub fn with_object(url: &str, transport: Rc<dyn ObjectTransport>) -> Result<Self> {
        let parsed = EngineUrl::parse(url)?;
        let EngineUrl::Durable { cache_ttl_secs, .. } = &parsed else {
            return Err(Error::config(format!(
                "Engine::with_object needs a do:// URL, got {}",
                parsed.as_string()
            )));
        };
        let store = DurableStorage::new(transport, cache_ttl_secs.saturating_mul(1000));
        let engine = Self::build(
            parsed,
            Backend::Durable(Box::new(store)),
            Database::partial(),
        );
        engine.inner.committed.borrow_mut().version = UNKNOWN_VERSION;
        engine.inner.cache_started.set(engine.now_ms());
        let seed = (engine.now_ms().min(1 << 42) << 20) | (engine.random()? & 0xF_FFFF);
        engine.inner.row_ids.set(seed as i64);
        Ok(engine)
    }

    /// The engine's URL in canonical form.
    #[must_use]
    pub fn url(&self) -> String {
        self.inner.url.as_string()
    }

    /// The parsed URL.
    #[must_use]
    pub fn engine_url(&self) -> &EngineUrl {
        &self.inner.url
    }

    /// The version of the committed state this isolate holds: on `memory://` and `kv://` the
    /// number of commits applied in this isolate so far; on `do://` the database object's
    /// version its cache is at (0 while the cache is empty, until its next load).
    #[must_use]
    pub fn version(&self) -> u64 {
        match self.inner.committed.borrow().version {
            UNKNOWN_VERSION => 0,
            v => v,
        }
    }

    /// True when both handles point at the same database.
    #[must_use]
    pub fn same_as(&self, other: &Engine) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Random bits (from the KV backend when it brings its own, as a simulation does).
    pub(crate) fn random_u64(&self) -> Result<u64> {
        self.random()
    }

    /// Waits `ms` milliseconds on `kv://` (the backend's timer); returns at once on
    /// `memory://`, where nothing runs concurrently with a waiting session's isolate work
    /// that waiting could help.
    pub(crate) async fn sleep(&self, ms: u64) {
        match &self.inner.backend {
            Backend::Memory => {}
            Backend::Kv(store) => store.sleep(ms).await,
            Backend::Durable(store) => store.transport.sleep(ms).await,
        }
    }

    fn random(&self) -> Result<u64> {
        match &self.inner.backend {
            Backend::Memory | Backend::Durable(_) => random_53(None),
            Backend::Kv(store) => random_53(Some(store.kv.as_ref())),
        }
    }

    fn now_ms(&self) -> u64 {
        match &self.inner.backend {
            Backend::Memory => 0,
            Backend::Kv(store) => store.now_ms(),
            Backend::Durable(store) => store.transport.now_ms(),
        }
    }

    /// Allocates the next value of the ID sequence `name`, unique across all sessions.
    ///
    /// On `memory://` this is an isolate-local counter, like a PostgreSQL sequence: not rolled
    /// back (a rolled-back insert leaves a gap); a sequence named after a table starts above
    /// that table's largest committed integer primary key. On `kv://` many isolates write at
    /// once and KV has no atomic increment, so IDs are random integers in `1..2^53` (safe as
    /// JavaScript numbers): unique with overwhelming probability, not ordered by time; a
    /// collision with a row this isolate can see is caught at commit.
    ///
    /// On `do://` the database object keeps the sequence (starting above the table's largest
    /// integer key, as on `memory://`) and hands each isolate blocks of 16: IDs increase within
    /// an isolate, and across isolates by block; gaps are possible.
    ///
    /// # Errors
    /// [`Error::Storage`] when the sequence is exhausted (or no randomness is available, or
    /// the database object cannot be reached).
    pub async fn next_id(&self, name: &str) -> Result<i64> {
        match &self.inner.backend {
            Backend::Kv(_) => return self.random().map(|n| n as i64),
            Backend::Durable(store) => return store.next_id(name).await,
            Backend::Memory => {}
        }
        let floor = self
            .inner
            .committed
            .borrow()
            .max_integer_key(name)
            .unwrap_or(0);
        let mut sequences = self.inner.sequences.borrow_mut();
        let current = sequences.entry(name.to_owned()).or_insert(0);
        let next = (*current)
            .max(floor)
            .checked_add(1)
            .ok_or_else(|| Error::Storage {
                message: format!("ID sequence {name:?} is exhausted (reached i64::MAX)"),
            })?;
        *current = next;
        Ok(next)
    }

    /// The parsed statements of `sql`, from the isolate's cache when it was parsed before.
    pub(crate) fn parse(&self, sql: &str) -> std::result::Result<Rc<[Statement]>, GlueError> {
        self.inner.statements.borrow_mut().parse(sql)
    }

    /// Whether this engine's storage checks an inserted row's key and unique values at commit,
    /// against the latest committed state (`do://`: the object validates every commit whole),
    /// so that an INSERT `commit()` flushes need not load them first.
    pub(crate) fn checks_inserts(&self) -> bool {
        matches!(self.inner.backend, Backend::Durable(_))
    }

    /// A fresh session store over the latest committed state (O(1)).
    pub(crate) fn session_store(&self) -> SessionStore {
        // Past its lifetime the isolate cache starts over, so other isolates' writes show.
        match &self.inner.backend {
            Backend::Kv(store) => {
                self.sync_cache(store);
                if self.cache_outlived(store.cache_ttl_ms) {
                    self.reset_cache(store);
                }
            }
            Backend::Durable(store) => {
                if self.cache_outlived(store.cache_ttl_ms) {
                    self.reset_durable_cache();
                }
            }
            Backend::Memory => {}
        }
        let committed = self.inner.committed.borrow();
        let mut store = SessionStore::new(
            committed.db.clone(),
            Rc::clone(&self.inner.row_ids),
            committed.version,
        );
        match &self.inner.backend {
            Backend::Kv(kv) => {
                store.back_indexes = crate::storage::kv::layout::index_backfill_rows(kv.max_ops);
            }
            Backend::Durable(_) => store.remote_count = true,
            Backend::Memory => {}
        }
        store
    }

    /// True when the isolate cache is `ttl_ms` old or older; its lifetime then starts again
    /// (the caller starts the cache over).
    fn cache_outlived(&self, ttl_ms: u64) -> bool {
        let now = self.now_ms();
        let outlived = now.saturating_sub(self.inner.cache_started.get()) >= ttl_ms;
        if outlived {
            self.inner.cache_started.set(now);
        }
        outlived
    }

    /// Starts the do:// isolate cache afresh: empty, at a version learnt at its next load.
    fn reset_durable_cache(&self) {
        *self.inner.committed.borrow_mut() = Committed {
            db: Database::partial(),
            version: UNKNOWN_VERSION,
        };
        self.inner.cache_epoch.set(self.inner.cache_epoch.get() + 1);
    }

    /// Starts the kv:// isolate cache afresh (empty, as of the latest acknowledged commit).
    fn reset_cache(&self, store: &KvStorage) {
        *self.inner.committed.borrow_mut() = Committed {
            db: Database::partial(),
            version: store.latest(),
        };
        self.inner.cache_epoch.set(self.inner.cache_epoch.get() + 1);
    }

    /// After a settlement of an abandoned commit the cache may hold what it changed: start
    /// over.
    fn sync_cache(&self, store: &KvStorage) {
        let settled = store.settled();
        if settled != self.inner.settled_seen.get() {
            self.inner.settled_seen.set(settled);
            self.reset_cache(store);
        }
    }

    /// Before a session's first statement: settles abandoned commits when due (kv://).
    /// True when that changed what the session's snapshot should hold (take a new one).
    pub(crate) async fn prepare(&self, ops: &Cell<u64>) -> Result<bool> {
        match &self.inner.backend {
            Backend::Memory | Backend::Durable(_) => Ok(false),
            Backend::Kv(store) => {
                let settled = store.settled();
                self.recover_if_due(store, ops).await?;
                Ok(store.settled() != settled)
            }
        }
    }

    /// Loads what a statement missed, as of the session's snapshot `as_of`, into the isolate
    /// cache (when the snapshot is the cache's own) and into the returned patch.
    pub(crate) async fn load(
        &self,
        misses: &[Miss],
        stored_as: &crate::snapshot::StoredAs,
        ops: &Cell<u64>,
        as_of: Lsn,
    ) -> Result<Patch> {
        match &self.inner.backend {
            Backend::Memory => Err(Error::Storage {
                message: format!(
                    "memory:// has all data loaded, yet a statement missed {misses:?}"
                ),
            }),
            Backend::Kv(store) => {
                self.recover_if_due(store, ops).await?;
                let epoch = self.inner.cache_epoch.get();
                let patch = store.load(misses, stored_as, ops, as_of).await?;
                self.sync_cache(store);
                let mut committed = self.inner.committed.borrow_mut();
                if committed.version == as_of && self.inner.cache_epoch.get() == epoch {
                    patch.absorb(&mut committed.db, None);
                }
                Ok(patch)
            }
            Backend::Durable(store) => {
                let epoch = self.inner.cache_epoch.get();
                let at = (as_of != UNKNOWN_VERSION).then_some(as_of);
                let request = durable::load_request(misses, at);
                let answer = store.call(&request).await?;
                // An object older than first rows and index reads: those tables whole, as of
                // the version it answered.
                let unanswered = durable::unanswered(&request, &answer);
                let mut patch = match durable::patch(&request, misses, answer) {
                    Ok(patch) => patch,
                    Err(e) => {
                        self.reset_durable_cache();
                        return Err(e);
                    }
                };
                if !unanswered.is_empty() {
                    let request = durable::load_request(&unanswered, patch.at);
                    let answer = store.call(&request).await?;
                    match durable::patch(&request, &unanswered, answer) {
                        Ok(whole) => patch.complete.extend(whole.complete),
                        Err(e) => {
                            self.reset_durable_cache();
                            return Err(e);
                        }
                    }
                }
                let mut committed = self.inner.committed.borrow_mut();
                if self.inner.cache_epoch.get() == epoch {
                    let at = patch.at.unwrap_or(UNKNOWN_VERSION);
                    if committed.version == UNKNOWN_VERSION {
                        committed.version = at;
                    }
                    if committed.version == at {
                        patch.absorb(&mut committed.db, None);
                    }
                }
                Ok(patch)
            }
        }
    }

    /// Checks a session's write-set against the latest committed state of this isolate,
    /// applying nothing (for deferred commits, which apply at teardown).
    /// How far this engine's committed state in memory can check a session's reads.
    fn read_check(&self) -> ReadCheck {
        match self.inner.backend {
            Backend::Memory => ReadCheck::All,
            Backend::Kv(_) | Backend::Durable(_) => ReadCheck::Rows,
        }
    }

    pub(crate) fn validate(&self, ws: &SessionStore) -> Result<()> {
        let committed = self.inner.committed.borrow();
        if !Self::cache_can_check(&committed, ws) {
            return Ok(()); // the do:// object checks it at commit
        }
        committed
            .apply(ws, committed.version + 1, self.read_check())
            .map(|_| ())
    }

    /// Whether the isolate's committed state can refuse `ws` early: only when it is known and
    /// no older than the session's snapshot. (On do:// a cache that started over may be older
    /// than a snapshot taken from the object since: a UNIQUE value or a row it holds may be
    /// gone at the snapshot, and refusing on it would be wrong.)
    fn cache_can_check(committed: &Committed, ws: &SessionStore) -> bool {
        committed.version != UNKNOWN_VERSION && committed.version >= ws.as_of
    }

    /// Validates and applies a session's write-set atomically (first committer wins), and on
    /// `kv://` writes it to KV before other sessions of the isolate see it.
    pub(crate) async fn commit(&self, ws: &SessionStore, ops: &Cell<u64>) -> Result<Applied> {
        let store = match &self.inner.backend {
            Backend::Memory => {
                let mut committed = self.inner.committed.borrow_mut();
                let stamp = committed.version + 1;
                let (next, applied) = committed.apply(ws, stamp, ReadCheck::All)?;
                *committed = next;
                return Ok(applied);
            }
            Backend::Kv(store) => store,
            Backend::Durable(store) => return self.commit_durable(store, ws).await,
        };
        self.recover_if_due(store, ops).await?;
        self.sync_cache(store);
        let stamp: Version = self.random()?;
        // What the cache already shows refuses the commit before any KV operation.
        self.inner
            .committed
            .borrow()
            .apply(ws, stamp, ReadCheck::Rows)?;
        match store.commit(ws, stamp, ops).await {
            Ok(lsn) => {
                self.sync_cache(store);
                let mut committed = self.inner.committed.borrow_mut();
                match committed.apply(ws, stamp, ReadCheck::Skip) {
                    Ok((mut next, mut applied)) => {
                        next.version = lsn;
                        applied.version = lsn;
                        *committed = next;
                        Ok(applied)
                    }
                    Err(_) => {
                        // The cache changed under the commit (it started over): forget it.
                        drop(committed);
                        self.reset_cache(store);
                        let rows = ws.writes.rows.values().map(im::OrdSet::len).sum();
                        Ok(Applied {
                            version: lsn,
                            rows_written: rows,
                            tables_changed: ws.writes.tables.len()
                                + ws.writes.in_place_only().count()
                                + ws.writes.renamed.len(),
                        })
                    }
                }
            }
            Err(e) => {
                // KV may show what the cache does not (another isolate's commit, a partial
                // write): the next sessions read KV, never this isolate's idea of it.
                self.reset_cache(store);
                Err(e)
            }
        }
    }

    /// A `do://` commit: the object validates and applies it, and the cache catches up to the
    /// new version.
    async fn commit_durable(&self, store: &DurableStorage, ws: &SessionStore) -> Result<Applied> {
        // No check against the cache first: the object checks every commit anyway, and a
        // check here would build the next state only to drop it (the common case succeeds).
        let cache = {
            let committed = self.inner.committed.borrow();
            (committed.version != UNKNOWN_VERSION).then_some(committed.version)
        };
        let id = self.random()?;
        let compact = store.wire.get() >= 2;
        // The cache learns this commit's own rows from the session, not from the answer.
        let own = compact.then(|| own_rows(ws)).flatten();
        let mine = own.is_some();
        let request = |compact| -> Result<Request> {
            Ok(Request::Commit {
                id,
                cache,
                delta: Delta::of(ws, compact)?,
                mine: compact && mine,
            })
        };
        let mut answer = store.call(&request(compact)?).await;
        if compact
            && matches!(
                &answer,
                Ok(Response::Failed {
                    error: ErrorWire::Request { .. },
                    ..
                })
            )
        {
            // An object that reads no compact commit (an older gluebind rolled back to)
            // refused it unread: the same commit again, whole.
            store.wire.set(0);
            answer = store.call(&request(false)?).await;
        }
        match answer {
            Ok(Response::Committed {
                version,
                rows_written,
                tables_changed,
                since,
                ..
            }) => {
                let since = match (since, own) {
                    // Up to the version before this commit's (an object that read `mine`).
                    (Some(mut since), Some(own))
                        if since.last().is_none_or(|(v, _)| *v < version) =>
                    {
                        since.push((version, own_changes(own, version)));
                        Some(since)
                    }
                    (since, _) => since,
                };
                self.catch_up_durable(cache, since, version);
                Ok(Applied {
                    version,
                    rows_written,
                    tables_changed,
                })
            }
            Ok(Response::Failed { error, since }) => {
                // The cache may be behind what the object refused on: it catches up with the
                // changes the answer brings (or, without them, starts over), so that a retry
                // reads what refused it.
                match since {
                    Some(since) => {
                        let latest = since
                            .last()
                            .map_or(cache.unwrap_or(UNKNOWN_VERSION), |c| c.0);
                        self.catch_up_durable(cache, Some(since), latest);
                    }
                    None => self.reset_durable_cache(),
                }
                Err(Error::from(error))
            }
            Ok(other) => Err(durable::client::unexpected(&other)),
            Err(e) => {
                self.reset_durable_cache();
                Err(e)
            }
        }
    }

    /// Brings the do:// cache to `version` with `since`, the changes after the request's cache
    /// version `cache`: the cache may have moved on meanwhile (other sessions' commits answered
    /// first), so it takes those after its own version. Without them (too many, too old), or
    /// when the cache started over meanwhile, it starts over.
    fn catch_up_durable(
        &self,
        cache: Option<Version>,
        since: Option<Vec<(Version, Vec<Change>)>>,
        version: Version,
    ) {
        let mut committed = self.inner.committed.borrow_mut();
        let now = committed.version;
        let known = now != UNKNOWN_VERSION;
        match since {
            Some(changes) if known && cache.is_some_and(|c| now >= c) && now < version => {
                let start = changes.partition_point(|(v, _)| *v <= now);
                durable::catch_up(&mut committed.db, &changes[start..]);
                committed.version = version;
            }
            _ if known && now >= version => {}
            _ => {
                drop(committed);
                self.reset_durable_cache();
            }
        }
    }

    /// Settles commits other isolates left half-way (see `storage::kv::journal`), before the
    /// session reads or commits: at most once per `journal::SCAN_EVERY_MS` per isolate. A KV
    /// failure is noted (`kv_notes`), not returned.
    async fn recover_if_due(&self, store: &KvStorage, ops: &Cell<u64>) -> Result<()> {
        let now = store.now_ms();
        let listed = &store.journal_listed;
        if listed
            .get()
            .is_some_and(|at| now.saturating_sub(at) < journal::SCAN_EVERY_MS)
        {
            return Ok(());
        }
        // Set before awaiting, so concurrent sessions do not list it too (a settlement claims
        // its keys in the isolate's log, so sessions never see it half-done).
        listed.set(Some(now));
        match store.recover(ops).await {
            Ok(_) => {
                self.sync_cache(store);
                Ok(())
            }
            Err(e) => {
                // Settling other commits is housekeeping: this session reads through the
                // isolate's log either way (its own unsettled commits stay claimed there), so a
                // KV failure here fails nothing; a session lists again once it is due.
                store.note(format!("settling earlier commits stopped: {e}"));
                self.sync_cache(store);
                Ok(())
            }
        }
    }

    /// What the kv:// engine skipped or left for later in this isolate, oldest first (at most
    /// 100): corrupt commit records it will not replay, replays that did not fit a session's
    /// budget, records it could not delete. Empty on `memory://`. gluebind has no logger:
    /// log these from the Worker if you want them.
    #[must_use]
    pub fn kv_notes(&self) -> Vec<String> {
        match &self.inner.backend {
            Backend::Memory | Backend::Durable(_) => Vec::new(),
            Backend::Kv(store) => store.notes(),
        }
    }

    /// Finishes what commits left for after the response: on `kv://`, deletes the commit
    /// records of acknowledged commits (a commit's data is in KV when `commit()` returns; its
    /// record only lets other commits see it while it was written). The registry's teardown
    /// runs this in the completion callback; without a registry, the next commit of the
    /// isolate deletes them too. Returns how many records it deleted (0 on `memory://`).
    ///
    /// # Errors
    /// None today (a failed delete is retried by the next flush); the `Result` leaves room
    /// for backends whose flush can fail.
    pub async fn flush(&self) -> Result<usize> {
        match &self.inner.backend {
            Backend::Memory | Backend::Durable(_) => Ok(0),
            Backend::Kv(store) => Ok(store.flush_records().await),
        }
    }

    /// The committed state (conformance tests).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn snapshot(&self) -> Database {
        self.inner.committed.borrow().db.clone()
    }

    /// KV operation budget of one session (`None` on `memory://`).
    #[must_use]
    pub fn kv_budget(&self) -> Option<u64> {
        match &self.inner.backend {
            Backend::Memory | Backend::Durable(_) => None,
            Backend::Kv(store) => Some(store.max_ops),
        }
    }
}
