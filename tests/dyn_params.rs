//! `Session::execute_dyn`: parameters from dynamically typed callers (the JS package) bind like
//! SQL literals — converted to the column's type — while typed values bind exactly.

mod common;
use common::*;
use gluebind::{DynParam, Error, Value};

const TYPES: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, f FLOAT NULL, i8 INT8 NULL,
    u64 UINT64 NULL, dec DECIMAL NULL, d DATE NULL, ts TIMESTAMP NULL, u UUID NULL,
    b BYTEA NULL, txt TEXT NULL)";

async fn stored(
    s: &gluebind::Session,
    column: &str,
    id: i64,
    p: DynParam,
) -> gluebind::Result<Value> {
    s.execute_dyn(
        &format!("INSERT INTO t (id, {column}) VALUES (?, ?)"),
        vec![id.into(), p],
    )
    .await?;
    let rows = s
        .execute_dyn(
            &format!("SELECT {column} FROM t WHERE id = $1"),
            vec![id.into()],
        )
        .await?
        .into_rows()?;
    Ok(rows.get(0).unwrap().values()[0].clone())
}

#[test]
fn numbers_and_strings_convert_to_the_column_type() {
    let s = factory().open();
    block_on(async {
        s.execute_batch(TYPES).await.unwrap();
        assert_eq!(
            stored(&s, "f", 1, 3i64.into()).await.unwrap(),
            Value::F64(3.0)
        );
        assert_eq!(
            stored(&s, "i8", 2, (-3i64).into()).await.unwrap(),
            Value::I8(-3)
        );
        let max = DynParam::number(u64::MAX.to_string()).unwrap();
        assert_eq!(
            stored(&s, "u64", 3, max).await.unwrap(),
            Value::U64(u64::MAX)
        );
        let exact = DynParam::number("12345678901234567890.125").unwrap();
        assert_eq!(
            stored(&s, "dec", 4, exact).await.unwrap().to_string_lossy(),
            "12345678901234567890.125"
        );
        assert!(matches!(
            stored(&s, "d", 5, "2024-02-29".into()).await.unwrap(),
            Value::Date(_)
        ));
        assert!(matches!(
            stored(&s, "ts", 6, "2024-01-02T03:04:05.678Z".into())
                .await
                .unwrap(),
            Value::Timestamp(_)
        ));
        assert!(matches!(
            stored(&s, "u", 7, "936da01f-9abd-4d9d-80c7-02af85c822a8".into())
                .await
                .unwrap(),
            Value::Uuid(_)
        ));
        assert_eq!(
            stored(&s, "b", 8, Value::Bytea(vec![0, 255]).into())
                .await
                .unwrap(),
            Value::Bytea(vec![0, 255])
        );
        assert_eq!(
            stored(&s, "txt", 9, "it's $1 ?".into()).await.unwrap(),
            Value::Str("it's $1 ?".into())
        );
        // Mismatches are errors, never silent conversions.
        assert!(stored(&s, "i8", 10, 1.5f64.into()).await.is_err());
        assert!(stored(&s, "txt", 11, 5i64.into()).await.is_err());
    });
}

trait Lossy {
    fn to_string_lossy(&self) -> String;
}
impl Lossy for Value {
    fn to_string_lossy(&self) -> String {
        match self {
            Value::Decimal(d) => d.to_string(),
            other => format!("{other:?}"),
        }
    }
}

#[test]
fn placeholder_mismatches_are_sql_errors_and_change_nothing() {
    let f = users_factory();
    let s = f.open();
    block_on(async {
        let err = s
            .execute_dyn(
                "INSERT INTO users VALUES ($1, $2, $3)",
                vec![1i64.into(), "a".into()],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Sql { .. }), "{err}");
        assert!(!s.is_dirty());
        let err = s
            .execute_dyn("INSERT INTO users VALUES (1, 'a', 'b'); SELECT 1", vec![])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("execute_batch"), "{err}");
    });
}

#[test]
fn unique_violations_keep_their_variant() {
    let f = users_factory();
    let s = f.open();
    block_on(async {
        let insert = "INSERT INTO users VALUES (?, ?, ?)";
        s.execute_dyn(insert, vec![1i64.into(), "a".into(), "a@x".into()])
            .await
            .unwrap();
        let err = s
            .execute_dyn(insert, vec![2i64.into(), "b".into(), "a@x".into()])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unique { table, column, .. } if table == "users" && column == "email"),
            "{err:?}"
        );
    });
}
