//! Writing the next step from the models' diff, without a database: a snapshot of the models'
//! tables is kept beside the steps (as drizzle-kit keeps one per migration); the next step is
//! what takes the tables from the snapshot to the models as they are now.

use crate::{
    model::{drift, ModelMeta},
    Error, Result,
};
use gluesql_core::ast::ColumnDef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The snapshot's format.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    /// Table → its columns, as GlueSQL stores them.
    tables: BTreeMap<String, Vec<ColumnDef>>,
}

/// The models' tables as JSON (table → columns, as GlueSQL stores them): commit it beside your
/// steps, and compare the models with it by [`next_step`] (`npm run migrations:new` writes
/// both).
///
/// # Errors
/// [`Error::Sql`] for a model whose `CREATE TABLE` does not translate (a bug).
pub fn snapshot(models: &[&ModelMeta]) -> Result<String> {
    let mut tables = BTreeMap::new();
    for meta in models {
        tables.insert(meta.table().to_owned(), drift::declared(meta)?);
    }
    let snapshot = Snapshot {
        format: FORMAT,
        tables,
    };
    serde_json::to_string_pretty(&snapshot).map_err(|e| Error::Storage {
        message: format!("writing the schema snapshot: {e}"),
    })
}

/// The step that [`next_step`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextStep {
    /// The step as a Rust builder expression (`Migration::new("…").add_column(…)`), or
    /// empty when the models match the snapshot.
    pub rust: String,
    /// The same step in JavaScript (`migration("…").addColumn(…)`).
    pub js: String,
    /// Differences no builder call resolves on its own (a type or constraint that changed),
    /// with the way round each: write those steps by hand.
    pub notes: Vec<String>,
}

impl NextStep {
    /// True when the models match the snapshot: no step to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rust.is_empty() && self.notes.is_empty()
    }
}

/// The step named `name` that takes the tables of `snapshot` (what [`snapshot`] wrote when the
/// last step was written) to `models` as they are now: a column added to a model is an
/// `add_column`, one removed a `drop_column` (when it is NOT NULL without a default, else a
/// note: the table may keep it), a table whose model is gone a note; a new model needs no
/// step (`create_all` creates its table). Changed types and constraints are notes.
///
/// # Errors
/// [`Error::Config`] for a snapshot that is not one (or of a newer format).
pub fn next_step(name: &str, models: &[&ModelMeta], snapshot: &str) -> Result<NextStep> {
    let old: Snapshot = serde_json::from_str(snapshot).map_err(|e| {
        Error::config(format!(
            "the schema snapshot does not read as one ({e}); write a new one with snapshot()"
        ))
    })?;
    if old.format > FORMAT {
        return Err(Error::config(format!(
            "the schema snapshot has format {}, newer than this gluebind's {FORMAT}",
            old.format
        )));
    }
    let (mut rust, mut js, mut notes) = (String::new(), String::new(), Vec::new());
    for meta in models {
        let Some(columns) = old.tables.get(meta.table()) else {
            continue; // a new model: create_all creates its table
        };
        let wanted = drift::declared(meta)?;
        for difference in drift::differences(meta, columns)? {
            match difference.step {
                Some(step) => {
                    rust.push_str(&step.rust);
                    js.push_str(&step.js);
                }
                None => notes.push(difference.problem),
            }
        }
        // Not drift (the model's INSERTs leave it out), but worth a word.
        for column in columns.iter().filter(|c| c.nullable || c.default.is_some()) {
            if !wanted.iter().any(|w| w.name == column.name) {
                notes.push(format!(
                    "the model {} no longer has column {}: the table may keep it (the \
                     model's INSERTs leave it out); drop it with .drop_column(\"{}\", \"{}\") \
                     once no deploy reads it",
                    meta.table(),
                    column.name,
                    meta.table(),
                    column.name
                ));
            }
        }
    }
    for table in old.tables.keys() {
        if !models.iter().any(|m| m.table() == table) {
            notes.push(format!(
                "table {table} has no model any more: drop it with .drop_table(\"{table}\") if \
                 its rows can go"
            ));
        }
    }
    if !rust.is_empty() {
        rust = format!("Migration::new(\"{name}\"){rust}");
        js = format!("migration(\"{name}\"){js}");
    }
    Ok(NextStep { rust, js, notes })
}
