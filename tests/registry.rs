//! Registry semantics: one session per scope, removal at teardown, teardown policies,
//! outside-scope errors and stats, with interleaved async events.

mod common;
use common::*;
use gluebind::{Error, Finish, Outcome, Registry, TeardownPolicy};
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

/// Yields once to the executor, so joined tasks interleave like requests in an isolate.
struct YieldNow(bool);
impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn same_session_within_a_scope_different_across_scopes() {
    let r = users_registry(TeardownPolicy::Rollback);
    let s1 = r.begin();
    let s2 = r.begin();
    let a = r.session(&s1).unwrap();
    let b = r.session(&s1).unwrap();
    let c = r.session(&s2).unwrap();
    assert_eq!(a.id(), b.id());
    assert_ne!(a.id(), c.id());
    assert_eq!(r.session_id(&s1).as_deref(), Some(a.id()));
    block_on(async {
        // Writes through one handle are visible through the other: it is one session.
        insert(&a, 1, "a", "a@x").await.unwrap();
        assert_eq!(name_of(&b, 1).await.as_deref(), Some("a"));
        assert_eq!(name_of(&c, 1).await, None);
    });
}

#[test]
fn removed_or_foreign_scopes_are_outside_scope() {
    let r = users_registry(TeardownPolicy::Rollback);
    let other = users_registry(TeardownPolicy::Rollback);
    let scope = r.begin();
    let session = r.session(&scope).unwrap();
    block_on(async {
        r.remove(&scope, Outcome::Completed).await.unwrap();
        let err = r.session(&scope).unwrap_err();
        assert!(matches!(err, Error::OutsideScope { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("has ended") && msg.contains("Registry::begin()"),
            "{msg}"
        );
        assert!(matches!(
            r.remove(&scope, Outcome::Completed).await,
            Err(Error::OutsideScope { .. })
        ));
        // A handle kept beyond the event is closed.
        let err = insert(&session, 1, "a", "a@x").await.unwrap_err();
        assert_eq!(err.code(), "SESSION_CLOSED");
        assert!(session.is_closed());
        let foreign = other.begin();
        let err = r.session(&foreign).unwrap_err();
        assert!(err.to_string().contains("another registry"), "{err}");
        assert!(!r.is_active(&foreign));
    });
}

#[test]
fn stats_count_sessions_opened_removed_and_active() {
    let r = users_registry(TeardownPolicy::Rollback);
    let before = r.stats();
    assert!(before.registries_created >= 1);
    let with_session = r.begin();
    let without_session = r.begin();
    r.session(&with_session).unwrap();
    r.session(&with_session).unwrap();
    let mid = r.stats();
    assert_eq!(mid.sessions_opened, 1, "lazy and once per scope");
    assert_eq!(mid.sessions_active, 1);
    block_on(async {
        let t = r
            .remove(&without_session, Outcome::Completed)
            .await
            .unwrap();
        assert_eq!(t.session_id, None, "a scope that never asked opens nothing");
        let t = r.remove(&with_session, Outcome::Completed).await.unwrap();
        assert_eq!(t.finish, Some(Finish::Clean));
    });
    let after = r.stats();
    assert_eq!(after.sessions_removed, 1);
    assert_eq!(after.sessions_active, 0);
    assert_eq!(after.scopes_begun, 2);
}

#[test]
fn teardown_rollback_is_the_default_policy() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        insert(&r.session(&scope).unwrap(), 1, "a", "a@x")
            .await
            .unwrap();
        let t = r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(t.finish, Some(Finish::RolledBack));
        assert_eq!(count(&r.factory().open()).await, 0);
        assert_eq!(r.stats().teardown_rollbacks, 1);
    });
}

#[test]
fn teardown_commit_policy_commits_unless_the_handler_failed() {
    let r = users_registry(TeardownPolicy::Commit);
    block_on(async {
        let ok = r.begin();
        insert(&r.session(&ok).unwrap(), 1, "a", "a@x")
            .await
            .unwrap();
        let failed = r.begin();
        insert(&r.session(&failed).unwrap(), 2, "b", "b@x")
            .await
            .unwrap();
        assert_eq!(
            r.remove(&ok, Outcome::Completed).await.unwrap().finish,
            Some(Finish::Committed)
        );
        assert_eq!(
            r.remove(&failed, Outcome::Failed).await.unwrap().finish,
            Some(Finish::RolledBack)
        );
        let s = r.factory().open();
        assert_eq!(name_of(&s, 1).await.as_deref(), Some("a"));
        assert_eq!(name_of(&s, 2).await, None);
    });
}

#[test]
fn teardown_commit_conflict_is_reported_and_the_session_still_removed() {
    let r = users_registry(TeardownPolicy::Commit);
    block_on(async {
        let a = r.begin();
        let b = r.begin();
        insert(&r.session(&a).unwrap(), 1, "a", "same@x")
            .await
            .unwrap();
        insert(&r.session(&b).unwrap(), 2, "b", "same@x")
            .await
            .unwrap();
        r.remove(&a, Outcome::Completed).await.unwrap();
        let err = r.remove(&b, Outcome::Completed).await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE");
        let stats = r.stats();
        assert_eq!(stats.sessions_active, 0);
        assert_eq!(stats.sessions_removed, 2);
        assert_eq!(stats.teardown_errors, 1);
        assert!(!r.is_active(&b));
    });
}

#[test]
fn interleaved_async_events_each_keep_their_own_session() {
    let r = users_registry(TeardownPolicy::Rollback);
    let event = |r: Registry, i: i64| async move {
        let scope = r.begin();
        let first = r.session(&scope).unwrap();
        insert(&first, i, "n", &format!("{i}@x")).await.unwrap();
        YieldNow(false).await; // other events run here
        let again = r.session(&scope).unwrap();
        assert_eq!(first.id(), again.id(), "same session after an await");
        assert_eq!(count(&again).await, 1, "only its own uncommitted row");
        // The count scanned the table every other event inserts into: serializable isolation
        // would (rightly) refuse all but the first of these commits. This test is about
        // sessions per event, so its commits check writes only.
        again.set_isolation(gluebind::Isolation::Snapshot);
        again.commit().await.unwrap();
        YieldNow(false).await;
        let id = first.id().to_owned();
        r.remove(&scope, Outcome::Completed).await.unwrap();
        id
    };
    let ids = block_on(futures::future::join_all(
        (1..=30).map(|i| event(r.clone(), i)),
    ));
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "different sessions across events");
    let stats = r.stats();
    assert_eq!(
        (
            stats.sessions_opened,
            stats.sessions_removed,
            stats.sessions_active
        ),
        (30, 30, 0)
    );
    block_on(async { assert_eq!(count(&r.factory().open()).await, 30) });
}
