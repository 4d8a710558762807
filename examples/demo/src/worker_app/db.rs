//! The isolate's registry: created once, on the first request (bindings and variables arrive
//! with the request, not at start-up), then reachable from every module.

use crate::service;
use gluebind::{Isolation, Registry, SessionFactory};
use std::cell::{Cell, OnceCell};
use worker::Env;

thread_local! {
    // Isolate-wide state is the registry alone: never a "current session".
    static REGISTRY: OnceCell<Registry> = const { OnceCell::new() };
    static SCHEMA_READY: Cell<bool> = const { Cell::new(false) };
}

/// True when `GLUEBIND_DEBUG` is "1".
pub fn debug(env: &Env) -> bool {
    env.var("GLUEBIND_DEBUG")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false)
}

/// The isolate's registry, created on first use from `DATABASE_URL` (default `memory://`),
/// with the schema created once (the `create_all` analog).
///
/// # Errors
/// A configuration error for a bad `DATABASE_URL`, or the engine's error creating tables.
pub async fn registry(env: &Env) -> gluebind::Result<Registry> {
    let existing = REGISTRY.with(|cell| cell.get().cloned());
    let registry = match existing {
        Some(registry) => registry,
        None => {
            let url = env
                .var("DATABASE_URL")
                .map(|v| v.to_string())
                .unwrap_or_else(|_| "memory://".to_owned());
            // Serializable (the default) unless ISOLATION = "snapshot" (the bench compares them).
            let isolation = match env.var("ISOLATION").map(|v| v.to_string()).as_deref() {
                Ok("snapshot") => Isolation::Snapshot,
                _ => Isolation::Serializable,
            };
            // kv://BINDING takes its namespace from the environment.
            let factory = SessionFactory::builder()
                .bind(gluebind::wasm::engine(env, &url)?)
                // Debug aid: every statement with its parameters, duration and rows.
                .record_queries(debug(env))
                .isolation(isolation)
                .build()?;
            // get_or_init: if another request created it meanwhile, keep that one.
            REGISTRY.with(|cell| cell.get_or_init(|| Registry::new(factory)).clone())
        }
    };
    if !SCHEMA_READY.with(Cell::get) {
        // A session of its own, outside any request scope, so the stats count requests only.
        let session = registry.factory().open();
        match service::create_all(&session).await {
            Ok(()) => {}
            // A concurrent first request created the tables first: that is fine.
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e),
        }
        SCHEMA_READY.with(|ready| ready.set(true));
    }
    Ok(registry)
}

/// The registry, once [`registry`] has created it (for modules deep in a request).
pub fn current_registry() -> Option<Registry> {
    REGISTRY.with(|cell| cell.get().cloned())
}
