//! History is not a request: a daemon that meets a pane for the first time (a fresh state dir)
//! files only the block of the current, unanswered turn, never blocks a person already
//! answered by hand.

mod common;

use std::time::Duration;

use common::{sim_command, sim_inputs, wait_for, Daemon, TmuxServer};

const LONG: Duration = Duration::from_secs(30);

const FOUR: &str = "request
Question 1: tests first?
end
wait
say noted
request
Question 2: which port?
end
wait
say noted
request
Question 3: keep the cache?
end
wait
say noted
request
Question 4: ship it?
end
wait
say shipped
";

/// A worker that asked three questions a person answered in the pane, and a fourth that waits.
fn answered_by_hand() -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, "worker", FOUR, "");
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    for n in 1..=3 {
        wait_for(&format!("question {n}"), LONG, || {
            server
                .capture("macs")
                .contains(&format!("Question {n}:"))
                .then_some(())
        });
        server.ok(&[
            "send-keys",
            "-t",
            "macs",
            "-l",
            &format!("answer {n} by hand"),
        ]);
        server.ok(&["send-keys", "-t", "macs", "Enter"]);
        wait_for(&format!("answer {n}"), LONG, || {
            (sim_inputs(&server, "worker").len() == n).then_some(())
        });
    }
    wait_for("question 4", LONG, || {
        server.capture("macs").contains("Question 4:").then_some(())
    });
    server
}

#[test]
fn a_fresh_state_dir_files_only_the_pending_request() {
    for mode in ["manual", "auto"] {
        let server = answered_by_hand();
        let state = tempfile::tempdir().expect("state");
        let args = [
            "--mode",
            mode,
            "--no-heuristic",
            "--controller-backend",
            "manual",
        ];
        let daemon = Daemon::start(&server, state.path(), &args);
        let req = daemon.wait_event("the pending request", |e| e["event"] == "request");
        assert!(
            req["text"]
                .as_str()
                .is_some_and(|t| t.contains("Question 4")),
            "{mode}: {req}"
        );
        std::thread::sleep(Duration::from_millis(800));
        let filed: Vec<String> = daemon
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["event"] == "request")
            .map(|e| e["text"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(filed.len(), 1, "{mode}: filed {filed:?}");
        assert!(
            daemon.count(|e| e["event"] == "history") >= 3,
            "{mode}: the old blocks are not shown as history"
        );
    }
}

#[test]
fn after_a_tmux_server_restart_a_repeated_question_is_a_new_request() {
    const ASK: &str = "request\nShould I run the test suite now?\nend\nwait\nsay ok\n";
    let state = tempfile::tempdir().expect("state");
    let args = ["--mode", "manual", "--no-heuristic"];
    let server = TmuxServer::start("macs", "sleep 600");
    let start_worker = |server: &TmuxServer| {
        let cmd = sim_command(server, "worker", ASK, "");
        server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
        server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    };
    start_worker(&server);
    let daemon = Daemon::start(&server, state.path(), &args);
    let id = daemon.wait_event("the first request", |e| e["event"] == "request")["id"]
        .as_str()
        .expect("id")
        .to_string();
    std::fs::write(
        state.path().join("outbox").join(format!("{id}.md")),
        "Yes.\n",
    )
    .expect("answer");
    daemon.wait_event("the answer", |e| e["event"] == "delivered");
    let _ = daemon.stop();
    // The tmux server restarts: its first pane is `%0` again, and asks the same question.
    server.ok(&["kill-server"]);
    wait_for("a new tmux server", LONG, || {
        let out = server.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "macs",
            "-x",
            "120",
            "-y",
            "40",
            "sleep 600",
        ]);
        out.status.success().then_some(())
    });
    start_worker(&server);
    wait_for("the question on the new server", LONG, || {
        server
            .capture("macs")
            .contains("Should I run the test suite now?")
            .then_some(())
    });
    let daemon = Daemon::start(&server, state.path(), &args);
    let again = daemon.wait_event("the repeated question", |e| e["event"] == "request");
    assert_ne!(again["id"], id.as_str());
}
