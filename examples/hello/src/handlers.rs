use gluebind::{params, wasm::Event, Error};
use worker::{Request, Response, RouteContext, Router};

/// `GET /hits/{n}`: a handler returning gluebind's `Result`. `?` on a gluebind call keeps the
/// error's status — `serve` answers `Error::NotFound` 404 and a conflict 409, as JSON — and
/// `?` on a worker call gives `Error::Runtime` (500).
pub async fn hit(n: i64, event: &Event) -> gluebind::Result<Response> {
    let session = event.session()?;
    let rows = session
        .execute("SELECT n FROM hits WHERE n = $1", params![n])
        .await?
        .into_rows()?;
    if rows.is_empty() {
        return Err(Error::NotFound {
            table: "hits".into(),
            detail: format!("no hit {n}"),
        });
    }
    Ok(Response::ok(format!("hit {n}"))?)
}

/// With workers-rs' router: the event is the router's data, and a route answers a gluebind
/// error with its status through `error_response`.
pub async fn route(req: Request, event: Event) -> worker::Result<Response> {
    let env = event.env.clone();
    Router::with_data(event)
        .get_async("/hits/:n", |_req, ctx: RouteContext<Event>| async move {
            let n = ctx.param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            hit(n, &ctx.data)
                .await
                .or_else(|e| gluebind::wasm::error_response(&e))
        })
        .run(req, env)
        .await
}
