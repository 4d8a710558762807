//! The demo's unit-of-work operations on a gluebind session, on the model layer (no SQL
//! here). Mutations commit before they return, so the client's answer reflects what is
//! stored (a conflict becomes 409).

use crate::{
    api::ApiError,
    etag,
    events::StoredEvent,
    model::{validate_email, validate_name, NewUser, Paging, User, UserPatch},
    notes::Note,
};
use gluebind::{
    migrate::{Migration, Migrations, Report},
    model::{ModelMeta, Pagination, Query},
    Error, Model, Session,
};

/// The demo's schema changes since its first deploy, oldest first. Never change or remove a
/// step once a database ran it: add a new one.
pub fn migrations() -> Migrations {
    Migrations::new().step(
        // Notes remember when they were added; the notes stored before read `null`.
        Migration::new("0001_notes_created_at").add_column("notes", "created_at TEXT NULL"),
    )
}

/// Brings the database up to date at start-up (`flask db upgrade` + `db.create_all()`): on a
/// new database creates the tables (users, the event log, notes); on one a previous deploy
/// wrote, runs the [`migrations`] it has not run; then checks every model against its table.
///
/// # Errors
/// The engine's error; `MIGRATION` or `DRIFT` with the step to fix or write.
pub async fn migrate(session: &Session) -> gluebind::Result<Report> {
    migrations().run(session, MODELS).await
}

/// The demo's models: their tables as of the last step are `examples/demo/schema.json`
/// (`npm run migrations:new -- <name>` writes the next step from the difference).
pub const MODELS: &[&ModelMeta] = &[User::META, StoredEvent::META, Note::META];

/// 404 for user `id`, whatever the model layer said (the API's message names the id).
fn not_found(id: i64) -> impl Fn(Error) -> ApiError {
    move |e| match e {
        Error::NotFound { .. } => ApiError::not_found(format!("no user with id {id}")),
        other => other.into(),
    }
}

/// Inserts a user and commits.
///
/// # Errors
/// 400 for invalid fields, 409 when the email is taken.
pub async fn create_user(session: &Session, new: NewUser) -> Result<User, ApiError> {
    validate_name(&new.name)?;
    validate_email(&new.email)?;
    let user = User {
        id: User::next_id(session).await?,
        name: new.name,
        email: new.email,
    };
    session.add(user.clone())?;
    session.commit().await?;
    Ok(user)
}

/// `POST /__gluebind/seed` (debug only): how many users to add.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// 1–2000 (on kv:// at most about 400 fit a session's KV operations).
    pub count: u32,
}

/// Adds `seed.count` users (`seed {id}`, `seed-{id}@seed.test`) with fresh ids in one commit;
/// returns their ids.
///
/// # Errors
/// 400 for a count outside 1–2000; the commit's errors.
pub async fn seed_users(session: &Session, seed: Seed) -> Result<Vec<i64>, ApiError> {
    if !(1..=2000).contains(&seed.count) {
        return Err(ApiError::bad_request(format!(
            "count must be between 1 and 2000, got {}",
            seed.count
        )));
    }
    let mut ids = Vec::with_capacity(seed.count as usize);
    for _ in 0..seed.count {
        let id = User::next_id(session).await?;
        session.add(User {
            id,
            name: format!("seed {id}"),
            email: format!("seed-{id}@seed.test"),
        })?;
        ids.push(id);
    }
    session.commit().await?;
    Ok(ids)
}

/// Reads one user.
///
/// # Errors
/// 404 when there is no such user.
pub async fn get_user(session: &Session, id: i64) -> Result<User, ApiError> {
    User::get_or_404(session, id).await.map_err(not_found(id))
}

/// One page of `query` (ordered by the caller): Flask-SQLAlchemy's `paginate`, with the
/// demo's paging already validated (400s), so a page past the end is an empty page.
///
/// # Errors
/// 500 only if the engine fails.
pub async fn page<M: Model>(query: Query<M>, paging: Paging) -> Result<Pagination<M>, ApiError> {
    Ok(query
        .paginate(paging.page, paging.per_page)
        .error_out(false)
        .await?)
}

/// One page of users ordered by id, with the total count; with `email`, only the user who has
/// it (the column is UNIQUE: an index read, which on kv:// loads that user alone).
///
/// # Errors
/// 500 only if the engine fails.
pub async fn list_users(
    session: &Session,
    paging: Paging,
    email: Option<&str>,
) -> Result<Pagination<User>, ApiError> {
    let mut query = User::query(session).order_by(User::ID.asc());
    if let Some(email) = email {
        query = query.filter_by(User::EMAIL, email);
    }
    page(query, paging).await
}

/// A keyset page: at most `per_page` users with an id above `after`, in id order, and the id
/// to continue after when there are more (`WHERE id > $1 ORDER BY id LIMIT n`: the read starts
/// at `after`, so its cost does not grow with how far into the list it is).
///
/// # Errors
/// 500 only if the engine fails.
pub async fn users_after(
    session: &Session,
    after: i64,
    per_page: i64,
    email: Option<&str>,
) -> Result<(Vec<User>, Option<i64>), ApiError> {
    let per_page = usize::try_from(per_page).unwrap_or(0);
    let mut query = User::query(session)
        .filter(User::ID.gt(after))
        .order_by(User::ID.asc())
        .limit(per_page as u64 + 1);
    if let Some(email) = email {
        query = query.filter_by(User::EMAIL, email);
    }
    let mut users = query.all().await?;
    let next = if users.len() > per_page {
        users.truncate(per_page);
        users.last().map(|u| u.id)
    } else {
        None
    };
    Ok((users, next))
}

/// Changes the given fields and commits. With `if_match` (the request's `If-Match` header),
/// only if the user's current [`etag`](crate::etag) satisfies it.
///
/// The user is a tracked object: the commit's flush writes only the columns that changed,
/// and nothing when nothing did (no write, no conflict).
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
    let user = session
        .get::<User>(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user with id {id}")))?;
    if let Some(header) = if_match {
        let current = etag::of(&user.borrow());
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
    {
        let mut user = user.borrow_mut();
        if let Some(name) = patch.name {
            user.name = name;
        }
        if let Some(email) = patch.email {
            user.email = email;
        }
    }
    // A flush that finds the row gone (deleted by a commit this session did not see) is a
    // 404, never a 200 for a write that matched nothing.
    session.commit().await.map_err(not_found(id))?;
    Ok(user.cloned())
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
        let user = session
            .get::<User>(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no user with id {id}")))?;
        session.delete(&user)?;
        match session.commit().await {
            Ok(_) => return Ok(()),
            Err(Error::Conflict { .. }) if attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(not_found(id)(e)),
        }
    }
}
