//! Statement results: rows with column names, typed access, JSON.

use crate::{
    error::{Error, Result},
    value::{to_json, FromValue},
};
use gluesql_core::prelude::{Payload, Value};

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QueryResult {
    /// A `SELECT` (or `SHOW COLUMNS`): the rows it produced.
    Rows(Rows),
    /// `INSERT`: rows inserted.
    Inserted(usize),
    /// `UPDATE`: rows updated.
    Updated(usize),
    /// `DELETE`: rows deleted.
    Deleted(usize),
    /// Schema statements (`CREATE`, `DROP`, `ALTER`, ...): done.
    Schema,
}

impl QueryResult {
    pub(crate) fn from_payload(payload: Payload) -> Self {
        match payload {
            Payload::Select { labels, rows } => Self::Rows(Rows {
                columns: labels,
                rows,
            }),
            Payload::SelectMap(maps) => Self::Rows(Rows {
                columns: vec!["_doc".to_owned()],
                rows: maps.into_iter().map(|m| vec![Value::Map(m)]).collect(),
            }),
            Payload::ShowColumns(cols) => Self::Rows(Rows {
                columns: vec!["field".to_owned(), "type".to_owned()],
                rows: cols
                    .into_iter()
                    .map(|(name, ty)| vec![Value::Str(name), Value::Str(ty.to_string())])
                    .collect(),
            }),
            Payload::Insert(n) => Self::Inserted(n),
            Payload::Update(n) => Self::Updated(n),
            Payload::Delete(n) => Self::Deleted(n),
            _ => Self::Schema,
        }
    }

    /// The rows of a `SELECT`.
    ///
    /// # Errors
    /// [`Error::Sql`] when the statement was not a query.
    pub fn into_rows(self) -> Result<Rows> {
        match self {
            Self::Rows(rows) => Ok(rows),
            other => Err(Error::sql(format!(
                "expected rows from a SELECT, got {other:?}"
            ))),
        }
    }

    /// Rows inserted, updated or deleted (0 for queries and schema statements).
    #[must_use]
    pub fn affected(&self) -> usize {
        match self {
            Self::Inserted(n) | Self::Updated(n) | Self::Deleted(n) => *n,
            Self::Rows(_) | Self::Schema => 0,
        }
    }
}

/// Rows of a query, with their column names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Rows with `columns` (in select order) and `rows` (values in that order).
    pub(crate) fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        Self { columns, rows }
    }

    /// The first `len` rows (all when there are fewer).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.rows.truncate(len);
    }

    /// These rows and then `more`'s (the same columns).
    pub(crate) fn joined(mut self, more: Rows) -> Self {
        debug_assert_eq!(self.columns, more.columns);
        self.rows.extend(more.rows);
        self
    }

    /// Row `index` alone, as rows of its own (none when absent).
    pub(crate) fn only(&self, index: usize) -> Self {
        Self {
            columns: self.columns.clone(),
            rows: self.rows.get(index).cloned().into_iter().collect(),
        }
    }

    /// Column names, in select order.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the query returned no row.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `index`, if present.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The rows, each with access by column name.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The raw values, row by row.
    #[must_use]
    pub fn into_values(self) -> Vec<Vec<Value>> {
        self.rows
    }

    /// The rows as a JSON array of objects keyed by column name (see [`crate::to_json`] for
    /// how each value maps).
    ///
    /// # Errors
    /// [`Error::Sql`] when a value has no JSON form.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        self.iter()
            .map(|row| row.to_json())
            .collect::<Result<Vec<_>>>()
            .map(serde_json::Value::Array)
    }
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of column `name`.
    ///
    /// # Errors
    /// [`Error::Sql`] naming the column if the row has no such column.
    pub fn value(&self, name: &str) -> Result<&'a Value> {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| {
                Error::sql(format!(
                    "no column {name:?} in this row; columns are {:?}",
                    self.columns
                ))
            })
    }

    /// The value of column `name` as a Rust type.
    ///
    /// # Errors
    /// [`Error::Sql`] if the column is missing or has another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T> {
        T::from_value(self.value(name)?).map_err(|e| match e {
            Error::Sql { message } => Error::sql(format!("column {name:?}: {message}")),
            other => other,
        })
    }

    /// The values in column order.
    #[must_use]
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The row as a JSON object keyed by column name.
    ///
    /// # Errors
    /// [`Error::Sql`] when a value has no JSON form.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        let mut map = serde_json::Map::with_capacity(self.columns.len());
        for (name, value) in self.columns.iter().zip(self.values) {
            map.insert(name.clone(), to_json(value.clone())?);
        }
        Ok(serde_json::Value::Object(map))
    }
}
