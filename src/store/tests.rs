//! Unit tests that need the store's insides: its clock, its connection, its query plans.
//! The API's behaviour is tested from outside in `tests/store.rs`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::*;

const T0: i64 = 1_795_000_000_000;

/// A store whose clock the test moves.
fn store_at(t: &Arc<AtomicI64>) -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let t = Arc::clone(t);
    s.clock = Box::new(move || t.load(Ordering::SeqCst));
    s
}

fn send(s: &mut Store, from: &str, to: &str, text: &str, recipients: &[&str]) -> Message {
    let r: Vec<(String, Option<String>)> =
        recipients.iter().map(|n| (n.to_string(), None)).collect();
    s.add_message(&NewMessage::chat(from, to, text), &r, &|_| false)
        .unwrap()
}

fn plan(s: &Store, sql: &str) -> String {
    let mut st = s
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let nulls = vec![rusqlite::types::Value::Null; st.parameter_count()];
    let rows = st
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

#[test]
fn hot_queries_use_the_indexes() {
    let s = Store::open_in_memory().unwrap();
    for sql in [NEXT_DELIVERIES, NEXT_WITH_MESSAGES] {
        let p = plan(&s, sql);
        assert!(
            p.contains("SEARCH d USING INDEX deliveries_queue (recipient=? AND status=?)")
                && !p.contains("TEMP B-TREE"),
            "{p}"
        );
    }
    let p = plan(&s, MOVE_RECIPIENT);
    assert!(
        p.contains("deliveries_queue (recipient=? AND status=?)"),
        "{p}"
    );
    for sql in [DELIVERIES_IN_STATUS, COUNT_IN_STATUS, PENDING_RECIPIENTS] {
        let p = plan(&s, sql);
        assert!(
            !p.contains("SCAN d\n") && !p.contains("SCAN deliveries"),
            "{p}"
        );
        assert!(p.contains("(recipient=? AND status=?)"), "{p}");
    }
    for sql in [MESSAGES_FORWARD, MESSAGES_BACKWARD] {
        let p = plan(&s, sql);
        assert_eq!(
            p,
            "SEARCH m USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
        );
    }
    assert!(plan(&s, UPDATE_DELIVERY).contains("INTEGER PRIMARY KEY (rowid=?)"));
    assert!(plan(&s, FIRST_SEQ_AT).contains("COVERING INDEX messages_ts (ts_ms>?)"));
}

#[test]
fn history_by_time_includes_since_and_excludes_before() {
    let t = Arc::new(AtomicI64::new(T0));
    let mut s = store_at(&t);
    let mut sent = Vec::new();
    for i in 0..6 {
        t.store(T0 + i * 1000, Ordering::SeqCst);
        sent.push(send(&mut s, "person", "all", &format!("m{i}"), &["a"]));
    }
    let at = |i: usize| Cursor::Time(sent[i].ts);
    let texts = |q: HistoryQuery| -> Vec<String> {
        s.history(&q)
            .unwrap()
            .into_iter()
            .map(|m| m.message.content)
            .collect()
    };
    assert_eq!(
        texts(HistoryQuery {
            since: Some(at(2)),
            before: Some(at(4)),
            ..Default::default()
        }),
        ["m2", "m3"]
    );
    assert_eq!(
        texts(HistoryQuery {
            before: Some(at(2)),
            ..Default::default()
        }),
        ["m0", "m1"]
    );
    assert_eq!(
        texts(HistoryQuery {
            since: Some(Cursor::Time(sent[5].ts + chrono::Duration::milliseconds(1))),
            ..Default::default()
        }),
        Vec::<String>::new()
    );
    // A time before everything, and a time between two messages.
    assert_eq!(
        texts(HistoryQuery {
            since: Some(Cursor::Time(sent[0].ts - chrono::Duration::days(1))),
            limit: Some(2),
            ..Default::default()
        }),
        ["m0", "m1"]
    );
    assert_eq!(
        texts(HistoryQuery {
            before: Some(Cursor::Time(
                sent[3].ts - chrono::Duration::milliseconds(500)
            )),
            limit: Some(1),
            ..Default::default()
        }),
        ["m2"]
    );
}

#[test]
fn a_clock_going_back_keeps_ids_times_and_storage_in_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let t = Arc::new(AtomicI64::new(T0 + 5_000));
    let with_clock = |mut s: Store| {
        let t = Arc::clone(&t);
        s.clock = Box::new(move || t.load(Ordering::SeqCst));
        s
    };
    let mut s = with_clock(Store::open(&path).unwrap());
    let a = send(&mut s, "person", "all", "a", &[]);
    t.store(T0, Ordering::SeqCst); // NTP stepped the clock back
    let b = send(&mut s, "person", "all", "b", &[]);
    assert!(a.id < b.id && a.ts <= b.ts, "{a:?} {b:?}");
    drop(s);
    // Reopened with the clock still behind: it continues after the newest message.
    let mut s = with_clock(Store::open(&path).unwrap());
    let c = send(&mut s, "person", "all", "c", &[]);
    assert!(b.id < c.id && b.ts <= c.ts, "{b:?} {c:?}");
    let all: Vec<String> = s
        .history(&HistoryQuery::default())
        .unwrap()
        .into_iter()
        .map(|m| m.message.id)
        .collect();
    assert_eq!(all, [a.id, b.id, c.id]);
}

#[test]
fn a_failure_inside_add_message_stores_nothing() {
    let mut s = Store::open_in_memory().unwrap();
    s.conn
        .execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON deliveries WHEN NEW.recipient = 'c' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .unwrap();
    let r: Vec<(String, Option<String>)> = ["a", "b", "c"]
        .iter()
        .map(|n| (n.to_string(), None))
        .collect();
    let err = s
        .add_message(&NewMessage::chat("person", "all", "hi"), &r, &|_| false)
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    let counts = s.counts().unwrap();
    assert_eq!((counts.messages, counts.deliveries.total()), (0, 0));
    // The store is still usable.
    send(&mut s, "person", "all", "again", &["a", "b"]);
    assert_eq!(s.counts().unwrap().deliveries.queued, 2);
}

#[test]
fn mark_sets_attempts_delivered_at_and_keeps_the_last_error() {
    let t = Arc::new(AtomicI64::new(T0));
    let mut s = store_at(&t);
    send(&mut s, "person", "a", "hi", &["a"]);
    let d = s.next_deliveries("a", 10).unwrap().remove(0);
    assert_eq!((d.attempts, d.delivered_at), (0, None));
    t.store(T0 + 10, Ordering::SeqCst);
    s.mark(d.id, DeliveryStatus::Delivering, None).unwrap();
    s.mark(d.id, DeliveryStatus::Queued, Some("the pane turned busy"))
        .unwrap();
    s.mark(d.id, DeliveryStatus::Delivering, None).unwrap();
    t.store(T0 + 20, Ordering::SeqCst);
    s.mark(d.id, DeliveryStatus::Delivered, None).unwrap();
    let got = &s.history(&HistoryQuery::default()).unwrap()[0].deliveries[0];
    assert_eq!(got.status, DeliveryStatus::Delivered);
    assert_eq!(got.attempts, 2);
    assert_eq!(got.last_error.as_deref(), Some("the pane turned busy"));
    assert_eq!(got.delivered_at.unwrap().timestamp_millis(), T0 + 20);
    assert_eq!(got.updated_at.timestamp_millis(), T0 + 20);
    assert_eq!(got.created_at.timestamp_millis(), T0);
}

#[test]
fn a_long_error_is_cut_not_refused() {
    let mut s = Store::open_in_memory().unwrap();
    send(&mut s, "person", "a", "hi", &["a"]);
    let id = s.next_deliveries("a", 1).unwrap()[0].id;
    s.mark(
        id,
        DeliveryStatus::Failed,
        Some(&"é".repeat(MAX_ERROR_BYTES)),
    )
    .unwrap();
    let d = &s.history(&HistoryQuery::default()).unwrap()[0].deliveries[0];
    let e = d.last_error.as_deref().unwrap();
    assert_eq!(e.len(), MAX_ERROR_BYTES);
}

#[test]
fn bad_rows_are_errors_not_panics() {
    let mut s = Store::open_in_memory().unwrap();
    send(&mut s, "person", "a", "hi", &["a"]);
    // Written behind the store's back: meta that is not JSON.
    s.conn
        .execute_batch("UPDATE messages SET meta = '{not json'")
        .unwrap();
    assert!(s.history(&HistoryQuery::default()).is_err());
    assert!(s.messages_for("a", None, 10).is_err());
}
