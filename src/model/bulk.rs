//! Bulk verbs over a query's rows — `DELETE` / `UPDATE ... WHERE <the query's filters>` — for
//! typed queries ([`super::Query::delete`], [`super::Query::update`]) and the npm package's
//! alike, with the session's unit of work around them:
//!
//! - the unit of work is flushed first (even with autoflush off, as a commit flushes it): the
//!   statement writes rows that may have pending changes, which must not be written after it;
//! - the objects it tracks stay in step with their rows, as SQLAlchemy's
//!   `synchronize_session="fetch"` keeps them: before the statement, the tracked objects of the
//!   model it matches are found — a primary-key lookup each when the filters name keys (a
//!   scan would add a whole-table read to a statement that reads only those rows), else one
//!   `SELECT` (the statement reads the table anyway); after a
//!   delete they are no longer tracked, after an update the set columns are read back into
//!   them.
//!
//! A failed bulk statement changes no row (the statement is atomic, and a failed refresh of
//! the tracked objects restores the session's data); the flush before it stands. Order, limit and offset are refused:
//! GlueSQL's `DELETE` and `UPDATE` have neither, and applying them to a few rows chosen by a
//! `SELECT` first would be a different statement than the one written (SQLAlchemy refuses
//! them too).

use super::{
    arg::Arg,
    column::{Col, Expr, Op},
    select::Select,
    sql::Statement,
    unit::{Identity, ModelId, Refresh},
};
use crate::{Error, Result, Rows, Session};

/// How a language names a bulk verb and the builders it refuses, for messages.
pub(crate) struct BulkNames {
    /// The verb as called: `Query::delete()`, `users.query().delete()`.
    pub(crate) verb: String,
    /// The order builder: `order_by()`, `orderBy()`.
    pub(crate) order_by: &'static str,
    /// A filter on the rows' primary keys, as an example.
    pub(crate) by_keys: String,
}

impl Select {
    /// Refuses a bulk verb on a query with an order, a limit or an offset.
    ///
    /// # Errors
    /// [`Error::Sql`] naming what the query has and what to do instead.
    pub(crate) fn check_bulk(&self, names: &BulkNames) -> Result<()> {
        let mut given = Vec::new();
        if self.limit.is_some() {
            given.push("limit()");
        }
        if self.offset.is_some() {
            given.push("offset()");
        }
        if !self.orders.is_empty() {
            given.push(names.order_by);
        }
        if given.is_empty() {
            return Ok(());
        }
        Err(Error::sql(format!(
            "{} cannot be combined with limit(), offset() or {} (this query has {}): a bulk \
             statement applies to every row the filters match; choose the rows with filters \
             instead, e.g. {}",
            names.verb,
            names.order_by,
            given.join(", "),
            names.by_keys
        )))
    }

    /// The session that owns the unit of work, flushed. A query built from a bind's own
    /// session gets the error that sends model verbs to the registry's session: a bulk verb
    /// run beside the unit of work would leave its pending changes to overwrite the statement.
    async fn flushed_owner(&self) -> Result<Session> {
        let owner = self.session.unit_owner()?;
        owner.flush().await?;
        Ok(owner)
    }

    /// The tracked objects of `model` whose rows match the filters (none read when the session
    /// tracks no object of the model).
    async fn tracked_matching(
        &self,
        owner: &Session,
        model: ModelId,
        bind: &Session,
    ) -> Result<Vec<(Identity, Arg)>> {
        let mut tracked = owner.tracked_of(model);
        // Keys of exactly the tracked keys' type only: `1` as another integer type still
        // matches the row in SQL, but not a tracked key by value.
        let key_type = tracked
            .first()
            .and_then(|(_, key)| key.value())
            .and_then(|k| k.get_type());
        let keyed = self
            .keys_filtered()
            .filter(|keys| keys.iter().all(|k| k.get_type() == key_type));
        if let Some(keys) = &keyed {
            // Only those keys can match: no lookup for the other tracked objects.
            tracked.retain(|(_, key)| key.value().is_some_and(|k| keys.contains(&k)));
        }
        if tracked.is_empty() {
            return Ok(tracked);
        }
        let keys = tracked.iter().map(|(_, key)| key.clone()).collect();
        let rows = if keyed.is_some() {
            self.rows_by_key(bind, keys, true).await?
        } else {
            // The statement reads the whole table anyway (its filters name no keys): one
            // query for every tracked object adds no read. (GlueSQL scans for `key IN (…)`.)
            self.rows_where(bind, Expr::In(self.key_column(), keys), true)
                .await?
        };
        let pk = self.meta.primary_key_index();
        Ok(tracked
            .into_iter()
            .filter(|(_, key)| {
                let key = key.value();
                rows.iter().any(|row| key.as_ref() == row.values().get(pk))
            })
            .collect())
    }

    /// The primary keys the filters allow, when a top-level filter is `key = v` or
    /// `key IN (…)` (the statement then reads only those rows: see `session::narrow`).
    fn keys_filtered(&self) -> Option<Vec<crate::Value>> {
        let pk = self.meta.primary_key().name();
        self.filters.iter().find_map(|filter| {
            let args: Vec<&Arg> = match filter {
                Expr::Compare(column, Op::Eq, arg) if column.name == pk => vec![arg],
                Expr::In(column, args) if column.name == pk => args.iter().collect(),
                _ => return None,
            };
            args.into_iter().map(Arg::value).collect()
        })
    }

    /// The model's primary key column, for filters.
    fn key_column(&self) -> Col {
        Col {
            name: self.meta.primary_key().name_cow(),
            nullable: false,
        }
    }

    /// The rows `condition` selects (and the query's filters, with `filtered`).
    async fn rows_where(&self, bind: &Session, condition: Expr, filtered: bool) -> Result<Rows> {
        let mut filters = vec![condition];
        if filtered {
            filters.extend(self.filters.iter().cloned());
        }
        let statement = Statement::select(&self.meta, false, &filters);
        bind.run_args(&statement.sql, &statement.params)
            .await?
            .into_rows()
    }

    /// The rows with primary keys `keys` (and matching the filters, with `filtered`): one
    /// primary-key lookup per key. GlueSQL scans the whole table for `pk IN (…)`, which would
    /// read every row — on kv://, load them — and make a serializable commit conflict with any
    /// write to the table.
    async fn rows_by_key(&self, bind: &Session, keys: Vec<Arg>, filtered: bool) -> Result<Rows> {
        let mut found: Option<Rows> = None;
        for key in keys {
            let by_key = Expr::Compare(self.key_column(), Op::Eq, key);
            let rows = self.rows_where(bind, by_key, filtered).await?;
            found = Some(match found {
                None => rows,
                Some(all) => all.joined(rows),
            });
        }
        Ok(found.unwrap_or_else(|| Rows::new(Vec::new(), Vec::new())))
    }

    /// `DELETE FROM t WHERE <filters>`, after a flush; the tracked objects of the deleted
    /// rows are no longer tracked. `model` identifies the model in the identity map.
    /// Returns the number of rows deleted.
    pub(crate) async fn bulk_delete(&self, model: ModelId) -> Result<u64> {
        let owner = self.flushed_owner().await?;
        let bind = self.session.for_bind(self.meta.bind_key())?;
        let matched = self.tracked_matching(&owner, model, &bind).await?;
        let statement = Statement::delete(&self.meta, &self.filters);
        let deleted = bind
            .run_args(&statement.sql, &statement.params)
            .await?
            .affected();
        let ids: Vec<Identity> = matched.into_iter().map(|(id, _)| id).collect();
        owner.forget(&ids);
        Ok(deleted as u64)
    }

    /// `UPDATE t SET <sets> WHERE <filters>`, after a flush (`sets`: column index and value,
    /// each column once, the primary key not among them); the tracked objects of the updated
    /// rows are refreshed with `refresh`. Returns the number of rows the filters matched.
    /// Nothing to set: no statement, the number of matching rows.
    pub(crate) async fn bulk_update(
        &self,
        model: ModelId,
        sets: Vec<(usize, Arg)>,
        refresh: Refresh<'_>,
    ) -> Result<u64> {
        let owner = self.flushed_owner().await?;
        if sets.is_empty() {
            return self.count_matching().await;
        }
        let bind = self.session.for_bind(self.meta.bind_key())?;
        let matched = self.tracked_matching(&owner, model, &bind).await?;
        let statement = Statement::update(&self.meta, &sets, &self.filters);
        if matched.is_empty() {
            let ran = bind.run_args(&statement.sql, &statement.params).await?;
            return Ok(ran.affected() as u64);
        }
        // A refresh that fails restores the session's data: no flush meanwhile.
        let busy = owner.busy()?;
        let saved = owner.save_all()?;
        let updated = bind
            .run_args(&statement.sql, &statement.params)
            .await?
            .affected() as u64;
        let keys = matched.iter().map(|(_, key)| key.clone()).collect();
        let columns: Vec<usize> = sets.iter().map(|(i, _)| *i).collect();
        let pk = self.meta.primary_key_index();
        let outcome = match self.rows_by_key(&bind, keys, false).await {
            Ok(rows) => owner.refresh_tracked(&matched, &rows, pk, &columns, refresh),
            Err(e) => Err(e),
        };
        drop(busy);
        if let Err(e) = outcome {
            owner.restore_all(saved);
            return Err(e);
        }
        Ok(updated)
    }
}
