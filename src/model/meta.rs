//! What a model records about its table: table, columns, primary key, bind key — built by the
//! derive in a `const` (borrowed, zero-cost), or at run time from a column spec (owned: the
//! npm package's `defineModel`).

use std::{borrow::Cow, fmt, ops::Deref, rc::Rc};

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes: the identifiers gluebind puts into SQL text.
/// A `const fn`, so metadata built in a `const` fails to compile when it breaks the rule.
#[must_use]
pub(crate) const fn valid_ident(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let ok = b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit());
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// The column types a model can have, GlueSQL's names: what GlueSQL 0.20 stores and gluebind
/// binds exactly. Left out: DECIMAL and INTERVAL (a bound parameter compares unequal to the
/// stored value), FLOAT32 (f32 rounding), MAP, LIST and POINT (no parameter form).
pub(crate) const SQL_TYPES: &[&str] = &[
    "INTEGER",
    "INT8",
    "INT16",
    "INT32",
    "INT128",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "UINT128",
    "FLOAT",
    "BOOLEAN",
    "TEXT",
    "BYTEA",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "UUID",
    "INET",
];

/// The types of [`SQL_TYPES`] an index cannot serve: their order as keys is not SQL's (FLOAT:
/// `-0.0 = 0.0` in SQL; BYTEA, INET).
const NOT_INDEXABLE: &[&str] = &["FLOAT", "BYTEA", "INET"];

/// True when `a` and `b` are the same string (a `const fn`).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// True when `list` holds `name` (a `const fn`).
const fn listed(list: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < list.len() {
        if same(list[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// True when `sql_type` is one of [`SQL_TYPES`] an index can serve (a `const fn`: the
/// derive's check runs at compile time).
pub(crate) const fn indexable_type(sql_type: &str) -> bool {
    listed(SQL_TYPES, sql_type) && !listed(NOT_INDEXABLE, sql_type)
}

/// The types of [`SQL_TYPES`] an index can serve, for messages.
pub(crate) fn indexable_types() -> Vec<&'static str> {
    SQL_TYPES
        .iter()
        .copied()
        .filter(|t| indexable_type(t))
        .collect()
}

/// `name` as one of [`SQL_TYPES`] (a `'static` string), if it is one.
pub(crate) fn sql_type(name: &str) -> Option<&'static str> {
    SQL_TYPES.iter().copied().find(|t| *t == name)
}

/// One column of a model's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    name: Cow<'static, str>,
    sql_type: &'static str,
    nullable: bool,
    unique: bool,
    /// A secondary index on the column (`#[gluebind(index)]`, `index: true`).
    index: bool,
    /// JavaScript models: read as a `bigint` (else a `number`).
    bigint: bool,
}

impl ColumnMeta {
    /// Used by the derive.
    ///
    /// # Panics
    /// (At compile time, in a `const`.) When `name` is not a valid identifier.
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(
        name: &'static str,
        sql_type: &'static str,
        nullable: bool,
        unique: bool,
    ) -> Self {
        assert!(
            valid_ident(name),
            "gluebind: a column name must match [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes)"
        );
        Self {
            name: Cow::Borrowed(name),
            sql_type,
            nullable,
            unique,
            index: false,
            bigint: false,
        }
    }

    /// A column built at run time; the caller checked `name` ([`valid_ident`]) and the type
    /// (one of [`SQL_TYPES`]).
    pub(crate) fn owned(
        name: String,
        sql_type: &'static str,
        nullable: bool,
        unique: bool,
    ) -> Self {
        debug_assert!(valid_ident(&name), "unchecked column name {name:?}");
        Self {
            name: Cow::Owned(name),
            sql_type,
            nullable,
            unique,
            index: false,
            bigint: false,
        }
    }

    /// Used by the derive for `#[gluebind(index)]` fields.
    ///
    /// # Panics
    /// (At compile time, in a `const`.) When the column's type cannot be indexed.
    #[doc(hidden)]
    #[must_use]
    pub const fn __indexed(mut self) -> Self {
        assert!(
            indexable_type(self.sql_type),
            "gluebind: #[gluebind(index)] is for integer, bool and String fields (not f64 or \
             Vec<u8>: their order as keys differs from SQL's)"
        );
        self.index = true;
        self
    }

    /// The column with a secondary index (`defineModel`'s `index: true`).
    pub(crate) fn with_index(self, index: bool) -> Self {
        Self { index, ..self }
    }

    /// The column read as a JavaScript `bigint` (`defineModel`'s `bigint: true`).
    pub(crate) fn with_bigint(self, bigint: bool) -> Self {
        Self { bigint, ..self }
    }

    /// True when a JavaScript model reads the column as a `bigint` (`bigint: true` in
    /// `defineModel`); such columns are the 64- and 128-bit integer ones.
    #[cfg_attr(not(all(target_arch = "wasm32", feature = "js")), allow(dead_code))]
    pub(crate) const fn is_bigint(&self) -> bool {
        self.bigint
    }

    /// The column's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, without copying when it is `'static`.
    pub(crate) fn name_cow(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    /// Its GlueSQL type (`INTEGER`, `TEXT`, `BOOLEAN`, ...).
    #[must_use]
    pub const fn sql_type(&self) -> &'static str {
        self.sql_type
    }

    /// True for `Option<T>` fields: the column accepts NULL.
    #[must_use]
    pub const fn is_nullable(&self) -> bool {
        self.nullable
    }

    /// True for `#[gluebind(unique)]` fields.
    #[must_use]
    pub const fn is_unique(&self) -> bool {
        self.unique
    }

    /// True for `#[gluebind(index)]` fields: [`create_all`](crate::model::create_all) creates
    /// the index `ix_{table}_{column}`, which equality and range filters on the column read.
    #[must_use]
    pub const fn is_indexed(&self) -> bool {
        self.index
    }
}

/// A model's table: what `create_all` creates and queries read. The derive builds it as
/// `Model::META` (in a `const`, borrowing `'static` data); the npm package's `defineModel`
/// builds one at run time, with the same checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMeta {
    table: Cow<'static, str>,
    columns: Cow<'static, [ColumnMeta]>,
    primary_key: usize,
    bind_key: Option<Cow<'static, str>>,
}

impl ModelMeta {
    /// Used by the derive.
    ///
    /// # Panics
    /// (At compile time, in a `const`.) When the table name is not a valid identifier or
    /// `primary_key` is not a column index.
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(
        table: &'static str,
        columns: &'static [ColumnMeta],
        primary_key: usize,
        bind_key: Option<&'static str>,
    ) -> Self {
        assert!(
            valid_ident(table),
            "gluebind: a table name must match [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes)"
        );
        assert!(
            primary_key < columns.len(),
            "gluebind: the primary key must be one of the columns"
        );
        Self {
            table: Cow::Borrowed(table),
            columns: Cow::Borrowed(columns),
            primary_key,
            bind_key: match bind_key {
                Some(key) => Some(Cow::Borrowed(key)),
                None => None,
            },
        }
    }

    /// Metadata built at run time; the caller checked the table name, that `primary_key` is a
    /// column index and that the columns are valid (see `model::dynamic::spec`).
    pub(crate) fn owned(
        table: String,
        columns: Vec<ColumnMeta>,
        primary_key: usize,
        bind_key: Option<String>,
    ) -> Self {
        debug_assert!(valid_ident(&table) && primary_key < columns.len());
        Self {
            table: Cow::Owned(table),
            columns: Cow::Owned(columns),
            primary_key,
            bind_key: bind_key.map(Cow::Owned),
        }
    }

    /// The table name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table name, without copying when it is `'static`.
    pub(crate) fn table_cow(&self) -> Cow<'static, str> {
        self.table.clone()
    }

    /// The columns, in field order.
    #[must_use]
    pub fn columns(&self) -> &[ColumnMeta] {
        &self.columns
    }

    /// The column named `name`, with its index.
    pub(crate) fn column(&self, name: &str) -> Option<(usize, &ColumnMeta)> {
        self.columns()
            .iter()
            .enumerate()
            .find(|(_, c)| c.name() == name)
    }

    /// The primary key column.
    #[must_use]
    pub fn primary_key(&self) -> &ColumnMeta {
        &self.columns()[self.primary_key]
    }

    pub(crate) const fn primary_key_index(&self) -> usize {
        self.primary_key
    }

    /// The bind key from `#[gluebind(bind_key = "...")]` (`None`: the default engine): the
    /// model's queries, row verbs, flushes and `create_all` run on that bind's engine (see
    /// [`crate::Session::for_bind`]).
    #[must_use]
    pub fn bind_key(&self) -> Option<&str> {
        self.bind_key.as_deref()
    }

    /// The `CREATE TABLE IF NOT EXISTS` statement of this model.
    #[must_use]
    pub fn create_sql(&self) -> String {
        super::sql::create_table(self)
    }
}

/// A model's metadata as the unit of work and the untyped query hold it: the derive's
/// `&'static` (free to copy) or a run-time model's shared one.
#[derive(Clone)]
pub(crate) enum MetaRef {
    Static(&'static ModelMeta),
    Shared(Rc<ModelMeta>),
}

impl Deref for MetaRef {
    type Target = ModelMeta;

    fn deref(&self) -> &ModelMeta {
        match self {
            Self::Static(meta) => meta,
            Self::Shared(meta) => meta,
        }
    }
}

impl fmt::Debug for MetaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetaRef({})", self.table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_types_an_index_can_serve_are_the_planners() {
        use gluesql_core::{ast::Statement, parse_sql::parse, translate::translate};
        for name in SQL_TYPES {
            let sql = format!("CREATE TABLE t (c {name})");
            let Statement::CreateTable { columns, .. } =
                translate(&parse(&sql).unwrap()[0]).unwrap()
            else {
                panic!("{sql}")
            };
            let data_type = &columns.unwrap()[0].data_type;
            assert_eq!(
                indexable_type(name),
                crate::snapshot::indexable(data_type),
                "{name}"
            );
        }
    }

    #[test]
    fn identifiers() {
        assert!(valid_ident("users"));
        assert!(valid_ident("_a1"));
        assert!(!valid_ident("1a"));
        assert!(!valid_ident(""));
        assert!(!valid_ident("a b"));
        assert!(!valid_ident("a\"b"));
        assert!(!valid_ident(&"x".repeat(64)));
    }

    #[test]
    fn static_and_owned_metadata_read_alike() {
        const COLUMNS: &[ColumnMeta] = &[
            ColumnMeta::__new("id", "INTEGER", false, false),
            ColumnMeta::__new("email", "TEXT", false, true),
        ];
        const META: &ModelMeta = &ModelMeta::__new("users", COLUMNS, 0, Some("cache"));
        let owned = ModelMeta::owned(
            "users".into(),
            vec![
                ColumnMeta::owned("id".into(), "INTEGER", false, false),
                ColumnMeta::owned("email".into(), "TEXT", false, true),
            ],
            0,
            Some("cache".into()),
        );
        assert_eq!(*META, owned);
        assert_eq!(owned.create_sql(), META.create_sql());
        assert_eq!(owned.column("email").map(|(i, _)| i), Some(1));
        assert_eq!(owned.bind_key(), Some("cache"));
        assert_eq!(sql_type("TEXT"), Some("TEXT"));
        assert_eq!(sql_type("text"), None);
    }
}
