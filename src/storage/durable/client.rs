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
    /// Waits `ms` milliseconds (retry backoff).
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
    batch: Batch,
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
            batch: Batch::default(),
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
            let sent = match commit && self.wire.get() >= BATCH_WIRE {
                true => self.send_batched(&body).await,
                false => self.send_alone(body.clone()).await,
            };
            match sent {
                Ok(answer) => {
                    match &answer {
                        Response::Loaded(loaded) => self.wire.set(loaded.wire),
                        Response::Committed { wire, .. } => self.wire.set(*wire),
                        _ => {}
                    }
                    return Ok(answer);
                }
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
                Err(Sent::Failed(failure)) => {
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

    /// One request alone, and its answer.
    async fn send_alone(&self, body: String) -> std::result::Result<Response, Sent> {
        let answer = self.transport.send(body).await.map_err(Sent::Failed)?;
        serde_json::from_str(&answer).map_err(|e| Sent::Garbled(e.to_string()))
    }

    /// A commit's request, sent with the commits other sessions of the isolate send meanwhile
    /// (group commit): while one request to the object is out, the commits that come wait for
    /// it, and the first of them to see it answered sends them all in one [`Request::Batch`].
    /// The object answers each as if it came alone; a waiting session looks on a timer of its
    /// own (see [`DurableStorage::next_id`]), and sends its commit itself when the request out
    /// is not answered within [`ID_WAIT_MS`] (its id makes that safe).
    async fn send_batched(&self, body: &str) -> std::result::Result<Response, Sent> {
        let ticket = self.batch.enqueue(body);
        let _waiting = Waiting {
            batch: &self.batch,
            ticket,
        };
        let mut polls = 0;
        loop {
            if let Some(answer) = self.batch.answered.borrow_mut().remove(&ticket) {
                return answer;
            }
            if self.batch.out.get() == 0 || polls >= BATCH_WAIT_MS / ID_POLL_MS {
                let taken = std::mem::take(&mut *self.batch.waiting.borrow_mut());
                if !taken.is_empty() {
                    self.lead(ticket, taken).await;
                    continue;
                }
            }
            if polls >= ID_WAIT_MS / ID_POLL_MS {
                // The request that carries this commit did not come back (its session's
                // request may have been cancelled without a trace): it goes again, alone.
                self.batch
                    .waiting
                    .borrow_mut()
                    .retain(|(t, _)| *t != ticket);
                return self.send_alone(body.to_owned()).await;
            }
            self.transport.sleep(ID_POLL_MS).await;
            polls += 1;
        }
    }

    /// Sends the commits `taken` (one alone, several as a batch) and leaves each its answer.
    async fn lead(&self, own: u64, taken: Vec<(u64, String)>) {
        self.batch.out.set(self.batch.out.get() + 1);
        let mut leading = Leading {
            batch: &self.batch,
            own,
            tickets: taken.iter().map(|(t, _)| *t).collect(),
        };
        let answers: Vec<std::result::Result<Response, Sent>> = match taken.len() {
            1 => {
                let (_, body) = taken.into_iter().next().expect("one");
                vec![self.send_alone(body).await]
            }
            n => {
                let mut body = String::with_capacity(
                    12 + taken.iter().map(|(_, b)| b.len() + 1).sum::<usize>(),
                );
                body.push_str("{\"batch\":[");
                for (i, (_, one)) in taken.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(one);
                }
                body.push_str("]}");
                match self.send_alone(body).await {
                    Ok(Response::Batch(answers)) if answers.len() == n => {
                        answers.into_iter().map(Ok).collect()
                    }
                    Ok(Response::Failed {
                        error: ErrorWire::Request { .. },
                        ..
                    }) => {
                        // An object that reads no batch (an older gluebind rolled back to):
                        // each commit goes again, alone.
                        self.wire.set(0);
                        (0..n)
                            .map(|_| {
                                Err(Sent::Failed(TransportFailure::Transient(
                                    "the database object reads no batch".into(),
                                )))
                            })
                            .collect()
                    }
                    Ok(other) => (0..n)
                        .map(|_| Err(Sent::Garbled(format!("{other:?} for a batch of {n}"))))
                        .collect(),
                    Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
                }
            }
        };
        let tickets = std::mem::take(&mut leading.tickets);
        self.batch.answer(tickets.into_iter().zip(answers));
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

/// The object's [`super::wire::WIRE`] from which it reads [`Request::Batch`].
const BATCH_WIRE: u32 = 3;
/// Most milliseconds a commit waits for the request out before it goes (with the commits
/// waiting beside it) while that one is still out: where the object is far, a commit is
/// delayed by this much at most, not by a whole round trip.
const BATCH_WAIT_MS: u64 = 2;

/// Why one exchange with the object gave no answer.
#[derive(Debug, Clone)]
enum Sent {
    Failed(TransportFailure),
    /// The answer is not a gluebind answer.
    Garbled(String),
}

/// The isolate's commits on their way to the object (see [`DurableStorage::send_batched`]).
#[derive(Debug, Default)]
struct Batch {
    /// Requests of commits out.
    out: Cell<u32>,
    /// Commits waiting to be sent: ticket, request.
    waiting: RefCell<Vec<(u64, String)>>,
    /// Answers of commits sent, by ticket, until their session takes them.
    answered: RefCell<HashMap<u64, std::result::Result<Response, Sent>>>,
    /// Tickets whose session still waits.
    live: RefCell<std::collections::HashSet<u64>>,
    tickets: Cell<u64>,
}

impl Batch {
    fn enqueue(&self, body: &str) -> u64 {
        let ticket = self.tickets.get() + 1;
        self.tickets.set(ticket);
        self.waiting.borrow_mut().push((ticket, body.to_owned()));
        self.live.borrow_mut().insert(ticket);
        ticket
    }

    /// Leaves answers for the sessions still waiting; the request out is back.
    fn answer(&self, answers: impl Iterator<Item = (u64, std::result::Result<Response, Sent>)>) {
        let live = self.live.borrow();
        let mut answered = self.answered.borrow_mut();
        for (ticket, answer) in answers {
            if live.contains(&ticket) {
                answered.insert(ticket, answer);
            }
        }
        self.out.set(self.out.get().saturating_sub(1));
    }
}

/// A session waiting for its commit's answer: when it is dropped (its request cancelled), its
/// commit leaves the queue and its answer is not kept.
struct Waiting<'a> {
    batch: &'a Batch,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.batch.live.borrow_mut().remove(&self.ticket);
        self.batch.answered.borrow_mut().remove(&self.ticket);
        self.batch
            .waiting
            .borrow_mut()
            .retain(|(t, _)| *t != self.ticket);
    }
}

/// The session sending a batch: when it is dropped before the answer (its request cancelled),
/// the other sessions of the batch learn that their commits' outcome is unknown (and retry
/// them: their ids make that safe).
struct Leading<'a> {
    batch: &'a Batch,
    own: u64,
    tickets: Vec<u64>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let own = self.own;
        self.batch.answer(
            std::mem::take(&mut self.tickets)
                .into_iter()
                .filter(|t| *t != own)
                .map(|t| {
                    (
                        t,
                        Err(Sent::Failed(TransportFailure::Transient(
                            "the request that carried this commit was cancelled".into(),
                        ))),
                    )
                }),
        );
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
