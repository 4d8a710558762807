//! The unit of work of model objects: `Session::add` / `delete` / `flush` / `get`, and the
//! identity map behind them (SQLAlchemy's session state for ORM objects).
//!
//! A session tracks the model objects it handed out or was given, one per (table, primary
//! key): `session.get::<User>(1)` twice gives the same [`Tracked`] object, so a change made
//! through one handle is seen through the other. Flushing writes what changed: an `INSERT` per
//! added object, an `UPDATE` of only the changed columns per modified object, a `DELETE` per
//! deleted one. Commit and rollback expire the map (SQLAlchemy's `expire_on_commit`): objects
//! held across them are detached — get them again to keep working with them.

use super::{sql, IntoColumnValue, Model, ModelMeta};
use crate::{recording::param_json, Error, ParamLiteral, Result, Session};
use serde::Serialize;
use std::{
    any::{Any, TypeId},
    cell::{Ref, RefCell, RefMut},
    collections::{HashMap, HashSet},
    fmt,
    rc::Rc,
};

/// A model object tracked by a session's identity map: a shared handle, so every holder sees
/// the same object. Change it through [`Tracked::borrow_mut`]; the next flush (autoflush,
/// [`Session::flush`] or commit) writes the changed columns.
pub struct Tracked<M>(Rc<RefCell<M>>);

impl<M> Clone for Tracked<M> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<M: fmt::Debug> fmt::Debug for Tracked<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.try_borrow() {
            Ok(object) => f.debug_tuple("Tracked").field(&*object).finish(),
            Err(_) => f.write_str("Tracked(<borrowed>)"),
        }
    }
}

impl<M> Tracked<M> {
    /// Reads the object.
    ///
    /// # Panics
    /// While the object is borrowed mutably (as `RefCell::borrow`).
    #[must_use]
    pub fn borrow(&self) -> Ref<'_, M> {
        self.0.borrow()
    }

    /// Changes the object; the session writes the changed columns at its next flush.
    ///
    /// # Panics
    /// While the object is borrowed (as `RefCell::borrow_mut`).
    #[must_use]
    pub fn borrow_mut(&self) -> RefMut<'_, M> {
        self.0.borrow_mut()
    }

    /// True when both handles are the same tracked object (the identity map's promise: the
    /// same primary key in one session gives the same object).
    #[must_use]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// A copy of the object's current values.
    #[must_use]
    pub fn cloned(&self) -> M
    where
        M: Clone,
    {
        self.0.borrow().clone()
    }
}

/// What a flush did to one model object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Operation {
    /// Inserted (from [`Session::add`]).
    Insert,
    /// Changed columns updated.
    Update,
    /// Deleted (from [`Session::delete`]).
    Delete,
}

/// One model object a session flushed, for commit hooks (Flask-SQLAlchemy's
/// `models_committed` sends `(model, operation)` pairs).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// The model's table.
    pub table: &'static str,
    /// The primary key, as JSON.
    pub key: serde_json::Value,
    /// What was done.
    pub operation: Operation,
}

/// Anything that names a model row by its primary key: the model value itself or its
/// [`Tracked`] handle (so `session.delete(&user)` takes either).
pub trait ModelRef<M: Model> {
    /// The primary key's value as a parameter.
    fn key_param(&self) -> ParamLiteral;
}

impl<M: Model> ModelRef<M> for M {
    fn key_param(&self) -> ParamLiteral {
        self.key()
    }
}

impl<M: Model> ModelRef<M> for Tracked<M> {
    fn key_param(&self) -> ParamLiteral {
        self.borrow().key()
    }
}

/// A tracked object with its type erased, so one map holds every model.
trait Object {
    fn meta(&self) -> &'static ModelMeta;
    /// The current values, or `None` while a `borrow_mut()` of the object is alive.
    fn params(&self) -> Option<Vec<ParamLiteral>>;
}

impl<M: Model> Object for RefCell<M> {
    fn meta(&self) -> &'static ModelMeta {
        M::META
    }
    fn params(&self) -> Option<Vec<ParamLiteral>> {
        self.try_borrow().ok().map(|m| m.to_params())
    }
}

/// Parameters compared and keyed by their debug text: `ParamLiteral` has no `Eq`/`Hash`, and
/// its debug text names both the type and the value.
fn text(param: &ParamLiteral) -> String {
    format!("{param:?}")
}

/// The model type (not its table name: two models may share a table name on two binds) and
/// the primary key's text.
type Identity = (TypeId, String);

fn identity<M: Model>(key: &ParamLiteral) -> Identity {
    (TypeId::of::<M>(), text(key))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Added, not inserted yet.
    New,
    /// Its INSERT is part of a flush that is running.
    Inserting,
    /// In the database as `stored` (column order) since the last flush or load.
    Persistent,
}

struct Entry {
    object: Rc<dyn Object>,
    any: Rc<dyn Any>,
    /// The primary key the object was tracked under.
    key: ParamLiteral,
    state: State,
    /// The values last written or read (empty while `New`).
    stored: Vec<ParamLiteral>,
    /// Tracking order: flushes update objects in this order, so they are reproducible.
    seq: u64,
}

/// A pending insert or delete, in call order.
enum Op {
    Insert(Identity),
    Delete {
        id: Identity,
        meta: &'static ModelMeta,
        key: ParamLiteral,
    },
}

/// A session's identity map and pending model operations.
#[derive(Default)]
pub(crate) struct Unit {
    entries: HashMap<Identity, Entry>,
    /// Deleted in this session and not re-added: `get` gives `None` for these.
    deleted: HashSet<Identity>,
    ops: Vec<Op>,
    /// Flushed since the last commit or rollback, for commit hooks.
    changes: Vec<Change>,
    next_seq: u64,
    /// True while a flush awaits its statements.
    flushing: bool,
}

fn borrowed(meta: &ModelMeta) -> Error {
    Error::sql(format!(
        "a tracked {} object is borrowed mutably (a Tracked::borrow_mut() is still alive): \
         drop that borrow before queries, flush or commit",
        meta.table()
    ))
}

fn key_changed(meta: &ModelMeta, was: &ParamLiteral, now: &ParamLiteral) -> Error {
    Error::sql(format!(
        "a tracked {} object's primary key ({}) changed from {} to {}: primary keys are \
         identities — delete the object and add a new one instead",
        meta.table(),
        meta.primary_key().name(),
        param_json(was),
        param_json(now),
    ))
}

impl Unit {
    /// True when a flush would write something (or must report a borrowed object).
    pub fn has_pending(&self) -> bool {
        !self.ops.is_empty()
            || self.entries.values().any(|e| {
                e.state == State::Persistent
                    && e.object.params().is_none_or(|now| differs(&e.stored, &now))
            })
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Forgets every object (commit and rollback expire them) and the recorded changes.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Tracks `object` under `key`.
    fn track<M: Model>(&mut self, key: ParamLiteral, object: M, state: State) -> Tracked<M> {
        let stored = if state == State::New {
            Vec::new()
        } else {
            object.to_params()
        };
        let cell = Rc::new(RefCell::new(object));
        self.next_seq += 1;
        let entry = Entry {
            object: cell.clone(),
            any: cell.clone(),
            key: key.clone(),
            state,
            stored,
            seq: self.next_seq,
        };
        self.entries.insert(identity::<M>(&key), entry);
        Tracked(cell)
    }

    fn tracked<M: Model>(&self, id: &Identity) -> Option<Option<Tracked<M>>> {
        if self.deleted.contains(id) {
            return Some(None);
        }
        let entry = self.entries.get(id)?;
        let object = Rc::clone(&entry.any).downcast::<RefCell<M>>().ok()?;
        Some(Some(Tracked(object)))
    }

    /// Tracks `object`, loaded from the database, unless the map already has its identity:
    /// then the tracked object wins (its in-session state is newer than the row read).
    fn merge_loaded<M: Model>(&mut self, object: M) -> Option<Tracked<M>> {
        let key = object.key();
        if let Some(found) = self.tracked::<M>(&identity::<M>(&key)) {
            return found;
        }
        Some(self.track(key, object, State::Persistent))
    }
}

fn differs(a: &[ParamLiteral], b: &[ParamLiteral]) -> bool {
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| text(x) != text(y))
}

/// One statement of a flush.
struct Write {
    meta: &'static ModelMeta,
    sql: String,
    params: Vec<ParamLiteral>,
    change: Change,
    /// The identity to mark persistent with these values once written.
    stored: Option<(Identity, Vec<ParamLiteral>)>,
    /// The identity a DELETE removes.
    deleted: Option<Identity>,
}

impl Unit {
    /// The statements a flush runs: updates of changed objects first, in tracking order (so a
    /// unique value moved from an updated object to an added one is free when the insert
    /// runs), then inserts and deletes in call order.
    fn plan(&self) -> Result<Vec<Write>> {
        let mut persistent: Vec<(&Identity, &Entry)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Persistent)
            .collect();
        persistent.sort_by_key(|(_, e)| e.seq);
        let mut writes = Vec::new();
        for (id, entry) in persistent {
            let meta = entry.object.meta();
            let current = entry.object.params().ok_or_else(|| borrowed(meta))?;
            let stored = &entry.stored;
            if !differs(stored, &current) {
                continue;
            }
            let pk = meta.primary_key_index();
            if text(&current[pk]) != text(&stored[pk]) {
                return Err(key_changed(meta, &stored[pk], &current[pk]));
            }
            let changed: Vec<usize> = (0..current.len())
                .filter(|&i| text(&current[i]) != text(&stored[i]))
                .collect();
            let mut params: Vec<ParamLiteral> =
                changed.iter().map(|&i| current[i].clone()).collect();
            params.push(current[pk].clone());
            writes.push(Write {
                meta,
                sql: sql::update_columns(meta, &changed),
                params,
                change: Change {
                    table: meta.table(),
                    key: param_json(&current[pk]),
                    operation: Operation::Update,
                },
                stored: Some((id.clone(), current)),
                deleted: None,
            });
        }
        for op in &self.ops {
            match op {
                Op::Insert(id) => {
                    let Some(entry) = self.entries.get(id) else {
                        continue;
                    };
                    let meta = entry.object.meta();
                    let params = entry.object.params().ok_or_else(|| borrowed(meta))?;
                    let key = &params[meta.primary_key_index()];
                    if text(key) != id.1 {
                        return Err(key_changed(meta, &entry.key, key));
                    }
                    writes.push(Write {
                        meta,
                        sql: sql::insert(meta),
                        change: Change {
                            table: meta.table(),
                            key: param_json(key),
                            operation: Operation::Insert,
                        },
                        stored: Some((id.clone(), params.clone())),
                        deleted: None,
                        params,
                    });
                }
                Op::Delete { id, meta, key } => writes.push(Write {
                    meta,
                    sql: sql::delete(meta),
                    params: vec![key.clone()],
                    change: Change {
                        table: meta.table(),
                        key: param_json(key),
                        operation: Operation::Delete,
                    },
                    stored: None,
                    deleted: Some(id.clone()),
                }),
            }
        }
        Ok(writes)
    }
}

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
        let root = self.unit_owner()?;
        let key = object.key();
        let id = identity::<M>(&key);
        let mut unit = root.unit().borrow_mut();
        if unit.entries.contains_key(&id) {
            return Err(Error::Unique {
                table: M::META.table().to_owned(),
                column: M::META.primary_key().name().to_owned(),
                value: format!(
                    "{} (the session already tracks an object with this key: change that one, \
                     or delete it first)",
                    param_json(&key)
                ),
            });
        }
        // Deleted earlier in this session: the DELETE stays queued before this INSERT.
        unit.deleted.remove(&id);
        let tracked = unit.track(key, object, State::New);
        unit.ops.push(Op::Insert(id));
        Ok(tracked)
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
        let root = self.unit_owner()?;
        let key = object.key_param();
        let id = identity::<M>(&key);
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
                    meta: M::META,
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
        let root = self.unit_owner()?;
        let writes = {
            let unit = root.unit().borrow();
            if unit.flushing {
                return Err(Error::sql(
                    "a flush of this session is already running (in another task of the same \
                     event): await it before running more statements",
                ));
            }
            unit.plan()?
        };
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
            unit.flushing = true;
            for entry in unit.entries.values_mut() {
                if entry.state == State::New {
                    entry.state = State::Inserting;
                }
            }
            std::mem::take(&mut unit.ops)
        };
        let outcome = run_writes(&writes, &sessions).await;
        let mut unit = root.unit().borrow_mut();
        unit.flushing = false;
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
        let key = super::ColumnType::to_param(&key.into_column_value());
        let id = identity::<M>(&key);
        let root = self.unit_owner()?;
        let found = root.unit().borrow().tracked::<M>(&id);
        if let Some(found) = found {
            return Ok(found);
        }
        let Some(object) = M::query(&root).get_by_param(key).await? else {
            return Ok(None);
        };
        let tracked = root.unit().borrow_mut().merge_loaded(object);
        Ok(tracked)
    }

    /// Tracks rows a query loaded (see [`super::Query::all_tracked`]).
    pub(crate) fn track_loaded<M: Model>(&self, objects: Vec<M>) -> Result<Vec<Tracked<M>>> {
        let root = self.unit_owner()?;
        let mut unit = root.unit().borrow_mut();
        Ok(objects
            .into_iter()
            .filter_map(|object| unit.merge_loaded(object))
            .collect())
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
async fn run_writes(writes: &[Write], sessions: &[Session]) -> Result<()> {
    for (write, session) in writes.iter().zip(sessions) {
        let result = session.run_unflushed(&write.sql, &write.params).await?;
        let op = write.change.operation;
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
