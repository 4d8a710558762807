//! The demo's data: users, their validation, and paging parameters.

use crate::api::ApiError;
use gluebind::Model;
use serde::{Deserialize, Serialize};

/// Longest accepted name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest accepted email, in characters (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Largest page size.
pub const MAX_PER_PAGE: i64 = 100;
/// Page size when none is given.
pub const DEFAULT_PER_PAGE: i64 = 20;

/// A stored user: the `users` table (`id INTEGER PRIMARY KEY, name TEXT NOT NULL, email
/// TEXT NOT NULL UNIQUE`) and the API's user JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Model)]
#[gluebind(table = "users")]
pub struct User {
    /// Primary key, from the engine's `users` sequence.
    #[gluebind(primary_key)]
    pub id: i64,
    /// Display name, 1–100 characters.
    pub name: String,
    /// Unique email address.
    #[gluebind(unique)]
    pub email: String,
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// Body of `PATCH /users/{id}`: fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<String>,
}

/// Checks a name: 1–100 characters, not only whitespace, no control characters.
///
/// # Errors
/// 400 naming the rule broken.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if len > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "name must be at most {MAX_NAME} characters (got {len})"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks an email: contains `@` with text on both sides, at most 254 characters, no
/// whitespace or control characters.
///
/// # Errors
/// 400 naming the rule broken.
pub fn validate_email(email: &str) -> Result<(), ApiError> {
    let len = email.chars().count();
    if len > MAX_EMAIL {
        return Err(ApiError::bad_request(format!(
            "email must be at most {MAX_EMAIL} characters (got {len})"
        )));
    }
    let valid = match email.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty(),
        None => false,
    };
    if !valid || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request(
            "email must look like name@domain (with an '@', no spaces)",
        ));
    }
    Ok(())
}

/// Decodes a JSON body into `T`, answering 400 with serde's description when it does not fit.
///
/// # Errors
/// 400 for malformed JSON, wrong types, missing or unknown fields.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Paging parameters of `GET /users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based page number.
    pub page: i64,
    /// Items per page, 1–100.
    pub per_page: i64,
}

impl Paging {
    /// Rows to skip.
    #[must_use]
    pub fn offset(&self) -> i64 {
        // Bounded in `parse`, so this cannot overflow.
        (self.page - 1) * self.per_page
    }

    /// Parses `page` and `per_page` from a query string (other keys are ignored).
    ///
    /// # Errors
    /// 400 when a value is not an integer, `page < 1`, or `per_page` is outside 1–100.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut paging = Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let target = match key {
                "page" => &mut paging.page,
                "per_page" => &mut paging.per_page,
                _ => continue,
            };
            *target = value.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("{key} must be an integer, got {value:?}"))
            })?;
        }
        // Cap the page so the offset stays far from overflow.
        if paging.page < 1 || paging.page > i64::from(i32::MAX) {
            return Err(ApiError::bad_request(format!(
                "page must be between 1 and {}, got {}",
                i32::MAX,
                paging.page
            )));
        }
        if !(1..=MAX_PER_PAGE).contains(&paging.per_page) {
            return Err(ApiError::bad_request(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}, got {}",
                paging.per_page
            )));
        }
        Ok(paging)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("Ada").is_ok());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert_eq!(validate_name("").unwrap_err().status, 400);
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"a".repeat(101)).is_err());
        assert!(validate_name("a\u{0}b").is_err());
    }

    #[test]
    fn emails() {
        assert!(validate_email("a@b").is_ok());
        assert!(validate_email("ab").is_err());
        assert!(validate_email("@b").is_err());
        assert!(validate_email("a@").is_err());
        assert!(validate_email("a b@c").is_err());
        // 254 characters is the limit.
        assert!(validate_email(&format!("{}@b.c", "a".repeat(250))).is_ok());
        assert!(validate_email(&format!("{}@b.c", "a".repeat(251))).is_err());
    }

    #[test]
    fn paging() {
        assert_eq!(
            Paging::parse(None).unwrap(),
            Paging {
                page: 1,
                per_page: 20
            }
        );
        let p = Paging::parse(Some("page=3&per_page=7&x=1")).unwrap();
        assert_eq!((p.page, p.per_page, p.offset()), (3, 7, 14));
        for bad in [
            "page=0",
            "page=-1",
            "page=abc",
            "per_page=0",
            "per_page=101",
            "per_page=",
            "page=99999999999999999999",
            "page=4294967296",
        ] {
            assert_eq!(Paging::parse(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn decoding_rejects_unknown_fields_and_wrong_types() {
        assert!(decode::<NewUser>(br#"{"name":"a","email":"a@b"}"#).is_ok());
        for bad in [
            &br#"{"name":"a","email":"a@b","admin":true}"#[..],
            br#"{"name":1,"email":"a@b"}"#,
            br#"{"name":"a"}"#,
            br#"[]"#,
            b"not json",
            b"",
        ] {
            assert_eq!(decode::<NewUser>(bad).unwrap_err().status, 400);
        }
    }
}
