//! Tables renamed in place: `ALTER TABLE a RENAME TO b` stores the schema under its new name
//! and leaves the rows where they are (on `kv://` their keys keep the old name, which the
//! schema record says; the `do://` object moves them in its own storage in one statement),
//! so a rename is a small commit whatever the table's size. The table keeps its rows, UNIQUE
//! checks and indexes under the new name, in this isolate and in a cold one; the old name is
//! free for a new table whose rows never mix with the renamed one's.

mod common;
use common::{block_on, column, commit, dump, ids, run, scalar};
use gluebind::{
    durable::LocalObject,
    kv::{CountingKv, MemoryKv},
    Engine, Session, SessionFactory,
};
use std::rc::Rc;

/// A way to open isolates over one database: memory:// has one isolate; kv:// and do://
/// open a new one (a cold cache) on every call.
struct Db {
    engine: &'static str,
    kv: Rc<CountingKv<MemoryKv>>,
    object: Rc<LocalObject>,
    memory: SessionFactory,
}

impl Db {
    fn new(engine: &'static str) -> Self {
        Self {
            engine,
            kv: Rc::new(CountingKv::new(MemoryKv::new())),
            object: Rc::new(LocalObject::new()),
            memory: SessionFactory::builder()
                .bind(Engine::from_url("memory://").unwrap())
                .build()
                .unwrap(),
        }
    }

    fn isolate(&self) -> SessionFactory {
        let engine = match self.engine {
            "memory" => return self.memory.clone(),
            "kv" => Engine::with_kv("kv://GLUEBIND_KV", self.kv.clone()).unwrap(),
            _ => Engine::with_object("do://GLUEBIND_DB", self.object.clone()).unwrap(),
        };
        SessionFactory::builder().bind(engine).build().unwrap()
    }
}

const ENGINES: [&str; 3] = ["memory", "kv", "do"];

async fn emails(s: &Session, table: &str) -> Vec<String> {
    column(
        s,
        &format!("SELECT email FROM {table} ORDER BY id"),
        "email",
    )
    .await
}

/// `loser` and `winner` each run in a unit of work of its own from one snapshot; `winner`
/// commits first, and `loser`'s commit gets CONFLICT.
async fn loses_to(f: &SessionFactory, loser: &str, winner: &str) {
    let (l, w) = (f.open(), f.open());
    l.execute_batch(loser).await.unwrap();
    w.execute_batch(winner).await.unwrap();
    w.commit().await.unwrap();
    let err = l.commit().await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "{loser} after {winner}: {err}");
}

const PEOPLE: &str = "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, \
     city TEXT); CREATE INDEX ix_people_city ON people (city); \
     INSERT INTO people VALUES (1, 'a@x', 'paris'), (2, 'b@x', 'rome'), (3, 'c@x', 'paris')";

#[test]
fn a_table_renamed_in_place_keeps_its_rows_checks_and_index_and_frees_its_name() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(&f, PEOPLE).await;
            let info = run(&f, "ALTER TABLE people RENAME TO folks").await;
            assert_eq!(
                info.rows_written, 0,
                "{engine}: the rows stay where they are"
            );
            for f in [&f, &db.isolate()] {
                let s = f.open();
                assert_eq!(emails(&s, "folks").await, ["a@x", "b@x", "c@x"], "{engine}");
                assert_eq!(
                    ids(&s, "SELECT id FROM folks WHERE city = 'paris' ORDER BY id").await,
                    [1, 3],
                    "{engine}"
                );
                let err = s.execute_batch("SELECT * FROM people").await.unwrap_err();
                assert!(err.to_string().contains("people"), "{engine}: {err}");
            }
            // Written under the new name: UNIQUE still checks the stored rows' values.
            let s = db.isolate().open();
            let err = s
                .execute_batch("INSERT INTO folks VALUES (4, 'b@x', 'oslo')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");
            s.execute_batch(
                "INSERT INTO folks VALUES (4, 'd@x', 'oslo'); \
                 UPDATE folks SET city = 'oslo' WHERE id = 1; DELETE FROM folks WHERE id = 2",
            )
            .await
            .unwrap();
            commit(&s).await;

            // The old name takes a new table; its rows never mix with the renamed one's.
            let f = db.isolate();
            run(
                &f,
                "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, city TEXT); \
                 INSERT INTO people VALUES (1, 'b@x', 'lima'), (9, 'z@x', 'lima')",
            )
            .await;
            for f in [&f, &db.isolate()] {
                let s = f.open();
                assert_eq!(emails(&s, "folks").await, ["a@x", "c@x", "d@x"], "{engine}");
                assert_eq!(emails(&s, "people").await, ["b@x", "z@x"], "{engine}");
                assert_eq!(
                    ids(&s, "SELECT id FROM folks WHERE city = 'oslo' ORDER BY id").await,
                    [1, 4],
                    "{engine}"
                );
                assert_eq!(
                    scalar(&s, "SELECT COUNT(*) AS n FROM people WHERE email = 'a@x'").await,
                    0
                );
            }
            // Each table's UNIQUE values are its own.
            let s = db.isolate().open();
            s.execute_batch("INSERT INTO people VALUES (2, 'a@x', 'lima')")
                .await
                .unwrap();
            let err = s
                .execute_batch("INSERT INTO folks VALUES (5, 'a@x', 'x')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");
            commit(&s).await;

            // Renamed again, back and forth, then dropped: the other table stays whole.
            let f = db.isolate();
            run(&f, "ALTER TABLE folks RENAME TO tmp").await;
            run(&f, "ALTER TABLE tmp RENAME TO folks").await;
            run(&f, "DROP TABLE people").await;
            let s = db.isolate().open();
            assert_eq!(emails(&s, "folks").await, ["a@x", "c@x", "d@x"], "{engine}");
            assert!(s.execute_batch("SELECT * FROM people").await.is_err());
            run(&f, "DROP TABLE folks").await;
            if engine == "kv" {
                let left: Vec<String> = dump(db.kv.inner())
                    .into_iter()
                    .map(|(k, _)| k)
                    .filter(|k| !k.starts_with("gluebind/v1/c/"))
                    .collect();
                assert!(left.is_empty(), "{left:?}");
            }
        });
    }
}

/// A rename is a commit of its own: the table cannot be used under its new name before it
/// (its rows are still where the snapshot has them); a session that wrote the table first
/// renames it by rewriting it.
#[test]
fn a_renamed_table_is_used_after_its_commit() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(&f, PEOPLE).await;
            let s = f.open();
            s.execute_batch("ALTER TABLE people RENAME TO folks")
                .await
                .unwrap();
            let err = s.execute_batch("SELECT * FROM folks").await.unwrap_err();
            assert!(
                err.to_string().contains("commit the rename"),
                "{engine}: {err}"
            );
            s.commit().await.unwrap();
            let s = f.open();
            assert_eq!(emails(&s, "folks").await, ["a@x", "b@x", "c@x"]);

            let s = f.open();
            s.execute_batch("INSERT INTO folks VALUES (4, 'd@x', 'oslo')")
                .await
                .unwrap();
            s.execute_batch("ALTER TABLE folks RENAME TO people")
                .await
                .unwrap();
            assert_eq!(emails(&s, "people").await, ["a@x", "b@x", "c@x", "d@x"]);
            let info = s.commit().await.unwrap();
            assert!(info.rows_written >= 4, "{engine}: rewritten ({info:?})");
            let s = db.isolate().open();
            assert_eq!(emails(&s, "people").await, ["a@x", "b@x", "c@x", "d@x"]);
        });
    }
}

/// A rename serializes with the commits around it: a session that wrote the table under its
/// old name from an earlier snapshot conflicts; a table created under the new name meanwhile
/// makes the rename conflict; a rename to a name taken fails at once.
#[test]
fn a_rename_conflicts_with_writes_under_the_old_name_and_a_taken_new_name() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(&f, PEOPLE).await;
            loses_to(
                &f,
                "UPDATE people SET city = 'oslo' WHERE id = 1",
                "ALTER TABLE people RENAME TO folks",
            )
            .await;
            loses_to(
                &f,
                "ALTER TABLE folks RENAME TO things",
                "CREATE TABLE things (id INTEGER PRIMARY KEY)",
            )
            .await;

            let s = f.open();
            let err = s
                .execute_batch("ALTER TABLE folks RENAME TO things")
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("already exists"),
                "{engine}: {err}"
            );
            let s = db.isolate().open();
            assert_eq!(emails(&s, "folks").await, ["a@x", "b@x", "c@x"], "{engine}");
        });
    }
}

/// On kv:// a rename costs a few operations whatever the table's size, and a cold isolate
/// reads its rows (listed under the old name); on do:// it is one small request. An object of
/// an earlier release, which would commit nothing, refuses it as a conflict.
#[test]
fn a_rename_of_a_large_table_is_small_and_an_older_object_refuses_it() {
    for engine in ["kv", "do"] {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(
                &f,
                "CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER UNIQUE)",
            )
            .await;
            for chunk in 0..7 {
                run(
                    &f,
                    &format!(
                        "INSERT INTO big SELECT N - 1 + {o}, N - 1 + {o} FROM SERIES(300)",
                        o = chunk * 300
                    ),
                )
                .await;
            }
            let (requests, bytes) = (db.object.requests(), db.object.request_bytes());
            let s = f.open();
            s.execute_batch("ALTER TABLE big RENAME TO large")
                .await
                .unwrap();
            commit(&s).await;
            if engine == "kv" {
                assert!(s.kv_ops() <= 12, "{} KV operations", s.kv_ops());
            } else {
                let sent = db.object.request_bytes() - bytes;
                assert!(
                    sent < 4 * 1024,
                    "{sent} bytes in {} requests",
                    db.object.requests() - requests
                );
                db.object.restart();
            }
            let s = db.isolate().open();
            assert_eq!(scalar(&s, "SELECT COUNT(*) AS n FROM large").await, 2_100);
            assert_eq!(
                ids(&s, "SELECT id FROM large WHERE n = 2099").await,
                [2_099]
            );
            let err = s
                .execute_batch("INSERT INTO large VALUES (5000, 7)")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");

            if engine == "do" {
                db.object.as_older_object(true);
                let s = db.isolate().open();
                s.execute_batch("ALTER TABLE large RENAME TO big")
                    .await
                    .unwrap();
                assert_eq!(s.commit().await.unwrap_err().code(), "CONFLICT");
                db.object.as_older_object(false);
                let s = db.isolate().open();
                assert_eq!(scalar(&s, "SELECT COUNT(*) AS n FROM large").await, 2_100);
            }
        });
    }
}

/// The old name of a table renamed in an earlier commit may be dropped and created again in
/// one unit of work: the new table's rows never land where the renamed table keeps its own.
#[test]
fn a_table_created_where_a_dropped_one_kept_its_rows_keeps_its_own() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(
                &f,
                "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                 INSERT INTO a VALUES (1, 'x@')",
            )
            .await;
            run(&f, "ALTER TABLE a RENAME TO b").await;
            run(
                &f,
                "DROP TABLE b; CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                 INSERT INTO a VALUES (1, 'new'), (2, 'x@')",
            )
            .await;
            let s = db.isolate().open();
            assert_eq!(emails(&s, "a").await, ["new", "x@"], "{engine}");
            let err = s
                .execute_batch("INSERT INTO a VALUES (3, 'x@')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");
        });
    }
}

/// A name renamed away is not reused in the same unit of work (its rows are still there until
/// the rename commits): a swap takes two commits.
#[test]
fn a_name_renamed_away_is_reused_after_the_commit() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(&f, PEOPLE).await;
            run(
                &f,
                "CREATE TABLE people_new (id INTEGER PRIMARY KEY, email TEXT UNIQUE, city TEXT); \
                 INSERT INTO people_new VALUES (7, 'n@x', 'nice')",
            )
            .await;
            for reuse in [
                "CREATE TABLE people (id INTEGER PRIMARY KEY)",
                "ALTER TABLE people_new RENAME TO people",
            ] {
                let s = f.open();
                s.execute_batch("ALTER TABLE people RENAME TO people_old")
                    .await
                    .unwrap();
                let err = s.execute_batch(reuse).await.unwrap_err();
                assert!(
                    err.to_string().contains("commit the rename"),
                    "{engine}: {err}"
                );
                s.rollback().await.unwrap();
            }
            run(&f, "ALTER TABLE people RENAME TO people_old").await;
            run(&f, "ALTER TABLE people_new RENAME TO people").await;
            let s = db.isolate().open();
            assert_eq!(emails(&s, "people").await, ["n@x"], "{engine}");
            assert_eq!(emails(&s, "people_old").await, ["a@x", "b@x", "c@x"]);
        });
    }
}

/// kv://: an isolate whose view of the tables predates a rename (within its cache's
/// lifetime) and creates a table under the renamed table's old name conflicts instead of
/// taking the renamed table's keys as leftovers of a dropped table; its retry, from KV, stores
/// the new table elsewhere.
#[test]
fn on_kv_a_stale_isolate_cannot_take_a_renamed_tables_keys() {
    let db = Db::new("kv");
    let (x, y) = (db.isolate(), db.isolate());
    block_on(async {
        run(&y, "CREATE TABLE z (id INTEGER PRIMARY KEY)").await;
        run(
            &x,
            "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO a VALUES (1, 'x@'), (2, 'y@')",
        )
        .await;
        run(&x, "ALTER TABLE a RENAME TO b").await;
        let create = "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                      INSERT INTO a VALUES (5, 'x@')";
        let s = y.open();
        s.execute_batch(create).await.unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert!(err.to_string().contains("renamed in place"), "{err}");
        run(&y, create).await;
        let s = db.isolate().open();
        assert_eq!(emails(&s, "b").await, ["x@", "y@"]);
        assert_eq!(emails(&s, "a").await, ["x@"]);
    });
}

/// A table created and dropped in one unit of work under a name whose keys a renamed table
/// keeps commits, and leaves the renamed table's rows alone.
#[test]
fn a_table_created_and_dropped_where_a_renamed_one_keeps_its_rows_commits() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let f = db.isolate();
        block_on(async {
            run(&f, PEOPLE).await;
            run(&f, "ALTER TABLE people RENAME TO folks").await;
            run(
                &f,
                "CREATE TABLE people (id INTEGER PRIMARY KEY); INSERT INTO people VALUES (1); \
                 DROP TABLE people",
            )
            .await;
            let s = db.isolate().open();
            assert_eq!(emails(&s, "folks").await, ["a@x", "b@x", "c@x"], "{engine}");
        });
    }
}

/// kv://: the same stale view when the renamed table holds no row yet: the new table would
/// share its keys; the commit reads the schema records and conflicts.
#[test]
fn on_kv_a_stale_isolate_cannot_share_an_empty_renamed_tables_keys() {
    let db = Db::new("kv");
    let (x, y) = (db.isolate(), db.isolate());
    block_on(async {
        run(&y, "CREATE TABLE z (id INTEGER PRIMARY KEY)").await;
        run(
            &x,
            "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE)",
        )
        .await;
        run(&x, "ALTER TABLE a RENAME TO b").await;
        let create = "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                      INSERT INTO a VALUES (5, 'x@')";
        let s = y.open();
        s.execute_batch(create).await.unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        run(&y, create).await;
        let s = db.isolate().open();
        assert!(emails(&s, "b").await.is_empty());
        assert_eq!(emails(&s, "a").await, ["x@"]);
    });
}

/// kv://: an isolate that dropped a renamed table and creates one under its old name commits
/// while KV still shows the dropped table (its writes not visible yet): the new table's check
/// reads the schema records through the isolate's own log, as every other read of the check.
#[test]
fn on_kv_an_isolates_own_drop_counts_before_kv_shows_it() {
    use gluebind::kv::FaultyKv;
    let kv = Rc::new(FaultyKv::new(MemoryKv::new()));
    let f = SessionFactory::builder()
        .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
        .build()
        .unwrap();
    block_on(async {
        run(
            &f,
            "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO a VALUES (1, 'x@')",
        )
        .await;
        run(&f, "ALTER TABLE a RENAME TO b").await;
        kv.delay_writes(60_000);
        run(&f, "DROP TABLE b").await;
        assert!(kv.invisible_writes() > 0);
        let s = f.open();
        s.execute_batch(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO a VALUES (2, 'x@')",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        kv.publish();
        let s = SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .build()
            .unwrap()
            .open();
        assert_eq!(emails(&s, "a").await, ["x@"]);
        assert!(s.execute_batch("SELECT * FROM b").await.is_err());
    });
}
