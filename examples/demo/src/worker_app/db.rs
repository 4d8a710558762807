//! The isolate's database: made once, from the first request's `env` (bindings and variables
//! arrive with the request, not at start-up), with the tables created or migrated before the
//! first handler runs; then reachable from every module.

use crate::service;
use gluebind::{wasm::Gluebind, Isolation, Registry, SessionFactory};
use worker::Env;

thread_local! {
    // Isolate-wide state is the registry alone: never a "current session".
    static DB: Gluebind = Gluebind::new(|env| {
        // kv:// and do:// take their binding from the environment.
        let url = gluebind::wasm::var(env, "DATABASE_URL", "memory://");
        // Serializable (the default) unless ISOLATION = "snapshot" (the bench compares them).
        let isolation = match gluebind::wasm::var(env, "ISOLATION", "").as_str() {
            "snapshot" => Isolation::Snapshot,
            _ => Isolation::Serializable,
        };
        SessionFactory::builder()
            .bind(gluebind::wasm::engine(env, &url)?)
            // Debug aid: every statement with its parameters, duration and rows.
            .record_queries(debug(env))
            .isolation(isolation)
            .build()
    })
    // Migrations and create_all, once per isolate (a session of its own, outside any request
    // scope, so the stats count requests only).
    .init(|session| async move { service::migrate(&session).await.map(drop) });
}

/// The isolate's database.
pub fn db() -> Gluebind {
    DB.with(Clone::clone)
}

/// True when `GLUEBIND_DEBUG` is "1" (read once per isolate: variables are fixed for an
/// isolate's life, and reading one from `env` costs a call into JavaScript per request).
pub fn debug(env: &Env) -> bool {
    thread_local! {
        static DEBUG: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
    }
    DEBUG.with(|d| *d.get_or_init(|| gluebind::wasm::var(env, "GLUEBIND_DEBUG", "0") == "1"))
}

/// The registry, once the first request created it (for modules deep in a request).
pub fn current_registry() -> Option<Registry> {
    DB.with(Gluebind::get)
}
