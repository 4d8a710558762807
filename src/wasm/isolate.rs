//! `Gluebind`: a Rust Worker's isolate-wide database handle, as the npm package's
//! `new Gluebind({ url, init })` — the registry built once from the first event's `env`, the
//! start-up work run once before the first handler, and `serve` for every event.

use super::serve::{error_response, serve, Event, HandlerError};
use crate::{Registry, Result, Session, SessionFactory, Startup};
use std::{cell::OnceCell, future::Future, pin::Pin, rc::Rc};
use worker::{Context, Env, Request, Response};

type Make = dyn Fn(&Env) -> Result<SessionFactory>;
type Init = dyn Fn(Session) -> Pin<Box<dyn Future<Output = Result<()>>>>;

/// A Worker's database, once per isolate (a `thread_local!`): the session factory is made from
/// the first event's `env` (bindings and variables arrive with the request), the start-up work
/// ([`Gluebind::init`]) runs once before the first handler, and [`Gluebind::serve`] gives every
/// event its scope. Never a "current session": the registry is the only isolate-wide state.
///
/// The README's "A Rust worker" (the file `examples/hello/src/worker_app.rs`, compiled for
/// wasm32 by `npm test`) shows it in a `thread_local!` with an `init`.
#[derive(Clone)]
pub struct Gluebind {
    make: Rc<Make>,
    init: Option<Rc<Init>>,
    registry: Rc<OnceCell<Registry>>,
    startup: Startup,
}

impl std::fmt::Debug for Gluebind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gluebind")
            .field("created", &self.registry.get().is_some())
            .field("started", &self.startup.is_done())
            .finish_non_exhaustive()
    }
}

impl Gluebind {
    /// The database whose session factory `make` builds from the first event's `env`.
    #[must_use]
    pub fn new(make: impl Fn(&Env) -> Result<SessionFactory> + 'static) -> Self {
        Self {
            make: Rc::new(make),
            init: None,
            registry: Rc::new(OnceCell::new()),
            startup: Startup::new(),
        }
    }

    /// Start-up work (create tables): run once per isolate before the first event's handler,
    /// on a session of its own (commit in it); events that arrive meanwhile wait; a failure
    /// fails that event and the next one runs it again; a `CONFLICT` (another isolate created
    /// the same tables at that moment) reruns it at once (see [`Startup`]).
    #[must_use]
    pub fn init<F, Fut>(mut self, init: F) -> Self
    where
        F: Fn(Session) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        self.init = Some(Rc::new(move |session| Box::pin(init(session))));
        self
    }

    /// The registry, once an event made it (for code deep in a request that has the event's
    /// scope but not the registry).
    #[must_use]
    pub fn get(&self) -> Option<Registry> {
        self.registry.get().cloned()
    }

    /// The isolate's registry: made on the first call from `env`, with the start-up work done.
    ///
    /// # Errors
    /// What the factory or the start-up work failed with (the next call tries again).
    pub async fn registry(&self, env: &Env) -> Result<Registry> {
        // Before the factory and the start-up work run: a panic in them also resets the
        // instance (as one in a handler does, through `serve`).
        super::init_panic_hook();
        let registry = match self.registry.get() {
            Some(registry) => registry.clone(),
            None => {
                let factory = (self.make)(env)?;
                // If another event made it meanwhile, keep that one.
                self.registry.get_or_init(|| Registry::new(factory)).clone()
            }
        };
        if let Some(init) = &self.init {
            // Waiting events look again every 10 ms (a timer of their own).
            self.startup
                .ensure(&registry, |session| init(session), || super::sleep(10))
                .await?;
        }
        Ok(registry)
    }

    /// [`serve`]s the event on the isolate's registry; a failure to make it (a bad URL, a
    /// missing binding, the start-up work) is answered as [`error_response`] (the error's JSON
    /// with its status: 500 for these).
    ///
    /// # Errors
    /// As [`serve`].
    pub async fn serve<H, Fut, E>(
        &self,
        req: Request,
        env: Env,
        ctx: Context,
        handler: H,
    ) -> worker::Result<Response>
    where
        H: FnOnce(Request, Event) -> Fut,
        Fut: Future<Output = std::result::Result<Response, E>>,
        E: HandlerError,
    {
        match self.registry(&env).await {
            Ok(registry) => serve(&registry, req, env, ctx, handler).await,
            Err(e) => {
                worker::console_error!("gluebind: {e}");
                error_response(&e)
            }
        }
    }
}

/// The variable `name` of `env` as text, or `default` when it is not set.
#[must_use]
pub fn var(env: &Env, name: &str, default: &str) -> String {
    env.var(name)
        .map_or_else(|_| default.to_owned(), |v| v.to_string())
}
