//! Tried as a hostile user would: a process in an agent's pane speaking as the person, an
//! answer that is a symbolic link, a state dir others can write into, a second daemon on the
//! same session, a target that names no pane. Real tmux on a private socket.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{files_in, sim_command, sim_inputs, wait_for, Daemon, TmuxServer};

const LONG: Duration = Duration::from_secs(30);

fn labelled(server: &TmuxServer, name: &str, cmd: &str, first: bool) -> String {
    let pane = if first {
        server.ok(&["respawn-pane", "-k", "-t", "macs", cmd]);
        server.pane_id("macs:0.0")
    } else {
        let p = server.ok(&["split-window", "-P", "-F", "#{pane_id}", "-t", "macs", cmd]);
        p.trim().to_string()
    };
    server.ok(&["set-option", "-p", "-t", &pane, "@macs-agent", name]);
    pane
}

fn api_ready(state: &Path) {
    wait_for("the API socket", LONG, || {
        std::os::unix::net::UnixStream::connect(state.join("macs.sock"))
            .ok()
            .map(drop)
    });
}

/// A worker that asks one question, its daemon (manual mode) and the request's id.
fn asking_worker() -> (TmuxServer, tempfile::TempDir, Daemon, String) {
    let server = TmuxServer::start("macs", "sleep 600");
    labelled(
        &server,
        "worker",
        &sim_command(
            &server,
            "worker",
            "request\nShould I go on?\nend\nwait\nsay ok\n",
            "",
        ),
        true,
    );
    let state = tempfile::tempdir().expect("state");
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    let id = daemon.wait_event("the request", |e| e["event"] == "request")["id"]
        .as_str()
        .expect("id")
        .to_string();
    (server, state, daemon, id)
}

#[test]
fn a_process_in_an_agents_pane_cannot_speak_as_the_person_or_press_keys() {
    let server = TmuxServer::start("macs", "sleep 600");
    // a1: a shell an agent could run commands in. a2: an agent that logs what it gets.
    let shell = labelled(&server, "a1", &common::shell(), true);
    labelled(
        &server,
        "a2",
        &sim_command(&server, "a2", "on-input\nbusy 100ms\nend\n", ""),
        false,
    );
    let state = tempfile::tempdir().expect("state");
    let _daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    api_ready(state.path());
    let out = server.path("spoof.out");
    let bridge = env!("CARGO_BIN_EXE_macs-bridge");
    // From inside a1's pane, as a command an agent would run: the person's chat, a key, urgent.
    let line = format!(
        "printf '@a2 !C-c\\n@a2 !do it now\\n' | {bridge} -L {} chat --state-dir {} > {} 2>&1; echo spoof-done",
        server.name,
        state.path().display(),
        out.display()
    );
    server.ok(&["send-keys", "-t", &shell, "-l", &line]);
    server.ok(&["send-keys", "-t", &shell, "Enter"]);
    wait_for("the spoofing attempt to end", LONG, || {
        server
            .capture(&shell)
            .contains("\nspoof-done")
            .then_some(())
    });
    let said = std::fs::read_to_string(&out).expect("output");
    assert!(
        said.contains("a1's pane") || said.contains("a1"),
        "not refused as a1: {said}"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        sim_inputs(&server, "a2").is_empty(),
        "a2 got something: {:?}",
        sim_inputs(&server, "a2")
    );
    // The person (a process outside every agent pane) may.
    let out = common::chat_lines(&server, state.path(), "@a2 from the real person\n");
    assert!(out.status.success(), "{}", common::output_text(&out));
    wait_for("the person's message", LONG, || {
        (sim_inputs(&server, "a2") == ["[from person] from the real person"]).then_some(())
    });
}

#[test]
fn an_answer_that_is_a_symlink_is_refused_and_never_typed() {
    let (server, state, _daemon, id) = asking_worker();
    let secret = server.path("secret.txt");
    std::fs::write(&secret, "root:x:0:0:secret\n").expect("secret");
    std::os::unix::fs::symlink(
        &secret,
        state.path().join("outbox").join(format!("{id}.md")),
    )
    .expect("symlink");
    wait_for("the .error file", LONG, || {
        files_in(&state.path().join("outbox"))
            .contains(&format!("{id}.error"))
            .then_some(())
    });
    let error = std::fs::read_to_string(state.path().join("outbox").join(format!("{id}.error")))
        .expect("error file");
    assert!(error.contains("not a regular file"), "{error}");
    std::thread::sleep(Duration::from_millis(800));
    assert!(sim_inputs(&server, "worker").is_empty());
    assert!(!files_in(&state.path().join("archive"))
        .iter()
        .any(|f| f.contains("response")));
}

/// Starts a daemon that must refuse to start; returns what it said.
fn refused(server: &TmuxServer, state: &Path) -> String {
    let out = server
        .bridge("macs")
        .args(["--mode", "manual", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let text = common::output_text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    text
}

#[test]
fn a_state_dir_others_can_write_into_is_refused_with_a_clear_message() {
    let server = TmuxServer::start("macs", "sleep 600");
    let state = tempfile::tempdir().expect("state");
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let text = refused(&server, state.path());
    assert!(text.contains("writable by others"), "{text}");
    // A subfolder made a symbolic link is refused too.
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let elsewhere = tempfile::tempdir().expect("other");
    std::os::unix::fs::symlink(elsewhere.path(), state.path().join("outbox")).expect("symlink");
    let text = refused(&server, state.path());
    assert!(text.contains("symbolic link"), "{text}");
}

#[test]
fn a_second_daemon_on_the_session_is_refused_and_a_dead_ones_claim_is_taken_over() {
    let server = TmuxServer::start("macs", "sleep 600");
    let one = tempfile::tempdir().expect("state one");
    let two = tempfile::tempdir().expect("state two");
    let first = Daemon::start(&server, one.path(), &["--mode", "manual"]);
    let text = refused(&server, two.path());
    assert!(
        text.contains(&format!("pid {}", first.child.id())),
        "{text}"
    );
    let canonical = std::fs::canonicalize(one.path()).expect("canonical");
    assert!(text.contains(&canonical.display().to_string()), "{text}");
    // Killed with -9, its claim stays behind: the next daemon takes it over.
    first.crash();
    let second = Daemon::start(&server, two.path(), &["--mode", "manual"]);
    // A clean stop gives the claim back.
    let status = second.stop();
    assert!(status.success());
    let claim = server.ok(&["show-options", "-v", "-q", "-t", "macs", "@macs-daemon"]);
    assert_eq!(claim.trim(), "", "the claim was not given back");
}

#[test]
fn force_never_types_into_an_approval_menu() {
    let server = TmuxServer::start("macs", "sleep 600");
    labelled(
        &server,
        "worker",
        &sim_command(&server, "worker", "ask rm -rf build\nsay answered\n", ""),
        true,
    );
    wait_for("the menu", LONG, || {
        server
            .capture("macs")
            .contains("Would you like to run the following command?")
            .then_some(())
    });
    let out = server
        .bridge("macs")
        .args(["send", "--force", "--target", "worker", "y"])
        .output()
        .expect("send");
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("asking"), "{text}");
    std::thread::sleep(Duration::from_millis(500));
    let screen = server.capture("macs");
    assert!(
        screen.contains("Would you like to run the following command?")
            && !screen.contains("answered"),
        "the menu was answered:\n{screen}"
    );
}

#[test]
fn force_into_a_busy_pane_needs_a_change_the_submit_caused() {
    let server = TmuxServer::start("macs", "sleep 600");
    // Busy for a long time, reading nothing: the text is typed, the pane stays busy, and
    // that is no proof that anything was submitted.
    labelled(
        &server,
        "worker",
        &sim_command(&server, "worker", "busy 60s\n", ""),
        true,
    );
    wait_for("busy", LONG, || {
        let out = server
            .bridge("macs")
            .args(["status", "--target", "worker"])
            .output()
            .ok()?;
        (out.status.code() == Some(3)).then_some(())
    });
    let out = server
        .bridge("macs")
        .args(["send", "--force", "--target", "worker", "are you there"])
        .output()
        .expect("send");
    let text = common::output_text(&out);
    assert!(
        !text.contains("turned busy"),
        "busy before the key counted as proof: {text}"
    );
}

#[test]
fn a_notice_to_a_shell_agent_is_shown_not_run() {
    let server = TmuxServer::start("macs", "sleep 600");
    let shell = labelled(&server, "a1", &common::shell(), true);
    let state = tempfile::tempdir().expect("state");
    let daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    // The shell prints a message block for an agent that does not exist.
    server.ok(&[
        "send-keys",
        "-t",
        &shell,
        "-l",
        "printf '<<MESSAGE to=ghost>>\\nhello; agents: boo\\n<<MESSAGE_END>>\\n'",
    ]);
    server.ok(&["send-keys", "-t", &shell, "Enter"]);
    daemon.wait_event("the refusal", |e| {
        e["event"] == "error" && e["error"].as_str().is_some_and(|m| m.contains("ghost"))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let screen = server.capture(&shell);
    assert!(
        !screen.contains("[macs]") && !screen.contains("command not found"),
        "a notice was typed into the shell:\n{screen}"
    );
}

#[test]
fn a_huge_unterminated_block_and_a_huge_line_are_reported_capped_once() {
    for (what, printer) in [
        (
            "3000 lines",
            "printf '<<CONTROLLER_REQUEST>>\\n'; seq 1 3000",
        ),
        (
            "a 100k-character line",
            "printf '<<CONTROLLER_REQUEST>>\\n'; head -c 100000 /dev/zero | tr '\\0' x; echo",
        ),
    ] {
        let server = TmuxServer::start("macs", "sleep 600");
        let shell = labelled(&server, "worker", &common::shell(), true);
        let state = tempfile::tempdir().expect("state");
        let daemon = Daemon::start(
            &server,
            state.path(),
            &["--mode", "manual", "--no-heuristic"],
        );
        server.ok(&["send-keys", "-t", &shell, "-l", printer]);
        server.ok(&["send-keys", "-t", &shell, "Enter"]);
        daemon.wait_event(&format!("the capped report for {what}"), |e| {
            e["event"] == "capped"
        });
        // Output goes on; nothing is filed and the report is not repeated.
        server.ok(&["send-keys", "-t", &shell, "-l", "seq 1 50"]);
        server.ok(&["send-keys", "-t", &shell, "Enter"]);
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(daemon.count(|e| e["event"] == "capped"), 1, "{what}");
        assert_eq!(daemon.count(|e| e["event"] == "request"), 0, "{what}");
    }
}

#[test]
fn a_daemon_target_that_names_no_pane_is_an_error_with_the_panes() {
    let server = TmuxServer::start("macs", "sleep 600");
    let state = tempfile::tempdir().expect("state");
    let out = server
        .bridge("macs")
        .args(["--mode", "manual", "--target", "macs:0.7", "--state-dir"])
        .arg(state.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("names no pane") && text.contains("macs:0.0"),
        "{text}"
    );
}

#[test]
fn a_pane_in_copy_mode_is_never_typed_into_and_gets_its_answer_when_the_mode_ends() {
    let (server, state, _daemon, id) = asking_worker();
    // A person scrolls back.
    server.ok(&["copy-mode", "-t", "macs"]);
    let started = std::time::Instant::now();
    let out = server
        .bridge("macs")
        .args(["send", "--target", "worker", "typed while scrolled back"])
        .output()
        .expect("send");
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("copy mode"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "send hung");
    std::fs::write(
        state.path().join("outbox").join(format!("{id}.md")),
        "Go on.\n",
    )
    .expect("answer");
    wait_for("the person told why it waits", LONG, || {
        let status = server.ok(&[
            "show-options",
            "-p",
            "-v",
            "-q",
            "-t",
            "macs",
            "@macs-status",
        ]);
        status.contains("copy mode").then_some(())
    });
    assert!(sim_inputs(&server, "worker").is_empty());
    // The mode ends: the answer goes in.
    server.ok(&["send-keys", "-t", "macs", "-X", "cancel"]);
    wait_for("the answer", LONG, || {
        (sim_inputs(&server, "worker") == ["Go on."]).then_some(())
    });
}

#[test]
fn an_mcp_server_started_in_an_agents_pane_cannot_speak_for_another() {
    let server = TmuxServer::start("macs", "sleep 600");
    let state = tempfile::tempdir().expect("state");
    labelled(
        &server,
        "a2",
        &sim_command(&server, "a2", "on-input\nbusy 100ms\nend\n", ""),
        true,
    );
    let _daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    api_ready(state.path());
    // a1's agent starts its MCP server claiming to be a2, fed from a file, in a1's pane.
    let input = server.path("mcp.in");
    let output = server.path("mcp.out");
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let inited = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"send_message","arguments":{"to":"a2","content":"as someone else"}}}"#;
    std::fs::write(&input, format!("{init}\n{inited}\n{call}\n")).expect("input");
    let cmd = format!(
        "sh -c '(cat {}; sleep 5) | {} mcp --as a2 --state-dir {} > {} 2>&1'",
        input.display(),
        env!("CARGO_BIN_EXE_macs-bridge"),
        state.path().display(),
        output.display()
    );
    labelled(&server, "a1", &cmd, false);
    let answer = wait_for("the tool call's answer", LONG, || {
        let text = std::fs::read_to_string(&output).ok()?;
        text.lines()
            .find(|l| l.contains("\"id\":2"))
            .map(str::to_string)
    });
    assert!(answer.contains("a1"), "not refused as a1: {answer}");
    assert!(sim_inputs(&server, "a2").is_empty());
}

#[test]
fn a_target_that_names_no_pane_is_an_error_in_every_tool_and_the_api() {
    let server = TmuxServer::start("macs", &common::shell());
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
    for args in [
        vec!["send", "--target", "macs:0.7", "echo should-not-run"],
        vec!["status", "--target", "macs:9.9"],
        vec!["snapshot", "--target", "%7"],
        vec!["set-target", "macs:0.7"],
    ] {
        let out = server.bridge("macs").args(&args).output().expect("run");
        let text = common::output_text(&out);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {text}");
        assert!(
            text.contains("macs:0.0") && text.contains("worker"),
            "{args:?} does not list the panes: {text}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.capture("macs").contains("should-not-run"));
    let pinned = server.ok(&["show-options", "-v", "-q", "-t", "macs", "@macs-target"]);
    assert_eq!(
        pinned.trim(),
        "",
        "set-target pinned a pane that does not exist"
    );
    // The API answers not-found, never for another pane.
    let state = tempfile::tempdir().expect("state");
    let _daemon = Daemon::start(
        &server,
        state.path(),
        &["--mode", "manual", "--no-heuristic"],
    );
    api_ready(state.path());
    let mut stream =
        std::os::unix::net::UnixStream::connect(state.path().join("macs.sock")).expect("connect");
    use std::io::{BufRead, Write};
    writeln!(
        stream,
        r#"{{"jsonrpc":"2.0","id":1,"method":"pane.status","params":{{"target":"macs:0.7"}}}}"#
    )
    .expect("write");
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .expect("read");
    assert!(
        line.contains("\"error\"") && line.contains("macs:0.7"),
        "{line}"
    );
}
