//! A seeded, single-threaded executor with simulated time: it decides every interleaving
//! (which ready task runs next), every latency and every fault, so a run replays exactly
//! from its seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::{
    cell::{Cell, RefCell},
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap},
    future::Future,
    pin::Pin,
    rc::Rc,
    sync::{Arc, Mutex},
    task::{Context, Poll, Wake, Waker},
};

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// What happens to a task at one of its suspensions (decided when it is spawned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Runs to the end.
    Finish,
    /// Dropped at its n-th suspension (a Worker cut off: no code of it runs again).
    Drop(u32),
    /// Never polled again from its n-th suspension, but kept alive (an abandoned future).
    Abandon(u32),
    /// Not polled for `ms` from its n-th suspension (a Worker suspended), then goes on.
    Stall(u32, u64),
}

struct Slot {
    name: String,
    task: Option<Task>,
    fate: Fate,
    suspensions: u32,
    /// Not polled before this time (a stall).
    held_until: u64,
    abandoned: bool,
}

struct ReadySet(Mutex<BTreeSet<usize>>);

struct TaskWaker {
    id: usize,
    ready: Arc<ReadySet>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.0.lock().unwrap().insert(self.id);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.0.lock().unwrap().insert(self.id);
    }
}

/// The simulation: clock, randomness, timed events and tasks.
pub struct Sim {
    now: Cell<u64>,
    /// Polls so far: a total order of everything that happened.
    step: Cell<u64>,
    rng: RefCell<ChaCha8Rng>,
    events: RefCell<BinaryHeap<Reverse<(u64, u64)>>>,
    handlers: RefCell<HashMap<u64, Box<dyn FnOnce()>>>,
    next_event: Cell<u64>,
    tasks: RefCell<Vec<Slot>>,
    spawned: RefCell<Vec<(String, Task, Fate)>>,
    ready: Arc<ReadySet>,
    pub trace: RefCell<Vec<String>>,
}

/// What a run left behind.
pub struct Ended {
    /// Tasks that neither finished nor were dropped or abandoned by their fate.
    pub hung: Vec<String>,
}

impl Sim {
    pub fn new(seed: u64) -> Rc<Self> {
        Rc::new(Self {
            now: Cell::new(1_700_000_000_000),
            step: Cell::new(0),
            rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
            events: RefCell::new(BinaryHeap::new()),
            handlers: RefCell::new(HashMap::new()),
            next_event: Cell::new(0),
            tasks: RefCell::new(Vec::new()),
            spawned: RefCell::new(Vec::new()),
            ready: Arc::new(ReadySet(Mutex::new(BTreeSet::new()))),
            trace: RefCell::new(Vec::new()),
        })
    }

    pub fn now(&self) -> u64 {
        self.now.get()
    }

    pub fn step(&self) -> u64 {
        self.step.get()
    }

    /// A number in `range`.
    pub fn pick(&self, range: std::ops::Range<u64>) -> u64 {
        self.rng.borrow_mut().gen_range(range)
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        self.rng.borrow_mut().gen_bool(p)
    }

    pub fn log(&self, line: String) {
        let line = format!(
            "{:>9} ms #{:<6} {line}",
            self.now() % 10_000_000,
            self.step()
        );
        self.trace.borrow_mut().push(line);
    }

    /// Runs `f` at `at` (ms).
    pub fn at(&self, at: u64, f: impl FnOnce() + 'static) {
        let id = self.next_event.get();
        self.next_event.set(id + 1);
        self.events
            .borrow_mut()
            .push(Reverse((at.max(self.now()), id)));
        self.handlers.borrow_mut().insert(id, Box::new(f));
    }

    /// A future that finishes after `ms` with what `f` returns then (an operation that takes
    /// effect when it completes, even if nobody awaits it any more).
    pub fn after<T: 'static>(
        self: &Rc<Self>,
        ms: u64,
        f: impl FnOnce() -> T + 'static,
    ) -> impl Future<Output = T> + 'static {
        let slot: Rc<RefCell<(Option<T>, Option<Waker>)>> = Rc::new(RefCell::new((None, None)));
        let filled = Rc::clone(&slot);
        self.at(self.now() + ms, move || {
            let value = f();
            let mut s = filled.borrow_mut();
            s.0 = Some(value);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        std::future::poll_fn(move |cx| {
            let mut s = slot.borrow_mut();
            match s.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    pub fn sleep(self: &Rc<Self>, ms: u64) -> impl Future<Output = ()> + 'static {
        self.after(ms, || ())
    }

    /// Adds a task (it starts at the next step).
    pub fn spawn(&self, name: String, fate: Fate, task: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push((name, Box::pin(task), fate));
    }

    fn adopt(&self) {
        let new: Vec<_> = self.spawned.borrow_mut().drain(..).collect();
        for (name, task, fate) in new {
            let mut tasks = self.tasks.borrow_mut();
            let id = tasks.len();
            tasks.push(Slot {
                name,
                task: Some(task),
                fate,
                suspensions: 0,
                held_until: 0,
                abandoned: false,
            });
            self.ready.0.lock().unwrap().insert(id);
        }
    }

    /// Runs until every task finished (or was dropped or abandoned by its fate), or until
    /// `limit_ms` of simulated time: what is still running then hung.
    pub fn run(self: &Rc<Self>, limit_ms: u64) -> Ended {
        let deadline = self.now() + limit_ms;
        loop {
            self.adopt();
            let ready: Vec<usize> = {
                let now = self.now();
                let tasks = self.tasks.borrow();
                self.ready
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .copied()
                    .filter(|id| {
                        tasks[*id].task.is_some()
                            && !tasks[*id].abandoned
                            && tasks[*id].held_until <= now
                    })
                    .collect()
            };
            if let Some(&id) = ready.get(self.pick(0..ready.len().max(1) as u64) as usize) {
                self.ready.0.lock().unwrap().remove(&id);
                self.poll(id);
                continue;
            }
            // Nothing ready: time moves to the next event (a completion, a timer, or the end
            // of a stall).
            let next_event = self.events.borrow().peek().map(|Reverse((t, _))| *t);
            let next_release = {
                let now = self.now();
                let tasks = self.tasks.borrow();
                let ready = self.ready.0.lock().unwrap();
                ready
                    .iter()
                    .filter(|id| tasks[**id].task.is_some() && !tasks[**id].abandoned)
                    .map(|id| tasks[*id].held_until)
                    .filter(|t| *t > now)
                    .min()
            };
            let next = match (next_event, next_release) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > deadline {
                break;
            }
            self.now.set(self.now().max(next));
            if next_event == Some(next) {
                let Reverse((_, id)) = self.events.borrow_mut().pop().expect("peeked");
                let handler = self.handlers.borrow_mut().remove(&id).expect("registered");
                handler();
            }
        }
        let tasks = self.tasks.borrow();
        Ended {
            hung: tasks
                .iter()
                .filter(|t| t.task.is_some() && !t.abandoned)
                .map(|t| t.name.clone())
                .collect(),
        }
    }

    fn poll(self: &Rc<Self>, id: usize) {
        self.step.set(self.step() + 1);
        let mut task = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks[id].task.take() {
                Some(t) => t,
                None => return,
            }
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: Arc::clone(&self.ready),
        }));
        let done = task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut tasks = self.tasks.borrow_mut();
        let slot = &mut tasks[id];
        if done {
            return; // dropped: finished
        }
        slot.suspensions += 1;
        match slot.fate {
            Fate::Drop(n) if slot.suspensions == n => {
                let name = slot.name.clone();
                drop(tasks);
                self.log(format!("{name}: cut off (dropped)"));
                drop(task);
            }
            Fate::Abandon(n) if slot.suspensions == n => {
                slot.abandoned = true;
                slot.task = Some(task);
                let name = slot.name.clone();
                drop(tasks);
                self.log(format!("{name}: abandoned (never polled again)"));
            }
            Fate::Stall(n, ms) if slot.suspensions == n => {
                slot.held_until = self.now() + ms;
                slot.task = Some(task);
                let name = slot.name.clone();
                drop(tasks);
                self.log(format!("{name}: suspended for {ms} ms"));
            }
            _ => slot.task = Some(task),
        }
    }

    /// Drops every task still held (abandoned ones included), at the end of a run.
    pub fn clear(&self) {
        let tasks: Vec<Option<Task>> = self
            .tasks
            .borrow_mut()
            .iter_mut()
            .map(|t| t.task.take())
            .collect();
        drop(tasks);
        self.events.borrow_mut().clear();
        self.handlers.borrow_mut().clear();
    }
}
