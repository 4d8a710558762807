//! Storage backends: where an engine keeps committed data.
//!
//! Every backend exposes the same two steps of a commit: `apply` validates a session's
//! write-set against the latest committed state and makes it visible to new sessions of this
//! isolate (atomically, first committer wins), and `flush` makes applied commits durable. On
//! `memory://` the isolate's memory is the only copy, so `flush` has nothing to do; a durable
//! backend (Workers KV) does its I/O there, which is why the completion callback awaits it.

pub(crate) mod durable;
// Natively: the do:// case runs the object over SQLite (rusqlite).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod equal_keys;
pub(crate) mod kv;
pub(crate) mod patch;
pub(crate) mod validate;
