//! The demo's operations on a real memory:// engine, natively: statuses and stored data.

use gluebind::{Engine, SessionFactory};
use gluebind_demo::{
    etag,
    model::{NewUser, Paging, UserPatch},
    service,
};

fn factory() -> SessionFactory {
    let f = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap();
    pollster::block_on(service::migrate(&f.open())).unwrap();
    f
}

/// A note's `created_at` in these tests.
const NOW: &str = "2026-12-06T04:00:00.000Z";

fn new(name: &str, email: &str) -> NewUser {
    NewUser {
        name: name.into(),
        email: email.into(),
    }
}

#[test]
fn create_read_update_delete() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        let ada = service::create_user(&s, new("Ada", "ada@x")).await.unwrap();
        let bob = service::create_user(&s, new("Bob", "bob@x")).await.unwrap();
        assert!(bob.id > ada.id);
        let other = f.open();
        assert_eq!(
            service::get_user(&other, ada.id).await.unwrap(),
            ada,
            "committed"
        );

        let patch = UserPatch {
            name: Some("Ada L".into()),
            email: None,
        };
        let updated = service::update_user(&s, ada.id, patch, None).await.unwrap();
        assert_eq!(updated.name, "Ada L");
        assert_eq!(updated.email, "ada@x");

        let taken = UserPatch {
            name: None,
            email: Some("bob@x".into()),
        };
        assert_eq!(
            service::update_user(&s, ada.id, taken, None)
                .await
                .unwrap_err()
                .status,
            409
        );
        assert_eq!(
            service::get_user(&f.open(), ada.id).await.unwrap().email,
            "ada@x"
        );

        service::delete_user(&s, ada.id).await.unwrap();
        assert_eq!(
            service::get_user(&f.open(), ada.id)
                .await
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            service::delete_user(&s, ada.id).await.unwrap_err().status,
            404
        );
    });
}

#[test]
fn duplicate_email_is_409_and_stores_nothing() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        service::create_user(&s, new("A", "same@x")).await.unwrap();
        let err = service::create_user(&s, new("B", "same@x"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (409, "email already registered")
        );
        let page = service::list_users(&f.open(), Paging::parse(None).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(page.total, Some(1));
        // The email filter finds the one owner, and nobody for another email.
        let s = f.open();
        let found = service::list_users(&s, Paging::parse(None).unwrap(), Some("same@x"))
            .await
            .unwrap();
        assert_eq!((found.total, found.items[0].name.as_str()), (Some(1), "A"));
        let none = service::list_users(&s, Paging::parse(None).unwrap(), Some("SAME@x"))
            .await
            .unwrap();
        assert_eq!((none.total, none.items.len()), (Some(0), 0));
    });
}

#[test]
fn concurrent_creates_of_one_email_commit_once() {
    let f = factory();
    pollster::block_on(async {
        // Both sessions validate against their snapshot before either commits.
        let a = f.open();
        let b = f.open();
        let ra = service::create_user(&a, new("A", "race@x")).await;
        let rb = service::create_user(&b, new("B", "race@x")).await;
        assert!(ra.is_ok());
        assert_eq!(rb.unwrap_err().status, 409);
    });
}

#[test]
fn invalid_input_is_400_and_stores_nothing() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        for (name, email) in [("", "a@x"), ("A", "nope"), (&"n".repeat(101)[..], "a@x")] {
            let err = service::create_user(&s, new(name, email))
                .await
                .unwrap_err();
            assert_eq!(err.status, 400, "{name:?} {email:?}");
        }
        let page = service::list_users(&s, Paging::parse(None).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(page.total, Some(0));
    });
}

#[test]
fn pages_are_ordered_by_id() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        for i in 0..5 {
            service::create_user(&s, new("n", &format!("{i}@x")))
                .await
                .unwrap();
        }
        let paging = Paging::parse(Some("page=2&per_page=2")).unwrap();
        let page = service::list_users(&s, paging, None).await.unwrap();
        assert_eq!(page.total, Some(5));
        assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), [3, 4]);
        let past = Paging::parse(Some("page=9&per_page=2")).unwrap();
        assert!(service::list_users(&s, past, None)
            .await
            .unwrap()
            .items
            .is_empty());
    });
}

#[test]
fn delete_racing_a_committed_delete_is_404_not_409() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        let ada = service::create_user(&s, new("Ada", "ada@x")).await.unwrap();
        // `late` reads the row before `first` deletes it: its snapshot still holds Ada.
        let late = f.open();
        assert_eq!(service::get_user(&late, ada.id).await.unwrap(), ada);
        let first = f.open();
        service::delete_user(&first, ada.id).await.unwrap();
        let err = service::delete_user(&late, ada.id).await.unwrap_err();
        assert_eq!(err.status, 404, "{}", err.message);
        assert_eq!(
            service::get_user(&f.open(), ada.id)
                .await
                .unwrap_err()
                .status,
            404
        );
    });
}

#[test]
fn delete_racing_a_committed_update_deletes_the_updated_row() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        let ada = service::create_user(&s, new("Ada", "ada@x")).await.unwrap();
        let late = f.open();
        assert_eq!(service::get_user(&late, ada.id).await.unwrap(), ada);
        let patch = UserPatch {
            name: Some("Ada L".into()),
            email: None,
        };
        service::update_user(&f.open(), ada.id, patch, None)
            .await
            .unwrap();
        service::delete_user(&late, ada.id).await.unwrap();
        assert_eq!(
            service::get_user(&f.open(), ada.id)
                .await
                .unwrap_err()
                .status,
            404
        );
    });
}

#[test]
fn if_match_with_a_stale_etag_is_412_and_stores_nothing() {
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        let ada = service::create_user(&s, new("Ada", "ada@x")).await.unwrap();
        let seen = etag::of(&ada);
        let rename = |name: &str| UserPatch {
            name: Some(name.into()),
            email: None,
        };
        // Someone else changes Ada after we read her.
        let theirs = service::update_user(&f.open(), ada.id, rename("Theirs"), Some(&seen))
            .await
            .unwrap();
        let err = service::update_user(&f.open(), ada.id, rename("Mine"), Some(&seen))
            .await
            .unwrap_err();
        assert_eq!(err.status, 412, "{}", err.message);
        assert!(err.message.contains(&etag::of(&theirs)), "{}", err.message);
        assert_eq!(service::get_user(&f.open(), ada.id).await.unwrap(), theirs);
        // With the current tag (or `*`) the change goes through.
        let fresh = etag::of(&theirs);
        let mine = service::update_user(&f.open(), ada.id, rename("Mine"), Some(&fresh))
            .await
            .unwrap();
        assert_eq!(mine.name, "Mine");
        let star = service::update_user(&f.open(), ada.id, rename("Star"), Some("*"))
            .await
            .unwrap();
        assert_eq!(star.name, "Star");
    });
}

#[test]
fn notes_are_limited_to_five_per_user_and_need_the_user() {
    use gluebind_demo::notes::{self, MAX_NOTES};
    let f = factory();
    pollster::block_on(async {
        let s = f.open();
        let ada = service::create_user(&s, new("Ada", "ada@x")).await.unwrap();
        for i in 0..MAX_NOTES {
            let note = notes::add(&s, ada.id, format!(r#"{{"body":"n{i}"}}"#).as_bytes(), NOW)
                .await
                .unwrap();
            assert_eq!((note.user_id, note.body), (ada.id, format!("n{i}")));
            assert_eq!(note.created_at.as_deref(), Some(NOW));
        }
        let full = notes::add(&s, ada.id, br#"{"body":"one too many"}"#, NOW)
            .await
            .unwrap_err();
        assert_eq!(full.status, 409, "{}", full.message);
        assert_eq!(
            notes::list(&s, ada.id).await.unwrap().len(),
            MAX_NOTES as usize
        );
        assert_eq!(
            notes::add(&s, 987_654, br#"{"body":"x"}"#, NOW)
                .await
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(notes::list(&s, 987_654).await.unwrap_err().status, 404);
        assert_eq!(
            notes::add(&s, ada.id, br#"{"body":""}"#, NOW)
                .await
                .unwrap_err()
                .status,
            400
        );
        assert!(!s.is_dirty(), "refusals leave nothing pending");
    });
}

/// Twelve requests for one user at once, on kv:// whose every call yields (as a network round
/// trip does), so that they interleave between their count and their commit: exactly the
/// limit is stored, the rest are refused (409), none fails otherwise.
#[test]
fn concurrent_notes_keep_the_limit() {
    use gluebind::kv::{FaultyKv, MemoryKv};
    use gluebind_demo::notes::{self, MAX_NOTES};
    use std::rc::Rc;
    let kv = Rc::new(FaultyKv::new(MemoryKv::new()));
    kv.interleave(true);
    let f = SessionFactory::builder()
        .bind(Engine::with_kv("kv://GLUEBIND_KV", kv).unwrap())
        .build()
        .unwrap();
    pollster::block_on(service::migrate(&f.open())).unwrap();
    let ada = pollster::block_on(service::create_user(&f.open(), new("Ada", "ada@x"))).unwrap();
    let outcomes = pollster::block_on(futures::future::join_all((0..12).map(|i| {
        let s = f.open();
        async move {
            notes::add(&s, ada.id, format!(r#"{{"body":"n{i}"}}"#).as_bytes(), NOW)
                .await
                .map_err(|e| (e.status, e.message))
        }
    })));
    let added = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(added as i64, MAX_NOTES, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(_) | Err((409, _)))),
        "{outcomes:?}"
    );
    let stored = pollster::block_on(notes::list(&f.open(), ada.id)).unwrap();
    assert_eq!(stored.len() as i64, MAX_NOTES);
}

#[test]
fn seeding_adds_count_users_in_one_commit_and_refuses_bad_counts() {
    let f = factory();
    pollster::block_on(async {
        for count in [0, 2001] {
            let err = service::seed_users(&f.open(), service::Seed { count })
                .await
                .unwrap_err();
            assert_eq!(err.status, 400, "{count}");
        }
        let ids = service::seed_users(&f.open(), service::Seed { count: 3 })
            .await
            .unwrap();
        assert_eq!(ids.len(), 3);
        let s = f.open();
        let page = service::list_users(&s, Paging::parse(None).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(page.total, Some(3), "committed");
        let found = service::list_users(
            &s,
            Paging::parse(None).unwrap(),
            Some(&format!("seed-{}@seed.test", ids[1])),
        )
        .await
        .unwrap();
        assert_eq!(found.items[0].id, ids[1]);
    });
}

#[test]
fn keyset_pages_walk_every_user_once_in_id_order() {
    let f = factory();
    pollster::block_on(async {
        let ids = service::seed_users(&f.open(), service::Seed { count: 7 })
            .await
            .unwrap();
        let s = f.open();
        let (mut seen, mut after) = (Vec::new(), 0);
        loop {
            let (items, next) = service::users_after(&s, after, 3, None).await.unwrap();
            assert!(items.len() <= 3);
            seen.extend(items.iter().map(|u| u.id));
            match next {
                Some(next) => {
                    assert_eq!(Some(next), items.last().map(|u| u.id));
                    after = next;
                }
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let (none, next) = service::users_after(&s, *ids.last().unwrap(), 3, None)
            .await
            .unwrap();
        assert!(none.is_empty() && next.is_none());
    });
}

/// A database the first deploy wrote (notes without `created_at`): the next start runs
/// `0001_notes_created_at` once; the notes stored before read `None`, new ones keep their
/// time, and the step is recorded as applied (a new database records it as created).
#[test]
fn the_notes_migration_upgrades_a_database_of_the_previous_deploy() {
    use gluebind::{migrate, NO_PARAMS};
    use gluebind_demo::notes;
    let f = SessionFactory::builder()
        .bind(Engine::from_url("memory://").unwrap())
        .build()
        .unwrap();
    pollster::block_on(async {
        let s = f.open();
        s.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE); \
             CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL); \
             CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, body TEXT NOT NULL); \
             INSERT INTO users VALUES (1, 'Ada', 'ada@x'); \
             INSERT INTO notes VALUES (1, 1, 'from the first deploy')",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        let report = service::migrate(&f.open()).await.unwrap();
        assert_eq!(report.applied, ["0001_notes_created_at"]);
        let s = f.open();
        notes::add(&s, 1, br#"{"body":"after"}"#, NOW)
            .await
            .unwrap();
        let listed = notes::list(&s, 1).await.unwrap();
        let created: Vec<Option<&str>> = listed.iter().map(|n| n.created_at.as_deref()).collect();
        assert_eq!(created, [None, Some(NOW)]);
        let applied = migrate::applied(&s).await.unwrap();
        assert_eq!((applied.len(), applied[0].how.as_str()), (1, "applied"));
        // A restart: nothing more to do.
        let again = service::migrate(&f.open()).await.unwrap();
        assert!(again.applied.is_empty() && !again.created);
        assert!(s
            .execute("SELECT created_at FROM notes", NO_PARAMS)
            .await
            .is_ok());
    });
    // A new database: created in the latest shape, the step recorded as created.
    let fresh = factory();
    let applied = pollster::block_on(gluebind::migrate::applied(&fresh.open())).unwrap();
    assert_eq!((applied.len(), applied[0].how.as_str()), (1, "created"));
}
