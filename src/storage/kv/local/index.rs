//! The log's indexes: which commits may overlap a new one, found without walking the log, and
//! the bookkeeping that keeps the open and finished sets true.

use super::{overlaps, Ids, LocalCommit, LocalLog, State};
use crate::storage::kv::journal::Footprint;
use std::collections::HashMap;

/// True when `c` writes a table the new commit scanned (a serializable commit's predicate
/// read). Checked against commits in flight here; acknowledged ones through
/// [`LocalLog::table_acks`].
fn scan_overlaps(c: &LocalCommit, intent: &Footprint) -> bool {
    c.tables
        .iter()
        .chain(&c.whole)
        .any(|t| intent.scans.contains(t))
}

pub(super) fn index<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Ids>, key: &K, id: u64) {
    map.entry(key.clone()).or_default().insert(id);
}

pub(super) fn unindex<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Ids>, key: &K, id: u64) {
    if let Some(ids) = map.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

impl LocalLog {
    /// Ids of the commits that may overlap `intent` (a superset: [`overlaps`] decides), from
    /// the indexes.
    pub(super) fn overlapping(&self, intent: &Footprint) -> Ids {
        let mut ids = Ids::new();
        let mut add = |found: Option<&Ids>| ids.extend(found.into_iter().flatten());
        for k in intent
            .writes
            .iter()
            .chain(&intent.relies)
            .chain(&intent.reads)
        {
            add(self.by_key.get(k));
        }
        for k in &intent.writes {
            add(self.by_rely.get(k));
        }
        for t in &intent.tables {
            add(self.by_whole.get(t));
        }
        for t in &intent.whole {
            add(self.by_table.get(t));
        }
        if !intent.scans.is_empty() {
            ids.extend(
                self.open
                    .iter()
                    .filter(|id| scan_overlaps(&self.commits[id], intent)),
            );
        }
        debug_assert_eq!(
            ids.iter()
                .filter(|id| self.blocks(**id, intent))
                .collect::<Vec<_>>(),
            self.commits
                .keys()
                .filter(|id| self.blocks(**id, intent))
                .collect::<Vec<_>>(),
            "the log's indexes disagree with its commits"
        );
        ids
    }

    /// Whether commit `id` stands in the way of a new commit with `intent`: they overlap, or
    /// it is still open and writes a table the new one scanned.
    pub(super) fn blocks(&self, id: u64, intent: &Footprint) -> bool {
        let c = &self.commits[&id];
        overlaps(c, intent) || (self.open.contains(&id) && scan_overlaps(c, intent))
    }

    /// Sets commit `id`'s state, keeping [`LocalLog::open`] and [`LocalLog::finished`] true.
    pub(super) fn set_state(&mut self, id: u64, state: State) {
        let Some(c) = self.commits.get_mut(&id) else {
            return;
        };
        let was_finished = matches!(c.state, State::Acknowledged(_) | State::Undone);
        let finished = matches!(state, State::Acknowledged(_) | State::Undone);
        c.state = state;
        if finished {
            self.open.remove(&id);
            if !was_finished {
                self.finished.push_back(id);
            }
        } else {
            self.open.insert(id);
        }
    }
}
