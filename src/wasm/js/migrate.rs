//! The npm package's migrations (`migration(name)…`, `migrate(session, steps, models)`,
//! `appliedMigrations(session)`) over `crate::migrate`: the JavaScript builder hands each
//! step over as its name and a list of operations; a data step's function is called with the
//! step's session.

use super::{error, model::JsModel, promise, set, JsSession};
use crate::{
    migrate::{self, DataFn, Migration, Migrations},
    model::ModelMeta,
    Error, Session,
};
use js_sys::{Array, Function, Object, Promise};
use std::rc::Rc;
use wasm_bindgen::{prelude::*, JsCast};

/// One operation as JavaScript described it.
enum JsOp {
    /// A builder call with string arguments: `addColumn`, `dropColumn`, `renameColumn`,
    /// `renameTable`, `dropTable`, `sql`.
    Call(String, Vec<String>),
    /// `data(label, fn)`.
    Data(String, Function),
}

/// Migrations being set up from JavaScript: steps, then models, then `run`.
#[wasm_bindgen(js_name = Migrator)]
#[derive(Default)]
pub struct JsMigrator {
    steps: Vec<(String, Vec<JsOp>)>,
    models: Vec<Rc<ModelMeta>>,
}

/// The arity of a builder call, or None for an unknown one.
fn arity(kind: &str) -> Option<usize> {
    Some(match kind {
        "sql" | "dropTable" => 1,
        "addColumn" | "dropColumn" | "renameTable" => 2,
        "renameColumn" => 3,
        _ => return None,
    })
}

fn config(message: String) -> JsValue {
    error::to_js(&Error::Config { message })
}

/// What a data step's function threw, as text.
fn thrown_text(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => value.as_string().unwrap_or_else(|| {
            js_sys::JSON::stringify(value)
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_else(|| "a value that is not an Error".to_owned())
        }),
    }
}

#[wasm_bindgen(js_class = Migrator)]
impl JsMigrator {
    /// No steps, no models.
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends step `name` with `ops`: `[kind, ...strings]` or `["data", label, fn]`.
    ///
    /// # Errors
    /// `CONFIG` for a name that is not a string, an unknown kind or wrong arguments.
    pub fn step(&mut self, name: JsValue, ops: Array) -> Result<(), JsValue> {
        let name = name
            .as_string()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| config("migration(name) needs a non-empty string name".into()))?;
        let mut parsed = Vec::new();
        for op in ops.iter() {
            let parts: Vec<JsValue> = op
                .dyn_into::<Array>()
                .map_or_else(|_| Vec::new(), |a| a.iter().collect());
            let kind = parts
                .first()
                .and_then(JsValue::as_string)
                .unwrap_or_default();
            if kind == "data" {
                let label = parts.get(1).and_then(JsValue::as_string);
                let run = parts.get(2).and_then(|f| f.dyn_ref::<Function>().cloned());
                match (label, run) {
                    (Some(label), Some(run)) if !label.is_empty() => {
                        parsed.push(JsOp::Data(label, run));
                    }
                    _ => {
                        return Err(config(format!(
                            "migration {name:?}: data(label, fn) needs a non-empty label and an \
                             async function (session) => …"
                        )))
                    }
                }
                continue;
            }
            let args: Vec<String> = parts
                .iter()
                .skip(1)
                .filter_map(JsValue::as_string)
                .collect();
            match arity(&kind) {
                Some(n) if args.len() == n && parts.len() == n + 1 => {
                    parsed.push(JsOp::Call(kind, args));
                }
                Some(n) => {
                    return Err(config(format!(
                        "migration {name:?}: {kind} needs {n} string argument(s)"
                    )))
                }
                None => {
                    return Err(config(format!(
                        "migration {name:?}: unknown operation {kind:?}"
                    )))
                }
            }
        }
        self.steps.push((name, parsed));
        Ok(())
    }

    /// Adds a model whose table `run` creates (on a new database) and checks.
    #[wasm_bindgen(js_name = addModel)]
    pub fn add_model(&mut self, model: &JsModel) {
        self.models.push(model.shared_meta());
    }

    /// The models' tables as a JSON snapshot (see `crate::migrate::snapshot`).
    ///
    /// # Errors
    /// As `crate::migrate::snapshot`.
    pub fn snapshot(&self) -> Result<String, JsValue> {
        let metas: Vec<&ModelMeta> = self.models.iter().map(AsRef::as_ref).collect();
        error::js(migrate::snapshot(&metas))
    }

    /// The step named `name` from `snapshot` to the models: `{ js, rust, notes }` (see
    /// `crate::migrate::next_step`).
    ///
    /// # Errors
    /// `CONFIG` for a snapshot that is not one.
    #[wasm_bindgen(js_name = nextStep)]
    pub fn next_step(&self, name: &str, snapshot: &str) -> Result<Object, JsValue> {
        let metas: Vec<&ModelMeta> = self.models.iter().map(AsRef::as_ref).collect();
        let step = error::js(migrate::next_step(name, &metas, snapshot))?;
        let out = Object::new();
        set(&out, "js", step.js);
        set(&out, "rust", step.rust);
        let notes: Array = step.notes.iter().map(|n| JsValue::from_str(n)).collect();
        set(&out, "notes", notes);
        Ok(out)
    }

    /// The checksum each step records, in order (for a deploy check or a test).
    pub fn checksums(&self) -> Array {
        let migrations = self.build(None);
        migrations
            .steps()
            .iter()
            .map(|step| JsValue::from_str(&step.checksum()))
            .collect()
    }

    /// Runs the steps on `session`'s database (see `crate::migrate::Migrations::run`);
    /// resolves to `{ applied: string[], created: boolean, newer: string[] }`.
    pub fn run(&self, session: &JsSession) -> Promise {
        let migrations = self.build(Some(session));
        let models = self.models.clone();
        let core = session.session.clone();
        promise(async move {
            let metas: Vec<&ModelMeta> = models.iter().map(AsRef::as_ref).collect();
            let report = error::js(migrations.run(&core, &metas).await)?;
            let out = Object::new();
            let applied: Array = report
                .applied
                .iter()
                .map(|n| JsValue::from_str(n))
                .collect();
            set(&out, "applied", applied);
            set(&out, "created", report.created);
            let newer: Array = report.newer.iter().map(|n| JsValue::from_str(n)).collect();
            set(&out, "newer", newer);
            Ok(out.into())
        })
    }
}

impl JsMigrator {
    /// The core's steps; data steps call their function with a session handle shaped like
    /// `session`'s (without one, for checksums only, a data step's function is never called).
    fn build(&self, session: Option<&JsSession>) -> Migrations {
        let mut migrations = Migrations::new();
        for (name, ops) in &self.steps {
            let mut step = Migration::new(name.clone());
            for op in ops {
                step = match op {
                    JsOp::Call(kind, args) => match (kind.as_str(), args.as_slice()) {
                        ("addColumn", [t, d]) => step.add_column(t, d),
                        ("dropColumn", [t, c]) => step.drop_column(t, c),
                        ("renameColumn", [t, f, to]) => step.rename_column(t, f, to),
                        ("renameTable", [f, to]) => step.rename_table(f, to),
                        ("dropTable", [t]) => step.drop_table(t),
                        (_, [sql]) => step.sql(sql),
                        _ => step,
                    },
                    JsOp::Data(label, run) => step.data_boxed(label, data_fn(run, session)),
                };
            }
            migrations = migrations.step(step);
        }
        migrations
    }
}

/// A data step's function as the core's closure.
fn data_fn(run: &Function, session: Option<&JsSession>) -> DataFn {
    let run = run.clone();
    let shape = session.map(|s| (s.out, Rc::clone(&s.thrown)));
    Rc::new(move |s: Session| {
        let (run, shape) = (run.clone(), shape.clone());
        Box::pin(async move {
            let (out, thrown) = shape.ok_or_else(|| Error::Config {
                message: "a data step ran without a session".into(),
            })?;
            let handle = JsValue::from(JsSession::new(s, out, &thrown));
            let fail = |value: JsValue| Error::Runtime {
                message: format!("the data step's function threw: {}", thrown_text(&value)),
            };
            let returned = run.call1(&JsValue::NULL, &handle).map_err(fail)?;
            wasm_bindgen_futures::JsFuture::from(Promise::resolve(&returned))
                .await
                .map_err(fail)?;
            Ok(())
        })
    })
}

/// `appliedMigrations(session)`: the steps the database recorded, in order, as
/// `{ position, name, checksum, appliedAt, how }`.
#[wasm_bindgen(js_name = appliedMigrations)]
pub fn applied_migrations(session: &JsSession) -> Promise {
    let core = session.session.clone();
    promise(async move {
        let steps = error::js(migrate::applied(&core).await)?;
        let out = Array::new();
        for step in steps {
            let row = Object::new();
            set(&row, "position", step.position);
            set(&row, "name", step.name);
            set(&row, "checksum", step.checksum);
            set(&row, "appliedAt", step.applied_at);
            set(&row, "how", step.how);
            out.push(&row);
        }
        Ok(out.into())
    })
}
