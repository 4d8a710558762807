//! kv:// secondary indexes as KV keys: `CREATE INDEX` on a table of at most 400 rows (a table
//! created with its index included) makes every commit write an entry per row and index, so a
//! cold lookup of one value lists that value's entries and reads their rows — one `list` and
//! one bulk get per 100 rows — instead of the table. Lookups return what a full scan returns
//! (a differential test against memory:// as rows move between values, are deleted and
//! re-inserted), the isolate's own commits included; an index on a larger table keeps no
//! entries and its lookups load the table, as before.

mod common;
use common::{block_on, dump, ids, isolate, run, scalar};
use gluebind::{
    kv::{format::layout::Layout, CountingKv, KvOps, MemoryKv},
    Engine, Isolation, SessionFactory,
};
use std::rc::Rc;

type Kv = Rc<CountingKv<MemoryKv>>;

const URL: &str = "kv://GLUEBIND_KV";
const NO_PARAMS: [i64; 0] = [];

fn take(kv: &Kv) -> KvOps {
    let ops = kv.ops();
    kv.reset();
    ops
}

/// Inserts `rows` (id, n) into `items` in commits within a session's operation budget.
async fn fill(f: &SessionFactory, rows: impl Iterator<Item = (i64, i64)>) {
    let rows: Vec<(i64, i64)> = rows.collect();
    for chunk in rows.chunks(300) {
        let values: Vec<String> = chunk.iter().map(|(id, n)| format!("({id}, {n})")).collect();
        run(f, &format!("INSERT INTO items VALUES {}", values.join(","))).await;
    }
}

const ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NULL)";
const INDEXED_ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NULL); \
                             CREATE INDEX ix_items_n ON items (n)";

/// A namespace holding `items` (indexed on `n` from its creation) with `rows` rows, `n` =
/// id % 100, and the isolate that wrote it.
fn namespace(rows: i64) -> (Kv, SessionFactory) {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, URL);
    block_on(async {
        run(&a, INDEXED_ITEMS).await;
        fill(&a, (1..=rows).map(|id| (id, id % 100))).await;
    });
    kv.reset();
    (kv, a)
}

/// A cold isolate whose schema is cached, so that what is counted next is the read alone.
async fn cold(kv: &Kv) -> SessionFactory {
    let f = isolate(kv, URL);
    ids(&f.open(), "SELECT id FROM items WHERE id = 1").await;
    kv.reset();
    f
}

/// The index entries in KV, as (value, row key) in the order KV lists them.
fn entries(kv: &Kv) -> Vec<String> {
    let prefix = Layout::new("").indexes_prefix("items");
    dump(kv.inner())
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

#[test]
fn a_cold_lookup_lists_one_values_entries_not_the_table() {
    let (kv, _a) = namespace(10_000);
    assert_eq!(entries(&kv).len(), 10_000, "an entry per row");
    block_on(async {
        let b = cold(&kv).await;
        let found = ids(&b.open(), "SELECT id FROM items WHERE n = 7").await;
        assert_eq!(found, (0..100).map(|i| i * 100 + 7).collect::<Vec<_>>());
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.listed_keys, ops.bulk_gets, ops.total()),
            (1, 100, 1, 2),
            "one list of the value's 100 entries, one bulk get of their rows: {ops:?}"
        );
        // The isolate keeps them: the same value again costs nothing, in any session.
        let s = b.open();
        assert_eq!(ids(&s, "SELECT id FROM items WHERE n = 7").await.len(), 100);
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 7 AND id < 300").await,
            [7, 107, 207]
        );
        assert_eq!(take(&kv).total(), 0);
        // A value no row holds: one list, nothing to get.
        assert!(ids(&s, "SELECT id FROM items WHERE n = 1000")
            .await
            .is_empty());
        assert_eq!(take(&kv).total(), 1);
        // A count through the index, and a range (which loads the table, as before).
        let n = scalar(&s, "SELECT COUNT(*) AS n FROM items WHERE n = 8").await;
        assert_eq!(n, 100);
        assert_eq!(take(&kv).total(), 2);
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n > 98").await.len(),
            100
        );
        assert!(take(&kv).lists >= 10, "a range lists the table");
    });
}

#[test]
fn commits_write_the_entries_and_lookups_equal_a_scan_on_memory() {
    let (kv, a) = namespace(300);
    let memory = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap();
    block_on(async {
        run(&memory, INDEXED_ITEMS).await;
        fill(&memory, (1..=300).map(|id| (id, id % 100))).await;
        let changes = [
            "UPDATE items SET n = 7 WHERE id < 20",
            "UPDATE items SET n = NULL WHERE n = 8",
            "DELETE FROM items WHERE n = 9",
            "INSERT INTO items VALUES (1000, 7), (1001, 9), (1002, NULL)",
            "UPDATE items SET n = n + 1 WHERE id >= 290",
            "DELETE FROM items WHERE id = 1000",
            "INSERT INTO items VALUES (1000, 8)",
            "DELETE FROM items WHERE id = 7; INSERT INTO items VALUES (5007, 7)",
        ];
        let lookups = |v: i64| format!("SELECT id FROM items WHERE n = {v} ORDER BY id");
        for change in changes {
            run(&a, change).await;
            run(&memory, change).await;
            // A new isolate each time (a cold lookup through the entries), and the writer
            // (its cache, kept by its own commits).
            let b = cold(&kv).await;
            for v in [7, 8, 9, 10, 90, 91] {
                let want = ids(&memory.open(), &lookups(v)).await;
                assert_eq!(
                    ids(&b.open(), &lookups(v)).await,
                    want,
                    "{change}: cold n = {v}"
                );
                assert_eq!(
                    ids(&a.open(), &lookups(v)).await,
                    want,
                    "{change}: writer n = {v}"
                );
            }
        }
        // Exactly one entry per row holding a value, none for NULLs or gone rows.
        let rows = scalar(
            &memory.open(),
            "SELECT COUNT(*) AS n FROM items WHERE n IS NOT NULL",
        )
        .await;
        assert_eq!(entries(&kv).len() as i64, rows);
    });
}

#[test]
fn a_session_reads_its_own_writes_and_the_values_it_read_through_the_index() {
    let (kv, a) = namespace(200);
    block_on(async {
        let b = cold(&kv).await;
        let s = b.open();
        // Its own writes before its first lookup: the index read merges them.
        s.execute_batch("UPDATE items SET n = 5 WHERE id = 6; INSERT INTO items VALUES (500, 5)")
            .await
            .unwrap();
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 5 ORDER BY id").await,
            [5, 6, 105, 500]
        );
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 6 ORDER BY id").await,
            [106],
            "row 6 moved to 5 in this session"
        );
        // Another isolate commits into the value: the value's rows, read already, stay as read.
        run(&a, "INSERT INTO items VALUES (600, 5)").await;
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 5 ORDER BY id").await,
            [5, 6, 105, 500]
        );
        // Across isolates KV has no snapshot: a read by key shows the row as KV holds it now
        // (as for any row this session had not read), and the index then names it too.
        assert_eq!(ids(&s, "SELECT id FROM items WHERE id = 600").await, [600]);
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 5 ORDER BY id").await,
            [5, 6, 105, 500, 600]
        );
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        let c = cold(&kv).await;
        assert_eq!(
            ids(&c.open(), "SELECT id FROM items WHERE n = 5 ORDER BY id").await,
            [5, 6, 105, 500, 600]
        );
    });
}

#[test]
fn a_serializable_lookup_conflicts_with_a_commit_into_its_value() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let f = SessionFactory::builder()
        .bind(Engine::with_kv(URL, kv.clone()).unwrap())
        .isolation(Isolation::Serializable)
        .build()
        .unwrap();
    block_on(async {
        run(&f, INDEXED_ITEMS).await;
        fill(&f, (1..=50).map(|id| (id, id % 5))).await;
        // A fresh isolate, so the lookup goes through the entries.
        let g = SessionFactory::builder()
            .bind(Engine::with_kv(URL, kv.clone()).unwrap())
            .isolation(Isolation::Serializable)
            .build()
            .unwrap();
        let s1 = g.open();
        let s2 = g.open();
        // At most 10 rows with n = 1: s1 counts, s2 inserts one, both then write.
        assert_eq!(ids(&s1, "SELECT id FROM items WHERE n = 1").await.len(), 10);
        assert_eq!(ids(&s2, "SELECT id FROM items WHERE n = 1").await.len(), 10);
        s2.execute_batch("INSERT INTO items VALUES (100, 1)")
            .await
            .unwrap();
        s2.commit().await.unwrap();
        s1.execute_batch("INSERT INTO items VALUES (101, 1)")
            .await
            .unwrap();
        let err = s1.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
    });
}

#[test]
fn an_index_on_a_small_table_gets_entries_and_one_on_a_larger_table_does_not() {
    for (rows, backed) in [(400, true), (401, false)] {
        let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
        let a = isolate(&kv, URL);
        block_on(async {
            run(&a, ITEMS).await;
            fill(&a, (1..=rows).map(|id| (id, id % 10))).await;
            // A new isolate: the table is not loaded when the index is created.
            let b = cold(&kv).await;
            run(&b, "CREATE INDEX ix_items_n ON items (n)").await;
            let ops = take(&kv);
            assert_eq!(
                entries(&kv).len(),
                if backed { 400 } else { 0 },
                "{rows} rows"
            );
            assert!(ops.total() < 500, "{rows} rows: {ops:?}");
            let c = cold(&kv).await;
            let found = ids(&c.open(), "SELECT id FROM items WHERE n = 3 ORDER BY id").await;
            assert_eq!(found.len(), 40, "{rows} rows");
            let ops = take(&kv);
            if backed {
                assert_eq!((ops.lists, ops.bulk_gets), (1, 1), "{rows} rows: {ops:?}");
            } else {
                assert_eq!(
                    ops.bulk_gets, 0,
                    "{rows} rows: the table is listed: {ops:?}"
                );
            }
            // Commits keep entries only for an index that has them.
            run(&c, "INSERT INTO items VALUES (9999, 3)").await;
            assert_eq!(
                entries(&kv).len(),
                if backed { 401 } else { 0 },
                "{rows} rows"
            );
            let d = cold(&kv).await;
            let found = ids(&d.open(), "SELECT id FROM items WHERE n = 3 ORDER BY id").await;
            assert_eq!(found.len(), 41, "{rows} rows");
        });
    }
}

#[test]
fn schema_changes_keep_the_entries_true_and_a_dropped_table_leaves_none() {
    let (kv, a) = namespace(50);
    block_on(async {
        let lookup = "SELECT id FROM items WHERE n = 7 ORDER BY id";
        // A column added with a random default, one added with none (both in place), a
        // rename.
        run(
            &a,
            "ALTER TABLE items ADD COLUMN tag UUID NULL DEFAULT GENERATE_UUID()",
        )
        .await;
        run(&a, "ALTER TABLE items ADD COLUMN note TEXT NULL").await;
        // From an isolate that has not loaded the table: the schema alone.
        let renamer = cold(&kv).await;
        run(&renamer, "ALTER TABLE items RENAME COLUMN n TO m").await;
        assert_eq!(entries(&kv).len(), 50, "the entries stay");
        // (The writer's cache holds the schema before the rename: a new isolate goes on.)
        let w = isolate(&kv, URL);

        let b = cold(&kv).await;
        assert_eq!(ids(&b.open(), &lookup.replace("n =", "m =")).await, [7]);
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.total()),
            (1, 2),
            "through the entries: {ops:?}"
        );
        // Dropped and created again under its name: new entries, the old ones stay unread.
        run(&w, "DROP INDEX items.ix_items_n").await;
        run(&w, "UPDATE items SET m = 7 WHERE id = 8").await;
        run(&w, "CREATE INDEX ix_items_n ON items (m)").await;
        let c = cold(&kv).await;
        assert_eq!(ids(&c.open(), &lookup.replace("n =", "m =")).await, [7, 8]);
        // The table goes with its entries; one created again under its name starts empty.
        run(&w, "DROP TABLE items").await;
        assert!(entries(&kv).is_empty(), "{:?}", entries(&kv));
        run(&w, INDEXED_ITEMS).await;
        run(&w, "INSERT INTO items VALUES (1, 7)").await;
        let d = cold(&kv).await;
        assert_eq!(ids(&d.open(), lookup).await, [1]);
        assert_eq!(entries(&kv).len(), 1);
    });
}

#[test]
fn updates_and_deletes_by_an_indexed_value_read_that_values_rows_not_the_table() {
    let (kv, _a) = namespace(10_000);
    block_on(async {
        let b = cold(&kv).await;
        let s = b.open();
        let moved = s
            .execute("UPDATE items SET n = 1000 WHERE n = 7", NO_PARAMS)
            .await
            .unwrap();
        assert_eq!(moved.affected(), 100);
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.bulk_gets, ops.listed_keys, ops.total()),
            (1, 1, 100, 2),
            "the value's entries and rows, not the table: {ops:?}"
        );
        let gone = s
            .execute("DELETE FROM items WHERE n = 8 AND id < 500", NO_PARAMS)
            .await
            .unwrap();
        assert_eq!(gone.affected(), 5);
        // (A DELETE reads every table's schema too, for the foreign keys naming the table.)
        let ops = take(&kv);
        assert_eq!(
            (ops.bulk_gets, ops.listed_keys),
            (1, 101),
            "the value's entries and rows, and the schemas: {ops:?}"
        );
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        let c = cold(&kv).await;
        let s = c.open();
        assert!(ids(&s, "SELECT id FROM items WHERE n = 7").await.is_empty());
        assert_eq!(
            ids(&s, "SELECT id FROM items WHERE n = 1000").await.len(),
            100
        );
        assert_eq!(ids(&s, "SELECT id FROM items WHERE n = 8").await.len(), 95);
    });
}

#[test]
fn an_index_created_while_another_isolate_writes_the_table_conflicts() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, URL);
    block_on(async {
        run(&a, ITEMS).await;
        fill(&a, (1..=300).map(|id| (id, id % 10))).await;
        let b = cold(&kv).await;
        let s = b.open();
        s.execute_batch("CREATE INDEX ix_items_n ON items (n)")
            .await
            .unwrap();
        // Another isolate's row lands (and its record goes) before this commit checks.
        let c = cold(&kv).await;
        run(&c, "INSERT INTO items VALUES (301, 5)").await;
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert!(entries(&kv).is_empty(), "nothing written");
        // Again: now with the row, which gets its entry.
        let d = cold(&kv).await;
        run(&d, "CREATE INDEX ix_items_n ON items (n)").await;
        let e = cold(&kv).await;
        assert_eq!(
            ids(&e.open(), "SELECT id FROM items WHERE n = 5 ORDER BY id")
                .await
                .len(),
            31
        );
        assert_eq!(entries(&kv).len(), 301);
    });
}

#[test]
fn an_index_dropped_and_created_again_or_on_a_column_dropped_and_added_reads_true() {
    let (kv, a) = namespace(100);
    block_on(async {
        run(&a, "ALTER TABLE items ADD COLUMN m INTEGER NULL UNIQUE").await;
        run(&a, "UPDATE items SET m = id * 2").await;
        // One session, no KV call between the two statements (the table is loaded).
        let s = a.open();
        s.execute_batch(
            "SELECT COUNT(*) FROM items; DROP INDEX items.ix_items_n; \
             CREATE INDEX ix_items_n ON items (m)",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        let b = cold(&kv).await;
        assert_eq!(
            ids(&b.open(), "SELECT id FROM items WHERE m = 14").await,
            [7]
        );
        assert_eq!(
            entries(&kv).len(),
            100,
            "the old index's entries went with it"
        );
        // An indexed column dropped, then added again with a DEFAULT (in place): its index no
        // longer has entries (every row reads the default).
        run(&a, "ALTER TABLE items DROP COLUMN m").await;
        run(&a, "ALTER TABLE items ADD COLUMN m INTEGER DEFAULT 5").await;
        let c = cold(&kv).await;
        assert_eq!(
            ids(&c.open(), "SELECT id FROM items WHERE m = 5")
                .await
                .len(),
            100
        );
        // The table goes, whatever entries it left behind.
        run(&a, "DROP TABLE items").await;
        assert!(entries(&kv).is_empty(), "{:?}", entries(&kv));
    });
}

#[test]
fn indexes_get_entries_within_the_sessions_budget() {
    for (url, rows, indexes, backed) in [
        (URL, 150, 3, 2), // 2 × 150 within 400, a third would not be
        (URL, 350, 2, 1), // one of them
        ("kv://GLUEBIND_KV?max_ops=200", 80, 1, 1), // 88 entries at this budget
        ("kv://GLUEBIND_KV?max_ops=200", 300, 1, 0),
    ] {
        let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
        let a = isolate(&kv, URL);
        block_on(async {
            run(
                &a,
                "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, c INTEGER)",
            )
            .await;
            for chunk in (1..=rows).collect::<Vec<i64>>().chunks(150) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|id| format!("({id}, {id}, {id}, {id})"))
                    .collect();
                run(&a, &format!("INSERT INTO t VALUES {}", values.join(","))).await;
            }
            let f = isolate(&kv, url);
            let sql: Vec<String> = ["a", "b", "c"][..indexes]
                .iter()
                .map(|c| format!("CREATE INDEX ix_t_{c} ON t ({c})"))
                .collect();
            run(&f, &sql.join("; ")).await;
            let prefix = Layout::new("").indexes_prefix("t");
            let stored = dump(kv.inner())
                .into_iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .count();
            assert_eq!(
                stored,
                rows as usize * backed,
                "{url}: {rows} rows, {indexes} indexes"
            );
            let g = isolate(&kv, URL);
            for c in ["a", "b", "c"][..indexes].iter() {
                let sql = format!("SELECT id FROM t WHERE {c} = 7");
                assert_eq!(ids(&g.open(), &sql).await, [7], "{url}: {sql}");
            }
        });
    }
}

#[test]
fn a_value_most_rows_hold_loads_the_table_instead() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, URL);
    block_on(async {
        run(&a, INDEXED_ITEMS).await;
        fill(&a, (1..=12_000).map(|id| (id, id % 2))).await;
        kv.reset();
        let b = cold(&kv).await;
        let found = ids(&b.open(), "SELECT id FROM items WHERE n = 1").await;
        assert_eq!(found.len(), 6_000);
        let ops = take(&kv);
        assert_eq!(
            ops.bulk_gets, 0,
            "the table's listing, not 60 bulk gets: {ops:?}"
        );
        assert!(
            ops.lists <= 6 + 12,
            "5 001 entries listed, then the table: {ops:?}"
        );
    });
}

#[test]
fn dropping_an_index_of_a_large_loaded_table_leaves_its_entries_and_the_commit_fits() {
    let (kv, a) = namespace(2_000);
    block_on(async {
        // The writer's cache holds the whole table.
        assert_eq!(
            ids(&a.open(), "SELECT id FROM items WHERE n + 0 = 3")
                .await
                .len(),
            20
        );
        run(&a, "DROP INDEX items.ix_items_n").await;
        assert_eq!(entries(&kv).len(), 2_000, "left in KV, never read again");
        run(&a, "CREATE INDEX ix_items_n ON items (n)").await;
        let b = cold(&kv).await;
        assert_eq!(
            ids(&b.open(), "SELECT id FROM items WHERE n = 3")
                .await
                .len(),
            20
        );
    });
}

#[test]
fn a_table_created_after_a_sessions_budget_is_spent_still_gets_its_entries() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, URL);
    block_on(async {
        run(&a, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)").await;
        let values: Vec<String> = (1..=400).map(|id| format!("({id}, {id})")).collect();
        run(&a, &format!("INSERT INTO t VALUES {}", values.join(","))).await;
        // One session: an index over 400 rows (the whole budget), then a new table's.
        run(
            &a,
            "CREATE INDEX ix_t_n ON t (n); \
             CREATE TABLE u (id INTEGER PRIMARY KEY, n INTEGER); CREATE INDEX ix_u_n ON u (n)",
        )
        .await;
        run(&a, "INSERT INTO u VALUES (1, 7), (2, 7)").await;
        assert_eq!(entries_of(&kv, "u"), 2);
        assert_eq!(entries_of(&kv, "t"), 400);
    });
}

fn entries_of(kv: &Kv, table: &str) -> usize {
    let prefix = Layout::new("").indexes_prefix(table);
    dump(kv.inner())
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .count()
}
