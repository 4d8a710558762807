//! Optimistic concurrency for `PATCH /users/{id}`: an `ETag` per user representation and the
//! `If-Match` precondition (RFC 9110 §13.1.1, strong comparison).
//!
//! The tag is a hash of the user's JSON, so it changes whenever the stored user does; a PATCH
//! sent with the tag the client last saw is refused with 412 if the user changed since. The
//! session's commit-time conflict check closes the window between that comparison and the
//! write.

use crate::model::User;
use sha2::{Digest, Sha256};

/// The strong entity tag of `user`: `"` + 32 hex digits of SHA-256 over its JSON + `"`.
#[must_use]
pub fn of(user: &User) -> String {
    let json = serde_json::to_vec(user).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &digest[..16] {
        // Two hex digits per byte, without a String each.
        tag.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        tag.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble"));
    }
    tag.push('"');
    tag
}

/// True when the `If-Match` header value `header` is satisfied by the current tag `current`:
/// `*` or a listed strong tag equal to it (weak tags `W/"…"` never match, as RFC 9110 requires).
#[must_use]
pub fn matches(header: &str, current: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> User {
        User {
            id: 1,
            name: "Ada".into(),
            email: "ada@x".into(),
        }
    }

    #[test]
    fn the_tag_is_quoted_and_changes_with_every_field() {
        let tag = of(&ada());
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(tag, of(&ada()), "stable");
        let mut other = ada();
        other.name = "Ada L".into();
        assert_ne!(of(&other), tag);
        let mut other = ada();
        other.email = "ada@y".into();
        assert_ne!(of(&other), tag);
        let mut other = ada();
        other.id = 2;
        assert_ne!(of(&other), tag);
    }

    #[test]
    fn if_match_uses_strong_comparison_over_a_list() {
        let tag = of(&ada());
        assert!(matches(&tag, &tag));
        assert!(matches("*", &tag));
        assert!(matches(&format!("\"nope\", {tag}"), &tag));
        assert!(!matches("\"nope\"", &tag));
        assert!(!matches(&format!("W/{tag}"), &tag), "weak tags never match");
        assert!(
            !matches(tag.trim_matches('"'), &tag),
            "unquoted is not the tag"
        );
        assert!(!matches("", &tag));
    }
}
