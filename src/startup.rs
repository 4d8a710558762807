//! Work that runs once per isolate before the first event is served (creating tables, the
//! `create_all` of a Flask app's start), shared by every event that arrives meanwhile.

use crate::{Error, Registry, Result, Session};
use std::{cell::Cell, future::Future, rc::Rc};

/// Runs of the start-up work after a `CONFLICT` (another isolate created the same tables at
/// the same moment: the next run finds them and has nothing to do).
const CONFLICT_RERUNS: u32 = 5;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    /// The run of this generation is going on; the other events wait for it.
    Running(u64),
    Done,
}

/// Start-up work of an isolate: [`Startup::ensure`] runs it once, before the first event's
/// handler; events that arrive while it runs wait for it. A run that fails (or is cut off) is
/// run again by the next event; a `CONFLICT` — another isolate created the same tables at the
/// same moment — reruns it at once, on a fresh session. A run that neither ends nor is dropped
/// (a Workers event cancelled half-way, whose future is never polled again) is taken over by
/// an event that waited [`Startup::TAKEOVER_PAUSES`] pauses for it. The work must not wait for start-up
/// itself (through `ensure` or a `serve`): it would wait for the takeover. Clones share the
/// state.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    state: Rc<Cell<State>>,
    generation: Rc<Cell<u64>>,
}

/// Ends a run: `Done`, or back to `Idle` (also when the run is dropped half-way) — unless
/// another event took it over meanwhile.
struct Finish<'a> {
    state: &'a Cell<State>,
    generation: u64,
    done: bool,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if self.state.get() == State::Running(self.generation) {
            self.state
                .set(if self.done { State::Done } else { State::Idle });
        }
    }
}

impl Startup {
    /// Pauses an event waits for a run of another event before it presumes that run cut off
    /// (in a Worker, 1 000 pauses of 10 ms: 10 s) and runs the work itself.
    pub const TAKEOVER_PAUSES: u32 = 1000;

    /// Start-up work not run yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a run succeeded.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// Marks a run of a new generation as going on; its generation.
    fn start(&self) -> u64 {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        self.state.set(State::Running(generation));
        generation
    }

    /// Runs `init` unless a run succeeded already, on a session of `registry`'s factory
    /// outside any event (`init` commits what it writes). While another event runs it, this
    /// one waits with `pause` (a short timer) and looks again: Workers cancel an event that
    /// waits only on another event's work, so a waiting event keeps a timer of its own.
    ///
    /// # Errors
    /// What `init` failed with (the next call runs it again); `CONFLICT` only after
    /// repeated reruns.
    pub async fn ensure<F, Fut, P, PFut>(
        &self,
        registry: &Registry,
        init: F,
        pause: P,
    ) -> Result<()>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<()>>,
        P: Fn() -> PFut,
        PFut: Future<Output = ()>,
    {
        let generation = 'wait: loop {
            let observed = match self.state.get() {
                State::Done => return Ok(()),
                State::Idle => break 'wait self.start(),
                State::Running(generation) => generation,
            };
            // Another event runs it: look again after each pause (it may have failed, or
            // stalled: then take it over).
            let mut pauses = 0;
            loop {
                pause().await;
                pauses += 1;
                if self.state.get() != State::Running(observed) {
                    continue 'wait;
                }
                if pauses >= Self::TAKEOVER_PAUSES {
                    break 'wait self.start();
                }
            }
        };
        let mut finish = Finish {
            state: &self.state,
            generation,
            done: false,
        };
        let mut reruns = 0;
        let outcome = loop {
            let session = registry.factory().open();
            match init(session.clone()).await {
                Err(Error::Conflict { .. }) if reruns < CONFLICT_RERUNS => {
                    let _ = session.rollback().await;
                    reruns += 1;
                }
                Err(e) => {
                    let _ = session.rollback().await;
                    break Err(e);
                }
                Ok(()) => break Ok(()),
            }
        };
        finish.done = outcome.is_ok();
        drop(finish);
        outcome
    }
}
