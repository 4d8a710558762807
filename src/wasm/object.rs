//! `GluebindDatabase`: the Durable Object class of the `do://` engine for Rust workers
//! (workers-rs). Its wasm-bindgen export is in every Rust worker built with gluebind; a worker
//! that uses `do://` exports it from its entry module —
//! `export { GluebindDatabase } from "./index.js";` — and declares it in wrangler.toml (a
//! `[[durable_objects.bindings]]` entry and a `new_sqlite_classes` migration).

// The methods `#[durable_object]` generates for the JavaScript class carry no docs.
#![allow(missing_docs)]

use super::durable::DatabaseHost;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{
    durable_object, wasm_bindgen::JsValue, DurableObject, Env, Request, Response, Result, State,
};

/// The database object of `do://` URLs (see the module documentation). It validates and
/// applies commits, and runs no user code.
#[durable_object(fetch)]
pub struct GluebindDatabase {
    host: DatabaseHost,
}

impl DurableObject for GluebindDatabase {
    fn new(state: State, _env: Env) -> Self {
        super::init_panic_hook();
        let storage = state.storage();
        Self {
            host: DatabaseHost::new(AsRef::<JsValue>::as_ref(storage.as_raw()).clone()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        let mut response = Response::ok(self.host.handle(&body))?;
        response
            .headers_mut()
            .set("content-type", "application/json")?;
        Ok(response)
    }
}

#[wasm_bindgen]
impl GluebindDatabase {
    /// Answers one request (JSON text) with its answer (JSON text): what the entry module's
    /// class (which extends `DurableObject`) exposes as its RPC method `gluebind`, cheaper for
    /// the runtime than a `fetch` (no HTTP request and response around the JSON).
    #[must_use]
    pub fn gluebind(&self, body: &str) -> String {
        self.host.handle(body)
    }
}
