//! Binds (Flask-SQLAlchemy's `SQLALCHEMY_BINDS`): one session per bind key, opened on first
//! use and ended with the session that opened it; and what spans all of them (the model unit
//! of work, savepoints for an all-or-nothing flush).

use super::{store::Savepoint, store::SessionStore, Session};
use crate::{
    error::{Error, Result},
    model::Unit,
};
use std::{cell::RefCell, rc::Rc};

impl Session {
    /// The session of bind `key` (Flask-SQLAlchemy's binds): `None` gives this session (the
    /// default bind's), a key the session on that bind's engine — opened on first use, part of this unit of
    /// work from then on. Models with `#[gluebind(bind_key = "...")]` route there by
    /// themselves; use this for plain SQL on a bind.
    ///
    /// The binds commit, roll back and end together with this session. Each engine commits
    /// on its own (no two-phase commit, as in SQLAlchemy by default; see [`Session::commit`]
    /// for the order and the checks made first), so keep the writes a client relies on in one
    /// engine.
    ///
    /// A bind's session runs statements, but commits, rolls back and tracks model objects only
    /// through the session it came from.
    ///
    /// # Errors
    /// [`Error::Config`] when the factory has no engine for `key`, or when a bind's session is
    /// asked for another bind (or the default one); [`Error::SessionClosed`] after removal.
    pub fn for_bind(&self, key: Option<&str>) -> Result<Session> {
        if self.is_closed() {
            return Err(self.closed());
        }
        if let Some(own) = &self.inner.bind_key {
            if key == Some(own.as_str()) {
                return Ok(self.clone());
            }
            return Err(Error::config(format!(
                "for_bind({key:?}) was called on the session of bind {own:?}: ask the \
                 registry's session, which opens the session of every bind"
            )));
        }
        let Some(key) = key else {
            return Ok(self.clone());
        };
        if let Some(found) = self.inner.binds.borrow().get(key) {
            return Ok(found.clone());
        }
        let engine = self.inner.config.binds.get(key).ok_or_else(|| {
            let known: Vec<&String> = self.inner.config.binds.keys().collect();
            Error::config(format!(
                "no engine is bound to bind key {key:?} (configured: {known:?}): add \
                 .bind_key({key:?}, Engine::from_url(\"memory://\")?) to the SessionFactory"
            ))
        })?;
        let session = Session::with(
            format!("{}.{key}", self.inner.id),
            engine.clone(),
            Rc::clone(&self.inner.config),
            Some(key.to_owned()),
            self.inner.recorder.clone(),
            Rc::clone(&self.inner.kv_ops),
        );
        session.inner.isolation.set(self.inner.isolation.get());
        self.inner
            .binds
            .borrow_mut()
            .insert(key.to_owned(), session.clone());
        Ok(session)
    }

    /// The keys of the binds with pending writes, in order.
    pub(crate) fn dirty_binds(&self) -> Vec<String> {
        self.inner
            .binds
            .borrow()
            .iter()
            .filter(|(_, s)| s.is_dirty())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The bind sessions opened so far, in key order.
    pub(super) fn bind_sessions(&self) -> Vec<Session> {
        self.inner.binds.borrow().values().cloned().collect()
    }

    /// This session, then its bind sessions in key order: what a unit of work spans.
    pub(super) fn all_sessions(&self) -> Vec<Session> {
        std::iter::once(self.clone())
            .chain(self.bind_sessions())
            .collect()
    }

    /// The session that owns the model unit of work (the default bind's).
    pub(crate) fn unit_owner(&self) -> Result<Session> {
        if let Some(key) = &self.inner.bind_key {
            return Err(Error::config(format!(
                "model objects are tracked by the registry's session, not by the session of \
                 bind {key:?}: call add/delete/get/flush, and build queries for a bulk \
                 delete/update, on that one (it routes each model to its bind)"
            )));
        }
        if self.is_closed() {
            return Err(self.closed());
        }
        Ok(self.clone())
    }

    pub(crate) fn unit(&self) -> &RefCell<Unit> {
        &self.inner.unit
    }

    /// Savepoints of this session and its binds, for an all-or-nothing flush.
    pub(crate) fn save_all(&self) -> Result<Vec<(Session, Savepoint)>> {
        self.all_sessions()
            .into_iter()
            .map(|s| {
                let saved = s.inner.store.borrow().as_ref().map(SessionStore::save);
                saved.map(|sp| (s.clone(), sp)).ok_or_else(|| s.closed())
            })
            .collect()
    }

    /// Undoes everything since [`Session::save_all`]; a bind session opened since starts over.
    pub(crate) fn restore_all(&self, saved: Vec<(Session, Savepoint)>) {
        let mut restored = Vec::new();
        for (session, savepoint) in saved {
            if let Some(ws) = session.inner.store.borrow_mut().as_mut() {
                ws.restore(savepoint);
            }
            restored.push(session.inner.id.clone());
        }
        for bind in self.bind_sessions() {
            if !restored.contains(&bind.inner.id) {
                if let Some(ws) = bind.inner.store.borrow_mut().as_mut() {
                    *ws = bind.inner.engine.session_store();
                }
            }
        }
    }
}
