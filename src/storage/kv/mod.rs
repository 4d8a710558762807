//! The `kv://BINDING` engine: durable sessions on Workers KV.
//!
//! GlueSQL executes synchronously, so a statement cannot await KV. The session runs the
//! statement on what is loaded; a read of anything missing records a miss, the engine loads it
//! (from the isolate cache when fresh, else from KV, as of the session's snapshot) and the
//! statement runs again. Writes stay in the session until commit, which puts a commit record
//! (see [`journal`]), checks KV after it and writes the changed rows and unique entries (see
//! [`layout`] for the key layout): a Worker cut off half-way leaves a record that settles the
//! commit all or nothing.

pub mod backend;
mod check;
mod commit;
#[cfg(any(test, feature = "testing"))]
pub mod counting;
#[cfg(any(test, feature = "testing"))]
pub mod faulty;
// Public (through `gluebind::kv::format`) only for tests that read a namespace directly.
#[cfg(any(test, feature = "testing"))]
pub mod journal;
#[cfg(not(any(test, feature = "testing")))]
pub(crate) mod journal;
#[cfg(any(test, feature = "testing"))]
pub mod layout;
#[cfg(not(any(test, feature = "testing")))]
pub(crate) mod layout;
mod load;
mod local;
#[cfg(any(test, feature = "testing"))]
pub mod memory_kv;
mod plan;
mod recover;
mod store;
mod write;

pub(crate) use local::Lsn;
pub(crate) use store::KvStorage;
