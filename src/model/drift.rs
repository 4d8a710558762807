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
pub(crate) fn declared(meta: &ModelMeta) -> Result<Vec<ColumnDef>> {
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

/// `name` as a column definition starts with it: quoted when it is an SQL keyword.
fn column_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if gluesql_core::sqlparser::keywords::ALL_KEYWORDS.contains(&upper.as_str()) {
        format!("\\\"{name}\\\"")
    } else {
        name.to_owned()
    }
}

/// The column definition an `add_column` step needs for `column` (a NOT NULL column needs a
/// default: the value the rows already stored get; a UNIQUE one is added NULL-able, as no one
/// default can be unique across the stored rows).
pub(crate) fn add_column_definition(column: &ColumnDef) -> String {
    let mut text = format!("{} {}", column_name(&column.name), column.data_type);
    if column.nullable || column.unique.is_some() {
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

/// A migration step the drift message suggests: the builder call, in Rust and JavaScript.
pub(crate) struct Step {
    pub rust: String,
    pub js: String,
}

/// One difference between a model and its table, and the step that resolves it (none for
/// what a builder call alone cannot change).
pub(crate) struct Difference {
    pub problem: String,
    pub step: Option<Step>,
}

/// What GlueSQL cannot change in place, and the way round it.
const RECREATE: &str = "GlueSQL cannot change a column's type or constraints in place: create \
                        the table anew, a step each (on kv:// a large table's drop must commit \
                        before its name is used again): .sql(\"CREATE TABLE new_t …\") with a \
                        .data(…) that copies the rows, then .drop_table(old), then \
                        .rename_table(new_t, old)";

/// What differs between `meta` and the stored table (`stored`), each with the migration step
/// that resolves it where one does.
pub(crate) fn differences(meta: &ModelMeta, stored: &[ColumnDef]) -> Result<Vec<Difference>> {
    let table = meta.table();
    let mut found = Vec::new();
    let mut problem = |problem: String| {
        found.push(Difference {
            problem,
            step: None,
        });
    };
    let wanted = declared(meta)?;
    let mut stepped = Vec::new();
    for want in &wanted {
        let Some(have) = stored.iter().find(|c| c.name == want.name) else {
            let definition = add_column_definition(want);
            stepped.push(Difference {
                problem: format!(
                    "the model has column {} ({} {}) that the table lacks",
                    want.name,
                    want.data_type,
                    null_word(want.nullable)
                ),
                step: Some(Step {
                    rust: format!(".add_column(\"{table}\", \"{definition}\")"),
                    js: format!(".addColumn(\"{table}\", \"{definition}\")"),
                }),
            });
            continue;
        };
        if have.data_type != want.data_type {
            problem(format!(
                "column {} is {} in the table and {} in the model (add a column of the new \
                 type, copy the values in a .data(…) step, drop the old column and rename the \
                 new one)",
                want.name, have.data_type, want.data_type
            ));
        }
        // A NULL-able table column under a NOT NULL model field only fails on a NULL row
        // (clearly, when read); the other way round every INSERT of a NULL fails.
        if !have.nullable && want.nullable {
            problem(format!(
                "column {} is {} in the table and {} in the model ({RECREATE})",
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
            problem(format!(
                "column {} is {} in the table and {} in the model ({RECREATE})",
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
            stepped.push(Difference {
                problem: format!(
                    "the table has column {} ({} NOT NULL, no default) that the model lacks: \
                     the model's INSERTs would fail",
                    have.name, have.data_type
                ),
                step: Some(Step {
                    rust: format!(".drop_column(\"{table}\", \"{}\")", have.name),
                    js: format!(".dropColumn(\"{table}\", \"{}\")", have.name),
                }),
            });
        }
    }
    found.extend(stepped);
    Ok(found)
}

/// Fails with [`Error::Drift`] when `meta`'s table exists in `session` with another shape
/// than the model declares (its indexes are `create_all`'s business: it adds missing ones).
pub(crate) async fn check(session: &Session, meta: &ModelMeta) -> Result<()> {
    let Some(schema) = session.stored_schema(meta.table()).await? else {
        return Ok(());
    };
    let stored = schema.column_defs.unwrap_or_default();
    let found = differences(meta, &stored)?;
    if found.is_empty() {
        return Ok(());
    }
    let problems: Vec<&str> = found.iter().map(|d| d.problem.as_str()).collect();
    let steps: Vec<&Step> = found.iter().filter_map(|d| d.step.as_ref()).collect();
    let mut message = problems.join("; ");
    message.push_str(
        ". Change the table with a migration step that runs before create_all (see \
         docs/migrations.md)",
    );
    if !steps.is_empty() {
        let name = format!("\"<next number>_{}\"", meta.table());
        let rust: String = steps.iter().map(|s| s.rust.as_str()).collect();
        let js: String = steps.iter().map(|s| s.js.as_str()).collect();
        message.push_str(&format!(
            ", e.g. Migration::new({name}){rust} (JavaScript: migration({name}){js})"
        ));
    }
    Err(Error::Drift {
        table: meta.table().to_owned(),
        message,
    })
}
