//! Reads in primary-key order: the primary key offered to GlueSQL's planner as an index, so
//! that `ORDER BY <key> [DESC] [LIMIT n] [OFFSET m]` walks the table's rows lazily in key order
//! instead of collecting and sorting all of them — with a limit, GlueSQL pulls only the
//! `m + n` rows it returns or skips.
//!
//! GlueSQL 0.20's default planner never plans indexes; this one runs its passes with
//! `plan_index` added, over a schema map in which every table has a `PRIMARY` index on its key
//! (the planner's copy only: stored schemas, `SHOW INDEXES` and ALTER never see it). Only an
//! ORDER BY may use it: a plan where the index would also answer a `WHERE` comparison (GlueSQL
//! then drops the comparison from the filter and hands its value over uncast, e.g. `id > '5'`
//! as text) falls back to the plan without indexes, which evaluates it as GlueSQL always did.
//! The rows read are the whole table's, as for a scan (the read set and, on kv:// and do://, the
//! load of an incomplete table are unchanged).

use super::{Miss, SessionStore};
use gluesql_core::{
    ast::{ColumnUniqueOption, Expr},
    chrono::NaiveDateTime,
    data::{SchemaIndex, SchemaIndexOrd},
    error::{Error as GlueError, Result as GlueResult},
    plan::{LimitInputPlan, OffsetInputPlan, QueryPlan, StatementPlan},
    planner::{
        fetch_schema_map, plan_aggregate, plan_hash_join, plan_index, plan_primary_key,
        plan_schemaless, validate,
    },
    store::RowIter,
};

/// The name of the primary key's index (the planner's only).
pub(super) const PRIMARY: &str = "PRIMARY";

/// True for a query whose rows are ordered (`ORDER BY`, under a `LIMIT` or `OFFSET` or not).
fn ordered(statement: &StatementPlan) -> bool {
    match statement {
        StatementPlan::Query(QueryPlan::SelectOrderBy(_)) => true,
        StatementPlan::Query(QueryPlan::Limit(limit)) => match &limit.input {
            LimitInputPlan::SelectOrderBy(_) => true,
            LimitInputPlan::Offset(offset) => {
                matches!(offset.input, OffsetInputPlan::SelectOrderBy(_))
            }
            _ => false,
        },
        StatementPlan::Query(QueryPlan::Offset(offset)) => {
            matches!(offset.input, OffsetInputPlan::SelectOrderBy(_))
        }
        _ => false,
    }
}

/// GlueSQL's planner passes, with the primary key planned as an index for an ordered query.
pub(super) fn plan(store: &SessionStore, statement: StatementPlan) -> GlueResult<StatementPlan> {
    let mut schema_map = fetch_schema_map(store, &statement)?;
    validate(&schema_map, &statement)?;
    let statement = plan_schemaless(&schema_map, statement)?;
    let mut statement = plan_primary_key(&schema_map, statement);
    if ordered(&statement) {
        for schema in schema_map.values_mut() {
            let key = schema
                .column_defs
                .iter()
                .flatten()
                .find(|c| c.unique == Some(ColumnUniqueOption { is_primary: true }));
            if let Some(key) = key {
                schema.indexes.push(SchemaIndex {
                    name: PRIMARY.to_owned(),
                    expr: Expr::Identifier(key.name.clone()),
                    order: SchemaIndexOrd::Both,
                    created: NaiveDateTime::default(),
                });
            }
        }
        let indexed = plan_index(&schema_map, statement.clone());
        // Conservative: any predicate handed to an index (a string literal spelling this only
        // costs the ordered read).
        if !format!("{indexed:?}").contains("predicate: Some(") {
            statement = indexed;
        }
    }
    let statement = plan_hash_join(&schema_map, statement);
    Ok(plan_aggregate(statement))
}

impl SessionStore {
    /// The rows of `table` in primary-key order (`asc` `Some(false)`: descending), lazily.
    pub(super) fn scan_in_key_order<'a>(
        &'a self,
        table_name: &str,
        index_name: &str,
        asc: Option<bool>,
        has_predicate: bool,
    ) -> GlueResult<RowIter<'a>> {
        if index_name != PRIMARY || has_predicate {
            // Only `plan` above names an index, and never with a predicate.
            return Err(GlueError::StorageMsg(format!(
                "gluebind has no index {index_name:?} with a predicate on table {table_name:?}"
            )));
        }
        let Some(table) = self.table(table_name)? else {
            return Ok(Box::new(std::iter::empty()));
        };
        if !table.complete {
            return self.miss(Miss::Table(table_name.to_owned()));
        }
        self.read_table(table_name);
        let rows = table
            .rows
            .iter()
            .map(|(k, r)| Ok((k.clone(), r.values.as_ref().clone())));
        Ok(if asc == Some(false) {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Database;
    use gluesql_core::{
        executor::execute, parse_sql::parse, prelude::Payload, store::Planner, translate::translate,
    };
    use std::{cell::Cell, rc::Rc};

    fn statement(sql: &str) -> StatementPlan {
        translate(&parse(sql).unwrap()[0]).unwrap().into()
    }

    fn run(store: &mut SessionStore, sql: &str) -> Payload {
        let plan = store.plan(statement(sql)).unwrap();
        execute(store, &plan).unwrap()
    }

    /// A store with table `t` holding ids 1..=20 (inserted out of order).
    fn store() -> SessionStore {
        let mut store = SessionStore::new(Database::default(), Rc::new(Cell::new(0)), 0);
        run(
            &mut store,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NULL)",
        );
        for id in (1..=20).rev() {
            run(
                &mut store,
                &format!("INSERT INTO t VALUES ({id}, {})", id % 3),
            );
        }
        store
    }

    fn ids(payload: Payload) -> Vec<i64> {
        let Payload::Select { rows, .. } = payload else {
            panic!("not a select: {payload:?}")
        };
        rows.into_iter()
            .map(|r| match r[0] {
                gluesql_core::prelude::Value::I64(id) => id,
                ref v => panic!("{v:?}"),
            })
            .collect()
    }

    fn uses_index(store: &SessionStore, sql: &str) -> bool {
        format!("{:?}", store.plan(statement(sql)).unwrap()).contains("name: \"PRIMARY\"")
    }

    #[test]
    fn an_order_by_the_key_reads_in_key_order_without_sorting() {
        let s = store();
        for sql in [
            "SELECT id FROM t ORDER BY id",
            "SELECT id FROM t ORDER BY id DESC LIMIT 3",
            "SELECT id FROM t ORDER BY id LIMIT 5 OFFSET 10",
            "SELECT id FROM t WHERE n = 1 ORDER BY id LIMIT 2",
            "SELECT id FROM t WHERE id > 5 ORDER BY id LIMIT 2",
        ] {
            assert!(uses_index(&s, sql), "{sql}");
        }
        for sql in [
            // No order, or an order on another column, or a comparison the index would
            // answer: GlueSQL's plan as before.
            "SELECT id FROM t",
            "SELECT id FROM t WHERE id > 5",
            "SELECT id FROM t ORDER BY id, n",
            "SELECT id FROM t WHERE id = 3 ORDER BY id",
        ] {
            assert!(!uses_index(&s, sql), "{sql}");
        }
    }

    #[test]
    fn ordered_reads_return_what_a_sort_returns() {
        let mut s = store();
        let all: Vec<i64> = (1..=20).collect();
        assert_eq!(ids(run(&mut s, "SELECT id FROM t ORDER BY id")), all);
        assert_eq!(
            ids(run(&mut s, "SELECT id FROM t ORDER BY id DESC LIMIT 3")),
            [20, 19, 18]
        );
        assert_eq!(
            ids(run(
                &mut s,
                "SELECT id FROM t ORDER BY id ASC LIMIT 5 OFFSET 10"
            )),
            [11, 12, 13, 14, 15]
        );
        assert_eq!(
            ids(run(
                &mut s,
                "SELECT id FROM t WHERE n = 1 ORDER BY id LIMIT 3"
            )),
            [1, 4, 7]
        );
        assert_eq!(
            ids(run(
                &mut s,
                "SELECT id FROM t WHERE id > 17 ORDER BY id DESC"
            )),
            [20, 19, 18]
        );
        assert_eq!(
            ids(run(&mut s, "SELECT id FROM t WHERE id >= '18' ORDER BY id")),
            ids(run(&mut s, "SELECT id FROM t WHERE id >= '18'")),
            "a text literal compares as GlueSQL compares it"
        );
        assert_eq!(
            ids(run(&mut s, "SELECT id FROM t ORDER BY n DESC, id LIMIT 4")),
            [2, 5, 8, 11],
            "the last key read in order, the others sorted (stably) after"
        );
        assert_eq!(
            ids(run(
                &mut s,
                "SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 30"
            )),
            Vec::<i64>::new()
        );
        // The read is the whole table's, as a scan's.
        assert!(s.reads.borrow().tables.contains("t"));
    }
}
