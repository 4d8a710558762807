//! GlueSQL compiles a regex for `LIKE`/`ILIKE` and the `~` operators with the `regex` crate,
//! whose Unicode tables and search engines were a fifth of the deployed wasm (gzip). This
//! workspace patches `regex` with its small sibling `regex-lite` (same author, same API for
//! what GlueSQL calls: `Regex`, `RegexBuilder`, `escape`, `is_match`, `captures`).
//!
//! What changes, for SQL: `LIKE` and `ILIKE` match as before (GlueSQL escapes the pattern and
//! lowercases both sides itself). The `~`/`~*` operators take regex-lite's syntax: `\d`, `\s`
//! and `\w` are ASCII, `\p{..}` classes are refused with an error, and `~*` ignores ASCII case
//! only. A Rust worker built outside this workspace gets the full `regex` unless it adds the
//! same `[patch.crates-io]` entry.
#![forbid(unsafe_code)]

pub use regex_lite::*;
