//! Group commit: the commits an isolate's sessions make while one of its requests to the
//! database object is out wait for it, and go together in one [`Request::Batch`], which the
//! object answers commit by commit, each as if it came alone.
//!
//! A Worker may not wait for a promise another request resolves (the runtime cancels such a
//! request as hung), so a waiting commit looks for its answer on a timer of its own, and the
//! first waiting commit to see nothing out sends the queue. A commit waits at most
//! [`BATCH_WAIT_MS`] for the request out, then goes anyway with those waiting beside it (a far
//! object delays a commit by that much, not by a round trip); a request out for longer than
//! [`GIVE_UP_MS`] is no longer waited for (its session's request may have been cancelled
//! without a trace), and the commits it carries go again ([`Sent::Orphaned`]).
//!
//! Each answer of a batch brings the changes since its own commit's cache version, so the
//! answer of the k-th commit repeats those of the k − 1 before it (at most 31 × 32 / 2 rows for
//! a batch of [`MAX_COMMITS`] one-row commits of an isolate whose cache was current).
//!
//! [`Request::Batch`]: super::wire::Request::Batch

use super::{
    client::{ObjectTransport, TransportFailure},
    wire::{ErrorWire, Response},
};
use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
};

/// The object's [`super::wire::WIRE`] from which it reads batches.
pub(crate) const BATCH_WIRE: u32 = 3;
/// Most milliseconds a commit waits for the request out before it goes (see the module
/// documentation).
const BATCH_WAIT_MS: u64 = 2;
/// How often a waiting commit looks for its answer (milliseconds).
const POLL_MS: u64 = 1;
/// After this many milliseconds, a request out is not waited for any more (long enough for
/// an evicted object to load a large database: a commit sent again then and refused has an
/// unknown outcome, where waiting would have told it).
pub(crate) const GIVE_UP_MS: u64 = 10_000;
/// Most commits in one batch, and most bytes (a batch is one RPC argument).
const MAX_COMMITS: usize = 32;
const MAX_BYTES: usize = 512 << 10;

/// Why one exchange with the object gave no answer.
#[derive(Debug, Clone)]
pub(crate) enum Sent {
    /// The transport failed.
    Failed(TransportFailure),
    /// The answer is not a gluebind answer.
    Garbled(String),
    /// The object reads no batch (an older gluebind): it refused this one unread, and the
    /// commit goes again alone.
    Unbatched,
    /// The request that carried the commit was not answered and may still reach the object
    /// (its session's request ended first, or it was given up on): the commit goes again, and
    /// a refusal of that attempt no longer tells its outcome.
    Orphaned,
}

/// The isolate's commits on their way to the object.
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    /// Requests out: their number and when they went.
    out: RefCell<Vec<(u64, u64)>>,
    sends: Cell<u64>,
    /// The last request out carried several commits: the isolate is busy.
    busy: Cell<bool>,
    /// Commits waiting to be sent: ticket, request.
    waiting: RefCell<Vec<(u64, String)>>,
    /// Answers of commits sent, by ticket, until their session takes them.
    answered: RefCell<HashMap<u64, std::result::Result<Response, Sent>>>,
    /// Tickets whose session still waits.
    live: RefCell<HashSet<u64>>,
    tickets: Cell<u64>,
}

impl Batcher {
    /// Sends the commit `body` with the commits other sessions of the isolate send meanwhile,
    /// and gives its answer.
    pub async fn send(
        &self,
        transport: &dyn ObjectTransport,
        body: &str,
    ) -> std::result::Result<Response, Sent> {
        let ticket = self.tickets.get() + 1;
        self.tickets.set(ticket);
        self.waiting.borrow_mut().push((ticket, body.to_owned()));
        self.live.borrow_mut().insert(ticket);
        let _waiting = Waiting {
            batcher: self,
            ticket,
        };
        // A busy isolate's commit first lets the commits right behind it join (one turn of
        // the event loop) when nothing is out.
        let mut gathered = !self.busy.get();
        let mut polls = 0;
        loop {
            if let Some(answer) = self.answered.borrow_mut().remove(&ticket) {
                return answer;
            }
            let queued = self.waiting.borrow().iter().any(|(t, _)| *t == ticket);
            let out = self.out_at(transport.now_ms());
            if queued && !out && !gathered {
                gathered = true;
                transport.sleep(0).await;
                continue;
            }
            if queued && (!out || polls >= BATCH_WAIT_MS / POLL_MS) {
                self.lead(transport, ticket).await;
                continue;
            }
            if !queued && polls >= GIVE_UP_MS / POLL_MS {
                // Taken by a request that has not come back.
                return Err(Sent::Orphaned);
            }
            transport.sleep(POLL_MS).await;
            polls += 1;
        }
    }

    /// Whether a request is out at `now` (one out for longer than [`GIVE_UP_MS`] is not).
    fn out_at(&self, now: u64) -> bool {
        let mut out = self.out.borrow_mut();
        out.retain(|(_, since)| now.saturating_sub(*since) < GIVE_UP_MS);
        !out.is_empty()
    }

    /// Sends commit `own` with the others waiting (up to [`MAX_COMMITS`] and [`MAX_BYTES`]),
    /// and leaves each its answer.
    async fn lead(&self, transport: &dyn ObjectTransport, own: u64) {
        let taken: Vec<(u64, String)> = {
            let mut waiting = self.waiting.borrow_mut();
            let mine = waiting.iter().position(|(t, _)| *t == own).expect("queued");
            let mut taken = vec![waiting.remove(mine)];
            // The longest prefix of the others that fits beside it.
            let fits = waiting
                .iter()
                .take(MAX_COMMITS - 1)
                .scan(taken[0].1.len(), |bytes, (_, body)| {
                    *bytes += body.len();
                    (*bytes <= MAX_BYTES).then_some(())
                })
                .count();
            taken.extend(waiting.drain(..fits));
            taken
        };
        let send = self.sends.get() + 1;
        self.sends.set(send);
        self.out.borrow_mut().push((send, transport.now_ms()));
        self.busy.set(taken.len() > 1);
        let mut leading = Leading {
            batcher: self,
            send,
            own,
            tickets: taken.iter().map(|(t, _)| *t).collect(),
        };
        let n = taken.len();
        let answers: Vec<std::result::Result<Response, Sent>> = if n == 1 {
            let (_, body) = taken.into_iter().next().expect("one");
            vec![alone(transport, body).await]
        } else {
            let mut body =
                String::with_capacity(12 + taken.iter().map(|(_, b)| b.len() + 1).sum::<usize>());
            body.push_str("{\"batch\":[");
            for (i, (_, one)) in taken.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(one);
            }
            body.push_str("]}");
            let each = |answer: std::result::Result<Response, Sent>| vec![answer; n];
            match alone(transport, body).await {
                Ok(Response::Batch(answers)) if answers.len() == n => {
                    answers.into_iter().map(Ok).collect()
                }
                // An object that reads no batch (an older gluebind rolled back to).
                Ok(Response::Failed {
                    error: ErrorWire::Request { .. },
                    ..
                }) => each(Err(Sent::Unbatched)),
                // One failure for the whole request (the object's storage cannot be opened):
                // each commit's answer, as if it came alone.
                Ok(failed @ Response::Failed { .. }) => each(Ok(failed)),
                Ok(other) => {
                    let mut shown = format!("{other:?}");
                    if shown.len() > 200 {
                        shown = format!("{}…", shown.chars().take(200).collect::<String>());
                    }
                    each(Err(Sent::Garbled(format!(
                        "{shown} for a batch of {n} commits"
                    ))))
                }
                Err(e) => each(Err(e)),
            }
        };
        let tickets = std::mem::take(&mut leading.tickets);
        self.settle(send, tickets.into_iter().zip(answers));
    }

    /// Leaves answers for the sessions still waiting; request `send` is back.
    fn settle(
        &self,
        send: u64,
        answers: impl Iterator<Item = (u64, std::result::Result<Response, Sent>)>,
    ) {
        self.out.borrow_mut().retain(|(s, _)| *s != send);
        let live = self.live.borrow();
        let mut answered = self.answered.borrow_mut();
        for (ticket, answer) in answers {
            if live.contains(&ticket) {
                answered.insert(ticket, answer);
            }
        }
    }
}

/// One request alone, and its answer.
pub(crate) async fn alone(
    transport: &dyn ObjectTransport,
    body: String,
) -> std::result::Result<Response, Sent> {
    let answer = transport.send(body).await.map_err(Sent::Failed)?;
    serde_json::from_str(&answer).map_err(|e| Sent::Garbled(e.to_string()))
}

/// A session waiting for its commit's answer: when it is dropped (its request cancelled), its
/// commit leaves the queue and its answer is not kept.
struct Waiting<'a> {
    batcher: &'a Batcher,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let b = self.batcher;
        b.live.borrow_mut().remove(&self.ticket);
        b.answered.borrow_mut().remove(&self.ticket);
        b.waiting.borrow_mut().retain(|(t, _)| *t != self.ticket);
    }
}

/// The session sending a batch: when it is dropped before the answer (its request cancelled),
/// the other commits of the batch go again ([`Sent::Orphaned`]).
struct Leading<'a> {
    batcher: &'a Batcher,
    send: u64,
    own: u64,
    tickets: Vec<u64>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let own = self.own;
        let others = std::mem::take(&mut self.tickets)
            .into_iter()
            .filter(|t| *t != own)
            .map(|t| (t, Err(Sent::Orphaned)));
        self.batcher.settle(self.send, others);
    }
}
