//! Helpers shared by the native integration tests.
#![allow(dead_code)]

use gluebind::{params, Engine, Error, Registry, Session, SessionFactory, TeardownPolicy};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

pub fn factory() -> SessionFactory {
    factory_with(TeardownPolicy::Rollback)
}

pub fn factory_with(policy: TeardownPolicy) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .teardown(policy)
        .build()
        .unwrap()
}

/// An isolate (a session factory with an engine of its own) over the database object
/// `object`, at `do://GLUEBIND_DB`: several over one object are several isolates over one
/// Durable Object.
pub fn object_isolate(object: &std::rc::Rc<gluebind::durable::LocalObject>) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_object("do://GLUEBIND_DB", object.clone()).unwrap())
        .build()
        .unwrap()
}

pub const USERS: &str =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";

/// A factory whose engine already has the users table committed.
pub fn users_factory() -> SessionFactory {
    let f = factory();
    let s = f.open();
    block_on(async {
        s.execute_batch(USERS).await.unwrap();
        s.commit().await.unwrap();
    });
    f
}

pub fn users_registry(policy: TeardownPolicy) -> Registry {
    let f = factory_with(policy);
    let s = f.open();
    block_on(async {
        s.execute_batch(USERS).await.unwrap();
        s.commit().await.unwrap();
    });
    Registry::new(f)
}

pub async fn insert(s: &Session, id: i64, name: &str, email: &str) -> Result<(), Error> {
    s.execute(
        "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
        params![id, name, email],
    )
    .await
    .map(|_| ())
}

pub async fn count(s: &Session) -> i64 {
    count_in(s, "users").await
}

/// Rows of `table` as `s` sees them.
pub async fn count_in(s: &Session, table: &str) -> i64 {
    scalar(s, &format!("SELECT COUNT(*) AS n FROM {table}")).await
}

/// The integer a one-value query (`SELECT COUNT(*) … AS n`) answers: its column `n`.
pub async fn scalar(s: &Session, sql: &str) -> i64 {
    s.execute_batch(sql)
        .await
        .unwrap()
        .remove(0)
        .into_rows()
        .unwrap()
        .get(0)
        .unwrap()
        .get("n")
        .unwrap()
}

/// The `id` column of what `sql` (without parameters) returns, in order.
pub async fn ids(s: &Session, sql: &str) -> Vec<i64> {
    column(s, sql, "id").await
}

/// Column `name` of what `sql` (one statement, without parameters) returns, in order.
pub async fn column<T: gluebind::FromValue>(s: &Session, sql: &str, name: &str) -> Vec<T> {
    let rows = s
        .execute(sql, gluebind::NO_PARAMS)
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    rows.iter().map(|r| r.get(name).unwrap()).collect()
}

/// Runs `sql` in a unit of work of its own and commits it, finished (on kv:// the commit
/// record's delete included, so that another isolate reads it without waiting).
pub async fn run(f: &SessionFactory, sql: &str) -> gluebind::CommitInfo {
    let s = f.open();
    s.execute_batch(sql).await.unwrap();
    commit(&s).await
}

/// Commits `s`, finished (see [`run`]).
pub async fn commit(s: &Session) -> gluebind::CommitInfo {
    let info = s.commit().await.unwrap();
    s.engine().flush().await.unwrap();
    info
}

pub async fn name_of(s: &Session, id: i64) -> Option<String> {
    let rows = s
        .execute("SELECT name FROM users WHERE id = $1", params![id])
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    rows.get(0).map(|r| r.get("name").unwrap())
}

/// A new "isolate" over a KV namespace: an engine with its own cache (tests of kv://).
pub fn isolate<B: gluebind::kv::KvBackend + 'static>(
    kv: &std::rc::Rc<B>,
    url: &str,
) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_kv(url, kv.clone()).unwrap())
        .build()
        .unwrap()
}

/// Every key and entry of an in-memory namespace, read without counting as operations.
pub fn dump(kv: &gluebind::kv::MemoryKv) -> Vec<(String, gluebind::kv::KvEntry)> {
    kv.keys()
        .into_iter()
        .map(|k| {
            let entry = kv.peek(&k).unwrap();
            (k, entry)
        })
        .collect()
}

/// Resolves after being polled once more: lets the other futures of a `join` run.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The engines of the cases run on every engine: `do-isolates` is two isolates over one
/// database object.
pub const ENGINES: [&str; 4] = ["memory", "kv", "do", "do-isolates"];

/// Two factories on `engine` (one of [`ENGINES`]) with `isolation`: one isolate twice, or on
/// `do-isolates` two isolates over one database object.
pub fn pair(engine: &str, isolation: gluebind::Isolation) -> [SessionFactory; 2] {
    use std::rc::Rc;
    let object = Rc::new(gluebind::durable::LocalObject::new());
    let kv = Rc::new(gluebind::kv::MemoryKv::new());
    let make = || {
        let engine = match engine {
            "memory" => Engine::from_url("memory://").unwrap(),
            "kv" => Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap(),
            _ => Engine::with_object("do://GLUEBIND_DB", object.clone()).unwrap(),
        };
        SessionFactory::builder()
            .bind(engine)
            .isolation(isolation)
            .build()
            .unwrap()
    };
    let first = make();
    let second = if engine == "do-isolates" {
        make()
    } else {
        first.clone()
    };
    [first, second]
}
