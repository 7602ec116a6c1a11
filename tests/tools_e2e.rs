//! The pane tools (`status`, `send`, `snapshot`, `set-target`, `panes`, `notify`) as a person runs
//! them, against a real tmux on a private socket.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{shell, wait_for, TmuxServer};

const LONG: Duration = Duration::from_secs(20);

fn text(out: &Output) -> String {
    common::output_text(out)
}

fn code(out: &Output) -> i32 {
    common::exit_code(out)
}

/// A session whose first pane is a shell labelled `worker`.
fn worker_session() -> TmuxServer {
    let server = TmuxServer::start("macs", &shell());
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    wait_for("the shell prompt", LONG, || {
        server.capture("macs").contains("$").then_some(())
    });
    server
}

#[test]
fn status_says_idle_at_a_prompt_and_busy_while_sleep_runs() {
    let server = worker_session();
    let out = server
        .bridge("macs")
        .args(["status", "--json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["state"], "idle");
    assert_eq!(json["profile"], "shell");
    assert_eq!(json["label"], "worker");

    server.ok(&["send-keys", "-t", "macs", "sleep 5", "Enter"]);
    let out = wait_for("status busy", LONG, || {
        let out = server
            .bridge("macs")
            .args(["status"])
            .output()
            .expect("run");
        (code(&out) == 3).then_some(out)
    });
    assert!(text(&out).starts_with("busy"), "{}", text(&out));
    server.ok(&["send-keys", "-t", "macs", "C-c"]);
}

#[test]
fn send_delivers_into_an_idle_shell_and_refuses_a_busy_one() {
    let server = worker_session();
    let out = server
        .bridge("macs")
        .args(["send", "--target", "worker", "echo delivered-$((40+2))"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("delivered"), "{}", text(&out));
    wait_for("the command's output", LONG, || {
        server
            .capture("macs")
            .contains("delivered-42")
            .then_some(())
    });

    server.ok(&["send-keys", "-t", "macs", "sleep 30", "Enter"]);
    wait_for("busy", LONG, || {
        let out = server
            .bridge("macs")
            .args(["status"])
            .output()
            .expect("run");
        (code(&out) == 3).then_some(())
    });
    let out = server
        .bridge("macs")
        .args(["send", "echo should-not-run"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));
    assert!(!server.capture("macs").contains("should-not-run"));
    server.ok(&["send-keys", "-t", "macs", "C-c"]);
}

#[test]
fn send_does_not_type_over_a_half_typed_line() {
    let server = worker_session();
    server.ok(&["send-keys", "-t", "macs", "-l", "git comm"]);
    wait_for("the half-typed line", LONG, || {
        server.capture("macs").contains("$ git comm").then_some(())
    });
    let out = server
        .bridge("macs")
        .args(["send", "echo intruder"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("did not type"), "{}", text(&out));
    assert!(!server.capture("macs").contains("intruder"));
}

#[test]
fn snapshot_prints_the_last_lines() {
    let server = worker_session();
    server.ok(&[
        "send-keys",
        "-t",
        "macs",
        "for i in 1 2 3 4 5; do echo line-$i; done",
        "Enter",
    ]);
    wait_for("output", LONG, || {
        server.capture("macs").contains("line-5").then_some(())
    });
    let out = server
        .bridge("macs")
        .args(["snapshot", "--lines", "3"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf8")
        .lines()
        .collect();
    assert_eq!(lines, vec!["line-4", "line-5", "$"], "{lines:?}");
}

#[test]
fn set_target_pins_the_default_for_every_tool() {
    let server = worker_session();
    server.ok(&["new-window", "-t", "macs", "-n", "other", &shell()]);
    let other = server.pane_id("macs:other");
    let out = server
        .bridge("macs")
        .args(["set-target", "other"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let pinned = server.ok(&["show-options", "-v", "-t", "macs", "@macs-target"]);
    assert_eq!(pinned.trim(), other);
    let out = server
        .bridge("macs")
        .args(["status", "--json"])
        .output()
        .expect("run");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["pane"], other.as_str());
}

#[test]
fn panes_lists_every_pane_with_label_profile_and_state() {
    let server = worker_session();
    server.ok(&["new-window", "-t", "macs", "-n", "sleeper", "sleep 60"]);
    let out = server
        .bridge("macs")
        .args(["panes", "--json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["label"], "worker");
    assert_eq!(rows[0]["state"], "idle");
    assert_eq!(rows[1]["window"], "sleeper");
    assert_eq!(rows[1]["state"], "busy");
}

#[test]
fn errors_are_clear_and_never_panics() {
    let server = worker_session();
    let cases: [(&str, Vec<&str>, Option<&str>, &str); 4] = [
        (
            "macs",
            vec!["status", "--target", "nobody"],
            None,
            "no pane matches \"nobody\"",
        ),
        (
            "macs",
            vec!["send", "--target", "nobody", "hi"],
            None,
            "no pane matches \"nobody\"",
        ),
        ("absent", vec!["status"], None, "\"absent\" does not exist"),
        (
            "macs",
            vec!["status"],
            Some("/nonexistent"),
            "tmux was not found",
        ),
    ];
    for (session, args, path, says) in cases {
        let mut cmd = server.bridge(session);
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let out = cmd.args(&args).output().expect("run");
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
    }
}

#[test]
fn an_old_tmux_is_refused() {
    // A stand-in `tmux` that reports version 3.1 and nothing else: only the version check runs.
    let dir = tempfile::tempdir().expect("dir");
    let fake = dir.path().join("tmux");
    std::fs::write(&fake, "#!/bin/sh\necho 'tmux 3.1c'\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
        .env("PATH", dir.path())
        .args(["-L", "unused", "status"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("tmux 3.1c is too old"),
        "{}",
        text(&out)
    );
}

#[test]
fn notify_shows_the_text_literally_on_the_persons_status_line_and_types_nothing() {
    let server = worker_session();
    // A person's terminal: a real tmux client attached to `macs`, running inside a pane of a
    // second private server so that the test can read its screen.
    let person = TmuxServer::start("screen", "sleep 600");
    let attach = format!(
        "env -u TMUX tmux -u -L {} attach-session -t =macs",
        server.name
    );
    let screen = person.new_window("=screen:", &attach);
    server.ok(&["set-option", "-g", "display-time", "0"]);
    wait_for("the person's client", LONG, || {
        let out = server.ok(&["list-clients", "-F", "#{client_name}"]);
        (!out.trim().is_empty()).then_some(())
    });
    let message = "build #1 done: #{pane_id} #(echo hi) #[fg=red] $HOME;";
    let out = server
        .bridge("macs")
        .args(["notify", message])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    wait_for("the message on the status line", LONG, || {
        let shown = person.capture(&screen);
        let last = shown.lines().last().unwrap_or("").trim_end().to_string();
        (last == message).then_some(())
    });
    // Nothing was typed into the agent's pane.
    assert!(!server.capture("macs").contains("build #1"));
}

#[test]
fn notify_with_nobody_attached_says_so() {
    let server = worker_session();
    let out = server
        .bridge("macs")
        .args(["notify", "hello"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("nobody would see"), "{}", text(&out));
}

/// A session with two shells: the first labelled `worker`, a second window labelled `helper`.
fn worker_and_helper() -> (TmuxServer, String, String) {
    let server = worker_session();
    server.ok(&["new-window", "-t", "macs", "-n", "second", &shell()]);
    server.ok(&[
        "set-option",
        "-p",
        "-t",
        "macs:second",
        "@macs-agent",
        "helper",
    ]);
    wait_for("the second shell's prompt", LONG, || {
        server.capture("macs:second").contains("$").then_some(())
    });
    let worker = server.pane_id("macs:0");
    let helper = server.pane_id("macs:second");
    (server, worker, helper)
}

#[test]
fn send_honours_macs_yaml_and_a_flag_or_the_environment_beats_it() {
    let (server, worker, helper) = worker_and_helper();
    let state = tempfile::tempdir().expect("dir");
    common::write(
        &state.path().join("macs.yaml"),
        b"worker: helper\ninjection:\n  submit_keys: [C-m]\n  type_delay_ms: 50\n",
    );

    // The file's worker and submit key, with the state dir as the current directory.
    let out = server
        .bridge("macs")
        .current_dir(state.path())
        .args(["send", "echo from-file-$((1+1))"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("delivered to {helper} (submitted with C-m")),
        "{}",
        text(&out)
    );
    wait_for("the file's worker to run it", LONG, || {
        server
            .capture(&helper)
            .contains("from-file-2")
            .then_some(())
    });

    // Flags beat the file: `--target` and `--submit-keys`, with `--state-dir`.
    let out = server
        .bridge("macs")
        .arg("send")
        .arg("--state-dir")
        .arg(state.path())
        .args(["--target", "worker", "--submit-keys", "Enter"])
        .arg("echo from-flag-$((2+2))")
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("delivered to {worker} (submitted with Enter")),
        "{}",
        text(&out)
    );
    wait_for("the flag's target to run it", LONG, || {
        server
            .capture(&worker)
            .contains("from-flag-4")
            .then_some(())
    });
    assert!(!server.capture(&helper).contains("from-flag"));

    // The environment beats the file too.
    let out = server
        .bridge("macs")
        .current_dir(state.path())
        .env("TARGET_PANE_LABEL", "worker")
        .args(["send", "echo from-env-$((3+3))"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    wait_for("the environment's worker to run it", LONG, || {
        server.capture(&worker).contains("from-env-6").then_some(())
    });

    // `--config` names another file, whose mistakes are reported with its name.
    let bad = state.path().join("bad.yaml");
    common::write(&bad, b"injection:\n  submit_keys: [no-such-key]\n");
    let out = server
        .bridge("macs")
        .arg("send")
        .arg("--config")
        .arg(&bad)
        .arg("echo never")
        .output()
        .expect("run");
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("bad.yaml") && text(&out).contains("submit_keys"),
        "{}",
        text(&out)
    );
}

#[test]
fn status_reads_its_socket_session_and_worker_from_macs_yaml() {
    let (server, _worker, helper) = worker_and_helper();
    let state = tempfile::tempdir().expect("dir");
    let yaml = format!("socket: {}\nsession: macs\nworker: helper\n", server.name);
    common::write(&state.path().join("macs.yaml"), yaml.as_bytes());
    // No -L, no --session, no --target: the file names them.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
        .env_remove("MACS_SESSION")
        .env_remove("TARGET_PANE_LABEL")
        .env_remove("TMUX_SOCKET")
        .args(["status", "--json"])
        .current_dir(state.path())
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["pane"], helper.as_str());
}
