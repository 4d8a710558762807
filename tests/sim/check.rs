//! After a run: recovery completes, then the invariants `docs/guarantees.md` promises are checked
//! against what every session was told and what KV finally holds.

use super::workload::{self, Records, Run, Told, Transfer, ACCOUNTS, BALANCE};
use gluebind::{kv::format::layout, params, Engine, SessionFactory, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Broken promises: any one fails the seed.
    pub violations: Vec<String>,
    /// Anomalies of a commit that acted on a stale view of another isolate's commits within
    /// KV's propagation window (the one documented exception): a lost update, and what
    /// follows from one (a unique value's entry taken over, a row written under a table's old
    /// schema, a write built on a commit that was undone). None may happen where writes are
    /// seen at once.
    pub lost_updates: usize,
    /// Audits that saw another isolate's commit in part (best effort across isolates).
    pub skewed_audits: usize,
    /// Owners holding more slots than the rule allows, across isolates (best effort there:
    /// write skew through a scan of another isolate's finished commit).
    pub slot_overflows: usize,
    pub commits: usize,
    pub conflicts: usize,
}

/// A table as a scan read it: its columns, and its rows.
pub type ReadTable = (Vec<String>, Vec<Vec<Value>>);

/// The final state, read after recovery.
pub struct Final {
    pub accounts: BTreeMap<i64, (i64, i64)>,
    pub users: BTreeMap<i64, String>,
    /// Slots taken per owner (a scan of the table).
    pub slots: BTreeMap<i64, i64>,
    /// Slots taken per owner, counted through the index on `slots.owner`.
    pub slots_indexed: BTreeMap<i64, i64>,
    /// The scratch table as read at the end: its columns and rows.
    pub scratch: Option<Result<ReadTable, String>>,
    /// The scratch table's ids by tag (`t0`–`t2`), read through its index when it has one.
    pub scratch_tagged: Option<Result<BTreeMap<String, Vec<i64>>, String>>,
    pub journal: Vec<String>,
    pub kv: BTreeMap<String, gluebind::kv::KvEntry>,
}

/// Settles everything left half-way: two minutes later (every write visible, every record
/// old), fresh isolates read until the journal is empty.
pub async fn recover(run: &Run) -> Final {
    let sim = &run.sim;
    sim.sleep(150_000).await;
    if run.config.memory {
        // The isolate's memory is the database: read it there.
        return read_final(run, run.isolate(0).0.open(), Vec::new()).await;
    }
    let mut journal = Vec::new();
    for round in 0..40 {
        let engine = Engine::with_kv(&workload::url(0), run.world.location(0)).expect("url");
        let factory = SessionFactory::builder()
            .bind(engine)
            .build()
            .expect("bound");
        let s = factory.open();
        let _ = s.execute_batch("SELECT COUNT(*) FROM accounts").await;
        journal = run
            .world
            .truth()
            .keys()
            .filter(|k| k.starts_with("gluebind/v1/c/"))
            .cloned()
            .collect();
        if journal.is_empty() {
            break;
        }
        sim.log(format!("recovery round {round}: records left {journal:?}"));
        sim.sleep(11_000).await;
    }
    // What the last settlement wrote reaches every location first.
    sim.sleep(70_000).await;
    let engine = Engine::with_kv(&workload::url(0), run.world.location(0)).expect("url");
    let s = SessionFactory::builder()
        .bind(engine)
        .build()
        .expect("bound")
        .open();
    read_final(run, s, journal).await
}

async fn read_final(run: &Run, s: gluebind::Session, journal: Vec<String>) -> Final {
    let mut accounts = BTreeMap::new();
    for row in s
        .execute_batch("SELECT id, balance, ver FROM accounts")
        .await
        .expect("accounts readable")
        .remove(0)
        .into_rows()
        .expect("rows")
        .iter()
    {
        accounts.insert(
            row.get::<i64>("id").unwrap(),
            (
                row.get::<i64>("balance").unwrap(),
                row.get::<i64>("ver").unwrap(),
            ),
        );
    }
    let mut users = BTreeMap::new();
    for row in s
        .execute_batch("SELECT id, email FROM users")
        .await
        .expect("users readable")
        .remove(0)
        .into_rows()
        .expect("rows")
        .iter()
    {
        users.insert(
            row.get::<i64>("id").unwrap(),
            row.get::<String>("email").unwrap(),
        );
    }
    // Through the index first, on a cold session: on kv:// through its entries in KV.
    let mut slots_indexed = BTreeMap::new();
    for owner in 1..=crate::workload::OWNERS {
        let n = s
            .execute(
                "SELECT COUNT(*) AS n FROM slots WHERE owner = $1",
                params![owner],
            )
            .await
            .expect("slots readable through their index")
            .into_rows()
            .expect("rows")
            .get(0)
            .and_then(|r| r.get::<i64>("n").ok())
            .unwrap_or(0);
        if n > 0 {
            slots_indexed.insert(owner, n);
        }
    }
    let mut slots = BTreeMap::new();
    for row in s
        .execute_batch("SELECT owner, COUNT(*) AS n FROM slots GROUP BY owner")
        .await
        .expect("slots readable")
        .remove(0)
        .into_rows()
        .expect("rows")
        .iter()
    {
        slots.insert(
            row.get::<i64>("owner").unwrap(),
            row.get::<i64>("n").unwrap(),
        );
    }
    // The scratch table's rows by tag, through the index on it when it has one (its entries
    // in KV), before a scan loads the table.
    let mut tagged = BTreeMap::new();
    let mut scratch_tagged = Some(Ok(()));
    // The UNIQUE column goes by one of two names (renamed in place, and back): read from
    // the schemas, not the rows (a scan would load the table before the lookups below).
    let column = match s
        .execute_batch(
            "SELECT COLUMN_NAME FROM GLUE_TABLE_COLUMNS WHERE TABLE_NAME = 'scratch' \
             AND COLUMN_NAME = 'label'",
        )
        .await
    {
        Ok(mut r) => match r.remove(0).into_rows() {
            Ok(rows) if !rows.is_empty() => "label",
            _ => "tag",
        },
        Err(_) => "tag",
    };
    for tag in ["t0", "t1", "t2"] {
        match s
            .execute(
                &format!("SELECT id FROM scratch WHERE {column} = $1 ORDER BY id"),
                params![tag],
            )
            .await
        {
            Ok(r) => {
                let ids: Vec<i64> = r
                    .into_rows()
                    .expect("rows")
                    .iter()
                    .map(|row| row.get::<i64>("id").unwrap())
                    .collect();
                if !ids.is_empty() {
                    tagged.insert(tag.to_owned(), ids);
                }
            }
            Err(e) if e.to_string().contains("table not found") => scratch_tagged = None,
            Err(e) => scratch_tagged = Some(Err(e.to_string())),
        }
    }
    let scratch_tagged = scratch_tagged.map(|r| r.map(|()| tagged));
    let scratch = match s.execute_batch("SELECT * FROM scratch").await {
        Ok(mut r) => {
            // Every row reads in the schema's shape (a row stored before a column was added
            // in place reads its value there).
            let rows = r.remove(0).into_rows().expect("rows");
            let columns = rows.columns().to_vec();
            let width = columns.len();
            let rows = rows.into_values();
            match rows.iter().find(|row| row.len() != width) {
                Some(row) => Some(Err(format!(
                    "a row of {} values under {width} columns",
                    row.len()
                ))),
                None => Some(Ok((columns, rows))),
            }
        }
        Err(e) if e.to_string().contains("table not found") => None,
        Err(e) => Some(Err(e.to_string())),
    };
    Final {
        accounts,
        users,
        slots,
        slots_indexed,
        scratch,
        scratch_tagged,
        journal,
        kv: run.world.truth(),
    }
}

/// The commit that last wrote each (account, version): its token and what it read.
struct Chains<'a> {
    by_tok: HashMap<i64, &'a Transfer>,
}

impl<'a> Chains<'a> {
    fn new(records: &'a Records) -> Self {
        Self {
            by_tok: records.transfers.iter().map(|t| (t.tok, t)).collect(),
        }
    }

    /// The version `tok`'s transfer read of `account` (what it replaced there).
    fn pred(&self, account: i64, tok: i64) -> Option<i64> {
        let t = self.by_tok.get(&tok)?;
        t.reads.iter().find(|r| r.0 == account).map(|r| r.1)
    }

    /// Every version `account` went through, from `head` back to the initial 0 (`Err` when
    /// a version no transfer of the account wrote shows up: corruption).
    fn walk(&self, account: i64, head: i64) -> Result<Vec<i64>, String> {
        let mut chain = Vec::new();
        let mut v = head;
        while v != 0 {
            if chain.contains(&v) || chain.len() > 100_000 {
                return Err(format!("account {account}: versions loop at {v}"));
            }
            chain.push(v);
            v = self.pred(account, v).ok_or_else(|| {
                format!("account {account} holds version {v}, written by no transfer of it")
            })?;
        }
        Ok(chain)
    }
}

pub fn check(run: &Run, end: &Final, hung: &[String]) -> Report {
    let records = run.records.borrow();
    let config = &run.config;
    let mut report = Report {
        commits: records.commits,
        conflicts: records.conflicts,
        ..Report::default()
    };
    let mut violations = Vec::new();
    let mut violation = |v: String| violations.push(v);
    let mut anomalies = 0;
    // The one documented exception; strict runs may not have any.
    let exception_allowed = !config.one_isolate() && !config.strong();

    if !hung.is_empty() {
        violation(format!(
            "no hang: sessions still running at the end: {hung:?}"
        ));
    }
    if !end.journal.is_empty() {
        violation(format!(
            "recovery completes: records left {:?}",
            end.journal
        ));
    }

    // ---- transfers: atomic, never undone, acknowledged ones applied -----------------------
    let chains = Chains::new(&records);
    let mut on_chain: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for id in 1..=ACCOUNTS {
        let Some((_, ver)) = end.accounts.get(&id) else {
            violation(format!("account {id} is gone"));
            continue;
        };
        match chains.walk(id, *ver) {
            Ok(chain) => {
                on_chain.insert(id, chain.into_iter().collect());
            }
            Err(e) => violation(e),
        }
    }
    let total: i64 = end.accounts.values().map(|(b, _)| b).sum();
    // Siblings: transfers that replaced the same version of an account.
    let mut replaced: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for t in &records.transfers {
        for r in &t.reads {
            replaced.entry((r.0, r.1)).or_default().push(t.tok);
        }
    }
    let mut lost = 0;
    for t in &records.transfers {
        let applied: Vec<bool> = t
            .reads
            .iter()
            .map(|r| on_chain.get(&r.0).is_some_and(|c| c.contains(&t.tok)))
            .collect();
        let (in_a, in_b) = (applied[0], applied[1]);
        // Overwritten where it is missing by a transfer that read the version it replaced or
        // an older one (the account's history forks there): a lost update, not half a commit.
        let overwritten = |i: usize| {
            let account = t.reads[i].0;
            let head = end.accounts.get(&account).map(|(_, v)| *v);
            let mut base = Some(t.reads[i].1);
            let mut seen = BTreeSet::new();
            while let Some(v) = base {
                if !seen.insert(v) {
                    break;
                }
                // Put back to a version older than the transfer (an undo that restored what
                // it had read stale): the transfer's write there is lost.
                if head == Some(v) {
                    return true;
                }
                let forks = replaced.get(&(account, v)).is_some_and(|others| {
                    others.iter().any(|other| {
                        *other != t.tok && on_chain.get(&account).is_some_and(|c| c.contains(other))
                    })
                });
                if forks {
                    return true;
                }
                base = if v == 0 {
                    None
                } else {
                    chains.pred(account, v)
                };
            }
            false
        };
        if in_a != in_b {
            let missing = if in_a { 1 } else { 0 };
            if overwritten(missing) {
                lost += 1;
                if !exception_allowed {
                    violation(format!(
                        "no lost update: transfer {} (told {:?}) was overwritten on account {} by a commit that read the same version",
                        t.tok, t.told, t.reads[missing].0
                    ));
                }
            } else {
                violation(format!(
                    "no half-applied commit once recovery ran: transfer {} (told {:?}) is applied to account {} but not to {}",
                    t.tok,
                    t.told,
                    t.reads[1 - missing].0,
                    t.reads[missing].0
                ));
            }
        }
        match t.told {
            Told::Applied
                if !(in_a && in_b)
                    && !(exception_allowed && (overwritten(0) || overwritten(1))) =>
            {
                violation(format!(
                    "an acknowledged commit stays applied: transfer {} is missing (on account {}: {in_a}, on {}: {in_b})",
                    t.tok, t.reads[0].0, t.reads[1].0
                ));
            }
            Told::NotApplied if in_a || in_b => {
                let v = format!(
                    "a commit told it failed never appears: transfer {} did",
                    t.tok
                );
                if exception_allowed {
                    // Built on, before its undo reached that location: the undo was lost.
                    lost += 1;
                } else {
                    violation(v);
                }
            }
            _ => {}
        }
    }
    if lost == 0 && total != ACCOUNTS * BALANCE {
        violation(format!(
            "the money is conserved: {total} instead of {} ({:?})",
            ACCOUNTS * BALANCE,
            end.accounts
        ));
    }

    // ---- what an isolate acknowledged, its later sessions see ------------------------------
    let ancestors = |t: &Transfer, account: i64| -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        let mut v = chains.pred(account, t.tok);
        while let Some(ver) = v {
            if ver == 0 || !out.insert(ver) {
                break;
            }
            v = chains.pred(account, ver);
        }
        out.insert(0);
        out
    };
    let reads_of = |who: workload::Who| {
        records
            .audits
            .iter()
            .filter(move |a| a.who == who)
            .map(|a| (a.opened_step, a.reads.clone()))
    };
    for t in records.transfers.iter().filter(|t| t.told == Told::Applied) {
        let acked = t.acked_step.expect("acknowledged");
        for (opened, reads) in reads_of(t.who) {
            if opened <= acked {
                continue;
            }
            for (account, ver, _) in reads {
                // A write of its lost to another isolate's stale view (counted above).
                let lost_there = !on_chain.get(&account).is_some_and(|c| c.contains(&t.tok));
                if exception_allowed && lost_there {
                    continue;
                }
                if t.reads.iter().any(|r| r.0 == account) && ancestors(t, account).contains(&ver) {
                    violation(format!(
                        "an isolate sees its acknowledged commits: transfer {} (acknowledged at step {acked}) is missing from a later audit of {:?} (account {account} at version {ver})",
                        t.tok, t.who
                    ));
                }
            }
        }
    }

    // ---- snapshot reads: no audit sees part of a commit ------------------------------------
    for audit in &records.audits {
        // Accounts are created before the run and never deleted: a scan (read in key order,
        // loaded page by page) sees each once, in order — unless KV has not shown them yet.
        let ids: Vec<i64> = audit.reads.iter().map(|r| r.0).collect();
        if ids != (1..=ACCOUNTS).collect::<Vec<_>>() {
            if exception_allowed {
                report.skewed_audits += 1;
            } else {
                violation(format!(
                    "a scan sees every row once, in key order: an audit of {:?} read accounts {ids:?}",
                    audit.who
                ));
            }
            continue;
        }
        let sum: i64 = audit.reads.iter().map(|r| r.2).sum();
        if audit.reads.len() as i64 == ACCOUNTS && sum != ACCOUNTS * BALANCE {
            if config.one_isolate() {
                violation(format!(
                    "snapshot reads: an audit of {:?} summed to {sum}: {:?}",
                    audit.who, audit.reads
                ));
            } else {
                report.skewed_audits += 1;
            }
        }
    }

    // ---- a walk in key order, page by page, sees what a scan of its session sees ---------
    for (who, walked, scanned) in &records.walks {
        if walked != scanned {
            if exception_allowed {
                report.skewed_audits += 1;
            } else {
                violation(format!(
                    "a walk in key order sees its snapshot: {who:?} walked users {walked:?}, \
                     then a scan read {scanned:?}"
                ));
            }
        }
    }

    // ---- users: UNIQUE, the index, acknowledged sign-ups --------------------------------
    let mut emails: HashMap<&String, Vec<i64>> = HashMap::new();
    for (id, email) in &end.users {
        emails.entry(email).or_default().push(*id);
    }
    for (email, ids) in &emails {
        if ids.len() > 1 {
            let v = format!("UNIQUE holds: {email} is held by users {ids:?}");
            if exception_allowed {
                anomalies += 1;
            } else {
                violation(v);
            }
        }
    }
    let layout = layout::Layout::new("");
    let prefix = if config.memory {
        "(memory:// has no KV)".to_owned()
    } else {
        layout.uniques_prefix("users")
    };
    let mut indexed = BTreeMap::new();
    for (key, entry) in end.kv.range(prefix.clone()..) {
        if !key.starts_with(&prefix) {
            break;
        }
        let owner: layout::UniqueRecord = layout::decode(key, &entry.value).expect("entry");
        indexed.insert(key.clone(), owner.k);
    }
    for (id, email) in end.users.iter().filter(|_| !config.memory) {
        let key = layout
            .unique_key(
                "users",
                "email",
                &gluesql_core::prelude::Key::Str(email.clone()),
            )
            .expect("key");
        match indexed.remove(&key) {
            Some(gluesql_core::prelude::Key::I64(owner)) if owner == *id => {}
            other => {
                let v = format!(
                    "the unique index matches the rows: user {id}'s {email} has entry {other:?}"
                );
                if exception_allowed {
                    // A race for the entry within KV's window: a lost update of that key.
                    anomalies += 1;
                    continue;
                }
                violation(v);
            }
        }
    }
    if !indexed.is_empty() {
        if exception_allowed {
            anomalies += indexed.len();
        } else {
            violation(format!(
                "the unique index matches the rows: stale entries {indexed:?}"
            ));
        }
    }
    let mut fate: BTreeMap<i64, Vec<(bool, Told)>> = BTreeMap::new();
    for w in &records.users {
        fate.entry(w.id)
            .or_default()
            .push((w.email.is_none(), w.told));
    }
    for w in records.users.iter().filter(|w| w.insert) {
        let exists = end.users.contains_key(&w.id);
        let deleted = fate[&w.id]
            .iter()
            .any(|(del, told)| *del && *told != Told::NotApplied);
        match w.told {
            Told::Applied if !exists && !deleted => violation(format!(
                "an acknowledged commit stays applied: user {} ({:?}) is missing",
                w.id, w.email
            )),
            Told::NotApplied if exists => {
                let v = format!(
                    "a commit told it failed never appears: user {} exists",
                    w.id
                );
                if exception_allowed {
                    anomalies += 1; // built on before its undo reached that location
                } else {
                    violation(v);
                }
            }
            _ => {}
        }
    }

    // ---- schema changes: rows match their schema, a dropped table leaves nothing ---------
    // The scratch table moves between two names (renamed in place: its keys keep the name
    // they were written under, which its schema record says), and a table created under a
    // name whose keys another table uses stores its own elsewhere.
    let storage = |table: &str| -> Option<String> {
        let e = end.kv.get(&format!("gluebind/v1/s/{table}"))?;
        let rec: layout::SchemaRecord = layout::decode(table, &e.value).expect("schema");
        Some(rec.at.unwrap_or_else(|| table.to_owned()))
    };
    let live: Vec<(String, String)> = ["scratch", "scratch_old"]
        .into_iter()
        .filter_map(|t| {
            let at = storage(t)?;
            Some((layout.rows_prefix(&at), layout.uniques_prefix(&at)))
        })
        .collect();
    let of_scratch = |k: &&String| {
        k.starts_with("gluebind/v1/r/scratch") || k.starts_with("gluebind/v1/u/scratch")
    };
    let garbage: Vec<&String> = end
        .kv
        .keys()
        .filter(of_scratch)
        .filter(|k| {
            !live
                .iter()
                .any(|(r, u)| k.starts_with(r) || k.starts_with(u))
        })
        .collect();
    if !garbage.is_empty() {
        let v = format!("a dropped table leaves nothing: {garbage:?}");
        if exception_allowed {
            anomalies += 1; // a row written, or dropped, on a stale view of the table
        } else {
            violation(v);
        }
    }
    let scratch_keys: Vec<&String> = match storage("scratch") {
        Some(at) => {
            let (r, u) = (layout.rows_prefix(&at), layout.uniques_prefix(&at));
            end.kv
                .keys()
                .filter(|k| k.starts_with(&r) || k.starts_with(&u))
                .collect()
        }
        None => Vec::new(),
    };
    match &end.scratch {
        None => {
            if storage("scratch").is_some() {
                let v = "a dropped table leaves nothing: its schema".to_owned();
                if exception_allowed {
                    anomalies += 1; // a row written, or dropped, on a stale view of the table
                } else {
                    violation(v);
                }
            }
        }
        Some(Err(e)) => violation(format!("the scratch table is readable: {e}")),
        Some(Ok(_)) if config.memory => {}
        Some(Ok(rows)) => {
            // The stored columns; a row may be shorter than them by columns added in place
            // (NULL-able, or a constant default — NULL if UNIQUE: it reads their values), never
            // longer.
            let columns = end.kv.get("gluebind/v1/s/scratch").map(|e| {
                let rec: layout::SchemaRecord =
                    layout::decode("s/scratch", &e.value).expect("schema");
                rec.schema.column_defs.unwrap_or_default()
            });
            let schema = columns.as_ref().map(Vec::len);
            let (names, rows) = rows;
            // The columns read are the stored ones, less those dropped in place.
            let visible: Option<Vec<&String>> = columns.as_ref().map(|c| {
                c.iter()
                    .filter(|c| !c.name.starts_with('\u{1}'))
                    .map(|c| &c.name)
                    .collect()
            });
            if visible
                .as_ref()
                .is_some_and(|v| !v.iter().copied().eq(names.iter()))
            {
                let v = format!("scratch reads its stored columns: {names:?}, {visible:?} stored");
                if exception_allowed {
                    anomalies += 1;
                } else {
                    violation(v);
                }
            }
            // No statement writes an added column: every row holds its default there (a row
            // stored before the column was added in place reads it), NULL without one.
            for (i, name) in names.iter().enumerate() {
                let Some(k) = name.strip_prefix('c').and_then(|k| k.parse::<i64>().ok()) else {
                    continue;
                };
                let Some(def) = columns.iter().flatten().find(|c| &c.name == name) else {
                    continue;
                };
                let want = if def.default.is_some() {
                    Value::I64(k)
                } else {
                    Value::Null
                };
                if let Some(row) = rows.iter().find(|row| row[i] != want) {
                    let v = format!(
                        "an added column reads its default: {name} holds {:?}, not {want:?}",
                        row[i]
                    );
                    if exception_allowed {
                        // Two isolates' schema changes within KV's window: the later schema
                        // put wins over rows the other one rewrote (a lost update of the
                        // schema; seed 90383).
                        anomalies += 1;
                    } else {
                        violation(v);
                    }
                }
            }
            let truth_rows = scratch_keys.iter().filter(|k| k.contains("/r/")).count();
            if truth_rows != rows.len() && !exception_allowed {
                violation(format!(
                    "scratch: {truth_rows} rows in KV, {} read",
                    rows.len()
                ));
            }
            for key in scratch_keys.iter().filter(|k| k.contains("/r/")) {
                let rec: layout::RowRecord = layout::decode(key, &end.kv[*key].value).expect("row");
                let stored = rec.d.as_ref().map_or(0, Vec::len);
                let fits = columns.as_ref().is_some_and(|c| {
                    stored <= c.len()
                        && c[stored..]
                            .iter()
                            // Added in place: each row reads one value there (NULL, a
                            // constant default), and a UNIQUE one only NULL.
                            .all(|c| match c.unique {
                                None => c.nullable || c.default.is_some(),
                                Some(_) => c.nullable && c.default.is_none(),
                            })
                });
                if !fits {
                    let v = format!("rows match their schema: {key} has {:?} values, the schema {schema:?} columns", rec.d.map(|d| d.len()));
                    if exception_allowed {
                        anomalies += 1; // written under a schema seen stale
                    } else {
                        violation(v);
                    }
                }
            }
        }
    }
    // Every commit path keeps secondary indexes and UNIQUE entries (and their entries in KV)
    // in step with the rows. Across isolates on eventually consistent KV a lost update can delete an entry a
    // row still needs (a commit that moved the row away from the value, applied after one
    // that did not see it moved it back): counted there, a violation elsewhere.
    let mut index_disagrees = |v: String| {
        if exception_allowed {
            anomalies += 1;
        } else {
            violation(v);
        }
    };
    if end.slots_indexed != end.slots {
        index_disagrees(format!(
            "the index on slots.owner agrees with a scan: {:?} through it, {:?} scanned",
            end.slots_indexed, end.slots
        ));
    }
    if let (Some(Ok((columns, rows))), Some(tagged)) = (&end.scratch, &end.scratch_tagged) {
        let at = |name: &str| columns.iter().position(|c| c == name);
        let mut scanned: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        if let (Some(id), Some(tag)) = (at("id"), at("tag").or_else(|| at("label"))) {
            for row in rows {
                if let (Value::I64(id), Value::Str(tag)) = (&row[id], &row[tag]) {
                    scanned.entry(tag.clone()).or_default().push(*id);
                }
            }
        }
        scanned.retain(|tag, _| ["t0", "t1", "t2"].contains(&tag.as_str()));
        scanned.values_mut().for_each(|ids| ids.sort_unstable());
        // UNIQUE, under either name: exact within one isolate or on strongly consistent KV.
        if let Some((tag, ids)) = scanned.iter().find(|(_, ids)| ids.len() > 1) {
            index_disagrees(format!(
                "scratch's UNIQUE column holds each value once: {tag:?} held by rows {ids:?}"
            ));
        }
        match tagged {
            Ok(tagged) if *tagged == scanned => {}
            other => index_disagrees(format!(
                "the index on scratch.tag agrees with a scan: {other:?} through it, \
                 {scanned:?} scanned"
            )),
        }
    }
    // A rule over several rows (serializable isolation): exact within one isolate; across
    // isolates a scan is checked only against commits still in the journal (documented).
    for (owner, taken) in &end.slots {
        if *taken > crate::workload::SLOTS {
            let v = format!(
                "serializable: owner {owner} holds {taken} slots (limit {})",
                crate::workload::SLOTS
            );
            if config.one_isolate() {
                violation(v);
            } else {
                report.slot_overflows += 1;
            }
        }
    }
    report.lost_updates = lost + anomalies;
    report.violations = violations;
    report
}
