//! `Startup`: an isolate's start-up work runs once before the first event; events that arrive
//! meanwhile wait for it; a failed or cut-off run is run again; a CONFLICT (another isolate
//! created the tables at the same moment) reruns it at once.

mod common;
use common::{block_on, yield_now};
use gluebind::{Engine, Error, Registry, Session, SessionFactory, Startup};
use std::cell::Cell;

fn registry() -> Registry {
    let engine = Engine::from_url("memory://").unwrap();
    Registry::new(SessionFactory::builder().bind(engine).build().unwrap())
}

/// Creates the table (yielding first, as a storage round trip does); counts its runs.
async fn create(session: Session, runs: &Cell<u32>) -> gluebind::Result<()> {
    runs.set(runs.get() + 1);
    yield_now().await;
    session
        .execute_batch("CREATE TABLE IF NOT EXISTS hits (n INTEGER)")
        .await?;
    session.commit().await.map(|_| ())
}

#[test]
fn concurrent_first_events_run_it_once_and_all_wait_for_it() {
    let registry = registry();
    let startup = Startup::new();
    let runs = Cell::new(0);
    block_on(async {
        let events = (0..4).map(|_| startup.ensure(&registry, |s| create(s, &runs), yield_now));
        let outcomes = futures::future::join_all(events).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(runs.get(), 1, "one run for four events");
        assert!(startup.is_done());
        // Every event found the table.
        let s = registry.factory().open();
        s.execute_batch("SELECT * FROM hits").await.unwrap();
        startup
            .ensure(&registry, |s| create(s, &runs), yield_now)
            .await
            .unwrap();
        assert_eq!(runs.get(), 1, "done: not run again");
    });
}

#[test]
fn a_failed_run_fails_its_event_and_the_next_event_runs_it_again() {
    let registry = registry();
    let startup = Startup::new();
    let runs = Cell::new(0);
    let init = |s: Session| {
        let runs = &runs;
        async move {
            if runs.get() == 0 {
                runs.set(1);
                yield_now().await;
                return Err(Error::Storage {
                    message: "KV is down".into(),
                });
            }
            create(s, runs).await
        }
    };
    block_on(async {
        let (first, second) = futures::future::join(
            startup.ensure(&registry, init, yield_now),
            startup.ensure(&registry, init, yield_now),
        )
        .await;
        assert_eq!(first.unwrap_err().code(), "STORAGE");
        second.expect("the waiting event ran it again");
        assert!(startup.is_done());
        assert_eq!(runs.get(), 2);
    });
}

#[test]
fn a_conflict_reruns_it_on_a_fresh_session() {
    let registry = registry();
    let startup = Startup::new();
    let runs = Cell::new(0);
    block_on(async {
        startup
            .ensure(
                &registry,
                |s| {
                    let runs = &runs;
                    async move {
                        if runs.get() < 2 {
                            runs.set(runs.get() + 1);
                            return Err(Error::Conflict {
                                table: "hits".into(),
                                detail: "the table".into(),
                            });
                        }
                        create(s, runs).await
                    }
                },
                yield_now,
            )
            .await
            .unwrap();
        assert_eq!(
            runs.get(),
            3,
            "two conflicts, then the run that found nothing to do"
        );
    });
}

#[test]
fn a_run_cut_off_half_way_is_run_again() {
    let registry = registry();
    let startup = Startup::new();
    let runs = Cell::new(0);
    block_on(async {
        {
            let run = startup.ensure(&registry, |s| create(s, &runs), yield_now);
            futures::pin_mut!(run);
            // Polled once (it yields inside), then dropped: the event was cut off.
            assert!(futures::poll!(run.as_mut()).is_pending());
        }
        assert!(!startup.is_done());
        startup
            .ensure(&registry, |s| create(s, &runs), yield_now)
            .await
            .unwrap();
        assert_eq!(runs.get(), 2);
    });
}

/// A run that neither ends nor is dropped (a Workers event cancelled half-way: its future is
/// never polled again) is taken over by an event that waited long enough: start-up never
/// hangs the isolate. (Found by review.)
#[test]
fn a_stalled_run_is_taken_over() {
    let registry = registry();
    let startup = Startup::new();
    let first = Cell::new(true);
    let runs = Cell::new(0);
    let init = |s: Session| {
        let stall = first.replace(false);
        let runs = &runs;
        async move {
            if stall {
                futures::future::pending::<()>().await;
            }
            create(s, runs).await
        }
    };
    block_on(async {
        let stalled = startup.ensure(&registry, init, yield_now);
        futures::pin_mut!(stalled);
        assert!(futures::poll!(stalled.as_mut()).is_pending());
        // `stalled` stays alive, never polled again. (Bounded: a regression fails, not hangs.)
        let pauses = Cell::new(0);
        let pause = || {
            pauses.set(pauses.get() + 1);
            assert!(pauses.get() < 5_000, "still waiting for the stalled run");
            yield_now()
        };
        startup.ensure(&registry, init, pause).await.unwrap();
        assert!(startup.is_done());
        assert_eq!(runs.get(), 1, "the second event ran it");
    });
}
