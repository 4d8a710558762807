//! `DROP TABLE` of a kv:// table too large to delete in one commit (its rows, their UNIQUE and
//! index entries: more KV writes than a session's budget) drops it in place: the schema record
//! moves to a name no statement gives, and the rows stay in KV, never read again. SQL no longer
//! sees the table, in this isolate and in a cold one; a table created later under its name
//! stores its rows apart and starts empty. A smaller table is deleted, rows and all.

mod common;
use common::{block_on, column, dump, ids, run, scalar};
use gluebind::{kv::MemoryKv, SessionFactory, NO_PARAMS};
use std::rc::Rc;

/// A session budget of 100 KV operations: a table of more than 14 rows with a UNIQUE column and
/// an index is too large to delete in one commit (44 keys: 4/9 of the budget).
const SMALL_BUDGET: &str = "kv://GLUEBIND_KV?max_ops=100";

fn isolate(kv: &Rc<MemoryKv>, url: &str) -> SessionFactory {
    common::isolate(kv, url)
}

/// `people` with `rows` rows (a UNIQUE email, an index on city), seeded in commits the default
/// budget allows.
fn seeded(rows: i64) -> Rc<MemoryKv> {
    let kv = Rc::new(MemoryKv::new());
    let f = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        run(
            &f,
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, city TEXT); \
             CREATE INDEX ix_people_city ON people (city)",
        )
        .await;
        for first in (0..rows).step_by(100) {
            let s = f.open();
            s.execute(
                "INSERT INTO people SELECT N - 1 + $1, 'p' || CAST(N - 1 + $1 AS TEXT) || '@x', \
                 'oslo' FROM SERIES($2)",
                gluebind::params![first, (rows - first).min(100)],
            )
            .await
            .unwrap();
            common::commit(&s).await;
        }
    });
    kv
}

fn stored_rows(kv: &MemoryKv, table: &str) -> usize {
    let prefix = format!("gluebind/v1/r/{table}/");
    dump(kv)
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .count()
}

#[test]
fn a_large_kv_table_is_dropped_in_place_and_a_new_one_of_its_name_starts_empty() {
    let kv = seeded(60);
    let f = isolate(&kv, SMALL_BUDGET);
    block_on(async {
        let s = f.open();
        s.execute_batch("DROP TABLE people").await.unwrap();
        let info = common::commit(&s).await;
        assert_eq!(info.rows_written, 0, "in place");
        assert!(s.kv_ops() <= 20, "{} KV operations", s.kv_ops());
        assert_eq!(stored_rows(&kv, "people"), 60, "the rows stay, unread");
        for g in [&f, &isolate(&kv, SMALL_BUDGET)] {
            let s = g.open();
            let err = s
                .execute("SELECT * FROM people", NO_PARAMS)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("people"), "{err}");
            let tables: Vec<String> =
                column(&s, "SELECT TABLE_NAME FROM GLUE_TABLES", "TABLE_NAME").await;
            assert!(tables.is_empty(), "{tables:?}");
        }
        // Not even by the name it goes by now (which no statement may give a table).
        let hidden: gluebind::kv::format::layout::SchemaRecord = dump(&kv)
            .into_iter()
            .find(|(k, _)| k.starts_with("gluebind/v1/s/%01dropped"))
            .map(|(k, e)| gluebind::kv::format::layout::decode(&k, &e.value).unwrap())
            .expect("the schema record under the hidden name");
        let hidden = hidden.schema.table_name;
        for sql in [
            format!("SELECT * FROM \"{hidden}\""),
            format!("ALTER TABLE \"{hidden}\" RENAME TO back"),
            format!("DROP TABLE \"{hidden}\""),
            format!("ALTER TABLE \"{hidden}\" ADD COLUMN x INTEGER UNIQUE DEFAULT 1"),
            format!("ALTER TABLE \"{hidden}\" RENAME COLUMN city TO town"),
            format!("CREATE INDEX ix_h ON \"{hidden}\" (city)"),
            "CREATE TABLE \"a\u{1}b\" (id INTEGER PRIMARY KEY)".to_owned(),
        ] {
            let err = f.open().execute_batch(&sql).await.unwrap_err();
            assert_eq!(err.code(), "SQL", "{sql}: {err}");
        }
        // A new table of the name: its own rows (the old ones' emails and city are free).
        run(
            &f,
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, city TEXT); \
             CREATE INDEX ix_people_city ON people (city); \
             INSERT INTO people VALUES (1, 'p1@x', 'oslo'), (70, 'p70@x', 'rome')",
        )
        .await;
        for g in [&f, &isolate(&kv, SMALL_BUDGET)] {
            let s = g.open();
            assert_eq!(scalar(&s, "SELECT COUNT(*) AS n FROM people").await, 2);
            assert_eq!(
                ids(&s, "SELECT id FROM people WHERE city = 'oslo'").await,
                [1]
            );
            assert_eq!(
                ids(&s, "SELECT id FROM people WHERE email = 'p2@x'").await,
                Vec::<i64>::new()
            );
            let err = s
                .execute_batch("INSERT INTO people VALUES (2, 'p1@x', 'oslo')")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{err}");
        }
        assert_eq!(stored_rows(&kv, "people"), 60, "apart from the old rows");
        // (Its rows, entries and schema record, under a storage name of its own.)
        let new_keys = || -> Vec<String> {
            dump(&kv)
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| k.contains("/people%01") && !k.starts_with("gluebind/v1/c/"))
                .collect()
        };
        assert_eq!(new_keys().len(), 6, "{:?}", new_keys());
        // A small table is deleted, rows and all.
        run(&f, "DELETE FROM people WHERE id = 70; DROP TABLE people").await;
        assert!(new_keys().is_empty(), "{:?}", new_keys());
    });
}

/// The drop is a commit of its own before a table of the name is created again: in one unit
/// of work the CREATE fails, naming what to do, and nothing is written.
#[test]
fn a_drop_in_place_and_a_create_of_its_name_take_two_commits() {
    let kv = seeded(60);
    let before = dump(&kv);
    let f = isolate(&kv, SMALL_BUDGET);
    block_on(async {
        let s = f.open();
        let err = s
            .execute_batch(
                "DROP TABLE people; CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)",
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("commit the drop"), "{err}");
        s.rollback().await.unwrap();
    });
    assert_eq!(dump(&kv), before);
}

/// A write to the table from a snapshot before the drop (a session open across it, or an
/// isolate whose cache still has the table) conflicts: its row would land in the dropped
/// table's keys.
#[test]
fn a_write_from_before_a_drop_in_place_conflicts() {
    let kv = seeded(60);
    let (a, b) = (isolate(&kv, SMALL_BUDGET), isolate(&kv, SMALL_BUDGET));
    block_on(async {
        let w = a.open();
        w.execute_batch("UPDATE people SET city = 'rome' WHERE id = 3")
            .await
            .unwrap();
        let stale = b.open();
        assert_eq!(
            scalar(&stale, "SELECT COUNT(*) AS n FROM people WHERE id = 4").await,
            1
        );
        run(&isolate(&kv, SMALL_BUDGET), "DROP TABLE people").await;
        assert_eq!(w.commit().await.unwrap_err().code(), "CONFLICT");
        stale
            .execute_batch("INSERT INTO people VALUES (99, 'new@x', 'oslo')")
            .await
            .unwrap();
        assert_eq!(stale.commit().await.unwrap_err().code(), "CONFLICT");
        let s = isolate(&kv, SMALL_BUDGET).open();
        assert!(s.execute_batch("SELECT * FROM people").await.is_err());
    });
}

/// A table dropped in place refers to nothing: the table it referred to can be dropped next.
#[test]
fn a_table_a_dropped_one_referred_to_can_be_dropped() {
    let kv = seeded(60);
    let f = isolate(&kv, SMALL_BUDGET);
    block_on(async {
        run(
            &f,
            "CREATE TABLE cities (name TEXT PRIMARY KEY); INSERT INTO cities VALUES ('oslo')",
        )
        .await;
        // A referring table too large to delete at once.
        let big = isolate(&kv, "kv://GLUEBIND_KV");
        run(
            &big,
            "CREATE TABLE visits (id INTEGER PRIMARY KEY, city TEXT, \
             FOREIGN KEY (city) REFERENCES cities (name)); \
             INSERT INTO visits SELECT N, 'oslo' FROM SERIES(60)",
        )
        .await;
        let f = isolate(&kv, SMALL_BUDGET);
        let err = f
            .open()
            .execute_batch("DROP TABLE cities")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("visits"), "{err}");
        run(&f, "DROP TABLE visits").await;
        assert_eq!(stored_rows(&kv, "visits"), 60, "in place");
        run(&f, "DROP TABLE cities").await;
        let s = isolate(&kv, SMALL_BUDGET).open();
        let tables: Vec<String> =
            column(&s, "SELECT TABLE_NAME FROM GLUE_TABLES", "TABLE_NAME").await;
        assert_eq!(tables, ["people"]);
    });
}

/// A small table is deleted whatever its key's type — one keyed by TEXT (whose keys do not list
/// in key order) is loaded whole to be counted — also by an isolate that loaded nothing before,
/// and a table of its name can be created again in the same unit of work.
#[test]
fn a_small_table_is_deleted_whatever_its_keys() {
    let kv = seeded(5);
    let f = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(async {
        run(
            &f,
            "CREATE TABLE cities (name TEXT PRIMARY KEY, code TEXT UNIQUE); \
             INSERT INTO cities VALUES ('oslo', 'o'), ('rome', 'r')",
        )
        .await;
        for table in ["cities", "people"] {
            let g = isolate(&kv, SMALL_BUDGET);
            run(
                &g,
                &format!(
                    "DROP TABLE IF EXISTS {table}; \
                     CREATE TABLE {table} (name TEXT PRIMARY KEY, code TEXT UNIQUE)"
                ),
            )
            .await;
            assert_eq!(stored_rows(&kv, table), 0, "{table}");
            let left: Vec<String> = dump(&kv)
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(&format!("gluebind/v1/u/{table}/")))
                .collect();
            assert!(left.is_empty(), "{table}: {left:?}");
        }
    });
}

/// Entries left by UNIQUE columns dropped in place count in a drop's size: a table whose rows
/// and those entries fit one commit is deleted with them (its schema notes where they are);
/// one whose do not is dropped in place. A UNIQUE column added later under a dropped one's
/// name stores its entries apart, and a table created again under the name starts empty.
#[test]
fn a_drop_counts_and_deletes_the_entries_of_unique_columns_dropped_in_place() {
    for (rows, in_place) in [(10, false), (20, true)] {
        let kv = Rc::new(MemoryKv::new());
        block_on(async {
            let f = isolate(&kv, "kv://GLUEBIND_KV");
            run(
                &f,
                &format!(
                    "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE, b TEXT UNIQUE); \
                     INSERT INTO t SELECT N, 'a' || CAST(N AS TEXT), 'b' || CAST(N AS TEXT) \
                     FROM SERIES({rows})"
                ),
            )
            .await;
            run(
                &f,
                "ALTER TABLE t DROP COLUMN a; ALTER TABLE t DROP COLUMN b",
            )
            .await;
            let entries = || {
                dump(&kv)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("gluebind/v1/u/t/"))
                    .count()
            };
            assert_eq!(
                entries(),
                2 * rows as usize,
                "they stay with the drop in place"
            );
            // A UNIQUE column of a dropped one's name: its own entries, apart.
            run(&f, "ALTER TABLE t ADD COLUMN a TEXT UNIQUE").await;
            let dup = "UPDATE t SET a = 'a1' WHERE id = 2";
            run(&f, "UPDATE t SET a = 'a1' WHERE id = 1").await;
            let cold = isolate(&kv, SMALL_BUDGET);
            let err = cold.open().execute_batch(dup).await.unwrap_err();
            assert_eq!(err.code(), "UNIQUE", "{err}");
            // Row 1, written since, gave up the dropped columns' entries (it holds NULL there).
            assert_eq!(entries(), 2 * rows as usize - 2 + 1);
            let apart = dump(&kv)
                .into_iter()
                .any(|(k, _)| k.starts_with("gluebind/v1/u/t/a.1/"));
            assert!(apart, "the new column's entries under a name of their own");
            let g = isolate(&kv, SMALL_BUDGET);
            let s = g.open();
            s.execute_batch("DROP TABLE t").await.unwrap();
            common::commit(&s).await;
            assert!(s.kv_ops() <= 100, "{} KV operations", s.kv_ops());
            let (left_rows, left_entries) = (stored_rows(&kv, "t"), entries());
            match in_place {
                true => assert_eq!(
                    (left_rows, left_entries),
                    (rows as usize, 2 * rows as usize - 1)
                ),
                false => assert_eq!((left_rows, left_entries), (0, 0), "deleted with the table"),
            }
            run(&g, "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE)").await;
            run(&g, "INSERT INTO t VALUES (1, 'a1'), (2, 'a2')").await;
            let n = scalar(
                &isolate(&kv, SMALL_BUDGET).open(),
                "SELECT COUNT(*) AS n FROM t",
            )
            .await;
            assert_eq!(n, 2, "{rows} rows");
        });
    }
}
