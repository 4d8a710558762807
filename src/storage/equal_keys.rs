//! Keys GlueSQL holds equal but spells differently (the decimals 1, 1.0 and 1.00) are one
//! stored row on every durable storage, and keys it holds unequal (1.05 and 1.5) are two — also
//! once the data is read back from storage by a new isolate or an evicted object.

use crate::{
    durable::LocalObject, kv::MemoryKv, param, Engine, ParamLiteral, SessionFactory, Value,
};
use std::rc::Rc;

fn dec(text: &str) -> ParamLiteral {
    param(Value::Decimal(text.parse().expect("a decimal"))).expect("a parameter")
}

fn factory(engine: Engine) -> SessionFactory {
    SessionFactory::builder().bind(engine).build().unwrap()
}

async fn rows(f: &SessionFactory) -> Vec<(String, i64)> {
    f.open()
        .execute_batch("SELECT CAST(id AS TEXT) AS id, v FROM t ORDER BY id")
        .await
        .unwrap()
        .remove(0)
        .into_rows()
        .unwrap()
        .iter()
        .map(|r| (r.get("id").unwrap(), r.get("v").unwrap()))
        .collect()
}

/// Writes through other spellings, then reads back through `fresh` (storage read anew).
async fn scenario(a: &SessionFactory, fresh: impl Fn() -> SessionFactory) {
    let s = a.open();
    s.execute_batch(
        "CREATE TABLE t (id DECIMAL PRIMARY KEY, v INTEGER NOT NULL); \
         INSERT INTO t VALUES (CAST('1.0' AS DECIMAL), 1), (CAST('2.0' AS DECIMAL), 1), \
         (CAST('1.05' AS DECIMAL), 1)",
    )
    .await
    .unwrap();
    s.commit().await.unwrap();
    let s = a.open();
    s.execute("UPDATE t SET v = 2 WHERE id = $1", [dec("1")])
        .await
        .unwrap();
    s.execute("DELETE FROM t WHERE id = $1", [dec("2.00")])
        .await
        .unwrap();
    s.execute("INSERT INTO t VALUES ($1, 3)", [dec("1.5")])
        .await
        .unwrap();
    s.commit().await.unwrap();
    let expected = vec![
        ("1.0".to_owned(), 2),
        ("1.05".to_owned(), 1),
        ("1.5".to_owned(), 3),
    ];
    assert_eq!(rows(a).await, expected, "in the isolate");
    assert_eq!(rows(&fresh()).await, expected, "read back from storage");
}

#[test]
fn on_do_over_sqlite_after_an_eviction() {
    let object = Rc::new(LocalObject::over_sqlite());
    let engine = || Engine::with_object("do://DB", object.clone()).unwrap();
    let a = factory(engine());
    pollster::block_on(scenario(&a, || {
        object.restart();
        factory(engine())
    }));
}

#[test]
fn on_kv_from_a_new_isolate() {
    let kv = Rc::new(MemoryKv::new());
    let engine = || Engine::with_kv("kv://KV", kv.clone()).unwrap();
    let a = factory(engine());
    pollster::block_on(scenario(&a, || factory(engine())));
}
