//! What gluebind's own code costs on the kv:// write path, without KV's: the demo's
//! `POST /users` unit of work (a fresh session, an insert with a UNIQUE email, commit, then the
//! teardown's flush) on kv:// over an in-memory namespace (`MemoryKv`, whose calls cost next to
//! nothing), side by side with memory://. Prints µs per unit of work for both and their ratio;
//! the difference is the commit protocol's CPU (planning, the record, the check, the isolate's
//! log), which `npm run bench` adds to the KV simulator's own cost. do:// over an object in this
//! process (`LocalObject`, whose test storage rewrites a table's row list per row written: its
//! figure grows with the rows committed) shows the object protocol's CPU on both sides.
//!
//! Run: `cargo bench --bench kv_commit` (release build; no assertions).

use gluebind::{kv::MemoryKv, params, Engine, SessionFactory};
use std::{rc::Rc, time::Instant};

const ROUNDS: usize = 5;
const ITERATIONS: usize = 2_000;
const USERS: &str =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)";

fn factory(engine: Engine) -> SessionFactory {
    let f = SessionFactory::builder()
        .bind(engine)
        .build()
        .expect("factory");
    pollster::block_on(async {
        let s = f.open();
        s.execute_batch(USERS).await.expect("schema");
        s.commit().await.expect("commit");
    });
    f
}

/// Median µs per unit of work over [`ROUNDS`] rounds.
fn measure(f: &SessionFactory, round_base: &mut i64) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            pollster::block_on(async {
                for _ in 0..ITERATIONS {
                    *round_base += 1;
                    let id = *round_base;
                    let s = f.open();
                    s.execute(
                        "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
                        params![id, "Bench User", format!("u{id}@bench.test")],
                    )
                    .await
                    .expect("insert");
                    s.commit().await.expect("commit");
                    for engine in f.engines() {
                        engine.flush().await.expect("flush");
                    }
                }
            });
            started.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    let memory = factory(Engine::from_url("memory://").expect("memory:// is valid"));
    let kv =
        factory(Engine::with_kv("kv://BENCH", Rc::new(MemoryKv::new())).expect("kv:// is valid"));
    let mut next = 0;
    let object = Rc::new(gluebind::durable::LocalObject::new());
    let durable = factory(Engine::with_object("do://BENCH", object).expect("do:// is valid"));
    let m = measure(&memory, &mut next);
    let k = measure(&kv, &mut next);
    let d = measure(&durable, &mut next);
    println!(
        "  do:// over LocalObject {d:>8.1} µs   ({:.2}× memory://)",
        d / m
    );
    println!("POST /users unit of work (insert with a UNIQUE email, commit, teardown flush):");
    println!("  memory://            {m:>8.1} µs");
    println!(
        "  kv:// over MemoryKv  {k:>8.1} µs   ({:.2}× memory://)",
        k / m
    );
}
