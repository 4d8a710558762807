//! `Query<M>`: Flask-SQLAlchemy's `Model.query`, built from typed filters and run with bound
//! parameters.

use super::{
    arg::Arg,
    bulk::BulkNames,
    column::{Assignment, Filter, IntoColumnValue, Order},
    meta::MetaRef,
    paginate::Paginate,
    select::Select,
    unit::{refresh_typed, ModelId},
    Column, ColumnType, Model,
};
use crate::{Error, Result, Rows, Session};
use std::{any::TypeId, fmt, marker::PhantomData};

/// A query over model `M`'s table: filters (ANDed), order, limit and offset, run by its
/// async methods (`all`, `first`, `one`, `get`, `count`, `paginate`, ...). Build it with
/// [`Model::query`]; the builder methods consume and return it, the runners borrow it, so one
/// query can be run several times.
///
/// ```
/// # pollster::block_on(async {
/// # use gluebind::{model::Model, Engine, SessionFactory};
/// # #[derive(gluebind::Model)]
/// # struct User { #[gluebind(primary_key)] id: i64, name: String, age: Option<i32> }
/// # let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
/// # gluebind::model::create_all(&session, &[User::META]).await?;
/// let adults = User::query(&session)
///     .filter(User::AGE.ge(18).or(User::AGE.is_null()))
///     .filter(User::NAME.like("A%"))
///     .order_by(User::NAME.asc())
///     .limit(10)
///     .all()
///     .await?;
/// # assert!(adults.is_empty());
/// # Ok::<(), gluebind::Error>(())
/// # }).unwrap();
/// ```
#[must_use = "a query does nothing until one of its async methods (all, first, ...) runs it"]
pub struct Query<M> {
    /// The untyped query this one wraps (shared with the npm package's models).
    pub(crate) select: Select,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for Query<M> {
    fn clone(&self) -> Self {
        Self {
            select: self.select.clone(),
            _model: PhantomData,
        }
    }
}

impl<M: Model> fmt::Debug for Query<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statement = self.select.statement(false, None);
        f.debug_struct("Query")
            .field("sql", &statement.sql)
            .field("params", &statement.params)
            .finish_non_exhaustive()
    }
}

/// The rows read as `M`s.
fn read<M: Model>(rows: &Rows) -> Result<Vec<M>> {
    rows.iter().map(|row| M::from_row(&row)).collect()
}

/// The first row read as an `M`.
fn read_first<M: Model>(rows: &Rows) -> Result<Option<M>> {
    rows.get(0).map(|row| M::from_row(&row)).transpose()
}

/// The row of a runner that returns one (`one`, the `_or_404`s) read as an `M`.
fn read_one<M: Model>(rows: &Rows) -> Result<M> {
    read_first(rows)?.ok_or_else(|| crate::Error::sql("the query returned no row"))
}

impl<M: Model> Query<M> {
    pub(crate) fn new(session: &Session) -> Self {
        Self {
            select: Select::new(session.clone(), MetaRef::Static(M::META)),
            _model: PhantomData,
        }
    }

    /// Keeps the rows matching `filter` (ANDed with earlier filters).
    pub fn filter(mut self, filter: Filter<M>) -> Self {
        self.select.filters.push(filter.expr);
        self
    }

    /// Keeps the rows whose `column` equals `value`: `filter_by(User::EMAIL, "ada@x.org")` is
    /// `filter(User::EMAIL.eq("ada@x.org"))`.
    pub fn filter_by<T: ColumnType>(
        self,
        column: Column<M, T>,
        value: impl IntoColumnValue<T::Value>,
    ) -> Self {
        self.filter(column.eq(value))
    }

    /// Orders by `order` after any earlier orders (`User::ID.desc()`). Without an order, rows
    /// come in primary-key order on gluebind's engines, but only an explicit order is a
    /// promise.
    pub fn order_by(mut self, order: Order<M>) -> Self {
        self.select.orders.push(order.untyped());
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.select.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.select.offset = Some(n);
        self
    }

    /// The session the query runs in.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.select.session
    }

    /// Every matching row.
    ///
    /// # Errors
    /// The session's errors; [`crate::Error::Sql`] when a row does not fit the model (a column
    /// changed type outside the model).
    pub async fn all(&self) -> Result<Vec<M>> {
        read(&self.select.all().await?)
    }

    /// Every matching row as an object tracked by the session's identity map (see
    /// [`Session::get`]): an object the session already tracks is returned as it is in the
    /// session, not as the row read, and changes made through the handles are written at the
    /// next flush. [`Query::all`] returns plain values instead.
    ///
    /// # Errors
    /// As [`Query::all`].
    pub async fn all_tracked(&self) -> Result<Vec<super::Tracked<M>>> {
        let rows = self.all().await?;
        self.select.session.track_loaded(rows)
    }

    /// The first matching row, if any.
    ///
    /// # Errors
    /// As [`Query::all`].
    pub async fn first(&self) -> Result<Option<M>> {
        read_first(&self.select.first().await?)
    }

    /// The first matching row, or [`crate::Error::NotFound`] (HTTP 404).
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] when no row matches; as [`Query::all`].
    pub async fn first_or_404(&self) -> Result<M> {
        let rows = self.select.first_or_404().await?;
        read_one(&rows)
    }

    /// The only matching row (SQLAlchemy's `one()`).
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] when no row matches, [`crate::Error::MultipleResults`] when
    /// more than one does; as [`Query::all`].
    pub async fn one(&self) -> Result<M> {
        let rows = self.select.one().await?;
        read_one(&rows)
    }

    /// The row with primary key `key` that also matches the query's filters, if any (order,
    /// limit and offset do not apply). It is a primary-key read: one KV get at most on
    /// `kv://`, with or without filters.
    ///
    /// # Errors
    /// As [`Query::all`].
    pub async fn get(&self, key: impl IntoColumnValue<M::Key>) -> Result<Option<M>> {
        self.get_by_param(ColumnType::to_param(&key.into_column_value()))
            .await
    }

    /// [`Query::get`] with the key as a parameter.
    pub(crate) async fn get_by_param(&self, key: crate::ParamLiteral) -> Result<Option<M>> {
        read_first(&self.select.get(Arg::Typed(key)).await?)
    }

    /// [`Query::get`], or [`crate::Error::NotFound`] (HTTP 404) naming the table and key.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] when no row has the key (or it does not match the filters);
    /// as [`Query::all`].
    pub async fn get_or_404(&self, key: impl IntoColumnValue<M::Key>) -> Result<M> {
        let key = ColumnType::to_param(&key.into_column_value());
        let rows = self.select.get_or_404(Arg::Typed(key)).await?;
        read_one(&rows)
    }

    /// How many rows the query yields (its limit and offset applied).
    ///
    /// # Errors
    /// The session's errors.
    pub async fn count(&self) -> Result<u64> {
        self.select.count().await
    }

    /// Deletes every row the query's filters match — all of the table's rows without
    /// filters — in the query's session (SQLAlchemy's `query.delete()`), and returns how many
    /// it deleted. One `DELETE FROM t WHERE <filters>` with bound parameters: like any write,
    /// it is part of the session (read back by its queries) until `commit()` makes it
    /// visible to others or `rollback()` undoes it.
    ///
    /// The unit of work is flushed first (even with autoflush off), and the objects the
    /// session tracks whose rows are deleted are no longer tracked: [`Session::get`] gives
    /// `None` for them, and changes made through their old handles are not written
    /// (SQLAlchemy's `synchronize_session="fetch"`).
    ///
    /// ```
    /// # pollster::block_on(async {
    /// # use gluebind::{model::Model, Engine, SessionFactory};
    /// # #[derive(gluebind::Model)]
    /// # struct Note { #[gluebind(primary_key)] id: i64, owner: i64, text: String }
    /// # let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
    /// # gluebind::model::create_all(&session, &[Note::META]).await?;
    /// # for (id, owner) in [(1, 7), (2, 7), (3, 8)] { Note { id, owner, text: "x".into() }.insert(&session).await?; }
    /// let deleted = Note::query(&session).filter_by(Note::OWNER, 7).delete().await?;
    /// assert_eq!(deleted, 2);
    /// assert_eq!(Note::query(&session).count().await?, 1);
    /// session.commit().await?;
    /// # Ok::<(), gluebind::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Sql`] when the query has an order, a limit or an offset (GlueSQL's `DELETE`
    /// has none: filter on the rows instead, e.g. on their keys with
    /// [`Column::is_in`]); the flush's errors (see [`Session::flush`]); the session's errors.
    /// Nothing is deleted when it fails.
    pub async fn delete(&self) -> Result<u64> {
        self.select.check_bulk(&bulk_names::<M>("delete"))?;
        self.select
            .bulk_delete(ModelId::Type(TypeId::of::<M>()))
            .await
    }

    /// Sets columns of every row the query's filters match — all of the table's rows without
    /// filters — in the query's session (SQLAlchemy's `query.update({...})`), and returns how
    /// many rows matched. `changes` are [`Assignment`]s from the columns' [`Column::set`]:
    /// `[User::NAME.set("Ada"), User::BIO.set(None)]`, each value of its column's type and
    /// bound as a parameter. One `UPDATE t SET ... WHERE <filters>`: like any write, it is
    /// part of the session until `commit()` or `rollback()`. No changes: nothing is written,
    /// and the matching rows are counted.
    ///
    /// The unit of work is flushed first (even with autoflush off), and the objects the
    /// session tracks whose rows are updated take the new values of the columns set
    /// (SQLAlchemy's `synchronize_session="fetch"`): a handle read before shows them, and the
    /// next flush does not write them back.
    ///
    /// ```
    /// # pollster::block_on(async {
    /// # use gluebind::{model::Model, Engine, SessionFactory};
    /// # #[derive(gluebind::Model)]
    /// # struct User { #[gluebind(primary_key)] id: i64, name: String, bio: Option<String>, age: Option<i32> }
    /// # let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
    /// # gluebind::model::create_all(&session, &[User::META]).await?;
    /// # for (id, age) in [(1, 15), (2, 16), (3, 40)] { User { id, name: "x".into(), bio: None, age: Some(age) }.insert(&session).await?; }
    /// let minors = User::query(&session).filter(User::AGE.lt(18));
    /// let updated = minors.update([User::BIO.set("minor"), User::AGE.set(None)]).await?;
    /// assert_eq!(updated, 2);
    /// assert_eq!(User::query(&session).filter(User::AGE.is_null()).count().await?, 2);
    /// session.commit().await?;
    /// # Ok::<(), gluebind::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Sql`] when the query has an order, a limit or an offset, when a change sets
    /// the primary key (every matched row would get the same key), or sets a column twice;
    /// [`Error::Unique`] when the new values would repeat a unique value (several rows set to
    /// one value, or a value another row holds); the flush's errors (see [`Session::flush`]);
    /// the session's errors. Nothing is changed when it fails.
    pub async fn update(&self, changes: impl IntoIterator<Item = Assignment<M>>) -> Result<u64> {
        self.select.check_bulk(&bulk_names::<M>("update"))?;
        let meta = M::META;
        let mut sets: Vec<(usize, Arg)> = Vec::new();
        for change in changes {
            let Some((index, _)) = meta.column(change.column) else {
                continue; // (a column handle of M names one of M's columns)
            };
            if index == meta.primary_key_index() {
                return Err(Error::sql(format!(
                    "Query::update() cannot set the primary key {} of {}: every matched row \
                     would get the same key; delete the rows and insert new ones instead",
                    change.column,
                    meta.table()
                )));
            }
            if sets.iter().any(|(i, _)| *i == index) {
                return Err(Error::sql(format!(
                    "Query::update() sets {}.{} twice: set each column once",
                    meta.table(),
                    change.column
                )));
            }
            sets.push((index, Arg::Typed(change.value)));
        }
        self.select
            .bulk_update(ModelId::Type(TypeId::of::<M>()), sets, &refresh_typed::<M>)
            .await
    }

    /// Page `page` of `per_page` rows, with the total count: `.paginate(1, 20).await?`. The
    /// [`Paginate`] builder sets `max_per_page` and `error_out` first; see it for
    /// Flask-SQLAlchemy's rules on bad and out-of-range values. Order the query (e.g. by
    /// primary key) so that pages are stable.
    pub fn paginate(self, page: i64, per_page: i64) -> Paginate<M> {
        Paginate::new(self, Some(page), Some(per_page))
    }

    /// [`Query::paginate`] from raw request arguments (`?page=2&per_page=50`), parsed as
    /// Flask-SQLAlchemy parses `request.args`: a missing one takes its default (page 1,
    /// per_page 20 or [`Paginate::default_per_page`]); one that is not an integer is an error
    /// ([`crate::Error::NotFound`]) or, with `error_out(false)`, the default.
    pub fn paginate_args(self, page: Option<&str>, per_page: Option<&str>) -> Paginate<M> {
        Paginate::from_args(self, page, per_page)
    }
}

/// How the typed API names bulk verb `verb` (`delete`, `update`) of `M`'s queries in
/// messages.
fn bulk_names<M: Model>(verb: &str) -> BulkNames {
    let model = std::any::type_name::<M>()
        .rsplit("::")
        .next()
        .unwrap_or("Model");
    BulkNames {
        verb: format!("Query::{verb}()"),
        order_by: "order_by()",
        // The derive names a column's constant after its field, which a `column = ".."`
        // attribute may rename: the message says what the constant stands for.
        by_keys: format!(
            ".filter({model}::{key}.is_in(keys)) ({key}: the constant of the primary key's \
             field)",
            key = M::META.primary_key().name().to_uppercase()
        ),
    }
}
