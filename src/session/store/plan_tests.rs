//! Helpers of the planner tests (`ordered.rs`, `indexed.rs`): statements run on a bare
//! session store, as this crate's planner and as GlueSQL's default planner plan them.

use super::SessionStore;
use crate::snapshot::Database;
use gluesql_core::{
    executor::execute,
    parse_sql::parse,
    plan::StatementPlan,
    planner::{
        fetch_schema_map, plan_aggregate, plan_hash_join, plan_primary_key, plan_schemaless,
        validate,
    },
    prelude::{Payload, Value},
    store::Planner,
    translate::translate,
};
use std::{cell::Cell, rc::Rc};

/// A session store over an empty memory database.
pub(super) fn empty() -> SessionStore {
    SessionStore::new(Database::default(), Rc::new(Cell::new(0)), 0)
}

pub(super) fn statement(sql: &str) -> StatementPlan {
    translate(&parse(sql).unwrap()[0]).unwrap().into()
}

pub(super) fn run(store: &mut SessionStore, sql: &str) -> Payload {
    let plan = store.plan(statement(sql)).unwrap();
    execute(store, &plan).unwrap()
}

/// `sql` as this crate's planner plans and runs it, or its error.
pub(super) fn store_plan_run(store: &mut SessionStore, sql: &str) -> Result<Payload, String> {
    let plan = store.plan(statement(sql)).map_err(|e| e.to_string())?;
    execute(store, &plan).map_err(|e| e.to_string())
}

/// `sql` as GlueSQL's default planner plans and runs it (no index), or its error.
pub(super) fn as_glue_sql_runs_it(store: &mut SessionStore, sql: &str) -> Result<Payload, String> {
    let statement = statement(sql);
    let schema_map = fetch_schema_map(&*store, &statement).map_err(|e| e.to_string())?;
    validate(&schema_map, &statement).map_err(|e| e.to_string())?;
    let plan = plan_schemaless(&schema_map, statement).map_err(|e| e.to_string())?;
    let plan = plan_aggregate(plan_hash_join(
        &schema_map,
        plan_primary_key(&schema_map, plan),
    ));
    execute(store, &plan).map_err(|e| e.to_string())
}

/// The first column of a result, as integers.
pub(super) fn ids(payload: Payload) -> Vec<i64> {
    let Payload::Select { rows, .. } = payload else {
        panic!("not a select: {payload:?}")
    };
    rows.into_iter()
        .map(|r| match r[0] {
            Value::I64(id) => id,
            ref v => panic!("{v:?}"),
        })
        .collect()
}

/// The plan of `sql`, as text.
pub(super) fn plan_text(store: &SessionStore, sql: &str) -> String {
    format!("{:?}", store.plan(statement(sql)).unwrap())
}
