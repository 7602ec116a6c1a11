//! The bridge daemon end to end: a scripted worker (`macs-bridge sim-agent`) in a real tmux on a
//! private socket, the daemon as a separate process, and a person's side played by files.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{files_in, sim_command, sim_inputs, wait_for, Daemon, TmuxServer};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

/// A session `macs` whose first pane runs a sim-agent worker labelled `worker`.
fn worker(script: &str, extra: &str) -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, "worker", script, extra);
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    server
}

fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("state dir")
}

fn is_request(e: &Value) -> bool {
    e["event"] == "request"
}

fn request_with(text: &'static str) -> impl Fn(&Value) -> bool {
    move |e| is_request(e) && e["text"].as_str().is_some_and(|t| t.contains(text))
}

fn delivered(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["event"] == "delivered" && e["id"] == id
}

fn id_of(e: &Value) -> String {
    e["id"].as_str().expect("an id").to_string()
}

fn write_response(state: &Path, id: &str, text: &str) {
    // As an editor would: a temporary name first, then a rename.
    let tmp = state.join("outbox").join(format!(".{id}.md.swp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, state.join("outbox").join(format!("{id}.md"))).expect("rename");
}

fn wait_inputs(server: &TmuxServer, n: usize) -> Vec<String> {
    wait_for(&format!("{n} input(s) in the worker"), LONG, || {
        let v = sim_inputs(server, "worker");
        (v.len() >= n).then_some(v)
    })
}

const ASK_ONCE: &str = "say Hello.
request
Should I refactor the parser first?
end
wait
say Got it: $INPUT
request
Second question: tests next?
end
wait
";

#[test]
fn manual_mode_files_an_inbox_request_and_delivers_the_answer_once() {
    let server = worker(ASK_ONCE, "");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let req = daemon.wait_event("the request", request_with("refactor the parser"));
    let id = id_of(&req);
    assert_eq!(
        files_in(&state.path().join("inbox")),
        vec![format!("{id}.md")]
    );
    let inbox = std::fs::read_to_string(state.path().join("inbox").join(format!("{id}.md")))
        .expect("inbox file");
    assert!(inbox.starts_with("---\n"), "{inbox}");
    assert!(inbox.contains(&format!("id: {id}")), "{inbox}");
    assert!(inbox.contains("kind: block"), "{inbox}");
    assert!(
        inbox.contains("Should I refactor the parser first?"),
        "{inbox}"
    );

    write_response(
        state.path(),
        &id,
        "<<CONTROLLER_RESPONSE>>\nWORKER INSTRUCTIONS:\nYes, refactor the parser first.\nNOTES:\nsecret reviewer note\n<<CONTROLLER_RESPONSE_END>>\n",
    );
    daemon.wait_event("the delivery", delivered(&id));
    // The worker goes on to its second question: by then the first answer has been typed and
    // submitted once, and the NOTES stayed out.
    let second = daemon.wait_event("the second request", request_with("tests next"));
    assert_ne!(id_of(&second), id);
    let inputs = sim_inputs(&server, "worker");
    assert_eq!(inputs, vec!["Yes, refactor the parser first."]);
    assert_eq!(daemon.count(request_with("refactor the parser")), 1);

    let archive = files_in(&state.path().join("archive"));
    assert!(archive.contains(&format!("{id}.request.md")), "{archive:?}");
    assert!(
        archive.contains(&format!("{id}.response.md")),
        "{archive:?}"
    );
    let archived = std::fs::read_to_string(
        state
            .path()
            .join("archive")
            .join(format!("{id}.response.md")),
    )
    .expect("archived response");
    assert!(
        archived.contains("secret reviewer note"),
        "NOTES are archived: {archived}"
    );
    assert!(!files_in(&state.path().join("outbox"))
        .iter()
        .any(|f| f.starts_with(&id)));
    assert_eq!(
        files_in(&state.path().join("inbox")),
        vec![format!("{}.md", id_of(&second))]
    );
    assert!(daemon.stop().success());
}

#[test]
fn a_block_redrawn_through_many_resizes_is_filed_once() {
    let server = worker(ASK_ONCE, "--look tui");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let req = daemon.wait_event("the request", request_with("refactor the parser"));
    // Each resize makes the TUI repaint everything, re-wrapped to the new width.
    for i in 0..20 {
        let width = if i % 2 == 0 { "70" } else { "120" };
        server.ok(&["resize-window", "-t", "macs", "-x", width]);
        wait_for("the block back on screen", LONG, || {
            server
                .capture("macs")
                .contains("CONTROLLER_REQUEST_END")
                .then_some(())
        });
    }
    write_response(state.path(), &id_of(&req), "Go ahead.\n");
    daemon.wait_event("the second request", request_with("tests next"));
    assert_eq!(daemon.count(request_with("refactor the parser")), 1);
    assert_eq!(sim_inputs(&server, "worker"), vec!["Go ahead."]);
}

#[test]
fn the_same_question_asked_again_later_is_a_new_request() {
    let script = "request
Should I continue?
end
wait
request
Should I continue?
end
wait
say finished asking
";
    let server = worker(script, "");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let first = daemon.wait_event("the first request", request_with("Should I continue?"));
    write_response(state.path(), &id_of(&first), "yes\n");
    daemon.wait_event("the first delivery", delivered(&id_of(&first)));
    let second = daemon.wait_event("the second request", |e| {
        request_with("Should I continue?")(e) && e["id"] != first["id"]
    });
    write_response(state.path(), &id_of(&second), "yes again\n");
    daemon.wait_event("the second delivery", delivered(&id_of(&second)));
    assert_eq!(wait_inputs(&server, 2), vec!["yes", "yes again"]);
    assert_eq!(daemon.count(is_request), 2);
}

#[test]
fn dry_run_prints_detections_and_writes_and_types_nothing() {
    let server = worker(ASK_ONCE, "");
    let state = state_dir();
    let daemon = Daemon::start(&server, state.path(), &["--mode", "manual", "--dry-run"]);
    let req = daemon.wait_event("the detection", request_with("refactor the parser"));
    assert_eq!(req["pane"], server.pane_id("macs"));
    assert_eq!(req["kind"], "block");
    assert!(req.get("id").is_none() || req["id"].is_null());
    assert!(
        files_in(state.path()).is_empty(),
        "{:?}",
        files_in(state.path())
    );
    assert!(sim_inputs(&server, "worker").is_empty());
    assert!(daemon.stop().success());
}

#[test]
fn heuristics_fire_once_per_turn_and_never_on_injected_text() {
    // Starts idle, so the daemon sees the turn begin and end.
    let script = "wait
busy 300ms
say I looked at the parser.
say Should I rewrite the tokenizer too?
wait
busy 300ms
say Working on it now, step two of three.
wait
request
A block to mark the end of the test.
end
wait
";
    let server = worker(script, "");
    let state = state_dir();
    let daemon = Daemon::start(&server, state.path(), &["--mode", "manual", "--heuristic"]);
    server.ok(&["send-keys", "-t", "macs", "-l", "go"]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    let req = daemon.wait_event("the heuristic request", |e| {
        is_request(e) && e["kind"] == "heuristic"
    });
    assert!(
        req["text"]
            .as_str()
            .is_some_and(|t| t.contains("rewrite the tokenizer")),
        "{req}"
    );
    // The answer itself ends with a question mark: echoed as `› …` it must not count.
    write_response(
        state.path(),
        &id_of(&req),
        "Yes, but could you keep the old API?\n",
    );
    daemon.wait_event("the delivery", delivered(&id_of(&req)));
    server.ok(&["send-keys", "-t", "macs", "-l", "next"]);
    wait_for("the worker at its third prompt", LONG, || {
        server
            .capture("macs")
            .contains("step two of three")
            .then_some(())
    });
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    daemon.wait_event("the closing block", request_with("end of the test"));
    let heuristic = daemon.matching(|e| is_request(e) && e["kind"] == "heuristic");
    assert_eq!(
        heuristic.len(),
        1,
        "{heuristic:?}\n{}",
        server.capture("macs")
    );
}

#[test]
fn a_busy_worker_gets_its_answer_only_once_idle_and_the_person_sees_the_queue() {
    let script = "request
Which database should I use?
end
busy 4s
wait
";
    let server = worker(script, "");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let req = daemon.wait_event("the request", request_with("Which database"));
    let id = id_of(&req);
    write_response(state.path(), &id, "Use SQLite.\n");
    daemon.wait_event("the answer queued", |e| {
        e["event"] == "queued" && e["id"] == id
    });
    // While the worker is busy, the pane's status option says what waits.
    wait_for("the queue shown on the pane", LONG, || {
        let out = server.run(&["show-options", "-p", "-v", "-t", "macs", "@macs-status"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("1 queued, waiting for idle")
            .then_some(())
    });
    daemon.wait_event("the delivery", delivered(&id));
    let log = std::fs::read_to_string(server.path("worker.log")).expect("log");
    let entry: Value = serde_json::from_str(log.lines().next().expect("one input")).expect("json");
    assert_eq!(entry["input"], "Use SQLite.");
    assert_eq!(
        entry["queued"], false,
        "typed while the worker was busy: {entry}"
    );
}

#[test]
fn a_persons_half_typed_line_is_not_overwritten() {
    let script = "request
Ready for the next step?
end
wait
wait
";
    let server = worker(script, "");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let req = daemon.wait_event("the request", request_with("Ready for the next"));
    let id = id_of(&req);
    wait_for("the worker idle", LONG, || {
        let out = server
            .bridge("macs")
            .args(["status", "-t", "worker"])
            .output()
            .expect("run");
        (out.status.code() == Some(0)).then_some(())
    });
    server.ok(&["send-keys", "-t", "macs", "-l", "half typed by a pers"]);
    // The person's line is on screen before the answer is saved (the bridge cannot see keys
    // the agent has not echoed yet).
    wait_for("the half-typed line on screen", LONG, || {
        server
            .capture("macs")
            .contains("half typed by a pers")
            .then_some(())
    });
    write_response(state.path(), &id, "Proceed.\n");
    wait_for("the bridge to show that it waits", LONG, || {
        let out = server.run(&["show-options", "-p", "-v", "-t", "macs", "@macs-status"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("prompt holds someone's text")
            .then_some(())
    });
    assert!(sim_inputs(&server, "worker").is_empty());
    assert!(server.capture("macs").contains("half typed by a pers"));
    // The person finishes and submits their own line; then the answer goes in.
    server.ok(&["send-keys", "-t", "macs", "-l", "on"]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    daemon.wait_event("the delivery", delivered(&id));
    assert_eq!(
        wait_inputs(&server, 2),
        vec!["half typed by a person", "Proceed."]
    );
}

#[test]
fn bad_outbox_files_get_an_error_file_and_nothing_is_lost() {
    let server = worker(ASK_ONCE, "");
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let id = id_of(&daemon.wait_event("the request", request_with("refactor the parser")));
    let outbox = state.path().join("outbox");
    let error_of = |name: &str| std::fs::read_to_string(outbox.join(format!("{name}.error")));

    std::fs::write(outbox.join(format!("{id}.md")), "  \n").expect("write");
    let e = wait_for("the empty response's error", LONG, || error_of(&id).ok());
    assert!(e.contains("only whitespace"), "{e}");

    std::fs::write(outbox.join("no-such-request.md"), "hello\n").expect("write");
    let e = wait_for("the unknown id's error", LONG, || {
        error_of("no-such-request").ok()
    });
    assert!(e.contains("no-such-request"), "{e}");

    std::fs::write(outbox.join(format!("{id}.md")), b"\xff\xfe not utf-8\n").expect("write");
    wait_for("the not-UTF-8 error", LONG, || {
        error_of(&id).ok().filter(|e| e.contains("UTF-8"))
    });

    std::fs::write(outbox.join(format!("{id}.md")), "x".repeat(70 * 1024)).expect("write");
    wait_for("the too-large error", LONG, || {
        error_of(&id)
            .ok()
            .filter(|e| e.contains("more than the limit"))
    });
    // Swap and backup files are not responses.
    std::fs::write(outbox.join(format!("{id}.md~")), "backup\n").expect("write");
    std::fs::write(outbox.join(format!(".{id}.md.swp")), "swap\n").expect("write");

    assert!(sim_inputs(&server, "worker").is_empty());
    assert!(
        outbox.join(format!("{id}.md")).exists(),
        "the bad response stays"
    );
    assert!(state.path().join("inbox").join(format!("{id}.md")).exists());

    std::fs::write(outbox.join(format!("{id}.md")), "Fine, go.\n").expect("write");
    daemon.wait_event("the delivery", delivered(&id));
    assert!(!outbox.join(format!("{id}.error")).exists());
    assert_eq!(wait_inputs(&server, 1), vec!["Fine, go."]);
}

#[test]
fn a_kill_9_and_restart_loses_and_duplicates_nothing() {
    let server = worker(ASK_ONCE, "");
    let state = state_dir();
    let args = ["--mode", "manual", "--no-heuristic"];
    let daemon = Daemon::start(&server, state.path(), &args);
    let id = id_of(&daemon.wait_event("the request", request_with("refactor the parser")));
    daemon.crash();

    // The answer is written while the daemon is down.
    write_response(
        state.path(),
        &id,
        "Answer written while the bridge was down.\n",
    );
    let daemon = Daemon::start(&server, state.path(), &args);
    daemon.wait_event("the delivery after restart", delivered(&id));
    daemon.wait_event("the second request", request_with("tests next"));
    assert_eq!(
        daemon.count(request_with("refactor the parser")),
        0,
        "filed twice"
    );
    let second = id_of(&daemon.wait_event("second", request_with("tests next")));
    daemon.crash();

    // Restarted again with the second question still on screen: not filed twice either.
    let daemon = Daemon::start(&server, state.path(), &args);
    write_response(state.path(), &second, "Yes, tests next.\n");
    daemon.wait_event("the second delivery", delivered(&second));
    assert_eq!(
        daemon.count(is_request),
        0,
        "a request on screen was filed again"
    );
    assert_eq!(
        wait_inputs(&server, 2),
        vec![
            "Answer written while the bridge was down.",
            "Yes, tests next."
        ]
    );
    let archive = files_in(&state.path().join("archive"));
    assert_eq!(
        archive
            .iter()
            .filter(|f| f.ends_with(".request.md"))
            .count(),
        2,
        "{archive:?}"
    );
    assert!(files_in(&state.path().join("inbox")).is_empty());
}

#[test]
fn a_block_drawn_and_erased_in_one_burst_is_filed_once() {
    // A full-screen program draws the block on the alternate screen and erases it in the same
    // write: by the time the daemon looks, the screen shows none of it.
    let server = TmuxServer::start("macs", &common::shell());
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    let script = server.path("burst.sh");
    common::write(
        &script,
        b"printf '\\033[?1049h\\033[H<<CONTROLLER_REQUEST>>\\nWhich port should the server use?\\n<<CONTROLLER_REQUEST_END>>\\n\\033[2J\\033[H\\033[?1049l'\n",
    );
    let state = state_dir();
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let run = format!("sh {}", script.display());
    server.ok(&["send-keys", "-t", "macs", "-l", &run]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    let req = daemon.wait_event("the request", request_with("Which port"));
    assert_eq!(req["kind"], "block");
    assert!(!server.capture("macs").contains("Which port"));
    // A block printed plainly afterwards marks the end: by then the daemon has looked at the
    // screen after the burst too. The burst's block was filed once, and never reported as a
    // block that was never closed.
    let end = server.path("end.sh");
    common::write(
        &end,
        b"printf '<<CONTROLLER_REQUEST>>\nA block to mark the end of the test.\n<<CONTROLLER_REQUEST_END>>\n'
",
    );
    let run = format!("sh {}", end.display());
    server.ok(&["send-keys", "-t", "macs", "-l", &run]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    daemon.wait_event("the closing block", request_with("end of the test"));
    assert_eq!(daemon.count(request_with("Which port")), 1);
    assert_eq!(daemon.count(|e| e["event"] == "capped"), 0);
    assert!(daemon.stop().success());
}

#[test]
fn a_pane_that_floods_is_skimmed_and_its_blocks_are_still_filed() {
    // A worker prints megabytes as fast as it can, with a block in the middle and one at the
    // end. Its output is not modelled byte by byte while it floods (the daemon reads tmux's
    // rows to look at it); both blocks are filed once, and once the pane is calm its model is
    // rebuilt and follows it again.
    let server = TmuxServer::start("macs", &common::shell());
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    let script = server.path("flood.sh");
    common::write(
        &script,
        b"seq -f 'flood line %06g of output' 1 120000\n\
printf '<<CONTROLLER_REQUEST>>\\nFlooding: which port should the server use?\\n<<CONTROLLER_REQUEST_END>>\\n'\n\
seq -f 'more flood %06g of output' 1 120000\n\
printf '<<CONTROLLER_REQUEST>>\\nAfter the flood: which host?\\n<<CONTROLLER_REQUEST_END>>\\n'\n",
    );
    let state = state_dir();
    let daemon = Daemon::start_env(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
        &[("MACS_BRIDGE_LOG", "macs_bridge::pane::skim=debug")],
    );
    let run = format!("sh {}", script.display());
    server.ok(&["send-keys", "-t", "macs", "-l", &run]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    daemon.wait_event(
        "the block in the flood",
        request_with("Flooding: which port"),
    );
    daemon.wait_event("the block after it", request_with("After the flood"));
    let log = || daemon.stderr.lock().expect("lock").clone();
    assert!(
        log().contains("skim=true"),
        "the flooding pane was never skimmed: {}",
        log()
    );
    // A pane nobody watches floods too and stays quiet after: what the API shows of it is
    // tmux's screen at the end, not the model left behind mid-flood.
    let other = server.new_window(
        "macs",
        "seq -f 'side flood %06g of output' 1 200000; echo side-flood-done; exec sleep 600",
    );
    wait_for("the side flood to end", Duration::from_secs(30), || {
        server
            .capture(&other)
            .contains("side-flood-done")
            .then_some(())
    });
    let skimmed = format!("pane={other} skim=true");
    wait_for(
        "the side pane to be skimmed",
        Duration::from_secs(10),
        || log().contains(&skimmed).then_some(()),
    );
    let mut api = common::Raw::connect(state.path());
    let r = api.call(
        "pane.snapshot",
        serde_json::json!({ "target": other, "lines": 3 }),
    );
    let last = r["result"]["lines"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l.as_str())
        .map(str::to_string);
    assert_eq!(last.as_deref(), Some("side-flood-done"), "{r}");
    // Calm again: a line typed at the prompt is output after a quiet spell, and the model is
    // rebuilt from tmux and fed again.
    // One line at a time, each once the previous one has been run.
    let mut n = 0;
    wait_for(
        "the pane to be modelled again",
        Duration::from_secs(30),
        || {
            if log().contains("skim=false") {
                return Some(());
            }
            let ran = n == 0
                || server
                    .capture("macs")
                    .lines()
                    .any(|l| l == format!("calm-{n}"));
            if ran {
                n += 1;
                server.ok(&["send-keys", "-t", "macs", "-l", &format!("echo calm-{n}")]);
                server.ok(&["send-keys", "-t", "macs", "Enter"]);
            }
            None
        },
    );
    let marker = format!("calm-{}", n + 1);
    server.ok(&["send-keys", "-t", "macs", "-l", &format!("echo {marker}")]);
    server.ok(&["send-keys", "-t", "macs", "Enter"]);
    // What the daemon shows of the pane is what tmux shows, from the model fed again.
    let shown = wait_for(
        "the model to show the last line",
        Duration::from_secs(10),
        || {
            let r = api.call(
                "pane.snapshot",
                serde_json::json!({ "target": "macs", "lines": 5 }),
            );
            let lines: Vec<String> = r["result"]["lines"]
                .as_array()?
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect();
            lines.iter().any(|l| l == &marker).then_some(lines)
        },
    );
    let tmux_rows: Vec<String> = server
        .capture("macs")
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        tmux_rows.ends_with(&shown[shown.len().saturating_sub(3)..]),
        "model {shown:?} vs tmux {tmux_rows:?}"
    );
    assert_eq!(daemon.count(request_with("Flooding: which port")), 1);
    assert_eq!(daemon.count(request_with("After the flood")), 1);
    assert_eq!(daemon.count(|e| e["event"] == "capped"), 0);
    assert!(daemon.stop().success());
}
