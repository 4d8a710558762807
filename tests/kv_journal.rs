//! The crash-safe commit on kv:// (the commit record, `src/storage/kv/journal/`), proved by
//! fault injection with `FaultyKv` over `MemoryKv`.
//!
//! The matrix runs several units of work (an update with an insert, a delete, a schema change,
//! a new table, a drop, a one-key insert) and, for every call `k` of each one's commit:
//! - cuts the Worker off at call `k` (the call never answers and the commit future is dropped:
//!   no undo, no cleanup);
//! - makes KV stop answering from call `k` (every later call fails, undo included);
//! - fails call `k` for good: 429, 503 and timeout with every retry exhausted, and a permanent
//!   failure.
//!
//! Then, a minute later, another isolate reads the namespace: it must hold exactly the state
//! before the commit or exactly the state after it (every key and value, stamps aside: so no
//! orphan unique entry and no row without its entry), with no commit record left. The error
//! the commit returned must agree: `Ok` only if applied, "undone"/"nothing was written" only
//! if not, and "outcome unknown" whenever it cannot tell. A second matrix cuts the replay
//! itself off at every call and checks that running it again converges.
//!
//! Long on purpose: the matrix and its units of work read together.

mod common;
use common::{block_on, isolate};
use futures::FutureExt;
use gluebind::{
    kv::{format::layout::Layout, CallKind, FaultyKv, KvBackend, KvEntry, KvFailure, MemoryKv},
    params, Session, SessionFactory,
};
use std::rc::Rc;

type Kv = Rc<FaultyKv<MemoryKv>>;

const URL: &str = "kv://GLUEBIND_KV";
const TABLES: [&str; 4] = ["users", "notes", "tags", "memos"];
/// Past the settlement age (120 s).
const LATER_MS: u64 = 121_000;

fn namespace() -> Kv {
    Rc::new(FaultyKv::new(MemoryKv::new()))
}

/// A namespace with users 1 (ada) and 2 (bob) and one note; calls numbered from 1 again.
fn seeded() -> (Kv, SessionFactory) {
    let kv = namespace();
    let a = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             email TEXT NOT NULL UNIQUE); \
             CREATE INDEX ix_users_name ON users (name); \
             CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
             INSERT INTO users VALUES (1, 'ada', 'ada@x'), (2, 'bob', 'bob@x'); \
             INSERT INTO notes VALUES (1, 'hello')",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        // What the registry's teardown does after the response: the commit record goes.
        s.engine().flush().await.unwrap();
    });
    kv.reset_calls();
    (kv, a)
}

/// A copy of the namespace (its data and clock), to run several futures from one state.
fn copy(kv: &Kv) -> Kv {
    let inner = MemoryKv::new();
    for key in kv.inner().keys() {
        inner.poke(&key, kv.inner().peek(&key).unwrap());
    }
    inner.advance(kv.now_ms());
    Rc::new(FaultyKv::new(inner))
}

/// The units of work of the matrix.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// User 1 changes email and name, user 3 signs up: 2 row puts, 4 entry puts (unique and
    /// index), 2 entry deletes.
    UpdateAndInsert,
    /// User 2 leaves, a note is edited: row delete, 2 entry deletes, row put.
    Delete,
    /// The primary key is dropped: schema put, every row rewritten.
    AlterTable,
    /// A NULL-able column is added in place: the schema put alone.
    AlterInPlace,
    /// A new table with two rows.
    CreateTable,
    /// The users table goes: row deletes, entry deletes, schema delete.
    DropTable,
    /// One note: one key (journaled like any commit, so other commits see it).
    OneKey,
    /// An index on a small table: the schema put and an entry per row.
    CreateIndex,
    /// A column dropped in place: the schema put alone.
    DropInPlace,
    /// A table renamed in place: one schema deleted, one put (the rows stay).
    RenameTable,
}

const WORKS: [Work; 10] = [
    Work::UpdateAndInsert,
    Work::Delete,
    Work::AlterTable,
    Work::AlterInPlace,
    Work::CreateTable,
    Work::DropTable,
    Work::OneKey,
    Work::CreateIndex,
    Work::DropInPlace,
    Work::RenameTable,
];

async fn prepare(s: &Session, work: Work) {
    let sql = match work {
        Work::UpdateAndInsert => {
            "UPDATE users SET email = 'ada@new', name = 'ann' WHERE id = 1; \
             INSERT INTO users VALUES (3, 'cy', 'cy@x')"
        }
        Work::Delete => {
            "DELETE FROM users WHERE id = 2; UPDATE notes SET body = 'edited' WHERE id = 1"
        }
        Work::AlterTable => "ALTER TABLE users DROP COLUMN id",
        Work::AlterInPlace => "ALTER TABLE users ADD COLUMN age INTEGER NULL",
        Work::CreateTable => {
            "CREATE TABLE tags (id INTEGER PRIMARY KEY, tag TEXT UNIQUE); \
             INSERT INTO tags VALUES (1, 'a'), (2, 'b')"
        }
        Work::DropTable => "DROP TABLE users",
        Work::OneKey => "INSERT INTO notes VALUES (2, 'one key')",
        Work::CreateIndex => "CREATE INDEX ix_notes_body ON notes (body)",
        Work::DropInPlace => "ALTER TABLE users DROP COLUMN name",
        Work::RenameTable => "ALTER TABLE notes RENAME TO memos",
    };
    s.execute_batch(sql).await.unwrap();
}

/// What a namespace holds, stamps aside: every key with its value and metadata (without the
/// `"v"` versions, which differ from run to run), and every table's rows as a fresh isolate
/// reads them. Reading runs the reading isolate's replay first.
#[derive(Debug, Clone, PartialEq)]
struct State {
    rows: Vec<String>,
    keys: Vec<(String, String, String)>,
}

fn unversioned(json: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_owned();
    };
    if let Some(map) = value.as_object_mut() {
        map.remove("v");
        // Nor when an index was created.
        let indexes = map.get_mut("schema").and_then(|s| s.get_mut("indexes"));
        for index in indexes.and_then(|i| i.as_array_mut()).into_iter().flatten() {
            index.as_object_mut().map(|i| i.remove("created"));
        }
        if let Some(serde_json::Value::String(inner)) = map.get("r").cloned() {
            map.insert("r".into(), unversioned(&inner).into());
        }
    }
    value.to_string()
}

/// An index entry's key without its index's creation time (which differs from run to run).
fn uncreated(key: String) -> String {
    let Some((base, rest)) = key.split_once("/x/") else {
        return key;
    };
    let mut parts: Vec<String> = rest.split('/').map(str::to_owned).collect();
    if let Some((name, _created)) = parts.get(1).and_then(|p| p.rsplit_once('.')) {
        parts[1] = name.to_owned();
    }
    format!("{base}/x/{}", parts.join("/"))
}

fn state(kv: &Kv) -> State {
    let reader = isolate(kv, URL);
    let rows = block_on(async {
        let s = reader.open();
        let mut rows = Vec::new();
        for table in TABLES {
            match s
                .execute_batch(&format!("SELECT * FROM {table} ORDER BY id"))
                .await
            {
                Ok(mut r) => {
                    let r = r.remove(0).into_rows().unwrap();
                    rows.push(format!("{table}: {:?}", r.iter().collect::<Vec<_>>()));
                }
                Err(e) => rows.push(format!("{table}: {}", e.code())),
            }
        }
        rows
    });
    let keys = kv
        .inner()
        .keys()
        .into_iter()
        .map(|k| {
            let e = kv.inner().peek(&k).unwrap();
            let meta = e.metadata.map(|m| unversioned(&m.to_string()));
            (
                uncreated(k),
                unversioned(&e.value),
                meta.unwrap_or_default(),
            )
        })
        .collect();
    State { rows, keys }
}

fn journal(kv: &Kv) -> Vec<String> {
    let prefix = Layout::new("").journal_prefix();
    kv.inner()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

/// The state before and after a fault-free commit of `work`, and the calls the commit makes.
fn reference(work: Work) -> (State, State, Vec<CallKind>) {
    let (kv, a) = seeded();
    let before = state(&copy(&kv));
    kv.reset_calls();
    block_on(async {
        let s = a.open();
        prepare(&s, work).await;
        kv.reset_calls();
        s.commit().await.unwrap();
    });
    let calls = kv.log().into_iter().map(|(kind, _)| kind).collect();
    // The record's delete, after the response.
    block_on(a.open().engine().flush()).unwrap();
    (before, state(&copy(&kv)), calls)
}

#[derive(Debug, Clone)]
enum Fault {
    /// The Worker dies at call k: the call never answers, the commit future is dropped.
    Cut,
    /// KV stops answering from call k on (every call fails, undo included).
    Down,
    /// Call k fails with this, every retry too (`attempts` calls in a row).
    Fail(KvFailure, u64),
}

/// What a commit told its caller.
#[derive(Debug, PartialEq)]
enum Told {
    Applied,
    NotApplied,
    Unknown,
    Nothing, // cut off: nobody was told anything
}

fn run(work: Work, fault: &Fault, k: u64) -> (Told, Kv) {
    let (kv, a) = seeded();
    let told = block_on(async {
        let s = a.open();
        prepare(&s, work).await;
        kv.reset_calls();
        let result = match fault {
            Fault::Cut => {
                kv.hang_from(k);
                // One poll runs the commit up to the call that never answers (MemoryKv and
                // its clock answer at once); dropping the future is the Worker dying.
                match s.commit().now_or_never() {
                    None => return Told::Nothing,
                    Some(result) => result,
                }
            }
            Fault::Down => {
                kv.fail_from(k, KvFailure::Transient(format!("down from {k}")));
                s.commit().await
            }
            Fault::Fail(failure, attempts) => {
                for i in 0..*attempts {
                    kv.fail_call(k + i, failure.clone());
                }
                s.commit().await
            }
        };
        match result {
            Ok(_) => Told::Applied,
            Err(e) if e.to_string().contains("outcome unknown") => Told::Unknown,
            Err(e) => {
                assert_eq!(e.code(), "STORAGE", "{e}");
                Told::NotApplied
            }
        }
    });
    kv.heal();
    (told, kv)
}

#[test]
fn every_cut_and_every_failed_call_of_a_commit_is_all_or_nothing() {
    let faults = [
        Fault::Cut,
        Fault::Down,
        Fault::Fail(KvFailure::RateLimited("429 Too Many Requests".into()), 4),
        Fault::Fail(KvFailure::Transient("503 Service Unavailable".into()), 4),
        Fault::Fail(KvFailure::Transient("operation timed out".into()), 4),
        Fault::Fail(KvFailure::Permanent("400 Bad Request".into()), 1),
    ];
    let mut cases = 0;
    let mut seen = std::collections::BTreeMap::new();
    for work in WORKS {
        let (before, after, calls) = reference(work);
        assert_ne!(before, after, "{work:?}");
        for fault in &faults {
            for k in 1..=calls.len() as u64 {
                let (told, kv) = run(work, fault, k);
                let case = format!("{work:?}, {fault:?} at call {k} of {calls:?}: told {told:?}");
                // Within the minute, a record left behind is a commit in flight: left alone.
                let young = journal(&kv);
                let _ = state(&kv);
                assert_eq!(
                    journal(&kv),
                    young,
                    "{case}: a young record is not replayed"
                );
                kv.inner().advance(LATER_MS);
                let now = state(&kv);
                assert!(journal(&kv).is_empty(), "{case}: record left");
                let outcome = if now == before {
                    "before"
                } else if now == after {
                    "after"
                } else {
                    panic!("{case}: half-written:\n{now:#?}\nbefore {before:#?}\nafter {after:#?}")
                };
                match told {
                    Told::Applied => assert_eq!(outcome, "after", "{case}"),
                    Told::NotApplied => assert_eq!(outcome, "before", "{case}"),
                    Told::Unknown | Told::Nothing => {}
                }
                *seen.entry((format!("{told:?}"), outcome)).or_insert(0) += 1;
                cases += 1;
            }
        }
    }
    println!("{cases} matrix cases: {seen:?}");
    assert!(cases >= 200, "{cases}");
    // Every kind of ending happened somewhere in the matrix.
    for key in [
        ("Applied", "after"),
        ("NotApplied", "before"),
        ("Unknown", "after"),
        ("Unknown", "before"),
        ("Nothing", "after"),
        ("Nothing", "before"),
    ] {
        let key = (key.0.to_owned(), key.1);
        assert!(seen.contains_key(&key), "{key:?} never seen: {seen:?}");
    }
}

/// A settlement is cut off too (at each of its calls); the next one finishes it, the same way.
#[test]
fn a_replay_cut_off_at_any_call_converges_when_run_again() {
    let mut cases = 0;
    for work in WORKS {
        let (before, after, calls) = reference(work);
        // Commits cut after their record was put, with none, some or all of their writes made.
        for k in 2..=calls.len() as u64 {
            let (told, kv) = run(work, &Fault::Cut, k);
            assert_eq!(told, Told::Nothing);
            kv.inner().advance(LATER_MS);
            // Calls of a full settlement (and the reading that follows it), and its result.
            let probe = copy(&kv);
            let settled = state(&probe);
            assert!(
                settled == before || settled == after,
                "{work:?} k={k}: {settled:#?}"
            );
            let replay_calls = probe.calls();
            for j in 1..=replay_calls {
                let kv = copy(&kv);
                kv.hang_from(j);
                let reader = isolate(&kv, URL);
                let read = reader
                    .open()
                    .execute_batch("SELECT * FROM notes")
                    .now_or_never()
                    .map(|r| r.map(|_| ()));
                drop(reader);
                kv.heal();
                if read.is_some() {
                    assert!(journal(&kv).is_empty(), "{work:?} k={k} j={j}");
                }
                let now = state(&kv);
                assert!(now.rows == settled.rows, "{work:?} k={k} j={j}: {now:#?}");
                // A settlement cut off after announcing itself leaves its announcement, which
                // a later settlement removes (nothing to write).
                kv.inner().advance(LATER_MS);
                let now = state(&kv);
                assert!(now == settled, "{work:?} k={k} j={j}: {now:#?}");
                assert!(journal(&kv).is_empty(), "{work:?} k={k} j={j}");
                cases += 1;
            }
        }
    }
    println!("{cases} replay cases");
    assert!(cases > 50, "{cases}");
}

/// Within the minute, a record is a commit another isolate may still be applying: a commit
/// that would build on its rows is refused (CONFLICT), and retried a minute later it finds
/// the commit replayed. Deleting a row of a half-applied insert therefore cannot be undone
/// by the replay (the row would come back).
#[test]
fn commits_do_not_build_on_a_commit_still_being_applied() {
    // Cut after the record, row 1 and row 3 (calls 1-5: record, list, check, rows; the unique
    // entries, issued with them, never land).
    let (told, kv) = run(Work::UpdateAndInsert, &Fault::Cut, 6);
    assert_eq!(told, Told::Nothing);
    let b = isolate(&kv, URL);
    block_on(async {
        let s = b.open();
        // The half-applied row 3 is visible (KV has no transactions)...
        s.execute("DELETE FROM users WHERE id = $1", params![3i64])
            .await
            .unwrap();
        // ...but a commit building on it is refused while its record is young.
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert!(err.to_string().contains("still being applied"), "{err}");
        // A minute later the retry (a new session) finds the commit replayed and applies.
        kv.inner().advance(LATER_MS);
        let s = b.open();
        let n = s
            .execute("DELETE FROM users WHERE id = $1", params![3i64])
            .await
            .unwrap()
            .affected();
        assert_eq!(n, 1);
        s.commit().await.unwrap();
    });
    kv.inner().advance(LATER_MS);
    let now = state(&kv);
    let users = &now.rows[0];
    assert!(!users.contains("cy"), "row 3 did not come back: {users}");
    assert!(users.contains("ada@new"), "{users}");
    assert!(journal(&kv).is_empty());
    let cy = Layout::new("")
        .unique_key(
            "users",
            "email",
            &gluesql_core::prelude::Key::Str("cy@x".into()),
        )
        .unwrap();
    assert!(kv.inner().peek(&cy).is_none(), "no orphan entry for cy@x");
}

/// A commit that finds an abandoned record overlapping it settles it, then asks the session
/// to retry (its own isolate had not listed the journal for abandoned records yet).
#[test]
fn a_commit_replays_an_abandoned_record_it_would_build_on() {
    // Row 1 written (call 4), the rest cut off.
    let (told, kv) = run(Work::UpdateAndInsert, &Fault::Cut, 5);
    assert_eq!(told, Told::Nothing);
    kv.inner().advance(115_000);
    let b = isolate(&kv, URL);
    block_on(async {
        // B lists the journal now, while the record is young (115 s).
        let s = b.open();
        s.execute(
            "UPDATE users SET name = $1 WHERE id = $2",
            params!["ada2", 1i64],
        )
        .await
        .unwrap();
        // The record ages past two minutes; B's next listing for abandoned records is not due
        // before its commit (every 10 s), but its commit's own listing finds the record.
        kv.inner().advance(6_000);
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert!(err.to_string().contains("settled now"), "{err}");
        assert!(journal(&kv).is_empty());
        let s = b.open();
        s.execute(
            "UPDATE users SET name = $1 WHERE id = $2",
            params!["ada2", 1i64],
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
    });
    let rows = state(&kv).rows;
    assert!(
        rows[0].contains("ada2") && rows[0].contains("cy@x"),
        "{rows:?}"
    );
}

#[test]
fn a_corrupt_record_is_skipped_with_a_note_and_not_fetched_again() {
    let (kv, _a) = seeded();
    let key = Layout::new("").record_key(0xdead);
    kv.inner().poke(
        &key,
        KvEntry {
            value: "not json".into(),
            metadata: Some(serde_json::json!({"at": 0})),
        },
    );
    // Another database's key under a prefix that looks like ours is not a record at all.
    kv.inner().poke(
        &format!("{}s/users", Layout::new("").journal_prefix()),
        KvEntry {
            value: "{}".into(),
            metadata: None,
        },
    );
    kv.inner().advance(LATER_MS);
    let b = isolate(&kv, URL);
    block_on(async {
        assert_eq!(state_rows(&b.open()).await, 2);
        let notes = b.engine().kv_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("not a gluebind commit record"),
            "{notes:?}"
        );
        kv.inner().advance(LATER_MS);
        kv.reset_calls();
        assert_eq!(state_rows(&b.open()).await, 2);
        assert_eq!(
            kv.calls_of(CallKind::List),
            2,
            "the journal is listed again, then the table"
        );
        assert_eq!(
            kv.calls_of(CallKind::Get),
            1,
            "the schema; not the bad record"
        );
        assert_eq!(b.engine().kv_notes().len(), 1);
    });
    assert!(
        kv.inner().peek(&key).is_some(),
        "left for a human to look at"
    );
}

async fn state_rows(s: &Session) -> usize {
    s.execute_batch("SELECT * FROM users")
        .await
        .unwrap()
        .remove(0)
        .into_rows()
        .unwrap()
        .len()
}

/// A settlement runs inside a session's budget (at most 3/4 of it, the rest is the
/// session's): a large one is spread over several sessions, each continuing where the last
/// stopped.
#[test]
fn a_large_replay_is_spread_over_sessions_within_their_budget() {
    let kv = namespace();
    let a = isolate(&kv, URL);
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        let values: Vec<String> = (1..=60).map(|i| format!("({i}, 'n{i}')")).collect();
        s.execute_batch(&format!("INSERT INTO notes VALUES {}", values.join(",")))
            .await
            .unwrap();
        kv.reset_calls();
        kv.hang_from(5); // the record and one row made it (calls 1-4: record, list, check, row)
        assert!(s.commit().now_or_never().is_none());
        kv.heal();
    });
    kv.inner().advance(LATER_MS);
    let b = isolate(&kv, "kv://GLUEBIND_KV?max_ops=40");
    let mut sessions = 0;
    while !journal(&kv).is_empty() {
        sessions += 1;
        assert!(sessions < 10, "converges");
        block_on(async {
            let s = b.open();
            s.execute("SELECT * FROM notes WHERE id = $1", params![1i64])
                .await
                .unwrap();
            assert!(s.kv_ops() <= 40);
        });
        kv.inner().advance(10_000); // the next journal listing is due
    }
    assert!(sessions >= 2, "{sessions}");
    assert!(b.engine().kv_notes()[0].contains("stopped at the session's budget"));
    let n = block_on(async {
        isolate(&kv, URL)
            .open()
            .execute_batch("SELECT * FROM notes")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap()
            .len()
    });
    assert_eq!(n, 60);
}

#[test]
fn a_commit_too_large_for_one_record_is_refused_before_writing() {
    let (kv, a) = seeded();
    let before = state(&copy(&kv));
    block_on(async {
        let s = a.open();
        let big = "x".repeat(13 * 1024 * 1024);
        s.execute(
            "INSERT INTO notes VALUES (2, $1), (3, $2)",
            params![big.clone(), big],
        )
        .await
        .unwrap();
        kv.reset_calls();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("25 MiB"), "{err}");
        assert_eq!(kv.calls_of(CallKind::Write), 0);
    });
    assert_eq!(state(&copy(&kv)), before);
}

/// A commit never starts a write (nor an undo) 30 s after its record: past that a settlement
/// may be near, and two writers must not race. It reports an unknown outcome and leaves the
/// rest to the settlement.
#[test]
fn a_commit_past_its_deadline_stops_and_leaves_the_rest_to_the_replay() {
    let (kv, a) = seeded();
    let s = a.open();
    block_on(s.execute_batch(
        "INSERT INTO users VALUES (3, 'cy', 'cy@x'), (4, 'dee', 'dee@x'), (5, 'eve', 'eve@x')",
    ))
    .unwrap();
    kv.reset_calls();
    // The Worker is suspended at its check (call 3) for 31 s.
    kv.pause_at(3);
    let mut commit = Box::pin(s.commit());
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    while !kv.is_paused() {
        assert!(std::future::Future::poll(commit.as_mut(), &mut cx).is_pending());
    }
    kv.inner().advance(31_000);
    kv.resume();
    let result = loop {
        if let std::task::Poll::Ready(r) = std::future::Future::poll(commit.as_mut(), &mut cx) {
            break r;
        }
    };
    // Nothing was written yet: a definite failure, and the record goes.
    let err = result.unwrap_err();
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(err.to_string().contains("longer than 30 s"), "{err}");
    assert_eq!(
        kv.calls_of(CallKind::Put),
        1,
        "the record only: no write started late"
    );
    assert!(journal(&kv).is_empty());
    kv.inner().advance(LATER_MS);
    let rows = state(&kv).rows;
    assert!(!rows[0].contains("eve@x"), "{rows:?}");
}

/// The record's delete is cleanup, after the response: when it fails (or KV still shows the
/// record, a stale read), the commit is applied all the same. Its own isolate builds on it at
/// once, and so does another isolate that read what it wrote (the record shows the commit is
/// applied in full); a minute later a settlement removes it (nothing to write).
#[test]
fn a_record_left_by_an_applied_commit_only_delays_other_isolates() {
    let (kv, a) = seeded();
    block_on(async {
        let s = a.open();
        prepare(&s, Work::UpdateAndInsert).await;
        s.commit().await.unwrap();
        kv.fail_every(
            CallKind::Delete,
            KvFailure::Permanent("record delete".into()),
        );
        assert_eq!(s.engine().flush().await.unwrap(), 0);
        kv.heal();
        // The same isolate builds on its own commit at once.
        let s = a.open();
        s.execute(
            "UPDATE users SET name = 'cy2' WHERE id = 3",
            gluebind::NO_PARAMS,
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
    });
    assert!(!journal(&kv).is_empty());
    let b = isolate(&kv, URL);
    block_on(async {
        let s = b.open();
        s.execute(
            "UPDATE users SET name = 'ada2' WHERE id = 1",
            gluebind::NO_PARAMS,
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
    });
    kv.inner().advance(LATER_MS);
    let rows = state(&kv).rows;
    assert!(
        rows[0].contains("cy2") && rows[0].contains("ada@new") && rows[0].contains("ada2"),
        "{rows:?}"
    );
    assert!(journal(&kv).is_empty());
}
