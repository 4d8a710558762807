//! Columns changed in place. `ALTER TABLE … DROP COLUMN` of a column other than the primary
//! key stores the schema alone (the rows keep their values there, unread),
//! on every engine. SQL sees the table without the column from the commit on — in `SELECT *`,
//! the dictionaries, `INSERT` without a column list — and every other column keeps its values,
//! its UNIQUE checks and its index; a column added later under the same name starts empty. A
//! UNIQUE column added without a default is a schema-only commit too.

mod common;
use common::{block_on, column, dump, ids, pair, run, ENGINES};
use gluebind::{kv::MemoryKv, Engine, Isolation, SessionFactory, Value, NO_PARAMS};
use std::rc::Rc;

/// The columns and rows of `SELECT * FROM {table} ORDER BY id`.
async fn table(f: &SessionFactory, table: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let rows = f
        .open()
        .execute(&format!("SELECT * FROM {table} ORDER BY id"), NO_PARAMS)
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    (rows.columns().to_vec(), rows.into_values())
}

fn text(s: &str) -> Value {
    Value::Str(s.to_owned())
}

/// `people` with a column (`nick`) holding the same value twice before a UNIQUE one, and an
/// index after it: a drop that moved later columns would break both.
const PEOPLE: &str = "CREATE TABLE people (id INTEGER PRIMARY KEY, nick TEXT, age INTEGER, \
     email TEXT UNIQUE, city TEXT); \
     CREATE INDEX ix_people_city ON people (city); \
     INSERT INTO people VALUES (1, 'al', 30, 'a@x', 'paris'), (2, 'al', 31, 'b@x', 'rome'), \
     (3, 'cy', 40, 'c@x', 'paris')";

#[test]
fn a_dropped_column_is_gone_and_every_other_column_keeps_its_values_checks_and_index() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, PEOPLE).await;
            let info = run(&f, "ALTER TABLE people DROP COLUMN nick").await;
            assert_eq!(info.rows_written, 0, "{engine}: the rows stay as they are");
            let row = |id: i64, age: i64, email: &str, city: &str| {
                vec![Value::I64(id), Value::I64(age), text(email), text(city)]
            };
            for f in [&f, &g] {
                assert_eq!(
                    table(f, "people").await,
                    (
                        vec!["id".into(), "age".into(), "email".into(), "city".into()],
                        vec![
                            row(1, 30, "a@x", "paris"),
                            row(2, 31, "b@x", "rome"),
                            row(3, 40, "c@x", "paris")
                        ]
                    ),
                    "{engine}"
                );
            }
            let s = f.open();
            let listed: Vec<String> = column(
                &s,
                "SELECT COLUMN_NAME FROM GLUE_TABLE_COLUMNS WHERE TABLE_NAME = 'people' \
                 ORDER BY COLUMN_ID",
                "COLUMN_NAME",
            )
            .await;
            assert_eq!(listed, ["id", "age", "email", "city"], "{engine}");
            assert_eq!(
                ids(&s, "SELECT id FROM people WHERE city = 'paris' ORDER BY id").await,
                [1, 3],
                "{engine}: the index after the dropped column"
            );
            // Written in the visible shape; UNIQUE still checks the email column.
            s.execute_batch("INSERT INTO people VALUES (4, 50, 'd@x', 'oslo')")
                .await
                .unwrap();
            let err = s
                .execute_batch("INSERT INTO people VALUES (5, 20, 'a@x', 'oslo')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");
            s.execute_batch("UPDATE people SET city = 'oslo', age = 32 WHERE id = 1")
                .await
                .unwrap();
            s.commit().await.unwrap();
            assert_eq!(
                ids(
                    &f.open(),
                    "SELECT id FROM people WHERE city = 'oslo' ORDER BY id"
                )
                .await,
                [1, 4],
                "{engine}"
            );

            // The name is free again: dropping it fails (or, IF EXISTS, does nothing), and a
            // column added under it starts empty (NULL), not with the dropped values.
            let s = f.open();
            let err = s
                .execute_batch("ALTER TABLE people DROP COLUMN nick")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("nick"), "{engine}: {err}");
            run(&f, "ALTER TABLE people DROP COLUMN IF EXISTS nick").await;
            run(&f, "ALTER TABLE people ADD COLUMN nick TEXT NULL").await;
            let nicks: Vec<Value> = table(&f, "people")
                .await
                .1
                .into_iter()
                .map(|r| r[4].clone())
                .collect();
            assert_eq!(nicks, vec![Value::Null; 4], "{engine}");

            // A second drop, then a UNIQUE column added, every row written, the table renamed:
            // the rows keep their values, UNIQUE its checks.
            run(&f, "ALTER TABLE people DROP COLUMN age").await;
            run(&f, "ALTER TABLE people ADD COLUMN code INTEGER NULL UNIQUE").await;
            run(&f, "UPDATE people SET code = id * 10, nick = 'n' || id").await;
            run(&f, "ALTER TABLE people RENAME TO folks").await;
            let row = |id: i64, email: &str, city: &str| {
                vec![
                    Value::I64(id),
                    text(email),
                    text(city),
                    text(&format!("n{id}")),
                    Value::I64(id * 10),
                ]
            };
            assert_eq!(
                table(&f, "folks").await,
                (
                    vec![
                        "id".into(),
                        "email".into(),
                        "city".into(),
                        "nick".into(),
                        "code".into()
                    ],
                    vec![
                        row(1, "a@x", "oslo"),
                        row(2, "b@x", "rome"),
                        row(3, "c@x", "paris"),
                        row(4, "d@x", "oslo")
                    ]
                ),
                "{engine}"
            );
            let s = f.open();
            for duplicate in [
                "INSERT INTO folks VALUES (9, 'b@x', 'x', NULL, NULL)",
                "INSERT INTO folks VALUES (9, 'z@x', 'x', NULL, 20)",
            ] {
                let err = s.execute_batch(duplicate).await.unwrap_err();
                assert_eq!(err.code(), "UNIQUE", "{engine}: {duplicate}: {err}");
            }
        });
    }
}

/// A table whose only UNIQUE column follows a dropped one holding a value twice: before
/// columns were dropped in place, the drop rebuilt the unique index from the rows in their old
/// shape and failed with a UNIQUE error naming the wrong column. A UNIQUE column itself is
/// dropped in place too: its values no longer count, the other UNIQUE column's still do.
#[test]
fn dropping_a_column_before_or_of_a_unique_column_keeps_the_unique_checks_right() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(
                &f,
                "CREATE TABLE t (id INTEGER PRIMARY KEY, b INTEGER, c TEXT UNIQUE, d TEXT UNIQUE); \
                 INSERT INTO t VALUES (1, 5, 'x', 'p'), (2, 5, 'y', 'q')",
            )
            .await;
            run(&f, "ALTER TABLE t DROP COLUMN b").await;
            let info = run(&f, "ALTER TABLE t DROP COLUMN c").await;
            assert_eq!(info.rows_written, 0, "{engine}: in place");
            assert_eq!(
                table(&g, "t").await.1,
                [
                    vec![Value::I64(1), text("p")],
                    vec![Value::I64(2), text("q")]
                ],
                "{engine}"
            );
            let s = g.open();
            let err = s
                .execute_batch("INSERT INTO t VALUES (3, 'q')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{engine}: {err}");
            s.execute_batch("INSERT INTO t VALUES (3, 'x')")
                .await
                .unwrap();
            s.commit().await.unwrap();
        });
    }
}

/// Names starting as gluebind's names for dropped columns are refused wherever a statement
/// names a column, and nothing is written.
#[test]
fn names_of_dropped_columns_are_reserved() {
    for engine in ENGINES {
        let [f, _] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)").await;
            for sql in [
                "CREATE TABLE u (id INTEGER PRIMARY KEY, \"\u{1}x\" TEXT)",
                "ALTER TABLE t ADD COLUMN \"\u{1}x\" TEXT NULL",
                "ALTER TABLE t RENAME COLUMN a TO \"\u{1}x\"",
            ] {
                let s = f.open();
                let err = s.execute_batch(sql).await.unwrap_err();
                assert!(
                    err.to_string().contains("reserved"),
                    "{engine}: {sql}: {err}"
                );
            }
            let (columns, _) = table(&f, "t").await;
            assert_eq!(columns, ["id", "a"], "{engine}");
        });
    }
}

/// On kv:// a drop is one schema write whatever the table's size, and a row written since
/// holds NULL where the column was: its old value is gone from KV (the rows not written since
/// keep theirs, unread, until they are).
#[test]
fn on_kv_a_drop_writes_the_schema_and_rows_written_since_no_longer_hold_the_value() {
    let kv = Rc::new(MemoryKv::new());
    let f = SessionFactory::builder()
        .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
        .build()
        .unwrap();
    block_on(async {
        run(
            &f,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, secret TEXT, n INTEGER)",
        )
        .await;
        for chunk in 0..5 {
            let values: Vec<String> = (chunk * 300..(chunk + 1) * 300)
                .map(|id| format!("({id}, 'secret-{id}', {id})"))
                .collect();
            run(&f, &format!("INSERT INTO t VALUES {}", values.join(","))).await;
        }
        let s = f.open();
        s.execute_batch("ALTER TABLE t DROP COLUMN secret")
            .await
            .unwrap();
        s.commit().await.unwrap();
        assert!(s.kv_ops() <= 12, "{} KV operations", s.kv_ops());
        run(&f, "UPDATE t SET n = 0 WHERE id = 1499").await;
        // The rows as stored (the journal keeps a commit's before-images for its recovery).
        let rows: Vec<_> = dump(&kv)
            .into_iter()
            .filter(|(k, _)| k.starts_with("gluebind/v1/r/t/"))
            .collect();
        assert_eq!(rows.len(), 1_500);
        let stored = format!("{rows:?}");
        assert!(
            !stored.contains("secret-1499"),
            "the value written over is gone"
        );
        assert!(
            stored.contains("secret-1498"),
            "a row not written since keeps it"
        );
        assert_eq!(
            table(&f, "t").await.1[1499],
            [Value::I64(1499), Value::I64(0)]
        );
    });
}

/// A change that rewrites every row leaves the columns dropped in place out of the stored
/// schema and rows (kv://, where both can be read).
#[test]
fn a_rewrite_leaves_the_dropped_columns_out() {
    let kv = Rc::new(MemoryKv::new());
    let f = SessionFactory::builder()
        .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
        .build()
        .unwrap();
    block_on(async {
        run(
            &f,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, u INTEGER UNIQUE); \
             INSERT INTO t VALUES (1, 'gone', 10, 100), (2, 'gone', 20, 200)",
        )
        .await;
        run(&f, "ALTER TABLE t DROP COLUMN a").await;
        let stored = || {
            dump(&kv)
                .into_iter()
                .filter(|(k, _)| {
                    k.starts_with("gluebind/v1/s/t") || k.starts_with("gluebind/v1/r/t/")
                })
                .map(|(_, e)| e.value)
                .collect::<Vec<String>>()
                .join("\n")
        };
        assert!(stored().contains("gone"), "{}", stored());
        assert!(stored().contains("\\u0001"), "{}", stored());
        // The primary key's drop rewrites every row (rows are keyed by it).
        run(&f, "ALTER TABLE t DROP COLUMN id").await;
        assert!(!stored().contains("gone"), "{}", stored());
        assert!(!stored().contains("\\u0001"), "{}", stored());
        let rows = f
            .open()
            .execute("SELECT * FROM t ORDER BY b", NO_PARAMS)
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(
            (rows.columns().to_vec(), rows.into_values()),
            (
                vec!["b".to_owned(), "u".to_owned()],
                vec![
                    vec![Value::I64(10), Value::I64(100)],
                    vec![Value::I64(20), Value::I64(200)]
                ]
            )
        );
    });
}

/// A UNIQUE column added without a default holds NULL in every stored row — which repeats no
/// value, so no row needs a unique entry — and is added in place on every engine (the schema
/// alone, whatever the table's size); every value written from then on is checked, in this
/// isolate and another. With a default (a value every row would repeat) it is refused as
/// before, with the table unchanged.
#[test]
fn a_unique_column_without_a_default_is_added_in_place_and_checks_what_is_written() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, PEOPLE).await;
            let info = run(&f, "ALTER TABLE people ADD COLUMN badge TEXT UNIQUE").await;
            assert_eq!(info.rows_written, 0, "{engine}: the rows stay as they are");
            let badges = "SELECT badge FROM people ORDER BY id";
            for f in [&f, &g] {
                let badges: Vec<Option<String>> = column(&f.open(), badges, "badge").await;
                assert_eq!(badges, [None, None, None], "{engine}");
            }
            run(&f, "UPDATE people SET badge = 'b1' WHERE id = 1").await;
            run(&g, "UPDATE people SET badge = 'b2' WHERE id = 2").await;
            for (f, id, badge) in [(&f, 3, "b2"), (&g, 3, "b1"), (&g, 4, "b1")] {
                let s = f.open();
                let taken = match id {
                    3 => {
                        s.execute_batch(&format!(
                            "UPDATE people SET badge = '{badge}' WHERE id = 3"
                        ))
                        .await
                    }
                    _ => {
                        s.execute_batch(&format!(
                            "INSERT INTO people VALUES (4, 'di', 20, 'd@x', 'oslo', '{badge}')"
                        ))
                        .await
                    }
                };
                let taken = match taken {
                    Ok(_) => s.commit().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                assert!(
                    matches!(taken, Err(gluebind::Error::Unique { .. })),
                    "{engine}: {badge} is taken: {taken:?}"
                );
            }
            let s = g.open();
            s.execute_batch("UPDATE people SET badge = 'b3' WHERE id = 3")
                .await
                .unwrap();
            common::commit(&s).await;
            let badges: Vec<Option<String>> = column(&g.open(), badges, "badge").await;
            assert_eq!(
                badges,
                [Some("b1".into()), Some("b2".into()), Some("b3".into())],
                "{engine}"
            );
            // A default every stored row would repeat is refused, the table unchanged.
            let s = f.open();
            let err = s
                .execute_batch("ALTER TABLE people ADD COLUMN code TEXT UNIQUE DEFAULT 'x'")
                .await;
            assert!(err.is_err(), "{engine}: {err:?}");
            drop(s);
            let (columns, _) = table(&g, "people").await;
            assert_eq!(columns.len(), 6, "{engine}: {columns:?}");
        });
    }
}

/// A column added with a DEFAULT of the current time (`NOW()`) gives every stored row the value
/// the `ALTER` evaluated — as a rewrite would write it — recorded in the stored schema instead
/// of in every row: on every engine a schema-only commit, and the rows read that value in every
/// isolate and at every read (not the time of the read); rows inserted later get their own.
/// SQL does not see the record (no column comment), and a comment that would look like one is
/// refused.
#[test]
fn a_column_defaulting_to_now_is_added_in_place_with_the_time_of_the_alter() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, PEOPLE).await;
            let now = |f: &SessionFactory| {
                let s = f.open();
                async move {
                    column::<Value>(&s, "SELECT NOW() AS t", "t")
                        .await
                        .remove(0)
                }
            };
            let before = now(&f).await;
            let info = run(
                &f,
                "ALTER TABLE people ADD COLUMN seen TIMESTAMP DEFAULT NOW()",
            )
            .await;
            let after = now(&f).await;
            assert_eq!(info.rows_written, 0, "{engine}: the rows stay as they are");
            let seen = |f: &SessionFactory| {
                let s = f.open();
                async move { column::<Value>(&s, "SELECT seen FROM people ORDER BY id", "seen").await }
            };
            let first = seen(&f).await;
            assert_eq!(first.len(), 3, "{engine}");
            assert!(
                first.iter().all(|t| *t == first[0]),
                "{engine}: one value: {first:?}"
            );
            let time = |v: &Value| match v {
                Value::Timestamp(t) => *t,
                other => panic!("{engine}: {other:?}"),
            };
            assert!(
                time(&before) <= time(&first[0]) && time(&first[0]) <= time(&after),
                "{engine}: the ALTER's time"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
            assert_eq!(
                seen(&g).await,
                first,
                "{engine}: the same in another isolate, later"
            );
            run(&g, "INSERT INTO people (id, nick, age, email, city) VALUES (4, 'di', 20, 'd@x', 'oslo')").await;
            let all = seen(&g).await;
            assert!(
                time(&all[3]) > time(&first[0]),
                "{engine}: a row inserted later: its own time"
            );
            assert_eq!(all[..3], first[..], "{engine}");
            let comments: Vec<Option<String>> = column(
                &f.open(),
                "SELECT COMMENT FROM GLUE_TABLE_COLUMNS WHERE TABLE_NAME = 'people' AND \
                 COLUMN_NAME = 'seen'",
                "COMMENT",
            )
            .await;
            assert_eq!(comments, [None], "{engine}");
            let err = f
                .open()
                .execute_batch("ALTER TABLE people ADD COLUMN x INTEGER COMMENT '\u{1}fill 1'")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("U+0001"), "{engine}: {err}");
        });
    }
}

/// `DROP TABLE … CASCADE` takes the foreign keys of the tables that referred to the dropped
/// one, and nothing else: their stored columns stay as they are — a column dropped in place
/// stays hidden, a column's recorded default still reads, UNIQUE still checks.
#[test]
fn a_cascading_drop_leaves_the_referring_tables_columns_as_stored() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(
                &f,
                "CREATE TABLE owners (id INTEGER PRIMARY KEY); \
                 INSERT INTO owners VALUES (1); \
                 CREATE TABLE pets (id INTEGER PRIMARY KEY, owner INTEGER, nick TEXT, \
                 tag TEXT UNIQUE, FOREIGN KEY (owner) REFERENCES owners (id)); \
                 INSERT INTO pets VALUES (1, 1, 'rex', 't1'), (2, 1, 'fido', 't2')",
            )
            .await;
            run(&f, "ALTER TABLE pets DROP COLUMN nick").await;
            run(
                &f,
                "ALTER TABLE pets ADD COLUMN seen TIMESTAMP DEFAULT NOW()",
            )
            .await;
            let before = table(&f, "pets").await;
            let info = run(&f, "DROP TABLE owners CASCADE").await;
            assert_eq!(info.rows_written, 0, "{engine}: no row of pets rewritten");
            for f in [&f, &g] {
                assert_eq!(table(f, "pets").await, before, "{engine}");
            }
            assert_eq!(before.0, ["id", "owner", "tag", "seen"], "{engine}");
            let s = g.open();
            let err = s
                .execute_batch("INSERT INTO pets (id, owner, tag) VALUES (3, 9, 't1')")
                .await;
            let err = match err {
                Ok(_) => s.commit().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(
                matches!(err, Err(gluebind::Error::Unique { .. })),
                "{engine}: {err:?}"
            );
        });
    }
}

/// The UNIQUE outcome of `sql` run and committed in a new session of `f`: `Ok` when it
/// committed, else the error's code.
async fn outcome(f: &SessionFactory, sql: &str) -> Result<(), String> {
    let s = f.open();
    let done = match s.execute_batch(sql).await {
        Ok(_) => s.commit().await.map(|_| ()),
        Err(e) => Err(e),
    };
    done.map_err(|e| e.code().to_owned())
}

/// `ALTER TABLE … RENAME COLUMN` of a UNIQUE column is a schema-only commit on every engine
/// (kv:// keeps its entries under the name they were stored under), and the column goes on
/// checking its values under its new name, after a second rename too, also in an isolate that
/// loaded nothing before.
#[test]
fn a_unique_column_renamed_in_place_keeps_checking_its_values() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(
                &f,
                "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER); \
                 INSERT INTO t VALUES (1, 'a@x', 1), (2, 'b@x', 2)",
            )
            .await;
            let info = run(&f, "ALTER TABLE t RENAME COLUMN email TO mail").await;
            assert_eq!(info.rows_written, 0, "{engine}: in place");
            let taken = Err("UNIQUE".to_owned());
            let dup = outcome(&f, "INSERT INTO t (id, mail, n) VALUES (3, 'a@x', 3)").await;
            assert_eq!(dup, taken, "{engine}");
            run(&f, "UPDATE t SET mail = 'c@x' WHERE id = 1").await;
            let freed = outcome(&f, "INSERT INTO t (id, mail, n) VALUES (3, 'a@x', 3)").await;
            assert_eq!(freed, Ok(()), "{engine}: a value given up is free");
            let info = run(&f, "ALTER TABLE t RENAME COLUMN mail TO email").await;
            assert_eq!(info.rows_written, 0, "{engine}");
            for (h, sql) in [
                (&f, "INSERT INTO t VALUES (4, 'c@x', 4)"),
                (&f, "UPDATE t SET email = 'b@x' WHERE id = 3"),
                (&g, "UPDATE t SET email = 'a@x' WHERE id = 2"),
                (&g, "INSERT INTO t VALUES (4, 'b@x', 4)"),
            ] {
                assert_eq!(outcome(h, sql).await, taken, "{engine}: {sql}");
            }
            assert_eq!(
                column::<String>(&g.open(), "SELECT email FROM t ORDER BY id", "email").await,
                ["c@x", "b@x", "a@x"],
                "{engine}"
            );
        });
    }
}

/// kv://: a UNIQUE column added under the name another column's entries are stored under (a
/// UNIQUE column renamed in place away from it) stores its own apart; each column checks its
/// own values, also read from KV by an isolate that loaded nothing before.
#[test]
fn on_kv_a_column_added_under_a_renamed_unique_columns_old_name_keeps_its_entries_apart() {
    let kv = Rc::new(MemoryKv::new());
    let cold = || {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .build()
            .unwrap()
    };
    block_on(async {
        run(
            &cold(),
            "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO t VALUES (1, 'a@x'), (2, 'b@x')",
        )
        .await;
        run(&cold(), "ALTER TABLE t RENAME COLUMN email TO mail").await;
        let dup = outcome(&cold(), "INSERT INTO t VALUES (3, 'a@x')").await;
        assert_eq!(dup, Err("UNIQUE".to_owned()), "renamed, cold");
        let info = run(&cold(), "ALTER TABLE t ADD COLUMN email TEXT UNIQUE").await;
        assert_eq!(info.rows_written, 0, "in place");
        // The same value in the other column is no duplicate; in the same column it is.
        assert_eq!(
            outcome(&cold(), "UPDATE t SET email = 'b@x' WHERE id = 1").await,
            Ok(())
        );
        let taken = Err("UNIQUE".to_owned());
        let warm = cold();
        for sql in [
            "INSERT INTO t VALUES (3, 'b@x', 'z@x')",
            "INSERT INTO t VALUES (3, 'z@x', 'b@x')",
        ] {
            assert_eq!(outcome(&cold(), sql).await, taken, "{sql}");
            assert_eq!(outcome(&warm, sql).await, taken, "{sql}");
            assert_eq!(outcome(&warm, sql).await, taken, "{sql}, warm");
        }
        let entries: Vec<String> = dump(&kv)
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("gluebind/v1/u/t/"))
            .collect();
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(
            entries.iter().any(|k| k.contains("/email.1/")),
            "{entries:?}"
        );
        assert_eq!(
            outcome(&cold(), "INSERT INTO t VALUES (3, 'z@x', 'y@x')").await,
            Ok(())
        );
    });
}

/// A UNIQUE column dropped in place: its values no longer count (kv://: its entries stay,
/// never taken again), and a UNIQUE column added later under its name starts empty and checks
/// its own values only, also read from KV by an isolate that loaded nothing before.
#[test]
fn a_unique_column_dropped_in_place_frees_its_values() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(
                &f,
                "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
                 INSERT INTO t VALUES (1, 'a@x'), (2, 'b@x')",
            )
            .await;
            let info = run(&f, "ALTER TABLE t DROP COLUMN email").await;
            assert_eq!(info.rows_written, 0, "{engine}: in place");
            run(&f, "ALTER TABLE t ADD COLUMN email TEXT UNIQUE").await;
            for sql in [
                "INSERT INTO t VALUES (3, 'a@x')",
                "UPDATE t SET email = 'b@x' WHERE id = 1",
            ] {
                assert_eq!(outcome(&f, sql).await, Ok(()), "{engine}: {sql}");
            }
            for (h, sql) in [
                (&g, "INSERT INTO t VALUES (4, 'a@x')"),
                (&g, "UPDATE t SET email = 'b@x' WHERE id = 2"),
                (&f, "UPDATE t SET email = 'a@x' WHERE id = 2"),
            ] {
                let taken = Err("UNIQUE".to_owned());
                assert_eq!(outcome(h, sql).await, taken, "{engine}: {sql}");
            }
        });
    }
    let kv = Rc::new(MemoryKv::new());
    let cold = || {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .build()
            .unwrap()
    };
    block_on(async {
        run(
            &cold(),
            "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE); \
             INSERT INTO t VALUES (1, 'a@x'), (2, 'b@x')",
        )
        .await;
        run(&cold(), "ALTER TABLE t DROP COLUMN email").await;
        run(&cold(), "ALTER TABLE t ADD COLUMN email TEXT UNIQUE").await;
        let ok = outcome(&cold(), "INSERT INTO t VALUES (3, 'a@x')").await;
        assert_eq!(ok, Ok(()), "kv, cold: an old entry is not taken");
        let dup = outcome(&cold(), "UPDATE t SET email = 'a@x' WHERE id = 2").await;
        assert_eq!(dup, Err("UNIQUE".to_owned()), "kv, cold");
    });
}

/// A column added with a random DEFAULT (`GENERATE_UUID()`) is added in place: the `ALTER`
/// evaluates it once — the value GlueSQL's rewrite wrote in every row — and the rows stored
/// before read that value; rows inserted later get their own.
#[test]
fn a_column_with_a_random_default_is_added_in_place_with_one_value() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, PEOPLE).await;
            let info = run(
                &f,
                "ALTER TABLE people ADD COLUMN tag UUID DEFAULT GENERATE_UUID()",
            )
            .await;
            assert_eq!(info.rows_written, 0, "{engine}: in place");
            let tags = |f: &SessionFactory| {
                let s = f.open();
                async move { column::<Value>(&s, "SELECT tag FROM people ORDER BY id", "tag").await }
            };
            let first = tags(&f).await;
            assert!(matches!(first[0], Value::Uuid(_)), "{engine}: {first:?}");
            assert!(first.iter().all(|t| *t == first[0]), "{engine}: {first:?}");
            assert_eq!(tags(&g).await, first, "{engine}: in another isolate");
            run(&g, "INSERT INTO people (id, nick, age, email, city) VALUES (4, 'di', 20, 'd@x', 'oslo')").await;
            let all = tags(&g).await;
            assert!(
                matches!(all[3], Value::Uuid(_)) && all[3] != first[0],
                "{engine}: {all:?}"
            );
        });
    }
}

/// A column with a comment of its own is added in place with a recorded default too: SQL sees
/// its comment, the rows read the recorded value; a comment holding gluebind's mark anywhere
/// is refused.
#[test]
fn a_commented_column_is_added_in_place_and_keeps_its_comment() {
    for engine in ENGINES {
        let [f, g] = pair(engine, Isolation::Serializable);
        block_on(async {
            run(&f, PEOPLE).await;
            let info = run(
                &f,
                "ALTER TABLE people ADD COLUMN seen TIMESTAMP DEFAULT NOW() COMMENT 'first seen'",
            )
            .await;
            assert_eq!(info.rows_written, 0, "{engine}: in place");
            let comments: Vec<Option<String>> = column(
                &g.open(),
                "SELECT COMMENT FROM GLUE_TABLE_COLUMNS WHERE TABLE_NAME = 'people' AND \
                 COLUMN_NAME = 'seen'",
                "COMMENT",
            )
            .await;
            assert_eq!(comments, [Some("first seen".to_owned())], "{engine}");
            let seen: Vec<Value> =
                column(&g.open(), "SELECT seen FROM people ORDER BY id", "seen").await;
            assert!(
                matches!(seen[0], Value::Timestamp(_)) && seen.iter().all(|v| *v == seen[0]),
                "{engine}: {seen:?}"
            );
            let err = f
                .open()
                .execute_batch("ALTER TABLE people ADD COLUMN x INTEGER COMMENT 'a\u{1}fill 1'")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("U+0001"), "{engine}: {err}");
        });
    }
}

/// kv://: a change that rewrites every row after UNIQUE columns were renamed or dropped in
/// place stores the entries under the columns' names again, and a stale entry of a dropped
/// column — whose position the rewrite gives to another column — takes no value: the rewrite's
/// claims are judged by the rows the session read in full.
#[test]
fn on_kv_a_rewrite_after_unique_columns_changed_in_place_keeps_the_checks_right() {
    let kv = Rc::new(MemoryKv::new());
    let cold = || {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .build()
            .unwrap()
    };
    let entries = |table: &str, column: &str| {
        dump(&kv)
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("gluebind/v1/u/{table}/{column}/")))
            .count()
    };
    let taken = Err("UNIQUE".to_owned());
    block_on(async {
        run(
            &cold(),
            "CREATE TABLE t (email TEXT UNIQUE, id INTEGER PRIMARY KEY); \
             INSERT INTO t VALUES ('a@x', 1), ('b@x', 2); \
             CREATE TABLE u (code TEXT UNIQUE, n INTEGER, id INTEGER PRIMARY KEY); \
             INSERT INTO u VALUES ('c1', 1, 1), ('c2', 2, 2)",
        )
        .await;
        run(&cold(), "ALTER TABLE t DROP COLUMN email").await;
        run(&cold(), "ALTER TABLE t ADD COLUMN email TEXT UNIQUE").await;
        assert_eq!(entries("t", "email"), 2, "kept in place");
        // Row 1 takes 'b@x', which the dropped column's stale entry names row 2 for: after
        // the rewrite the new column sits where the dropped one was in the stored rows.
        let s = cold().open();
        s.execute_batch("UPDATE t SET email = 'b@x' WHERE id = 1; ALTER TABLE t DROP COLUMN id")
            .await
            .unwrap();
        common::commit(&s).await;
        assert_eq!(
            outcome(&cold(), "INSERT INTO t VALUES ('b@x')").await,
            taken
        );
        assert_eq!(
            outcome(&cold(), "INSERT INTO t VALUES ('a@x')").await,
            Ok(())
        );

        run(&cold(), "ALTER TABLE u RENAME COLUMN code TO tag").await;
        assert_eq!((entries("u", "code"), entries("u", "tag")), (2, 0));
        run(&cold(), "ALTER TABLE u DROP COLUMN id").await;
        assert_eq!(
            (entries("u", "code"), entries("u", "tag")),
            (0, 2),
            "under the name again"
        );
        assert_eq!(
            outcome(&cold(), "INSERT INTO u VALUES ('c1', 9)").await,
            taken
        );
        assert_eq!(
            outcome(&cold(), "INSERT INTO u VALUES ('c9', 9)").await,
            Ok(())
        );
    });
}
