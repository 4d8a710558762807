//! Commits that stopped half-way: taking over this isolate's own (an abandoned future, a
//! lease that expired) and registering the settlement of another isolate's record, so that the
//! isolate's sessions see a settlement whole or not at all.

use super::{overlaps, Claim, LocalLog, State, TakeOver, LEASE_MS};
use crate::storage::kv::journal::{CommitRecord, Footprint, REPLAY_AFTER_MS};

impl LocalLog {
    /// Takes commit `id` over for settling it, if it is still unsettled (see [`TakeOver`]).
    pub fn take_over(&mut self, id: u64, now: u64) -> TakeOver {
        let Some(c) = self.commits.get(&id) else {
            return TakeOver::Nothing;
        };
        match &c.state {
            State::InFlight { renewed_at, .. } if now.saturating_sub(*renewed_at) <= LEASE_MS => {
                return TakeOver::Nothing
            }
            State::InFlight { .. } | State::Unknown => {}
            _ => return TakeOver::Nothing,
        }
        let began = c.keys.values().any(|k| k.before.is_some());
        match c.record.clone() {
            // Past its check it may have written keys this isolate's location does not show
            // yet (KV's lag is no less for the writer): settled once every location shows
            // them, as another isolate would.
            Some(record) if began && now.saturating_sub(record.at) < REPLAY_AFTER_MS => {
                TakeOver::NotYet(record.at + REPLAY_AFTER_MS)
            }
            Some(record) => TakeOver::Settle(record, self.token(id, now)),
            None => {
                // Stopped before its record was written: nothing of it is in KV.
                self.undone(id, now);
                TakeOver::Nothing
            }
        }
    }

    /// This isolate's commits that stopped half-way, or whose lease expired: to settle.
    pub fn unsettled_ids(&self, now: u64) -> Vec<u64> {
        self.open
            .iter()
            .filter(|id| match &self.commits[id].state {
                State::Unknown => true,
                State::InFlight { renewed_at, .. } => now.saturating_sub(*renewed_at) > LEASE_MS,
                _ => false,
            })
            .copied()
            .collect()
    }

    /// Registers the settlement of another isolate's record, claiming its keys; `None` while
    /// one of them is claimed by a local commit in flight (settle later) other than `except`
    /// (the commit that asks for the settlement, which gives up after it).
    pub fn settling(&mut self, record: &CommitRecord, now: u64, except: u64) -> Option<(u64, u64)> {
        let intent = Footprint {
            writes: record.w.iter().map(|w| w.k.clone()).collect(),
            tables: record.t.iter().cloned().collect(),
            ..Footprint::default()
        };
        let busy = self.overlapping(&intent).into_iter().any(|id| {
            let c = &self.commits[&id];
            id != except
                && overlaps(c, &intent)
                && matches!(c.state, State::InFlight { .. } | State::Unknown)
        });
        if busy {
            return None;
        }
        match self.claim_except(&intent, self.latest, record.s, now, except) {
            Claim::Claimed(id, token) => {
                let c = self.commits.get_mut(&id).expect("claimed");
                c.record = Some(record.clone());
                Some((id, token))
            }
            _ => None,
        }
    }
}
