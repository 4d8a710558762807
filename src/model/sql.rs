//! SQL text for models and queries — the only place gluebind renders it, for typed models
//! and for the npm package's alike. The text holds only identifiers from a [`ModelMeta`]
//! (checked at compile time for derived models, when the model is defined for run-time
//! ones) and fixed keywords; every value is a `$n` parameter.

use super::{
    arg::Arg,
    column::{Expr, Op, OrderBy},
    ModelMeta,
};
use crate::ParamLiteral;
use gluesql_core::translate::IntoParamLiteral;
use std::fmt::Write;

/// The largest LIMIT and OFFSET rendered: GlueSQL 0.20 reads them as a `usize`, which is 32
/// bits on wasm32, and no table has that many rows (past it is past the end anyway).
pub(crate) const MAX_LIMIT: u64 = u32::MAX as u64;

/// Appends `"name"`. Identifiers are `[A-Za-z_][A-Za-z0-9_]*`, so quoting needs no escaping;
/// quoting keeps names such as `user` or `order` from reading as keywords.
pub(crate) fn ident(out: &mut String, name: &str) {
    debug_assert!(
        super::meta::valid_ident(name),
        "unchecked identifier {name:?}"
    );
    out.push('"');
    out.push_str(name);
    out.push('"');
}

/// `CREATE TABLE IF NOT EXISTS "t" ("id" INTEGER PRIMARY KEY, "email" TEXT NOT NULL UNIQUE, ...)`.
pub(crate) fn create_table(meta: &ModelMeta) -> String {
    let mut sql = String::from("CREATE TABLE IF NOT EXISTS ");
    ident(&mut sql, meta.table());
    sql.push_str(" (");
    for (i, column) in meta.columns().iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        ident(&mut sql, column.name());
        sql.push(' ');
        sql.push_str(column.sql_type());
        if i == meta.primary_key_index() {
            sql.push_str(" PRIMARY KEY");
        } else {
            if !column.is_nullable() {
                sql.push_str(" NOT NULL");
            }
            if column.is_unique() {
                sql.push_str(" UNIQUE");
            }
        }
    }
    sql.push(')');
    sql
}

/// The name of the index `#[gluebind(index)]` / `index: true` gives a column (SQLAlchemy's
/// `ix_%(table)s_%(column)s`).
pub(crate) fn index_name(meta: &ModelMeta, column: &str) -> String {
    format!("ix_{}_{column}", meta.table())
}

/// `CREATE INDEX "ix_t_c" ON "t" ("c")`, the index of `column`.
pub(crate) fn create_index(meta: &ModelMeta, column: &str) -> String {
    let mut sql = String::from("CREATE INDEX ");
    ident(&mut sql, &index_name(meta, column));
    sql.push_str(" ON ");
    ident(&mut sql, meta.table());
    sql.push_str(" (");
    ident(&mut sql, column);
    sql.push(')');
    sql
}

/// `DROP TABLE IF EXISTS "t"`.
pub(crate) fn drop_table(meta: &ModelMeta) -> String {
    let mut sql = String::from("DROP TABLE IF EXISTS ");
    ident(&mut sql, meta.table());
    sql
}

fn column_list(sql: &mut String, meta: &ModelMeta) {
    for (i, column) in meta.columns().iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        ident(sql, column.name());
    }
}

/// `INSERT INTO "t" ("a", "b") VALUES ($1, $2)`.
pub(crate) fn insert(meta: &ModelMeta) -> String {
    let mut sql = String::from("INSERT INTO ");
    ident(&mut sql, meta.table());
    sql.push_str(" (");
    column_list(&mut sql, meta);
    sql.push_str(") VALUES (");
    for i in 1..=meta.columns().len() {
        if i > 1 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "${i}");
    }
    sql.push(')');
    sql
}

/// `UPDATE "t" SET "a" = $1, "b" = $2 WHERE "id" = $3`: every column but the key, with the
/// parameters in column order followed by the key (see [`update_params`]).
pub(crate) fn update(meta: &ModelMeta) -> String {
    let others: Vec<usize> = (0..meta.columns().len())
        .filter(|&i| i != meta.primary_key_index())
        .collect();
    update_columns(meta, &others)
}

/// `UPDATE "t" SET "b" = $1 WHERE "id" = $2`: the columns at `columns` (indices in column
/// order), with their parameters in that order followed by the key: a flush sets only the
/// columns that changed, so it cannot undo another column's concurrent change.
pub(crate) fn update_columns(meta: &ModelMeta, columns: &[usize]) -> String {
    let mut sql = String::from("UPDATE ");
    ident(&mut sql, meta.table());
    sql.push_str(" SET ");
    for (n, &i) in columns.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        ident(&mut sql, meta.columns()[i].name());
        let _ = write!(sql, " = ${}", n + 1);
    }
    sql.push_str(" WHERE ");
    ident(&mut sql, meta.primary_key().name());
    let _ = write!(sql, " = ${}", columns.len() + 1);
    sql
}

/// The parameters of [`update`] from the model's values in column order.
pub(crate) fn update_params(meta: &ModelMeta, mut values: Vec<ParamLiteral>) -> Vec<ParamLiteral> {
    let key = values.remove(meta.primary_key_index());
    values.push(key);
    values
}

/// `DELETE FROM "t" WHERE "id" = $1`.
pub(crate) fn delete(meta: &ModelMeta) -> String {
    let mut sql = String::from("DELETE FROM ");
    ident(&mut sql, meta.table());
    sql.push_str(" WHERE ");
    ident(&mut sql, meta.primary_key().name());
    sql.push_str(" = $1");
    sql
}

/// A statement being built: SQL text and its parameters, numbered as they are added.
#[derive(Debug, Default)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) params: Vec<Arg>,
}

impl Statement {
    fn param(&mut self, value: Arg) {
        self.params.push(value);
        let _ = write!(self.sql, "${}", self.params.len());
    }

    /// Renders a condition that is TRUE when `expr` has the truth value `want` under SQL's
    /// three-valued logic, and FALSE otherwise, never NULL.
    ///
    /// Why: GlueSQL 0.20 makes `x AND y` / `x OR y` NULL whenever either side is NULL (SQL
    /// says `NULL OR TRUE` is TRUE, `NULL AND FALSE` is FALSE), so `age < 18 OR age IS NULL`
    /// would drop the NULL ages. Comparisons on NULL-able columns are wrapped in
    /// `COALESCE(..., FALSE)` and NOT is pushed down to them (De Morgan), so AND and OR only
    /// ever see TRUE or FALSE. Comparisons on NOT NULL columns stay plain, so `"id" = $1` is
    /// still a primary-key read for GlueSQL's planner.
    fn truth(&mut self, expr: &Expr, want: bool) {
        match expr {
            // GlueSQL 0.20 fails on `NULL LIKE ...` (an error, not NULL), even inside
            // COALESCE: a NULL never reaches LIKE, and matches neither it nor its negation.
            Expr::Compare(column, Op::Like, value) if column.nullable => {
                self.sql.push_str("CASE WHEN ");
                ident(&mut self.sql, &column.name);
                self.sql.push_str(" IS NULL THEN FALSE ELSE ");
                self.open(false, want);
                ident(&mut self.sql, &column.name);
                self.sql.push_str(" LIKE ");
                self.param(value.clone());
                self.close(false, want);
                self.sql.push_str(" END");
            }
            Expr::Compare(column, op, value) => {
                self.open(column.nullable, want);
                ident(&mut self.sql, &column.name);
                self.sql.push(' ');
                self.sql.push_str(op.sql());
                self.sql.push(' ');
                self.param(value.clone());
                self.close(column.nullable, want);
            }
            Expr::IsNull(column, null) => {
                ident(&mut self.sql, column);
                let is_null = *null == want;
                self.sql
                    .push_str(if is_null { " IS NULL" } else { " IS NOT NULL" });
            }
            // `IN ()` is not SQL; an empty list matches nothing.
            Expr::In(_, values) if values.is_empty() => {
                self.sql.push_str(if want { "FALSE" } else { "TRUE" });
            }
            Expr::In(column, values) => {
                self.open(column.nullable, want);
                ident(&mut self.sql, &column.name);
                self.sql.push_str(" IN (");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.param(value.clone());
                }
                self.sql.push(')');
                self.close(column.nullable, want);
            }
            // T(a AND b) = T(a) AND T(b); F(a AND b) = F(a) OR F(b); and dually for OR.
            Expr::And(all) => self.join(all, want, want),
            Expr::Or(any) => self.join(any, !want, want),
            Expr::Not(inner) => self.truth(inner, !want),
        }
    }

    fn open(&mut self, nullable: bool, want: bool) {
        if nullable {
            self.sql.push_str("COALESCE(");
        }
        if !want {
            self.sql.push_str("NOT (");
        }
    }

    fn close(&mut self, nullable: bool, want: bool) {
        if !want {
            self.sql.push(')');
        }
        if nullable {
            self.sql.push_str(", FALSE)");
        }
    }

    /// `exprs` joined by AND (`and`) or OR, each rendered for `want`; an empty AND is TRUE
    /// and an empty OR is FALSE. Operands that are themselves joins are parenthesised, the
    /// others not, so a key comparison stays a plain term the planner recognises.
    fn join(&mut self, exprs: &[Expr], and: bool, want: bool) {
        if exprs.is_empty() {
            self.sql.push_str(if and { "TRUE" } else { "FALSE" });
        }
        for (i, expr) in exprs.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(if and { " AND " } else { " OR " });
            }
            let compound = is_join(expr);
            if compound {
                self.sql.push('(');
            }
            self.truth(expr, want);
            if compound {
                self.sql.push(')');
            }
        }
    }

    /// `SELECT <what> FROM "t" [WHERE ...]`.
    pub(crate) fn select(meta: &ModelMeta, count: bool, filters: &[Expr]) -> Self {
        let mut s = Self::default();
        s.sql.push_str("SELECT ");
        if count {
            s.sql.push_str("COUNT(*)");
        } else {
            // GlueSQL labels a quoted column with its quotes (`"id"`); an alias labels it
            // `id`, the name `Model::from_row` reads.
            for (i, column) in meta.columns().iter().enumerate() {
                if i > 0 {
                    s.sql.push_str(", ");
                }
                ident(&mut s.sql, column.name());
                s.sql.push_str(" AS ");
                ident(&mut s.sql, column.name());
            }
        }
        s.sql.push_str(" FROM ");
        ident(&mut s.sql, meta.table());
        s.where_clause(filters);
        s
    }

    /// ` WHERE ...` of `filters`, ANDed (nothing for no filters).
    fn where_clause(&mut self, filters: &[Expr]) {
        if !filters.is_empty() {
            self.sql.push_str(" WHERE ");
            self.join(filters, true, true);
        }
    }

    /// `DELETE FROM "t" [WHERE ...]`: a bulk delete of the rows `filters` match.
    pub(crate) fn delete(meta: &ModelMeta, filters: &[Expr]) -> Self {
        let mut s = Self::default();
        s.sql.push_str("DELETE FROM ");
        ident(&mut s.sql, meta.table());
        s.where_clause(filters);
        s
    }

    /// `UPDATE "t" SET "a" = $1, ... [WHERE ...]`: a bulk update of the rows `filters` match,
    /// setting the columns at the indices of `sets` (column order) to their values.
    pub(crate) fn update(meta: &ModelMeta, sets: &[(usize, Arg)], filters: &[Expr]) -> Self {
        let mut s = Self::default();
        s.sql.push_str("UPDATE ");
        ident(&mut s.sql, meta.table());
        s.sql.push_str(" SET ");
        for (n, (index, value)) in sets.iter().enumerate() {
            if n > 0 {
                s.sql.push_str(", ");
            }
            ident(&mut s.sql, meta.columns()[*index].name());
            s.sql.push_str(" = ");
            s.param(value.clone());
        }
        s.where_clause(filters);
        s
    }

    /// ` ORDER BY ...` (nothing for no orders).
    pub(crate) fn order_by(&mut self, orders: &[OrderBy]) {
        for (i, order) in orders.iter().enumerate() {
            self.sql.push_str(if i == 0 { " ORDER BY " } else { ", " });
            ident(&mut self.sql, &order.column);
            self.sql
                .push_str(if order.descending { " DESC" } else { " ASC" });
        }
    }

    /// ` LIMIT $n OFFSET $m`, each only when given (and an offset only when positive), at
    /// most [`MAX_LIMIT`].
    pub(crate) fn limit_offset(&mut self, limit: Option<u64>, offset: Option<u64>) {
        let bounded = |n: u64| {
            Arg::Typed(
                i64::try_from(n.min(MAX_LIMIT))
                    .unwrap_or(0)
                    .into_param_literal(),
            )
        };
        if let Some(limit) = limit {
            self.sql.push_str(" LIMIT ");
            self.param(bounded(limit));
        }
        if let Some(offset) = offset.filter(|&o| o > 0) {
            self.sql.push_str(" OFFSET ");
            self.param(bounded(offset));
        }
    }
}

/// True when `expr` renders as an AND or OR of several terms.
fn is_join(expr: &Expr) -> bool {
    match expr {
        Expr::And(_) | Expr::Or(_) => true,
        Expr::Not(inner) => is_join(inner),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, ModelMeta};

    #[derive(crate::Model)]
    #[gluebind(table = "order")]
    struct Order {
        #[gluebind(primary_key)]
        id: i64,
        #[gluebind(unique)]
        code: String,
        note: Option<String>,
    }

    fn meta() -> &'static ModelMeta {
        Order::META
    }

    fn render(filters: &[crate::model::Filter<Order>]) -> (String, usize) {
        let exprs: Vec<Expr> = filters.iter().map(|f| f.expr.clone()).collect();
        let s = Statement::select(meta(), false, &exprs);
        (s.sql, s.params.len())
    }

    #[test]
    fn ddl_and_writes_quote_every_identifier() {
        assert_eq!(
            create_table(meta()),
            "CREATE TABLE IF NOT EXISTS \"order\" (\"id\" INTEGER PRIMARY KEY, \"code\" TEXT \
             NOT NULL UNIQUE, \"note\" TEXT)"
        );
        assert_eq!(drop_table(meta()), "DROP TABLE IF EXISTS \"order\"");
        assert_eq!(
            insert(meta()),
            "INSERT INTO \"order\" (\"id\", \"code\", \"note\") VALUES ($1, $2, $3)"
        );
        assert_eq!(
            update(meta()),
            "UPDATE \"order\" SET \"code\" = $1, \"note\" = $2 WHERE \"id\" = $3"
        );
        assert_eq!(delete(meta()), "DELETE FROM \"order\" WHERE \"id\" = $1");
    }

    #[test]
    fn filters_render_with_placeholders_only() {
        let (sql, n) = render(&[Order::ID.eq(1), Order::CODE.like("x'--")]);
        assert!(
            sql.ends_with("FROM \"order\" WHERE \"id\" = $1 AND \"code\" LIKE $2"),
            "{sql}"
        );
        assert_eq!(n, 2);
        let (sql, _) = render(&[Order::NOTE.eq("a").or(Order::NOTE.is_null())]);
        assert!(
            sql.ends_with("WHERE (COALESCE(\"note\" = $1, FALSE) OR \"note\" IS NULL)"),
            "{sql}"
        );
        let (sql, _) = render(&[!(Order::ID.gt(3).and(Order::NOTE.ne("b")))]);
        assert!(
            sql.ends_with("WHERE (NOT (\"id\" > $1) OR COALESCE(NOT (\"note\" <> $2), FALSE))"),
            "{sql}"
        );
        let (sql, n) = render(&[Order::ID.is_in([1, 2]), !Order::ID.is_in(Vec::<i64>::new())]);
        assert!(sql.ends_with("WHERE \"id\" IN ($1, $2) AND TRUE"), "{sql}");
        assert_eq!(n, 2);
    }

    #[test]
    fn bulk_statements_bind_set_values_before_filter_values() {
        let exprs = |filters: &[crate::model::Filter<Order>]| -> Vec<Expr> {
            filters.iter().map(|f| f.expr.clone()).collect()
        };
        let all = Statement::delete(meta(), &[]);
        assert_eq!(all.sql, "DELETE FROM \"order\"");
        let some = Statement::delete(meta(), &exprs(&[Order::NOTE.eq("x"), Order::ID.gt(2)]));
        assert_eq!(
            some.sql,
            "DELETE FROM \"order\" WHERE COALESCE(\"note\" = $1, FALSE) AND \"id\" > $2"
        );
        assert_eq!(some.params.len(), 2);
        let sets = [
            (2, Arg::Typed("y'--".into_param_literal())),
            (1, Arg::null()),
        ];
        let update = Statement::update(meta(), &sets, &exprs(&[Order::ID.is_in([1, 2])]));
        assert_eq!(
            update.sql,
            "UPDATE \"order\" SET \"note\" = $1, \"code\" = $2 WHERE \"id\" IN ($3, $4)"
        );
        assert_eq!(update.params.len(), 4);
        assert_eq!(update.params[0].json(), "y'--");
    }

    #[test]
    fn order_limit_offset() {
        let mut s = Statement::select(meta(), false, &[]);
        s.order_by(&[Order::CODE.desc().untyped(), Order::ID.asc().untyped()]);
        s.limit_offset(Some(10), Some(20));
        assert!(
            s.sql
                .ends_with("FROM \"order\" ORDER BY \"code\" DESC, \"id\" ASC LIMIT $1 OFFSET $2"),
            "{}",
            s.sql
        );
        let count = Statement::select(meta(), true, &[]);
        assert_eq!(count.sql, "SELECT COUNT(*) FROM \"order\"");
    }
}
