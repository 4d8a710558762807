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

/// `UserPost` → `user_post`, `HTTPLog` → `http_log` (Flask-SQLAlchemy's default table name).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_like_flask_sqlalchemy() {
        assert_eq!(snake_case("User"), "user");
        assert_eq!(snake_case("UserPost"), "user_post");
        assert_eq!(snake_case("HTTPLog"), "http_log");
        assert_eq!(snake_case("Post2Tag"), "post2_tag");
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
