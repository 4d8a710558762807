//! The core compiled to wasm32 and run under Node (`wasm-bindgen-test`): the same engine,
//! sessions and registry a Worker uses, exercised in the wasm build.
#![cfg(target_arch = "wasm32")]

use gluebind::{
    params, Engine, Error, Finish, Outcome, Registry, SessionFactory, TeardownPolicy, NO_PARAMS,
};
use wasm_bindgen_test::wasm_bindgen_test;

const USERS: &str =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";

async fn registry(policy: TeardownPolicy) -> Registry {
    let factory = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .teardown(policy)
        .build()
        .unwrap();
    let setup = factory.open();
    setup.execute_batch(USERS).await.unwrap();
    setup.commit().await.unwrap();
    Registry::new(factory)
}

async fn count(r: &Registry) -> i64 {
    let rows = r
        .factory()
        .open()
        .execute("SELECT COUNT(*) AS n FROM users", NO_PARAMS)
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    rows.get(0).unwrap().get("n").unwrap()
}

#[wasm_bindgen_test]
async fn scope_lifecycle_in_wasm() {
    gluebind::wasm::init_panic_hook();
    gluebind::wasm::init_panic_hook(); // idempotent
    let r = registry(TeardownPolicy::Rollback).await;
    let scope = r.begin();
    let a = r.session(&scope).unwrap();
    let b = r.session(&scope).unwrap();
    assert_eq!(a.id(), b.id());
    // Session ids carry a random prefix from getrandom's JS source.
    assert!(a.id().len() > 3, "{}", a.id());
    let t = r.remove(&scope, Outcome::Completed).await.unwrap();
    assert_eq!(t.finish, Some(Finish::Clean));
    assert!(matches!(r.session(&scope), Err(Error::OutsideScope { .. })));
    let stats = r.stats();
    assert_eq!((stats.sessions_opened, stats.sessions_removed), (1, 1));
}

#[wasm_bindgen_test]
async fn snapshot_isolation_conflicts_and_unique_in_wasm() {
    let r = registry(TeardownPolicy::Rollback).await;
    let (s1, s2) = (r.begin(), r.begin());
    let a = r.session(&s1).unwrap();
    let b = r.session(&s2).unwrap();
    a.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![1i64, "a", "same@x"],
    )
    .await
    .unwrap();
    b.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![2i64, "b", "same@x"],
    )
    .await
    .unwrap();
    let seen_by_b = b
        .execute("SELECT * FROM users WHERE id = $1", params![1i64])
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    assert!(seen_by_b.is_empty(), "b does not see a's uncommitted row");
    a.commit().await.unwrap();
    assert_eq!(b.commit().await.unwrap_err().code(), "UNIQUE");
    assert_eq!(count(&r).await, 1);
}

#[wasm_bindgen_test]
async fn teardown_policies_in_wasm() {
    let r = registry(TeardownPolicy::Commit).await;
    let ok = r.begin();
    let failed = r.begin();
    for (scope, id) in [(&ok, 1i64), (&failed, 2)] {
        r.session(scope)
            .unwrap()
            .execute(
                "INSERT INTO users VALUES ($1, 'n', $2)",
                params![id, format!("{id}@x")],
            )
            .await
            .unwrap();
    }
    r.remove(&ok, Outcome::Completed).await.unwrap();
    r.remove(&failed, Outcome::Failed).await.unwrap();
    assert_eq!(
        count(&r).await,
        1,
        "only the completed event's write-behind commit"
    );
}

#[wasm_bindgen_test]
async fn json_rows_and_big_integers_in_wasm() {
    let r = registry(TeardownPolicy::Rollback).await;
    let s = r.factory().open();
    s.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![i64::MAX, "big", "b@x"],
    )
    .await
    .unwrap();
    let json = s
        .execute("SELECT * FROM users", NO_PARAMS)
        .await
        .unwrap()
        .into_rows()
        .unwrap()
        .to_json()
        .unwrap();
    assert_eq!(json[0]["id"], serde_json::json!(i64::MAX));
    let err = gluebind::wasm::to_worker_error(Error::Conflict {
        table: "users".into(),
        detail: "row 1".into(),
    });
    assert!(err.to_string().contains("retry"));
}

#[wasm_bindgen_test]
async fn kv_engine_over_an_in_memory_namespace_in_wasm() {
    use gluebind::kv::{CountingKv, MemoryKv};
    use std::rc::Rc;
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let open = |kv: Rc<CountingKv<MemoryKv>>| {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV?prefix=wasm", kv).unwrap())
            .build()
            .unwrap()
    };
    let isolate_a = open(kv.clone());
    let s = isolate_a.open();
    s.execute_batch(USERS).await.unwrap();
    let id = s.next_id("users").await.unwrap();
    assert!(id > 0 && id < (1i64 << 53), "kv ids are JS-safe: {id}");
    s.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![id, "ada", "ada@x"],
    )
    .await
    .unwrap();
    s.commit().await.unwrap();
    // Another isolate over the same namespace reads it from KV.
    let isolate_b = open(kv.clone());
    let t = isolate_b.open();
    let rows = t
        .execute("SELECT name FROM users WHERE id = $1", params![id])
        .await
        .unwrap()
        .into_rows()
        .unwrap();
    assert_eq!(rows.get(0).unwrap().get::<String>("name").unwrap(), "ada");
    assert!(t.kv_ops() >= 1);
    assert!(kv
        .inner()
        .keys()
        .iter()
        .all(|k| k.starts_with("gluebind/v1/p/wasm/")));
}

/// A derived model in the wasm build: create_all, insert, a filtered query, a page, 404.
#[wasm_bindgen_test]
async fn models_in_wasm() {
    use gluebind::{model, Model};

    #[derive(Debug, PartialEq, Model)]
    #[gluebind(table = "notes")]
    struct Note {
        #[gluebind(primary_key)]
        id: i64,
        body: String,
        pinned: Option<bool>,
    }

    let session = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap()
        .open();
    model::create_all(&session, &[Note::META]).await.unwrap();
    model::create_all(&session, &[Note::META]).await.unwrap();
    for id in 1..=5 {
        let pinned = (id % 2 == 0).then_some(true);
        let body = format!("note {id}");
        Note { id, body, pinned }.insert(&session).await.unwrap();
    }
    session.commit().await.unwrap();
    let unpinned = Note::query(&session)
        .filter(Note::PINNED.is_null().or(Note::PINNED.eq(false)))
        .count()
        .await
        .unwrap();
    assert_eq!(unpinned, 3);
    let page = Note::query(&session)
        .order_by(Note::ID.desc())
        .paginate(2, 2)
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(|n| n.id).collect::<Vec<_>>(), [3, 2]);
    assert_eq!((page.pages(), page.next_num()), (3, Some(3)));
    let missing = Note::get_or_404(&session, 9).await.unwrap_err();
    assert_eq!((missing.code(), missing.http_status()), ("NOT_FOUND", 404));
}

/// The unit of work in the wasm build: add, the identity map, a bind, commit hooks and query
/// recording (whose clock is `Date.now()` there: std's `Instant` would panic).
#[wasm_bindgen_test]
async fn unit_of_work_binds_hooks_and_recording_in_wasm() {
    use gluebind::{model, Model};
    use std::{cell::Cell, rc::Rc};

    #[derive(Debug, Clone, PartialEq, Model)]
    #[gluebind(table = "hits", bind_key = "cache")]
    struct Hit {
        #[gluebind(primary_key)]
        path: String,
        count: i64,
    }

    let committed = Rc::new(Cell::new(0));
    let seen = committed.clone();
    let session = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .bind_key("cache", Engine::from_url("memory://").unwrap())
        .record_queries(true)
        .after_commit(move |c| seen.set(seen.get() + c.changes.len()))
        .build()
        .unwrap()
        .open();
    model::create_all(&session, &[Hit::META]).await.unwrap();
    let hit = session
        .add(Hit {
            path: "/".into(),
            count: 1,
        })
        .unwrap();
    hit.borrow_mut().count += 1;
    let again = session.get::<Hit>("/").await.unwrap().unwrap();
    assert!(again.ptr_eq(&hit));
    session.commit().await.unwrap();
    assert_eq!(committed.get(), 1, "one insert");
    let stored = Hit::get(&session, "/").await.unwrap().unwrap();
    assert_eq!(stored.count, 2);
    let recorded = session.recorded_queries();
    assert!(recorded.iter().all(|q| q.duration_ms >= 0.0 && q.ok));
    assert!(recorded.iter().any(|q| q.sql.starts_with("INSERT")));
    assert!(recorded.iter().all(|q| q.session.ends_with(".cache")));
}

/// A handler served by `gluebind::wasm::serve` that fails with a gluebind error answers JSON
/// with the error's status (404, 409); a `worker::Error` is passed on; `?` on a worker call in
/// a gluebind handler gives `RUNTIME` (500).
#[wasm_bindgen_test]
async fn handler_errors_answer_with_their_status_in_wasm() {
    use gluebind::wasm::HandlerError;
    for (error, status) in [
        (
            Error::NotFound {
                table: "users".into(),
                detail: "no row with id = 7".into(),
            },
            404,
        ),
        (
            Error::Conflict {
                table: "users".into(),
                detail: "row 7".into(),
            },
            409,
        ),
        (Error::from(worker::Error::RustError("body".into())), 500),
    ] {
        let code = error.code();
        let message = error.to_string();
        let mut response = error.respond().unwrap();
        assert_eq!(response.status_code(), status, "{code}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "error": message, "code": code }));
    }
    assert_eq!(
        Error::from(worker::Error::RustError("x".into())).code(),
        "RUNTIME"
    );
    assert!(worker::Error::RustError("passed on".into())
        .respond()
        .is_err());
}
