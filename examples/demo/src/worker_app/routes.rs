//! Routing and HTTP mapping. Every error is `{"error": "..."}` with its status.

use super::{db, probe, MAX_BODY};
use crate::{
    api::ApiError,
    etag, events,
    model::{decode, NewUser, Paging, User, UserPatch},
    notes, service,
};
use futures_util::StreamExt;
use gluebind::{model::Pagination, wasm::Event};
use worker::{Method, Request, Response, Result, Url};

/// Builds the JSON error response for `error`.
pub fn error_response(error: &ApiError) -> Result<Response> {
    Ok(Response::from_json(&error.body())?.with_status(error.status))
}

fn json<T: serde::Serialize>(value: &T, status: u16) -> Result<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// The request's URL (parsed once per route).
fn url(req: &Request) -> std::result::Result<Url, ApiError> {
    req.url().map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Paging parameters from the request's query string.
fn paging(req: &Request) -> std::result::Result<Paging, ApiError> {
    Paging::parse(url(req)?.query())
}

/// The (percent-decoded) value of `key` in the query string, if given.
fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The API's page: `{"items", "page", "per_page", "total"}` of a pagination.
fn page_json<T: serde::Serialize>(page: &Pagination<T>) -> Result<Response> {
    json(
        &serde_json::json!({
            "items": page.items,
            "page": page.page,
            "per_page": page.per_page,
            "total": page.total,
        }),
        200,
    )
}

/// A user's JSON with its `ETag` (the version a later `PATCH` may name in `If-Match`).
fn user_json(user: &User, status: u16) -> Result<Response> {
    let mut response = json(user, status)?;
    response.headers_mut().set("etag", &etag::of(user))?;
    Ok(response)
}

/// Reads the body, refusing more than [`MAX_BODY`] bytes with 413.
async fn body(req: &mut Request) -> std::result::Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, format!("request body larger than {MAX_BODY} bytes"));
    let read_error =
        |e: worker::Error| ApiError::bad_request(format!("could not read the body: {e}"));
    if let Ok(Some(len)) = req.headers().get("content-length") {
        if len.parse::<usize>().map_or(true, |n| n > MAX_BODY) {
            return Err(too_large());
        }
        // The runtime delivers exactly Content-Length bytes: read them in one call (cheaper
        // than a stream of chunks).
        return req.bytes().await.map_err(read_error);
    }
    // No body at all (GET-like): empty, as `bytes()` gives (`stream()` would be an error).
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    // A chunked body has no Content-Length: read it chunk by chunk and stop past the limit, so
    // at most MAX_BODY plus one chunk is ever held (buffering all of it can exhaust the isolate).
    // Returning early drops the stream, which cancels it.
    let mut stream = req.stream().map_err(read_error)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn user_id(raw: &str) -> std::result::Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(format!("no user with id {raw:?}")))
}

fn method_not_allowed(allow: &str) -> ApiError {
    ApiError::new(405, format!("method not allowed; allowed: {allow}"))
}

/// The fetch handler run inside the event's scope.
pub async fn handle(mut req: Request, event: Event) -> Result<Response> {
    let debug = db::debug(&event.env);
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();

    if debug && segments == ["__gluebind", "stats"] {
        // The stats route opens no session of its own.
        let stats = event.registry().stats();
        return json(
            &serde_json::json!({
                "registries_created": stats.registries_created,
                "sessions_opened": stats.sessions_opened,
                "sessions_removed": stats.sessions_removed,
                "sessions_active": stats.sessions_active,
                "engine": event.registry().engine().url(),
                // The last statements of ended sessions: SQL, params, duration, rows.
                "queries": event.registry().recent_queries(),
            }),
            200,
        );
    }

    let answer = route(&mut req, &event, debug, &segments, method).await;
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => error_response(&error)?,
    };
    if debug {
        if let Some(id) = event.registry().session_id(&event.scope) {
            response.headers_mut().set("x-gluebind-session", &id)?;
            // KV operations the event's session used so far (0 on memory://): `npm run bench`
            // reads it to report the KV cost per request type.
            if let Ok(session) = event.session() {
                let ops = session.kv_ops().to_string();
                response.headers_mut().set("x-gluebind-kv-ops", &ops)?;
                // Statements the event ran so far (query recording is on in debug).
                let queries = session.recorded_query_count().to_string();
                response.headers_mut().set("x-gluebind-queries", &queries)?;
            }
        }
    }
    Ok(response)
}

async fn route(
    req: &mut Request,
    event: &Event,
    debug: bool,
    segments: &[&str],
    method: Method,
) -> std::result::Result<Response, ApiError> {
    // Every other route works in the event's session: open it up front.
    let session = event.session()?;
    let ok = |r: Result<Response>| r.map_err(|e| ApiError::new(500, e.to_string()));
    match (segments, method) {
        (["users"], Method::Post) => {
            let new: NewUser = decode(&body(req).await?)?;
            let user = service::create_user(&session, new).await?;
            ok(user_json(&user, 201))
        }
        (["users"], Method::Get) => {
            let url = url(req)?;
            let email = query_value(&url, "email");
            let paging = Paging::parse(url.query())?;
            if let Some(after) = query_value(&url, "after") {
                // A keyset page: `{"items", "per_page", "next"}`, no total (see docs/demo.md).
                if query_value(&url, "page").is_some() {
                    return Err(ApiError::bad_request(
                        "page and after exclude each other: page through with after=<next>",
                    ));
                }
                let after = after.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("after must be an integer, got {after:?}"))
                })?;
                let (items, next) =
                    service::users_after(&session, after, paging.per_page, email.as_deref())
                        .await?;
                return ok(json(
                    &serde_json::json!({ "items": items, "per_page": paging.per_page, "next": next }),
                    200,
                ));
            }
            let page = service::list_users(&session, paging, email.as_deref()).await?;
            ok(page_json(&page))
        }
        (["users"], _) => Err(method_not_allowed("GET, POST")),
        (["users", id], Method::Get) => {
            let user = service::get_user(&session, user_id(id)?).await?;
            ok(user_json(&user, 200))
        }
        (["users", id], Method::Patch) => {
            let id = user_id(id)?;
            let if_match = req.headers().get("if-match").ok().flatten();
            let patch: UserPatch = decode(&body(req).await?)?;
            let user = service::update_user(&session, id, patch, if_match.as_deref()).await?;
            ok(user_json(&user, 200))
        }
        (["users", id], Method::Delete) => {
            service::delete_user(&session, user_id(id)?).await?;
            ok(Response::empty().map(|r| r.with_status(204)))
        }
        (["users", _], _) => Err(method_not_allowed("GET, PATCH, DELETE")),
        (["users", id, "notes"], Method::Post) => {
            let id = user_id(id)?;
            let now = String::from(js_sys::Date::new_0().to_iso_string());
            let note = notes::add(&session, id, &body(req).await?, &now).await?;
            ok(json(&note, 201))
        }
        (["users", id, "notes"], Method::Get) => {
            let items = notes::list(&session, user_id(id)?).await?;
            ok(json(&serde_json::json!({ "items": items }), 200))
        }
        (["users", _, "notes"], _) => Err(method_not_allowed("GET, POST")),
        (["events"], Method::Post) => {
            // 202: validated and accepted, stored in the completion callback (write-behind).
            let event = events::record(&session, &body(req).await?).await?;
            ok(json(&event, 202))
        }
        (["events"], Method::Get) => {
            let page = events::list(&session, paging(req)?).await?;
            ok(page_json(&page))
        }
        (["events"], _) => Err(method_not_allowed("GET, POST")),
        (["__gluebind", "probe"], Method::Get) if debug => {
            let first = session.id().to_owned();
            let second = probe::session_id_from_another_module(&event.scope)?;
            ok(json(
                &serde_json::json!({ "first": first, "second": second }),
                200,
            ))
        }
        (["__gluebind", "migrations"], Method::Get) if debug => {
            // The steps this database ran (or was created with), in order.
            let applied = gluebind::migrate::applied(&session).await?;
            let steps: Vec<serde_json::Value> = applied
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "position": a.position, "name": a.name, "checksum": a.checksum,
                        "applied_at": a.applied_at, "how": a.how,
                    })
                })
                .collect();
            ok(json(&serde_json::json!({ "applied": steps }), 200))
        }
        (["__gluebind", "seed"], Method::Post) if debug => {
            // `npm run bench:scale` fills the table: `{"count": n}` users in one commit.
            let seed: service::Seed = decode(&body(req).await?)?;
            let ids = service::seed_users(&session, seed).await?;
            ok(json(&serde_json::json!({ "ids": ids }), 201))
        }
        (["__gluebind", "panic"], Method::Post) if debug => {
            // Measures panic recovery (tests/e2e/panic.test.mjs): workers-rs schedules a reset
            // of the wasm instance, which the next request gets (memory:// data is gone).
            panic!("deliberate panic from POST /__gluebind/panic (debug only)");
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}
