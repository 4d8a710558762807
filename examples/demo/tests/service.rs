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
    pollster::block_on(service::create_all(&f.open())).unwrap();
    f
}

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
        let page = service::list_users(&f.open(), Paging::parse(None).unwrap())
            .await
            .unwrap();
        assert_eq!(page.total, 1);
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
        let page = service::list_users(&s, Paging::parse(None).unwrap())
            .await
            .unwrap();
        assert_eq!(page.total, 0);
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
        let page = service::list_users(&s, paging).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), [3, 4]);
        let past = Paging::parse(Some("page=9&per_page=2")).unwrap();
        assert!(service::list_users(&s, past)
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
