//! Schema migrations in code: an ordered list of named steps, applied once per database and
//! recorded in the database itself (Alembic's revisions, Drizzle's migrator inside a Durable
//! Object). A Worker has no filesystem, so the steps ship with the worker and run at start-up,
//! before `create_all`:
//!
//! ```
//! use gluebind::{migrate::{Migration, Migrations}, Model, Session};
//!
//! #[derive(Model)]
//! #[gluebind(table = "users")]
//! struct User {
//!     #[gluebind(primary_key)]
//!     id: i64,
//!     email: String,
//!     bio: Option<String>,
//! }
//!
//! fn migrations() -> Migrations {
//!     Migrations::new()
//!         .step(Migration::new("0001_users_bio").add_column("users", "bio TEXT NULL"))
//! }
//!
//! async fn init(session: &Session) -> gluebind::Result<()> {
//!     migrations().run(session, &[User::META]).await?;
//!     Ok(())
//! }
//! ```
//!
//! [`Migrations::run`]:
//! - on a **new database** (no step recorded, and none of the models' tables exists) creates
//!   the models' tables as they are now and records every step as done without running it:
//!   the models already have the shape the steps lead to (Alembic's `create_all` + `stamp`);
//! - otherwise runs the steps not recorded yet, in order, **each in one commit with its
//!   record**: a step applies completely or not at all, and two isolates that start at once
//!   cannot both apply it (the second's commit conflicts, it reruns, and finds the step done —
//!   on `memory://` and `do://`; on `kv://`, as for every write, only within one isolate:
//!   across isolates KV has no compare-and-swap, see docs/guarantees.md);
//! - then runs `create_all` for the models (tables of new models, missing indexes) and checks
//!   that every model matches its table ([`crate::Error::Drift`] otherwise).
//!
//! A step is immutable once a database ran it: the record keeps the step's checksum, and a
//! changed step (or a database that ran steps this code lacks — an older deploy) fails with
//! [`crate::Error::Migration`] before anything runs. To undo a step, write a new one.
//!
//! The record is the table `gluebind_migrations` (`position`, `name`, `checksum`,
//! `applied_at`, `how`); [`applied`] lists it.

mod record;
mod run;
mod snapshot;

pub use record::{applied, AppliedStep, RECORD_TABLE};
pub use run::Report;
pub use snapshot::{next_step, snapshot, NextStep};

use crate::{model::valid_ident, Result, Session};
use std::{borrow::Cow, fmt, future::Future, pin::Pin, rc::Rc};

/// The closure of a data step: it runs in the step's session, before the step's commit.
pub type DataFn = Rc<dyn Fn(Session) -> Pin<Box<dyn Future<Output = Result<()>>>>>;

/// One operation of a step.
#[derive(Clone)]
enum Op {
    /// A statement: `kind` and `args` as the builder was called (what the checksum covers, so
    /// that a change of the SQL gluebind renders for them changes no checksum), `sql` as run.
    Sql {
        kind: &'static str,
        args: Vec<String>,
        sql: String,
    },
    /// A closure over the step's session.
    Data { label: String, run: DataFn },
    /// A builder call with a bad argument: the step fails with this message when it runs.
    Invalid(String),
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sql { sql, .. } => write!(f, "Sql({sql:?})"),
            Self::Data { label, .. } => write!(f, "Data({label:?})"),
            Self::Invalid(message) => write!(f, "Invalid({message:?})"),
        }
    }
}

/// `statement` as the checksum sees it: whitespace runs as one space, no trailing `;`, so
/// that re-indenting a step (a JavaScript template literal, say) changes nothing.
fn canonical(statement: &str) -> String {
    let words: Vec<&str> = statement.split_whitespace().collect();
    words.join(" ").trim_end_matches(';').trim_end().to_owned()
}

/// One named step: its operations run in order, in one session, and commit together with
/// the step's record.
#[derive(Debug, Clone)]
#[must_use]
pub struct Migration {
    name: Cow<'static, str>,
    ops: Vec<Op>,
}

/// `"name"` quoted as a SQL identifier, or the reason it cannot be one.
fn ident(what: &str, name: &str) -> std::result::Result<String, String> {
    if valid_ident(name) {
        Ok(format!("\"{name}\""))
    } else {
        Err(format!(
            "{what} {name:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)"
        ))
    }
}

impl Migration {
    /// A step named `name` (unique in its list; a sortable prefix such as `0002_` keeps the
    /// order readable). A step without operations only records itself.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            ops: Vec::new(),
        }
    }

    /// The step's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a statement; `args` as the checksum sees them (`canonical` text), `sql` as it
    /// runs (as written: a `--` comment ends at its line, a literal keeps its spaces).
    fn push(
        mut self,
        kind: &'static str,
        args: &[&str],
        sql: std::result::Result<String, String>,
    ) -> Self {
        self.ops.push(match sql {
            Ok(sql) => Op::Sql {
                kind,
                args: args.iter().map(|a| canonical(a)).collect(),
                sql,
            },
            Err(message) => Op::Invalid(message),
        });
        self
    }

    /// `ALTER TABLE table ADD COLUMN definition`, where `definition` is a column as in
    /// `CREATE TABLE`: `"bio TEXT NULL"`, `"score INTEGER NOT NULL DEFAULT 0"` (a NOT NULL
    /// column needs a default: the value the existing rows get).
    pub fn add_column(self, table: &str, definition: &str) -> Self {
        let definition = definition.trim();
        let op = ident("table", table).map(|t| format!("ALTER TABLE {t} ADD COLUMN {definition}"));
        self.push("add_column", &[table, definition], op)
    }

    /// `ALTER TABLE table DROP COLUMN column` (its values are gone).
    pub fn drop_column(self, table: &str, column: &str) -> Self {
        let op = ident("table", table).and_then(|t| {
            ident("column", column).map(|c| format!("ALTER TABLE {t} DROP COLUMN {c}"))
        });
        self.push("drop_column", &[table, column], op)
    }

    /// `ALTER TABLE table RENAME COLUMN from TO to`.
    pub fn rename_column(self, table: &str, from: &str, to: &str) -> Self {
        let op = ident("table", table).and_then(|t| {
            let from = ident("column", from)?;
            let to = ident("column", to)?;
            Ok(format!("ALTER TABLE {t} RENAME COLUMN {from} TO {to}"))
        });
        self.push("rename_column", &[table, from, to], op)
    }

    /// `ALTER TABLE from RENAME TO to` (rename the model's `table` in the same deploy).
    pub fn rename_table(self, from: &str, to: &str) -> Self {
        let op = ident("table", from)
            .and_then(|f| ident("table", to).map(|t| format!("ALTER TABLE {f} RENAME TO {t}")));
        self.push("rename_table", &[from, to], op)
    }

    /// `DROP TABLE table` with its rows (`IF EXISTS`).
    pub fn drop_table(self, table: &str) -> Self {
        let op = ident("table", table).map(|t| format!("DROP TABLE IF EXISTS {t}"));
        self.push("drop_table", &[table], op)
    }

    /// Any one SQL statement, as written: `CREATE TABLE ...`, `CREATE INDEX ...`, an
    /// `UPDATE` that fills a new column.
    pub fn sql(self, statement: &str) -> Self {
        let statement = statement.trim();
        self.push("sql", &[statement], Ok(statement.to_owned()))
    }

    /// A data step: `run` gets the step's session (read and write with it; do not commit:
    /// the step commits its writes with its record). `label` names it in the checksum (the
    /// closure's code cannot be): change the label when the closure's meaning changes.
    pub fn data<F, Fut>(mut self, label: &str, run: F) -> Self
    where
        F: Fn(Session) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        let run: DataFn = Rc::new(move |session| Box::pin(run(session)));
        self.ops.push(Op::Data {
            label: label.to_owned(),
            run,
        });
        self
    }

    /// [`Migration::data`] with the closure already boxed (the npm package's bindings).
    pub fn data_boxed(mut self, label: &str, run: DataFn) -> Self {
        self.ops.push(Op::Data {
            label: label.to_owned(),
            run,
        });
        self
    }

    /// The step's checksum (16 hex digits): FNV-1a, 64 bits, over its name and each
    /// operation's kind and arguments as the builder got them (a `sql` statement and a column
    /// definition with their whitespace runs as one space, without a trailing `;`; a data
    /// step by its label), each length-prefixed. The same step gives the same checksum in
    /// Rust and in JavaScript, and from one gluebind release to the next.
    #[must_use]
    pub fn checksum(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |text: &str| {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            for byte in len.to_le_bytes().into_iter().chain(text.bytes()) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat("gluebind-migration-1");
        eat(&self.name);
        for op in &self.ops {
            match op {
                Op::Sql { kind, args, .. } => {
                    eat(kind);
                    args.iter().for_each(|a| eat(a));
                }
                Op::Data { label, .. } => {
                    eat("data");
                    eat(label);
                }
                Op::Invalid(message) => {
                    eat("invalid");
                    eat(message);
                }
            }
        }
        format!("{hash:016x}")
    }
}

/// The ordered steps of a database: [`Migrations::run`] applies the ones it has not run.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Migrations {
    steps: Vec<Migration>,
}

impl Migrations {
    /// No steps yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `step` (steps run in the order they are added; never reorder or remove one a
    /// database ran).
    pub fn step(mut self, step: Migration) -> Self {
        self.steps.push(step);
        self
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Migration] {
        &self.steps
    }
}
