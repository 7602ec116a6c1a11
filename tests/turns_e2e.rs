//! Turns that end with no visible busy phase (a fast tool, a short reply): after the bridge
//! typed something, a new reply on an idle pane ends the turn, and a question there is filed.

mod common;

use std::time::Duration;

use common::{sim_command, wait_for, Daemon, TmuxServer};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_question_in_a_reply_with_no_busy_phase_is_filed() {
    // Replies at once, never showing a working line.
    let script = "say Ready.
loop
wait
say Step $ITER is done. Should I go on with step $ITER?
end
";
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, "worker", script, "");
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    let state = tempfile::tempdir().expect("state");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "manual", "--heuristic"]);
    wait_for("the API socket", LONG, || {
        std::os::unix::net::UnixStream::connect(state.path().join("macs.sock"))
            .ok()
            .map(drop)
    });
    // The person starts the worker through the chat.
    let out = common::chat_lines(&server, state.path(), "@worker start\n");
    assert!(out.status.success(), "{}", common::output_text(&out));
    let first = daemon.wait_event("the first question", |e| {
        e["event"] == "request" && e["text"].as_str().is_some_and(|t| t.contains("step 1"))
    });
    let id = first["id"].as_str().expect("id").to_string();
    std::fs::write(
        state.path().join("outbox").join(format!("{id}.md")),
        "Yes.\n",
    )
    .expect("answer");
    daemon.wait_event("the second question", |e| {
        e["event"] == "request" && e["text"].as_str().is_some_and(|t| t.contains("step 2"))
    });
    assert_eq!(daemon.count(|e| e["event"] == "request"), 2);
}
