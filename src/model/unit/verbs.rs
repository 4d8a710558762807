//! The unit of work's verbs on [`Session`]: `add`, `delete`, `get`, `flush` (and the
//! autoflush before queries).

use super::*;

impl Session {
    /// Adds a new model object to the session (SQLAlchemy's `session.add`): it is inserted at
    /// the next flush — before the next query when autoflush is on, or at commit — and
    /// tracked from now on. Returns its handle: change it through that, not the value you
    /// passed.
    ///
    /// ```
    /// # pollster::block_on(async {
    /// # use gluebind::{Engine, Model, SessionFactory};
    /// # #[derive(Debug, Model)]
    /// # struct User { #[gluebind(primary_key)] id: i64, name: String }
    /// # let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
    /// # gluebind::model::create_all(&session, &[User::META]).await?;
    /// let ada = session.add(User { id: 1, name: "Ada".into() })?;
    /// ada.borrow_mut().name = "Ada L.".into();        // still pending: one INSERT
    /// assert_eq!(User::query(&session).count().await?, 1); // autoflush before the query
    /// let again = session.get::<User>(1).await?.unwrap();
    /// assert!(again.ptr_eq(&ada));                     // the identity map
    /// session.commit().await?;
    /// # Ok::<(), gluebind::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Unique`] when the session already tracks an object with this primary key
    /// (change that one instead); [`Error::SessionClosed`] after removal.
    pub fn add<M: Model>(&self, object: M) -> Result<Tracked<M>> {
        let key = Arg::Typed(object.key());
        let id = identity::<M>(&key);
        let cell = Rc::new(RefCell::new(object));
        self.add_object(id, key, cell.clone(), cell.clone())?;
        Ok(Tracked(cell))
    }

    /// [`Session::add`] of any tracked object (typed or defined at run time), under `id`.
    pub(crate) fn add_object(
        &self,
        id: Identity,
        key: Arg,
        object: Rc<dyn Object>,
        any: Rc<dyn Any>,
    ) -> Result<()> {
        let root = self.unit_owner()?;
        let mut unit = root.unit().borrow_mut();
        if unit.entries.contains_key(&id) {
            let meta = object.meta();
            return Err(Error::Unique {
                table: meta.table().to_owned(),
                column: meta.primary_key().name().to_owned(),
                value: format!(
                    "{} (the session already tracks an object with this key: change that one, \
                     or delete it first)",
                    key.json()
                ),
            });
        }
        // Deleted earlier in this session: the DELETE stays queued before this INSERT.
        unit.deleted.remove(&id);
        unit.track(id.clone(), key, object, any, State::New)?;
        unit.ops.push(Op::Insert(id));
        Ok(())
    }

    /// Marks a model object for deletion (SQLAlchemy's `session.delete`): the `DELETE` runs
    /// at the next flush, and [`Session::get`] gives `None` for it meanwhile. Takes the value
    /// or its [`Tracked`] handle. An object added and deleted before any flush is never
    /// written; deleting an object twice deletes it once.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal. The flush that runs the `DELETE` gives
    /// [`Error::NotFound`] when no row had the key.
    pub fn delete<M: Model>(&self, object: &impl ModelRef<M>) -> Result<()> {
        let key = Arg::Typed(object.key_param());
        self.delete_object(identity::<M>(&key), MetaRef::Static(M::META), key)
    }

    /// [`Session::delete`] of the row of model `meta` with primary key `key` (identity `id`).
    pub(crate) fn delete_object(&self, id: Identity, meta: MetaRef, key: Arg) -> Result<()> {
        let root = self.unit_owner()?;
        let mut unit = root.unit().borrow_mut();
        if unit.deleted.contains(&id) {
            return Ok(());
        }
        match unit.entries.remove(&id) {
            Some(Entry {
                state: State::New, ..
            }) => {
                // Never written: drop its INSERT instead of writing and deleting the row.
                unit.ops
                    .retain(|op| !matches!(op, Op::Insert(other) if *other == id));
            }
            _ => {
                unit.ops.push(Op::Delete {
                    id: id.clone(),
                    meta,
                    key,
                });
                unit.deleted.insert(id);
            }
        }
        Ok(())
    }

    /// Writes pending model changes to the session (SQLAlchemy's `flush`): updates of changed
    /// objects, then inserts and deletes in call order. Not a commit: other sessions see
    /// nothing until [`Session::commit`]. All or nothing: when one statement fails, the
    /// session's data (every bind's) is as before the flush and the objects stay pending.
    ///
    /// # Errors
    /// [`Error::Unique`] for a taken key or unique value, [`Error::NotFound`] when a deleted
    /// or changed object's row is gone, [`Error::Sql`] when a tracked object's primary key
    /// was changed, when a `Tracked::borrow_mut()` is still alive, or when another flush of
    /// the session is running; [`Error::Config`] for a model whose bind has no engine; the
    /// session's errors.
    pub async fn flush(&self) -> Result<()> {
        self.flush_checked(false).await
    }

    /// [`Session::flush`]; with `defer` (commit's own flush), the INSERTs of the default bind
    /// may leave their checks to the commit (`Session::run_args_with`).
    pub(crate) async fn flush_checked(&self, defer: bool) -> Result<()> {
        let root = self.unit_owner()?;
        let busy = root.busy()?;
        let writes = root.unit().borrow().plan()?;
        if writes.is_empty() {
            return Ok(());
        }
        // Every bind first, so nothing is written when one is missing.
        let sessions = writes
            .iter()
            .map(|w| root.for_bind(w.meta.bind_key()))
            .collect::<Result<Vec<_>>>()?;
        let saved = root.save_all()?;
        let taken = {
            let mut unit = root.unit().borrow_mut();
            for entry in unit.entries.values_mut() {
                if entry.state == State::New {
                    entry.state = State::Inserting;
                }
            }
            std::mem::take(&mut unit.ops)
        };
        let outcome = run_writes(&writes, &sessions, defer).await;
        drop(busy);
        let mut unit = root.unit().borrow_mut();
        if let Err(e) = outcome {
            // Ops queued while the flush awaited come after the ones it took.
            let later = std::mem::replace(&mut unit.ops, taken);
            unit.ops.extend(later);
            for entry in unit.entries.values_mut() {
                if entry.state == State::Inserting {
                    entry.state = State::New;
                }
            }
            drop(unit);
            root.restore_all(saved);
            return Err(e);
        }
        for write in writes {
            if let Some((id, stored)) = write.stored {
                if let Some(entry) = unit.entries.get_mut(&id) {
                    entry.state = State::Persistent;
                    entry.stored = stored;
                }
            }
            if let Some(id) = write.deleted {
                unit.deleted.remove(&id);
            }
            unit.changes.push(write.change);
        }
        Ok(())
    }

    /// The object with primary key `key` from the identity map, else loaded (SQLAlchemy 2's
    /// `session.get(User, 1)`): within one session the same key always gives the same
    /// [`Tracked`] object, and one already tracked costs no query. `None` when no row has
    /// the key or the object was deleted in this session.
    ///
    /// # Errors
    /// The session's errors.
    pub async fn get<M: Model>(
        &self,
        key: impl IntoColumnValue<M::Key>,
    ) -> Result<Option<Tracked<M>>> {
        let key = crate::model::ColumnType::to_param(&key.into_column_value());
        let id = identity::<M>(&Arg::Typed(key.clone()));
        let root = self.unit_owner()?;
        let found = root.unit().borrow().tracked::<M>(&id);
        if let Some(found) = found {
            return Ok(found);
        }
        let Some(object) = M::query(&root).get_by_param(key).await? else {
            return Ok(None);
        };
        let tracked = root.unit().borrow_mut().merge_loaded(object)?;
        Ok(tracked)
    }

    /// [`Session::get`], or [`Error::NotFound`] (HTTP 404) naming the table and key:
    /// Flask-SQLAlchemy's `db.get_or_404(User, id)` for a handler that then changes or deletes
    /// the object.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no row has the key (or the object was deleted in this
    /// session); the session's errors.
    pub async fn get_or_404<M: Model>(
        &self,
        key: impl IntoColumnValue<M::Key>,
    ) -> Result<Tracked<M>> {
        let key = key.into_column_value();
        let shown = Arg::Typed(crate::model::ColumnType::to_param(&key)).json();
        self.get::<M>(key).await?.ok_or_else(|| Error::NotFound {
            table: M::META.table().to_owned(),
            detail: format!("no row with {} = {shown}", M::META.primary_key().name()),
        })
    }

    /// Tracks rows a query loaded (see [`super::Query::all_tracked`]).
    pub(crate) fn track_loaded<M: Model>(&self, objects: Vec<M>) -> Result<Vec<Tracked<M>>> {
        let root = self.unit_owner()?;
        let mut unit = root.unit().borrow_mut();
        let mut tracked = Vec::with_capacity(objects.len());
        for object in objects {
            tracked.extend(unit.merge_loaded(object)?);
        }
        Ok(tracked)
    }

    /// The object tracked under `id`: `Some(None)` when it was deleted in this session,
    /// `None` when the session does not track it.
    pub(crate) fn tracked_object(&self, id: &Identity) -> Result<Option<Option<Rc<dyn Any>>>> {
        Ok(self.unit_owner()?.unit().borrow().tracked_any(id))
    }

    /// Tracks an object loaded from the database (see [`Unit::merge_loaded_any`]).
    pub(crate) fn track_loaded_object(
        &self,
        id: Identity,
        key: Arg,
        make: impl FnOnce() -> (Rc<dyn Object>, Rc<dyn Any>),
    ) -> Result<Option<Rc<dyn Any>>> {
        let root = self.unit_owner()?;
        let mut unit = root.unit().borrow_mut();
        unit.merge_loaded_any(id, key, make)
    }

    /// Flushes pending model changes when autoflush is on (before queries and statements).
    pub(crate) async fn autoflush_now(&self) -> Result<()> {
        if self.bind_key().is_some() {
            return Ok(()); // a bind's session tracks no objects
        }
        let root = self.unit_owner()?;
        if root.autoflush() && root.unit().borrow().has_pending() {
            root.flush().await?;
        }
        Ok(())
    }
}

/// Runs a flush's statements, each in its bind's session; the first failure stops it.
async fn run_writes(writes: &[Write], sessions: &[Session], defer: bool) -> Result<()> {
    for (write, session) in writes.iter().zip(sessions) {
        let op = write.change.operation;
        // Only the default bind's: its engine commits first, so a refusal at commit leaves
        // every engine as it was (a bind's refusal after the default engine committed would
        // not).
        let defer = defer && op == Operation::Insert && session.bind_key().is_none();
        let result = session
            .run_args_with(&write.sql, &write.params, defer)
            .await?;
        if result.affected() == 0 && op != Operation::Insert {
            return Err(Error::NotFound {
                table: write.meta.table().to_owned(),
                detail: format!(
                    "flush found no row with {} = {} to {}: it was deleted (in this session or \
                     by one that committed first)",
                    write.meta.primary_key().name(),
                    write.change.key,
                    if op == Operation::Delete {
                        "delete"
                    } else {
                        "update"
                    }
                ),
            });
        }
    }
    Ok(())
}
