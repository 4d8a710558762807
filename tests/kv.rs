//! The kv:// engine over an in-memory KV namespace: semantics across isolates, and the cost
//! budget, asserted by counting backend calls with `CountingKv`.
//!
//! Every "isolate" is an engine of its own (its own isolate cache) over the same namespace.
//! `MemoryKv`'s clock only moves when a test moves it, so an isolate cache stays warm for the
//! whole test unless the URL sets `cache_ttl=0`.
//!
//! Measured costs (KV operations; asserted below):
//!
//! | request | cost |
//! |---|---|
//! | PK read, row in the isolate cache | 0 |
//! | PK read, schema cached, row not | 1 get |
//! | PK read, nothing cached | 2 gets (schema, then row: GlueSQL plans before it reads) |
//! | the isolate's first KV read or commit, then at most once per 10 s | + 1 list (the journal of commits cut off half-way) |
//! | one-row insert, one UNIQUE column, isolate cache warm (table created here) | statement 0; commit: record put, then the journal's list and 1 bulk get (check) at once, then 2 puts at once; the record's delete after the response (teardown) |
//! | one-row insert, one UNIQUE column, schema cached only | statement 1 bulk get (the key and the unique value, found in one attempt); commit as above |
//! | one-row insert without UNIQUE columns | commit: record put, list + 1 bulk get, 1 put; record delete at teardown |
//! | scan of 2 500 small rows (schema cached) | 3 lists |
//! | first page (`ORDER BY id LIMIT 20`, integer keys) over 2 500 rows, cold | 1 get (schema) + 1 list (journal) + 1 list (the first 1 000 rows) |
//! | its `COUNT(*)` (a page with a total) | + 3 lists (the whole table) |

mod common;
use common::{block_on, count_in as count, dump as dump_namespace, isolate, name_of, USERS};
use gluebind::{
    kv::{CountingKv, KvEntry, KvOps, MemoryKv},
    params, Session, SessionFactory,
};
use std::rc::Rc;

type Kv = Rc<CountingKv<MemoryKv>>;

fn namespace() -> Kv {
    Rc::new(CountingKv::new(MemoryKv::new()))
}

/// Operations since the last call (and resets the counters).
fn take(kv: &Kv) -> KvOps {
    let ops = kv.ops();
    kv.reset();
    ops
}

async fn insert_user(s: &Session, id: i64, email: &str) -> gluebind::Result<()> {
    s.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![id, format!("user {id}"), email],
    )
    .await
    .map(|_| ())
}

/// A namespace with the users table and rows 1..=n, created by an isolate that is returned.
fn users_namespace(n: i64) -> (Kv, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        for id in 1..=n {
            insert_user(&s, id, &format!("u{id}@x")).await.unwrap();
        }
        s.commit().await.unwrap();
        // What the registry's teardown does after the response: the record goes.
        s.engine().flush().await.unwrap();
    });
    kv.reset();
    (kv, a)
}

#[test]
fn smoke_insert_read_across_isolates() {
    let (kv, _a) = users_namespace(1);
    let b = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let t = b.open();
        assert_eq!(name_of(&t, 1).await.as_deref(), Some("user 1"));
        let err = insert_user(&t, 2, "u1@x").await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
    });
}

// ---- cost budget -------------------------------------------------------------------------

#[test]
fn cached_pk_read_costs_no_kv_operation() {
    let (kv, a) = users_namespace(2);
    block_on(async {
        // Rows this isolate committed are in its cache.
        let s = a.open();
        assert_eq!(name_of(&s, 1).await.as_deref(), Some("user 1"));
        assert_eq!(take(&kv).total(), 0);
        // Rows another session of this isolate loaded are in its cache too.
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        assert_eq!(name_of(&b.open(), 2).await.as_deref(), Some("user 2"));
        assert!(take(&kv).total() > 0, "first read in a new isolate");
        assert_eq!(name_of(&b.open(), 2).await.as_deref(), Some("user 2"));
        assert_eq!(
            take(&kv).total(),
            0,
            "second read, new session, same isolate"
        );
        // So is a row known to be absent.
        assert_eq!(name_of(&b.open(), 99).await, None);
        assert_eq!(name_of(&b.open(), 99).await, None);
        assert_eq!(take(&kv).gets, 1, "absence is cached too");
    });
}

#[test]
fn cold_pk_read_costs_one_get_once_the_schema_is_cached() {
    let (kv, _a) = users_namespace(3);
    let b = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        // Nothing cached: the schema, then the row (GlueSQL plans before it reads), and the
        // isolate's first look at the journal.
        let s = b.open();
        assert_eq!(name_of(&s, 1).await.as_deref(), Some("user 1"));
        let ops = take(&kv);
        assert_eq!(
            (ops.gets, ops.lists, ops.total()),
            (2, 1, 3),
            "schema cold: {ops:?}"
        );
        // Schema cached, row not: one get.
        assert_eq!(name_of(&b.open(), 2).await.as_deref(), Some("user 2"));
        let ops = take(&kv);
        assert_eq!((ops.gets, ops.total()), (1, 1), "schema cached: {ops:?}");
        // A missing row costs the same.
        assert_eq!(name_of(&b.open(), 42).await, None);
        assert_eq!(take(&kv).total(), 1);
    });
}

#[test]
fn one_row_insert_with_a_unique_column_costs_a_record_and_two_puts() {
    let (kv, a) = users_namespace(1);
    block_on(async {
        // Warm: the isolate created the table, so its cache holds every row and unique value.
        let s = a.open();
        insert_user(&s, 2, "u2@x").await.unwrap();
        assert_eq!(take(&kv).total(), 0, "the statement reads nothing");
        s.commit().await.unwrap();
        let ops = take(&kv);
        assert_eq!(ops.puts, 3, "commit record + row + unique entry: {ops:?}");
        assert_eq!(ops.lists, 1, "the journal, after the record: {ops:?}");
        assert_eq!(
            ops.bulk_gets, 1,
            "one check read of the three keys: {ops:?}"
        );
        assert_eq!(
            ops.deletes, 0,
            "the record goes after the response: {ops:?}"
        );
        assert_eq!(ops.total(), 5, "{ops:?}");
        assert_eq!(s.engine().flush().await.unwrap(), 1);
        assert_eq!(take(&kv).deletes, 1, "teardown deletes the record");

        // Schema cached only (another isolate): the statement needs the primary key (GlueSQL
        // reads it first) and the unique value, found in one attempt and read in one bulk get;
        // the commit re-checks after its record.
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        assert_eq!(name_of(&b.open(), 1).await.as_deref(), Some("user 1"));
        kv.reset();
        let t = b.open();
        insert_user(&t, 3, "u3@x").await.unwrap();
        let ops = take(&kv);
        assert_eq!((ops.bulk_gets, ops.total()), (1, 1), "statement: {ops:?}");
        t.commit().await.unwrap();
        let ops = take(&kv);
        assert_eq!(
            (ops.bulk_gets, ops.lists, ops.puts, ops.deletes, ops.total()),
            (1, 1, 3, 0, 5),
            "{ops:?}"
        );
        assert_eq!(t.kv_ops(), 6, "the session's own count");
    });
}

#[test]
fn one_row_insert_without_unique_columns_costs_a_record_and_one_put() {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        kv.reset();
        s.execute_batch("INSERT INTO notes VALUES (1, 'one key')")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let ops = take(&kv);
        assert_eq!(
            (ops.gets + ops.bulk_gets, ops.lists, ops.puts, ops.total()),
            (1, 1, 2, 4),
            "record + list + check + row: {ops:?}"
        );
    });
}

#[test]
fn scan_of_2500_small_rows_costs_three_lists() {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        // 4 commits of 625 rows: each within a session's budget of 900 operations.
        for chunk in 0..4 {
            let s = a.open();
            let values: Vec<String> = (1..=625)
                .map(|i| format!("({}, 'item {i}')", chunk * 625 + i))
                .collect();
            s.execute_batch(&format!("INSERT INTO items VALUES {}", values.join(",")))
                .await
                .unwrap();
            s.commit().await.unwrap();
        }
        kv.reset();

        let b = isolate(&kv, "kv://GLUEBIND_KV");
        // Schema first (one get), so that what follows is the scan alone.
        b.open()
            .execute("SELECT * FROM items WHERE id = $1", params![1i64])
            .await
            .unwrap();
        kv.reset();
        let s = b.open();
        assert_eq!(count(&s, "items").await, 2500);
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.total()),
            (3, 3),
            "ceil(2500 / 1000): {ops:?}"
        );
        assert_eq!(count(&b.open(), "items").await, 2500);
        assert_eq!(take(&kv).total(), 0, "the whole table is cached now");

        // A list page as the demo serves it, in a cold isolate: schema + the first listing
        // page for the rows, then the table's count lists it whole.
        let c = isolate(&kv, "kv://GLUEBIND_KV");
        let s = c.open();
        let page = s
            .execute(
                "SELECT * FROM items ORDER BY id LIMIT $1 OFFSET $2",
                params![20i64, 40i64],
            )
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(page.len(), 20);
        let ops = take(&kv);
        assert_eq!(
            (ops.gets, ops.lists, ops.total()),
            (1, 2, 3),
            "schema + journal + the first 1 000 rows: {ops:?}"
        );
        assert_eq!(count(&s, "items").await, 2500);
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.total()),
            (3, 3),
            "COUNT(*) lists the table: {ops:?}"
        );
    });
}

#[test]
fn a_session_over_its_budget_fails_before_the_limit_and_writes_nothing() {
    let (kv, _a) = users_namespace(20);
    let before = dump(&kv);
    let b = isolate(&kv, "kv://GLUEBIND_KV?max_ops=10");
    block_on(async {
        let s = b.open();
        insert_user(&s, 100, "new@x").await.unwrap(); // pending
        let mut err = None;
        for id in 1..=20i64 {
            if let Err(e) = s
                .execute("SELECT name FROM users WHERE id = $1", params![id])
                .await
            {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("20 cold reads exceed a budget of 10");
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(
            err.to_string().contains("budget of 10 KV operations"),
            "{err}"
        );
        assert_eq!(kv.ops().total(), 10, "never a call beyond the budget");
        assert_eq!(s.kv_ops(), 10);
        // Its commit cannot even check: refused, nothing written.
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert_eq!(kv.ops().total(), 10);
    });
    assert_eq!(dump(&kv), before, "KV unchanged");
}

#[test]
fn a_commit_over_the_budget_is_refused_before_writing() {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV?max_ops=50");
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let before = dump(&kv);
        kv.reset();
        let s = a.open();
        let values: Vec<String> = (1..=60).map(|i| format!("({i}, 'x')")).collect();
        s.execute_batch(&format!("INSERT INTO items VALUES {}", values.join(",")))
            .await
            .unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        // 60 rows, the commit record, the journal's list and one check read.
        assert!(
            err.to_string().contains("needs about 65 KV operations"),
            "{err}"
        );
        assert!(err.to_string().contains("smaller units of work"), "{err}");
        let ops = take(&kv);
        assert_eq!(ops.puts + ops.deletes, 0, "nothing written: {ops:?}");
        assert_eq!(dump(&kv), before, "KV unchanged");
        // The isolate's cache did not take the refused rows either.
        assert_eq!(count(&a.open(), "items").await, 0);
    });
}

// ---- regressions -------------------------------------------------------------------------

/// Tables without a primary key get generated keys. A fresh isolate used to start its key
/// counter at 0 and consume a new key on every retry of the statement, so an INSERT into such
/// a table, not loaded in full, faulted until it gave up ("needed data 64 times").
#[test]
fn insert_without_primary_key_in_another_isolate() {
    let kv = namespace();
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE log (msg TEXT)")
            .await
            .unwrap();
        let values: Vec<String> = (0..100).map(|i| format!("('a{i}')")).collect();
        s.execute_batch(&format!("INSERT INTO log VALUES {}", values.join(",")))
            .await
            .unwrap();
        s.commit().await.unwrap();
        // The record's delete, as a teardown does.
        s.engine().flush().await.unwrap();
        // A later isolate (its clock is 1 ms on) appends without loading the table.
        kv.inner().advance(1);
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        let t = b.open();
        kv.reset();
        t.execute_batch("INSERT INTO log VALUES ('b')")
            .await
            .unwrap();
        assert_eq!(
            t.kv_ops(),
            3,
            "journal + schema + the generated key's check"
        );
        t.commit().await.unwrap();
        let c = isolate(&kv, "kv://GLUEBIND_KV");
        assert_eq!(count(&c.open(), "log").await, 101, "no row overwritten");
    });
}

/// GlueSQL checks the keys of a multi-row INSERT one at a time; on a table not loaded in
/// full, every key used to cost a fault and a load, and the statement failed beyond 64 rows.
/// Now a statement that faults on many rows of one table loads the table instead.
#[test]
fn multi_row_insert_into_a_table_not_loaded() {
    let (kv, _a) = users_namespace(5);
    let b = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = b.open();
        let values: Vec<String> = (100..200)
            .map(|i| format!("({i}, 'n', 'e{i}@x')"))
            .collect();
        s.execute_batch(&format!("INSERT INTO users VALUES {}", values.join(",")))
            .await
            .unwrap();
        let ops = take(&kv);
        assert!(
            ops.total() <= 11,
            "journal, 8 point loads, then one list: {ops:?}"
        );
        assert_eq!(ops.lists, 2, "{ops:?}");
        s.commit().await.unwrap();
        assert_eq!(
            count(&isolate(&kv, "kv://GLUEBIND_KV").open(), "users").await,
            105
        );
    });
}

/// Every key and entry of the namespace (read without counting).
fn dump(kv: &Kv) -> Vec<(String, KvEntry)> {
    dump_namespace(kv.inner())
}

#[test]
fn concurrent_teardowns_delete_each_commit_record_once() {
    use gluebind::kv::{CallKind, FaultyKv};
    let kv = Rc::new(FaultyKv::new(MemoryKv::new()));
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        for id in 1..=3 {
            insert_user(&s, id, &format!("u{id}@x")).await.unwrap();
            s.commit().await.unwrap();
        }
        let records = || {
            dump_namespace(kv.inner())
                .iter()
                .filter(|(k, _)| k.contains("/c/"))
                .count()
        };
        // (A commit deletes earlier records beside its own, so at least the last is left.)
        let left = records();
        assert!(left >= 1);
        kv.reset_calls();
        // Two events' teardowns at once; the first one's deletes are still on their way when
        // the second looks for records to delete.
        kv.pause_at(1);
        let engine = s.engine().clone();
        let first = engine.flush();
        let second = async {
            while !kv.is_paused() {
                common::yield_now().await;
            }
            let n = engine.flush().await;
            kv.resume();
            n
        };
        let (first, second) = futures::future::join(first, second).await;
        assert_eq!((first.unwrap(), second.unwrap()), (left, 0));
        assert_eq!(
            kv.calls_of(CallKind::Delete),
            left as u64,
            "one delete per record"
        );
        assert_eq!(records(), 0);
    });
}

/// A multi-row INSERT into a table the isolate has not loaded point-loads its keys and unique
/// values (each once), never the whole table. (Found by review: an attempt that reads a
/// missing row as absent recorded each key twice, and 3 rows with a UNIQUE column went past
/// the point-load limit.)
#[test]
fn a_multi_row_insert_loads_its_keys_not_the_table() {
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    // The seed (900 rows and unique entries) needs more than the default budget.
    let a = isolate(&kv, "kv://GLUEBIND_KV?max_ops=1000");
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        s.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        let users: Vec<String> = (1..=200).map(|i| format!("({i}, 'n', 'e{i}@x')")).collect();
        let notes: Vec<String> = (1..=200).map(|i| format!("({i}, 'n')")).collect();
        s.execute_batch(&format!(
            "INSERT INTO users VALUES {}; INSERT INTO notes VALUES {}",
            users.join(","),
            notes.join(",")
        ))
        .await
        .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
    });
    let b = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        b.open()
            .execute_batch(
                "SELECT name FROM users WHERE id = 1; SELECT body FROM notes WHERE id = 1",
            )
            .await
            .unwrap();
        for sql in [
            "INSERT INTO users VALUES (1001, 'a', 'a@x'), (1002, 'b', 'b@x'), (1003, 'c', 'c@x')",
            "INSERT INTO notes VALUES (1001, 'a'), (1002, 'b'), (1003, 'c'), (1004, 'd'), (1005, 'e')",
        ] {
            kv.reset();
            b.open().execute_batch(sql).await.unwrap();
            let ops = kv.ops();
            assert_eq!((ops.lists, ops.bulk_gets), (0, 1), "{sql}: {ops:?}");
        }
    });
}
