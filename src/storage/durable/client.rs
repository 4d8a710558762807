//! The worker's side of `do://`: requests to the database's Durable Object, retried where that
//! is safe, and the isolate's ID blocks.
//!
//! Loads are idempotent and are retried on a transient failure. A commit carries an id, so a
//! retry after a lost answer is answered with the first attempt's outcome, never applied
//! twice; when every attempt fails the commit's outcome is unknown, as on `kv://`.

use super::wire::{ErrorWire, Request, Response};
use crate::{
    error::{Error, Result},
    storage::kv::backend::BoxFuture,
};
use std::{cell::RefCell, collections::HashMap, rc::Rc};

/// Why a request to the object failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// Worth retrying: the network, or an overloaded object. The request may or may not have
    /// reached the object.
    Transient(String),
    /// Not worth retrying (a missing binding, a refused request).
    Permanent(String),
}

impl TransportFailure {
    /// A Durable Object's error, by the flags it carries: `retryable` ones are retried; an
    /// `overloaded` object never is — Cloudflare asks callers not to, as retries only deepen
    /// the overload — and the message says what to do instead. For a transport of your own over
    /// a Durable Object stub.
    #[must_use]
    pub fn of_object_error(message: String, retryable: bool, overloaded: bool) -> Self {
        if overloaded {
            Self::Permanent(format!(
                "the database object is overloaded (not retried: {message}); send it fewer \
                 requests, or spread the data over several databases (do://BINDING/NAME)"
            ))
        } else if retryable {
            Self::Transient(message)
        } else {
            Self::Permanent(message)
        }
    }
}

impl std::fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(m) => write!(f, "transient failure: {m}"),
            Self::Permanent(m) => write!(f, "{m}"),
        }
    }
}

/// How a `do://` engine reaches its database object: a Durable Object stub in a Worker, the
/// object itself in tests.
pub trait ObjectTransport {
    /// Sends one request (JSON) to the object; its answer (JSON).
    fn send(&self, body: String) -> BoxFuture<'_, std::result::Result<String, TransportFailure>>;
    /// Milliseconds since the Unix epoch (the isolate cache's clock).
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds (retry backoff).
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()>;
}

/// Attempts of a request before it gives up.
const ATTEMPTS: u32 = 4;
/// IDs an isolate reserves at a time per sequence.
pub(crate) const ID_BLOCK: u32 = 16;

/// The `do://` side of an engine.
pub(crate) struct DurableStorage {
    pub transport: Rc<dyn ObjectTransport>,
    pub cache_ttl_ms: u64,
    /// Sequence name → the next ID of this isolate's block, and the block's end.
    ids: RefCell<HashMap<String, (i64, i64)>>,
}

impl std::fmt::Debug for DurableStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStorage")
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .finish_non_exhaustive()
    }
}

impl DurableStorage {
    pub fn new(transport: Rc<dyn ObjectTransport>, cache_ttl_ms: u64) -> Self {
        Self {
            transport,
            cache_ttl_ms,
            ids: RefCell::new(HashMap::new()),
        }
    }

    /// Sends `request`, retrying transient failures with backoff (100, 200, 400 ms): a load is
    /// idempotent, a commit's id makes a repeat harmless, and a repeated ID reservation only
    /// leaves a gap.
    ///
    /// # Errors
    /// [`Error::Storage`] naming what failed; for a commit whose every attempt failed,
    /// "commit outcome unknown".
    pub async fn call(&self, request: &Request) -> Result<Response> {
        let body = serde_json::to_string(request).map_err(|e| Error::Storage {
            message: format!("cannot encode a request to the database object: {e}"),
        })?;
        let commit = matches!(request, Request::Commit { .. });
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.transport.send(body.clone()).await {
                Ok(answer) => {
                    return serde_json::from_str(&answer).map_err(|e| {
                        let outcome = if commit {
                            "commit outcome unknown: "
                        } else {
                            ""
                        };
                        Error::Storage {
                            message: format!(
                                "{outcome}the database object answered something that is not \
                                 a gluebind answer ({e}): is the Durable Object class \
                                 GluebindDatabase?"
                            ),
                        }
                    })
                }
                Err(TransportFailure::Transient(_)) if attempt < ATTEMPTS => {
                    self.transport.sleep(100 << (attempt - 1)).await;
                }
                Err(failure) => {
                    let message = if commit {
                        format!(
                            "commit outcome unknown: the database object did not answer \
                             ({failure}, after {attempt} attempt(s)); the commit may still be \
                             applied — re-read before retrying"
                        )
                    } else {
                        format!("the database object did not answer ({failure})")
                    };
                    return Err(Error::Storage { message });
                }
            }
        }
    }

    /// The next ID of sequence `name`, from this isolate's block (reserving a new block of
    /// [`ID_BLOCK`] from the object when it is used up).
    ///
    /// # Errors
    /// [`Error::Storage`] when the object cannot be reached or the sequence is exhausted.
    pub async fn next_id(&self, name: &str) -> Result<i64> {
        // Concurrent sessions may reserve at once, and their answers arrive in any order: a
        // block is used only when the current one is used up and it lies beyond it, so IDs
        // increase within the isolate (a block that arrives too late is left unused: a gap).
        for _ in 0..ATTEMPTS {
            if let Some(id) = self.take_id(name) {
                return Ok(id);
            }
            let answer = self
                .call(&Request::Ids {
                    name: name.to_owned(),
                    count: ID_BLOCK,
                })
                .await?;
            match answer {
                Response::Ids { first, count } => {
                    let end = first.saturating_add(i64::from(count));
                    let mut ids = self.ids.borrow_mut();
                    let slot = ids.entry(name.to_owned()).or_insert((first, first));
                    if slot.0 >= slot.1 && first >= slot.1 {
                        *slot = (first, end);
                    }
                }
                Response::Failed { error } => return Err(Error::from(error)),
                other => return Err(unexpected(&other)),
            }
        }
        Err(Error::Storage {
            message: format!(
                "no ID of sequence {name} after {ATTEMPTS} reservations (other sessions of \
                 this isolate took them): try again"
            ),
        })
    }

    fn take_id(&self, name: &str) -> Option<i64> {
        let mut ids = self.ids.borrow_mut();
        let slot = ids.get_mut(name)?;
        (slot.0 < slot.1).then(|| {
            slot.0 += 1;
            slot.0 - 1
        })
    }
}

/// An answer that does not fit the request.
pub(crate) fn unexpected(answer: &Response) -> Error {
    Error::Storage {
        message: format!("the database object gave an unexpected answer: {answer:?}"),
    }
}

/// The error of a failed answer.
pub(crate) fn failed(error: ErrorWire) -> Error {
    Error::from(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Answers every request with one failure; counts the attempts.
    struct Failing {
        failure: TransportFailure,
        attempts: Cell<u32>,
    }

    impl ObjectTransport for Failing {
        fn send(
            &self,
            _body: String,
        ) -> BoxFuture<'_, std::result::Result<String, TransportFailure>> {
            self.attempts.set(self.attempts.get() + 1);
            let failure = self.failure.clone();
            Box::pin(async move { Err(failure) })
        }
        fn now_ms(&self) -> u64 {
            0
        }
        fn sleep(&self, _ms: u64) -> BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    fn attempts(failure: TransportFailure) -> (u32, String) {
        let transport = Rc::new(Failing {
            failure,
            attempts: Cell::new(0),
        });
        let storage = DurableStorage::new(transport.clone(), 0);
        let request = Request::Ids {
            name: "t".into(),
            count: 1,
        };
        let err = pollster::block_on(storage.call(&request)).unwrap_err();
        (transport.attempts.get(), err.to_string())
    }

    #[test]
    fn retryable_errors_are_retried_and_overloaded_ones_never() {
        let retryable = TransportFailure::of_object_error("reset".into(), true, false);
        assert_eq!(attempts(retryable).0, ATTEMPTS);
        // Overloaded wins over retryable: one attempt, and the message says what to do.
        let overloaded = TransportFailure::of_object_error("too many".into(), true, true);
        let (n, message) = attempts(overloaded);
        assert_eq!(n, 1);
        assert!(
            message.contains("overloaded") && message.contains("do://BINDING/NAME"),
            "{message}"
        );
        let other = TransportFailure::of_object_error("refused".into(), false, false);
        assert_eq!(attempts(other).0, 1);
    }
}
