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
            p.contains("SEARCH d USING INDEX deliveries_active (recipient=? AND status=?)")
                && !p.contains("TEMP B-TREE"),
            "{p}"
        );
    }
    let p = plan(&s, MOVE_RECIPIENT);
    assert!(
        p.contains("deliveries_active (recipient=? AND status=?)"),
        "{p}"
    );
    for sql in [DELIVERIES_IN_STATUS, COUNT_IN_STATUS, PENDING_RECIPIENTS] {
        let p = plan(&s, sql);
        assert!(!p.lines().any(|l| l.starts_with("SCAN d")), "{p}");
        assert!(
            p.contains("SEARCH deliveries USING COVERING INDEX deliveries_active (recipient>?)"),
            "{p}"
        );
        assert!(
            p.contains("deliveries_active (recipient=? AND status=?)"),
            "{p}"
        );
    }
    for sql in [MESSAGES_FORWARD, MESSAGES_BACKWARD] {
        let p = plan(&s, sql);
        assert_eq!(
            p,
            "SEARCH m USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
        );
    }
    for to in DeliveryStatus::ALL {
        let p = plan(&s, update_delivery_sql(to));
        assert!(p.contains("INTEGER PRIMARY KEY (rowid=?)"), "{p}");
    }
    let p = plan(&s, DELIVERIES_OF);
    assert!(
        p.contains("SEARCH d USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{p}"
    );
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

/// The opcodes of a statement.
fn opcodes(s: &Store, sql: &str) -> Vec<String> {
    let mut st = s.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let nulls = vec![rusqlite::types::Value::Null; st.parameter_count()];
    let rows = st
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(1))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn writes_build_no_temporary_tables() {
    // Regression: `CHECK (status IN (six values))` built a temporary b-tree for every row.
    let s = Store::open_in_memory().unwrap();
    // (MOVE_RECIPIENT, for hold and release, needs one to collect the rows it moves.)
    let mut writes = vec![INSERT_MESSAGE, INSERT_DELIVERY];
    writes.extend(DeliveryStatus::ALL.map(update_delivery_sql));
    for sql in writes {
        let ops = opcodes(&s, sql);
        assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{sql}: {ops:?}");
    }
}

#[test]
fn the_update_statements_follow_the_transition_table() {
    let mut s = Store::open_in_memory().unwrap();
    for from in DeliveryStatus::ALL {
        for to in DeliveryStatus::ALL {
            send(&mut s, "person", "a", "x", &["a"]);
            let id: i64 = s
                .conn
                .query_row("SELECT max(id) FROM deliveries", [], |r| r.get(0))
                .unwrap();
            s.conn
                .execute(
                    "UPDATE deliveries SET status = ?2 WHERE id = ?1",
                    params![id, from],
                )
                .unwrap();
            let got = s.mark(id, to, None);
            assert_eq!(got.is_ok(), from.can_become(to), "{from} -> {to}: {got:?}");
            let now: DeliveryStatus = s
                .conn
                .query_row("SELECT status FROM deliveries WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(now, if got.is_ok() { to } else { from });
        }
    }
}

#[test]
fn delivery_ids_are_the_message_number_and_the_place() {
    let mut s = Store::open_in_memory().unwrap();
    send(&mut s, "person", "all", "x", &["a", "b"]);
    send(&mut s, "person", "all", "y", &["b", "a"]);
    let ids: Vec<i64> = s
        .next_deliveries("a", 10)
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, [DELIVERY_SLOTS, 2 * DELIVERY_SLOTS + 1]);
    assert_eq!(first_delivery_id(i64::MAX / 2).ok(), None);
}

#[test]
fn a_file_store_runs_in_wal_mode_with_normal_sync_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join(FILE_NAME)).unwrap();
    let pragma = |name: &str| -> String {
        s.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
    assert_eq!(pragma("synchronous"), "Integer(1)"); // NORMAL
    assert_eq!(pragma("foreign_keys"), "Integer(1)");
    assert_eq!(
        pragma("wal_autocheckpoint"),
        format!("Integer({})", schema::BACKSTOP_CHECKPOINT_PAGES)
    );
    assert_eq!(pragma("user_version"), format!("Integer({SCHEMA_VERSION})"));
    assert!(s.checkpointer.is_some());
}

#[test]
fn the_checkpointer_runs_after_a_write_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join(FILE_NAME)).unwrap();
    // Opening (and migrating) commits nothing the checkpointer is told about: it sleeps.
    assert_eq!(s.checkpointer.as_ref().unwrap().runs(), 0);
    send(&mut s, "person", "all", "x", &["a"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.checkpointer.as_ref().unwrap().runs() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after a write"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_store_can_move_to_the_task_that_owns_it() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    assert_send(&Store::open_in_memory().unwrap());
}

/// The schema of a file: every table and index, as SQLite keeps it (quotes aside: a renamed
/// table's SQL names it in quotes).
fn schema_of(conn: &Connection) -> Vec<(String, String)> {
    let mut st = conn
        .prepare(
            "SELECT name, coalesce(sql, '') FROM sqlite_schema \
             WHERE name NOT LIKE 'sqlite_stat%' ORDER BY name",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)?.replace('"', "")))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn a_file_of_the_first_build_is_upgraded_whole() {
    assert_eq!(
        DELIVERY_SLOTS, 256,
        "the upgrade SQL numbers deliveries with 256"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(schema::SCHEMA_V1).unwrap();
        old.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO messages VALUES
                 (1, 'm-20261121-010000-000001', 1795000000000, 'person', 'all', 'chat', 0,
                  'first', 'null'),
                 (2, 'm-20261121-010000-000002', 1795000000001, 'alice', 'bob', 'chat', 1,
                  'second', '{\"k\":1}');
             INSERT INTO deliveries (id, message_seq, recipient, pane, status, attempts,
                                     created_ms, updated_ms, delivered_ms) VALUES
                 (1, 1, 'alice', '%1', 'delivered', 1, 1795000000000, 1795000000005,
                  1795000000005),
                 (2, 1, 'bob', '%2', 'delivering', 1, 1795000000000, 1795000000003, NULL),
                 (3, 2, 'bob', NULL, 'queued', 0, 1795000000001, 1795000000001, NULL),
                 (4, 1, 'carol', NULL, 'held', 0, 1795000000000, 1795000000000, NULL);
             INSERT INTO requests VALUES ('r-1', '%0', 'worker', 'block', 5, 'open', NULL, 7,
                                          'go on?', NULL);
             INSERT INTO pauses VALUES ('carol', 1, 9);",
        )
        .unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    s.check_integrity().unwrap();
    let fresh = Store::open_in_memory().unwrap();
    assert_eq!(schema_of(&s.conn), schema_of(&fresh.conn));

    let h = s.history(&HistoryQuery::default()).unwrap();
    let of = |i: usize| -> Vec<(i64, &str, DeliveryStatus)> {
        h[i].deliveries
            .iter()
            .map(|d| (d.id, d.recipient.as_str(), d.status))
            .collect()
    };
    assert_eq!(
        of(0),
        [
            (256, "alice", DeliveryStatus::Delivered),
            (257, "bob", DeliveryStatus::Delivering),
            (258, "carol", DeliveryStatus::Held),
        ]
    );
    assert_eq!(of(1), [(512, "bob", DeliveryStatus::Queued)]);
    assert_eq!(h[1].message.meta, serde_json::json!({"k": 1}));
    assert!(h[1].message.urgent);
    assert_eq!(s.paused().unwrap(), ["carol"]);
    assert_eq!(s.request("r-1").unwrap().unwrap().text, "go on?");
    let r = s.recover().unwrap();
    assert_eq!((r.typing.len(), r.queued, r.held), (1, 1, 1));
    // New messages continue after the old ones.
    let m = send(&mut s, "person", "all", "third", &["bob"]);
    assert!(m.id.as_str() > "m-20261121-010000-000002");
    let next: Vec<String> = s
        .next_deliveries_with_messages("bob", 10)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.content)
        .collect();
    assert_eq!(next, ["second", "third"]);
    drop(s);
    // Opening again changes nothing.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.counts().unwrap().messages, 3);
}
