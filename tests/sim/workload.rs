//! What the simulated users do: transfers between accounts, audits that read every balance,
//! sign-ups racing for a few emails, email changes, deletes, and schema changes — each a
//! session of one isolate, interleaved at every `.await`, some of them cut off, abandoned or
//! suspended; and slot claims (count an owner's slots, refuse at the limit, else insert),
//! whose rule only serializable isolation keeps. Every row carries the token of the commit that wrote it (`ver`/`tok`), so the
//! checker can tell afterwards which commits landed where.

use super::{
    executor::{Fate, Sim},
    kv::{Consistency, Faults, World},
};
use gluebind::{params, Engine, Session, SessionFactory};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

pub const ACCOUNTS: i64 = 4;
pub const BALANCE: i64 = 100;
pub const EMAILS: [&str; 4] = ["ada@x", "bob@x", "cy@x", "dee@x"];
/// Slots one owner may hold: a rule over several rows, which only serializable sessions keep
/// under concurrency (count, check, insert).
pub const SLOTS: i64 = 1;
pub const OWNERS: i64 = 2;

/// One run's settings, all drawn from its seed.
#[derive(Debug, Clone)]
pub struct Config {
    /// memory:// (one isolate, no KV) instead of kv://.
    pub memory: bool,
    pub isolates: usize,
    pub consistency: Consistency,
    pub faults: Faults,
    pub cache_ttl: u64,
    pub sessions: usize,
    pub restarts: bool,
    /// Chance that a session is cut off, abandoned or suspended.
    pub mishaps: f64,
}

impl Config {
    pub fn from_seed(seed: u64, sim: &Sim) -> Self {
        let isolates = [1, 1, 2, 3][sim.pick(0..4) as usize];
        let consistency = if sim.chance(0.5) {
            Consistency::Strong
        } else {
            Consistency::Eventual {
                window_ms: [500, 5_000, 60_000][sim.pick(0..3) as usize],
            }
        };
        let faults = if sim.chance(0.3) {
            Faults::NONE
        } else {
            Faults {
                rate_limited: 0.02,
                unavailable: 0.02,
                timeout: 0.01,
                write_rate: sim.chance(0.3),
            }
        };
        // One seed in ten runs memory:// (decided without a draw, so the kv:// seeds replay
        // as they did before it was added).
        let memory = seed % 10 == 9;
        Self {
            memory,
            isolates: if memory { 1 } else { isolates },
            consistency,
            faults,
            cache_ttl: [0, 1, 10][sim.pick(0..3) as usize],
            sessions: 10 + sim.pick(0..25) as usize,
            restarts: !memory && isolates > 1 && sim.chance(0.3),
            mishaps: [0.0, 0.1, 0.25][sim.pick(0..3) as usize],
        }
    }

    /// Runs where every guarantee is strict: one isolate that lives throughout (everything
    /// the isolate promises), or a store that shows every write at once (what the commit
    /// records promise across isolates).
    pub fn one_isolate(&self) -> bool {
        self.isolates == 1 && !self.restarts
    }

    pub fn strong(&self) -> bool {
        self.consistency == Consistency::Strong
    }
}

/// What a commit told its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    Applied,
    NotApplied,
    Unknown,
}

/// Which isolate (location) and which incarnation of it ran a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    pub location: usize,
    pub incarnation: u64,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub tok: i64,
    pub who: Who,
    /// (account, version read, balance read) of both accounts.
    pub reads: [(i64, i64, i64); 2],
    pub told: Told,
    pub acked_step: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Audit {
    pub who: Who,
    pub opened_step: u64,
    /// (account, version, balance) as read.
    pub reads: Vec<(i64, i64, i64)>,
}

#[derive(Debug, Clone)]
pub struct UserWrite {
    pub id: i64,
    /// The email it sets (`None`: the user is deleted).
    pub email: Option<String>,
    pub insert: bool,
    pub told: Told,
}

/// Everything the sessions did, for the checker.
#[derive(Debug, Default)]
pub struct Records {
    pub transfers: Vec<Transfer>,
    pub audits: Vec<Audit>,
    /// Walks over the users in key order, page by page: (who, the ids walked, the ids a scan
    /// of the same session then read).
    pub walks: Vec<(Who, Vec<i64>, Vec<i64>)>,
    pub users: Vec<UserWrite>,
    pub commits: usize,
    pub conflicts: usize,
}

/// One location's current isolate.
struct Isolate {
    factory: SessionFactory,
    incarnation: u64,
}

/// The shared state of a run.
pub struct Run {
    pub sim: Rc<Sim>,
    pub world: Rc<World>,
    pub config: Config,
    isolates: RefCell<Vec<Isolate>>,
    incarnations: Cell<u64>,
    next_tok: Cell<i64>,
    /// The tokens of the columns DDL tried to add to the scratch table (`c{token}`).
    added: RefCell<Vec<i64>>,
    next_user: Cell<i64>,
    pub records: RefCell<Records>,
}

pub fn url(cache_ttl: u64) -> String {
    format!("kv://SIM?cache_ttl={cache_ttl}")
}

fn told(result: &gluebind::Result<gluebind::CommitInfo>) -> Told {
    match result {
        Ok(_) => Told::Applied,
        Err(e) if e.to_string().contains("outcome unknown") => Told::Unknown,
        Err(_) => Told::NotApplied,
    }
}

async fn one(s: &Session, sql: &str, id: i64) -> gluebind::Result<Option<(i64, i64)>> {
    let rows = s.execute(sql, params![id]).await?.into_rows()?;
    Ok(match rows.get(0) {
        Some(r) => Some((r.get("balance")?, r.get("ver")?)),
        None => None,
    })
}

impl Run {
    pub fn new(sim: Rc<Sim>, config: Config) -> Rc<Self> {
        let world = World::new(
            Rc::clone(&sim),
            config.consistency,
            Faults::NONE,
            config.isolates,
        );
        let run = Rc::new(Self {
            sim,
            world,
            config,
            isolates: RefCell::new(Vec::new()),
            incarnations: Cell::new(0),
            next_tok: Cell::new(1),
            added: RefCell::new(Vec::new()),
            next_user: Cell::new(1),
            records: RefCell::new(Records::default()),
        });
        for location in 0..run.config.isolates {
            let isolate = run.start_isolate(location);
            run.isolates.borrow_mut().push(isolate);
        }
        run
    }

    fn start_isolate(&self, location: usize) -> Isolate {
        self.incarnations.set(self.incarnations.get() + 1);
        let engine = if self.config.memory {
            Engine::from_url("memory://").expect("valid URL")
        } else {
            Engine::with_kv(&url(self.config.cache_ttl), self.world.location(location))
                .expect("valid URL")
        };
        Isolate {
            factory: SessionFactory::builder()
                .bind(engine)
                .build()
                .expect("bound"),
            incarnation: self.incarnations.get(),
        }
    }

    pub fn isolate(&self, location: usize) -> (SessionFactory, Who) {
        let isolates = self.isolates.borrow();
        let i = &isolates[location];
        (
            i.factory.clone(),
            Who {
                location,
                incarnation: i.incarnation,
            },
        )
    }

    /// The schema and the accounts, committed once, without faults; the scratch table with
    /// two rows, so that a seed's first DDL may change a table holding rows (drawing nothing
    /// from the seed's randomness: the schedules of earlier seeds stay as they were).
    pub async fn setup(self: Rc<Self>) {
        let (factory, _) = self.isolate(0);
        let s = factory.open();
        s.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, \
             ver INTEGER NOT NULL); \
             CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, \
             tok INTEGER NOT NULL); \
             CREATE TABLE slots (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL); \
             CREATE INDEX ix_slots_owner ON slots (owner); \
             CREATE TABLE scratch (id INTEGER PRIMARY KEY, tag TEXT UNIQUE); \
             INSERT INTO scratch VALUES (-1, 'first'), (-2, 'second')",
        )
        .await
        .expect("schema");
        for id in 1..=ACCOUNTS {
            s.execute(
                "INSERT INTO accounts VALUES ($1, $2, 0)",
                params![id, BALANCE],
            )
            .await
            .expect("account");
        }
        s.commit().await.expect("setup commit");
        factory.engine().flush().await.expect("flush");
    }

    fn fate(&self) -> Fate {
        let sim = &self.sim;
        if !sim.chance(self.config.mishaps) {
            return Fate::Finish;
        }
        let at = 1 + sim.pick(0..12) as u32;
        match sim.pick(0..3) {
            0 => Fate::Drop(at),
            1 => Fate::Abandon(at),
            _ => Fate::Stall(at, 1_000 + sim.pick(0..90_000)),
        }
    }

    /// Spawns the sessions: most start in the first seconds, some a minute or two later
    /// (when records left by cut-off commits have aged).
    pub fn spawn_sessions(self: &Rc<Self>) {
        for n in 0..self.config.sessions {
            let start = if self.sim.chance(0.8) {
                self.sim.pick(0..5_000)
            } else {
                60_000 + self.sim.pick(0..70_000)
            };
            let location = self.sim.pick(0..self.config.isolates as u64) as usize;
            let kind = self.sim.pick(0..100);
            let fate = self.fate();
            let run = Rc::clone(self);
            let name = format!("s{n}");
            let label = name.clone();
            self.sim.spawn(name, fate, async move {
                run.sim.sleep(start).await;
                run.session(&label, location, kind).await;
            });
        }
        if self.config.restarts {
            let run = Rc::clone(self);
            let at = self.sim.pick(1_000..40_000);
            let location = self.sim.pick(0..self.config.isolates as u64) as usize;
            self.sim.spawn("restart".into(), Fate::Finish, async move {
                run.sim.sleep(at).await;
                let fresh = run.start_isolate(location);
                run.sim.log(format!(
                    "location {location}: new isolate {}",
                    fresh.incarnation
                ));
                run.isolates.borrow_mut()[location] = fresh;
            });
        }
    }

    async fn session(&self, name: &str, location: usize, kind: u64) {
        let (factory, who) = self.isolate(location);
        let s = factory.open();
        let opened = self.sim.step();
        let outcome = match kind {
            0..=34 => self.transfer(&s, who).await,
            35..=49 => self.audit(&s, who, opened, kind % 2 == 0).await,
            50..=54 => self.walk_users(&s, who).await,
            55..=69 => self.sign_up(&s).await,
            70..=79 => self.change_email(&s).await,
            80..=87 => self.delete_user(&s).await,
            88..=96 => self.claim_slot(&s).await,
            _ => self.ddl(&s).await,
        };
        self.sim.log(format!("{name} ({who:?}): {outcome}"));
        // The completion callback: the records of acknowledged commits go.
        if !self.sim.chance(0.1) {
            let _ = factory.engine().flush().await;
        }
    }

    async fn think(&self) {
        self.sim.sleep(self.sim.pick(0..30)).await;
    }

    fn commit_result(&self, result: &gluebind::Result<gluebind::CommitInfo>) {
        let mut r = self.records.borrow_mut();
        r.commits += 1;
        if result.as_ref().is_err_and(gluebind::Error::is_conflict) {
            r.conflicts += 1;
        }
    }

    async fn transfer(&self, s: &Session, who: Who) -> String {
        let a = 1 + self.sim.pick(0..ACCOUNTS as u64) as i64;
        let b = 1 + (a + self.sim.pick(0..(ACCOUNTS - 1) as u64) as i64) % ACCOUNTS;
        let sql = "SELECT balance, ver FROM accounts WHERE id = $1";
        let first = match one(s, sql, a).await {
            Ok(Some(row)) => row,
            other => return format!("transfer: read {a}: {other:?}"),
        };
        self.think().await;
        let second = match one(s, sql, b).await {
            Ok(Some(row)) => row,
            other => return format!("transfer: read {b}: {other:?}"),
        };
        let amount = 1 + self.sim.pick(0..30) as i64;
        let tok = self.next_tok.get();
        self.next_tok.set(tok + 1);
        let update = "UPDATE accounts SET balance = $1, ver = $2 WHERE id = $3";
        for (id, balance) in [(a, first.0 - amount), (b, second.0 + amount)] {
            if let Err(e) = s.execute(update, params![balance, tok, id]).await {
                return format!("transfer: update {id}: {e}");
            }
            self.think().await;
        }
        let index = {
            let mut r = self.records.borrow_mut();
            r.transfers.push(Transfer {
                tok,
                who,
                reads: [(a, first.1, first.0), (b, second.1, second.0)],
                told: Told::Unknown,
                acked_step: None,
            });
            r.transfers.len() - 1
        };
        let result = s.commit().await;
        self.commit_result(&result);
        let mut r = self.records.borrow_mut();
        let t = &mut r.transfers[index];
        t.told = told(&result);
        if result.is_ok() {
            t.acked_step = Some(self.sim.step());
        }
        format!("transfer {tok}: {amount} from {a} ({first:?}) to {b} ({second:?}): {result:?}")
    }

    async fn audit(&self, s: &Session, who: Who, opened: u64, scan: bool) -> String {
        let mut reads = Vec::new();
        if scan {
            let rows = match s
                .execute_batch("SELECT id, balance, ver FROM accounts ORDER BY id")
                .await
            {
                Ok(mut r) => r.remove(0).into_rows().expect("rows"),
                Err(e) => return format!("audit: {e}"),
            };
            for row in rows.iter() {
                reads.push((
                    row.get("id").unwrap(),
                    row.get("ver").unwrap(),
                    row.get("balance").unwrap(),
                ));
            }
        } else {
            for id in 1..=ACCOUNTS {
                match one(s, "SELECT balance, ver FROM accounts WHERE id = $1", id).await {
                    Ok(Some((balance, ver))) => reads.push((id, ver, balance)),
                    other => return format!("audit: read {id}: {other:?}"),
                }
                self.think().await;
            }
        }
        let line = format!("audit: {reads:?}");
        self.records.borrow_mut().audits.push(Audit {
            who,
            opened_step: opened,
            reads,
        });
        line
    }

    /// Walks the users in id order two at a time (a keyset page: `id > $1 ORDER BY id LIMIT
    /// 2`, loaded from the table's first key as far as it goes), then scans them in the same
    /// session: one snapshot, so the same ids.
    async fn walk_users(&self, s: &Session, who: Who) -> String {
        let ids = |rows: gluebind::Rows| -> Vec<i64> {
            rows.iter().map(|r| r.get("id").expect("id")).collect()
        };
        let mut walked = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = match s
                .execute(
                    "SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT 2",
                    params![after],
                )
                .await
            {
                Ok(r) => ids(r.into_rows().expect("rows")),
                Err(e) => return format!("walk: {e}"),
            };
            walked.extend(&page);
            match page.last() {
                Some(last) if page.len() == 2 => after = *last,
                _ => break,
            }
            self.think().await;
        }
        let mut scanned = match s.execute_batch("SELECT id FROM users").await {
            Ok(mut r) => ids(r.remove(0).into_rows().expect("rows")),
            Err(e) => return format!("walk: scan: {e}"),
        };
        scanned.sort_unstable();
        let line = format!("walk: {walked:?}, scan {scanned:?}");
        self.records.borrow_mut().walks.push((who, walked, scanned));
        line
    }

    async fn user_commit(
        &self,
        s: &Session,
        id: i64,
        email: Option<String>,
        insert: bool,
    ) -> String {
        let index = {
            let mut r = self.records.borrow_mut();
            r.users.push(UserWrite {
                id,
                email: email.clone(),
                insert,
                told: Told::Unknown,
            });
            r.users.len() - 1
        };
        let result = s.commit().await;
        self.commit_result(&result);
        self.records.borrow_mut().users[index].told = told(&result);
        format!("user {id} -> {email:?} (insert {insert}): {result:?}")
    }

    async fn sign_up(&self, s: &Session) -> String {
        let id = self.next_user.get();
        self.next_user.set(id + 1);
        let email = EMAILS[self.sim.pick(0..EMAILS.len() as u64) as usize];
        let tok = self.next_tok.get();
        self.next_tok.set(tok + 1);
        if let Err(e) = s
            .execute(
                "INSERT INTO users (id, email, tok) VALUES ($1, $2, $3)",
                params![id, email, tok],
            )
            .await
        {
            return format!("sign-up {id} {email}: {e}");
        }
        self.user_commit(s, id, Some(email.to_owned()), true).await
    }

    /// Counts an owner's slots and takes one if fewer than [`SLOTS`] are taken (the checker
    /// counts them in the final state).
    async fn claim_slot(&self, s: &Session) -> String {
        let owner = 1 + self.sim.pick(0..OWNERS as u64) as i64;
        let taken: i64 = match s
            .execute(
                "SELECT COUNT(*) AS n FROM slots WHERE owner = $1",
                params![owner],
            )
            .await
            .and_then(|r| r.into_rows())
            .and_then(|rows| rows.get(0).map_or(Ok(0), |r| r.get("n")))
        {
            Ok(n) => n,
            Err(e) => return format!("slots of {owner}: {e}"),
        };
        self.think().await;
        if taken >= SLOTS {
            return format!("slots of {owner}: full");
        }
        let id = self.next_tok.get();
        self.next_tok.set(id + 1);
        if let Err(e) = s
            .execute("INSERT INTO slots VALUES ($1, $2)", params![id, owner])
            .await
        {
            return format!("slot {id} of {owner}: {e}");
        }
        let result = s.commit().await;
        self.commit_result(&result);
        format!("slot {id} of {owner} (after {taken}): {result:?}")
    }

    fn some_user(&self) -> i64 {
        1 + self.sim.pick(0..self.next_user.get().max(2) as u64 - 1) as i64
    }

    async fn change_email(&self, s: &Session) -> String {
        let id = self.some_user();
        let email = EMAILS[self.sim.pick(0..EMAILS.len() as u64) as usize];
        let tok = self.next_tok.get();
        self.next_tok.set(tok + 1);
        match s
            .execute(
                "UPDATE users SET email = $1, tok = $2 WHERE id = $3",
                params![email, tok, id],
            )
            .await
        {
            Ok(r) if r.affected() == 1 => {
                self.user_commit(s, id, Some(email.to_owned()), false).await
            }
            other => format!("email of {id}: {other:?}"),
        }
    }

    async fn delete_user(&self, s: &Session) -> String {
        let id = self.some_user();
        match s
            .execute("DELETE FROM users WHERE id = $1", params![id])
            .await
        {
            Ok(r) if r.affected() == 1 => self.user_commit(s, id, None, false).await,
            other => format!("delete {id}: {other:?}"),
        }
    }

    async fn ddl(&self, s: &Session) -> String {
        let n = self.next_tok.get();
        self.next_tok.set(n + 1);
        let sql = match self.sim.pick(0..9) {
            0 => "CREATE TABLE scratch (id INTEGER PRIMARY KEY, tag TEXT UNIQUE)".to_owned(),
            // In place (NULL, or a constant every stored row reads; UNIQUE NULL).
            1 => {
                self.added.borrow_mut().push(n);
                match self.sim.pick(0..3) {
                    0 => format!("ALTER TABLE scratch ADD COLUMN c{n} INTEGER NULL"),
                    1 => {
                        format!("ALTER TABLE scratch ADD COLUMN c{n} INTEGER NOT NULL DEFAULT {n}")
                    }
                    _ => format!("ALTER TABLE scratch ADD COLUMN c{n} INTEGER NULL UNIQUE"),
                }
            }
            2 => match self.sim.pick(0..2) {
                0 => "DROP TABLE scratch".to_owned(),
                _ => "DROP TABLE scratch_old".to_owned(),
            },
            // Renamed in place (the rows stay where they are stored), and back.
            6 => match self.sim.pick(0..2) {
                0 => "ALTER TABLE scratch RENAME TO scratch_old".to_owned(),
                _ => "ALTER TABLE scratch_old RENAME TO scratch".to_owned(),
            },
            // The UNIQUE column renamed in place (its kv:// entries stay under the name they
            // were stored under), and back.
            7 => match self.sim.pick(0..2) {
                0 => "ALTER TABLE scratch RENAME COLUMN tag TO label".to_owned(),
                _ => "ALTER TABLE scratch RENAME COLUMN label TO tag".to_owned(),
            },
            // An index whose entries KV holds (the table is small), and its drop.
            3 => "CREATE INDEX ix_scratch_tag ON scratch (tag)".to_owned(),
            4 => "DROP INDEX scratch.ix_scratch_tag".to_owned(),
            // One of the last columns added, if it is there: in place (a UNIQUE one's kv://
            // entries stay, never taken again).
            5 => {
                let added = self.added.borrow();
                let back = (self.sim.pick(0..3) as usize + 1).min(added.len().max(1));
                let token = added.len().checked_sub(back).map_or(0, |at| added[at]);
                format!("ALTER TABLE scratch DROP COLUMN IF EXISTS c{token}")
            }
            // Under either name of the UNIQUE column (one of them fails while renamed).
            _ => format!(
                "INSERT INTO scratch (id, {}) VALUES ({n}, 't{}')",
                ["tag", "label"][self.sim.pick(0..2) as usize],
                n % 3
            ),
        };
        if let Err(e) = s.execute_batch(&sql).await {
            return format!("ddl {sql}: {e}");
        }
        let result = s.commit().await;
        self.commit_result(&result);
        format!("ddl {sql}: {result:?}")
    }
}
