//! The `kv://BINDING` engine: durable sessions on Workers KV.
//!
//! GlueSQL executes synchronously, so a statement cannot await KV. The session runs the
//! statement on what is loaded; a read of anything missing records a miss, the engine loads it
//! (from the isolate cache when fresh, else from KV) and the statement runs again. Writes stay
//! in the session until commit, which checks versions in KV and writes the changed rows and
//! unique entries (see [`layout`] for the key layout) behind a commit record, so that a
//! Worker cut off half-way leaves nothing half-written for long (see [`journal`]).

pub mod backend;
pub mod counting;
pub mod faulty;
mod flush;
pub mod journal;
pub mod layout;
pub mod memory_kv;
mod recover;
mod store;

pub(crate) use store::{KvStore, Patch};
