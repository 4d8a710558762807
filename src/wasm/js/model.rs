//! The npm package's models over the Rust model layer: `ModelHandle` (what `defineModel`
//! builds), the runners of its query descriptions, its row verbs, the unit of work of its
//! objects, and Flask-SQLAlchemy's page numbers.
//!
//! JavaScript hands plain values over — a column spec, a query description, a row — and they
//! are read here through [`DynValue`]; checks, SQL, pagination and tracking are
//! `crate::model`'s (see `model::dynamic`). Rows come back through the package's value mapping
//! (`convert.rs`). A tracked object is the JavaScript object itself: the session's unit of work
//! holds it and reads its properties at each flush.

use super::{
    convert,
    convert::{Int64, Output},
    error, promise, set, JsSession,
};
use crate::{
    model::{
        arg::Arg,
        dynamic::{self, query, spec, write, DefinedModel, DynValue},
        paginate::ITER_PAGES_DEFAULTS,
        select::Select,
        ColumnMeta, Pagination,
    },
    DynParam, Rows,
};
use js_sys::{Array, BigInt, Object, Promise, Reflect, JSON};
use serde::Serialize as _;
use std::rc::Rc;
use wasm_bindgen::{prelude::*, JsCast};

impl DynValue for JsValue {
    fn undefined() -> Self {
        JsValue::UNDEFINED
    }
    fn text(text: &str) -> Self {
        JsValue::from_str(text)
    }
    fn is_undefined(&self) -> bool {
        JsValue::is_undefined(self)
    }
    fn is_null(&self) -> bool {
        JsValue::is_null(self)
    }
    fn as_str(&self) -> Option<String> {
        self.as_string()
    }
    fn as_bool(&self) -> Option<bool> {
        JsValue::as_bool(self)
    }
    fn as_f64(&self) -> Option<f64> {
        JsValue::as_f64(self)
    }
    fn as_array(&self) -> Option<Vec<Self>> {
        Array::is_array(self).then(|| self.unchecked_ref::<Array>().iter().collect())
    }
    fn entries(&self) -> Option<Vec<(String, Self)>> {
        if !self.is_object() || Array::is_array(self) {
            return None;
        }
        let entries = Object::entries(self.unchecked_ref::<Object>());
        Some(
            entries
                .iter()
                .map(|pair| {
                    let pair: Array = pair.unchecked_into();
                    (pair.get(0).as_string().unwrap_or_default(), pair.get(1))
                })
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Self {
        if !self.is_object() {
            return JsValue::UNDEFINED;
        }
        Reflect::get(self, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }
    fn set(&self, key: &str, value: Self) {
        if self.is_object() {
            // A property that cannot be set (a frozen object) keeps its value: the object is
            // the application's.
            let _ = Reflect::set(self, &JsValue::from_str(key), &value);
        }
    }
    fn described(&self) -> String {
        if JsValue::is_null(self) {
            "null".to_owned()
        } else if Array::is_array(self) {
            "an array".to_owned()
        } else {
            self.js_typeof().as_string().unwrap_or_default()
        }
    }
    fn shown(&self) -> String {
        if self.is_bigint() {
            if let Ok(digits) = self.unchecked_ref::<BigInt>().to_string(10) {
                return digits.into();
            }
        }
        JSON::stringify(self)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| {
                js_sys::JsString::from(self.clone())
                    .as_string()
                    .unwrap_or_default()
            })
    }
    fn to_param(&self) -> Result<DynParam, String> {
        convert::value_param(self)
    }
}

/// What `defineModel` builds in Rust: a model's checked metadata and identity. The package's
/// `Model` object holds one (and builds a new one when the wasm instance was replaced after a
/// panic).
#[wasm_bindgen(js_name = ModelHandle)]
pub struct JsModel {
    model: Rc<DefinedModel>,
}

/// A page's numbers as the package's `Pagination` shows them.
fn numbers(page: &Pagination<()>) -> Object {
    let o = Object::new();
    #[allow(clippy::cast_precision_loss)] // page numbers stay far below 2^53
    let n = |v: u64| JsValue::from_f64(v as f64);
    let opt = |v: Option<u64>| v.map_or(JsValue::NULL, n);
    set(&o, "pages", opt(page.counted_pages()));
    set(&o, "hasPrev", page.has_prev());
    set(&o, "hasNext", page.has_next());
    set(&o, "prevNum", opt(page.prev_num()));
    set(&o, "nextNum", opt(page.next_num()));
    set(&o, "first", n(page.first()));
    set(&o, "last", n(page.last()));
    o
}

/// A `Pagination` of `count` items from JavaScript numbers (negative ones are 0; `total`
/// null: uncounted, `more` saying whether a row follows).
fn pagination(
    page: f64,
    per_page: f64,
    total: Option<f64>,
    count: f64,
    more: bool,
) -> Pagination<()> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating casts
    let n = |v: f64| v as u64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let items = vec![(); (count as usize).min(1 << 20)];
    Pagination::of(items, (n(page), n(per_page)), total.map(n), more, None)
}

/// Flask-SQLAlchemy's numbers of a page: `{ pages, hasPrev, hasNext, prevNum, nextNum, first,
/// last }` for page `page` of `perPage` rows, `total` in all (null: uncounted, then `pages` is
/// null and `more` says whether a row follows), `count` on this page.
#[wasm_bindgen(js_name = paginationNumbers)]
#[must_use]
pub fn pagination_numbers(
    page: f64,
    per_page: f64,
    total: Option<f64>,
    count: f64,
    more: Option<bool>,
) -> Object {
    numbers(&pagination(
        page,
        per_page,
        total,
        count,
        more.unwrap_or(false),
    ))
}

/// Page numbers for a pagination widget, `null` marking a gap (Flask-SQLAlchemy's
/// `iter_pages`; an edge or window not given takes its default: 2, 2, 4, 2).
#[wasm_bindgen(js_name = iterPages)]
#[must_use]
pub fn iter_pages(
    page: f64,
    per_page: f64,
    total: Option<f64>,
    left_edge: Option<f64>,
    left_current: Option<f64>,
    right_current: Option<f64>,
    right_edge: Option<f64>,
) -> Array {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = |v: Option<f64>, default: u64| v.map_or(default, |v| v as u64);
    let (le, lc, rc, re) = ITER_PAGES_DEFAULTS;
    let pages = pagination(page, per_page, total, 0.0, false).iter_pages_with(
        n(left_edge, le),
        n(left_current, lc),
        n(right_current, rc),
        n(right_edge, re),
    );
    #[allow(clippy::cast_precision_loss)]
    pages
        .into_iter()
        .map(|p| p.map_or(JsValue::NULL, |p| JsValue::from_f64(p as f64)))
        .collect()
}

/// A value written into `column` as the model reads it back: the value given, except that a
/// number column's takes the column's JavaScript type (a `number`, or a `bigint` with
/// `bigint: true`) whatever the caller passed (`1n`, `"4"`), as the row type says.
fn as_read(
    column: &ColumnMeta,
    given: JsValue,
    written: &Arg,
    out: &Output,
) -> Result<JsValue, JsValue> {
    if !spec::is_numeric(column.sql_type()) {
        return Ok(given);
    }
    let Some(value) = written.value() else {
        return Ok(given);
    };
    convert::Cell {
        value: &value,
        out: &convert::column_output(out, Some(column)),
    }
    .serialize(&convert::serializer())
    .map_err(|e| JsValue::from_str(&e.to_string()))
}

/// A model's rows as JavaScript objects: its integer columns as `number`s, or `bigint`s with
/// `bigint: true` (see `convert::ModelColumns`).
struct RowsOut {
    out: Output,
    model: Rc<DefinedModel>,
}

impl RowsOut {
    fn new(out: Output, model: &Rc<DefinedModel>) -> Self {
        Self {
            out,
            model: Rc::clone(model),
        }
    }

    fn rows(&self, rows: Rows) -> crate::Result<JsValue> {
        convert::model_rows_to_js(rows, &self.out, &self.model.meta)
    }

    fn first(&self, rows: Rows) -> crate::Result<JsValue> {
        convert::first_model_row_to_js(rows, &self.out, &self.model.meta)
    }
}

impl JsModel {
    /// The model's metadata, shared (a migration run keeps it).
    pub(super) fn shared_meta(&self) -> Rc<crate::model::ModelMeta> {
        Rc::clone(&self.model.meta)
    }

    fn meta(&self) -> &crate::model::ModelMeta {
        &self.model.meta
    }

    /// Runs a query description with `run` on the untyped query it describes.
    fn run<F, Fut>(&self, session: &JsSession, desc: JsValue, run: F) -> js_sys::Promise
    where
        F: FnOnce(Select, RowsOut) -> Fut + 'static,
        Fut: std::future::Future<Output = crate::Result<JsValue>> + 'static,
    {
        let model = Rc::clone(&self.model);
        let out = RowsOut::new(session.out, &model);
        let session = session.session.clone();
        promise(async move {
            let select = error::js(query::describe(&model, &session, &desc))?;
            error::js(run(select, out).await)
        })
    }
}

#[wasm_bindgen(js_class = ModelHandle)]
impl JsModel {
    /// `new ModelHandle(table, columns, options)`: checks the definition (see `defineModel`).
    ///
    /// # Errors
    /// `CONFIG`, saying what is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(table: JsValue, columns: JsValue, options: JsValue) -> Result<JsModel, JsValue> {
        let meta = error::js(spec::define(&table, &columns, &options))?;
        Ok(Self {
            model: Rc::new(DefinedModel::new(meta)),
        })
    }

    /// The table name.
    #[wasm_bindgen(getter)]
    pub fn table(&self) -> String {
        self.meta().table().to_owned()
    }

    /// The primary key's column name.
    #[wasm_bindgen(getter, js_name = primaryKey)]
    pub fn primary_key(&self) -> String {
        self.meta().primary_key().name().to_owned()
    }

    /// The bind key (`null`: the default bind).
    #[wasm_bindgen(getter, js_name = bindKey)]
    pub fn bind_key(&self) -> JsValue {
        self.meta()
            .bind_key()
            .map_or(JsValue::NULL, JsValue::from_str)
    }

    /// The columns as checked: name → `{ type, primaryKey, unique, nullable, bigint }`, in
    /// order.
    #[wasm_bindgen(getter)]
    pub fn columns(&self) -> Object {
        let meta = self.meta();
        let out = Object::new();
        for (i, column) in meta.columns().iter().enumerate() {
            let spec = Object::new();
            set(&spec, "type", column.sql_type());
            set(&spec, "primaryKey", i == meta.primary_key_index());
            set(&spec, "unique", column.is_unique());
            set(&spec, "nullable", column.is_nullable());
            set(&spec, "bigint", column.is_bigint());
            set(&out, column.name(), spec);
        }
        out
    }

    /// Checks a condition (`[column, op, value]`, `{ and | or | not }`) for the builder
    /// `method` (`filter`, `filterBy`), before any SQL runs.
    ///
    /// # Errors
    /// `SQL`, saying what is wrong.
    #[wasm_bindgen(js_name = checkFilter)]
    pub fn check_filter(&self, condition: JsValue, method: &str) -> Result<(), JsValue> {
        error::js(query::condition(self.meta(), &condition, method)).map(|_| ())
    }

    /// Checks `filterBy`'s object.
    ///
    /// # Errors
    /// `SQL`, saying what is wrong.
    #[wasm_bindgen(js_name = checkFilterBy)]
    pub fn check_filter_by(&self, values: JsValue) -> Result<(), JsValue> {
        error::js(query::filter_by(self.meta(), &values)).map(|_| ())
    }

    /// Checks an `orderBy` argument (`"name"`, `"-name"`).
    ///
    /// # Errors
    /// `SQL` for a name that is not a column.
    #[wasm_bindgen(js_name = checkOrder)]
    pub fn check_order(&self, order: JsValue) -> Result<(), JsValue> {
        error::js(query::order(self.meta(), &order)).map(|_| ())
    }

    /// Checks the argument of `limit(n)` / `offset(n)` (`what`).
    ///
    /// # Errors
    /// `SQL` unless it is an integer ≥ 0.
    #[wasm_bindgen(js_name = checkCount)]
    pub fn check_count(&self, n: JsValue, what: &str) -> Result<(), JsValue> {
        error::js(query::count(&n, what)).map(|_| ())
    }

    /// Checks that the model's statements can run in `session` (its bind).
    ///
    /// # Errors
    /// `CONFIG` for the session of another bind, or a bind key without an engine.
    #[wasm_bindgen(js_name = checkSession)]
    pub fn check_session(&self, session: &JsSession) -> Result<(), JsValue> {
        error::js(dynamic::bind_session(self.meta(), &session.session)).map(|_| ())
    }

    /// Every row of a query description.
    pub fn all(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        self.run(
            session,
            desc,
            |q, out| async move { out.rows(q.all().await?) },
        )
    }

    /// The first row, or `null`.
    pub fn first(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        self.run(session, desc, |q, out| async move {
            out.first(q.first().await?)
        })
    }

    /// The first row, or `NOT_FOUND`.
    #[wasm_bindgen(js_name = firstOr404)]
    pub fn first_or_404(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        self.run(session, desc, |q, out| async move {
            out.first(q.first_or_404().await?)
        })
    }

    /// The only row: `NOT_FOUND` when none, `MULTIPLE_RESULTS` when several.
    pub fn one(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        self.run(
            session,
            desc,
            |q, out| async move { out.first(q.one().await?) },
        )
    }

    /// The row with primary key `key` that matches the filters, or `null`.
    pub fn get(&self, session: &JsSession, desc: JsValue, key: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        self.run(session, desc, move |q, out| async move {
            let place = format!("{}.get", model.table());
            let key = dynamic::key(&model.meta, &key, &place)?;
            out.first(q.get(key).await?)
        })
    }

    /// [`JsModel::get`], or `NOT_FOUND` naming the table and key.
    #[wasm_bindgen(js_name = getOr404)]
    pub fn get_or_404(&self, session: &JsSession, desc: JsValue, key: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        self.run(session, desc, move |q, out| async move {
            let place = format!("{}.get", model.table());
            let key = dynamic::key(&model.meta, &key, &place)?;
            out.first(q.get_or_404(key).await?)
        })
    }

    /// How many rows the query yields (limit and offset applied).
    pub fn count(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        self.run(session, desc, |q, _| async move {
            #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
            Ok(JsValue::from_f64(q.count().await? as f64))
        })
    }

    /// One page: `{ items, page, perPage, total, more, maxPerPage }` (`total` null when
    /// uncounted; `more`: whether a row follows the page, known uncounted). `args` undefined: `options`
    /// holds `page` and `perPage` (`paginate`); else `args` is `{ page, per_page }` from a
    /// request (`paginateArgs`).
    pub fn paginate(
        &self,
        session: &JsSession,
        desc: JsValue,
        options: JsValue,
        args: JsValue,
    ) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        self.run(session, desc, move |q, out| async move {
            let table = model.table();
            let request = if args.is_undefined() {
                query::page_request(&options, None, &format!("{table}.paginate"))?
            } else {
                let (page, per_page) = (args.get("page"), args.get("per_page"));
                query::page_request(
                    &options,
                    Some((&page, &per_page)),
                    &format!("{table}.paginateArgs"),
                )?
            };
            let page = request.fetch(&q).await?;
            let o = Object::new();
            #[allow(clippy::cast_precision_loss)] // page numbers stay far below 2^53
            {
                set(&o, "page", page.page as f64);
                set(&o, "perPage", page.per_page as f64);
                set(
                    &o,
                    "total",
                    page.total
                        .map_or(JsValue::NULL, |n| JsValue::from_f64(n as f64)),
                );
                set(&o, "more", page.more);
                set(
                    &o,
                    "maxPerPage",
                    page.max_per_page
                        .map_or(JsValue::NULL, |n| JsValue::from_f64(n as f64)),
                );
            }
            set(&o, "items", out.rows(page.rows)?);
            Ok(o.into())
        })
    }

    /// `Model.insert`: resolves to the row as inserted (the values given; NULL for absent
    /// nullable columns).
    pub fn insert(&self, session: &JsSession, values: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        let out = session.out;
        let session = session.session.clone();
        promise(async move {
            let row =
                error::js(write::insert(&model, &session, &values, out.model_numbers()).await)?;
            let o = Object::new();
            for (column, value) in model.meta.columns().iter().zip(row) {
                let value = value.map_or(Ok(JsValue::NULL), |(given, written)| {
                    as_read(column, given, &written, &out)
                })?;
                set(&o, column.name(), value);
            }
            Ok(o.into())
        })
    }

    /// `Model.update`: SETs the changed columns; resolves to the row after the change.
    pub fn update(&self, session: &JsSession, key: JsValue, changes: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        let out = RowsOut::new(session.out, &model);
        let session = session.session.clone();
        promise(async move {
            let read = |stored: &Rows| out.first(stored.clone());
            let (row, changed) = error::js(
                write::update(
                    &model,
                    &session,
                    &key,
                    &changes,
                    read,
                    out.out.model_numbers(),
                )
                .await,
            )?;
            for (index, given, written) in changed {
                let column = &model.meta.columns()[index];
                let value = as_read(column, given, &written, &out.out)?;
                set(row.unchecked_ref(), column.name(), value);
            }
            Ok(row)
        })
    }

    /// `Model.delete`: deletes the row with primary key `key`.
    pub fn delete(&self, session: &JsSession, key: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        let session = session.session.clone();
        promise(async move {
            error::js(write::delete(&model, &session, &key).await)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `query.delete()`: deletes the rows a query description matches (no order, limit or
    /// offset); resolves to how many it deleted.
    #[wasm_bindgen(js_name = bulkDelete)]
    pub fn bulk_delete(&self, session: &JsSession, desc: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        self.run(session, desc, move |q, _| async move {
            let deleted = write::bulk_delete(&model, &q).await?;
            #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
            Ok(JsValue::from_f64(deleted as f64))
        })
    }

    /// `query.update(changes)`: SETs the columns of `changes` on the rows a query description
    /// matches; resolves to how many matched. Tracked objects of those rows take the new
    /// values.
    #[wasm_bindgen(js_name = bulkUpdate)]
    pub fn bulk_update(
        &self,
        session: &JsSession,
        desc: JsValue,
        changes: JsValue,
    ) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        self.run(session, desc, move |q, out| async move {
            let to_object = |rows: &Rows| out.first(rows.clone());
            let numbers = out.out.model_numbers();
            let updated = write::bulk_update(&model, &q, &changes, to_object, numbers).await?;
            #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
            Ok(JsValue::from_f64(updated as f64))
        })
    }

    /// `createAll` of this model: `CREATE TABLE IF NOT EXISTS` on its bind.
    #[wasm_bindgen(js_name = create)]
    pub fn create_table(&self, session: &JsSession) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        let session = session.session.clone();
        promise(async move {
            error::js(write::create(&model, &session).await)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `dropAll` of this model: `DROP TABLE IF EXISTS` on its bind.
    #[wasm_bindgen(js_name = drop)]
    pub fn drop_table(&self, session: &JsSession) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        let session = session.session.clone();
        promise(async move {
            error::js(write::drop(&model, &session).await)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next value of the ID sequence named after the table, on the model's bind.
    ///
    /// # Errors
    /// `CONFIG` for another bind's session; `SESSION_CLOSED`.
    #[wasm_bindgen(js_name = nextId)]
    pub fn next_id(&self, session: &JsSession) -> Result<Promise, JsValue> {
        let bind = error::js(dynamic::bind_session(self.meta(), &session.session))?;
        let table = self.meta().table().to_owned();
        let out = convert::column_output(&session.out, Some(self.meta().primary_key()));
        Ok(super::promise(async move {
            let id = crate::Value::I64(error::js(bind.next_id(&table).await)?);
            if let Some(digits) =
                dynamic::beyond_safe_integer(&id).filter(|_| out.int64 == Int64::Number)
            {
                return Err(error::to_js(&crate::Error::Sql {
                    message: format!(
                        "the ID sequence {table:?} {}; declare the primary key with bigint: \
                         true in defineModel to read it as a bigint",
                        convert::beyond_safe(digits)
                    ),
                }));
            }
            convert::Cell {
                value: &id,
                out: &out,
            }
            .serialize(&serde_wasm_bindgen::Serializer::new())
            .map_err(|e| JsValue::from_str(&e.to_string()))
        }))
    }
}

/// The unit of work of model objects, from JavaScript (`session.add(User, object)` and the
/// other verbs the package adds to `Session`).
#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// Tracks `object` as a new object of `model`: inserted at the next flush; returns it.
    ///
    /// # Errors
    /// `SQL` for a field that is no column or a missing primary key; `UNIQUE` when the
    /// session tracks an object with this key already.
    #[wasm_bindgen(js_name = addObject)]
    pub fn add_object(&self, model: &JsModel, object: JsValue) -> Result<JsValue, JsValue> {
        error::js(dynamic::add(
            &model.model,
            &self.session,
            object,
            self.out.model_numbers(),
        ))
    }

    /// Deletes the row of `object` (any object with the model's primary key) at the next
    /// flush.
    ///
    /// # Errors
    /// `SQL` for an object without a primary key.
    #[wasm_bindgen(js_name = deleteObject)]
    pub fn delete_object(&self, model: &JsModel, object: JsValue) -> Result<(), JsValue> {
        error::js(dynamic::delete(&model.model, &self.session, &object))
    }

    /// The tracked object of `model` with primary key `key` (the identity map), else loaded
    /// and tracked; `null` when no row has the key.
    #[wasm_bindgen(js_name = getObject)]
    pub fn get_object(&self, model: &JsModel, key: JsValue) -> js_sys::Promise {
        let model = Rc::clone(&model.model);
        let session = self.session.clone();
        let out = RowsOut::new(self.out, &model);
        promise(async move {
            let to_object = |rows: &Rows| out.first(rows.clone());
            let numbers = out.out.model_numbers();
            let found = error::js(dynamic::get(&model, &session, &key, to_object, numbers).await)?;
            Ok(found.unwrap_or(JsValue::NULL))
        })
    }

    /// Writes pending model changes to the session (not a commit): updates of changed
    /// objects, then inserts and deletes in call order; all or nothing.
    pub fn flush(&self) -> js_sys::Promise {
        let session = self.session.clone();
        promise(async move {
            error::js(session.flush().await)?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
