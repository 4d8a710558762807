//! Parameters from dynamically typed callers (JavaScript, decoded JSON), bound with the
//! semantics of SQL literals.
//!
//! GlueSQL binds a typed parameter ([`crate::param`], [`crate::params!`]) exactly: an `I64`
//! fits an `INTEGER` column and nothing else, so `3` cannot go into a `FLOAT` column and
//! `"2024-01-02"` cannot go into a `DATE` column. A caller that only has "a number" or "a
//! string" (every JavaScript caller) needs what a literal written in the SQL text gets: `3`
//! and `'2024-01-02'` are converted to the column's type. [`DynParam::Number`] and
//! [`DynParam::Text`] give exactly that; [`DynParam::Value`] keeps the exact, typed binding.
//!
//! Binding happens on the token stream of GlueSQL's own SQL tokenizer: a placeholder token is
//! replaced by a number or string token (or by a typed parameter), so a value never becomes
//! SQL text and a `?` or `$1` inside a string literal, a quoted identifier or a comment is
//! never a placeholder.
//!
//! Placeholders: `$1, $2, …` (PostgreSQL style, as everywhere in gluebind), or `?` (numbered
//! left to right) and `?1, ?2, …` (D1 / SQLite style). One statement uses one style.

use crate::error::{Error, Result};
use gluesql_core::{
    prelude::Value,
    sqlparser::{
        ast::Statement as SqlStatement,
        dialect::{Dialect, PostgreSqlDialect},
        parser::Parser,
        tokenizer::{Token, TokenWithLocation, Tokenizer},
    },
    translate::ParamLiteral,
};
use std::fmt;

/// GlueSQL parses with the PostgreSQL dialect; binding parses the same way.
const DIALECT: PostgreSqlDialect = PostgreSqlDialect {};

/// Tokenizes exactly as [`PostgreSqlDialect`] does, except for `?`: sqlparser 0.52 reads `?`
/// as a PostgreSQL JSON operator there (and swallows the character after it), while any other
/// dialect reads `?` and `?12` as placeholders. The tokenizer checks the dialect's type for
/// `?` and consults these methods for everything else.
#[derive(Debug)]
struct TokenizeDialect;

impl Dialect for TokenizeDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        DIALECT.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        DIALECT.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        DIALECT.is_delimited_identifier_start(ch)
    }
    fn supports_unicode_string_literal(&self) -> bool {
        DIALECT.supports_unicode_string_literal()
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        DIALECT.is_custom_operator_part(ch)
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        DIALECT.supports_string_literal_backslash_escape()
    }
    fn supports_triple_quoted_string(&self) -> bool {
        DIALECT.supports_triple_quoted_string()
    }
    fn supports_numeric_prefix(&self) -> bool {
        DIALECT.supports_numeric_prefix()
    }
}

/// A parameter from a dynamically typed caller. Build numbers with [`DynParam::number`] (or
/// `From<i64>` / `From<f64>`), strings with `From<&str>` / `From<String>`, and anything that
/// must bind with its exact type with `From<Value>`.
///
/// ```
/// # pollster::block_on(async {
/// use gluebind::{DynParam, Engine, SessionFactory};
/// let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
/// session.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, f FLOAT, d DATE)").await?;
/// // `3` goes into the FLOAT column and the string into the DATE column, as SQL literals would.
/// session
///     .execute_dyn("INSERT INTO t VALUES (?, ?, ?)", vec![1i64.into(), 3i64.into(), "2024-01-02".into()])
///     .await?;
/// # Ok::<(), gluebind::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DynParam {
    /// A number in decimal notation (`-12`, `3.25`, `1e-7`), bound as a numeric literal:
    /// converted to the column's type (any integer width, `FLOAT`, `DECIMAL`) exactly as if it
    /// were written in the SQL text.
    Number(String),
    /// A string, bound as a quoted string literal: stored as `TEXT`, or converted to the
    /// column's type (`DATE`, `TIMESTAMP`, `TIME`, `UUID`, `DECIMAL`, `INTERVAL`, …).
    Text(String),
    /// A typed value, bound exactly as [`crate::param`] binds it (no conversion).
    Value(Value),
}

impl DynParam {
    /// A numeric parameter from its decimal notation.
    ///
    /// # Errors
    /// [`Error::Sql`] when `repr` is not a decimal number (optional `-`, digits, optional
    /// fraction and exponent).
    pub fn number(repr: impl Into<String>) -> Result<Self> {
        let repr = repr.into();
        if is_decimal_number(&repr) {
            Ok(Self::Number(repr))
        } else {
            Err(Error::sql(format!(
                "{repr:?} is not a decimal number; bind text with DynParam::Text"
            )))
        }
    }
}

impl From<i64> for DynParam {
    fn from(v: i64) -> Self {
        Self::Number(v.to_string())
    }
}

impl From<f64> for DynParam {
    /// Finite numbers bind as numeric literals (Rust's shortest round-trip notation); NaN and
    /// the infinities, which have no literal form, bind as typed `FLOAT` values.
    fn from(v: f64) -> Self {
        if v.is_finite() {
            Self::Number(v.to_string())
        } else {
            Self::Value(Value::F64(v))
        }
    }
}

impl From<&str> for DynParam {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for DynParam {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<Value> for DynParam {
    fn from(v: Value) -> Self {
        Self::Value(v)
    }
}

/// `-?(digits[.digits*] | .digits)([eE][+-]?digits)?`
fn is_decimal_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `$1`
    Dollar,
    /// `?`
    Positional,
    /// `?1`
    Numbered,
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dollar => "$1",
            Self::Positional => "?",
            Self::Numbered => "?1",
        })
    }
}

/// Parsed statements with the parameters bound, plus the typed parameters they reference
/// (as `$1…$n` placeholders for `translate_with_params`).
#[derive(Debug)]
pub(crate) struct Bound {
    pub statements: Vec<SqlStatement>,
    pub typed: Vec<ParamLiteral>,
}

fn parse_error(e: impl fmt::Display) -> Error {
    Error::sql(format!("parsing failed: {e}"))
}

/// Tokenizes `sql`, replaces each placeholder by its parameter and parses the result.
pub(crate) fn bind(sql: &str, params: Vec<DynParam>) -> Result<Bound> {
    let tokens = Tokenizer::new(&TokenizeDialect, sql)
        .tokenize_with_location()
        .map_err(parse_error)?;
    let count = params.len();
    // Parameters bound as typed values: (parameter index, its `$k` in `typed`).
    let mut typed_slots: Vec<(usize, usize)> = Vec::new();
    let mut typed: Vec<ParamLiteral> = Vec::new();
    let mut used = vec![false; count];
    let mut style: Option<Style> = None;
    let mut positional = 0usize;
    let mut out: Vec<TokenWithLocation> = Vec::with_capacity(tokens.len());

    for twl in tokens {
        let location = twl.location;
        // (style, 1-based index)
        let (this_style, index) = match &twl.token {
            Token::Placeholder(p) if p.starts_with('$') => {
                let index = p[1..]
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i > 0)
                    .ok_or_else(|| {
                        Error::sql(format!(
                        "placeholder {p} is not supported: use $1, $2, … (numbered from 1) or ?"
                    ))
                    })?;
                (Style::Dollar, index)
            }
            Token::Placeholder(p) if p == "?" => {
                positional += 1;
                (Style::Positional, positional)
            }
            Token::Placeholder(p) if p.starts_with('?') => {
                let index = p[1..]
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i > 0)
                    .ok_or_else(|| {
                        Error::sql(format!("placeholder {p} is not supported: number from ?1"))
                    })?;
                (Style::Numbered, index)
            }
            _ => {
                out.push(twl);
                continue;
            }
        };
        match style {
            None => style = Some(this_style),
            Some(s) if s != this_style => {
                return Err(Error::sql(format!(
                    "the statement mixes {s} and {this_style} placeholders; use one style"
                )))
            }
            Some(_) => {}
        }
        let slot = index - 1;
        let param = match params.get(slot) {
            Some(p) => p,
            None => {
                return Err(Error::sql(format!(
                    "the statement uses parameter {} but {count} parameter{} given",
                    placeholder_name(this_style, index),
                    if count == 1 { " was" } else { "s were" }
                )))
            }
        };
        let at = |token| TokenWithLocation { token, location };
        used[slot] = true;
        match param {
            DynParam::Number(n) => match n.strip_prefix('-') {
                // A negative number as `(-n)`, so no operator next to it can capture the sign.
                Some(abs) => out.extend([
                    at(Token::LParen),
                    at(Token::Minus),
                    at(Token::Number(abs.to_owned(), false)),
                    at(Token::RParen),
                ]),
                None => out.push(at(Token::Number(n.clone(), false))),
            },
            DynParam::Text(s) => out.push(at(Token::SingleQuotedString(s.clone()))),
            DynParam::Value(v) => {
                let k = match typed_slots.iter().find(|(i, _)| *i == slot) {
                    Some((_, k)) => *k,
                    None => {
                        typed.push(crate::value::param(v.clone())?);
                        typed_slots.push((slot, typed.len()));
                        typed.len()
                    }
                };
                out.push(at(Token::Placeholder(format!("${k}"))));
            }
        }
    }

    if let Some(unused) = used.iter().position(|u| !u) {
        if count > 0 {
            return Err(Error::sql(format!(
                "{count} parameter{} given but the statement does not use parameter {}",
                if count == 1 { " was" } else { "s were" },
                placeholder_name(style.unwrap_or(Style::Dollar), unused + 1)
            )));
        }
    }
    let statements = Parser::new(&DIALECT)
        .with_tokens_with_locations(out)
        .parse_statements()
        .map_err(parse_error)?;
    Ok(Bound { statements, typed })
}

fn placeholder_name(style: Style, index: usize) -> String {
    match style {
        Style::Dollar => format!("${index}"),
        Style::Positional => format!("#{index} (?)"),
        Style::Numbered => format!("?{index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_sql(sql: &str, params: Vec<DynParam>) -> Result<String> {
        bind(sql, params).map(|b| {
            b.statements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    #[test]
    fn numbers_are_validated() {
        for ok in [
            "0",
            "-12",
            "3.25",
            ".5",
            "5.",
            "1e-7",
            "-1.5E+10",
            "123456789012345678901234567890",
        ] {
            assert!(DynParam::number(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-", ".", "1e", "1x", "1 OR 1=1", "--1", "1e+", "0x10", "NaN",
        ] {
            assert_eq!(DynParam::number(bad).unwrap_err().code(), "SQL", "{bad}");
        }
        assert_eq!(DynParam::from(3.0f64), DynParam::Number("3".into()));
        assert!(matches!(DynParam::from(f64::NAN), DynParam::Value(Value::F64(v)) if v.is_nan()));
    }

    #[test]
    fn dollar_question_and_numbered_styles() {
        let p = || vec![DynParam::from(1i64), DynParam::from("a'b")];
        let expected = "SELECT * FROM t WHERE id = 1 AND name = 'a''b'";
        assert_eq!(
            bound_sql("SELECT * FROM t WHERE id = $1 AND name = $2", p()).unwrap(),
            expected
        );
        assert_eq!(
            bound_sql("SELECT * FROM t WHERE id = ? AND name = ?", p()).unwrap(),
            expected
        );
        assert_eq!(
            bound_sql("SELECT * FROM t WHERE id = ?1 AND name = ?2", p()).unwrap(),
            expected
        );
        assert_eq!(
            bound_sql("SELECT * FROM t WHERE name = $2 AND id = $1", p()).unwrap(),
            "SELECT * FROM t WHERE name = 'a''b' AND id = 1"
        );
    }

    #[test]
    fn placeholders_inside_literals_identifiers_and_comments_are_text() {
        let sql =
            "SELECT '?', 'it''s $1', \"col?\" FROM t -- what?\n WHERE a = ? /* $2 ? */ AND b = ?";
        let out = bound_sql(sql, vec!["x".into(), 2i64.into()]).unwrap();
        assert_eq!(
            out,
            "SELECT '?', 'it''s $1', \"col?\" FROM t WHERE a = 'x' AND b = 2"
        );
    }

    #[test]
    fn values_never_become_sql() {
        let evil = "x'); DROP TABLE t; --";
        let b = bind("INSERT INTO t VALUES (?)", vec![evil.into()]).unwrap();
        assert_eq!(b.statements.len(), 1);
        assert_eq!(
            b.statements[0].to_string(),
            "INSERT INTO t VALUES ('x''); DROP TABLE t; --')"
        );
    }

    #[test]
    fn negative_numbers_keep_their_sign() {
        assert_eq!(
            bound_sql("SELECT 5 - ?", vec![(-3i64).into()]).unwrap(),
            "SELECT 5 - (-3)"
        );
    }

    #[test]
    fn operators_next_to_question_marks() {
        assert_eq!(
            bound_sql("SELECT ? || ?", vec!["a".into(), "b".into()]).unwrap(),
            "SELECT 'a' || 'b'"
        );
        assert_eq!(
            bound_sql("SELECT ?||'b'", vec!["a".into()]).unwrap(),
            "SELECT 'a' || 'b'"
        );
        // PostgreSQL reads `||?` as one custom operator: an error, never a wrong binding.
        assert!(bind("SELECT ?||?", vec!["a".into(), "b".into()]).is_err());
    }

    #[test]
    fn typed_values_become_dollar_placeholders() {
        let b = bind(
            "SELECT ?, ?, ?",
            vec![
                Value::Bytea(vec![1]).into(),
                1i64.into(),
                Value::Bool(true).into(),
            ],
        )
        .unwrap();
        assert_eq!(b.typed.len(), 2);
        assert_eq!(b.statements[0].to_string(), "SELECT $1, 1, $2");
        // The same parameter twice: one typed slot, referenced twice.
        let b = bind("SELECT $1, $1", vec![Value::Null.into()]).unwrap();
        assert_eq!(b.typed.len(), 1);
        assert_eq!(b.statements[0].to_string(), "SELECT $1, $1");
        assert_eq!(
            bound_sql("SELECT $1, $1", vec!["z".into()]).unwrap(),
            "SELECT 'z', 'z'"
        );
    }

    #[test]
    fn count_and_style_mistakes_are_errors() {
        let e = bind("SELECT $1, $2", vec![1i64.into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("uses parameter $2 but 1 parameter was given"),
            "{e}"
        );
        let e = bind("SELECT $1", vec![1i64.into(), 2i64.into()]).unwrap_err();
        assert!(e.to_string().contains("does not use parameter $2"), "{e}");
        let e = bind("SELECT $1, ?", vec![1i64.into(), 2i64.into()]).unwrap_err();
        assert!(e.to_string().contains("mixes"), "{e}");
        let e = bind("SELECT ?, ?1", vec![1i64.into()]).unwrap_err();
        assert!(e.to_string().contains("mixes"), "{e}");
        assert!(bind("SELECT $0", vec![1i64.into()]).is_err());
        assert!(bind("SELECT $name", vec![1i64.into()]).is_err());
        assert!(bind("SELECT 'unterminated", vec![]).is_err());
        assert_eq!(
            bound_sql("SELECT 1; SELECT 2", vec![]).unwrap(),
            "SELECT 1; SELECT 2"
        );
    }
}
