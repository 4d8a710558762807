//! Pattern matching as vendor/regex/src/lib.rs promises: this workspace builds GlueSQL with
//! regex-lite, so LIKE and ILIKE match as before (Unicode text, Unicode case for ILIKE) and the
//! `~` operators take regex-lite's syntax (ASCII `\d \s \w`, ASCII case for `~*`, no `\p{..}`).

mod common;
use common::*;
use gluebind::{params, Error, Session};

/// The names of `users` matching `condition` (on `name`, with `$1` the pattern), by id.
async fn matching(s: &Session, condition: &str, pattern: &str) -> Result<Vec<String>, Error> {
    let rows = s
        .execute(
            &format!("SELECT name FROM users WHERE {condition} ORDER BY id"),
            params![pattern],
        )
        .await?
        .into_rows()
        .unwrap();
    Ok(rows
        .iter()
        .map(|r| r.get::<String>("name").unwrap())
        .collect())
}

async fn seeded() -> Session {
    let s = users_factory().open();
    for (id, name) in [
        (1, "Ada"),
        (2, "Émile"),
        (3, "émile"),
        (4, "x_1"),
        (5, "a.c"),
    ] {
        insert(&s, id, name, &format!("{id}@x")).await.unwrap();
    }
    s
}

#[test]
fn like_and_ilike_match_unicode_text_and_case() {
    block_on(async {
        let s = seeded().await;
        assert_eq!(
            matching(&s, "name LIKE $1", "%mile").await.unwrap(),
            ["Émile", "émile"]
        );
        assert_eq!(matching(&s, "name LIKE $1", "É%").await.unwrap(), ["Émile"]);
        assert_eq!(
            matching(&s, "name ILIKE $1", "éMILE").await.unwrap(),
            ["Émile", "émile"],
            "ILIKE folds Unicode case (GlueSQL lowercases both sides)"
        );
        assert_eq!(
            matching(&s, "name LIKE $1", "_mile").await.unwrap(),
            ["Émile", "émile"]
        );
        // Regex metacharacters in a LIKE pattern are literal.
        assert_eq!(matching(&s, "name LIKE $1", "a.c").await.unwrap(), ["a.c"]);
        assert_eq!(
            matching(&s, "name LIKE $1", "x\\_%").await.unwrap(),
            Vec::<String>::new()
        );
    });
}

#[test]
fn tilde_operators_take_regex_lite_syntax() {
    block_on(async {
        let s = seeded().await;
        assert_eq!(matching(&s, "name ~ $1", "^[A-Z]").await.unwrap(), ["Ada"]);
        assert_eq!(
            matching(&s, "name ~ $1", r"^\w+$").await.unwrap(),
            ["Ada", "x_1"],
            "\\w is ASCII"
        );
        assert_eq!(matching(&s, "name ~ $1", r"\d").await.unwrap(), ["x_1"]);
        assert_eq!(
            matching(&s, "name ~ $1", "^[^a-z]mile$").await.unwrap(),
            ["Émile", "émile"]
        );
        assert_eq!(matching(&s, "name ~* $1", "^ADA$").await.unwrap(), ["Ada"]);
        assert_eq!(
            matching(&s, "name ~* $1", "^ÉMILE$").await.unwrap(),
            ["Émile"],
            "~* ignores ASCII case only"
        );
        let err = matching(&s, "name ~ $1", r"\p{Lu}").await.unwrap_err();
        assert!(
            err.to_string().contains("invalid regular expression"),
            "a Unicode class is refused with GlueSQL's error: {err}"
        );
    });
}
