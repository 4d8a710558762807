//! The Worker: fetch entry point, routing and HTTP mapping.

mod db;
mod probe;
mod routes;

use worker::{event, Context, Env, Request, Response, Result};

/// Largest accepted request body (bytes); larger bodies get 413.
pub const MAX_BODY: usize = 64 * 1024;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let served = db::db().serve(req, env, ctx, routes::handle).await;
    // An error escaping the handler is a bug: answer JSON 500 (teardown already rolled back).
    served.or_else(|e| {
        worker::console_error!("unhandled error: {e}");
        routes::error_response(&crate::api::ApiError::new(
            500,
            format!("internal error: {e}"),
        ))
    })
}
