//! Key layout of the KV engine, version 1 (`gluebind/v1/...`).
//!
//! ```text
//! {base} = "gluebind/v1/", or "gluebind/v1/p/{prefix}/" with ?prefix=... (under a family
//!          of its own, so no table of the unprefixed database can list it)
//! {base}s/{table}                     schema: {"schema": <GlueSQL Schema>, "v": version}
//! {base}r/{table}/{hex key}           row: value {"k": key, "v": version, "d": [values]},
//!                                     metadata the same when it fits in 1024 bytes, else
//!                                     {"k", "v"} (a scan then reads the value)
//! {base}u/{table}/{column}/{hex val}  unique entry: {"k": owning row key, "v": version}
//! {base}x/{table}/{index}.{created µs}/{hex val}/{hex key}
//!                                     secondary-index entry (`CREATE INDEX`, when the schema
//!                                     record lists the index in `"x"`): {"k": row key, "v":
//!                                     version}, metadata the same, so a `list` of one value's
//!                                     prefix names its rows
//! {base}c/{stamp as 16 hex digits}    commit record of a commit being applied (or of a
//!                                     settlement): its whole write-set (see
//!                                     [`super::journal`]), metadata {"at": creation ms,
//!                                     "h"/"hr": key hashes, "d"/"t": table names}
//! {base}c/{stamp}.w                   marker of a commit that only deletes, put before its
//!                                     first delete (the evidence that it began)
//! ```
//!
//! One key per row (never a blob per table), so a point read costs one `get` and a one-row
//! insert two `put`s (row + unique entry). `{hex key}` is GlueSQL's order-preserving key
//! encoding in hex, so a `list` returns rows in primary-key order. Small rows are inlined in
//! the metadata, so a scan of N rows costs ceil(N / 1000) `list` calls. Every row carries the
//! version of the commit that wrote it: commits compare versions to detect conflicts.
//!
//! Index entries are a superset of the truth: every row of a table has the entry of each index
//! its schema record lists, and an entry may outlive the value (a lost race across isolates),
//! so a reader keeps the rows it fetches only where they still hold the value. An index
//! created on a table of more rows than one commit may write ([`INDEX_BACKFILL_ROWS`]) is not
//! listed: its lookups load the table, as before index entries existed.
//!
//! The `c/` and `x/` families were added within v1 (it is additive: a reader that does not know it never
//! lists it). A record exists only while its commit is being applied, or after the Worker
//! applying it was cut off; sessions settle records older than two minutes.

use crate::error::{Error, Result};
use gluesql_core::{
    data::Schema,
    prelude::{Key, Value},
};
use serde::{Deserialize, Serialize};

/// Workers KV's limits, checked before anything is written.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value Workers KV stores.
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// Largest metadata object Workers KV stores (serialized JSON).
pub const MAX_METADATA_BYTES: usize = 1024;

/// Names every key of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    base: String,
}

/// A stored row as the engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    /// Primary key (or generated key).
    pub k: Key,
    /// Version of the commit that wrote the row.
    pub v: u64,
    /// Column values; absent in metadata when the row is too large to inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Vec<Value>>,
}

/// A stored unique-index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueRecord {
    /// Key of the row holding the value.
    pub k: Key,
    /// Version of the commit that wrote the entry.
    pub v: u64,
}

/// A stored schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaRecord {
    /// The table's GlueSQL schema.
    pub schema: Schema,
    /// Version of the commit that created or altered the table.
    pub v: u64,
    /// The secondary indexes whose entries KV holds for every row (`x/`): a lookup of one
    /// value lists them. Older gluebind releases neither read nor keep this.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x: Vec<String>,
    /// The name the table's rows and entries are stored under, where it is not the table's
    /// own (a table renamed in place: its keys stay as they were). Older gluebind releases do
    /// not read this: they see such a table empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Rows a table may hold for `CREATE INDEX` to write an entry for each in its commit (within
/// the 1 000 KV operations of one invocation, beside the commit's own) at the default budget
/// of 900 operations per session; an index created on a larger table keeps no entries in KV.
pub const INDEX_BACKFILL_ROWS: usize = 400;

/// [`INDEX_BACKFILL_ROWS`] for a session budget of `max_ops` operations: the entries all the
/// `CREATE INDEX`es of one session may write (4/9 of the budget: the rest for the commit's
/// own writes, its checks, and the loads before it).
#[must_use]
pub fn index_backfill_rows(max_ops: u64) -> usize {
    usize::try_from(max_ops.saturating_mul(4) / 9).unwrap_or(INDEX_BACKFILL_ROWS)
}

fn encode_name(name: &str) -> String {
    // Table and column names become key segments: escape anything but a safe set.
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Longest hex segment kept as is; longer values are named by their SHA-256 instead.
const MAX_HEX_SEGMENT: usize = 128;

fn key_segment(key: &Key) -> Result<String> {
    let bytes = match key {
        // GlueSQL's bytes of a decimal drop the scale of its fraction (1.05 and 1.5 both end in
        // 5) and keep the scale of the mantissa (1.5 and 1.50 differ); keys GlueSQL holds equal
        // must be one KV key and unequal ones two: its normalized text.
        Key::Decimal(d) => [b'd']
            .into_iter()
            .chain(d.normalize().to_string().into_bytes())
            .collect(),
        _ => key.to_cmp_be_bytes().map_err(|e| Error::Storage {
            message: format!("cannot store key {key:?} in KV: {e}"),
        })?,
    };
    let segment = hex(&bytes);
    if segment.len() <= MAX_HEX_SEGMENT {
        return Ok(segment);
    }
    // Long values (a 254-character email) would overflow KV's 512-byte keys: name them by
    // hash. The record itself holds the full key, so nothing is lost; 'h' never starts a hex
    // segment, so the two forms cannot collide.
    use sha2::{Digest, Sha256};
    Ok(format!("h{}", hex(&Sha256::digest(&bytes))))
}

/// True when rows keyed like `key` list in key order: the types whose order-preserving bytes
/// are short (never named by hash) and whose order is the bytes' order (integers, booleans,
/// times of day, UUIDs; not dates, whose days before the era's start sort after it, nor text,
/// decimals or floats).
pub(crate) fn listed_in_key_order(key: &Key) -> bool {
    matches!(
        key,
        Key::Bool(_)
            | Key::I8(_)
            | Key::I16(_)
            | Key::I32(_)
            | Key::I64(_)
            | Key::I128(_)
            | Key::U8(_)
            | Key::U16(_)
            | Key::U32(_)
            | Key::U64(_)
            | Key::U128(_)
            | Key::Time(_)
            | Key::Uuid(_)
    )
}

/// [`listed_in_key_order`] for the keys of a primary key column of type `data_type`.
pub(crate) fn type_listed_in_key_order(data_type: &gluesql_core::ast::DataType) -> bool {
    use gluesql_core::ast::DataType::*;
    matches!(
        data_type,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int
            | Int128
            | Uint8
            | Uint16
            | Uint32
            | Uint64
            | Uint128
            | Time
            | Uuid
    )
}

fn check_key(key: String) -> Result<String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Storage {
            message: format!(
                "KV key of {} bytes exceeds Workers KV's {MAX_KEY_BYTES}-byte limit ({}...); \
                 use shorter table names, column names or primary-key values",
                key.len(),
                &key[..64]
            ),
        });
    }
    Ok(key)
}

impl Layout {
    /// The layout for a database with an optional key prefix.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        // A prefixed database lives under the family `p/`: the unprefixed database's keys
        // start with one of its families (`s/`, `r/`, `u/`, `c/`) and never with `p/`, so no
        // table name can make a listing of one database reach into another. (`/` in a prefix
        // is escaped, so two prefixes never nest either.)
        let base = if prefix.is_empty() {
            "gluebind/v1/".to_owned()
        } else {
            format!("gluebind/v1/p/{}/", encode_name(prefix))
        };
        Self { base }
    }

    /// Prefix of all schema keys.
    #[must_use]
    pub fn schemas_prefix(&self) -> String {
        format!("{}s/", self.base)
    }

    /// Key of a table's schema.
    ///
    /// # Errors
    /// [`Error::Storage`] when the key exceeds KV's limit.
    pub fn schema_key(&self, table: &str) -> Result<String> {
        check_key(format!("{}{}", self.schemas_prefix(), encode_name(table)))
    }

    /// Prefix of all row keys of `table`.
    #[must_use]
    pub fn rows_prefix(&self, table: &str) -> String {
        format!("{}r/{}/", self.base, encode_name(table))
    }

    /// Key of one row.
    ///
    /// # Errors
    /// [`Error::Storage`] when the key cannot be encoded or exceeds KV's limit.
    pub fn row_key(&self, table: &str, key: &Key) -> Result<String> {
        check_key(format!("{}{}", self.rows_prefix(table), key_segment(key)?))
    }

    /// Prefix of all unique entries of `table` (all columns).
    #[must_use]
    pub fn uniques_prefix(&self, table: &str) -> String {
        format!("{}u/{}/", self.base, encode_name(table))
    }

    /// Prefix of all secondary-index entries of `table` (all indexes).
    #[must_use]
    pub fn indexes_prefix(&self, table: &str) -> String {
        format!("{}x/{}/", self.base, encode_name(table))
    }

    /// Prefix of the entries of index `index` (created at `created`, in µs: an index dropped
    /// and created again under its name starts afresh) for `value`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the value cannot be encoded.
    pub fn index_value_prefix(
        &self,
        table: &str,
        index: &str,
        created: i64,
        value: &Key,
    ) -> Result<String> {
        Ok(format!(
            "{}{}.{created}/{}/",
            self.indexes_prefix(table),
            encode_name(index),
            key_segment(value)?
        ))
    }

    /// Key of the entry of index `index` for row `key` holding `value`.
    ///
    /// # Errors
    /// [`Error::Storage`] when a key cannot be encoded or exceeds KV's limit.
    pub fn index_key(
        &self,
        table: &str,
        index: &str,
        created: i64,
        value: &Key,
        key: &Key,
    ) -> Result<String> {
        check_key(format!(
            "{}{}",
            self.index_value_prefix(table, index, created, value)?,
            key_segment(key)?
        ))
    }

    /// Prefix of all commit records (the journal).
    #[must_use]
    pub fn journal_prefix(&self) -> String {
        format!("{}c/", self.base)
    }

    /// Key of the commit record of the commit stamped `stamp` (fixed width, so a record's key
    /// follows from the version any of its rows carries).
    #[must_use]
    pub fn record_key(&self, stamp: u64) -> String {
        format!("{}{stamp:016x}", self.journal_prefix())
    }

    /// Key of the unique entry for `value` in `column` of `table`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the key cannot be encoded or exceeds KV's limit.
    pub fn unique_key(&self, table: &str, column: &str, value: &Key) -> Result<String> {
        check_key(format!(
            "{}{}/{}",
            self.uniques_prefix(table),
            encode_name(column),
            key_segment(value)?
        ))
    }
}

/// Encodes a row as (value, metadata), inlining the values in the metadata when they fit.
///
/// # Errors
/// [`Error::Storage`] when the value exceeds KV's size limit.
pub fn encode_row(record: &RowRecord) -> Result<(String, serde_json::Value)> {
    // JSON has no NaN or infinity: serde_json would write `null`, and the row could never be
    // read back (nor any scan of its table).
    if let Some(bad) = record.d.iter().flatten().find_map(non_finite) {
        return Err(Error::Storage {
            message: format!(
                "a row of key {:?} holds the float {bad}, which KV's JSON cannot store; \
                 store NULL (or the text) instead",
                record.k
            ),
        });
    }
    let value = serde_json::to_string(record).map_err(storage_error)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::Storage {
            message: format!(
                "row of {} bytes exceeds Workers KV's 25 MiB value limit",
                value.len()
            ),
        });
    }
    // Metadata holds the record as a JSON *string*: a Worker hands metadata through
    // JavaScript, where numbers above 2^53 would lose precision.
    let wrap = |json: String| serde_json::json!({ "r": json });
    let mut metadata = wrap(value.clone());
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        let key_only = RowRecord {
            k: record.k.clone(),
            v: record.v,
            d: None,
        };
        metadata = wrap(serde_json::to_string(&key_only).map_err(storage_error)?);
    }
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::Storage {
            message: "row key too large for KV metadata (1024 bytes); use a shorter primary key"
                .to_owned(),
        });
    }
    Ok((value, metadata))
}

/// The first NaN or infinite float in `value` (nested in lists, maps and points too).
pub(crate) fn non_finite(value: &Value) -> Option<f64> {
    match value {
        Value::F32(f) if !f.is_finite() => Some(f64::from(*f)),
        Value::F64(f) if !f.is_finite() => Some(*f),
        Value::Point(p) => [p.x, p.y].into_iter().find(|f| !f.is_finite()),
        Value::List(items) => items.iter().find_map(non_finite),
        Value::Map(entries) => entries.values().find_map(non_finite),
        _ => None,
    }
}

/// Encodes a secondary-index entry as (value, metadata): the row's key and the commit's
/// stamp, in both (a listing reads the metadata).
///
/// # Errors
/// [`Error::Storage`] when the entry exceeds KV's metadata limit (a very long key).
pub fn encode_index_entry(row: &Key, stamp: u64) -> Result<(String, serde_json::Value)> {
    let value = serde_json::to_string(&UniqueRecord {
        k: row.clone(),
        v: stamp,
    })
    .map_err(storage_error)?;
    let metadata = serde_json::json!({ "r": value });
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::Storage {
            message: "row key too large for KV metadata (1024 bytes); use a shorter primary key"
                .to_owned(),
        });
    }
    Ok((value, metadata))
}

/// Decodes JSON stored by gluebind.
///
/// # Errors
/// [`Error::Storage`] naming the key when the data is not in gluebind's layout.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::Storage {
        message: format!("KV key {key:?} does not hold gluebind v1 data: {e}"),
    })
}

/// Decodes a metadata object stored by gluebind.
///
/// # Errors
/// [`Error::Storage`] naming the key when the metadata is not in gluebind's layout.
pub fn decode_metadata<T: for<'de> Deserialize<'de>>(
    key: &str,
    metadata: &serde_json::Value,
) -> Result<T> {
    let json = metadata
        .get("r")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Storage {
            message: format!("KV key {key:?} has metadata not in gluebind v1 layout"),
        })?;
    decode(key, json)
}

fn storage_error(e: serde_json::Error) -> Error {
    Error::Storage {
        message: format!("cannot encode for KV: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_escaped_and_ordered() {
        let l = Layout::new("app1");
        assert_eq!(l.schema_key("users").unwrap(), "gluebind/v1/p/app1/s/users");
        assert_eq!(l.rows_prefix("a/b"), "gluebind/v1/p/app1/r/a%2Fb/");
        let k = |n: i64| l.row_key("users", &Key::I64(n)).unwrap();
        assert!(k(-5) < k(-1) && k(-1) < k(0) && k(0) < k(2) && k(2) < k(300));
        let u = l
            .unique_key("users", "email", &Key::Str("a@b".into()))
            .unwrap();
        assert!(u.starts_with("gluebind/v1/p/app1/u/users/email/"));
        assert_eq!(l.record_key(0xab), "gluebind/v1/p/app1/c/00000000000000ab");
        let x = |v: &str, k: i64| {
            l.index_key("users", "ix.name", 7, &Key::Str(v.into()), &Key::I64(k))
                .unwrap()
        };
        let of = |v: &str| {
            l.index_value_prefix("users", "ix.name", 7, &Key::Str(v.into()))
                .unwrap()
        };
        assert!(x("ada", 1).starts_with("gluebind/v1/p/app1/x/users/ix.name.7/"));
        assert!(x("ada", 1).starts_with(&of("ada")) && x("ada", 2).starts_with(&of("ada")));
        assert!(
            !x("adam", 1).starts_with(&of("ada")),
            "one value's prefix only"
        );
        assert!(!l
            .index_key(
                "users",
                "ix.name",
                70,
                &Key::Str("ada".into()),
                &Key::I64(1)
            )
            .unwrap()
            .starts_with(&of("ada")));
    }

    #[test]
    fn long_values_are_named_by_hash_and_oversize_names_rejected() {
        let l = Layout::new("");
        let a = l.row_key("users", &Key::Str("x".repeat(300))).unwrap();
        let b = l.row_key("users", &Key::Str("x".repeat(301))).unwrap();
        assert!(a.len() <= MAX_KEY_BYTES && a != b, "{a}");
        let email = format!("{}@example.com", "e".repeat(242));
        assert!(l.unique_key("users", "email", &Key::Str(email)).is_ok());
        let err = l.schema_key(&"t".repeat(600)).unwrap_err();
        assert!(err.to_string().contains("512-byte"), "{err}");
    }

    #[test]
    fn floats_json_cannot_hold_are_refused() {
        let row = |v: Value| RowRecord {
            k: Key::I64(1),
            v: 1,
            d: Some(vec![Value::I64(1), v]),
        };
        for bad in [
            Value::F64(f64::NAN),
            Value::F32(f32::INFINITY),
            Value::List(vec![Value::F64(f64::NEG_INFINITY)]),
        ] {
            let err = encode_row(&row(bad)).unwrap_err();
            assert!(err.to_string().contains("JSON cannot store"), "{err}");
        }
        assert!(encode_row(&row(Value::F64(-0.0))).is_ok());
    }

    #[test]
    fn small_rows_are_inlined_large_ones_are_not() {
        let small = RowRecord {
            k: Key::I64(1),
            v: 7,
            d: Some(vec![Value::I64(1), Value::Str("ada".into())]),
        };
        let (value, meta) = encode_row(&small).unwrap();
        assert_eq!(decode::<RowRecord>("k", &value).unwrap(), small);
        assert_eq!(decode_metadata::<RowRecord>("k", &meta).unwrap(), small);
        let big = RowRecord {
            d: Some(vec![Value::Str("x".repeat(2000))]),
            ..small
        };
        let (value, meta) = encode_row(&big).unwrap();
        assert_eq!(decode::<RowRecord>("k", &value).unwrap(), big);
        assert_eq!(decode_metadata::<RowRecord>("k", &meta).unwrap().d, None);
    }
}
