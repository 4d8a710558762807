//! `Session::commit_deferred`: validated now, committed by the registry's teardown (the
//! completion callback), on memory:// and kv://.

mod common;
use common::*;
use gluebind::{kv::MemoryKv, Finish, Outcome, Registry, TeardownPolicy};
use std::rc::Rc;

#[test]
fn deferred_writes_commit_at_teardown_and_stay_private_until_then() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        insert(&s, 1, "a", "a@x").await.unwrap();
        s.commit_deferred().unwrap();
        assert!(s.is_deferred());
        // Read-your-writes in the event, including writes made after commit_deferred.
        insert(&s, 2, "b", "b@x").await.unwrap();
        assert_eq!(count(&s).await, 2);
        let other = r.factory().open();
        assert_eq!(count(&other).await, 0, "not visible before teardown");
        let teardown = r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(teardown.finish, Some(Finish::Committed));
        assert_eq!(count(&r.factory().open()).await, 2, "both writes committed");
        assert_eq!(r.stats().teardown_commits, 1);
    });
}

#[test]
fn a_conflict_already_committed_fails_fast_and_discards_the_writes() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        assert_eq!(count(&s).await, 0); // its snapshot: taken at its first statement
        let first = r.factory().open();
        insert(&first, 1, "first", "same@x").await.unwrap();
        first.commit().await.unwrap();
        // `s` read before `first` committed: GlueSQL's statement-level check passes on its
        // snapshot, the deferred commit's validation does not.
        insert(&s, 2, "late", "same@x").await.unwrap();
        let err = s.commit_deferred().unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        assert!(!s.is_dirty() && !s.is_deferred());
        let teardown = r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(teardown.finish, Some(Finish::Clean));
        assert_eq!(count(&r.factory().open()).await, 1);
    });
}

#[test]
fn a_conflict_arising_after_validation_is_a_teardown_error_and_stores_nothing() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        insert(&s, 1, "deferred", "same@x").await.unwrap();
        s.commit_deferred().unwrap();
        let other = r.factory().open();
        insert(&other, 2, "durable", "same@x").await.unwrap();
        other.commit().await.unwrap();
        let err = r.remove(&scope, Outcome::Completed).await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        assert_eq!(r.stats().teardown_errors, 1);
        let check = r.factory().open();
        assert_eq!(count(&check).await, 1);
        assert_eq!(name_of(&check, 2).await.as_deref(), Some("durable"));
    });
}

#[test]
fn a_failed_handler_rolls_deferred_writes_back() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        insert(&s, 1, "a", "a@x").await.unwrap();
        s.commit_deferred().unwrap();
        let teardown = r.remove(&scope, Outcome::Failed).await.unwrap();
        assert_eq!(teardown.finish, Some(Finish::RolledBack));
        assert_eq!(count(&r.factory().open()).await, 0);
    });
}

#[test]
fn commit_or_rollback_after_commit_deferred_supersedes_it() {
    let r = users_registry(TeardownPolicy::Rollback);
    block_on(async {
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        insert(&s, 1, "a", "a@x").await.unwrap();
        s.commit_deferred().unwrap();
        s.commit().await.unwrap();
        assert!(!s.is_deferred());
        assert_eq!(
            count(&r.factory().open()).await,
            1,
            "durable before teardown"
        );
        insert(&s, 2, "b", "b@x").await.unwrap();
        s.commit_deferred().unwrap();
        s.rollback().await.unwrap();
        insert(&s, 3, "c", "c@x").await.unwrap(); // pending, not deferred: the policy decides
        let teardown = r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(teardown.finish, Some(Finish::RolledBack));
        assert_eq!(count(&r.factory().open()).await, 1);
    });
}

#[test]
fn on_kv_deferred_writes_reach_kv_at_teardown_only() {
    let kv = Rc::new(MemoryKv::new());
    let r = Registry::new(isolate(&kv, "kv://NS"));
    block_on(async {
        let setup = r.factory().open();
        setup.execute_batch(USERS).await.unwrap();
        setup.commit().await.unwrap();
        setup.engine().flush().await.unwrap(); // its commit record (a teardown would)
        let keys_before = kv.keys().len();
        let scope = r.begin();
        let s = r.session(&scope).unwrap();
        insert(&s, 1, "a", "a@x").await.unwrap();
        s.commit_deferred().unwrap();
        assert_eq!(
            kv.keys().len(),
            keys_before,
            "nothing written before teardown"
        );
        r.remove(&scope, Outcome::Completed).await.unwrap();
        assert_eq!(
            kv.keys().len(),
            keys_before + 2,
            "row + unique entry written"
        );
        // Another isolate reads it from KV.
        let elsewhere = isolate(&kv, "kv://NS").open();
        assert_eq!(name_of(&elsewhere, 1).await.as_deref(), Some("a"));
    });
}
