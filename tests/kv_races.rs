//! Races between isolates on kv:// that an outside review found, each replayed call by call:
//! settlements of records whose commit was acknowledged, undo after another isolate built on a
//! commit, budgets, snapshots, unknown outcomes. Every test asserts the promise it once broke.
//!
//! Long on purpose: each race is replayed call by call in full, so that it reads on its own.

mod common;
use common::{block_on, isolate};
use gluebind::{
    kv::{CallKind, FaultyKv, KvBackend, KvEntry, KvFailure, MemoryKv},
    Session, SessionFactory,
};
use std::{
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
};

type Kv = Rc<FaultyKv<MemoryKv>>;
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

const URL: &str = "kv://GLUEBIND_KV";
const LATER_MS: u64 = 121_000;

fn namespace() -> Kv {
    Rc::new(FaultyKv::new(MemoryKv::new()))
}

fn poll_once<T>(f: &mut Boxed<'_, T>) -> Poll<T> {
    let waker = futures::task::noop_waker();
    f.as_mut().poll(&mut Context::from_waker(&waker))
}

fn until_paused<T>(kv: &Kv, f: &mut Boxed<'_, T>) -> Option<T> {
    loop {
        if let Poll::Ready(v) = poll_once(f) {
            return Some(v);
        }
        if kv.is_paused() {
            return None;
        }
    }
}

fn run(f: &SessionFactory, sql: &str, flush: bool) -> Result<(), gluebind::Error> {
    block_on(async {
        let s = f.open();
        s.execute_batch(sql).await?;
        s.commit().await?;
        if flush {
            s.engine().flush().await?;
        }
        Ok(())
    })
}

fn rows(kv: &Kv, sql: &str) -> Vec<String> {
    block_on(async {
        let s = isolate(kv, URL).open();
        let r = s
            .execute_batch(sql)
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        r.iter().map(|r| format!("{:?}", r.values())).collect()
    })
}

fn records(kv: &Kv) -> Vec<String> {
    kv.inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("gluebind/v1/c/"))
        .collect()
}

/// Another isolate's commit over the keys of an acknowledged commit whose record lingers: it
/// conflicts while the record is young (the commit may still be writing), and goes through once
/// the record is past its writer's lease with every key written (the record is retired first,
/// so no settlement replays it later).
fn build_on_a_lingering_record(kv: &Kv, f: &SessionFactory, sql: &str) {
    let young = run(f, sql, true);
    assert!(
        matches!(young, Err(gluebind::Error::Conflict { .. })),
        "a commit over a young record's keys: {young:?}"
    );
    kv.inner().advance(36_000);
    run(f, sql, true).expect("past the lease, the record is finished");
    assert!(
        records(kv).is_empty(),
        "the finished record was retired: {:?}",
        records(kv)
    );
}

fn t_table() -> Kv {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); \
         INSERT INTO t VALUES (2, 'y'), (5, 'z')",
        true,
    )
    .unwrap();
    kv
}

/// A fully applied commit whose record's delete never ran (its teardown was cut off), then a
/// later commit of another isolate deletes a row the first one inserted: no settlement may
/// later roll the first one "forward" and bring the row back.
#[test]
fn r1_a_settlement_never_resurrects_a_row_a_later_commit_deleted() {
    let kv = t_table();
    let a = isolate(&kv, URL);
    // A: inserts row 1 and updates row 2; acknowledged; its teardown never runs.
    run(
        &a,
        "INSERT INTO t VALUES (1, 'x'); UPDATE t SET v = 'y1' WHERE id = 2",
        false,
    )
    .unwrap();
    // B (another isolate, strongly consistent KV): deletes row 1; acknowledged and flushed.
    let b = isolate(&kv, URL);
    build_on_a_lingering_record(&kv, &b, "DELETE FROM t WHERE id = 1");
    println!("after B: {:?}", rows(&kv, "SELECT * FROM t ORDER BY id"));
    kv.inner().advance(LATER_MS);
    let after = rows(&kv, "SELECT * FROM t ORDER BY id");
    println!(
        "after the settlement: {after:?}; records left {:?}",
        records(&kv)
    );
    assert!(
        !after.iter().any(|r| r.contains("\"x\"")),
        "row 1, deleted by B's acknowledged commit, came back: {after:?}"
    );
}

/// Same, where a settlement would roll the acknowledged commit BACK: B deletes the row A
/// inserted (looks "not written yet") and changes another of A's rows (looks "changed by
/// another commit"); A's third row must keep A's update.
#[test]
fn r2_a_settlement_never_rolls_back_part_of_an_acknowledged_commit() {
    let kv = t_table();
    let a = isolate(&kv, URL);
    run(
        &a,
        "INSERT INTO t VALUES (1, 'x'); UPDATE t SET v = 'y1' WHERE id = 2; \
         UPDATE t SET v = 'z1' WHERE id = 5",
        false,
    )
    .unwrap();
    let b = isolate(&kv, URL);
    build_on_a_lingering_record(
        &kv,
        &b,
        "DELETE FROM t WHERE id = 1; UPDATE t SET v = 'z2' WHERE id = 5",
    );
    println!("after B: {:?}", rows(&kv, "SELECT * FROM t ORDER BY id"));
    kv.inner().advance(LATER_MS);
    let after = rows(&kv, "SELECT * FROM t ORDER BY id");
    println!("after the settlement: {after:?}");
    assert!(
        after.iter().any(|r| r.contains("y1")),
        "A's acknowledged update of row 2 was undone: {after:?}"
    );
}

/// Same with unique entries (an email that goes back to its first owner looks "not written").
#[test]
fn r3_an_email_back_with_its_first_owner_never_undoes_an_acknowledged_commit() {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, n INTEGER); \
         INSERT INTO users VALUES (1, 'e@x', 0), (2, 'b@x', 0)",
        true,
    )
    .unwrap();
    let a = isolate(&kv, URL);
    run(
        &a,
        "UPDATE users SET email = 'f@x' WHERE id = 1; UPDATE users SET n = 7 WHERE id = 2",
        false,
    )
    .unwrap();
    let b = isolate(&kv, URL);
    build_on_a_lingering_record(&kv, &b, "UPDATE users SET email = 'e@x' WHERE id = 1");
    kv.inner().advance(LATER_MS);
    let after = rows(&kv, "SELECT * FROM users ORDER BY id");
    println!("after the settlement: {after:?}");
    assert!(
        after.iter().any(|r| r.contains("I64(7)")),
        "A's acknowledged update of user 2 was undone: {after:?}"
    );
}

fn bank() -> Kv {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, note TEXT); \
         INSERT INTO accounts VALUES (1, 100, ''), (2, 10, ''), (3, 0, '')",
        true,
    )
    .unwrap();
    kv
}

fn total(kv: &Kv) -> (Vec<String>, i64) {
    block_on(async {
        let s = isolate(kv, URL).open();
        let r = s
            .execute_batch("SELECT id, balance FROM accounts ORDER BY id")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        let mut sum = 0;
        let mut out = Vec::new();
        for row in r.iter() {
            let b: i64 = row.get("balance").unwrap();
            sum += b;
            out.push(format!("{:?}", row.values()));
        }
        (out, sum)
    })
}

/// Index (from the commit's first call) of the first failed call of a dry run.
fn first_failed_from(kv: &Kv, start: usize) -> usize {
    kv.log()
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, (_, failed))| *failed)
        .map(|(i, _)| i)
        .expect("a failed call")
}

/// C1 (isolate A) closes account 1 into account 2 (delete + put). Its delete times out but
/// lands. Before C1 reads its keys back, C2 (isolate B) tries to build on account 2 while C1's
/// record is young; C1 then undoes. The total must stay what it was: no half of C1 survives.
#[test]
fn r4_an_undo_never_leaves_half_a_commit_another_isolate_built_on() {
    const C1: &str = "DELETE FROM accounts WHERE id = 1; \
                      UPDATE accounts SET balance = balance + 100 WHERE id = 2";
    let kv = bank();
    let (before, sum_before) = total(&kv);
    println!("before: {before:?} = {sum_before}");
    // Dry run on a copy: which call (from the commit's start) is the failing delete.
    let d = {
        let dry = copy_of(&kv);
        let a = isolate(&dry, URL);
        let s1 = a.open();
        block_on(s1.execute_batch(C1)).unwrap();
        let start = dry.calls() as usize;
        dry.fail_next(CallKind::Delete, 1, KvFailure::Transient("timeout".into()));
        let r = block_on(s1.commit());
        println!("dry run: {r:?}; calls {:?}", &dry.log()[start..]);
        first_failed_from(&dry, start) - start
    };
    let a = isolate(&kv, URL);
    let s1 = a.open();
    block_on(s1.execute_batch(C1)).unwrap();
    let start = kv.calls();
    kv.fail_next(CallKind::Delete, 1, KvFailure::Transient("timeout".into()));
    // Pause at the call after the failed delete: the undo's read-back.
    kv.pause_at(start + d as u64 + 2);
    let mut commit: Boxed<'_, _> = Box::pin(s1.commit());
    assert!(until_paused(&kv, &mut commit).is_none());
    // The timed-out delete landed.
    let acct1 = kv
        .inner()
        .keys()
        .into_iter()
        .find(|k| k.starts_with("gluebind/v1/r/accounts/"))
        .unwrap();
    kv.inner().unpoke(&acct1);
    // C2, another isolate, while C1 waits at its read-back.
    let b = isolate(&kv, URL);
    let c2 = run(&b, "UPDATE accounts SET note = 'b' WHERE id = 2", true);
    println!("C2: {c2:?}");
    kv.resume();
    let c1 = block_on(commit);
    println!("C1: {c1:?}");
    kv.inner().advance(LATER_MS);
    let (after, sum_after) = total(&kv);
    println!("after: {after:?} = {sum_after}; records {:?}", records(&kv));
    assert_eq!(
        sum_after, sum_before,
        "half of C1 survived (C1 said {c1:?})"
    );
}

/// A commit that only deletes: its marker put times out but lands, and the KV outage goes on
/// (the marker's delete and the record's delete fail). The commit must not be told "nothing
/// was written": two minutes later the settlement finds the record and the marker and rolls
/// the deletes forward.
#[test]
fn r5_a_marker_put_that_may_have_landed_is_an_unknown_outcome() {
    let kv = bank();
    let a = isolate(&kv, URL);
    let s = a.open();
    block_on(s.execute_batch("DELETE FROM accounts WHERE id = 3")).unwrap();
    let start = kv.calls();
    // record put (1), journal list (2), bulk get (3), marker put (4): KV fails from there on.
    kv.fail_from(start + 4, KvFailure::Transient("timeout".into()));
    let result = block_on(s.commit());
    kv.heal();
    println!("commit: {result:?}");
    let err = result.expect_err("fails");
    assert!(!err.to_string().contains("nothing was written"), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    // The marker put timed out but landed.
    let record = records(&kv)
        .pop()
        .expect("the record stays (its delete failed)");
    let stamp = u64::from_str_radix(record.rsplit('/').next().unwrap(), 16).unwrap();
    kv.inner().poke(
        &format!("{record}.w"),
        KvEntry {
            value: format!("{{\"s\":{stamp}}}"),
            metadata: Some(serde_json::json!({ "at": kv.now_ms() })),
        },
    );
    kv.inner().advance(LATER_MS);
    let (after, _) = total(&kv);
    println!("after the settlement: {after:?}");
    assert!(
        !after.iter().any(|r| r.starts_with("[I64(3)")),
        "the settlement rolls the landed deletes forward: {after:?}"
    );
    assert!(records(&kv).is_empty(), "settled: {:?}", records(&kv));
}

/// Whatever the budget, a commit that only deletes (it needs a marker) either refuses before
/// writing or applies in full: never half-way.
#[test]
fn r6_a_tight_budget_never_stops_a_commit_half_way() {
    for max_ops in 10..30u64 {
        let kv = bank();
        let url = format!("{URL}?max_ops={max_ops}");
        let a = isolate(&kv, &url);
        let s = a.open();
        let prepared = block_on(
            s.execute_batch("DELETE FROM accounts WHERE id = 3; DELETE FROM accounts WHERE id = 2"),
        );
        if prepared.is_err() {
            continue;
        }
        let used = s.kv_ops();
        let result = block_on(s.commit());
        let left: Vec<String> = total(&copy_of(&kv)).0;
        println!(
            "max_ops={max_ops}: used {used} before commit, commit -> {:?}; rows now {left:?}; records {:?}",
            result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            records(&kv)
        );
        match result {
            Ok(_) => assert_eq!(left.len(), 1, "max_ops={max_ops}: applied in full"),
            Err(e) => {
                assert!(e.to_string().contains("budget"), "max_ops={max_ops}: {e}");
                assert_eq!(left.len(), 3, "max_ops={max_ops}: nothing written");
            }
        }
    }
}

fn copy_of(kv: &Kv) -> Kv {
    let inner = MemoryKv::new();
    for key in kv.inner().keys() {
        inner.poke(&key, kv.inner().peek(&key).unwrap());
    }
    inner.advance(kv.now_ms());
    Rc::new(FaultyKv::new(inner))
}

/// docs/guarantees.md: "A session reads the committed state as of its first statement" (not as of when
/// it was opened).
#[test]
fn r7_the_snapshot_is_taken_at_the_first_statement() {
    for url in ["memory://", URL] {
        let kv = bank();
        let f = if url == URL {
            isolate(&kv, URL)
        } else {
            let f = common::factory();
            run(
                &f,
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, note TEXT); \
                 INSERT INTO accounts VALUES (1, 100, '')",
                false,
            )
            .unwrap();
            f
        };
        let reader: Session = f.open(); // opened, no statement yet
        run(&f, "UPDATE accounts SET balance = 1 WHERE id = 1", true).unwrap();
        let seen = block_on(async {
            let r = reader
                .execute_batch("SELECT balance FROM accounts WHERE id = 1")
                .await
                .unwrap()
                .remove(0)
                .into_rows()
                .unwrap();
            r.get(0).unwrap().get::<i64>("balance").unwrap()
        });
        assert_eq!(
            seen, 1,
            "{url}: the first statement after the commit sees it"
        );
    }
}

/// users 1 'b@x', 2 'a@x'; the entry of 'a@x' is missing (KV lag, or a lost race), and a stale
/// entry names row 99 (which does not exist) for 'c@x'.
fn users_with_anomalies() -> Kv {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); \
         INSERT INTO users VALUES (1, 'b@x'), (2, 'a@x'), (99, 'c@x')",
        true,
    )
    .unwrap();
    let keys = kv.inner().keys();
    let row99 = keys
        .iter()
        .rfind(|k| k.starts_with("gluebind/v1/r/users/"))
        .unwrap();
    kv.inner().unpoke(row99); // row 99 gone, its entry for 'c@x' stays (stale)
    let uniques: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("gluebind/v1/u/users/"))
        .collect();
    // Entries sorted by value: a@x, b@x, c@x.
    kv.inner().unpoke(uniques[0]); // 'a@x' has no entry
    kv
}

const SWAP: &str =
    "UPDATE users SET email = 'c@x' WHERE id = 1; UPDATE users SET email = 'd@x' WHERE id = 2";

/// The undo's bookkeeping: with keys the check found owned by others (a stale entry) among
/// the restores, a failed restore is booked on its own key: "undone" only when every write is.
#[test]
fn r8_undo_reports_undone_only_when_every_write_is() {
    let kv = users_with_anomalies();
    let a = isolate(&kv, URL);
    let s = a.open();
    block_on(s.execute_batch(SWAP)).unwrap();
    let start = kv.calls();
    let at = |idx: u64| start + idx + 1;
    // Claim of 'c@x' (call 6, retried as 8, 9, 10): 429 every time (no effect).
    for idx in [6, 8, 9, 10] {
        kv.fail_call(at(idx), KvFailure::RateLimited("429".into()));
    }
    // The undo's restores: row 1 (12), row 2 (13), delete of the 'd@x' entry (14), put of 'a@x' (15).
    kv.fail_call(at(14), KvFailure::Transient("timeout".into()));
    let r = block_on(s.commit());
    println!("commit: {r:?}");
    println!("calls: {:?}", &kv.log()[start as usize..]);
    let entries: Vec<(String, String)> = kv
        .inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("gluebind/v1/u/") || k.starts_with("gluebind/v1/c/"))
        .map(|k| {
            let v = kv.inner().peek(&k).unwrap().value;
            (k, v)
        })
        .collect();
    println!("entries and records: {entries:#?}");
    println!("rows: {:?}", rows(&kv, "SELECT * FROM users ORDER BY id"));
    let d_entry = kv
        .inner()
        .keys()
        .into_iter()
        .any(|k| k.ends_with("/00644078"));
    let later = isolate(&kv, URL);
    println!(
        "insert of 'd@x' by a new user: {:?}",
        run(&later, "INSERT INTO users VALUES (3, 'd@x')", true)
    );
    let msg = r.unwrap_err().to_string();
    let rows_back = rows(&kv, "SELECT * FROM users ORDER BY id")
        == vec![
            "[I64(1), Str(\"b@x\")]".to_owned(),
            "[I64(2), Str(\"a@x\")]".to_owned(),
        ];
    assert!(
        !(msg.contains("was undone") && d_entry),
        "told 'undone' while its entry for d@x stays"
    );
    assert!(
        !(msg.contains("outcome unknown") && rows_back && !d_entry),
        "fully undone, told 'outcome unknown' (its record stays: 120 s of conflicts)"
    );
}

/// As r4, for a user's deletion (a commit that only deletes): its row delete times out but
/// lands; a sign-up of another isolate tries to take the freed email while the deletion's
/// record is young; the deletion is undone. One UNIQUE email never has two users.
#[test]
fn r9_an_undone_deletion_never_gives_two_users_one_email() {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); \
         INSERT INTO users VALUES (1, 'ada@x')",
        true,
    )
    .unwrap();
    const C1: &str = "DELETE FROM users WHERE id = 1";
    let d = {
        let dry = copy_of(&kv);
        let a = isolate(&dry, URL);
        let s1 = a.open();
        block_on(s1.execute_batch(C1)).unwrap();
        let start = dry.calls() as usize;
        dry.fail_next(CallKind::Delete, 1, KvFailure::Transient("timeout".into()));
        let r = block_on(s1.commit());
        println!("dry run: {r:?}; calls {:?}", &dry.log()[start..]);
        first_failed_from(&dry, start) - start
    };
    let a = isolate(&kv, URL);
    let s1 = a.open();
    block_on(s1.execute_batch(C1)).unwrap();
    let start = kv.calls();
    kv.fail_next(CallKind::Delete, 1, KvFailure::Transient("timeout".into()));
    kv.pause_at(start + d as u64 + 3); // after the failed delete and the entry's delete: the undo's read-back
    let mut commit: Boxed<'_, _> = Box::pin(s1.commit());
    assert!(until_paused(&kv, &mut commit).is_none());
    // The timed-out delete (user 1's row) landed.
    let row1 = kv
        .inner()
        .keys()
        .into_iter()
        .find(|k| k.starts_with("gluebind/v1/r/users/"))
        .unwrap();
    kv.inner().unpoke(&row1);
    let b = isolate(&kv, URL);
    let c2 = run(&b, "INSERT INTO users VALUES (10, 'ada@x')", true);
    println!("C2 (sign-up of ada@x in another isolate): {c2:?}");
    kv.resume();
    let c1 = block_on(commit);
    println!("C1 (deletion): {c1:?}");
    kv.inner().advance(LATER_MS);
    let after = rows(&kv, "SELECT * FROM users ORDER BY id");
    println!(
        "after the settlement: {after:?}; records {:?}",
        records(&kv)
    );
    assert!(
        after.iter().filter(|r| r.contains("ada@x")).count() <= 1,
        "two users hold ada@x: {after:?}"
    );
}

/// Two isolates settle the same abandoned record at about the same time (each lists the journal
/// every 10 s). One finishes and deletes the record; a commit then updates a key; the other
/// settlement, which read the keys before, must not write the record's entry over it (each
/// settlement announces itself with a record of its own that commits and settlements see).
#[test]
fn r12_a_late_concurrent_settlement_never_overwrites_a_later_commit() {
    const TRANSFER: &str = "UPDATE accounts SET balance = balance - 50 WHERE id = 1; \
                            UPDATE accounts SET balance = balance + 50 WHERE id = 2";
    let kv = bank();
    // Isolate X: the transfer is cut off after its first data write (call 5 of the commit).
    let x = isolate(&kv, URL);
    {
        let s = x.open();
        block_on(s.execute_batch(TRANSFER)).unwrap();
        let start = kv.calls();
        kv.hang_from(start + 5);
        let mut commit: Boxed<'_, _> = Box::pin(s.commit());
        for _ in 0..1000 {
            if poll_once(&mut commit).is_ready() {
                panic!("finished");
            }
        }
        drop(commit);
        kv.heal();
    }
    println!(
        "cut off: {:?} records {:?}",
        total(&copy_of(&kv)).0,
        records(&kv)
    );
    kv.inner().advance(LATER_MS);
    // Find the settlement's first write on a dry run.
    let first_put = {
        let dry = copy_of(&kv);
        let start = dry.calls() as usize;
        let _ = total(&dry);
        dry.log()
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, (k, _))| *k == CallKind::Put)
            .map(|(i, _)| i - start)
            .unwrap()
    };
    // Isolate B: a reader whose settlement is suspended right before its write.
    let b = isolate(&kv, URL);
    let reader = b.open();
    kv.pause_at(kv.calls() + first_put as u64 + 1);
    let mut read: Boxed<'_, _> = Box::pin(async {
        reader
            .execute_batch("SELECT balance FROM accounts WHERE id = 1")
            .await
            .map(|_| ())
    });
    assert!(until_paused(&kv, &mut read).is_none());
    // Isolate A settles the record in full (and deletes it).
    let _ = total(&kv);
    println!(
        "settled by A: {:?} records {:?}",
        total(&copy_of(&kv)).0,
        records(&kv)
    );
    // Isolate C: a later commit on account 2.
    let c = isolate(&kv, URL);
    run(
        &c,
        "UPDATE accounts SET balance = balance + 1000 WHERE id = 2",
        true,
    )
    .unwrap();
    println!("after C's commit: {:?}", total(&copy_of(&kv)).0);
    kv.resume();
    println!("B's read: {:?}", block_on(read));
    let (after, _) = total(&kv);
    println!("final: {after:?}");
    assert!(
        after.iter().any(|r| r.contains("1060")),
        "C's acknowledged +1000 on account 2 was overwritten: {after:?}"
    );
}

/// Settling other commits is housekeeping: when KV fails it (here, the journal's list), the
/// session's read still answers, the failure is in `kv_notes`, and a later session settles.
#[test]
fn r13_a_failed_settlement_does_not_fail_a_read() {
    const TRANSFER: &str = "UPDATE accounts SET balance = balance - 50 WHERE id = 1; \
                            UPDATE accounts SET balance = balance + 50 WHERE id = 2";
    let kv = bank();
    let x = isolate(&kv, URL);
    {
        // Cut off after its first data write (call 5 of the commit): half-applied.
        let s = x.open();
        block_on(s.execute_batch(TRANSFER)).unwrap();
        kv.hang_from(kv.calls() + 5);
        let mut commit: Boxed<'_, _> = Box::pin(s.commit());
        for _ in 0..1000 {
            assert!(poll_once(&mut commit).is_pending());
        }
        drop(commit);
        kv.heal();
    }
    kv.inner().advance(LATER_MS);
    let b = isolate(&kv, URL);
    kv.fail_next(
        CallKind::List,
        1,
        KvFailure::Permanent("binding gone".into()),
    );
    let read = block_on(async {
        let s = b.open();
        s.execute_batch("SELECT balance FROM accounts WHERE id = 3")
            .await
            .map(|_| ())
    });
    assert!(
        read.is_ok(),
        "the read failed with the settlement: {read:?}"
    );
    let notes = b.engine().kv_notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("settling earlier commits stopped")),
        "{notes:?}"
    );
    assert_eq!(notes.len(), 1, "one listing per SCAN_EVERY_MS: {notes:?}");
    assert_eq!(records(&kv).len(), 1, "not settled yet");
    kv.inner().advance(11_000); // the next listing is due
    let (after, sum) = total(&kv);
    assert_eq!(sum, 110, "settled all or nothing: {after:?}");
    assert!(records(&kv).is_empty(), "settled: {:?}", records(&kv));
}

/// Two commits over one row, both cut off: X (a sign-up) after its row put, before its unique
/// entry; Y (another isolate, changing the email) right after its record. Each record overlaps
/// the other: the older is settled first (forward: its row carries its stamp), the younger
/// after it (back: nothing written), and a busy settlement never passes for a finished one
/// (the record deleted unsettled would leave the row without its unique entry).
#[test]
fn r14_two_abandoned_commits_over_one_row_are_both_settled() {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)",
        true,
    )
    .unwrap();
    let cut_off = |f: &SessionFactory, sql: &str, at: u64| {
        let s = f.open();
        block_on(s.execute_batch(sql)).unwrap();
        kv.hang_from(kv.calls() + at);
        let mut commit: Boxed<'_, _> = Box::pin(s.commit());
        for _ in 0..1000 {
            assert!(poll_once(&mut commit).is_pending());
        }
        drop(commit);
        kv.heal();
    };
    // X: record put, journal list, check, row put; the unique entry's put never answers.
    let x = isolate(&kv, URL);
    cut_off(&x, "INSERT INTO users VALUES (1, 'ada@x')", 5);
    kv.inner().advance(1_000);
    // Y: its record, then nothing.
    let y = isolate(&kv, URL);
    cut_off(&y, "UPDATE users SET email = 'bob@x' WHERE id = 1", 2);
    assert_eq!(records(&kv).len(), 2, "both records stay");
    kv.inner().advance(LATER_MS);
    let z = isolate(&kv, URL);
    for _ in 0..3 {
        let _ = rows(&kv, "SELECT * FROM users ORDER BY id");
        let _ = block_on(async {
            z.open()
                .execute_batch("SELECT * FROM users")
                .await
                .map(|_| ())
        });
        kv.inner().advance(11_000);
    }
    assert!(records(&kv).is_empty(), "both settled: {:?}", records(&kv));
    let after = rows(&kv, "SELECT * FROM users ORDER BY id");
    assert_eq!(
        after,
        vec!["[I64(1), Str(\"ada@x\")]".to_owned()],
        "X forward, Y back"
    );
    let twin = run(&z, "INSERT INTO users VALUES (2, 'ada@x')", true);
    assert!(
        matches!(twin, Err(gluebind::Error::Unique { .. })),
        "ada@x has its unique entry: {twin:?}"
    );
}

/// A point read answered by a location KV has not reached yet (it shows what this isolate's
/// commit replaced), suspended for a minute while the isolate goes on committing: the log
/// keeps the commit the read needs until the read is answered, so the session still sees it.
#[test]
fn r15_a_read_suspended_past_the_logs_memory_still_sees_the_isolates_commit() {
    let kv = bank();
    let a = isolate(&kv, &format!("{URL}?cache_ttl=0"));
    run(&a, "UPDATE accounts SET balance = 55 WHERE id = 1", true).unwrap();
    async fn balance(s: &Session) -> i64 {
        let r = s
            .execute_batch("SELECT balance FROM accounts WHERE id = 1")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        r.get(0).unwrap().get::<i64>("balance").unwrap()
    }
    // Dry run: which call of the read is the row's get (the last one).
    let start = kv.calls() as usize;
    assert_eq!(block_on(balance(&a.open())), 55);
    let row_get = kv.log()[start..]
        .iter()
        .rposition(|(k, _)| *k == CallKind::Get)
        .expect("a get");
    println!("dry run: {:?}", &kv.log()[start..]);
    let reader = a.open();
    let k = kv.calls() + row_get as u64 + 1;
    kv.stale_call(k);
    kv.pause_at(k);
    let mut read: Boxed<'_, _> = Box::pin(balance(&reader));
    assert!(until_paused(&kv, &mut read).is_none());
    // A minute on, another commit of the isolate (each commit forgets what is a minute old).
    kv.inner().advance(61_000);
    run(&a, "UPDATE accounts SET note = 'n' WHERE id = 3", true).unwrap();
    kv.resume();
    assert_eq!(
        block_on(read),
        55,
        "the suspended read lost the isolate's commit"
    );
}

/// A settlement that finds the record busy (a younger commit over its keys is in flight)
/// writes nothing and leaves the record for later: the isolate must not take the record for
/// one of its own finished commits and delete it unsettled (X's row would stay without its
/// unique entry, and a second user could take the email).
#[test]
fn r16_a_busy_settlement_leaves_the_record_to_be_settled() {
    let kv = namespace();
    let setup = isolate(&kv, URL);
    run(
        &setup,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); \
         CREATE TABLE t (id INTEGER PRIMARY KEY)",
        true,
    )
    .unwrap();
    // X: a sign-up cut off after its row put, before its unique entry's.
    let x = isolate(&kv, URL);
    {
        let s = x.open();
        block_on(s.execute_batch("INSERT INTO users VALUES (1, 'ada@x')")).unwrap();
        kv.hang_from(kv.calls() + 5);
        let mut commit: Boxed<'_, _> = Box::pin(s.commit());
        for _ in 0..1000 {
            assert!(poll_once(&mut commit).is_pending());
        }
        drop(commit);
        kv.heal();
    }
    // C (another isolate) reads user 1 now and commits an update two minutes later; it is
    // suspended right after its record (its listing of the journal waits).
    let c = isolate(&kv, URL);
    let cs = c.open();
    block_on(cs.execute_batch("UPDATE users SET email = 'bob@x' WHERE id = 1")).unwrap();
    kv.inner().advance(LATER_MS);
    let start = kv.calls();
    // Its settlement pass before the commit fails (noted), then record put (2), list (3).
    kv.fail_next(
        CallKind::List,
        1,
        KvFailure::Permanent("binding gone".into()),
    );
    kv.pause_at(start + 3);
    let mut commit: Boxed<'_, _> = Box::pin(cs.commit());
    assert!(until_paused(&kv, &mut commit).is_none());
    assert_eq!(records(&kv).len(), 2, "X's record and C's");
    // Z (a third isolate) settles X's record: busy (C's young record overlaps it). Then Z
    // commits elsewhere, and its teardown deletes the records of its finished commits.
    let z = isolate(&kv, URL);
    block_on(async {
        z.open()
            .execute_batch("SELECT * FROM users")
            .await
            .map(|_| ())
    })
    .unwrap();
    run(&z, "INSERT INTO t VALUES (1)", true).unwrap();
    assert_eq!(
        records(&kv).len(),
        2,
        "X's record waits for C's: {:?}",
        records(&kv)
    );
    // C is cut off at its listing; two minutes on, both records are settled.
    drop(commit);
    kv.resume();
    kv.inner().advance(LATER_MS);
    for _ in 0..3 {
        let _ = rows(&kv, "SELECT * FROM users ORDER BY id");
        kv.inner().advance(11_000);
    }
    assert!(records(&kv).is_empty(), "settled: {:?}", records(&kv));
    let twin = run(&z, "INSERT INTO users VALUES (2, 'ada@x')", true);
    assert!(
        matches!(twin, Err(gluebind::Error::Unique { .. })),
        "ada@x has its unique entry: {twin:?}; rows {:?}",
        rows(&kv, "SELECT * FROM users ORDER BY id")
    );
}
