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

mod batch;
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
    snapshot::{Database, Prefix, StoredRow, Table, Version},
    storage::patch::Patch,
};
use gluesql_core::prelude::Key;
use std::sync::Arc;
use wire::{Change, Request, Response};

/// The load request for what a statement missed, as of `at`.
pub(crate) fn load_request(misses: &[Miss], at: Option<Version>) -> Request {
    let mut load = wire::Load {
        at,
        ..wire::Load::default()
    };
    for miss in misses {
        match miss {
            Miss::Schema(name) => load.schemas.push(name.clone()),
            Miss::AllSchemas => load.all_schemas = true,
            Miss::Row(table, key) => load.rows.push((table.clone(), key.clone())),
            Miss::Table(table) => load.tables.push(table.clone()),
            Miss::Count(table) => load.counts.push(table.clone()),
            Miss::Prefix { table, rows, past } => {
                load.firsts.push((table.clone(), *rows, past.clone()));
            }
            Miss::Indexed {
                table,
                index,
                value,
                ..
            } => load
                .indexed
                .push((table.clone(), index.clone(), value.clone())),
            Miss::Unique {
                table, pos, value, ..
            } => load.uniques.push((table.clone(), *pos, value.clone())),
        }
    }
    Request::Load(load)
}

/// The misses of `request` an object older than first rows and index reads left unanswered
/// (see [`wire::Load::firsts`]): their tables, to load whole.
pub(crate) fn unanswered(request: &Request, answer: &Response) -> Vec<Miss> {
    let (Request::Load(load), Response::Loaded(loaded)) = (request, answer) else {
        return Vec::new();
    };
    let firsts = load.firsts.iter().filter(|_| loaded.firsts.is_none());
    let indexed = load.indexed.iter().filter(|_| loaded.indexed.is_none());
    let counts = load.counts.iter().filter(|_| loaded.counts.is_none());
    let mut tables: Vec<Miss> = Vec::new();
    let firsts = firsts.map(|(t, ..)| t);
    let indexed = indexed.map(|(t, ..)| t);
    for table in firsts.chain(indexed).chain(counts) {
        let miss = Miss::Table(table.clone());
        if !tables.contains(&miss) {
            tables.push(miss);
        }
    }
    tables
}

fn stored(rows: Vec<wire::KeyedRow>) -> crate::storage::patch::LoadedRows {
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
        .collect()
}

/// The patch a load's answer makes, for a request built by [`load_request`] (`misses`).
///
/// # Errors
/// [`Error::Conflict`] when the object no longer keeps the version asked for (the session's
/// snapshot is too old); [`Error::Storage`] for a failed or unexpected answer.
pub(crate) fn patch(request: &Request, misses: &[Miss], answer: Response) -> Result<Patch> {
    let Request::Load(load) = request else {
        return Err(client::unexpected(&answer));
    };
    let loaded = match answer {
        Response::Loaded(loaded) => loaded,
        Response::TooOld { oldest } => {
            // The tables the load named: some of them changed after the session's snapshot.
            let mut named: Vec<&str> = load.tables().map(String::as_str).collect();
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
    let wire::Loaded {
        at,
        wire: _,
        schemas,
        all_schemas,
        rows,
        tables,
        uniques,
        firsts,
        indexed,
        counts,
    } = loaded;
    let mut patch = Patch {
        at: Some(at),
        ..Patch::default()
    };
    let schema = |patch: &mut Patch, name: &String, s: wire::SchemaWire| {
        patch.versions.push((name.clone(), s.version));
        // The object holds every row: an equality on any index is answered by it.
        let indexes: Vec<String> = s.schema.indexes.iter().map(|i| i.name.clone()).collect();
        if !indexes.is_empty() {
            patch.backed.push((name.clone(), indexes));
        }
        patch
            .schemas
            .push((name.clone(), Some((s.schema, s.schema_version))));
    };
    for (name, s) in load.schemas.iter().zip(schemas) {
        match s {
            Some(s) => schema(&mut patch, name, s),
            None => patch.schemas.push((name.clone(), None)),
        }
    }
    if let Some(all) = all_schemas {
        for (name, s) in all {
            schema(&mut patch, &name, s);
        }
        patch.all_schemas = true;
    }
    for ((table, key), row) in load.rows.iter().zip(rows) {
        patch.rows.push((
            table.clone(),
            key.clone(),
            row.map(|(values, version)| StoredRow {
                values: Arc::new(values),
                version,
            }),
        ));
    }
    for (table, rows) in load.tables.iter().zip(tables) {
        if let Some(rows) = rows {
            patch.complete.push((table.clone(), stored(rows)));
        }
    }
    for ((table, pos, value), owner) in load.uniques.iter().zip(uniques) {
        patch
            .uniques
            .push((table.clone(), *pos, value.clone(), owner));
    }
    for ((table, want, _), first) in load.firsts.iter().zip(firsts.into_iter().flatten()) {
        match first {
            Some((rows, None)) => patch.complete.push((table.clone(), stored(rows))),
            Some((rows, Some(through))) => patch.prefixes.push((
                table.clone(),
                stored(rows),
                Prefix {
                    through,
                    rows: *want,
                },
            )),
            None => {}
        }
    }
    for (table, count) in load.counts.iter().zip(counts.into_iter().flatten()) {
        if let Some(count) = count {
            patch.counts.push((table.clone(), count));
        }
    }
    let created = misses.iter().filter_map(|miss| match miss {
        Miss::Indexed { created, .. } => Some(*created),
        _ => None,
    });
    let answers = load
        .indexed
        .iter()
        .zip(created)
        .zip(indexed.into_iter().flatten());
    for (((table, index, value), created), rows) in answers {
        for (key, row) in stored(rows.unwrap_or_default()) {
            patch.rows.push((table.clone(), key, Some(row)));
        }
        patch
            .indexed
            .push((table.clone(), index.clone(), created, value.clone()));
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
