//! WebAssembly glue (wasm32 only).
//!
//! - With the `worker` feature (on by default): the workers-rs integration for Rust Workers —
//!   [`serve`] opens one scope per fetch event and tears it down in `ctx.waitUntil`.
//! - With the `js` feature: the wasm-bindgen exports behind the npm package `gluebind`
//!   (the `js` module); the package's wasm is built with `--no-default-features --features js`.
//!
//! A Rust Worker keeps one [`Gluebind`] per isolate (a `thread_local!`) and serves every
//! event through it: the README's "A Rust worker", which is the file
//! `examples/hello/src/worker_app.rs` that `npm test` compiles for wasm32 (wasm-only examples
//! are kept there rather than in doc comments, which are not compiled for wasm32).

#[cfg(any(feature = "worker", feature = "js"))]
mod durable;
#[cfg(feature = "worker")]
mod isolate;
#[cfg(feature = "js")]
pub mod js;
#[cfg(feature = "worker")]
mod kv;
#[cfg(feature = "worker")]
mod object;
#[cfg(feature = "worker")]
mod serve;

#[cfg(feature = "worker")]
pub use isolate::{var, Gluebind};
#[cfg(feature = "worker")]
pub use kv::WorkersKv;
#[cfg(feature = "worker")]
pub use object::GluebindDatabase;
#[cfg(feature = "worker")]
pub use serve::{error_response, serve, to_worker_error, Event, HandlerError};

/// Creates the engine for `url`, taking a `kv://BINDING` URL's KV namespace, or a
/// `do://BINDING` URL's Durable Object namespace, from `env`.
///
/// # Errors
/// [`crate::Error::Config`] for a bad URL or a missing binding.
#[cfg(feature = "worker")]
pub fn engine(env: &worker::Env, url: &str) -> crate::Result<crate::Engine> {
    match crate::EngineUrl::parse(url)? {
        crate::EngineUrl::Kv { binding, .. } => {
            let kv = WorkersKv::from_env(env, &binding)?;
            crate::Engine::with_kv(url, std::rc::Rc::new(kv))
        }
        crate::EngineUrl::Durable { binding, name, .. } => {
            let transport = durable::NamespaceTransport::from_env(env.as_ref(), &binding, &name)?;
            crate::Engine::with_object(url, std::rc::Rc::new(transport))
        }
        _ => crate::Engine::from_url(url),
    }
}

/// Installs gluebind's panic hook (once per instance; later calls do nothing): it logs the
/// panic with `console_error_panic_hook` and schedules a reset of the wasm instance.
///
/// Workers build wasm with `panic = "abort"`: a panic traps, skipping destructors, so the
/// instance may hold a `RefCell` borrowed forever or a scope never removed. wasm-bindgen's
/// abort callback (what workers-rs registers) does not fire in such builds, so the hook itself
/// asks for the reset: the next call into the module gets a fresh instance (and, on memory://,
/// an empty database), never a poisoned one.
pub fn init_panic_hook() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            console_error_panic_hook::hook(info);
            wasm_bindgen::handler::schedule_reinit();
        }));
    });
}

#[cfg(any(feature = "worker", feature = "js"))]
thread_local! {
    /// Random per wasm instance: a fresh instance (after a panic) has a new one.
    static EPOCH: f64 = {
        let mut bytes = [0u8; 4];
        // Falls back to 0: a reset is then still seen (the first instance's value is rarely 0).
        let _ = getrandom::getrandom(&mut bytes);
        f64::from(u32::from_le_bytes(bytes))
    };
}

/// Identifies the current wasm instance. A panic makes gluebind replace the instance (its
/// memory, registries and sessions are gone); JavaScript compares this value to notice, and
/// makes new objects instead of calling into handles of the old instance (the npm package's
/// registry, and the `GluebindDatabase` Durable Object class of both the package and a Rust
/// worker's shim).
#[cfg(any(feature = "worker", feature = "js"))]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = instanceEpoch)]
#[must_use]
pub fn instance_epoch() -> f64 {
    EPOCH.with(|e| *e)
}

#[cfg(any(feature = "worker", feature = "js"))]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: f64) -> wasm_bindgen::JsValue;
}

/// Waits `ms` milliseconds (a `setTimeout` promise): backoff, and start-up's waiting events.
#[cfg(any(feature = "worker", feature = "js"))]
pub(crate) fn sleep(ms: u64) -> crate::storage::kv::backend::BoxFuture<'static, ()> {
    #[allow(clippy::cast_precision_loss)] // short delays
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms as f64);
    });
    Box::pin(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    })
}
