//! Ending a unit of work: commit (every engine of the session's binds), deferred commit,
//! rollback, and the registry's teardown.

use super::{
    store::{ReadSet, SessionStore},
    CommitInfo, Finish, Session,
};
use crate::{
    error::{Error, Result},
    factory::Isolation,
};

impl Session {
    /// Commits pending writes atomically and starts over on the latest committed state (the
    /// session stays usable, as in SQLAlchemy). Pending model objects are flushed first, and
    /// the factory's commit hooks run around it. Tracked objects are expired: get them again
    /// to keep working with them.
    ///
    /// This is the durable path: when it returns `Ok`, other sessions see the writes, and on a
    /// durable engine they are stored. Commit before responding whenever the client relies on
    /// the write.
    ///
    /// With binds ([`Session::for_bind`]), every engine's pending writes are checked first (a
    /// conflict already visible commits nothing), then each engine commits atomically, the
    /// default engine's first, then the binds' in key order. A failure past that check (a
    /// storage error, a conflict committed meanwhile on `kv://`) stops there: engines committed
    /// before it stay committed, the rest is discarded, and no after-commit hook runs.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another session committed a change to a row (or table) this
    /// session wrote, after this session read it; [`Error::Unique`] when a row committed
    /// meanwhile holds the same unique value — and on `do://`, where the object checks the
    /// INSERTs of this commit's own flush, also for a unique value or key taken at the
    /// session's snapshot (what the flush reports on other engines). In both cases nothing was applied (see above for
    /// binds) and the pending writes are discarded, so the session can retry from fresh data.
    /// [`Error::Storage`] when the backend fails: "failed and was undone" (or "nothing was
    /// written") means nothing was applied; "commit outcome unknown" means the commit may still
    /// be applied (on `kv://`, by a later session's replay of its commit record), so re-read
    /// before retrying. The flush's errors (then, too, nothing was applied and the pending
    /// writes are discarded). A before-commit hook's error is the one failure that keeps the
    /// pending writes (nothing committed): fix what it refused, or roll back.
    /// [`Error::Config`] on a bind's session (commit the session that opened it).
    pub async fn commit(&self) -> Result<CommitInfo> {
        self.usable()?;
        self.refuse_on_bind("commit")?;
        self.flush_for_commit().await?;
        let hooks = &self.inner.config.hooks;
        if !hooks.before.is_empty() && self.is_dirty() {
            let changes = self.inner.unit.borrow().changes().to_vec();
            for hook in &hooks.before {
                hook(self, &changes)?;
            }
            // What a hook added or changed is part of this commit.
            self.flush_for_commit().await?;
        }
        let changes = self.inner.unit.borrow().changes().to_vec();
        let info = match self.commit_engines().await {
            Ok(info) => info,
            Err(e) => {
                self.discard();
                return Err(e);
            }
        };
        self.inner.unit.borrow_mut().clear();
        if info.version.is_some() {
            let committed = crate::hooks::Committed {
                session: self,
                info,
                changes: &changes,
            };
            for hook in &hooks.after {
                hook(&committed);
            }
        }
        Ok(info)
    }

    /// The flush of `commit()` (on failure the whole unit of work is discarded, as by any failed
    /// commit). Its errors are the commit's, so on an engine that checks inserted keys and
    /// unique values at commit (`do://`: the object validates them in the commit's one
    /// request) the INSERTs of the default bind do not load them first — unless before-commit
    /// hooks run between the flush and the commit (a hook's refusal keeps the pending writes,
    /// which must then be checked ones).
    async fn flush_for_commit(&self) -> Result<()> {
        let defer = self.inner.config.hooks.before.is_empty();
        let flushed = self.flush_checked(defer).await;
        if flushed.is_err() {
            self.discard();
        }
        flushed
    }

    /// [`Error::Config`] for `verb` on a bind's session: its unit of work is its root's.
    pub(super) fn refuse_on_bind(&self, verb: &str) -> Result<()> {
        if let Some(reason) = self.inner.guard.get() {
            return Err(Error::config(format!("{verb}() was called {reason}")));
        }
        match &self.inner.bind_key {
            Some(key) => Err(Error::config(format!(
                "{verb}() was called on the session of bind {key:?}: call it on the session \
                 that opened the bind (the registry's), which covers every bind"
            ))),
            None => Ok(()),
        }
    }

    /// Commits this session's engine, then each bind's. With more than one engine to write,
    /// every write-set is checked first, so a conflict already visible commits nothing.
    pub(super) async fn commit_engines(&self) -> Result<CommitInfo> {
        let sessions = self.all_sessions();
        if sessions[1..].iter().any(Session::has_writes) {
            for session in &sessions {
                session.validate_own()?;
            }
        }
        let mut info = self.commit_own().await?;
        for bind in &sessions[1..] {
            let more = bind.commit_own().await?;
            info.version = info.version.or(more.version);
            info.rows_written += more.rows_written;
            info.tables_changed += more.tables_changed;
        }
        Ok(info)
    }

    /// Checks this session's pending writes against its engine's committed state.
    pub(super) fn validate_own(&self) -> Result<()> {
        let slot = self.inner.store.borrow();
        let ws = slot.as_ref().ok_or_else(|| self.closed())?;
        if ws.writes.is_empty() {
            return Ok(());
        }
        self.unless_serializable(ws);
        self.inner.engine.validate(ws)
    }

    /// Under [`Isolation::Snapshot`] a commit checks writes only: the reads are dropped.
    fn unless_serializable(&self, ws: &SessionStore) {
        if self.isolation() == Isolation::Snapshot {
            *ws.reads.borrow_mut() = ReadSet::default();
        }
    }

    /// Commits this session's own store (one engine).
    pub(super) async fn commit_own(&self) -> Result<CommitInfo> {
        self.usable()?;
        self.inner.deferred.set(false);
        let ws = {
            let mut slot = self.inner.store.borrow_mut();
            let ws = slot.as_mut().ok_or_else(|| self.closed())?;
            if ws.writes.is_empty() {
                // Nothing to write: just move to the latest committed state.
                *ws = self.inner.engine.session_store();
                return Ok(CommitInfo {
                    version: None,
                    rows_written: 0,
                    tables_changed: 0,
                });
            }
            std::mem::take(ws)
        };
        self.unless_serializable(&ws);
        self.inner.committing.set(true);
        let outcome = self.inner.engine.commit(&ws, &self.inner.kv_ops).await;
        self.inner.committing.set(false);
        // Success or not, continue from the latest committed state.
        if let Some(slot) = self.inner.store.borrow_mut().as_mut() {
            *slot = self.inner.engine.session_store();
        }
        let applied = outcome?;
        Ok(CommitInfo {
            version: Some(applied.version),
            rows_written: applied.rows_written,
            tables_changed: applied.tables_changed,
        })
    }

    /// Validates the pending writes now and commits them in the event's completion callback
    /// (write-behind), whatever the factory's teardown policy.
    ///
    /// The check against the latest committed state of this isolate (row conflicts, UNIQUE)
    /// runs now, so a conflict that is already visible fails fast, and the session keeps its
    /// writes (read-your-writes) until teardown commits them — with any written later in the
    /// same event. This is **not** durable when it returns: the commit runs after the response
    /// is sent, other sessions see the writes only then, and it is lost if it then conflicts
    /// (counted in [`crate::Stats::teardown_errors`] and logged), if the handler fails (teardown
    /// rolls back), or if Cloudflare cuts the callback off. Use it where that is acceptable and
    /// latency matters — append-only logs, counters, analytics — and [`Session::commit`]
    /// for anything a client relies on. A later `commit()` or `rollback()` in the same event
    /// supersedes it. Outside a registry scope nothing commits at teardown: call `commit()`.
    /// Model objects not flushed yet are flushed by that teardown commit (flush first to have
    /// them checked now).
    ///
    /// # Errors
    /// [`Error::Conflict`] or [`Error::Unique`] when the writes already conflict with committed
    /// state (the pending writes are then discarded, as by a failed `commit()`);
    /// [`Error::SessionClosed`] after removal.
    pub fn commit_deferred(&self) -> Result<()> {
        self.usable()?;
        self.refuse_on_bind("commit_deferred")?;
        for session in self.all_sessions() {
            if let Err(e) = session.validate_own() {
                self.discard();
                return Err(e);
            }
        }
        self.inner.deferred.set(true);
        Ok(())
    }

    /// True when teardown will commit this session's pending writes because of
    /// [`Session::commit_deferred`].
    #[must_use]
    pub fn is_deferred(&self) -> bool {
        self.inner.deferred.get() && self.is_dirty()
    }

    /// Discards pending writes (the binds' too, and pending model objects) and starts over on
    /// the latest committed state. Tracked objects are expired.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal.
    #[allow(clippy::unused_async)]
    pub async fn rollback(&self) -> Result<()> {
        if self.is_closed() {
            return Err(self.closed());
        }
        self.refuse_on_bind("rollback")?;
        self.discard();
        Ok(())
    }

    /// Starts this session and its binds over on the latest committed state.
    pub(super) fn discard(&self) {
        for session in self.all_sessions() {
            if let Some(ws) = session.inner.store.borrow_mut().as_mut() {
                *ws = session.inner.engine.session_store();
            }
            session.inner.deferred.set(false);
        }
        self.inner.unit.borrow_mut().clear();
    }

    /// Finishes the session per `policy` and closes it; later use gives
    /// [`Error::SessionClosed`]. Used by the registry's teardown.
    pub(crate) async fn finish(&self, commit_pending: bool) -> Result<Finish> {
        let finish = if !self.is_dirty() {
            Finish::Clean
        } else if commit_pending {
            match self.commit().await {
                Ok(_) => Finish::Committed,
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        } else {
            Finish::RolledBack
        };
        self.close();
        Ok(finish)
    }

    /// Closes the session and its binds, discarding pending writes.
    pub(crate) fn close(&self) {
        for bind in self.bind_sessions() {
            bind.close();
        }
        self.inner.unit.borrow_mut().clear();
        self.inner.store.borrow_mut().take();
    }
}
