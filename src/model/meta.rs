//! What the derive records about a model: table, columns, primary key, bind key.

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

/// One column of a model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnMeta {
    name: &'static str,
    sql_type: &'static str,
    nullable: bool,
    unique: bool,
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
            name,
            sql_type,
            nullable,
            unique,
        }
    }

    /// The column's name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
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
}

/// A model's table: what `create_all` creates and queries read. The derive builds it as
/// `Model::META`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelMeta {
    table: &'static str,
    columns: &'static [ColumnMeta],
    primary_key: usize,
    bind_key: Option<&'static str>,
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
            table,
            columns,
            primary_key,
            bind_key,
        }
    }

    /// The table name.
    #[must_use]
    pub const fn table(&self) -> &'static str {
        self.table
    }

    /// The columns, in field order.
    #[must_use]
    pub const fn columns(&self) -> &'static [ColumnMeta] {
        self.columns
    }

    /// The primary key column.
    #[must_use]
    pub const fn primary_key(&self) -> &'static ColumnMeta {
        &self.columns[self.primary_key]
    }

    pub(crate) const fn primary_key_index(&self) -> usize {
        self.primary_key
    }

    /// The bind key from `#[gluebind(bind_key = "...")]` (`None`: the default engine). It is
    /// metadata for now: [`crate::model::create_all_bind`] selects models by it; routing a
    /// model's queries to the engine of its bind is not implemented yet.
    #[must_use]
    pub const fn bind_key(&self) -> Option<&'static str> {
        self.bind_key
    }

    /// The `CREATE TABLE IF NOT EXISTS` statement of this model.
    #[must_use]
    pub fn create_sql(&self) -> String {
        super::sql::create_table(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
