//! `JsKv`: a Workers KV namespace binding handed over from JavaScript (`env.GLUEBIND_KV`),
//! behind gluebind's [`KvBackend`] interface — through wasm-bindgen and js-sys, no workers-rs.
//!
//! It calls the binding's JavaScript API: `getWithMetadata(key, { type: "text" })`, bulk
//! `get([keys], "text")` (a `Map`), `put(key, value, { metadata })`, `delete(key)` and
//! `list({ prefix, cursor, limit })`. Metadata objects cross the boundary as JSON text.

use crate::storage::kv::backend::{
    BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey, MAX_LIST,
};
use crate::Error;
use js_sys::{Array, Map, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// A `KVNamespace` binding (or anything with its methods).
    #[derive(Debug, Clone)]
    type KvNamespace;

    #[wasm_bindgen(method, catch, js_name = getWithMetadata)]
    fn get_with_metadata(
        this: &KvNamespace,
        key: &str,
        options: &JsValue,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_bulk(this: &KvNamespace, keys: &Array, kind: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn put(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &JsValue,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn delete(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn list(this: &KvNamespace, options: &JsValue) -> Result<Promise, JsValue>;

}

/// A KV namespace from JavaScript, as a gluebind KV backend.
#[derive(Debug, Clone)]
pub(crate) struct JsKv {
    ns: KvNamespace,
}

const METHODS: [&str; 5] = ["get", "getWithMetadata", "put", "delete", "list"];

impl JsKv {
    /// Takes the namespace bound as `binding` from the Worker's `env` object.
    ///
    /// # Errors
    /// [`Error::Config`] when `env` has no such binding, or it is not a KV namespace.
    pub(crate) fn from_env(env: &JsValue, binding: &str) -> crate::Result<Self> {
        let fix = format!("add [[kv_namespaces]] with binding = \"{binding}\" to wrangler.toml");
        let value = if env.is_object() {
            Reflect::get(env, &JsValue::from_str(binding)).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        };
        if value.is_undefined() || value.is_null() {
            return Err(Error::Config {
                message: format!("no KV namespace bound as {binding:?} in env; {fix}"),
            });
        }
        let missing: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| !Reflect::get(&value, &JsValue::from_str(m)).is_ok_and(|f| f.is_function()))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config {
                message: format!(
                    "env.{binding} is not a KV namespace (no {}); {fix}",
                    missing.join(", ")
                ),
            });
        }
        Ok(Self {
            ns: value.unchecked_into(),
        })
    }
}

/// The message of a thrown or rejected JavaScript value.
fn message(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            Reflect::get(value, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{value:?}"))
}

fn classify(value: &JsValue) -> KvFailure {
    KvFailure::classify(message(value))
}

/// Awaits the promise a binding method returned (or the error it threw).
async fn call(started: Result<Promise, JsValue>) -> KvResult<JsValue> {
    JsFuture::from(started.map_err(|e| classify(&e))?)
        .await
        .map_err(|e| classify(&e))
}

fn field(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn text_value(value: &JsValue, what: &str) -> KvResult<Option<String>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.as_string().map(Some).ok_or_else(|| {
        KvFailure::Permanent(format!("KV {what} returned a non-text value: {value:?}"))
    })
}

/// A metadata object (any JSON value) as `serde_json`, through JSON text.
fn metadata_from_js(value: &JsValue) -> KvResult<Option<serde_json::Value>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = JSON::stringify(value)
        .map_err(|e| KvFailure::Permanent(format!("KV metadata is not JSON: {}", message(&e))))?;
    let text = String::from(text);
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| KvFailure::Permanent(format!("KV metadata is not JSON: {e}")))
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

impl KvBackend for JsKv {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        Box::pin(async move {
            let options = Object::new();
            set(&options, "type", &JsValue::from_str("text"));
            let got = call(self.ns.get_with_metadata(key, &options)).await?;
            let Some(value) = text_value(&field(&got, "value"), "get")? else {
                return Ok(None);
            };
            let metadata = metadata_from_js(&field(&got, "metadata"))?;
            Ok(Some(KvEntry { value, metadata }))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        Box::pin(async move {
            // Values only, like the workers-rs binding: gluebind's values hold everything.
            let array: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
            let found = call(self.ns.get_bulk(&array, "text")).await?;
            let found: Map = found.dyn_into().map_err(|v| {
                KvFailure::Permanent(format!("KV bulk get returned {v:?}, not a Map"))
            })?;
            keys.iter()
                .map(|k| {
                    let value = text_value(&found.get(&JsValue::from_str(k)), "bulk get")?;
                    Ok(value.map(|value| KvEntry {
                        value,
                        metadata: None,
                    }))
                })
                .collect()
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move {
            let options = Object::new();
            if let Some(metadata) = metadata {
                let metadata = JSON::parse(&metadata.to_string())
                    .map_err(|e| KvFailure::Permanent(format!("KV metadata: {}", message(&e))))?;
                set(&options, "metadata", &metadata);
            }
            call(self.ns.put(key, &value, &options)).await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move {
            call(self.ns.delete(key)).await?;
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        Box::pin(async move {
            let options = Object::new();
            set(&options, "prefix", &JsValue::from_str(prefix));
            #[allow(clippy::cast_precision_loss)] // at most MAX_LIST
            set(
                &options,
                "limit",
                &JsValue::from_f64(limit.clamp(1, MAX_LIST) as f64),
            );
            if let Some(cursor) = &cursor {
                set(&options, "cursor", &JsValue::from_str(cursor));
            }
            let page = call(self.ns.list(&options)).await?;
            let keys: Array = field(&page, "keys").dyn_into().map_err(|v| {
                KvFailure::Permanent(format!("KV list returned keys {v:?}, not an array"))
            })?;
            let keys = keys
                .iter()
                .map(|k| {
                    let name = field(&k, "name").as_string().ok_or_else(|| {
                        KvFailure::Permanent(format!(
                            "KV list returned a key without a name: {k:?}"
                        ))
                    })?;
                    let metadata = metadata_from_js(&field(&k, "metadata"))?;
                    Ok(ListedKey { name, metadata })
                })
                .collect::<KvResult<Vec<_>>>()?;
            let complete = field(&page, "list_complete").as_bool().unwrap_or(true);
            Ok(ListPage {
                keys,
                cursor: if complete {
                    None
                } else {
                    field(&page, "cursor").as_string()
                },
            })
        })
    }

    fn now_ms(&self) -> u64 {
        // Whole milliseconds since the epoch fit in f64 exactly.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let now = js_sys::Date::now() as u64;
        now
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        crate::wasm::sleep(ms)
    }
}
