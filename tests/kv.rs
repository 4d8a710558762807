//! The kv:// engine over an in-memory KV namespace: semantics, layout, cost budget.

mod common;
use common::block_on;
use gluebind::{
    kv::{CountingKv, KvOps, MemoryKv},
    params, Engine, SessionFactory,
};
use std::rc::Rc;

const USERS: &str =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";

fn kv_factory(kv: Rc<CountingKv<MemoryKv>>, url: &str) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_kv(url, kv).unwrap())
        .build()
        .unwrap()
}

#[test]
fn smoke_insert_read_across_isolates() {
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let a = kv_factory(kv.clone(), "kv://GLUEBIND_KV");
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        s.commit().await.unwrap();
        s.execute(
            "INSERT INTO users VALUES ($1, $2, $3)",
            params![1i64, "ada", "ada@x"],
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        // A second isolate (its own engine and cache) over the same namespace.
        let b = kv_factory(kv.clone(), "kv://GLUEBIND_KV");
        let t = b.open();
        let rows = t
            .execute("SELECT name FROM users WHERE id = $1", params![1i64])
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(rows.get(0).unwrap().get::<String>("name").unwrap(), "ada");
        let err = t
            .execute(
                "INSERT INTO users VALUES ($1, $2, $3)",
                params![2i64, "b", "ada@x"],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        let _: KvOps = kv.ops();
    });
    println!("{:?}", kv.inner().keys());
}
