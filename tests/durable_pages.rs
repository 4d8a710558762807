//! do:// reads that cost what they return: a cold first page asks the object for the table's
//! first rows (at least as many as the page needs, four times as many each time a read goes
//! further), and an equality on an indexed column for that value's rows, instead of the whole
//! table; what they return equals what memory:// returns. An object deployed before these
//! requests existed answers them as before (the worker then loads those tables whole).

mod common;
use common::{block_on, count_in, ids, object_isolate as isolate};
use gluebind::{durable::LocalObject, Engine, Session, SessionFactory};
use std::rc::Rc;

async fn run(f: &SessionFactory, sql: &str) {
    let s = f.open();
    s.execute_batch(sql).await.unwrap();
    s.commit().await.unwrap();
}

/// `items (id, n)` with `rows` rows, `n` = id % 100 (indexed), through `f`.
async fn fill(f: &SessionFactory, rows: i64) {
    run(
        f,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NULL, pad TEXT NULL); \
         CREATE INDEX ix_items_n ON items (n)",
    )
    .await;
    let ids: Vec<i64> = (1..=rows).collect();
    for chunk in ids.chunks(2_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("({id}, {}, 'row {id} of the table')", id % 100))
            .collect();
        run(f, &format!("INSERT INTO items VALUES {}", values.join(","))).await;
    }
}

/// The bytes of the object's answers to what `read` does.
async fn answered<T>(object: &LocalObject, read: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = object.answer_bytes();
    let out = read.await;
    (out, object.answer_bytes() - before)
}

/// A cold isolate that knows the schema (read by key first): what is measured next is the read.
async fn cold(object: &Rc<LocalObject>) -> SessionFactory {
    let f = isolate(object);
    ids(&f.open(), "SELECT id FROM items WHERE id = 1").await;
    f
}

#[test]
fn a_cold_first_page_and_an_indexed_lookup_bring_what_they_need_not_the_table() {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    block_on(async {
        fill(&a, 10_000).await;
        // The whole table, for scale: one cold scan.
        let b = cold(&object).await;
        let (all, whole) = answered(
            &object,
            ids(&b.open(), "SELECT id FROM items WHERE pad <> ''"),
        )
        .await;
        assert_eq!(all.len(), 10_000);

        let c = cold(&object).await;
        let (page, bytes) = answered(
            &object,
            ids(&c.open(), "SELECT id FROM items ORDER BY id LIMIT 20"),
        )
        .await;
        assert_eq!(page, (1..=20).collect::<Vec<_>>());
        assert!(
            bytes * 40 < whole,
            "first page {bytes} B, the table {whole} B"
        );
        // Further pages: more first rows, then from the cache.
        let (page, _) = answered(
            &object,
            ids(
                &c.open(),
                "SELECT id FROM items WHERE id > 500 ORDER BY id LIMIT 3",
            ),
        )
        .await;
        assert_eq!(page, [501, 502, 503]);
        let requests = object.requests();
        assert_eq!(
            ids(
                &c.open(),
                "SELECT id FROM items WHERE id > 100 ORDER BY id LIMIT 3"
            )
            .await,
            [101, 102, 103]
        );
        assert_eq!(
            object.requests(),
            requests,
            "within the rows loaded: no request"
        );

        let d = cold(&object).await;
        let (found, bytes) = answered(
            &object,
            ids(&d.open(), "SELECT id FROM items WHERE n = 7 ORDER BY id"),
        )
        .await;
        assert_eq!(found, (0..100).map(|i| i * 100 + 7).collect::<Vec<_>>());
        assert!(
            bytes * 40 < whole,
            "one value's rows {bytes} B, the table {whole} B"
        );
        let requests = object.requests();
        assert_eq!(
            ids(&d.open(), "SELECT id FROM items WHERE n = 7 AND id < 250").await,
            [7, 107, 207]
        );
        assert_eq!(
            object.requests(),
            requests,
            "the value's rows are kept: no request"
        );
    });
}

#[test]
fn reads_of_a_partly_loaded_table_equal_memory_as_rows_change() {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    let memory = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap();
    block_on(async {
        fill(&a, 1_000).await;
        fill(&memory, 1_000).await;
        let queries = [
            "SELECT id FROM items ORDER BY id LIMIT 5",
            "SELECT id FROM items ORDER BY id LIMIT 5 OFFSET 600",
            "SELECT id FROM items WHERE id > 990 ORDER BY id",
            "SELECT id FROM items WHERE id > 140 ORDER BY id LIMIT 4",
            "SELECT id FROM items ORDER BY id DESC LIMIT 3",
            "SELECT id FROM items WHERE n = 7 ORDER BY id",
            "SELECT id FROM items WHERE n = 99 AND id > 500",
            "SELECT id FROM items WHERE n = 1000",
            "SELECT id FROM items WHERE n > 97 ORDER BY id",
            "SELECT COUNT(*) AS id FROM items",
        ];
        let changes = [
            "INSERT INTO items VALUES (0, 7, NULL), (1500, 7, NULL)",
            "UPDATE items SET n = 7 WHERE id IN (2, 3, 998)",
            "DELETE FROM items WHERE id IN (1, 107, 999)",
            "UPDATE items SET n = NULL WHERE n = 99",
        ];
        for step in 0..=changes.len() {
            if step > 0 {
                run(&a, changes[step - 1]).await;
                run(&memory, changes[step - 1]).await;
            }
            // Each query on a cold isolate, and all of them in turn on one (partly loaded).
            let warm = cold(&object).await;
            for sql in queries {
                let want = ids(&memory.open(), sql).await;
                let c = cold(&object).await;
                assert_eq!(ids(&c.open(), sql).await, want, "step {step}, cold: {sql}");
                assert_eq!(
                    ids(&warm.open(), sql).await,
                    want,
                    "step {step}, warm: {sql}"
                );
            }
        }
    });
}

#[test]
fn an_older_object_answers_with_whole_tables_and_reads_are_the_same() {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    block_on(async {
        fill(&a, 2_000).await;
        object.as_older_object(true);
        let b = cold(&object).await;
        let requests = object.requests();
        let (page, bytes) = answered(
            &object,
            ids(&b.open(), "SELECT id FROM items ORDER BY id LIMIT 3"),
        )
        .await;
        assert_eq!(page, [1, 2, 3]);
        assert_eq!(
            object.requests(),
            requests + 2,
            "the request, then the table whole"
        );
        assert!(bytes > 50_000, "the whole table: {bytes} B");
        let c = cold(&object).await;
        assert_eq!(
            ids(&c.open(), "SELECT id FROM items WHERE n = 3 AND id < 300").await,
            [3, 103, 203]
        );
    });
}

#[test]
fn a_cold_count_is_the_objects_count_with_the_sessions_own_writes() {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    block_on(async {
        fill(&a, 10_000).await;
        let count = |s: Session| async move { count_in(&s, "items").await };
        let b = cold(&object).await;
        let s = b.open();
        let (n, bytes) = answered(&object, count(s.clone())).await;
        assert_eq!(n, 10_000);
        assert!(bytes < 1_000, "a number, not the table: {bytes} B");
        // Its own writes count; another isolate's commit after its snapshot does not.
        s.execute_batch(
            "INSERT INTO items VALUES (20001, 1, NULL), (20002, 2, NULL); \
             DELETE FROM items WHERE id = 5; UPDATE items SET n = 3 WHERE id = 6",
        )
        .await
        .unwrap();
        run(&a, "INSERT INTO items VALUES (30000, 1, NULL)").await;
        assert_eq!(count(s.clone()).await, 10_001);
        // (It read the table, which another isolate wrote since: serializable, it would
        // conflict at commit; it rolls back.)
        s.rollback().await.unwrap();
        let c = cold(&object).await;
        assert_eq!(count(c.open()).await, 10_001);
        run(&c, "INSERT INTO items VALUES (30001, 1, NULL)").await;
        // An older object answers without counts: the table whole, the same number.
        object.as_older_object(true);
        let d = cold(&object).await;
        let (n, bytes) = answered(&object, count(d.open())).await;
        assert_eq!(n, 10_002);
        assert!(bytes > 100_000, "the whole table: {bytes} B");
    });
}
