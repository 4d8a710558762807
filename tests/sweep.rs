//! kv://: `DROP TABLE` of a table more rows hold than one commit could delete is a
//! schema-only commit — the table is renamed in place to a hidden name, SQL no longer sees it,
//! its name is free — and `migrate::sweep` deletes its rows (with their unique and index
//! entries) in bounded batches, then the table. A small table is dropped whole at once.

mod common;
use common::{block_on, dump, ids, scalar};
use gluebind::{
    kv::{CountingKv, MemoryKv},
    migrate::{self, Migration, Migrations},
    Engine, SessionFactory, NO_PARAMS,
};
use std::rc::Rc;

type Kv = Rc<CountingKv<MemoryKv>>;

fn kv_isolate(kv: &Kv) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
        .build()
        .unwrap()
}

async fn run(f: &SessionFactory, sql: &str) {
    let s = f.open();
    s.execute_batch(sql).await.unwrap();
    s.commit().await.unwrap();
    s.engine().flush().await.unwrap();
}

/// `rows` rows in `big` (a UNIQUE column, an index with entries in KV), in commits within a
/// session's budget.
async fn seed(f: &SessionFactory, rows: i64) {
    run(
        f,
        "CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER); \
         CREATE INDEX ix_big_n ON big (n)",
    )
    .await;
    seed_rows(f, rows).await;
}

/// `rows` rows in `big`, in commits within a session's budget.
async fn seed_rows(f: &SessionFactory, rows: i64) {
    let mut at = 0;
    while at < rows {
        let n = 200.min(rows - at);
        run(
            f,
            &format!(
                "INSERT INTO big SELECT N - 1 + {at}, 'u' || (N - 1 + {at}) || '@x', \
                 (N - 1 + {at}) % 10 FROM SERIES({n})"
            ),
        )
        .await;
        at += n;
    }
}

/// Keys of KV under the families of rows, unique and index entries, of table storage `name`.
fn keys_of(kv: &Kv, name: &str) -> usize {
    dump(kv.inner())
        .into_iter()
        .filter(|(k, _)| {
            ["r", "u", "x"]
                .iter()
                .any(|f| k.starts_with(&format!("gluebind/v1/{f}/{name}/")))
        })
        .count()
}

#[test]
fn a_large_table_dropped_on_kv_goes_at_once_and_its_keys_in_sweeps() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let f = kv_isolate(&kv);
    block_on(async {
        seed(&f, 1_000).await;
        let before = keys_of(&kv, "big");
        assert!(before >= 2_000, "{before} keys");
        let s = f.open();
        s.execute_batch("DROP TABLE big").await.unwrap();
        s.commit().await.unwrap();
        s.engine().flush().await.unwrap();
        assert!(s.kv_ops() <= 20, "{} KV operations", s.kv_ops());

        // Gone for SQL, in this isolate and a cold one; its name is free.
        for f in [&f, &kv_isolate(&kv)] {
            let s = f.open();
            assert!(s.execute_batch("SELECT * FROM big").await.is_err());
            let tables = s
                .execute("SELECT COUNT(*) AS n FROM GLUE_TABLES", NO_PARAMS)
                .await
                .unwrap()
                .into_rows()
                .unwrap();
            assert_eq!(tables.get(0).unwrap().get::<i64>("n").unwrap(), 0);
        }
        let create = "CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER); \
                      INSERT INTO big VALUES (1, 'u1@x', 1), (2000, 'new@x', 2)";
        run(&f, create).await;

        // Swept in batches, each a commit within the session's budget; the new table stays.
        let mut sweeps = 0;
        loop {
            let s = kv_isolate(&kv).open();
            let swept = migrate::sweep(&s).await.unwrap();
            s.engine().flush().await.unwrap();
            sweeps += 1;
            assert!(sweeps < 20, "{swept:?}");
            if swept.left == 0 {
                assert_eq!(swept.tables, 1, "{swept:?}");
                break;
            }
            assert!(swept.rows > 0, "{swept:?}");
        }
        assert!(sweeps >= 3, "{sweeps} sweeps");
        assert_eq!(keys_of(&kv, "big"), 0, "the dropped table's keys are gone");
        let s = kv_isolate(&kv).open();
        assert_eq!(ids(&s, "SELECT id FROM big ORDER BY id").await, [1, 2000]);
        let err = s
            .execute_batch("INSERT INTO big VALUES (3, 'new@x', 3)")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        let swept = migrate::sweep(&s).await.unwrap();
        assert_eq!(swept, migrate::Swept::default());

        // Dropped and created again in one unit of work: refused (the drop commits first).
        let s = f.open();
        s.execute_batch("DELETE FROM big").await.unwrap();
        s.commit().await.unwrap();
        seed_rows(&f, 1_000).await;
        let s = f.open();
        s.execute_batch("DROP TABLE big").await.unwrap();
        let err = s.execute_batch(create).await.unwrap_err();
        assert!(err.to_string().contains("dropped in place"), "{err}");
    });
}

#[test]
fn a_small_table_dropped_on_kv_goes_whole_at_once() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let f = kv_isolate(&kv);
    block_on(async {
        seed(&f, 50).await;
        run(&f, "DROP TABLE big").await;
        assert_eq!(keys_of(&kv, "big"), 0);
        let swept = migrate::sweep(&f.open()).await.unwrap();
        assert_eq!(swept.left, 0);
    });
}

/// A migration's `drop_table` of a large kv:// table fits one start-up; each start-up then
/// sweeps a batch of its rows.
#[test]
fn a_drop_table_step_on_a_large_kv_table_fits_and_start_ups_sweep_it() {
    let kv: Kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let f = kv_isolate(&kv);
    block_on(async {
        seed(&f, 1_000).await;
        let steps = Migrations::new().step(Migration::new("0001_drop_big").drop_table("big"));
        let s = f.open();
        let report = steps.run(&s, &[]).await.unwrap();
        assert_eq!(report.applied, ["0001_drop_big"]);
        assert!(report.swept.rows > 0, "{report:?}");
        assert!(s.kv_ops() <= 900, "{} KV operations", s.kv_ops());
        s.engine().flush().await.unwrap();
        let left = keys_of(&kv, "big");
        let report = steps.run(&kv_isolate(&kv).open(), &[]).await.unwrap();
        assert!(report.applied.is_empty());
        assert!(report.swept.rows > 0, "{report:?}");
        assert!(keys_of(&kv, "big") < left);
        let s = kv_isolate(&kv).open();
        assert!(s.execute_batch("SELECT * FROM big").await.is_err());
        assert_eq!(scalar(&s, "SELECT COUNT(*) AS n FROM GLUE_TABLES").await, 1);
    });
}
