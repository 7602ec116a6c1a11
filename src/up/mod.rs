//! `macs-bridge up` and `macs-bridge down`: set up a session of agents that work together, and
//! take it down again.
//!
//! ```text
//! macs-bridge up [--session S] [--layout pair|chat] [--agents N] [--worker CMD] [--controller CMD]
//!                [--attach|--no-attach] [--reset-session] [--state-dir DIR] [--no-daemon]
//!                [--ready-timeout SECS] [--print-mcp] [-L NAME|--socket PATH]
//! macs-bridge down [--session S] [--kill] [--timeout SECS] [-L NAME|--socket PATH]
//! ```
//!
//! # `up`
//!
//! 0. **Checks first.** The settings are loaded as the daemon will load them (the environment,
//!    then `macs.yaml` in the state dir) and checked in full, profile files and phrases
//!    included; the commands are split into words and their programs looked up; the prompt
//!    override files are read; each agent's MCP wiring is planned. Anything wrong stops `up`
//!    before it touches tmux, with the whole error (exit code 2 for a bad setting).
//! 1. **The session.** Created when missing (sized to the terminal `up` runs in, else 200x50),
//!    reused when it exists: panes already labelled for this layout are kept as they are (never
//!    duplicated), missing ones are added, and ones whose program has exited are restarted.
//!    `--reset-session` stops the daemon and kills the session first. All panes start in the
//!    current directory.
//! 2. **The layout**, in a window named `macs`, with pane borders on (`pane-border-status
//!    top`) showing each agent's label and the queue status the daemon sets (`@macs-status`):
//!    - `pair` (default): the worker on the left, the controller on the right, labelled with
//!      the `worker` and `controller` settings (default `worker` and `controller`; the
//!      `@macs-agent` option, which every tool and the daemon match first, and the pane title,
//!      which agents may rewrite).
//!    - `chat`: the person's chat pane across the top, labelled `chat`. Below it one pane per
//!      agent of `agents:` in macs.yaml that has no `target` of its own (labelled with its
//!      name), else `--agents N` (default 3) panes labelled `agent1` … `agentN`.
//!      `--controller` is not used. The chat pane runs a fixed `sh` script that waits for the
//!      daemon's socket in the state dir, then runs `macs-bridge chat --state-dir DIR` (on the
//!      same server and session); when the chat ends with an error (the daemon stopped) it
//!      joins again once the daemon is back; `/quit` closes it.
//! 3. **The agents.** An agent's command is `--worker CMD` / `--controller CMD` (every chat
//!    agent's, for `--worker`), else the `command` of the agent of that name in macs.yaml,
//!    else `codex`. A command is split into words like a shell would and run directly, never
//!    through a shell line (see [`agent`]). Codex gets `--no-daemon`, `CODEX_HOME` from
//!    `MACS_CODEX_HOME` and the words of `MACS_CODEX_ARGS`; Gemini gets
//!    `GEMINI_CLI_NO_RELAUNCH=true`: so that agents end with their pane. A program that cannot
//!    be found is refused before anything is created. While `up` runs, the agents' window keeps
//!    a pane whose program exits (`remain-on-exit`), so the program's message stays readable;
//!    afterwards the person's own setting applies again.
//! 4. **MCP.** Codex, Claude Code and Gemini CLI start with the bridge's MCP server (`macs-bridge
//!    mcp --as NAME --state-dir DIR`) configured for their own name, each through its own
//!    mechanism, never the person's configuration files (see [`wiring`]); files go under
//!    `<state dir>/mcp/<name>/`. Other programs get none; one line per agent says which.
//!    `--print-mcp` also prints every agent's snippets in full.
//! 5. **The prompts.** Once an agent has been idle for a second (within `--ready-timeout`,
//!    default 60 s), it gets its start-up prompt (`worker_prompt.txt`, `controller_prompt.txt`,
//!    or `chat_agent_prompt.txt` naming the agent and the others; see [`crate::prompts`];
//!    overridable in `<state dir>/prompts/`) through the same writer as `send`, with the
//!    settings `send` would use (submit keys, type delay, busy lines). While it waits, `up`
//!    says how each agent looks (state, reason, the last line on its screen) when that changes
//!    and every 5 s. An agent that keeps showing a question (Codex's and Claude's "trust this
//!    folder") is left to the person: its prompt is skipped. A pane that shows a shell or
//!    Python prompt gets nothing: it is not an agent. Running `up` again sends only the
//!    prompts not sent yet (the `@macs-prompted` pane option).
//! 6. **The daemon**, unless `--no-daemon`: in a window named `bridge` of the session (marked
//!    with the `@macs-bridge` window option, kept on screen if it exits), this same binary runs
//!    `macs-bridge --session S [-L NAME|--socket PATH] --mode auto --state-dir DIR`, the state
//!    dir made absolute (default: the current directory). The variables `TARGET_PANE_*` and
//!    `MACS_BRIDGE_LOG` of `up`'s environment are handed to it. `up` waits for its `started`
//!    line; one already running is left alone.
//! 7. **The end.** How to stop; then, when an agent did not get its prompt, `up` names it, says
//!    how to look at it and the command that runs `up` again with the same options (never
//!    `--reset-session`), and exits 1. Else `--attach` (the default when standard input and
//!    output are terminals and `$TMUX` is unset) ends with `tmux attach -t =S` in place of
//!    `up`; `--no-attach` prints the command instead; inside tmux, `up` never nests a client:
//!    it prints the `switch-client` command (same server) or the attach command to run
//!    elsewhere.
//!
//! Exit code 0 when the session is up and every agent got its prompt, 1 when one did not (it
//! exited, is asking, was not idle in time) or the daemon did not start, 2 for bad usage or a
//! bad setting.
//!
//! # `down`
//!
//! Stops the daemon of each `bridge` window of the session: SIGTERM to the pane's process (the
//! daemon finishes the deliveries it is typing and keeps queued ones for the next start), waits
//! up to `--timeout` (10 s) for it to exit, then kills the window. `--kill` then kills the
//! session (its agents end with their panes). Both are idempotent: with nothing to stop, `down`
//! says so and exits 0.

pub mod agent;
mod layout;
pub mod ready;
mod report;
pub mod session;
pub mod wiring;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, ConfigError, Overrides};
use crate::inject::{InjectError, InjectOptions};
use crate::prompts::{self, PromptError, PromptKind};
use crate::tmux::client::ClientError;
use crate::tmux::oneshot::{Socket, Tmux, TmuxError};
use crate::tools::LiveError;

use agent::shell_line;
use layout::{open_layout, print_layout, slots, Fate, Laid, Slot};
use ready::{Progress, PromptJob, PromptResult, ReadyOptions};
use report::indent;
use session::{exact, BridgeStart, PaneRow, Stopped};

/// What `up` is asked to do (the command line's flags, as plain values).
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The panes to set out.
    pub layout: Layout,
    /// How many agent panes the chat layout has (1 to 12); `None`: the agents of macs.yaml,
    /// else 3.
    pub agents: Option<u8>,
    /// The worker's command line (every agent's, in the chat layout); `None`: codex.
    pub worker: Option<String>,
    /// The controller's command line; `None`: codex.
    pub controller: Option<String>,
    /// `--attach`: attach at the end.
    pub attach: bool,
    /// `--no-attach`: print how to attach instead. Neither: attach when run from a terminal.
    pub no_attach: bool,
    /// Kill the session first (stopping its daemon), then create it anew.
    pub reset_session: bool,
    /// The daemon's state dir; `None`: the current directory.
    pub state_dir: Option<PathBuf>,
    /// Do not start the daemon.
    pub no_daemon: bool,
    /// Seconds the agents get to reach their prompt.
    pub ready_timeout: u64,
    /// Also print each agent's MCP configuration in full (the snippets to copy).
    pub print_mcp: bool,
}

/// What `down` is asked to do.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// Also kill the session (and with it the agents).
    pub kill: bool,
    /// Seconds the daemon gets to exit after SIGTERM before its window is killed.
    pub timeout: u64,
}

/// Why `up` or `down` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The request itself is wrong (a bad session name, a bad setting): exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Something went wrong on the way.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Inject(#[from] InjectError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Launch(#[from] agent::LaunchError),
    /// Settings that cannot be used (environment or macs.yaml): exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl UpError {
    /// Whether the request itself was wrong (as opposed to something failing on the way).
    pub fn is_usage(&self) -> bool {
        matches!(self, UpError::Usage(_) | UpError::Config(_))
    }
}

/// The panes `up` sets out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A worker (left) and its controller (right).
    Pair,
    /// The person's chat pane on top, N agents below.
    Chat,
}

const DEFAULT_AGENT: &str = "codex";
/// Agent panes of the chat layout when neither `--agents` nor macs.yaml says.
const DEFAULT_CHAT_AGENTS: u8 = 3;
/// Seconds the agents get to reach their prompt, by default (`--ready-timeout`).
pub const DEFAULT_READY_TIMEOUT: u64 = 60;
/// Seconds the daemon gets to print its `started` line.
const BRIDGE_START_TIMEOUT: Duration = Duration::from_secs(20);

fn usage(message: impl Into<String>) -> UpError {
    UpError::Usage(message.into())
}

fn error(message: impl Into<String>) -> UpError {
    UpError::Failed(message.into())
}

/// Session names tmux would change (`.` and `:` become `_`) or expand (`#`) are refused.
fn check_session_name(name: &str) -> Result<(), UpError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| matches!(c, ':' | '.' | '#') || c.is_control())
    {
        return Err(usage(format!(
            "session name {name:?}: use a name without `:`, `.`, `#` or control characters"
        )));
    }
    Ok(())
}

/// The words that pick this tmux server on a `macs-bridge` command line.
fn socket_flags(socket: &Socket, resolved_path: &str) -> Vec<String> {
    match socket {
        Socket::Name(n) => vec!["-L".into(), n.clone()],
        Socket::Path(p) => vec![
            "--socket".into(),
            absolute(p).to_string_lossy().into_owned(),
        ],
        Socket::Default => vec!["--socket".into(), resolved_path.to_string()],
    }
}

/// The words a person adds to run `macs-bridge` on this server, as they gave them.
fn person_flags(socket: &Socket) -> Vec<String> {
    match socket {
        Socket::Default => Vec::new(),
        other => socket_flags(other, ""),
    }
}

/// `tmux [-L NAME|-S PATH] WORDS…` as a person would type it.
fn tmux_line(socket: &Socket, words: &[&str]) -> String {
    let mut all: Vec<String> = vec!["tmux".into()];
    all.extend(
        socket
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    all.extend(words.iter().map(|w| w.to_string()));
    shell_line(&all)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The settings `up` and the daemon it starts will use, loaded as the daemon loads them (the
/// environment, then `macs.yaml` in the state dir) and checked in full, profiles and phrases
/// included: a config the daemon would refuse stops `up` before it touches tmux.
fn load_settings(state_dir: &Path) -> Result<Config, UpError> {
    let overrides = Overrides {
        state_dir: Some(state_dir.to_path_buf()),
        ..Overrides::default()
    };
    let cfg = Config::load(&overrides, &config::process_env, state_dir)?;
    let in_file = || {
        cfg.source
            .as_deref()
            .map(|p| format!("{}: ", p.display()))
            .unwrap_or_default()
    };
    if !cfg.profiles.files.is_empty() {
        crate::detect::Profiles::builtin()
            .load_overrides(cfg.profiles.files.iter())
            .map_err(|e| usage(format!("{}profiles: {e}", in_file())))?;
    }
    crate::detect::Heuristics::new(&cfg.heuristic_phrases)
        .map_err(|e| usage(format!("{}heuristic_phrases: {e}", in_file())))?;
    Ok(cfg)
}

/// The keystroke writer's settings and the classifier's lines, as `send` would use them. The
/// prompts are never typed into a busy pane, whatever `guard_busy` says.
fn writer_settings(cfg: &Config) -> (InjectOptions, usize) {
    let inject = InjectOptions {
        guard_busy: true,
        ..cfg.injection.inject_options()
    };
    (inject, cfg.busy_lines)
}

/// Wires each agent's launch to the MCP server (see [`wiring`]); the chat pane is left alone.
fn wire_slots(slots: &mut [Slot], exe: &Path, state_dir: &Path) -> Result<(), UpError> {
    let any_gemini = slots.iter().any(|s| {
        s.prompt.is_some() && wiring::cli_of(&s.launch) == Some(crate::mcp::AgentCli::Gemini)
    });
    let person = if any_gemini {
        wiring::person_gemini(&env_var, state_dir).map_err(error)?
    } else {
        None
    };
    for slot in slots.iter_mut().filter(|s| s.prompt.is_some()) {
        let wired = wiring::plan(&slot.launch, &slot.label, exe, state_dir, person.as_ref())
            .map_err(error)?;
        slot.launch = wired.launch.clone();
        slot.wired = Some(wired);
    }
    Ok(())
}

/// Runs `macs-bridge up` for `session` on `tmux`'s server.
pub async fn up(tmux: &Tmux, session: &str, a: UpOptions) -> Result<(), UpError> {
    let session = session.to_string();
    check_session_name(&session)?;
    let cwd = std::env::current_dir()
        .map_err(|e| error(format!("cannot read the current directory: {e}")))?;
    let state_dir = absolute(a.state_dir.as_deref().unwrap_or(&cwd));
    let exe = std::env::current_exe()
        .map_err(|e| error(format!("cannot find this program's own path: {e}")))?;

    // Everything that can be checked is checked before tmux is touched: the settings, the
    // panes' commands, the prompt files, the agents' MCP wiring.
    let cfg = load_settings(&state_dir)?;
    let (inject, busy_lines) = writer_settings(&cfg);
    let ready = ReadyOptions {
        timeout: Duration::from_secs(a.ready_timeout),
        idle_for: Duration::from_secs(1),
        asking_for: Duration::from_secs(3),
        inject,
        busy_lines,
    };
    let mut slots = slots(&tmux.socket, &session, &a, &exe, &cfg, &state_dir)?;
    let mut texts: HashMap<PromptKind, String> = HashMap::new();
    for kind in slots.iter().filter_map(|s| s.prompt) {
        texts.insert(kind, prompts::load(kind, &state_dir)?);
    }
    wire_slots(&mut slots, &exe, &state_dir)?;

    tmux.check_version().await?;

    // Private, and not another user's, before the agents' settings are written under it.
    crate::mailbox::open_state_dir(&state_dir).map_err(|e| error(e.to_string()))?;
    for wired in slots.iter().filter_map(|s| s.wired.as_ref()) {
        wiring::apply(&state_dir, wired).map_err(error)?;
    }

    if a.reset_session && tmux.has_session(&session).await? {
        let rows = session::list(tmux, &session).await?;
        stop_bridges(tmux, &session, &rows, Duration::from_secs(10)).await?;
        tmux.run(["kill-session", "-t", &exact(&session)]).await?;
        println!("session {session}: killed (--reset-session)");
    }
    let existed = tmux.has_session(&session).await?;

    let mut windows = Vec::new();
    let laid = open_layout(
        tmux,
        &session,
        a.layout,
        &slots,
        &cwd,
        existed,
        &mut windows,
    )
    .await;
    let again = report::rerun_line(&tmux.socket, &session, &a, &state_dir);
    // Whatever happened, the agents' windows go back to the person's `remain-on-exit` once
    // the agents are started and prompted (or could not be).
    let prompted = match laid {
        Ok(laid) => {
            print_layout(&session, existed, &slots, &laid);
            report::print_wiring(&slots, &laid);
            let prompting = Prompting {
                slots: &slots,
                laid: &laid,
                texts: &texts,
                state_dir: &state_dir,
                again: &again,
            };
            prompt_agents(tmux, &session, &prompting, &ready).await
        }
        Err(e) => Err(e),
    };
    for w in &windows {
        let _ = session::release_window(tmux, w).await;
    }
    let missing = prompted?;

    let socket_path = session::socket_path(tmux, &session).await?;
    if a.no_daemon {
        let rows = session::list(tmux, &session).await?;
        match rows.iter().find(|r| r.bridge && !r.dead) {
            Some(r) => println!(
                "daemon: already running in window {} (pane {}); --no-daemon leaves it, `down` stops it",
                session::BRIDGE_WINDOW,
                r.id
            ),
            None => println!("daemon: not started (--no-daemon)"),
        }
    } else {
        let mut argv = vec![exe.to_string_lossy().into_owned()];
        argv.extend(socket_flags(&tmux.socket, &socket_path));
        argv.extend(
            [
                "--session",
                &session,
                "--mode",
                "auto",
                "--state-dir",
                &state_dir.to_string_lossy(),
            ]
            .map(String::from),
        );
        start_daemon(tmux, &session, &cwd, &argv).await?;
    }

    if a.print_mcp {
        report::print_snippets(&exe, &slots, &state_dir);
    }

    finish(tmux, &session, &a, &socket_path, &missing, &again)
}

/// What the prompts need to know about the layout.
struct Prompting<'a> {
    slots: &'a [Slot],
    laid: &'a Laid,
    texts: &'a HashMap<PromptKind, String>,
    state_dir: &'a Path,
    /// The command that runs `up` again with the same options.
    again: &'a str,
}

impl Prompting<'_> {
    /// The start-up prompt of slot `i`: the chat agents' names them and the others.
    fn text(&self, i: usize) -> Option<String> {
        let slot = &self.slots[i];
        let template = self.texts.get(&slot.prompt?)?;
        Some(match slot.prompt? {
            PromptKind::ChatAgentPrompt => {
                let others: Vec<&str> = self
                    .slots
                    .iter()
                    .filter(|s| s.prompt.is_some() && s.label != slot.label)
                    .map(|s| s.label.as_str())
                    .collect();
                prompts::render_chat_prompt(template, &slot.label, &others)
            }
            _ => template.clone(),
        })
    }
}

/// Sends the start-up prompts to the agents that have not had theirs, showing how each looks
/// while it is waited for, and says what became of each. Returns the agents that did not get
/// their prompt (exited, asking, not ready in time, refused).
async fn prompt_agents(
    tmux: &Tmux,
    session: &str,
    p: &Prompting<'_>,
    opts: &ReadyOptions,
) -> Result<Vec<String>, UpError> {
    let mut jobs = Vec::new();
    for (i, slot) in p.slots.iter().enumerate() {
        let (Some(text), Some(pane)) = (p.text(i), p.laid.ids[i]) else {
            continue;
        };
        let kept = p.laid.fates[i] == Fate::Kept;
        if kept && p.laid.found[i].as_ref().is_some_and(|r| r.prompted) {
            println!("  {:<11} {pane:<5} prompt sent earlier", slot.label);
            continue;
        }
        jobs.push(PromptJob {
            label: slot.label.clone(),
            pane,
            text,
        });
    }
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    println!(
        "waiting up to {}s for the agents to reach their prompt…",
        opts.timeout.as_secs()
    );
    let mut show = |g: &Progress| println!("{}", report::progress_line(g));
    let mut results = ready::send_prompts(tmux, session, jobs, opts, &mut show).await?;
    results.sort_by_key(|(job, _)| p.slots.iter().position(|s| s.label == job.label));
    let mut missing = Vec::new();
    for (job, result) in &results {
        let file = p
            .slots
            .iter()
            .find(|s| s.label == job.label)
            .and_then(|s| s.prompt)
            .map(|k| report::prompt_source(k, p.state_dir))
            .unwrap_or_default();
        if !matches!(
            result,
            PromptResult::Sent { .. } | PromptResult::Unconfirmed { .. }
        ) {
            missing.push(job.label.clone());
        }
        println!(
            "  {:<11} {:<5} {}",
            job.label,
            job.pane.to_string(),
            report::describe(result, &file, p.again)
        );
    }
    Ok(missing)
}

/// Starts the daemon in its window unless one runs there already; waits for its `started` line.
async fn start_daemon(
    tmux: &Tmux,
    session: &str,
    cwd: &Path,
    argv: &[String],
) -> Result<(), UpError> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TARGET_PANE_") || k == "MACS_BRIDGE_LOG")
        .collect();
    let rows = session::list(tmux, session).await?;
    let shown = shell_line(argv);
    if let Some(r) = rows.iter().find(|r| r.bridge && !r.dead) {
        println!(
            "daemon: already running in window {} (pane {}, pid {})",
            session::BRIDGE_WINDOW,
            r.id,
            r.pid
        );
        return Ok(());
    }
    let pane = match rows.iter().find(|r| r.bridge) {
        Some(exited) => {
            session::respawn_bridge(tmux, exited.id, cwd, &env, argv).await?;
            exited.id
        }
        None => session::start_bridge(tmux, session, cwd, &env, argv).await?,
    };
    match session::wait_bridge_started(tmux, pane, BRIDGE_START_TIMEOUT).await {
        BridgeStart::Started => println!(
            "daemon: started in window {} (pane {pane}): {shown}",
            session::BRIDGE_WINDOW
        ),
        BridgeStart::Silent => println!(
            "daemon: running in window {} (pane {pane}), but it has not said `started` after {}s; look at it there: {shown}",
            session::BRIDGE_WINDOW,
            BRIDGE_START_TIMEOUT.as_secs()
        ),
        BridgeStart::Exited { status, output } => {
            let status = if status.is_empty() {
                String::new()
            } else {
                format!(" with status {status}")
            };
            return Err(error(format!(
                "the daemon exited at start{status}; its window {} of session {session} shows why ({shown}):\n{}",
                session::BRIDGE_WINDOW,
                indent(&output, "  | ")
            )));
        }
    }
    Ok(())
}

/// How to stop, and attaching (or how to). An agent that did not get its prompt makes `up`
/// fail, naming it, after saying how to look and how to run `up` again.
fn finish(
    tmux: &Tmux,
    session: &str,
    a: &UpOptions,
    socket_path: &str,
    missing: &[String],
    again: &str,
) -> Result<(), UpError> {
    let socket = &tmux.socket;
    let mut stop = vec!["macs-bridge".to_string()];
    stop.extend(person_flags(socket));
    stop.extend(["--session".into(), session.into(), "down".into()]);
    println!(
        "stop: {}   (add --kill to end the session too)",
        shell_line(&stop)
    );
    let target = exact(session);
    let attach_line = tmux_line(socket, &["attach", "-t", &target]);
    if !missing.is_empty() {
        println!("look at it: {attach_line}");
        let (who, verb) = match missing {
            [one] => (one.clone(), "did"),
            more => (more.join(", "), "did"),
        };
        return Err(error(format!(
            "{who} {verb} not get {} start-up prompt (see above); its pane is kept so you can see why. Once fixed, run `{again}`",
            if missing.len() == 1 { "its" } else { "their" }
        )));
    }
    if let Some(tmux_env) = env_var("TMUX").filter(|v| !v.is_empty()) {
        // Never nest a client: switch to the session, or attach from elsewhere.
        if tmux_env.split(',').next() == Some(socket_path) {
            println!(
                "switch to it: {}",
                tmux_line(&Socket::Default, &["switch-client", "-t", &target])
            );
        } else {
            println!("attach from a terminal outside tmux: {attach_line}");
        }
        return Ok(());
    }
    let attach = if a.attach {
        true
    } else if a.no_attach {
        false
    } else {
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
    };
    if !attach {
        println!("attach: {attach_line}");
        return Ok(());
    }
    attach_now(tmux, session)
}

/// Replaces this process with `tmux attach -t =S`.
fn attach_now(tmux: &Tmux, session: &str) -> Result<(), UpError> {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(&tmux.bin)
        .args(tmux.socket.args())
        .args(["attach-session", "-t", &exact(session)])
        .exec();
    Err(error(format!("cannot run tmux to attach: {e}")))
}

/// Stops every daemon window of the session; prints what happened. Returns how many it found.
async fn stop_bridges(
    tmux: &Tmux,
    session: &str,
    rows: &[PaneRow],
    timeout: Duration,
) -> Result<usize, UpError> {
    let bridges: Vec<&PaneRow> = rows.iter().filter(|r| r.bridge).collect();
    for row in &bridges {
        let line = match session::stop_bridge(tmux, row, timeout).await? {
            Stopped::Clean { pid } => format!("daemon stopped (pid {pid}); window closed"),
            Stopped::AlreadyExited => "daemon had exited already; window closed".to_string(),
            Stopped::Killed { pid } => format!(
                "daemon (pid {pid}) did not exit within {}s of SIGTERM; its window was killed",
                timeout.as_secs()
            ),
        };
        println!("session {session}: {line}");
    }
    Ok(bridges.len())
}

/// Runs `macs-bridge down` for `session` on `tmux`'s server.
pub async fn down(tmux: &Tmux, session: &str, a: DownOptions) -> Result<(), UpError> {
    let session = session.to_string();
    tmux.check_version().await?;
    if !tmux.has_session(&session).await? {
        println!("no session {session:?} on this tmux server: nothing to stop");
        return Ok(());
    }
    let rows = session::list(tmux, &session).await?;
    let stopped = stop_bridges(tmux, &session, &rows, Duration::from_secs(a.timeout)).await?;
    if stopped == 0 {
        println!(
            "session {session}: no daemon window ({}): no daemon to stop",
            session::BRIDGE_WINDOW
        );
    }
    if a.kill {
        match tmux.run(["kill-session", "-t", &exact(&session)]).await {
            Ok(_) => println!("session {session}: killed"),
            // Gone in the meantime (its last window was the daemon's).
            Err(_) if !tmux.has_session(&session).await? => {
                println!("session {session}: already gone")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_session_names_are_refused() {
        for bad in ["", "a.b", "a:b", "a#b", "a\nb"] {
            assert!(check_session_name(bad).unwrap_err().is_usage(), "{bad:?}");
        }
        for good in ["macs", "my session", "x-1_2"] {
            assert!(check_session_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn socket_flags_name_the_same_server() {
        assert_eq!(socket_flags(&Socket::Name("x".into()), "/s"), ["-L", "x"]);
        assert_eq!(
            socket_flags(&Socket::Path("/tmp/s".into()), "/s"),
            ["--socket", "/tmp/s"]
        );
        assert_eq!(
            socket_flags(&Socket::Default, "/tmp/tmux-1/default"),
            ["--socket", "/tmp/tmux-1/default"]
        );
        assert_eq!(
            tmux_line(&Socket::Name("my sock".into()), &["attach", "-t", "=macs"]),
            "tmux -L 'my sock' attach -t =macs"
        );
        assert_eq!(
            shell_line(&["a", "", "it's", "-L", "=m"]),
            "a '' 'it'\\''s' -L =m"
        );
    }
}
