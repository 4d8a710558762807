//! Unit tests of the isolate's log.

use super::*;

fn entry(v: u64) -> Option<KvEntry> {
    Some(KvEntry {
        value: format!(r#"{{"k":{{"I64":1}},"v":{v}}}"#),
        metadata: None,
    })
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

/// Claims `k`, checks it (before `from`, after `to`): the commit's id.
fn write(log: &mut LocalLog, k: &str, from: u64, to: u64, as_of: Lsn) -> u64 {
    let intent = Footprint {
        writes: set(&[k]),
        ..Footprint::default()
    };
    let Claim::Claimed(id, _) = log.claim(&intent, as_of, to, 0) else {
        panic!("not claimed")
    };
    let before = [(k.to_owned(), entry(from))].into_iter().collect();
    let after = [(k.to_owned(), entry(to))].into_iter().collect();
    log.checked(id, &before, &after);
    id
}

#[test]
fn snapshots_read_as_of_their_start_and_through_kvs_lag() {
    let mut log = LocalLog::default();
    let id = write(&mut log, "k", 1, 2, 0);
    // In flight: every snapshot sees the key as it was, whatever KV shows.
    assert_eq!(log.belief("k", Some(2), 0), Belief::Local(entry(1)));
    assert_eq!(log.acknowledged(id, 0), 1);
    // Older snapshot: before; newer: the write, also while KV still shows 1.
    assert_eq!(log.belief("k", Some(2), 0), Belief::Local(entry(1)));
    assert_eq!(log.belief("k", Some(1), 1), Belief::Local(entry(2)));
    assert_eq!(log.belief("k", Some(2), 1), Belief::Local(entry(2)));
    // A version this isolate never wrote: another isolate's, newer.
    assert_eq!(log.belief("k", Some(7), 1), Belief::Kv);
    assert_eq!(log.belief("other", Some(1), 0), Belief::Kv);
    // After a minute the commit is forgotten, and older snapshots are too old.
    log.prune(RECENT_MS);
    assert_eq!(log.belief("k", Some(1), 1), Belief::Kv);
    assert!(!log.covers(0) && log.covers(1));
}

#[test]
fn overlapping_commits_wait_or_conflict_and_abandoned_ones_are_settled() {
    let mut log = LocalLog::default();
    let intent = Footprint {
        writes: set(&["k"]),
        ..Footprint::default()
    };
    let Claim::Claimed(id, _) = log.claim(&intent, 0, 9, 0) else {
        panic!()
    };
    assert!(matches!(log.claim(&intent, 0, 10, 1_000), Claim::Wait));
    // Its lease expires: the next commit settles it (it has no record: nothing in KV).
    assert!(matches!(log.claim(&intent, 0, 10, LEASE_MS + 1), Claim::Settle(i) if i == id));
    assert!(matches!(log.take_over(id, LEASE_MS + 1), TakeOver::Nothing));
    assert!(matches!(
        log.claim(&intent, 0, 10, LEASE_MS + 1),
        Claim::Claimed(..)
    ));
    let mut log = LocalLog::default();
    let first = write(&mut log, "k", 1, 2, 0);
    log.acknowledged(first, 0);
    assert!(matches!(log.claim(&intent, 0, 10, 0), Claim::Conflict(k) if k.contains("(k)")));
    assert!(matches!(log.claim(&intent, 1, 10, 0), Claim::Claimed(..)));
}

#[test]
fn an_acknowledged_write_wins_over_what_a_commit_in_flight_found_while_kv_lagged() {
    let mut log = LocalLog::default();
    // A inserts k (absent → 2) and is acknowledged.
    let intent = Footprint {
        writes: set(&["k"]),
        ..Footprint::default()
    };
    let Claim::Claimed(a, _) = log.claim(&intent, 0, 2, 0) else {
        panic!()
    };
    let absent: BTreeMap<String, Option<KvEntry>> = [("k".to_owned(), None)].into_iter().collect();
    let two = [("k".to_owned(), entry(2))].into_iter().collect();
    log.checked(a, &absent, &two);
    let lsn = log.acknowledged(a, 0);
    // B (deleting k) checked while KV still lagged behind A: it found k absent. In flight.
    let Claim::Claimed(b, _) = log.claim(&intent, lsn, 3, 0) else {
        panic!()
    };
    log.checked(b, &absent, &absent);
    // A read as of A, while KV still shows k absent: A's write, not B's stale finding.
    assert_eq!(log.belief("k", None, lsn), Belief::Local(entry(2)));
    // KV showing B's own write (its stamp) is hidden: the key as B found it.
    let three = Some(KvEntry {
        value: r#"{"k":{"I64":1},"v":3}"#.to_owned(),
        metadata: None,
    });
    log.checked(b, &absent, &[("k".to_owned(), three)].into_iter().collect());
    assert_eq!(log.belief("k", Some(3), lsn), Belief::Local(None));
}
