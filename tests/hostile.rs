//! Hostile input against `Session::execute`: arbitrary SQL text and parameter values must give
//! an error value (or a result), never a panic, and never change data the statement was not
//! allowed to change.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use gluebind::{param, Value};
use proptest::prelude::*;

/// SQL-ish text: real keywords, identifiers, literals and punctuation in random order, plus
/// arbitrary unicode, so the fuzzer reaches the parser, the planner and the executor.
fn sql_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT".to_owned()),
        Just("INSERT INTO users".to_owned()),
        Just("UPDATE users SET".to_owned()),
        Just("DELETE FROM users".to_owned()),
        Just("CREATE TABLE".to_owned()),
        Just("DROP TABLE".to_owned()),
        Just("ALTER TABLE users".to_owned()),
        Just("WHERE".to_owned()),
        Just("VALUES".to_owned()),
        Just("ORDER BY".to_owned()),
        Just("LIMIT".to_owned()),
        Just("JOIN".to_owned()),
        Just("*".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("=".to_owned()),
        Just("'".to_owned()),
        Just("$1".to_owned()),
        Just("$2".to_owned()),
        Just("$0".to_owned()),
        Just("$99999999999999999999".to_owned()),
        Just("users".to_owned()),
        Just("id".to_owned()),
        Just("email".to_owned()),
        Just("NULL".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("1e308".to_owned()),
        Just("CAST(".to_owned()),
        Just("AS INTEGER".to_owned()),
        Just("LIKE '%".to_owned()),
        "[a-z_]{1,8}",
        "-?[0-9]{1,25}",
        "'[^']{0,12}'",
        "\\PC{0,6}",
    ];
    proptest::collection::vec(token, 0..14).prop_map(|t| t.join(" "))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::I64),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(Value::F64),
        ".{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytea),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_sql_and_params_never_panic(sql in sql_text(), values in proptest::collection::vec(value(), 0..4)) {
        let f = users_factory();
        block_on(async {
            let seed = f.open();
            insert(&seed, 1, "ada", "ada@x").await.unwrap();
            seed.commit().await.unwrap();
            let s = f.open();
            let params: Vec<_> = values.into_iter().filter_map(|v| param(v).ok()).collect();
            // Either outcome is fine; a panic fails the property.
            let _ = s.execute(&sql, params).await;
            let _ = s.execute_batch(&sql).await;
            // The session stays usable, and rolling back restores the committed state.
            s.rollback().await.unwrap();
            assert_eq!(name_of(&s, 1).await.as_deref(), Some("ada"));
        });
    }

    #[test]
    fn hostile_parameter_values_are_stored_verbatim(name in ".{1,60}", email in ".{1,60}") {
        let f = users_factory();
        block_on(async {
            let s = f.open();
            insert(&s, 7, &name, &email).await.unwrap();
            s.commit().await.unwrap();
            prop_assert_eq!(name_of(&f.open(), 7).await, Some(name.clone()));
            Ok(())
        })?;
    }
}
