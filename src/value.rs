//! Values in and out: binding parameters and reading typed columns.

use crate::error::{Error, Result};
use gluesql_core::{
    prelude::{ParamLiteral, Value},
    translate::IntoParamLiteral,
};

/// Converts a GlueSQL [`Value`] into a bound parameter.
///
/// Use it when values arrive dynamically (decoded JSON, values read from another row). For
/// literals in Rust code, [`crate::params!`] is shorter.
///
/// # Errors
/// [`Error::Sql`] for MAP and LIST values, which GlueSQL cannot bind as parameters.
pub fn param(value: Value) -> Result<ParamLiteral> {
    Ok(match value {
        Value::Bool(v) => v.into_param_literal(),
        Value::I8(v) => v.into_param_literal(),
        Value::I16(v) => v.into_param_literal(),
        Value::I32(v) => v.into_param_literal(),
        Value::I64(v) => v.into_param_literal(),
        Value::I128(v) => v.into_param_literal(),
        Value::U8(v) => v.into_param_literal(),
        Value::U16(v) => v.into_param_literal(),
        Value::U32(v) => v.into_param_literal(),
        Value::U64(v) => v.into_param_literal(),
        Value::U128(v) => v.into_param_literal(),
        Value::F32(v) => v.into_param_literal(),
        Value::F64(v) => v.into_param_literal(),
        Value::Decimal(v) => v.into_param_literal(),
        Value::Str(v) => v.into_param_literal(),
        Value::Bytea(v) => v.into_param_literal(),
        Value::Inet(v) => v.into_param_literal(),
        Value::Date(v) => v.into_param_literal(),
        Value::Timestamp(v) => v.into_param_literal(),
        Value::Time(v) => v.into_param_literal(),
        Value::Interval(v) => v.into_param_literal(),
        // (`u128::into_param_literal` would bind it as a UINT128.)
        Value::Uuid(v) => uuid::Uuid::from_u128(v).into_param_literal(),
        Value::Point(v) => v.into_param_literal(),
        Value::Null => ParamLiteral::null(),
        Value::Map(_) | Value::List(_) => {
            return Err(Error::sql(
                "MAP and LIST values cannot be bound as parameters; bind scalar values, \
                 or a JSON string and parse it in SQL",
            ))
        }
    })
}

/// Reads a Rust value out of a column value.
///
/// Implemented for the common scalar types and for `Option<T>` (NULL → `None`).
pub trait FromValue: Sized {
    /// Converts `value`, or explains why it cannot.
    ///
    /// # Errors
    /// [`Error::Sql`] naming the expected and the found type.
    fn from_value(value: &Value) -> Result<Self>;
}

fn mismatch(expected: &str, value: &Value) -> Error {
    Error::sql(format!(
        "expected a {expected} column value, found {value:?}; read it as gluebind::Value or cast \
         it in SQL"
    ))
}

macro_rules! from_value_via_try_from {
    ($($ty:ty => $name:literal),+ $(,)?) => {$(
        impl FromValue for $ty {
            fn from_value(value: &Value) -> Result<Self> {
                if matches!(value, Value::Null) {
                    return Err(mismatch($name, value));
                }
                <$ty>::try_from(value).map_err(|_| mismatch($name, value))
            }
        }
    )+};
}

from_value_via_try_from!(
    bool => "boolean",
    i8 => "8-bit integer",
    i16 => "16-bit integer",
    i32 => "32-bit integer",
    i64 => "64-bit integer",
    u8 => "unsigned 8-bit integer",
    u16 => "unsigned 16-bit integer",
    u32 => "unsigned 32-bit integer",
    u64 => "unsigned 64-bit integer",
    f64 => "float",
);

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Str(s) => Ok(s.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bytea(b) => Ok(b.clone()),
            other => Err(mismatch("bytea", other)),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// Converts a value to JSON: integers stay exact (`i64`/`u64` as JSON integers; wider ones as
/// numbers of full precision), decimals as numbers, bytes as hex strings, dates and times as
/// ISO-8601 strings, NULL as `null`.
///
/// # Errors
/// [`Error::Sql`] if GlueSQL cannot represent the value in JSON.
pub fn to_json(value: Value) -> Result<serde_json::Value> {
    serde_json::Value::try_from(value).map_err(|e| Error::sql(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_reads() {
        assert_eq!(i64::from_value(&Value::I64(7)).unwrap(), 7);
        assert_eq!(
            String::from_value(&Value::Str("a".into())).unwrap(),
            "a".to_owned()
        );
        assert_eq!(Option::<i64>::from_value(&Value::Null).unwrap(), None);
        let err = i64::from_value(&Value::Null).unwrap_err();
        assert!(err.to_string().contains("64-bit integer"), "{err}");
        assert!(String::from_value(&Value::I64(1)).is_err());
    }

    #[test]
    fn maps_cannot_be_bound() {
        assert!(param(Value::Map(Default::default())).is_err());
        assert!(param(Value::Str("x".into())).is_ok());
        assert!(param(Value::Null).is_ok());
    }

    #[test]
    fn json_keeps_64_bit_integers_exact() {
        let big = i64::MAX - 1;
        assert_eq!(to_json(Value::I64(big)).unwrap(), serde_json::json!(big));
        assert_eq!(to_json(Value::Null).unwrap(), serde_json::Value::Null);
    }
}
