//! Applying the steps: each pending step in one unit of work with its record, rerun on a
//! `CONFLICT` (another isolate applied it or created the record at the same moment).

use super::{record, Migration, Migrations, Op};
use crate::{
    model::{create_all, ModelMeta},
    Error, Result, Session, NO_PARAMS,
};
use std::collections::HashSet;

/// Reruns of one step's unit of work after a `CONFLICT` at commit (isolates starting at
/// once: each rerun finds what the winner committed).
const RETRIES: u32 = 10;

/// What [`Migrations::run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The steps it ran, in order.
    pub applied: Vec<String>,
    /// True when it found a new database: it created the models' tables and recorded every
    /// step as done without running it.
    pub created: bool,
}

impl Migrations {
    /// Brings `session`'s database up to date with the steps and `models` (see the
    /// [module docs](super)): on a new database creates the models' tables and records every
    /// step; otherwise runs, in order, each step not recorded yet (each in its own commit with
    /// its record); then `create_all(models)` and the drift check. Runs on the session's
    /// default engine (steps and record; the models' tables on their binds); call it from the
    /// start-up work, on a session without pending writes. Running it again does nothing.
    ///
    /// # Errors
    /// [`Error::Migration`] for a step that fails (nothing of it written; the steps before it
    /// stay applied), a step changed after a database ran it, a database that ran steps this
    /// code lacks, or two steps of one name; [`Error::Drift`] when a model does not match its
    /// table after the steps; [`Error::Config`] on a session with pending writes; the
    /// session's errors.
    pub async fn run(&self, session: &Session, models: &[&ModelMeta]) -> Result<Report> {
        self.validate()?;
        if session.is_dirty() {
            return Err(Error::config(
                "Migrations::run needs a session without pending writes (each step commits \
                 on its own): commit() or rollback() first",
            ));
        }
        let mut report = Report {
            created: session
                .transaction_with(RETRIES, |s| self.start(s, models))
                .await?,
            ..Report::default()
        };
        let records = record::applied(session).await?;
        for (i, recorded) in records.iter().enumerate() {
            record::matches(recorded, self.steps.get(i))?;
        }
        for (i, step) in self.steps.iter().enumerate().skip(records.len()) {
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let ran = session
                .transaction_with(RETRIES, |s| apply(s, position, step))
                .await?;
            if ran {
                report.applied.push(step.name().to_owned());
            }
        }
        session
            .transaction_with(RETRIES, |s| async move { create_all(&s, models).await })
            .await?;
        Ok(report)
    }

    /// Two steps of one name, or a builder call with a bad argument.
    fn validate(&self) -> Result<()> {
        let mut names = HashSet::new();
        for step in &self.steps {
            if !names.insert(step.name()) {
                return Err(Error::Migration {
                    step: step.name().to_owned(),
                    message: "two steps have this name: give each step a name of its own"
                        .to_owned(),
                });
            }
            if let Some(Op::Invalid(message)) =
                step.ops.iter().find(|op| matches!(op, Op::Invalid(_)))
            {
                return Err(Error::Migration {
                    step: step.name().to_owned(),
                    message: message.clone(),
                });
            }
        }
        Ok(())
    }

    /// Creates the record table if it is missing; on a new database (no record, none of the
    /// models' tables) also the models' tables, recording every step as done. True for a new
    /// database.
    async fn start(&self, s: Session, models: &[&ModelMeta]) -> Result<bool> {
        if s.stored_schema(record::RECORD_TABLE).await?.is_some() {
            return Ok(false);
        }
        let mut new = !models.is_empty();
        for meta in models {
            let bind = s.for_bind(meta.bind_key())?;
            if bind.stored_schema(meta.table()).await?.is_some() {
                new = false;
                break;
            }
        }
        s.execute(record::CREATE_RECORD_TABLE, NO_PARAMS).await?;
        if new {
            create_all(&s, models).await?;
            for (i, step) in self.steps.iter().enumerate() {
                let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
                record::insert(&s, position, step, "created").await?;
            }
        }
        Ok(new)
    }
}

/// Runs `step` as the step at `position` and records it, unless a record is there already
/// (another isolate ran it): then checks that record. True when it ran the step.
async fn apply(s: Session, position: u32, step: &Migration) -> Result<bool> {
    if let Some(recorded) = record::at(&s, position).await? {
        record::matches(&recorded, Some(step))?;
        return Ok(false);
    }
    for op in &step.ops {
        let outcome = match op {
            Op::Sql(sql) => s.execute(sql, NO_PARAMS).await.map(drop),
            Op::Data { run, .. } => run(s.clone()).await,
            Op::Invalid(message) => Err(Error::sql(message.clone())),
        };
        outcome.map_err(|e| in_step(step, op, e))?;
    }
    record::insert(&s, position, step, "applied").await?;
    Ok(true)
}

/// A step's failure as [`Error::Migration`]; a conflict stays one (the caller may rerun).
fn in_step(step: &Migration, op: &Op, error: Error) -> Error {
    if matches!(error, Error::Conflict { .. }) {
        return error;
    }
    let what = match op {
        Op::Sql(sql) => format!("`{sql}`"),
        Op::Data { label, .. } => format!("data step {label:?}"),
        Op::Invalid(_) => "a builder call".to_owned(),
    };
    Error::Migration {
        step: step.name().to_owned(),
        message: format!(
            "{what} failed, so nothing of the step was written (the steps before it stay \
             applied): {error}"
        ),
    }
}
