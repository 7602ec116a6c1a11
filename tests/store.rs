//! The durable store from outside: round trips, queues, pauses, recovery after a crash (also a
//! real SIGKILL of a writing process), history queries, bad input, the file's mode.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use macs_bridge::mailbox::RequestKind;
use macs_bridge::store::{
    Cursor, DeliveryStatus, HistoryQuery, MessageKind, NewMessage, RequestRow, RequestStatus,
    Stage, Store, StoreError, FILE_NAME, MAX_CONTENT_BYTES, MAX_LIMIT, MAX_NAME_BYTES,
};
use serde_json::json;

fn names(list: &[&str]) -> Vec<(String, Option<String>)> {
    list.iter().map(|n| (n.to_string(), None)).collect()
}

fn never(_: &str) -> bool {
    false
}

fn chat(s: &mut Store, from: &str, to: &str, text: &str, recipients: &[&str]) -> String {
    s.add_message(
        &NewMessage::chat(from, to, text),
        &names(recipients),
        &never,
    )
    .unwrap()
    .id
}

fn contents(s: &Store, recipient: &str) -> Vec<String> {
    s.next_deliveries_with_messages(recipient, MAX_LIMIT)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.content)
        .collect()
}

fn history(s: &Store, q: HistoryQuery) -> Vec<String> {
    s.history(&q)
        .unwrap()
        .into_iter()
        .map(|m| m.message.content)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_message_round_trips_with_its_deliveries() {
    let mut s = Store::open_in_memory().unwrap();
    let new = NewMessage {
        from: "person".into(),
        to: "ALL".into(),
        content: "héllo\n$HOME `x` 'y' \"z\"\0end".into(),
        urgent: true,
        meta: json!({"reply_to": "m-1", "n": [1, 2]}),
        kind: MessageKind::Chat,
    };
    let recipients = vec![
        ("agent1".to_string(), Some("%1".to_string())),
        ("agent2".to_string(), None),
    ];
    let m = s
        .add_message(&new, &recipients, &|n| n == "agent2")
        .unwrap();
    assert_eq!(m.to, "all");
    assert!(m.id.starts_with("m-"), "{}", m.id);
    assert_eq!(
        (&m.from, &m.content, m.urgent, &m.meta, m.kind),
        (&new.from, &new.content, true, &new.meta, MessageKind::Chat)
    );

    let h = s.history(&HistoryQuery::default()).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].message, m);
    let d = &h[0].deliveries;
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].recipient.as_str(), d[0].pane.as_deref(), d[0].status),
        ("agent1", Some("%1"), DeliveryStatus::Queued)
    );
    assert_eq!(
        (d[1].recipient.as_str(), d[1].pane.as_deref(), d[1].status),
        ("agent2", None, DeliveryStatus::Held)
    );
    assert!(d.iter().all(|d| d.message_id == m.id && d.attempts == 0));

    let (delivery, message) = s
        .next_deliveries_with_messages("agent1", 5)
        .unwrap()
        .remove(0);
    assert_eq!((delivery.id, message), (d[0].id, m.clone()));

    // The JSON the API sends.
    let v = serde_json::to_value(&h[0]).unwrap();
    assert_eq!(v["id"], json!(m.id));
    assert_eq!(v["from"], "person");
    assert_eq!(v["to"], "all");
    assert_eq!(v["kind"], "chat");
    assert_eq!(v["meta"]["n"], json!([1, 2]));
    assert_eq!(v["deliveries"][1]["status"], "held");
    assert!(v["ts"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn each_recipient_gets_its_messages_in_message_order() {
    let mut s = Store::open_in_memory().unwrap();
    for i in 0..30 {
        let to: &[&str] = match i % 3 {
            0 => &["a", "b", "c"],
            1 => &["c", "a"],
            _ => &["b"],
        };
        chat(&mut s, "person", "all", &format!("{i}"), to);
    }
    let expect = |keep: fn(i32) -> bool| -> Vec<String> {
        (0..30)
            .filter(|&i| keep(i))
            .map(|i| i.to_string())
            .collect()
    };
    assert_eq!(contents(&s, "a"), expect(|i| i % 3 != 2));
    assert_eq!(contents(&s, "b"), expect(|i| i % 3 != 1));
    assert_eq!(contents(&s, "c"), expect(|i| i % 3 != 2));
    assert!(contents(&s, "nobody").is_empty());

    // Delivering the first two leaves the rest, still in order; a limit takes the oldest.
    let first = s.next_deliveries("a", 2).unwrap();
    assert_eq!(first.len(), 2);
    for d in &first {
        s.mark(d.id, DeliveryStatus::Delivering, None).unwrap();
        s.mark(d.id, DeliveryStatus::Delivered, None).unwrap();
    }
    assert_eq!(contents(&s, "a"), expect(|i| i % 3 != 2 && i > 1));
    // A delivery put back (nothing was typed) keeps its place.
    let next = s.next_deliveries("a", 1).unwrap().remove(0);
    s.mark(next.id, DeliveryStatus::Delivering, None).unwrap();
    assert_eq!(contents(&s, "a")[0], "4");
    s.mark(next.id, DeliveryStatus::Queued, Some("busy"))
        .unwrap();
    assert_eq!(contents(&s, "a")[0], "3");
    assert_eq!(s.next_deliveries("a", 0).unwrap(), vec![]);
}

#[test]
fn hold_and_release_keep_the_order_and_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut s = Store::open(&path).unwrap();
    chat(&mut s, "person", "all", "1", &["a", "b"]);
    chat(&mut s, "person", "all", "2", &["a", "b"]);
    assert_eq!(s.hold("a").unwrap(), 2);
    assert!(s.next_deliveries("a", 10).unwrap().is_empty());
    assert_eq!(contents(&s, "b"), ["1", "2"]);
    // While paused, new messages start held (the caller asks the store who is paused).
    let paused = s.paused().unwrap();
    s.add_message(
        &NewMessage::chat("person", "all", "3"),
        &names(&["a", "b"]),
        &|n| paused.iter().any(|p| p == n),
    )
    .unwrap();
    assert!(s.next_deliveries("a", 10).unwrap().is_empty());
    assert_eq!(s.pending_recipients().unwrap(), ["a", "b"]);
    drop(s);

    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.paused().unwrap(), ["a"]);
    assert_eq!(s.counts().unwrap().deliveries.held, 3);
    assert_eq!(s.release("a").unwrap(), 3);
    assert!(s.paused().unwrap().is_empty());
    assert_eq!(contents(&s, "a"), ["1", "2", "3"]);
    // Holding again leaves a delivery that is being typed alone.
    let d = s.next_deliveries("a", 1).unwrap().remove(0);
    s.mark(d.id, DeliveryStatus::Delivering, None).unwrap();
    assert_eq!(s.hold("a").unwrap(), 2);
    s.mark(d.id, DeliveryStatus::Delivered, None).unwrap();
    assert_eq!(s.release("a").unwrap(), 2);
    assert_eq!(contents(&s, "a"), ["2", "3"]);
    // Releasing someone who was never paused is fine and moves nothing.
    assert_eq!(s.release("nobody").unwrap(), 0);
}

#[test]
fn pending_recipients_are_those_with_queued_or_held_deliveries() {
    let mut s = Store::open_in_memory().unwrap();
    assert!(s.pending_recipients().unwrap().is_empty());
    chat(&mut s, "person", "all", "x", &["c", "a", "b", "d"]);
    let of = |s: &Store, n: &str| s.next_deliveries(n, 1).unwrap().remove(0).id;
    let b = of(&s, "b");
    s.mark(b, DeliveryStatus::Delivering, None).unwrap();
    s.mark(b, DeliveryStatus::Delivered, None).unwrap();
    let c = of(&s, "c");
    s.mark(c, DeliveryStatus::Failed, Some("no such pane"))
        .unwrap();
    s.hold("d").unwrap();
    assert_eq!(s.pending_recipients().unwrap(), ["a", "d"]);
}

#[test]
fn recover_reports_rows_being_typed_with_their_text_and_stage_and_changes_nothing() {
    let mut s = Store::open_in_memory().unwrap();
    chat(&mut s, "person", "all", "1", &["a", "b", "c"]);
    chat(&mut s, "person", "all", "2", &["a", "b", "c"]);
    let a = s.next_deliveries("a", 1).unwrap().remove(0);
    let b = s.next_deliveries("b", 1).unwrap().remove(0);
    s.begin_typing(a.id, "[from person to all] 1").unwrap();
    s.begin_typing(b.id, "[from person to all] 1").unwrap();
    s.set_stage(b.id, Stage::Submit).unwrap();
    s.hold("c").unwrap();

    let r = s.recover().unwrap();
    let ids: Vec<i64> = r.typing.iter().map(|d| d.id).collect();
    assert_eq!(ids, [a.id, b.id]);
    assert!(r
        .typing
        .iter()
        .all(|d| d.status == DeliveryStatus::Delivering
            && d.attempts == 1
            && d.typed.as_deref() == Some("[from person to all] 1")));
    assert_eq!(r.typing[0].stage, None);
    assert_eq!(r.typing[1].stage, Some(Stage::Submit));
    assert_eq!((r.queued, r.held), (2, 2));
    // The rows being typed are not queued: the core finishes them by looking at the pane.
    assert_eq!(contents(&s, "a"), ["2"]);
    let typing: Vec<i64> = s.typing().unwrap().iter().map(|(d, _)| d.id).collect();
    assert_eq!(typing, [a.id, b.id]);
    // Recovering again finds the same rows: it never changes a row on its own.
    assert_eq!(s.recover().unwrap().typing.len(), 2);
    // Typing it again is a new attempt with the same text; the stage starts over.
    s.begin_typing(b.id, "[from person to all] 1").unwrap();
    let (d, _) = s.delivery(b.id).unwrap().unwrap();
    assert_eq!((d.attempts, d.stage), (2, None));
    s.mark(b.id, DeliveryStatus::Delivered, None).unwrap();
    assert!(
        s.begin_typing(b.id, "again").is_err(),
        "a delivered row is final"
    );
}

#[test]
fn a_store_dropped_without_closing_reopens_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut s = Store::open(&path).unwrap();
    for i in 0..20 {
        chat(&mut s, "person", "all", &i.to_string(), &["a", "b"]);
    }
    let d = s.next_deliveries("a", 2).unwrap();
    s.mark(d[0].id, DeliveryStatus::Delivering, None).unwrap();
    s.mark(d[0].id, DeliveryStatus::Delivered, None).unwrap();
    s.mark(d[1].id, DeliveryStatus::Delivering, None).unwrap();
    s.hold("b").unwrap();
    let last = chat(&mut s, "person", "a", "last", &["a"]);
    // No close, no checkpoint, no destructor: as if the process had died here.
    std::mem::forget(s);

    let mut s = Store::open(&path).unwrap();
    s.check_integrity().unwrap();
    let r = s.recover().unwrap();
    assert_eq!(r.typing.len(), 1);
    assert_eq!(r.typing[0].id, d[1].id);
    assert_eq!((r.queued, r.held), (19, 20));
    assert_eq!(s.paused().unwrap(), ["b"]);
    let counts = s.counts().unwrap();
    assert_eq!((counts.messages, counts.deliveries.total()), (21, 41));
    // New ids continue after the old ones.
    let next = chat(&mut s, "person", "a", "next", &["a"]);
    assert!(next > last, "{next} <= {last}");
}

/// The environment variable that makes [`killed_writer_child`] write.
const WRITER_ENV: &str = "MACS_STORE_TEST_WRITER_DB";
const WRITER_RECIPIENTS: usize = 10;

/// The writer process of [`a_writer_killed_mid_transaction_loses_nothing_committed`]: does
/// nothing unless that test starts it. Writes messages (and marks) in a loop and prints the id
/// of each message once its transaction committed, until it is killed.
#[test]
fn killed_writer_child() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let mut s = Store::open(Path::new(&path)).unwrap();
    let recipients: Vec<(String, Option<String>)> = (0..WRITER_RECIPIENTS)
        .map(|i| (format!("r{i}"), Some(format!("%{i}"))))
        .collect();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let text = format!("message {i} {}", "x".repeat((i as usize * 37) % 3000));
        let m = s
            .add_message(
                &NewMessage::chat("person", "all", &text),
                &recipients,
                &|n| n == "r9",
            )
            .unwrap();
        use std::io::Write;
        writeln!(out, "committed {}", m.id).unwrap();
        out.flush().unwrap();
        // r0: typed and confirmed (two commits); r1: left being typed.
        let d0 = s.next_deliveries("r0", 1).unwrap().remove(0);
        s.mark(d0.id, DeliveryStatus::Delivering, None).unwrap();
        s.mark(d0.id, DeliveryStatus::Delivered, None).unwrap();
        let d1 = s.next_deliveries("r1", 1).unwrap().remove(0);
        s.mark(d1.id, DeliveryStatus::Delivering, None).unwrap();
    }
}

#[test]
fn a_writer_killed_mid_transaction_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        // Only whole lines count: a line cut by the kill was not printed after its commit.
        while r.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
            if let Some(id) = line.trim_end().strip_prefix("committed ") {
                if tx.send(id.to_string()).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    // Let it write a good number of messages, then kill it wherever it is.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut committed = Vec::new();
    while committed.len() < 300 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(id) => committed.push(id),
            Err(e) => panic!("the writer stopped after {} messages: {e}", committed.len()),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    committed.extend(rx.try_iter());

    let mut s = Store::open(&path).unwrap();
    s.check_integrity().unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let deliveries_of = |id: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM deliveries d JOIN messages m ON m.seq = d.message_seq \
             WHERE m.id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    for id in &committed {
        assert_eq!(deliveries_of(id), WRITER_RECIPIENTS as i64, "message {id}");
    }
    let partial: i64 = db
        .query_row(
            "SELECT count(*) FROM messages m WHERE \
             (SELECT count(*) FROM deliveries d WHERE d.message_seq = m.seq) <> ?1",
            [WRITER_RECIPIENTS as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(partial, 0, "messages stored without all their deliveries");
    let counts = s.counts().unwrap();
    assert!(counts.messages >= committed.len() as u64);
    assert_eq!(
        counts.deliveries.total(),
        counts.messages * WRITER_RECIPIENTS as u64
    );
    // r1's deliveries were all left `delivering`, one per message at most.
    let delivering = counts.deliveries.delivering;
    assert!(delivering >= committed.len() as u64 - 1, "{counts:?}");
    let r = s.recover().unwrap();
    assert_eq!(r.typing.len() as u64, delivering);
    assert_eq!(r.held, counts.messages);
    // And the store takes new messages after the crash.
    chat(&mut s, "person", "all", "after the crash", &["r0"]);
}

#[test]
fn history_filters_limits_and_order() {
    let mut s = Store::open_in_memory().unwrap();
    let mut ids = Vec::new();
    for i in 0..1100 {
        let (from, to) = match i % 4 {
            0 => ("person", "all"),
            1 => ("alice", "bob"),
            2 => ("bob", "alice"),
            _ => ("carol", "person"),
        };
        ids.push(chat(&mut s, from, to, &i.to_string(), &[]));
    }
    let n =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| i.to_string()).collect() };
    // The newest 50 by default, newest last; at most 1000.
    assert_eq!(history(&s, HistoryQuery::default()), n(1050..1100));
    let q = |limit| HistoryQuery {
        limit: Some(limit),
        ..Default::default()
    };
    assert_eq!(history(&s, q(5000)).len(), MAX_LIMIT);
    assert_eq!(history(&s, q(3)), n(1097..1100));
    assert!(history(&s, q(0)).is_empty());
    // Before and since an id: both exclusive.
    let id = |i: usize| Some(Cursor::Id(ids[i].clone()));
    assert_eq!(
        history(
            &s,
            HistoryQuery {
                before: id(10),
                limit: Some(3),
                ..Default::default()
            }
        ),
        n(7..10)
    );
    assert_eq!(
        history(
            &s,
            HistoryQuery {
                since: id(10),
                limit: Some(3),
                ..Default::default()
            }
        ),
        n(11..14)
    );
    assert_eq!(
        history(
            &s,
            HistoryQuery {
                since: id(10),
                before: id(13),
                ..Default::default()
            }
        ),
        n(11..13)
    );
    // Involving a name: from it, to it, or to all.
    let involving = |name: &str| HistoryQuery {
        involving: Some(name.into()),
        limit: Some(8),
        ..Default::default()
    };
    assert_eq!(
        history(&s, involving("alice")),
        ["1089", "1090", "1092", "1093", "1094", "1096", "1097", "1098"]
    );
    assert_eq!(
        history(&s, involving("carol")),
        ["1084", "1087", "1088", "1091", "1092", "1095", "1096", "1099"]
    );
    // A name nobody used still sees the messages to all.
    assert_eq!(
        history(&s, involving("dave")),
        ["1068", "1072", "1076", "1080", "1084", "1088", "1092", "1096"]
    );
    // An id that is not there is an error.
    let err = s
        .history(&HistoryQuery {
            since: Some(Cursor::Id("m-nope".into())),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchMessage { .. }), "{err}");
}

#[test]
fn messages_for_a_name_are_to_it_or_to_all_and_not_its_own() {
    let mut s = Store::open_in_memory().unwrap();
    let a = chat(&mut s, "person", "all", "to all", &["alice", "bob"]);
    chat(&mut s, "alice", "all", "alice to all", &["bob"]);
    chat(&mut s, "bob", "alice", "bob to alice", &["alice"]);
    chat(&mut s, "person", "bob", "person to bob", &["bob"]);
    let d = chat(&mut s, "person", "alice", "person to alice", &["alice"]);
    let texts = |since: Option<&str>, limit| -> Vec<String> {
        s.messages_for("alice", since, limit)
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect()
    };
    assert_eq!(
        texts(None, 50),
        ["to all", "bob to alice", "person to alice"]
    );
    assert_eq!(texts(Some(&a), 50), ["bob to alice", "person to alice"]);
    assert_eq!(texts(Some(&a), 1), ["bob to alice"]);
    assert_eq!(texts(None, 1), ["person to alice"]);
    assert!(texts(Some(&d), 50).is_empty());
    assert!(s.messages_for("alice", Some("m-unknown"), 5).is_err());
    assert!(s.messages_for("all", None, 5).is_err());
}

#[test]
fn bad_input_is_an_error_and_stores_nothing() {
    let mut s = Store::open_in_memory().unwrap();
    let ok = NewMessage::chat("person", "all", "hi");
    let with = |f: &dyn Fn(&mut NewMessage)| {
        let mut m = ok.clone();
        f(&mut m);
        m
    };
    let bad_messages = [
        with(&|m| m.from = String::new()),
        with(&|m| m.from = "all".into()),
        with(&|m| m.from = "two words".into()),
        with(&|m| m.from = "x".repeat(MAX_NAME_BYTES + 1)),
        with(&|m| m.to = String::new()),
        with(&|m| m.to = "bob\n".into()),
        with(&|m| m.content = String::new()),
        with(&|m| m.content = " \n\t".into()),
        with(&|m| m.content = "x".repeat(MAX_CONTENT_BYTES + 1)),
        with(&|m| m.meta = json!("y".repeat(64 * 1024))),
    ];
    for m in &bad_messages {
        let err = s.add_message(m, &names(&["a"]), &never).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    let bad_recipients: [Vec<(String, Option<String>)>; 5] = [
        names(&[""]),
        names(&["all"]),
        names(&["a", "b", "a"]),
        vec![("a".into(), Some(String::new()))],
        (0..300).map(|i| (format!("r{i}"), None)).collect(),
    ];
    for r in &bad_recipients {
        let err = s.add_message(&ok, r, &never).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    assert_eq!(s.counts().unwrap().messages, 0);
    // The largest content allowed goes in and comes out whole.
    let big = with(&|m| m.content = "é".repeat(MAX_CONTENT_BYTES / 2));
    s.add_message(&big, &names(&["a"]), &never).unwrap();
    assert_eq!(contents(&s, "a")[0].len(), MAX_CONTENT_BYTES);

    assert!(s.hold("").unwrap_err().is_bad_input());
    assert!(s.hold("all").unwrap_err().is_bad_input());
    assert!(s.messages_for("", None, 5).unwrap_err().is_bad_input());
    let q = HistoryQuery {
        involving: Some("a b".into()),
        ..Default::default()
    };
    assert!(s.history(&q).unwrap_err().is_bad_input());
    assert_eq!(s.counts().unwrap().messages, 1);
}

#[test]
fn marks_that_the_table_forbids_are_refused() {
    let mut s = Store::open_in_memory().unwrap();
    chat(&mut s, "person", "all", "x", &["a", "b"]);
    let a = s.next_deliveries("a", 1).unwrap().remove(0).id;
    let b = s.next_deliveries("b", 1).unwrap().remove(0).id;
    let err = s.mark(a, DeliveryStatus::Delivered, None).unwrap_err();
    assert!(matches!(err, StoreError::BadTransition { .. }), "{err}");
    s.mark(a, DeliveryStatus::Delivering, None).unwrap();
    s.mark(a, DeliveryStatus::Delivered, None).unwrap();
    for next in DeliveryStatus::ALL {
        assert!(s.mark(a, next, None).unwrap_err().is_bad_input());
    }
    let err = s.mark(12345, DeliveryStatus::Delivering, None).unwrap_err();
    assert!(
        matches!(err, StoreError::NoSuchDelivery { id: 12345 }),
        "{err}"
    );
    // mark_many: all or nothing.
    let err = s
        .mark_many(&[
            (b, DeliveryStatus::Delivering, None),
            (a, DeliveryStatus::Queued, None),
        ])
        .unwrap_err();
    assert!(err.is_bad_input());
    assert_eq!(
        s.next_deliveries("b", 1).unwrap()[0].status,
        DeliveryStatus::Queued
    );
}

#[test]
fn the_file_and_its_wal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = state.join(FILE_NAME);
    let mut s = Store::open(&path).unwrap();
    chat(&mut s, "person", "all", "x", &["a"]);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&state.join(format!("{FILE_NAME}-wal"))), 0o600);
    assert_eq!(s.path(), Some(path.as_path()));
    s.close().unwrap();

    // A file someone made readable becomes private again.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(s.counts().unwrap().messages, 1);
}

#[test]
fn what_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("junk"), "{err}");

    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");

    // A store from a newer version is left alone.
    let newer = dir.path().join("newer.sqlite3");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(&newer).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn requests_round_trip_and_update() {
    let mut s = Store::open_in_memory().unwrap();
    let mut r = RequestRow {
        id: "20261121-000748-7fe6".into(),
        pane: "%0".into(),
        agent: "worker".into(),
        kind: RequestKind::Block,
        text: "Question 1 of 3: go on?".into(),
        detected_at: Utc::now(),
        status: RequestStatus::Open,
        answered_by: None,
        answer: None,
        answer_raw: None,
        trail: Vec::new(),
        server: "4242 1796000000".into(),
    };
    s.upsert_request(&r).unwrap();
    assert_eq!(s.request(&r.id).unwrap(), Some(r.clone()));
    r.status = RequestStatus::Answered;
    r.answered_by = Some("pane".into());
    r.answer = Some("Yes, go ahead.".into());
    r.answer_raw = Some("Yes, go ahead.\n".into());
    r.trail = vec!["rules: no rule matched".into(), "answered by pane".into()];
    s.upsert_request(&r).unwrap();
    assert_eq!(s.request(&r.id).unwrap(), Some(r.clone()));
    assert_eq!(s.active_requests().unwrap(), vec![r.clone()]);
    s.set_request_status(&r.id, RequestStatus::Delivered, Some("delivered"))
        .unwrap();
    assert!(s.active_requests().unwrap().is_empty());
    assert_eq!(s.request(&r.id).unwrap().unwrap().trail.len(), 3);
    assert_eq!(s.request("other").unwrap(), None);

    let mut older = r.clone();
    older.id = "20261120-000000-0000".into();
    older.detected_at = r.detected_at - chrono::Duration::hours(1);
    older.kind = RequestKind::Heuristic;
    s.upsert_request(&older).unwrap();
    let recent: Vec<String> = s
        .recent_requests(10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recent, [older.id.clone(), r.id.clone()]);
    assert_eq!(s.counts().unwrap().requests, 2);

    let mut bad = r.clone();
    bad.id = "../x".into();
    assert!(s.upsert_request(&bad).unwrap_err().is_bad_input());
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("block"), Some("answered"))
    );
}

#[test]
fn counts_follow_the_deliveries() {
    let mut s = Store::open_in_memory().unwrap();
    chat(&mut s, "person", "all", "x", &["a", "b", "c", "d"]);
    chat(&mut s, "person", "all", "y", &[]);
    let id = |s: &Store, n: &str| s.next_deliveries(n, 1).unwrap()[0].id;
    let (a, b, c) = (id(&s, "a"), id(&s, "b"), id(&s, "c"));
    s.mark_many(&[
        (a, DeliveryStatus::Delivering, None),
        (b, DeliveryStatus::Delivering, None),
        (c, DeliveryStatus::Failed, Some("gone")),
    ])
    .unwrap();
    s.mark(b, DeliveryStatus::Unconfirmed, None).unwrap();
    s.hold("d").unwrap();
    let c = s.counts().unwrap();
    assert_eq!(c.messages, 2);
    let d = &c.deliveries;
    assert_eq!(
        (
            d.queued,
            d.delivering,
            d.delivered,
            d.unconfirmed,
            d.failed,
            d.held
        ),
        (0, 1, 0, 1, 1, 1)
    );
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["deliveries"]["unconfirmed"], 1);
}

#[test]
fn a_batch_commits_all_its_writes_together_or_none() {
    let mut s = Store::open_in_memory().unwrap();
    let ids = s
        .batch(|s| {
            let a = chat(s, "person", "all", "1", &["a", "b"]);
            let b = chat(s, "person", "all", "2", &["a", "b"]);
            let d = s.next_deliveries("a", 1)?.remove(0);
            s.mark(d.id, DeliveryStatus::Delivering, None)?;
            // A refused write inside a batch leaves no trace, and the batch goes on.
            assert!(s.mark(d.id, DeliveryStatus::Held, None).is_err());
            assert!(s
                .add_message(&NewMessage::chat("", "all", "x"), &[], &never)
                .is_err());
            s.hold("b")?;
            Ok(vec![a, b])
        })
        .unwrap();
    assert_eq!(ids.len(), 2);
    let c = s.counts().unwrap();
    assert_eq!(c.messages, 2);
    assert_eq!(
        (
            c.deliveries.delivering,
            c.deliveries.queued,
            c.deliveries.held
        ),
        (1, 1, 2)
    );

    // An error from the closure undoes everything it wrote.
    let err = s
        .batch(|s| {
            chat(s, "person", "all", "3", &["a"]);
            s.release("b")?;
            s.mark(424242, DeliveryStatus::Delivering, None)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchDelivery { .. }), "{err}");
    assert_eq!(s.counts().unwrap(), c);
    assert_eq!(s.paused().unwrap(), ["b"]);
}

#[test]
fn a_batch_across_calls_commits_at_its_end_and_a_failed_group_inside_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macs.sqlite3");
    let mut s = Store::open(&path).unwrap();
    s.begin_batch().unwrap();
    chat(&mut s, "person", "all", "1", &["a"]);
    // A group that fails inside the open batch is undone whole; the batch goes on.
    let err = s
        .batch(|s| {
            chat(s, "person", "all", "2", &["a"]);
            s.mark(424242, DeliveryStatus::Delivering, None)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchDelivery { .. }), "{err}");
    chat(&mut s, "person", "all", "3", &["a"]);
    // Not committed yet: another connection sees nothing.
    let reader = rusqlite::Connection::open(&path).unwrap();
    let count = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&reader), 0);
    s.end_batch().unwrap();
    assert_eq!(count(&reader), 2);
    assert_eq!(contents(&s, "a"), ["1", "3"]);
}

#[test]
fn a_panic_inside_a_write_or_a_batch_leaves_nothing_half_done() {
    let mut s = Store::open_in_memory().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.add_message(
            &NewMessage::chat("person", "all", "x"),
            &names(&["a", "b"]),
            &|n| {
                assert_ne!(n, "b", "the caller's closure panics");
                false
            },
        )
    }));
    assert!(caught.is_err());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.batch(|s| -> Result<(), StoreError> {
            chat(s, "person", "all", "y", &["a"]);
            panic!("inside a batch");
        })
    }));
    assert!(caught.is_err());
    // Neither message is there, and the store works.
    assert_eq!(s.counts().unwrap().messages, 0);
    chat(&mut s, "person", "all", "z", &["a"]);
    assert_eq!(contents(&s, "a"), ["z"]);
}
