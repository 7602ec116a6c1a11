//! The command line end to end, on a real tmux server on a private socket: global flags before
//! and after the subcommand, `info` for a running and a missing daemon, `set-target --clear`,
//! completions and man pages, the chat client's `/list` counts, and the chat seat at a real
//! terminal (a tmux pane): completion, history, and messages arriving while the person types.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{exit_code, output_text, sim_inputs, wait_for, Daemon, TmuxServer};

const LONG: Duration = Duration::from_secs(30);
const LISTENER: &str = "on-input\nbusy 200ms\nend\n";

/// A session `macs` with one labelled listening sim agent per name.
fn agents(names: &[&str]) -> TmuxServer {
    let list: Vec<(&str, &str)> = names.iter().map(|n| (*n, LISTENER)).collect();
    common::agents(&list)
}

/// The binary with only the server's socket: no session, no state dir.
fn bare(server: &TmuxServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_macs-bridge"));
    cmd.arg("-L").arg(&server.name);
    cmd.env_remove("TMUX_SOCKET")
        .env_remove("MACS_SESSION")
        .env_remove("TARGET_PANE_LABEL");
    cmd
}

fn run_with_input(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start macs-bridge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("output")
}

#[test]
fn the_state_dir_flag_works_before_and_after_the_subcommand() {
    let server = agents(&["a1"]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let dir = state.path().to_str().expect("utf-8 path");

    let mut before = bare(&server);
    before.args(["--state-dir", dir, "chat"]);
    let out = run_with_input(before, "@a1 one\n");
    assert!(out.status.success(), "{}", output_text(&out));
    let mut after = bare(&server);
    after.args(["chat", "--state-dir", dir]);
    let out = run_with_input(after, "@a1 two\n");
    assert!(out.status.success(), "{}", output_text(&out));
    wait_for("both messages in a1", LONG, || {
        (sim_inputs(&server, "a1").len() == 2).then_some(())
    });
    assert_eq!(
        sim_inputs(&server, "a1"),
        vec!["[from person] one", "[from person] two"]
    );

    for args in [
        &["--state-dir", dir, "mcp", "--print-config", "--as", "a1"][..],
        &["mcp", "--print-config", "--as", "a1", "--state-dir", dir][..],
    ] {
        let out = bare(&server).args(args).output().expect("mcp");
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(dir),
            "{args:?}: the snippet does not name the state dir: {}",
            output_text(&out)
        );
    }

    // The session comes from the state dir's macs.yaml, before or after `down`.
    let other = tempfile::tempdir().expect("dir");
    std::fs::write(other.path().join("macs.yaml"), "session: elsewhere\n").expect("yaml");
    let odir = other.path().to_str().expect("utf-8 path");
    for args in [
        &["--state-dir", odir, "down"][..],
        &["down", "--state-dir", odir][..],
    ] {
        let out = bare(&server).args(args).output().expect("down");
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("no session \"elsewhere\""),
            "{args:?}: {}",
            output_text(&out)
        );
    }
    // A subcommand that has no use for it says so.
    let out = bare(&server)
        .args(["--state-dir", dir, "completions", "bash"])
        .output()
        .expect("completions");
    assert_eq!(exit_code(&out), 2, "{}", output_text(&out));
}

#[test]
fn info_reports_a_running_daemon_and_a_missing_one() {
    let server = agents(&["a1", "a2"]);
    let state = tempfile::tempdir().expect("dir");
    let info = |extra: &[&str]| {
        let mut cmd = server.bridge("macs");
        cmd.arg("info").args(extra);
        cmd.output().expect("info")
    };
    let out = info(&["--json"]);
    assert_eq!(exit_code(&out), 1, "{}", output_text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["running"], false, "{v}");
    let out = info(&[]);
    assert!(
        output_text(&out).contains("no daemon runs for session \"macs\""),
        "{}",
        output_text(&out)
    );

    let daemon = Daemon::start_manual(&server, state.path());
    // No --state-dir: the session's claim names the daemon's.
    let out = info(&["--json"]);
    assert_eq!(exit_code(&out), 0, "{}", output_text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(v["info"]["pid"], daemon.child.id(), "{v}");
    assert_eq!(v["info"]["session"], "macs");
    assert_eq!(v["info"]["mode"], "manual");
    assert_eq!(v["info"]["attached"], true);
    let names: Vec<&str> = v["info"]["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["a1", "a2"], "{v}");
    assert!(v["info"].get("last_error").is_none(), "{v}");

    // Something goes wrong: an answer for a request that does not exist.
    std::fs::write(state.path().join("outbox/nope.md"), "an answer\n").expect("outbox");
    daemon.wait_event("the error", |e| e["event"] == "error");
    let out = info(&["--state-dir", state.path().to_str().expect("utf-8")]);
    assert_eq!(exit_code(&out), 0, "{}", output_text(&out));
    let text = output_text(&out);
    assert!(
        text.contains(&format!("pid {}", daemon.child.id())),
        "{text}"
    );
    assert!(
        text.contains("last error") && text.contains("outbox/nope.md"),
        "{text}"
    );

    daemon.stop();
    let out = info(&[]);
    assert_eq!(exit_code(&out), 1, "{}", output_text(&out));
}

#[test]
fn set_target_pins_and_clear_unpins() {
    let server = TmuxServer::start("macs", &common::shell());
    let pane = server.pane_id("macs");
    let option = || server.ok(&["show-options", "-v", "-q", "-t", "macs", "@macs-target"]);
    let out = server
        .bridge("macs")
        .args(["set-target", &pane])
        .output()
        .expect("pin");
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(option().trim(), pane);
    let out = server
        .bridge("macs")
        .args(["set-target", "--clear"])
        .output()
        .expect("clear");
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains(&format!("it was {pane}")),
        "{}",
        output_text(&out)
    );
    assert_eq!(option().trim(), "");
    let out = server
        .bridge("macs")
        .args(["set-target", "--clear"])
        .output()
        .expect("again");
    assert!(output_text(&out).contains("no default target was pinned"));
    let out = server
        .bridge("macs")
        .arg("set-target")
        .output()
        .expect("nothing");
    assert_eq!(exit_code(&out), 2, "{}", output_text(&out));
}

#[test]
fn completions_and_man_pages_generate() {
    let bin = env!("CARGO_BIN_EXE_macs-bridge");
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef macs-bridge"),
        ("fish", "complete -c macs-bridge"),
        ("elvish", "macs-bridge"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = Command::new(bin)
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(out.status.success(), "{shell}: {}", output_text(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(mark) && text.contains("set-target"),
            "{shell}: {text}"
        );
    }
    let out = Command::new(bin)
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(exit_code(&out), 2);
    let out = Command::new(bin).arg("man").output().expect("man");
    assert!(out.status.success(), "{}", output_text(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains(".TH macs-bridge 1") && page.contains("state\\-dir"),
        "{page}"
    );
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(bin)
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .expect("man --out");
    assert!(out.status.success(), "{}", output_text(&out));
    for page in ["macs-bridge.1", "macs-bridge-info.1", "macs-bridge-chat.1"] {
        assert!(dir.path().join(page).is_file(), "no {page}");
    }
}

#[test]
fn list_counts_what_waits_for_a_paused_agent() {
    let server = agents(&["a1", "a2"]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let out = common::chat_lines(
        &server,
        state.path(),
        "/pause a1\n@a1 one\n@a1 two\n/list\n",
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let header = text
        .lines()
        .find(|l| l.starts_with("NAME"))
        .expect("a table");
    assert!(
        header.contains("QUEUED") && header.contains("HELD"),
        "{text}"
    );
    let a1: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("a1 "))
        .expect("a1's row")
        .split_whitespace()
        .collect();
    // NAME PANE PROFILE STATE QUEUED HELD paused
    assert_eq!(&a1[4..], ["2", "2", "paused"], "{text}");
    assert!(sim_inputs(&server, "a1").is_empty());
    let out = common::chat_lines(&server, state.path(), "/resume a1\n/list\n");
    assert!(out.status.success(), "{}", output_text(&out));
    wait_for("a1's messages", LONG, || {
        (sim_inputs(&server, "a1").len() == 2).then_some(())
    });
}

#[test]
fn the_chat_seat_completes_names_keeps_history_and_the_typed_line() {
    let server = agents(&["alpha", "beta"]);
    let state = tempfile::tempdir().expect("dir");
    let _daemon = Daemon::start_manual(&server, state.path());
    let chat = format!(
        "{} -L {} --session macs chat --state-dir {}",
        env!("CARGO_BIN_EXE_macs-bridge"),
        server.name,
        state.path().display()
    );
    let pane = server.new_window("macs:", &chat);
    let screen = || server.capture(&pane);
    wait_for("the seat's prompt", LONG, || {
        screen().contains("person>").then_some(())
    });
    // Tab completes a name; the message goes to it.
    server.ok(&["send-keys", "-t", &pane, "@alp", "Tab"]);
    wait_for("the completed name", LONG, || {
        screen().contains("@alpha").then_some(())
    });
    server.ok(&["send-keys", "-t", &pane, "-l", "hello"]);
    server.ok(&["send-keys", "-t", &pane, "Enter"]);
    wait_for("alpha's message", LONG, || {
        (sim_inputs(&server, "alpha") == ["[from person] hello"]).then_some(())
    });
    // A message arriving while the person types is shown above the line, which stays.
    server.ok(&["send-keys", "-t", &pane, "-l", "half a line"]);
    wait_for("the typed text", LONG, || {
        screen().contains("half a line").then_some(())
    });
    let out = common::chat_lines(&server, state.path(), "@beta from a script\n");
    assert!(out.status.success(), "{}", output_text(&out));
    wait_for("the message above the line", LONG, || {
        let s = screen();
        let shown = s
            .lines()
            .position(|l| l.contains("person → beta: from a script"))?;
        let typed = s.lines().position(|l| l.contains("person> half a line"))?;
        (shown < typed).then_some(())
    });
    // Ctrl-U clears; Up brings back the last line sent.
    server.ok(&["send-keys", "-t", &pane, "C-u", "Up"]);
    wait_for("the line from history", LONG, || {
        screen()
            .lines()
            .any(|l| l.contains("person> @alpha hello"))
            .then_some(())
    });
    server.ok(&["send-keys", "-t", &pane, "Enter"]);
    wait_for("alpha's second message", LONG, || {
        (sim_inputs(&server, "alpha").len() == 2).then_some(())
    });
    // The prompt shows the agents' states.
    assert!(screen().contains("beta "), "{}", screen());
    // Ctrl-D leaves, and the history is kept in the state dir.
    server.ok(&["send-keys", "-t", &pane, "C-d"]);
    wait_for("the seat to close", LONG, || {
        let panes = server.ok(&["list-panes", "-a", "-F", "#{pane_id}"]);
        (!panes.lines().any(|p| p == pane)).then_some(())
    });
    let history = std::fs::read_to_string(state.path().join("chat-history")).expect("history");
    assert!(history.contains("@alpha hello"), "{history}");
}
