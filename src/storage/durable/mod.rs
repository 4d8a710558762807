//! The `do://BINDING[/NAME]` engine: one Durable Object per database validates and applies
//! every commit, so that every guarantee holds across isolates and locations.
//!
//! Sessions stay in the worker (registry, scope, unit of work, models are unchanged): a
//! statement runs on what the session has loaded, and what it misses is loaded from the object
//! as of one version for the whole session (a snapshot), batched into one request per load
//! step. The isolate keeps a cache of committed rows at a known version of the object, which a
//! session starts from; a stale cache can only make a commit conflict. `commit()` sends the
//! session's writes and reads ([`wire::Delta`]); the object validates them against its state
//! exactly as `memory://` validates (serializable) and applies them in one step
//! ([`object::DatabaseObject`]), or answers `CONFLICT` / `UNIQUE`. IDs come from the object,
//! in blocks per isolate.

pub(crate) mod client;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod local;
// The object runs in the Worker (the Durable Object class) and in tests; a native build
// without them only sends it requests.
#[cfg_attr(
    not(any(test, feature = "testing", target_arch = "wasm32")),
    allow(dead_code)
)]
pub(crate) mod object;
// Used by the Durable Object class (wasm32) and the tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) mod sql;
pub(crate) mod wire;

use crate::{
    error::{Error, Result},
    session::store::Miss,
    snapshot::{Database, StoredRow, Table, Version},
    storage::patch::Patch,
};
use gluesql_core::prelude::Key;
use std::sync::Arc;
use wire::{Change, Request, Response};

/// The load request for what a statement missed, as of `at`.
pub(crate) fn load_request(misses: &[Miss], at: Option<Version>) -> Request {
    let mut schemas = Vec::new();
    let mut all_schemas = false;
    let mut rows = Vec::new();
    let mut tables = Vec::new();
    let mut uniques = Vec::new();
    for miss in misses {
        match miss {
            Miss::Schema(name) => schemas.push(name.clone()),
            Miss::AllSchemas => all_schemas = true,
            Miss::Row(table, key) => rows.push((table.clone(), key.clone())),
            // The object answers from memory: a first page takes the whole table.
            // The object answers from memory: the whole table (kept by the isolate after).
            Miss::Table(table) | Miss::Prefix { table, .. } | Miss::Indexed { table, .. } => {
                tables.push(table.clone());
            }
            Miss::Unique {
                table, pos, value, ..
            } => uniques.push((table.clone(), *pos, value.clone())),
        }
    }
    Request::Load {
        at,
        schemas,
        all_schemas,
        rows,
        tables,
        uniques,
    }
}

/// The patch a load's answer makes, for a request built by [`load_request`].
///
/// # Errors
/// [`Error::Conflict`] when the object no longer keeps the version asked for (the session's
/// snapshot is too old); [`Error::Storage`] for a failed or unexpected answer.
pub(crate) fn patch(request: &Request, answer: Response) -> Result<Patch> {
    let Request::Load {
        schemas: schema_names,
        rows: row_keys,
        tables: table_names,
        uniques: unique_keys,
        ..
    } = request
    else {
        return Err(client::unexpected(&answer));
    };
    let (at, schemas, all_schemas, rows, tables, uniques) = match answer {
        Response::Loaded {
            at,
            schemas,
            all_schemas,
            rows,
            tables,
            uniques,
        } => (at, schemas, all_schemas, rows, tables, uniques),
        Response::TooOld { oldest } => {
            // The tables the load named: some of them changed after the session's snapshot.
            let mut named: Vec<&str> =
                wire::load_tables(schema_names, row_keys, table_names, unique_keys)
                    .map(String::as_str)
                    .collect();
            named.sort_unstable();
            named.dedup();
            let table = if named.is_empty() {
                "(all schemas)".to_owned()
            } else {
                named.join(", ")
            };
            return Err(Error::Conflict {
                table,
                detail: format!(
                    "what this session reads, as of a snapshot too old for the database object \
                     (snapshot too old: it keeps versions from {oldest} on),"
                ),
            });
        }
        Response::Failed { error, .. } => return Err(client::failed(error)),
        other => return Err(client::unexpected(&other)),
    };
    let mut patch = Patch {
        at: Some(at),
        ..Patch::default()
    };
    for (name, schema) in schema_names.iter().zip(schemas) {
        match schema {
            Some(s) => {
                patch.versions.push((name.clone(), s.version));
                patch
                    .schemas
                    .push((name.clone(), Some((s.schema, s.schema_version))));
            }
            None => patch.schemas.push((name.clone(), None)),
        }
    }
    if let Some(all) = all_schemas {
        for (name, s) in all {
            patch.versions.push((name.clone(), s.version));
            patch
                .schemas
                .push((name, Some((s.schema, s.schema_version))));
        }
        patch.all_schemas = true;
    }
    for ((table, key), row) in row_keys.iter().zip(rows) {
        patch.rows.push((
            table.clone(),
            key.clone(),
            row.map(|(values, version)| StoredRow {
                values: Arc::new(values),
                version,
            }),
        ));
    }
    for (table, rows) in table_names.iter().zip(tables) {
        if let Some(rows) = rows {
            patch.complete.push((
                table.clone(),
                rows.into_iter()
                    .map(|(k, values, version)| {
                        (
                            k,
                            StoredRow {
                                values: Arc::new(values),
                                version,
                            },
                        )
                    })
                    .collect(),
            ));
        }
    }
    for ((table, pos, value), owner) in unique_keys.iter().zip(uniques) {
        patch
            .uniques
            .push((table.clone(), *pos, value.clone(), owner));
    }
    Ok(patch)
}

/// Brings an isolate cache up to date with commits it did not make (and its own), in order:
/// rows change in place (with the unique entries they hold), a table whose schema changed is
/// forgotten (loaded again when next needed).
pub(crate) fn catch_up(db: &mut Database, since: &[(Version, Vec<Change>)]) {
    for (version, changes) in since {
        apply_changes(db, *version, changes);
    }
}

/// [`catch_up`] with the changes of one version.
pub(crate) fn apply_changes(db: &mut Database, version: Version, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Table(name) => {
                db.tables.remove(name);
                db.absent_tables.remove(name);
                db.schemas_complete = false;
            }
            Change::Row(name, key, row, released) => {
                if let Some(table) = db.tables.get_mut(name) {
                    set_row(table, key, row.as_ref(), released, version);
                }
            }
        }
    }
}

/// Writes one row into a (possibly partial) cached table, keeping its unique index true.
fn set_row(
    table: &mut Table,
    key: &Key,
    row: Option<&(Vec<gluesql_core::prelude::Value>, Version)>,
    released: &[(usize, Key)],
    version: Version,
) {
    let columns = table.unique_columns();
    // The values the key held are released: the object names them (the cache is at the
    // version just before this change), so no scan of the unique index is needed.
    for (pos, v) in released {
        let entry = (*pos, v.clone());
        if table.unique.get(&entry) != Some(key) {
            continue;
        }
        table.unique.remove(&entry);
        if !table.unique_complete {
            table.unique_absent.insert(Arc::new(entry));
        }
    }
    match row {
        Some((values, row_version)) => {
            for (pos, _) in &columns {
                if let Some(v) = values.get(*pos).and_then(crate::snapshot::unique_key) {
                    table.set_unique(*pos, v, Some(key.clone()));
                }
            }
            table.absent.remove(key);
            table.put_row(
                key.clone(),
                StoredRow {
                    values: Arc::new(values.clone()),
                    version: *row_version,
                },
            );
        }
        None => {
            table.remove_row(key);
            if !table.complete {
                table.absent.insert(key.clone());
            }
        }
    }
    table.version = version;
}
