//! The model unit of work: `Session::add` / `delete` / `flush` / `get`, the identity map,
//! autoflush, binds (several engines in one session), commit hooks and query recording.
//!
//! Long on purpose: each test is a scenario that reads on its own, grouped by the promise of
//! the unit of work it shows; the shared helpers are in `tests/common`.

mod common;
use common::block_on;
use gluebind::{
    model::{self, Change, Operation},
    Engine, Error, Model, Outcome, Registry, Session, SessionFactory, SessionFactoryBuilder,
    TeardownPolicy,
};
use std::{cell::RefCell, rc::Rc};

#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users")]
struct User {
    #[gluebind(primary_key)]
    id: i64,
    name: String,
    #[gluebind(unique)]
    email: String,
}

/// Lives on the "cache" bind.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "hits", bind_key = "cache")]
struct Hit {
    #[gluebind(primary_key)]
    path: String,
    count: i64,
}

/// The same table name as `User`, on the "cache" bind: a model of its own.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users", bind_key = "cache")]
struct CacheUser {
    #[gluebind(primary_key)]
    id: i64,
    name: String,
}

fn user(id: i64, name: &str) -> User {
    User {
        id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
    }
}

/// A builder on fresh memory:// engines: the default one and "cache".
fn builder() -> SessionFactoryBuilder {
    SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .bind_key("cache", Engine::from_url("memory://").unwrap())
}

/// `f`'s engines with both tables created and users 1 (Ada) and 2 (Bob) committed.
fn seeded(f: SessionFactory) -> SessionFactory {
    block_on(async {
        let s = f.open();
        model::create_all(&s, &[User::META, Hit::META, CacheUser::META])
            .await
            .unwrap();
        user(1, "Ada").insert(&s).await.unwrap();
        user(2, "Bob").insert(&s).await.unwrap();
        let cached = CacheUser {
            id: 1,
            name: "cached".into(),
        };
        cached.insert(&s).await.unwrap();
        s.commit().await.unwrap();
        // What the registry's teardown does after the response (kv:// records go).
        for engine in f.engines() {
            engine.flush().await.unwrap();
        }
    });
    f
}

fn factory() -> SessionFactory {
    seeded(builder().build().unwrap())
}

async fn names(s: &Session) -> Vec<String> {
    let users = User::query(s).order_by(User::ID.asc()).all().await.unwrap();
    users.into_iter().map(|u| u.name).collect()
}

#[test]
fn the_same_key_gives_the_same_object_and_a_tracked_one_costs_no_query() {
    block_on(async {
        let f = seeded(builder().record_queries(true).build().unwrap());
        let s = f.open();
        let a = s.get::<User>(1).await.unwrap().unwrap();
        let b = s.get::<User>(1).await.unwrap().unwrap();
        assert!(a.ptr_eq(&b));
        assert_eq!(s.recorded_queries().len(), 1, "the second get used the map");
        a.borrow_mut().name = "Ada L.".into();
        assert_eq!(b.borrow().name, "Ada L.", "one object behind both handles");
        // A query's tracked results are the same objects, in their in-session state.
        let all = User::query(&s)
            .order_by(User::ID.asc())
            .all_tracked()
            .await
            .unwrap();
        assert!(all[0].ptr_eq(&a));
        assert_eq!(all[0].borrow().name, "Ada L.");
        assert_eq!(all[1].borrow().name, "Bob");
        assert!(s.get::<User>(99).await.unwrap().is_none());
    });
}

/// `session.get_or_404` gives the tracked object, or a 404 naming the table and key — also for
/// an object deleted in this session.
#[test]
fn get_or_404_is_get_with_a_not_found_error() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get_or_404::<User>(1).await.unwrap();
        assert!(ada.ptr_eq(&s.get::<User>(1).await.unwrap().unwrap()));
        let err = s.get_or_404::<User>(99).await.unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("NOT_FOUND", 404), "{err}");
        assert!(
            err.to_string().contains("users") && err.to_string().contains("99"),
            "{err}"
        );
        s.delete(&ada).unwrap();
        let err = s.get_or_404::<User>(1).await.unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND", "deleted in this session: {err}");
    });
}

#[test]
fn add_is_pending_until_a_flush_and_autoflush_runs_before_queries() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let cy = s.add(user(3, "Cy")).unwrap();
        assert!(s.is_dirty(), "a pending object is a pending write");
        cy.borrow_mut().name = "Cyd".into(); // still one INSERT, with the latest values
        assert_eq!(names(&s).await, ["Ada", "Bob", "Cyd"], "autoflush");
        assert!(
            f.open().get::<User>(3).await.unwrap().is_none(),
            "not committed"
        );
        s.commit().await.unwrap();
        assert_eq!(names(&f.open()).await, ["Ada", "Bob", "Cyd"]);

        // Without autoflush, queries see pending objects only after an explicit flush.
        let g = seeded(builder().autoflush(false).build().unwrap());
        let s = g.open();
        s.add(user(3, "Cy")).unwrap();
        assert_eq!(names(&s).await, ["Ada", "Bob"]);
        let raw = s.execute("SELECT id FROM users", gluebind::NO_PARAMS).await;
        assert_eq!(raw.unwrap().into_rows().unwrap().len(), 2);
        s.flush().await.unwrap();
        assert_eq!(names(&s).await, ["Ada", "Bob", "Cy"]);
    });
}

#[test]
fn plain_sql_autoflushes_too() {
    block_on(async {
        let s = factory().open();
        s.add(user(3, "Cy")).unwrap();
        let rows = s
            .execute(
                "SELECT name FROM users WHERE id = $1",
                gluebind::params![3i64],
            )
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert_eq!(rows.len(), 1);
    });
}

#[test]
fn changed_objects_update_only_the_changed_columns() {
    block_on(async {
        let f = seeded(builder().record_queries(true).build().unwrap());
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        assert!(!s.is_dirty(), "loading is not a change");
        ada.borrow_mut().name = "Ada L.".into();
        assert!(s.is_dirty());
        s.flush().await.unwrap();
        let update = s.recorded_queries().pop().unwrap();
        assert_eq!(
            update.sql,
            r#"UPDATE "users" SET "name" = $1 WHERE "id" = $2"#
        );
        assert_eq!(
            update.params,
            [serde_json::json!("Ada L."), serde_json::json!(1)]
        );
        assert_eq!(update.rows, 1);
        s.flush().await.unwrap();
        assert_eq!(s.recorded_queries().len(), 2, "nothing left to flush");

        // Another session changed the email meanwhile: ours only wrote the name.
        let other = f.open();
        let theirs = other.get::<User>(1).await.unwrap().unwrap();
        theirs.borrow_mut().email = "ada@new.org".into();
        other.commit().await.unwrap();
        s.commit().await.unwrap_err(); // first committer wins on the row
        let again = s.get::<User>(1).await.unwrap().unwrap();
        again.borrow_mut().name = "Ada L.".into();
        s.commit().await.unwrap();
        let stored = User::get(&f.open(), 1).await.unwrap().unwrap();
        assert_eq!(
            (stored.name.as_str(), stored.email.as_str()),
            ("Ada L.", "ada@new.org")
        );
    });
}

#[test]
fn a_changed_primary_key_is_refused() {
    block_on(async {
        let s = factory().open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        ada.borrow_mut().id = 7;
        let err = s.flush().await.unwrap_err();
        assert_eq!(err.code(), "SQL");
        assert!(err.to_string().contains("primary key"), "{err}");
        ada.borrow_mut().id = 1;
        s.flush().await.unwrap();
    });
}

#[test]
fn add_of_a_tracked_key_is_refused() {
    block_on(async {
        let s = factory().open();
        let _ada = s.get::<User>(1).await.unwrap().unwrap();
        let err = s.add(user(1, "Other")).unwrap_err();
        assert!(
            matches!(&err, Error::Unique { table, .. } if table == "users"),
            "{err}"
        );
        assert!(err.to_string().contains("already tracks"), "{err}");
        s.add(user(3, "Cy")).unwrap();
        assert_eq!(s.add(user(3, "Cy")).unwrap_err().code(), "UNIQUE");
    });
}

#[test]
fn a_failing_flush_changes_nothing_and_keeps_the_objects_pending() {
    block_on(async {
        let f = seeded(builder().autoflush(false).build().unwrap());
        let s = f.open();
        let bob = s.get::<User>(2).await.unwrap().unwrap();
        bob.borrow_mut().name = "Bobby".into();
        s.add(user(3, "Cy")).unwrap();
        let dup = s
            .add(User {
                id: 4,
                name: "Dup".into(),
                email: "ada@example.com".into(),
            })
            .unwrap();
        let err = s.flush().await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        // Nothing of the flush stayed (the update and insert before the failing one were
        // undone), and the objects are still pending: flushing again fails the same way.
        assert_eq!(names(&s).await, ["Ada", "Bob"]);
        assert!(s.is_dirty());
        assert_eq!(s.flush().await.unwrap_err().code(), "UNIQUE");
        // Fix the offending object and the whole flush goes through.
        dup.borrow_mut().email = "dup@example.com".into();
        s.commit().await.unwrap();
        assert_eq!(names(&f.open()).await, ["Ada", "Bobby", "Cy", "Dup"]);
    });
}

#[test]
fn delete_marks_and_flush_deletes() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        s.delete(&ada).unwrap();
        assert!(
            s.get::<User>(1).await.unwrap().is_none(),
            "gone for the session"
        );
        s.delete(&user(2, "Bob")).unwrap(); // by value: its key is enough
        assert!(s.is_dirty());
        assert_eq!(names(&f.open()).await, ["Ada", "Bob"], "not committed");
        s.commit().await.unwrap();
        assert!(names(&f.open()).await.is_empty());

        // Added and deleted before any flush: never written.
        let s = f.open();
        let cy = s.add(user(3, "Cy")).unwrap();
        s.delete(&cy).unwrap();
        assert!(!s.is_dirty());
        // Deleting a row that is not there fails at the flush, naming it.
        s.delete(&user(9, "Nobody")).unwrap();
        let err = s.flush().await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { table, .. } if table == "users"),
            "{err}"
        );
        assert!(err.to_string().contains("id = 9"), "{err}");
    });
}

#[test]
fn delete_then_add_of_the_same_key_replaces_the_row() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        s.delete(&ada).unwrap();
        let new = s
            .add(User {
                id: 1,
                name: "Ada 2".into(),
                email: "ada2@x.org".into(),
            })
            .unwrap();
        assert!(s.get::<User>(1).await.unwrap().unwrap().ptr_eq(&new));
        s.commit().await.unwrap();
        assert_eq!(names(&f.open()).await, ["Ada 2", "Bob"]);
    });
}

#[test]
fn commit_and_rollback_expire_tracked_objects() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        s.commit().await.unwrap();
        let fresh = s.get::<User>(1).await.unwrap().unwrap();
        assert!(!fresh.ptr_eq(&ada), "a new object after commit");
        ada.borrow_mut().name = "detached".into();
        assert!(!s.is_dirty(), "an expired object is no longer tracked");

        fresh.borrow_mut().name = "changed".into();
        s.add(user(3, "Cy")).unwrap();
        s.rollback().await.unwrap();
        assert!(!s.is_dirty());
        assert_eq!(names(&s).await, ["Ada", "Bob"]);
    });
}

fn registry(f: SessionFactory) -> Registry {
    Registry::new(f)
}

#[test]
fn teardown_commits_or_discards_pending_objects_per_policy() {
    block_on(async {
        let r = registry(seeded(
            builder().teardown(TeardownPolicy::Commit).build().unwrap(),
        ));
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        s.add(user(3, "Cy")).unwrap();
        s.get::<User>(1).await.unwrap().unwrap().borrow_mut().name = "Ada L.".into();
        r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(names(&r.factory().open()).await, ["Ada L.", "Bob", "Cy"]);

        let scope = r.begin();
        r.session(&scope).unwrap().add(user(4, "Dee")).unwrap();
        r.remove(&scope, Outcome::Failed).await.unwrap();
        assert_eq!(
            names(&r.factory().open()).await.len(),
            3,
            "a failed handler rolls back"
        );

        let r = registry(factory());
        let scope = r.begin();
        r.session(&scope).unwrap().add(user(3, "Cy")).unwrap();
        r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(
            names(&r.factory().open()).await,
            ["Ada", "Bob"],
            "policy Rollback"
        );
    });
}

/// What an after-commit hook saw: version, rows written, changes.
type AfterCall = (Option<u64>, usize, Vec<Change>);

#[test]
fn commit_hooks_see_the_model_changes() {
    block_on(async {
        let before: Rc<RefCell<Vec<Vec<Change>>>> = Rc::default();
        let after: Rc<RefCell<Vec<AfterCall>>> = Rc::default();
        let (b, a) = (before.clone(), after.clone());
        let f = seeded(
            builder()
                .before_commit(move |_, changes| {
                    b.borrow_mut().push(changes.to_vec());
                    Ok(())
                })
                .after_commit(move |c| {
                    a.borrow_mut()
                        .push((c.info.version, c.info.rows_written, c.changes.to_vec()));
                })
                .build()
                .unwrap(),
        );
        before.borrow_mut().clear(); // the seeding commit (plain inserts: no changes)
        after.borrow_mut().clear();
        let s = f.open();
        s.add(user(3, "Cy")).unwrap();
        s.get::<User>(1).await.unwrap().unwrap().borrow_mut().name = "Ada L.".into();
        s.delete(&user(2, "Bob")).unwrap();
        s.commit().await.unwrap();
        let ops: Vec<(Operation, serde_json::Value)> = after.borrow()[0]
            .2
            .iter()
            .map(|c| (c.operation, c.key.clone()))
            .collect();
        assert_eq!(
            ops,
            [
                (Operation::Insert, serde_json::json!(3)), // autoflushed by get(1)'s query
                (Operation::Update, serde_json::json!(1)),
                (Operation::Delete, serde_json::json!(2)),
            ]
        );
        assert_eq!(before.borrow()[0], after.borrow()[0].2);
        assert_eq!(after.borrow()[0].1, 3);
        assert!(after.borrow()[0].0.is_some());

        // Nothing to commit: no hook runs.
        s.commit().await.unwrap();
        assert_eq!((before.borrow().len(), after.borrow().len()), (1, 1));

        // A failed commit (conflict) runs the before hooks only.
        let other = f.open();
        s.get::<User>(3).await.unwrap().unwrap().borrow_mut().name = "x".into();
        other
            .get::<User>(3)
            .await
            .unwrap()
            .unwrap()
            .borrow_mut()
            .name = "y".into();
        other.commit().await.unwrap();
        assert_eq!(s.commit().await.unwrap_err().code(), "CONFLICT");
        assert_eq!((before.borrow().len(), after.borrow().len()), (3, 2));
    });
}

#[test]
fn a_failing_before_commit_hook_stops_the_commit() {
    block_on(async {
        let f = seeded(
            builder()
                .before_commit(|_, changes| {
                    if changes.iter().any(|c| c.operation == Operation::Delete) {
                        return Err(Error::Config {
                            message: "deletes are not allowed".into(),
                        });
                    }
                    Ok(())
                })
                .build()
                .unwrap(),
        );
        let s = f.open();
        s.delete(&user(1, "Ada")).unwrap();
        let err = s.commit().await.unwrap_err();
        assert!(err.to_string().contains("deletes are not allowed"), "{err}");
        assert!(s.is_dirty(), "the writes stay pending");
        assert_eq!(names(&f.open()).await, ["Ada", "Bob"], "nothing committed");
        s.rollback().await.unwrap();
        assert_eq!(names(&s).await, ["Ada", "Bob"]);
    });
}

#[test]
fn query_recording_lists_sql_params_rows_and_failures() {
    block_on(async {
        let f = seeded(builder().record_queries(true).build().unwrap());
        let s = f.open();
        assert!(s.recorded_queries().is_empty(), "per session");
        User::query(&s)
            .filter_by(User::NAME, "Bob")
            .all()
            .await
            .unwrap();
        s.execute("SELECT nope FROM users", gluebind::NO_PARAMS)
            .await
            .unwrap_err();
        Hit::query(&s).count().await.unwrap();
        let q = s.recorded_queries();
        assert_eq!(q.len(), 3);
        assert!(q[0].sql.contains(r#"WHERE "name" = $1"#), "{}", q[0].sql);
        assert_eq!(q[0].params, [serde_json::json!("Bob")]);
        assert_eq!((q[0].rows, q[0].ok), (1, true));
        assert!(q[0].duration_ms >= 0.0);
        assert!(!q[1].ok, "a failed statement is recorded as failed");
        assert_eq!(q[0].session, s.id());
        assert_eq!(
            q[2].session,
            format!("{}.cache", s.id()),
            "bind statements too"
        );
        // Dynamic parameters (the npm package's) are recorded as given.
        let params = vec![
            gluebind::DynParam::Text("Bob".into()),
            gluebind::DynParam::number("2").unwrap(),
        ];
        s.execute_dyn("SELECT id FROM users WHERE name = ? AND id = ?", params)
            .await
            .unwrap();
        let last = s.recorded_queries().pop().unwrap();
        assert_eq!(
            last.params,
            [serde_json::json!("Bob"), serde_json::json!(2)]
        );
        assert_eq!(last.rows, 1);

        // Off by default.
        let s = factory().open();
        User::query(&s).all().await.unwrap();
        assert!(s.recorded_queries().is_empty());
    });
}

#[test]
fn recording_is_bounded_per_session() {
    block_on(async {
        let f = seeded(builder().record_queries(true).build().unwrap());
        let s = f.open();
        for _ in 0..gluebind::RecordedQuery::MAX_PER_SESSION + 5 {
            s.execute("SELECT 1", gluebind::NO_PARAMS).await.unwrap();
        }
        assert_eq!(
            s.recorded_queries().len(),
            gluebind::RecordedQuery::MAX_PER_SESSION
        );
        assert_eq!(s.recorded_queries_dropped(), 5);
    });
}

#[test]
fn binds_route_models_to_their_engine_and_commit_together() {
    block_on(async {
        let f = factory();
        let s = f.open();
        s.add(Hit {
            path: "/".into(),
            count: 1,
        })
        .unwrap();
        s.add(user(3, "Cy")).unwrap();
        assert_eq!(Hit::query(&s).count().await.unwrap(), 1);
        // The table is on the cache engine only.
        let err = s
            .execute("SELECT * FROM hits", gluebind::NO_PARAMS)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "SQL", "{err}");
        let cache = s.for_bind(Some("cache")).unwrap();
        assert_eq!(cache.bind_key(), Some("cache"));
        let rows = cache
            .execute("SELECT * FROM hits", gluebind::NO_PARAMS)
            .await
            .unwrap();
        assert_eq!(rows.into_rows().unwrap().len(), 1);

        s.commit().await.unwrap();
        assert!(!s.is_dirty());
        let t = f.open();
        assert_eq!(Hit::get(&t, "/").await.unwrap().unwrap().count, 1);
        assert_eq!(User::query(&t).count().await.unwrap(), 3);

        // Rollback and teardown cover the binds too.
        Hit {
            path: "/a".into(),
            count: 1,
        }
        .insert(&t)
        .await
        .unwrap();
        assert!(t.is_dirty(), "a bind's write is a pending write");
        t.rollback().await.unwrap();
        assert!(!t.is_dirty());
        let r = Registry::new(f.clone());
        let scope = r.begin();
        Hit {
            path: "/b".into(),
            count: 1,
        }
        .insert(&r.session(&scope).unwrap())
        .await
        .unwrap();
        r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(
            Hit::query(&f.open()).count().await.unwrap(),
            1,
            "rolled back"
        );
    });
}

#[test]
fn bind_errors_name_the_problem() {
    block_on(async {
        let s = SessionFactory::builder()
            .bind(Engine::from_url("memory://").unwrap())
            .build()
            .unwrap()
            .open();
        let err = model::create_all(&s, &[Hit::META]).await.unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(err.to_string().contains("\"cache\""), "{err}");
        assert!(err.to_string().contains("bind_key"), "{err}");

        let s = factory().open();
        let cache = s.for_bind(Some("cache")).unwrap();
        assert!(cache.for_bind(Some("cache")).unwrap().bind_key() == Some("cache"));
        assert_eq!(cache.for_bind(Some("other")).unwrap_err().code(), "CONFIG");
        assert_eq!(cache.add(user(5, "E")).unwrap_err().code(), "CONFIG");
        // A closed session's binds are closed too.
        let r = Registry::new(factory());
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        let cache = s.for_bind(Some("cache")).unwrap();
        r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(
            cache
                .execute("SELECT 1", gluebind::NO_PARAMS)
                .await
                .unwrap_err()
                .code(),
            "SESSION_CLOSED"
        );
        assert_eq!(
            s.for_bind(Some("cache")).unwrap_err().code(),
            "SESSION_CLOSED"
        );
    });
}

#[test]
fn a_recording_registry_keeps_the_last_statements_of_ended_sessions() {
    block_on(async {
        let r = Registry::new(seeded(builder().record_queries(true).build().unwrap()));
        for id in 0..gluebind::Registry::RECENT_QUERIES as i64 + 3 {
            let scope = r.begin();
            let s = r.session(&scope).unwrap();
            User::get(&s, id).await.unwrap();
            r.remove(&scope, Outcome::Completed).await.unwrap();
        }
        let recent = r.recent_queries();
        assert_eq!(recent.len(), gluebind::Registry::RECENT_QUERIES);
        assert_eq!(
            recent[0].params,
            [serde_json::json!(3)],
            "oldest dropped first"
        );
        assert_eq!(recent.last().unwrap().params, [serde_json::json!(52)]);
        assert!(Registry::new(factory()).recent_queries().is_empty());
    });
}

#[test]
fn a_commit_whose_flush_fails_discards_the_unit_of_work() {
    block_on(async {
        let f = factory();
        let s = f.open();
        s.add(User {
            id: 3,
            name: "Dup".into(),
            email: "ada@example.com".into(),
        })
        .unwrap();
        assert_eq!(s.commit().await.unwrap_err().code(), "UNIQUE");
        assert!(
            !s.is_dirty(),
            "discarded, as a failed commit's writes always are"
        );
        // The session is usable again at once: the same key can be added anew.
        s.add(user(3, "Cy")).unwrap();
        s.commit().await.unwrap();
        assert_eq!(names(&f.open()).await, ["Ada", "Bob", "Cy"]);
    });
}

#[test]
fn on_kv_the_identity_map_saves_reads_and_a_bind_costs_no_kv_operation() {
    use gluebind::kv::{CountingKv, MemoryKv};
    let kv = Rc::new(CountingKv::new(MemoryKv::new()));
    let isolate = || {
        SessionFactory::builder()
            .bind(Engine::with_kv("kv://GLUEBIND_KV", kv.clone()).unwrap())
            .bind_key("cache", Engine::from_url("memory://").unwrap())
            .build()
            .unwrap()
    };
    block_on(async {
        seeded(isolate());
        // Another isolate: nothing cached but what it reads (the schema, warmed here).
        let f = isolate();
        User::get(&f.open(), 2).await.unwrap();
        let s = f.open();
        kv.reset();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        assert_eq!(kv.ops().gets, 1, "a cold point read: {:?}", kv.ops());
        for _ in 0..3 {
            assert!(s.get::<User>(1).await.unwrap().unwrap().ptr_eq(&ada));
        }
        assert_eq!(kv.ops().gets, 1, "tracked: no more reads: {:?}", kv.ops());

        model::create_all_bind(&s, &[User::META, Hit::META], Some("cache"))
            .await
            .unwrap();
        s.add(Hit {
            path: "/".into(),
            count: 1,
        })
        .unwrap();
        s.flush().await.unwrap();
        let cache = s.for_bind(Some("cache")).unwrap();
        assert_eq!(
            cache.kv_ops(),
            s.kv_ops(),
            "one KV budget per event, binds included"
        );
        assert_eq!(
            kv.ops().gets,
            1,
            "the cache bind is not on KV: {:?}",
            kv.ops()
        );

        ada.borrow_mut().name = "Ada L.".into();
        s.delete(&user(2, "Bob")).unwrap();
        s.add(user(3, "Cy")).unwrap();
        s.commit().await.unwrap();
        let t = isolate().open();
        assert_eq!(
            names(&t).await,
            ["Ada L.", "Cy"],
            "durable on kv, seen by a new isolate"
        );
        let err = Hit::query(&t).count().await.unwrap_err();
        assert!(
            err.to_string().contains("hits"),
            "each isolate's memory:// cache is its own: {err}"
        );
    });
}

#[test]
fn deleting_an_object_twice_deletes_it_once() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        s.delete(&ada).unwrap();
        s.delete(&ada).unwrap();
        s.commit().await.unwrap();
        assert_eq!(names(&f.open()).await, ["Bob"]);
    });
}

#[test]
fn adding_and_deleting_an_untracked_key_leaves_its_stored_row_visible() {
    block_on(async {
        let s = factory().open();
        let shadow = s.add(user(1, "Shadow")).unwrap(); // row 1 exists, but is not tracked
        s.delete(&shadow).unwrap();
        assert!(!s.is_dirty());
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        assert_eq!(ada.borrow().name, "Ada");
    });
}

#[test]
fn a_conflict_on_the_default_engine_commits_nothing_on_the_binds() {
    block_on(async {
        let f = factory();
        let (s, t) = (f.open(), f.open());
        s.get::<User>(1).await.unwrap().unwrap().borrow_mut().name = "S".into();
        s.add(Hit {
            path: "/x".into(),
            count: 1,
        })
        .unwrap();
        t.get::<User>(1).await.unwrap().unwrap().borrow_mut().name = "T".into();
        t.commit().await.unwrap();
        assert_eq!(s.commit().await.unwrap_err().code(), "CONFLICT");
        assert!(!s.is_dirty(), "the binds' writes are discarded too");
        assert_eq!(
            s.commit().await.unwrap().version,
            None,
            "nothing left to commit"
        );
        assert!(Hit::get(&f.open(), "/x").await.unwrap().is_none());
    });
}

#[test]
fn a_conflict_on_a_bind_commits_nothing_on_the_default_engine() {
    block_on(async {
        let after = Rc::new(std::cell::Cell::new(0));
        let a = after.clone();
        let f = seeded(
            builder()
                .after_commit(move |_| a.set(a.get() + 1))
                .build()
                .unwrap(),
        );
        let (s, t) = (f.open(), f.open());
        s.add(user(3, "Cy")).unwrap();
        s.add(Hit {
            path: "/h".into(),
            count: 1,
        })
        .unwrap();
        s.flush().await.unwrap();
        t.add(Hit {
            path: "/h".into(),
            count: 7,
        })
        .unwrap();
        t.commit().await.unwrap();
        after.set(0);
        // Both inserted key "/h": the second committer conflicts on the bind.
        assert_eq!(s.commit().await.unwrap_err().code(), "CONFLICT");
        assert!(
            User::get(&f.open(), 3).await.unwrap().is_none(),
            "checked before any commit"
        );
        assert_eq!(after.get(), 0);
        assert!(!s.is_dirty());
    });
}

#[test]
fn objects_a_before_commit_hook_adds_are_committed_with_the_rest() {
    block_on(async {
        let seen: Rc<RefCell<Vec<Change>>> = Rc::default();
        let sn = seen.clone();
        let f = seeded(
            builder()
                .before_commit(|s, changes| {
                    if changes.iter().any(|c| c.operation == Operation::Insert) {
                        let path = format!("/audit/{}", changes.len());
                        s.add(Hit { path, count: 1 })?;
                    }
                    Ok(())
                })
                .after_commit(move |c| sn.borrow_mut().extend_from_slice(c.changes))
                .build()
                .unwrap(),
        );
        seen.borrow_mut().clear();
        let s = f.open();
        s.add(user(3, "Cy")).unwrap();
        s.commit().await.unwrap();
        assert!(Hit::get(&f.open(), "/audit/1").await.unwrap().is_some());
        let tables: Vec<String> = seen.borrow().iter().map(|c| c.table.to_string()).collect();
        assert_eq!(tables, ["users", "hits"]);
        assert!(!s.is_dirty());
    });
}

#[test]
#[allow(clippy::await_holding_refcell_ref)] // the mistake under test
fn a_live_borrow_mut_is_an_error_naming_it_not_a_panic() {
    block_on(async {
        let s = factory().open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        let mut guard = ada.borrow_mut();
        guard.name = "X".into();
        assert!(s.is_dirty());
        assert_eq!(format!("{ada:?}"), "Tracked(<borrowed>)");
        let err = User::query(&s).count().await.unwrap_err();
        assert!(err.to_string().contains("borrow_mut"), "{err}");
        drop(guard);
        assert_eq!(User::query(&s).count().await.unwrap(), 2);
        assert_eq!(User::get(&s, 1).await.unwrap().unwrap().name, "X");
    });
}

#[test]
fn a_bind_session_refuses_the_unit_of_work_verbs_of_its_root() {
    block_on(async {
        let s = factory().open();
        let cache = s.for_bind(Some("cache")).unwrap();
        Hit {
            path: "/d".into(),
            count: 1,
        }
        .insert(&s)
        .await
        .unwrap();
        for err in [
            cache.commit().await.unwrap_err(),
            cache.rollback().await.unwrap_err(),
            cache.commit_deferred().unwrap_err(),
            cache.for_bind(None).unwrap_err(),
            User::query(&cache).count().await.unwrap_err(),
        ] {
            assert_eq!(err.code(), "CONFIG", "{err}");
        }
        assert!(s.is_dirty(), "nothing was committed or rolled back");
        assert_eq!(
            Hit::query(&cache).count().await.unwrap(),
            1,
            "a bind's own models run"
        );
    });
}

#[test]
fn two_models_with_one_table_name_on_two_binds_are_two_identities() {
    block_on(async {
        let f = factory();
        let s = f.open();
        let ada = s.get::<User>(1).await.unwrap().unwrap();
        let cached = s.get::<CacheUser>(1).await.unwrap().unwrap();
        assert_eq!(cached.borrow().name, "cached");
        ada.borrow_mut().name = "Changed".into();
        s.commit().await.unwrap();
        assert_eq!(
            User::get(&f.open(), 1).await.unwrap().unwrap().name,
            "Changed"
        );
        let s = f.open();
        s.add(CacheUser {
            id: 7,
            name: "c".into(),
        })
        .unwrap();
        s.add(user(7, "Sev")).unwrap();
        s.commit().await.unwrap();
    });
}

#[test]
fn a_changed_key_of_an_added_object_is_refused() {
    block_on(async {
        let s = factory().open();
        let ten = s.add(user(10, "Ten")).unwrap();
        ten.borrow_mut().id = 11;
        let err = s.flush().await.unwrap_err();
        assert!(err.to_string().contains("primary key"), "{err}");
    });
}

#[test]
fn updates_flush_in_the_order_objects_were_tracked() {
    for _ in 0..10 {
        block_on(async {
            // Bob gives his email up, then Ada takes it: fine in that order.
            let s = factory().open();
            let bob = s.get::<User>(2).await.unwrap().unwrap();
            let ada = s.get::<User>(1).await.unwrap().unwrap();
            ada.borrow_mut().email = "bob@example.com".into();
            bob.borrow_mut().email = "new@example.com".into();
            s.flush().await.unwrap();
            // Tracked the other way round, the same changes collide every time.
            let s = factory().open();
            let ada = s.get::<User>(1).await.unwrap().unwrap();
            let bob = s.get::<User>(2).await.unwrap().unwrap();
            ada.borrow_mut().email = "bob@example.com".into();
            bob.borrow_mut().email = "new@example.com".into();
            assert_eq!(s.flush().await.unwrap_err().code(), "UNIQUE");
        });
    }
}

#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "nope", bind_key = "nope")]
struct Unbound {
    #[gluebind(primary_key)]
    id: i64,
}

#[test]
fn a_model_without_an_engine_fails_the_flush_before_any_write() {
    block_on(async {
        let f = factory();
        let s = f.open();
        s.add(user(3, "Cy")).unwrap();
        s.add(Unbound { id: 1 }).unwrap();
        let err = s.flush().await.unwrap_err();
        assert_eq!(err.code(), "CONFIG", "{err}");
        assert!(err.to_string().contains("\"nope\""), "{err}");
        s.delete(&Unbound { id: 1 }).unwrap();
        s.commit().await.unwrap(); // Cy once: the failed flush wrote nothing
        assert_eq!(names(&f.open()).await, ["Ada", "Bob", "Cy"]);
    });
}

#[test]
fn recording_cuts_long_values_and_keeps_statements_that_do_not_parse() {
    block_on(async {
        let f = seeded(builder().record_queries(true).build().unwrap());
        let s = f.open();
        let long = "x".repeat(10_000);
        s.execute(
            "SELECT id FROM users WHERE name = $1",
            gluebind::params![long.clone()],
        )
        .await
        .unwrap();
        s.execute("SELEC nonsense", gluebind::NO_PARAMS)
            .await
            .unwrap_err();
        let q = s.recorded_queries();
        assert_eq!(s.recorded_query_count(), 2);
        let shown = q[0].params[0].as_str().unwrap();
        assert!(
            shown.len() < 400 && shown.ends_with("(10000 bytes)"),
            "{shown}"
        );
        assert_eq!((q[1].sql.as_str(), q[1].ok), ("SELEC nonsense", false));
    });
}
