//! `defineModel(table, columns, { bindKey })`: a column spec checked and turned into a
//! [`ModelMeta`], with the rules of `#[derive(Model)]` (identifiers, one primary key, known
//! types) and GlueSQL's (no FLOAT key or unique column).

use super::{quoted, DynValue};
use crate::{
    model::{
        meta::{indexable_type, indexable_types, sql_type, valid_ident, SQL_TYPES},
        ColumnMeta, ModelMeta,
    },
    Error, Result,
};

/// The keys of a column spec.
const SPEC_KEYS: [&str; 6] = [
    "type",
    "primaryKey",
    "unique",
    "index",
    "nullable",
    "bigint",
];

/// The column types whose values can pass `Number.MAX_SAFE_INTEGER`: read as `number` unless
/// the spec says `bigint: true`.
pub(crate) const WIDE_INTEGERS: [&str; 4] = ["INTEGER", "INT128", "UINT64", "UINT128"];

/// True for the column types read as a JavaScript number (or bigint): the integers and FLOAT.
pub(crate) fn is_numeric(sql_type: &str) -> bool {
    matches!(
        sql_type,
        "INTEGER"
            | "INT8"
            | "INT16"
            | "INT32"
            | "INT128"
            | "UINT8"
            | "UINT16"
            | "UINT32"
            | "UINT64"
            | "UINT128"
            | "FLOAT"
    )
}

/// `name` (`shown` in messages) when it is an identifier gluebind writes into SQL.
fn check_ident(name: Option<String>, shown: &dyn Fn() -> String, what: &str) -> Result<String> {
    match name {
        // "__proto__" is an identifier, but would set a row object's prototype, not a field.
        Some(text) if valid_ident(&text) && text != "__proto__" => Ok(text),
        _ => Err(Error::config(format!(
            "{what} {} is not valid: names must match [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes), \
             because they are written into SQL",
            shown()
        ))),
    }
}

/// `{ type, primaryKey?, unique?, index?, nullable?, bigint? }` → (column, primary key).
fn column<V: DynValue>(name: String, spec: &V, place: &str) -> Result<(ColumnMeta, bool)> {
    let Some(entries) = spec.entries() else {
        return Err(Error::config(format!(
            "{place}: expected {{ type, … }}, got {}",
            spec.described()
        )));
    };
    for (key, _) in &entries {
        if !SPEC_KEYS.contains(&key.as_str()) {
            return Err(Error::config(format!(
                "{place}: unknown key {}; keys are {}",
                quoted(key),
                SPEC_KEYS.join(", ")
            )));
        }
    }
    let ty = spec.get("type");
    let Some(ty) = ty.as_str().and_then(|t| sql_type(&t)) else {
        return Err(Error::config(format!(
            "{place}: type {} is not one of {}",
            ty.shown(),
            SQL_TYPES.join(", ")
        )));
    };
    let flag = |key: &str| -> Result<bool> {
        let value = spec.get(key);
        if value.is_undefined() {
            return Ok(false);
        }
        value
            .as_bool()
            .ok_or_else(|| Error::config(format!("{place}: {key} must be true or false")))
    };
    let (primary_key, unique, nullable) = (flag("primaryKey")?, flag("unique")?, flag("nullable")?);
    let (bigint, index) = (flag("bigint")?, flag("index")?);
    if index && primary_key {
        return Err(Error::config(format!(
            "{place}: the primary key is already read in key order and by key: drop index: true"
        )));
    }
    if index && !indexable_type(ty) {
        return Err(Error::config(format!(
            "{place}: index: true is for {} columns, not {ty} (its order as keys differs from \
             SQL's)",
            indexable_types().join(", ")
        )));
    }
    if bigint && !WIDE_INTEGERS.contains(&ty) {
        return Err(Error::config(format!(
            "{place}: bigint: true is for the integer types that can pass \
             Number.MAX_SAFE_INTEGER ({}), not {ty}",
            WIDE_INTEGERS.join(", ")
        )));
    }
    // GlueSQL's own rule, caught here rather than at createAll.
    if ty == "FLOAT" && (primary_key || unique) {
        return Err(Error::config(format!(
            "{place}: GlueSQL 0.20 does not support a FLOAT primary key or unique column"
        )));
    }
    let meta = ColumnMeta::owned(name, ty, nullable, unique)
        .with_bigint(bigint)
        .with_index(index);
    Ok((meta, primary_key))
}

/// Checks a model definition and builds its metadata.
///
/// # Errors
/// [`Error::Config`] for a bad name, type, flag, primary key or option, saying which.
pub(crate) fn define<V: DynValue>(table: &V, columns: &V, options: &V) -> Result<ModelMeta> {
    let table = check_ident(table.as_str(), &|| table.shown(), "defineModel: table name")?;
    let place = format!("defineModel({})", quoted(&table));
    let entries = columns.entries().filter(|e| !e.is_empty()).ok_or_else(|| {
        Error::config(format!(
            "{place}: columns must be an object of column name → {{ type, … }} with at least \
             one column"
        ))
    })?;
    let mut metas = Vec::with_capacity(entries.len());
    let mut keys = Vec::new();
    for (name, spec) in &entries {
        let name = check_ident(
            Some(name.clone()),
            &|| quoted(name),
            &format!("{place}: column name"),
        )?;
        let (meta, primary_key) = column(name.clone(), spec, &format!("{place}, column {name}"))?;
        if primary_key {
            keys.push(metas.len());
        }
        metas.push(meta);
    }
    let [key] = keys[..] else {
        let found: Vec<&str> = keys.iter().map(|&i| metas[i].name()).collect();
        let found = if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        };
        return Err(Error::config(format!(
            "{place}: exactly one column needs primaryKey: true (found {found})"
        )));
    };
    if metas[key].is_nullable() {
        return Err(Error::config(format!(
            "{place}: the primary key {} cannot be nullable",
            metas[key].name()
        )));
    }
    let bind_key = bind_key(options, &place)?;
    Ok(ModelMeta::owned(table, metas, key, bind_key))
}

/// `{ bindKey }`: the model's bind (`undefined` or `null`: the default one).
fn bind_key<V: DynValue>(options: &V, place: &str) -> Result<Option<String>> {
    if options.is_undefined() {
        return Ok(None);
    }
    let Some(entries) = options.entries() else {
        return Err(Error::config(format!("{place}: options must be an object")));
    };
    for (key, _) in &entries {
        if key != "bindKey" {
            return Err(Error::config(format!(
                "{place}: unknown option {}; the only option is bindKey",
                quoted(key)
            )));
        }
    }
    let key = options.get("bindKey");
    if key.is_undefined() || key.is_null() {
        return Ok(None);
    }
    match key.as_str() {
        Some(text) if !text.is_empty() => Ok(Some(text)),
        _ => Err(Error::config(format!(
            "{place}: bindKey must be a non-empty string (or null for the default bind)"
        ))),
    }
}
