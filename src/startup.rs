//! Work that runs once per isolate before the first event is served (creating tables, the
//! `create_all` of a Flask app's start), shared by every event that arrives meanwhile.

use crate::{Error, Registry, Result, Session};
use std::{cell::RefCell, future::Future, rc::Rc};

/// Runs of the start-up work after a `CONFLICT` (another isolate created the same tables at
/// the same moment: the next run finds them and has nothing to do).
const CONFLICT_RERUNS: u32 = 5;

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    /// One event runs it; the others wait for it.
    Running,
    Done,
}

/// Start-up work of an isolate: [`Startup::ensure`] runs it once, before the first event's
/// handler; events that arrive while it runs wait for it. A run that fails (or is cut off) is
/// run again by the next event; a `CONFLICT` — another isolate created the same tables at the
/// same moment — reruns it at once, on a fresh session. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    state: Rc<RefCell<State>>,
}

/// Ends a run: `Done`, or back to `Idle` (also when the run is dropped half-way).
struct Finish<'a> {
    state: &'a RefCell<State>,
    done: bool,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        *self.state.borrow_mut() = if self.done { State::Done } else { State::Idle };
    }
}

impl Startup {
    /// Start-up work not run yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a run succeeded.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(*self.state.borrow(), State::Done)
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
        loop {
            {
                let mut state = self.state.borrow_mut();
                match &*state {
                    State::Done => return Ok(()),
                    State::Idle => {
                        *state = State::Running;
                        break;
                    }
                    State::Running => {}
                }
            }
            // Another event runs it: look again after the pause (it may have failed).
            pause().await;
        }
        let mut finish = Finish {
            state: &self.state,
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
