//! The group chat end to end: scripted agents in a real tmux on a private socket, the daemon as
//! a process, the person's side played by `macs-bridge chat` with piped input and by raw API
//! clients.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{agents, sim_inputs, wait_for, Daemon, Raw, TmuxServer};

const LONG: Duration = Duration::from_secs(30);

/// An agent that takes every input, works a moment, and logs it.
const LISTENER: &str = "on-input\nbusy 200ms\nend\n";

/// `macs-bridge chat` with `lines` on standard input, as a script would run it.
fn chat(server: &TmuxServer, state: &Path, lines: &str) -> Output {
    let mut child = server
        .bridge("macs")
        .args(["chat", "--state-dir"])
        .arg(state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write");
    child.wait_with_output().expect("chat output")
}

fn text(out: &Output) -> String {
    common::output_text(out)
}

fn inputs(server: &TmuxServer, who: &str, n: usize) -> Vec<String> {
    wait_for(&format!("{n} input(s) in {who}"), LONG, || {
        let v = sim_inputs(server, who);
        (v.len() >= n).then_some(v)
    })
}

#[test]
fn broadcast_reaches_all_but_the_sender_and_direct_reaches_one() {
    let server = agents(&[("a1", LISTENER), ("a2", LISTENER), ("a3", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());

    let out = chat(&server, state.path(), "hello everyone\n");
    assert!(out.status.success(), "{}", text(&out));
    for a in ["a1", "a2", "a3"] {
        assert_eq!(
            inputs(&server, a, 1),
            vec!["[from person to all] hello everyone"]
        );
    }
    // A raw client sending as agent a1 to all: a1 does not get its own message.
    let mut raw = Raw::connect(state.path());
    let r = raw.send(r#"{"jsonrpc":"2.0","id":1,"method":"chat.send","params":{"from":"a1","content":"@all from a1"}}"#);
    assert_eq!(
        r["result"]["recipients"],
        serde_json::json!(["a2", "a3"]),
        "{r}"
    );
    inputs(&server, "a2", 2);
    inputs(&server, "a3", 2);

    let out = chat(&server, state.path(), "@a2 just for you\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inputs(&server, "a2", 3)[2], "[from person] just for you");
    // The next broadcast arrives after the direct one everywhere: so the direct one went
    // to a2 alone.
    chat(&server, state.path(), "@all last\n");
    assert_eq!(inputs(&server, "a1", 2)[1], "[from person to all] last");
    assert_eq!(inputs(&server, "a3", 3)[2], "[from person to all] last");
    assert_eq!(sim_inputs(&server, "a1").len(), 2);
    assert_eq!(sim_inputs(&server, "a3").len(), 3);
    drop(daemon);
}

#[test]
fn an_unknown_name_is_an_error_and_nothing_is_sent() {
    let server = agents(&[("a1", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let out = chat(&server, state.path(), "@nobody hello\n");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("unknown agent \"nobody\""),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("a1"),
        "the error lists the agents: {}",
        text(&out)
    );
    // a1 gets the next message and nothing before it.
    chat(&server, state.path(), "@a1 after\n");
    assert_eq!(inputs(&server, "a1", 1), vec!["[from person] after"]);
}

#[test]
fn an_agents_message_block_is_delivered_once_with_no_loop() {
    let talker = "message a2\nPlease review the parser.\nend\non-input\nbusy 200ms\nend\n";
    let server = agents(&[("a1", talker), ("a2", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    assert_eq!(
        inputs(&server, "a2", 1),
        vec!["[from a1] Please review the parser."]
    );
    // A marker for "everything before has been handled": a later message to both.
    chat(&server, state.path(), "@all done\n");
    assert_eq!(inputs(&server, "a2", 2)[1], "[from person to all] done");
    assert_eq!(inputs(&server, "a1", 1), vec!["[from person to all] done"]);
    assert_eq!(
        daemon.count(|e| e["event"] == "message" && e["from"] == "a1"),
        1,
        "the block was routed more than once"
    );
}

#[test]
fn a_busy_agent_gets_its_messages_in_order_once_idle_and_urgent_and_keys_go_first() {
    let slow = "busy 5s\non-input\nbusy 200ms\nend\n";
    let server = agents(&[("a1", slow)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let out = chat(
        &server,
        state.path(),
        "@a1 one\n@a1 two\n@a1 !urgent three\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("queued"), "{}", text(&out));
    // The urgent message is typed while a1 is busy (the agent queues it itself); the others
    // wait for idle, in order.
    let got = inputs(&server, "a1", 3);
    assert_eq!(
        got,
        vec![
            "[from person] urgent three",
            "[from person] one",
            "[from person] two"
        ]
    );
    let log = std::fs::read_to_string(server.path("a1.log")).expect("log");
    let first: serde_json::Value =
        serde_json::from_str(log.lines().next().expect("line")).expect("json");
    assert_eq!(
        first["queued"], true,
        "the urgent one arrived while busy: {first}"
    );

    // A key goes straight to the pane: C-c interrupts a busy agent.
    let busy_again = "on-input\nbusy 30s\nend\n";
    let server = agents(&[("a1", busy_again)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    chat(&server, state.path(), "@a1 start working\n");
    wait_for("a1 busy", LONG, || {
        server
            .capture("macs")
            .contains("esc to interrupt")
            .then_some(())
    });
    let out = chat(&server, state.path(), "@a1 !C-c\n");
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the interrupt", LONG, || {
        server.capture("macs").contains("Interrupted").then_some(())
    });
}

#[test]
fn pause_holds_and_resume_flushes() {
    let server = agents(&[("a1", LISTENER), ("a2", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let out = chat(&server, state.path(), "/pause a1\n@all while paused\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        inputs(&server, "a2", 1),
        vec!["[from person to all] while paused"]
    );
    // a1 is paused: a later message to a2 arrives, a1 still has nothing.
    chat(&server, state.path(), "@a2 check\n");
    inputs(&server, "a2", 2);
    assert!(sim_inputs(&server, "a1").is_empty());
    let out = chat(&server, state.path(), "/resume a1\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        inputs(&server, "a1", 1),
        vec!["[from person to all] while paused"]
    );
}

#[test]
fn a_kill_9_and_restart_delivers_every_pending_message_exactly_once() {
    let slow = "busy 6s\non-input\nbusy 200ms\nend\n";
    let server = agents(&[("a1", slow), ("a2", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let out = chat(&server, state.path(), "@a1 first\n@a1 second\n@a2 to a2\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inputs(&server, "a2", 1), vec!["[from person] to a2"]);
    // a1 is still busy: its two messages wait in the queue when the daemon dies.
    assert!(sim_inputs(&server, "a1").is_empty());
    daemon.crash();
    let _daemon = Daemon::start_manual(&server, state.path());
    assert_eq!(
        inputs(&server, "a1", 2),
        vec!["[from person] first", "[from person] second"]
    );
    chat(&server, state.path(), "@all end\n");
    assert_eq!(inputs(&server, "a2", 2)[1], "[from person to all] end");
    assert_eq!(inputs(&server, "a1", 3).len(), 3);
    assert_eq!(sim_inputs(&server, "a2").len(), 2, "a2 got a message twice");
}

#[test]
fn bad_api_input_gets_errors_while_other_clients_keep_working_and_the_socket_is_private() {
    let server = agents(&[("a1", LISTENER)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let mode = std::fs::metadata(state.path().join("macs.sock"))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let mut bad = Raw::connect(state.path());
    let mut good = Raw::connect(state.path());
    let r = bad.send("{not json");
    assert_eq!(r["error"]["code"], -32700, "{r}");
    let r = bad.send(r#"{"jsonrpc":"2.0","id":2,"method":"no.such.method"}"#);
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let big = "x".repeat(70 * 1024);
    let r = bad.send(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"chat.send","params":{{"content":"{big}"}}}}"#
    ));
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = bad.send(r#"{"jsonrpc":"2.0","id":4,"method":"chat.send","params":{"content":42}}"#);
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // The same connection still works, and so does another one.
    let r = bad.send(r#"{"jsonrpc":"2.0","id":5,"method":"agents.list"}"#);
    assert_eq!(r["result"]["agents"][0]["name"], "a1", "{r}");
    let r = good.send(r#"{"jsonrpc":"2.0","id":"x","method":"chat.send","params":{"to":"a1","content":"still here"}}"#);
    assert_eq!(r["id"], "x");
    assert_eq!(r["result"]["recipients"], serde_json::json!(["a1"]), "{r}");
    assert_eq!(inputs(&server, "a1", 1), vec!["[from person] still here"]);
    // An agent may not send keys or urgent messages.
    let r = good.send(r#"{"jsonrpc":"2.0","id":6,"method":"chat.send","params":{"from":"a1","to":"all","content":"!C-c"}}"#);
    assert_eq!(r["error"]["code"], -32002, "{r}");
}

#[test]
fn agents_answering_agents_stop_at_the_hop_limit_and_the_held_message_waits_for_the_person() {
    let server = agents(&[
        ("a1", "on-input\nmessage a2 ping from a1\nend\n"),
        ("a2", "on-input\nmessage a3 ping from a2\nend\n"),
        ("a3", "on-input\nmessage a1 ping from a3\nend\n"),
    ]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let out = chat(&server, state.path(), "@a1 go\n");
    assert!(out.status.success(), "{}", text(&out));
    let held = daemon.wait_event("a held message", |e| e["event"] == "held");
    assert_eq!(held["to"], "a3", "{held}");
    // The storm is over: a1 got 2, a2 2, a3 1, and it stays so.
    std::thread::sleep(Duration::from_millis(1500));
    let count = |who: &str| sim_inputs(&server, who).len();
    assert_eq!((count("a1"), count("a2"), count("a3")), (2, 2, 1));
    // The person lets it through by resuming its recipient.
    let out = chat(&server, state.path(), "/resume a3\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inputs(&server, "a3", 2)[1], "[from a2] ping from a2");
}
