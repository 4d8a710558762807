//! The seed's user-registration app on gluebind, as a Rust Worker (see DESIGN.md, "The demo
//! app"). The HTTP layer lives in `worker_app` (wasm32 only); everything else is plain Rust,
//! tested natively.

pub mod api;
pub mod etag;
pub mod events;
pub mod model;
pub mod notes;
pub mod service;

#[cfg(target_arch = "wasm32")]
mod worker_app;
