//! The parsed-statement cache: SQL text is parsed once per isolate, not once per request.
//!
//! A Worker runs the same few statements over and over with different parameters, and parsing
//! is the part of a statement's preparation that does not depend on them (GlueSQL binds
//! parameters while translating the parsed statement, and plans against the session's
//! schemas), so parsing is what is cached. Bounded: texts longer than [`MAX_SQL_LEN`] are not
//! cached (one-off scripts), and a full cache starts over, which costs one parse per hot
//! statement and needs no bookkeeping per hit.

use gluesql_core::{error::Error as GlueError, parse_sql::parse, sqlparser::ast::Statement};
use std::{collections::HashMap, rc::Rc};

/// Distinct SQL texts kept.
pub const CAPACITY: usize = 256;
/// Longest SQL text kept, in bytes.
pub const MAX_SQL_LEN: usize = 4096;

/// SQL text → parsed statements.
#[derive(Default)]
pub struct StatementCache {
    parsed: HashMap<String, Rc<[Statement]>>,
    hits: u64,
}

impl StatementCache {
    /// The statements of `sql`, parsed now or earlier.
    ///
    /// # Errors
    /// GlueSQL's parse error (errors are not cached).
    pub fn parse(&mut self, sql: &str) -> Result<Rc<[Statement]>, GlueError> {
        if let Some(statements) = self.parsed.get(sql) {
            self.hits += 1;
            return Ok(Rc::clone(statements));
        }
        let statements: Rc<[Statement]> = parse(sql)?.into();
        if sql.len() <= MAX_SQL_LEN {
            if self.parsed.len() >= CAPACITY {
                self.parsed.clear();
            }
            self.parsed.insert(sql.to_owned(), Rc::clone(&statements));
        }
        Ok(statements)
    }

    /// Parses answered from the cache so far.
    #[cfg(test)]
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// SQL texts cached now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.parsed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_parsed_once_and_errors_are_not_cached() {
        let mut cache = StatementCache::default();
        let a = cache.parse("SELECT 1").unwrap();
        let b = cache.parse("SELECT 1").unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        assert_eq!((cache.hits(), cache.len()), (1, 1));
        assert!(cache.parse("SELEC 1").is_err());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bounded_by_capacity_and_text_length() {
        let mut cache = StatementCache::default();
        for i in 0..CAPACITY {
            cache.parse(&format!("SELECT {i}")).unwrap();
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.parse("SELECT 'one more'").unwrap();
        assert_eq!(cache.len(), 1, "a full cache starts over");
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_LEN));
        cache.parse(&long).unwrap();
        assert_eq!(cache.len(), 1, "long texts are not kept");
    }
}
