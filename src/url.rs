//! Engine URLs: which backend an engine uses and its options.

use crate::error::{Error, Result};

// For format strings.
const ACCEPTED: &str = EngineUrl::ACCEPTED_SCHEMES;

/// A parsed, validated engine URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineUrl {
    /// `memory://` or `memory://NAME`: committed data lives in this isolate's memory.
    Memory {
        /// Database name (empty for the default database).
        name: String,
    },
    /// `kv://BINDING`: committed data lives in the Workers KV namespace bound as `BINDING`.
    Kv {
        /// The KV namespace binding name (from wrangler.toml).
        binding: String,
        /// Key prefix, so several databases can share one namespace.
        prefix: String,
        /// How long the isolate cache serves data without asking KV, in seconds.
        cache_ttl_secs: u64,
        /// KV operations one session may use before gluebind refuses more.
        max_ops: u64,
    },
    /// `do://BINDING[/NAME]`: committed data lives in the Durable Object named `NAME` of the
    /// namespace bound as `BINDING` (class `GluebindDatabase`).
    Durable {
        /// The Durable Object namespace binding name (from wrangler.toml).
        binding: String,
        /// The database (the object's name); `default` when the URL names none.
        name: String,
        /// How long the isolate cache serves data without asking the object, in seconds.
        cache_ttl_secs: u64,
    },
}

fn valid_name(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl EngineUrl {
    /// The URL schemes gluebind understands, as listed in error messages.
    pub const ACCEPTED_SCHEMES: &'static str =
        "memory:// or memory://NAME, kv://BINDING[?prefix=P&cache_ttl=SECONDS&max_ops=N], \
         do://BINDING[/NAME][?cache_ttl=SECONDS]";

    /// Default isolate-cache lifetime of `kv://` engines, in seconds.
    pub const DEFAULT_CACHE_TTL_SECS: u64 = 10;

    /// Default KV-operation budget per session of `kv://` engines (Workers allow 1000 per
    /// invocation; the rest is left for the application's own calls).
    pub const DEFAULT_MAX_OPS: u64 = 900;

    /// Parses and validates an engine URL.
    ///
    /// # Errors
    /// [`Error::Config`] naming the accepted schemes when the URL is not one of them.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::config(format!(
                "engine URL {url:?} has no scheme; accepted: {ACCEPTED}"
            )));
        };
        match scheme {
            "memory" => {
                if !valid_name(rest) {
                    return Err(Error::config(format!(
                        "memory database name {rest:?} may only contain letters, digits, '_', '-' \
                         and '.'; accepted: {ACCEPTED}"
                    )));
                }
                Ok(Self::Memory {
                    name: rest.to_owned(),
                })
            }
            "kv" => Self::parse_kv(rest),
            "do" => Self::parse_durable(rest),
            other => Err(Error::config(format!(
                "unknown engine scheme {other}:// in {url:?}; accepted: {ACCEPTED}"
            ))),
        }
    }

    fn parse_kv(rest: &str) -> Result<Self> {
        let (binding, query) = rest.split_once('?').unwrap_or((rest, ""));
        if binding.is_empty() || !valid_name(binding) {
            return Err(Error::config(format!(
                "kv:// needs the KV binding name from wrangler.toml, e.g. kv://GLUEBIND_KV \
                 (got {binding:?}); accepted: {ACCEPTED}"
            )));
        }
        let mut prefix = String::new();
        let mut cache_ttl_secs = Self::DEFAULT_CACHE_TTL_SECS;
        let mut max_ops = Self::DEFAULT_MAX_OPS;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    Error::config(format!(
                        "kv:// option {key} must be a whole number, got {value:?}"
                    ))
                })
            };
            match key {
                "prefix" if valid_name(value) && !value.is_empty() => prefix = value.to_owned(),
                "prefix" => {
                    return Err(Error::config(format!(
                        "kv:// prefix {value:?} may only contain letters, digits, '_', '-' and '.'"
                    )))
                }
                "cache_ttl" => cache_ttl_secs = number()?,
                "max_ops" => {
                    max_ops = number()?;
                    if !(10..=1000).contains(&max_ops) {
                        return Err(Error::config(format!(
                            "kv:// max_ops must be between 10 and 1000 (Workers allow 1000 KV \
                             operations per invocation), got {max_ops}"
                        )));
                    }
                }
                other => {
                    return Err(Error::config(format!(
                        "unknown kv:// option {other:?}; accepted: prefix, cache_ttl, max_ops"
                    )))
                }
            }
        }
        Ok(Self::Kv {
            binding: binding.to_owned(),
            prefix,
            cache_ttl_secs,
            max_ops,
        })
    }

    fn parse_durable(rest: &str) -> Result<Self> {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (binding, name) = path.split_once('/').unwrap_or((path, "default"));
        if binding.is_empty() || !valid_name(binding) {
            return Err(Error::config(format!(
                "do:// needs the Durable Object binding name from wrangler.toml, e.g. \
                 do://GLUEBIND_DB (got {binding:?}); accepted: {ACCEPTED}"
            )));
        }
        if name.is_empty() || !valid_name(name) {
            return Err(Error::config(format!(
                "do:// database name {name:?} may only contain letters, digits, '_', '-' and \
                 '.'; accepted: {ACCEPTED}"
            )));
        }
        let mut cache_ttl_secs = Self::DEFAULT_CACHE_TTL_SECS;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "cache_ttl" => {
                    cache_ttl_secs = value.parse().map_err(|_| {
                        Error::config(format!(
                            "do:// option cache_ttl must be a whole number, got {value:?}"
                        ))
                    })?;
                }
                other => {
                    return Err(Error::config(format!(
                        "unknown do:// option {other:?}; accepted: cache_ttl"
                    )))
                }
            }
        }
        Ok(Self::Durable {
            binding: binding.to_owned(),
            name: name.to_owned(),
            cache_ttl_secs,
        })
    }

    /// The URL in canonical form (what the stats route reports as `engine`).
    #[must_use]
    pub fn as_string(&self) -> String {
        match self {
            Self::Memory { name } => format!("memory://{name}"),
            Self::Kv {
                binding, prefix, ..
            } if prefix.is_empty() => format!("kv://{binding}"),
            Self::Kv {
                binding, prefix, ..
            } => format!("kv://{binding}?prefix={prefix}"),
            Self::Durable { binding, name, .. } if name == "default" => format!("do://{binding}"),
            Self::Durable { binding, name, .. } => format!("do://{binding}/{name}"),
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
    fn kv_urls_and_options() {
        assert_eq!(
            EngineUrl::parse("kv://GLUEBIND_KV?prefix=app1&cache_ttl=0&max_ops=500").unwrap(),
            EngineUrl::Kv {
                binding: "GLUEBIND_KV".into(),
                prefix: "app1".into(),
                cache_ttl_secs: 0,
                max_ops: 500
            }
        );
        assert_eq!(EngineUrl::parse("kv://B").unwrap().as_string(), "kv://B");
        for bad in [
            "kv://",
            "kv://a/b",
            "kv://B?prefix=",
            "kv://B?cache_ttl=x",
            "kv://B?max_ops=5000",
            "kv://B?colour=red",
        ] {
            let err = EngineUrl::parse(bad).unwrap_err();
            assert_eq!(err.code(), "CONFIG", "{bad}");
        }
    }

    #[test]
    fn do_urls_and_options() {
        assert_eq!(
            EngineUrl::parse("do://GLUEBIND_DB/shop?cache_ttl=0").unwrap(),
            EngineUrl::Durable {
                binding: "GLUEBIND_DB".into(),
                name: "shop".into(),
                cache_ttl_secs: 0,
            }
        );
        let plain = EngineUrl::parse("do://DB").unwrap();
        assert_eq!(plain.as_string(), "do://DB");
        assert!(matches!(
            plain,
            EngineUrl::Durable { ref name, cache_ttl_secs, .. }
                if name == "default" && cache_ttl_secs == EngineUrl::DEFAULT_CACHE_TTL_SECS
        ));
        assert_eq!(
            EngineUrl::parse("do://DB/a").unwrap().as_string(),
            "do://DB/a"
        );
        for bad in ["do://DB/", "do://DB?cache_ttl=x", "do://DB/a b"] {
            assert_eq!(EngineUrl::parse(bad).unwrap_err().code(), "CONFIG", "{bad}");
        }
    }

    #[test]
    fn bad_urls_name_the_accepted_schemes() {
        for bad in [
            "",
            "memory",
            "postgres://x",
            "memory://a/b",
            "do://",
            "do://X/a/b",
            "MEMORY://",
        ] {
            let err = EngineUrl::parse(bad).unwrap_err();
            assert_eq!(err.code(), "CONFIG", "{bad}");
            assert!(err.to_string().contains("memory://"), "{bad}: {err}");
        }
        let err = EngineUrl::parse("do://X?prefix=p").unwrap_err();
        assert!(err.to_string().contains("cache_ttl"), "{err}");
    }
}
