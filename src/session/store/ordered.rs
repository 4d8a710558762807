//! Reads in primary-key order: a query over one table ordered by its primary key alone
//! (`SELECT … FROM t [WHERE …] ORDER BY id [DESC] [LIMIT n] [OFFSET m]`) walks the table's rows
//! lazily in key order instead of collecting and sorting all of them — with a limit, GlueSQL
//! pulls rows only until it has the ones it returns (and, without a filter, exactly `m + n`).
//!
//! GlueSQL 0.20's default planner plans no index; its `plan_index` would, given an index, but
//! also for joins (on the first table, while a bare `id` names the joined table's column),
//! aggregates (whose groups keep their first row in scan order) and subqueries. So the planner
//! here runs GlueSQL's passes and then rewrites only the top-level query, only when it is that
//! plain shape: one table read by a full scan (under a filter or not), no column aliases on
//! it, no aggregate, and one ORDER BY key that is exactly the primary key's name. The table is
//! then read through the index `PRIMARY` (a name only this planner uses) and the sort is gone;
//! a `WHERE` conjunct bounding the key (`id > $1`: a keyset page) also gives the read its start
//! (or end), the filter keeping the conjunct.
//! A query ordered by a column with an index (`CREATE INDEX`) alone is read through that index
//! in its order the same way (`indexed::in_order`), its NULLs where GlueSQL's sort puts them
//! (after every value).
//! The read set records the whole table, as for a scan. A table not loaded yet (kv://, do://)
//! is loaded from its first key, as far as the read goes (`scan_prefix`): on kv://, a first
//! page costs one `list` call, not one per 1 000 rows; a read from the last key (`DESC`) loads
//! the whole table. One difference from GlueSQL's sort, by
//! design: rows past the limit are not evaluated, so an error one of them would raise (a
//! division by zero in a projected expression, say) is not raised — as with an unordered LIMIT
//! in GlueSQL, or an index scan in PostgreSQL.

use super::{indexed, Miss, SessionStore};
use crate::session::narrow::{primary_key_column, value_of};
use crate::snapshot::{Prefix, Table};
use gluesql_core::{
    ast::{ColumnDef, IndexOperator},
    data::Schema,
    error::Result as GlueResult,
    plan::{
        AggregationInputPlan, ExprPlan, FilterInputPlan, IndexPredicatePlan, LimitInputPlan,
        LimitPlan, OffsetInputPlan, OffsetPlan, ProjectInputPlan, ProjectPlan, QueryPlan,
        SelectOrderByPlan, SourcePlan, StatementPlan, TableAccessPlan, TableSourcePlan,
    },
    planner::{
        fetch_schema_map, plan_aggregate, plan_hash_join, plan_primary_key, plan_schemaless,
        validate,
    },
    prelude::{Key, Value},
    store::RowIter,
};
use std::{
    collections::HashMap,
    ops::Bound::{self, Excluded, Included, Unbounded},
};

/// How many rows the first load of a partial table's first rows asks for: a few pages' worth
/// (a first page of 20 to 100, or the next ones of a keyset walk), not a listing page of 1 000
/// (on kv://, listing a key costs decoding it).
const FIRST_ROWS: u32 = 128;

/// The name of the primary key's index (this planner's only).
pub(super) const PRIMARY: &str = "PRIMARY";

/// GlueSQL's planner passes, then the top-level query read in key order when it can be.
pub(super) fn plan(store: &SessionStore, statement: StatementPlan) -> GlueResult<StatementPlan> {
    let schema_map = fetch_schema_map(store, &statement)?;
    validate(&schema_map, &statement)?;
    let statement = plan_schemaless(&schema_map, statement)?;
    let statement = plan_primary_key(&schema_map, statement);
    let statement = plan_hash_join(&schema_map, statement);
    let statement = plan_aggregate(statement);
    let StatementPlan::Query(query) = statement else {
        return Ok(statement);
    };
    // The schemas as stored: GlueSQL's view hides the UNIQUE flags (see `for_gluesql`),
    // which name indexes here.
    let mut schemas = HashMap::with_capacity(schema_map.len());
    for name in schema_map.keys() {
        if let Some(schema) = store.real_schema(name)? {
            schemas.insert(name.clone(), schema);
        }
    }
    Ok(StatementPlan::Query(in_key_order(&schemas, query)))
}

/// `query` with its sort replaced by a read in key order, or its scan by an index read
/// (`indexed.rs`), when it is the plain shape.
fn in_key_order(schemas: &HashMap<String, Schema>, query: QueryPlan) -> QueryPlan {
    match query {
        QueryPlan::Project(project) => QueryPlan::Project(unsorted(schemas, project)),
        QueryPlan::SelectOrderBy(sorted) => match by_key(schemas, sorted) {
            Ordered::InKeyOrder(project) => QueryPlan::Project(project),
            Ordered::Sorted(sorted) => QueryPlan::SelectOrderBy(sorted),
        },
        QueryPlan::Offset(OffsetPlan { input, count }) => QueryPlan::Offset(OffsetPlan {
            input: offset_input(schemas, input),
            count,
        }),
        QueryPlan::Limit(LimitPlan { input, count }) => {
            let input = match input {
                LimitInputPlan::Project(project) => {
                    LimitInputPlan::Project(unsorted(schemas, project))
                }
                LimitInputPlan::SelectOrderBy(sorted) => match by_key(schemas, sorted) {
                    Ordered::InKeyOrder(project) => LimitInputPlan::Project(project),
                    Ordered::Sorted(sorted) => LimitInputPlan::SelectOrderBy(sorted),
                },
                LimitInputPlan::Offset(OffsetPlan { input, count }) => {
                    LimitInputPlan::Offset(OffsetPlan {
                        input: offset_input(schemas, input),
                        count,
                    })
                }
                other => other,
            };
            QueryPlan::Limit(LimitPlan { input, count })
        }
        other => other,
    }
}

fn offset_input(schemas: &HashMap<String, Schema>, input: OffsetInputPlan) -> OffsetInputPlan {
    match input {
        OffsetInputPlan::Project(project) => OffsetInputPlan::Project(unsorted(schemas, project)),
        OffsetInputPlan::SelectOrderBy(sorted) => match by_key(schemas, sorted) {
            Ordered::InKeyOrder(project) => OffsetInputPlan::Project(project),
            Ordered::Sorted(sorted) => OffsetInputPlan::SelectOrderBy(sorted),
        },
        other => other,
    }
}

/// The schema of `table` when it is read by a full scan and under its own column names (no
/// `AS x(a, b)`): what an index read or a read in key order may replace.
fn scanned_schema<'a>(
    schemas: &'a HashMap<String, Schema>,
    table: &TableSourcePlan,
) -> Option<&'a Schema> {
    let plain = table.access == TableAccessPlan::FullScan
        && table.alias.as_ref().is_none_or(|a| a.columns.is_empty());
    schemas.get(&table.name).filter(|_| plain)
}

/// The table a plain projection reads by a full scan, with its filter and schema: one table,
/// no column aliases on it, no aggregate (whose groups depend on scan order).
fn plain_scan<'a, 'p>(
    schemas: &'a HashMap<String, Schema>,
    project: &'p mut ProjectPlan,
) -> Option<(&'p mut TableSourcePlan, Option<ExprPlan>, &'a Schema)> {
    if format!("{:?}", project.projection).contains("Aggregate") {
        return None;
    }
    let filter = match &project.input {
        ProjectInputPlan::Filter(filter) => Some(filter.expr.clone()),
        _ => None,
    };
    let table = lone_table(&mut project.input)?;
    let schema = scanned_schema(schemas, table)?;
    Some((table, filter, schema))
}

/// The table an aggregating projection reads by a full scan under a filter (`SELECT COUNT(*)
/// FROM t WHERE …`, grouped or not), with the filter and schema. An index read returns rows in
/// the scan's order (primary-key order), so groups come out the same.
fn aggregated_scan<'a, 'p>(
    schemas: &'a HashMap<String, Schema>,
    project: &'p mut ProjectPlan,
) -> Option<(&'p mut TableSourcePlan, ExprPlan, &'a Schema)> {
    let ProjectInputPlan::Aggregation(aggregation) = &mut project.input else {
        return None;
    };
    let AggregationInputPlan::Filter(filter) = &mut aggregation.input else {
        return None;
    };
    let FilterInputPlan::Source(SourcePlan::Table(table)) = &mut filter.input else {
        return None;
    };
    let schema = scanned_schema(schemas, table)?;
    Some((table, filter.expr.clone(), schema))
}

/// A projection's scan replaced by an index read when one applies (`equality_only`: only an
/// equality, which names few rows).
fn by_index(schemas: &HashMap<String, Schema>, project: &mut ProjectPlan, equality_only: bool) {
    let found = match aggregated_scan(schemas, project) {
        Some((table, filter, schema)) => Some((table, Some(filter), schema)),
        None => plain_scan(schemas, project),
    };
    if let Some((table, Some(filter), schema)) = found {
        if let Some(access) = indexed::access(schema, &filter, equality_only) {
            table.access = access;
        }
    }
}

/// An unordered projection, its scan replaced by an index read when one applies.
fn unsorted(schemas: &HashMap<String, Schema>, mut project: ProjectPlan) -> ProjectPlan {
    by_index(schemas, &mut project, false);
    project
}

/// The table a projection reads by itself (under a filter or not).
fn lone_table(input: &mut ProjectInputPlan) -> Option<&mut TableSourcePlan> {
    match input {
        ProjectInputPlan::Source(SourcePlan::Table(table)) => Some(table),
        ProjectInputPlan::Filter(filter) => match &mut filter.input {
            FilterInputPlan::Source(SourcePlan::Table(table)) => Some(table),
            _ => None,
        },
        _ => None,
    }
}

/// A bound on column `key` (the primary key, or an indexed column) from a top-level conjunct of
/// `filter` (`key > v`, `v <= key`, …, with `v` a constant of exactly the column's type): where
/// the read in its order may start (or stop).
/// The filter keeps the conjunct, so the bound only has to include every row it admits.
pub(super) fn bound(filter: &ExprPlan, key: &ColumnDef) -> Option<IndexPredicatePlan> {
    let mut found = Vec::new();
    indexed::comparisons(filter, &mut found);
    found.into_iter().find_map(|(name, operator, value)| {
        let range = !matches!(operator, IndexOperator::Eq);
        let value = value_of(value, &key.data_type).filter(|_| range && name == key.name)?;
        Some(IndexPredicatePlan {
            operator,
            expr: ExprPlan::Value(value),
        })
    })
}

/// What [`by_key`] makes of an ordered query.
enum Ordered {
    /// The projection, reading its table in key order: no sort left.
    InKeyOrder(ProjectPlan),
    /// The query unchanged: not one table ordered by its primary key alone.
    Sorted(SelectOrderByPlan),
}

/// `sorted` read in key order when it is one table ordered by its primary key alone; else
/// (or before that, for an equality on an indexed column, which names few rows) its scan
/// replaced by an index read when one applies, the sort kept.
fn by_key(schemas: &HashMap<String, Schema>, mut sorted: SelectOrderByPlan) -> Ordered {
    let order = match &sorted.exprs[..] {
        [order] => match &order.expr {
            ExprPlan::Identifier(name) => Some((name.clone(), order.asc)),
            _ => None,
        },
        _ => None,
    };
    let Some((table, filter, schema)) = plain_scan(schemas, &mut sorted.input) else {
        // Aggregates keep their sort (groups depend on scan order): an index read at most.
        by_index(schemas, &mut sorted.input, false);
        return Ordered::Sorted(sorted);
    };
    let by_index = |equality_only| {
        filter
            .as_ref()
            .and_then(|filter| indexed::access(schema, filter, equality_only))
    };
    if let Some(access) = by_index(true) {
        table.access = access;
        return Ordered::Sorted(sorted);
    }
    let key = primary_key_column(schema);
    let Some((key, asc)) = order
        .clone()
        .and_then(|(name, asc)| Some((key.filter(|k| k.name == name)?, asc)))
    else {
        // Ordered by an indexed column: read in the index's order, no sort left.
        let in_order =
            order.and_then(|(name, asc)| indexed::in_order(schema, &name, asc, filter.as_ref()));
        if let Some(access) = in_order {
            table.access = access;
            return Ordered::InKeyOrder(sorted.input);
        }
        if let Some(access) = by_index(false) {
            table.access = access;
        }
        return Ordered::Sorted(sorted);
    };
    table.access = TableAccessPlan::Index {
        name: PRIMARY.to_owned(),
        asc,
        predicate: filter.and_then(|filter| bound(&filter, key)),
    };
    Ordered::InKeyOrder(sorted.input)
}

/// The miss for more of `table`'s first rows: at least `at_least` of them, and four times as
/// many as the last load asked for, past what it loaded.
pub(super) fn more_first_rows(table_name: &str, table: &Table, at_least: u32) -> Miss {
    let prefix = table.prefix.as_ref();
    Miss::Prefix {
        table: table_name.to_owned(),
        rows: prefix.map_or(at_least, |p| p.rows.saturating_mul(4).max(at_least)),
        past: prefix.map(|p| p.through.clone()),
    }
}

impl SessionStore {
    /// The rows of `table` in primary-key order (`asc` `Some(false)`: descending), lazily, from
    /// the bound `cmp` when it is given (see [`bound`]).
    pub(super) fn scan_in_key_order<'a>(
        &'a self,
        table_name: &str,
        asc: Option<bool>,
        cmp: Option<(&IndexOperator, Value)>,
    ) -> GlueResult<RowIter<'a>> {
        let Some(table) = self.table(table_name)? else {
            return Ok(Box::new(std::iter::empty()));
        };
        if !table.complete && asc == Some(false) {
            return self.miss(Miss::Table(table_name.to_owned())); // a listing starts at the first key
        }
        self.read_table(table_name);
        // A bound of another kind of key than the table's would cut the wrong range: then
        // every row, which the filter narrows as before.
        let first = table.rows.keys().next().map(std::mem::discriminant);
        let range = match cmp.and_then(|(op, v)| Some((op, Key::try_from(v).ok()?))) {
            Some((op, key)) if first.is_none_or(|d| d == std::mem::discriminant(&key)) => {
                indexed::key_range(op, key)
            }
            _ => (Unbounded, Unbounded),
        };
        if !table.complete {
            return self.scan_prefix(table_name, table, range);
        }
        let rows = table
            .rows
            .range(range)
            .map(|(k, r)| Ok((k.clone(), table.values_of(r))));
        Ok(if asc == Some(false) {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        })
    }

    /// The rows in `range` of a partial table, in key order, as far as its loaded first rows
    /// ([`Prefix`]) reach: a read that goes further fails with a miss for more of them
    /// ([`FIRST_ROWS`] first, then four times as many each time, listed from the first key:
    /// the cost grows with how deep the read goes, not with the table — on kv:// a read
    /// reaching row r lists about 5·r keys at most, in about 5·ceil(r / 1 000) calls, and at
    /// most 2⅓ times the table's keys when it reaches the end).
    fn scan_prefix<'a>(
        &'a self,
        table_name: &str,
        table: &'a Table,
        range: (Bound<Key>, Bound<Key>),
    ) -> GlueResult<RowIter<'a>> {
        let more = more_first_rows(table_name, table, FIRST_ROWS);
        let Some(Prefix { through, .. }) = table.prefix.clone() else {
            return self.miss(more);
        };
        // A range that ends within the loaded rows needs no more of them.
        let ends_within = match &range.1 {
            Included(end) | Excluded(end) => *end <= through,
            Unbounded => false,
        };
        let mut rows = table.rows.range(range);
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            match rows.next() {
                Some((k, r)) if *k <= through => Some(Ok((k.clone(), table.values_of(r)))),
                _ => {
                    done = true;
                    (!ends_within).then(|| self.miss(more.clone()))
                }
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan_tests::*;
    use super::*;
    use gluesql_core::store::Planner;

    /// Tables `t` (ids 1..=20 inserted out of order, `n` = id % 3) and `c` (rows pointing at
    /// `t` in another order).
    fn store() -> SessionStore {
        let mut store = empty();
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
        run(
            &mut store,
            "CREATE TABLE c (id INTEGER PRIMARY KEY, t_id INTEGER)",
        );
        for (id, t_id) in [(10, 3), (11, 1), (12, 2), (13, 4)] {
            run(&mut store, &format!("INSERT INTO c VALUES ({id}, {t_id})"));
        }
        store
    }

    fn uses_index(store: &SessionStore, sql: &str) -> bool {
        format!("{:?}", store.plan(statement(sql)).unwrap()).contains("name: \"PRIMARY\"")
    }

    #[test]
    fn a_query_ordered_by_an_indexed_column_reads_the_index_unsorted() {
        let mut s = store();
        for sql in [
            "CREATE TABLE g (id INTEGER PRIMARY KEY, score INTEGER NOT NULL, n INTEGER NULL)",
            "CREATE INDEX ix_g_score ON g (score)",
            "CREATE INDEX ix_g_n ON g (n)",
        ] {
            run(&mut s, sql);
        }
        let plan = |sql: &str| format!("{:?}", s.plan(statement(sql)).unwrap());
        for (sql, asc) in [
            ("SELECT id FROM g ORDER BY score", "Some(true)"),
            (
                "SELECT id FROM g ORDER BY score DESC LIMIT 3",
                "Some(false)",
            ),
            (
                "SELECT id FROM g WHERE n > 2 ORDER BY score LIMIT 3",
                "Some(true)",
            ),
        ] {
            let plan = plan(sql);
            assert!(plan.contains("name: \"ix_g_score\""), "{sql}: {plan}");
            assert!(plan.contains(&format!("asc: {asc}")), "{sql}: {plan}");
            assert!(!plan.contains("SelectOrderBy"), "{sql}: no sort left");
        }
        // Its own bound starts the read.
        let bounded = plan("SELECT id FROM g WHERE score >= 3 ORDER BY score LIMIT 2");
        assert!(bounded.contains("predicate: Some("), "{bounded}");
        // A NULL-able column's too (its NULLs kept apart).
        let nullable = plan("SELECT id FROM g ORDER BY n DESC");
        assert!(nullable.contains("name: \"ix_g_n\""), "{nullable}");
        // An expression, two keys or an equality elsewhere (few rows) keep the sort.
        for sql in [
            "SELECT id FROM g ORDER BY score + 0",
            "SELECT id FROM g ORDER BY score, id",
            "SELECT id FROM g WHERE n = 1 ORDER BY score",
        ] {
            assert!(plan(sql).contains("SelectOrderBy"), "{sql}: {}", plan(sql));
        }
    }

    #[test]
    fn only_one_table_ordered_by_its_key_alone_is_read_in_key_order() {
        let s = store();
        for sql in [
            "SELECT id FROM t ORDER BY id",
            "SELECT id FROM t ORDER BY id DESC LIMIT 3",
            "SELECT id FROM t ORDER BY id LIMIT 5 OFFSET 10",
            "SELECT id FROM t ORDER BY id OFFSET 10",
            "SELECT id FROM t WHERE n = 1 ORDER BY id LIMIT 2",
            "SELECT id FROM t WHERE id > 5 ORDER BY id LIMIT 2",
            "SELECT id FROM t AS x ORDER BY id",
        ] {
            assert!(uses_index(&s, sql), "{sql}");
        }
        // Keyset pages start the read at their bound: a constant of exactly the key's type.
        let bounded = |sql: &str| {
            format!("{:?}", s.plan(statement(sql)).unwrap()).contains("predicate: Some(")
        };
        for sql in [
            "SELECT id FROM t WHERE id > 15 ORDER BY id LIMIT 3",
            "SELECT id FROM t WHERE n = 1 AND 15 >= id ORDER BY id DESC LIMIT 3",
        ] {
            assert!(bounded(sql), "{sql}");
        }
        for sql in [
            "SELECT id FROM t WHERE id > 15.5 ORDER BY id",
            "SELECT id FROM t WHERE id > '15' ORDER BY id",
            "SELECT id FROM t WHERE id > 5 OR n = 1 ORDER BY id",
            "SELECT id FROM t WHERE id <> 5 ORDER BY id",
        ] {
            assert!(uses_index(&s, sql) && !bounded(sql), "{sql}");
        }
        for sql in [
            "SELECT id FROM t",
            "SELECT id FROM t WHERE id > 5",
            "SELECT id FROM t ORDER BY id, n",
            "SELECT id FROM t ORDER BY n, id",
            "SELECT id FROM t WHERE id = 3 ORDER BY id",
            "SELECT t.id FROM t JOIN c ON c.t_id = t.id ORDER BY id",
            "SELECT n, COUNT(*) FROM t GROUP BY n ORDER BY id DESC",
            "SELECT id, COUNT(*) FROM t ORDER BY id DESC",
            "SELECT * FROM t AS x(n, id) ORDER BY id",
            "SELECT id FROM t WHERE n IN (SELECT n FROM t ORDER BY id DESC LIMIT 1)",
        ] {
            assert!(!uses_index(&s, sql), "{sql}");
        }
    }

    #[test]
    fn results_are_glue_sqls_own() {
        let mut s = store();
        // Each query as this planner runs it and as GlueSQL's default planner does.
        for sql in [
            "SELECT id FROM t ORDER BY id",
            "SELECT id FROM t ORDER BY id DESC LIMIT 3",
            "SELECT id FROM t ORDER BY id ASC LIMIT 5 OFFSET 10",
            "SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 30",
            "SELECT id FROM t WHERE n = 1 ORDER BY id LIMIT 3",
            "SELECT id FROM t WHERE id > 17 ORDER BY id DESC",
            "SELECT id FROM t WHERE id >= '18' ORDER BY id",
            "SELECT id FROM t ORDER BY n DESC, id LIMIT 4",
            "SELECT n AS id FROM t ORDER BY id",
            "SELECT c.id FROM t JOIN c ON c.t_id = t.id ORDER BY id",
            "SELECT c.id FROM t JOIN c ON c.t_id = t.id ORDER BY id DESC LIMIT 2",
            "SELECT c.id FROM t LEFT JOIN c ON c.t_id = t.id WHERE c.id IS NOT NULL ORDER BY id",
            "SELECT COUNT(*) FROM t ORDER BY id DESC",
            "SELECT n FROM t GROUP BY n ORDER BY id DESC",
            "SELECT id FROM t WHERE n IN (SELECT n FROM t GROUP BY n ORDER BY id DESC LIMIT 1) ORDER BY id",
            "SELECT * FROM t AS x(n, id) ORDER BY id",
            "SELECT * FROM t AS x(k) ORDER BY id",
            "SELECT id FROM t WHERE id > 15 ORDER BY id LIMIT 3",
            "SELECT id FROM t WHERE id >= 15 ORDER BY id DESC",
            "SELECT id FROM t WHERE id < 5 ORDER BY id DESC LIMIT 2",
            "SELECT id FROM t WHERE id <= 5 ORDER BY id",
            "SELECT id FROM t WHERE 15 < id ORDER BY id",
            "SELECT id FROM t WHERE id > 5 AND n = 1 ORDER BY id LIMIT 2",
            "SELECT id FROM t WHERE id > 5 AND id < 9 ORDER BY id DESC",
            "SELECT id FROM t WHERE id > 15.5 ORDER BY id",
            "SELECT id FROM t WHERE id > '15' ORDER BY id",
            "SELECT id FROM t WHERE id > 5 OR n = 1 ORDER BY id",
            "SELECT id FROM t WHERE id > 99 ORDER BY id",
            "SELECT id FROM t WHERE id < -1 ORDER BY id DESC",
        ] {
            let ours = store_plan_run(&mut s, sql);
            assert_eq!(ours, as_glue_sql_runs_it(&mut s, sql), "{sql}");
        }
        // The read is the whole table's, as a scan's.
        assert!(s.reads.borrow().tables.contains("t"));
        // The one difference, by design: rows past the limit are not evaluated.
        let past = "SELECT id, 10 / (20 - id) FROM t ORDER BY id LIMIT 1";
        assert!(
            as_glue_sql_runs_it(&mut s, past).is_err(),
            "GlueSQL's sort evaluates id 20"
        );
        assert!(
            store_plan_run(&mut s, past).is_ok(),
            "read in key order, it stops at id 1"
        );
    }

    #[test]
    fn ordered_reads_return_rows_in_key_order() {
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
                "SELECT id FROM t ORDER BY id LIMIT 5 OFFSET 10"
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
                "SELECT id FROM t WHERE id > 15 ORDER BY id LIMIT 3"
            )),
            [16, 17, 18]
        );
        assert_eq!(
            ids(run(
                &mut s,
                "SELECT id FROM t WHERE id <= 5 ORDER BY id DESC LIMIT 2"
            )),
            [5, 4]
        );
    }
}
