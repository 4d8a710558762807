//! Models defined at run time: the npm package's `defineModel`, its query builder and row
//! verbs, and its unit of work, over the same core as `#[derive(Model)]`.
//!
//! JavaScript hands Rust plain descriptions — a column spec, a query description, a row — and
//! everything else happens here: the spec is checked ([`spec`]), a description becomes the
//! untyped [`Select`] that typed queries wrap ([`query`]), values are converted to their
//! columns' types ([`crate::model::arg`]), SQL is rendered by `model::sql` only, pagination
//! follows `model::paginate`, and tracked objects join the session's unit of work (`model::unit`).
//!
//! The descriptions are read through [`DynValue`], implemented for JavaScript values by the
//! wasm glue (`src/wasm/js/model.rs`) and for JSON by the shared fixture tests
//! (`tests/fixtures/models/*.json`, run here and by the npm package's tests), so both
//! languages run one implementation. The messages name the JavaScript API (`users.filter`,
//! `defineModel("users")`): only the npm package reaches this module.

pub(crate) mod query;
pub(crate) mod spec;
pub(crate) mod write;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod fixtures;

use super::{arg::Arg, meta::MetaRef, select::Select, unit, ModelMeta};
use crate::{DynParam, Error, Result, Rows, Session};
use std::{
    any::Any,
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

/// A dynamically typed value as the model layer reads it: JavaScript values (the wasm glue)
/// or JSON (the fixture tests).
pub(crate) trait DynValue: Clone + 'static {
    /// `undefined` (JSON: an absent value).
    fn undefined() -> Self;
    /// A string value.
    fn text(text: &str) -> Self;
    /// JavaScript's `undefined` (an absent value or property).
    fn is_undefined(&self) -> bool;
    /// `null`.
    fn is_null(&self) -> bool;
    /// The string, if the value is one.
    fn as_str(&self) -> Option<String>;
    /// The boolean, if the value is one.
    fn as_bool(&self) -> Option<bool>;
    /// The number, if the value is one (not a bigint).
    fn as_f64(&self) -> Option<f64>;
    /// The elements, if the value is an array.
    fn as_array(&self) -> Option<Vec<Self>>;
    /// The own enumerable properties in order, if the value is an object that is not an
    /// array.
    fn entries(&self) -> Option<Vec<(String, Self)>>;
    /// Property `key` (`undefined` when absent).
    fn get(&self, key: &str) -> Self;
    /// Sets property `key` (of an object; nothing for other values), as application code
    /// would: how a bulk update refreshes a tracked object.
    fn set(&self, key: &str, value: Self);
    /// What the value is, for messages: `null`, `an array`, or its `typeof`.
    fn described(&self) -> String;
    /// The value for messages, as `JSON.stringify` shows it (a bigint as its digits).
    fn shown(&self) -> String;
    /// The value as a parameter (the package's value mapping), or why it cannot be one
    /// (the end of a sentence: "is of type object; bind …").
    fn to_param(&self) -> std::result::Result<DynParam, String>;
}

/// A model defined at run time: its metadata and an identity of its own (two models of one
/// table on two binds are two models, as two Rust types would be).
#[derive(Debug)]
pub(crate) struct DefinedModel {
    pub(crate) id: u64,
    pub(crate) meta: Rc<ModelMeta>,
}

impl DefinedModel {
    pub(crate) fn new(meta: ModelMeta) -> Self {
        // Identities only: any unique number will do (not session state).
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            meta: Rc::new(meta),
        }
    }

    pub(crate) fn meta_ref(&self) -> MetaRef {
        MetaRef::Shared(Rc::clone(&self.meta))
    }

    pub(crate) fn table(&self) -> &str {
        self.meta.table()
    }

    /// The identity map's key of the row with primary key `key`.
    fn identity(&self, key: &Arg) -> unit::Identity {
        (unit::ModelId::Defined(self.id), key.text())
    }
}

/// `value` quoted for a message, as JavaScript's `JSON.stringify` would.
pub(crate) fn quoted(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// The session `model`'s statements run in: its bind's (Flask-SQLAlchemy's binds), opened
/// from `session`, or `session` itself when it is that bind's session.
///
/// # Errors
/// [`Error::Config`] for the session of another bind, or a bind key without an engine.
pub(crate) fn bind_session(meta: &ModelMeta, session: &Session) -> Result<Session> {
    if let Some(own) = session.bind_key() {
        if Some(own) != meta.bind_key() {
            let on = meta.bind_key().map_or_else(
                || "the default bind".to_owned(),
                |k| format!("bind {}", quoted(k)),
            );
            return Err(Error::config(format!(
                "{} is on {on}, but this is the session of bind {}: pass the session that \
                 opened it (db.session())",
                meta.table(),
                quoted(own)
            )));
        }
        return Ok(session.clone());
    }
    session.for_bind(meta.bind_key())
}

/// A new query over `model`'s table in `session` (checked for the model's bind now).
///
/// # Errors
/// As [`bind_session`].
pub(crate) fn select(model: &DefinedModel, session: &Session) -> Result<Select> {
    bind_session(&model.meta, session)?;
    Ok(Select::new(session.clone(), model.meta_ref()))
}

/// `value` as a parameter for column `index` of `meta`, converted to the column's type.
fn arg<V: DynValue>(meta: &ModelMeta, index: usize, value: &V, place: &str) -> Result<Arg> {
    let column = &meta.columns()[index];
    let param = value
        .to_param()
        .map_err(|why| Error::sql(format!("{place}: the value of {} {why}", column.name())))?;
    Ok(super::arg::coerce(param, column))
}

/// The value of a change to column `index` of `meta` (`Model.update`, and a bulk update):
/// `null` is NULL, anything else converts to the column's type as a row's values do.
/// `numbers`: see [`written`].
///
/// # Errors
/// [`Error::Sql`] for a value that is no parameter, or that the column cannot hold.
pub(crate) fn change<V: DynValue>(
    meta: &ModelMeta,
    index: usize,
    value: &V,
    place: &str,
    numbers: bool,
) -> Result<Arg> {
    if value.is_null() {
        return Ok(Arg::null());
    }
    written(meta, index, arg(meta, index, value, place)?, place, numbers)
}

/// The largest integer a JavaScript `number` holds exactly (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: i128 = (1 << 53) - 1;

/// True for an integer a JavaScript `number` holds exactly.
pub(crate) fn is_safe_integer(v: i128) -> bool {
    (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v)
}

/// The digits of `value` when it is an integer beyond `Number.MAX_SAFE_INTEGER` (2^53 - 1),
/// which a JavaScript `number` cannot hold exactly.
pub(crate) fn beyond_safe_integer(value: &crate::Value) -> Option<String> {
    use crate::Value;
    let v = match value {
        Value::I64(v) => i128::from(*v),
        Value::U64(v) => i128::from(*v),
        Value::I128(v) => *v,
        Value::U128(v) => match i128::try_from(*v) {
            Ok(v) => v,
            Err(_) => return Some(v.to_string()),
        },
        _ => return None,
    };
    (!is_safe_integer(v)).then(|| v.to_string())
}

/// `arg`, a value to write into column `index`. With `numbers` (the npm package's default
/// `int64: "auto"`), a 64- or 128-bit integer column without `bigint: true` reads as a
/// JavaScript `number`, so it holds safe integers only — a larger value would be stored and
/// then be unreadable by every model verb. (Under `int64: "bigint"` or `"string"` such a
/// column reads as a bigint or a string, and any value is written.)
fn written(meta: &ModelMeta, index: usize, arg: Arg, place: &str, numbers: bool) -> Result<Arg> {
    let column = &meta.columns()[index];
    if !numbers || column.is_bigint() || !spec::WIDE_INTEGERS.contains(&column.sql_type()) {
        return Ok(arg);
    }
    match arg.value().as_ref().and_then(beyond_safe_integer) {
        Some(digits) => Err(Error::sql(format!(
            "{place}: {digits} for {} is beyond Number.MAX_SAFE_INTEGER, and the column reads \
             as a number; declare it with bigint: true in defineModel to hold larger integers",
            column.name()
        ))),
        None => Ok(arg),
    }
}

/// The primary key `key` as a parameter.
///
/// # Errors
/// [`Error::Sql`] for `undefined`, `null` or a value that is no parameter.
pub(crate) fn key<V: DynValue>(meta: &ModelMeta, key: &V, place: &str) -> Result<Arg> {
    if key.is_undefined() || key.is_null() {
        let what = if key.is_null() { "null" } else { "undefined" };
        return Err(Error::sql(format!(
            "{place}: the primary key {} is {what}",
            meta.primary_key().name()
        )));
    }
    arg(meta, meta.primary_key_index(), key, place)
}

/// Refuses `values` unless it is an object whose properties are all columns of `meta` (a
/// typo, or client input).
///
/// # Errors
/// [`Error::Sql`] naming the columns there are.
pub(crate) fn check_columns<V: DynValue>(
    meta: &ModelMeta,
    values: &V,
    place: &str,
) -> Result<Vec<(String, V)>> {
    let Some(entries) = values.entries() else {
        return Err(Error::sql(format!(
            "{place}: expected an object of column name → value, got {}",
            values.described()
        )));
    };
    for (name, _) in &entries {
        column(meta, name, place)?;
    }
    Ok(entries)
}

/// The column `name` of `meta` with its index, or [`Error::Sql`] naming the columns.
pub(crate) fn column<'m>(
    meta: &'m ModelMeta,
    name: &str,
    place: &str,
) -> Result<(usize, &'m super::ColumnMeta)> {
    meta.column(name).ok_or_else(|| {
        let columns: Vec<&str> = meta.columns().iter().map(|c| c.name()).collect();
        Error::sql(format!(
            "{place}: {} has no column {}; its columns are {}",
            meta.table(),
            quoted(name),
            columns.join(", ")
        ))
    })
}

/// The values of a row object in column order: a missing (`undefined`) or `null` value is
/// NULL for a nullable column and an error for a NOT NULL one.
///
/// # Errors
/// [`Error::Sql`] for a missing NOT NULL value (with a hint for the primary key), or a value
/// that is no parameter, or that the column cannot hold (`numbers`: see [`written`]).
pub(crate) fn row_args<V: DynValue>(
    meta: &ModelMeta,
    row: &V,
    place: &str,
    numbers: bool,
) -> Result<Vec<Arg>> {
    meta.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = row.get(column.name());
            if value.is_undefined() || value.is_null() {
                if column.is_nullable() {
                    return Ok(Arg::null());
                }
                let hint = if i == meta.primary_key_index() {
                    format!(
                        " (an integer key from the ID sequence: {}: {}.nextId(session))",
                        column.name(),
                        meta.table()
                    )
                } else {
                    String::new()
                };
                return Err(Error::sql(format!(
                    "{place}: missing a value for {}, which is NOT NULL{hint}",
                    column.name()
                )));
            }
            written(meta, i, arg(meta, i, &value, place)?, place, numbers)
        })
        .collect()
}

/// An object of a model defined at run time, tracked by a session's unit of work: the
/// JavaScript object itself (changed by the application, read at every flush).
pub(crate) struct DynObject<V> {
    pub(crate) object: V,
    model: MetaRef,
    /// Integer columns without `bigint: true` hold safe integers (see [`written`]).
    numbers: bool,
}

impl<V: DynValue> unit::Object for DynObject<V> {
    fn meta(&self) -> MetaRef {
        self.model.clone()
    }

    fn params(&self) -> Result<Vec<Arg>> {
        row_args(
            &self.model,
            &self.object,
            &format!("flush of {}", self.model.table()),
            self.numbers,
        )
    }
}

/// `session.add(Model, object)`: tracks `object` as new (inserted at the next flush) and
/// returns it.
///
/// # Errors
/// [`Error::Sql`] for an object with a field that is no column, or without a primary key;
/// [`Error::Unique`] when the session tracks an object with this key already.
pub(crate) fn add<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    object: V,
    numbers: bool,
) -> Result<V> {
    let meta = &model.meta;
    let place = format!("session.add({})", meta.table());
    check_columns(meta, &object, &place)?;
    let key_value = object.get(meta.primary_key().name());
    if key_value.is_undefined() || key_value.is_null() {
        // The same message as at a flush, with its hint.
        row_args(meta, &object, &place, numbers)?;
    }
    let key = key(meta, &key_value, &place)?;
    let tracked = Rc::new(DynObject {
        object: object.clone(),
        model: model.meta_ref(),
        numbers,
    });
    session.add_object(model.identity(&key), key, tracked.clone(), tracked)?;
    Ok(object)
}

/// `session.delete(Model, object)`: the row with the object's primary key is deleted at the
/// next flush.
///
/// # Errors
/// [`Error::Sql`] for an object without a primary key.
pub(crate) fn delete<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    object: &V,
) -> Result<()> {
    let meta = &model.meta;
    let place = format!("session.delete({})", meta.table());
    if object.entries().is_none() {
        return Err(Error::sql(format!(
            "{place}: expected the object to delete (a row of {}), got {}",
            meta.table(),
            object.described()
        )));
    }
    let key = key(meta, &object.get(meta.primary_key().name()), &place)?;
    session.delete_object(model.identity(&key), model.meta_ref(), key)
}

/// The object a tracked entry holds.
fn object_of<V: DynValue>(any: &Rc<dyn Any>) -> Option<V> {
    Rc::clone(any)
        .downcast::<DynObject<V>>()
        .ok()
        .map(|tracked| tracked.object.clone())
}

/// `session.get(Model, key)`: the object with primary key `key` from the identity map, else
/// loaded and tracked (`to_object` makes the application's object of the row); `None` when
/// no row has the key or it was deleted in this session.
///
/// # Errors
/// The session's errors; as [`key`].
pub(crate) async fn get<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    key_value: &V,
    to_object: impl FnOnce(&Rows) -> Result<V>,
    numbers: bool,
) -> Result<Option<V>> {
    let meta = &model.meta;
    let key = key(meta, key_value, &format!("session.get({})", meta.table()))?;
    let root = session.unit_owner()?;
    let id = model.identity(&key);
    if let Some(found) = root.tracked_object(&id)? {
        return Ok(found.as_ref().and_then(object_of));
    }
    let rows = select(model, &root)?.get(key.clone()).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let object = to_object(&rows)?;
    let model_ref = model.meta_ref();
    let any = root.track_loaded_object(id, key, move || {
        let tracked = Rc::new(DynObject {
            object,
            model: model_ref,
            numbers,
        });
        (tracked.clone(), tracked)
    })?;
    Ok(any.as_ref().and_then(object_of))
}
