//! Query descriptions: what the npm package's `Query` builder hands to Rust, checked and
//! turned into the untyped [`Select`] that typed queries wrap.
//!
//! ```text
//! { filters: [condition, …], orders: ["name", "-id", …], limit: n | null, offset: n | null }
//! condition = [column, op, value?]  |  { and: [condition, …] }  |  { or: [condition, …] }
//!           | { not: condition }
//! op        = eq ne lt le gt ge like in isNull isNotNull
//! ```
//!
//! Filters are ANDed. `eq` / `ne` with `null` are `isNull` / `isNotNull`; `in` takes an array
//! (empty: no row); `like` a string pattern on a TEXT column. Values convert to their
//! column's type (see `model::arg`).

use super::{arg, column, quoted, select, DefinedModel, DynValue};
use crate::{
    model::{
        column::{Col, Expr, Op, OrderBy},
        paginate::{PageArg, PageRequest, DEFAULT_PER_PAGE},
        select::Select,
        ModelMeta,
    },
    Error, Result, Session,
};

/// The operators of `filter(column, op, value)`.
pub(crate) const OPERATORS: [&str; 10] = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "like",
    "in",
    "isNull",
    "isNotNull",
];

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `n` when it is a safe integer (as JavaScript's `Number.isSafeInteger`).
fn safe_integer(n: f64) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)] // integral and within ±2^53
    (n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER).then_some(n as i64)
}

/// A condition of a description (see the module docs); `method` names the builder in
/// messages (`filter`, `filterBy`).
///
/// # Errors
/// [`Error::Sql`] saying what is wrong with it (before any SQL runs).
pub(crate) fn condition<V: DynValue>(meta: &ModelMeta, cond: &V, method: &str) -> Result<Expr> {
    if let Some(parts) = cond.as_array() {
        if let [name, op, rest @ ..] = &parts[..] {
            if rest.len() <= 1 {
                let value = rest.first().cloned().unwrap_or_else(V::undefined);
                return leaf(meta, name, op, &value, method);
            }
        }
    }
    if let Some(entries) = cond.entries() {
        if let [(key, inner)] = &entries[..] {
            let all = |and: bool| -> Result<Expr> {
                let items = inner.as_array().ok_or_else(|| shape(meta, method))?;
                let exprs = items
                    .iter()
                    .map(|c| condition(meta, c, method))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if and {
                    Expr::And(exprs)
                } else {
                    Expr::Or(exprs)
                })
            };
            match key.as_str() {
                "and" => return all(true),
                "or" => return all(false),
                "not" => return Ok(Expr::Not(Box::new(condition(meta, inner, method)?))),
                _ => {}
            }
        }
    }
    Err(shape(meta, method))
}

fn shape(meta: &ModelMeta, method: &str) -> Error {
    Error::sql(format!(
        "{}.{method}: a condition is [column, op, value], or {{ and: [...] }}, {{ or: [...] }}, \
         {{ not: condition }} (from a column's methods: Model.c.name.eq(value))",
        meta.table()
    ))
}

/// `[column, op, value]`.
fn leaf<V: DynValue>(meta: &ModelMeta, name: &V, op: &V, value: &V, method: &str) -> Result<Expr> {
    let table = meta.table();
    let Some(name) = name.as_str() else {
        return Err(Error::sql(format!(
            "{table}.{method}: {table} has no column {}; its columns are {}",
            name.shown(),
            meta.columns()
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let (index, spec) = column(meta, &name, &format!("{table}.{method}"))?;
    let place = format!("{table}.{method}({})", quoted(&name));
    let op_text = op.as_str().filter(|o| OPERATORS.contains(&o.as_str()));
    let Some(mut op) = op_text else {
        return Err(Error::sql(format!(
            "{place}: unknown operator {}; operators are {}",
            op.shown(),
            OPERATORS.join(", ")
        )));
    };
    let mut value = value.clone();
    if value.is_null() && (op == "eq" || op == "ne") {
        op = if op == "eq" { "isNull" } else { "isNotNull" }.to_owned();
        value = V::undefined();
    }
    let col = Col {
        name: spec.name_cow(),
        nullable: spec.is_nullable(),
    };
    if op == "isNull" || op == "isNotNull" {
        if !value.is_undefined() {
            return Err(Error::sql(format!("{place}: {op} takes no value")));
        }
        if !spec.is_nullable() {
            let never = if op == "isNull" { "never" } else { "always" };
            return Err(Error::sql(format!(
                "{place}: {name} is NOT NULL, so {op} is {never} true"
            )));
        }
        return Ok(Expr::IsNull(col.name, op == "isNull"));
    }
    let missing = |v: &V| -> Result<()> {
        if v.is_undefined() {
            return Err(Error::sql(format!(
                "{place}: the value is undefined (a missing variable?); use isNull to match NULL"
            )));
        }
        if v.is_null() {
            return Err(Error::sql(format!(
                "{place}: the value is null; use isNull to match NULL"
            )));
        }
        Ok(())
    };
    if op == "in" {
        let Some(values) = value.as_array() else {
            return Err(Error::sql(format!(
                "{place}: in takes an array of values, got {}",
                value.described()
            )));
        };
        values.iter().try_for_each(&missing)?;
        let args = values
            .iter()
            .map(|v| arg(meta, index, v, &place))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Expr::In(col, args));
    }
    missing(&value)?;
    if op == "like" && (spec.sql_type() != "TEXT" || value.as_str().is_none()) {
        return Err(Error::sql(format!(
            "{place}: like needs a TEXT column and a string pattern"
        )));
    }
    let op = match op.as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "lt" => Op::Lt,
        "le" => Op::Le,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        _ => Op::Like,
    };
    Ok(Expr::Compare(col, op, arg(meta, index, &value, &place)?))
}

/// `filterBy({ column: value, … })`: equality (`null`: IS NULL) per property, ANDed.
///
/// # Errors
/// As [`condition`].
pub(crate) fn filter_by<V: DynValue>(meta: &ModelMeta, values: &V) -> Result<Vec<Expr>> {
    let place = format!("{}.filterBy", meta.table());
    let entries = super::check_columns(meta, values, &place)?;
    entries
        .iter()
        .map(|(name, value)| leaf(meta, &V::text(name), &V::text("eq"), value, "filterBy"))
        .collect()
}

/// `orderBy("name", "-id")`: a column, `-` for descending.
///
/// # Errors
/// [`Error::Sql`] for a name that is not a column.
pub(crate) fn order<V: DynValue>(meta: &ModelMeta, order: &V) -> Result<OrderBy> {
    let place = format!("{}.orderBy", meta.table());
    let Some(text) = order.as_str() else {
        return Err(Error::sql(format!(
            "{place}: {} has no column {}; orders are column names, \"-name\" for descending",
            meta.table(),
            order.shown()
        )));
    };
    let (name, descending) = match text.strip_prefix('-') {
        Some(name) => (name, true),
        None => (text.as_str(), false),
    };
    let (_, spec) = column(meta, name, &place)?;
    Ok(OrderBy {
        column: spec.name_cow(),
        descending,
    })
}

/// `limit(n)` / `offset(n)`: an integer ≥ 0.
///
/// # Errors
/// [`Error::Sql`] for anything else.
pub(crate) fn count<V: DynValue>(n: &V, what: &str) -> Result<u64> {
    n.as_f64()
        .and_then(safe_integer)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Error::sql(format!("{what}(n) needs an integer ≥ 0, got {}", n.shown())))
}

/// The query a description describes, in `session`.
///
/// # Errors
/// As [`condition`], [`order`], [`count`]; [`Error::Config`] for a session of another bind.
pub(crate) fn describe<V: DynValue>(
    model: &DefinedModel,
    session: &Session,
    desc: &V,
) -> Result<Select> {
    let meta = &model.meta;
    let mut query = select(model, session)?;
    if let Some(filters) = desc.get("filters").as_array() {
        for f in &filters {
            query.filters.push(condition(meta, f, "filter")?);
        }
    }
    if let Some(orders) = desc.get("orders").as_array() {
        for o in &orders {
            query.orders.push(order(meta, o)?);
        }
    }
    for (what, slot) in [("limit", &mut query.limit), ("offset", &mut query.offset)] {
        let n = desc.get(what);
        if !(n.is_undefined() || n.is_null()) {
            *slot = Some(count(&n, what)?);
        }
    }
    Ok(query)
}

/// A page argument: absent, an integer (a number, or the text of a request argument), or
/// not an integer.
///
/// # Errors
/// [`Error::Config`] for a value that is neither a number nor a string.
pub(crate) fn page_arg<V: DynValue>(value: &V) -> Result<PageArg> {
    if value.is_undefined() || value.is_null() {
        return Ok(PageArg::Missing);
    }
    if let Some(n) = value.as_f64() {
        return Ok(safe_integer(n).map_or_else(|| PageArg::Bad(value.shown()), PageArg::Number));
    }
    if let Some(text) = value.as_str() {
        return Ok(PageArg::parse(Some(&text)));
    }
    Err(Error::config(format!(
        "paginate: page and perPage must be integers or strings, got {}",
        value.described()
    )))
}

/// `paginate({ page, perPage, maxPerPage, defaultPerPage, errorOut, count })` (`args`: the page
/// arguments are in the options) or `paginateArgs(args, options)` (`args` given: the
/// request's `page` and `per_page`).
///
/// # Errors
/// [`Error::Config`] for an unknown or bad option.
pub(crate) fn page_request<V: DynValue>(
    options: &V,
    args: Option<(&V, &V)>,
    place: &str,
) -> Result<PageRequest> {
    let entries = if options.is_undefined() {
        Vec::new()
    } else {
        options
            .entries()
            .ok_or_else(|| Error::config(format!("{place}: options must be an object")))?
    };
    let keys: &[&str] = if args.is_some() {
        &["maxPerPage", "defaultPerPage", "errorOut", "count"]
    } else {
        &[
            "page",
            "perPage",
            "maxPerPage",
            "defaultPerPage",
            "errorOut",
            "count",
        ]
    };
    for (key, _) in &entries {
        if !keys.contains(&key.as_str()) {
            return Err(Error::config(format!(
                "{place}: unknown option {}; options are {}",
                quoted(key),
                keys.join(", ")
            )));
        }
    }
    let option = |key: &str| options.get(key);
    let max = option("maxPerPage");
    let max_per_page = if max.is_undefined() || max.is_null() {
        None
    } else {
        let n = max
            .as_f64()
            .and_then(safe_integer)
            .and_then(|n| u64::try_from(n).ok());
        Some(n.ok_or_else(|| Error::config(format!("{place}: maxPerPage must be an integer ≥ 0")))?)
    };
    let default = option("defaultPerPage");
    let default_per_page = if default.is_undefined() {
        DEFAULT_PER_PAGE
    } else {
        default
            .as_f64()
            .and_then(safe_integer)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                Error::config(format!("{place}: defaultPerPage must be an integer ≥ 1"))
            })?
    };
    // A flag that is true unless given.
    let flag = |key: &str| -> Result<bool> {
        let value = option(key);
        if value.is_undefined() {
            return Ok(true);
        }
        value
            .as_bool()
            .ok_or_else(|| Error::config(format!("{place}: {key} must be true or false")))
    };
    let error_out = flag("errorOut")?;
    let count = flag("count")?;
    let (page, per_page) = match args {
        Some((page, per_page)) => (page_arg(page)?, page_arg(per_page)?),
        None => (page_arg(&option("page"))?, page_arg(&option("perPage"))?),
    };
    let mut request = PageRequest::new(page, per_page);
    request.default_per_page = default_per_page;
    request.max_per_page = max_per_page;
    request.error_out = error_out;
    request.count = count;
    Ok(request)
}
