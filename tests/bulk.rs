//! Bulk verbs of queries: `Query::delete()` and `Query::update([...])` — counts, filters,
//! bound parameters, the session's writes (read back, rolled back, committed), errors that
//! change nothing (UNIQUE included), the unit of work around them (flush first, tracked
//! objects kept in step), binds, and concurrent sessions on every engine and isolation level.
//!
//! Over 600 lines on purpose: each test is a scenario that reads on its own.

mod common;
use common::block_on;
use gluebind::{
    durable::LocalObject, kv::MemoryKv, model, Engine, Error, Isolation, Model, Session,
    SessionFactory,
};
use std::rc::Rc;

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

/// Flask-SQLAlchemy's test model, on the "cache" bind.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(bind_key = "cache")]
struct Todo {
    #[gluebind(primary_key)]
    id: i64,
    title: String,
    done: bool,
}

fn user(id: i64, name: &str, age: Option<i32>) -> User {
    User {
        id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        age,
    }
}

/// The users every test starts from.
fn seed() -> Vec<User> {
    vec![
        user(1, "Ada", Some(36)),
        user(2, "Bob", None),
        user(3, "Cy", Some(17)),
        user(4, "Dee", Some(52)),
        user(5, "Abe", Some(16)),
    ]
}

/// A factory on `engine` (and a memory:// "cache" bind), recording queries, with the users
/// and todos committed.
fn seeded_on(engine: Engine, autoflush: bool) -> SessionFactory {
    let f = SessionFactory::builder()
        .bind(engine)
        .bind_key("cache", Engine::from_url("memory://").unwrap())
        .autoflush(autoflush)
        .record_queries(true)
        .build()
        .unwrap();
    block_on(async {
        let s = f.open();
        model::create_all(&s, &[User::META, Todo::META])
            .await
            .unwrap();
        for u in seed() {
            u.insert(&s).await.unwrap();
        }
        for id in 1..=3 {
            let title = format!("task {id}");
            Todo {
                id,
                title,
                done: id == 1,
            }
            .insert(&s)
            .await
            .unwrap();
        }
        s.commit().await.unwrap();
    });
    f
}

fn factory() -> SessionFactory {
    seeded_on(Engine::from_url("memory://").unwrap(), true)
}

/// The users `s` sees, by id.
async fn users(s: &Session) -> Vec<User> {
    User::query(s).order_by(User::ID.asc()).all().await.unwrap()
}

async fn ids(s: &Session) -> Vec<i64> {
    users(s).await.into_iter().map(|u| u.id).collect()
}

/// The SQL statements `s` ran since `from` (an earlier `recorded_queries().len()`).
fn sql_since(s: &Session, from: usize) -> Vec<String> {
    s.recorded_queries()[from..]
        .iter()
        .map(|q| q.sql.clone())
        .collect()
}

#[test]
fn delete_and_update_count_the_rows_their_filters_match() {
    block_on(async {
        let s = factory().open();
        let minors = User::query(&s).filter(User::AGE.lt(18));
        // Filters combine (ANDed, OR and NULL semantics as for queries).
        let young_or_unknown = User::query(&s)
            .filter(User::AGE.lt(18).or(User::AGE.is_null()))
            .filter(User::NAME.like("A%").or(User::NAME.like("B%")));
        assert_eq!(young_or_unknown.count().await.unwrap(), 2);
        assert_eq!(
            young_or_unknown
                .update([User::NAME.set("kid"), User::AGE.set(None)])
                .await
                .unwrap(),
            2
        );
        let kids = User::query(&s)
            .filter_by(User::NAME, "kid")
            .all()
            .await
            .unwrap();
        assert_eq!(
            kids.iter().map(|u| (u.id, u.age)).collect::<Vec<_>>(),
            [(2, None), (5, None)]
        );
        // Only Cy is still under 18; a value of the field's type, or None for NULL.
        assert_eq!(minors.update([User::AGE.set(18)]).await.unwrap(), 1);
        assert_eq!(minors.count().await.unwrap(), 0);
        // No match: nothing changes, 0.
        assert_eq!(minors.update([User::NAME.set("x")]).await.unwrap(), 0);
        assert_eq!(minors.delete().await.unwrap(), 0);
        // A delete counts what it removed.
        let unknown_age = User::query(&s).filter(User::AGE.is_null());
        assert_eq!(unknown_age.delete().await.unwrap(), 2);
        assert_eq!(ids(&s).await, [1, 3, 4]);
        // No changes: nothing is written, the matching rows are counted.
        let before = s.recorded_queries().len();
        assert_eq!(User::query(&s).update([]).await.unwrap(), 3);
        assert!(
            sql_since(&s, before)
                .iter()
                .all(|q| q.starts_with("SELECT COUNT(*)")),
            "{:?}",
            sql_since(&s, before)
        );
        // No filters: every row.
        assert_eq!(User::query(&s).delete().await.unwrap(), 3);
        assert_eq!(User::query(&s).count().await.unwrap(), 0);
    });
}

#[test]
fn values_are_bound_parameters_in_one_statement() {
    block_on(async {
        let s = factory().open();
        let hostile = "x'); DROP TABLE users; --";
        let before = s.recorded_queries().len();
        let n = User::query(&s)
            .filter(User::ID.is_in([1, 2]))
            .update([User::NAME.set(hostile)])
            .await
            .unwrap();
        assert_eq!(n, 2);
        let ran = &s.recorded_queries()[before..];
        assert_eq!(ran.len(), 1, "one UPDATE (the session tracks no object)");
        assert_eq!(
            ran[0].sql,
            "UPDATE \"users\" SET \"name\" = $1 WHERE \"id\" IN ($2, $3)"
        );
        assert_eq!(
            ran[0].params,
            [serde_json::json!(hostile), 1.into(), 2.into()]
        );
        let before = s.recorded_queries().len();
        User::query(&s)
            .filter_by(User::NAME, hostile)
            .filter(User::AGE.ge(30))
            .delete()
            .await
            .unwrap();
        assert_eq!(
            sql_since(&s, before),
            ["DELETE FROM \"users\" WHERE \"name\" = $1 AND COALESCE(\"age\" >= $2, FALSE)"]
        );
        assert_eq!(ids(&s).await, [2, 3, 4, 5]);
        assert_eq!(users(&s).await[0].name, hostile);
    });
}

#[test]
fn the_session_reads_its_writes_rollback_undoes_and_commit_publishes() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let minors = || User::query(&s).filter(User::AGE.lt(18));
        assert_eq!(minors().delete().await.unwrap(), 2);
        assert_eq!(ids(&s).await, [1, 2, 4], "read-your-writes");
        assert_eq!(
            ids(&f.open()).await,
            [1, 2, 3, 4, 5],
            "not visible before commit"
        );
        s.rollback().await.unwrap();
        assert_eq!(ids(&s).await, [1, 2, 3, 4, 5], "rollback undoes it");

        let adults = User::query(&s).filter(User::AGE.ge(18));
        assert_eq!(adults.update([User::NAME.set("adult")]).await.unwrap(), 2);
        assert_eq!(
            adults.filter_by(User::NAME, "adult").count().await.unwrap(),
            2
        );
        s.rollback().await.unwrap();
        assert_eq!(
            User::query(&s)
                .filter_by(User::NAME, "adult")
                .count()
                .await
                .unwrap(),
            0
        );

        assert_eq!(minors().delete().await.unwrap(), 2);
        let adults = User::query(&s).filter(User::AGE.ge(18));
        assert_eq!(adults.update([User::NAME.set("adult")]).await.unwrap(), 2);
        s.commit().await.unwrap();
        let fresh = f.open();
        let names: Vec<(i64, String)> = users(&fresh)
            .await
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect();
        assert_eq!(
            names,
            [(1, "adult".into()), (2, "Bob".into()), (4, "adult".into())],
            "a new session sees the commit"
        );
    });
}

#[test]
fn order_limit_offset_and_bad_changes_are_refused_before_anything_changes() {
    block_on(async {
        let s = factory().open();
        let before = s.recorded_queries().len();
        let refused = [
            User::query(&s).limit(2).delete().await,
            User::query(&s).offset(1).delete().await,
            User::query(&s).order_by(User::ID.desc()).delete().await,
            User::query(&s)
                .order_by(User::ID.desc())
                .limit(1)
                .update([User::AGE.set(1)])
                .await,
        ];
        for (i, result) in refused.into_iter().enumerate() {
            let err = result.unwrap_err();
            assert_eq!(err.code(), "SQL", "{err}");
            let text = err.to_string();
            assert!(
                text.contains("cannot be combined with limit(), offset() or order_by()")
                    && text.contains(".filter(User::ID.is_in(keys))"),
                "{i}: {text}"
            );
        }
        let err = User::query(&s)
            .order_by(User::ID.asc())
            .limit(1)
            .delete()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("(this query has limit(), order_by())"),
            "{err}"
        );
        let err = User::query(&s).update([User::ID.set(9)]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "SQL error: Query::update() cannot set the primary key id of users: every matched \
             row would get the same key; delete the rows and insert new ones instead"
        );
        let err = User::query(&s)
            .update([User::NAME.set("a"), User::AGE.set(1), User::NAME.set("b")])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SQL error: Query::update() sets users.name twice: set each column once"
        );
        assert!(
            sql_since(&s, before).is_empty(),
            "{:?}",
            sql_since(&s, before)
        );
        assert_eq!(users(&s).await, seed());
        assert!(!s.is_dirty());
    });
}

#[test]
fn a_unique_violation_changes_nothing() {
    block_on(async {
        let f = factory();
        let s = f.open();
        // Two rows set to one email.
        let err = User::query(&s)
            .filter(User::ID.is_in([1, 2]))
            .update([User::EMAIL.set("same@example.com"), User::NAME.set("x")])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unique { table, column, .. } if table == "users" && column == "email"),
            "{err:?}"
        );
        assert_eq!(users(&s).await, seed(), "neither row changed");
        // A value another row (not matched) holds.
        let err = User::query(&s)
            .filter_by(User::ID, 1)
            .update([User::EMAIL.set("bob@example.com")])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        assert_eq!(users(&s).await, seed());
        // The value its only matched row already holds is no violation (the session's store
        // checks UNIQUE itself, not GlueSQL 0.20's check of SET against every stored row).
        let n = User::query(&s)
            .filter_by(User::ID, 1)
            .update([User::EMAIL.set("ada@example.com"), User::NAME.set("Ada L")])
            .await
            .unwrap();
        assert_eq!(n, 1);
        let n = User::query(&s)
            .filter_by(User::ID, 1)
            .update([User::EMAIL.set("ada@example.com")])
            .await
            .unwrap();
        assert_eq!(n, 1);
        let ada = User::get(&s, 1).await.unwrap().unwrap();
        assert_eq!(
            (ada.name.as_str(), ada.email.as_str()),
            ("Ada L", "ada@example.com")
        );
        // A new unique value on one row is fine; the session goes on and commits.
        User::query(&s)
            .filter_by(User::ID, 2)
            .update([User::EMAIL.set("robert@example.com")])
            .await
            .unwrap();
        s.commit().await.unwrap();
        let bob = User::get(&f.open(), 2).await.unwrap().unwrap();
        assert_eq!(bob.email, "robert@example.com");
    });
}

#[test]
fn pending_objects_are_flushed_first_even_without_autoflush() {
    for autoflush in [true, false] {
        block_on(async {
            let s = seeded_on(Engine::from_url("memory://").unwrap(), autoflush).open();
            // A pending insert the delete matches, a pending change of a row it matches, a
            // pending delete of a row it matches: written first, in program order.
            s.add(user(6, "Eve", Some(10))).unwrap();
            let cy = s.get::<User>(3).await.unwrap().unwrap();
            cy.borrow_mut().name = "Cyrus".into();
            s.delete(&user(5, "Abe", None)).unwrap();
            let deleted = User::query(&s)
                .filter(User::AGE.lt(18))
                .delete()
                .await
                .unwrap();
            assert_eq!(
                deleted, 2,
                "Eve and Cy (Abe was deleted by the flush), autoflush {autoflush}"
            );
            assert_eq!(ids(&s).await, [1, 2, 4]);
            // A pending change of a column the update sets: the update comes after it.
            let ada = s.get::<User>(1).await.unwrap().unwrap();
            ada.borrow_mut().name = "Ada L".into();
            ada.borrow_mut().age = Some(37);
            User::query(&s)
                .update([User::NAME.set("all")])
                .await
                .unwrap();
            assert_eq!(
                ada.cloned(),
                User {
                    name: "all".into(),
                    age: Some(37),
                    ..user(1, "Ada", None)
                }
            );
            s.flush().await.unwrap();
            assert_eq!(User::get(&s, 1).await.unwrap().unwrap(), ada.cloned());
            s.commit().await.unwrap();
        });
    }
}

#[test]
fn tracked_objects_follow_their_rows() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        let cy = s.get::<User>(3).await.unwrap().unwrap();
        let abe = s.get::<User>(5).await.unwrap().unwrap();
        // An update: the tracked objects it matches take the values set, the others keep theirs.
        let minors = User::query(&s).filter(User::AGE.lt(18));
        let before = s.recorded_queries().len();
        minors
            .update([User::NAME.set("minor"), User::AGE.set(None)])
            .await
            .unwrap();
        assert_eq!(cy.borrow().name, "minor");
        assert_eq!(cy.borrow().age, None);
        assert_eq!(abe.borrow().name, "minor");
        assert_eq!(ada.cloned(), user(1, "Ada", Some(36)));
        // The filters name no key, so the UPDATE reads the table: one SELECT of the tracked
        // rows it matches (a scan too), the UPDATE, a lookup per matched object after.
        let ran = sql_since(&s, before);
        assert_eq!(ran.len(), 4, "{ran:?}");
        assert!(
            ran[0].contains("WHERE \"id\" IN ($1, $2, $3) AND COALESCE(\"age\" < $4, FALSE)"),
            "{ran:?}"
        );
        assert!(ran[1].starts_with("UPDATE"), "{ran:?}");
        for lookup in &ran[2..] {
            assert!(lookup.ends_with("WHERE \"id\" = $1"), "{ran:?}");
        }
        // Filters on keys: a lookup per tracked object among those keys, no other.
        let before = s.recorded_queries().len();
        User::query(&s)
            .filter(User::ID.is_in([3, 4]))
            .update([User::AGE.set(17)])
            .await
            .unwrap();
        let ran = sql_since(&s, before);
        assert_eq!(ran.len(), 3, "{ran:?}");
        assert!(
            ran[0].contains("WHERE \"id\" = $1 AND \"id\" IN ($2, $3)"),
            "{ran:?}"
        );
        assert!(ran[1].starts_with("UPDATE"), "{ran:?}");
        assert_eq!(cy.borrow().age, Some(17));
        assert_eq!(abe.borrow().age, None);
        // The identity map still gives the same objects, and a flush has nothing to write.
        assert!(s.get::<User>(3).await.unwrap().unwrap().ptr_eq(&cy));
        let before = s.recorded_queries().len();
        s.flush().await.unwrap();
        assert!(sql_since(&s, before).is_empty());
        // Changed afterwards, a refreshed object is written as any tracked one.
        cy.borrow_mut().age = Some(18);
        s.flush().await.unwrap();
        assert_eq!(User::get(&s, 3).await.unwrap().unwrap().age, Some(18));

        // A delete: the tracked objects of its rows are no longer tracked.
        let deleted = User::query(&s)
            .filter_by(User::NAME, "minor")
            .delete()
            .await
            .unwrap();
        assert_eq!(deleted, 2);
        assert!(s.get::<User>(3).await.unwrap().is_none());
        assert!(s.get::<User>(5).await.unwrap().is_none());
        abe.borrow_mut().name = "ghost".into(); // detached: never written
        s.flush().await.unwrap();
        assert!(s.get::<User>(1).await.unwrap().unwrap().ptr_eq(&ada));
        // The key can be added again.
        s.add(user(5, "Abe", Some(16))).unwrap();
        s.commit().await.unwrap();
        assert_eq!(ids(&f.open()).await, [1, 2, 4, 5]);
    });
}

#[test]
#[allow(clippy::await_holding_refcell_ref)] // the mistake under test
fn a_borrowed_tracked_object_fails_the_update_and_nothing_changes() {
    block_on(async {
        let s = factory().open();
        let cy = s.get::<User>(3).await.unwrap().unwrap();
        let held = cy.borrow();
        let err = User::query(&s)
            .filter(User::AGE.lt(18))
            .update([User::NAME.set("minor")])
            .await
            .unwrap_err();
        drop(held);
        assert_eq!(err.code(), "SQL", "{err}");
        assert!(err.to_string().contains("is borrowed"), "{err}");
        assert_eq!(users(&s).await, seed(), "the UPDATE was undone");
        assert_eq!(cy.cloned(), user(3, "Cy", Some(17)));
        let before = s.recorded_queries().len();
        s.flush().await.unwrap();
        assert!(sql_since(&s, before).is_empty());
    });
}

#[test]
fn bind_models_run_on_their_bind() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let open_todos = Todo::query(&s).filter_by(Todo::DONE, false);
        assert_eq!(
            open_todos.update([Todo::TITLE.set("later")]).await.unwrap(),
            2
        );
        assert_eq!(
            Todo::query(&s)
                .filter_by(Todo::DONE, true)
                .delete()
                .await
                .unwrap(),
            1
        );
        let bind = s.for_bind(Some("cache")).unwrap();
        let left = bind
            .execute_batch("SELECT COUNT(*) AS n FROM todo WHERE title = 'later'")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        assert_eq!(left.get(0).unwrap().get::<i64>("n").unwrap(), 2);
        s.commit().await.unwrap();
        let titles: Vec<String> = Todo::query(&f.open())
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.title)
            .collect();
        assert_eq!(titles, ["later", "later"]);
    });
}

/// The engines of the concurrency cases.
const ENGINES: [&str; 4] = ["memory", "kv", "do", "do-isolates"];

/// Two factories over freshly seeded data on `engine`: one isolate (the same factory twice),
/// or on `do-isolates` an isolate each over one database object.
fn pair(engine: &str) -> [SessionFactory; 2] {
    let object = Rc::new(LocalObject::new());
    let on_object = || Engine::with_object("do://GLUEBIND_DB", object.clone()).unwrap();
    let first = match engine {
        "memory" => seeded_on(Engine::from_url("memory://").unwrap(), true),
        "kv" => seeded_on(
            Engine::with_kv("kv://GLUEBIND_KV", Rc::new(MemoryKv::new())).unwrap(),
            true,
        ),
        _ => seeded_on(on_object(), true),
    };
    let second = if engine == "do-isolates" {
        SessionFactory::builder()
            .bind(on_object())
            .bind_key("cache", Engine::from_url("memory://").unwrap())
            .build()
            .unwrap()
    } else {
        first.clone()
    };
    [first, second]
}

#[test]
fn a_bulk_delete_and_an_update_of_its_rows_conflict_whichever_commits_first() {
    for delete_first in [true, false] {
        for level in [Isolation::Snapshot, Isolation::Serializable] {
            for engine in ENGINES {
                let f = pair(engine);
                let at = format!("{engine}, {level:?}, delete commits first: {delete_first}");
                block_on(async {
                    let (deleter, updater) = (f[0].open(), f[1].open());
                    deleter.set_isolation(level);
                    updater.set_isolation(level);
                    let n = User::query(&deleter)
                        .filter(User::AGE.lt(18))
                        .delete()
                        .await
                        .unwrap();
                    assert_eq!(n, 2, "{at}");
                    let cy = updater.get::<User>(3).await.unwrap().unwrap();
                    cy.borrow_mut().name = "Cyrus".into();
                    updater.flush().await.unwrap();
                    let (first, second) = if delete_first {
                        (&deleter, &updater)
                    } else {
                        (&updater, &deleter)
                    };
                    first.commit().await.unwrap_or_else(|e| panic!("{at}: {e}"));
                    let err = second.commit().await.unwrap_err();
                    assert_eq!(err.code(), "CONFLICT", "{at}: {err}");
                    let now = f[0].open();
                    let cy = User::get(&now, 3).await.unwrap();
                    if delete_first {
                        assert_eq!(cy, None, "{at}");
                        assert_eq!(ids(&now).await, [1, 2, 4], "{at}");
                    } else {
                        assert_eq!(cy.unwrap().name, "Cyrus", "{at}");
                        assert_eq!(ids(&now).await, [1, 2, 3, 4, 5], "{at}");
                    }
                });
            }
        }
    }
}

#[test]
fn two_bulk_updates_of_one_row_conflict() {
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        for engine in ENGINES {
            let f = pair(engine);
            let at = format!("{engine}, {level:?}");
            block_on(async {
                let (a, b) = (f[0].open(), f[1].open());
                a.set_isolation(level);
                b.set_isolation(level);
                let adults = |s: &Session| User::query(s).filter(User::AGE.ge(18));
                assert_eq!(adults(&a).update([User::NAME.set("a")]).await.unwrap(), 2);
                // Ada (36) is among both updates' rows.
                let b_rows = User::query(&b).filter(User::AGE.gt(30).and(User::AGE.lt(40)));
                assert_eq!(b_rows.update([User::NAME.set("b")]).await.unwrap(), 1);
                a.commit().await.unwrap_or_else(|e| panic!("{at}: {e}"));
                let err = b.commit().await.unwrap_err();
                assert_eq!(err.code(), "CONFLICT", "{at}: {err}");
                assert_eq!(
                    User::get(&f[0].open(), 1).await.unwrap().unwrap().name,
                    "a",
                    "{at}"
                );
            });
        }
    }
}

#[test]
fn a_tracked_object_does_not_turn_a_keyed_bulk_verb_into_a_table_read() {
    // The tracked rows are read back by key, one lookup each: a serializable session that
    // updated row 1 by key does not conflict with an unrelated insert committed meanwhile.
    for engine in ENGINES {
        for delete in [false, true] {
            let f = pair(engine);
            let at = format!("{engine}, delete: {delete}");
            block_on(async {
                let (a, b) = (f[0].open(), f[1].open());
                a.set_isolation(Isolation::Serializable);
                let tracked = a.get::<User>(1).await.unwrap().unwrap();
                let q = User::query(&a).filter_by(User::ID, 1);
                let n = if delete {
                    q.delete().await.unwrap()
                } else {
                    q.update([User::NAME.set("Ada L")]).await.unwrap()
                };
                assert_eq!(n, 1, "{at}");
                if !delete {
                    assert_eq!(tracked.borrow().name, "Ada L", "{at}: refreshed");
                }
                user(99, "Zed", None).insert(&b).await.unwrap();
                b.commit().await.unwrap();
                a.commit().await.unwrap_or_else(|e| panic!("{at}: {e}"));
                let now = f[0].open();
                assert_eq!(ids(&now).await.contains(&1), !delete, "{at}");
                assert!(ids(&now).await.contains(&99), "{at}");
            });
        }
    }
}

#[test]
fn a_matching_row_inserted_meanwhile_conflicts_under_serializable_only() {
    // A bulk verb reads the rows its filters match (a scan): a concurrent insert of a row it
    // would have matched is a phantom, refused at commit under serializable.
    for level in [Isolation::Snapshot, Isolation::Serializable] {
        for engine in ENGINES {
            for delete in [false, true] {
                let f = pair(engine);
                let at = format!("{engine}, {level:?}, delete: {delete}");
                block_on(async {
                    let (a, b) = (f[0].open(), f[1].open());
                    a.set_isolation(level);
                    let minors = User::query(&a).filter(User::AGE.lt(18));
                    let n = if delete {
                        minors.delete().await.unwrap()
                    } else {
                        minors.update([User::NAME.set("minor")]).await.unwrap()
                    };
                    assert_eq!(n, 2, "{at}");
                    user(6, "Kid", Some(9)).insert(&b).await.unwrap();
                    b.commit().await.unwrap();
                    let outcome = a.commit().await;
                    if level == Isolation::Serializable {
                        let err = outcome.unwrap_err();
                        assert_eq!(err.code(), "CONFLICT", "{at}: {err}");
                    } else {
                        outcome.unwrap_or_else(|e| panic!("{at}: {e}"));
                    }
                });
            }
        }
    }
}

#[test]
fn bulk_verbs_on_a_binds_own_session_are_refused() {
    let f = factory();
    block_on(async {
        let s = f.open();
        let todo = s.get::<Todo>(2).await.unwrap().unwrap();
        todo.borrow_mut().title = "pending".into();
        let bind = s.for_bind(Some("cache")).unwrap();
        for err in [
            Todo::query(&bind).delete().await.unwrap_err(),
            Todo::query(&bind)
                .update([Todo::TITLE.set("x")])
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.code(), "CONFIG", "{err}");
            assert!(err.to_string().contains("registry's session"), "{err}");
        }
        // Through the registry's session, the pending change is flushed first and then set.
        let n = Todo::query(&s)
            .filter_by(Todo::ID, 2)
            .update([Todo::TITLE.set("bulk")])
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(todo.borrow().title, "bulk");
        s.commit().await.unwrap();
        assert_eq!(
            Todo::get(&f.open(), 2).await.unwrap().unwrap().title,
            "bulk"
        );
    });
}

#[test]
fn the_flush_before_a_failed_bulk_statement_stands() {
    // As docs/models.md says: the statement changes no row, the flush before it is kept.
    let f = seeded_on(Engine::from_url("memory://").unwrap(), false);
    block_on(async {
        let s = f.open();
        s.add(user(7, "Gil", None)).unwrap();
        let err = User::query(&s)
            .filter(User::ID.is_in([1, 2]))
            .update([User::EMAIL.set("same@example.com")])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        let mut expected = seed();
        expected.push(user(7, "Gil", None));
        assert_eq!(
            users(&s).await,
            expected,
            "Gil written, rows 1 and 2 unchanged"
        );
        s.flush().await.unwrap();
        assert_eq!(users(&s).await, expected, "nothing left pending");
    });
}
