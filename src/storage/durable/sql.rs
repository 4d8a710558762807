//! The database object's storage in SQL: the SQLite database of a SQLite-backed Durable Object
//! (`ctx.storage.sql`) in a Worker, a real SQLite natively in tests.
//!
//! Tables prefixed `gluebind_`: the format, the tables (schema as JSON, its versions), the
//! rows (key and values as JSON, one row per row; the ids of recent commits among them, see
//! [`COMMIT_TBL`]) and the ID sequences (`gluebind_commits` holds the commit ids formats 1 and
//! 2 wrote). A [`Batch`] is stored all or nothing: in one transaction (`transactionSync` in a
//! Durable Object), or as one statement, which SQLite applies all or nothing by itself.
//!
//! A commit that inserts or updates up to 24 rows (what `POST /users` commits) is one statement:
//! one `INSERT` of its rows and its id, each with its version (but the first batch an object
//! stores also records the format, in a transaction). The database's version is the latest
//! commit's, and a table's version the latest of its stored version and its rows': a table's
//! version is written only where rows alone cannot show it (rows deleted, a schema changed).
//! Each statement a Durable Object runs costs it a call into its SQLite, and a transaction two
//! more, so the commits served most often use one statement and no transaction.

use super::object::{Batch, Persistence, Stored};
use super::wire::SchemaWire;
use crate::{
    error::{Error, Result},
    snapshot::Version,
};
use gluesql_core::{
    data::Schema,
    prelude::{Key, Value},
};

/// A value bound to, or read from, a SQL statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

/// What the object needs of a SQL database.
pub(crate) trait SqlExec: Clone + 'static {
    /// Runs one statement with `?` parameters; its rows.
    ///
    /// # Errors
    /// [`Error::Storage`] when the statement fails.
    fn exec(&self, query: &str, args: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>>;

    /// Runs one statement whose rows, if any, nobody reads (a write).
    ///
    /// # Errors
    /// [`Error::Storage`] when the statement fails.
    fn run(&self, query: &str, args: Vec<SqlValue>) -> Result<()> {
        self.exec(query, args).map(|_| ())
    }

    /// Runs `work` in one transaction: rolled back (nothing stored) when it fails.
    ///
    /// # Errors
    /// What `work` returned, or [`Error::Storage`] when the transaction itself fails.
    fn transaction(&self, work: Box<dyn FnOnce() -> Result<()>>) -> Result<()>;
}

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS gluebind_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gluebind_tables (name TEXT PRIMARY KEY, schema TEXT NOT NULL, \
     schema_version INTEGER NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gluebind_rows (tbl TEXT NOT NULL, key TEXT NOT NULL, \
     row TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID",
    // `next` as text: SQLite's integers cross to JavaScript as doubles, exact only to 2^53.
    "CREATE TABLE IF NOT EXISTS gluebind_sequences (name TEXT PRIMARY KEY, next TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gluebind_commits (id TEXT PRIMARY KEY, version INTEGER NOT NULL)",
];

/// The layout's version, kept in `gluebind_meta` so that a later layout can recognise this one.
/// Format 3 keeps commit ids among the rows; format 2 derives the versions (see the module
/// documentation); format 1 wrote them with every commit. This one reads all three.
const FORMAT: i64 = 3;

/// The `tbl` of the rows that hold commit ids (`key`: the id, `version`: the commit's), as a
/// SQL literal: a BLOB, which equals no table's name (every name is TEXT).
const COMMIT_TBL: &str = "X'00'";

/// Most rows one `INSERT` writes: a Durable Object's SQL binds at most 100 parameters (4 a row).
const ROWS_PER_INSERT: usize = 25;

/// True when `batch` is stored by one statement (see the module documentation).
fn one_statement(batch: &Batch) -> bool {
    batch.commit.is_some()
        && batch.forget_below.is_none()
        && batch.renamed.is_empty()
        && batch.schemas.is_empty()
        && batch.cleared.is_empty()
        && batch.sequences.is_empty()
        && batch.rows.len() < ROWS_PER_INSERT
        && batch.rows.iter().all(|(_, _, row)| row.is_some())
}

/// [`Persistence`] over a SQL database.
#[derive(Debug, Clone)]
pub(crate) struct SqlPersistence<S> {
    sql: S,
    /// True until this format is recorded, with the first batch stored (an object that only
    /// reads leaves storage as an older gluebind can read it).
    record_format: bool,
}

impl<S: SqlExec> SqlPersistence<S> {
    pub fn new(sql: S) -> Self {
        Self {
            sql,
            record_format: true,
        }
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Storage {
        message: format!("the database object's storage holds a bad {what}: {detail}"),
    }
}

fn text(v: &SqlValue, what: &str) -> Result<String> {
    match v {
        SqlValue::Text(s) => Ok(s.clone()),
        other => Err(corrupt(what, format!("{other:?} is not text"))),
    }
}

fn int(v: &SqlValue, what: &str) -> Result<i64> {
    match v {
        SqlValue::Integer(n) => Ok(*n),
        other => Err(corrupt(what, format!("{other:?} is not an integer"))),
    }
}

fn version(v: &SqlValue, what: &str) -> Result<Version> {
    let n = int(v, what)?;
    Version::try_from(n).map_err(|_| corrupt(what, n))
}

/// A version as SQL holds it (versions stay far below 2^53, where Durable Objects' SQL
/// numbers are exact).
fn stored_version(v: Version) -> SqlValue {
    SqlValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

/// One spelling per key GlueSQL holds equal (decimals 1, 1.0 and 1.00), so that a write
/// through any of them replaces or deletes the one stored row.
fn canonical(key: &Key) -> std::borrow::Cow<'_, Key> {
    match key {
        Key::Decimal(d) => std::borrow::Cow::Owned(Key::Decimal(d.normalize())),
        _ => std::borrow::Cow::Borrowed(key),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<SqlValue> {
    serde_json::to_string(value)
        .map(SqlValue::Text)
        .map_err(|e| Error::Storage {
            message: format!("cannot encode for the database object's storage: {e}"),
        })
}

fn parse<T: serde::de::DeserializeOwned>(v: &SqlValue, what: &str) -> Result<T> {
    serde_json::from_str(&text(v, what)?).map_err(|e| corrupt(what, e))
}

fn column<'a>(row: &'a [SqlValue], i: usize, what: &str) -> Result<&'a SqlValue> {
    row.get(i)
        .ok_or_else(|| corrupt(what, format!("a row without column {i}")))
}

/// Writes `batch` (inside the caller's transaction).
fn write<S: SqlExec>(sql: &S, batch: &Batch) -> Result<()> {
    let run = |q: &str, args: Vec<SqlValue>| sql.run(q, args);
    // The version is the latest commit's; written as well where old commit ids are forgotten
    // (rare), as a floor.
    if batch.commit.is_none() || batch.forget_below.is_some() {
        run(
            "INSERT OR REPLACE INTO gluebind_meta (name, value) VALUES ('version', ?)",
            vec![stored_version(batch.version)],
        )?;
    }
    for (old, new) in &batch.renamed {
        run(
            "UPDATE gluebind_rows SET tbl = ? WHERE tbl = ?",
            vec![SqlValue::Text(new.clone()), SqlValue::Text(old.clone())],
        )?;
    }
    for (name, schema) in &batch.schemas {
        let name_v = SqlValue::Text(name.clone());
        match schema {
            Some(s) => run(
                "INSERT OR REPLACE INTO gluebind_tables (name, schema, schema_version, version) \
                 VALUES (?, ?, ?, ?)",
                vec![
                    name_v,
                    json(&s.schema)?,
                    stored_version(s.schema_version),
                    stored_version(s.version),
                ],
            )?,
            None => {
                run(
                    "DELETE FROM gluebind_tables WHERE name = ?",
                    vec![name_v.clone()],
                )?;
                run("DELETE FROM gluebind_rows WHERE tbl = ?", vec![name_v])?;
            }
        }
    }
    for name in &batch.cleared {
        run(
            "DELETE FROM gluebind_rows WHERE tbl = ?",
            vec![SqlValue::Text(name.clone())],
        )?;
    }
    for (name, v) in &batch.table_versions {
        // Rows written carry the version; a deleted row leaves none behind.
        let deletes = batch
            .rows
            .iter()
            .any(|(table, _, row)| table == name && row.is_none());
        if !deletes {
            continue;
        }
        run(
            "UPDATE gluebind_tables SET version = ? WHERE name = ?",
            vec![stored_version(*v), SqlValue::Text(name.clone())],
        )?;
    }
    // Rows written, and the commit's id after them, by INSERTs of up to ROWS_PER_INSERT rows:
    // each its `VALUES` tuple and its arguments.
    let id_values = format!("({COMMIT_TBL}, ?, '', ?)");
    let mut upserts: Vec<(&str, Vec<SqlValue>)> = Vec::new();
    for (name, key, row) in &batch.rows {
        let (tbl, key) = (SqlValue::Text(name.clone()), json(&canonical(key))?);
        match row {
            Some((values, v)) => {
                upserts.push((
                    "(?, ?, ?, ?)",
                    vec![tbl, key, json(values)?, stored_version(*v)],
                ));
            }
            None => run(
                "DELETE FROM gluebind_rows WHERE tbl = ? AND key = ?",
                vec![tbl, key],
            )?,
        }
    }
    if let Some((id, v)) = batch.commit {
        upserts.push((
            &id_values,
            vec![SqlValue::Text(id.to_string()), stored_version(v)],
        ));
    }
    let mut upserts = upserts.into_iter().peekable();
    while upserts.peek().is_some() {
        let chunk: Vec<(&str, Vec<SqlValue>)> = upserts.by_ref().take(ROWS_PER_INSERT).collect();
        let tuples: Vec<&str> = chunk.iter().map(|(tuple, _)| *tuple).collect();
        let query = format!(
            "INSERT OR REPLACE INTO gluebind_rows (tbl, key, row, version) VALUES {}",
            tuples.join(", ")
        );
        run(
            &query,
            chunk.into_iter().flat_map(|(_, args)| args).collect(),
        )?;
    }
    for (name, next) in &batch.sequences {
        run(
            "INSERT OR REPLACE INTO gluebind_sequences (name, next) VALUES (?, ?)",
            vec![
                SqlValue::Text(name.clone()),
                SqlValue::Text(next.to_string()),
            ],
        )?;
    }
    if let Some(below) = batch.forget_below {
        run(
            &format!("DELETE FROM gluebind_rows WHERE tbl = {COMMIT_TBL} AND version <= ?"),
            vec![stored_version(below)],
        )?;
        run(
            "DELETE FROM gluebind_commits WHERE version <= ?",
            vec![stored_version(below)],
        )?;
    }
    Ok(())
}

impl<S: SqlExec> Persistence for SqlPersistence<S> {
    fn load(&mut self) -> Result<Stored> {
        for statement in SCHEMA {
            self.sql.exec(statement, Vec::new())?;
        }
        let mut stored = Stored::default();
        for row in self
            .sql
            .exec("SELECT name, value FROM gluebind_meta", Vec::new())?
        {
            let name = text(column(&row, 0, "meta")?, "meta name")?;
            let value = column(&row, 1, "meta")?;
            match name.as_str() {
                "version" => stored.version = version(value, "version")?,
                "format" if !(1..=FORMAT).contains(&int(value, "format")?) => {
                    return Err(Error::Storage {
                        message: format!(
                            "the database object's storage is in format {} but this gluebind \
                             reads formats 1 to {FORMAT}: deploy the gluebind version that \
                             wrote it",
                            int(value, "format")?
                        ),
                    })
                }
                _ => {}
            }
        }
        for row in self.sql.exec(
            "SELECT name, schema, schema_version, version FROM gluebind_tables",
            Vec::new(),
        )? {
            let name = text(column(&row, 0, "table")?, "table name")?;
            let schema: Schema = parse(column(&row, 1, "table")?, "table schema")?;
            let wire = SchemaWire {
                schema,
                schema_version: version(column(&row, 2, "table")?, "schema version")?,
                version: version(column(&row, 3, "table")?, "table version")?,
            };
            stored.tables.insert(name, (wire, Vec::new()));
        }
        for row in self.sql.exec(
            "SELECT tbl, key, row, version FROM gluebind_rows WHERE typeof(tbl) = 'text'",
            Vec::new(),
        )? {
            let name = text(column(&row, 0, "row")?, "row table")?;
            let key: Key = parse(column(&row, 1, "row")?, "row key")?;
            let values: Vec<Value> = parse(column(&row, 2, "row")?, "row values")?;
            let v = version(column(&row, 3, "row")?, "row version")?;
            let table = stored.tables.get_mut(&name).ok_or_else(|| {
                corrupt("row", format!("a row of table {name}, which has no schema"))
            })?;
            table.0.version = table.0.version.max(v);
            table.1.push((key, values, v));
        }
        for row in self
            .sql
            .exec("SELECT name, next FROM gluebind_sequences", Vec::new())?
        {
            stored.sequences.insert(
                text(column(&row, 0, "sequence")?, "sequence name")?,
                text(column(&row, 1, "sequence")?, "sequence")?
                    .parse()
                    .map_err(|e| corrupt("sequence", e))?,
            );
        }
        let commits = self
            .sql
            .exec("SELECT id, version FROM gluebind_commits", Vec::new())?
            .into_iter()
            .chain(self.sql.exec(
                &format!("SELECT key, version FROM gluebind_rows WHERE tbl = {COMMIT_TBL}"),
                Vec::new(),
            )?);
        for row in commits {
            let id = text(column(&row, 0, "commit")?, "commit id")?;
            let id: u64 = id.parse().map_err(|e| corrupt("commit id", e))?;
            let v = version(column(&row, 1, "commit")?, "commit version")?;
            stored.version = stored.version.max(v);
            stored.commits.push((id, v));
        }
        stored.commits.sort_unstable_by_key(|(_, v)| *v);
        Ok(stored)
    }

    fn store(&mut self, batch: &Batch) -> Result<()> {
        if !self.record_format && one_statement(batch) {
            return write(&self.sql, batch);
        }
        let (sql, batch) = (self.sql.clone(), batch.clone());
        let record_format = self.record_format;
        self.sql.transaction(Box::new(move || {
            if record_format {
                // Written as this format from now on: an older gluebind refuses it, rather than
                // read versions it does not derive.
                sql.run(
                    "INSERT OR REPLACE INTO gluebind_meta (name, value) VALUES ('format', ?)",
                    vec![SqlValue::Integer(FORMAT)],
                )?;
            }
            write(&sql, &batch)
        }))?;
        self.record_format = false;
        Ok(())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod sqlite {
    //! [`SqlExec`] over a real SQLite (rusqlite), for native tests.
    use super::{SqlExec, SqlValue};
    use crate::error::{Error, Result};
    use std::{
        cell::{Cell, RefCell},
        rc::Rc,
    };

    /// One in-memory SQLite database, shared by its clones; `fail_at` makes the n-th next
    /// statement fail (a storage fault in the middle of a transaction); `statements` counts
    /// the statements run.
    #[derive(Clone)]
    pub(crate) struct Sqlite {
        pub conn: Rc<rusqlite::Connection>,
        pub fail_at: Rc<RefCell<Option<usize>>>,
        pub statements: Rc<Cell<usize>>,
        /// Transactions begun.
        pub transactions: Rc<Cell<usize>>,
    }

    impl Sqlite {
        pub fn new() -> Self {
            Self {
                conn: Rc::new(rusqlite::Connection::open_in_memory().expect("sqlite opens")),
                fail_at: Rc::new(RefCell::new(None)),
                statements: Rc::new(Cell::new(0)),
                transactions: Rc::new(Cell::new(0)),
            }
        }
    }

    fn storage(e: impl std::fmt::Display) -> Error {
        Error::Storage {
            message: e.to_string(),
        }
    }

    impl SqlExec for Sqlite {
        fn exec(&self, query: &str, args: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>> {
            self.statements.set(self.statements.get() + 1);
            {
                let mut fail = self.fail_at.borrow_mut();
                match *fail {
                    Some(0) => {
                        *fail = None;
                        return Err(storage("injected SQL failure"));
                    }
                    Some(n) => *fail = Some(n - 1),
                    None => {}
                }
            }
            let mut statement = self.conn.prepare(query).map_err(storage)?;
            let params = args.into_iter().map(|a| match a {
                SqlValue::Null => rusqlite::types::Value::Null,
                SqlValue::Integer(n) => rusqlite::types::Value::Integer(n),
                SqlValue::Text(s) => rusqlite::types::Value::Text(s),
            });
            let columns = statement.column_count();
            let mut rows = statement
                .query(rusqlite::params_from_iter(params))
                .map_err(storage)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(storage)? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    values.push(match row.get_ref(i).map_err(storage)? {
                        rusqlite::types::ValueRef::Integer(n) => SqlValue::Integer(n),
                        rusqlite::types::ValueRef::Text(t) => {
                            SqlValue::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        _ => SqlValue::Null,
                    });
                }
                out.push(values);
            }
            Ok(out)
        }

        fn transaction(&self, work: Box<dyn FnOnce() -> Result<()>>) -> Result<()> {
            self.transactions.set(self.transactions.get() + 1);
            self.conn.execute_batch("BEGIN").map_err(storage)?;
            match work() {
                Ok(()) => self.conn.execute_batch("COMMIT").map_err(storage),
                Err(e) => {
                    self.conn.execute_batch("ROLLBACK").map_err(storage)?;
                    Err(e)
                }
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::{sqlite::Sqlite, SqlPersistence};
    use crate::storage::durable::{
        object::{apply_batch, Batch, MemoryPersistence, Persistence, Stored},
        wire::SchemaWire,
    };
    use gluesql_core::{
        data::Schema,
        prelude::{Key, Value},
    };

    fn schema(name: &str) -> SchemaWire {
        SchemaWire {
            schema: Schema {
                table_name: name.to_owned(),
                column_defs: None,
                indexes: Vec::new(),
                engine: None,
                foreign_keys: Vec::new(),
                comment: None,
            },
            schema_version: 3,
            version: 4,
        }
    }

    /// Batches of every kind, each checked against the in-memory reference after it.
    fn batches() -> Vec<Batch> {
        let row = |n: i64, v: u64| {
            (
                "t".to_owned(),
                Key::I64(n),
                Some((
                    vec![
                        Value::I64(n),
                        Value::Str(format!("r{n}")),
                        Value::Uuid(u128::MAX),
                    ],
                    v,
                )),
            )
        };
        vec![
            Batch {
                version: 1,
                schemas: vec![
                    ("t".into(), Some(schema("t"))),
                    ("u".into(), Some(schema("u"))),
                ],
                cleared: vec!["t".into()],
                rows: vec![row(1, 1), row(2, 1)],
                commit: Some((u64::MAX, 1)),
                ..Batch::default()
            },
            Batch {
                version: 2,
                table_versions: vec![("t".into(), 2)],
                rows: vec![row(2, 2), ("t".into(), Key::I64(1), None), row(3, 2)],
                sequences: vec![("t".into(), 17)],
                commit: Some((7, 2)),
                ..Batch::default()
            },
            Batch {
                version: 3,
                schemas: vec![("u".into(), None)],
                commit: Some((8, 3)),
                forget_below: Some(1),
                ..Batch::default()
            },
        ]
    }

    fn sorted(mut s: Stored) -> Stored {
        for t in s.tables.values_mut() {
            t.1.sort_by(|a, b| a.0.cmp(&b.0));
        }
        s.commits.sort_unstable();
        s
    }

    #[test]
    fn sql_storage_gives_back_what_it_stored() {
        let sqlite = Sqlite::new();
        let mut sql = SqlPersistence::new(sqlite.clone());
        assert_eq!(
            sql.load().unwrap(),
            Stored::default(),
            "a new database is empty"
        );
        let mut expected = Stored::default();
        for batch in batches() {
            sql.store(&batch).unwrap();
            apply_batch(&mut expected, &batch);
            // Opened again (a Durable Object evicted and started over).
            let reopened = SqlPersistence::new(sqlite.clone()).load().unwrap();
            assert_eq!(
                sorted(reopened),
                sorted(expected.clone()),
                "after {batch:?}"
            );
        }
        assert_eq!(expected.tables.len(), 1);
        assert_eq!(expected.commits, vec![(7, 2), (8, 3)]);
    }

    #[test]
    fn a_failed_statement_stores_nothing_of_its_batch() {
        let sqlite = Sqlite::new();
        let mut sql = SqlPersistence::new(sqlite.clone());
        sql.load().unwrap();
        let all = batches();
        sql.store(&all[0]).unwrap();
        let before = sorted(sql.load().unwrap());
        // Every statement of the second batch, in turn, fails.
        let statements = {
            let scratch = Sqlite::new();
            let mut sql = SqlPersistence::new(scratch.clone());
            sql.load().unwrap();
            sql.store(&all[0]).unwrap();
            let from = scratch.statements.get();
            sql.store(&all[1]).unwrap();
            scratch.statements.get() - from
        };
        assert!(statements >= 4, "{statements}");
        for at in 0..statements {
            *sqlite.fail_at.borrow_mut() = Some(at);
            assert!(sql.store(&all[1]).is_err(), "statement {at} failed");
            assert_eq!(
                sorted(sql.load().unwrap()),
                before,
                "statement {at}: all or nothing"
            );
        }
        *sqlite.fail_at.borrow_mut() = None;
        sql.store(&all[1]).unwrap();
        assert_ne!(sorted(sql.load().unwrap()), before);
    }

    #[test]
    fn memory_and_sql_persistence_agree() {
        let mut memory = MemoryPersistence::new();
        let mut sql = SqlPersistence::new(Sqlite::new());
        sql.load().unwrap();
        for batch in batches() {
            memory.store(&batch).unwrap();
            sql.store(&batch).unwrap();
        }
        assert_eq!(sorted(memory.load().unwrap()), sorted(sql.load().unwrap()));
    }

    /// A commit that inserts or updates one row (what `POST /users` commits) is one statement
    /// and no transaction: each is a call into the Durable Object's SQLite.
    #[test]
    fn a_one_row_commit_is_one_statement() {
        let sqlite = Sqlite::new();
        let mut sql = SqlPersistence::new(sqlite.clone());
        sql.load().unwrap();
        sql.store(&batches()[0]).unwrap();
        let before = sqlite.statements.get();
        let transactions = sqlite.transactions.get();
        let row = ("t".to_owned(), Key::I64(9), Some((vec![Value::I64(9)], 5)));
        let batch = Batch {
            version: 5,
            table_versions: vec![("t".into(), 5)],
            rows: vec![row],
            commit: Some((99, 5)),
            ..Batch::default()
        };
        sql.store(&batch).unwrap();
        assert_eq!(sqlite.statements.get() - before, 1);
        assert_eq!(sqlite.transactions.get(), transactions, "no transaction");
        let stored = SqlPersistence::new(sqlite).load().unwrap();
        assert_eq!(stored.version, 5, "the latest commit's");
        assert_eq!(stored.tables["t"].0.version, 5, "the latest row's");
        assert!(stored.commits.contains(&(99, 5)), "its id is kept");
    }

    /// Many rows go by INSERTs of up to 25 rows (a Durable Object binds at most 100 values a
    /// statement), inside one transaction.
    #[test]
    fn many_rows_are_written_a_few_statements_at_a_time() {
        let sqlite = Sqlite::new();
        let mut sql = SqlPersistence::new(sqlite.clone());
        sql.load().unwrap();
        sql.store(&batches()[0]).unwrap();
        let (before, transactions) = (sqlite.statements.get(), sqlite.transactions.get());
        let rows = (10..70)
            .map(|n| ("t".to_owned(), Key::I64(n), Some((vec![Value::I64(n)], 5))))
            .collect::<Vec<_>>();
        let batch = Batch {
            version: 5,
            table_versions: vec![("t".into(), 5)],
            rows,
            commit: Some((99, 5)),
            ..Batch::default()
        };
        sql.store(&batch).unwrap();
        // 60 rows and the id: 25 + 25 + 11.
        assert_eq!(sqlite.statements.get() - before, 3);
        assert_eq!(sqlite.transactions.get(), transactions + 1);
        let stored = SqlPersistence::new(sqlite).load().unwrap();
        assert_eq!(stored.tables["t"].1.len(), 62);
        assert!(stored.commits.contains(&(99, 5)));
    }

    /// Storage written by the format before (the versions written with every commit) reads
    /// as it was, and is written in this format from then on.
    #[test]
    fn storage_of_format_one_is_read() {
        let sqlite = Sqlite::new();
        SqlPersistence::new(sqlite.clone()).load().unwrap();
        sqlite
            .conn
            .execute_batch(
                "INSERT OR REPLACE INTO gluebind_meta (name, value) VALUES ('format', 1);
                 INSERT OR REPLACE INTO gluebind_meta (name, value) VALUES ('version', 12);
                 INSERT INTO gluebind_tables VALUES ('t', '{\"table_name\":\"t\",\"column_defs\":null,\"indexes\":[],\"engine\":null,\"foreign_keys\":[],\"comment\":null}', 3, 11);
                 INSERT INTO gluebind_rows VALUES ('t', '{\"I64\":1}', '[{\"I64\":1}]', 7);
                 INSERT INTO gluebind_commits VALUES ('5', 10);",
            )
            .unwrap();
        let mut sql = SqlPersistence::new(sqlite.clone());
        let stored = sql.load().unwrap();
        assert_eq!(stored.version, 12);
        assert_eq!(stored.tables["t"].0.version, 11, "a row deleted at 11");
        let format = || -> i64 {
            sqlite
                .conn
                .query_row(
                    "SELECT value FROM gluebind_meta WHERE name = 'format'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(format(), 1, "reading leaves it as it was");
        let batch = Batch {
            version: 13,
            commit: Some((6, 13)),
            ..Batch::default()
        };
        sql.store(&batch).unwrap();
        assert_eq!(
            format(),
            super::FORMAT,
            "the first write records this format"
        );
        let stored = SqlPersistence::new(sqlite.clone()).load().unwrap();
        assert_eq!(stored.version, 13);
        assert_eq!(
            stored.commits,
            vec![(5, 10), (6, 13)],
            "ids kept by either format"
        );
        // Forgetting old ids forgets them in either place.
        sql.store(&Batch {
            version: 14,
            commit: Some((7, 14)),
            forget_below: Some(13),
            ..Batch::default()
        })
        .unwrap();
        let stored = SqlPersistence::new(sqlite.clone()).load().unwrap();
        assert_eq!(stored.commits, vec![(7, 14)]);
    }

    #[test]
    fn storage_of_another_format_is_refused() {
        let sqlite = Sqlite::new();
        SqlPersistence::new(sqlite.clone()).load().unwrap();
        sqlite
            .conn
            .execute_batch(
                "INSERT OR REPLACE INTO gluebind_meta (name, value) VALUES ('format', 4)",
            )
            .unwrap();
        let err = SqlPersistence::new(sqlite).load().unwrap_err();
        assert!(err.to_string().contains("format 4"), "{err}");
    }
}
