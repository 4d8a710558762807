//! Applying the steps: each pending step in one unit of work with its record, rerun on a
//! `CONFLICT` (another isolate applied it or created the record at the same moment).

use super::{record, Migration, Migrations, Op};
use crate::{
    model::{create_all, ModelMeta},
    Error, Isolation, Result, Session, NO_PARAMS,
};
use std::collections::HashSet;

/// Runs of one unit of work after a `CONFLICT` (isolates starting at once: each rerun finds
/// what the winner committed).
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
    /// Steps the database ran that this code does not have, after all of its own: a newer
    /// deploy's (this code is older, or a deploy is rolling out). Not an error: the models
    /// were checked against the tables as the newer steps left them.
    pub newer: Vec<String>,
}

/// Why a data step may not end the unit of work it runs in.
const IN_STEP: &str = "in a migration's data step: the step commits its writes together with \
                       its record (or none of them); do not commit, roll back or run a \
                       transaction there";

impl Migrations {
    /// Brings `session`'s database up to date with the steps and `models` (see the
    /// [module docs](super)): on a new database creates the models' tables and records every
    /// step; otherwise runs, in order, each step not recorded yet (each in its own commit with
    /// its record, under serializable isolation); then `create_all(models)` and the drift
    /// check. Runs on the session's default engine (steps and record; the models' tables on
    /// their binds); call it from the start-up work, on a session without pending writes.
    /// Running it again does nothing.
    ///
    /// # Errors
    /// [`Error::Migration`] for a step that fails (nothing of it written; the steps before it
    /// stay applied), a step changed after a database ran it, or two steps of one name;
    /// [`Error::Drift`] when a model does not match its table after the steps;
    /// [`Error::Config`] on a session with pending writes; the session's errors.
    pub async fn run(&self, session: &Session, models: &[&ModelMeta]) -> Result<Report> {
        self.validate()?;
        if session.is_dirty() {
            return Err(Error::config(
                "Migrations::run needs a session without pending writes (each step commits \
                 on its own): commit() or rollback() first",
            ));
        }
        // A backfill must see rows inserted while it runs (snapshot isolation would let a
        // concurrent INSERT miss it): every step's reads are checked at its commit.
        let isolation = session.isolation();
        session.set_isolation(Isolation::Serializable);
        let report = self.run_serializable(session, models).await;
        session.set_isolation(isolation);
        report
    }

    async fn run_serializable(&self, session: &Session, models: &[&ModelMeta]) -> Result<Report> {
        let mut report = Report {
            created: retried(session, |s| self.start(s, models)).await?,
            ..Report::default()
        };
        let records = record::applied(session).await?;
        for (i, recorded) in records.iter().enumerate() {
            match self.steps.get(i) {
                Some(step) => record::matches(recorded, i, step)?,
                None => report.newer.push(recorded.name.clone()),
            }
        }
        for (i, step) in self.steps.iter().enumerate().skip(records.len()) {
            if retried(session, |s| apply(s, i, step))
                .await
                .map_err(|e| at_commit(step, e))?
            {
                report.applied.push(step.name().to_owned());
            }
        }
        // A new database got its tables from `start`'s create_all, and no step ran since.
        if !report.created {
            retried(session, |s| async move { create_all(&s, models).await }).await?;
        }
        Ok(report)
    }

    /// Two steps of one name, an empty name, or a builder call with a bad argument.
    fn validate(&self) -> Result<()> {
        let mut names = HashSet::new();
        for step in &self.steps {
            let refuse = |message: &str| Error::Migration {
                step: step.name().to_owned(),
                message: message.to_owned(),
            };
            if step.name().trim().is_empty() {
                return Err(refuse(
                    "a step needs a name (a sortable one, e.g. 0002_users_bio)",
                ));
            }
            if !names.insert(step.name()) {
                return Err(refuse(
                    "two steps have this name: give each step a name of its own",
                ));
            }
            if let Some(Op::Invalid(message)) =
                step.ops.iter().find(|op| matches!(op, Op::Invalid(_)))
            {
                return Err(refuse(message));
            }
        }
        Ok(())
    }

    /// Creates the record table if it is missing; on a new database (no table at all, none
    /// of the models' tables on its bind) also the models' tables, recording every step as
    /// done. True for a new database.
    async fn start(&self, s: Session, models: &[&ModelMeta]) -> Result<bool> {
        let tables = s.table_names().await?;
        if tables.iter().any(|t| t == record::RECORD_TABLE) {
            return Ok(false);
        }
        // Any table (one a step renames, one without a model) means a database that ran
        // before: its steps run.
        let mut new = tables.is_empty();
        for meta in models.iter().filter(|m| m.bind_key().is_some()) {
            let bind = s.for_bind(meta.bind_key())?;
            if bind.stored_schema(meta.table()).await?.is_some() {
                new = false;
            }
        }
        s.execute(record::CREATE_RECORD_TABLE, NO_PARAMS).await?;
        if new {
            create_all(&s, models).await?;
            for (i, step) in self.steps.iter().enumerate() {
                record::insert(&s, i, step, "created").await?;
            }
        }
        Ok(new)
    }
}

/// `work` as one unit of work of `session`, run again on a `CONFLICT` — at commit
/// (`transaction_with`) or while it runs (a do:// snapshot too old to load from).
async fn retried<T, F, Fut>(session: &Session, mut work: F) -> Result<T>
where
    F: FnMut(Session) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut runs = 0;
    loop {
        match session.transaction_with(RETRIES, &mut work).await {
            Err(Error::Conflict { .. }) if runs < RETRIES => runs += 1,
            outcome => return outcome,
        }
    }
}

/// Runs `step` (at index `i`) and records it, unless a record is there already (another
/// isolate ran it): then checks that record. True when it ran the step.
async fn apply(s: Session, i: usize, step: &Migration) -> Result<bool> {
    if let Some(recorded) = record::at(&s, i).await? {
        record::matches(&recorded, i, step)?;
        return Ok(false);
    }
    for op in &step.ops {
        let outcome = match op {
            Op::Sql { sql, .. } => s.execute(sql, NO_PARAMS).await.map(drop),
            Op::Data { run, .. } => {
                s.set_guard(Some(IN_STEP));
                let outcome = run(s.clone()).await;
                s.set_guard(None);
                outcome
            }
            Op::Invalid(message) => Err(Error::sql(message.clone())),
        };
        outcome.map_err(|e| in_step(step, op, e))?;
    }
    if let Some(bind) = s.dirty_binds().first() {
        return Err(Error::Migration {
            step: step.name().to_owned(),
            message: format!(
                "it writes to bind {bind:?}: a step runs on the default engine, where its \
                 record is, and commits with it; change another bind's tables with its own \
                 start-up work"
            ),
        });
    }
    record::insert(&s, i, step, "applied").await?;
    Ok(true)
}

/// A step's failure while it runs, as [`Error::Migration`]; a conflict stays one (it reruns).
fn in_step(step: &Migration, op: &Op, error: Error) -> Error {
    if matches!(error, Error::Conflict { .. } | Error::Migration { .. }) {
        return error;
    }
    let what = match op {
        Op::Sql { sql, .. } => format!("`{sql}`"),
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

/// A step's failure at its commit, named after the step (a conflict that outlasted the
/// reruns stays one).
fn at_commit(step: &Migration, error: Error) -> Error {
    if matches!(error, Error::Conflict { .. } | Error::Migration { .. }) {
        return error;
    }
    Error::Migration {
        step: step.name().to_owned(),
        message: format!(
            "committing the step failed ({error}); it stays pending (unless that error says \
             the outcome is unknown, nothing of it was written) and runs at the next start"
        ),
    }
}
