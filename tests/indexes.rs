//! Secondary indexes through sessions, on every engine: `CREATE INDEX` is a schema change
//! committed like any other; every commit keeps the indexes in step with the rows (in the
//! session, the engine's committed state, the kv:// and do:// isolate caches); a read through
//! an index returns what a full scan returns; a serializable read through an index conflicts
//! with a row inserted into its range; and on kv:// an equality on a UNIQUE column loads the
//! value's owner and its row, not the table.

mod common;
use common::{block_on, pair, ENGINES};
use gluebind::{
    kv::{CountingKv, MemoryKv},
    params, Error, Isolation, Session, SessionFactory,
};
use std::rc::Rc;

async fn ids(s: &Session, sql: &str, value: i64) -> Vec<i64> {
    s.execute(sql, params![value])
        .await
        .unwrap()
        .into_rows()
        .unwrap()
        .iter()
        .map(|r| r.get::<i64>("id").unwrap())
        .collect()
}

/// Through the index and by a full scan (`age + 0` names no index), the same rows.
async fn same_as_a_scan(s: &Session, what: &str) {
    for value in [0, 10, 30, 60] {
        for (indexed, scanned) in [
            ("age = $1", "age + 0 = $1"),
            ("age > $1", "age + 0 > $1"),
            ("$1 >= age", "$1 >= age + 0"),
        ] {
            let through = ids(s, &format!("SELECT id FROM p WHERE {indexed}"), value).await;
            let all = ids(s, &format!("SELECT id FROM p WHERE {scanned}"), value).await;
            assert_eq!(through, all, "{what}: {indexed} with {value}");
        }
    }
}

fn seeded(engine: &str, isolation: Isolation) -> [SessionFactory; 2] {
    let factories = pair(engine, isolation);
    block_on(async {
        let s = factories[0].open();
        s.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY, email TEXT UNIQUE, age INTEGER NULL)",
        )
        .await
        .unwrap();
        for id in 1..=40i64 {
            let age = (id % 5 != 0).then_some(id % 7 * 10);
            s.execute(
                "INSERT INTO p VALUES ($1, $2, $3)",
                params![id, format!("u{id}@x"), age],
            )
            .await
            .unwrap();
        }
        // Created over rows already there: built from them.
        s.execute_batch("CREATE INDEX ix_p_age ON p (age)")
            .await
            .unwrap();
        s.commit().await.unwrap();
    });
    factories
}

#[test]
fn commits_keep_indexes_in_step_on_every_engine() {
    for engine in ENGINES {
        let factories = seeded(engine, Isolation::Snapshot);
        block_on(async {
            same_as_a_scan(&factories[1].open(), engine).await;
            // Commits from both isolates, each changing indexed values; every isolate's next
            // session answers through the index as a scan does.
            let changes = [
                "UPDATE p SET age = 30 WHERE id = 1",
                "UPDATE p SET age = NULL WHERE id = 3",
                "DELETE FROM p WHERE id = 6",
                "INSERT INTO p VALUES (41, 'u41@x', 30)",
                "UPDATE p SET age = age + 10 WHERE id < 20",
                "DELETE FROM p WHERE age + 0 = 40",
                "INSERT INTO p VALUES (42, 'u42@x', 0)",
            ];
            for (i, change) in changes.iter().enumerate() {
                // A stale do:// isolate cache conflicts once, then the retry sees the change.
                for attempt in 0.. {
                    let s = factories[i % 2].open();
                    s.execute_batch(change).await.unwrap();
                    same_as_a_scan(&s, &format!("{engine}, in the session of {change}")).await;
                    match s.commit().await {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) if engine == "do-isolates" && attempt == 0 => {}
                        Err(e) => panic!("{engine}: {change}: {e}"),
                    }
                }
                for f in &factories {
                    same_as_a_scan(&f.open(), &format!("{engine}, after {change}")).await;
                }
            }
            assert_eq!(
                ids(&factories[1].open(), "SELECT id FROM p WHERE age = $1", 30).await,
                [2, 9, 16, 24, 31, 38, 41],
                "{engine}"
            );
        });
    }
}

#[test]
fn a_row_inserted_into_an_index_range_conflicts_under_serializable_only() {
    for engine in ENGINES {
        for isolation in [Isolation::Snapshot, Isolation::Serializable] {
            let [a, b] = seeded(engine, isolation);
            block_on(async {
                // A rule on the people aged 60 or more, checked through the index.
                let reader = a.open();
                let old = ids(&reader, "SELECT id FROM p WHERE age >= $1", 60).await;
                assert_eq!(old, [6, 13, 27, 34], "{engine}");
                reader
                    .execute("UPDATE p SET email = 'x@x' WHERE id = $1", params![1i64])
                    .await
                    .unwrap();
                let writer = b.open();
                writer
                    .execute_batch("INSERT INTO p VALUES (50, 'u50@x', 70)")
                    .await
                    .unwrap();
                writer.commit().await.unwrap();
                let outcome = reader.commit().await;
                match isolation {
                    Isolation::Serializable => assert!(
                        matches!(outcome, Err(Error::Conflict { .. })),
                        "{engine}: {outcome:?}"
                    ),
                    _ => assert!(outcome.is_ok(), "{engine}: {outcome:?}"),
                }
            });
        }
    }
}

#[test]
fn index_statements_commit_as_schema_changes_and_errors_change_nothing() {
    for engine in ENGINES {
        let [a, b] = seeded(engine, Isolation::Snapshot);
        block_on(async {
            let s = a.open();
            for (sql, error) in [
                ("CREATE INDEX ix_sum ON p (age + 1)", "indexes one column"),
                ("CREATE INDEX ix_p_age ON p (email)", "already exists"),
                ("DROP INDEX p.nope", "does not exist"),
            ] {
                let err = s.execute_batch(sql).await.unwrap_err().to_string();
                assert!(err.contains(error), "{engine}: {sql}: {err}");
            }
            s.execute_batch("CREATE INDEX ix_p_email ON p (email)")
                .await
                .unwrap();
            s.execute_batch("DROP INDEX p.ix_p_age").await.unwrap();
            s.commit().await.unwrap();
            let glue_indexes = |s: Session| async move {
                let rows = s
                    .execute_batch("SELECT INDEX_NAME FROM GLUE_INDEXES WHERE TABLE_NAME = 'p'")
                    .await
                    .unwrap()
                    .remove(0)
                    .into_rows()
                    .unwrap();
                rows.iter()
                    .map(|r| r.get::<String>("INDEX_NAME").unwrap())
                    .filter(|n| !n.starts_with("PRIMARY"))
                    .collect::<Vec<_>>()
            };
            assert_eq!(glue_indexes(b.open()).await, ["ix_p_email"], "{engine}");
            same_as_a_scan(&b.open(), engine).await;
        });
    }
}

#[test]
fn on_kv_an_equality_on_a_unique_column_loads_two_keys_not_the_table() {
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let isolate = || common::isolate(&kv, "kv://GLUEBIND_KV");
    let a = isolate();
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
            .await
            .unwrap();
        let values: Vec<String> = (1..=300).map(|i| format!("({i}, 'u{i}@x')")).collect();
        s.execute_batch(&format!("INSERT INTO users VALUES {}", values.join(",")))
            .await
            .unwrap();
        s.commit().await.unwrap();

        // A cold isolate answering the demo's GET /users?email=: the page and its count.
        kv.reset();
        let s = isolate().open();
        for sql in [
            "SELECT * FROM users WHERE email = $1 ORDER BY id LIMIT 20",
            "SELECT COUNT(*) FROM users WHERE email = $1",
        ] {
            let rows = s.execute(sql, params!["u7@x"]).await.unwrap();
            assert_eq!(rows.into_rows().unwrap().len(), 1, "{sql}");
        }
        let ops = kv.ops();
        assert_eq!(
            (ops.gets + ops.bulk_gets, ops.lists),
            (3, 1),
            "the schema, the value's unique entry, its row; the journal's list: {ops:?}"
        );

        let b = isolate();
        // The schema and the journal first, so that what follows is the lookup alone.
        b.open()
            .execute("SELECT * FROM users WHERE id = $1", params![1i64])
            .await
            .unwrap();
        kv.reset();
        let s = b.open();
        let found = s
            .execute("SELECT id FROM users WHERE email = $1", params!["u212@x"])
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(found.get(0).unwrap().get::<i64>("id").unwrap(), 212);
        let none = s
            .execute("SELECT id FROM users WHERE email = $1", params!["nobody@x"])
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert!(none.is_empty());
        let ops = kv.ops();
        assert_eq!(
            (ops.gets + ops.bulk_gets, ops.lists),
            (3, 0),
            "owner + row, then the free value: {ops:?}"
        );
    });
}

#[test]
fn creating_an_index_stores_the_schema_alone_whatever_the_table_size() {
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let isolate = || common::isolate(&kv, "kv://GLUEBIND_KV");
    let a = isolate();
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        // 3 000 rows: a rewrite would need 3 000 puts, beyond a session's 900 operations.
        for chunk in 0..5i64 {
            let s = a.open();
            let values: Vec<String> = (1..=600)
                .map(|i| format!("({}, {})", chunk * 600 + i, i % 10))
                .collect();
            s.execute_batch(&format!("INSERT INTO big VALUES {}", values.join(",")))
                .await
                .unwrap();
            s.commit().await.unwrap();
        }
        kv.reset();
        let s = a.open();
        s.execute_batch("CREATE INDEX ix_big_n ON big (n)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let ops = kv.ops();
        assert!(ops.lists <= 1, "the journal only: {ops:?}");
        assert_eq!(ops.puts, 2, "the commit record and the schema: {ops:?}");
        // Every isolate answers through it (a cold one loads the table once, as a scan).
        for f in [&a, &isolate()] {
            let s = f.open();
            let rows = s
                .execute("SELECT id FROM big WHERE n = $1", params![7i64])
                .await
                .unwrap()
                .into_rows()
                .unwrap();
            assert_eq!(rows.len(), 300);
        }
    });
}

#[test]
fn an_index_created_while_rows_change_conflicts_or_follows_them() {
    for engine in ENGINES {
        let [a, b] = seeded(engine, Isolation::Snapshot);
        block_on(async {
            // A row written, then an index created by a session opened before: on memory://
            // and do:// the index is built over the rows as committed; on kv:// the row's
            // commit relied on the schema, so the index's commit conflicts once (either way,
            // the retry or the index itself holds the written row).
            let writer = a.open();
            writer
                .execute_batch("UPDATE p SET age = 99 WHERE id = 1")
                .await
                .unwrap();
            let indexer = b.open();
            indexer
                .execute_batch("CREATE INDEX ix_p_name ON p (email)")
                .await
                .unwrap();
            writer.commit().await.unwrap();
            match indexer.commit().await {
                Ok(_) => assert_ne!(engine, "kv"),
                Err(Error::Conflict { .. }) if engine == "kv" => {
                    let retry = b.open();
                    retry
                        .execute_batch("CREATE INDEX ix_p_name ON p (email)")
                        .await
                        .unwrap();
                    retry.commit().await.unwrap();
                }
                Err(e) => panic!("{engine}: {e}"),
            }
            let s = b.open();
            assert_eq!(ids(&s, "SELECT id FROM p WHERE age = $1", 99).await, [1]);
            same_as_a_scan(&s, engine).await;
            s.execute_batch("DROP INDEX p.ix_p_name").await.unwrap();
            s.commit().await.unwrap();
            // The other way round: the index first, then a write from a session opened before
            // conflicts (the table's schema changed under it), and its retry lands.
            let writer = a.open();
            writer
                .execute_batch("UPDATE p SET age = 98 WHERE id = 2")
                .await
                .unwrap();
            let indexer = b.open();
            indexer
                .execute_batch("CREATE INDEX ix_p_email ON p (email)")
                .await
                .unwrap();
            indexer.commit().await.unwrap();
            let outcome = writer.commit().await;
            assert!(
                matches!(outcome, Err(Error::Conflict { .. })),
                "{engine}: {outcome:?}"
            );
            // Retried, the write lands and both indexes answer for it (in the isolate that
            // committed it: another do:// isolate's cache may be older, up to its lifetime).
            let mut landed = None;
            for f in [&a, &b] {
                let s = f.open();
                s.execute_batch("UPDATE p SET age = 97 WHERE id = 2")
                    .await
                    .unwrap();
                if s.commit().await.is_ok() {
                    landed = Some(f);
                    break;
                }
            }
            let landed = landed.expect("the retry commits");
            for f in [&a, &b] {
                let s = f.open();
                same_as_a_scan(&s, engine).await;
            }
            {
                let s = landed.open();
                assert_eq!(
                    ids(&s, "SELECT id FROM p WHERE age = $1", 97).await,
                    [2],
                    "{engine}"
                );
                let rows = s
                    .execute("SELECT id FROM p WHERE email = $1", params!["u2@x"])
                    .await
                    .unwrap()
                    .into_rows()
                    .unwrap();
                assert_eq!(rows.len(), 1, "{engine}");
                same_as_a_scan(&s, engine).await;
            }
        });
    }
}

#[test]
fn a_schema_change_and_a_concurrent_index_change_conflict_on_every_engine() {
    for engine in ENGINES {
        for change in [
            "CREATE INDEX ix_p_email ON p (email)",
            "DROP INDEX p.ix_p_age",
        ] {
            let [a, b] = seeded(engine, Isolation::Snapshot);
            block_on(async {
                let alter = a.open();
                alter
                    .execute_batch("ALTER TABLE p ADD COLUMN x INTEGER NULL")
                    .await
                    .unwrap();
                let index = b.open();
                index.execute_batch(change).await.unwrap();
                index.commit().await.unwrap();
                // The ALTER would store the schema it read, without the index change.
                let outcome = alter.commit().await;
                assert!(
                    matches!(outcome, Err(Error::Conflict { .. })),
                    "{engine}, {change}: {outcome:?}"
                );
                let s = b.open();
                let names = s
                    .execute_batch(
                        "SELECT INDEX_NAME FROM GLUE_INDEXES WHERE INDEX_NAME LIKE 'ix_%'",
                    )
                    .await
                    .unwrap()
                    .remove(0)
                    .into_rows()
                    .unwrap()
                    .len();
                let expected = if change.starts_with("CREATE") { 2 } else { 0 };
                assert_eq!(names, expected, "{engine}, {change}");
            });
        }
    }
}

#[test]
fn a_column_added_with_a_default_is_indexed_in_its_type() {
    for engine in ENGINES {
        let [a, _] = pair(engine, Isolation::Snapshot);
        block_on(async {
            let s = a.open();
            s.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2); \
                 ALTER TABLE t ADD COLUMN x INT8 DEFAULT 1; INSERT INTO t VALUES (3, 1); \
                 CREATE INDEX ix_t_x ON t (x)",
            )
            .await
            .unwrap();
            s.commit().await.unwrap();
            let s = a.open();
            for sql in [
                "SELECT id FROM t WHERE x = 1",
                "SELECT id FROM t WHERE x >= 1",
            ] {
                let rows = s.execute_batch(sql).await.unwrap().remove(0);
                assert_eq!(rows.into_rows().unwrap().len(), 3, "{engine}: {sql}");
            }
            // The same for a UNIQUE column's own index.
            s.execute_batch(
                "CREATE TABLE u (id INTEGER PRIMARY KEY); INSERT INTO u VALUES (1); \
                 ALTER TABLE u ADD COLUMN k INT8 UNIQUE DEFAULT 7",
            )
            .await
            .unwrap();
            s.commit().await.unwrap();
            let s = a.open();
            let found = s
                .execute_batch("SELECT id FROM u WHERE k = 7")
                .await
                .unwrap()
                .remove(0);
            assert_eq!(found.into_rows().unwrap().len(), 1, "{engine}");
            let taken = s.execute_batch("INSERT INTO u VALUES (2, 7)").await;
            assert!(
                matches!(taken, Err(Error::Unique { .. })),
                "{engine}: {taken:?}"
            );
            // A default an INSERT would refuse fails the statement, with rows or without.
            s.execute_batch("CREATE TABLE e (id INTEGER PRIMARY KEY)")
                .await
                .unwrap();
            for table in ["t", "e"] {
                for column in [
                    "y INT8 DEFAULT 300",
                    "y INTEGER DEFAULT 1.5",
                    "y TEXT DEFAULT 1",
                    "y INT8 DEFAULT '1'",
                ] {
                    let sql = format!("ALTER TABLE {table} ADD COLUMN {column}");
                    let err = s.execute_batch(&sql).await;
                    assert!(err.is_err(), "{engine}: {sql}: {err:?}");
                }
            }
            // Old rows and new rows hold the same value: a DECIMAL default is exact.
            s.execute_batch(
                "ALTER TABLE t ADD COLUMN d DECIMAL DEFAULT 12345678.123456789; \
                 INSERT INTO t (id, x) VALUES (4, 2)",
            )
            .await
            .unwrap();
            let values: std::collections::BTreeSet<String> = s
                .execute_batch("SELECT CAST(d AS TEXT) AS d FROM t")
                .await
                .unwrap()
                .remove(0)
                .into_rows()
                .unwrap()
                .iter()
                .map(|r| r.get::<String>("d").unwrap())
                .collect();
            assert_eq!(
                values.into_iter().collect::<Vec<_>>(),
                ["12345678.123456789"],
                "{engine}"
            );
        });
    }
}

/// `ORDER BY` an indexed NOT NULL column reads the index in its order (no sort): the rows,
/// ties included, come back as GlueSQL's stable sort of a scan returns them (`ORDER BY score + 0`
/// sorts), with bounds on the column, other filters, limits and offsets, ascending and
/// descending, on every engine — also after writes, and in a session holding its own.
#[test]
fn order_by_an_indexed_column_reads_the_index_in_order_on_every_engine() {
    for engine in ENGINES {
        let [a, b] = pair(engine, Isolation::Serializable);
        block_on(async {
            let s = a.open();
            s.execute_batch(
                "CREATE TABLE g (id INTEGER PRIMARY KEY, score INTEGER NOT NULL, tag TEXT NULL); \
                 CREATE INDEX ix_g_score ON g (score); CREATE INDEX ix_g_tag ON g (tag)",
            )
            .await
            .unwrap();
            // Out-of-order ids, many ties, negative scores.
            let values: Vec<String> = (0..120i64)
                .map(|i| {
                    let id = (i * 37) % 120 + 1;
                    let tag = match i % 4 {
                        0 => "NULL".to_owned(),
                        n => format!("'t{n}'"),
                    };
                    format!("({id}, {}, {tag})", (i * 7) % 13 - 4)
                })
                .collect();
            s.execute_batch(&format!("INSERT INTO g VALUES {}", values.join(",")))
                .await
                .unwrap();
            s.commit().await.unwrap();
            let check = |s: Session, what: &'static str| async move {
                for filter in [
                    "",
                    "WHERE score > 2",
                    "WHERE score <= 0",
                    "WHERE tag = 't1'",
                    "WHERE score >= -2 AND tag <> 't1'",
                    "WHERE tag > 't1'",
                    "WHERE tag IS NULL OR score = 3",
                ] {
                    for order in ["", " DESC"] {
                        for page in [
                            "",
                            " LIMIT 7",
                            " LIMIT 5 OFFSET 11",
                            " LIMIT 200 OFFSET 100",
                        ] {
                            let through = format!(
                                "SELECT id, score FROM g {filter} ORDER BY score{order}{page}"
                            );
                            let sorted = format!(
                                "SELECT id, score FROM g {filter} ORDER BY score + 0{order}{page}"
                            );
                            let rows = |sql: String| {
                                let s = &s;
                                async move {
                                    let rows = s
                                        .execute_batch(&sql)
                                        .await
                                        .unwrap()
                                        .remove(0)
                                        .into_rows()
                                        .unwrap();
                                    rows.iter()
                                        .map(|r| {
                                            (
                                                r.get::<i64>("id").unwrap(),
                                                r.get::<i64>("score").unwrap(),
                                            )
                                        })
                                        .collect::<Vec<_>>()
                                }
                            };
                            assert_eq!(
                                rows(through.clone()).await,
                                rows(sorted).await,
                                "{engine}, {what}: {through}"
                            );
                            // By the NULL-able column: its NULLs where a sort puts them.
                            let by_tag = |key: &str| {
                                format!(
                                    "SELECT id, score FROM g {filter} ORDER BY {key}{order}{page}"
                                )
                            };
                            let through = by_tag("tag");
                            assert_eq!(
                                rows(through.clone()).await,
                                rows(by_tag("tag || ''")).await,
                                "{engine}, {what}: {through}"
                            );
                        }
                    }
                }
            };
            check(b.open(), "committed").await;
            let s = b.open();
            s.execute_batch(
                "UPDATE g SET score = 100 WHERE id = 5; DELETE FROM g WHERE id = 6; \
                 INSERT INTO g VALUES (500, -4, 't1'), (0, 3, NULL)",
            )
            .await
            .unwrap();
            check(s.clone(), "own writes").await;
            s.commit().await.unwrap();
            check(a.open(), "after a commit").await;
        });
    }
}

#[test]
fn updates_and_deletes_narrowed_by_an_index_change_what_a_scan_would_on_every_engine() {
    for engine in ENGINES {
        let factories = seeded(engine, Isolation::Snapshot);
        block_on(async {
            let s = factories[0].open();
            // The same rows in a table without the index: every statement scans it.
            s.execute_batch(
                "CREATE TABLE q (id INTEGER PRIMARY KEY, email TEXT UNIQUE, age INTEGER NULL); \
                 INSERT INTO q SELECT * FROM p",
            )
            .await
            .unwrap();
            let all = |t: &str| format!("SELECT * FROM {t} ORDER BY id");
            let rows = |s: &Session, t: &'static str| {
                let sql = all(t);
                let s = s.clone();
                async move {
                    let r = s.execute_batch(&sql).await.unwrap().remove(0);
                    format!("{:?}", r.into_rows().unwrap().into_values())
                }
            };
            for change in [
                "UPDATE {t} SET email = email || '!' WHERE age = 30",
                "UPDATE {t} SET age = age + 1 WHERE age >= 50",
                "DELETE FROM {t} WHERE age = 20",
                "UPDATE {t} SET age = NULL WHERE age < 10 AND id > 5",
                "DELETE FROM {t} WHERE email = 'u7@x'",
                "UPDATE {t} SET age = 99 WHERE email = 'u8@x'",
                "UPDATE {t} SET age = 30 WHERE age = 61",
                "UPDATE {t} SET age = 40 WHERE age = 30 AND id > 20",
                "DELETE FROM {t} WHERE age = 99 OR id = 2",
                "UPDATE {t} SET age = age WHERE age = 12345",
            ] {
                for t in ["p", "q"] {
                    s.execute_batch(&change.replace("{t}", t)).await.unwrap();
                }
                assert_eq!(
                    rows(&s, "p").await,
                    rows(&s, "q").await,
                    "{engine}: {change}"
                );
            }
            s.commit().await.unwrap();
            let s = factories[1].open();
            assert_eq!(
                rows(&s, "p").await,
                rows(&s, "q").await,
                "{engine}: committed"
            );
            same_as_a_scan(&s, engine).await;
        });
    }
}
