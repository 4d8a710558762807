//! What the parsed-statement cache saves: the demo's point read and insert, executed on a
//! memory:// session natively, with the cache answering (the same SQL text each time) and
//! defeated (a unique comment makes every text new, so each execute parses). Prints µs per
//! execute for both, measured side by side, and their ratio.
//!
//! Run: `cargo bench --bench statement_cache` (release build; no assertions).

use gluebind::{params, Engine, Session, SessionFactory};
use std::time::Instant;

const ROUNDS: usize = 5;
const ITERATIONS: usize = 4_000;

fn session() -> Session {
    let factory = SessionFactory::builder()
        .bind(Engine::from_url("memory://").expect("memory:// is valid"))
        .build()
        .expect("factory");
    let s = factory.open();
    pollster::block_on(async {
        s.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)",
        )
        .await
        .expect("schema");
        for id in 1..=1_000i64 {
            s.execute(
                "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
                params![id, format!("user {id}"), format!("u{id}@x")],
            )
            .await
            .expect("seed");
        }
        s.commit().await.expect("commit");
    });
    s
}

/// Median µs per execute of `sql(i)` over [`ROUNDS`] rounds.
fn measure(s: &Session, sql: &dyn Fn(usize) -> String, write: bool) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let started = Instant::now();
            pollster::block_on(async {
                for i in 0..ITERATIONS {
                    let id = i64::try_from(1 + (i * 7919) % 1_000).expect("small");
                    if write {
                        let new_id = i64::try_from(10_000 + round * ITERATIONS + i).expect("small");
                        s.execute(&sql(i), params![new_id, "n", format!("n{new_id}@x")])
                            .await
                            .expect("insert");
                    } else {
                        s.execute(&sql(i), params![id]).await.expect("select");
                    }
                }
                // Keep the write-set from growing across rounds.
                s.rollback().await.expect("rollback");
            });
            started.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    let s = session();
    let read = "SELECT id, name, email FROM users WHERE id = $1";
    let insert = "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)";
    println!("statement cache, memory://, {ITERATIONS} executes × {ROUNDS} rounds (median)");
    println!("| statement | cached µs | parsed every time µs | cached / parsed |");
    println!("|---|--:|--:|--:|");
    for (name, text, write) in [("point read", read, false), ("insert", insert, true)] {
        let cached = measure(&s, &|_| text.to_owned(), write);
        let parsed = measure(&s, &|i| format!("{text} -- {i}"), write);
        println!(
            "| {name} | {cached:.1} | {parsed:.1} | {:.2} |",
            cached / parsed
        );
    }
}
