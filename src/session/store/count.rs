//! `SELECT COUNT(*) FROM t` — exactly that: one table, no filter, no grouping — answered from
//! the loaded table's size instead of GlueSQL's loop over every row (which clones each row's
//! values: 5 ms for 20 000 rows natively). The persistent map knows its length. It reads what
//! a scan reads (the whole table: the read set, and on kv:// and do:// the load of an
//! incomplete table), and any other query runs as GlueSQL plans it.

use super::{Miss, SessionStore};
use gluesql_core::{
    error::Result as GlueResult,
    executor::Payload,
    plan::{
        AggregateFunctionPlan, AggregationInputPlan, CountArgExprPlan, ExprPlan, ProjectInputPlan,
        ProjectionPlan, QueryPlan, SelectItemPlan, SourcePlan, StatementPlan, TableAccessPlan,
    },
    prelude::Value,
};

/// The table and the column label of a plan that is exactly `SELECT COUNT(*) FROM table`.
fn count_all(plan: &StatementPlan) -> Option<(&str, &str)> {
    let StatementPlan::Query(QueryPlan::Project(project)) = plan else {
        return None;
    };
    let ProjectInputPlan::Aggregation(aggregation) = &project.input else {
        return None;
    };
    let AggregationInputPlan::Source(SourcePlan::Table(table)) = &aggregation.input else {
        return None;
    };
    // Column aliases on the table (`t AS x(a, b)`) are checked by GlueSQL's scan: leave them
    // to it.
    let aliased = table.alias.as_ref().is_some_and(|a| !a.columns.is_empty());
    if aliased
        || !aggregation.group_by.is_empty()
        || table.access != TableAccessPlan::FullScan
        || aggregation.aggregate_slots.len() != 1
    {
        return None;
    }
    let ProjectionPlan::SelectItems(items) = &project.projection else {
        return None;
    };
    let [SelectItemPlan::Expr {
        expr: ExprPlan::Aggregate(counted),
        label,
    }] = &items[..]
    else {
        return None;
    };
    let wildcard = matches!(
        counted.func,
        AggregateFunctionPlan::Count(CountArgExprPlan::Wildcard)
    );
    (wildcard && !counted.distinct).then_some((table.name.as_str(), label.as_str()))
}

impl SessionStore {
    /// `count` rows at the snapshot, plus the rows this session inserted and less those it
    /// deleted (a key it wrote: present now, and not at the snapshot — or the other way).
    fn counted_with_own_writes(&self, name: &str, count: u64) -> GlueResult<usize> {
        let (Some(base), Some(mine)) = (self.base.tables.get(name), self.db.tables.get(name))
        else {
            return Ok(usize::try_from(count).unwrap_or(usize::MAX));
        };
        let written = self.writes.rows.get(name);
        // A key inserted unread (`assumed`) may have held a row at the snapshot: read it
        // (the rows loaded before every write otherwise tell).
        let unknown: Vec<Miss> = written
            .into_iter()
            .flatten()
            .filter(|key| base.lookup(key).is_none())
            .map(|key| Miss::Row(name.to_owned(), key.clone()))
            .collect();
        if !unknown.is_empty() {
            self.misses.borrow_mut().extend(unknown);
            return Err(gluesql_core::error::Error::StorageMsg(
                super::MISS.to_owned(),
            ));
        }
        let mut rows = i128::from(count);
        for key in written.into_iter().flatten() {
            let before = base.rows.contains_key(key);
            let after = mine.rows.contains_key(key);
            rows += i128::from(after) - i128::from(before);
        }
        Ok(usize::try_from(rows.max(0)).unwrap_or(usize::MAX))
    }

    /// The result of `plan` when it is `SELECT COUNT(*) FROM t` of a loaded table (`None`:
    /// run it as planned — another query, or a table GlueSQL should report missing).
    pub(crate) fn counted(&self, plan: &StatementPlan) -> GlueResult<Option<Payload>> {
        let Some((name, label)) = count_all(plan) else {
            return Ok(None);
        };
        let Some(table) = self.table(name)? else {
            return Ok(None);
        };
        let rows = if table.complete {
            table.rows.len()
        } else if let Some(count) = table.count.filter(|_| self.remote_count) {
            // do://: the object's count at the snapshot, and this session's own changes.
            self.counted_with_own_writes(name, count)?
        } else if self.remote_count {
            return self.miss(Miss::Count(name.to_owned()));
        } else {
            return self.miss(Miss::Table(name.to_owned()));
        };
        self.read_table(name);
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        Ok(Some(Payload::Select {
            labels: vec![label.to_owned()],
            rows: vec![vec![Value::I64(rows)]],
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::{session::store::SessionStore, snapshot::Database};
    use gluesql_core::{
        executor::execute, parse_sql::parse, plan::StatementPlan, prelude::Payload, store::Planner,
        translate::translate,
    };
    use std::{cell::Cell, rc::Rc};

    fn plan(store: &SessionStore, sql: &str) -> StatementPlan {
        let statement: StatementPlan = translate(&parse(sql).unwrap()[0]).unwrap().into();
        store.plan(statement).unwrap()
    }

    fn run(store: &mut SessionStore, sql: &str) -> Payload {
        let plan = plan(store, sql);
        execute(store, &plan).unwrap()
    }

    #[test]
    fn a_whole_table_count_is_the_tables_size_and_equals_glue_sqls() {
        let mut s = SessionStore::new(Database::default(), Rc::new(Cell::new(0)), 0);
        run(
            &mut s,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NULL)",
        );
        for sql in ["SELECT COUNT(*) FROM t", "SELECT COUNT(*) AS n FROM t"] {
            assert_eq!(
                s.counted(&plan(&s, sql)).unwrap(),
                Some(run(&mut s, sql)),
                "{sql}: empty"
            );
        }
        for id in 1..=7 {
            run(&mut s, &format!("INSERT INTO t VALUES ({id}, NULL)"));
        }
        for sql in ["SELECT COUNT(*) FROM t", "SELECT COUNT(*) AS n FROM t"] {
            let fast = s.counted(&plan(&s, sql)).unwrap();
            assert_eq!(fast, Some(run(&mut s, sql)), "{sql}");
            assert!(format!("{fast:?}").contains("I64(7)"), "{fast:?}");
        }
        assert!(
            s.reads.borrow().tables.contains("t"),
            "a table read, as a scan's"
        );
        for sql in [
            "SELECT COUNT(*) FROM t WHERE id > 3",
            "SELECT COUNT(n) FROM t",
            "SELECT COUNT(DISTINCT n) FROM t",
            "SELECT COUNT(*), SUM(id) FROM t",
            "SELECT n, COUNT(*) FROM t GROUP BY n",
            "SELECT COUNT(*) FROM t AS a JOIN t AS b ON a.id = b.id",
            "SELECT COUNT(*) FROM t WHERE id = 3",
            "SELECT id FROM t",
            "SELECT COUNT(*) FROM t AS x(a, b, c)",
        ] {
            assert_eq!(s.counted(&plan(&s, sql)).unwrap(), None, "{sql}");
        }
    }
}
