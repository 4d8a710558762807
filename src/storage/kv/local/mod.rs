//! This isolate's own `kv://` commits: which keys each one writes, what each key held before
//! and after, and how far the commit got. It gives, within one isolate, what KV alone cannot:
//!
//! - **Snapshot reads.** Every session reads as of the commits acknowledged when it started
//!   (its `as_of`, a local sequence number). A load from KV that returns what a later commit
//!   (or one still in flight) wrote is answered with what the key held before it.
//! - **Reading through KV's lag.** KV may still serve a value this isolate already replaced;
//!   it is answered with the isolate's own write.
//! - **Concurrency control.** A commit claims its keys here before it writes its record: it
//!   waits while an overlapping commit of the isolate is in flight, and conflicts with one
//!   acknowledged after its snapshot. Commits that do not overlap run concurrently.
//! - **No hang on an abandoned commit.** A commit in flight holds a lease it renews as it goes;
//!   a Worker may abandon its future without dropping it, so once the lease has expired the
//!   next commit that needs those keys settles it from its record instead of waiting.
//!
//! Finished commits are forgotten after [`RECENT_MS`] (KV has caught up by then) or when the
//! log grows past its limits; a session older than what was forgotten gets a `CONFLICT`
//! ("snapshot too old") on its next load instead of a mixed view.

mod belief;
mod index;
mod settle;

pub(super) use belief::Belief;
use index::{index, unindex};

use super::{
    backend::KvEntry,
    journal::{CommitRecord, Footprint},
};
use crate::snapshot::Version;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A local commit sequence number: how many commits this isolate has acknowledged. A
/// session's snapshot is "as of" one.
pub(crate) type Lsn = u64;

/// How long the isolate remembers a finished commit: KV can take this long to show a write,
/// even (though rarely) at the location that made it.
pub(super) const RECENT_MS: u64 = 60_000;
/// At most this many remembered keys, and this many bytes of their entries (oldest commits
/// go first): the memory an isolate spends on it stays small.
const MAX_KEYS: usize = 10_000;
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// A KV read in flight keeps the commits it may need (those KV may still have lagged behind
/// when the read was sent) for at most this long; a read suspended longer is read again if
/// one of them was forgotten meanwhile.
const PIN_MAX_MS: u64 = 5 * 60_000;

/// How long a commit in flight may go without renewing its lease before another commit of
/// the isolate takes it for abandoned. A commit never writes later than
/// `journal::COMMIT_DEADLINE_MS` after its record (where it renews), and checks its lease
/// before every write, so a taken-over commit never writes again.
pub(super) const LEASE_MS: u64 = super::journal::COMMIT_DEADLINE_MS + 5_000;

/// Where a local commit stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// Being written by the holder of `token`, which renewed its lease at `renewed_at`.
    InFlight { token: u64, renewed_at: u64 },
    /// Stopped half-way (a failure it could not undo, or taken over): its record decides.
    Unknown,
    /// Applied in full, visible to sessions as of this sequence number or later.
    Acknowledged(Lsn),
    /// Undone in full (or never written).
    Undone,
}

/// One key a local commit writes.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyChange {
    /// What KV held when the commit checked it (`None` until the check: nothing is written
    /// before it).
    pub before: Option<Option<KvEntry>>,
    /// What the commit leaves (`None`: deleted).
    pub after: Option<KvEntry>,
}

/// One commit (or settlement of an abandoned record) of this isolate.
#[derive(Debug, Clone)]
pub(super) struct LocalCommit {
    pub stamp: Version,
    pub state: State,
    /// When it finished (for forgetting it), or started while in flight.
    pub at: u64,
    pub keys: BTreeMap<String, KeyChange>,
    /// Keys it relies on without writing them.
    pub relies: BTreeSet<String>,
    /// Tables it writes.
    pub tables: BTreeSet<String>,
    /// Tables whose every row it may change.
    pub whole: BTreeSet<String>,
    /// Its commit record, once written: how to settle it if it stops half-way.
    pub record: Option<CommitRecord>,
}

/// What [`LocalLog::take_over`] found.
#[derive(Debug)]
pub(super) enum TakeOver {
    /// Settle it: its record, and the token that now holds it.
    Settle(CommitRecord, u64),
    /// It may have written: settle it at this time (ms), not before.
    NotYet(u64),
    /// Nothing to settle (settled meanwhile, alive after all, or never reached KV).
    Nothing,
}

/// What a commit found when it tried to claim its keys.
#[derive(Debug)]
pub(super) enum Claim {
    /// Claimed: the commit's id and its token.
    Claimed(u64, u64),
    /// An overlapping commit is in flight: try again shortly.
    Wait,
    /// An overlapping commit stopped half-way (or its lease expired): settle it first.
    Settle(u64),
    /// An overlapping commit was acknowledged after the session's snapshot.
    Conflict(String),
}

/// Ids of commits, oldest first.
type Ids = BTreeSet<u64>;

/// The log of this isolate's commits. Under load it holds a minute of commits (thousands), so
/// every question a commit or a read asks goes through an index, never a walk of the log.
#[derive(Debug, Default)]
pub(super) struct LocalLog {
    commits: BTreeMap<u64, LocalCommit>,
    /// Key → ids of the commits that write it (ordered, for listings of a prefix).
    by_key: BTreeMap<String, Ids>,
    /// Key → ids of the commits that rely on it without writing it.
    by_rely: HashMap<String, Ids>,
    /// Table → ids of the commits that write it; those that may change its every row.
    by_table: HashMap<String, Ids>,
    by_whole: HashMap<String, Ids>,
    /// Stamp → ids of the commits with it (a settlement shares its record's stamp).
    by_stamp: HashMap<Version, Ids>,
    /// Commits in flight or stopped half-way.
    open: Ids,
    /// Finished commits (acknowledged or undone), in the order they finished: the order
    /// [`LocalLog::prune`] forgets them in.
    finished: VecDeque<u64>,
    /// Table → the latest sequence number of an acknowledged commit (or settlement) that wrote
    /// it: a serializable commit that scanned the table conflicts if it is after its snapshot.
    /// Never pruned (one entry per table); a snapshot older than what the log forgot is too
    /// old anyway.
    table_acks: HashMap<String, Lsn>,
    next_id: u64,
    next_token: u64,
    /// The latest acknowledged sequence number.
    latest: Lsn,
    /// Sessions whose snapshot is older than this lost history: "snapshot too old".
    horizon: Lsn,
    /// Latest acknowledgement time of a forgotten commit: a KV read sent less than
    /// [`RECENT_MS`] after it may show what that commit replaced, with nothing left here to
    /// correct it (read again then).
    forgot_at: u64,
    /// Send times of the KV reads in flight (see [`LocalLog::begin_read`]), with counts.
    reads: BTreeMap<u64, usize>,
    /// Settlements of other isolates' records acknowledged so far (the isolate cache must
    /// start over after one).
    settled: u64,
    keys: usize,
    bytes: usize,
}

fn entry_bytes(e: Option<&KvEntry>) -> usize {
    e.map_or(0, |e| {
        e.value.len() + e.metadata.as_ref().map_or(0, |m| m.to_string().len())
    })
}

fn version(key: &str, e: Option<&KvEntry>) -> Option<Option<u64>> {
    super::journal::version_of(key, e).ok()
}

/// As [`CommitRecord::overlaps`], for a commit of this isolate.
fn overlaps(c: &LocalCommit, intent: &Footprint) -> bool {
    let touches = |k: &String| c.keys.contains_key(k);
    intent.writes.iter().any(touches)
        || intent.relies.iter().any(touches)
        || intent.reads.iter().any(touches)
        || intent.writes.iter().any(|k| c.relies.contains(k))
        || c.whole.iter().any(|t| intent.tables.contains(t))
        || intent.whole.iter().any(|t| c.tables.contains(t))
}

impl LocalLog {
    pub fn latest(&self) -> Lsn {
        self.latest
    }

    pub fn settled(&self) -> u64 {
        self.settled
    }

    /// True when a session as of `as_of` still has its history here.
    pub fn covers(&self, as_of: Lsn) -> bool {
        as_of >= self.horizon
    }

    /// Latest acknowledgement time of a commit this log forgot (see [`LocalLog::prune`]).
    pub fn forgot_at(&self) -> u64 {
        self.forgot_at
    }

    /// A KV read whose answer will be read through this log is sent at `now`: until
    /// [`LocalLog::end_read`], commits it may need are not forgotten for their age.
    pub fn begin_read(&mut self, now: u64) {
        *self.reads.entry(now).or_default() += 1;
    }

    /// The read sent at `start` is answered (or dropped).
    pub fn end_read(&mut self, start: u64) {
        if let Some(n) = self.reads.get_mut(&start) {
            *n -= 1;
            if *n == 0 {
                self.reads.remove(&start);
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<&LocalCommit> {
        self.commits.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut LocalCommit> {
        self.commits.get_mut(&id)
    }

    /// True when `token` still holds commit `id`.
    pub fn holds(&self, id: u64, token: u64) -> bool {
        matches!(self.commits.get(&id).map(|c| &c.state), Some(State::InFlight { token: t, .. }) if *t == token)
    }

    /// Renews the lease of commit `id`; false when `token` lost it.
    pub fn renew(&mut self, id: u64, token: u64, now: u64) -> bool {
        match self.commits.get_mut(&id).map(|c| &mut c.state) {
            Some(State::InFlight {
                token: t,
                renewed_at,
            }) if *t == token => {
                *renewed_at = now;
                true
            }
            _ => false,
        }
    }

    /// Tries to claim the keys of a new commit whose session started as of `as_of` (see
    /// [`Claim`]).
    pub fn claim(&mut self, intent: &Footprint, as_of: Lsn, stamp: Version, now: u64) -> Claim {
        self.claim_except(intent, as_of, stamp, now, 0)
    }

    /// [`LocalLog::claim`], ignoring commit `except` (the caller's own claim).
    fn claim_except(
        &mut self,
        intent: &Footprint,
        as_of: Lsn,
        stamp: Version,
        now: u64,
        except: u64,
    ) -> Claim {
        if !self.covers(as_of) {
            return Claim::Conflict(
                "the session's snapshot (older than what this isolate remembers of its commits)"
                    .to_owned(),
            );
        }
        for id in self.overlapping(intent) {
            let c = &self.commits[&id];
            if id == except || !self.blocks(id, intent) {
                continue;
            }
            match &c.state {
                State::InFlight { renewed_at, .. }
                    if now.saturating_sub(*renewed_at) <= LEASE_MS =>
                {
                    return Claim::Wait;
                }
                State::InFlight { .. } | State::Unknown => return Claim::Settle(id),
                State::Acknowledged(lsn) if *lsn > as_of => {
                    let what = c
                        .keys
                        .keys()
                        .find(|k| intent.writes.contains(*k) || intent.relies.contains(*k))
                        .map(|k| format!("a row or schema stored in KV ({k})"))
                        .or_else(|| {
                            c.keys.keys().find(|k| intent.reads.contains(*k)).map(|k| {
                                format!("a row this session read ({k}; serializable isolation)")
                            })
                        })
                        .or_else(|| {
                            c.whole
                                .iter()
                                .chain(&c.tables)
                                .next()
                                .map(|t| format!("the table {t}"))
                        })
                        .unwrap_or_default();
                    return Claim::Conflict(what);
                }
                _ => {}
            }
        }
        // Tables scanned: changed by a commit acknowledged after the snapshot?
        if let Some(t) = intent
            .scans
            .iter()
            .find(|t| self.table_acks.get(*t).is_some_and(|lsn| *lsn > as_of))
        {
            return Claim::Conflict(format!(
                "what a scan of table {t} returned, which this session read (serializable \
                 isolation)"
            ));
        }
        let id = self.open(stamp, now);
        let token = self.token(id, now);
        let c = self.commits.get_mut(&id).expect("just opened");
        for key in &intent.writes {
            c.keys.insert(key.clone(), KeyChange::default());
        }
        c.relies = intent.relies.clone();
        c.tables = intent.tables.clone();
        c.whole = intent.whole.clone();
        for key in &intent.writes {
            self.by_key.entry(key.clone()).or_default().insert(id);
        }
        for key in &intent.relies {
            index(&mut self.by_rely, key, id);
        }
        for t in &intent.tables {
            index(&mut self.by_table, t, id);
        }
        for t in &intent.whole {
            index(&mut self.by_whole, t, id);
        }
        self.keys += intent.writes.len();
        Claim::Claimed(id, token)
    }

    fn open(&mut self, stamp: Version, now: u64) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.commits.insert(
            id,
            LocalCommit {
                stamp,
                state: State::Undone,
                at: now,
                keys: BTreeMap::new(),
                relies: BTreeSet::new(),
                tables: BTreeSet::new(),
                whole: BTreeSet::new(),
                record: None,
            },
        );
        index(&mut self.by_stamp, &stamp, id);
        id
    }

    /// Gives commit `id` a new token (a new holder: the commit itself, or a settlement).
    fn token(&mut self, id: u64, now: u64) -> u64 {
        self.next_token += 1;
        let token = self.next_token;
        self.set_state(
            id,
            State::InFlight {
                token,
                renewed_at: now,
            },
        );
        token
    }

    /// Records what the commit's check found for each key it writes (what a snapshot older
    /// than the commit reads from now on).
    pub fn checked(
        &mut self,
        id: u64,
        before: &BTreeMap<String, Option<KvEntry>>,
        after: &BTreeMap<String, Option<KvEntry>>,
    ) {
        let Some(c) = self.commits.get_mut(&id) else {
            return;
        };
        for (key, change) in &mut c.keys {
            // The first check's finding stays (a settlement of the commit finds part of its
            // own writes).
            if let (None, Some(b)) = (&change.before, before.get(key)) {
                self.bytes += entry_bytes(b.as_ref());
                change.before = Some(b.clone());
            }
            if let Some(a) = after.get(key) {
                self.bytes = self
                    .bytes
                    .saturating_sub(entry_bytes(change.after.as_ref()));
                self.bytes += entry_bytes(a.as_ref());
                change.after = a.clone();
            }
        }
    }

    /// Adds keys to a claimed commit (found only by its check, e.g. leftovers it deletes).
    pub fn add_keys(
        &mut self,
        id: u64,
        keys: &BTreeMap<String, (Option<KvEntry>, Option<KvEntry>)>,
    ) {
        let Some(c) = self.commits.get_mut(&id) else {
            return;
        };
        for (key, (before, after)) in keys {
            if c.keys.contains_key(key) {
                continue;
            }
            self.bytes += entry_bytes(before.as_ref()) + entry_bytes(after.as_ref());
            c.keys.insert(
                key.clone(),
                KeyChange {
                    before: Some(before.clone()),
                    after: after.clone(),
                },
            );
            self.by_key.entry(key.clone()).or_default().insert(id);
            self.keys += 1;
        }
    }

    /// Commit `id` is applied in full: visible from the next sequence number on.
    pub fn acknowledged(&mut self, id: u64, now: u64) -> Lsn {
        self.latest += 1;
        let lsn = self.latest;
        if let Some(c) = self.commits.get_mut(&id) {
            c.at = now;
            for t in c.tables.iter().chain(&c.whole) {
                self.table_acks.insert(t.clone(), lsn);
            }
        }
        self.set_state(id, State::Acknowledged(lsn));
        self.prune(now);
        lsn
    }

    /// A settlement finished: of another isolate's record (forward or back), or of this
    /// isolate's own commit, forward. The isolate cache must start over.
    pub fn acknowledged_settlement(&mut self, id: u64, now: u64) -> Lsn {
        self.settled += 1;
        self.acknowledged(id, now)
    }

    /// Commit `id` is undone in full (or never reached KV).
    pub fn undone(&mut self, id: u64, now: u64) {
        if let Some(c) = self.commits.get_mut(&id) {
            c.at = now;
        }
        self.set_state(id, State::Undone);
        self.prune(now);
    }

    /// Claim `id` wrote nothing (a settlement that found its record busy or gone): it is
    /// dropped, so that the record it was for still counts as unsettled.
    pub fn release(&mut self, id: u64) {
        let Some(c) = self.commits.remove(&id) else {
            return;
        };
        self.open.remove(&id);
        unindex(&mut self.by_stamp, &c.stamp, id);
        for key in &c.relies {
            unindex(&mut self.by_rely, key, id);
        }
        for t in &c.tables {
            unindex(&mut self.by_table, t, id);
        }
        for t in &c.whole {
            unindex(&mut self.by_whole, t, id);
        }
        for (key, change) in &c.keys {
            self.keys = self.keys.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(
                change
                    .before
                    .as_ref()
                    .map_or(0, |b| entry_bytes(b.as_ref()))
                    + entry_bytes(change.after.as_ref()),
            );
            if let Some(ids) = self.by_key.get_mut(key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// Commit `id` stopped half-way: its record decides, when someone settles it.
    pub fn unknown(&mut self, id: u64) {
        self.set_state(id, State::Unknown);
    }

    /// The stamps of this isolate's commits whose records need no settling (acknowledged or
    /// undone): a record of one still in KV only waits for its delete.
    pub fn finished(&self, stamp: Version) -> bool {
        self.with_stamp(stamp)
            .any(|c| matches!(c.state, State::Acknowledged(_) | State::Undone))
    }

    fn with_stamp(&self, stamp: Version) -> impl Iterator<Item = &LocalCommit> {
        self.by_stamp
            .get(&stamp)
            .into_iter()
            .flatten()
            .map(|id| &self.commits[id])
    }

    /// True when a commit of this isolate with `stamp` is in flight or unsettled.
    pub fn unsettled(&self, stamp: Version) -> bool {
        self.with_stamp(stamp)
            .any(|c| matches!(c.state, State::InFlight { .. } | State::Unknown))
    }

    /// Forgets finished commits older than [`RECENT_MS`], and the oldest ones past the size
    /// limits; snapshots older than one forgotten acknowledged commit become too old.
    pub fn prune(&mut self, now: u64) {
        let full = |log: &Self| log.keys > MAX_KEYS || log.bytes > MAX_BYTES;
        // Age counts from the oldest read in flight (unless it is older than PIN_MAX_MS).
        let since = self
            .reads
            .range(now.saturating_sub(PIN_MAX_MS)..)
            .next()
            .map_or(now, |(start, _)| (*start).min(now));
        // In the order they finished, which is the order of their `at` (the isolate's clock
        // only moves forward): the first one young enough ends the walk, unless the log is full.
        while let Some(&id) = self.finished.front() {
            let Some(c) = self
                .commits
                .get(&id)
                .filter(|c| matches!(c.state, State::Acknowledged(_) | State::Undone))
            else {
                self.finished.pop_front(); // released meanwhile
                continue;
            };
            if since.saturating_sub(c.at) < RECENT_MS && !full(self) {
                break;
            }
            self.finished.pop_front();
            self.forgot_at = self.forgot_at.max(c.at);
            if let State::Acknowledged(lsn) = c.state {
                self.horizon = self.horizon.max(lsn);
            }
            self.release(id);
        }
    }
}

#[cfg(test)]
mod tests;
