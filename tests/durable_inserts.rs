//! do://: the INSERTs that `commit()` flushes are checked by the database object in the
//! commit's one request, not loaded first — a new model object costs one request to the
//! object — and every error they would have raised at the flush is still raised, by the
//! commit, with nothing written: a taken unique value or key (UNIQUE), a key committed since the
//! snapshot (CONFLICT). Explicit flushes and plain INSERT statements still check at once.

mod common;
use common::{block_on, count_in};
use gluebind::{durable::LocalObject, params, Engine, Error, Model, Session, SessionFactory};
use std::rc::Rc;

const URL: &str = "do://GLUEBIND_DB";

#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "users")]
struct User {
    #[gluebind(primary_key)]
    id: i64,
    name: String,
    #[gluebind(unique)]
    email: String,
}

/// A user's note: its table (created by [`NOTES`]) has a foreign key, which an INSERT checks
/// by reading the user.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "notes")]
struct Note {
    #[gluebind(primary_key)]
    id: i64,
    user_id: i64,
}

const NOTES: &str = "CREATE TABLE notes (id INT PRIMARY KEY, user_id INT NOT NULL, \
                     FOREIGN KEY (user_id) REFERENCES users (id))";

fn isolate(object: &Rc<LocalObject>) -> SessionFactory {
    isolate_at(object, URL)
}

fn isolate_at(object: &Rc<LocalObject>, url: &str) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_object(url, object.clone()).unwrap())
        .build()
        .unwrap()
}

/// An isolate without a cache: each session reads as of the latest version at its first load,
/// and knows only what it loaded (so an INSERT meets rows it did not load).
fn uncached(object: &Rc<LocalObject>) -> SessionFactory {
    isolate_at(object, &format!("{URL}?cache_ttl=0"))
}

/// An object with the tables, and a first isolate whose cache knows their schemas.
fn database() -> (Rc<LocalObject>, SessionFactory) {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    block_on(async {
        let s = a.open();
        gluebind::model::create_all(&s, &[User::META])
            .await
            .unwrap();
        s.execute_batch(NOTES).await.unwrap();
        s.commit().await.unwrap();
        // The schema change made the cache forget the tables: read a row of each (the cache
        // then holds their schemas, not their rows).
        let s = a.open();
        assert!(s.get::<User>(0).await.unwrap().is_none());
        assert!(s.get::<Note>(0).await.unwrap().is_none());
    });
    (object, a)
}

fn user(id: i64, email: &str) -> User {
    User {
        id,
        name: format!("user {id}"),
        email: email.to_owned(),
    }
}

async fn commit_user(f: &SessionFactory, u: User) -> gluebind::Result<()> {
    let s = f.open();
    s.add(u)?;
    s.commit().await.map(|_| ())
}

async fn emails(s: &Session) -> Vec<(i64, String)> {
    User::query(s)
        .order_by(User::ID.asc())
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect()
}

/// Requests the object received while `f` ran.
async fn requests<T>(object: &LocalObject, f: impl std::future::Future<Output = T>) -> (u64, T) {
    let before = object.requests();
    let out = f.await;
    (object.requests() - before, out)
}

#[test]
fn a_new_object_costs_one_request_to_commit() {
    let (object, a) = database();
    block_on(async {
        // A fresh id from the isolate's block, then add and commit: the commit alone.
        let s = a.open();
        let id = User::next_id(&s).await.unwrap();
        s.add(user(id, "ada@x")).unwrap();
        let (n, done) = requests(&object, s.commit()).await;
        done.unwrap();
        assert_eq!(n, 1, "one commit request, no load of the key or the email");
        // Many in one commit: still one request.
        let s = a.open();
        for i in 0..50 {
            s.add(user(100 + i, &format!("u{i}@x"))).unwrap();
        }
        let (n, done) = requests(&object, s.commit()).await;
        assert_eq!(done.unwrap().rows_written, 50);
        assert_eq!(n, 1);
        // An explicit flush checks at once, as before: it loads what the INSERT needs.
        let s = a.open();
        s.add(user(200, "bob@x")).unwrap();
        let (n, flushed) = requests(&object, s.flush()).await;
        flushed.unwrap();
        assert_eq!(n, 1, "the flush loaded the key and the email");
        s.commit().await.unwrap();
        assert_eq!(emails(&a.open()).await.len(), 52);
    });
}

#[test]
fn a_taken_email_fails_the_commit_and_writes_nothing() {
    let (object, b) = database();
    let a = uncached(&object);
    block_on(async {
        // Committed by another isolate before a's snapshot, which knows only the schema.
        commit_user(&b, user(1, "same@x")).await.unwrap();
        let s = a.open();
        s.add(user(2, "same@x")).unwrap();
        s.add(user(3, "free@x")).unwrap();
        let err = s.commit().await.unwrap_err();
        let Error::Unique {
            table,
            column,
            value,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((table.as_str(), column.as_str()), ("users", "email"));
        assert_eq!(value, "\"same@x\"");
        // Nothing of the commit is stored; the session is clean and usable.
        assert!(!s.is_dirty());
        assert_eq!(emails(&s).await, vec![(1, "same@x".to_owned())]);
        assert_eq!(emails(&b.open()).await, vec![(1, "same@x".to_owned())]);
        // The same failure at an explicit flush, before any commit (the flush loads).
        let s = a.open();
        s.add(user(4, "same@x")).unwrap();
        assert!(matches!(s.flush().await, Err(Error::Unique { .. })));
    });
}

#[test]
fn a_taken_key_is_unique_and_one_committed_since_is_a_conflict() {
    let (object, b) = database();
    let a = uncached(&object);
    block_on(async {
        commit_user(&b, user(7, "b7@x")).await.unwrap();
        // Held at the snapshot: the INSERT is a duplicate, as the statement would have said.
        let s = a.open();
        s.add(user(7, "a7@x")).unwrap();
        let (n, done) = requests(&object, s.commit()).await;
        let err = done.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { column, value, .. } if column == "PRIMARY KEY" && value == "7"),
            "{err}"
        );
        assert_eq!(n, 2, "the schema, then the commit: the key was not loaded");
        // The session's count (the object's, and its own writes, whatever the commit left):
        // one user, not two.
        let counted = count_in(&s, "users").await;
        assert_eq!(counted, 1);
        // Committed after this session's snapshot (taken by a read of another table): a
        // conflict, as for any row written; a retry then sees the row.
        let s = a.open();
        assert!(Note::query(&s).all().await.unwrap().is_empty());
        s.add(user(8, "a8@x")).unwrap();
        commit_user(&b, user(8, "b8@x")).await.unwrap();
        let err = s.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        assert_eq!(
            emails(&a.open()).await,
            vec![(7, "b7@x".to_owned()), (8, "b8@x".to_owned())]
        );
    });
}

#[test]
fn a_plain_insert_statement_still_checks_at_once() {
    let (object, b) = database();
    let a = uncached(&object);
    block_on(async {
        commit_user(&b, user(1, "same@x")).await.unwrap();
        let s = a.open();
        let err = s
            .execute(
                "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
                params![2i64, "x", "same@x"],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unique { .. }), "{err}");
        let err = s
            .execute(
                "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
                params![1i64, "x", "other@x"],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unique { .. }), "{err}");
    });
}

#[test]
fn two_new_objects_with_one_email_fail_in_the_flush() {
    let (_object, a) = database();
    block_on(async {
        let s = a.open();
        s.add(user(1, "twice@x")).unwrap();
        s.add(user(2, "twice@x")).unwrap();
        let err = s.commit().await.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { column, .. } if column == "email"),
            "{err}"
        );
        assert!(emails(&a.open()).await.is_empty());
    });
}

#[test]
fn a_foreign_key_is_still_read_before_the_insert() {
    let (object, b) = database();
    let a = uncached(&object);
    block_on(async {
        // The user exists, committed by another isolate: a's INSERT of a note loads it.
        commit_user(&b, user(1, "ada@x")).await.unwrap();
        let s = a.open();
        s.add(Note { id: 1, user_id: 1 }).unwrap();
        s.commit().await.unwrap();
        // No such user: refused, nothing written.
        let s = a.open();
        s.add(Note { id: 2, user_id: 99 }).unwrap();
        let err = s.commit().await.unwrap_err();
        assert!(
            err.to_string().contains("99") || err.to_string().contains("foreign"),
            "{err}"
        );
        let notes = Note::query(&a.open()).all().await.unwrap();
        assert_eq!(notes, vec![Note { id: 1, user_id: 1 }]);
    });
}

/// Racing isolates that insert the same new key and email: exactly one wins, whichever
/// order their commits reach the object.
#[test]
fn racing_inserts_have_one_winner() {
    let (object, a) = database();
    let b = isolate(&object);
    object.interleave(true);
    block_on(async {
        let one = commit_user(&a, user(5, "race@x"));
        let two = commit_user(&b, user(6, "race@x"));
        let (one, two) = futures::future::join(one, two).await;
        assert!(one.is_ok() != two.is_ok(), "{one:?} {two:?}");
        let loser = one.err().or(two.err()).unwrap();
        assert!(matches!(loser, Error::Unique { .. }), "{loser}");
        assert_eq!(emails(&a.open()).await.len(), 1);
        let one = commit_user(&a, user(9, "a9@x"));
        let two = commit_user(&b, user(9, "b9@x"));
        let (one, two) = futures::future::join(one, two).await;
        assert!(one.is_ok() != two.is_ok(), "{one:?} {two:?}");
        assert_eq!(emails(&a.open()).await.len(), 2);
    });
}

/// During a deploy a worker may commit to an object of the version before (which does not
/// read the keys a commit inserted unread): a taken key is then refused as a conflict, never
/// overwritten, and a taken email still as UNIQUE.
#[test]
fn an_older_object_never_overwrites_a_taken_key() {
    let (object, b) = database();
    let a = uncached(&object);
    object.as_older_object(true);
    block_on(async {
        commit_user(&b, user(7, "b7@x")).await.unwrap();
        let err = commit_user(&a, user(7, "a7@x")).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        let err = commit_user(&a, user(8, "b7@x")).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { column, .. } if column == "email"),
            "{err}"
        );
        assert_eq!(emails(&b.open()).await, vec![(7, "b7@x".to_owned())]);
    });
}

/// A refused commit brings the isolate cache what it missed (the commits that refused it), as a
/// successful one does: the cache stays warm, and a retry reads what refused it.
#[test]
fn a_refused_commit_keeps_the_isolate_cache() {
    let (object, a) = database();
    let b = isolate(&object);
    block_on(async {
        commit_user(&b, user(1, "same@x")).await.unwrap();
        let err = commit_user(&a, user(2, "same@x")).await.unwrap_err();
        assert!(matches!(err, Error::Unique { .. }), "{err}");
        let (n, found) = requests(&object, async { a.open().get::<User>(1).await.unwrap() }).await;
        assert_eq!(
            found.map(|u| u.borrow().email.clone()),
            Some("same@x".to_owned())
        );
        assert_eq!(n, 0, "the cache learnt user 1 from the refusal");
    });
}

/// With a before-commit hook, commit's flush checks its INSERTs at once: a hook's refusal keeps
/// the pending writes, which must not carry checks left for later. A taken key fails the flush,
/// before the hook runs.
#[test]
fn with_a_before_commit_hook_the_flush_checks_at_once() {
    let (object, b) = database();
    let hooked = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = hooked.clone();
    let a = SessionFactory::builder()
        .bind(Engine::with_object(&format!("{URL}?cache_ttl=0"), object.clone()).unwrap())
        .before_commit(move |_, _| {
            seen.set(seen.get() + 1);
            Ok(())
        })
        .build()
        .unwrap();
    block_on(async {
        commit_user(&b, user(7, "b7@x")).await.unwrap();
        let err = commit_user(&a, user(7, "a7@x")).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { column, .. } if column == "PRIMARY KEY"),
            "{err}"
        );
        assert_eq!(hooked.get(), 0, "the flush failed before the hook");
        commit_user(&a, user(8, "a8@x")).await.unwrap();
        assert_eq!(hooked.get(), 1);
    });
}

/// A commit of new objects whose answer is lost is sent again and answered as the first time
/// (its id), not refused by its own rows (their keys are taken by then) nor applied twice; an
/// object evicted in between still knows the id (stored with the commit).
#[test]
fn a_lost_answer_to_new_objects_is_retried_and_applied_once() {
    let (object, a) = database();
    block_on(async {
        object.lose_answers(2);
        commit_user(&a, user(5, "five@x")).await.unwrap();
        let version = object.version();
        assert_eq!(
            emails(&isolate(&object).open()).await,
            vec![(5, "five@x".to_owned())]
        );
        // The answer lost, then the object evicted before the retry reaches it: the first
        // attempt fails (lost answer), the retries find the id in storage. (The retried answer
        // above started the cache over: read once, so that the commit is the only request.)
        assert!(a.open().get::<User>(5).await.unwrap().is_some());
        let s = a.open();
        s.add(user(6, "six@x")).unwrap();
        object.lose_answers(1);
        let commit = s.commit();
        let evict = async {
            common::yield_now().await;
            object.restart();
        };
        object.interleave(true);
        let (done, ()) = futures::future::join(commit, evict).await;
        done.unwrap();
        assert_eq!(object.version(), version + 1, "one commit");
        assert_eq!(emails(&isolate(&object).open()).await.len(), 2);
    });
}
