//! The kv:// engine under KV's limits, failures and eventual consistency, injected with
//! `FaultyKv` over `MemoryKv`.
//!
//! - Limits: keys over 512 bytes, values over 25 MiB and metadata over 1024 bytes are refused
//!   before anything is written.
//! - Failures: 429s and transient failures are retried with backoff; a commit that fails for
//!   good is undone, and the isolate forgets its cache so its next sessions read KV. The fault
//!   matrix fails each call of a typical commit in turn; a Worker cut off half-way leaves its
//!   commit record, which a later session replays (tests/kv_journal.rs has the full matrix).
//! - Consistency: which cross-isolate races the commit's version check detects, and which it
//!   cannot while the other isolate's write is not visible yet (the documented window).
//!   Within one isolate every conflict is detected.
//!
//! Long on purpose (as the other test files over 600 lines): each test is a scenario that reads
//! on its own, grouped by the guarantee it shows; the shared helpers are in `tests/common`.

mod common;
use common::{block_on, dump as dump_namespace, isolate, name_of, USERS};
use gluebind::{
    kv::{
        format::layout::{self, Layout, UniqueRecord},
        CallKind, FaultyKv, KvBackend, KvEntry, KvFailure, MemoryKv,
    },
    params, Session, SessionFactory, Value,
};
use gluesql_core::prelude::Key;
use std::rc::Rc;

type Kv = Rc<FaultyKv<MemoryKv>>;

const URL: &str = "kv://GLUEBIND_KV";
fn namespace() -> Kv {
    Rc::new(FaultyKv::new(MemoryKv::new()))
}

type UserRow = (i64, String, String);

async fn users(s: &Session) -> Vec<UserRow> {
    s.execute_batch("SELECT id, name, email FROM users ORDER BY id")
        .await
        .unwrap()
        .remove(0)
        .into_rows()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("id").unwrap(),
                r.get("name").unwrap(),
                r.get("email").unwrap(),
            )
        })
        .collect()
}

async fn insert(s: &Session, id: i64, name: &str, email: &str) -> gluebind::Result<()> {
    s.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![id, name, email],
    )
    .await
    .map(|_| ())
}

/// A namespace with users 1 (ada) and 2 (bob), and the isolate that wrote them.
fn seeded(url: &str) -> (Kv, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, url);
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        insert(&s, 1, "ada", "ada@x").await.unwrap();
        insert(&s, 2, "bob", "bob@x").await.unwrap();
        s.commit().await.unwrap();
        // What the registry's teardown does after the response: the commit record goes.
        s.engine().flush().await.unwrap();
    });
    kv.reset_calls();
    (kv, a)
}

/// Where the users' unique index in KV disagrees with their rows: emails without an entry
/// naming their row (unprotected: another row can take the value), and entries naming a row
/// that no longer holds the value (stale: harmless, commits treat such an entry as free).
struct IndexProblems {
    unprotected: Vec<String>,
    stale: Vec<String>,
}

impl IndexProblems {
    fn none(&self) -> bool {
        self.unprotected.is_empty() && self.stale.is_empty()
    }
}

fn index_problems(kv: &Kv) -> IndexProblems {
    let layout = Layout::new("");
    let rows = block_on(async { users(&isolate(kv, URL).open()).await });
    let mut problems = Vec::new();
    for (id, _, email) in &rows {
        let uk = layout
            .unique_key("users", "email", &Key::Str(email.clone()))
            .unwrap();
        match kv.inner().peek(&uk) {
            Some(e) => {
                let owner = layout::decode::<UniqueRecord>(&uk, &e.value).unwrap().k;
                if owner != Key::I64(*id) {
                    problems.push(format!("{email} is indexed to another row than {id}"));
                }
            }
            None => problems.push(format!("{email} (user {id}) has no unique entry")),
        }
    }
    let prefix = layout.uniques_prefix("users");
    let mut stale = Vec::new();
    for key in kv
        .inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
    {
        let owner = layout::decode::<UniqueRecord>(&key, &kv.inner().peek(&key).unwrap().value)
            .unwrap()
            .k;
        let holds = rows.iter().any(|(id, _, email)| {
            Key::I64(*id) == owner
                && layout
                    .unique_key("users", "email", &Key::Str(email.clone()))
                    .unwrap()
                    == key
        });
        if !holds {
            stale.push(format!("stale unique entry {key} (row {owner:?})"));
        }
    }
    IndexProblems {
        unprotected: problems,
        stale,
    }
}

// ---- limits ------------------------------------------------------------------------------

#[test]
fn a_key_over_512_bytes_is_refused_before_anything_is_written() {
    let kv = namespace();
    let a = isolate(&kv, URL);
    // Schema key "gluebind/v1/s/" + 490 bytes fits; a row key adds "/" and the key's hex.
    let table = "t".repeat(490);
    // A unique key adds the column's name: the row fits, the unique entry does not.
    let column = "c".repeat(500);
    block_on(async {
        let s = a.open();
        s.execute_batch(&format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT); \
             CREATE TABLE t2 (id INTEGER PRIMARY KEY, {column} TEXT UNIQUE); \
             CREATE TABLE ok (id INTEGER PRIMARY KEY)"
        ))
        .await
        .unwrap();
        s.commit().await.unwrap();
        let before = dump(&kv);
        kv.reset_calls();
        // At commit (the isolate's cache knows the tables are empty, so the statements
        // read nothing): the whole commit is refused, the row that fits included.
        s.execute_batch("INSERT INTO ok VALUES (1); INSERT INTO t2 VALUES (1, 'v')")
            .await
            .unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("512-byte limit"), "{err}");
        assert!(err.to_string().contains("gluebind/v1/u/t2/ccc"), "{err}");
        assert_eq!(kv.calls_of(CallKind::Write), 0);
        assert_eq!(dump(&kv), before, "nothing written");
        // At the statement, when it must read the key first (the failed commit started the
        // isolate's cache over).
        let err = s
            .execute_batch(&format!("INSERT INTO {table} VALUES (1, 'x')"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("512-byte limit"), "{err}");
        assert_eq!(dump(&kv), before, "nothing written");
        let n = a
            .open()
            .execute_batch("SELECT * FROM ok")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap()
            .len();
        assert_eq!(n, 0);
    });
}

#[test]
fn a_value_over_25_mib_is_refused_before_anything_is_written() {
    let (kv, a) = seeded(URL);
    let before = dump(&kv);
    block_on(async {
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        let huge = "x".repeat(25 * 1024 * 1024);
        insert(&s, 4, &huge, "big@x").await.unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("25 MiB"), "{err}");
        assert_eq!(kv.calls_of(CallKind::Write), 0);
        assert_eq!(dump(&kv), before, "neither row written");
        assert_eq!(users(&a.open()).await.len(), 2);
    });
}

#[test]
fn metadata_that_cannot_fit_is_refused_before_anything_is_written() {
    let kv = namespace();
    let a = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE docs (slug TEXT PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        // A long key is named by its hash in the KV key, and its record (the key, no values)
        // still fits in the metadata: the row is stored, not inlined.
        let long = "s".repeat(600);
        s.execute(
            "INSERT INTO docs VALUES ($1, $2)",
            params![long.clone(), "b".repeat(2000)],
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        let b = isolate(&kv, URL);
        let rows = b
            .open()
            .execute("SELECT body FROM docs WHERE slug = $1", params![long])
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(rows.len(), 1);
        // A key whose record alone exceeds 1024 bytes of metadata cannot be stored.
        let before = dump(&kv);
        s.execute(
            "INSERT INTO docs VALUES ($1, $2), ($3, $4)",
            params!["ok", "fine", "k".repeat(1100), "body"],
        )
        .await
        .unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("metadata (1024 bytes)"), "{err}");
        assert_eq!(dump(&kv), before, "neither row written");
    });
}

/// JSON has no NaN or infinity: such a float used to be stored as `null`, and the row (and
/// every scan of its table) could no longer be read.
#[test]
fn a_float_json_cannot_hold_is_refused_before_anything_is_written() {
    let kv = namespace();
    let a = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE f (id INTEGER PRIMARY KEY, x FLOAT)")
            .await
            .unwrap();
        s.execute_batch("INSERT INTO f VALUES (1, 1.5), (2, -0.0)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let before = dump(&kv);
        s.execute("INSERT INTO f VALUES (3, $1)", params![f64::NAN])
            .await
            .unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("NaN"), "{err}");
        assert_eq!(dump(&kv), before, "nothing written");
        let rows = isolate(&kv, URL)
            .open()
            .execute_batch("SELECT x FROM f ORDER BY id")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        let x: Vec<&Value> = rows.iter().map(|r| r.value("x").unwrap()).collect();
        assert_eq!(x, [&Value::F64(1.5), &Value::F64(-0.0)]);
    });
}

// ---- retries -----------------------------------------------------------------------------

#[test]
fn rate_limited_writes_are_retried_with_backoff() {
    let (kv, a) = seeded(URL);
    block_on(async {
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        kv.fail_next(CallKind::Put, 2, KvFailure::RateLimited("429".into()));
        let t0 = kv.inner().now_ms();
        s.commit().await.unwrap();
        // The commit record's put three times (two 429s), the journal's list, the check (1
        // bulk get), the row and unique entry once each; the record's delete comes later.
        assert_eq!(kv.calls_of(CallKind::BulkGet), 1);
        assert_eq!(kv.calls_of(CallKind::List), 1);
        assert_eq!(kv.calls_of(CallKind::Put), 5);
        assert_eq!(kv.calls_of(CallKind::Delete), 0);
        assert_eq!(kv.failures(), 2);
        assert_eq!(s.kv_ops(), 7, "every attempt counts against the budget");
        assert_eq!(
            kv.inner().now_ms() - t0,
            1000 + 2000,
            "backoff: 1 s, then 2 s"
        );
        let b = isolate(&kv, URL);
        assert_eq!(users(&b.open()).await.len(), 3);
    });
    assert!(index_problems(&kv).none());
}

#[test]
fn transient_failures_of_reads_and_writes_are_retried() {
    let (kv, _a) = seeded(URL);
    let b = isolate(&kv, URL);
    block_on(async {
        let s = b.open();
        // Three failed attempts of the first read, the fourth succeeds.
        kv.fail_next(CallKind::Read, 3, KvFailure::Transient("503".into()));
        let t0 = kv.inner().now_ms();
        s.execute(
            "UPDATE users SET email = $1 WHERE id = $2",
            params!["ada@new", 1i64],
        )
        .await
        .unwrap();
        assert_eq!(
            kv.inner().now_ms() - t0,
            100 + 200 + 400,
            "exponential backoff"
        );
        kv.fail_next(CallKind::Write, 2, KvFailure::Transient("timeout".into()));
        kv.fail_next(CallKind::BulkGet, 1, KvFailure::Transient("500".into()));
        s.commit().await.unwrap();
        assert_eq!(kv.failures(), 3 + 2 + 1);
        assert_eq!(users(&isolate(&kv, URL).open()).await[0].2, "ada@new");
    });
    assert!(index_problems(&kv).none());
}

#[test]
fn exhausted_retries_fail_the_commit_and_undo_it() {
    let (kv, a) = seeded(URL);
    let before = dump(&kv);
    block_on(async {
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        // Call 1 puts the commit record, 2 lists the journal, 3 checks, 4 writes the row and
        // calls 5-8 try the unique entry four times.
        for k in 5..=8 {
            kv.fail_call(k, KvFailure::RateLimited("429".into()));
        }
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("after 4 attempt(s)"), "{err}");
        // The row landed and is put back; the entry, refused four times (429s change
        // nothing), needs no undo.
        assert!(
            err.to_string()
                .contains("failed and was undone (1 of 1 writes restored)"),
            "{err}"
        );
        assert_eq!(
            kv.calls(),
            11,
            "record, list, check, row, 4 attempts, read back, undo of the row, record delete"
        );
        assert_eq!(dump(&kv), before, "KV restored");
        // The next session of this isolate and another isolate both see the state before.
        let expected = vec![
            (1, "ada".to_owned(), "ada@x".to_owned()),
            (2, "bob".to_owned(), "bob@x".to_owned()),
        ];
        assert_eq!(users(&a.open()).await, expected);
        assert_eq!(users(&isolate(&kv, URL).open()).await, expected);
        // And the unit of work can simply be retried.
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        s.commit().await.unwrap();
        assert_eq!(users(&isolate(&kv, URL).open()).await.len(), 3);
    });
}

#[test]
fn a_permanent_failure_is_not_retried_and_the_commit_is_undone() {
    let (kv, a) = seeded(URL);
    let before = dump(&kv);
    block_on(async {
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        kv.fail_call(5, KvFailure::Permanent("bad request".into()));
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("after 1 attempt(s)"), "{err}");
        // A failure other than a 429 is no proof that the write did not land: the entry is
        // put back too.
        assert!(err.to_string().contains("2 of 2 writes restored"), "{err}");
        assert_eq!(
            kv.calls(),
            9,
            "record, list, check, row, failed entry, read back, undo of both, record delete"
        );
        assert_eq!(dump(&kv), before);
        assert_eq!(users(&a.open()).await.len(), 2);
    });
}

/// KV allows one write per second per key, and an undo rewrites keys just written: the undo
/// must wait and retry too, or the commit it undoes stays half-written.
#[test]
fn the_undo_waits_out_the_write_rate_limit() {
    let (kv, a) = seeded(URL);
    kv.inner().advance(1000);
    kv.limit_write_rate(1000);
    let before = dump(&kv);
    block_on(async {
        let s = a.open();
        typical_unit_of_work(&s).await;
        kv.reset_calls();
        // Calls 1-3 are the record, the journal's list and the check; 4-8 the five writes.
        kv.fail_call(8, KvFailure::Permanent("last write".into()));
        let err = s.commit().await.unwrap_err();
        assert!(err.to_string().contains("5 of 5 writes restored"), "{err}");
    });
    assert_eq!(dump(&kv), before, "KV restored");
    assert_eq!(outcome(&kv, &a), Outcome::Before);
}

/// A schema change that rewrites every row of the table (`DROP COLUMN` of the primary key;
/// other columns are dropped, and columns of a constant value added, in place); when it
/// fails, the undo must put the rows back as they were, not delete them.
#[test]
fn a_failed_schema_change_is_undone_without_losing_rows() {
    let (kv, a) = seeded(URL);
    let before = dump(&kv);
    block_on(async {
        let s = a.open();
        s.execute_batch("ALTER TABLE users DROP COLUMN id")
            .await
            .unwrap();
        kv.reset_calls();
        // Call 1 puts the commit record, 2-4 list the journal, check and list the table's
        // rows, 5 writes the schema, 6 and 7 the rows: fail the second row for good.
        kv.fail_call(7, KvFailure::Permanent("second row".into()));
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
    });
    assert_eq!(dump(&kv), before, "KV restored");
    assert_eq!(outcome(&kv, &a), Outcome::Before);
}

// ---- the fault matrix --------------------------------------------------------------------

/// The typical commit of the matrix: user 1 changes email (row put, new entry put, old entry
/// delete) and user 3 signs up (row put, entry put), in one unit of work.
async fn typical_unit_of_work(s: &Session) {
    s.execute(
        "UPDATE users SET email = $1 WHERE id = $2",
        params!["ada@new", 1i64],
    )
    .await
    .unwrap();
    insert(s, 3, "cy", "cy@x").await.unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Before,
    After,
    Half,
}

/// The state as a fresh session of the isolate sees it, and as another isolate sees it.
fn outcome(kv: &Kv, a: &SessionFactory) -> Outcome {
    let before = vec![
        (1, "ada".to_owned(), "ada@x".to_owned()),
        (2, "bob".to_owned(), "bob@x".to_owned()),
    ];
    let after = vec![
        (1, "ada".to_owned(), "ada@new".to_owned()),
        (2, "bob".to_owned(), "bob@x".to_owned()),
        (3, "cy".to_owned(), "cy@x".to_owned()),
    ];
    let (mine, theirs) = block_on(async {
        (
            users(&a.open()).await,
            users(&isolate(kv, URL).open()).await,
        )
    });
    assert_eq!(
        mine, theirs,
        "the isolate's next session reads what KV holds"
    );
    let consistent = index_problems(kv).unprotected.is_empty();
    if mine == before && consistent {
        Outcome::Before
    } else if mine == after && consistent {
        Outcome::After
    } else {
        Outcome::Half
    }
}

/// Calls a fault-free run of the typical commit makes.
fn calls_of_typical_commit() -> u64 {
    let (kv, a) = seeded(URL);
    block_on(async {
        let s = a.open();
        typical_unit_of_work(&s).await;
        kv.reset_calls();
        s.commit().await.unwrap();
    });
    let calls = kv.log();
    assert_eq!(outcome(&kv, &a), Outcome::After);
    use CallKind::{BulkGet, Delete, List, Put};
    let kinds: Vec<CallKind> = calls.iter().map(|(kind, _)| *kind).collect();
    // The commit record, the journal's list, the check, the five writes (the record's delete
    // runs after the response).
    assert_eq!(kinds, [Put, List, BulkGet, Put, Put, Put, Put, Delete]);
    kinds.len() as u64
}

#[test]
fn fault_matrix_one_failed_call_is_all_or_nothing() {
    let n = calls_of_typical_commit();
    assert_eq!(n, 8, "record + list + check (bulk get) + 5 writes");
    for k in 1..=n {
        let (kv, a) = seeded(URL);
        let before = dump(&kv);
        let result = block_on(async {
            let s = a.open();
            typical_unit_of_work(&s).await;
            kv.reset_calls();
            kv.fail_call(k, KvFailure::Permanent(format!("call {k}")));
            s.commit().await.map(|_| ())
        });
        let err = result.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "k={k}: {err}");
        let told = if k <= 3 {
            "nothing was written"
        } else {
            "was undone"
        };
        assert!(err.to_string().contains(told), "k={k}: {err}");
        assert_eq!(dump(&kv), before, "k={k}: KV restored exactly");
        assert_eq!(outcome(&kv, &a), Outcome::Before, "k={k}");
    }
    // The record's delete after the response failing leaves an applied commit applied.
    let (kv, a) = seeded(URL);
    block_on(async {
        let s = a.open();
        typical_unit_of_work(&s).await;
        s.commit().await.unwrap();
        kv.fail_every(CallKind::Delete, KvFailure::Permanent("delete".into()));
        assert_eq!(s.engine().flush().await.unwrap(), 0);
        kv.heal();
    });
    assert_eq!(outcome(&kv, &a), Outcome::After);
    kv.inner().advance(121_000);
    assert_eq!(outcome(&kv, &a), Outcome::After);
    assert!(
        journal(&kv).is_empty(),
        "settled (nothing to write) and gone"
    );
}

/// A Worker cut off at call k (every call from k on fails, the undo's and the record delete's
/// too). This used to leave rows without their unique entries; now the commit record stays,
/// and once it is older than a minute the next session replays it: every cut ends all or
/// nothing, with a consistent unique index and no record left.
#[test]
fn fault_matrix_cut_off_in_the_write_phase_is_all_or_nothing_after_replay() {
    let n = calls_of_typical_commit();
    let mut outcomes = Vec::new();
    for k in 1..=n {
        let (kv, a) = seeded(URL);
        let result = block_on(async {
            let s = a.open();
            typical_unit_of_work(&s).await;
            kv.reset_calls();
            kv.fail_from(k, KvFailure::Transient(format!("cut at {k}")));
            let result = s.commit().await.map(|_| ());
            kv.heal();
            result
        });
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.code(), "STORAGE", "k={k}: {err}");
        let told = if k <= 3 {
            "nothing was written"
        } else {
            "outcome unknown"
        };
        assert!(err.to_string().contains(told), "k={k}: {err}");
        kv.inner().advance(121_000);
        let outcome = outcome(&kv, &a);
        let problems = index_problems(&kv);
        assert!(problems.none(), "k={k}: {:?}", problems.unprotected);
        assert!(journal(&kv).is_empty(), "k={k}: record settled and gone");
        outcomes.push((outcome, result.is_ok()));
    }
    use Outcome::{After, Before};
    // Calls: 1 record, 2 list, 3 check, then the five writes at once: 4 row 1 (ada@new), 5 row
    // 3 (cy@x), 6 entry ada@new, 7 entry cy@x, 8 delete of entry ada@x.
    // Cut at 1: the record never landed. Cut at 2 or 3: nothing written, the record (its
    // delete failed too) is settled back. Cut at 4: no write landed, settled back. Cut at 5
    // to 8: some writes landed, settled forward.
    assert_eq!(
        outcomes,
        [
            (Before, false),
            (Before, false),
            (Before, false),
            (Before, false),
            (After, false),
            (After, false),
            (After, false),
            (After, false)
        ]
    );
}

/// Keys of the journal (commit records) in the namespace.
fn journal(kv: &Kv) -> Vec<String> {
    let prefix = Layout::new("").journal_prefix();
    kv.inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

// ---- consistency -------------------------------------------------------------------------

async fn balance_of(s: &Session, id: i64) -> i64 {
    s.execute("SELECT balance FROM accounts WHERE id = $1", params![id])
        .await
        .unwrap()
        .into_rows()
        .unwrap()
        .get(0)
        .unwrap()
        .get("balance")
        .unwrap()
}

async fn set_balance(s: &Session, id: i64, balance: i64) {
    s.execute(
        "UPDATE accounts SET balance = $1 WHERE id = $2",
        params![balance, id],
    )
    .await
    .unwrap();
}

/// A namespace with account 1 (balance 100) and two isolates (their caches warm with it).
fn accounts() -> (Kv, SessionFactory, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, URL);
    let b = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL); \
             INSERT INTO accounts VALUES (1, 100)",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap(); // the record's delete, as a teardown does
        assert_eq!(balance_of(&b.open(), 1).await, 100);
    });
    (kv, a, b)
}

/// Both isolates read 100 and add 10. `visible`: whether A's write has reached B's commit.
fn race(visible: bool) -> (gluebind::Result<()>, i64) {
    let (kv, a, b) = accounts();
    kv.delay_writes(60_000);
    block_on(async {
        let sa = a.open();
        let sb = b.open();
        let x = balance_of(&sa, 1).await;
        let y = balance_of(&sb, 1).await;
        set_balance(&sa, 1, x + 10).await;
        set_balance(&sb, 1, y + 10).await;
        sa.commit().await.unwrap();
        if visible {
            kv.publish();
        }
        let result = sb.commit().await.map(|_| ());
        kv.publish();
        let fresh = isolate(&kv, URL);
        (result, balance_of(&fresh.open(), 1).await)
    })
}

#[test]
fn cross_isolate_update_race_is_detected_once_the_first_write_is_visible() {
    let (result, balance) = race(true);
    let err = result.unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "{err}");
    assert_eq!(balance, 110, "the second commit wrote nothing");
}

#[test]
fn cross_isolate_update_race_is_not_detected_while_the_first_write_is_invisible() {
    // The documented window: KV has no compare-and-swap, and B's check read still returns
    // the version B saw. Both commits succeed and one increment is lost.
    let (result, balance) = race(false);
    assert!(result.is_ok());
    assert_eq!(balance, 110, "lost update: 100 + 10 + 10 should be 120");
}

#[test]
fn a_stale_read_is_caught_if_the_write_shows_before_the_commit() {
    let (kv, a, _) = accounts();
    kv.delay_writes(60_000);
    block_on(async {
        let sa = a.open();
        set_balance(&sa, 1, 200).await;
        sa.commit().await.unwrap();
        // A new isolate reads the old balance (stale)...
        let c = isolate(&kv, URL);
        let sc = c.open();
        assert_eq!(balance_of(&sc, 1).await, 100, "stale read");
        set_balance(&sc, 1, 110).await;
        // ...and A's write becomes visible before C commits: the version check sees it.
        kv.inner().advance(60_000);
        let err = sc.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert_eq!(balance_of(&isolate(&kv, URL).open(), 1).await, 200);
    });
}

#[test]
fn a_stale_read_is_not_caught_if_the_write_is_still_invisible_at_commit() {
    let (kv, a, _) = accounts();
    kv.delay_writes(60_000);
    block_on(async {
        let sa = a.open();
        set_balance(&sa, 1, 200).await;
        sa.commit().await.unwrap();
        let c = isolate(&kv, URL);
        let sc = c.open();
        assert_eq!(balance_of(&sc, 1).await, 100, "stale read");
        set_balance(&sc, 1, 110).await;
        sc.commit().await.unwrap();
        kv.publish();
        assert_eq!(
            balance_of(&isolate(&kv, URL).open(), 1).await,
            110,
            "A's write is lost"
        );
    });
}

#[test]
fn cross_isolate_unique_is_enforced_once_the_entry_is_visible() {
    let (kv, a) = seeded(URL);
    let b = isolate(&kv, URL);
    block_on(async {
        // Entry visible before B's statement: refused at the statement.
        let sa = a.open();
        insert(&sa, 3, "cy", "cy@x").await.unwrap();
        sa.commit().await.unwrap();
        let sb = b.open();
        let err = insert(&sb, 4, "cy2", "cy@x").await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        // B's statement first, A's commit between it and B's commit: refused at commit.
        let sb = b.open();
        insert(&sb, 5, "dee", "dee@x").await.unwrap();
        let sa = a.open();
        insert(&sa, 6, "dee2", "dee@x").await.unwrap();
        sa.commit().await.unwrap();
        let err = sb.commit().await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
    });
    assert!(index_problems(&kv).none());
}

#[test]
fn cross_isolate_unique_is_not_enforced_while_the_entry_is_invisible() {
    let (kv, a) = seeded(URL);
    let b = isolate(&kv, URL);
    kv.delay_writes(60_000);
    block_on(async {
        let sa = a.open();
        insert(&sa, 3, "cy", "cy@x").await.unwrap();
        sa.commit().await.unwrap();
        let sb = b.open();
        insert(&sb, 4, "cy2", "cy@x").await.unwrap();
        sb.commit().await.unwrap();
    });
    kv.publish();
    let rows = block_on(async { users(&isolate(&kv, URL).open()).await });
    let taken = rows.iter().filter(|(_, _, e)| e == "cy@x").count();
    assert_eq!(taken, 2, "two users hold cy@x");
    assert_eq!(
        index_problems(&kv).unprotected,
        ["cy@x is indexed to another row than 3"],
        "the entry names the last writer"
    );
}

#[test]
fn within_one_isolate_conflicts_are_always_detected() {
    // KV serves stale reads to everyone (the writer too): the isolate's own bookkeeping must
    // catch what its sessions do to each other.
    let (kv, a, _) = accounts();
    kv.delay_writes(60_000);
    block_on(async {
        // Update race.
        let s1 = a.open();
        let s2 = a.open();
        let x = balance_of(&s1, 1).await;
        let y = balance_of(&s2, 1).await;
        set_balance(&s1, 1, x + 10).await;
        set_balance(&s2, 1, y + 10).await;
        s1.commit().await.unwrap();
        let err = s2.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        // Insert race on the same key.
        let s1 = a.open();
        let s2 = a.open();
        s1.execute("INSERT INTO accounts VALUES (2, 1)", gluebind::NO_PARAMS)
            .await
            .unwrap();
        s2.execute("INSERT INTO accounts VALUES (2, 2)", gluebind::NO_PARAMS)
            .await
            .unwrap();
        s1.commit().await.unwrap();
        let err = s2.commit().await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
    });
}

#[test]
fn within_one_isolate_unique_is_always_enforced() {
    let (kv, a) = seeded(URL);
    kv.delay_writes(60_000);
    block_on(async {
        let s1 = a.open();
        let s2 = a.open();
        insert(&s1, 3, "cy", "cy@x").await.unwrap();
        insert(&s2, 4, "cy2", "cy@x").await.unwrap();
        s1.commit().await.unwrap();
        let err = s2.commit().await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
    });
}

#[test]
fn within_one_isolate_conflicts_are_detected_after_the_cache_expired() {
    // The isolate cache starts over after cache_ttl; KV may still serve the old row.
    let (kv, a, _) = accounts();
    kv.delay_writes(60_000);
    block_on(async {
        let s1 = a.open();
        let s2 = a.open();
        let x = balance_of(&s1, 1).await;
        let y = balance_of(&s2, 1).await;
        set_balance(&s1, 1, x + 10).await;
        set_balance(&s2, 1, y + 10).await;
        s1.commit().await.unwrap();
        kv.inner().advance(11_000); // past the default cache_ttl of 10 s
        let _ = a.open(); // a new event starts the cache over
        let err = s2.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        // The retry reads the isolate's own write (KV still serves the old row) and succeeds.
        let s3 = a.open();
        let z = balance_of(&s3, 1).await;
        assert_eq!(z, 110);
        set_balance(&s3, 1, z + 10).await;
        s3.commit().await.unwrap();
        kv.publish();
        assert_eq!(balance_of(&isolate(&kv, URL).open(), 1).await, 120);
    });
}

#[test]
fn a_commit_after_the_cache_expired_reports_its_rows() {
    let (kv, a, _) = accounts();
    block_on(async {
        let s = a.open();
        let x = balance_of(&s, 1).await;
        set_balance(&s, 1, x + 10).await;
        kv.inner().advance(11_000);
        let _ = a.open(); // starts the cache over: it no longer knows the table
        let info = s.commit().await.unwrap();
        assert_eq!(info.rows_written, 1);
    });
}

/// Every key and entry of the namespace (read without counting).
fn dump(kv: &Kv) -> Vec<(String, KvEntry)> {
    dump_namespace(kv.inner())
}

/// KV's `list` lags behind writes: a scan after the isolate cache started over must still show
/// this isolate's own recent writes (as point reads do), or a user's acknowledged write would
/// seem lost and an UPDATE through a scan could match nothing.
#[test]
fn a_scan_shows_this_isolates_recent_writes_while_list_lags() {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV?cache_ttl=0");
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        insert(&s, 1, "ada", "ada@x").await.unwrap();
        insert(&s, 2, "bob", "bob@x").await.unwrap();
        s.commit().await.unwrap();
        kv.delay_writes(60_000);
        let s = a.open();
        insert(&s, 3, "cy", "cy@x").await.unwrap();
        s.execute_batch("UPDATE users SET name = 'ada 2' WHERE id = 1")
            .await
            .unwrap();
        s.execute_batch("DELETE FROM users WHERE id = 2")
            .await
            .unwrap();
        s.commit().await.unwrap();
        // cache_ttl=0: this session loads from KV, whose listing still shows the old state.
        let fresh = a.open();
        assert_eq!(
            users(&fresh).await,
            vec![
                (1, "ada 2".to_owned(), "ada@x".to_owned()),
                (3, "cy".to_owned(), "cy@x".to_owned())
            ]
        );
    });
}

/// A row the session has read stays in its snapshot when a later scan's listing lacks it: an
/// UPDATE then matches it, and a concurrent delete surfaces as a conflict, not as a write that
/// silently matched nothing.
#[test]
fn a_row_read_before_a_scan_stays_in_the_snapshot() {
    let (kv, a) = seeded(URL);
    let b = isolate(&kv, URL);
    block_on(async {
        let sb = b.open();
        assert_eq!(name_of(&sb, 1).await.as_deref(), Some("ada"), "point read");
        // Another isolate deletes ada; B's scan now lists only bob.
        let sa = a.open();
        sa.execute_batch("DELETE FROM users WHERE id = 1")
            .await
            .unwrap();
        sa.commit().await.unwrap();
        assert_eq!(
            users(&sb).await.len(),
            2,
            "repeatable read: ada stays for B"
        );
        let updated = sb
            .execute_batch("UPDATE users SET name = 'ada 2' WHERE name = 'ada'")
            .await
            .unwrap()
            .remove(0)
            .affected();
        assert_eq!(updated, 1);
        let err = sb.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert_eq!(users(&isolate(&kv, URL).open()).await.len(), 1);
    });
}

/// One stale read at any single call of a read-modify-write in another isolate: the outcome is
/// the update applied on the latest balance, or an error that stores nothing (a conflict, or
/// the table not found yet) — never an update computed from a stale balance (a lost update). KV's one real window, a stale read at
/// the commit's own check while the session also read stale data, needs two stale calls; the
/// two race tests above show it.
#[test]
fn stale_read_matrix_never_loses_an_update() {
    let calls = {
        let (kv, a, _) = accounts();
        stale_matrix_case(&kv, &a, None).0
    };
    assert!(calls >= 3, "a read, a check, a write at least: {calls}");
    let mut outcomes = Vec::new();
    for k in 1..=calls {
        let (kv, a, _) = accounts();
        let (_, result, balance) = stale_matrix_case(&kv, &a, Some(k));
        match &result {
            Ok(()) => assert_eq!(
                balance, 210,
                "stale call {k}: applied on the latest balance"
            ),
            Err(e) => {
                // A conflict at commit, or a stale schema read (the table looks absent).
                let table_missing = e.to_string().contains("table not found");
                assert!(
                    e.code() == "CONFLICT" || table_missing,
                    "stale call {k}: {e}"
                );
                assert_eq!(balance, 200, "stale call {k}: the failure stored nothing");
            }
        }
        outcomes.push(result.is_ok());
    }
    assert!(
        outcomes.iter().any(|ok| *ok),
        "most stale calls do not matter: {outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|ok| !ok),
        "a stale read of the row is caught: {outcomes:?}"
    );
}

/// Reads account 1's balance and stores it plus 10.
async fn add_ten(s: &Session) -> gluebind::Result<()> {
    let rows = s
        .execute("SELECT balance FROM accounts WHERE id = $1", params![1i64])
        .await?
        .into_rows()?;
    let balance: i64 = rows.get(0).expect("account 1 exists").get("balance")?;
    s.execute(
        "UPDATE accounts SET balance = $1 WHERE id = $2",
        params![balance + 10, 1i64],
    )
    .await?;
    s.commit().await.map(|_| ())
}

/// A sets the balance 100 → 200 (its latest write); then B, a new isolate, adds 10, with
/// call `stale` of B's unit of work reading stale. Returns B's call count, its commit's
/// result and the balance a fresh isolate reads afterwards.
fn stale_matrix_case(
    kv: &Kv,
    a: &SessionFactory,
    stale: Option<u64>,
) -> (u64, gluebind::Result<()>, i64) {
    block_on(async {
        let sa = a.open();
        set_balance(&sa, 1, 200).await;
        sa.commit().await.unwrap();
        kv.reset_calls();
        if let Some(k) = stale {
            kv.stale_call(k);
        }
        let sb = isolate(kv, URL).open();
        let result = add_ten(&sb).await;
        let calls = kv.calls();
        kv.heal();
        (calls, result, balance_of(&isolate(kv, URL).open(), 1).await)
    })
}
