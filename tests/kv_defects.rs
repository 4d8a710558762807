//! The seven kv:// defects an outside review confirmed (six here; the seventh, the demos'
//! body limit, is an end-to-end test in `tests/e2e/body-limit.test.mjs`). Each test drives the
//! public API over `FaultyKv` and checks the promise docs/guarantees.md makes, over every call at
//! which the scenario can be cut off or interleaved, not just one example.
//!
//! Long on purpose: each defect is one scenario, driven over every call where it can strike.

mod common;
use common::{block_on, isolate};
use gluebind::{
    kv::{FaultyKv, KvBackend, MemoryKv},
    params, Error, Session, SessionFactory,
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
/// Past the age at which a commit record counts as abandoned (120 s).
const LATER_MS: u64 = 121_000;

fn namespace() -> Kv {
    Rc::new(FaultyKv::new(MemoryKv::new()))
}

fn poll_once<T>(f: &mut Boxed<'_, T>) -> Poll<T> {
    let waker = futures::task::noop_waker();
    f.as_mut().poll(&mut Context::from_waker(&waker))
}

/// Polls `f` until it finishes (its output) or waits at the paused call (`None`).
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

/// Polls `f` until it finishes, or fails the test once `limit_ms` of simulated time passed
/// (a hang).
fn within<T>(kv: &Kv, limit_ms: u64, what: &str, f: &mut Boxed<'_, T>) -> T {
    let deadline = kv.now_ms() + limit_ms;
    loop {
        if let Poll::Ready(v) = poll_once(f) {
            return v;
        }
        assert!(
            kv.now_ms() <= deadline,
            "{what} did not finish within {} s of simulated time",
            limit_ms / 1000
        );
    }
}

/// Runs `work` and its commit in a session of `factory`, cut off at call `k` of the commit
/// (counted from the commit's start): the call never answers and the future is dropped.
/// Returns true when the commit ran into the cut (false: it finished before call `k`).
fn cut_off_at(kv: &Kv, factory: &SessionFactory, work: &str, k: u64) -> bool {
    let session = factory.open();
    block_on(session.execute_batch(work)).unwrap();
    let start = kv.calls();
    kv.hang_from(start + k);
    let mut commit: Boxed<'_, _> = Box::pin(session.commit());
    let mut cut = false;
    for _ in 0..100_000 {
        match poll_once(&mut commit) {
            Poll::Ready(_) => break,
            Poll::Pending if kv.calls() >= start + k => {
                cut = true;
                break;
            }
            Poll::Pending => {}
        }
    }
    drop(commit);
    kv.heal();
    cut
}

/// How many KV calls a fault-free run of `work` plus its commit's makes (on a copy).
fn commit_calls(seed: impl Fn() -> (Kv, SessionFactory), work: &str) -> u64 {
    let (kv, factory) = seed();
    let session = factory.open();
    block_on(session.execute_batch(work)).unwrap();
    let start = kv.calls();
    block_on(session.commit()).unwrap();
    kv.calls() - start
}

async fn one_i64(s: &Session, sql: &str, id: i64) -> Option<i64> {
    let rows = s
        .execute(sql, params![id])
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    rows.get(0).map(|r| r.get::<i64>("n").unwrap())
}

async fn balance(s: &Session, id: i64) -> i64 {
    one_i64(s, "SELECT balance AS n FROM accounts WHERE id = $1", id)
        .await
        .expect("the account exists")
}

/// Accounts 1 (100) and 2 (10), with a note column; users with a UNIQUE email.
fn bank() -> (Kv, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, note TEXT); \
             INSERT INTO accounts VALUES (1, 100, ''), (2, 10, ''); \
             CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); \
             INSERT INTO users VALUES (1, 'ada@x')",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap(); // the record's delete, as a teardown does
    });
    (kv, a)
}

const TRANSFER: &str = "UPDATE accounts SET balance = balance - 50 WHERE id = 1; \
                        UPDATE accounts SET balance = balance + 50 WHERE id = 2";
const SIGN_UP: &str = "INSERT INTO users VALUES (10, 'eve@x')";

/// Reads everything through a fresh isolate (which runs recovery first), then checks the
/// unique index in KV: every user's email has an entry naming that user, every entry names a
/// user holding its value, and no email is held twice.
fn check_users(kv: &Kv) -> Vec<(i64, String)> {
    let reader = isolate(kv, URL);
    let users: Vec<(i64, String)> = block_on(async {
        let s = reader.open();
        let rows = s
            .execute_batch("SELECT id, email FROM users ORDER BY id")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        rows.iter()
            .map(|r| (r.get("id").unwrap(), r.get("email").unwrap()))
            .collect()
    });
    let mut emails: Vec<&String> = users.iter().map(|(_, e)| e).collect();
    emails.sort();
    emails.dedup();
    assert_eq!(
        emails.len(),
        users.len(),
        "an email is held twice: {users:?}"
    );
    let entries: Vec<String> = kv
        .inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("gluebind/v1/u/users/"))
        .collect();
    assert_eq!(
        entries.len(),
        users.len(),
        "unique entries {entries:?} do not match users {users:?}"
    );
    users
}

fn total(kv: &Kv) -> (i64, i64) {
    let reader = isolate(kv, URL);
    block_on(async {
        let s = reader.open();
        (balance(&s, 1).await, balance(&s, 2).await)
    })
}

// ---- 1. A replay after another commit must keep atomicity and UNIQUE ------------------------

#[test]
fn replay_after_another_isolates_commit_keeps_unique() {
    let calls = commit_calls(bank, SIGN_UP);
    let mut cuts = 0;
    for k in 1..=calls {
        let (kv, a) = bank();
        if !cut_off_at(&kv, &a, SIGN_UP, k) {
            continue;
        }
        cuts += 1;
        // Another isolate signs up another user with the same email meanwhile.
        let b = isolate(&kv, URL);
        let theirs = block_on(async {
            let s = b.open();
            s.execute_batch("INSERT INTO users VALUES (11, 'eve@x')")
                .await
                .and(s.commit().await.map(|_| ()))
        });
        kv.inner().advance(LATER_MS);
        let users = check_users(&kv);
        if theirs.is_ok() {
            assert!(
                users.contains(&(11, "eve@x".to_owned())),
                "cut at {k}: an acknowledged sign-up was undone: {users:?}"
            );
        }
    }
    assert!(cuts >= 4, "the commit was cut off at {cuts} calls only");
}

#[test]
fn replay_after_another_isolates_commit_keeps_a_transfer_whole() {
    let calls = commit_calls(bank, TRANSFER);
    let mut cuts = 0;
    for k in 1..=calls {
        let (kv, a) = bank();
        if !cut_off_at(&kv, &a, TRANSFER, k) {
            continue;
        }
        cuts += 1;
        // Another isolate touches account 2, which the cut-off transfer may not have written.
        let b = isolate(&kv, URL);
        let theirs = block_on(async {
            let s = b.open();
            s.execute_batch("UPDATE accounts SET note = 'b' WHERE id = 2")
                .await
                .and(s.commit().await.map(|_| ()))
        });
        kv.inner().advance(LATER_MS);
        let (one, two) = total(&kv);
        assert_eq!(one + two, 110, "cut at {k}: half a transfer: {one} + {two}");
        if theirs.is_ok() {
            let note = block_on(async {
                let rows = isolate(&kv, URL)
                    .open()
                    .execute_batch("SELECT note FROM accounts WHERE id = 2")
                    .await
                    .unwrap()
                    .remove(0)
                    .into_rows()
                    .unwrap();
                rows.get(0).unwrap().get::<String>("note").unwrap()
            });
            assert_eq!(note, "b", "cut at {k}: an acknowledged update was undone");
        }
    }
    assert!(cuts >= 4, "the commit was cut off at {cuts} calls only");
}

// ---- 2. A replay on the read path must not overwrite a commit of its own isolate ------------

#[test]
fn a_replay_never_overwrites_a_commit_its_isolate_acknowledged() {
    let calls = commit_calls(bank, TRANSFER);
    let mut interleaved = 0;
    for k in 1..=calls {
        for j in 1..=12 {
            let (kv, a) = bank();
            if !cut_off_at(&kv, &a, TRANSFER, k) {
                continue;
            }
            kv.inner().advance(LATER_MS);
            let b = isolate(&kv, URL);
            // A reader starts the replay and is suspended at its j-th call...
            let reader = b.open();
            let start = kv.calls();
            kv.pause_at(start + j);
            let mut read: Boxed<'_, _> = Box::pin(async {
                reader
                    .execute("SELECT balance FROM accounts WHERE id = $1", params![1i64])
                    .await
                    .map(|_| ())
            });
            let finished = until_paused(&kv, &mut read);
            if finished.is_none() {
                interleaved += 1;
            }
            // ...while a writer of the same isolate takes 3 from account 2 and commits.
            let writer = b.open();
            let mut write: Boxed<'_, _> = Box::pin(async {
                writer
                    .execute_batch("UPDATE accounts SET balance = balance - 3 WHERE id = 2")
                    .await?;
                writer.commit().await.map(|_| ())
            });
            // The writer may have to wait for the reader's replay: let both run.
            let mut ours = None;
            for _ in 0..1_000 {
                if let Poll::Ready(r) = poll_once(&mut write) {
                    ours = Some(r);
                    break;
                }
            }
            kv.resume();
            if finished.is_none() {
                within(&kv, 120_000, "the read", &mut read).unwrap();
            }
            let ours = match ours {
                Some(r) => r,
                None => within(&kv, 120_000, "the write", &mut write),
            };
            drop((read, write));
            let (one, two) = total(&kv);
            let expected = if ours.is_ok() { 107 } else { 110 };
            assert_eq!(
                one + two,
                expected,
                "cut at {k}, reader paused at {j}: writer {ours:?}, accounts {one} + {two}"
            );
        }
    }
    assert!(
        interleaved >= 10,
        "the reader was suspended {interleaved} times only"
    );
}

// ---- 3. The commit turn must not depend on a dropped future -------------------------------

#[test]
fn an_abandoned_commit_does_not_block_the_isolates_later_commits() {
    let calls = commit_calls(bank, TRANSFER);
    let mut abandoned_at = 0;
    for j in 1..=calls {
        let (kv, a) = bank();
        let first = a.open();
        block_on(first.execute_batch(TRANSFER)).unwrap();
        let start = kv.calls();
        kv.pause_at(start + j);
        let mut abandoned: Boxed<'_, _> = Box::pin(first.commit());
        if until_paused(&kv, &mut abandoned).is_some() {
            continue;
        }
        abandoned_at += 1;
        // The first commit's future is kept, never polled again (not dropped).
        let second = a.open();
        let mut next: Boxed<'_, _> = Box::pin(async {
            second
                .execute_batch("UPDATE users SET email = 'ada@new' WHERE id = 1")
                .await?;
            second.commit().await.map(|_| ())
        });
        let result = within(&kv, 600_000, "a later commit of the isolate", &mut next);
        result.unwrap_or_else(|e| panic!("paused at {j}: {e}"));
        // If the abandoned commit is ever polled again it must not write over what followed.
        kv.resume();
        let late = within(&kv, 600_000, "the abandoned commit", &mut abandoned);
        drop((abandoned, next));
        kv.inner().advance(LATER_MS);
        let (one, two) = total(&kv);
        assert_eq!(one + two, 110, "paused at {j}: half a transfer ({late:?})");
        if late.is_ok() {
            assert_eq!(
                (one, two),
                (50, 60),
                "paused at {j}: acknowledged, not applied"
            );
        }
        assert_eq!(check_users(&kv), vec![(1, "ada@new".to_owned())]);
    }
    assert!(abandoned_at >= 4, "abandoned at {abandoned_at} calls only");
}

// ---- 4. Snapshot reads on a cache miss ------------------------------------------------------

fn read_skew(cache_ttl: &str) {
    let url = format!("{URL}{cache_ttl}");
    let (kv, a) = bank();
    block_on(async {
        let s = a.open();
        s.execute_batch("UPDATE accounts SET balance = 50 WHERE id = 1; UPDATE accounts SET balance = 50 WHERE id = 2")
            .await
            .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
    });
    let b = isolate(&kv, &url);
    block_on(async {
        let r = b.open();
        let one = balance(&r, 1).await;
        let w = b.open();
        w.execute_batch(
            "UPDATE accounts SET balance = balance - 50 WHERE id = 1; \
             UPDATE accounts SET balance = balance + 50 WHERE id = 2",
        )
        .await
        .unwrap();
        w.commit().await.unwrap();
        let two = balance(&r, 2).await;
        assert_eq!(one + two, 100, "read skew ({cache_ttl}): {one} + {two}");
        // A new session sees the transfer.
        let n = b.open();
        assert_eq!((balance(&n, 1).await, balance(&n, 2).await), (0, 100));
    });
}

#[test]
fn a_cache_miss_reads_the_snapshot_not_a_later_commit() {
    read_skew("");
    read_skew("?cache_ttl=0");
}

#[test]
fn a_commit_in_progress_is_not_visible_half_applied_in_its_isolate() {
    let calls = commit_calls(bank, TRANSFER);
    let mut suspended = 0;
    for j in 1..=calls {
        let (kv, _) = bank();
        let b = isolate(&kv, &format!("{URL}?cache_ttl=0"));
        let w = b.open();
        block_on(w.execute_batch(TRANSFER)).unwrap();
        let start = kv.calls();
        kv.pause_at(start + j);
        let mut commit: Boxed<'_, _> = Box::pin(w.commit());
        if until_paused(&kv, &mut commit).is_some() {
            continue;
        }
        suspended += 1;
        // A session of the same isolate reads both accounts while the commit is suspended.
        let r = b.open();
        let mut read: Boxed<'_, _> =
            Box::pin(async { (balance(&r, 1).await, balance(&r, 2).await) });
        let (one, two) = within(&kv, 120_000, "the read", &mut read);
        assert_eq!(one + two, 110, "paused at {j}: saw {one} + {two}");
        kv.resume();
        within(&kv, 120_000, "the commit", &mut commit).unwrap();
    }
    assert!(suspended >= 4, "suspended at {suspended} calls only");
}

// ---- 5. DDL after a cache reset ------------------------------------------------------------

fn notes(url: &str) -> (Kv, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, url);
    block_on(async {
        let s = a.open();
        s.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE); \
             INSERT INTO notes VALUES (1, 'one'), (2, 'two')",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
    });
    (kv, a)
}

/// The rows of `notes` as a fresh isolate reads them, each as its values.
fn note_rows(kv: &Kv) -> Result<Vec<String>, Error> {
    block_on(async {
        let rows = isolate(kv, URL)
            .open()
            .execute_batch("SELECT * FROM notes ORDER BY id")
            .await?
            .remove(0)
            .into_rows()?;
        Ok(rows.iter().map(|r| format!("{:?}", r.values())).collect())
    })
}

/// D reads the whole table, the isolate cache expires, W (the same isolate, or another one
/// when `elsewhere`) inserts a row and commits, the cache expires again, then D commits `ddl`.
/// Returns D's result.
fn ddl_after_reset(ddl: &str, elsewhere: bool) -> (Kv, Result<(), Error>) {
    let url = format!("{URL}?cache_ttl=1");
    let (kv, a) = notes(&url);
    let other = isolate(&kv, &url);
    let result = block_on(async {
        let d = a.open();
        d.execute_batch("SELECT * FROM notes").await.unwrap();
        kv.inner().advance(2_000);
        let w = if elsewhere { other.open() } else { a.open() };
        w.execute_batch("INSERT INTO notes VALUES (9, 'nine')")
            .await
            .unwrap();
        w.commit().await.unwrap();
        w.engine().flush().await.unwrap();
        kv.inner().advance(2_000);
        drop(a.open()); // starts the isolate cache afresh
        d.execute_batch(ddl).await.unwrap();
        d.commit().await.map(|_| ())
    });
    (kv, result)
}

#[test]
fn alter_table_after_a_cache_reset_keeps_a_row_committed_meanwhile() {
    for elsewhere in [false, true] {
        alter_after_reset(elsewhere);
    }
}

fn alter_after_reset(elsewhere: bool) {
    // The primary key dropped: a change that rewrites every row (a UNIQUE column renamed, a
    // column added in place rewrite none).
    for alter in [
        "ALTER TABLE notes DROP COLUMN id",
        "ALTER TABLE notes RENAME COLUMN body TO text",
        "ALTER TABLE notes ADD COLUMN extra INTEGER NULL",
    ] {
        let (kv, result) = ddl_after_reset(alter, elsewhere);
        let rows = note_rows(&kv).expect("the table stays readable");
        assert_eq!(rows.len(), 3, "{alter}: {rows:?}");
        assert!(rows.iter().any(|r| r.contains("nine")), "{alter}: {rows:?}");
        match result {
            // The column added: NULL in every row (the rename leaves the values).
            Ok(()) if alter.contains("ADD") => {
                assert!(rows.iter().all(|r| r.ends_with(", Null]")), "{rows:?}")
            }
            Ok(()) => {}
            Err(e) => assert_eq!(e.code(), "CONFLICT", "{e}"),
        }
    }
}

#[test]
fn drop_table_after_a_cache_reset_leaves_nothing_a_new_table_brings_back() {
    for elsewhere in [false, true] {
        drop_after_reset(elsewhere);
    }
}

fn drop_after_reset(elsewhere: bool) {
    let (kv, result) = ddl_after_reset("DROP TABLE notes", elsewhere);
    match result {
        Err(e) => {
            assert_eq!(e.code(), "CONFLICT", "{e}");
            assert_eq!(note_rows(&kv).unwrap().len(), 3);
        }
        Ok(()) => {
            block_on(async {
                let s = isolate(&kv, URL).open();
                s.execute_batch(
                    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)",
                )
                .await
                .unwrap();
                s.commit().await.unwrap();
            });
            assert_eq!(note_rows(&kv).unwrap(), Vec::<String>::new());
            block_on(async {
                let s = isolate(&kv, URL).open();
                s.execute_batch("INSERT INTO notes VALUES (5, 'nine')")
                    .await
                    .unwrap();
                s.commit().await.expect("no unique entry left behind");
            });
        }
    }
}

// ---- 6. Key layout: no database sees another's keys -----------------------------------------

#[test]
fn a_table_named_like_a_key_family_never_sees_a_prefixed_database() {
    for prefix in ["r", "s", "u", "c"] {
        for table in ["r", "s", "u", "c"] {
            let kv = namespace();
            let prefixed = isolate(&kv, &format!("{URL}?prefix={prefix}"));
            block_on(async {
                let s = prefixed.open();
                s.execute_batch(
                    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                     INSERT INTO users VALUES (1, 'ada@x')",
                )
                .await
                .unwrap();
                s.commit().await.unwrap();
            });
            let plain = isolate(&kv, URL);
            block_on(async {
                let s = plain.open();
                s.execute_batch(&format!(
                    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, x TEXT)"
                ))
                .await
                .unwrap();
                s.commit().await.unwrap();
                let rows = isolate(&kv, URL)
                    .open()
                    .execute_batch(&format!("SELECT * FROM {table}"))
                    .await
                    .unwrap_or_else(|e| panic!("prefix {prefix}, table {table}: {e}"))
                    .remove(0)
                    .into_rows()
                    .unwrap();
                assert_eq!(rows.len(), 0, "prefix {prefix}, table {table}");
                let s = plain.open();
                s.execute_batch(&format!("DROP TABLE {table}"))
                    .await
                    .unwrap();
                s.commit().await.unwrap();
                let rows = isolate(&kv, &format!("{URL}?prefix={prefix}"))
                    .open()
                    .execute_batch("SELECT * FROM users")
                    .await
                    .unwrap()
                    .remove(0)
                    .into_rows()
                    .unwrap();
                assert_eq!(rows.len(), 1, "prefix {prefix}, table {table}: data lost");
            });
        }
    }
}

/// Two rows swap UNIQUE values in one unit of work (through a free value): each value's
/// entry in KV names its new row, so an isolate that loaded nothing before refuses either
/// value again. (The release of a value another row of the commit claimed deleted the entry
/// the claim put.)
#[test]
fn a_swap_of_unique_values_keeps_both_entries() {
    let kv = Rc::new(MemoryKv::new());
    let f = isolate(&kv, URL);
    block_on(async {
        common::run(
            &f,
            "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO u VALUES (1, 'a@x'), (2, 'b@x')",
        )
        .await;
        common::run(
            &f,
            "UPDATE u SET email = 'tmp' WHERE id = 1; UPDATE u SET email = 'a@x' WHERE id = 2; \
             UPDATE u SET email = 'b@x' WHERE id = 1",
        )
        .await;
        for email in ["a@x", "b@x"] {
            let s = isolate(&kv, URL).open();
            let err = s
                .execute_batch(&format!("INSERT INTO u VALUES (3, '{email}')"))
                .await
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{email}: {err}");
        }
        common::run(&isolate(&kv, URL), "INSERT INTO u VALUES (3, 'tmp')").await;
    });
}
