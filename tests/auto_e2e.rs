//! Auto mode end to end: controller backends (pane, exec, rules) and their chain, with scripted
//! agents in a real tmux on a private socket.

mod common;

use std::time::Duration;

use common::{sim_command, sim_inputs, wait_for, Daemon, TmuxServer};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

const WORKER: &str = "request
Should I add a cache?
end
wait
request
Which port should I use?
end
wait
say thanks
";

const CONTROLLER: &str = "on-input
think 800ms
respond
WORKER INSTRUCTIONS:
Go ahead with: $REQUEST
NOTES:
private note $N
end
end
";

/// A session with a worker pane and, when given, a controller pane, both sim-agents.
fn team(worker: &str, controller: Option<&str>) -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, "worker", worker, "");
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    if let Some(script) = controller {
        let cmd = sim_command(&server, "controller", script, "");
        server.ok(&["split-window", "-h", "-t", "macs", &cmd]);
        server.ok(&[
            "set-option",
            "-p",
            "-t",
            "macs:0.1",
            "@macs-agent",
            "controller",
        ]);
    }
    server
}

fn ev(name: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == name
}

fn ev_id(name: &'static str, id: String) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == name && e["id"] == id.as_str()
}

fn request_with(text: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == "request" && e["text"].as_str().is_some_and(|t| t.contains(text))
}

fn id(e: &Value) -> String {
    e["id"].as_str().expect("id").to_string()
}

fn inputs(server: &TmuxServer, who: &str, n: usize) -> Vec<String> {
    wait_for(&format!("{n} input(s) in {who}"), LONG, || {
        let v = sim_inputs(server, who);
        (v.len() >= n).then_some(v)
    })
}

#[test]
fn the_pane_backend_asks_the_controller_and_delivers_its_instructions() {
    let server = team(WORKER, Some(CONTROLLER));
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "auto", "--no-heuristic"]);
    let first = id(&daemon.wait_event("request 1", request_with("add a cache")));
    daemon.wait_event("the controller prompted", ev_id("prompted", first.clone()));
    daemon.wait_event("the answer", ev_id("answer", first.clone()));
    daemon.wait_event("the delivery", ev_id("delivered", first.clone()));
    let second = id(&daemon.wait_event("request 2", request_with("Which port")));
    daemon.wait_event("the second delivery", ev_id("delivered", second.clone()));

    // The worker got exactly the instructions, once each; NOTES stayed out, and the example
    // block of the wrapper (echoed on the controller's screen) was never taken for an answer.
    assert_eq!(
        inputs(&server, "worker", 2),
        vec![
            "Go ahead with: Should I add a cache?",
            "Go ahead with: Which port should I use?"
        ]
    );
    // The controller got one prompt per request, holding the request.
    let prompts = inputs(&server, "controller", 2);
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts[0].contains("Should I add a cache?"),
        "{}",
        prompts[0]
    );
    assert!(prompts[0].contains(&first), "{}", prompts[0]);
    assert_eq!(daemon.count(ev("answer")), 2);
    // Everything is in the archive for a person to audit.
    let archive = common::files_in(&state.path().join("archive"));
    for f in ["request.md", "response.md", "controller.md"] {
        assert!(archive.contains(&format!("{first}.{f}")), "{archive:?}");
    }
    let note = std::fs::read_to_string(
        state
            .path()
            .join("archive")
            .join(format!("{first}.response.md")),
    )
    .expect("response");
    assert!(
        note.contains("private note"),
        "the notes are archived: {note}"
    );
}

#[test]
fn one_request_at_a_time_per_controller() {
    // Two questions in one reply: two requests at once.
    let worker = "reply
<<CONTROLLER_REQUEST>>
First: red or blue?
<<CONTROLLER_REQUEST_END>>
<<CONTROLLER_REQUEST>>
Second: big or small?
<<CONTROLLER_REQUEST_END>>
end
wait
wait
";
    let server = team(worker, Some(CONTROLLER));
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "auto", "--no-heuristic"]);
    let a = id(&daemon.wait_event("request 1", request_with("red or blue")));
    let b = id(&daemon.wait_event("request 2", request_with("big or small")));
    daemon.wait_event("delivery 2", ev_id("delivered", b.clone()));
    let events = daemon.events.lock().expect("lock").clone();
    let pos = |name: &str, id: &str| {
        events
            .iter()
            .position(|e| e["event"] == name && e["id"] == id)
            .unwrap_or_else(|| panic!("no {name} for {id}: {events:#?}"))
    };
    assert!(
        pos("answer", &a) < pos("prompted", &b),
        "the second request reached the controller before the first was answered"
    );
    let prompts = inputs(&server, "controller", 2);
    assert!(prompts[0].contains("red or blue") && !prompts[0].contains("big or small"));
    assert!(prompts[1].contains("big or small"));
}

#[test]
fn a_silent_controller_times_out_to_the_inbox_with_a_note() {
    let silent = "on-input\nsay I will not answer.\nend\n";
    let server = team(WORKER, Some(silent));
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start(
        &server,
        state.path(),
        &[
            "--mode",
            "auto",
            "--no-heuristic",
            "--controller-timeout",
            "2",
        ],
    );
    let first = id(&daemon.wait_event("request", request_with("add a cache")));
    daemon.wait_event("the fallback", ev_id("fallback", first.clone()));
    let note =
        std::fs::read_to_string(state.path().join("inbox").join(format!("{first}.note.txt")))
            .expect("inbox note");
    assert!(note.contains("did not answer within 2s"), "{note}");
    assert!(state
        .path()
        .join("inbox")
        .join(format!("{first}.md"))
        .exists());
    // The person answers instead.
    std::fs::write(
        state.path().join("outbox").join(format!("{first}.md")),
        "Person says: yes.\n",
    )
    .expect("write");
    daemon.wait_event("the delivery", ev_id("delivered", first.clone()));
    assert_eq!(inputs(&server, "worker", 1), vec!["Person says: yes."]);
    assert!(!state
        .path()
        .join("inbox")
        .join(format!("{first}.note.txt"))
        .exists());
}

#[test]
fn the_exec_backend_answers_from_a_command() {
    let server = team(WORKER, None);
    let state = tempfile::tempdir().expect("dir");
    let script = server.path("bot.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n# Reads the prompt, answers with a block quoting its request id line.\nprompt=$(cat)\nid=$(printf '%s\\n' \"$prompt\" | head -n 1)\nprintf '<<CONTROLLER_RESPONSE>>\\nWORKER INSTRUCTIONS:\\nUse plan B.\\nNOTES:\\n%s\\n<<CONTROLLER_RESPONSE_END>>\\n' \"$id\"\n",
    )
    .expect("write");
    let cmd = format!("sh {}", script.display());
    let daemon = Daemon::start(
        &server,
        state.path(),
        &[
            "--mode",
            "auto",
            "--no-heuristic",
            "--controller-backend",
            "exec",
            "--controller-cmd",
            &cmd,
        ],
    );
    let first = id(&daemon.wait_event("request", request_with("add a cache")));
    daemon.wait_event("the delivery", ev_id("delivered", first.clone()));
    let second = id(&daemon.wait_event("request 2", request_with("Which port")));
    daemon.wait_event("delivery 2", ev_id("delivered", second));
    assert_eq!(
        inputs(&server, "worker", 2),
        vec!["Use plan B.", "Use plan B."]
    );
    let response = std::fs::read_to_string(
        state
            .path()
            .join("archive")
            .join(format!("{first}.response.md")),
    )
    .expect("archived");
    assert!(
        response.contains(&first),
        "the command saw the request: {response}"
    );
}

#[test]
fn a_slow_or_failing_command_falls_back_with_its_reason() {
    for (cmd, timeout, says) in [
        ("sleep 30", "1", vec!["did not answer within 1s"]),
        (
            "sh -c 'echo the model is down >&2; exit 3'",
            "30",
            vec!["exit code 3", "the model is down"],
        ),
    ] {
        let server = team(WORKER, None);
        let state = tempfile::tempdir().expect("dir");
        let daemon = Daemon::start(
            &server,
            state.path(),
            &[
                "--mode",
                "auto",
                "--no-heuristic",
                "--controller-backend",
                "exec",
                "--controller-cmd",
                cmd,
                "--controller-timeout",
                timeout,
            ],
        );
        let first = id(&daemon.wait_event("request", request_with("add a cache")));
        daemon.wait_event("the fallback", ev_id("fallback", first.clone()));
        let note =
            std::fs::read_to_string(state.path().join("inbox").join(format!("{first}.note.txt")))
                .expect("inbox note");
        for s in says {
            assert!(note.contains(s), "{cmd}: {note}");
        }
        let archive = common::files_in(&state.path().join("archive"));
        assert!(
            archive.contains(&format!("{first}.fallback.md")),
            "{archive:?}"
        );
        assert!(sim_inputs(&server, "worker").is_empty());
    }
}

#[test]
fn rules_answer_first_and_the_chain_goes_on_when_none_matches() {
    let server = team(WORKER, Some(CONTROLLER));
    let state = tempfile::tempdir().expect("dir");
    std::fs::write(
        state.path().join("macs.yaml"),
        "rules:\n  - match: '(?i)add a cache'\n    reply: No cache for now.\ncontroller_backends: [rules, pane, manual]\n",
    )
    .expect("config");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "auto", "--no-heuristic"]);
    let first = id(&daemon.wait_event("request 1", request_with("add a cache")));
    let answer = daemon.wait_event("the rules' answer", ev_id("answer", first.clone()));
    assert!(
        answer["backend"]
            .as_str()
            .is_some_and(|b| b.starts_with("rules")),
        "{answer}"
    );
    let second = id(&daemon.wait_event("request 2", request_with("Which port")));
    let answer = daemon.wait_event("the pane's answer", ev_id("answer", second.clone()));
    assert_eq!(answer["backend"], "pane");
    daemon.wait_event("delivery 2", ev_id("delivered", second));
    assert_eq!(
        inputs(&server, "worker", 2),
        vec![
            "No cache for now.",
            "Go ahead with: Which port should I use?"
        ]
    );
    // The controller was asked once: for the request no rule answered.
    assert_eq!(sim_inputs(&server, "controller").len(), 1);
}

#[test]
fn a_worker_and_a_controller_that_would_talk_forever_stop_at_the_loop_guard() {
    // Every turn ends with a question (a new one each time); a rule answers every question. The
    // first turn lasts until the daemon has surely seen it start (a question on screen before
    // the daemon came is history, not a request).
    let worker = "busy 3s
say What should I do first?
loop
wait
busy 300ms
say What should I do in step $ITER?
end
";
    let server = team(worker, None);
    let state = tempfile::tempdir().expect("dir");
    std::fs::write(
        state.path().join("macs.yaml"),
        "rules:\n  - match: '(?s).'\n    reply: Keep going.\ncontroller_backends: [rules, manual]\n",
    )
    .expect("config");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "auto", "--heuristic"]);
    let guard = daemon.wait_event("the loop guard", ev("guard"));
    let id = guard["id"].as_str().expect("id").to_string();
    daemon.wait_event("the fallback", ev_id("fallback", id.clone()));
    let answered = sim_inputs(&server, "worker").len();
    assert_eq!(answered, 3, "automatic answers before the guard");
    // And it stays stopped: the question waits in the inbox for the person.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sim_inputs(&server, "worker").len(), 3);
    assert!(state.path().join("inbox").join(format!("{id}.md")).exists());
}
