//! A user's notes (`POST /users/{id}/notes`, `GET /users/{id}/notes`): the demo's interactive
//! transaction with a business rule — at most [`MAX_NOTES`] notes per user.
//!
//! Adding a note reads the user, counts their notes and inserts one, in one unit of work run
//! by [`gluebind::Session::transaction_with`]. Sessions are serializable by default, so two
//! requests that both counted 4 cannot both insert: the later commit fails with `CONFLICT` and
//! the helper runs the unit of work again on fresh data, where it counts 5 and refuses.

use crate::{api::ApiError, model::decode};
use gluebind::{Model, Session};
use serde::{Deserialize, Serialize};

/// Notes one user may have.
pub const MAX_NOTES: i64 = 5;
/// Longest accepted note, in characters.
pub const MAX_BODY_CHARS: usize = 1000;

/// A stored note: the `notes` table and the API's note JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Model)]
#[gluebind(table = "notes")]
pub struct Note {
    /// Primary key, from the engine's `notes` sequence.
    #[gluebind(primary_key)]
    pub id: i64,
    /// The user it belongs to.
    pub user_id: i64,
    /// Its text, 1–1000 characters.
    pub body: String,
    /// When it was added (UTC, ISO 8601); `null` for notes added before the migration
    /// `0001_notes_created_at` gave the table this column (see `service::migrations`).
    pub created_at: Option<String>,
}

/// Body of `POST /users/{id}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// The note's text.
    pub body: String,
}

/// Checks a note's text: 1–1000 characters, not only whitespace.
///
/// # Errors
/// 400 naming the rule broken.
pub fn validate(body: &str) -> Result<(), ApiError> {
    let len = body.chars().count();
    if body.trim().is_empty() {
        return Err(ApiError::bad_request("body must not be empty"));
    }
    if len > MAX_BODY_CHARS {
        return Err(ApiError::bad_request(format!(
            "body must be at most {MAX_BODY_CHARS} characters (got {len})"
        )));
    }
    Ok(())
}

/// Each rerun of the transaction follows a conflicting commit, and in this demo those are the
/// user's other new notes — at most [`MAX_NOTES`] — so this many reruns let every concurrent
/// request finish with a note or a refusal (see the e2e test `notes.test.mjs`).
const RERUNS: u32 = MAX_NOTES as u32 + 5;

/// Adds a note to user `user_id`, at most [`MAX_NOTES`] per user, added at `now` (UTC, ISO
/// 8601), and commits.
///
/// # Errors
/// 400 for an invalid body, 404 for an unknown user, 409 when the user has
/// [`MAX_NOTES`] notes already (or, rarely, when the commit kept conflicting).
pub async fn add(
    session: &Session,
    user_id: i64,
    body: &[u8],
    now: &str,
) -> Result<Note, ApiError> {
    let new: NewNote = decode(body)?;
    validate(&new.body)?;
    session
        .transaction_with(RERUNS, |s| {
            let text = new.body.clone();
            async move {
                // Read inside the unit of work: a user deleted meanwhile conflicts too.
                if crate::model::User::get(&s, user_id).await?.is_none() {
                    return Err(ApiError::not_found(format!("no user with id {user_id}")));
                }
                let count = Note::query(&s)
                    .filter_by(Note::USER_ID, user_id)
                    .count()
                    .await?;
                if count >= MAX_NOTES as u64 {
                    return Err(ApiError::new(
                        409,
                        format!("user {user_id} has {MAX_NOTES} notes already (the limit)"),
                    ));
                }
                let note = Note {
                    id: Note::next_id(&s).await?,
                    user_id,
                    body: text,
                    created_at: Some(now.to_owned()),
                };
                s.add(note.clone())?;
                Ok(note)
            }
        })
        .await
}

/// The notes of user `user_id`, ordered by id.
///
/// # Errors
/// 404 for an unknown user.
pub async fn list(session: &Session, user_id: i64) -> Result<Vec<Note>, ApiError> {
    if crate::model::User::get(session, user_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no user with id {user_id}")));
    }
    Ok(Note::query(session)
        .filter_by(Note::USER_ID, user_id)
        .order_by(Note::ID.asc())
        .all()
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(validate("hello").is_ok());
        assert!(validate(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert_eq!(validate("  ").unwrap_err().status, 400);
        assert_eq!(
            validate(&"a".repeat(MAX_BODY_CHARS + 1))
                .unwrap_err()
                .status,
            400
        );
        assert!(decode::<NewNote>(br#"{"body":"x","extra":1}"#).is_err());
    }
}
