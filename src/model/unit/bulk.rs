//! The unit of work around bulk verbs (`Query::delete`, `Query::update`): which tracked
//! objects a bulk statement reaches, and keeping them in step with their rows afterwards, as
//! SQLAlchemy's `synchronize_session="fetch"` does.

use super::*;
use crate::{Rows, Value};

/// Prepares the refresh of one tracked object (`any`, as the identity map holds it) from its
/// row read after a bulk update (`rows`, that row alone): the columns at the given indices
/// take the row's values, the others keep the object's. Preparing may fail (the object is
/// borrowed, a value does not convert) and changes nothing; the closure it returns applies
/// the refresh and cannot fail. Nothing is awaited between the two.
pub(crate) type Refresh<'a> =
    &'a dyn Fn(&Rc<dyn Any>, &Rows, &[usize]) -> Result<Box<dyn FnOnce()>>;

impl Session {
    /// The persistent objects of `model` this session tracks, in tracking order: their
    /// identities and primary keys.
    pub(crate) fn tracked_of(&self, model: ModelId) -> Vec<(Identity, Arg)> {
        let unit = self.unit().borrow();
        let mut found: Vec<(&Identity, &Entry)> = unit
            .entries
            .iter()
            .filter(|(id, e)| id.0 == model && e.state == State::Persistent)
            .collect();
        found.sort_by_key(|(_, e)| e.seq);
        found
            .into_iter()
            .map(|(id, e)| (id.clone(), e.key.clone()))
            .collect()
    }

    /// Stops tracking the objects `ids`, whose rows a bulk delete removed (SQLAlchemy
    /// detaches them too): [`Session::get`] reads their keys anew (and finds nothing), and
    /// changes made through old handles are not written.
    pub(crate) fn forget(&self, ids: &[Identity]) {
        let mut unit = self.unit().borrow_mut();
        for id in ids {
            if unit
                .entries
                .get(id)
                .is_some_and(|e| e.state == State::Persistent)
            {
                unit.entries.remove(id);
            }
        }
    }

    /// Refreshes the tracked objects `targets` from `rows`, their rows read after a bulk
    /// update (found by primary key, at index `pk`): the columns at `columns` take the rows'
    /// values and count as stored, so the next flush does not write them again. Every
    /// refresh is prepared before any applies: all of them happen, or none.
    pub(crate) fn refresh_tracked(
        &self,
        targets: &[(Identity, Arg)],
        rows: &Rows,
        pk: usize,
        columns: &[usize],
        refresh: Refresh<'_>,
    ) -> Result<()> {
        let mut prepared = Vec::with_capacity(targets.len());
        for (id, key) in targets {
            let key = key.value();
            let Some(index) = rows
                .iter()
                .position(|row| key.as_ref() == row.values().get(pk))
            else {
                continue;
            };
            let any = self
                .unit()
                .borrow()
                .entries
                .get(id)
                .map(|e| Rc::clone(&e.any));
            if let Some(any) = any {
                prepared.push((id, refresh(&any, &rows.only(index), columns)?));
            }
        }
        for (id, apply) in prepared {
            apply();
            let mut unit = self.unit().borrow_mut();
            if let Some(entry) = unit.entries.get_mut(id) {
                // An object the flush cannot read keeps its stored values: the flush reports it.
                if let Ok(now) = entry.object.params() {
                    for &c in columns {
                        entry.stored[c] = now[c].clone();
                    }
                }
            }
        }
        Ok(())
    }
}

/// [`Refresh`] of a typed model's object: a new `M` from the object's values with the
/// refreshed columns' replaced.
pub(crate) fn refresh_typed<M: Model>(
    any: &Rc<dyn Any>,
    rows: &Rows,
    columns: &[usize],
) -> Result<Box<dyn FnOnce()>> {
    let (Ok(cell), Some(row)) = (Rc::clone(any).downcast::<RefCell<M>>(), rows.get(0)) else {
        return Ok(Box::new(|| {}));
    };
    let current = match cell.try_borrow_mut() {
        Ok(object) => object.to_params(),
        Err(_) => {
            return Err(Error::sql(format!(
                "a tracked {} object is borrowed (a Tracked::borrow() or borrow_mut() is still \
                 alive) while a bulk update changes its row: drop the borrow before \
                 Query::update(); nothing was changed",
                M::META.table()
            )))
        }
    };
    let values: Vec<Value> = current
        .into_iter()
        .enumerate()
        .map(|(i, param)| match row.values().get(i) {
            Some(value) if columns.contains(&i) => value.clone(),
            _ => Arg::Typed(param).value().unwrap_or(Value::Null),
        })
        .collect();
    let names = M::META
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let merged = Rows::new(names, vec![values]);
    let fresh = M::from_row(&merged.get(0).expect("one row"))?;
    Ok(Box::new(move || *cell.borrow_mut() = fresh))
}
