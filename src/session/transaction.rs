//! `transaction`: a unit of work run, committed, and run again while it conflicts.
//!
//! Optimistic concurrency (first committer wins, serializable reads) means a unit of work can
//! fail at commit because another commit got there first; the fix is always the same — start
//! over from fresh data — so this does it: run the closure on the session, commit, and on
//! [`Error::Conflict`] roll back, wait a little (jittered, growing) and run it again.

use super::Session;
use crate::error::Error;
use std::future::Future;

/// The wait before rerun `n` (1-based): 20 ms doubling up to 1 s, times a random factor in
/// [0.5, 1.5) so that units of work that collided do not collide again in step.
fn backoff_ms(n: u32, random: u64) -> u64 {
    let base = (20u64 << n.saturating_sub(1).min(6)).min(1_000);
    // random % 1000 / 1000 in [0, 1): the factor is (500 + that) / 1000.
    base * (500 + random % 1_000) / 1_000
}

impl Session {
    /// Reruns of [`Session::transaction`] after the first attempt.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// Runs `work` on this session and commits; when the commit fails with
    /// [`Error::Conflict`] (another commit got there first), rolls back, waits a little
    /// (jittered, growing) and runs both again — at most [`Session::DEFAULT_RETRIES`] times (see
    /// [`Session::transaction_with`]). Any other error (from `work` or the commit), and the
    /// last conflict, is returned unchanged, after a rollback.
    ///
    /// `work` gets a handle to this session and must make all of the unit of work's reads and
    /// writes through it: a rerun starts from the latest committed state. Side effects outside
    /// the session (a `fetch`, a queue message, a counter in a variable) are not undone and may
    /// happen once per attempt: do them after `transaction` returns. Return your own error
    /// type (anything `From<gluebind::Error>`) to refuse the unit of work: it is rolled back and
    /// your error returned, not retried.
    ///
    /// ```
    /// # pollster::block_on(async {
    /// use gluebind::{params, Engine, SessionFactory};
    ///
    /// #[derive(Debug)]
    /// enum AddNote { Full, Db(gluebind::Error) }
    /// impl From<gluebind::Error> for AddNote {
    ///     fn from(e: gluebind::Error) -> Self { Self::Db(e) }
    /// }
    ///
    /// let factory = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?;
    /// let session = factory.open();
    /// session.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, owner INTEGER)").await?;
    /// session.commit().await?;
    /// // At most 5 notes per owner, whatever runs concurrently (serializable by default).
    /// let added = session
    ///     .transaction(|s| async move {
    ///         let n: i64 = s
    ///             .execute("SELECT COUNT(*) AS n FROM notes WHERE owner = $1", params![7i64])
    ///             .await?
    ///             .into_rows()?
    ///             .get(0)
    ///             .map_or(Ok(0), |r| r.get("n"))?;
    ///         if n >= 5 {
    ///             return Err(AddNote::Full);
    ///         }
    ///         let id = s.next_id("notes").await?;
    ///         s.execute("INSERT INTO notes VALUES ($1, $2)", params![id, 7i64]).await?;
    ///         Ok(id)
    ///     })
    ///     .await;
    /// assert!(added.is_ok());
    /// # Ok::<(), gluebind::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] (converted into `E`) when the session already has pending writes
    /// (commit or roll them back first: a rerun would discard them) or is a bind's session;
    /// otherwise what `work` or `commit()` returned last.
    pub async fn transaction<T, E, F, Fut>(&self, work: F) -> std::result::Result<T, E>
    where
        F: FnMut(Session) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.transaction_with(Self::DEFAULT_RETRIES, work).await
    }

    /// [`Session::transaction`] with at most `retries` reruns (0: run once).
    ///
    /// # Errors
    /// As [`Session::transaction`].
    pub async fn transaction_with<T, E, F, Fut>(
        &self,
        retries: u32,
        mut work: F,
    ) -> std::result::Result<T, E>
    where
        F: FnMut(Session) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.usable()?;
        self.refuse_on_bind("transaction")?;
        if self.is_dirty() {
            return Err(Error::config(
                "transaction() was called on a session with pending writes; commit() or \
                 rollback() them first (a rerun of the unit of work would discard them)",
            )
            .into());
        }
        let mut rerun = 0;
        loop {
            let value = match work(self.clone()).await {
                Ok(value) => value,
                Err(e) => {
                    self.roll_back_quietly().await;
                    return Err(e);
                }
            };
            let error = match self.commit().await {
                Ok(_) => return Ok(value),
                Err(e) => e,
            };
            self.roll_back_quietly().await;
            if !matches!(error, Error::Conflict { .. }) || rerun >= retries {
                return Err(error.into());
            }
            rerun += 1;
            let random = self.inner.engine.random_u64().unwrap_or(0);
            self.inner.engine.sleep(backoff_ms(rerun, random)).await;
        }
    }

    /// Discards what a failed attempt left (a failed commit already did; `work`'s error may
    /// leave writes). A closed session has nothing to discard.
    async fn roll_back_quietly(&self) {
        if !self.is_closed() {
            let _ = self.rollback().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        assert_eq!(backoff_ms(1, 500), 20);
        assert_eq!(backoff_ms(1, 0), 10);
        assert_eq!(backoff_ms(2, 500), 40);
        assert_eq!(backoff_ms(20, 999), 1_499);
        assert!((1..10).all(|n| backoff_ms(n + 1, 500) >= backoff_ms(n, 500)));
    }
}
