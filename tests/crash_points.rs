//! Crashes at the worst moments, on purpose: `MACS_CRASH_AT=<point>` makes the daemon kill
//! itself with SIGKILL at each named point of a delivery (the row recorded, half the text
//! typed, the text typed, the submit key sent, the delivery recorded but not archived), for an
//! answer from `outbox/`, an answer from a controller backend and a chat message. After a
//! restart the person must see: the text delivered exactly once, the prompt empty, the journal
//! row in its final state, nothing lost.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{files_in, sim_command, sim_inputs, wait_for, Daemon, TmuxServer};
use macs_bridge::faults::POINTS;
use macs_bridge::store::{DeliveryStatus, RequestStatus, Store};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

const ASK: &str = "request
Should I refactor the parser first?
end
wait
say Got it.
";

fn session(name: &str, script: &str) -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, name, script, "");
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", name]);
    server
}

/// The sim-agent's prompt line (`›` and what is typed after it).
fn prompt(server: &TmuxServer) -> String {
    let screen = server.capture("macs:0.0");
    screen
        .lines()
        .rev()
        .find(|l| l.starts_with('›'))
        .unwrap_or("")
        .to_string()
}

fn store(state: &Path) -> Store {
    Store::open(&state.join("macs.sqlite3")).expect("open the journal")
}

/// Waits until the journal says request `id` is delivered and its archive is written.
fn wait_archived(state: &Path, id: &str) {
    wait_for("the request delivered and archived", LONG, || {
        let done = store(state)
            .request(id)
            .ok()
            .flatten()
            .is_some_and(|r| r.status == RequestStatus::Delivered);
        let archived = files_in(&state.join("archive")).contains(&format!("{id}.response.md"));
        (done && archived).then_some(())
    });
}

/// After the restart: exactly one input, the prompt empty, every journal row final.
fn check_once(server: &TmuxServer, who: &str, expected: &str, state: &Path, point: &str) {
    let got = wait_for(&format!("the input after a crash at {point}"), LONG, || {
        let v = sim_inputs(server, who);
        (!v.is_empty()).then_some(v)
    });
    // Let a second typing, if there were one, show.
    wait_for("the prompt to be empty", LONG, || {
        (prompt(server).trim() == "›").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got_after = sim_inputs(server, who);
    assert_eq!(got, vec![expected.to_string()], "crash at {point}");
    assert_eq!(got_after, got, "typed twice after a crash at {point}");
    assert_eq!(
        prompt(server).trim(),
        "›",
        "prompt left holding text at {point}"
    );
    let counts = store(state).counts().expect("counts");
    assert_eq!(
        (
            counts.deliveries.delivering,
            counts.deliveries.queued,
            counts.deliveries.unconfirmed
        ),
        (0, 0, 0),
        "journal rows not final after a crash at {point}: {counts:?}"
    );
    assert!(counts.deliveries.get(DeliveryStatus::Delivered) >= 1);
}

fn request_event(e: &Value) -> bool {
    e["event"] == "request"
}

fn write_response(state: &Path, id: &str, text: &str) {
    let tmp = state.join("outbox").join(format!(".{id}.md.swp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, state.join("outbox").join(format!("{id}.md"))).expect("rename");
}

#[test]
fn an_outbox_answer_survives_a_crash_at_every_point() {
    for point in POINTS {
        let server = session("worker", ASK);
        let state = tempfile::tempdir().expect("state dir");
        let args = ["--mode", "manual", "--no-heuristic"];
        let daemon = Daemon::start_env(&server, state.path(), &args, &[("MACS_CRASH_AT", point)]);
        let id = daemon.wait_event("the request", request_event)["id"]
            .as_str()
            .expect("id")
            .to_string();
        let answer = format!("Refactor it first ({point}).");
        write_response(state.path(), &id, &format!("{answer}\n"));
        daemon.wait_death(LONG);
        let _daemon = Daemon::start(&server, state.path(), &args);
        wait_archived(state.path(), &id);
        check_once(&server, "worker", &answer, state.path(), point);
        assert!(
            files_in(&state.path().join("inbox")).is_empty(),
            "inbox not emptied at {point}"
        );
        assert!(
            !files_in(&state.path().join("outbox")).contains(&format!("{id}.md")),
            "outbox not emptied at {point}"
        );
    }
}

#[test]
fn a_backend_answer_survives_a_crash_at_every_point() {
    for point in POINTS {
        let server = session("worker", ASK);
        let state = tempfile::tempdir().expect("state dir");
        std::fs::write(
            state.path().join("macs.yaml"),
            format!(
                "rules:\n  - match: '(?i)refactor'\n    reply: Rules say refactor ({point}).\n\
                 controller_backends: [rules, manual]\n"
            ),
        )
        .expect("config");
        let args = ["--mode", "auto", "--no-heuristic"];
        let daemon = Daemon::start_env(&server, state.path(), &args, &[("MACS_CRASH_AT", point)]);
        let id = daemon.wait_event("the request", request_event)["id"]
            .as_str()
            .expect("id")
            .to_string();
        daemon.wait_death(LONG);
        let _daemon = Daemon::start(&server, state.path(), &args);
        wait_archived(state.path(), &id);
        check_once(
            &server,
            "worker",
            &format!("Rules say refactor ({point})."),
            state.path(),
            point,
        );
        let row = store(state.path()).request(&id).unwrap().unwrap();
        assert_eq!(row.answered_by.as_deref(), Some("rules"), "{row:?}");
    }
}

#[test]
fn a_chat_message_survives_a_crash_at_every_point() {
    // `before-archive` is a point of answers only; a chat message has no archive.
    for point in &POINTS[..4] {
        let server = session("a1", "on-input\nbusy 200ms\nend\n");
        let state = tempfile::tempdir().expect("state dir");
        let args = ["--mode", "manual", "--no-heuristic"];
        let daemon = Daemon::start_env(&server, state.path(), &args, &[("MACS_CRASH_AT", point)]);
        wait_for("the API socket", LONG, || {
            std::os::unix::net::UnixStream::connect(state.path().join("macs.sock"))
                .ok()
                .map(drop)
        });
        let out = common::chat_lines(
            &server,
            state.path(),
            &format!("@a1 hello there from the person ({point})\n"),
        );
        // The daemon may die before its answer reaches the client (the crash points come after
        // the message is stored): then the client says the connection closed. Either way the
        // message must arrive once after the restart.
        let said = common::output_text(&out);
        assert!(
            out.status.success() || said.contains("closed the connection"),
            "{said}"
        );
        daemon.wait_death(LONG);
        let _daemon = Daemon::start(&server, state.path(), &args);
        check_once(
            &server,
            "a1",
            &format!("[from person] hello there from the person ({point})"),
            state.path(),
            point,
        );
    }
}

/// Sends `@a1 burst T-I` messages on one connection until the daemon goes away; the contents
/// it acknowledged.
fn send_until_gone(state: &Path, t: usize) -> Vec<String> {
    use std::io::{BufRead, Write};
    let mut acked = Vec::new();
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(state.join("macs.sock")) else {
        return acked;
    };
    let _ = stream.set_read_timeout(Some(LONG));
    let Ok(read) = stream.try_clone() else {
        return acked;
    };
    let mut reader = std::io::BufReader::new(read);
    for i in 0..300 {
        let content = format!("burst {t}-{i}");
        let line = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "chat.send",
            "params": {"content": format!("@a1 {content}")}});
        if writeln!(stream, "{line}").is_err() {
            break;
        }
        let mut reply = String::new();
        match reader.read_line(&mut reply) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        let v: Value = serde_json::from_str(&reply).expect("a JSON reply");
        assert!(v["result"]["id"].is_string(), "{v}");
        acked.push(format!("[from person] {content}"));
    }
    acked
}

#[test]
fn chat_calls_handled_together_survive_a_crash_in_their_batch() {
    use macs_bridge::faults::BATCH_POINTS;
    for point in BATCH_POINTS {
        let server = session("a1", "on-input\nbusy 20ms\nend\n");
        let state = tempfile::tempdir().expect("state dir");
        let args = ["--mode", "manual", "--no-heuristic"];
        // At the 20th batch: earlier ones were committed and answered.
        let armed = format!("{point}:20");
        let daemon = Daemon::start_env(&server, state.path(), &args, &[("MACS_CRASH_AT", &armed)]);
        wait_for("the API socket", LONG, || {
            std::os::unix::net::UnixStream::connect(state.path().join("macs.sock"))
                .ok()
                .map(drop)
        });
        // Six connections at once: calls arrive together and are handled in one batch.
        let senders: Vec<_> = (0..6)
            .map(|t| {
                let dir = state.path().to_path_buf();
                std::thread::spawn(move || send_until_gone(&dir, t))
            })
            .collect();
        let acked: Vec<String> = senders
            .into_iter()
            .flat_map(|h| h.join().expect("sender"))
            .collect();
        daemon.wait_death(LONG);
        let stored: Vec<String> = store(state.path())
            .history(&macs_bridge::store::HistoryQuery {
                limit: Some(10_000),
                ..Default::default()
            })
            .expect("history")
            .into_iter()
            .map(|m| format!("[from person] {}", m.message.content))
            .collect();
        // Nothing the daemon acknowledged is lost.
        for a in &acked {
            assert!(
                stored.contains(a),
                "{point}: {a} was acknowledged, not stored"
            );
        }
        let _daemon = Daemon::start(&server, state.path(), &args);
        // Every stored message is typed once, none twice, nothing else.
        let typed = wait_for(
            &format!("every stored message typed ({point})"),
            LONG,
            || {
                let v = sim_inputs(&server, "a1");
                (v.len() >= stored.len()).then_some(v)
            },
        );
        let mut sorted_typed = typed.clone();
        sorted_typed.sort();
        let mut sorted_stored = stored.clone();
        sorted_stored.sort();
        assert_eq!(sorted_typed, sorted_stored, "{point}");
        wait_for("the journal rows final", LONG, || {
            let c = store(state.path()).counts().expect("counts");
            (c.deliveries.delivering + c.deliveries.queued == 0).then_some(())
        });
        assert_eq!(
            sim_inputs(&server, "a1").len(),
            typed.len(),
            "{point}: typed twice"
        );
        eprintln!(
            "{point}: {} acknowledged, {} stored, each typed once",
            acked.len(),
            stored.len()
        );
    }
}
