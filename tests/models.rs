//! Models: the derive's row ⇄ struct round trip, create_all/drop_all, the query API with
//! bound parameters, get_or_404 and Flask-SQLAlchemy's pagination behaviours.
//!
//! Long on purpose: each test is a scenario that reads on its own.

mod common;
use common::{block_on, factory_with, isolate};
// `gluebind::Model` is both the derive and the trait (as with serde).
use gluebind::{model, Engine, Error, Model, Session, SessionFactory, TeardownPolicy};

/// A memory:// factory with a memory:// engine for Todo's bind key "cache".
fn factory() -> SessionFactory {
    factory_of(
        &factory_with(TeardownPolicy::Rollback).open(),
        Engine::from_url("memory://").unwrap(),
    )
}

/// A factory on the engines of `s` (or `cache` when `s` has no cache bind).
fn factory_of(s: &Session, cache: Engine) -> SessionFactory {
    let cache = s
        .for_bind(Some("cache"))
        .map_or(cache, |c| c.engine().clone());
    SessionFactory::builder()
        .bind(s.engine().clone())
        .bind_key("cache", cache)
        .build()
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users")]
struct User {
    #[gluebind(primary_key)]
    id: i64,
    name: String,
    #[gluebind(unique)]
    email: String,
    age: Option<i32>,
}

/// Every supported field type, NULL-able and not; default table name `every_type`.
#[derive(Debug, Clone, PartialEq, Model)]
struct EveryType {
    #[gluebind(primary_key)]
    key: String,
    i8_: i8,
    i16_: i16,
    i32_: i32,
    i64_: i64,
    u8_: u8,
    u16_: u16,
    u32_: u32,
    u64_: u64,
    f64_: f64,
    flag: bool,
    bytes: Vec<u8>,
    #[gluebind(column = "maybe_text")]
    opt_text: Option<String>,
    opt_i64: Option<i64>,
    opt_i8: Option<i8>,
    opt_u64: Option<u64>,
    opt_f64: Option<f64>,
    opt_bool: Option<bool>,
    opt_bytes: Option<Vec<u8>>,
}

/// Flask-SQLAlchemy's test model, on the "cache" bind.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(bind_key = "cache")]
struct Todo {
    #[gluebind(primary_key)]
    id: i64,
    title: String,
}

fn user(id: i64, name: &str, age: Option<i32>) -> User {
    User {
        id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        age,
    }
}

async fn users_session() -> Session {
    let s = factory().open();
    model::create_all(&s, &[User::META]).await.unwrap();
    for (id, name, age) in [
        (1, "Ada", Some(36)),
        (2, "Bob", None),
        (3, "Cy", Some(17)),
        (4, "Dee", Some(52)),
        (5, "Abe", Some(18)),
    ] {
        user(id, name, age).insert(&s).await.unwrap();
    }
    s.commit().await.unwrap();
    s
}

async fn todos(n: i64) -> Session {
    let s = factory().open();
    model::create_all(&s, &[Todo::META]).await.unwrap();
    for id in 1..=n {
        let title = format!("task {id}");
        Todo { id, title }.insert(&s).await.unwrap();
    }
    s.commit().await.unwrap();
    s
}

fn ids(users: &[User]) -> Vec<i64> {
    users.iter().map(|u| u.id).collect()
}

#[test]
fn metadata_and_ddl() {
    let meta = User::META;
    assert_eq!(meta.table(), "users");
    assert_eq!(meta.primary_key().name(), "id");
    assert_eq!(meta.bind_key(), None);
    assert_eq!(Todo::META.bind_key(), Some("cache"));
    assert_eq!(EveryType::META.table(), "every_type");
    assert_eq!(User::EMAIL.name(), "email");
    assert_eq!(EveryType::OPT_TEXT.name(), "maybe_text");
    assert_eq!(
        meta.create_sql(),
        "CREATE TABLE IF NOT EXISTS \"users\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT \
         NULL, \"email\" TEXT NOT NULL UNIQUE, \"age\" INT32)"
    );
    let types: Vec<&str> = EveryType::META
        .columns()
        .iter()
        .map(|c| c.sql_type())
        .collect();
    assert_eq!(
        types,
        [
            "TEXT", "INT8", "INT16", "INT32", "INTEGER", "UINT8", "UINT16", "UINT32", "UINT64",
            "FLOAT", "BOOLEAN", "BYTEA", "TEXT", "INTEGER", "INT8", "UINT64", "FLOAT", "BOOLEAN",
            "BYTEA"
        ]
    );
}

#[test]
fn every_type_round_trips_with_and_without_nulls() {
    block_on(async {
        let s = factory().open();
        model::create_all(&s, &[EveryType::META]).await.unwrap();
        let full = EveryType {
            key: "full".into(),
            i8_: i8::MIN,
            i16_: i16::MAX,
            i32_: -7,
            i64_: i64::MAX,
            u8_: u8::MAX,
            u16_: 65_000,
            u32_: u32::MAX,
            u64_: u64::MAX,
            f64_: -1.5,
            flag: true,
            bytes: vec![0, 1, 255],
            opt_text: Some("x".into()),
            opt_i64: Some(i64::MIN),
            opt_i8: Some(-1),
            opt_u64: Some(1),
            opt_f64: Some(0.25),
            opt_bool: Some(false),
            opt_bytes: Some(vec![]),
        };
        let empty = EveryType {
            key: "nulls".into(),
            opt_text: None,
            opt_i64: None,
            opt_i8: None,
            opt_u64: None,
            opt_f64: None,
            opt_bool: None,
            opt_bytes: None,
            ..full.clone()
        };
        full.insert(&s).await.unwrap();
        empty.insert(&s).await.unwrap();
        s.commit().await.unwrap();
        let other = s.engine().clone();
        let fresh = gluebind::SessionFactory::builder()
            .bind(other)
            .build()
            .unwrap()
            .open();
        assert_eq!(EveryType::get(&fresh, "full").await.unwrap(), Some(full));
        assert_eq!(EveryType::get(&fresh, "nulls").await.unwrap(), Some(empty));
        let nulls = EveryType::query(&fresh)
            .filter(EveryType::OPT_TEXT.is_null())
            .count()
            .await
            .unwrap();
        assert_eq!(nulls, 1);
    });
}

#[test]
fn create_all_twice_and_drop_all_twice() {
    block_on(async {
        let s = factory().open();
        let models = [User::META, Todo::META];
        model::create_all(&s, &models).await.unwrap();
        s.commit().await.unwrap();
        user(1, "Ada", None).insert(&s).await.unwrap();
        s.commit().await.unwrap();
        // Again, in the same and in another session: no error, no change, nothing to commit.
        model::create_all(&s, &models).await.unwrap();
        assert!(
            !s.is_dirty(),
            "create_all on existing tables writes nothing"
        );
        model::create_all(
            &factory_of(&s, Engine::from_url("memory://").unwrap()).open(),
            &models,
        )
        .await
        .unwrap();
        assert_eq!(User::query(&s).count().await.unwrap(), 1);

        model::drop_all(&s, &models).await.unwrap();
        model::drop_all(&s, &models).await.unwrap();
        s.commit().await.unwrap();
        assert!(User::query(&s).count().await.is_err(), "the table is gone");
        model::create_all(&s, &models).await.unwrap();
        assert_eq!(User::query(&s).count().await.unwrap(), 0);
    });
}

#[test]
fn create_all_per_bind() {
    block_on(async {
        let s = factory().open();
        let models = [User::META, Todo::META];
        model::create_all_bind(&s, &models, Some("cache"))
            .await
            .unwrap();
        assert_eq!(Todo::query(&s).count().await.unwrap(), 0);
        assert!(
            User::query(&s).count().await.is_err(),
            "users is on the default bind"
        );
        model::create_all_bind(&s, &models, None).await.unwrap();
        assert_eq!(User::query(&s).count().await.unwrap(), 0);
        model::drop_all_bind(&s, &models, Some("cache"))
            .await
            .unwrap();
        assert!(Todo::query(&s).count().await.is_err());
        assert_eq!(User::query(&s).count().await.unwrap(), 0);
    });
}

#[test]
fn filters_order_limit_offset() {
    block_on(async {
        let s = users_session().await;
        let q = || User::query(&s);
        assert_eq!(ids(&q().all().await.unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(
            ids(&q().order_by(User::ID.desc()).all().await.unwrap()),
            [5, 4, 3, 2, 1]
        );
        assert_eq!(
            ids(&q()
                .filter(User::AGE.ge(18))
                .order_by(User::AGE.asc())
                .all()
                .await
                .unwrap()),
            [5, 1, 4]
        );
        assert_eq!(
            ids(&q()
                .filter(User::AGE.lt(18).or(User::AGE.is_null()))
                .all()
                .await
                .unwrap()),
            [2, 3]
        );
        // SQL's three-valued logic with NULL ages (Bob), which GlueSQL's AND/OR alone get
        // wrong: see model/sql.rs.
        assert_eq!(
            ids(&q()
                .filter(User::AGE.is_null().or(User::AGE.lt(18)))
                .all()
                .await
                .unwrap()),
            [2, 3]
        );
        assert_eq!(
            ids(&q()
                .filter(!(User::AGE.lt(18).or(User::AGE.is_null())))
                .all()
                .await
                .unwrap()),
            [1, 4, 5]
        );
        assert_eq!(
            ids(&q()
                .filter(!(User::AGE.gt(100).and(User::ID.eq(2))))
                .all()
                .await
                .unwrap()),
            [1, 3, 4, 5],
            "NOT (NULL AND TRUE) is NULL: Bob stays out"
        );
        assert_eq!(
            ids(&q().filter(!User::AGE.ge(18)).all().await.unwrap()),
            [3],
            "NOT (NULL >= 18) is NULL"
        );
        assert_eq!(
            ids(&q().filter(!User::AGE.is_in([17, 52])).all().await.unwrap()),
            [1, 5]
        );
        assert_eq!(
            ids(&q()
                .filter(User::AGE.is_not_null())
                .filter(User::AGE.le(36))
                .all()
                .await
                .unwrap()),
            [1, 3, 5]
        );
        assert_eq!(
            ids(&q()
                .filter(User::AGE.gt(17).and(User::AGE.ne(52)))
                .all()
                .await
                .unwrap()),
            [1, 5]
        );
        assert_eq!(
            ids(&q().filter(!User::NAME.like("A%")).all().await.unwrap()),
            [2, 3, 4]
        );
        assert_eq!(
            ids(&q().filter(User::ID.is_in([4, 2, 9])).all().await.unwrap()),
            [2, 4]
        );
        assert!(q()
            .filter(User::ID.is_in(Vec::<i64>::new()))
            .all()
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(&q()
                .filter_by(User::EMAIL, "bob@example.com")
                .all()
                .await
                .unwrap()),
            [2]
        );
        // Two orders: age (NULL first or last is GlueSQL's business), then name.
        let paged = q().order_by(User::ID.asc()).limit(2).offset(1);
        assert_eq!(ids(&paged.all().await.unwrap()), [2, 3]);
        assert_eq!(paged.count().await.unwrap(), 2);
        assert_eq!(q().offset(4).count().await.unwrap(), 1);
        assert_eq!(q().offset(9).count().await.unwrap(), 0);
        assert_eq!(q().filter(User::AGE.ge(18)).count().await.unwrap(), 3);
        assert_eq!(q().count().await.unwrap(), 5);
    });
}

#[test]
fn first_one_get() {
    block_on(async {
        let s = users_session().await;
        let q = || User::query(&s);
        let first = q().order_by(User::NAME.asc()).first().await.unwrap();
        assert_eq!(first.map(|u| u.name).as_deref(), Some("Abe"));
        assert_eq!(q().filter(User::ID.gt(99)).first().await.unwrap(), None);

        assert_eq!(q().filter_by(User::NAME, "Cy").one().await.unwrap().id, 3);
        let none = q().filter_by(User::NAME, "Zed").one().await.unwrap_err();
        assert_eq!(none.code(), "NOT_FOUND", "{none}");
        let many = q().filter(User::AGE.ge(18)).one().await.unwrap_err();
        assert_eq!(many.code(), "MULTIPLE_RESULTS");
        assert!(matches!(many, Error::MultipleResults { ref table } if table == "users"));
        assert!(many.to_string().contains("first()"), "{many}");

        assert_eq!(User::get(&s, 4).await.unwrap().unwrap().name, "Dee");
        assert_eq!(User::get(&s, 40).await.unwrap(), None);
        // get() on a filtered query: the row must match the filters too.
        let adults = q().filter(User::AGE.ge(18));
        assert_eq!(adults.get(1).await.unwrap().map(|u| u.id), Some(1));
        assert_eq!(adults.get(3).await.unwrap(), None);
    });
}

#[test]
fn get_or_404_and_first_or_404() {
    block_on(async {
        let s = users_session().await;
        assert_eq!(User::get_or_404(&s, 2).await.unwrap().name, "Bob");
        let err = User::get_or_404(&s, 404).await.unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("NOT_FOUND", 404));
        assert!(
            matches!(&err, Error::NotFound { table, detail } if table == "users" && detail.contains("id = 404")),
            "{err}"
        );
        let q = User::query(&s).filter_by(User::NAME, "Ada");
        assert_eq!(q.first_or_404().await.unwrap().id, 1);
        let err = User::query(&s)
            .filter_by(User::NAME, "Nobody")
            .first_or_404()
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 404);
        model::create_all(&s, &[EveryType::META]).await.unwrap();
        let key = EveryType::get_or_404(&s, "it's \"x\"").await.unwrap_err();
        assert!(key.to_string().contains("\"it's \\\"x\\\"\""), "{key}");
    });
}

#[test]
fn update_and_delete_by_primary_key() {
    block_on(async {
        let s = users_session().await;
        let mut bob = User::get_or_404(&s, 2).await.unwrap();
        bob.age = Some(40);
        bob.name = "Robert".into();
        bob.update(&s).await.unwrap();
        assert_eq!(User::get_or_404(&s, 2).await.unwrap(), bob);
        bob.delete(&s).await.unwrap();
        assert_eq!(User::get(&s, 2).await.unwrap(), None);
        assert_eq!(bob.delete(&s).await.unwrap_err().code(), "NOT_FOUND");
        assert_eq!(bob.update(&s).await.unwrap_err().code(), "NOT_FOUND");
        let dup = user(6, "Ada", None).insert(&s).await.unwrap_err();
        assert!(
            matches!(dup, Error::Unique { ref column, .. } if column == "email"),
            "{dup}"
        );
    });
}

#[test]
fn hostile_values_are_bound_not_spliced() {
    block_on(async {
        let s = factory().open();
        model::create_all(&s, &[User::META]).await.unwrap();
        let nasty = [
            "'; DROP TABLE users; --",
            "\" OR 1=1 --",
            "$1",
            "Robert'); DELETE FROM users WHERE ('1' = '1",
            "back\\slash\0nul",
            "ünï©ødé 🦀",
        ];
        for (i, text) in nasty.iter().enumerate() {
            let id = i64::try_from(i).unwrap() + 1;
            User {
                id,
                name: (*text).to_owned(),
                email: format!("{text}@{id}"),
                age: None,
            }
            .insert(&s)
            .await
            .unwrap();
        }
        s.commit().await.unwrap();
        for (i, text) in nasty.iter().enumerate() {
            let found = User::query(&s)
                .filter_by(User::NAME, *text)
                .one()
                .await
                .unwrap();
            assert_eq!(found.id, i64::try_from(i).unwrap() + 1);
            assert_eq!(found.name, *text, "stored verbatim");
            let liked = User::query(&s)
                .filter(User::NAME.like(*text))
                .count()
                .await
                .unwrap();
            assert!(liked >= 1, "LIKE with {text:?}");
        }
        assert_eq!(User::query(&s).count().await.unwrap(), 6);
    });
}

#[test]
fn queries_see_the_sessions_own_writes_only() {
    block_on(async {
        let f = factory();
        let a = f.open();
        model::create_all(&a, &[User::META]).await.unwrap();
        a.commit().await.unwrap();
        let b = f.open();
        user(1, "Ada", None).insert(&a).await.unwrap();
        assert_eq!(
            User::query(&a).count().await.unwrap(),
            1,
            "read your writes"
        );
        assert_eq!(User::query(&b).count().await.unwrap(), 0, "isolation");
    });
}

// --- Pagination: Flask-SQLAlchemy's tests/test_pagination.py, on 250 todos -------------------

#[test]
fn paginate_defaults_and_args() {
    block_on(async {
        let s = todos(250).await;
        let q = || Todo::query(&s).order_by(Todo::ID.asc());
        // test_paginate: page 1 of 20 by default.
        let p = q().paginate_args(None, None).await.unwrap();
        assert_eq!((p.page, p.per_page, p.items.len()), (1, 20, 20));
        assert_eq!((p.total, p.pages()), (Some(250), 13));
        assert_eq!(p.items[0].title, "task 1");
        // test_paginate_qs
        let p = q().paginate_args(Some("2"), Some("10")).await.unwrap();
        assert_eq!((p.page, p.per_page), (2, 10));
        assert_eq!(p.items[0].id, 11);
        assert_eq!((p.prev_num(), p.next_num()), (Some(1), Some(3)));
        // test_paginate_max: a larger per_page is capped, not refused.
        let p = q().paginate(1, 100).max_per_page(50).await.unwrap();
        assert_eq!((p.per_page, p.items.len()), (50, 50));
        // test_next_page_size
        let p = q().paginate(2, 110).max_per_page(250).await.unwrap();
        assert_eq!((p.page, p.per_page, p.items.len()), (2, 110, 110));
        // default_per_page
        let p = q()
            .paginate_args(None, None)
            .default_per_page(7)
            .await
            .unwrap();
        assert_eq!(p.per_page, 7);
    });
}

#[test]
fn paginate_first_middle_last_and_past_the_end() {
    block_on(async {
        let s = todos(25).await;
        let q = || Todo::query(&s).order_by(Todo::ID.asc());
        let first = q().paginate(1, 10).await.unwrap();
        assert_eq!((first.has_prev(), first.has_next()), (false, true));
        assert_eq!((first.prev_num(), first.next_num()), (None, Some(2)));
        assert_eq!((first.first(), first.last()), (1, 10));
        let middle = q().paginate(2, 10).await.unwrap();
        assert_eq!((middle.prev_num(), middle.next_num()), (Some(1), Some(3)));
        let last = q().paginate(3, 10).await.unwrap();
        assert_eq!(last.items.len(), 5);
        assert_eq!((last.has_prev(), last.has_next()), (true, false));
        assert_eq!((last.prev_num(), last.next_num()), (Some(2), None));
        assert_eq!((last.first(), last.last(), last.pages()), (21, 25, 3));
        // Past the end: 404 with error_out (Flask), an empty page without.
        let err = q().paginate(4, 10).await.unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("NOT_FOUND", 404));
        assert!(err.to_string().contains("page 4"), "{err}");
        let empty = q().paginate(4, 10).error_out(false).await.unwrap();
        assert!(empty.items.is_empty());
        assert_eq!(
            (empty.total, empty.pages(), empty.has_next()),
            (Some(25), 3, false)
        );
        assert_eq!(empty.prev_num(), Some(3));
        // Filters apply to items and total alike.
        let odd = Todo::query(&s)
            .filter(Todo::ID.le(5))
            .paginate(1, 2)
            .await
            .unwrap();
        assert_eq!((odd.total, odd.pages()), (Some(5), 3));
    });
}

#[test]
fn paginate_empty_table() {
    block_on(async {
        // test_no_items_404: page 1 of nothing is a page; page 2 is not.
        let s = todos(0).await;
        let p = Todo::query(&s).paginate(1, 20).await.unwrap();
        assert!(p.items.is_empty());
        assert_eq!(
            (p.total, p.pages(), p.has_next(), p.has_prev()),
            (Some(0), 0, false, false)
        );
        assert_eq!((p.first(), p.last()), (0, 0));
        assert!(p.iter_pages().is_empty());
        let err = Todo::query(&s).paginate(2, 20).await.unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
    });
}

#[test]
fn paginate_bad_values() {
    block_on(async {
        let s = todos(30).await;
        let q = || Todo::query(&s).order_by(Todo::ID.asc());
        // test_error_out: ("abc", None), (None, "abc"), (0, None), (None, -1) → 404.
        for (page, per_page) in [
            (Some("abc"), None),
            (None, Some("abc")),
            (Some("0"), None),
            (None, Some("-1")),
            (Some(""), None),
        ] {
            let err = q().paginate_args(page, per_page).await.unwrap_err();
            assert_eq!(err.code(), "NOT_FOUND", "{page:?} {per_page:?}: {err}");
        }
        for (page, per_page) in [(0, 20), (-3, 20), (1, 0), (1, -1), (i64::MIN, i64::MIN)] {
            let err = q().paginate(page, per_page).await.unwrap_err();
            assert_eq!(err.http_status(), 404, "{page} {per_page}");
            assert!(err.to_string().contains("not valid"), "{err}");
        }
        // max_per_page 0 makes every per_page 0: an error, as in Flask.
        assert!(q().paginate(1, 5).max_per_page(0).await.is_err());
        // Without error_out: page 1, per_page the default.
        let p = q().paginate(0, -1).error_out(false).await.unwrap();
        assert_eq!((p.page, p.per_page), (1, 20));
        let p = q()
            .paginate_args(Some("x"), Some("y"))
            .error_out(false)
            .await
            .unwrap();
        assert_eq!((p.page, p.per_page, p.items.len()), (1, 20, 20));
        // A huge page is past the end, not an overflow.
        assert_eq!(
            q().paginate(i64::MAX, i64::MAX).await.unwrap_err().code(),
            "NOT_FOUND"
        );
    });
}

#[test]
fn pagination_serializes_for_json_answers() {
    block_on(async {
        let s = todos(3).await;
        let p = Todo::query(&s).paginate(1, 2).await.unwrap();
        let json = serde_json::to_value(p.map(|t| t.title)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "items": ["task 1", "task 2"], "page": 1, "per_page": 2, "total": 3, "pages": 2,
                "has_prev": false, "has_next": true, "prev_num": null, "next_num": 2
            })
        );
    });
}

#[test]
fn get_is_a_primary_key_read_on_kv() {
    use gluebind::kv::{CountingKv, MemoryKv};
    let kv = std::rc::Rc::new(CountingKv::new(MemoryKv::new()));
    block_on(async {
        let a = isolate(&kv, "kv://GLUEBIND_KV").open();
        model::create_all(&a, &[User::META]).await.unwrap();
        for id in 1..=20 {
            user(id, &format!("U{id}"), None).insert(&a).await.unwrap();
        }
        a.commit().await.unwrap();
        // Another isolate: nothing cached but what it reads.
        let b = isolate(&kv, "kv://GLUEBIND_KV");
        assert!(User::get(&b.open(), 1).await.unwrap().is_some());
        kv.reset();
        assert_eq!(User::get(&b.open(), 2).await.unwrap().unwrap().id, 2);
        let ops = kv.ops();
        assert_eq!(
            (ops.gets, ops.lists),
            (1, 0),
            "a point read, not a scan: {ops:?}"
        );
        kv.reset();
        let q = User::query(&b.open()).filter(User::AGE.is_null());
        assert_eq!(q.get(3).await.unwrap().unwrap().id, 3);
        let ops = kv.ops();
        assert_eq!(
            (ops.gets, ops.lists),
            (1, 0),
            "filters keep the key read: {ops:?}"
        );
    });
}

/// The primary key in the middle, of an unsigned type.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "settings")]
struct Setting {
    #[gluebind(unique, column = "setting_name")]
    name: String,
    #[gluebind(primary_key)]
    id: u32,
    value: Option<String>,
}

#[test]
fn primary_key_anywhere_and_literals_of_the_columns_type() {
    block_on(async {
        let s = factory().open();
        model::create_all(&s, &[Setting::META]).await.unwrap();
        let mut theme = Setting {
            name: "theme".into(),
            id: 7,
            value: None,
        };
        theme.insert(&s).await.unwrap();
        theme.value = Some("dark".into());
        theme.update(&s).await.unwrap();
        // `7` and `8` are u32 here: the literal takes the key's type.
        assert_eq!(Setting::get(&s, 7).await.unwrap(), Some(theme.clone()));
        assert_eq!(Setting::get(&s, 8).await.unwrap(), None);
        let found = Setting::query(&s)
            .filter(Setting::ID.ge(7).and(Setting::VALUE.eq("dark")))
            .filter_by(Setting::NAME, String::from("theme"))
            .one()
            .await
            .unwrap();
        assert_eq!(found, theme);
        assert_eq!(Setting::NAME.name(), "setting_name");
    });
}

#[test]
fn concurrent_create_all_conflicts_once_then_finds_the_table() {
    block_on(async {
        let f = factory();
        let (a, b) = (f.open(), f.open());
        model::create_all(&a, &[Todo::META]).await.unwrap();
        model::create_all(&b, &[Todo::META]).await.unwrap();
        a.commit().await.unwrap();
        let err = b.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        model::create_all(&b, &[Todo::META]).await.unwrap();
        assert!(!b.is_dirty(), "the table is there now");
        assert_eq!(Todo::query(&b).count().await.unwrap(), 0);
    });
}

#[test]
fn like_on_a_null_able_column_skips_nulls_both_ways() {
    #[derive(Debug, Clone, PartialEq, Model)]
    #[gluebind(table = "notes")]
    struct Note {
        #[gluebind(primary_key)]
        id: i64,
        text: Option<String>,
    }
    block_on(async {
        let s = factory().open();
        model::create_all(&s, &[Note::META]).await.unwrap();
        for (id, text) in [(1, None), (2, Some("abc")), (3, Some("xyz"))] {
            let text = text.map(str::to_owned);
            Note { id, text }.insert(&s).await.unwrap();
        }
        let ids = |notes: Vec<Note>| notes.into_iter().map(|n| n.id).collect::<Vec<_>>();
        let q = || Note::query(&s).order_by(Note::ID.asc());
        let like = q().filter(Note::TEXT.like("a%")).all().await.unwrap();
        assert_eq!(ids(like), [2]);
        // SQL: NOT (NULL LIKE ...) is NULL too, so the NULL row matches neither.
        let not_like = q().filter(!Note::TEXT.like("a%")).all().await.unwrap();
        assert_eq!(ids(not_like), [3]);
        let either = q()
            .filter(Note::TEXT.like("x%").or(Note::TEXT.is_null()))
            .all()
            .await
            .unwrap();
        assert_eq!(ids(either), [1, 3]);
    });
}

#[test]
fn huge_limits_offsets_and_pages_are_empty_pages_not_errors() {
    block_on(async {
        let s = users_session().await;
        assert!(User::query(&s)
            .offset(5_000_000_000)
            .all()
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            User::query(&s)
                .limit(5_000_000_000)
                .all()
                .await
                .unwrap()
                .len(),
            5
        );
        let page = User::query(&s)
            .paginate(i64::from(i32::MAX), 100)
            .error_out(false)
            .await
            .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.total, Some(5));
    });
}

/// `User` a release later: its `age` gained `#[gluebind(index)]`.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users")]
struct IndexedUser {
    #[gluebind(primary_key)]
    id: i64,
    #[gluebind(index)]
    name: String,
    #[gluebind(unique)]
    email: String,
    #[gluebind(index)]
    age: Option<i32>,
}

#[test]
fn create_all_adds_the_indexes_a_table_lacks_and_filters_read_them() {
    let f = factory();
    block_on(async {
        let s = f.open();
        model::create_all(&s, &[User::META]).await.unwrap();
        for (id, name, age) in [(1, "ada", Some(36)), (2, "bob", None), (3, "ada", Some(17))] {
            let mut u = user(id, name, age);
            u.email = format!("{id}@x");
            u.insert(&s).await.unwrap();
        }
        s.commit().await.unwrap();
        assert!(IndexedUser::META.columns()[3].is_indexed());
        assert!(!User::META.columns()[3].is_indexed());

        // The table exists: the new model's create_all adds its two indexes, once.
        let s = f.open();
        model::create_all(&s, &[IndexedUser::META]).await.unwrap();
        model::create_all(&s, &[IndexedUser::META]).await.unwrap();
        s.commit().await.unwrap();
        let s = f.open();
        let indexes = s
            .execute_batch(
                "SELECT INDEX_NAME FROM GLUE_INDEXES WHERE TABLE_NAME = 'users' \
                 AND INDEX_NAME LIKE 'ix_%' ORDER BY INDEX_NAME",
            )
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        let names: Vec<String> = indexes
            .iter()
            .map(|r| r.get::<String>("INDEX_NAME").unwrap())
            .collect();
        assert_eq!(names, ["ix_users_age", "ix_users_name"]);

        let adults = IndexedUser::query(&s)
            .filter(IndexedUser::AGE.ge(18))
            .all()
            .await
            .unwrap();
        assert_eq!(adults.iter().map(|u| u.id).collect::<Vec<_>>(), [1]);
        let adas = IndexedUser::query(&s)
            .filter_by(IndexedUser::NAME, "ada")
            .count()
            .await
            .unwrap();
        assert_eq!(adas, 2);
    });
}

/// `User` with a new indexed column that the stored table does not have.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users")]
struct UserWithCity {
    #[gluebind(primary_key)]
    id: i64,
    name: String,
    #[gluebind(unique)]
    email: String,
    age: Option<i32>,
    #[gluebind(index)]
    city: Option<String>,
}

#[test]
fn create_all_names_an_indexed_column_the_table_lacks() {
    let f = factory();
    block_on(async {
        let s = f.open();
        model::create_all(&s, &[User::META]).await.unwrap();
        s.commit().await.unwrap();
        let s = f.open();
        let err = model::create_all(&s, &[UserWithCity::META])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DRIFT");
        let err = err.to_string();
        assert!(
            err.contains("table users does not match its model")
                && err.contains("the model has column city (TEXT NULL) that the table lacks")
                && err.contains(r#".add_column("users", "city TEXT NULL")"#),
            "{err}"
        );
        // Nothing was written: the table is as it was, with no index.
        assert!(!s.is_dirty());
    });
}
