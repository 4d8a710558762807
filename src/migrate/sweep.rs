//! Deleting, in bounded batches, the rows of tables dropped in place: on `kv://` a `DROP
//! TABLE` of a table more rows hold than one commit could delete renames it to a hidden name
//! (a schema-only commit), and its rows stay in KV until swept.

use crate::{value::param, Result, Session, NO_PARAMS};

/// Keys one sweep deletes at most: a share of a session's KV operations, beside the reads.
const SWEEP_KEYS: usize = 400;

/// What one [`sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Rows deleted.
    pub rows: usize,
    /// Tables dropped for good (their rows all deleted).
    pub tables: usize,
    /// Tables dropped in place whose rows are still stored, after this sweep.
    pub left: usize,
}

/// `kv://`: deletes, in one commit, a batch of the rows of a table `DROP TABLE` dropped in
/// place (at most about 400 keys with their unique and index entries; the table goes for
/// good once empty). Nothing to do on other engines, and when no such table is left.
/// [`super::Migrations::run`] sweeps once at every start-up; call it more often (a Cron
/// Trigger, `ctx.waitUntil`) to reclaim a large table's keys sooner. Tables without a primary
/// key are left (their rows cannot be named).
///
/// # Errors
/// [`crate::Error::Config`] on a session with pending writes; the session's errors (a
/// `CONFLICT` when another isolate swept the same rows at once: nothing is lost, sweep again).
pub async fn sweep(session: &Session) -> Result<Swept> {
    if session.is_dirty() {
        return Err(crate::Error::config(
            "sweep needs a session without pending writes: commit() or rollback() first",
        ));
    }
    let tables = session.dropped_tables().await?;
    let mut swept = Swept {
        left: tables.len(),
        ..Swept::default()
    };
    let Some((name, Some(key), per_row)) = tables.into_iter().find(|(_, key, _)| key.is_some())
    else {
        return Ok(swept);
    };
    let (table, key) = (quoted(&name), quoted(&key));
    let batch = (SWEEP_KEYS / per_row.max(1)).max(1);
    let rows = session
        .execute(
            &format!("SELECT {key} AS k FROM {table} ORDER BY {key} LIMIT {batch}"),
            NO_PARAMS,
        )
        .await?
        .into_rows()?
        .into_values();
    if rows.is_empty() {
        session
            .execute(&format!("DROP TABLE {table}"), NO_PARAMS)
            .await?;
        swept.tables = 1;
        swept.left -= 1;
    } else {
        let marks: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
        let keys = rows
            .into_iter()
            .filter_map(|mut row| row.pop())
            .map(param)
            .collect::<Result<Vec<_>>>()?;
        let deleted = session
            .execute(
                &format!("DELETE FROM {table} WHERE {key} IN ({})", marks.join(", ")),
                keys,
            )
            .await?;
        swept.rows = deleted.affected();
    }
    session.commit().await?;
    Ok(swept)
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
