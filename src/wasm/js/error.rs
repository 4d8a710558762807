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

/// A unique value as JavaScript has it (gluebind's message shows it as SQL text): a string
/// without its quotes and escapes, a number (a bigint beyond 2^53), a boolean; anything else
/// (a date, a UUID, a note) as the text.
fn plain_value(text: &str) -> JsValue {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return unescape(inner).map_or_else(|| JsValue::from_str(text), |s| JsValue::from_str(&s));
    }
    match text {
        "TRUE" => return JsValue::TRUE,
        "FALSE" => return JsValue::FALSE,
        _ => {}
    }
    if let Ok(n) = text.parse::<i128>() {
        return if crate::model::dynamic::is_safe_integer(n) {
            JsValue::from_f64(n as f64)
        } else {
            js_sys::BigInt::new(&JsValue::from_str(text))
                .map_or_else(|_| JsValue::from_str(text), Into::into)
        };
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && !text.is_empty() => JsValue::from_f64(f),
        _ => JsValue::from_str(text),
    }
}

/// Undoes Rust's `{:?}` escaping of a string (`\"`, `\\`, `\n`, `\u{…}`, …).
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            'u' => {
                let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let hex = rest.strip_prefix('{')?;
                out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
            }
            other => out.push(other), // \" \' \\
        }
    }
    Some(out)
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
            set(&details, "value", &plain_value(value));
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
        Error::Drift { table, .. } => set(&details, "table", &s(table)),
        Error::Migration { step, .. } => set(&details, "step", &s(step)),
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
