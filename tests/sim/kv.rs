//! A simulated Workers KV namespace: every call takes simulated time and takes effect when it
//! completes (even if its caller is gone), fails as KV does (429, 5xx, a timeout after the
//! write landed), and — in eventual mode — shows each write to other locations only after a
//! random delay within KV's window.

use super::executor::Sim;
use gluebind::kv::{
    BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey, MAX_BULK_GET, MAX_LIST,
};
use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    rc::Rc,
};

/// How writes reach other locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Every read sees every completed write.
    Strong,
    /// A write reaches each other location up to `window_ms` later (and, rarely, its own).
    Eventual { window_ms: u64 },
}

/// Fault probabilities per call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// A write refused with 429 (no effect).
    pub rate_limited: f64,
    /// A call failing with a 5xx (no effect).
    pub unavailable: f64,
    /// A write that lands but answers "timed out".
    pub timeout: f64,
    /// Enforce KV's one write per second per key (429 within a second).
    pub write_rate: bool,
}

impl Faults {
    pub const NONE: Self = Self {
        rate_limited: 0.0,
        unavailable: 0.0,
        timeout: 0.0,
        write_rate: false,
    };
}

struct Write {
    /// The entry it left (`None`: deleted).
    entry: Option<KvEntry>,
    /// When each location sees it.
    visible_at: Vec<u64>,
}

/// The namespace, shared by every location.
pub struct World {
    sim: Rc<Sim>,
    pub consistency: Consistency,
    faults: std::cell::Cell<Faults>,
    locations: usize,
    /// Every key's writes, oldest first.
    history: RefCell<BTreeMap<String, Vec<Write>>>,
    last_write: RefCell<HashMap<String, u64>>,
    /// Logs every call to the trace (a rerun of one seed).
    pub verbose: std::cell::Cell<bool>,
    /// Most keys a `list` page holds: KV's 1 000, or in half the runs a handful, so that
    /// loads of a table's first rows stop part-way (KV may return short pages, too).
    list_page: usize,
}

impl World {
    pub fn new(
        sim: Rc<Sim>,
        consistency: Consistency,
        faults: Faults,
        locations: usize,
    ) -> Rc<Self> {
        let list_page = if sim.chance(0.5) {
            MAX_LIST
        } else {
            usize::try_from(sim.pick(1..6)).expect("small")
        };
        Rc::new(Self {
            list_page,
            sim,
            consistency,
            faults: std::cell::Cell::new(faults),
            locations,
            history: RefCell::new(BTreeMap::new()),
            last_write: RefCell::new(HashMap::new()),
            verbose: std::cell::Cell::new(false),
        })
    }

    /// Sets the faults calls meet from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// The namespace as it really is (the latest write of every key).
    pub fn truth(&self) -> BTreeMap<String, KvEntry> {
        self.history
            .borrow()
            .iter()
            .filter_map(|(k, w)| w.last()?.entry.clone().map(|e| (k.clone(), e)))
            .collect()
    }

    /// A location's view of the namespace.
    pub fn location(self: &Rc<Self>, location: usize) -> Rc<SimKv> {
        Rc::new(SimKv {
            world: Rc::clone(self),
            location,
        })
    }

    fn read(&self, key: &str, location: usize) -> Option<KvEntry> {
        let now = self.sim.now();
        let history = self.history.borrow();
        let writes = history.get(key)?;
        writes
            .iter()
            .rev()
            .find(|w| w.visible_at[location] <= now)
            .and_then(|w| w.entry.clone())
    }

    fn write(&self, key: &str, entry: Option<KvEntry>, location: usize) {
        let now = self.sim.now();
        let visible_at = (0..self.locations)
            .map(|l| match self.consistency {
                Consistency::Strong => now,
                Consistency::Eventual { window_ms } => {
                    // Read-after-write at the same location is usual, not guaranteed.
                    if l == location && !self.sim.chance(0.05) {
                        now
                    } else {
                        now + self.sim.pick(0..window_ms + 1)
                    }
                }
            })
            .collect::<Vec<_>>();
        // A location never goes back in time: a write is not visible before an older one.
        let mut history = self.history.borrow_mut();
        let writes = history.entry(key.to_owned()).or_default();
        let visible_at = match writes.last() {
            Some(prev) => visible_at
                .iter()
                .zip(&prev.visible_at)
                .map(|(a, b)| (*a).max(*b))
                .collect(),
            None => visible_at,
        };
        writes.push(Write { entry, visible_at });
        self.last_write.borrow_mut().insert(key.to_owned(), now);
    }

    fn list(
        &self,
        prefix: &str,
        cursor: Option<String>,
        location: usize,
        limit: usize,
    ) -> ListPage {
        let page_size = self.list_page.min(limit.clamp(1, MAX_LIST));
        let history = self.history.borrow();
        let now = self.sim.now();
        let mut keys: Vec<ListedKey> = history
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| cursor.as_ref().is_none_or(|c| *k > c))
            .filter_map(|(k, writes)| {
                let seen = writes
                    .iter()
                    .rev()
                    .find(|w| w.visible_at[location] <= now)?;
                let entry = seen.entry.as_ref()?;
                Some(ListedKey {
                    name: k.clone(),
                    metadata: entry.metadata.clone(),
                })
            })
            .take(page_size + 1)
            .collect();
        let cursor = if keys.len() > page_size {
            keys.truncate(page_size);
            keys.last().map(|k| k.name.clone())
        } else {
            None
        };
        ListPage { keys, cursor }
    }

    fn latency(&self) -> u64 {
        if self.sim.chance(0.02) {
            self.sim.pick(100..2_000)
        } else {
            self.sim.pick(1..25)
        }
    }

    /// The failure a call meets, if any, and whether a failed write still lands.
    fn fault(&self, write: Option<&str>) -> Option<(KvFailure, bool)> {
        let f = self.faults.get();
        if let Some(key) = write {
            if f.write_rate {
                if let Some(at) = self.last_write.borrow().get(key) {
                    if self.sim.now() < at + 1_000 {
                        return Some((
                            KvFailure::RateLimited(format!("429: {key} written <1 s ago")),
                            false,
                        ));
                    }
                }
            }
            if self.sim.chance(f.rate_limited) {
                return Some((
                    KvFailure::RateLimited("429 Too Many Requests".into()),
                    false,
                ));
            }
            if self.sim.chance(f.timeout) {
                return Some((KvFailure::Transient("operation timed out".into()), true));
            }
        }
        if self.sim.chance(f.unavailable) {
            return Some((
                KvFailure::Transient("503 Service Unavailable".into()),
                false,
            ));
        }
        None
    }
}

/// One location's KV binding.
pub struct SimKv {
    world: Rc<World>,
    location: usize,
}

/// A commit record for the trace: the keys it writes (`+` put, `-` delete).
fn record_summary(value: &str) -> String {
    let Ok(record) = serde_json::from_str::<gluebind::kv::format::journal::CommitRecord>(value)
    else {
        return "(not a record)".into();
    };
    let keys: Vec<String> = record
        .w
        .iter()
        .map(|w| {
            let name = w.k.rsplit('/').next().unwrap_or("");
            format!("{}{}", if w.put.is_some() { "+" } else { "-" }, name)
        })
        .collect();
    format!("record of {}: {}", record.s, keys.join(" "))
}

/// A call's result for the trace: its outcome and the versions (`"v"`) it carries.
fn short(text: &str) -> String {
    let head: String = text.chars().take(12).collect();
    let mut versions = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("v\\\":") {
        rest = &rest[i + 5..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        versions.push(digits);
    }
    format!("{head}.. v={}", versions.join(","))
}

impl SimKv {
    fn op<T: std::fmt::Debug + 'static>(
        &self,
        what: String,
        write: Option<String>,
        f: impl FnOnce(&World) -> T + 'static,
    ) -> BoxFuture<'static, KvResult<T>> {
        let world = Rc::clone(&self.world);
        let sim = Rc::clone(&world.sim);
        let latency = world.latency();
        let location = self.location;
        Box::pin(async move {
            // Decided when the call completes, as KV would.
            let w = Rc::clone(&world);
            let result = sim
                .after(latency, move || match w.fault(write.as_deref()) {
                    Some((failure, lands)) => {
                        if lands {
                            f(&w);
                        }
                        Err(failure)
                    }
                    None => Ok(f(&w)),
                })
                .await;
            if world.verbose.get() {
                let shown = short(&format!("{result:?}"));
                world.sim.log(format!("  kv@{location} {what} -> {shown}"));
            }
            result
        })
    }
}

impl KvBackend for SimKv {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        let (key, l) = (key.to_owned(), self.location);
        self.op(format!("get {key}"), None, move |w| w.read(&key, l))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        assert!(
            keys.len() <= MAX_BULK_GET,
            "bulk get of {} keys",
            keys.len()
        );
        let (keys, l) = (keys.to_vec(), self.location);
        self.op(format!("bulk get {keys:?}"), None, move |w| {
            keys.iter().map(|k| w.read(k, l)).collect::<Vec<_>>()
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        let (key, l) = (key.to_owned(), self.location);
        let shown = if key.contains("/c/") {
            record_summary(&value)
        } else {
            short(&format!("{value:?}"))
        };
        self.op(format!("put {key} {shown}"), Some(key.clone()), move |w| {
            w.write(&key, Some(KvEntry { value, metadata }), l);
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        let (key, l) = (key.to_owned(), self.location);
        self.op(format!("delete {key}"), Some(key.clone()), move |w| {
            w.write(&key, None, l);
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        let (prefix, l) = (prefix.to_owned(), self.location);
        self.op(format!("list {prefix}"), None, move |w| {
            w.list(&prefix, cursor, l, limit)
        })
    }

    fn now_ms(&self) -> u64 {
        self.world.sim.now()
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        Box::pin(self.world.sim.sleep(ms))
    }

    fn random_u64(&self) -> Option<u64> {
        Some(self.world.sim.pick(0..u64::MAX))
    }
}
