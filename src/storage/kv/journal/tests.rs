//! Unit tests of the commit record and its settlement plan.

use super::*;

fn at(v: u64) -> Option<KvEntry> {
    Some(KvEntry {
        value: format!(r#"{{"k":{{"I64":1}},"v":{v}}}"#),
        metadata: None,
    })
}

fn put(v: u64) -> Option<RecordPut> {
    at(v).map(|e| RecordPut::of(&e))
}

fn record() -> CommitRecord {
    let w = |k: &str, was, new| RecordWrite {
        k: k.into(),
        was,
        put: new,
        u: false,
    };
    CommitRecord {
        f: FORMAT,
        s: 9,
        at: 5,
        t: vec!["users".into()],
        d: vec![],
        r: vec!["s/users".into()],
        a: None,
        w: vec![
            w("new", None, put(9)),
            w("changed", put(2), put(9)),
            w("gone", put(3), None),
        ],
    }
}

fn keys(ws: &[&RecordWrite]) -> Vec<String> {
    ws.iter().map(|w| w.k.clone()).collect()
}

#[test]
fn a_started_commit_rolls_forward_and_a_changed_one_back() {
    let rec = record();
    // Nothing written yet: it may not have passed its check, so nothing is written.
    assert_eq!(
        replay_plan(&rec, &[None, at(2), at(3)], false),
        Settlement::Back(vec![])
    );
    // Only its delete's key is absent: no evidence it wrote anything (another commit may
    // have deleted it), so nothing is put back either.
    assert_eq!(
        replay_plan(&rec, &[None, at(2), None], false),
        Settlement::Back(vec![])
    );
    // Part written, nothing changed by others: the rest is written.
    match replay_plan(&rec, &[at(9), at(2), at(3)], false) {
        Settlement::Forward(w) => assert_eq!(keys(&w), ["changed", "gone"]),
        other => panic!("{other:?}"),
    }
    // All written: nothing left, still forward (idempotent).
    assert_eq!(
        replay_plan(&rec, &[at(9), at(9), None], false),
        Settlement::Forward(vec![])
    );
    // Another commit changed a key it had not written: what it wrote is put back.
    match replay_plan(&rec, &[at(9), at(7), at(3)], false) {
        Settlement::Back(w) => assert_eq!(keys(&w), ["new"]),
        other => panic!("{other:?}"),
    }
    // Applied in full, then a key changed by a later commit: nothing is undone.
    assert_eq!(
        replay_plan(&rec, &[at(9), at(7), None], false),
        Settlement::Forward(vec![])
    );
    // A commit that only deletes: its marker tells whether it began.
    let deletes = CommitRecord {
        w: vec![rec.w[2].clone()],
        ..rec.clone()
    };
    assert_eq!(
        replay_plan(&deletes, &[None], false),
        Settlement::Back(vec![])
    );
    assert_eq!(
        replay_plan(&deletes, &[at(3)], true),
        Settlement::Forward(vec![&deletes.w[0]])
    );
}

#[test]
fn unique_entries_compare_owners_not_versions() {
    let entry = |owner: i64, v: u64| KvEntry {
        value: format!(r#"{{"k":{{"I64":{owner}}},"v":{v}}}"#),
        metadata: None,
    };
    let w = RecordWrite {
        k: "u/users/email/x".into(),
        was: Some(RecordPut::of(&entry(1, 0))),
        put: None,
        u: true,
    };
    assert_eq!(key_state(&w, 9, Some(&entry(1, 4))), KeyState::Before);
    assert_eq!(key_state(&w, 9, None), KeyState::Written);
    assert_eq!(key_state(&w, 9, Some(&entry(2, 4))), KeyState::Other);
}

#[test]
fn records_round_trip_and_metadata_stays_small() {
    let mut rec = record();
    let (value, meta) = rec.encode().unwrap();
    assert_eq!(serde_json::from_str::<CommitRecord>(&value).unwrap(), rec);
    let meta: RecordMeta = serde_json::from_value(meta).unwrap();
    assert_eq!(meta.at, 5);
    let footprint = |writes: &[&str], relies: &[&str]| Footprint {
        writes: writes.iter().map(|k| (*k).to_owned()).collect(),
        relies: relies.iter().map(|k| (*k).to_owned()).collect(),
        ..Footprint::default()
    };
    for (other, overlap) in [
        (footprint(&["changed"], &[]), true),
        (footprint(&[], &["changed"]), true),
        (footprint(&["other"], &[]), false),
        (footprint(&["s/users"], &[]), true),
        // Both rely on the schema: no overlap.
        (footprint(&["other"], &["s/users"]), false),
    ] {
        assert_eq!(meta.may_overlap(&other), Some(overlap), "{other:?}");
        assert_eq!(rec.overlaps(&other), overlap, "{other:?}");
    }
    let ddl = Footprint {
        whole: ["users".to_owned()].into_iter().collect(),
        ..Footprint::default()
    };
    assert_eq!(meta.may_overlap(&ddl), Some(true));
    rec.w = (0..500)
        .map(|i| RecordWrite {
            k: format!("key_{i}"),
            was: None,
            put: None,
            u: false,
        })
        .collect();
    let (_, meta) = rec.encode().unwrap();
    assert_eq!(meta, serde_json::json!({"at": 5}));
    let meta: RecordMeta = serde_json::from_value(meta).unwrap();
    assert_eq!(
        meta.may_overlap(&Footprint::default()),
        None,
        "must be read"
    );
    let from_js: RecordMeta = serde_json::from_value(serde_json::json!({"at": 1.764e12})).unwrap();
    assert_eq!(from_js.at, 1_764_000_000_000);
    assert_eq!(version_of("k", at(4).as_ref()).unwrap(), Some(4));
    let foreign = KvEntry {
        value: "hello".into(),
        metadata: None,
    };
    assert!(version_of("k", Some(&foreign)).is_err());
}
