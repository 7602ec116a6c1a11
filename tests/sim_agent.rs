//! End-to-end tests of `macs-bridge sim-agent` (src/sim/) in a real tmux on a private socket:
//! the `sim` profile reads its idle, busy and asking screens (and titles); a bracketed paste is one
//! input; input sent while busy is queued; the tui look repaints; Ctrl-D restores the terminal.
//! Plus checks, without tmux, that the `sim` profile never claims another agent's screen and that
//! the example scripts parse.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use macs_bridge::detect::{
    classify, last_reply, prompt_input, strip_escapes, Classification, Heuristics, PaneState,
    PaneView, Profiles,
};

const SESSION: &str = "sim";
const TARGET: &str = "sim:0.0";
const DEADLINE: Duration = Duration::from_secs(15);

/// The built-in profiles with `profiles/sim.yaml` (added, or replacing the built-in one).
fn profiles() -> Profiles {
    let mut p = Profiles::builtin();
    p.from_yaml_str("profiles/sim.yaml", include_str!("../profiles/sim.yaml"))
        .expect("profiles/sim.yaml compiles");
    p
}

/// The binary that runs the agent as `macs-bridge sim-agent ARGS…`.
fn program() -> &'static str {
    env!("CARGO_BIN_EXE_macs-bridge")
}

/// What a look at the pane shows.
struct Snap {
    lines: Vec<String>,
    title: String,
    command: String,
}

impl Snap {
    fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// With title and current command, the profile picked as the bridge would.
    fn classify(&self, profiles: &Profiles) -> Classification {
        let view = PaneView::new(&self.lines)
            .with_title(&self.title)
            .with_command(&self.command);
        classify(profiles.pick(&view), &view, 40)
    }

    /// From the screen alone (no title, no command): profile picked by screen evidence.
    fn classify_screen(&self, profiles: &Profiles) -> Classification {
        let view = PaneView::new(&self.lines);
        classify(profiles.pick(&view), &view, 40)
    }
}

struct Sim {
    server: TmuxServer,
    /// The script, the log, and whatever a test puts there.
    files: tempfile::TempDir,
    profiles: Profiles,
}

impl Sim {
    /// A tmux server whose pane runs the sim-agent with `script` and `args` (and `--log`).
    fn start(script: &str, args: &[&str]) -> Sim {
        Sim::start_with(script, args, "", "")
    }

    /// The same, with shell commands run before and after the agent on the same command line
    /// (`{dir}` stands for the files directory). The agent runs under an interactive bash, which
    /// then prints `rc=CODE`: tmux 3.3a under load sometimes never reaps a pane's own process,
    /// so `#{pane_dead_status}` cannot be relied on.
    fn start_with(script: &str, args: &[&str], before: &str, after: &str) -> Sim {
        let files = tempfile::tempdir().expect("temp dir");
        let dir = files.path().display().to_string();
        let path = files.path().join("script.txt");
        write(&path, script.as_bytes());
        let mut line = format!(
            "{}'{}' sim-agent --script '{}' --log '{}'",
            before.replace("{dir}", &dir),
            program(),
            path.display(),
            files.path().join("log.jsonl").display()
        );
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        line.push_str("; echo \"rc=$?\"");
        line.push_str(&after.replace("{dir}", &dir));
        let server = TmuxServer::start(SESSION, &shell());
        wait_for("the shell prompt", DEADLINE, || {
            server.capture(TARGET).contains('$').then_some(())
        });
        server.ok(&["send-keys", "-t", TARGET, "-l", "--", &line]);
        server.ok(&["send-keys", "-t", TARGET, "Enter"]);
        Sim {
            server,
            files,
            profiles: profiles(),
        }
    }

    /// A look at the pane. The screen and the title come from two tmux commands: the title is
    /// read before and after the screen, and the look is taken again until they agree, so a
    /// screen is never paired with a title from another frame.
    fn snap(&self) -> Snap {
        loop {
            let title = self.format("#{pane_title}");
            let lines = self
                .server
                .capture(TARGET)
                .lines()
                .map(str::to_owned)
                .collect();
            if self.format("#{pane_title}") == title {
                return Snap {
                    lines,
                    title,
                    command: self.format("#{pane_current_command}"),
                };
            }
        }
    }

    fn format(&self, f: &str) -> String {
        self.server
            .ok(&["display-message", "-p", "-t", TARGET, f])
            .trim_end_matches('\n')
            .to_owned()
    }

    /// Polls until `ok` holds for a look at the pane; on timeout, panics showing the last one.
    fn until(&self, what: &str, mut ok: impl FnMut(&Snap) -> bool) -> Snap {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let s = self.snap();
            if ok(&s) {
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\ntitle {:?}, command {:?}, verdict {:?}\n{}",
                    s.title,
                    s.command,
                    s.classify(&self.profiles),
                    s.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until the pane (title and command known) is in `state`, read by the `sim` profile.
    fn until_state(&self, state: PaneState) -> Snap {
        self.until_state_and(state, "", |_| true)
    }

    /// Polls until the pane is in `state` (by the `sim` profile) and `ok` holds for its screen.
    fn until_state_and(&self, state: PaneState, what: &str, ok: impl Fn(&str) -> bool) -> Snap {
        self.until(&format!("the sim profile to say {state} {what}"), |s| {
            let c = s.classify(&self.profiles);
            c.profile == "sim" && c.state == state && ok(&s.text())
        })
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", TARGET];
        args.extend_from_slice(keys);
        self.server.ok(&args);
    }

    fn type_text(&self, text: &str) {
        self.server
            .ok(&["send-keys", "-t", TARGET, "-l", "--", text]);
    }

    /// A bracketed paste, as the bridge sends multi-line text.
    fn paste(&self, text: &str) {
        self.server.ok(&["set-buffer", "-b", "simtest", "--", text]);
        self.server
            .ok(&["paste-buffer", "-p", "-d", "-b", "simtest", "-t", TARGET]);
    }

    fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.files.path().join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }

    fn inputs(&self) -> Vec<serde_json::Value> {
        self.log()
            .into_iter()
            .filter(|e| e.get("input").is_some())
            .collect()
    }

    fn until_inputs(&self, n: usize) -> Vec<serde_json::Value> {
        wait_for(&format!("{n} input(s) in the log"), DEADLINE, || {
            let v = self.inputs();
            (v.len() >= n).then_some(v)
        })
    }

    /// Polls until the agent has exited; returns its exit code (printed by the shell).
    fn until_exit_code(&self) -> i32 {
        wait_for("the sim-agent's exit code", DEADLINE, || {
            self.server.capture(TARGET).lines().find_map(|l| {
                l.strip_prefix("rc=")
                    .and_then(|c| c.trim_end().parse().ok())
            })
        })
    }
}

fn is_braille(c: char) -> bool {
    ('\u{2800}'..='\u{28ff}').contains(&c)
}

#[test]
fn idle_busy_and_asking_are_read_by_the_sim_profile() {
    let sim = Sim::start(
        "name worker\nsay ready\nwait\nbusy 60s\nask touch approved.txt\nwait\n",
        &[],
    );
    let idle = sim.until_state(PaneState::Idle);
    assert_eq!(idle.title, "worker");
    assert_eq!(idle.command, "macs-bridge");
    assert!(
        idle.text().contains("  sim-agent worker · ? for shortcuts"),
        "{}",
        idle.text()
    );
    let c = idle.classify_screen(&sim.profiles);
    assert_eq!(
        (c.profile.as_str(), c.state),
        ("sim", PaneState::Idle),
        "{c:?}"
    );
    assert_eq!(
        prompt_input(sim.profiles.get("sim").unwrap(), &idle.lines),
        None
    );

    // Typed text sits on the prompt, where the profile's prompt rule finds it.
    sim.type_text("go on");
    let typed = sim.until("the typed text on the prompt", |s| {
        s.lines.iter().any(|l| l == "› go on")
    });
    assert_eq!(
        prompt_input(sim.profiles.get("sim").unwrap(), &typed.lines).as_deref(),
        Some("go on")
    );
    sim.keys(&["Enter"]);
    let busy = sim.until_state(PaneState::Busy);
    assert!(
        busy.title.ends_with(" worker") && busy.title.starts_with(is_braille),
        "{:?}",
        busy.title
    );
    // The screen alone says busy too: the working line.
    let busy = sim.until("the working line", |s| {
        s.lines
            .iter()
            .any(|l| l.starts_with("• Working (") && l.ends_with(" • esc to interrupt)"))
    });
    let c = busy.classify_screen(&sim.profiles);
    assert_eq!(
        (c.profile.as_str(), c.state),
        ("sim", PaneState::Busy),
        "{c:?}"
    );
    assert!(busy.text().contains("› go on"), "echoed: {}", busy.text());

    // Esc interrupts the busy step; the script goes on to the approval menu.
    sim.keys(&["Escape"]);
    let asking = sim.until_state_and(PaneState::Asking, "after ■ Interrupted", |t| {
        t.contains("■ Interrupted")
            && t.contains("› 1. Yes, proceed (y)")
            && t.contains("  $ touch approved.txt")
    });
    assert_eq!(asking.title, "[ ! ] Action Required | worker");
    let c = asking.classify_screen(&sim.profiles);
    assert_eq!(
        (c.profile.as_str(), c.state),
        ("sim", PaneState::Asking),
        "{c:?}"
    );

    sim.keys(&["y"]);
    sim.until_state_and(PaneState::Idle, "after the approval", |t| {
        t.contains("✔ You approved worker to run touch approved.txt")
    });
    let log = sim.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["input"], "go on");
    assert_eq!(log[0]["queued"], false);
    assert_eq!(log[1]["answer"], "y");
}

#[test]
fn a_bracketed_paste_of_three_lines_is_one_input() {
    let sim = Sim::start("name worker\non-input\nsay got $N: $INPUT\nend\n", &[]);
    sim.until_state(PaneState::Idle);
    sim.paste("line one\nline two\nline three");
    // Not submitted by its newlines: all three lines wait in the prompt.
    let s = sim.until("the pasted lines in the prompt", |s| {
        let t = s.text();
        t.contains("› line one\n  line two\n  line three")
    });
    assert!(sim.inputs().is_empty(), "{:?}", sim.inputs());
    assert_eq!(s.classify(&sim.profiles).state, PaneState::Idle);
    sim.keys(&["Enter"]);
    let s = sim.until("the reply", |s| s.text().contains("• got 1: line one"));
    assert!(s.text().contains("  line three"), "{}", s.text());
    sim.until_state(PaneState::Idle);
    let inputs = sim.inputs();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!(inputs[0]["input"], "line one\nline two\nline three");
    assert_eq!(inputs[0]["queued"], false);
}

#[test]
fn input_sent_while_busy_is_queued_and_taken_by_the_next_wait() {
    let sim = Sim::start(
        "name worker\nwait\nbusy 60s\nsay after the busy step\nwait\nsay second: $INPUT\n",
        &[],
    );
    sim.until_state(PaneState::Idle);
    sim.type_text("first");
    sim.keys(&["Enter"]);
    sim.until_state(PaneState::Busy);
    sim.type_text("queued message");
    sim.until("the text typed while busy", |s| {
        s.lines.iter().any(|l| l == "› queued message")
    });
    sim.keys(&["Enter"]);
    let s = sim.until("the queued marker", |s| {
        s.lines.iter().any(|l| l == "  ↳ queued: queued message")
    });
    assert_eq!(s.classify(&sim.profiles).state, PaneState::Busy);
    let inputs = sim.until_inputs(2);
    assert_eq!(inputs[1]["input"], "queued message");
    assert_eq!(inputs[1]["queued"], true);
    assert!(!s.text().contains("second:"), "{}", s.text());

    // Ctrl-C ends the busy step; the next `wait` takes the queued input at once.
    sim.keys(&["C-c"]);
    let s = sim.until("the queued input taken", |s| {
        s.text().contains("• second: queued message")
    });
    let t = s.text();
    assert!(
        t.contains("■ Interrupted") && t.contains("› queued message"),
        "{t}"
    );
    assert!(!t.contains("↳ queued"), "{t}");
    sim.until_state(PaneState::Idle);
    assert_eq!(sim.inputs().len(), 2);
}

#[test]
fn tui_look_repaints_the_whole_screen() {
    let mut script = String::from("name worker\nrepeat 60\nsay row-$ITER-end\nend\n");
    script.push_str("request\nShould I refactor the parser first?\nend\nwait\n");
    let sim = Sim::start(&script, &["--look", "tui"]);
    let out = sim.server.path("out.raw");
    sim.server.ok(&[
        "pipe-pane",
        "-t",
        TARGET,
        &format!("cat >> '{}'", out.display()),
    ]);
    let s = sim.until_state(PaneState::Idle);
    assert_eq!(sim.format("#{alternate_on}"), "1");
    let text = s.text();
    assert!(
        text.contains("• <<CONTROLLER_REQUEST>>\n  Should I refactor the parser first?\n  <<CONTROLLER_REQUEST_END>>"),
        "{text}"
    );
    // Scrolled off the alternate screen: gone, not in tmux's history either.
    let history = sim
        .server
        .ok(&["capture-pane", "-p", "-S", "-1000", "-t", TARGET]);
    assert!(history.contains("row-60-end"), "{history}");
    assert!(!history.contains("row-1-end"), "{history}");
    // The block stays on screen and is painted again and again (every ~300 ms while idle).
    wait_for("the request block repainted 3 times", DEADLINE, || {
        let raw = std::fs::read(&out).unwrap_or_default();
        let raw = String::from_utf8_lossy(&raw);
        (raw.matches("<<CONTROLLER_REQUEST>>").count() >= 3).then_some(())
    });
    let raw = String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned();
    assert!(raw.contains("\x1b[1;1H\x1b[K"), "repaints row by row");
    let s = sim.snap();
    assert!(s.text().contains("  <<CONTROLLER_REQUEST_END>>"));
    assert_eq!(s.classify(&sim.profiles).state, PaneState::Idle);
}

#[test]
fn ctrl_d_exits_and_restores_the_terminal() {
    let sim = Sim::start_with(
        "name worker\nsay hello\nwait\n",
        &["--look", "tui"],
        "stty -g > '{dir}/before'; ",
        "; stty -g > '{dir}/after'",
    );
    sim.until_state(PaneState::Idle);
    assert_eq!(sim.format("#{alternate_on}"), "1");
    // Text in the prompt: Ctrl-D does not exit; Ctrl-U clears it, then Ctrl-D exits.
    sim.type_text("x");
    sim.keys(&["C-d"]);
    sim.until("the x in the prompt", |s| {
        s.lines.iter().any(|l| l == "› x")
    });
    sim.keys(&["C-u"]);
    sim.keys(&["C-d"]);
    assert_eq!(sim.until_exit_code(), 0);
    let (before, after) = (
        sim.files.path().join("before"),
        sim.files.path().join("after"),
    );
    let after_settings = wait_for("stty output", DEADLINE, || {
        let a = std::fs::read_to_string(&after).unwrap_or_default();
        (!a.trim().is_empty()).then_some(a)
    });
    assert_eq!(
        std::fs::read_to_string(&before).expect("before"),
        after_settings,
        "the terminal settings are restored"
    );
    assert_eq!(
        sim.format("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
}

#[test]
fn a_failed_expect_makes_exit_code_3() {
    let sim = Sim::start("wait\nexpect /yes/\nexit 0\n", &[]);
    sim.until_state(PaneState::Idle);
    sim.type_text("no");
    sim.keys(&["Enter"]);
    assert_eq!(sim.until_exit_code(), 3);
    assert!(sim
        .server
        .capture(TARGET)
        .contains("✗ expected $INPUT to match /yes/"));
    let sim = Sim::start("wait\nexpect /yes/\nexit 7\n", &[]);
    sim.until_state(PaneState::Idle);
    sim.type_text("yes");
    sim.keys(&["Enter"]);
    assert_eq!(sim.until_exit_code(), 7);
}

#[test]
fn the_controller_example_quotes_the_request() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim/controller.txt"),
    )
    .expect("examples/sim/controller.txt");
    let sim = Sim::start(&script, &[]);
    sim.until_state(PaneState::Idle);
    sim.paste(
        "A worker asks for direction:\n<<CONTROLLER_REQUEST>>\nShould I refactor the parser first?\n\
         <<CONTROLLER_REQUEST_END>>\nAnswer with a response block.",
    );
    sim.keys(&["Enter"]);
    let s = sim.until("the response block", |s| {
        s.text().contains("  <<CONTROLLER_RESPONSE_END>>")
    });
    let t = s.text();
    assert!(t.contains("• <<CONTROLLER_RESPONSE>>\n  WORKER INSTRUCTIONS:\n  Go ahead with: Should I refactor the parser first?\n  NOTES:"), "{t}");
    sim.until_state(PaneState::Idle);
}

#[test]
fn the_question_example_leaves_a_plain_question_for_the_heuristics() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim/question.txt"),
    )
    .expect("examples/sim/question.txt");
    let sim = Sim::start(&script, &[]);
    let s = sim.until_state_and(PaneState::Idle, "after the question", |t| {
        t.contains("• Should I continue")
    });
    let profile = sim.profiles.get("sim").expect("sim profile");
    let reply = last_reply(profile, &s.lines).expect("a last reply");
    assert_eq!(reply, "Should I continue with the remaining tables?");
    let heuristics = Heuristics::new(&Heuristics::default_phrases()).expect("phrases");
    assert_eq!(
        heuristics.judge(&reply).as_deref(),
        Some("ends with a question")
    );
    sim.type_text("yes, go on");
    sim.keys(&["Enter"]);
    sim.until("the answer taken", |s| {
        s.text().contains("• OK: yes, go on")
    });
}

// ---------------------------------------------------------------------------------------------
// Without tmux.

#[test]
fn the_sim_profile_never_claims_another_agents_screen() {
    let profiles = profiles();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixture screens") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture");
        let lines: Vec<String> = text.lines().map(strip_escapes).collect();
        let title = std::fs::read_to_string(path.with_extension("title"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        for cmd in ["", "codex", "node", "claude", "gemini", "python3", "bash"] {
            let view = PaneView::new(&lines).with_title(&title).with_command(cmd);
            let picked = profiles.pick(&view);
            assert_ne!(
                picked.name,
                "sim",
                "{} with command {cmd:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 17,
        "only {checked} fixtures in {}",
        dir.display()
    );
}

#[test]
fn the_sim_profile_reads_sim_screens() {
    let profiles = profiles();
    let sim = profiles.get("sim").expect("sim profile");
    let screen = |rows: &[&str]| rows.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let footer = "  sim-agent w · ? for shortcuts";
    let idle = screen(&[
        "• hello",
        "",
        "› earlier input",
        "",
        "• reply",
        "",
        "› ",
        "",
        footer,
        "",
        "",
    ]);
    let busy = screen(&[
        "› go",
        "",
        "• Working (3s • esc to interrupt)",
        "  ↳ queued: x",
        "",
        "› ",
        "",
        footer,
    ]);
    let asking = screen(&[
        "",
        "  Would you like to run the following command?",
        "",
        "  $ touch a",
        "",
        "› 1. Yes, proceed (y)",
        "  2. No (esc)",
        "",
        "  Press enter to confirm or esc to cancel",
        "",
        footer,
    ]);
    // After exit (plain look): the transcript stays, the footer is gone: not idle.
    let exited = screen(&["• hello", "", "› earlier input", "", "• reply", "$ "]);
    for (rows, want) in [
        (&idle, PaneState::Idle),
        (&busy, PaneState::Busy),
        (&asking, PaneState::Asking),
    ] {
        for cmd in ["macs-bridge", ""] {
            let view = PaneView::new(rows).with_command(cmd);
            assert_eq!(profiles.pick(&view).name, "sim", "{cmd:?} {rows:?}");
            assert_eq!(classify(sim, &view, 40).state, want, "{rows:?}");
        }
    }
    assert_ne!(
        classify(sim, &PaneView::new(&exited), 40).state,
        PaneState::Idle
    );
    // The last reply, as the heuristic mode reads it: not the echo, the footer or the working line.
    assert_eq!(last_reply(sim, &idle).as_deref(), Some("reply"));
    assert_eq!(last_reply(sim, &busy), None);
    // Multi-line input still reads idle, and the prompt rule finds its first row.
    let multi = screen(&["• hi", "", "› one", "  two", "", "  three", "", footer]);
    assert_eq!(
        classify(sim, &PaneView::new(&multi), 40).state,
        PaneState::Idle
    );
    assert_eq!(prompt_input(sim, &multi).as_deref(), Some("one"));
}

#[test]
fn the_example_scripts_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/sim") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "txt") {
            let text = std::fs::read_to_string(&path).expect("script");
            if let Err(e) = macs_bridge::sim::parse(&text) {
                panic!("{}:{}: {}", path.display(), e.line, e.message);
            }
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} scripts in {}", dir.display());
}
