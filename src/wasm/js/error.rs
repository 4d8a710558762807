//! gluebind errors as JavaScript errors: the package registers a factory that builds its
//! `Error` subclasses (`ConflictError`, …); without one, a plain `Error` with a `code`.

use crate::Error;
use js_sys::{Function, Object, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static FACTORY: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers `factory(code, message, details)`, which returns the JavaScript error to throw for
/// a gluebind error. `details` holds the variant's fields (`table`, `column`, `value`,
/// `detail`, `sessionId`, …). The npm package calls this once when it loads.
#[wasm_bindgen(js_name = setErrorFactory)]
pub fn set_error_factory(factory: Function) {
    FACTORY.with(|f| *f.borrow_mut() = Some(factory));
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// The JavaScript error for `error`.
pub(crate) fn to_js(error: &Error) -> JsValue {
    let details = Object::new();
    let s = |v: &str| JsValue::from_str(v);
    match error {
        Error::Unique {
            table,
            column,
            value,
        } => {
            set(&details, "table", &s(table));
            set(&details, "column", &s(column));
            set(&details, "value", &s(value));
        }
        Error::Conflict { table, detail } => {
            set(&details, "table", &s(table));
            set(&details, "detail", &s(detail));
        }
        Error::SessionClosed { session_id } => set(&details, "sessionId", &s(session_id)),
        Error::OutsideScope { reason } => set(&details, "reason", &s(reason)),
        Error::NotFound { table, detail } => {
            set(&details, "table", &s(table));
            set(&details, "detail", &s(detail));
        }
        Error::MultipleResults { table } => set(&details, "table", &s(table)),
        Error::Config { .. }
        | Error::Sql { .. }
        | Error::Storage { .. }
        | Error::Runtime { .. } => {}
    }
    let code = s(error.code());
    let message = s(&error.to_string());
    let made = FACTORY.with(|f| {
        f.borrow()
            .as_ref()
            .map(|factory| factory.call3(&JsValue::NULL, &code, &message, &details))
    });
    match made {
        Some(Ok(err)) => err,
        // A throwing factory: surface what it threw rather than hiding the original error.
        Some(Err(thrown)) => thrown,
        None => {
            let err = js_sys::Error::new(&error.to_string());
            set(&err, "code", &code);
            err.into()
        }
    }
}

/// `Result<T, Error>` → `Result<T, JsValue>`.
pub(crate) fn js<T>(result: crate::Result<T>) -> Result<T, JsValue> {
    result.map_err(|e| to_js(&e))
}
