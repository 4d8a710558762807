//! Values across the boundary: JavaScript parameters in, rows out.
//!
//! | GlueSQL | JavaScript (out) | JavaScript (in) |
//! |---|---|---|
//! | NULL | `null` | `null` (`undefined` is an error) |
//! | BOOLEAN | `boolean` | `boolean` |
//! | INT8…INT32, UINT8…UINT32, FLOAT | `number` | `number` (as a numeric literal) |
//! | INT64, UINT64, INT128, UINT128 | `number` when it is a safe integer, else `bigint` (option `int64`: `"auto"`, `"bigint"`, `"string"`) | `number` or `bigint` |
//! | DECIMAL | `string` (exact) | `number`/`bigint`; a string through `CAST($1 AS DECIMAL)` |
//! | TEXT, INET, UUID, TIME, INTERVAL | `string` | `string` |
//! | DATE | `string` `YYYY-MM-DD` | `string` |
//! | TIMESTAMP (UTC) | `Date` (milliseconds; option `timestamps: "string"` keeps all digits) | `Date` or ISO `string` |
//! | BYTEA | `Uint8Array` | `Uint8Array`, `ArrayBuffer` |
//! | MAP, LIST, POINT | object, array, `{x, y}` | — |

use crate::{
    dyn_params::DynParam,
    model::{ColumnMeta, ModelMeta},
    Error, QueryResult, Rows, Value,
};
use js_sys::{Array, ArrayBuffer, BigInt, Date, JsString, Uint8Array};
use serde::{
    ser::{Error as _, SerializeMap, SerializeSeq},
    Deserialize, Serialize, Serializer,
};
use std::fmt::Write as _;
use wasm_bindgen::{prelude::*, JsCast};

/// How 64- and 128-bit integers come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Int64 {
    /// `number` when it is a safe integer, `bigint` beyond (never a silent rounding).
    #[default]
    Auto,
    /// Always `bigint`.
    Bigint,
    /// Always a decimal `string`.
    String,
    /// A `number`, and an error naming the fix beyond `Number.MAX_SAFE_INTEGER`: a model's
    /// integer column without `bigint: true` (its TypeScript type is `number`).
    #[serde(skip_deserializing)]
    Number,
}

/// How TIMESTAMP values come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Timestamps {
    /// A `Date` (UTC, millisecond precision: finer digits are dropped).
    #[default]
    Date,
    /// An ISO-8601 string without zone, all digits kept (`2024-01-02T03:04:05.123456`).
    String,
}

/// Output options of a registry.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Output {
    pub int64: Int64,
    pub timestamps: Timestamps,
    /// Serializing for JSON text (the benchmark's JSON encoding): no `Date`, no `bigint`.
    pub json: bool,
}

impl Output {
    /// True when a model's 64- and 128-bit integer columns without `bigint: true` read as
    /// `number`s (the default `int64: "auto"`): they then hold safe integers only.
    pub(crate) fn model_numbers(&self) -> bool {
        self.int64 == Int64::Auto
    }
}

fn param_error(index: usize, what: &str) -> Error {
    Error::Sql {
        message: format!("parameter {} {what}", index + 1),
    }
}

/// JavaScript parameters (an array, or `undefined`/`null` for none) → [`DynParam`]s.
pub(crate) fn params(params: &JsValue) -> crate::Result<Vec<DynParam>> {
    if params.is_undefined() || params.is_null() {
        return Ok(Vec::new());
    }
    let Some(array) = params.dyn_ref::<Array>() else {
        return Err(Error::Sql {
            message: "parameters must be an array: execute(sql, [a, b]) for $1, $2".to_owned(),
        });
    };
    array
        .iter()
        .enumerate()
        .map(|(i, v)| param(i, &v))
        .collect()
}

fn param(index: usize, v: &JsValue) -> crate::Result<DynParam> {
    value_param(v).map_err(|why| param_error(index, &why))
}

/// One JavaScript value as a parameter, or why it cannot be one (the end of a sentence about
/// it: "is undefined; pass null for SQL NULL").
pub(crate) fn value_param(v: &JsValue) -> Result<DynParam, String> {
    if v.is_null() {
        return Ok(Value::Null.into());
    }
    if let Some(n) = v.as_f64() {
        return Ok(DynParam::from(n));
    }
    if let Some(s) = v.as_string() {
        return Ok(DynParam::Text(s));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b).into());
    }
    if v.is_undefined() {
        return Err("is undefined; pass null for SQL NULL".to_owned());
    }
    if v.is_bigint() {
        let digits = v
            .unchecked_ref::<BigInt>()
            .to_string(10)
            .map(String::from)
            .map_err(|_| "is a bigint that could not be converted to decimal".to_owned())?;
        return DynParam::number(digits).map_err(|e| e.to_string());
    }
    if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Bytea(bytes.to_vec()).into());
    }
    if let Some(buffer) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Value::Bytea(Uint8Array::new(buffer).to_vec()).into());
    }
    if let Some(date) = v.dyn_ref::<Date>() {
        if date.get_time().is_nan() {
            return Err("is an invalid Date".to_owned());
        }
        return Ok(DynParam::Text(String::from(date.to_iso_string())));
    }
    let kind = if Array::is_array(v) {
        "an array".to_owned()
    } else {
        format!("of type {}", v.js_typeof().as_string().unwrap_or_default())
    };
    Err(format!(
        "is {kind}; bind null, booleans, numbers, bigints, strings, Dates or Uint8Arrays \
         (store structured data as JSON text)"
    ))
}

/// One value, serialized per the output options.
pub(crate) struct Cell<'a> {
    pub value: &'a Value,
    pub out: &'a Output,
}

fn int<S: Serializer>(s: S, v: i128, out: &Output) -> Result<S::Ok, S::Error> {
    let safe = crate::model::dynamic::is_safe_integer(v);
    match out.int64 {
        #[allow(clippy::cast_precision_loss)] // exact: |v| ≤ 2^53 - 1
        Int64::Auto | Int64::Number if safe => s.serialize_f64(v as f64),
        Int64::Number => Err(S::Error::custom(beyond_safe(v))),
        Int64::Auto | Int64::Bigint if !out.json => s.serialize_i128(v),
        _ => s.collect_str(&v),
    }
}

/// Why an integer cannot be a `number` (the end of a sentence naming its column).
pub(crate) fn beyond_safe(v: impl std::fmt::Display) -> String {
    format!("holds {v}, beyond Number.MAX_SAFE_INTEGER")
}

fn uuid_string(v: u128) -> String {
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let out = self.out;
        match self.value {
            Value::Null => s.serialize_unit(),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::I8(v) => s.serialize_i8(*v),
            Value::I16(v) => s.serialize_i16(*v),
            Value::I32(v) => s.serialize_i32(*v),
            Value::U8(v) => s.serialize_u8(*v),
            Value::U16(v) => s.serialize_u16(*v),
            Value::U32(v) => s.serialize_u32(*v),
            Value::I64(v) => int(s, i128::from(*v), out),
            Value::U64(v) => int(s, i128::from(*v), out),
            Value::I128(v) => int(s, *v, out),
            Value::U128(v) => match i128::try_from(*v) {
                Ok(v) => int(s, v, out),
                Err(_) if out.int64 == Int64::Number => Err(S::Error::custom(beyond_safe(v))),
                Err(_) if out.int64 != Int64::String && !out.json => s.serialize_u128(*v),
                Err(_) => s.collect_str(v),
            },
            Value::F32(v) => s.serialize_f32(*v),
            Value::F64(v) => s.serialize_f64(*v),
            Value::Decimal(v) => s.collect_str(v),
            Value::Str(v) => s.serialize_str(v),
            Value::Bytea(v) => s.serialize_bytes(v),
            Value::Inet(v) => s.collect_str(v),
            Value::Date(v) => s.collect_str(v),
            Value::Timestamp(v) => {
                if out.timestamps == Timestamps::Date && !out.json {
                    #[allow(clippy::cast_precision_loss)] // ms since 1970 stay far below 2^53
                    let date = Date::new(&JsValue::from_f64(v.and_utc().timestamp_millis() as f64));
                    serde_wasm_bindgen::preserve::serialize(&date, s)
                } else {
                    s.collect_str(&v.format("%Y-%m-%dT%H:%M:%S%.f"))
                }
            }
            Value::Time(v) => s.collect_str(v),
            Value::Interval(v) => s.serialize_str(&v.to_sql_str()),
            Value::Uuid(v) => s.serialize_str(&uuid_string(*v)),
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Cell { value: v, out })?;
                }
                map.end()
            }
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(&Cell { value: v, out })?;
                }
                seq.end()
            }
            Value::Point(p) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("x", &p.x)?;
                map.serialize_entry("y", &p.y)?;
                map.end()
            }
        }
    }
}

/// Rows as an array of objects keyed by column name, the keys converted once per query and
/// passed through (`keys`), or converted per value (`keys` empty: the naive encoding).
struct RowsAsObjects<'a> {
    rows: &'a Rows,
    keys: &'a [JsValue],
    out: &'a Output,
}

struct RowAsObject<'a> {
    columns: &'a [String],
    keys: &'a [JsValue],
    values: &'a [Value],
    out: &'a Output,
}

/// A `JsValue` passed through serde-wasm-bindgen as is.
struct Preserved<'a>(&'a JsValue);

impl Serialize for Preserved<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_wasm_bindgen::preserve::serialize(self.0, s)
    }
}

impl Serialize for RowsAsObjects<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows.iter() {
            seq.serialize_element(&RowAsObject {
                columns: self.rows.columns(),
                keys: self.keys,
                values: row.values(),
                out: self.out,
            })?;
        }
        seq.end()
    }
}

impl Serialize for RowAsObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (i, value) in self.values.iter().enumerate() {
            let cell = Cell {
                value,
                out: self.out,
            };
            match self.keys.get(i) {
                Some(key) => map.serialize_entry(&Preserved(key), &cell)?,
                None => map.serialize_entry(&self.columns[i], &cell)?,
            }
        }
        map.end()
    }
}

/// Rows as an array of arrays (values in column order).
struct RowsAsArrays<'a> {
    rows: &'a Rows,
    out: &'a Output,
    /// A model's rows: the output of each of the rows' columns.
    model: Option<&'a ModelColumns>,
}

impl Serialize for RowsAsArrays<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows.iter() {
            seq.serialize_element(&RowValues {
                values: row.values(),
                out: self.out,
                model: self.model,
            })?;
        }
        seq.end()
    }
}

struct RowValues<'a> {
    values: &'a [Value],
    out: &'a Output,
    model: Option<&'a ModelColumns>,
}

impl Serialize for RowValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.values.len()))?;
        for (i, value) in self.values.iter().enumerate() {
            let Some(model) = self.model else {
                seq.serialize_element(&Cell {
                    value,
                    out: self.out,
                })?;
                continue;
            };
            let (name, out) = &model.columns[i];
            if out.int64 == Int64::Number {
                if let Some(digits) = crate::model::dynamic::beyond_safe_integer(value) {
                    return Err(S::Error::custom(format!(
                        "column {}.{name} {}; declare it with bigint: true in defineModel to \
                         read it as a bigint",
                        model.table,
                        beyond_safe(digits)
                    )));
                }
            }
            seq.serialize_element(&Cell { value, out })?;
        }
        seq.end()
    }
}

/// How a model's rows come out: each column as the registry's options say, except that a
/// 64- or 128-bit integer column is a `number` (its TypeScript type), or a `bigint` with
/// `bigint: true`.
pub(crate) struct ModelColumns {
    table: String,
    /// The rows' columns in order: name and output.
    columns: Vec<(String, Output)>,
}

/// The output of `column` of a model.
pub(crate) fn column_output(out: &Output, column: Option<&ColumnMeta>) -> Output {
    let int64 = match column {
        Some(c) if c.is_bigint() => Int64::Bigint,
        Some(_) if out.model_numbers() => Int64::Number,
        _ => out.int64,
    };
    Output { int64, ..*out }
}

impl ModelColumns {
    fn new(rows: &Rows, out: &Output, meta: &ModelMeta) -> Self {
        let columns = rows
            .columns()
            .iter()
            .map(|name| {
                let column = meta.columns().iter().find(|c| c.name() == name);
                (name.clone(), column_output(out, column))
            })
            .collect();
        Self {
            table: meta.table().to_owned(),
            columns,
        }
    }
}

/// The encodings the boundary benchmark compares (`js/bench/boundary.mjs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// serde-wasm-bindgen, objects keyed by column name, keys converted per value.
    Objects,
    /// serde-wasm-bindgen, objects keyed by column name, keys converted once per query.
    ObjectsCachedKeys,
    /// serde-wasm-bindgen, `{columns, rows: [[…]]}`; JavaScript builds the objects.
    Arrays,
    /// A JSON string (`serde_json`); JavaScript runs `JSON.parse`.
    Json,
    /// No rows cross: only their count (the benchmark's baseline: the query alone).
    Count,
}

impl Encoding {
    pub(crate) fn parse(name: &str) -> crate::Result<Self> {
        Ok(match name {
            "objects" => Self::Objects,
            "objects-cached-keys" => Self::ObjectsCachedKeys,
            "arrays" => Self::Arrays,
            "json" => Self::Json,
            "count" => Self::Count,
            other => {
                return Err(Error::Config {
                    message: format!(
                        "unknown encoding {other:?}: objects, objects-cached-keys, arrays, json or \
                         count"
                    ),
                })
            }
        })
    }
}

pub(crate) fn serializer() -> serde_wasm_bindgen::Serializer {
    serde_wasm_bindgen::Serializer::new()
        .serialize_missing_as_null(true)
        .serialize_maps_as_objects(true)
}

fn encode_error(e: impl std::fmt::Display) -> Error {
    // serde-wasm-bindgen's errors are JavaScript Errors, shown as "Error: …".
    let e = e.to_string();
    let e = e.strip_prefix("Error: ").unwrap_or(&e);
    Error::Sql {
        message: format!("could not convert a result to JavaScript: {e}"),
    }
}

/// Encodes the rows of a query with `encoding`.
pub(crate) fn encode_rows(rows: &Rows, encoding: Encoding, out: &Output) -> crate::Result<JsValue> {
    match encoding {
        #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
        Encoding::Count => Ok(JsValue::from_f64(rows.len() as f64)),
        Encoding::Objects => RowsAsObjects {
            rows,
            keys: &[],
            out,
        }
        .serialize(&serializer())
        .map_err(encode_error),
        Encoding::ObjectsCachedKeys => {
            let keys: Vec<JsValue> = rows
                .columns()
                .iter()
                .map(|c| JsString::from(c.as_str()).into())
                .collect();
            RowsAsObjects {
                rows,
                keys: &keys,
                out,
            }
            .serialize(&serializer())
            .map_err(encode_error)
        }
        Encoding::Arrays => {
            let values = RowsAsArrays {
                rows,
                out,
                model: None,
            }
            .serialize(&serializer())
            .map_err(encode_error)?;
            let columns = rows
                .columns()
                .serialize(&serializer())
                .map_err(encode_error)?;
            let pair = Array::of2(&columns, &values);
            Ok(pair.into())
        }
        Encoding::Json => {
            let json_out = Output { json: true, ..*out };
            let mut text = String::with_capacity(64 * rows.len() + 2);
            text.push('[');
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push('{');
                for (j, (name, value)) in rows.columns().iter().zip(row.values()).enumerate() {
                    if j > 0 {
                        text.push(',');
                    }
                    let key = serde_json::to_string(name).map_err(encode_error)?;
                    let cell = serde_json::to_string(&Cell {
                        value,
                        out: &json_out,
                    })
                    .map_err(encode_error)?;
                    let _ = write!(text, "{key}:{cell}");
                }
                text.push('}');
            }
            text.push(']');
            Ok(JsValue::from_str(&text))
        }
    }
}

#[wasm_bindgen(inline_js = "
export function toRows(columns, values, affected, command) {
  const n = columns.length;
  const rows = new Array(values.length);
  if (columns.includes('__proto__')) {
    for (let r = 0; r < values.length; r++) {
      const row = {};
      for (let i = 0; i < n; i++) {
        Object.defineProperty(row, columns[i], { value: values[r][i], enumerable: true, writable: true, configurable: true });
      }
      rows[r] = row;
    }
  } else {
    for (let r = 0; r < values.length; r++) {
      const v = values[r];
      const row = {};
      for (let i = 0; i < n; i++) row[columns[i]] = v[i];
      rows[r] = row;
    }
  }
  return Object.defineProperties(rows, {
    columns: { value: columns },
    affected: { value: affected },
    command: { value: command },
  });
}
")]
extern "C" {
    /// Builds the row objects from the column names and the rows' values (the fastest
    /// encoding measured by `js/bench/boundary.mjs`: V8 builds objects with stable shapes far
    /// faster than property stores from wasm), and adds the non-enumerable `columns`,
    /// `affected` and `command` (so `JSON.stringify(rows)` and deep equality see only rows).
    #[wasm_bindgen(js_name = toRows)]
    fn to_rows(columns: &JsValue, values: &JsValue, affected: f64, command: &str) -> JsValue;
}

/// The rows of a query of model `meta` as JavaScript row objects (see [`ModelColumns`]).
pub(crate) fn model_rows_to_js(
    rows: Rows,
    out: &Output,
    meta: &ModelMeta,
) -> crate::Result<JsValue> {
    let model = ModelColumns::new(&rows, out, meta);
    encode_result(&QueryResult::Rows(rows), out, Some(&model))
}

/// The first row of a query of model `meta` as a JavaScript object, or `null`.
pub(crate) fn first_model_row_to_js(
    rows: Rows,
    out: &Output,
    meta: &ModelMeta,
) -> crate::Result<JsValue> {
    if rows.is_empty() {
        return Ok(JsValue::NULL);
    }
    let array: Array = model_rows_to_js(rows, out, meta)?.unchecked_into();
    Ok(array.get(0))
}

/// The JavaScript value of a statement's result: an array of row objects (empty for
/// statements that return no rows) with `columns`, `affected` and `command`.
pub(crate) fn result_to_js(result: &QueryResult, out: &Output) -> crate::Result<JsValue> {
    encode_result(result, out, None)
}

fn encode_result(
    result: &QueryResult,
    out: &Output,
    model: Option<&ModelColumns>,
) -> crate::Result<JsValue> {
    #[allow(clippy::cast_precision_loss)] // row counts stay far below 2^53
    let affected = result.affected() as f64;
    let empty = || -> JsValue { Array::new().into() };
    let (columns, values, command) = match result {
        QueryResult::Rows(rows) => {
            let columns = rows
                .columns()
                .serialize(&serializer())
                .map_err(encode_error)?;
            let values = RowsAsArrays { rows, out, model }
                .serialize(&serializer())
                .map_err(encode_error)?;
            (columns, values, "SELECT")
        }
        QueryResult::Inserted(_) => (empty(), empty(), "INSERT"),
        QueryResult::Updated(_) => (empty(), empty(), "UPDATE"),
        QueryResult::Deleted(_) => (empty(), empty(), "DELETE"),
        QueryResult::Schema => (empty(), empty(), "SCHEMA"),
    };
    Ok(to_rows(&columns, &values, affected, command))
}
