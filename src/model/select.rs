//! The untyped query: filters, order, limit and offset over one model's table, run on the
//! model's bind after an autoflush, returning [`Rows`]. The typed [`super::Query`] wraps it
//! (and reads the rows into its model's struct); the npm package builds it from a query
//! description (`model::dynamic`) and hands the rows to JavaScript.

use super::{
    arg::Arg,
    column::{Col, Expr, Op, OrderBy},
    meta::MetaRef,
    sql::Statement,
};
use crate::{Error, FromValue, Result, Rows, Session};

/// A query over a model's table (see the module docs).
#[derive(Clone)]
pub(crate) struct Select {
    pub(crate) session: Session,
    pub(crate) meta: MetaRef,
    pub(crate) filters: Vec<Expr>,
    pub(crate) orders: Vec<OrderBy>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: Option<u64>,
}

impl Select {
    pub(crate) fn new(session: Session, meta: MetaRef) -> Self {
        Self {
            session,
            meta,
            filters: Vec::new(),
            orders: Vec::new(),
            limit: None,
            offset: None,
        }
    }

    /// `SELECT` of the rows (order, limit and offset applied; `limit` given: the smaller of
    /// it and the query's), or of their count (filters only).
    pub(crate) fn statement(&self, count: bool, limit: Option<u64>) -> Statement {
        let mut statement = Statement::select(&self.meta, count, &self.filters);
        if !count {
            statement.order_by(&self.orders);
            let limit = match (self.limit, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            statement.limit_offset(limit, self.offset);
        }
        statement
    }

    /// Runs a statement on the model's bind, after an autoflush of pending model objects.
    pub(crate) async fn rows(&self, statement: Statement) -> Result<Rows> {
        self.session.autoflush_now().await?;
        self.session
            .for_bind(self.meta.bind_key())?
            .run_args(&statement.sql, &statement.params)
            .await?
            .into_rows()
    }

    /// Every matching row.
    pub(crate) async fn all(&self) -> Result<Rows> {
        self.rows(self.statement(false, None)).await
    }

    /// The first matching row (none or one).
    pub(crate) async fn first(&self) -> Result<Rows> {
        self.rows(self.statement(false, Some(1))).await
    }

    /// The first matching row, or [`Error::NotFound`].
    pub(crate) async fn first_or_404(&self) -> Result<Rows> {
        let rows = self.first().await?;
        if rows.is_empty() {
            return Err(self.not_found("no row matches the query".to_owned()));
        }
        Ok(rows)
    }

    /// The only matching row: [`Error::NotFound`] when none, [`Error::MultipleResults`]
    /// when several.
    pub(crate) async fn one(&self) -> Result<Rows> {
        let rows = self.rows(self.statement(false, Some(2))).await?;
        match rows.len() {
            0 => Err(self.not_found(
                "one() found no row matching the query; use first() when the row may be absent"
                    .to_owned(),
            )),
            1 => Ok(rows),
            _ => Err(Error::MultipleResults {
                table: self.meta.table().to_owned(),
            }),
        }
    }

    /// The row with primary key `key` that also matches the filters (none or one); order,
    /// limit and offset do not apply. A primary-key read: one KV get at most on `kv://`.
    pub(crate) async fn get(&self, key: Arg) -> Result<Rows> {
        let mut filters = Vec::with_capacity(self.filters.len() + 1);
        // The key comparison first, so GlueSQL's planner reads by key and filters the rest.
        let column = Col {
            name: self.meta.primary_key().name_cow(),
            nullable: false,
        };
        filters.push(Expr::Compare(column, Op::Eq, key));
        filters.extend(self.filters.iter().cloned());
        self.rows(Statement::select(&self.meta, false, &filters))
            .await
    }

    /// [`Select::get`], or [`Error::NotFound`] naming the table and key.
    pub(crate) async fn get_or_404(&self, key: Arg) -> Result<Rows> {
        let shown = key.json();
        let rows = self.get(key).await?;
        if rows.is_empty() {
            return Err(self.not_found(format!(
                "no row with {} = {shown}",
                self.meta.primary_key().name()
            )));
        }
        Ok(rows)
    }

    /// How many rows the query yields (its limit and offset applied).
    pub(crate) async fn count(&self) -> Result<u64> {
        let total = self.count_matching().await?;
        let after_offset = total.saturating_sub(self.offset.unwrap_or(0));
        Ok(self.limit.map_or(after_offset, |n| after_offset.min(n)))
    }

    /// How many rows match the filters (limit and offset ignored).
    pub(crate) async fn count_matching(&self) -> Result<u64> {
        let rows = self.rows(self.statement(true, None)).await?;
        let count = rows
            .get(0)
            .and_then(|row| row.values().first().map(i64::from_value))
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// [`Error::NotFound`] for this query's table.
    pub(crate) fn not_found(&self, detail: String) -> Error {
        Error::NotFound {
            table: self.meta.table().to_owned(),
            detail,
        }
    }
}
