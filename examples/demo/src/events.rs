//! The event log (`POST /events`, `GET /events`): append-only, where write-behind fits.
//!
//! An event never conflicts with another (each gets a fresh id, no unique columns), and a
//! client that logs one does not need it stored before its answer: the route validates it,
//! answers 202, and the session commits it in the completion callback
//! ([`gluebind::Session::commit_deferred`]), saving the commit's latency on the request path.

use crate::{
    api::ApiError,
    model::{decode, Paging},
};
use gluebind::{Model, Session};
use serde::{Deserialize, Serialize};

/// A stored event: the `events` table, with `data` as JSON text.
#[derive(Debug, Clone, PartialEq, Model)]
#[gluebind(table = "events")]
pub struct StoredEvent {
    /// Primary key, from the engine's `events` sequence.
    #[gluebind(primary_key)]
    pub id: i64,
    /// What happened.
    pub kind: String,
    /// The event's `data`, compact JSON.
    pub data: String,
}

/// Longest accepted event type, in characters.
pub const MAX_TYPE: usize = 64;
/// Largest accepted `data`, in bytes of compact JSON.
pub const MAX_DATA: usize = 8 * 1024;

/// A logged event: `{"id", "type", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Primary key, from the engine's `events` sequence.
    pub id: i64,
    /// What happened, 1–64 characters.
    #[serde(rename = "type")]
    pub kind: String,
    /// Any JSON value (null when the request had none).
    pub data: serde_json::Value,
}

/// Body of `POST /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: String,
    /// Any JSON value.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Decodes and validates a `POST /events` body; returns the event and its `data` as JSON text.
///
/// # Errors
/// 400 for bad JSON, a missing or unknown field, a bad `type`, or `data` over [`MAX_DATA`].
pub fn parse(body: &[u8]) -> Result<(NewEvent, String), ApiError> {
    let new: NewEvent = decode(body)?;
    let len = new.kind.chars().count();
    if new.kind.trim().is_empty() || len > MAX_TYPE || new.kind.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "type must be 1–{MAX_TYPE} characters, not blank, without control characters"
        )));
    }
    let data =
        serde_json::to_string(&new.data).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if data.len() > MAX_DATA {
        return Err(ApiError::bad_request(format!(
            "data must be at most {MAX_DATA} bytes of JSON (got {})",
            data.len()
        )));
    }
    Ok((new, data))
}

/// Logs an event with a deferred commit: validated now, stored in the completion callback.
///
/// # Errors
/// 400 for an invalid body; 500 if the engine fails.
pub async fn record(session: &Session, body: &[u8]) -> Result<Event, ApiError> {
    let (new, data) = parse(body)?;
    let id = StoredEvent::next_id(session).await?;
    session.add(StoredEvent {
        id,
        kind: new.kind.clone(),
        data,
    })?;
    // Flushed now so the deferred commit's check covers it.
    session.flush().await?;
    session.commit_deferred()?;
    Ok(Event {
        id,
        kind: new.kind,
        data: new.data,
    })
}

/// One page of events ordered by id, with the total count.
///
/// # Errors
/// 500 only if the engine fails or a stored event is not JSON.
pub async fn list(
    session: &Session,
    paging: Paging,
) -> Result<gluebind::model::Pagination<Event>, ApiError> {
    let query = StoredEvent::query(session).order_by(StoredEvent::ID.asc());
    crate::service::page(query, paging)
        .await?
        .try_map(|stored| {
            Ok(Event {
                id: stored.id,
                kind: stored.kind,
                data: serde_json::from_str(&stored.data)
                    .map_err(|e| ApiError::new(500, format!("stored event is not JSON: {e}")))?,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_any_json_data_and_defaults_it_to_null() {
        let (e, data) = parse(br#"{"type":"click","data":{"x":[1,2.5,"s"]}}"#).unwrap();
        assert_eq!(
            (e.kind.as_str(), data.as_str()),
            ("click", r#"{"x":[1,2.5,"s"]}"#)
        );
        let (_, data) = parse(br#"{"type":"ping"}"#).unwrap();
        assert_eq!(data, "null");
    }

    #[test]
    fn parse_refuses_bad_bodies_with_400() {
        let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(MAX_TYPE + 1));
        let big = format!(r#"{{"type":"t","data":"{}"}}"#, "x".repeat(MAX_DATA));
        for body in [
            "",
            "[]",
            r#"{"data":1}"#,
            r#"{"type":1}"#,
            r#"{"type":"  "}"#,
            r#"{"type":"a\u0000b"}"#,
            r#"{"type":"t","extra":1}"#,
            long.as_str(),
            big.as_str(),
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, 400, "{body}: {}", err.message);
        }
    }
}
