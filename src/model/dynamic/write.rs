//! The row verbs of models defined at run time — `Model.insert`, `update`, `delete` by
//! primary key — and `createAll` / `dropAll` of one model: each one statement from
//! `model::sql`, run on the model's bind after an autoflush.

use super::{bind_session, check_columns, key, row_args, select, DefinedModel, DynValue};
use crate::{
    model::{arg::Arg, sql},
    Error, Result, Rows, Session, NO_PARAMS,
};

/// Runs a write of `model` after an autoflush of `session`'s pending model objects; the rows
/// it wrote.
async fn write(model: &DefinedModel, session: &Session, sql: &str, args: &[Arg]) -> Result<usize> {
    session.autoflush_now().await?;
    Ok(bind_session(&model.meta, session)?
        .run_args(sql, args)
        .await?
        .affected())
}

fn not_found(model: &DefinedModel, verb: &str, key: &str) -> Error {
    Error::NotFound {
        table: model.table().to_owned(),
        detail: format!(
            "{verb}() found no row with {} = {key}",
            model.meta.primary_key().name()
        ),
    }
}

/// `Model.insert(session, row)`: every NOT NULL column needs a value; absent nullable ones
/// are NULL. Returns the row as inserted: per column, the value given (`None`: NULL).
///
/// # Errors
/// [`Error::Sql`] for a field that is no column or a missing NOT NULL value;
/// [`Error::Unique`] when the key or a unique value is taken; the session's errors.
pub(crate) async fn insert<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    values: &V,
) -> Result<Vec<Option<V>>> {
    let meta = &model.meta;
    let place = format!("{}.insert", meta.table());
    check_columns(meta, values, &place)?;
    let args = row_args(meta, values, &place)?;
    write(model, session, &sql::insert(meta), &args).await?;
    Ok(meta
        .columns()
        .iter()
        .map(|c| {
            let v = values.get(c.name());
            (!(v.is_undefined() || v.is_null())).then_some(v)
        })
        .collect())
}

/// `Model.update(session, key, changes)`: reads the row and SETs only the columns whose value
/// differs from the stored one (undefined values are left out): a stored value is not written
/// again, because GlueSQL 0.20 checks a UNIQUE column in SET against every stored row, the
/// updated one included. Returns the stored row as `read` gives it (called before anything is
/// written, so a row the caller cannot read changes nothing) and the changes made (column
/// index, value).
///
/// # Errors
/// [`Error::NotFound`] when no row has the key; [`Error::Sql`] for a change of the primary
/// key, a NULL in a NOT NULL column, a field that is no column; [`Error::Unique`]; `read`'s.
pub(crate) async fn update<V: DynValue, T>(
    model: &DefinedModel,
    session: &Session,
    key_value: &V,
    changes: &V,
    read: impl FnOnce(&Rows) -> Result<T>,
) -> Result<(T, Vec<(usize, V)>)> {
    let meta = &model.meta;
    let place = format!("{}.update", meta.table());
    let entries = check_columns(meta, changes, &place)?;
    let key = key(meta, key_value, &format!("{}.get", meta.table()))?;
    let stored = select(model, session)?.get(key.clone()).await?;
    let Some(row) = stored.get(0) else {
        return Err(not_found(model, "update", &key_value.shown()));
    };
    let mut changed = Vec::new();
    for (name, value) in entries {
        if value.is_undefined() {
            continue;
        }
        let Some((index, column)) = meta.column(&name) else {
            continue; // (check_columns refused names that are not columns)
        };
        let arg = if value.is_null() {
            Arg::null()
        } else {
            super::arg(meta, index, &value, &place)?
        };
        if arg.value().as_ref() == row.values().get(index) {
            continue;
        }
        if index == meta.primary_key_index() {
            return Err(Error::sql(format!(
                "{place}: the primary key {name} cannot be changed"
            )));
        }
        if arg.is_null() && !column.is_nullable() {
            return Err(Error::sql(format!("{place}: {name} is NOT NULL")));
        }
        changed.push((index, arg, value));
    }
    let stored = read(&stored)?;
    if changed.is_empty() {
        return Ok((stored, Vec::new()));
    }
    let columns: Vec<usize> = changed.iter().map(|(i, ..)| *i).collect();
    let mut args: Vec<Arg> = changed.iter().map(|(_, a, _)| a.clone()).collect();
    args.push(key);
    let updated = write(model, session, &sql::update_columns(meta, &columns), &args).await?;
    // The session read the row above, so this holds; if it ever did not, returning would
    // report a write that matched nothing: a silently lost update.
    if updated != 1 {
        return Err(not_found(model, "update", &key_value.shown()));
    }
    Ok((
        stored,
        changed.into_iter().map(|(i, _, v)| (i, v)).collect(),
    ))
}

/// `Model.delete(session, key)`.
///
/// # Errors
/// [`Error::NotFound`] when no row has the key; [`Error::Sql`] for an undefined key.
pub(crate) async fn delete<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    key_value: &V,
) -> Result<()> {
    let meta = &model.meta;
    let key = key(meta, key_value, &format!("{}.delete", meta.table()))?;
    if write(model, session, &sql::delete(meta), &[key]).await? == 0 {
        return Err(not_found(model, "delete", &key_value.shown()));
    }
    Ok(())
}

/// `createAll` of one model: `CREATE TABLE IF NOT EXISTS` on its bind.
///
/// # Errors
/// The session's errors; [`Error::Config`] for a bind without an engine.
pub(crate) async fn create(model: &DefinedModel, session: &Session) -> Result<()> {
    bind_session(&model.meta, session)?
        .execute(&sql::create_table(&model.meta), NO_PARAMS)
        .await
        .map(|_| ())
}

/// `dropAll` of one model: `DROP TABLE IF EXISTS` on its bind.
///
/// # Errors
/// As [`create`].
pub(crate) async fn drop(model: &DefinedModel, session: &Session) -> Result<()> {
    bind_session(&model.meta, session)?
        .execute(&sql::drop_table(&model.meta), NO_PARAMS)
        .await
        .map(|_| ())
}
