//! # gluebind
//!
//! Flask-SQLAlchemy's request-scoped session pattern for Cloudflare Workers: a [`Registry`]
//! created once per isolate hands every fetch event ([`Scope`]) its own GlueSQL [`Session`]
//! (a unit of work with snapshot isolation), and the event's completion callback finishes and
//! removes it.
//!
//! | Flask-SQLAlchemy | gluebind |
//! |---|---|
//! | `create_engine(url)` | [`Engine::from_url`] |
//! | `sessionmaker(bind=engine)` | [`SessionFactory::builder`] |
//! | `scoped_session(factory)` | [`Registry::new`] |
//! | `db.session` | [`Registry::session`]`(&scope)` |
//! | teardown `remove()` | [`Registry::remove`] in `ctx.waitUntil` |
//!
//! ```
//! # pollster::block_on(async {
//! use gluebind::{params, Engine, Outcome, Registry, SessionFactory};
//!
//! // Once per isolate.
//! let registry = Registry::new(
//!     SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?,
//! );
//!
//! // Per fetch event (the wasm glue `gluebind::wasm::serve` does this for you).
//! let scope = registry.begin();
//! let session = registry.session(&scope)?;
//! session.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)").await?;
//! let id = session.next_id("users").await?;
//! session.execute("INSERT INTO users VALUES ($1, $2)", params![id, "ada@example.com"]).await?;
//! session.commit().await?; // durable path: commit before responding
//! registry.remove(&scope, Outcome::Completed).await?;
//! # Ok::<(), gluebind::Error>(())
//! # }).unwrap();
//! ```
//!
//! `memory://` keeps committed data in the isolate's memory: it is a cache and test engine.
//! An isolate eviction or a Rust panic (which resets the wasm instance) wipes it.

#![warn(missing_docs)]

// The derive names `::gluebind::...`; this makes that path resolve inside the crate too.
extern crate self as gluebind;

mod column_notes;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod conformance;
mod dyn_params;
mod engine;
mod error;
mod factory;
mod hooks;
pub mod migrate;
pub mod model;
mod parse_cache;
mod recording;
mod registry;
mod rows;
mod scope;
mod session;
mod snapshot;
mod startup;
mod storage;
mod url;
mod value;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use dyn_params::DynParam;
pub use engine::Engine;
pub use error::{Error, Result};
pub use factory::{Isolation, SessionFactory, SessionFactoryBuilder, TeardownPolicy};
pub use hooks::Committed;
pub use recording::RecordedQuery;
pub use registry::{Outcome, Registry, Stats, Teardown};
pub use rows::{QueryResult, Row, Rows};
pub use scope::{Scope, ScopeId};
pub use session::{CommitInfo, Finish, Session};
pub use startup::Startup;
pub use url::EngineUrl;

/// The `kv://` engine's backend interface: implement [`kv::KvBackend`] to run `kv://` over
/// another store (the Worker glue implements it over a Workers KV binding).
///
/// With the cargo feature `testing` (for your tests: `gluebind = { …, features =
/// ["testing"] }` under `[dev-dependencies]`), also the test doubles — `kv::MemoryKv` (an
/// in-memory namespace), `kv::CountingKv` (counts operations), `kv::FaultyKv` (injects
/// failures, staleness, pauses) — and `kv::format`, the on-storage format for tests that
/// inspect a namespace (not covered by semver). (Plain names, not links: without the feature
/// the items do not exist, and `cargo doc` would deny the broken links.)
pub mod kv {
    pub use crate::storage::kv::backend::{
        BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey, MAX_BULK_GET,
        MAX_LIST,
    };
    #[cfg(any(test, feature = "testing"))]
    pub use crate::storage::kv::{
        counting::{CountingKv, KvOps},
        faulty::{CallKind, FaultyKv},
        memory_kv::MemoryKv,
    };

    /// The key layout and the commit record (journal): how `kv://` stores data, for tests that
    /// read a namespace directly. Not covered by semver.
    #[cfg(any(test, feature = "testing"))]
    pub mod format {
        pub use crate::storage::kv::{journal, layout};
    }
}
/// The `do://` engine's transport: implement [`durable::ObjectTransport`] to reach the
/// database object another way (the Worker glue sends requests to the Durable Object's stub).
/// With the cargo feature `testing`, `durable::LocalObject`: a database object in the test's
/// process, with injected faults.
pub mod durable {
    pub use crate::storage::durable::client::{ObjectTransport, TransportFailure};
    #[cfg(any(test, feature = "testing"))]
    pub use crate::storage::durable::local::LocalObject;
}
pub use value::{param, to_json, FromValue};

/// GlueSQL's value type: what columns hold and parameters bind.
pub use gluesql_core::prelude::Value;
/// A bound parameter; build with [`params!`] or [`param`].
pub use gluesql_core::translate::{IntoParamLiteral, ParamLiteral};

/// Derives [`model::Model`] for a struct with named fields (see [`model`]). The derive and
/// the trait share the name, as serde's do: `use gluebind::Model;` brings both.
pub use gluebind_macros::Model;
pub use model::Model;

/// Builds a parameter list: `params![1i64, "ada", None::<i64>]`.
pub use gluesql_core::params;

/// An empty parameter list, for statements without placeholders.
pub const NO_PARAMS: [ParamLiteral; 0] = [];

// The Rust blocks of docs/ are doctests: `cargo test --doc` compiles and runs each (the blocks
// that need a Worker are tagged `rust,ignore` and compiled for wasm32 in examples/hello).
#[cfg(doctest)]
#[doc = include_str!("../docs/isolation.md")]
struct IsolationDoc;
#[cfg(doctest)]
#[doc = include_str!("../docs/models.md")]
struct ModelsDoc;
#[cfg(doctest)]
#[doc = include_str!("../docs/migrations.md")]
struct MigrationsDoc;
