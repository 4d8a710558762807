//! The fetch wrapper: open the scope, run the handler, tear down in `ctx.waitUntil`.

use crate::{Error, Outcome, Registry, Scope, Session};
use std::{future::Future, rc::Rc};
use worker::{console_error, Context, Env, Request, Response};

/// What a handler gets besides the request: the event's scope (pass it, or this value, to
/// whatever needs the session), the environment and the execution context.
#[derive(Clone)]
pub struct Event {
    /// The Worker's bindings and variables.
    pub env: Env,
    /// The execution context, for the handler's own `wait_until` work.
    pub ctx: Rc<Context>,
    /// This event's scope in the registry.
    pub scope: Scope,
    registry: Registry,
}

impl Event {
    /// The event's session (opened on first use, the same one on every later call).
    ///
    /// # Errors
    /// [`Error::OutsideScope`] if used after the event ended (e.g. from a stored clone).
    pub fn session(&self) -> crate::Result<Session> {
        self.registry.session(&self.scope)
    }

    /// Runs `work` on this event's session and commits it, rerunning it while the commit
    /// conflicts ([`Session::transaction`]): the way to run a unit of work with a business
    /// rule ("at most 5 notes per user") that holds under concurrency.
    ///
    /// # Errors
    /// As [`Session::transaction`].
    pub async fn transaction<T, E, F, Fut>(&self, work: F) -> std::result::Result<T, E>
    where
        F: FnMut(Session) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.registry.transaction(&self.scope, work).await
    }

    /// The registry serving this event.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Converts a gluebind error into a `worker::Error`; the same as `worker::Error::from(error)`,
/// which is what `?` uses in a handler returning `worker::Result`.
#[must_use]
pub fn to_worker_error(error: Error) -> worker::Error {
    error.into()
}

/// `?` on a gluebind result inside a handler that returns `worker::Result`: the error's
/// message becomes a `worker::Error::RustError` (a 500). To answer with the error's status
/// (404, 409) instead, return gluebind's [`crate::Result`] from a handler served by [`serve`],
/// or answer it yourself with [`error_response`].
impl From<Error> for worker::Error {
    fn from(error: Error) -> Self {
        worker::Error::RustError(error.to_string())
    }
}

/// `?` on a `worker::Result` inside a handler that returns gluebind's [`crate::Result`]:
/// [`Error::Runtime`], answered 500.
impl From<worker::Error> for Error {
    fn from(error: worker::Error) -> Self {
        Error::Runtime {
            message: error.to_string(),
        }
    }
}

/// What a handler served by [`serve`] may fail with. A `worker::Error` is passed on, as from
/// any workers-rs handler (the runtime answers 500); a gluebind [`Error`] is answered with
/// [`error_response`]: JSON with its [`Error::http_status`] — 404 from `get_or_404`, 409 from
/// a conflict or a taken unique value. Either way the event's session is rolled back.
pub trait HandlerError {
    /// The answer to the client, or the error to pass on.
    ///
    /// # Errors
    /// The error itself, when it is passed on.
    fn respond(self) -> worker::Result<Response>;
}

impl HandlerError for worker::Error {
    fn respond(self) -> worker::Result<Response> {
        Err(self)
    }
}

impl HandlerError for Error {
    fn respond(self) -> worker::Result<Response> {
        error_response(&self)
    }
}

/// The JSON answer for `error`: `{"error": "<message>", "code": "<Error::code>"}` with
/// [`Error::http_status`] as status — 404 for [`Error::NotFound`] (`get_or_404`,
/// `first_or_404`, a page that does not exist), 409 for conflicts, 500 otherwise.
///
/// # Errors
/// `worker::Error` only if the response cannot be built.
pub fn error_response(error: &Error) -> worker::Result<Response> {
    let body = serde_json::json!({ "error": error.to_string(), "code": error.code() });
    Ok(Response::from_json(&body)?.with_status(error.http_status()))
}

/// Runs `handler` inside a new scope of `registry` and schedules the teardown in
/// `ctx.wait_until`: the session (if the handler opened one) is committed or rolled back per
/// the factory's [`crate::TeardownPolicy`] — always rolled back when the handler returned an
/// error — then removed. Teardown runs after the response is sent; commit before responding
/// for anything the client relies on.
///
/// # Errors
/// Whatever the handler returns.
pub async fn serve<H, Fut, E>(
    registry: &Registry,
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
    super::init_panic_hook();
    let scope = registry.begin();
    let ctx = Rc::new(ctx);
    let event = Event {
        env,
        ctx: Rc::clone(&ctx),
        scope: scope.clone(),
        registry: registry.clone(),
    };
    let result = handler(req, event).await;
    let outcome = if result.is_ok() {
        Outcome::Completed
    } else {
        Outcome::Failed
    };
    let registry = registry.clone();
    ctx.wait_until(async move {
        if let Err(e) = registry.remove(&scope, outcome).await {
            console_error!("gluebind: teardown of scope {} failed: {e}", scope.id());
        }
    });
    result.or_else(HandlerError::respond)
}
