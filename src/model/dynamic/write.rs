//! The row verbs of models defined at run time — `Model.insert`, `update`, `delete` by
//! primary key — the bulk verbs of their queries (`query.delete()`, `query.update(changes)`,
//! see `model::bulk`), and `createAll` / `dropAll` of one model: each one statement from
//! `model::sql`, run on the model's bind after an autoflush.

use super::{
    bind_session, check_columns, key, object_of, row_args, select, DefinedModel, DynValue,
};
use crate::{
    model::{
        arg::Arg,
        bulk::BulkNames,
        select::Select,
        sql,
        unit::{ModelId, Refresh},
    },
    Error, Result, Rows, Session, NO_PARAMS,
};
use std::{any::Any, rc::Rc};

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
/// are NULL. Returns the row as inserted: per column, the value given and as written
/// (`None`: NULL).
///
/// # Errors
/// [`Error::Sql`] for a field that is no column or a missing NOT NULL value;
/// [`Error::Unique`] when the key or a unique value is taken; the session's errors.
pub(crate) async fn insert<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    values: &V,
    numbers: bool,
) -> Result<Vec<Option<(V, Arg)>>> {
    let meta = &model.meta;
    let place = format!("{}.insert", meta.table());
    check_columns(meta, values, &place)?;
    let args = row_args(meta, values, &place, numbers)?;
    write(model, session, &sql::insert(meta), &args).await?;
    Ok(meta
        .columns()
        .iter()
        .zip(args)
        .map(|(c, arg)| {
            let v = values.get(c.name());
            (!(v.is_undefined() || v.is_null())).then_some((v, arg))
        })
        .collect())
}

/// `Model.update(session, key, changes)`: reads the row and SETs only the columns whose value
/// differs from the stored one (undefined values are left out): a stored value is not written
/// again, because GlueSQL 0.20 checks a UNIQUE column in SET against every stored row, the
/// updated one included. Returns the stored row as `read` gives it (called before anything is
/// written, so a row the caller cannot read changes nothing) and the changes made (column
/// index, value given, value written).
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
    numbers: bool,
) -> Result<(T, Vec<(usize, V, Arg)>)> {
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
        let arg = super::change(meta, index, &value, &place, numbers)?;
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
        changed.into_iter().map(|(i, a, v)| (i, v, a)).collect(),
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

/// How the npm package names bulk verb `verb` (`delete`, `update`) of `model`'s queries in
/// messages.
fn bulk_names(model: &DefinedModel, verb: &str) -> BulkNames {
    BulkNames {
        verb: format!("{}.query().{verb}()", model.table()),
        order_by: "orderBy()",
        by_keys: format!(
            "filter({}, \"in\", keys)",
            super::quoted(model.meta.primary_key().name())
        ),
    }
}

/// `Model.query(session)…delete()`: deletes the rows `query` matches (see `model::bulk`);
/// the number deleted.
///
/// # Errors
/// [`Error::Sql`] for a query with an order, a limit or an offset; the flush's and the
/// session's errors.
pub(crate) async fn bulk_delete(model: &DefinedModel, query: &Select) -> Result<u64> {
    query.check_bulk(&bulk_names(model, "delete"))?;
    query.bulk_delete(ModelId::Defined(model.id)).await
}

/// `Model.query(session)…update(changes)`: SETs the columns of `changes` (undefined ones left
/// out, values converted as `Model.update` converts them) on the rows `query` matches (see
/// `model::bulk`); the number matched. Tracked objects of those rows take the new values as
/// `to_object` (the application's object of a row) gives them.
///
/// # Errors
/// [`Error::Sql`] for a query with an order, a limit or an offset, a field that is no column,
/// a change of the primary key, a NULL in a NOT NULL column; [`Error::Unique`]; the flush's
/// and the session's errors.
pub(crate) async fn bulk_update<V: DynValue>(
    model: &DefinedModel,
    query: &Select,
    changes: &V,
    to_object: impl Fn(&Rows) -> Result<V>,
    numbers: bool,
) -> Result<u64> {
    let meta = &model.meta;
    query.check_bulk(&bulk_names(model, "update"))?;
    let place = format!("{}.query().update", meta.table());
    let mut sets = Vec::new();
    for (name, value) in check_columns(meta, changes, &place)? {
        if value.is_undefined() {
            continue;
        }
        let Some((index, column)) = meta.column(&name) else {
            continue; // (check_columns refused names that are not columns)
        };
        let arg = super::change(meta, index, &value, &place, numbers)?;
        if index == meta.primary_key_index() {
            return Err(Error::sql(format!(
                "{place}: the primary key {name} cannot be changed (every matched row would \
                 get the same key): leave it out of the changes"
            )));
        }
        if arg.is_null() && !column.is_nullable() {
            return Err(Error::sql(format!("{place}: {name} is NOT NULL")));
        }
        sets.push((index, arg));
    }
    let refresh = |any: &Rc<dyn Any>, rows: &Rows, columns: &[usize]| {
        let Some(object) = object_of::<V>(any) else {
            return Ok(Box::new(|| {}) as Box<dyn FnOnce()>);
        };
        let fresh = to_object(rows)?;
        let names: Vec<String> = columns
            .iter()
            .map(|&i| meta.columns()[i].name().to_owned())
            .collect();
        Ok(Box::new(move || {
            for name in names {
                object.set(&name, fresh.get(&name));
            }
        }) as Box<dyn FnOnce()>)
    };
    let refresh: Refresh<'_> = &refresh;
    query
        .bulk_update(ModelId::Defined(model.id), sets, refresh)
        .await
}

/// `createAll` of one model: `CREATE TABLE IF NOT EXISTS` and its missing indexes, on its
/// bind.
///
/// # Errors
/// The session's errors; [`Error::Config`] for a bind without an engine.
pub(crate) async fn create(model: &DefinedModel, session: &Session) -> Result<()> {
    crate::model::create(&bind_session(&model.meta, session)?, &model.meta).await
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
