//! The commit hooks from JavaScript functions (`beforeCommit`, `afterCommit` options), and what
//! a refusing `beforeCommit` threw, handed back as is by the `commit()` it stopped.

use super::{commit_info, config, console_error, convert::Output, set, JsSession, Options, Thrown};
use crate::{model::Change, Committed, Error};
use js_sys::{Array, Function, Object, Promise};
use serde::Serialize as _;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// The model changes as JavaScript objects `{ table, key, operation }`.
fn changes_to_js(changes: &[Change]) -> JsValue {
    let json = serde_wasm_bindgen::Serializer::json_compatible();
    changes
        .serialize(&json)
        .unwrap_or_else(|_| Array::new().into())
}

/// The message of a thrown JavaScript value.
fn thrown_message(thrown: &JsValue) -> String {
    if let Some(e) = thrown.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    js_sys::JsString::from(thrown.clone())
        .as_string()
        .unwrap_or_default()
}

/// The factory's commit hooks from JavaScript functions.
pub(super) fn with_hooks(
    mut builder: crate::SessionFactoryBuilder,
    options: &Options,
    out: Output,
    thrown: &Rc<Thrown>,
) -> Result<crate::SessionFactoryBuilder, JsValue> {
    for (name, hook) in [
        ("beforeCommit", &options.before_commit),
        ("afterCommit", &options.after_commit),
    ] {
        if !hook.is_undefined() && !hook.is_function() {
            return Err(config(format!(
                "option {name} must be a function, got {}",
                hook.js_typeof().as_string().unwrap_or_default()
            )));
        }
    }
    if let Some(hook) = options.before_commit.dyn_ref::<Function>() {
        let (hook, thrown) = (hook.clone(), Rc::clone(thrown));
        builder = builder.before_commit(move |session, changes| {
            let handle = JsSession::new(session.clone(), out, &thrown);
            let refusal = |message: String| {
                Error::config(format!(
                    "the beforeCommit hook refused the commit: {message}; nothing was committed \
                     and the writes are still pending (fix what it refused, or roll back)"
                ))
            };
            match hook.call2(&JsValue::NULL, &handle.into(), &changes_to_js(changes)) {
                Ok(returned) if returned.dyn_ref::<Promise>().is_some() => Err(Error::config(
                    "beforeCommit returned a Promise: it runs inside commit(), which cannot wait \
                     for it; make the hook synchronous (do async work before commit())",
                )),
                Ok(_) => Ok(()),
                Err(value) => {
                    let error = refusal(thrown_message(&value));
                    *thrown.0.borrow_mut() = Some((error.clone(), value));
                    Err(error)
                }
            }
        });
    }
    if let Some(hook) = options.after_commit.dyn_ref::<Function>() {
        let (hook, thrown) = (hook.clone(), Rc::clone(thrown));
        builder = builder.after_commit(move |committed: &Committed<'_>| {
            let o = Object::new();
            set(
                &o,
                "session",
                JsSession::new(committed.session.clone(), out, &thrown),
            );
            set(&o, "info", commit_info(&committed.info));
            set(&o, "changes", changes_to_js(committed.changes));
            // The commit happened: a throwing hook cannot undo it, so it is logged.
            if let Err(e) = hook.call1(&JsValue::NULL, &o) {
                console_error("gluebind: the afterCommit hook threw:", &e);
            }
        });
    }
    Ok(builder)
}
