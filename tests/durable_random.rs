//! Randomized do:// runs: isolates over one object, sessions interleaved at every request
//! (each yields once, as a round trip does), answers lost now and then, the object evicted
//! between rounds; an isolate's concurrent commits go alone or in batches (group commit). Each
//! seed checks what the isolate caches rely on — a commit's answer and the session's own rows
//! bring a cache to the object's state — and what serializable commits promise: no increment
//! of a counter lost, one owner per email.

mod common;
use common::block_on;
use gluebind::{durable::LocalObject, Engine, Error, Session, SessionFactory, Value, NO_PARAMS};
use std::{cell::Cell, rc::Rc};

const URL: &str = "do://GLUEBIND_DB?cache_ttl=3600";
const SEEDS: u64 = 300;
const ISOLATES: usize = 3;

/// A small deterministic generator (xorshift64*).
struct Rng(Cell<u64>);

impl Rng {
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn isolate(object: &Rc<LocalObject>, url: &str) -> SessionFactory {
    SessionFactory::builder()
        .bind(Engine::with_object(url, object.clone()).unwrap())
        .build()
        .unwrap()
}

async fn rows(s: &Session, sql: &str) -> Vec<Vec<Value>> {
    s.execute(sql, NO_PARAMS)
        .await
        .unwrap()
        .into_rows()
        .unwrap()
        .into_values()
}

/// What `s` reads of both tables.
async fn state(s: &Session) -> Vec<Vec<Value>> {
    let mut all = rows(s, "SELECT id, email FROM users ORDER BY id").await;
    all.extend(rows(s, "SELECT id, n FROM c ORDER BY id").await);
    all
}

/// One unit of work: `Ok(true)` when it committed a counter's increment.
async fn unit(s: Session, op: u64, id: u64, k: u64) -> gluebind::Result<bool> {
    let bump = op == 3;
    match op {
        0 => {
            s.execute_batch(&format!("INSERT INTO users VALUES ({id}, 'e{k}@x')"))
                .await
        }
        1 => {
            s.execute_batch(&format!(
                "UPDATE users SET email = 'e{k}@x' WHERE id = {id}"
            ))
            .await
        }
        2 => {
            s.execute_batch(&format!("DELETE FROM users WHERE id = {id}"))
                .await
        }
        3 => {
            let c = id % 3 + 1;
            // A read may be refused too (a snapshot older than an evicted object keeps).
            let n = s
                .execute(&format!("SELECT n FROM c WHERE id = {c}"), NO_PARAMS)
                .await?
                .into_rows()?
                .into_values();
            let Value::I64(n) = n[0][0] else {
                panic!("{n:?}")
            };
            s.execute_batch(&format!("UPDATE c SET n = {} WHERE id = {c}", n + 1))
                .await
        }
        _ => {
            // Two rows at once, one of them perhaps taken.
            s.execute_batch(&format!(
                "INSERT INTO users VALUES ({}, 'e{k}@x'); INSERT INTO users VALUES ({}, 'f{k}@x')",
                id + 10,
                id + 20
            ))
            .await
        }
    }?;
    s.commit().await?;
    Ok(bump)
}

/// Runs one seed; the most commits one request to the object carried (a batch: several).
fn run_seed(seed: u64) -> usize {
    let rng = Rng(Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1));
    let object = Rc::new(LocalObject::new());
    let isolates: Vec<SessionFactory> = (0..ISOLATES).map(|_| isolate(&object, URL)).collect();
    block_on(async {
        let s = isolates[0].open();
        s.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); \
             CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); \
             INSERT INTO c VALUES (1, 0), (2, 0), (3, 0)",
        )
        .await
        .unwrap();
        s.commit().await.unwrap();
        // Every cache holds both tables whole (their unique index too).
        for f in &isolates {
            state(&f.open()).await;
        }
        object.interleave(true);
        let mut bumps = 0;
        for round in 0..6 {
            if rng.below(4) == 0 {
                object.lose_answers(1);
            }
            let units = (0..2 + rng.below(6)).map(|_| {
                let s = isolates[rng.below(ISOLATES as u64) as usize].open();
                unit(s, rng.below(5), rng.below(6) + 1, rng.below(5))
            });
            for outcome in futures::future::join_all(units.collect::<Vec<_>>()).await {
                match outcome {
                    Ok(bump) => bumps += u64::from(bump),
                    Err(Error::Unique { .. } | Error::Conflict { .. }) => {}
                    Err(e) => panic!("seed {seed} round {round}: {e}"),
                }
            }
            if rng.below(5) == 0 {
                object.restart();
            }
        }
        object.interleave(false);
        // After a commit of its own, an isolate reads what the object holds.
        for (i, f) in isolates.iter().enumerate() {
            let mut touched = false;
            for _ in 0..3 {
                let s = f.open();
                let done = match s.execute_batch("UPDATE c SET n = n + 0 WHERE id = 1").await {
                    Ok(_) => s.commit().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                match done {
                    Ok(_) => {
                        touched = true;
                        break;
                    }
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
            assert!(touched, "seed {seed}: isolate {i} commits");
            let truth = state(&isolate(&object, "do://GLUEBIND_DB?cache_ttl=0").open()).await;
            assert_eq!(
                state(&f.open()).await,
                truth,
                "seed {seed}: isolate {i}'s cache"
            );
            // Its unique index too: an email is taken for an INSERT there iff a row holds it.
            for k in 0..5 {
                for email in [format!("e{k}@x"), format!("f{k}@x")] {
                    let held = truth.iter().any(|r| r[1] == Value::Str(email.clone()));
                    let insert = f
                        .open()
                        .execute_batch(&format!("INSERT INTO users VALUES (100, '{email}')"))
                        .await;
                    assert_eq!(
                        matches!(insert, Err(Error::Unique { .. })),
                        held,
                        "seed {seed}: isolate {i}, {email}: {insert:?}"
                    );
                }
            }
        }
        let truth = state(&isolate(&object, "do://GLUEBIND_DB?cache_ttl=0").open()).await;
        let counted: i64 = truth
            .iter()
            .filter_map(|r| match (&r[0], &r[1]) {
                (Value::I64(id), Value::I64(n)) if *id <= 3 && r.len() == 2 => Some(*n),
                _ => None,
            })
            .sum();
        let emails: Vec<&Value> = truth
            .iter()
            .map(|r| &r[1])
            .filter(|v| matches!(v, Value::Str(_)))
            .collect();
        let mut unique = emails.clone();
        unique.sort_by_key(|v| format!("{v:?}"));
        unique.dedup();
        assert_eq!(
            unique.len(),
            emails.len(),
            "seed {seed}: one owner per email"
        );
        assert_eq!(counted, bumps as i64, "seed {seed}: no increment lost");
    });
    object.most_commits_per_request()
}

#[test]
fn isolate_caches_follow_the_object_and_no_commit_is_lost() {
    let batched = (0..SEEDS).filter(|&seed| run_seed(seed) > 1).count();
    // The seeds' concurrent sessions commit in batches (group commit) as well as alone.
    assert!(batched > 0, "no seed sent a batch of commits");
}
