//! Deterministic simulation of the kv:// engine (FoundationDB / TigerBeetle style).
//!
//! One seed decides everything: how many isolates share one simulated KV namespace, whether
//! KV shows writes at once or within its propagation window, which faults calls meet (429,
//! 5xx, a timeout after the write landed, the one-write-per-second limit), how sessions
//! interleave at every `.await`, and which sessions are cut off (dropped), abandoned (never
//! polled again) or suspended past the one-minute age at which commit records are settled.
//! After the run, recovery completes and `check.rs` verifies what `docs/guarantees.md` promises.
//!
//! - `cargo test --test sim` runs seeds 0..SIM_SEEDS (default 64; `npm test` runs these);
//! - `SEED=n cargo test --test sim -- --nocapture` reruns one seed and prints its trace;
//! - `npm run sim -- --seeds 100000` runs many (release build, every core).
// Native only: its randomness is a native dev-dependency.
#![cfg(not(target_arch = "wasm32"))]

mod check;
mod executor;
mod kv;
mod workload;

use executor::{Fate, Sim};
use std::{
    cell::RefCell,
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
    sync::Mutex,
};
use workload::{Config, Run};

/// What one seed did.
struct Outcome {
    config: Config,
    report: check::Report,
    trace: Vec<String>,
}

fn run_seed(seed: u64, verbose: bool) -> Outcome {
    let sim = Sim::new(seed);
    let config = Config::from_seed(seed, &sim);
    let run = Run::new(Rc::clone(&sim), config.clone());
    run.world.verbose.set(verbose);
    sim.spawn("setup".into(), Fate::Finish, Rc::clone(&run).setup());
    assert!(sim.run(60_000).hung.is_empty(), "seed {seed}: setup hung");
    run.world.set_faults(config.faults);
    run.spawn_sessions();
    // Every session finishes within half an hour of simulated time, or it hung.
    let hung = sim.run(30 * 60_000).hung;
    sim.clear();
    run.world.set_faults(kv::Faults::NONE);
    let end = Rc::new(RefCell::new(None));
    let (slot, recovering) = (Rc::clone(&end), Rc::clone(&run));
    sim.spawn("recovery".into(), Fate::Finish, async move {
        *slot.borrow_mut() = Some(check::recover(&recovering).await);
    });
    let stuck = sim.run(30 * 60_000).hung;
    let end = end.borrow_mut().take();
    let report = match end {
        Some(end) => check::check(&run, &end, &hung),
        None => check::Report {
            violations: vec![format!("recovery did not finish: {stuck:?}")],
            ..check::Report::default()
        },
    };
    sim.clear();
    let trace = sim.trace.borrow().clone();
    Outcome {
        config,
        report,
        trace,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The lines of a failing seed's trace worth reading: the last ones, and every line that
/// names a token or id the violations name.
fn excerpt(outcome: &Outcome) -> Vec<String> {
    let words: Vec<String> = outcome
        .report
        .violations
        .iter()
        .flat_map(|v| v.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| format!(" {w}"))
        .collect();
    let trace = &outcome.trace;
    let mut lines: Vec<String> = trace
        .iter()
        .filter(|l| words.iter().any(|w| l.contains(w.as_str())))
        .take(60)
        .cloned()
        .collect();
    lines.push("...".into());
    lines.extend(trace.iter().rev().take(25).rev().cloned());
    lines
}

/// Seeds that once found a bug (each fixed since), replayed by every run of `npm test`: a
/// suspended read losing its isolate's commit (12080), a busy settlement deleting its record
/// unsettled (29640, 8466), abandoned records waiting for each other (2011, 3501, 40638, 50237,
/// 58126, 61037, 65011, 75172), and earlier ones of the 100 000-seed runs (drawn by earlier
/// versions of the workload: they replay other runs now, still worth running). Since short
/// listing pages: a settlement waiting for a record past the journal's first page (9493), and
/// walks that crossed a partly loaded table's edge (1017, 1893). Since index entries in KV: a
/// scan after a read through entries a cross-isolate race had lost (1264, 6663, 8521), and two
/// isolates' schema changes within KV's window (90383, an anomaly counted, not a violation).
const REGRESSIONS: [u64; 21] = [
    8466, 12080, 29640, 2011, 3501, 40638, 50237, 58126, 61037, 65011, 75172, 177_035, 16633,
    42630, 9493, 1017, 1893, 1264, 6663, 8521, 90383,
];

#[test]
fn regression_seeds() {
    let failed: Vec<u64> = REGRESSIONS
        .iter()
        .copied()
        .filter(|seed| !run_seed(*seed, false).report.violations.is_empty())
        .collect();
    assert!(
        failed.is_empty(),
        "regression seeds failed: {failed:?} (rerun: SEED=n cargo test --test sim -- --nocapture)"
    );
}

#[test]
fn simulated_seeds() {
    if let Some(seed) = env_u64("SEED") {
        let outcome = run_seed(seed, true);
        for line in &outcome.trace {
            println!("{line}");
        }
        println!("seed {seed}: {:?}", outcome.config);
        println!("{:#?}", outcome.report);
        assert!(outcome.report.violations.is_empty(), "seed {seed} failed");
        return;
    }
    let first = env_u64("SIM_FIRST").unwrap_or(0);
    let seeds = env_u64("SIM_SEEDS").unwrap_or(64);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU64::new(first);
    let failures = Mutex::new(Vec::new());
    let totals = Mutex::new([0u64; 7]);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + seeds {
                    break;
                }
                let outcome = run_seed(seed, false);
                let r = &outcome.report;
                {
                    let mut t = totals.lock().unwrap();
                    t[0] += 1;
                    t[1] += r.commits as u64;
                    t[2] += r.conflicts as u64;
                    t[3] += r.lost_updates as u64;
                    t[4] += r.skewed_audits as u64;
                    t[5] += u64::from(outcome.config.strong() && outcome.config.isolates > 1);
                    t[6] += r.slot_overflows as u64;
                }
                if !r.violations.is_empty() {
                    failures.lock().unwrap().push((seed, outcome));
                }
            });
        }
    });
    let t = *totals.lock().unwrap();
    println!(
        "simulation: {} seeds ({}..{}) in {:.1} s: {} commits, {} conflicts; across isolates \
         on eventually consistent KV: {} lost updates, {} audits that saw another isolate's \
         commit in part; across isolates, {} owners over their slot limit (write skew through \
         scans); {} multi-isolate seeds on strongly consistent KV",
        t[0],
        first,
        first + seeds,
        started.elapsed().as_secs_f64(),
        t[1],
        t[2],
        t[3],
        t[4],
        t[6],
        t[5]
    );
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(seed, _)| *seed);
    for (seed, outcome) in failures.iter().take(3) {
        println!("\n=== seed {seed} FAILED: {:?}", outcome.config);
        for v in &outcome.report.violations {
            println!("  violation: {v}");
        }
        println!("  trace (excerpt):");
        for line in excerpt(outcome) {
            println!("    {line}");
        }
        println!("  rerun: SEED={seed} cargo test --test sim -- --nocapture");
    }
    let seeds: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
    assert!(seeds.is_empty(), "{} seeds failed: {seeds:?}", seeds.len());
}
