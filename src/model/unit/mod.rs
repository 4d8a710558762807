//! The unit of work of model objects: `Session::add` / `delete` / `flush` / `get`, and the
//! identity map behind them (SQLAlchemy's session state for ORM objects).
//!
//! A session tracks the model objects it handed out or was given, one per (table, primary
//! key): `session.get::<User>(1)` twice gives the same [`Tracked`] object, so a change made
//! through one handle is seen through the other. Flushing writes what changed: an `INSERT` per
//! added object, an `UPDATE` of only the changed columns per modified object, a `DELETE` per
//! deleted one. Commit and rollback expire the map (SQLAlchemy's `expire_on_commit`): objects
//! held across them are detached — get them again to keep working with them.

mod bulk;
mod verbs;

pub(crate) use bulk::{refresh_typed, Refresh};

use super::{arg::Arg, meta::MetaRef, sql, IntoColumnValue, Model, ModelMeta};
use crate::{Error, ParamLiteral, Result, Session};
use serde::Serialize;
use std::{
    any::{Any, TypeId},
    borrow::Cow,
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
    /// The model's table (borrowed for derived models, owned for models defined at run time
    /// by the npm package).
    pub table: Cow<'static, str>,
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

/// A tracked object with its type erased, so one map holds every model: a typed model's
/// `RefCell<M>`, or a JavaScript object of a model defined at run time (the npm package).
pub(crate) trait Object {
    /// The object's model.
    fn meta(&self) -> MetaRef;
    /// The current values in column order; an error while they cannot be read (a Rust
    /// object borrowed mutably, a JavaScript value that is no parameter).
    fn params(&self) -> Result<Vec<Arg>>;
}

impl<M: Model> Object for RefCell<M> {
    fn meta(&self) -> MetaRef {
        MetaRef::Static(M::META)
    }
    fn params(&self) -> Result<Vec<Arg>> {
        let object = self.try_borrow().map_err(|_| borrowed(M::META))?;
        Ok(object.to_params().into_iter().map(Arg::Typed).collect())
    }
}

/// Which model an identity belongs to: a Rust type, or a model defined at run time (by its
/// id). Not the table name: two models may share a table name on two binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ModelId {
    Type(TypeId),
    Defined(u64),
}

/// The model and the primary key's text ([`Arg::text`]: parameters have no `Eq`/`Hash`, and
/// the text names both the type and the value).
pub(crate) type Identity = (ModelId, String);

fn identity<M: Model>(key: &Arg) -> Identity {
    (ModelId::Type(TypeId::of::<M>()), key.text())
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
    /// The same object, for its owner to take back (a typed `Tracked`, a JavaScript object).
    any: Rc<dyn Any>,
    /// The primary key the object was tracked under.
    key: Arg,
    state: State,
    /// The values last written or read (empty while `New`).
    stored: Vec<Arg>,
    /// Tracking order: flushes update objects in this order, so they are reproducible.
    seq: u64,
}

/// A pending insert or delete, in call order.
enum Op {
    Insert(Identity),
    Delete {
        id: Identity,
        meta: MetaRef,
        key: Arg,
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
    /// True while a flush awaits its statements (or a bulk update that may restore the
    /// session's data): see [`Busy`].
    flushing: bool,
}

/// The unit of work marked busy — by a flush awaiting its statements, or a bulk update that may
/// restore the session's data — until this is dropped: another flush (from another task of
/// the same event) meanwhile fails at once, rather than write rows a restore would undo.
pub(crate) struct Busy<'a>(&'a Session);

impl Session {
    /// Marks the unit of work of this (owning) session busy until the guard is dropped.
    ///
    /// # Errors
    /// [`Error::Sql`] when a flush or a bulk update of the session is running.
    pub(crate) fn busy(&self) -> Result<Busy<'_>> {
        let mut unit = self.unit().borrow_mut();
        if unit.flushing {
            return Err(Error::sql(
                "a flush of this session is already running (in another task of the same \
                 event): await it before running more statements",
            ));
        }
        unit.flushing = true;
        Ok(Busy(self))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        // Never while the unit is borrowed (no borrow is held across an await), but a drop
        // must not panic.
        if let Ok(mut unit) = self.0.unit().try_borrow_mut() {
            unit.flushing = false;
        }
    }
}

fn borrowed(meta: &ModelMeta) -> Error {
    Error::sql(format!(
        "a tracked {} object is borrowed mutably (a Tracked::borrow_mut() is still alive): \
         drop that borrow before queries, flush or commit",
        meta.table()
    ))
}

fn key_changed(meta: &ModelMeta, was: &Arg, now: &Arg) -> Error {
    Error::sql(format!(
        "a tracked {} object's primary key ({}) changed from {} to {}: primary keys are \
         identities — delete the object and add a new one instead",
        meta.table(),
        meta.primary_key().name(),
        was.json(),
        now.json(),
    ))
}

impl Unit {
    /// True when a flush would write something (or must report a borrowed object).
    pub fn has_pending(&self) -> bool {
        !self.ops.is_empty()
            || self.entries.values().any(|e| {
                e.state == State::Persistent
                    && e.object
                        .params()
                        .map_or(true, |now| differs(&e.stored, &now))
            })
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Forgets every object (commit and rollback expire them) and the recorded changes.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Tracks `object` under `id` (its primary key `key`): as new (to insert), or as loaded
    /// (its current values are what the database holds).
    fn track(
        &mut self,
        id: Identity,
        key: Arg,
        object: Rc<dyn Object>,
        any: Rc<dyn Any>,
        state: State,
    ) -> Result<()> {
        let stored = if state == State::New {
            Vec::new()
        } else {
            object.params()?
        };
        self.next_seq += 1;
        let entry = Entry {
            object,
            any,
            key,
            state,
            stored,
            seq: self.next_seq,
        };
        self.entries.insert(id, entry);
        Ok(())
    }

    /// `Some(None)`: deleted in this session; `Some(Some(object))`: tracked; `None`: unknown.
    fn tracked_any(&self, id: &Identity) -> Option<Option<Rc<dyn Any>>> {
        if self.deleted.contains(id) {
            return Some(None);
        }
        self.entries
            .get(id)
            .map(|entry| Some(Rc::clone(&entry.any)))
    }

    fn tracked<M: Model>(&self, id: &Identity) -> Option<Option<Tracked<M>>> {
        match self.tracked_any(id)? {
            None => Some(None),
            Some(any) => any.downcast::<RefCell<M>>().ok().map(|o| Some(Tracked(o))),
        }
    }

    /// Tracks an object loaded from the database under `id`, unless the map already has
    /// that identity: then the tracked object wins (its in-session state is newer than the
    /// row read), and `None` means it was deleted in this session.
    fn merge_loaded_any(
        &mut self,
        id: Identity,
        key: Arg,
        make: impl FnOnce() -> (Rc<dyn Object>, Rc<dyn Any>),
    ) -> Result<Option<Rc<dyn Any>>> {
        if let Some(found) = self.tracked_any(&id) {
            return Ok(found);
        }
        let (object, any) = make();
        self.track(id, key, object, Rc::clone(&any), State::Persistent)?;
        Ok(Some(any))
    }

    fn merge_loaded<M: Model>(&mut self, object: M) -> Result<Option<Tracked<M>>> {
        let key = Arg::Typed(object.key());
        let id = identity::<M>(&key);
        let any = self.merge_loaded_any(id, key, || {
            let cell = Rc::new(RefCell::new(object));
            (cell.clone() as Rc<dyn Object>, cell as Rc<dyn Any>)
        })?;
        Ok(any
            .and_then(|any| any.downcast::<RefCell<M>>().ok())
            .map(Tracked))
    }
}

fn differs(a: &[Arg], b: &[Arg]) -> bool {
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.text() != y.text())
}

/// One statement of a flush.
struct Write {
    meta: MetaRef,
    sql: String,
    params: Vec<Arg>,
    change: Change,
    /// The identity to mark persistent with these values once written.
    stored: Option<(Identity, Vec<Arg>)>,
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
            let current = entry.object.params()?;
            let stored = &entry.stored;
            if !differs(stored, &current) {
                continue;
            }
            let pk = meta.primary_key_index();
            if current[pk].text() != stored[pk].text() {
                return Err(key_changed(&meta, &stored[pk], &current[pk]));
            }
            let changed: Vec<usize> = (0..current.len())
                .filter(|&i| current[i].text() != stored[i].text())
                .collect();
            let mut params: Vec<Arg> = changed.iter().map(|&i| current[i].clone()).collect();
            params.push(current[pk].clone());
            writes.push(Write {
                sql: sql::update_columns(&meta, &changed),
                params,
                change: Change {
                    table: meta.table_cow(),
                    key: current[pk].json(),
                    operation: Operation::Update,
                },
                meta,
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
                    let params = entry.object.params()?;
                    let key = &params[meta.primary_key_index()];
                    if key.text() != id.1 {
                        return Err(key_changed(&meta, &entry.key, key));
                    }
                    writes.push(Write {
                        sql: sql::insert(&meta),
                        change: Change {
                            table: meta.table_cow(),
                            key: key.json(),
                            operation: Operation::Insert,
                        },
                        stored: Some((id.clone(), params.clone())),
                        deleted: None,
                        params,
                        meta,
                    });
                }
                Op::Delete { id, meta, key } => writes.push(Write {
                    meta: meta.clone(),
                    sql: sql::delete(meta),
                    params: vec![key.clone()],
                    change: Change {
                        table: meta.table_cow(),
                        key: key.json(),
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
