//! The demo's unit-of-work operations on a gluebind session. Mutations commit before they
//! return, so the client's answer reflects what is stored (a conflict becomes 409).

use crate::{
    api::ApiError,
    etag,
    model::{validate_email, validate_name, NewUser, Paging, User, UserPatch},
};
use gluebind::{params, Rows, Session};

/// The schema, created once per isolate (the `create_all` analog).
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
)";

/// Creates the tables (users, and the event log) if missing and commits.
///
/// # Errors
/// The engine's error if the schema cannot be created.
pub async fn create_all(session: &Session) -> gluebind::Result<()> {
    session.execute_batch(SCHEMA).await?;
    session.execute_batch(crate::events::SCHEMA).await?;
    session.commit().await?;
    Ok(())
}

fn users(rows: &Rows) -> Result<Vec<User>, ApiError> {
    rows.iter()
        .map(|row| {
            Ok(User {
                id: row.get("id")?,
                name: row.get("name")?,
                email: row.get("email")?,
            })
        })
        .collect::<gluebind::Result<Vec<_>>>()
        .map_err(ApiError::from)
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no user with id {id}"))
}

/// Inserts a user and commits.
///
/// # Errors
/// 400 for invalid fields, 409 when the email is taken.
pub async fn create_user(session: &Session, new: NewUser) -> Result<User, ApiError> {
    validate_name(&new.name)?;
    validate_email(&new.email)?;
    let id = session.next_id("users")?;
    session
        .execute(
            "INSERT INTO users (id, name, email) VALUES ($1, $2, $3)",
            params![id, new.name.clone(), new.email.clone()],
        )
        .await?;
    session.commit().await?;
    Ok(User {
        id,
        name: new.name,
        email: new.email,
    })
}

/// Reads one user.
///
/// # Errors
/// 404 when there is no such user.
pub async fn get_user(session: &Session, id: i64) -> Result<User, ApiError> {
    let rows = session
        .execute(
            "SELECT id, name, email FROM users WHERE id = $1",
            params![id],
        )
        .await?
        .into_rows()?;
    users(&rows)?.pop().ok_or_else(|| not_found(id))
}

/// Runs `sql`, a `SELECT COUNT(*) AS total …`, and returns the count.
///
/// # Errors
/// 500 only if the engine fails.
pub async fn count(session: &Session, sql: &str) -> Result<i64, ApiError> {
    let rows = session.execute_batch(sql).await?.remove(0).into_rows()?;
    Ok(rows
        .get(0)
        .map(|r| r.get("total"))
        .transpose()?
        .unwrap_or(0))
}

/// One page of users ordered by id, and the total count.
///
/// # Errors
/// 500 only if the engine fails.
pub async fn list_users(session: &Session, paging: Paging) -> Result<(Vec<User>, i64), ApiError> {
    let total = count(session, "SELECT COUNT(*) AS total FROM users").await?;
    let rows = session
        .execute(
            "SELECT id, name, email FROM users ORDER BY id LIMIT $1 OFFSET $2",
            params![paging.per_page, paging.offset()],
        )
        .await?
        .into_rows()?;
    Ok((users(&rows)?, total))
}

/// Changes the given fields and commits. With `if_match` (the request's `If-Match` header),
/// only if the user's current [`etag`](crate::etag) satisfies it.
///
/// # Errors
/// 400 for invalid fields, 404 for an unknown id, 412 when `if_match` names a version the user
/// no longer has, 409 when the email is taken or another request changed the user first.
pub async fn update_user(
    session: &Session,
    id: i64,
    patch: UserPatch,
    if_match: Option<&str>,
) -> Result<User, ApiError> {
    if let Some(name) = &patch.name {
        validate_name(name)?;
    }
    if let Some(email) = &patch.email {
        validate_email(email)?;
    }
    let mut user = get_user(session, id).await?;
    if let Some(header) = if_match {
        let current = etag::of(&user);
        if !etag::matches(header, &current) {
            return Err(ApiError::new(
                412,
                format!(
                    "precondition failed: user {id} changed since the version in If-Match \
                     (its ETag is now {current}); re-read it and retry"
                ),
            ));
        }
    }
    // SET only the columns that change; nothing to change means no write (and no conflict).
    let name = patch.name.filter(|n| *n != user.name);
    let email = patch.email.filter(|e| *e != user.email);
    let sql = match (&name, &email) {
        (None, None) => return Ok(user),
        (Some(_), None) => "UPDATE users SET name = $1 WHERE id = $3",
        (None, Some(_)) => "UPDATE users SET email = $2 WHERE id = $3",
        (Some(_), Some(_)) => "UPDATE users SET name = $1, email = $2 WHERE id = $3",
    };
    if let Some(name) = name {
        user.name = name;
    }
    if let Some(email) = email {
        user.email = email;
    }
    let updated = session
        .execute(sql, params![user.name.clone(), user.email.clone(), id])
        .await?
        .affected();
    // The session read the user above, so this holds; if it ever did not, answering 200 for
    // a write that matched nothing would be a silently lost update.
    if updated != 1 {
        return Err(not_found(id));
    }
    session.commit().await?;
    Ok(user)
}

/// Deletes a user and commits.
///
/// DELETE is idempotent, so a commit that conflicts (another session changed or deleted the
/// row first) is tried again on the fresh state the session starts over on: a row deleted
/// meanwhile is then a 404, as for any unknown id. Bounded: a row changed on every attempt
/// ends in the conflict's 409.
///
/// # Errors
/// 404 for an unknown id; 409 when the row kept changing under every attempt.
pub async fn delete_user(session: &Session, id: i64) -> Result<(), ApiError> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    loop {
        let deleted = session
            .execute("DELETE FROM users WHERE id = $1", params![id])
            .await?
            .affected();
        if deleted == 0 {
            return Err(not_found(id));
        }
        match session.commit().await {
            Ok(_) => return Ok(()),
            Err(gluebind::Error::Conflict { .. }) if attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}
