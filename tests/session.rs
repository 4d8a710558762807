//! Session semantics: snapshot isolation, read-your-writes, atomic commit, conflicts, unique
//! constraints across concurrent sessions, bound parameters, statement atomicity, IDs.

mod common;
use common::*;
use gluebind::{params, Engine, Error, QueryResult, SessionFactory, Value, NO_PARAMS};

#[test]
fn read_your_writes_and_isolation() {
    let f = users_factory();
    block_on(async {
        let a = f.open();
        let b = f.open();
        insert(&a, 1, "ada", "ada@x").await.unwrap();
        assert_eq!(
            name_of(&a, 1).await.as_deref(),
            Some("ada"),
            "a reads its own write"
        );
        assert_eq!(
            name_of(&b, 1).await,
            None,
            "b never sees a's uncommitted write"
        );
        a.commit().await.unwrap();
        assert_eq!(
            name_of(&b, 1).await,
            None,
            "b keeps its snapshot after a commits"
        );
        let c = f.open();
        assert_eq!(
            name_of(&c, 1).await.as_deref(),
            Some("ada"),
            "new session sees commit"
        );
        b.rollback().await.unwrap();
        assert_eq!(
            name_of(&b, 1).await.as_deref(),
            Some("ada"),
            "b refreshes on rollback"
        );
    });
}

#[test]
fn rollback_and_drop_discard_writes() {
    let f = users_factory();
    block_on(async {
        let a = f.open();
        insert(&a, 1, "ada", "ada@x").await.unwrap();
        assert!(a.is_dirty());
        a.rollback().await.unwrap();
        assert!(!a.is_dirty());
        assert_eq!(name_of(&a, 1).await, None);
        {
            let dropped = f.open();
            insert(&dropped, 2, "bob", "bob@x").await.unwrap();
        }
        assert_eq!(
            count(&f.open()).await,
            0,
            "dropping a session discards its writes"
        );
    });
}

#[test]
fn commit_applies_the_whole_write_set_atomically() {
    let f = users_factory();
    block_on(async {
        let seed = f.open();
        insert(&seed, 1, "ada", "ada@x").await.unwrap();
        seed.commit().await.unwrap();

        let a = f.open();
        let b = f.open();
        // a: writes rows 1 (conflicting) and 2; b commits row 1 first.
        a.execute("UPDATE users SET name = $1 WHERE id = 1", params!["a"])
            .await
            .unwrap();
        insert(&a, 2, "new", "new@x").await.unwrap();
        b.execute("UPDATE users SET name = $1 WHERE id = 1", params!["b"])
            .await
            .unwrap();
        b.commit().await.unwrap();
        let err = a.commit().await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{err}");
        let check = f.open();
        assert_eq!(name_of(&check, 1).await.as_deref(), Some("b"));
        assert_eq!(
            name_of(&check, 2).await,
            None,
            "no partial commit of the loser"
        );
        assert!(!a.is_dirty(), "the loser's writes were discarded");
        assert_eq!(
            name_of(&a, 1).await.as_deref(),
            Some("b"),
            "loser sees fresh data"
        );
    });
}

#[test]
fn lost_update_is_detected_in_read_modify_write() {
    let f = factory();
    block_on(async {
        let s = f.open();
        s.execute_batch(
            "CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        let read = |s: gluebind::Session| async move {
            let rows = s
                .execute_batch("SELECT n FROM c WHERE id = 1")
                .await
                .unwrap()
                .remove(0)
                .into_rows()
                .unwrap();
            rows.get(0).unwrap().get::<i64>("n").unwrap()
        };
        let a = f.open();
        let b = f.open();
        let na = read(a.clone()).await;
        let nb = read(b.clone()).await;
        a.execute("UPDATE c SET n = $1 WHERE id = 1", params![na + 1])
            .await
            .unwrap();
        b.execute("UPDATE c SET n = $1 WHERE id = 1", params![nb + 1])
            .await
            .unwrap();
        a.commit().await.unwrap();
        assert!(matches!(b.commit().await, Err(Error::Conflict { .. })));
        assert_eq!(read(f.open()).await, 1);
    });
}

#[test]
fn unique_holds_across_concurrent_sessions() {
    let f = users_factory();
    block_on(async {
        let a = f.open();
        let b = f.open();
        insert(&a, 1, "a", "same@x").await.unwrap();
        insert(&b, 2, "b", "same@x").await.unwrap(); // passes: b's snapshot has no row 1
        a.commit().await.unwrap();
        let err = b.commit().await.unwrap_err();
        match &err {
            Error::Unique { column, value, .. } => {
                assert_eq!(column, "email");
                assert!(value.contains("same@x"));
            }
            other => panic!("expected Unique, got {other:?}"),
        }
        assert_eq!(count(&f.open()).await, 1, "exactly one committed");
    });
}

#[test]
fn unique_value_can_be_reused_after_a_committed_delete_and_swapped() {
    let f = users_factory();
    block_on(async {
        let s = f.open();
        insert(&s, 1, "a", "a@x").await.unwrap();
        insert(&s, 2, "b", "b@x").await.unwrap();
        s.commit().await.unwrap();
        // Swap emails through a temporary value in one session: commit must accept it.
        s.execute_batch(
            "UPDATE users SET email = 'tmp@x' WHERE id = 1;
             UPDATE users SET email = 'a@x' WHERE id = 2;
             UPDATE users SET email = 'b@x' WHERE id = 1;",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        // Delete in one session, reuse in another that started later.
        s.execute("DELETE FROM users WHERE id = $1", params![1i64])
            .await
            .unwrap();
        s.commit().await.unwrap();
        let t = f.open();
        insert(&t, 3, "c", "b@x").await.unwrap();
        t.commit().await.unwrap();
        assert_eq!(count(&f.open()).await, 2);
    });
}

#[test]
fn unique_violation_in_a_statement_leaves_the_session_unchanged() {
    let f = users_factory();
    block_on(async {
        let s = f.open();
        insert(&s, 1, "a", "a@x").await.unwrap();
        let err = insert(&s, 2, "b", "a@x").await.unwrap_err();
        assert_eq!(err.code(), "UNIQUE");
        assert!(err.to_string().contains("email"), "{err}");
        // A multi-row insert whose second row fails inserts nothing.
        let err = s
            .execute_batch("INSERT INTO users VALUES (5, 'x', 'x@x'), (6, 'y', 'a@x')")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE");
        assert_eq!(count(&s).await, 1);
        s.commit().await.unwrap();
        assert_eq!(count(&f.open()).await, 1);
    });
}

#[test]
fn duplicate_primary_key_is_a_unique_error_or_a_conflict() {
    let f = users_factory();
    block_on(async {
        let a = f.open();
        insert(&a, 1, "a", "a@x").await.unwrap();
        assert_eq!(
            insert(&a, 1, "b", "b@x").await.unwrap_err().code(),
            "UNIQUE"
        );
        let b = f.open();
        insert(&b, 1, "b", "b@x").await.unwrap();
        a.commit().await.unwrap();
        assert_eq!(b.commit().await.unwrap_err().code(), "CONFLICT");
    });
}

#[test]
fn parameters_are_bound_not_spliced() {
    let f = users_factory();
    block_on(async {
        let s = f.open();
        let evil = "Robert'); DROP TABLE users;--";
        insert(&s, 1, evil, "r@x").await.unwrap();
        s.commit().await.unwrap();
        let t = f.open();
        assert_eq!(name_of(&t, 1).await.as_deref(), Some(evil));
        let rows = t
            .execute(
                "SELECT id FROM users WHERE name = $1",
                params!["' OR '1'='1"],
            )
            .await
            .unwrap()
            .into_rows()
            .unwrap();
        assert!(rows.is_empty());
        // Too few parameters is an error, not an empty string.
        let err = t
            .execute("SELECT id FROM users WHERE id = $2", params![1i64])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "SQL");
    });
}

#[test]
fn execute_takes_exactly_one_statement_and_sql_transactions_are_refused() {
    let f = users_factory();
    block_on(async {
        let s = f.open();
        let err = s
            .execute("SELECT 1; SELECT 2", NO_PARAMS)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("execute_batch"), "{err}");
        for sql in ["BEGIN", "COMMIT", "ROLLBACK"] {
            let err = s.execute(sql, NO_PARAMS).await.unwrap_err();
            assert!(
                err.to_string().contains("session."),
                "{sql} should point to the session API: {err}"
            );
        }
        let err = s.execute("SELEC nonsense", NO_PARAMS).await.unwrap_err();
        assert_eq!(err.code(), "SQL");
        let err = s
            .execute("SELECT * FROM missing", NO_PARAMS)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "SQL");
    });
}

#[test]
fn schema_changes_conflict_like_rows() {
    let f = factory();
    block_on(async {
        let a = f.open();
        let b = f.open();
        a.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        b.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
            .await
            .unwrap();
        a.commit().await.unwrap();
        assert_eq!(b.commit().await.unwrap_err().code(), "CONFLICT");

        // A writer whose table was altered meanwhile conflicts instead of writing old-shape rows.
        let w = f.open();
        w.execute_batch("INSERT INTO t VALUES (1)").await.unwrap();
        let alter = f.open();
        alter
            .execute_batch("ALTER TABLE t ADD COLUMN note TEXT NULL")
            .await
            .unwrap();
        alter.commit().await.unwrap();
        assert_eq!(w.commit().await.unwrap_err().code(), "CONFLICT");

        // Dropped meanwhile.
        let w = f.open();
        w.execute_batch("INSERT INTO t VALUES (2, 'n')")
            .await
            .unwrap();
        let drop = f.open();
        drop.execute_batch("DROP TABLE t").await.unwrap();
        drop.commit().await.unwrap();
        assert_eq!(w.commit().await.unwrap_err().code(), "CONFLICT");
        assert!(f.open().execute_batch("SELECT * FROM t").await.is_err());
    });
}

#[test]
fn ids_are_unique_across_sessions_and_start_above_existing_rows() {
    let f = users_factory();
    block_on(async {
        let seed = f.open();
        insert(&seed, 41, "x", "x@x").await.unwrap();
        seed.commit().await.unwrap();
        let sessions: Vec<_> = (0..20).map(|_| f.open()).collect();
        let mut ids = Vec::new();
        for (i, s) in sessions.iter().enumerate() {
            let id = s.next_id("users").await.unwrap();
            insert(s, id, "n", &format!("{i}@x")).await.unwrap();
            ids.push(id);
        }
        for s in &sessions {
            s.commit().await.unwrap();
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "all distinct");
        assert!(ids.iter().all(|id| *id > 41), "{ids:?}");
        assert_eq!(count(&f.open()).await, 21);
        // Not rolled back: a rolled-back id leaves a gap.
        let r = f.open();
        let gap = r.next_id("users").await.unwrap();
        r.rollback().await.unwrap();
        assert!(f.open().next_id("users").await.unwrap() > gap);
    });
}

#[test]
fn tables_without_primary_key_get_distinct_keys_across_sessions() {
    let f = factory();
    block_on(async {
        let s = f.open();
        s.execute_batch("CREATE TABLE log (msg TEXT)")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let a = f.open();
        let b = f.open();
        a.execute("INSERT INTO log VALUES ($1)", params!["a"])
            .await
            .unwrap();
        b.execute("INSERT INTO log VALUES ($1)", params!["b"])
            .await
            .unwrap();
        a.commit().await.unwrap();
        b.commit().await.unwrap();
        let rows = f
            .open()
            .execute_batch("SELECT msg FROM log")
            .await
            .unwrap()
            .remove(0)
            .into_rows()
            .unwrap();
        assert_eq!(rows.len(), 2, "both appends survive");
    });
}

#[test]
fn many_interleaved_sessions_lose_nothing() {
    let f = users_factory();
    block_on(async {
        let sessions: Vec<_> = (0..50).map(|_| f.open()).collect();
        for (i, s) in sessions.iter().enumerate() {
            insert(s, i as i64 + 1, "n", &format!("{i}@x"))
                .await
                .unwrap();
        }
        // Commit in reverse order of opening.
        for s in sessions.iter().rev() {
            s.commit().await.unwrap();
        }
        assert_eq!(count(&f.open()).await, 50);
    });
}

#[test]
fn results_as_values_and_json() {
    let f = users_factory();
    block_on(async {
        let s = f.open();
        insert(&s, i64::MAX, "big", "big@x").await.unwrap();
        let result = s
            .execute(
                "SELECT id, name, email FROM users WHERE id = $1",
                params![i64::MAX],
            )
            .await
            .unwrap();
        let rows = result.clone().into_rows().unwrap();
        assert_eq!(rows.columns(), ["id", "name", "email"]);
        assert_eq!(rows.get(0).unwrap().values()[0], Value::I64(i64::MAX));
        assert_eq!(
            rows.to_json().unwrap(),
            serde_json::json!([{"id": i64::MAX, "name": "big", "email": "big@x"}])
        );
        assert!(matches!(
            s.execute("DELETE FROM users WHERE id = $1", params![i64::MAX])
                .await
                .unwrap(),
            QueryResult::Deleted(1)
        ));
        let err = rows.get(0).unwrap().get::<i64>("missing").unwrap_err();
        assert!(err.to_string().contains("missing"));
        assert!(QueryResult::Schema.into_rows().is_err());
    });
}

#[test]
fn commit_without_writes_creates_no_version() {
    let f = users_factory();
    block_on(async {
        let v = f.engine().version();
        let info = f.open().commit().await.unwrap();
        assert_eq!(info.version, None);
        assert_eq!(f.engine().version(), v);
    });
}

#[test]
fn separate_memory_databases_are_independent() {
    let a = SessionFactory::builder()
        .bind(Engine::from_url("memory://a").unwrap())
        .build()
        .unwrap();
    let b = SessionFactory::builder()
        .bind(Engine::from_url("memory://b").unwrap())
        .build()
        .unwrap();
    block_on(async {
        let s = a.open();
        s.execute_batch(common::USERS).await.unwrap();
        s.commit().await.unwrap();
        assert!(b.open().execute_batch("SELECT * FROM users").await.is_err());
        assert!(!a.engine().same_as(b.engine()));
        assert_eq!(a.engine().url(), "memory://a");
    });
}

#[test]
fn factory_needs_an_engine() {
    let err = SessionFactory::builder().build().unwrap_err();
    assert_eq!(err.code(), "CONFIG");
    assert!(err.to_string().contains(".bind("), "{err}");
}

#[test]
fn updating_a_unique_column_to_its_own_value_is_not_a_duplicate() {
    // GlueSQL 0.20's own check counts the updated row as its duplicate; gluebind enforces
    // UNIQUE itself through an index.
    let f = users_factory();
    block_on(async {
        let s = f.open();
        insert(&s, 1, "a", "a@x").await.unwrap();
        insert(&s, 2, "b", "b@x").await.unwrap();
        s.execute(
            "UPDATE users SET name = $1, email = $2 WHERE id = 1",
            params!["a2", "a@x"],
        )
        .await
        .unwrap();
        // One statement moving values between rows is fine as long as the end state is unique.
        s.execute_batch("UPDATE users SET email = CASE WHEN id = 1 THEN 'b@x' ELSE 'a@x' END")
            .await
            .unwrap();
        s.commit().await.unwrap();
        let t = f.open();
        let err = t
            .execute("UPDATE users SET email = $1 WHERE id = 1", params!["a@x"])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNIQUE", "{err}");
        assert_eq!(name_of(&t, 1).await.as_deref(), Some("a2"));
    });
}

#[test]
fn adding_a_primary_key_column_is_refused_and_changes_nothing() {
    let f = factory();
    block_on(async {
        let s = f.open();
        s.execute_batch("CREATE TABLE nokey (a INTEGER); INSERT INTO nokey VALUES (1), (2)")
            .await
            .unwrap();
        let err = s
            .execute_batch("ALTER TABLE nokey ADD COLUMN k INTEGER PRIMARY KEY DEFAULT 5")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("PRIMARY KEY is not supported"),
            "{err}"
        );
        assert_eq!(count_in(&s, "nokey").await, 2);
        assert!(
            s.execute_batch("SELECT k FROM nokey").await.is_err(),
            "no column k"
        );
    });
}
