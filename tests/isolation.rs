//! Isolation anomalies after Hermitage (Martin Kleppmann's test suite of isolation levels),
//! on `memory://`, `kv://` and `do://` (sessions of one isolate), and on `do://` with every
//! session in an isolate of its own, at both isolation levels.
//!
//! Each case is Hermitage's interleaving of sessions T1, T2 (and T3) over
//! `test (id, value) = (1, 10), (2, 20)`. gluebind validates optimistically, so where
//! PostgreSQL blocks a statement, gluebind lets it run on the session's snapshot and refuses
//! the later commit with `CONFLICT`. Each step states what a read must return and whether a
//! commit succeeds, per level; the final state is checked too. README's table ("Isolation,
//! anomaly by anomaly") lists the outcomes; a case that changed outcome fails here.

mod common;
use common::block_on;
use gluebind::{durable::LocalObject, kv::MemoryKv, Engine, Isolation, Session, SessionFactory};
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Ok,
    Conflict,
}
use Outcome::{Conflict, Ok as Committed};

enum Step {
    /// A statement of session `t` (must succeed).
    Run(usize, &'static str),
    /// A query of session `t` and the rows (id, value) it must return, ordered by id.
    Read(usize, &'static str, &'static [(i64, i64)]),
    /// `commit()` of session `t`: the outcome under snapshot isolation, then serializable.
    Commit(usize, Outcome, Outcome),
    Rollback(usize),
}
use Step::{Commit, Read, Rollback, Run};

const SETUP: &str = "CREATE TABLE test (id INTEGER PRIMARY KEY, value INTEGER NOT NULL); \
                     INSERT INTO test VALUES (1, 10), (2, 20)";

fn isolate(engine: Engine) -> SessionFactory {
    SessionFactory::builder().bind(engine).build().unwrap()
}

fn do_engine(object: &Rc<LocalObject>) -> Engine {
    Engine::with_object("do://GLUEBIND_DB", object.clone()).unwrap()
}

/// The factories of T1, T2, T3 and of the final read, the data set up: one isolate, except on
/// `do-isolates` (an isolate per session over one database object).
fn factories(engine: &str) -> Vec<SessionFactory> {
    let object = Rc::new(LocalObject::new());
    let one = match engine {
        "memory" => Engine::from_url("memory://").unwrap(),
        "kv" => Engine::with_kv("kv://GLUEBIND_KV", Rc::new(MemoryKv::new())).unwrap(),
        _ => do_engine(&object),
    };
    let first = isolate(one);
    block_on(async {
        let s = first.open();
        s.execute_batch(SETUP).await.unwrap();
        s.commit().await.unwrap();
    });
    match engine {
        "do-isolates" => (0..4).map(|_| isolate(do_engine(&object))).collect(),
        _ => vec![first; 4],
    }
}

async fn rows(s: &Session, sql: &str) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = s
        .execute_batch(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .remove(0)
        .into_rows()
        .unwrap()
        .iter()
        .map(|r| (r.get("id").unwrap(), r.get("value").unwrap()))
        .collect();
    out.sort_unstable();
    out
}

/// Runs `steps` on `engine` at `level`; returns the final rows.
fn run(engine: &str, level: Isolation, steps: &[Step]) -> Vec<(i64, i64)> {
    let f = factories(engine);
    let sessions: Vec<Session> = f[..3].iter().map(SessionFactory::open).collect();
    for s in &sessions {
        s.set_isolation(level);
    }
    let serializable = level == Isolation::Serializable;
    block_on(async {
        for (i, step) in steps.iter().enumerate() {
            match step {
                Run(t, sql) => {
                    sessions[*t - 1]
                        .execute_batch(sql)
                        .await
                        .unwrap_or_else(|e| panic!("step {i}, T{t}: {sql}: {e}"));
                }
                Read(t, sql, want) => {
                    assert_eq!(
                        rows(&sessions[*t - 1], sql).await,
                        *want,
                        "step {i}, T{t}: {sql}"
                    );
                }
                Commit(t, snapshot, serial) => {
                    let want = if serializable { serial } else { snapshot };
                    let got = match sessions[*t - 1].commit().await {
                        Ok(_) => Committed,
                        Err(e) if e.code() == "CONFLICT" => Conflict,
                        Err(e) => panic!("step {i}, T{t} commit: {e}"),
                    };
                    assert_eq!(got, *want, "step {i}: T{t}'s commit ({engine}, {level:?})");
                }
                Rollback(t) => sessions[*t - 1].rollback().await.unwrap(),
            }
        }
        rows(&f[3].open(), "SELECT * FROM test").await
    })
}

/// Runs a case on every engine at both levels; `finals` are the final rows under snapshot
/// isolation and under serializable.
/// Rows (id, value), ordered by id.
type Rows = [(i64, i64)];

fn case(steps: &[Step], finals: (&Rows, &Rows)) {
    for engine in ["memory", "kv", "do", "do-isolates"] {
        for (level, want) in [
            (Isolation::Snapshot, finals.0),
            (Isolation::Serializable, finals.1),
        ] {
            assert_eq!(
                run(engine, level, steps),
                want,
                "final state ({engine}, {level:?})"
            );
        }
    }
}

const START: &[(i64, i64)] = &[(1, 10), (2, 20)];
const ALL: &str = "SELECT * FROM test";

/// G0, write cycles (dirty writes): prevented at both levels.
#[test]
fn g0_write_cycles() {
    case(
        &[
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 12 WHERE id = 1"),
            Run(1, "UPDATE test SET value = 21 WHERE id = 2"),
            Commit(1, Committed, Committed),
            Run(2, "UPDATE test SET value = 22 WHERE id = 2"),
            Commit(2, Conflict, Conflict),
        ],
        (&[(1, 11), (2, 21)], &[(1, 11), (2, 21)]),
    );
}

/// G1a, aborted reads: prevented at both levels.
#[test]
fn g1a_aborted_reads() {
    case(
        &[
            Run(1, "UPDATE test SET value = 101 WHERE id = 1"),
            Read(2, ALL, START),
            Rollback(1),
            Read(2, ALL, START),
            Commit(2, Committed, Committed),
        ],
        (START, START),
    );
}

/// G1b, intermediate reads: prevented at both levels.
#[test]
fn g1b_intermediate_reads() {
    case(
        &[
            Run(1, "UPDATE test SET value = 101 WHERE id = 1"),
            Read(2, ALL, START),
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Commit(1, Committed, Committed),
            Read(2, ALL, START),
            Commit(2, Committed, Committed),
        ],
        (&[(1, 11), (2, 20)], &[(1, 11), (2, 20)]),
    );
}

/// G1c, circular information flow: prevented at both levels (neither sees the other's
/// uncommitted write); serializable also refuses T2, whose read of row 1 T1 changed.
#[test]
fn g1c_circular_information_flow() {
    case(
        &[
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 22 WHERE id = 2"),
            Read(1, "SELECT * FROM test WHERE id = 2", &[(2, 20)]),
            Read(2, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Commit(1, Committed, Committed),
            Commit(2, Committed, Conflict),
        ],
        (&[(1, 11), (2, 22)], &[(1, 11), (2, 20)]),
    );
}

/// OTV, observed transaction vanishes: prevented at both levels.
#[test]
fn otv_observed_transaction_vanishes() {
    case(
        &[
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(1, "UPDATE test SET value = 19 WHERE id = 2"),
            Run(2, "UPDATE test SET value = 12 WHERE id = 1"),
            Commit(1, Committed, Committed),
            Read(3, ALL, &[(1, 11), (2, 19)]),
            Run(2, "UPDATE test SET value = 18 WHERE id = 2"),
            Read(3, ALL, &[(1, 11), (2, 19)]),
            Commit(2, Conflict, Conflict),
            Commit(3, Committed, Committed),
        ],
        (&[(1, 11), (2, 19)], &[(1, 11), (2, 19)]),
    );
}

/// PMP, predicate-many-preceders (a read-only predicate read): prevented at both levels.
#[test]
fn pmp_predicate_many_preceders() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE value = 30", &[]),
            Run(2, "INSERT INTO test VALUES (3, 30)"),
            Commit(2, Committed, Committed),
            Read(1, "SELECT * FROM test WHERE value % 3 = 0", &[]),
            Commit(1, Committed, Committed),
        ],
        (&[(1, 10), (2, 20), (3, 30)], &[(1, 10), (2, 20), (3, 30)]),
    );
}

/// PMP with write predicates: prevented at both levels.
#[test]
fn pmp_write_predicates() {
    case(
        &[
            Run(1, "UPDATE test SET value = value + 10"),
            Read(2, "SELECT * FROM test WHERE value = 20", &[(2, 20)]),
            Run(2, "DELETE FROM test WHERE value = 20"),
            Commit(1, Committed, Committed),
            Commit(2, Conflict, Conflict),
        ],
        (&[(1, 20), (2, 30)], &[(1, 20), (2, 30)]),
    );
}

/// P4, lost update: prevented at both levels.
#[test]
fn p4_lost_update() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(2, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 11 WHERE id = 1"),
            Commit(1, Committed, Committed),
            Commit(2, Conflict, Conflict),
        ],
        (&[(1, 11), (2, 20)], &[(1, 11), (2, 20)]),
    );
}

/// G-single, read skew: prevented at both levels.
#[test]
fn g_single_read_skew() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(2, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(2, "SELECT * FROM test WHERE id = 2", &[(2, 20)]),
            Run(2, "UPDATE test SET value = 12 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 18 WHERE id = 2"),
            Commit(2, Committed, Committed),
            Read(1, "SELECT * FROM test WHERE id = 2", &[(2, 20)]),
            Commit(1, Committed, Committed),
        ],
        (&[(1, 12), (2, 18)], &[(1, 12), (2, 18)]),
    );
}

/// G-single with a write predicate: prevented at both levels (T1's delete conflicts).
#[test]
fn g_single_write_predicate() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(2, ALL, START),
            Run(2, "UPDATE test SET value = 12 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 18 WHERE id = 2"),
            Commit(2, Committed, Committed),
            Run(1, "DELETE FROM test WHERE value = 20"),
            Commit(1, Conflict, Conflict),
        ],
        (&[(1, 12), (2, 18)], &[(1, 12), (2, 18)]),
    );
}

/// G2-item, write skew: allowed under snapshot isolation, prevented under serializable.
#[test]
fn g2_item_write_skew() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE id IN (1, 2)", START),
            Read(2, "SELECT * FROM test WHERE id IN (1, 2)", START),
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 21 WHERE id = 2"),
            Commit(1, Committed, Committed),
            Commit(2, Committed, Conflict),
        ],
        (&[(1, 11), (2, 21)], &[(1, 11), (2, 20)]),
    );
}

/// G2-item through point reads only (each session reads both rows by key): the same.
#[test]
fn g2_item_write_skew_point_reads() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(1, "SELECT * FROM test WHERE id = 2", &[(2, 20)]),
            Read(2, "SELECT * FROM test WHERE id = 1", &[(1, 10)]),
            Read(2, "SELECT * FROM test WHERE id = 2", &[(2, 20)]),
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "UPDATE test SET value = 21 WHERE id = 2"),
            Commit(1, Committed, Committed),
            Commit(2, Committed, Conflict),
        ],
        (&[(1, 11), (2, 21)], &[(1, 11), (2, 20)]),
    );
}

/// G2, anti-dependency cycles (a predicate read, then inserts): allowed under snapshot
/// isolation, prevented under serializable. This is the "at most N notes per user" case.
#[test]
fn g2_anti_dependency_cycles() {
    case(
        &[
            Read(1, "SELECT * FROM test WHERE value % 3 = 0", &[]),
            Read(2, "SELECT * FROM test WHERE value % 3 = 0", &[]),
            Run(1, "INSERT INTO test VALUES (3, 30)"),
            Run(2, "INSERT INTO test VALUES (4, 42)"),
            Commit(1, Committed, Committed),
            Commit(2, Committed, Conflict),
        ],
        (
            &[(1, 10), (2, 20), (3, 30), (4, 42)],
            &[(1, 10), (2, 20), (3, 30)],
        ),
    );
}

/// G2 with two anti-dependency edges (T3 observes T2 but not T1): allowed under snapshot
/// isolation, prevented under serializable.
#[test]
fn g2_two_edges() {
    case(
        &[
            Read(1, ALL, START),
            Run(2, "UPDATE test SET value = value + 5 WHERE id = 2"),
            Commit(2, Committed, Committed),
            Read(3, ALL, &[(1, 10), (2, 25)]),
            Commit(3, Committed, Committed),
            Run(1, "UPDATE test SET value = 0 WHERE id = 1"),
            Commit(1, Committed, Conflict),
        ],
        (&[(1, 0), (2, 25)], &[(1, 10), (2, 25)]),
    );
}

/// Read-only sessions never fail, whatever they read and whatever committed meanwhile.
#[test]
fn read_only_sessions_never_fail() {
    case(
        &[
            Read(1, ALL, START),
            Run(2, "UPDATE test SET value = 0 WHERE id = 1"),
            Run(2, "DELETE FROM test WHERE id = 2"),
            Commit(2, Committed, Committed),
            Read(1, ALL, START),
            Commit(1, Committed, Committed),
        ],
        (&[(1, 0)], &[(1, 0)]),
    );
}

/// Blind writes to different rows never conflict (nothing read), and neither do updates by
/// key of different rows (an `UPDATE … WHERE id = $1` reads only its row).
#[test]
fn writes_to_different_rows_never_conflict() {
    case(
        &[
            Run(1, "INSERT INTO test VALUES (3, 30)"),
            Run(2, "INSERT INTO test VALUES (4, 40)"),
            Run(1, "UPDATE test SET value = 11 WHERE id = 1"),
            Run(2, "DELETE FROM test WHERE id = 2"),
            Commit(1, Committed, Committed),
            Commit(2, Committed, Committed),
        ],
        (&[(1, 11), (3, 30), (4, 40)], &[(1, 11), (3, 30), (4, 40)]),
    );
}

/// Across isolates on `kv://` (best effort: KV has no compare-and-swap and lags up to ~60 s
/// between locations). Over a namespace that shows writes at once: a row another isolate
/// changed after the session read it is a conflict (the commit's check reads it again); a
/// table scan is checked against the other isolate's commit record while it is in the
/// journal (until that event's teardown deletes it), not after.
#[test]
fn across_isolates_reads_are_checked_against_kv_and_the_journal() {
    let kv = Rc::new(MemoryKv::new());
    let isolate = || {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (isolate(), isolate());
    block_on(async {
        let s = a.open();
        s.execute_batch(SETUP).await.unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();

        // Write skew through point reads: refused.
        let (t1, t2) = (a.open(), b.open());
        for t in [&t1, &t2] {
            rows(t, "SELECT * FROM test WHERE id = 1").await;
            rows(t, "SELECT * FROM test WHERE id = 2").await;
        }
        t1.execute_batch("UPDATE test SET value = 11 WHERE id = 1")
            .await
            .unwrap();
        t2.execute_batch("UPDATE test SET value = 21 WHERE id = 2")
            .await
            .unwrap();
        t1.commit().await.unwrap();
        t1.engine().flush().await.unwrap(); // even once its record is gone
        assert_eq!(t2.commit().await.unwrap_err().code(), "CONFLICT");

        // Write skew through scans, the other commit's record still in the journal: refused.
        let (t1, t2) = (a.open(), b.open());
        rows(&t1, "SELECT * FROM test WHERE value % 3 = 0").await;
        rows(&t2, "SELECT * FROM test WHERE value % 3 = 0").await;
        t1.execute_batch("INSERT INTO test VALUES (3, 30)")
            .await
            .unwrap();
        t2.execute_batch("INSERT INTO test VALUES (4, 42)")
            .await
            .unwrap();
        t1.commit().await.unwrap();
        assert_eq!(t2.commit().await.unwrap_err().code(), "CONFLICT");
        t1.engine().flush().await.unwrap();

        // ... and once its record is deleted: not detected (the documented limit).
        let (t1, t2) = (a.open(), b.open());
        rows(&t1, "SELECT * FROM test WHERE value % 5 = 0").await;
        rows(&t2, "SELECT * FROM test WHERE value % 5 = 0").await;
        t1.execute_batch("INSERT INTO test VALUES (5, 50)")
            .await
            .unwrap();
        t2.execute_batch("INSERT INTO test VALUES (6, 60)")
            .await
            .unwrap();
        t1.commit().await.unwrap();
        t1.engine().flush().await.unwrap();
        t2.commit().await.unwrap();
    });
}

/// Across isolates on `do://`: the database object checks every read of a commit against its
/// state, so write skew through scans is refused however long after the other commit — the
/// case `kv://` cannot detect once the other commit's record is gone.
#[test]
fn across_isolates_on_do_write_skew_through_scans_is_refused() {
    let object = Rc::new(LocalObject::new());
    let (a, b) = (isolate(do_engine(&object)), isolate(do_engine(&object)));
    block_on(async {
        let s = a.open();
        s.execute_batch(SETUP).await.unwrap();
        s.commit().await.unwrap();
        for (round, (x, y)) in [(3, 4), (5, 6)].into_iter().enumerate() {
            let (t1, t2) = (a.open(), b.open());
            rows(&t1, "SELECT * FROM test WHERE value > 100").await;
            rows(&t2, "SELECT * FROM test WHERE value > 100").await;
            t1.execute_batch(&format!("INSERT INTO test VALUES ({x}, 1000)"))
                .await
                .unwrap();
            t2.execute_batch(&format!("INSERT INTO test VALUES ({y}, 1000)"))
                .await
                .unwrap();
            t1.commit().await.unwrap();
            let err = t2.commit().await.unwrap_err();
            assert_eq!(err.code(), "CONFLICT", "round {round}: {err}");
        }
    });
}
