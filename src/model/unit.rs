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
use crate::{Error, ParamLiteral, Result, Session};
use serde::Serialize;
use std::{
    any::Any,
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
        f.debug_tuple("Tracked").field(&*self.0.borrow()).finish()
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
    fn params(&self) -> Vec<ParamLiteral>;
}

impl<M: Model> Object for RefCell<M> {
    fn meta(&self) -> &'static ModelMeta {
        M::META
    }
    fn params(&self) -> Vec<ParamLiteral> {
        self.borrow().to_params()
    }
}

/// Parameters compared and keyed by their debug text: `ParamLiteral` has no `Eq`/`Hash`, and
/// its debug text names both the type and the value.
fn text(param: &ParamLiteral) -> String {
    format!("{param:?}")
}

fn key_json(param: &ParamLiteral) -> serde_json::Value {
    match param.clone().into_expr() {
        gluesql_core::ast::Expr::Value(v) => {
            crate::to_json(v).unwrap_or_else(|_| serde_json::Value::String(text(param)))
        }
        _ => serde_json::Value::String(text(param)),
    }
}

type Identity = (&'static str, String);

enum State {
    /// Added, not inserted yet.
    New,
    /// In the database as `stored` (column order) since the last flush or load.
    Persistent { stored: Vec<ParamLiteral> },
}

struct Entry {
    object: Rc<dyn Object>,
    any: Rc<dyn Any>,
    state: State,
}

/// A pending insert or delete, in call order.
enum Op {
    Insert(Identity),
    Delete {
        meta: &'static ModelMeta,
        key: ParamLiteral,
    },
}

/// A session's identity map and pending model operations.
#[derive(Default)]
pub(crate) struct Unit {
    entries: HashMap<Identity, Entry>,
    /// Deleted in this session since the last flush: `get` gives `None` for these.
    deleted: HashSet<Identity>,
    ops: Vec<Op>,
    /// Flushed since the last commit or rollback, for commit hooks.
    changes: Vec<Change>,
}

impl Unit {
    /// True when a flush would write something.
    pub fn has_pending(&self) -> bool {
        !self.ops.is_empty()
            || self.entries.values().any(|e| match &e.state {
                State::Persistent { stored } => differs(stored, &e.object.params()),
                _ => false,
            })
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Forgets every object (commit and rollback expire them) and the recorded changes.
    pub fn clear(&mut self) {
        *self = Self::default();
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
        let id = identity::<M>(&object.key());
        if let Some(found) = self.tracked::<M>(&id) {
            return found;
        }
        let stored = object.to_params();
        let cell = Rc::new(RefCell::new(object));
        self.entries.insert(
            id,
            Entry {
                object: cell.clone(),
                any: cell.clone(),
                state: State::Persistent { stored },
            },
        );
        Some(Tracked(cell))
    }
}

fn differs(a: &[ParamLiteral], b: &[ParamLiteral]) -> bool {
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| text(x) != text(y))
}

fn identity<M: Model>(key: &ParamLiteral) -> Identity {
    (M::META.table(), text(key))
}

/// One statement of a flush.
struct Write {
    meta: &'static ModelMeta,
    sql: String,
    params: Vec<ParamLiteral>,
    change: Change,
    /// The identity to mark persistent with these values once written.
    stored: Option<(Identity, Vec<ParamLiteral>)>,
}

impl Unit {
    /// The statements a flush runs: updates of changed objects first (so a unique value moved
    /// from an updated object to an added one is free when the insert runs), then inserts and
    /// deletes in call order.
    fn plan(&self) -> Result<Vec<Write>> {
        let mut writes = Vec::new();
        for (id, entry) in &self.entries {
            let State::Persistent { stored } = &entry.state else {
                continue;
            };
            let current = entry.object.params();
            if !differs(stored, &current) {
                continue;
            }
            let meta = entry.object.meta();
            let pk = meta.primary_key_index();
            if text(&current[pk]) != text(&stored[pk]) {
                return Err(Error::sql(format!(
                    "a tracked {} object's primary key ({}) changed from {} to {}: primary keys \
                     are identities — delete the object and add a new one instead",
                    meta.table(),
                    meta.primary_key().name(),
                    key_json(&stored[pk]),
                    key_json(&current[pk]),
                )));
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
                    key: key_json(&current[pk]),
                    operation: Operation::Update,
                },
                stored: Some((id.clone(), current)),
            });
        }
        for op in &self.ops {
            match op {
                Op::Insert(id) => {
                    let Some(entry) = self.entries.get(id) else {
                        continue;
                    };
                    let meta = entry.object.meta();
                    let params = entry.object.params();
                    writes.push(Write {
                        meta,
                        sql: sql::insert(meta),
                        change: Change {
                            table: meta.table(),
                            key: key_json(&params[meta.primary_key_index()]),
                            operation: Operation::Insert,
                        },
                        stored: Some((id.clone(), params.clone())),
                        params,
                    });
                }
                Op::Delete { meta, key } => writes.push(Write {
                    meta,
                    sql: sql::delete(meta),
                    params: vec![key.clone()],
                    change: Change {
                        table: meta.table(),
                        key: key_json(key),
                        operation: Operation::Delete,
                    },
                    stored: None,
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
                    key_json(&key)
                ),
            });
        }
        // Deleted earlier in this session: the DELETE stays queued before this INSERT.
        unit.deleted.remove(&id);
        let cell = Rc::new(RefCell::new(object));
        unit.entries.insert(
            id.clone(),
            Entry {
                object: cell.clone(),
                any: cell.clone(),
                state: State::New,
            },
        );
        unit.ops.push(Op::Insert(id));
        Ok(Tracked(cell))
    }

    /// Marks a model object for deletion (SQLAlchemy's `session.delete`): the `DELETE` runs
    /// at the next flush, and [`Session::get`] gives `None` for it meanwhile. Takes the value
    /// or its [`Tracked`] handle. An object added and deleted before any flush is never
    /// written.
    ///
    /// # Errors
    /// [`Error::SessionClosed`] after removal. The flush that runs the `DELETE` gives
    /// [`Error::NotFound`] when no row had the key.
    pub fn delete<M: Model>(&self, object: &impl ModelRef<M>) -> Result<()> {
        let root = self.unit_owner()?;
        let key = object.key_param();
        let id = identity::<M>(&key);
        let mut unit = root.unit().borrow_mut();
        let removed = unit.entries.remove(&id);
        if matches!(
            removed,
            Some(Entry {
                state: State::New,
                ..
            })
        ) {
            // Never written: drop its INSERT instead of writing and deleting the row.
            unit.ops
                .retain(|op| !matches!(op, Op::Insert(other) if *other == id));
        } else {
            unit.ops.push(Op::Delete { meta: M::META, key });
        }
        unit.deleted.insert(id);
        Ok(())
    }

    /// Writes pending model changes to the session (SQLAlchemy's `flush`): updates of changed
    /// objects, then inserts and deletes in call order. Not a commit: other sessions see
    /// nothing until [`Session::commit`]. All or nothing: when one statement fails, the
    /// session's data is as before the flush and the objects stay pending.
    ///
    /// # Errors
    /// [`Error::Unique`] for a taken key or unique value, [`Error::NotFound`] when a deleted
    /// or changed object's row is gone, [`Error::Sql`] when a tracked object's primary key
    /// was changed; the session's errors.
    pub async fn flush(&self) -> Result<()> {
        let root = self.unit_owner()?;
        let writes = root.unit().borrow().plan()?;
        if writes.is_empty() {
            return Ok(());
        }
        let saved = root.save_all()?;
        for write in &writes {
            let outcome = root
                .for_bind(write.meta.bind_key())?
                .run_unflushed(&write.sql, &write.params)
                .await;
            let failure = match outcome {
                Ok(result)
                    if result.affected() == 0 && write.change.operation != Operation::Insert =>
                {
                    Some(Error::NotFound {
                        table: write.meta.table().to_owned(),
                        detail: format!(
                            "flush found no row with {} = {} to {}: it was deleted (in this \
                             session or by one that committed first)",
                            write.meta.primary_key().name(),
                            write.change.key,
                            if write.change.operation == Operation::Delete {
                                "delete"
                            } else {
                                "update"
                            }
                        ),
                    })
                }
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if let Some(e) = failure {
                root.restore_all(saved);
                return Err(e);
            }
        }
        let mut unit = root.unit().borrow_mut();
        unit.ops.clear();
        unit.deleted.clear();
        for write in writes {
            if let Some((id, stored)) = write.stored {
                if let Some(entry) = unit.entries.get_mut(&id) {
                    entry.state = State::Persistent { stored };
                }
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
