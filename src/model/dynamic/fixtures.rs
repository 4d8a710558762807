//! The shared model fixtures (`tests/fixtures/models/*.json`), run natively against the
//! dynamic model layer. `js/test/fixtures.test.mjs` runs the same files through the npm
//! package's public API, so the SQL both languages write, the rows they read, the pages they
//! count and the errors they give cannot drift apart. See `tests/fixtures/models/README.md`
//! for the format.
//!
//! Over 600 lines on purpose: one interpreter of the fixture steps, whose cases read together.

use super::{query, spec, write, DefinedModel, DynValue};
use crate::{
    model::{paginate::Pagination, select::Select},
    DynParam, Engine, Result, Rows, Session, SessionFactory, Value,
};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::{cell::RefCell, collections::BTreeMap, fmt, path::Path, rc::Rc};

/// The fixtures run as the npm package does with its default options (`int64: "auto"`): a
/// wide integer column without `bigint: true` holds safe integers.
const NUMBERS: bool = true;

/// JSON as JavaScript sees it: object properties keep their order (column specs are ordered),
/// objects are shared and mutable (tracked objects change in place), and `undefined` exists.
#[derive(Clone)]
enum Json {
    Undefined,
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Rc<Vec<Json>>),
    Object(Rc<RefCell<Vec<(String, Json)>>>),
}

impl Json {
    fn object(entries: Vec<(String, Json)>) -> Self {
        Self::Object(Rc::new(RefCell::new(entries)))
    }

    fn from_serde(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => Self::Number(n),
            serde_json::Value::String(s) => Self::String(s),
            serde_json::Value::Array(a) => {
                Self::Array(Rc::new(a.into_iter().map(Self::from_serde).collect()))
            }
            serde_json::Value::Object(o) => Self::object(
                o.into_iter()
                    .map(|(k, v)| (k, Self::from_serde(v)))
                    .collect(),
            ),
        }
    }

    fn to_serde(&self) -> serde_json::Value {
        match self {
            Self::Undefined | Self::Null => serde_json::Value::Null,
            Self::Bool(b) => (*b).into(),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
            Self::String(s) => s.clone().into(),
            Self::Array(a) => a.iter().map(Self::to_serde).collect(),
            Self::Object(o) => serde_json::Value::Object(
                o.borrow()
                    .iter()
                    .filter(|(_, v)| !matches!(v, Self::Undefined))
                    .map(|(k, v)| (k.clone(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    fn str(&self, key: &str) -> Option<String> {
        self.get(key).as_str()
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> std::result::Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> std::result::Result<Json, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Json, E> {
                Ok(Json::String(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Array(Rc::new(out)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::object(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl DynValue for Json {
    fn undefined() -> Self {
        Self::Undefined
    }
    fn text(text: &str) -> Self {
        Self::String(text.to_owned())
    }
    fn is_undefined(&self) -> bool {
        matches!(self, Self::Undefined)
    }
    fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
    fn as_str(&self) -> Option<String> {
        match self {
            Self::String(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<Vec<Self>> {
        match self {
            Self::Array(a) => Some(a.as_ref().clone()),
            _ => None,
        }
    }
    fn entries(&self) -> Option<Vec<(String, Self)>> {
        match self {
            Self::Object(o) => Some(o.borrow().clone()),
            _ => None,
        }
    }
    fn get(&self, key: &str) -> Self {
        match self {
            Self::Object(o) => o
                .borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map_or(Self::Undefined, |(_, v)| v.clone()),
            _ => Self::Undefined,
        }
    }
    /// As JavaScript code changes a tracked object.
    fn set(&self, key: &str, value: Self) {
        if let Self::Object(o) = self {
            let mut o = o.borrow_mut();
            match o.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => o.push((key.to_owned(), value)),
            }
        }
    }
    fn described(&self) -> String {
        match self {
            Self::Undefined => "undefined",
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "an array",
            Self::Object(_) => "object",
        }
        .to_owned()
    }
    fn shown(&self) -> String {
        match self {
            Self::Undefined => "undefined".to_owned(),
            other => other.to_serde().to_string(),
        }
    }
    fn to_param(&self) -> std::result::Result<DynParam, String> {
        match self {
            Self::Undefined => Err("is undefined; pass null for SQL NULL".to_owned()),
            Self::Null => Ok(DynParam::Value(Value::Null)),
            Self::Bool(b) => Ok(DynParam::Value(Value::Bool(*b))),
            // As JavaScript numbers: Rust's shortest notation of the f64.
            Self::Number(n) => Ok(n.as_i64().map_or_else(
                || DynParam::from(n.as_f64().unwrap_or(f64::NAN)),
                DynParam::from,
            )),
            Self::String(s) => Ok(DynParam::Text(s.clone())),
            Self::Array(_) | Self::Object(_) => Err(format!(
                "is {}; bind null, booleans, numbers, bigints, strings, Dates or Uint8Arrays \
                 (store structured data as JSON text)",
                if matches!(self, Self::Array(_)) {
                    "an array".to_owned()
                } else {
                    "of type object".to_owned()
                }
            )),
        }
    }
}

/// A written value as the npm package's `insert`/`update` resolve to it: a number column's as
/// written (`"7"` → 7), any other as given.
fn as_read(
    column: &crate::model::ColumnMeta,
    given: &Json,
    written: &crate::model::arg::Arg,
) -> serde_json::Value {
    match written.value() {
        Some(value) if super::spec::is_numeric(column.sql_type()) => {
            crate::value::to_json(value).expect("numbers have JSON forms")
        }
        _ => given.to_serde(),
    }
}

/// Rows as JSON objects (what the npm package's rows serialize to).
fn rows_json(rows: &Rows) -> serde_json::Value {
    rows.to_json().expect("fixture values have JSON forms")
}

/// The page's numbers as the npm package's `Pagination.toJSON()` and `iterPages()` give them.
fn page_json(page: &Pagination<()>) -> serde_json::Value {
    serde_json::json!({
        "page": page.page,
        "perPage": page.per_page,
        "total": page.total,
        "pages": page.counted_pages(),
        "hasPrev": page.has_prev(),
        "hasNext": page.has_next(),
        "prevNum": page.prev_num(),
        "nextNum": page.next_num(),
        "first": page.first(),
        "last": page.last(),
        "iterPages": page.iter_pages(),
    })
}

struct Runner {
    name: String,
    session: Session,
    /// In the file's order (`createAll` creates them in it).
    models: Vec<(String, DefinedModel)>,
    objects: BTreeMap<String, Json>,
    /// Statements recorded before the current step.
    seen: usize,
}

impl Runner {
    fn model(&self, step: &Json) -> &DefinedModel {
        let name = step.str("model").expect("step names its model");
        self.models
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("{}: no model {name}", self.name))
    }

    fn query(&self, step: &Json) -> Result<Select> {
        let model = self.model(step);
        let desc = step.get("query");
        let mut select = query::describe(model, &self.session, &desc)?;
        let by = desc.get("filterBy");
        if !by.is_undefined() {
            select.filters.extend(query::filter_by(&model.meta, &by)?);
        }
        Ok(select)
    }

    /// Runs one step: `Ok(result)` to compare with the step's expectations.
    async fn run(&mut self, step: &Json) -> Result<Outcome> {
        let op = step.str("do").expect("step has `do`");
        Ok(match op.as_str() {
            "createAll" | "dropAll" => {
                for (_, model) in &self.models {
                    if op == "createAll" {
                        write::create(model, &self.session).await?;
                    } else {
                        write::drop(model, &self.session).await?;
                    }
                }
                Outcome::None
            }
            "commit" => {
                self.session.commit().await?;
                Outcome::None
            }
            "rollback" => {
                self.session.rollback().await?;
                Outcome::None
            }
            "flush" => {
                self.session.flush().await?;
                Outcome::None
            }
            "insert" => {
                let row = write::insert(
                    self.model(step),
                    &self.session,
                    &step.get("values"),
                    NUMBERS,
                )
                .await?;
                let model = self.model(step);
                Outcome::Row(serde_json::Value::Object(
                    model
                        .meta
                        .columns()
                        .iter()
                        .zip(row)
                        .map(|(c, v)| {
                            (
                                c.name().to_owned(),
                                v.map_or(serde_json::Value::Null, |(v, a)| as_read(c, &v, &a)),
                            )
                        })
                        .collect(),
                ))
            }
            "insertMany" => {
                // Rows `from`..=`to`: the primary key is the number, and "{n}" in a text
                // value is replaced by it.
                let model = self.model(step);
                let (from, to) = (
                    step.get("from").as_f64().unwrap(),
                    step.get("to").as_f64().unwrap(),
                );
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                for n in (from as u64)..=(to as u64) {
                    let mut entries = vec![(
                        model.meta.primary_key().name().to_owned(),
                        Json::Number(n.into()),
                    )];
                    for (k, v) in step.get("values").entries().unwrap_or_default() {
                        let v = match v.as_str() {
                            Some(text) => Json::String(text.replace("{n}", &n.to_string())),
                            None => v,
                        };
                        entries.push((k, v));
                    }
                    write::insert(model, &self.session, &Json::object(entries), NUMBERS).await?;
                }
                Outcome::None
            }
            "update" => {
                let model = self.model(step);
                let (mut row, changed) = write::update(
                    model,
                    &self.session,
                    &step.get("key"),
                    &step.get("changes"),
                    |stored| Ok(rows_json(stored)[0].clone()),
                    NUMBERS,
                )
                .await?;
                for (i, v, a) in changed {
                    let column = &model.meta.columns()[i];
                    row[column.name()] = as_read(column, &v, &a);
                }
                Outcome::Row(row)
            }
            "delete" => {
                write::delete(self.model(step), &self.session, &step.get("key")).await?;
                Outcome::None
            }
            "bulkDelete" => {
                let select = self.query(step)?;
                Outcome::Count(write::bulk_delete(self.model(step), &select).await?)
            }
            "bulkUpdate" => {
                let select = self.query(step)?;
                let to_object = |rows: &Rows| Ok(Json::from_serde(rows_json(rows)[0].clone()));
                let n = write::bulk_update(
                    self.model(step),
                    &select,
                    &step.get("changes"),
                    to_object,
                    NUMBERS,
                )
                .await?;
                Outcome::Count(n)
            }
            "query" => {
                let select = self.query(step)?;
                let run = step.str("run").unwrap_or_else(|| "all".to_owned());
                let first =
                    |rows: Rows| Outcome::Row(rows_json(&rows).get(0).cloned().unwrap_or_default());
                let key = self.model(step).meta.primary_key().name().to_owned();
                match run.as_str() {
                    "all" => Outcome::Rows(rows_json(&select.all().await?), key),
                    "first" => first(select.first().await?),
                    "firstOr404" => first(select.first_or_404().await?),
                    "one" => first(select.one().await?),
                    "get" | "getOr404" => {
                        let model = self.model(step);
                        let key = super::key(
                            &model.meta,
                            &step.get("key"),
                            &format!("{}.get", model.table()),
                        )?;
                        if run == "get" {
                            first(select.get(key).await?)
                        } else {
                            first(select.get_or_404(key).await?)
                        }
                    }
                    "count" => Outcome::Count(select.count().await?),
                    other => panic!("{}: unknown run {other}", self.name),
                }
            }
            "paginate" => {
                let select = self.query(step)?;
                let args = step.get("args");
                let table = self.model(step).table().to_owned();
                let request = if args.is_undefined() {
                    query::page_request(&step.get("options"), None, &format!("{table}.paginate"))?
                } else {
                    let (page, per_page) = (args.get("page"), args.get("per_page"));
                    query::page_request(
                        &step.get("options"),
                        Some((&page, &per_page)),
                        &format!("{table}.paginateArgs"),
                    )?
                };
                let page = request.fetch(&select).await?;
                let numbers = Pagination::of(
                    vec![(); page.rows.len()],
                    (page.page, page.per_page),
                    page.total,
                    page.more,
                    page.max_per_page,
                );
                let key = self.model(step).meta.primary_key().name().to_owned();
                Outcome::Page(rows_json(&page.rows), key, page_json(&numbers))
            }
            "add" => {
                let object = Json::from_serde(step.get("object").to_serde());
                super::add(self.model(step), &self.session, object.clone(), NUMBERS)?;
                if let Some(name) = step.str("as") {
                    self.objects.insert(name, object);
                }
                Outcome::None
            }
            "get" => {
                let model = self.model(step);
                let to_object = |rows: &Rows| Ok(Json::from_serde(rows_json(rows)[0].clone()));
                let found =
                    super::get(model, &self.session, &step.get("key"), to_object, NUMBERS).await?;
                let out = found
                    .as_ref()
                    .map_or(serde_json::Value::Null, Json::to_serde);
                if let (Some(name), Some(object)) = (step.str("as"), found.clone()) {
                    if let Some(same) = step.str("same") {
                        let earlier = &self.objects[&same];
                        assert!(
                            same_object(earlier, &object),
                            "{}: get is not the tracked {same}",
                            self.name
                        );
                    }
                    if let Some(other) = step.str("notSame") {
                        let earlier = &self.objects[&other];
                        assert!(
                            !same_object(earlier, &object),
                            "{}: get is still {other}",
                            self.name
                        );
                    }
                    self.objects.insert(name, object);
                }
                Outcome::Row(out)
            }
            "set" => {
                let object = &self.objects[&step.str("object").expect("set names an object")];
                for (k, v) in step.get("values").entries().expect("values") {
                    object.set(&k, v);
                }
                Outcome::None
            }
            "remove" => {
                let object = &self.objects[&step.str("object").expect("remove names an object")];
                super::delete(self.model(step), &self.session, object)?;
                Outcome::None
            }
            "define" => {
                spec::define(
                    &step.get("table"),
                    &step.get("columns"),
                    &step.get("options"),
                )?;
                Outcome::None
            }
            other => panic!("{}: unknown step {other}", self.name),
        })
    }
}

fn same_object(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(a), Json::Object(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

/// What a step gave: rows come with the name of their primary key (for `ids`).
enum Outcome {
    None,
    Row(serde_json::Value),
    Rows(serde_json::Value, String),
    Count(u64),
    Page(serde_json::Value, String, serde_json::Value),
}

/// The primary keys of `rows`.
fn ids(rows: &serde_json::Value, key: &str) -> serde_json::Value {
    rows.as_array()
        .map(|rows| rows.iter().map(|r| r[key].clone()).collect())
        .unwrap_or_default()
}

fn check(
    name: &str,
    step: &Json,
    outcome: Result<Outcome>,
    sql: &[String],
    params: &[serde_json::Value],
) {
    let at = format!("{name}, step {}", step.to_serde());
    let expect = |key: &str| -> Option<serde_json::Value> {
        let v = step.get(key);
        (!v.is_undefined()).then(|| v.to_serde())
    };
    if let Some(want) = expect("sql") {
        assert_eq!(serde_json::json!(sql), want, "{at}: SQL");
    }
    if let Some(want) = expect("params") {
        assert_eq!(serde_json::json!(params), want, "{at}: params");
    }
    let outcome = match (outcome, expect("error")) {
        (Err(e), Some(want)) => {
            assert_eq!(
                serde_json::json!(e.code()),
                want["code"],
                "{at}: error code ({e})"
            );
            if let Some(message) = want.get("message") {
                assert_eq!(serde_json::json!(e.to_string()), *message, "{at}: message");
            }
            if let Some(part) = want.get("includes").and_then(|p| p.as_str()) {
                assert!(e.to_string().contains(part), "{at}: {e} lacks {part:?}");
            }
            return;
        }
        (Err(e), None) => panic!("{at}: {e}"),
        (Ok(_), Some(want)) => panic!("{at}: expected the error {want}"),
        (Ok(outcome), None) => outcome,
    };
    match outcome {
        Outcome::None => {}
        Outcome::Row(row) => {
            if let Some(want) = expect("row") {
                assert_eq!(row, want, "{at}: row");
            }
        }
        Outcome::Rows(rows, key) => {
            if let Some(want) = expect("rows") {
                assert_eq!(rows, want, "{at}: rows");
            }
            if let Some(want) = expect("ids") {
                assert_eq!(ids(&rows, &key), want, "{at}: ids");
            }
        }
        Outcome::Count(n) => {
            if let Some(want) = expect("count") {
                assert_eq!(serde_json::json!(n), want, "{at}: count");
            }
        }
        Outcome::Page(rows, key, numbers) => {
            if let Some(want) = expect("ids") {
                assert_eq!(ids(&rows, &key), want, "{at}: ids");
            }
            if let Some(want) = expect("page") {
                for (k, v) in want.as_object().expect("page is an object") {
                    assert_eq!(numbers[k], *v, "{at}: page.{k}");
                }
            }
        }
    }
}

fn run_file(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let fixture: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    pollster::block_on(async {
        let mut builder = SessionFactory::builder()
            .bind(Engine::from_url("memory://").unwrap())
            .record_queries(true);
        if let Some(autoflush) = fixture.get("autoflush").as_bool() {
            builder = builder.autoflush(autoflush);
        }
        for key in fixture.get("binds").as_array().unwrap_or_default() {
            builder = builder.bind_key(
                key.as_str().unwrap(),
                Engine::from_url("memory://").unwrap(),
            );
        }
        let factory = builder.build().unwrap();
        let mut models = Vec::new();
        for (model, def) in fixture.get("models").entries().unwrap_or_default() {
            let meta = spec::define(&def.get("table"), &def.get("columns"), &def.get("options"))
                .unwrap_or_else(|e| panic!("{name}: model {model}: {e}"));
            models.push((model, DefinedModel::new(meta)));
        }
        let mut runner = Runner {
            name: name.clone(),
            session: factory.open(),
            models,
            objects: BTreeMap::new(),
            seen: 0,
        };
        for step in fixture.get("steps").as_array().expect("steps") {
            let outcome = runner.run(&step).await;
            let recorded = runner.session.recorded_queries();
            let new = &recorded[runner.seen.min(recorded.len())..];
            let sql: Vec<String> = new.iter().map(|q| q.sql.clone()).collect();
            let params: Vec<serde_json::Value> = new
                .iter()
                .map(|q| serde_json::Value::Array(q.params.clone()))
                .collect();
            runner.seen = recorded.len();
            check(&name, &step, outcome, &sql, &params);
        }
    });
}

#[test]
fn shared_model_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "fixtures in {}", dir.display());
    for file in &files {
        run_file(file);
    }
}
