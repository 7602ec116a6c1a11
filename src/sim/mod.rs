//! `macs-bridge sim-agent`: a scripted stand-in for an AI coding agent CLI, run in a tmux pane by
//! the end-to-end tests, by `macs-bridge demo`, and by users who want to try their configuration
//! and profiles without a real agent.
//!
//! It owns its terminal the way a real agent does (raw mode, bracketed paste, the pane title, a
//! prompt that stays on screen) and looks close to Codex, so that the built-in profile
//! `profiles/sim.yaml` reads it with the same ideas as the real ones:
//!
//! - idle: `› ` (the composer, after a blank line) and the footer `  sim-agent NAME · ? for
//!   shortcuts`; title `NAME`;
//! - busy: `• Working (3s • esc to interrupt)` above the composer; title `⠋ NAME` (a braille
//!   spinner); input submitted meanwhile is queued (`  ↳ queued: TEXT`) for the next `wait`;
//! - asking: `Would you like to run the following command?` / `› 1. Yes, proceed (y)` /
//!   `  2. No (esc)` / `Press enter to confirm or esc to cancel`; title
//!   `[ ! ] Action Required | NAME`; answered by `y`, `1`, Enter (yes) or `n`, `2`, Esc (no).
//!
//! Keys: Enter (CR) submits; a bracketed paste is one input, newlines included; LF (Ctrl-J) is a
//! newline; Backspace, Ctrl-U edit; Ctrl-C or Esc while busy interrupts the running step
//! (`■ Interrupted`); Ctrl-D at an empty prompt exits. It never plays Codex's paste-burst trick:
//! Enter right after text still submits.
//!
//! This module never talks to tmux and never reads anything but its script and its keyboard.
//!
//! Layout: [`script`] parses the language below (no I/O); `term` owns raw mode, signals and the
//! keyboard decoder; `ui` draws the two looks; `agent` runs the steps.
//!
//! # The script language
//!
//! One directive per line; blank lines and `# comments` are ignored (a `#` at the start of a
//! line or after a space starts a comment; write `\#` for a literal one). Text arguments take the
//! escapes `\n`, `\t`, `\\`, `\#`, and `$VARIABLES`. A text block is every line up to a line that
//! is just `end` (write `\end` for a literal `end` line); its lines are kept as they are (no
//! comments, no escapes) except for `$VARIABLES`.
//!
//! ```text
//! name worker                  the agent's name (title, footer); --name beats it
//! log FILE                     append every submitted input to FILE as a JSON line; --log beats it
//!
//! say TEXT                     a reply: `• TEXT` (more lines from \n are indented by two spaces)
//! reply … end                  a reply of several lines
//! raw TEXT                     one line exactly as written, no gutter
//! gutter GLYPH                 the glyph before a reply's first line from now on (•, ⏺, ✦, │)
//! request TEXT | request … end     a <<CONTROLLER_REQUEST>> … <<CONTROLLER_REQUEST_END>> reply
//! respond TEXT | respond … end     a <<CONTROLLER_RESPONSE>> reply; the inline form puts TEXT
//!                                  under `WORKER INSTRUCTIONS:`
//! message TO TEXT | message TO … end   a <<MESSAGE to=TO>> … <<MESSAGE_END>> reply
//!
//! busy DUR                     the working line for DUR (500ms, 2s, 1.5s, 1m, or a range 1s..3s)
//! think DUR                    the same, labelled `Thinking`
//! stream DUR … end             a reply whose lines appear one by one over DUR with NO working
//!                              line (the title spinner stays): Codex's look while it streams
//! wait [TIMEOUT]               go idle until one input is submitted (queued ones first); it
//!                              becomes $INPUT and is echoed as `› TEXT`. After a timeout
//!                              $INPUT is empty.
//! ask [COMMAND]                the approval menu until answered; $INPUT becomes `y` or `n`
//! expect [$VAR] /REGEX/[imsx]  $VAR (default $INPUT) must match, else `✗ expected …` is printed
//!                              and the exit code becomes 3 (if it would have been 0)
//! if [$VAR] /REGEX/ … [else …] end
//! repeat N … end | loop … end
//! on-input … end               forever: wait for an input, run the block with it ($INPUT)
//! set VAR TEXT
//! exit [CODE]                  exit now (default 0)
//! ```
//!
//! Variables: `$INPUT` (the last input or menu answer), `$REQUEST` (the text between
//! `<<CONTROLLER_REQUEST>>` and `<<CONTROLLER_REQUEST_END>>` in `$INPUT`, else all of it), `$N`
//! (inputs taken so far), `$ITER` (the innermost `repeat`/`loop` round, from 1), `$NAME`,
//! `$0`…`$9` and `${group}` (from the last `expect`/`if` that matched), and anything `set`.
//! `$$` is a literal `$`; an unknown variable is empty.
//!
//! A turn starts when the script starts and whenever `wait` takes an input; it lasts until the
//! next `wait` or `ask` (the agent is busy meanwhile, as a real one is while it answers). When the
//! script runs out the agent stays idle at its prompt: inputs are still echoed and logged;
//! Ctrl-D exits.
//!
//! The log has one JSON object per submitted input, written when Enter is pressed:
//! `{"t":1718000000.123,"agent":"worker","n":1,"input":"…","queued":false}` (`queued`: submitted
//! while the agent was busy; `raw`: the text as typed, when trimming changed it) and one per menu
//! answer: `{"t":…,"agent":…,"answer":"y"}`.
//!
//! Exit code: the `exit` code, or 0 at Ctrl-D; 3 instead of 0 when an `expect` failed; 128+N on
//! signal N.

mod agent;
pub mod script;
mod term;
mod ui;

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;

pub use script::{expand, parse, DurRange, ParseError, Script, Step};
pub use term::{Decoder, Event};
pub use ui::SimLook;

use agent::{Agent, Stop};
use term::TermGuard;

/// `macs-bridge sim-agent`: a scripted agent for tests, demos and trying out profiles.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// The script to play (see `examples/sim/README.md`). Without one: an echo agent that
    /// answers every input after a second.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// The agent's name, shown in the pane title and the footer (beats the script's `name`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// `plain`: line by line in the normal screen; `tui`: full repaints on the alternate screen.
    #[arg(long, value_enum, default_value_t = SimLook::Plain)]
    pub look: SimLook,
    /// Seed for random durations (`busy 1s..3s`); default: the clock.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Append every submitted input to this file as a JSON line (beats the script's `log`).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Check the script and exit (0 when it is fine; else the error names the line).
    #[arg(long)]
    pub check: bool,
}

/// The script played when none is given: echo every input.
const ECHO_SCRIPT: &str = "on-input\nbusy 1s\nsay You said: $INPUT\nend\n";

/// Runs the agent until its script exits, Ctrl-D, a signal or the end of its input. Blocking; owns
/// the terminal while it runs and restores it before returning. Returns the exit code.
pub fn run(args: SimArgs) -> anyhow::Result<u8> {
    let (script, source) = match &args.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the script {}", path.display()))?;
            let script = parse(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
            (script, path.display().to_string())
        }
        None => (parse(ECHO_SCRIPT)?, "(built-in echo script)".to_owned()),
    };
    if args.check {
        println!("{source}: ok, {} steps", script.steps.len());
        return Ok(0);
    }
    let name = args
        .name
        .clone()
        .or(script.name.clone())
        .unwrap_or_else(|| "sim".to_owned());
    let log = match args.log.as_ref().or(script.log.as_ref()) {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?,
        ),
        None => None,
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });

    let mut guard =
        TermGuard::enter(args.look == SimLook::Tui).context("cannot set up the terminal")?;
    let rx = term::spawn_reader();
    let mut agent = Agent::new(name, args.look, rx, log, seed);
    agent.banner(&source);
    let stop = match agent.exec(&script.steps) {
        Ok(()) => agent.idle_forever(),
        Err(stop) => stop,
    };
    let finished = agent.finish();
    guard.restore();
    let code = match stop {
        Stop::Exit(code) => code,
        Stop::Io(e) => return Err(anyhow::Error::new(e).context("cannot write to the terminal")),
    };
    finished.context("cannot write to the terminal")?;
    Ok(if code == 0 && agent.failures > 0 {
        3
    } else {
        code
    })
}

/// Runs the agent from a command line (`[PROGRAM] [sim-agent] --script FILE …`), for a small
/// binary of its own; prints errors and returns the exit code.
pub fn main_from_args(argv: impl IntoIterator<Item = String>) -> u8 {
    #[derive(Parser)]
    #[command(
        name = "sim-agent",
        about = "A scripted stand-in for an AI coding agent CLI"
    )]
    struct Standalone {
        #[command(flatten)]
        args: SimArgs,
    }
    let mut argv: Vec<String> = argv.into_iter().collect();
    if argv.get(1).is_some_and(|a| a == "sim-agent") {
        argv.remove(1);
    }
    match Standalone::try_parse_from(argv) {
        Ok(s) => match run(s.args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("sim-agent: {e:#}");
                1
            }
        },
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                2
            } else {
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_parses_its_flags_and_checks_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.txt");
        std::fs::write(&good, "say hi\n").unwrap();
        let argv = |extra: &[&str]| {
            ["sim_agent", "sim-agent"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let g = good.to_str().unwrap();
        assert_eq!(main_from_args(argv(&["--check", "--script", g])), 0);
        assert_eq!(main_from_args(argv(&["--look", "sideways"])), 2);
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "say hi\nbusy forever\n").unwrap();
        let args = SimArgs {
            script: Some(bad.clone()),
            name: None,
            look: SimLook::Plain,
            seed: None,
            log: None,
            check: true,
        };
        let e = run(args).unwrap_err().to_string();
        assert!(
            e.contains("bad.txt:2:") && e.contains("bad duration"),
            "{e}"
        );
    }
}
