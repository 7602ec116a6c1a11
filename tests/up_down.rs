//! `macs-bridge up` and `down` as a person runs them, against a real tmux on a private socket
//! that `up` starts itself, with scripted agents (`macs-bridge sim-agent`) in place of real ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{sim_command, sim_inputs, wait_for, TmuxServer};

const LONG: Duration = Duration::from_secs(30);

/// An agent that answers every input after working a moment (as a real one does).
const AGENT: &str = "on-input\nbusy 300ms\nsay OK\nend\n";

fn text(out: &Output) -> String {
    common::output_text(out)
}

fn code(out: &Output) -> i32 {
    common::exit_code(out)
}

/// `macs-bridge -L … --session macs`, isolated from the person's tmux config and session.
fn bridge(server: &TmuxServer) -> Command {
    let home = server.path("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = server.bridge("macs");
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("MACS_CODEX_ARGS")
        .env_remove("MACS_CODEX_HOME")
        .stdin(std::process::Stdio::null());
    cmd
}

fn state_dir(server: &TmuxServer) -> PathBuf {
    let dir = server.path("state");
    std::fs::create_dir_all(&dir).expect("state dir");
    dir
}

/// `up --no-attach` with scripted agents named `worker` and `controller`, and `extra` flags.
fn up(server: &TmuxServer, worker: &str, controller: &str, extra: &[&str]) -> Output {
    let state = state_dir(server);
    bridge(server)
        .arg("up")
        .arg("--no-attach")
        .arg("--state-dir")
        .arg(&state)
        .args(["--ready-timeout", "30"])
        .arg("--worker")
        .arg(sim_command(server, "worker", worker, ""))
        .arg("--controller")
        .arg(sim_command(server, "controller", controller, ""))
        .args(extra)
        .output()
        .expect("run up")
}

fn down(server: &TmuxServer, extra: &[&str]) -> Output {
    bridge(server)
        .arg("down")
        .args(extra)
        .output()
        .expect("run down")
}

/// One row per pane of the session: window, label, title, left, top, width, pane id, command,
/// pid.
fn panes(server: &TmuxServer) -> Vec<Vec<String>> {
    let out = server.ok(&[
        "list-panes",
        "-s",
        "-t",
        "=macs",
        "-F",
        // A unit separator between fields: titles hold `|` (`[ ! ] Action Required | NAME`).
        "#{window_name}\x1f#{@macs-agent}\x1f#{pane_title}\x1f#{pane_left}\x1f#{pane_top}\x1f#{pane_width}\x1f#{pane_id}\x1f#{pane_current_command}\x1f#{pane_pid}",
    ]);
    out.lines()
        .map(|l| l.split('\x1f').map(str::to_string).collect())
        .collect()
}

fn agent_panes(server: &TmuxServer) -> Vec<Vec<String>> {
    panes(server)
        .into_iter()
        .filter(|r| r[0] == "macs")
        .collect()
}

fn has_session(server: &TmuxServer) -> bool {
    server.run(&["has-session", "-t", "=macs"]).status.success()
}

/// The command lines of running daemons (`--mode`) for this server's socket.
fn daemons(server: &TmuxServer) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == &server.name) && args.iter().any(|a| a == "--mode") {
            found.push(args.join(" "));
        }
    }
    found
}

fn first_input(server: &TmuxServer, name: &str) -> String {
    wait_for(&format!("{name}'s first input"), LONG, || {
        sim_inputs(server, name).into_iter().next()
    })
}

fn state_of(path: &Path) -> Vec<String> {
    common::files_in(path)
}

#[test]
fn up_sets_out_the_pair_prompts_both_agents_and_down_stops_the_daemon() {
    let server = TmuxServer::reserve();
    let out = up(&server, AGENT, AGENT, &[]);
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.contains("session macs: created"), "{said}");
    assert_eq!(said.matches("prompt sent").count(), 2, "{said}");
    assert!(said.contains("daemon: started in window bridge"), "{said}");
    assert!(said.contains("attach: tmux -L"), "{said}");

    // The layout: the worker left, the controller right, labelled and titled. An agent shows
    // a spinner in its title while it works on its prompt: wait until both are idle again.
    let rows = wait_for("both agents idle", LONG, || {
        let rows = agent_panes(&server);
        rows.iter()
            .all(|r| {
                r.get(2).is_some_and(|t| {
                    !t.starts_with(|c: char| ('\u{2800}'..='\u{28ff}').contains(&c))
                })
            })
            .then_some(rows)
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0][1].as_str(), rows[0][3].as_str()), ("worker", "0"));
    assert_eq!(rows[1][1], "controller");
    assert!(rows[1][3].parse::<u32>().expect("left") > 0, "{rows:?}");
    assert_eq!(rows[0][2], "worker");
    assert_eq!(rows[1][2], "controller");
    // Borders on, showing the label and the daemon's queue status.
    let status = server.ok(&[
        "show-options",
        "-w",
        "-v",
        "-t",
        "=macs:macs",
        "pane-border-status",
    ]);
    assert_eq!(status.trim(), "top");
    let format = server.ok(&[
        "show-options",
        "-w",
        "-v",
        "-t",
        "=macs:macs",
        "pane-border-format",
    ]);
    assert!(
        format.contains("#{@macs-agent}") && format.contains("#{@macs-status}"),
        "{format}"
    );
    // remain-on-exit was only for the start: the person's own setting applies again.
    let remain = server.ok(&["show-options", "-w", "-t", "=macs:macs"]);
    assert!(!remain.contains("remain-on-exit"), "{remain}");

    // Each agent got its prompt as its first input.
    let worker = first_input(&server, "worker");
    assert!(
        worker.contains("a line holding only <<CONTROLLER_REQUEST>>, nothing else on it;"),
        "{worker}"
    );
    let controller = first_input(&server, "controller");
    assert!(
        controller.contains("a line holding only <<CONTROLLER_RESPONSE>>, nothing else on it;"),
        "{controller}"
    );

    // The daemon runs in its own window, on this socket, in auto mode with the state dir.
    let bridge_rows: Vec<Vec<String>> = panes(&server)
        .into_iter()
        .filter(|r| r[0] == "bridge")
        .collect();
    assert_eq!(bridge_rows.len(), 1, "{:?}", panes(&server));
    let running = daemons(&server);
    assert_eq!(running.len(), 1, "{running:?}");
    let state = state_dir(&server);
    assert!(
        running[0].contains("--mode auto")
            && running[0].contains(&format!("--state-dir {}", state.display())),
        "{running:?}"
    );
    // The prompts did not read as requests: nothing was filed.
    assert!(state_of(&state.join("inbox")).is_empty());

    // down: the daemon is stopped, its window closed, the agents left alone.
    let out = down(&server, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("daemon stopped"), "{}", text(&out));
    assert!(panes(&server).iter().all(|r| r[0] != "bridge"));
    wait_for("the daemon to be gone", LONG, || {
        daemons(&server).is_empty().then_some(())
    });
    assert_eq!(agent_panes(&server).len(), 2);

    // Again: nothing to stop, and it says so.
    let out = down(&server, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("no daemon to stop"), "{}", text(&out));

    // --kill ends the session; then there is nothing at all.
    let out = down(&server, &["--kill"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("killed"), "{}", text(&out));
    assert!(!has_session(&server));
    let out = down(&server, &["--kill"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("nothing to stop"), "{}", text(&out));
}

#[test]
fn up_again_reuses_the_session_and_reset_recreates_it() {
    let server = TmuxServer::reserve();
    let out = up(&server, AGENT, AGENT, &["--no-daemon"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("daemon: not started"), "{}", text(&out));
    assert!(daemons(&server).is_empty());
    let before: Vec<String> = agent_panes(&server).iter().map(|r| r[6].clone()).collect();
    assert_eq!(before.len(), 2);
    first_input(&server, "worker");

    // Again: the same panes, no prompt twice.
    let out = up(&server, AGENT, AGENT, &["--no-daemon"]);
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.contains("session macs: reused"), "{said}");
    assert_eq!(said.matches("prompt sent earlier").count(), 2, "{said}");
    let again: Vec<String> = agent_panes(&server).iter().map(|r| r[6].clone()).collect();
    assert_eq!(again, before);
    assert_eq!(sim_inputs(&server, "worker").len(), 1);
    assert_eq!(sim_inputs(&server, "controller").len(), 1);

    // A closed pane is put back, next to the one left, and only it gets a prompt.
    server.ok(&["kill-pane", "-t", &before[1]]);
    let out = up(&server, AGENT, AGENT, &["--no-daemon"]);
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    let rows = agent_panes(&server);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][6], before[0]);
    assert_eq!(rows[1][1], "controller");
    assert_ne!(rows[1][6], before[1]);
    assert!(
        said.contains("prompt sent earlier") && said.contains("prompt sent:"),
        "{said}"
    );
    assert_eq!(sim_inputs(&server, "controller").len(), 2);
    assert_eq!(sim_inputs(&server, "worker").len(), 1);

    // --reset-session: a new session, new agents, no duplicates.
    let pids: Vec<String> = agent_panes(&server).iter().map(|r| r[8].clone()).collect();
    let out = up(&server, AGENT, AGENT, &["--no-daemon", "--reset-session"]);
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(
        said.contains("killed (--reset-session)") && said.contains("created"),
        "{said}"
    );
    let reset: Vec<String> = agent_panes(&server).iter().map(|r| r[8].clone()).collect();
    assert_eq!(reset.len(), 2);
    assert!(
        reset.iter().all(|pid| !pids.contains(pid)),
        "{reset:?} {pids:?}"
    );
    assert_eq!(panes(&server).len(), 2, "{:?}", panes(&server));
    wait_for("the new worker's prompt", LONG, || {
        (sim_inputs(&server, "worker").len() == 2).then_some(())
    });
}

#[test]
fn an_agent_asking_at_start_is_left_to_the_person_until_up_runs_again() {
    let server = TmuxServer::reserve();
    let trusting = format!("ask trust this folder?\n{AGENT}");
    let out = up(&server, &trusting, AGENT, &["--no-daemon"]);
    let said = text(&out);
    // Not done: `up` fails, naming the agent, and says how to run it again as it was run.
    assert_eq!(code(&out), 1, "{said}");
    let worker_line = said
        .lines()
        .find(|l| l.trim_start().starts_with("worker") && l.contains("prompt"))
        .unwrap_or_default();
    assert!(
        worker_line.contains("prompt NOT sent") && worker_line.contains("Answer it in the pane"),
        "{said}"
    );
    assert!(
        said.contains("worker did not get its start-up prompt"),
        "{said}"
    );
    let again = format!("macs-bridge -L {} --session macs up --worker", server.name);
    assert!(said.contains(&again), "{again}: {said}");
    for flag in [
        "--controller",
        "--state-dir",
        "--no-daemon",
        "--ready-timeout 30",
        "--no-attach",
    ] {
        assert!(worker_line.contains(flag), "{flag}: {said}");
    }
    // Progress while waiting: which agent, how long, what it shows.
    assert!(
        said.lines()
            .any(|l| l.contains("s worker (%") && l.contains("asking") && l.contains("shows")),
        "{said}"
    );
    assert!(
        said.contains("controller") && said.contains("prompt sent:"),
        "{said}"
    );
    assert!(sim_inputs(&server, "worker").is_empty());

    // The person answers the question; `up` again sends the prompt it skipped, only that one.
    let worker = agent_panes(&server)[0][6].clone();
    server.ok(&["send-keys", "-t", &worker, "y"]);
    let out = up(&server, &trusting, AGENT, &["--no-daemon"]);
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    let worker_input = first_input(&server, "worker");
    assert!(
        worker_input.contains("<<CONTROLLER_REQUEST>>"),
        "{worker_input}"
    );
    assert_eq!(sim_inputs(&server, "controller").len(), 1, "{said}");
}

#[test]
fn an_agent_that_cannot_start_is_reported_with_its_message() {
    // Not installed: refused before anything is created.
    let server = TmuxServer::reserve();
    let out = bridge(&server)
        .args([
            "up",
            "--no-attach",
            "--no-daemon",
            "--worker",
            "no-such-agent-cli",
        ])
        .arg("--controller")
        .arg(sim_command(&server, "controller", AGENT, ""))
        .output()
        .expect("run up");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("`no-such-agent-cli` was not found on PATH"),
        "{}",
        text(&out)
    );
    assert!(!has_session(&server));

    // Exits at once: its pane stays with its message, and `up` says why.
    let out = bridge(&server)
        .args(["up", "--no-attach", "--no-daemon", "--ready-timeout", "30"])
        .args(["--worker", "sh -c 'echo model not found >&2; exit 2'"])
        .arg("--controller")
        .arg(sim_command(&server, "controller", AGENT, ""))
        .output()
        .expect("run up");
    let said = text(&out);
    assert_eq!(code(&out), 1, "{said}");
    assert!(
        said.contains("exited with status 2") && said.contains("model not found"),
        "{said}"
    );
    assert_eq!(agent_panes(&server).len(), 2);
}

#[test]
fn the_chat_layout_puts_the_chat_above_the_agents_and_prompts_them_as_chat_agents() {
    let server = TmuxServer::reserve();
    let state = state_dir(&server);
    let out = bridge(&server)
        .args([
            "up",
            "--no-attach",
            "--no-daemon",
            "--layout",
            "chat",
            "--agents",
            "2",
            "--print-mcp",
        ])
        .arg("--state-dir")
        .arg(&state)
        .arg("--worker")
        .arg(sim_command(&server, "agent", AGENT, ""))
        .output()
        .expect("run up");
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    // Not an agent CLI it knows: not wired, and it says how; --print-mcp shows the snippets.
    assert!(
        said.contains("agent1      none (not Codex, Claude Code or Gemini CLI); to add it by hand: macs-bridge mcp --print-config --as agent1"),
        "{said}"
    );
    for want in [
        "## agent1",
        "## agent2",
        "[mcp_servers.macs]",
        "\"mcpServers\"",
    ] {
        assert!(said.contains(want), "{want}: {said}");
    }
    assert!(!said.contains("## chat"), "{said}");
    let rows = agent_panes(&server);
    let labels: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(labels, ["chat", "agent1", "agent2"], "{rows:?}");
    // The chat across the top (under its border), the agents side by side below it.
    let num = |r: &Vec<String>, i: usize| r[i].parse::<u32>().expect("number");
    assert_eq!(num(&rows[0], 3), 0, "{rows:?}");
    assert!(num(&rows[1], 4) > num(&rows[0], 4), "{rows:?}");
    assert_eq!(num(&rows[1], 4), num(&rows[2], 4), "{rows:?}");
    assert!(num(&rows[2], 3) > num(&rows[1], 3), "{rows:?}");
    assert!(num(&rows[0], 5) > num(&rows[1], 5), "{rows:?}");
    // Each agent got the chat agents' prompt, naming it and the other one.
    assert_eq!(
        said.matches("prompt sent: chat_agent_prompt.txt").count(),
        2,
        "{said}"
    );
    let prompt = first_input(&server, "agent");
    assert!(
        prompt.contains("<<MESSAGE to=NAME>>,") && prompt.contains("send_message"),
        "{prompt}"
    );
    assert!(
        (prompt.starts_with("You are agent1,") && prompt.contains("The other agents: agent2."))
            || (prompt.starts_with("You are agent2,")
                && prompt.contains("The other agents: agent1.")),
        "{prompt}"
    );
    // No daemon: the chat pane waits for one, with the state dir it was given.
    let chat = rows[0][6].clone();
    wait_for("the chat pane to wait for the daemon", LONG, || {
        server
            .capture(&chat)
            .contains(&format!(
                "waiting for the macs-bridge daemon ({}/macs.sock)",
                state.display()
            ))
            .then_some(())
    });
}

/// A scripted chat agent: OK to its prompt, then a message to everyone for the next input.
const CHAT_AGENT: &str =
    "wait\nbusy 300ms\nsay OK\nwait\nbusy 200ms\nmessage all heard you\nwait\nwait\n";

#[test]
fn up_layout_chat_gives_a_live_chat_pane_that_sends_and_receives() {
    let server = TmuxServer::reserve();
    let state = state_dir(&server);
    let out = bridge(&server)
        .args(["up", "--no-attach", "--layout", "chat", "--agents", "2"])
        .args(["--ready-timeout", "30"])
        .arg("--state-dir")
        .arg(&state)
        .arg("--worker")
        .arg(sim_command(&server, "agent", CHAT_AGENT, ""))
        .current_dir(server.path(""))
        .output()
        .expect("run up");
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.contains("daemon: started"), "{said}");
    let chat = agent_panes(&server)[0][6].clone();

    // The person types into the chat pane; agent1 gets it, naming the sender.
    wait_for("the chat client to join and list the agents", LONG, || {
        let screen = server.capture(&chat);
        (screen.contains("you are person") && screen.contains("agent2")).then_some(())
    });
    server.ok(&["send-keys", "-t", &chat, "-l", "@agent1 hello there"]);
    server.ok(&["send-keys", "-t", &chat, "Enter"]);
    let log = server.path("agent.log");
    wait_for("agent1 to get the person's message", LONG, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("[from person] hello there").then_some(())
    });
    // agent1 answers everyone with a block: the chat pane shows it.
    let screen = wait_for("the chat pane to show agent1's message", LONG, || {
        let screen = server.capture(&chat);
        screen
            .lines()
            .any(|l| l.contains("agent1 → all") && l.contains("heard you"))
            .then_some(screen)
    });
    assert!(screen.contains("person → agent1: hello there"), "{screen}");
    down(&server, &["--kill"]);
}

/// Puts fake `claude`, `codex` and `gemini` in `dir`: each records its argv (one word a line),
/// its environment and the MCP configuration file it is pointed at (`--mcp-config=FILE`,
/// `$GEMINI_CLI_HOME/.gemini/settings.json`) into `record/<program>.*`, then plays a scripted agent
/// named after the program.
fn fake_clis(server: &TmuxServer, dir: &Path, record: &Path) {
    std::fs::create_dir_all(dir).expect("bin dir");
    std::fs::create_dir_all(record).expect("record dir");
    for program in ["claude", "codex", "gemini"] {
        let sim = sim_command(server, program, CHAT_AGENT, "");
        let script = format!(
            r#"#!/bin/sh
rec='{record}/{program}'
printf '%s\n' "$@" > "$rec.argv"
env > "$rec.env"
for a in "$@"; do
  case "$a" in --mcp-config=*) cat "${{a#--mcp-config=}}" > "$rec.config" ;; esac
done
if [ -n "${{GEMINI_CLI_HOME-}}" ]; then cat "$GEMINI_CLI_HOME/.gemini/settings.json" > "$rec.config"; cat "$GEMINI_CLI_HOME/.gemini/oauth_creds.json" > "$rec.creds"; fi
exec {sim}
"#,
            record = record.display(),
        );
        let path = dir.join(program);
        std::fs::write(&path, script).expect("fake cli");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// The `mcp_servers.macs.KEY=VALUE` override of a recorded Codex argv, as JSON (Codex reads
/// TOML; these values are the JSON-compatible part of it).
fn codex_override(argv: &[String], key: &str) -> serde_json::Value {
    let prefix = format!("mcp_servers.macs.{key}=");
    let at = argv
        .iter()
        .position(|a| a.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {argv:?}"));
    assert_eq!(argv[at - 1], "-c", "{argv:?}");
    serde_json::from_str(&argv[at][prefix.len()..]).expect("a JSON-compatible TOML value")
}

/// Runs an MCP server as an agent CLI would from its configuration: the handshake, then
/// `tools/call send_message`; returns the call's result.
fn mcp_send(command: &str, args: &[String], to: &str, text: &str) -> serde_json::Value {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new(command)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the MCP server");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut call = |v: serde_json::Value, wait: bool| -> serde_json::Value {
        writeln!(stdin, "{v}").expect("write");
        if !wait {
            return serde_json::Value::Null;
        }
        loop {
            let line = lines.next().expect("an answer").expect("read");
            let r: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            if r["id"] == v["id"] {
                return r;
            }
        }
    };
    let init = call(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "fake-agent", "version": "1"}}}),
        true,
    );
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    call(
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        false,
    );
    let r = call(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "send_message", "arguments": {"to": to, "content": text}}}),
        true,
    );
    drop(stdin);
    let _ = child.wait();
    r["result"].clone()
}

#[test]
fn up_starts_claude_codex_and_gemini_each_with_the_mcp_server_for_its_own_name() {
    let server = TmuxServer::reserve();
    let state = state_dir(&server);
    let bin = server.path("bin");
    let record = server.path("record");
    fake_clis(&server, &bin, &record);
    // The agents, their commands and names come from macs.yaml.
    std::fs::write(
        state.join("macs.yaml"),
        "agents:\n  - name: cc\n    command: claude --model sonnet\n  - name: cx\n    command: codex\n  - name: gm\n    command: gemini -m flash\n",
    )
    .expect("macs.yaml");
    // The person's own Gemini settings and login.
    let theirs = server.path("home").join(".gemini");
    std::fs::create_dir_all(&theirs).expect("~/.gemini");
    std::fs::write(
        theirs.join("settings.json"),
        "{\"ui\": {\"theme\": \"mine\"}}",
    )
    .expect("settings");
    std::fs::write(theirs.join("oauth_creds.json"), "my login").expect("creds");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bridge(&server)
        .args(["up", "--no-attach", "--layout", "chat"])
        .args(["--ready-timeout", "30"])
        .arg("--state-dir")
        .arg(&state)
        .env("PATH", &path)
        .env_remove("GEMINI_CLI_HOME")
        .current_dir(server.path(""))
        .output()
        .expect("run up");
    let said = text(&out);
    assert_eq!(code(&out), 0, "{said}");
    let labels: Vec<String> = agent_panes(&server).iter().map(|r| r[1].clone()).collect();
    assert_eq!(labels, ["chat", "cc", "cx", "gm"], "{said}");
    assert_eq!(said.matches("prompt sent").count(), 3, "{said}");
    // The summary says where each configuration went, in one line each.
    let cc_file = state.join("mcp/cc/claude-mcp.json");
    let gm_home = state.join("mcp/gm/gemini-home");
    assert!(
        said.contains(&format!("claude --mcp-config={}", cc_file.display())),
        "{said}"
    );
    assert!(said.contains("codex -c mcp_servers.macs."), "{said}");
    assert!(
        said.contains(&format!("GEMINI_CLI_HOME={}", gm_home.display())),
        "{said}"
    );
    assert!(
        !said.contains("\"mcpServers\""),
        "snippets only with --print-mcp: {said}"
    );

    let read = |f: &str| std::fs::read_to_string(record.join(f)).unwrap_or_default();
    let argv = |p: &str| -> Vec<String> {
        read(&format!("{p}.argv"))
            .lines()
            .map(str::to_string)
            .collect()
    };
    let exe = env!("CARGO_BIN_EXE_macs-bridge");
    let want_args = |name: &str| {
        serde_json::json!([
            "mcp",
            "--as",
            name,
            "--state-dir",
            state.display().to_string()
        ])
    };

    // Claude Code: --mcp-config=FILE before its own words; the file names the server for `cc`.
    let cc = argv("claude");
    assert_eq!(
        cc,
        [
            format!("--mcp-config={}", cc_file.display()),
            "--model".into(),
            "sonnet".into()
        ]
    );
    let config: serde_json::Value =
        serde_json::from_str(&read("claude.config")).expect("claude's file");
    assert_eq!(config["mcpServers"]["macs"]["command"], exe);
    assert_eq!(config["mcpServers"]["macs"]["args"], want_args("cc"));

    // Codex: -c overrides for this run only (no file, no CODEX_HOME of ours), for `cx`.
    let cx = argv("codex");
    assert_eq!(cx[0], "--no-daemon", "{cx:?}");
    assert_eq!(codex_override(&cx, "command"), exe);
    assert_eq!(codex_override(&cx, "args"), want_args("cx"));
    assert!(
        !read("codex.env").contains("CODEX_HOME="),
        "{}",
        read("codex.env")
    );

    // Gemini CLI: a home of its own whose settings are the person's plus the server for `gm`,
    // with the person's login linked in; no relaunch.
    let gm_env = read("gemini.env");
    assert!(
        gm_env.contains(&format!("GEMINI_CLI_HOME={}", gm_home.display()))
            && gm_env.contains("GEMINI_CLI_NO_RELAUNCH=true"),
        "{gm_env}"
    );
    assert_eq!(argv("gemini"), ["-m", "flash"]);
    let config: serde_json::Value =
        serde_json::from_str(&read("gemini.config")).expect("gemini's file");
    assert_eq!(config["mcpServers"]["macs"]["command"], exe);
    assert_eq!(config["mcpServers"]["macs"]["args"], want_args("gm"));
    assert_eq!(config["ui"]["theme"], "mine");
    assert_eq!(read("gemini.creds"), "my login");
    // The person's own configuration is never touched.
    assert_eq!(common::files_in(&server.path("home")), [".gemini"]);
    assert_eq!(
        common::files_in(&theirs),
        ["oauth_creds.json", "settings.json"]
    );
    assert_eq!(
        std::fs::read_to_string(theirs.join("settings.json")).expect("settings"),
        "{\"ui\": {\"theme\": \"mine\"}}"
    );

    // The configured server works, under the agent's own name: started as Claude Code would
    // start it, its send_message reaches gm's pane from cc.
    let args: Vec<String> = want_args("cc")
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a word").to_string())
        .collect();
    let result = mcp_send(exe, &args, "gm", "please review");
    assert_ne!(result["isError"], true, "{result}");
    wait_for("gm to get cc's message", LONG, || {
        sim_inputs(&server, "gemini")
            .iter()
            .any(|i| i.contains("[from cc] please review"))
            .then_some(())
    });
    down(&server, &["--kill"]);
}

#[test]
fn up_with_a_broken_macs_yaml_changes_nothing_in_tmux() {
    let server = TmuxServer::reserve();
    let state = state_dir(&server);
    let config = state.join("macs.yaml");
    std::fs::write(&config, "injection:\n  submit_key: [Enter]\n").expect("macs.yaml");
    // No server yet: none is started.
    let out = up(&server, AGENT, AGENT, &[]);
    let said = text(&out);
    assert_ne!(code(&out), 0, "{said}");
    assert!(
        said.contains(&format!(
            "{}: unknown key `injection.submit_key`",
            config.display()
        )),
        "{said}"
    );
    assert!(
        !server.run(&["list-sessions"]).status.success(),
        "a tmux server was started"
    );

    // A session that exists is left exactly as it was: no pane, no window, no daemon.
    std::fs::remove_file(&config).expect("rm");
    let out = up(&server, AGENT, AGENT, &["--no-daemon"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Everything but the titles, which agents animate.
    let layout = || -> Vec<Vec<String>> {
        panes(&server)
            .into_iter()
            .map(|mut r| {
                r.remove(2);
                r
            })
            .collect()
    };
    let before = layout();
    for broken in [
        "agents:\n  - name: two words\n",
        "rules:\n  - match: '(unclosed'\n    reply: x\n",
        "profiles:\n  files: [missing-profiles/]\n",
    ] {
        std::fs::write(&config, broken).expect("macs.yaml");
        let out = up(&server, AGENT, AGENT, &["--reset-session"]);
        let said = text(&out);
        assert_ne!(code(&out), 0, "{broken}: {said}");
        assert!(
            said.contains(&config.display().to_string()),
            "{broken}: {said}"
        );
        assert!(!said.contains("session macs"), "{broken}: {said}");
        assert_eq!(layout(), before, "{broken}: {said}");
        assert!(daemons(&server).is_empty(), "{broken}");
    }
}
