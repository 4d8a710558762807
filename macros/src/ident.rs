//! SQL identifiers: table and column names are spliced into SQL text, so they are checked
//! here, at compile time, against a conservative alphabet.

/// Why `name` is not a usable SQL identifier, if it is not.
pub fn invalid(name: &str) -> Option<String> {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return Some("it is empty".to_owned());
    };
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return Some("it must start with an ASCII letter or `_`".to_owned());
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Some("only ASCII letters, digits and `_` are allowed".to_owned());
    }
    if name.len() > 63 {
        return Some("it is longer than 63 characters".to_owned());
    }
    None
}

/// Flask-SQLAlchemy 3's default table name (`camel_to_snake_case`): `_` before an ASCII
/// capital that follows a lowercase letter or digit, or that starts a lowercase run (not at
/// the start); then lowercase, leading `_` removed. `UserPost` → `user_post`, `FOOBar` →
/// `foo_bar`, `User2FA` → `user2_fa`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let after_lower = prev.is_ascii_lowercase() || prev.is_ascii_digit();
            let before_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if after_lower || before_lower {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out.trim_start_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_like_flask_sqlalchemy() {
        // Flask-SQLAlchemy's tests/test_table_name.py, and its regex on a few more.
        assert_eq!(snake_case("FOOBar"), "foo_bar");
        assert_eq!(snake_case("BazBar"), "baz_bar");
        assert_eq!(snake_case("RubberDuck"), "rubber_duck");
        assert_eq!(snake_case("Duck"), "duck");
        assert_eq!(snake_case("HTTPLog"), "http_log");
        assert_eq!(snake_case("User2FA"), "user2_fa");
        assert_eq!(snake_case("Post2Tag"), "post2_tag");
        assert_eq!(snake_case("ABC"), "abc");
        assert_eq!(snake_case("Snake_Case"), "snake__case");
        assert_eq!(snake_case("_Private"), "private");
        assert_eq!(snake_case("already_snake"), "already_snake");
    }

    #[test]
    fn identifiers() {
        assert!(invalid("users").is_none());
        assert!(invalid("_x1").is_none());
        assert!(invalid("").is_some());
        assert!(invalid("1x").is_some());
        assert!(invalid("a-b").is_some());
        assert!(invalid("a\"b").is_some());
        assert!(invalid("é").is_some());
    }
}
