//! Reading through the log: what a session as of a snapshot should believe about a key KV
//! answered for (this isolate's own commits hide later ones and correct KV's lag), and which
//! keys a listing must consult besides what KV lists.

use super::{version, LocalLog, Lsn, State};
use crate::storage::kv::backend::KvEntry;

/// What a session should believe about a key KV answered for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Belief {
    /// What KV returned.
    Kv,
    /// This entry (`None`: absent), from the isolate's own commits.
    Local(Option<KvEntry>),
}

impl LocalLog {
    /// What a session as of `as_of` should believe about `key`, for which KV returned an
    /// entry of version `found` (`None`: absent; use [`Belief::Kv`] when it cannot be read).
    pub fn belief(&self, key: &str, found: Option<u64>, as_of: Lsn) -> Belief {
        self.belief_except(key, found, as_of, 0, false)
    }

    /// [`LocalLog::belief`], leaving commit `except` out (a settlement reads KV as it is).
    /// `checking`: for a commit's check (or a settlement), where an absent key is believed
    /// even if this isolate wrote it: a version never recurs, so a version this isolate
    /// replaced is surely stale, but absence does recur — another isolate may have deleted
    /// the row since. (A read believes this isolate's write instead: it may only be stale.)
    pub fn belief_except(
        &self,
        key: &str,
        found: Option<u64>,
        as_of: Lsn,
        except: u64,
        checking: bool,
    ) -> Belief {
        let Some(ids) = self.by_key.get(key) else {
            return Belief::Kv;
        };
        // The key as of `as_of`, per this isolate: the latest commit it sees, and the
        // versions those commits replaced (stale if KV still serves them).
        let mut known: Option<Option<KvEntry>> = None;
        let mut stale: Vec<Option<u64>> = Vec::new();
        // What the key held before the first commit the snapshot must not see.
        let mut hidden: Option<Option<KvEntry>> = None;
        // KV shows what an undone commit wrote: what that commit found before it.
        let mut ghost: Option<Option<KvEntry>> = None;
        for id in ids.iter().filter(|id| **id != except) {
            let Some(c) = self.commits.get(id) else {
                continue;
            };
            let Some(change) = c.keys.get(key) else {
                continue;
            };
            match &c.state {
                State::Acknowledged(lsn) if *lsn <= as_of => {
                    if let Some(before) = &change.before {
                        stale.extend(version(key, before.as_ref()));
                    }
                    known = Some(change.after.clone());
                    hidden = None;
                }
                State::Undone => {
                    // As if it never ran: what it wrote (its stamp) is a ghost if KV still
                    // shows it, and then the key holds what it held before. (Its check's
                    // finding is no better than what earlier commits left: KV may have
                    // lagged behind them then.)
                    if hidden.is_none() && found == Some(c.stamp) {
                        if let Some(before) = &change.before {
                            ghost = Some(before.clone());
                        }
                    }
                }
                State::Acknowledged(_) => {
                    // Acknowledged after the snapshot: hidden from it.
                    if hidden.is_none() {
                        if let Some(before) = &change.before {
                            hidden = Some(before.clone());
                        }
                    }
                }
                State::InFlight { .. } | State::Unknown => {
                    // Before its check it has written nothing: KV shows the key as it was.
                    // After it, KV shows what it was or what the commit wrote: its own write is
                    // hidden (the key as the commit found it). What it found is no better
                    // than what earlier commits of this isolate left — KV may have lagged
                    // behind them at its check — so when KV shows the key as it was, the
                    // acknowledged commits decide, as for any read.
                    if hidden.is_none() && found == Some(c.stamp) {
                        if let Some(before) = &change.before {
                            hidden = Some(before.clone());
                        }
                    }
                }
            }
        }
        if let Some(hidden) = hidden {
            return Belief::Local(hidden);
        }
        if let Some(ghost) = ghost {
            // What the commits this isolate sees left, or else what the undone one found.
            return Belief::Local(known.unwrap_or(ghost));
        }
        match known {
            Some(known) => {
                let known_version = version(key, known.as_ref());
                let stale = stale.contains(&found) && !(checking && found.is_none());
                if known_version == Some(found) || stale {
                    Belief::Local(known)
                } else {
                    // Newer than anything this isolate wrote: another isolate's write.
                    Belief::Kv
                }
            }
            None => Belief::Kv,
        }
    }

    /// Keys under `prefix` that this isolate's commits wrote (a listing of the prefix must
    /// consult them too: a key one of them created or deleted may be missing or extra).
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.by_key
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}
