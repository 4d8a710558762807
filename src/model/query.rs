//! `Query<M>`: Flask-SQLAlchemy's `Model.query`, built from typed filters and run with bound
//! parameters.

use super::{
    column::{Expr, Filter, IntoColumnValue, Order},
    paginate::Paginate,
    sql::Statement,
    Column, ColumnType, Model,
};
use crate::{Error, FromValue, Result, Rows, Session};
use gluesql_core::translate::IntoParamLiteral;
use std::{fmt, marker::PhantomData};

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
    session: Session,
    filters: Vec<Expr>,
    orders: Vec<Order<M>>,
    limit: Option<u64>,
    offset: Option<u64>,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for Query<M> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            filters: self.filters.clone(),
            orders: self.orders.clone(),
            limit: self.limit,
            offset: self.offset,
            _model: PhantomData,
        }
    }
}

impl<M: Model> fmt::Debug for Query<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statement = self.select(false);
        f.debug_struct("Query")
            .field("sql", &statement.sql)
            .field("params", &statement.params)
            .finish_non_exhaustive()
    }
}

impl<M: Model> Query<M> {
    pub(crate) fn new(session: &Session) -> Self {
        Self {
            session: session.clone(),
            filters: Vec::new(),
            orders: Vec::new(),
            limit: None,
            offset: None,
            _model: PhantomData,
        }
    }

    /// Keeps the rows matching `filter` (ANDed with earlier filters).
    pub fn filter(mut self, filter: Filter<M>) -> Self {
        self.filters.push(filter.expr);
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
        self.orders.push(order);
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    /// The session the query runs in.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn select(&self, count: bool) -> Statement {
        let mut statement = Statement::select(M::META, count, &self.filters);
        if !count {
            statement.order_by(&self.orders);
            statement.limit_offset(self.limit, self.offset);
        }
        statement
    }

    /// Runs a query on the model's bind, after an autoflush of pending model objects.
    async fn rows(&self, statement: Statement) -> Result<Rows> {
        self.session.autoflush_now().await?;
        self.session
            .for_bind(M::META.bind_key())?
            .run_unflushed(&statement.sql, &statement.params)
            .await?
            .into_rows()
    }

    async fn fetch(&self, statement: Statement) -> Result<Vec<M>> {
        let rows = self.rows(statement).await?;
        rows.iter().map(|row| M::from_row(&row)).collect()
    }

    /// Every matching row.
    ///
    /// # Errors
    /// The session's errors; [`Error::Sql`] when a row does not fit the model (a column
    /// changed type outside the model).
    pub async fn all(&self) -> Result<Vec<M>> {
        self.fetch(self.select(false)).await
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
        self.session.track_loaded(rows)
    }

    /// The first matching row, if any.
    ///
    /// # Errors
    /// As [`Query::all`].
    pub async fn first(&self) -> Result<Option<M>> {
        let limit = self.limit.map_or(1, |n| n.min(1));
        let mut rows = self.clone().limit(limit).all().await?;
        Ok(rows.pop())
    }

    /// The first matching row, or [`Error::NotFound`] (HTTP 404).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row matches; as [`Query::all`].
    pub async fn first_or_404(&self) -> Result<M> {
        self.first()
            .await?
            .ok_or_else(|| not_found::<M>("no row matches the query".to_owned()))
    }

    /// The only matching row (SQLAlchemy's `one()`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row matches, [`Error::MultipleResults`] when more than one
    /// does; as [`Query::all`].
    pub async fn one(&self) -> Result<M> {
        let limit = self.limit.map_or(2, |n| n.min(2));
        let mut rows = self.clone().limit(limit).all().await?;
        match rows.len() {
            0 => Err(not_found::<M>(
                "one() found no row matching the query; use first() when the row may be absent"
                    .to_owned(),
            )),
            1 => Ok(rows.remove(0)),
            _ => Err(Error::MultipleResults {
                table: M::META.table().to_owned(),
            }),
        }
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
        let mut filters = Vec::with_capacity(self.filters.len() + 1);
        // The key comparison first, so GlueSQL's planner reads by key and filters the rest.
        let column = super::column::Col {
            name: M::META.primary_key().name(),
            nullable: false,
        };
        filters.push(Expr::Compare(column, super::column::Op::Eq, key));
        filters.extend(self.filters.iter().cloned());
        let statement = Statement::select(M::META, false, &filters);
        Ok(self.fetch(statement).await?.pop())
    }

    /// [`Query::get`], or [`Error::NotFound`] (HTTP 404) naming the table and key.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has the key (or it does not match the filters); as
    /// [`Query::all`].
    pub async fn get_or_404(&self, key: impl IntoColumnValue<M::Key>) -> Result<M> {
        let key = key.into_column_value();
        let shown = crate::to_json(gluesql_value(&key))
            .map_or_else(|_| "the given key".to_owned(), |v| v.to_string());
        self.get(key).await?.ok_or_else(|| {
            not_found::<M>(format!(
                "no row with {} = {shown}",
                M::META.primary_key().name()
            ))
        })
    }

    /// How many rows the query yields (its limit and offset applied).
    ///
    /// # Errors
    /// The session's errors.
    pub async fn count(&self) -> Result<u64> {
        let total = self.count_matching().await?;
        let after_offset = total.saturating_sub(self.offset.unwrap_or(0));
        Ok(self.limit.map_or(after_offset, |n| after_offset.min(n)))
    }

    /// How many rows match the filters (limit and offset ignored).
    pub(crate) async fn count_matching(&self) -> Result<u64> {
        let rows = self.rows(self.select(true)).await?;
        let count = rows
            .get(0)
            .and_then(|row| row.values().first().map(i64::from_value))
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
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
    /// ([`Error::NotFound`]) or, with `error_out(false)`, the default.
    pub fn paginate_args(self, page: Option<&str>, per_page: Option<&str>) -> Paginate<M> {
        Paginate::from_args(self, page, per_page)
    }
}

/// The key as a GlueSQL value, for messages.
fn gluesql_value<T: ColumnType>(key: &T) -> crate::Value {
    match ColumnType::to_param(key).into_param_literal().into_expr() {
        gluesql_core::ast::Expr::Value(v) => v,
        _ => crate::Value::Null,
    }
}

pub(crate) fn not_found<M: Model>(detail: String) -> Error {
    Error::NotFound {
        table: M::META.table().to_owned(),
        detail,
    }
}
