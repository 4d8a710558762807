//! Narrowing the scan of an `UPDATE` or `DELETE` by primary key or by an index.
//!
//! GlueSQL 0.20 plans a primary-key lookup or an index read for `SELECT` only: `UPDATE` and
//! `DELETE` always scan the whole table and filter it. A whole-table scan costs what the table
//! costs (and on `kv://` loads every row), and a serializable session records it as a read of
//! the whole table, so that any concurrent commit to the table would fail it. When the
//! statement's `WHERE` has a top-level conjunct `pk = value` (or `pk IN (values)`), only those
//! rows can match: the session store then answers the scan with exactly those rows, and
//! records point reads of those keys. Otherwise, when it has a conjunct an index can answer
//! (`email = $1` on a UNIQUE column, `n = 7` or `n > 7` on a `CREATE INDEX` column: see
//! `store/indexed.rs`), the scan reads the rows the index names, in primary-key order, and
//! records a read of the table (as the scan did). GlueSQL still evaluates the whole `WHERE` on
//! them, so the result is the same as the full scan's.
//!
//! Narrowing is refused (the statement scans as before) whenever it could change what
//! GlueSQL sees: a subquery anywhere in the statement (it could scan the same table), an
//! `UPDATE` that assigns the primary key (GlueSQL's key check scans the table), a value whose
//! type is not exactly the key column's, and, at scan time, a foreign key that references the
//! table (GlueSQL's `DELETE` reads referencing rows by scanning).

use crate::{session::store::index_access, snapshot::Database};
use gluesql_core::{
    ast::{BinaryOperator, ColumnDef, ColumnUniqueOption, DataType, IndexOperator, Literal},
    data::{Key, Schema, Value},
    plan::{ExprPlan, StatementPlan},
};
use std::collections::BTreeSet;

/// The rows a statement's scan of `table` may be narrowed to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Narrow {
    pub table: String,
    pub by: By,
}

/// How a scan is narrowed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum By {
    /// To these primary keys.
    Keys(BTreeSet<Key>),
    /// To the rows index `name` holds for `op value`.
    Index {
        name: String,
        op: IndexOperator,
        value: Value,
    },
}

/// The narrowing of `plan`'s scan, if it has one (see the module documentation).
pub(crate) fn narrow(plan: &StatementPlan, db: &Database) -> Option<Narrow> {
    let (table, selection) = match plan {
        StatementPlan::Update {
            table_name,
            selection,
            assignments,
        } => {
            let pk = primary_key(db, table_name);
            if pk.is_some_and(|pk| assignments.iter().any(|a| a.id == pk.name)) {
                return None;
            }
            if assignments
                .iter()
                .any(|a| mentions_subquery(&format!("{:?}", a.value)))
            {
                return None;
            }
            (table_name, selection.as_ref()?)
        }
        StatementPlan::Delete {
            table_name,
            selection,
        } => (table_name, selection.as_ref()?),
        _ => return None,
    };
    if mentions_subquery(&format!("{selection:?}")) {
        return None;
    }
    if let Some(keys) = primary_key(db, table).and_then(|pk| keys_in(selection, pk)) {
        return Some(Narrow {
            table: table.clone(),
            by: By::Keys(keys),
        });
    }
    let (name, op, value) = index_access(&db.tables.get(table)?.schema, selection)?;
    Some(Narrow {
        table: table.clone(),
        by: By::Index { name, op, value },
    })
}

/// Conservative: any plan whose debug text names a subquery (a string literal that happens
/// to spell one only turns narrowing off).
fn mentions_subquery(debug: &str) -> bool {
    debug.contains("Subquery") || debug.contains("Exists")
}

fn primary_key<'a>(db: &'a Database, table: &str) -> Option<&'a ColumnDef> {
    primary_key_column(&db.tables.get(table)?.schema)
}

/// The primary key column of a table's schema (`None` for a schemaless table or none).
pub(crate) fn primary_key_column(schema: &Schema) -> Option<&ColumnDef> {
    schema
        .column_defs
        .as_ref()?
        .iter()
        .find(|c| c.unique == Some(ColumnUniqueOption { is_primary: true }))
}

/// The keys a top-level conjunct `pk = v` / `v = pk` / `pk IN (v, …)` allows; `None` when the
/// `WHERE` has no such conjunct.
fn keys_in(expr: &ExprPlan, pk: &ColumnDef) -> Option<BTreeSet<Key>> {
    match expr {
        ExprPlan::Nested(inner) => keys_in(inner, pk),
        ExprPlan::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => match (keys_in(left, pk), keys_in(right, pk)) {
            (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => None,
        },
        ExprPlan::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (ExprPlan::Identifier(name), value) | (value, ExprPlan::Identifier(name))
                if *name == pk.name =>
            {
                key_of(value, &pk.data_type).map(|k| BTreeSet::from([k]))
            }
            _ => None,
        },
        ExprPlan::InList {
            expr,
            list,
            negated: false,
        } => match expr.as_ref() {
            ExprPlan::Identifier(name) if *name == pk.name => list
                .iter()
                .map(|v| key_of(v, &pk.data_type))
                .collect::<Option<BTreeSet<Key>>>(),
            _ => None,
        },
        _ => None,
    }
}

/// The key a value expression names in a key column of type `data_type`, when the value's
/// type is exactly that (so that GlueSQL's comparison and the key lookup agree).
fn key_of(value: &ExprPlan, data_type: &DataType) -> Option<Key> {
    Key::try_from(value_of(value, data_type)?).ok()
}

/// The value a value expression gives, when it is a constant of exactly type `data_type`
/// (a number literal becomes an integer of that type).
pub(crate) fn value_of(value: &ExprPlan, data_type: &DataType) -> Option<Value> {
    let value = match value {
        ExprPlan::Value(v) => v.clone(),
        ExprPlan::Literal(Literal::QuotedString(s)) if *data_type == DataType::Text => {
            Value::Str(s.clone())
        }
        ExprPlan::Literal(Literal::Number(n)) => {
            crate::model::arg::integer(&n.to_string(), data_type)?
        }
        _ => return None,
    };
    (value.get_type().as_ref() == Some(data_type)).then_some(value)
}
