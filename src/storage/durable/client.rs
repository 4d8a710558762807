//! The worker's side of `do://`: requests to the database's Durable Object, retried where that
//! is safe, and the isolate's ID blocks.
//!
//! Loads are idempotent and are retried on a transient failure. A commit carries an id, so a
//! retry after a lost answer is answered with the first attempt's outcome, never applied
//! twice; when every attempt fails the commit's outcome is unknown, as on `kv://`.

use super::{
    batch::{alone, Batcher, Sent, BATCH_WIRE},
    wire::{ErrorWire, Request, Response},
};
use crate::{
    error::{Error, Result},
    storage::kv::backend::BoxFuture,
};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
};

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
    /// Waits `ms` milliseconds (retry backoff, and a commit waiting for its batch). It must
    /// yield to the other tasks of the isolate at least once, also for 0 ms.
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()>;
}

/// Attempts of a request before it gives up.
const ATTEMPTS: u32 = 4;
/// IDs an isolate reserves at a time per sequence, at first and after a quiet while.
pub(crate) const ID_BLOCK: u32 = 16;
/// Most IDs an isolate reserves at a time: a busy isolate doubles its block up to this.
pub(crate) const ID_BLOCK_MAX: u32 = 1024;
/// A block used up within this many milliseconds of its reservation makes the next one twice
/// as large; each such while more halves it, down to [`ID_BLOCK`].
const ID_BLOCK_BUSY_MS: u64 = 1000;
/// How long another session's reservation is waited for before a waiting session takes over
/// (its request may never settle), and how often a waiting session looks (milliseconds).
const ID_WAIT_MS: u64 = 2000;
const ID_POLL_MS: u64 = 1;

/// One ID sequence of an isolate: the block it hands out, and whether a reservation is in
/// flight (one at a time: concurrent sessions wait for it instead of each reserving a block
/// that all but one would leave unused).
#[derive(Debug, Default)]
struct Sequence {
    next: i64,
    end: i64,
    /// Size of the next reservation.
    block: u32,
    /// When the current block was reserved.
    reserved_at: u64,
    /// The reservation in flight: its number and when it started.
    reserving: Option<(u64, u64)>,
    /// Reservations started so far (numbers them).
    reservations: u64,
}

impl Sequence {
    /// The number of the reservation in flight, unless given up on at `now`.
    fn reserving_at(&self, now: u64) -> Option<u64> {
        self.reserving
            .filter(|(_, since)| now.saturating_sub(*since) < ID_WAIT_MS)
            .map(|(number, _)| number)
    }

    /// The size of the next block at `now`, after the current one was used up.
    fn next_block(&self, now: u64) -> u32 {
        let quiet = now.saturating_sub(self.reserved_at) / ID_BLOCK_BUSY_MS;
        match self.block {
            0 => ID_BLOCK,
            b if quiet == 0 => (b * 2).min(ID_BLOCK_MAX),
            b => (b >> quiet.min(8)).max(ID_BLOCK),
        }
    }
}

/// The `do://` side of an engine.
pub(crate) struct DurableStorage {
    pub transport: Rc<dyn ObjectTransport>,
    pub cache_ttl_ms: u64,
    /// ID sequences by name.
    ids: RefCell<HashMap<String, Sequence>>,
    /// The [`super::wire::WIRE`] of the object as last heard from (0 until it answers with
    /// one): what this isolate's requests may leave out.
    pub wire: Cell<u32>,
    /// Commits on their way to the object.
    batch: Batcher,
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
            wire: Cell::new(0),
            batch: Batcher::default(),
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
        // Refusals by an object that reads no batch (each commit then goes alone).
        let mut unbatched = 0;
        // An earlier attempt of this commit may still reach the object.
        let mut orphaned = false;
        loop {
            attempt += 1;
            let sent = match commit && self.wire.get() >= BATCH_WIRE {
                true => self.batch.send(self.transport.as_ref(), &body).await,
                false => alone(self.transport.as_ref(), body.clone()).await,
            };
            match sent {
                // Refused, but the attempt that may still arrive could be applied.
                Ok(Response::Failed { error, .. }) if orphaned => {
                    return Err(Error::Storage {
                        message: format!(
                            "commit outcome unknown: the request that carried the commit was \
                             not answered and may still reach the database object, which \
                             refused a second attempt ({}) — re-read before retrying",
                            Error::from(error)
                        ),
                    });
                }
                Ok(answer) => {
                    match &answer {
                        Response::Loaded(loaded) => self.wire.set(loaded.wire),
                        Response::Committed { wire, .. } => self.wire.set(*wire),
                        _ => {}
                    }
                    return Ok(answer);
                }
                Err(Sent::Unbatched) if unbatched < ATTEMPTS => {
                    // Nothing was applied: again at once, alone, not counted as an attempt.
                    self.wire.set(0);
                    (attempt, unbatched) = (attempt - 1, unbatched + 1);
                }
                Err(Sent::Orphaned) if attempt < ATTEMPTS => orphaned = true,
                Err(Sent::Garbled(e)) => {
                    let outcome = if commit {
                        "commit outcome unknown: "
                    } else {
                        ""
                    };
                    return Err(Error::Storage {
                        message: format!(
                            "{outcome}the database object answered something that is not a \
                             gluebind answer ({e}): is the Durable Object class \
                             GluebindDatabase?"
                        ),
                    });
                }
                Err(Sent::Failed(TransportFailure::Transient(_))) if attempt < ATTEMPTS => {
                    self.transport.sleep(100 << (attempt - 1)).await;
                }
                Err(Sent::Unbatched) if !orphaned => {
                    return Err(Error::Storage {
                        message: format!(
                            "the database object refused {unbatched} batches of commits \
                             unread (an older gluebind) while newer answers said it reads \
                             them; nothing was applied — try again"
                        ),
                    });
                }
                Err(failure) => {
                    let failure = match failure {
                        Sent::Failed(failure) => failure.to_string(),
                        Sent::Unbatched => "it reads no batch".to_owned(),
                        _ => "the requests that carried the commit were not answered".to_owned(),
                    };
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

    /// The next ID of sequence `name`, from this isolate's block (reserving a new block from
    /// the object when it is used up: [`ID_BLOCK`] IDs, twice as many each time a block lasted
    /// less than [`ID_BLOCK_BUSY_MS`], up to [`ID_BLOCK_MAX`]).
    ///
    /// # Errors
    /// [`Error::Storage`] when the object cannot be reached or the sequence is exhausted.
    pub async fn next_id(&self, name: &str) -> Result<i64> {
        let mut polls = 0;
        let mut waiting_for = None;
        for _ in 0..ATTEMPTS {
            if let Some(id) = self.take_id(name) {
                return Ok(id);
            }
            // Another session of the isolate is reserving: its block serves this one too. It
            // looks again on a timer of its own: a Worker may not wait for a promise another
            // request resolves (the runtime cancels such a request as hung). A reservation
            // older than ID_WAIT_MS is given up on: the first session to see that takes over
            // (the others go on waiting for it).
            loop {
                let now = self.transport.now_ms();
                let Some(number) = self.sequence(name, |s| s.reserving_at(now)) else {
                    break;
                };
                // Another session's takeover is waited for afresh.
                if waiting_for != Some(number) {
                    (waiting_for, polls) = (Some(number), 0);
                }
                if polls >= ID_WAIT_MS / ID_POLL_MS {
                    break;
                }
                self.transport.sleep(ID_POLL_MS).await;
                polls += 1;
            }
            if let Some(id) = self.take_id(name) {
                return Ok(id);
            }
            let now = self.transport.now_ms();
            let reserving = Reserving::start(self, name, now);
            let block = self.sequence(name, |s| {
                s.block = s.next_block(now);
                s.block
            });
            let answer = self
                .call(&Request::Ids {
                    name: name.to_owned(),
                    count: block,
                })
                .await;
            drop(reserving);
            match answer? {
                Response::Ids { first, count } => {
                    let end = first.saturating_add(i64::from(count));
                    let now = self.transport.now_ms();
                    self.sequence(name, |s| {
                        // IDs increase within the isolate: a block below what was handed out
                        // (possible only after a lost answer was retried) is left unused.
                        if first >= s.end {
                            (s.next, s.end, s.reserved_at) = (first, end, now);
                        }
                    });
                }
                Response::Failed { error, .. } => return Err(Error::from(error)),
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

    fn sequence<T>(&self, name: &str, f: impl FnOnce(&mut Sequence) -> T) -> T {
        let mut ids = self.ids.borrow_mut();
        f(ids.entry(name.to_owned()).or_default())
    }

    fn take_id(&self, name: &str) -> Option<i64> {
        self.sequence(name, |s| {
            (s.next < s.end).then(|| {
                s.next += 1;
                s.next - 1
            })
        })
    }
}

/// A reservation in flight: marks its sequence as reserving until dropped (answered, failed,
/// or abandoned with its session), unless another session took over meanwhile.
struct Reserving<'a> {
    storage: &'a DurableStorage,
    name: &'a str,
    number: u64,
}

impl<'a> Reserving<'a> {
    fn start(storage: &'a DurableStorage, name: &'a str, now: u64) -> Self {
        let number = storage.sequence(name, |s| {
            s.reservations += 1;
            s.reserving = Some((s.reservations, now));
            s.reservations
        });
        Self {
            storage,
            name,
            number,
        }
    }
}

impl Drop for Reserving<'_> {
    fn drop(&mut self) {
        self.storage.sequence(self.name, |s| {
            if s.reserving.is_some_and(|(n, _)| n == self.number) {
                s.reserving = None;
            }
        });
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
