//! The real Codex CLI, Claude Code and Gemini CLI (from `../shared/real-agents`, offline
//! against its scripted stand-in model): an answer through `outbox/` while the daemon is
//! killed at a crash point, then restarted. The model must receive the answer exactly once,
//! whole, and the agent's prompt must be left empty. Opt-in (it needs the agents installed
//! with `../shared/real-agents/install.sh`):
//!
//! ```text
//! cargo test --test real_agents -- --ignored --nocapture --test-threads 1
//! ```

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{wait_for, Daemon, TmuxServer};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-agents")
}

fn mock_state(port: u16) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /_mock/state HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    serde_json::from_str(body.split("\r\n\r\n").nth(1)?).ok()
}

fn main_requests(port: u16) -> u64 {
    mock_state(port)
        .and_then(|v| v["main_requests"].as_u64())
        .unwrap_or(0)
}

/// The whole text the model got in the last main request.
fn last_text(port: u16) -> String {
    mock_state(port)
        .map(|v| v["last_main"]["user_text"].to_string())
        .unwrap_or_default()
}

/// The mock model with `script` on `port`, and the real `agent` in pane `macs:0.0` of a new
/// private tmux server, labelled `label`.
fn start_agent(agent: &str, port: u16, script: &Path, label: &str) -> TmuxServer {
    let h = harness();
    let _ = Command::new(h.join("stop-all.sh")).output();
    let out = Command::new(h.join("start-mock.sh"))
        .arg(port.to_string())
        .arg(script)
        .output()
        .expect("start the mock");
    assert!(out.status.success(), "{}", common::output_text(&out));
    let server = TmuxServer::start("macs", "sleep 600");
    let out = Command::new(h.join("run-agent.sh"))
        .args([agent, "macs", "macs:0.0"])
        .env("AH_SOCKET", &server.name)
        .env("AH_PORT", port.to_string())
        .output()
        .expect("start the agent");
    assert!(out.status.success(), "{}", common::output_text(&out));
    server.ok(&["set-option", "-p", "-t", "macs:0.0", "@macs-agent", label]);
    server
}

fn run(agent: &str, point: &str, port: u16) {
    let h = harness();
    let server = start_agent(
        agent,
        port,
        &h.join("scripts/controller-request.txt"),
        "worker",
    );
    let state = tempfile::tempdir().expect("state");
    let args = ["--mode", "manual", "--no-heuristic"];
    let daemon = Daemon::start_env(&server, state.path(), &args, &[("MACS_CRASH_AT", point)]);
    // The person asks the agent to start; its reply holds a request block.
    wait_for("the agent to be idle", LONG, || {
        let out = server
            .bridge("macs")
            .args(["status", "--target", "worker"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("idle")
            .then_some(())
    });
    // As a person would: again while the agent is still busy starting up.
    wait_for("the first prompt to be sent", LONG, || {
        let out = server
            .bridge("macs")
            .args([
                "send",
                "--target",
                "worker",
                "Please look at the repository.",
            ])
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    let id = daemon.wait_event_for("the request", LONG, |e| e["event"] == "request")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let before = main_requests(port);
    let answer = format!("Yes, proceed with the plan ({agent}, {point}).");
    std::fs::write(
        state.path().join("outbox").join(format!("{id}.md")),
        format!("{answer}\n"),
    )
    .expect("answer");
    daemon.wait_death(LONG);
    let _daemon = Daemon::start(&server, state.path(), &args);
    wait_for("the model to get the answer", LONG, || {
        (main_requests(port) > before).then_some(())
    });
    let got = last_text(port);
    assert_eq!(
        got.matches(&answer).count(),
        1,
        "{agent} at {point}: the model got {got}"
    );
    // No left-over half of an earlier typing in front of it.
    assert_eq!(
        got.matches(&answer[..12]).count(),
        1,
        "{agent} at {point}: the model got {got}"
    );
    // Give a second typing, if there were one, the time to show.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        main_requests(port),
        before + 1,
        "{agent} at {point}: the model was asked again"
    );
    wait_for("the archive", LONG, || {
        common::files_in(&state.path().join("archive"))
            .contains(&format!("{id}.response.md"))
            .then_some(())
    });
    let screen = server.capture("macs:0.0");
    assert!(
        !screen
            .lines()
            .rev()
            .take(12)
            .any(|l| l.contains(&answer[..20])
                && (l.contains('›') || l.contains('❯') || l.contains('>'))),
        "{agent} at {point}: the answer is still in the prompt:\n{screen}"
    );
    let _ = Command::new(h.join("stop-all.sh")).output();
}

fn each_point(agent: &str, port: u16) {
    if !harness().join("run-agent.sh").exists() {
        eprintln!("../shared/real-agents is not here; skipped");
        return;
    }
    for (i, point) in ["mid-text", "typed", "submitted"].iter().enumerate() {
        eprintln!("{agent}: crash at {point}");
        run(agent, point, port + i as u16);
    }
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn codex_gets_an_answer_exactly_once_through_crashes() {
    each_point("codex", 18210);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn claude_gets_an_answer_exactly_once_through_crashes() {
    each_point("claude", 18220);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn gemini_gets_an_answer_exactly_once_through_crashes() {
    each_point("gemini", 18230);
}

/// A real agent whose model replies from `script`, a manual daemon watching it and an API
/// connection, once the agent is ready: idle, and past Gemini's start-up (input typed while it
/// shows `Initializing...` is queued and can come back into its prompt unsent). `None` when
/// `../shared/real-agents` is not there.
struct Ready {
    _dir: tempfile::TempDir,
    server: TmuxServer,
    state: tempfile::TempDir,
    daemon: Daemon,
    api: common::Raw,
}

fn ready_agent(agent: &str, port: u16, script: &str) -> Option<Ready> {
    let h = harness();
    if !h.join("run-agent.sh").exists() {
        eprintln!("../shared/real-agents is not here; skipped");
        return None;
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("script.txt");
    std::fs::write(&path, script).expect("script");
    let server = start_agent(agent, port, &path, agent);
    let state = tempfile::tempdir().expect("state");
    let daemon = Daemon::start_env(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
        &[("MACS_BRIDGE_LOG", "macs_bridge::core=debug")],
    );
    wait_for("the API socket", LONG, || {
        std::os::unix::net::UnixStream::connect(state.path().join("macs.sock"))
            .ok()
            .map(|_| ())
    });
    let mut api = common::Raw::connect(state.path());
    let mut ready_since: Option<std::time::Instant> = None;
    wait_for("the agent to be ready", LONG, || {
        let r = api.call("agents.list", serde_json::json!({}));
        let ready = r["result"]["agents"][0]["state"] == "idle"
            && !server.capture("macs:0.0").contains("Initializing...");
        if !ready {
            ready_since = None;
            return None;
        }
        let since = *ready_since.get_or_insert_with(std::time::Instant::now);
        (since.elapsed() >= Duration::from_secs(2)).then_some(())
    });
    Some(Ready {
        _dir: dir,
        server,
        state,
        daemon,
        api,
    })
}

/// The reply the scripted model gives to the person's chat message, and to the line the person
/// types into the pane.
const REPLY_SCRIPT: &str = "### delay=2\nThe function adds two numbers.\nIt has no tests yet.\n### delay=1\nNothing changed today.\n";

/// A chat message to the real agent, and a line typed into its pane by hand: each turn's reply
/// comes back as a chat message from the agent, without the CLI's chrome.
fn replies(agent: &str, port: u16) {
    let Some(Ready {
        _dir,
        server,
        state: _state,
        daemon,
        mut api,
    }) = ready_agent(agent, port, REPLY_SCRIPT)
    else {
        return;
    };
    let h = harness();
    let sent = api.call(
        "chat.send",
        serde_json::json!({"content": format!("@{agent} analyze this function")}),
    );
    let id = sent["result"]["id"].as_str().expect("id").to_string();
    let reply = daemon.wait_event_for("the reply", LONG, |e| {
        e["event"] == "reply" && e["in_reply_to"] == id.as_str()
    });
    let history = api.call("chat.history", serde_json::json!({"limit": 50}));
    let stored = history["result"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == reply["id"])
        .cloned()
        .expect("the reply in the history");
    assert_eq!(
        stored["content"], "The function adds two numbers.\nIt has no tests yet.",
        "{agent}: {stored}"
    );
    assert_eq!(stored["from"], agent);

    // The person types a line into the pane themselves.
    wait_for("the agent to be idle again", LONG, || {
        let r = api.call("agents.list", serde_json::json!({}));
        (r["result"]["agents"][0]["state"] == "idle").then_some(())
    });
    // (No `?`: typed at the end of Gemini's prompt it opens the shortcuts panel instead.)
    server.ok(&[
        "send-keys",
        "-t",
        "macs:0.0",
        "-l",
        "tell me what changed today",
    ]);
    wait_for("the daemon to see the line typed", LONG, || {
        let r = api.call("agents.list", serde_json::json!({}));
        (r["result"]["agents"][0]["typing"] == true).then_some(())
    });
    // A person presses Enter a moment after the line is in: Gemini takes an Enter that comes
    // within 40 ms of pasted text (what `send-keys -l` looks like to it) as a new line. This
    // pause is the person's rhythm, not a wait for anything.
    std::thread::sleep(Duration::from_millis(300));
    server.ok(&["send-keys", "-t", "macs:0.0", "Enter"]);
    // (On a time-out, the agent's screen says more than the daemon's events.)
    let found = daemon.find_event_within(LONG, |e| e["event"] == "typed");
    let typed = found.unwrap_or_else(|| {
        panic!(
            "{agent}: the person's line was not recorded; screen:\n{}\nlog:\n{}",
            server.capture("macs:0.0"),
            daemon.stderr.lock().expect("lock")
        )
    });
    let typed_id = typed["id"].as_str().expect("id").to_string();
    let reply = daemon.wait_event_for("the reply to the typed line", LONG, |e| {
        e["event"] == "reply" && e["in_reply_to"] == typed_id.as_str()
    });
    let history = api.call("chat.history", serde_json::json!({"limit": 50}));
    let messages = history["result"]["messages"].as_array().expect("messages");
    let line = messages
        .iter()
        .find(|m| m["id"] == typed_id.as_str())
        .expect("the line");
    assert_eq!(
        line["content"], "tell me what changed today",
        "{agent}: {line}"
    );
    let stored = messages
        .iter()
        .find(|m| m["id"] == reply["id"])
        .expect("the reply");
    assert_eq!(
        stored["content"], "Nothing changed today.",
        "{agent}: {stored}"
    );
    let _ = Command::new(h.join("stop-all.sh")).output();
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn codex_replies_come_back_into_the_chat() {
    replies("codex", 18240);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn claude_replies_come_back_into_the_chat() {
    replies("claude", 18241);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn gemini_replies_come_back_into_the_chat() {
    replies("gemini", 18242);
}

fn mock_log(port: u16) -> Vec<Value> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /_mock/log HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str::<Vec<Value>>(b).ok())
        .unwrap_or_default()
}

/// How long a message queued while the agent works waits after its turn ends: each message
/// is sent while the previous one's turn runs (the model holds its reply back for `BUSY`
/// seconds), and the gap is the next request's arrival at the model minus the moment the model
/// began its reply. Prints the figures; asserts only that every message arrived once.
fn queued_after_a_turn(agent: &str, port: u16) {
    const TURNS: usize = 8;
    const BUSY: f64 = 3.0;
    let replies: String = (0..=TURNS)
        .map(|i| format!("### delay={BUSY}\nNoted, message {i}.\n"))
        .collect();
    // (Every part bound: what a pattern leaves out is dropped at once, the tmux server with it.)
    let Some(Ready {
        _dir,
        server: _server,
        state: _state,
        daemon,
        mut api,
    }) = ready_agent(agent, port, &replies)
    else {
        return;
    };
    let h = harness();
    let base = main_requests(port);
    for i in 0..=TURNS {
        let sent = api.call(
            "chat.send",
            serde_json::json!({"content": format!("@{agent} message {i} of the run")}),
        );
        assert!(sent["result"]["id"].is_string(), "{sent}");
        wait_for("the model to get the message", LONG, || {
            (main_requests(port) > base + i as u64).then_some(())
        });
    }
    let log = mock_log(port);
    let main: Vec<&Value> = log.iter().filter(|r| r["kind"] == "main").collect();
    let times: Vec<f64> = main
        .iter()
        .rev()
        .take(TURNS + 1)
        .rev()
        .filter_map(|r| r["t"].as_f64())
        .collect();
    for i in 0..=TURNS {
        let text = format!("message {i} of the run");
        let n = main
            .iter()
            .filter(|r| r.to_string().contains(&text))
            .count();
        assert_eq!(n, 1, "{agent}: {text} reached the model {n} times");
    }
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0] - BUSY) * 1000.0)
        .collect();
    eprintln!(
        "{agent}: model reply began → next queued message at the model, ms: {:?}",
        gaps.iter().map(|g| g.round() as i64).collect::<Vec<_>>()
    );
    gaps.sort_by(f64::total_cmp);
    eprintln!(
        "{agent}: n {} min {:.0} p50 {:.0} max {:.0} (the tests' type delay, 100 ms, included)",
        gaps.len(),
        gaps[0],
        gaps[gaps.len() / 2],
        gaps[gaps.len() - 1]
    );
    drop(daemon);
    let _ = Command::new(h.join("stop-all.sh")).output();
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn codex_a_queued_message_follows_the_turn_end() {
    queued_after_a_turn("codex", 18250);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn claude_a_queued_message_follows_the_turn_end() {
    queued_after_a_turn("claude", 18251);
}

#[test]
#[ignore = "needs the real agent CLIs (../shared/real-agents/install.sh)"]
fn gemini_a_queued_message_follows_the_turn_end() {
    queued_after_a_turn("gemini", 18252);
}
