//! The conversation comes back, end to end: scripted agents in a real tmux on a private socket,
//! the daemon as a process, the person and the agents' tools played by raw API clients. The
//! agents' replies are read from their screens and stored as chat messages; tasks, discussions
//! and lines the person types into a pane go through the same path.

mod common;

use std::time::Duration;

use common::{agents, sim_inputs, wait_for, Daemon, Raw};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(30);

/// Answers every input with one line naming itself.
fn replier(name: &str) -> String {
    format!("on-input\nbusy 300ms\nsay {name} thinks: $INPUT\nend\n")
}

fn history(api: &mut Raw) -> Vec<Value> {
    let r = api.call("chat.history", json!({"limit": 200}));
    r["result"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the history holds `n` replies to `id`; returns them.
fn replies_to(api: &mut Raw, id: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} replies to {id}"), LONG, || {
        let found: Vec<Value> = history(api)
            .into_iter()
            .filter(|m| m["in_reply_to"] == id)
            .collect();
        (found.len() >= n).then_some(found)
    })
}

#[test]
fn at_all_to_three_agents_yields_three_replies_pushed_and_typed_into_nobody() {
    let (a1, a2, a3) = (replier("a1"), replier("a2"), replier("a3"));
    let server = agents(&[("a1", &a1), ("a2", &a2), ("a3", &a3)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let mut watcher = Raw::connect(state.path());
    let sub = watcher.call("subscribe", json!({"events": ["chat.message"]}));
    assert!(sub.get("error").is_none(), "{sub}");

    let mut person = Raw::connect(state.path());
    let sent = person.call(
        "chat.send",
        json!({"content": "@all analyze this function"}),
    );
    let id = sent["result"]["id"].as_str().expect("an id").to_string();
    let replies = replies_to(&mut person, &id, 3);
    let mut from: Vec<&str> = replies
        .iter()
        .map(|m| m["from"].as_str().unwrap())
        .collect();
    from.sort();
    assert_eq!(from, ["a1", "a2", "a3"]);
    for m in &replies {
        let who = m["from"].as_str().unwrap();
        assert_eq!(m["to"], "person", "{m}");
        assert_eq!(
            m["content"],
            format!("{who} thinks: [from person to all] analyze this function"),
            "the reply's text without the CLI's chrome: {m}"
        );
        assert!(
            m["deliveries"].as_array().is_none_or(|d| d.is_empty()),
            "{m}"
        );
    }
    // Pushed to the subscriber as they came.
    for _ in 0..3 {
        let pushed = watcher.wait_push(|v| {
            v["method"] == "chat.message" && v["params"]["in_reply_to"] == id.as_str()
        });
        assert_eq!(pushed["params"]["to"], "person");
    }
    // Nothing typed into anyone but the person's one message each.
    for a in ["a1", "a2", "a3"] {
        assert_eq!(
            sim_inputs(&server, a),
            ["[from person to all] analyze this function"],
            "{a}"
        );
    }
}

#[test]
fn handoff_returns_the_reply_and_assign_types_it_into_the_caller_once() {
    let boss = "on-input\nbusy 200ms\nsay noted\nend\n";
    let worker = replier("worker");
    let server = agents(&[("boss", boss), ("worker", &worker)]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());

    // The boss's tools speak as the boss.
    let mut tools = Raw::connect(state.path());
    let hello = tools.call("hello", json!({"name": "boss"}));
    assert!(hello.get("error").is_none(), "{hello}");
    let r = tools.call(
        "task.handoff",
        json!({"to": "worker", "task": "count the files", "wait_seconds": 30}),
    );
    let info = &r["result"];
    assert_eq!(info["status"], "replied", "{r}");
    assert_eq!(info["reply"], "worker thinks: [from boss] count the files");
    // A handoff's reply is returned, not typed into the boss.
    assert!(sim_inputs(&server, "boss").is_empty());

    let r = tools.call(
        "task.assign",
        json!({"to": "worker", "task": "write the notes"}),
    );
    assert_eq!(r["result"]["status"], "pending", "{r}");
    let got = wait_for("the reply typed into the boss", LONG, || {
        let v = sim_inputs(&server, "boss");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(
        got,
        ["[reply from worker] worker thinks: [from boss] write the notes"]
    );
    // Once: the boss's own reply to it goes back as a message, typed into nobody.
    let id = r["result"]["id"].as_str().unwrap().to_string();
    let mut person = Raw::connect(state.path());
    let reply_id = replies_to(&mut person, &id, 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back = replies_to(&mut person, &reply_id, 1);
    assert_eq!(
        (back[0]["from"].as_str(), back[0]["to"].as_str()),
        (Some("boss"), Some("worker"))
    );
    // (Stored with its deliveries at once: none, so it is typed into nobody.)
    assert!(
        back[0]["deliveries"]
            .as_array()
            .is_none_or(|d| d.is_empty()),
        "{}",
        back[0]
    );
    assert_eq!(sim_inputs(&server, "worker").len(), 2);
    assert_eq!(sim_inputs(&server, "boss").len(), 1);
}

#[test]
fn a_discussion_relays_two_rounds_then_stops_and_stop_ends_one_early() {
    let (a, b) = (replier("a"), replier("b"));
    let server = agents(&[("a", &a), ("b", &b)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let mut person = Raw::connect(state.path());
    let r = person.call(
        "chat.discuss",
        json!({"content": "tabs or spaces?", "rounds": 2}),
    );
    assert_eq!(r["result"]["agents"], json!(["a", "b"]), "{r}");
    let id = r["result"]["id"].as_str().unwrap().to_string();
    daemon.wait_event("the discussion to end", |e| {
        e["event"] == "discuss" && e["id"] == id.as_str() && e["ended"] == true
    });
    let a_in = sim_inputs(&server, "a");
    assert_eq!(a_in.len(), 2, "{a_in:?}");
    assert_eq!(a_in[0], "[from person] tabs or spaces?");
    assert_eq!(a_in[1], "[from b] b thinks: [from person] tabs or spaces?");
    assert_eq!(sim_inputs(&server, "b").len(), 2);
    // Every relay is in the chat.
    let relays = history(&mut person)
        .into_iter()
        .filter(|m| m["meta"]["relay"] == true)
        .count();
    assert_eq!(relays, 2);

    // A second one, with b paused: a answers round one, b's message is held; /stop ends it.
    let mut watcher = Raw::connect(state.path());
    watcher.call("subscribe", json!({"events": ["delivery.update"]}));
    person.call("agent.pause", json!({"name": "b"}));
    let r = person.call(
        "chat.discuss",
        json!({"content": "next topic", "rounds": 5}),
    );
    let id2 = r["result"]["id"].as_str().unwrap().to_string();
    replies_to(&mut person, &id2, 1);
    let stop = person.call("chat.stop", json!({}));
    assert_eq!(stop["result"]["stopped"], id2.as_str(), "{stop}");
    // Resumed, b's held message of the stopped discussion is withdrawn, not typed.
    person.call("agent.resume", json!({"name": "b"}));
    let failed = watcher.wait_push(|v| {
        v["method"] == "delivery.update"
            && v["params"]["recipient"] == "b"
            && v["params"]["status"] == "failed"
    });
    assert!(
        failed["params"]["detail"]
            .as_str()
            .unwrap()
            .contains("discussion"),
        "{failed}"
    );
    assert_eq!(sim_inputs(&server, "a").len(), 3);
    assert_eq!(sim_inputs(&server, "b").len(), 2);
}

#[test]
fn a_line_the_person_types_into_a_pane_is_in_the_history_with_the_agents_reply() {
    let a = replier("a");
    let server = agents(&[("a", &a)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let mut person = Raw::connect(state.path());
    // Wait until the daemon has seen the pane idle, then type as a person would.
    wait_for("a to be idle", LONG, || {
        let r = person.call("agents.list", json!({}));
        (r["result"]["agents"][0]["state"] == "idle").then_some(())
    });
    let pane = server.pane_id("macs:0.0");
    server.ok(&["send-keys", "-t", &pane, "-l", "what changed today?"]);
    wait_for("the line on screen", LONG, || {
        server
            .capture(&pane)
            .contains("what changed today?")
            .then_some(())
    });
    wait_for("the daemon to see the line in the prompt", LONG, || {
        let r = person.call("agents.list", json!({}));
        (r["result"]["agents"][0]["typing"] == true).then_some(())
    });
    server.ok(&["send-keys", "-t", &pane, "Enter"]);
    let typed = wait_for("the person's line in the history", LONG, || {
        history(&mut person)
            .into_iter()
            .find(|m| m["from"] == "person" && m["content"] == "what changed today?")
    });
    assert_eq!(typed["to"], "a");
    let id = typed["id"].as_str().unwrap().to_string();
    daemon.wait_event("the reply", |e| {
        e["event"] == "reply" && e["in_reply_to"] == id.as_str()
    });
    let reply = replies_to(&mut person, &id, 1);
    assert_eq!(reply[0]["content"], "a thinks: what changed today?");
}

#[test]
fn the_chat_seat_starts_and_stops_a_discussion() {
    // b answers slowly: /stop comes while round one is under way.
    let a = replier("a");
    let b = "on-input\nbusy 3s\nsay b thinks: $INPUT\nend\n";
    let server = agents(&[("a", &a), ("b", b)]);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let out = common::chat_lines(&server, state.path(), "/discuss 3 tabs or spaces?\n");
    let text = common::output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 rounds among a, b"), "{text}");
    let started = daemon.wait_event("the discussion", |e| e["event"] == "discuss");
    let id = started["id"].as_str().unwrap().to_string();
    let mut person = Raw::connect(state.path());
    replies_to(&mut person, &id, 1);
    let out = common::chat_lines(&server, state.path(), "/stop\n");
    let text = common::output_text(&out);
    assert!(text.contains(&format!("discussion {id} stopped")), "{text}");
    // b's reply still comes back, and nothing more is relayed to anyone.
    daemon.wait_event("b's reply", |e| e["event"] == "reply" && e["from"] == "b");
    // (A relay would be stored before the reply's event is printed.)
    let relays = history(&mut person)
        .into_iter()
        .filter(|m| m["meta"]["relay"] == true)
        .count();
    assert_eq!(relays, 0);
    assert_eq!(sim_inputs(&server, "a"), ["[from person] tabs or spaces?"]);
    assert_eq!(sim_inputs(&server, "b"), ["[from person] tabs or spaces?"]);
    assert_eq!(daemon.count(|e| e["event"] == "relay"), 0);
}
