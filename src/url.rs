//! Engine URLs: which backend an engine uses and its options.

use crate::error::{Error, Result};

/// The URL schemes gluebind understands, in the order the docs list them.
pub const ACCEPTED_SCHEMES: &str = "memory:// or memory://NAME";

/// A parsed, validated engine URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineUrl {
    /// `memory://` or `memory://NAME`: committed data lives in this isolate's memory.
    Memory {
        /// Database name (empty for the default database).
        name: String,
    },
}

impl EngineUrl {
    /// Parses and validates an engine URL.
    ///
    /// # Errors
    /// [`Error::Config`] naming the accepted schemes when the URL is not one of them.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::config(format!(
                "engine URL {url:?} has no scheme; accepted: {ACCEPTED_SCHEMES}"
            )));
        };
        match scheme {
            "memory" => {
                if !rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    return Err(Error::config(format!(
                        "memory database name {rest:?} may only contain letters, digits, '_', '-' \
                         and '.'; accepted: {ACCEPTED_SCHEMES}"
                    )));
                }
                Ok(Self::Memory {
                    name: rest.to_owned(),
                })
            }
            "kv" | "do" => Err(Error::config(format!(
                "engine scheme {scheme}:// is not available in this version of gluebind; \
                 accepted: {ACCEPTED_SCHEMES}"
            ))),
            other => Err(Error::config(format!(
                "unknown engine scheme {other}:// in {url:?}; accepted: {ACCEPTED_SCHEMES}"
            ))),
        }
    }

    /// The URL in canonical form (what the stats route reports as `engine`).
    #[must_use]
    pub fn as_string(&self) -> String {
        match self {
            Self::Memory { name } => format!("memory://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls() {
        assert_eq!(
            EngineUrl::parse("memory://").unwrap(),
            EngineUrl::Memory {
                name: String::new()
            }
        );
        assert_eq!(
            EngineUrl::parse(" memory://cache-1 ").unwrap().as_string(),
            "memory://cache-1"
        );
    }

    #[test]
    fn bad_urls_name_the_accepted_schemes() {
        for bad in [
            "",
            "memory",
            "postgres://x",
            "memory://a/b",
            "kv://X",
            "MEMORY://",
        ] {
            let err = EngineUrl::parse(bad).unwrap_err();
            assert_eq!(err.code(), "CONFIG", "{bad}");
            assert!(err.to_string().contains("memory://"), "{bad}: {err}");
        }
    }
}
