//! Group commit on do://: the commits an isolate's sessions make while a request to the
//! database object is out go together in one request, and the object answers each as if it
//! came alone — its own outcome (committed, CONFLICT, UNIQUE), applied once, whatever happens
//! to the request that carried it (lost, cancelled, refused by an older object).

mod common;
use common::{block_on, object_isolate as isolate, USERS};
use futures::future::join_all;
use gluebind::{durable::LocalObject, params, CommitInfo, Error, Session, SessionFactory};
use std::{
    future::Future,
    pin::pin,
    rc::Rc,
    task::{Context, Poll},
};

/// An object with the users table, a first isolate that committed (so it knows the object
/// reads batches), and every request yielding once (as a round trip does).
fn database() -> (Rc<LocalObject>, SessionFactory) {
    let object = Rc::new(LocalObject::new());
    let a = isolate(&object);
    block_on(async {
        let s = a.open();
        s.execute_batch(USERS).await.unwrap();
        s.commit().await.unwrap();
    });
    object.interleave(true);
    (object, a)
}

/// One session of `f` that adds user `id` and commits.
async fn add(f: SessionFactory, id: i64, email: String) -> gluebind::Result<()> {
    let s = f.open();
    s.execute(
        "INSERT INTO users VALUES ($1, $2, $3)",
        params![id, format!("user {id}"), email],
    )
    .await?;
    s.commit().await.map(drop)
}

/// The users another isolate reads: (id, email), by id.
fn users(object: &Rc<LocalObject>) -> Vec<(i64, String)> {
    block_on(async {
        isolate(object)
            .open()
            .execute_batch("SELECT id, email FROM users ORDER BY id")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap()
            .iter()
            .map(|r| (r.get("id").unwrap(), r.get("email").unwrap()))
            .collect()
    })
}

/// Sessions of `f` with one new user each (ids `ids`), ready to commit.
fn ready(f: &SessionFactory, ids: impl IntoIterator<Item = i64>) -> Vec<Session> {
    ids.into_iter()
        .map(|id| {
            let s = f.open();
            block_on(s.execute(
                "INSERT INTO users VALUES ($1, $2, $3)",
                params![id, format!("user {id}"), format!("u{id}@x")],
            ))
            .unwrap();
            s
        })
        .collect()
}

/// Commits `sessions` at once, the first sent alone while the others wait for it (they then
/// go as one batch); `meanwhile` runs once the first is answered, before the batch goes.
fn commit_behind_one(sessions: &[Session], meanwhile: impl FnOnce()) -> Vec<gluebind::Result<()>> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let (first, rest) = sessions.split_first().unwrap();
    let mut first = pin!(first.commit());
    assert!(
        first.as_mut().poll(&mut cx).is_pending(),
        "the first is out"
    );
    let mut rest = pin!(join_all(rest.iter().map(Session::commit)));
    assert!(rest.as_mut().poll(&mut cx).is_pending(), "the others wait");
    let first = loop {
        if let Poll::Ready(outcome) = first.as_mut().poll(&mut cx) {
            break outcome;
        }
    };
    meanwhile();
    let mut outcomes = vec![first.map(drop)];
    outcomes.extend(block_on(rest).into_iter().map(|o| o.map(drop)));
    outcomes
}

#[test]
fn concurrent_commits_of_an_isolate_share_requests_and_keep_their_own_outcomes() {
    let (object, a) = database();
    // Twelve sessions commit at once; the last takes an email the first commits.
    let sessions: Vec<Session> = (1..=12_i64)
        .map(|id| {
            let email = match id {
                12 => "u1@x".to_owned(),
                id => format!("u{id}@x"),
            };
            let s = a.open();
            block_on(s.execute(
                "INSERT INTO users VALUES ($1, $2, $3)",
                params![id, format!("user {id}"), email],
            ))
            .unwrap();
            s
        })
        .collect();
    let before = object.requests();
    let outcomes = block_on(join_all(sessions.iter().map(Session::commit)));
    let requests = object.requests() - before;
    assert!(requests <= 4, "{requests} requests for 12 commits");
    assert!(outcomes[..11].iter().all(Result::is_ok), "{outcomes:?}");
    assert!(
        matches!(&outcomes[11], Err(Error::Unique { column, .. }) if column == "email"),
        "{:?}",
        outcomes[11]
    );
    let stored = users(&object);
    assert_eq!(stored.len(), 11, "{stored:?}");
    assert!(stored
        .iter()
        .all(|(id, email)| *email == format!("u{id}@x")));
    // The committing isolate's cache holds every row of the batch: read with no request.
    let before = object.requests();
    block_on(async {
        let s = a.open();
        for id in 1..=11_i64 {
            let rows = s
                .execute("SELECT email FROM users WHERE id = $1", params![id])
                .await
                .unwrap()
                .into_rows()
                .unwrap();
            assert_eq!(rows.len(), 1, "user {id}");
        }
    });
    assert_eq!(object.requests() - before, 0);
}

/// Two sessions of one batch that read a row and write it: the object takes them in order, so
/// the second conflicts with the first (serializable), as two requests would.
#[test]
fn a_batch_validates_each_commit_against_the_ones_before_it() {
    let (object, a) = database();
    block_on(add(a.clone(), 1, "u1@x".into())).unwrap();
    let mut sessions = ready(&a, [2]);
    for name in ["first", "second"] {
        let s = a.open();
        block_on(async {
            s.execute_batch("SELECT name FROM users WHERE id = 1")
                .await?;
            s.execute("UPDATE users SET name = $1 WHERE id = 1", params![name])
                .await
        })
        .unwrap();
        sessions.push(s);
    }
    let before = object.requests();
    let outcomes = commit_behind_one(&sessions, || {});
    assert_eq!(
        object.requests() - before,
        2,
        "one alone, then the two as one batch"
    );
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    assert!(
        matches!(&outcomes[2], Err(e) if e.code() == "CONFLICT"),
        "{outcomes:?}"
    );
}

/// The answer of a batch is lost after the object applied it: every commit of it goes again
/// and is answered by its id — each applied once, none refused by its own earlier attempt.
#[test]
fn a_lost_batch_answer_applies_each_commit_once() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=8);
    let requests = std::cell::Cell::new(0);
    let outcomes = commit_behind_one(&sessions, || {
        object.lose_answers(1);
        requests.set(object.requests());
    });
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    // The batch of seven (its answer lost), then each again.
    assert!(object.requests() - requests.get() >= 2);
    assert_eq!(users(&object).len(), 8);
}

/// The session whose request carries a batch is cancelled (its request ended) before the
/// answer: the other commits of the batch go again by themselves and are applied once.
#[test]
fn a_cancelled_sender_leaves_its_batch_to_the_others() {
    let (object, a) = database();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let sessions = ready(&a, 1..=3);
    let [mut second, mut third]: [Commit<'_>; 2] =
        behind_an_answered_one(&sessions).try_into().ok().unwrap();
    let mut polls = 0;
    let requests = object.requests();
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(object.requests() - requests, 1, "the batch of two is out");
    // Its session ends before the answer: the third learns that and goes again.
    drop(second);
    let outcome = loop {
        if let Poll::Ready(outcome) = third.as_mut().poll(&mut cx) {
            break outcome;
        }
        polls += 1;
        // Told at once, not after waiting out the request that will never come back.
        assert!(polls < 500, "the third commit is answered");
    };
    outcome.unwrap();
    let ids: Vec<i64> = users(&object).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        vec![1, 3],
        "the cancelled commit never reached the object"
    );
    // Nothing is left waiting: the next commits go as before.
    block_on(join_all(
        (4..=6).map(|id| add(a.clone(), id, format!("u{id}@x"))),
    ))
    .into_iter()
    .collect::<gluebind::Result<Vec<()>>>()
    .unwrap();
    assert_eq!(users(&object).len(), 5);
}

/// An object of an earlier gluebind (a deploy rolled back) refuses a batch unread: each of its
/// commits goes again alone, and the isolate batches no more.
#[test]
fn an_object_that_reads_no_batch_gets_each_commit_alone() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=6);
    let requests = std::cell::Cell::new(0);
    let outcomes = commit_behind_one(&sessions, || {
        object.as_older_object(true);
        requests.set(object.requests());
    });
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    // The refused batch, then each of its five commits alone (twice: that object also
    // refuses a commit without its schemas, which goes again whole).
    assert_eq!(object.requests() - requests.get(), 1 + 5 * 2);
    let sessions = ready(&a, 7..=9);
    let before = object.requests();
    let outcomes = block_on(join_all(sessions.iter().map(Session::commit)));
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(object.requests() - before, 3, "one request per commit");
    object.as_older_object(false);
    assert_eq!(users(&object).len(), 9);
}

/// Polls `f` until it is ready (at most `limit` times).
fn drive<F: Future + ?Sized>(mut f: std::pin::Pin<&mut F>, limit: u32) -> F::Output {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..limit {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("not ready after {limit} polls");
}

type Commit<'a> = std::pin::Pin<Box<dyn Future<Output = gluebind::Result<CommitInfo>> + 'a>>;

/// The commits of `sessions`: the first sent alone and answered while the others waited for it
/// (polled once each); the others', still waiting — the next one polled sends them as a batch.
fn behind_an_answered_one(sessions: &[Session]) -> Vec<Commit<'_>> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let (first, rest) = sessions.split_first().unwrap();
    let mut first = Box::pin(first.commit());
    assert!(
        first.as_mut().poll(&mut cx).is_pending(),
        "the first is out"
    );
    let mut waiting: Vec<Commit<'_>> = rest
        .iter()
        .map(|s| Box::pin(s.commit()) as Commit<'_>)
        .collect();
    for commit in &mut waiting {
        assert!(
            commit.as_mut().poll(&mut cx).is_pending(),
            "waits for the first"
        );
    }
    drive(first.as_mut(), 100).unwrap();
    waiting
}

/// Two commits of one batch that take one email: the second is checked against the first
/// (UNIQUE), not against the state before the batch.
#[test]
fn each_commit_of_a_batch_is_checked_against_the_ones_before_it_in_the_batch() {
    let (object, a) = database();
    let mut sessions = ready(&a, [1]);
    for id in [2_i64, 3] {
        let s = a.open();
        block_on(s.execute(
            "INSERT INTO users VALUES ($1, 'twin', 'twin@x')",
            params![id],
        ))
        .unwrap();
        sessions.push(s);
    }
    let before = object.requests();
    let outcomes = commit_behind_one(&sessions, || {});
    assert_eq!(
        object.requests() - before,
        2,
        "one alone, then the two as one batch"
    );
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    assert!(
        matches!(&outcomes[2], Err(Error::Unique { column, .. }) if column == "email"),
        "{outcomes:?}"
    );
    assert_eq!(users(&object).len(), 2);
}

/// A session whose request ends while its commit waits takes the commit out of the queue: the
/// batch goes without it.
#[test]
fn a_commit_whose_session_ends_while_it_waits_is_not_sent() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=3);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = pin!(sessions[0].commit());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let mut second = Box::pin(sessions[1].commit());
    let mut third = pin!(sessions[2].commit());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert!(third.as_mut().poll(&mut cx).is_pending());
    drop(second);
    drive(first, 100).unwrap();
    drive(third, 100).unwrap();
    let ids: Vec<i64> = users(&object).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 3]);
}

/// A commit waits for the request out a short while only: then it goes, and two requests are
/// out at once.
#[test]
fn a_commit_goes_while_another_request_is_out_after_a_short_wait() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=2);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let before = object.requests();
    let mut first = pin!(sessions[0].commit());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        object.requests() - before,
        1,
        "a quiet isolate's commit goes at once"
    );
    let mut second = pin!(sessions[1].commit());
    let mut polls = 0;
    while object.requests() - before < 2 {
        assert!(second.as_mut().poll(&mut cx).is_pending());
        polls += 1;
        assert!(polls <= 5, "the second went with the first still out");
    }
    assert!(polls > 1, "after a wait");
    drive(second, 100).unwrap();
    drive(first, 100).unwrap();
    assert_eq!(users(&object).len(), 2);
}

/// The request that carries a commit does not come back (its session's request is stuck):
/// after a while the commit goes again. Refused then, its outcome is unknown — rightly: the
/// first request, arriving later, applies it.
#[test]
fn a_commit_whose_request_does_not_come_back_goes_again_and_a_refusal_is_not_trusted() {
    let (object, a) = database();
    let b = isolate(&object);
    let mut sessions = ready(&a, [1, 2]);
    let s3 = a.open();
    block_on(s3.execute_batch("INSERT INTO users VALUES (3, 'three', 'x@x')")).unwrap();
    sessions.push(s3);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let [mut second, mut third]: [Commit<'_>; 2] =
        behind_an_answered_one(&sessions).try_into().ok().unwrap();
    // The second sends itself and the third, and is never polled again for a while.
    let before = object.requests();
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(object.requests() - before, 1);
    // Meanwhile another isolate takes the third's email.
    block_on(add(b.clone(), 100, "x@x".into())).unwrap();
    let err = drive(third.as_mut(), 20_000).unwrap_err();
    assert!(err.to_string().contains("commit outcome unknown"), "{err}");
    // The email is free again; the first request arrives at last and applies both.
    block_on(async {
        let s = b.open();
        s.execute_batch("DELETE FROM users WHERE id = 100")
            .await
            .unwrap();
        s.commit().await.unwrap();
    });
    drive(second.as_mut(), 100).unwrap();
    let ids: Vec<i64> = users(&object).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 2, 3], "the commit told unknown was applied");
}

/// The session that sent a batch ends before the answer: the other commits of the batch go
/// again, and one refused then is told its outcome is unknown (the first request may still
/// apply it).
#[test]
fn after_a_cancelled_sender_a_refusal_is_not_trusted() {
    let (object, a) = database();
    let b = isolate(&object);
    let sessions = ready(&a, 1..=3);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let [mut second, mut third]: [Commit<'_>; 2] =
        behind_an_answered_one(&sessions).try_into().ok().unwrap();
    assert!(
        second.as_mut().poll(&mut cx).is_pending(),
        "the batch of two is out"
    );
    drop(second);
    block_on(add(b.clone(), 100, "u3@x".into())).unwrap();
    let err = drive(third.as_mut(), 100).unwrap_err();
    assert!(err.to_string().contains("commit outcome unknown"), "{err}");
}

/// A request out that has not come back for a long while is not waited for: the next commit
/// goes at once.
#[test]
fn a_request_out_for_long_is_not_waited_for() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=2);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut stuck = pin!(sessions[0].commit());
    assert!(stuck.as_mut().poll(&mut cx).is_pending());
    object.advance(10_000);
    let before = object.requests();
    let mut next = pin!(sessions[1].commit());
    assert!(next.as_mut().poll(&mut cx).is_pending());
    assert_eq!(object.requests() - before, 1, "sent at once");
    drive(next, 100).unwrap();
    drive(stuck, 100).unwrap();
    assert_eq!(users(&object).len(), 2);
}

/// One failure for a whole batch (its object's storage cannot be opened) is each commit's
/// answer, as if it came alone.
#[test]
fn a_failure_of_a_whole_batch_is_each_commits() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=3);
    let outcomes = commit_behind_one(&sessions, || object.fail_to_open(1));
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    for outcome in &outcomes[1..] {
        let err = outcome.as_ref().unwrap_err();
        assert_eq!(err.code(), "STORAGE", "{err}");
        assert!(err.to_string().contains("cannot be opened"), "{err}");
        assert!(!err.to_string().contains("outcome unknown"), "{err}");
    }
    assert_eq!(users(&object).len(), 1);
}

/// A batch carries at most 32 commits.
#[test]
fn a_batch_carries_at_most_32_commits() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=41);
    let before = object.requests();
    let outcomes = commit_behind_one(&sessions, || {});
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert!(
        object.requests() - before >= 3,
        "one alone, then at least two batches"
    );
    assert_eq!(object.most_commits_per_request(), 32);
    assert_eq!(users(&object).len(), 41);
}

/// A busy isolate (its last request carried several commits) lets the commits right behind a
/// commit join it (one turn) before it goes; a quiet one sends it at once.
#[test]
fn a_busy_isolate_gathers_the_commits_right_behind() {
    let (object, a) = database();
    let sessions = ready(&a, 1..=3);
    commit_behind_one(&sessions, || {})
        .into_iter()
        .collect::<gluebind::Result<Vec<()>>>()
        .unwrap();
    let sessions = ready(&a, 4..=5);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let before = object.requests();
    let mut fourth = pin!(sessions[0].commit());
    assert!(fourth.as_mut().poll(&mut cx).is_pending());
    assert_eq!(object.requests(), before, "it waits a turn");
    let mut fifth = pin!(sessions[1].commit());
    assert!(fifth.as_mut().poll(&mut cx).is_pending());
    assert!(fourth.as_mut().poll(&mut cx).is_pending());
    assert_eq!(object.requests() - before, 1, "both in one request");
    drive(fourth, 100).unwrap();
    drive(fifth, 100).unwrap();
    // That request carried two: still busy. A lone one next makes the isolate quiet again.
    let sessions = ready(&a, 6..=7);
    drive(pin!(sessions[0].commit()), 100).unwrap();
    let before = object.requests();
    let mut seventh = pin!(sessions[1].commit());
    assert!(seventh.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        object.requests() - before,
        1,
        "a quiet isolate's commit goes at once"
    );
    drive(seventh, 100).unwrap();
    assert_eq!(users(&object).len(), 7);
}
