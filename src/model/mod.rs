//! Models: Rust structs mapped to tables (Flask-SQLAlchemy's `db.Model`), `create_all` /
//! `drop_all`, and the query API ([`Query`], [`Pagination`]).
//!
//! ```
//! # pollster::block_on(async {
//! use gluebind::{Engine, Model, SessionFactory}; // `Model`: the trait and its derive
//!
//! #[derive(Debug, PartialEq, Model)]
//! #[gluebind(table = "users")]
//! struct User {
//!     #[gluebind(primary_key)]
//!     id: i64,
//!     name: String,
//!     #[gluebind(unique)]
//!     email: String,
//!     bio: Option<String>, // NULL-able
//! }
//!
//! let factory = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?;
//! let session = factory.open();
//! gluebind::model::create_all(&session, &[User::META]).await?;
//!
//! let ada = User { id: User::next_id(&session).await?, name: "Ada".into(), email: "ada@x.org".into(), bio: None };
//! ada.insert(&session).await?;
//! session.commit().await?;
//!
//! let found = User::query(&session).filter_by(User::EMAIL, "ada@x.org").one().await?;
//! assert_eq!(found, ada);
//! let page = User::query(&session).order_by(User::ID.asc()).paginate(1, 20).await?;
//! assert_eq!((page.total, page.pages(), page.has_next()), (Some(1), 1, false));
//! assert_eq!(User::get_or_404(&session, 42).await.unwrap_err().code(), "NOT_FOUND");
//! # Ok::<(), gluebind::Error>(())
//! # }).unwrap();
//! ```
//!
//! # The derive
//!
//! `#[derive(Model)]` takes a struct with named fields and generates [`Model`] for it, plus
//! one [`Column`] handle per field as an associated const in upper case (`User::EMAIL`).
//!
//! | attribute | on | meaning |
//! |---|---|---|
//! | `#[gluebind(table = "users")]` | struct | table name; default: the struct name in snake_case, not pluralised, as Flask-SQLAlchemy does (`UserPost` → `user_post`) |
//! | `#[gluebind(bind_key = "cache")]` | struct | the model's bind ([`ModelMeta::bind_key`]; see [`create_all_bind`]) |
//! | `#[gluebind(primary_key)]` | field | the primary key; exactly one field, not an `Option` |
//! | `#[gluebind(unique)]` | field | a UNIQUE column |
//! | `#[gluebind(column = "e_mail")]` | field | column name; default: the field name |
//!
//! | field type | column |
//! |---|---|
//! | `i64` / `i32` / `i16` / `i8` | `INTEGER` / `INT32` / `INT16` / `INT8` |
//! | `u64` / `u32` / `u16` / `u8` | `UINT64` / `UINT32` / `UINT16` / `UINT8` |
//! | `f64`, `bool`, `String`, `Vec<u8>` | `FLOAT`, `BOOLEAN`, `TEXT`, `BYTEA` |
//! | `Option<T>` | T's column, NULL-able (others are `NOT NULL`) |
//!
//! Table and column names must be ASCII letters, digits and `_` (checked at compile time);
//! they are the only text gluebind writes into SQL besides keywords. Every value is bound as
//! a `$n` parameter.

// Values from dynamically typed callers and models defined at run time: used by the npm
// package's bindings (wasm32, feature `js`) and the shared fixture tests, dead code elsewhere.
#[cfg_attr(not(all(target_arch = "wasm32", feature = "js")), allow(dead_code))]
pub(crate) mod arg;
mod bulk;
mod column;
pub(crate) mod drift;
#[cfg_attr(not(all(target_arch = "wasm32", feature = "js")), allow(dead_code))]
pub(crate) mod dynamic;
mod meta;
pub(crate) mod paginate;
mod query;
pub(crate) mod select;
mod sql;
mod unit;

pub use column::{Assignment, Column, ColumnType, Filter, IntoColumnValue, Order};
pub(crate) use meta::valid_ident;
pub use meta::{ColumnMeta, ModelMeta};
pub use paginate::{Paginate, Pagination};
pub use query::Query;
pub(crate) use unit::Unit;
pub use unit::{Change, ModelRef, Operation, Tracked};

use crate::{Error, ParamLiteral, Result, Row, Session};

/// A Rust struct mapped to a table. Derive it with `#[derive(gluebind::Model)]` (see the
/// [module docs](self)); the provided methods are the model-level verbs.
///
/// Sessions are single-threaded (`!Send`, as on Workers), so the async methods make no `Send`
/// promise.
#[allow(async_fn_in_trait)]
pub trait Model: Sized + 'static {
    /// The primary key field's type.
    type Key: ColumnType;

    /// The table, columns, primary key and bind key.
    const META: &'static ModelMeta;

    /// Builds the struct from a row holding (at least) its columns, by column name.
    ///
    /// # Errors
    /// [`Error::Sql`] naming the column that is missing or has another type.
    fn from_row(row: &Row<'_>) -> Result<Self>;

    /// The field values as parameters, in column order.
    fn to_params(&self) -> Vec<ParamLiteral>;

    /// The primary key's value as a parameter.
    fn key(&self) -> ParamLiteral;

    /// A query over this model's table (`User.query` in Flask-SQLAlchemy).
    fn query(session: &Session) -> Query<Self> {
        Query::new(session)
    }

    /// The next value of the ID sequence named after the table on the model's bind (see
    /// [`Session::next_id`]), for an integer primary key.
    ///
    /// # Errors
    /// As [`Session::next_id`]; [`Error::Config`] for a bind key without an engine.
    async fn next_id(session: &Session) -> Result<i64> {
        session
            .for_bind(Self::META.bind_key())?
            .next_id(Self::META.table())
            .await
    }

    /// The row with primary key `key`, if any.
    ///
    /// # Errors
    /// The session's errors.
    async fn get(session: &Session, key: impl IntoColumnValue<Self::Key>) -> Result<Option<Self>> {
        Self::query(session).get(key).await
    }

    /// The row with primary key `key`, or [`Error::NotFound`] (HTTP 404).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has the key; the session's errors.
    async fn get_or_404(session: &Session, key: impl IntoColumnValue<Self::Key>) -> Result<Self> {
        Self::query(session).get_or_404(key).await
    }

    /// Inserts this row (in the session: commit to make it visible to others).
    ///
    /// # Errors
    /// [`Error::Unique`] when the primary key or a unique column is taken; the session's
    /// errors.
    async fn insert(&self, session: &Session) -> Result<()> {
        session
            .for_bind(Self::META.bind_key())?
            .execute(&sql::insert(Self::META), self.to_params())
            .await
            .map(|_| ())
    }

    /// Writes every column of this row to the row with the same primary key.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has the key; [`Error::Unique`]; the session's errors.
    async fn update(&self, session: &Session) -> Result<()> {
        let params = sql::update_params(Self::META, self.to_params());
        let updated = session
            .for_bind(Self::META.bind_key())?
            .execute(&sql::update(Self::META), params)
            .await?
            .affected();
        expect_row::<Self>(updated, "update")
    }

    /// Deletes the row with this row's primary key.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has the key; the session's errors.
    async fn delete(&self, session: &Session) -> Result<()> {
        let deleted = session
            .for_bind(Self::META.bind_key())?
            .execute(&sql::delete(Self::META), [self.key()])
            .await?
            .affected();
        expect_row::<Self>(deleted, "delete")
    }
}

fn expect_row<M: Model>(affected: usize, verb: &str) -> Result<()> {
    if affected == 0 {
        return Err(Error::NotFound {
            table: M::META.table().to_owned(),
            detail: format!(
                "{verb}() found no row with this primary key ({}); it was deleted, or never \
                 inserted: insert() it instead",
                M::META.primary_key().name()
            ),
        });
    }
    Ok(())
}

/// Creates the tables of `models` that do not exist yet (`db.create_all()`), and the indexes
/// of their `#[gluebind(index)]` columns that do not exist yet (also on a table created
/// before the index was declared): running it again changes nothing. It runs in `session`;
/// commit to make the tables visible to other sessions.
///
/// Each table is created on its model's bind (the factory's engine for its `bind_key`, see
/// [`Session::for_bind`]); use [`create_all_bind`] to select one bind.
///
/// When two sessions create the same missing table at once, the second to commit gets
/// [`Error::Conflict`] (first committer wins, as for rows); running `create_all` again in that
/// session then finds the table and changes nothing.
///
/// An existing table is left as it is; when its columns differ from the model's (a column the
/// model added, a changed type, a UNIQUE or NOT NULL the table lacks), `create_all` fails
/// with [`Error::Drift`], naming the difference and the migration step that resolves it (see
/// [`crate::migrate`]). A table column the model lacks is fine while the model's INSERTs can
/// leave it out (it is NULL-able or has a default).
///
/// # Errors
/// The session's errors; [`Error::Drift`]; [`Error::Config`] for a bind key the factory has
/// no engine for.
pub async fn create_all(session: &Session, models: &[&ModelMeta]) -> Result<()> {
    for meta in models {
        create(&session.for_bind(meta.bind_key())?, meta).await?;
    }
    Ok(())
}

/// One model's table if it is missing, then its indexes that are missing (also one added to
/// the model after the table was created), in `session` (the model's bind's).
pub(crate) async fn create(session: &Session, meta: &ModelMeta) -> Result<()> {
    session
        .execute(&sql::create_table(meta), crate::NO_PARAMS)
        .await?;
    // Before the indexes: a column the table lacks is drift, named with its migration step.
    drift::check(session, meta).await?;
    // GlueSQL has no CREATE INDEX IF NOT EXISTS: an existing index is the error it raises.
    for column in meta.columns().iter().filter(|c| c.is_indexed()) {
        let statement = sql::create_index(meta, column.name());
        match session.execute(&statement, crate::NO_PARAMS).await {
            Err(Error::Sql { message }) if message.contains(INDEX_EXISTS) => {}
            outcome => {
                outcome?;
            }
        }
    }
    Ok(())
}

/// What GlueSQL says of a `CREATE INDEX` whose name the table has.
const INDEX_EXISTS: &str = "index name already exists";

/// The models of `models` with bind key `bind_key` (`None`: without one).
fn of_bind<'a>(models: &[&'a ModelMeta], bind_key: Option<&str>) -> Vec<&'a ModelMeta> {
    models
        .iter()
        .copied()
        .filter(|m| m.bind_key() == bind_key)
        .collect()
}

/// [`create_all`] for the models of one bind: `None` selects the models without a bind key
/// (Flask-SQLAlchemy's default bind).
///
/// # Errors
/// As [`create_all`].
pub async fn create_all_bind(
    session: &Session,
    models: &[&ModelMeta],
    bind_key: Option<&str>,
) -> Result<()> {
    create_all(session, &of_bind(models, bind_key)).await
}

/// Drops the tables of `models` that exist (`db.drop_all()`), each on its model's bind, with
/// their rows; idempotent. It runs in `session`; commit to apply it.
///
/// # Errors
/// The session's errors.
pub async fn drop_all(session: &Session, models: &[&ModelMeta]) -> Result<()> {
    for meta in models {
        session
            .for_bind(meta.bind_key())?
            .execute(&sql::drop_table(meta), crate::NO_PARAMS)
            .await?;
    }
    Ok(())
}

/// [`drop_all`] for the models of one bind (`None`: the models without a bind key).
///
/// # Errors
/// As [`drop_all`].
pub async fn drop_all_bind(
    session: &Session,
    models: &[&ModelMeta],
    bind_key: Option<&str>,
) -> Result<()> {
    drop_all(session, &of_bind(models, bind_key)).await
}
