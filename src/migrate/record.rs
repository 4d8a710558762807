//! The record of applied steps: the table `gluebind_migrations`, one row per step, keyed by
//! the step's position so that two sessions recording the same step collide at commit.

use super::Migration;
use crate::{params, Error, Result, Session, NO_PARAMS};

/// The table that records which steps a database ran.
pub const RECORD_TABLE: &str = "gluebind_migrations";

pub(super) const CREATE_RECORD_TABLE: &str = "CREATE TABLE IF NOT EXISTS gluebind_migrations (\
     position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, checksum TEXT NOT NULL, \
     applied_at TEXT NOT NULL, how TEXT NOT NULL)";

const SELECT: &str = "SELECT position, name, checksum, applied_at, how FROM gluebind_migrations";

/// A step a database ran (or recorded as done when it was created), as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedStep {
    /// 1 for the first step of the list.
    pub position: u32,
    /// The step's name.
    pub name: String,
    /// The step's checksum when it ran ([`Migration::checksum`]).
    pub checksum: String,
    /// When it was recorded: UTC, ISO 8601 (`2026-12-06T03:50:00.123Z`).
    pub applied_at: String,
    /// `"applied"` (its operations ran on this database) or `"created"` (the database was
    /// created with the models' tables already in the step's shape: recorded, not run).
    pub how: String,
}

fn from_rows(rows: &crate::Rows) -> Result<Vec<AppliedStep>> {
    rows.iter()
        .map(|row| {
            let position: i64 = row.get("position")?;
            Ok(AppliedStep {
                position: u32::try_from(position).map_err(|_| Error::Storage {
                    message: format!("{RECORD_TABLE} holds position {position}"),
                })?,
                name: row.get("name")?,
                checksum: row.get("checksum")?,
                applied_at: row.get("applied_at")?,
                how: row.get("how")?,
            })
        })
        .collect()
}

/// The steps `session`'s database has recorded, in order (none before the first
/// [`super::Migrations::run`]): for a debug route or a deploy check.
///
/// # Errors
/// The session's errors.
pub async fn applied(session: &Session) -> Result<Vec<AppliedStep>> {
    if session.stored_schema(RECORD_TABLE).await?.is_none() {
        return Ok(Vec::new());
    }
    let rows = session
        .execute(&format!("{SELECT} ORDER BY position"), NO_PARAMS)
        .await?
        .into_rows()?;
    from_rows(&rows)
}

/// The record position of the step at index `i` of the list (1 for the first).
fn position(i: usize) -> i64 {
    i64::try_from(i).map_or(i64::MAX, |i| i + 1)
}

/// The record of the step at index `i`, if there is one.
pub(super) async fn at(session: &Session, i: usize) -> Result<Option<AppliedStep>> {
    let rows = session
        .execute(
            &format!("{SELECT} WHERE position = $1"),
            params![position(i)],
        )
        .await?
        .into_rows()?;
    Ok(from_rows(&rows)?.pop())
}

/// Records `step` as the step at index `i`.
pub(super) async fn insert(session: &Session, i: usize, step: &Migration, how: &str) -> Result<()> {
    session
        .execute(
            "INSERT INTO gluebind_migrations (position, name, checksum, applied_at, how) \
             VALUES ($1, $2, $3, $4, $5)",
            params![position(i), step.name(), step.checksum(), now_iso(), how],
        )
        .await?;
    Ok(())
}

/// Fails unless `record` is what the code's `step`, at index `i`, records.
pub(super) fn matches(record: &AppliedStep, i: usize, step: &Migration) -> Result<()> {
    let same = i64::from(record.position) == position(i)
        && record.name == step.name()
        && record.checksum == step.checksum();
    if same {
        return Ok(());
    }
    Err(Error::Migration {
        step: step.name().to_owned(),
        message: format!(
            "step {} is {:?} (checksum {}) in the code, but the database ran {:?} (checksum \
             {}) at position {}: a step must not change once a database ran it. Put the \
             step back as it was and add a new step for the change",
            position(i),
            step.name(),
            step.checksum(),
            record.name,
            record.checksum,
            record.position
        ),
    })
}

/// Now, UTC, ISO 8601 with milliseconds.
fn now_iso() -> String {
    #[cfg(target_arch = "wasm32")]
    let ms = js_sys::Date::now() as i64;
    #[cfg(not(target_arch = "wasm32"))]
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    gluesql_core::chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
