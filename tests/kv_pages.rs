//! kv:// reads in key order load a table from its first key as far as they go, not the whole
//! table: a cold first page costs one `list` call (of 128 keys) however large the table is; a
//! read past what is loaded lists four times as many rows each time; what is returned equals what a
//! full load returns (a differential test against memory://), the isolate's own commits
//! included while KV's listing lags behind them. Keys whose KV names do not sort as the keys
//! (text) load whole, as before.

mod common;
use common::{block_on, count_in, ids, isolate};
use gluebind::model::Model;
use gluebind::{
    kv::{CountingKv, FaultyKv, KvOps, MemoryKv},
    Engine, Error, Isolation, SessionFactory,
};
use std::rc::Rc;

type Kv = Rc<CountingKv<MemoryKv>>;

const NO_PARAMS: [i64; 0] = [];

fn take(kv: &Kv) -> KvOps {
    let ops = kv.ops();
    kv.reset();
    ops
}

/// Commits `rows` (id, n) into `items` in chunks within a session's operation budget.
async fn fill(f: &SessionFactory, rows: &[(i64, i64)]) {
    for chunk in rows.chunks(600) {
        let s = f.open();
        let values: Vec<String> = chunk.iter().map(|(id, n)| format!("({id}, {n})")).collect();
        s.execute_batch(&format!("INSERT INTO items VALUES {}", values.join(",")))
            .await
            .unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
    }
}

/// Creates `items (id INTEGER PRIMARY KEY, n INTEGER)` holding `rows` through `f`.
async fn create_items(f: &SessionFactory, rows: &[(i64, i64)]) {
    let s = f.open();
    s.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER)")
        .await
        .unwrap();
    s.commit().await.unwrap();
    fill(f, rows).await;
}

/// A namespace holding `items` with `rows`, written by an isolate that is returned.
fn namespace(rows: &[(i64, i64)]) -> (Kv, SessionFactory) {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    block_on(create_items(&a, rows));
    kv.reset();
    (kv, a)
}

fn dense(n: i64) -> Vec<(i64, i64)> {
    (1..=n).map(|id| (id, id % 7)).collect()
}

/// A cold isolate whose schema is cached, so that what is counted next is the read alone.
async fn cold(kv: &Kv) -> SessionFactory {
    let f = isolate(kv, "kv://GLUEBIND_KV");
    ids(&f.open(), "SELECT id FROM items WHERE id = 1").await;
    kv.reset();
    f
}

#[test]
fn a_cold_first_page_lists_its_first_rows_not_the_table() {
    let (kv, _a) = namespace(&dense(10_000));
    block_on(async {
        let b = cold(&kv).await;
        let page = ids(&b.open(), "SELECT id FROM items ORDER BY id LIMIT 20").await;
        assert_eq!(page, (1..=20).collect::<Vec<_>>());
        let ops = take(&kv);
        assert_eq!(
            (ops.lists, ops.total(), ops.listed_keys),
            (1, 1, 128),
            "one list, of the first 128 keys: {ops:?}"
        );

        // The isolate cache holds the first 128 rows: pages within them cost nothing.
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id > 100 ORDER BY id LIMIT 20",
        )
        .await;
        assert_eq!(page, (101..=120).collect::<Vec<_>>());
        assert_eq!(take(&kv).total(), 0);
        // A range that ends within them needs nothing more either.
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id <= 128 ORDER BY id",
        )
        .await;
        assert_eq!(page.len(), 128);
        assert_eq!(take(&kv).total(), 0);

        // Past them: four times as many rows (one list), and so on until the table's end.
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id > 128 ORDER BY id LIMIT 20",
        )
        .await;
        assert_eq!(page, (129..=148).collect::<Vec<_>>());
        assert_eq!(take(&kv).lists, 1, "512 rows");
        let page = ids(
            &b.open(),
            "SELECT id FROM items ORDER BY id LIMIT 3 OFFSET 9000",
        )
        .await;
        assert_eq!(page, [9001, 9002, 9003]);
        assert_eq!(
            take(&kv).lists,
            3 + 9 + 10,
            "2 048, 8 192, then 32 768 rows: the table, complete in the cache now"
        );
        assert_eq!(count_in(&b.open(), "items").await, 10_000);
        assert_eq!(take(&kv).total(), 0);
    });
}

#[test]
fn a_deep_read_lists_four_times_as_many_rows_each_time() {
    let (kv, _a) = namespace(&dense(10_000));
    block_on(async {
        let b = cold(&kv).await;
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id > 5000 ORDER BY id LIMIT 20",
        )
        .await;
        assert_eq!(page, (5001..=5020).collect::<Vec<_>>());
        let ops = take(&kv);
        // 128, 512, 2 048 and 8 192 rows: 1 + 1 + 3 + 9 lists, from the first key each time.
        assert_eq!(ops.lists, 1 + 1 + 3 + 9, "{ops:?}");
    });
}

#[test]
fn a_descending_read_or_a_count_loads_the_table() {
    let (kv, _a) = namespace(&dense(2_500));
    block_on(async {
        let b = cold(&kv).await;
        let page = ids(&b.open(), "SELECT id FROM items ORDER BY id DESC LIMIT 2").await;
        assert_eq!(page, [2500, 2499]);
        assert_eq!(take(&kv).lists, 3);
        let c = cold(&kv).await;
        assert_eq!(count_in(&c.open(), "items").await, 2_500);
        assert_eq!(take(&kv).lists, 3);
    });
}

#[test]
fn text_keys_do_not_list_in_key_order_and_load_whole() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = isolate(&kv, "kv://GLUEBIND_KV");
    // Long keys are named by their hash in KV: listing order is not key order.
    let key = |i: usize| format!("{}{i:05}", if i % 2 == 0 { "b" } else { "a" }.repeat(70));
    block_on(async {
        let s = a.open();
        s.execute_batch("CREATE TABLE tags (name TEXT PRIMARY KEY)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        for chunk in (0..1500).collect::<Vec<_>>().chunks(500) {
            let s = a.open();
            let values: Vec<String> = chunk.iter().map(|i| format!("('{}')", key(*i))).collect();
            s.execute_batch(&format!("INSERT INTO tags VALUES {}", values.join(",")))
                .await
                .unwrap();
            s.commit().await.unwrap();
        }
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        let rows = b
            .open()
            .execute("SELECT name FROM tags ORDER BY name LIMIT 2", NO_PARAMS)
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        let names: Vec<String> = rows.iter().map(|r| r.get("name").unwrap()).collect();
        assert_eq!(
            names,
            [key(1), key(3)],
            "the smallest keys, not the first listed"
        );
    });
}

/// Ordered reads on a cold kv:// isolate (a fresh one per query) return what memory:// returns
/// for the same rows: bounds, offsets and filters that stop within the first listing page,
/// at its edge and past it, also with rows past that page loaded by key before.
#[test]
fn every_ordered_read_of_a_partly_loaded_table_equals_memory() {
    // Sparse ids (some gaps, some negative) so that page edges fall between rows.
    let rows: Vec<(i64, i64)> = (-300i64..2_700)
        .filter(|id| id % 5 != 0 && id % 11 != 3)
        .map(|id| (id, id.rem_euclid(9)))
        .collect();
    let (kv, _a) = namespace(&rows);
    let memory = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap();
    block_on(async {
        create_items(&memory, &rows).await;
        let mut queries = Vec::new();
        for bound in [
            "",
            "WHERE id > 700",
            "WHERE id >= 1512",
            "WHERE id > -5",
            "WHERE id < 900",
            "WHERE id <= 2100 AND id > 100",
            "WHERE n = 4",
            "WHERE n = 4 AND id > 1400",
            "WHERE id > 99999",
        ] {
            for (limit, offset) in [(20, 0), (20, 600), (5, 1190), (50, 2500), (1, 0)] {
                queries.push(format!(
                    "SELECT id FROM items {bound} ORDER BY id LIMIT {limit} OFFSET {offset}"
                ));
            }
            queries.push(format!("SELECT id FROM items {bound} ORDER BY id"));
        }
        for sql in &queries {
            let expected = ids(&memory.open(), sql).await;
            let cold = isolate(&kv, "kv://GLUEBIND_KV");
            assert_eq!(ids(&cold.open(), sql).await, expected, "{sql}");
            // With rows past the first listing page loaded by key beforehand: still the same.
            let cold = isolate(&kv, "kv://GLUEBIND_KV");
            let s = cold.open();
            for id in [1001, 1801, 2602] {
                ids(&s, &format!("SELECT id FROM items WHERE id = {id}")).await;
            }
            assert_eq!(ids(&s, sql).await, expected, "{sql}, rows loaded by key");
        }
    });
}

#[test]
fn the_isolates_own_commits_show_while_the_listing_lags_behind_them() {
    let kv = Rc::new(FaultyKv::new(MemoryKv::new()));
    // Every session of `a` starts a fresh cache: its pages come from KV's listing plus the
    // isolate's own log of commits.
    let a = isolate(&kv, "kv://GLUEBIND_KV?cache_ttl=0");
    block_on(async {
        let rows: Vec<(i64, i64)> = (1..=1500)
            .filter(|id| *id != 1001)
            .map(|id| (id, 0))
            .collect();
        create_items(&a, &rows).await;
        // From now on KV shows writes a minute late, to everyone.
        kv.delay_writes(60_000);
        let s = a.open();
        s.execute_batch(
            "DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (0, 1), (1001, 1)",
        )
        .await
        .unwrap();
        s.execute_batch("UPDATE items SET n = 5 WHERE id = 3")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let rows = a
            .open()
            .execute("SELECT id, n FROM items ORDER BY id LIMIT 3", NO_PARAMS)
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        let got: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| (r.get("id").unwrap(), r.get("n").unwrap()))
            .collect();
        assert_eq!(got, [(0, 1), (1, 0), (3, 5)]);
        let page = ids(
            &a.open(),
            "SELECT id FROM items WHERE id > 998 ORDER BY id LIMIT 4",
        )
        .await;
        assert_eq!(page, [999, 1000, 1001, 1002]);
    });
}

#[test]
fn a_serializable_first_page_conflicts_with_a_row_inserted_past_it() {
    let (kv, a) = namespace(&dense(2_500));
    block_on(async {
        let _ = kv;
        // Both sessions in one isolate: its log checks every commit exactly.
        let b = SessionFactory::builder()
            .bind(a.open().engine().clone())
            .isolation(Isolation::Serializable)
            .build()
            .unwrap();
        let reader = b.open();
        let page = ids(&reader, "SELECT id FROM items ORDER BY id LIMIT 20").await;
        assert_eq!(page.len(), 20);
        let writer = b.open();
        writer
            .execute("INSERT INTO items VALUES (9000, 1)", NO_PARAMS)
            .await
            .unwrap();
        writer.commit().await.unwrap();
        reader
            .execute("UPDATE items SET n = 2 WHERE id = 1", NO_PARAMS)
            .await
            .unwrap();
        let err = reader.commit().await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
    });
}

#[derive(gluebind::Model, Debug)]
#[gluebind(table = "items")]
struct Item {
    #[gluebind(primary_key)]
    id: i64,
    n: Option<i64>,
}

/// `paginate(...).count(false)` (Flask-SQLAlchemy's `count=False`): no total, `has_next` from
/// one row past the page — on a cold kv:// isolate, one `list` instead of a listing of the
/// table for the count.
#[test]
fn an_uncounted_page_costs_what_it_returns() {
    let (kv, _a) = namespace(&dense(5_000));
    block_on(async {
        let b = cold(&kv).await;
        let page = Item::query(&b.open())
            .order_by(Item::ID.asc())
            .paginate(1, 20)
            .count(false)
            .await
            .unwrap();
        let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
        assert_eq!((page.total, page.pages(), page.has_next()), (None, 0, true));
        assert_eq!(take(&kv).lists, 1);

        let last = Item::query(&b.open())
            .order_by(Item::ID.asc())
            .filter(Item::ID.gt(4_990i64))
            .paginate(1, 10)
            .count(false)
            .await
            .unwrap();
        assert_eq!((last.items.len(), last.has_next()), (10, false));

        let c = cold(&kv).await;
        let counted = Item::query(&c.open())
            .order_by(Item::ID.asc())
            .paginate(1, 20)
            .await
            .unwrap();
        assert_eq!((counted.total, counted.has_next()), (Some(5_000), true));
        assert_eq!(
            take(&kv).lists,
            5,
            "the count lists the table, and its rows serve the page"
        );
    });
}

/// Another isolate inserts rows before the loaded ones (negative ids): a larger load must
/// still reach past what is loaded, not list the same keys again until the statement gives
/// up.
#[test]
fn a_load_of_more_first_rows_reaches_past_the_loaded_ones() {
    let (kv, a) = namespace(&dense(2_000));
    block_on(async {
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        let page = ids(&b.open(), "SELECT id FROM items ORDER BY id LIMIT 3").await;
        assert_eq!(page, [1, 2, 3]);
        let before: Vec<(i64, i64)> = (-3000..0).map(|id| (id, 0)).collect();
        fill(&a, &before).await;
        // b's cache still holds ids 1..=128 as the first rows; KV now lists 3 000 before them.
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id > 1000 ORDER BY id LIMIT 3",
        )
        .await;
        assert_eq!(page, [1001, 1002, 1003]);
    });
}

/// Within one session, rows another isolate inserts among the first rows it read do not
/// appear when it reads further (a larger load) or counts (the whole table): repeatable reads
/// as far as KV allows.
#[test]
fn a_session_reads_its_first_rows_again_unchanged() {
    let evens: Vec<(i64, i64)> = (1..=2_000).map(|i| (2 * i, 0)).collect();
    let (kv, a) = namespace(&evens);
    block_on(async {
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        let s = b.open();
        let first = "SELECT id FROM items ORDER BY id LIMIT 3";
        assert_eq!(ids(&s, first).await, [2, 4, 6]);
        fill(&a, &[(1, 0), (3, 0)]).await;
        let deeper = ids(
            &s,
            "SELECT id FROM items WHERE id > 2000 ORDER BY id LIMIT 3",
        )
        .await;
        assert_eq!(deeper, [2002, 2004, 2006]);
        assert_eq!(ids(&s, first).await, [2, 4, 6], "after a larger load");
        assert_eq!(
            count_in(&s, "items").await,
            2_000,
            "the whole table, as first read"
        );
        assert_eq!(ids(&s, first).await, [2, 4, 6], "after the whole table");
        // A new session sees them.
        assert_eq!(ids(&b.open(), first).await, [1, 2, 3]);
    });
}

/// A key among the first rows loaded is known: absent when they lack it (no KV read), and a
/// session that read those rows does not see another isolate's row there by reading its key.
#[test]
fn a_key_among_the_loaded_first_rows_reads_nothing_and_stays_as_read() {
    let evens: Vec<(i64, i64)> = (1..=500).map(|i| (2 * i, 0)).collect();
    let (kv, a) = namespace(&evens);
    block_on(async {
        let b = cold(&kv).await;
        let s = b.open();
        let first = "SELECT id FROM items ORDER BY id LIMIT 3";
        assert_eq!(ids(&s, first).await, [2, 4, 6]);
        kv.reset();
        assert!(ids(&s, "SELECT id FROM items WHERE id = 3")
            .await
            .is_empty());
        assert_eq!(take(&kv).total(), 0, "known absent");
        fill(&a, &[(3, 0)]).await;
        kv.reset();
        assert!(ids(&s, "SELECT id FROM items WHERE id = 5")
            .await
            .is_empty());
        assert!(ids(&s, "SELECT id FROM items WHERE id = 3")
            .await
            .is_empty());
        assert_eq!(ids(&s, first).await, [2, 4, 6]);
        assert_eq!(take(&kv).total(), 0);
    });
}

/// Past row 2 048 of a large table, a read in key order still costs what its depth costs: 30 000
/// rows, a session budget of 25 operations, a page at row 2 100.
#[test]
fn a_read_past_the_first_thousands_of_a_large_table_fits_a_small_budget() {
    let (kv, _a) = namespace(&dense(30_000));
    block_on(async {
        let b = isolate(&kv, "kv://GLUEBIND_KV?max_ops=25");
        let page = ids(
            &b.open(),
            "SELECT id FROM items WHERE id > 2100 ORDER BY id LIMIT 3",
        )
        .await;
        assert_eq!(page, [2101, 2102, 2103]);
        let ops = take(&kv);
        assert!(ops.total() <= 25, "{ops:?}");
    });
}
