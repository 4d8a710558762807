//! Drift: a model whose table, as stored, no longer has the model's shape (a column added to
//! the model but not to the table, a type or nullability changed). Found at start-up
//! (`create_all`, `Migrations::run`) and reported with the migration step to write, instead
//! of a 500 from deep inside the first query that touches the difference.

use super::{sql, ModelMeta};
use crate::{Error, Result, Session};
use gluesql_core::{
    ast::{ColumnDef, ColumnUniqueOption, DataType, Statement},
    parse_sql::parse,
    translate::translate,
};

/// The columns `meta`'s `CREATE TABLE` declares, as GlueSQL stores them.
fn declared(meta: &ModelMeta) -> Result<Vec<ColumnDef>> {
    let text = sql::create_table(meta);
    let parsed = parse(&text).map_err(|e| Error::sql(e.to_string()))?;
    match parsed.first().map(translate) {
        Some(Ok(Statement::CreateTable {
            columns: Some(columns),
            ..
        })) => Ok(columns),
        other => Err(Error::Storage {
            message: format!(
                "model {}: its CREATE TABLE did not translate: {other:?}",
                meta.table()
            ),
        }),
    }
}

fn null_word(nullable: bool) -> &'static str {
    if nullable {
        "NULL"
    } else {
        "NOT NULL"
    }
}

fn unique_word(unique: Option<ColumnUniqueOption>) -> &'static str {
    match unique {
        Some(ColumnUniqueOption { is_primary: true }) => "PRIMARY KEY",
        Some(_) => "UNIQUE",
        None => "not unique",
    }
}

/// A default an `ADD COLUMN ... NOT NULL` can start from, for the suggested step (the user
/// picks the real one: what the existing rows get).
fn placeholder_default(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "FALSE",
        DataType::Text => "''",
        DataType::Float | DataType::Float32 => "0.0",
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int
        | DataType::Int128
        | DataType::Uint8
        | DataType::Uint16
        | DataType::Uint32
        | DataType::Uint64
        | DataType::Uint128 => "0",
        _ => "<value for the existing rows>",
    }
}

/// The column definition an `add_column` step needs for `column` (a NOT NULL column needs a
/// default: the value the rows already stored get).
pub(crate) fn add_column_definition(column: &ColumnDef) -> String {
    let mut text = format!("{} {}", column.name, column.data_type);
    if column.nullable {
        text.push_str(" NULL");
    } else {
        text.push_str(" NOT NULL DEFAULT ");
        text.push_str(placeholder_default(&column.data_type));
    }
    if column.unique.is_some() {
        text.push_str(" UNIQUE");
    }
    text
}

/// What differs between `meta` and the stored table (`stored`), and the migration steps that
/// would make them agree, as Rust builder calls.
pub(crate) fn differences(
    meta: &ModelMeta,
    stored: &[ColumnDef],
) -> Result<(Vec<String>, Vec<String>)> {
    let table = meta.table();
    let (mut problems, mut steps) = (Vec::new(), Vec::new());
    let wanted = declared(meta)?;
    for want in &wanted {
        let Some(have) = stored.iter().find(|c| c.name == want.name) else {
            problems.push(format!(
                "the model has column {} ({} {}) that the table lacks",
                want.name,
                want.data_type,
                null_word(want.nullable)
            ));
            steps.push(format!(
                ".add_column(\"{table}\", \"{}\")",
                add_column_definition(want)
            ));
            continue;
        };
        if have.data_type != want.data_type {
            problems.push(format!(
                "column {} is {} in the table and {} in the model",
                want.name, have.data_type, want.data_type
            ));
            steps.push(format!(
                "(a new column of the new type, a .data(...) step that copies the values, \
                 then .drop_column(\"{table}\", \"{}\") and .rename_column(...))",
                want.name
            ));
        }
        // A NULL-able table column under a NOT NULL model field only fails on a NULL row
        // (clearly, when read); the other way round every INSERT of a NULL fails.
        if !have.nullable && want.nullable {
            problems.push(format!(
                "column {} is {} in the table and {} in the model",
                want.name,
                null_word(have.nullable),
                null_word(want.nullable)
            ));
        }
        // A uniqueness the model relies on must be enforced; a UNIQUE the model does not
        // declare only refuses duplicates (as a UNIQUE error).
        let primary = |u: Option<ColumnUniqueOption>| u.is_some_and(|u| u.is_primary);
        if (want.unique.is_some() && have.unique != want.unique)
            || primary(have.unique) != primary(want.unique)
        {
            problems.push(format!(
                "column {} is {} in the table and {} in the model",
                want.name,
                unique_word(have.unique),
                unique_word(want.unique)
            ));
        }
    }
    for have in stored {
        // A column the model does not know is harmless while the model's INSERTs can leave it
        // out (NULL or a default): the first deploy of a column's removal looks like this.
        let needed = !have.nullable && have.default.is_none();
        if needed && !wanted.iter().any(|c| c.name == have.name) {
            problems.push(format!(
                "the table has column {} ({} NOT NULL, no default) that the model lacks: the \
                 model's INSERTs would fail",
                have.name, have.data_type
            ));
            steps.push(format!(".drop_column(\"{table}\", \"{}\")", have.name));
        }
    }
    Ok((problems, steps))
}

/// Fails with [`Error::Drift`] when `meta`'s table exists in `session` with another shape
/// than the model declares (its indexes are `create_all`'s business: it adds missing ones).
pub(crate) async fn check(session: &Session, meta: &ModelMeta) -> Result<()> {
    let Some(schema) = session.stored_schema(meta.table()).await? else {
        return Ok(());
    };
    let stored = schema.column_defs.unwrap_or_default();
    let (problems, steps) = differences(meta, &stored)?;
    if problems.is_empty() {
        return Ok(());
    }
    let mut message = problems.join("; ");
    message.push_str(
        ". Change the table with a migration step (gluebind::migrate::Migration, or \
         migration() in JavaScript) that runs before create_all",
    );
    if !steps.is_empty() {
        message.push_str(", e.g. Migration::new(\"<next number>_");
        message.push_str(meta.table());
        message.push_str("\")");
        for step in &steps {
            message.push_str(step);
        }
    }
    Err(Error::Drift {
        table: meta.table().to_owned(),
        message,
    })
}
