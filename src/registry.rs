//! `Registry`: SQLAlchemy's `scoped_session`, one per isolate, mapping scopes to sessions.
//!
//! The registry is the only isolate-wide state. It never has a "current" session: callers
//! name the scope (one per fetch event) and get that event's session, so requests interleaved
//! at `.await` points in one isolate never share or swap sessions.

use crate::{
    engine::Engine,
    error::{Error, Result},
    factory::{SessionFactory, TeardownPolicy},
    recording::RecordedQuery,
    scope::{Scope, ScopeId},
    session::{Finish, Session},
};
use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    fmt,
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

/// Registries created in this isolate (process natively): one is the healthy value.
static REGISTRIES_CREATED: AtomicU64 = AtomicU64::new(0);

/// Counters of a registry, as served by the demo's stats route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Registries created in this isolate (1 when the app creates it once, as it should).
    pub registries_created: u64,
    /// Scopes begun.
    pub scopes_begun: u64,
    /// Sessions opened (lazily, on a scope's first `session()` call).
    pub sessions_opened: u64,
    /// Sessions finished and removed at teardown.
    pub sessions_removed: u64,
    /// Sessions currently open.
    pub sessions_active: u64,
    /// Teardowns that committed pending writes (policy `Commit`).
    pub teardown_commits: u64,
    /// Teardowns that discarded pending writes.
    pub teardown_rollbacks: u64,
    /// Teardown commits that failed (conflicts in write-behind).
    pub teardown_errors: u64,
}

/// How the fetch event's handler ended, which decides what teardown does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler returned a response.
    Completed,
    /// The handler returned an error: pending writes are always rolled back.
    Failed,
}

/// What teardown did for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Teardown {
    /// The removed session's id, if the scope had opened one.
    pub session_id: Option<String>,
    /// How the session was finished (`None` when no session was opened).
    pub finish: Option<Finish>,
}

#[derive(Default)]
struct Counters {
    scopes: Cell<u64>,
    opened: Cell<u64>,
    removed: Cell<u64>,
    commits: Cell<u64>,
    rollbacks: Cell<u64>,
    errors: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

struct Inner {
    id: u64,
    factory: SessionFactory,
    /// The last statements of removed sessions, when the factory records queries.
    recent: RefCell<VecDeque<RecordedQuery>>,
    /// Active scopes and their session, opened on first use.
    scopes: RefCell<HashMap<ScopeId, Option<Session>>>,
    counters: Counters,
}

/// The isolate-wide map from fetch events (scopes) to their sessions.
///
/// Create it once per isolate; clones are handles to the same registry.
///
/// ```
/// # pollster::block_on(async {
/// use gluebind::{Engine, Outcome, Registry, SessionFactory};
/// let registry = Registry::new(SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?);
/// let scope = registry.begin();                       // at the start of a fetch event
/// let a = registry.session(&scope)?;                  // anywhere in that event...
/// let b = registry.session(&scope)?;
/// assert_eq!(a.id(), b.id());                         // ...the same session
/// registry.remove(&scope, Outcome::Completed).await?; // in the completion callback
/// assert!(registry.session(&scope).is_err());         // OutsideScope afterwards
/// # Ok::<(), gluebind::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Rc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("factory", &self.inner.factory)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Registry {
    /// Statements of ended sessions a recording registry keeps (see
    /// [`Registry::recent_queries`]).
    pub const RECENT_QUERIES: usize = 50;

    /// Creates the registry. Call once per isolate and keep it (module scope in JS, a
    /// once-initialised cell in a Rust worker); [`Stats::registries_created`] shows if an app
    /// accidentally creates one per request.
    #[must_use]
    pub fn new(factory: SessionFactory) -> Self {
        let id = REGISTRIES_CREATED.fetch_add(1, Ordering::Relaxed) + 1;
        Self {
            inner: Rc::new(Inner {
                id,
                factory,
                recent: RefCell::new(VecDeque::new()),
                scopes: RefCell::new(HashMap::new()),
                counters: Counters::default(),
            }),
        }
    }

    /// The engine of the registry's factory.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        self.inner.factory.engine()
    }

    /// The factory sessions are opened with.
    #[must_use]
    pub fn factory(&self) -> &SessionFactory {
        &self.inner.factory
    }

    /// Begins a scope for one fetch event. No session is opened until the event asks for
    /// one, so routes that never touch the database cost nothing.
    #[must_use]
    pub fn begin(&self) -> Scope {
        bump(&self.inner.counters.scopes);
        let id = ScopeId(self.inner.counters.scopes.get());
        self.inner.scopes.borrow_mut().insert(id, None);
        Scope {
            id,
            registry: self.inner.id,
        }
    }

    fn check(&self, scope: &Scope) -> Result<()> {
        if scope.registry != self.inner.id {
            return Err(Error::OutsideScope {
                reason: format!(
                    "scope {} was opened by another registry (create one registry per isolate \
                     and use it everywhere)",
                    scope.id
                ),
            });
        }
        Ok(())
    }

    /// The scope's session, opened on first call; every later call in the same scope returns
    /// the same session.
    ///
    /// # Errors
    /// [`Error::OutsideScope`] when the scope has ended (it was removed) or belongs to another
    /// registry.
    pub fn session(&self, scope: &Scope) -> Result<Session> {
        self.check(scope)?;
        let mut scopes = self.inner.scopes.borrow_mut();
        let slot = scopes
            .get_mut(&scope.id)
            .ok_or_else(|| Error::OutsideScope {
                reason: format!("scope {} has ended (its fetch event is over)", scope.id),
            })?;
        Ok(match slot {
            Some(session) => session.clone(),
            None => {
                let session = self.inner.factory.open();
                bump(&self.inner.counters.opened);
                *slot = Some(session.clone());
                session
            }
        })
    }

    /// Runs `work` on the scope's session and commits, rerunning it while the commit
    /// conflicts: [`Session::transaction`] on [`Registry::session`]`(scope)`.
    ///
    /// # Errors
    /// [`Error::OutsideScope`] (converted into `E`) when the scope has ended; otherwise as
    /// [`Session::transaction`].
    pub async fn transaction<T, E, F, Fut>(
        &self,
        scope: &Scope,
        work: F,
    ) -> std::result::Result<T, E>
    where
        F: FnMut(Session) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.session(scope)?.transaction(work).await
    }

    /// The scope's session id if it has opened one, without opening it.
    #[must_use]
    pub fn session_id(&self, scope: &Scope) -> Option<String> {
        self.inner
            .scopes
            .borrow()
            .get(&scope.id)
            .and_then(|s| s.as_ref().map(|s| s.id().to_owned()))
            .filter(|_| scope.registry == self.inner.id)
    }

    /// The scope with id `id` of this registry (the JS bindings keep scopes as numbers).
    #[cfg(all(target_arch = "wasm32", feature = "js"))]
    pub(crate) fn scope_from_id(&self, id: u64) -> Scope {
        Scope {
            id: ScopeId(id),
            registry: self.inner.id,
        }
    }

    /// True while the scope is active.
    #[must_use]
    pub fn is_active(&self, scope: &Scope) -> bool {
        scope.registry == self.inner.id && self.inner.scopes.borrow().contains_key(&scope.id)
    }

    /// Ends the scope: finishes its session per the teardown policy (commit or roll back
    /// pending writes; always roll back when the handler failed), flushes the engine, and
    /// removes the session. Run it in the event's completion callback (`ctx.waitUntil`).
    ///
    /// The session is removed even when the teardown commit fails; that error is returned
    /// (and counted in [`Stats::teardown_errors`]) so the glue can log it.
    ///
    /// # Errors
    /// [`Error::OutsideScope`] for an unknown or already removed scope; the commit's error
    /// under [`TeardownPolicy::Commit`].
    pub async fn remove(&self, scope: &Scope, outcome: Outcome) -> Result<Teardown> {
        self.check(scope)?;
        let slot = self
            .inner
            .scopes
            .borrow_mut()
            .remove(&scope.id)
            .ok_or_else(|| Error::OutsideScope {
                reason: format!("scope {} was already removed", scope.id),
            })?;
        let Some(session) = slot else {
            return Ok(Teardown {
                session_id: None,
                finish: None,
            });
        };
        let commit = outcome == Outcome::Completed
            && (session.teardown_policy() == TeardownPolicy::Commit || session.is_deferred());
        let c = &self.inner.counters;
        let finished = session.finish(commit).await;
        bump(&c.removed);
        self.keep_recent(session.recent_recorded(Self::RECENT_QUERIES));
        match finished {
            Ok(finish) => {
                match finish {
                    Finish::Committed => bump(&c.commits),
                    Finish::RolledBack => bump(&c.rollbacks),
                    Finish::Clean => {}
                }
                // Every engine, even when one fails; the first error is returned.
                let mut flushed = Ok(());
                for engine in self.inner.factory.engines() {
                    let result = engine.flush().await;
                    flushed = flushed.and(result.map(drop));
                }
                flushed?;
                Ok(Teardown {
                    session_id: Some(session.id().to_owned()),
                    finish: Some(finish),
                })
            }
            Err(e) => {
                bump(&c.errors);
                Err(e)
            }
        }
    }

    /// The last [`Registry::RECENT_QUERIES`] statements of sessions this registry removed, oldest
    /// first — what a debug route shows (empty unless the factory
    /// [records queries](crate::SessionFactoryBuilder::record_queries)).
    #[must_use]
    pub fn recent_queries(&self) -> Vec<RecordedQuery> {
        self.inner.recent.borrow().iter().cloned().collect()
    }

    fn keep_recent(&self, queries: Vec<RecordedQuery>) {
        let mut recent = self.inner.recent.borrow_mut();
        for query in queries {
            if recent.len() == Self::RECENT_QUERIES {
                recent.pop_front();
            }
            recent.push_back(query);
        }
    }

    /// Current counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let active = self
            .inner
            .scopes
            .borrow()
            .values()
            .filter(|s| s.is_some())
            .count();
        Stats {
            registries_created: REGISTRIES_CREATED.load(Ordering::Relaxed),
            scopes_begun: c.scopes.get(),
            sessions_opened: c.opened.get(),
            sessions_removed: c.removed.get(),
            sessions_active: active as u64,
            teardown_commits: c.commits.get(),
            teardown_rollbacks: c.rollbacks.get(),
            teardown_errors: c.errors.get(),
        }
    }
}
