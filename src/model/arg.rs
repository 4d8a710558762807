//! Values of model statements: typed parameters (what typed models bind), and values from
//! dynamically typed callers (the npm package), converted to their column's type.
//!
//! A model knows each column's type, so a JavaScript value is converted once, in Rust, to the
//! value the column holds: `36` becomes an `INT32` for an `INT32` column, `"2024-01-02"` a
//! `DATE` for a `DATE` column. Such a value binds exactly, runs through the session's
//! parsed-statement cache, and compares exactly in the unit of work (an unchanged value is
//! never written again). The conversions are GlueSQL's own for literals (a number into any
//! integer width or `FLOAT`; text into `DATE`, `TIME`, `TIMESTAMP`, `UUID`, `INET`, hex
//! `BYTEA`), plus integer text into integer columns (what the package's `int64: "string"`
//! option hands out comes back in). A value that does not convert stays a literal, bound as
//! if written in the SQL text, so GlueSQL converts it or explains why it cannot, as it did
//! before models were typed.

use super::ColumnMeta;
use crate::{
    recording::{dyn_param_json, param_json},
    DynParam, ParamLiteral, Value,
};
use gluesql_core::ast::DataType;

/// One parameter of a model statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// Bound exactly, with its type.
    Typed(ParamLiteral),
    /// A dynamically typed value that did not convert to its column's type: bound as a SQL
    /// literal would be.
    Literal(DynParam),
}

impl From<ParamLiteral> for Arg {
    fn from(param: ParamLiteral) -> Self {
        Self::Typed(param)
    }
}

impl Arg {
    /// NULL.
    pub(crate) fn null() -> Self {
        Self::Typed(ParamLiteral::null())
    }

    /// Text that names the value and its type: identities in the identity map and the
    /// unit of work's change detection compare it (`ParamLiteral` has no `Eq` or `Hash`).
    pub(crate) fn text(&self) -> String {
        format!("{self:?}")
    }

    /// The value as JSON, for messages and commit hooks.
    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            Self::Typed(param) => param_json(param),
            Self::Literal(param) => dyn_param_json(param),
        }
    }

    /// The typed value, if it is one.
    pub(crate) fn value(&self) -> Option<Value> {
        match self {
            Self::Typed(param) => match param.clone().into_expr() {
                gluesql_core::ast::Expr::Value(value) => Some(value),
                _ => None,
            },
            Self::Literal(_) => None,
        }
    }

    /// True for NULL.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value(), Some(Value::Null))
            || matches!(self, Self::Literal(DynParam::Value(Value::Null)))
    }

    /// The parameter for [`crate::Session::execute_dyn`]'s binding (typed values stay typed).
    pub(crate) fn into_dyn(self) -> DynParam {
        match self {
            Self::Typed(param) => DynParam::Value(match param.into_expr() {
                gluesql_core::ast::Expr::Value(value) => value,
                _ => Value::Null,
            }),
            Self::Literal(param) => param,
        }
    }
}

/// GlueSQL's data type of a model column type (one of `meta::SQL_TYPES`).
fn data_type(sql_type: &str) -> Option<DataType> {
    Some(match sql_type {
        "INTEGER" => DataType::Int,
        "INT8" => DataType::Int8,
        "INT16" => DataType::Int16,
        "INT32" => DataType::Int32,
        "INT128" => DataType::Int128,
        "UINT8" => DataType::Uint8,
        "UINT16" => DataType::Uint16,
        "UINT32" => DataType::Uint32,
        "UINT64" => DataType::Uint64,
        "UINT128" => DataType::Uint128,
        "FLOAT" => DataType::Float,
        "BOOLEAN" => DataType::Boolean,
        "TEXT" => DataType::Text,
        "BYTEA" => DataType::Bytea,
        "DATE" => DataType::Date,
        "TIME" => DataType::Time,
        "TIMESTAMP" => DataType::Timestamp,
        "UUID" => DataType::Uuid,
        "INET" => DataType::Inet,
        _ => return None,
    })
}

/// True when `value` is what a column of `data_type` holds.
fn fits(value: &Value, data_type: &DataType) -> bool {
    matches!(
        (value, data_type),
        (Value::I64(_), DataType::Int)
            | (Value::I8(_), DataType::Int8)
            | (Value::I16(_), DataType::Int16)
            | (Value::I32(_), DataType::Int32)
            | (Value::I128(_), DataType::Int128)
            | (Value::U8(_), DataType::Uint8)
            | (Value::U16(_), DataType::Uint16)
            | (Value::U32(_), DataType::Uint32)
            | (Value::U64(_), DataType::Uint64)
            | (Value::U128(_), DataType::Uint128)
            | (Value::F64(_), DataType::Float)
            | (Value::Bool(_), DataType::Boolean)
            | (Value::Str(_), DataType::Text)
            | (Value::Bytea(_), DataType::Bytea)
            | (Value::Date(_), DataType::Date)
            | (Value::Time(_), DataType::Time)
            | (Value::Timestamp(_), DataType::Timestamp)
            | (Value::Uuid(_), DataType::Uuid)
            | (Value::Inet(_), DataType::Inet)
    )
}

/// An integer written `-?[0-9]+`, in `data_type`'s range.
pub(crate) fn integer(repr: &str, data_type: &DataType) -> Option<Value> {
    let digits = repr.strip_prefix('-').unwrap_or(repr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Every width fits i128 but the upper half of u128.
    if let (DataType::Uint128, false) = (data_type, repr.starts_with('-')) {
        return repr.parse().ok().map(Value::U128);
    }
    let n: i128 = repr.parse().ok()?;
    Some(match data_type {
        DataType::Int => Value::I64(n.try_into().ok()?),
        DataType::Int8 => Value::I8(n.try_into().ok()?),
        DataType::Int16 => Value::I16(n.try_into().ok()?),
        DataType::Int32 => Value::I32(n.try_into().ok()?),
        DataType::Int128 => Value::I128(n),
        DataType::Uint8 => Value::U8(n.try_into().ok()?),
        DataType::Uint16 => Value::U16(n.try_into().ok()?),
        DataType::Uint32 => Value::U32(n.try_into().ok()?),
        DataType::Uint64 => Value::U64(n.try_into().ok()?),
        DataType::Uint128 => Value::U128(n.try_into().ok()?),
        _ => return None,
    })
}

fn converted(param: &DynParam, data_type: &DataType) -> Option<Value> {
    match param {
        DynParam::Value(value) => fits(value, data_type).then(|| value.clone()),
        DynParam::Number(repr) => match data_type {
            // GlueSQL reads a numeric literal into FLOAT as its nearest f64.
            DataType::Float => repr.parse().ok().map(Value::F64),
            _ => integer(repr, data_type),
        },
        DynParam::Text(text) => match data_type {
            DataType::Text => Some(Value::Str(text.clone())),
            DataType::Date
            | DataType::Time
            | DataType::Timestamp
            | DataType::Uuid
            | DataType::Inet
            | DataType::Bytea => Value::Str(text.clone()).cast(data_type).ok(),
            _ => integer(text, data_type),
        },
    }
}

/// `param` as a value of `column`'s type when it converts (NULL always does), else as a
/// literal (see the module docs).
pub(crate) fn coerce(param: DynParam, column: &ColumnMeta) -> Arg {
    if let DynParam::Value(Value::Null) = param {
        return Arg::null();
    }
    let converted = data_type(column.sql_type()).and_then(|t| converted(&param, &t));
    match converted.map(crate::param) {
        Some(Ok(typed)) => Arg::Typed(typed),
        _ => Arg::Literal(param),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(sql_type: &'static str) -> ColumnMeta {
        ColumnMeta::owned("c".into(), sql_type, true, false)
    }

    fn typed(param: DynParam, sql_type: &'static str) -> Option<Value> {
        coerce(param, &col(sql_type)).value()
    }

    #[test]
    fn numbers_take_the_column_width() {
        assert_eq!(typed(36i64.into(), "INT32"), Some(Value::I32(36)));
        assert_eq!(typed(36i64.into(), "INTEGER"), Some(Value::I64(36)));
        assert_eq!(
            typed((-1i64).into(), "UINT8"),
            None,
            "out of range: a literal"
        );
        assert_eq!(typed(300i64.into(), "UINT8"), None);
        assert_eq!(typed(1.5.into(), "INT32"), None, "a fraction: a literal");
        assert_eq!(typed(1.5.into(), "FLOAT"), Some(Value::F64(1.5)));
        assert_eq!(typed(3i64.into(), "FLOAT"), Some(Value::F64(3.0)));
        let u128_max = DynParam::number(u128::MAX.to_string()).unwrap();
        assert_eq!(typed(u128_max, "UINT128"), Some(Value::U128(u128::MAX)));
        assert_eq!(
            typed(5i64.into(), "TEXT"),
            None,
            "a number for TEXT stays a literal"
        );
    }

    #[test]
    fn text_converts_as_glue_sql_literals_do() {
        assert_eq!(
            typed("2024-01-02".into(), "DATE"),
            Some(Value::Date(
                chrono_date(2024, 1, 2) //
            ))
        );
        assert!(matches!(
            typed("2024-01-02T03:04:05.123Z".into(), "TIMESTAMP"),
            Some(Value::Timestamp(_))
        ));
        assert!(matches!(
            typed("936da01f-9abd-4d9d-80c7-02af85c822a8".into(), "UUID"),
            Some(Value::Uuid(_))
        ));
        assert!(matches!(
            typed("127.0.0.1".into(), "INET"),
            Some(Value::Inet(_))
        ));
        assert_eq!(
            typed("00ff".into(), "BYTEA"),
            Some(Value::Bytea(vec![0, 255]))
        );
        assert_eq!(
            typed("42".into(), "INTEGER"),
            Some(Value::I64(42)),
            "int64: \"string\""
        );
        assert_eq!(typed("4x".into(), "INTEGER"), None);
        assert_eq!(typed("not a date".into(), "DATE"), None);
        assert_eq!(typed("true".into(), "BOOLEAN"), None);
    }

    #[test]
    fn typed_values_stay_when_they_fit() {
        assert_eq!(
            typed(Value::Bool(true).into(), "BOOLEAN"),
            Some(Value::Bool(true))
        );
        assert_eq!(typed(Value::Bool(true).into(), "INTEGER"), None);
        assert!(coerce(Value::Null.into(), &col("INTEGER")).is_null());
        // Identities: 1 and 1n (a bigint's digits) are one key.
        let a = coerce(1.0.into(), &col("INTEGER")).text();
        let b = coerce(DynParam::number("1").unwrap(), &col("INTEGER")).text();
        assert_eq!(a, b);
    }

    fn chrono_date(y: i32, m: u32, d: u32) -> gluesql_core::chrono::NaiveDate {
        gluesql_core::chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }
}
