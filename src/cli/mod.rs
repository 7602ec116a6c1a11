//! The command line: the flags of every command, the exit codes, and turning what the library
//! returns into messages and exit codes. The only module that knows the command line: the
//! library modules it calls get plain values (a [`Tmux`], a session, a loaded [`Config`]) and
//! return typed errors, which are mapped here.
//!
//! Every command that works on a session (the daemon and the pane tools) loads its settings
//! through [`Config::load`]: flags beat environment variables, which beat the config file
//! (`--config`, else `macs.yaml` in the state dir), which beats the documented defaults.

pub mod daemon;
mod docs;
mod info;

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, ConfigError, Overrides};
use crate::detect::PaneState;
use crate::inject::Outcome;
use crate::tmux::oneshot::{Socket, Tmux};
use crate::tools::{self, SendOptions, ToolError};

/// Exit codes, documented in the README.
pub mod exit {
    /// Success; for `status`: the pane is idle.
    pub const OK: u8 = 0;
    /// An error (no tmux, no session, unknown target, tmux refused a command…).
    pub const ERROR: u8 = 1;
    /// Bad usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// `status`: busy. `send`: refused, the pane is not idle or its prompt holds someone's text.
    pub const BUSY: u8 = 3;
    /// `status`: asking (a menu or question waits for an answer).
    pub const ASKING: u8 = 4;
    /// `status`: unknown.
    pub const UNKNOWN: u8 = 5;
    /// `send`: typed and submitted, but the submission was not seen on screen.
    pub const UNCONFIRMED: u8 = 6;
}

#[derive(Debug, Parser)]
#[command(
    name = "macs-bridge",
    version,
    about = "Lets AI coding agents in tmux work together: detects requests, delivers answers, runs a group chat.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// The daemon's flags (when no subcommand is given).
    #[command(flatten)]
    pub daemon: daemon::DaemonArgs,
    #[command(subcommand)]
    pub command: Option<Tool>,
}

/// Flags every command takes, before or after the subcommand.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The tmux session to work in [default: `session` in macs.yaml (daemon and pane tools),
    /// else macs].
    #[arg(
        long = "session",
        global = true,
        env = "MACS_SESSION",
        value_name = "NAME"
    )]
    pub session_flag: Option<String>,
    /// tmux socket name (as `tmux -L NAME`).
    #[arg(
        short = 'L',
        long = "socket-name",
        global = true,
        value_name = "NAME",
        conflicts_with = "socket"
    )]
    pub socket_name: Option<String>,
    /// tmux socket path (as `tmux -S PATH`); a value without `/` is taken as a socket name.
    #[arg(long, global = true, value_name = "PATH", env = "TMUX_SOCKET")]
    pub socket: Option<String>,
    /// The state dir: inbox/, outbox/, archive/, the journal, the daemon's socket macs.sock,
    /// and macs.yaml [default: the current directory].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The config file [default: macs.yaml in the state dir, when it is there].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logging (-v debug, -vv trace); `MACS_BRIDGE_LOG` takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The session: the flag, else `MACS_SESSION`, else `macs`.
    pub fn session(&self) -> &str {
        self.session_flag.as_deref().unwrap_or("macs")
    }

    pub fn socket(&self) -> Socket {
        match (&self.socket_name, &self.socket) {
            (Some(name), _) => Socket::Name(name.clone()),
            (None, Some(value)) => Socket::from_env_value(value),
            (None, None) => Socket::Default,
        }
    }

    pub fn tmux(&self) -> Tmux {
        Tmux::new(self.socket())
    }
}

#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Print the last lines of a pane.
    Snapshot(SnapshotArgs),
    /// Say whether a pane is idle, busy, asking or unknown (exit 0, 3, 4, 5).
    Status(StatusArgs),
    /// Type text into a pane's prompt and submit it, only when the pane is idle.
    Send(SendArgs),
    /// Pin the default target pane for every tool and the daemon.
    SetTarget(SetTargetArgs),
    /// Show a message to the person at the tmux client (never typed into a pane).
    Notify(NotifyArgs),
    /// List every pane with its label, profile and state.
    Panes(PanesArgs),
    /// A scripted stand-in for an agent CLI, for tests, the demo and trying profiles.
    SimAgent(crate::sim::SimArgs),
    /// The main job on a built-in setup: a scripted worker and controller on a private tmux
    /// server, in auto mode. Exits 0 when every round was delivered.
    Demo(DemoArgs),
    /// Start a session of agents: the panes, their prompts and the daemon.
    Up(UpArgs),
    /// Stop the session's daemon (and with --kill, the session).
    Down(DownArgs),
    /// Join the group chat: talk to the agents, see who said what and what was delivered
    /// (through the running daemon's socket). Reads lines from standard input when piped.
    Chat(ChatArgs),
    /// An MCP server on stdio for one agent (Claude Code, Codex, Gemini CLI): messages, agents
    /// and controller requests through the running daemon. `--print-config` shows the setup.
    Mcp(McpArgs),
    /// Say whether a daemon runs for the session: its pid, state dir, uptime, agents, queues,
    /// held messages and last error (exit 0 when it runs, 1 when not).
    Info(info::InfoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(docs::ManArgs),
}

#[derive(Debug, Args)]
pub struct TargetArg {
    /// The pane: an id (`%3`), a tmux target (`macs:0.1`) or a label (`@macs-agent` option,
    /// pane title, window name). Default: the pinned target, else `TARGET_PANE_LABEL`, else
    /// `worker` in macs.yaml, else `worker`.
    #[arg(short, long, value_name = "PANE")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub target: TargetArg,
    /// How many lines, counted from the bottom [default: `TARGET_PANE_LINES`, else `lines` in
    /// macs.yaml, else 200].
    #[arg(long, value_name = "N")]
    pub lines: Option<u64>,
    /// Keep colour and attribute escapes.
    #[arg(long)]
    pub escapes: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Lines from the bottom the classifier reads [default: `TARGET_PANE_BUSY_LINES`, else
    /// `busy_lines` in macs.yaml, else 40].
    #[arg(long, value_name = "N")]
    pub busy_lines: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: TargetArg,
    /// Type even when the pane is not idle.
    #[arg(long)]
    pub force: bool,
    /// Type the text but do not submit it.
    #[arg(long)]
    pub no_submit: bool,
    /// Submit keys tried in order until one is seen to submit [default:
    /// `TARGET_PANE_SUBMIT_KEYS`, else `injection.submit_keys` in macs.yaml, else Enter,C-m].
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    pub submit_keys: Option<Vec<String>>,
    /// Milliseconds between the text and the submit key [default: `TARGET_PANE_TYPE_DELAY_MS`,
    /// else `injection.type_delay_ms` in macs.yaml, else 400].
    #[arg(long, value_name = "MS")]
    pub type_delay_ms: Option<u64>,
    /// 1: type only into an idle pane; 0: type also into a busy one (never into a menu)
    /// [default: `TARGET_PANE_GUARD_BUSY`, else `injection.guard_busy` in macs.yaml, else 1].
    #[arg(long, value_name = "1|0", value_parser = parse_flag)]
    pub guard_busy: Option<bool>,
    /// Lines from the bottom the classifier reads [default: `TARGET_PANE_BUSY_LINES`, else
    /// `busy_lines` in macs.yaml, else 40].
    #[arg(long, value_name = "N")]
    pub busy_lines: Option<u64>,
    /// The text; `-` reads standard input.
    #[arg(value_name = "TEXT", allow_hyphen_values = true)]
    pub text: String,
}

#[derive(Debug, Args)]
#[command(override_usage = "macs-bridge set-target PANE\n       macs-bridge set-target --clear")]
pub struct SetTargetArgs {
    /// The pane to pin.
    #[arg(value_name = "PANE", required_unless_present = "clear")]
    pub pane: Option<String>,
    /// Unpin: the default target is `TARGET_PANE_LABEL`, else `worker` in macs.yaml, else
    /// `worker` again.
    #[arg(long, conflicts_with = "pane")]
    pub clear: bool,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// How long the message stays, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub duration_ms: u64,
    /// The message.
    #[arg(value_name = "TEXT")]
    pub text: String,
}

#[derive(Debug, Args)]
pub struct PanesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Lines from the bottom the classifier reads [default: `TARGET_PANE_BUSY_LINES`, else
    /// `busy_lines` in macs.yaml, else 40].
    #[arg(long, value_name = "N")]
    pub busy_lines: Option<u64>,
}

/// The flags of `up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// `pair`: a worker and its controller side by side; `chat`: a chat pane above N agents.
    #[arg(long, value_enum, default_value_t = LayoutArg::Pair)]
    pub layout: LayoutArg,
    /// How many agent panes the chat layout has [default: the agents of macs.yaml, else 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=12))]
    pub agents: Option<u8>,
    /// The worker's command line (every agent's, in the chat layout) [default: codex].
    #[arg(long, value_name = "CMD")]
    pub worker: Option<String>,
    /// The controller's command line [default: codex].
    #[arg(long, value_name = "CMD")]
    pub controller: Option<String>,
    /// Attach to the session at the end (default when run from a terminal outside tmux).
    #[arg(long, overrides_with = "no_attach")]
    pub attach: bool,
    /// Print how to attach instead of attaching.
    #[arg(long, overrides_with = "attach")]
    pub no_attach: bool,
    /// Kill the session first (stopping its daemon), then create it anew.
    #[arg(long)]
    pub reset_session: bool,
    /// Do not start the daemon.
    #[arg(long)]
    pub no_daemon: bool,
    /// Seconds the agents get to reach their prompt.
    #[arg(long, value_name = "SECS", default_value_t = crate::up::DEFAULT_READY_TIMEOUT)]
    pub ready_timeout: u64,
    /// Also print each agent's MCP configuration in full (Claude Code, Codex, Gemini CLI).
    #[arg(long)]
    pub print_mcp: bool,
}

/// The panes `up` sets out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// A worker (left) and its controller (right).
    Pair,
    /// The person's chat pane on top, N agents below.
    Chat,
}

/// The flags of `down`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// Also kill the session (and with it the agents).
    #[arg(long)]
    pub kill: bool,
    /// Seconds the daemon gets to exit after SIGTERM before its window is killed.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

/// The flags of `chat`.
#[derive(Debug, Args, Clone, Default)]
pub struct ChatArgs {
    /// The name you write under [default: person].
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
}

/// The flags of `mcp`.
#[derive(Debug, Clone, Args)]
#[command(
    override_usage = "macs-bridge mcp --as NAME [--state-dir DIR]\n       \
                            macs-bridge mcp --print-config [--as NAME] [--agent AGENT] [--state-dir DIR]"
)]
pub struct McpArgs {
    /// The agent this server speaks for: its name in the team (its pane's `@macs-agent` label).
    /// Messages it sends are from NAME; `read_messages` reads NAME's.
    #[arg(
        long = "as",
        value_name = "NAME",
        required_unless_present = "print_config"
    )]
    pub name: Option<String>,
    /// Print the configuration that makes Claude Code, Codex and Gemini CLI start this server,
    /// and exit.
    #[arg(long)]
    pub print_config: bool,
    /// With --print-config: only this agent's snippet, exactly as its file wants it.
    #[arg(long, value_enum, value_name = "AGENT", requires = "print_config")]
    pub agent: Option<AgentArg>,
}

/// The agent CLIs there are MCP snippets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentArg {
    ClaudeCode,
    Codex,
    Gemini,
}

/// The flags of `demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Attach to the demo's tmux session to watch it live (needs a terminal); detach with
    /// C-b d when it is done.
    #[arg(long)]
    pub attach: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("expected 1 or 0, got {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors into messages and exit codes.

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::with_code(exit::ERROR, &e)
    }
}

impl Failure {
    /// `e` and its sources as one message (each source once), with `code`.
    pub fn with_code(code: u8, e: &dyn std::error::Error) -> Failure {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Failure { code, message }
    }
}

fn failure(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Settings that cannot be used are a usage error for the tools, as bad flags are.
fn config_failure(e: ConfigError) -> Failure {
    Failure::with_code(exit::USAGE, &e)
}

fn tool_failure(e: ToolError) -> Failure {
    let code = match e {
        ToolError::Refused(_) => exit::BUSY,
        _ => exit::ERROR,
    };
    Failure::with_code(code, &e)
}

fn usage_or_error(usage: bool) -> u8 {
    if usage {
        exit::USAGE
    } else {
        exit::ERROR
    }
}

// ---------------------------------------------------------------------------------------------
// Running a command.

/// Loads the settings a pane tool runs with: its own flags (`more`), the global ones, the
/// environment and the config file.
fn load_config(global: &Global, more: Overrides) -> Result<Config, Failure> {
    let overrides = Overrides {
        config: global.config.clone(),
        state_dir: global.state_dir.clone(),
        session: global.session_flag.clone(),
        ..more
    };
    let hint = global
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    Config::load(&overrides, &config::process_env, &hint).map_err(config_failure)
}

/// The tmux server: `-L`/`--socket`/`TMUX_SOCKET`, else the config's `socket`.
fn tmux_for(global: &Global, cfg: &Config) -> Tmux {
    match (&global.socket_name, &global.socket, &cfg.socket) {
        (None, None, Some(s)) => Tmux::new(Socket::from_env_value(s)),
        _ => global.tmux(),
    }
}

/// Runs one tool; returns the exit code.
pub async fn run_tool(global: &Global, tool: Tool) -> Result<u8, Failure> {
    let unused = match &tool {
        Tool::Demo(_) => Some("demo"),
        Tool::SimAgent(_) => Some("sim-agent"),
        Tool::Completions(_) => Some("completions"),
        Tool::Man(_) => Some("man"),
        _ => None,
    };
    if let Some(name) = unused {
        if global.state_dir.is_some() || global.config.is_some() {
            return Err(failure(
                exit::USAGE,
                format!("{name} takes no --state-dir or --config"),
            ));
        }
    }
    match tool {
        Tool::Snapshot(a) => snapshot(global, a).await,
        Tool::Status(a) => status(global, a).await,
        Tool::Send(a) => send(global, a).await,
        Tool::SetTarget(a) => set_target(global, a).await,
        Tool::Notify(a) => notify(global, a).await,
        Tool::Panes(a) => panes(global, a).await,
        Tool::Demo(a) => {
            let opts = crate::demo::DemoOptions {
                attach: a.attach,
                timeout: a.timeout,
            };
            match crate::demo::run(opts).await? {
                true => Ok(exit::OK),
                false => Ok(exit::ERROR),
            }
        }
        Tool::SimAgent(a) => tokio::task::spawn_blocking(move || crate::sim::run(a))
            .await
            .map_err(|e| failure(exit::ERROR, format!("sim-agent stopped: {e}")))?
            .map_err(|e| failure(exit::ERROR, format!("sim-agent: {e:#}"))),
        Tool::Up(a) => up(global, a).await,
        Tool::Down(a) => {
            let opts = crate::up::DownOptions {
                kill: a.kill,
                timeout: a.timeout,
            };
            // The session and server as the state dir's macs.yaml names them, unless flags do.
            let cfg = load_config(global, Overrides::default())?;
            crate::up::down(&tmux_for(global, &cfg), &cfg.session, opts)
                .await
                .map(|()| exit::OK)
                .map_err(|e| Failure::with_code(usage_or_error(e.is_usage()), &e))
        }
        Tool::Chat(a) => chat(global, a).await,
        Tool::Mcp(a) => mcp(global, a).await,
        Tool::Info(a) => info::run(global, a).await,
        Tool::Completions(a) => docs::completions(a),
        Tool::Man(a) => docs::man(a),
    }
}

async fn snapshot(global: &Global, a: SnapshotArgs) -> Result<u8, Failure> {
    let more = Overrides {
        lines: a.lines,
        ..Overrides::default()
    };
    let cfg = load_config(global, more)?;
    let tmux = tmux_for(global, &cfg);
    let lines = tools::snapshot(&tmux, &cfg, a.target.target.as_deref(), a.escapes)
        .await
        .map_err(tool_failure)?;
    for line in &lines {
        println!("{line}");
    }
    Ok(exit::OK)
}

fn state_code(state: PaneState) -> u8 {
    match state {
        PaneState::Idle => exit::OK,
        PaneState::Busy => exit::BUSY,
        PaneState::Asking => exit::ASKING,
        PaneState::Unknown => exit::UNKNOWN,
    }
}

async fn status(global: &Global, a: StatusArgs) -> Result<u8, Failure> {
    let more = Overrides {
        busy_lines: a.busy_lines,
        ..Overrides::default()
    };
    let cfg = load_config(global, more)?;
    let tmux = tmux_for(global, &cfg);
    let s = tools::status(&tmux, &cfg, a.target.target.as_deref())
        .await
        .map_err(tool_failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&s).map_err(|e| failure(exit::ERROR, e.to_string()))?
        );
    } else {
        println!(
            "{}\tpane {} ({})\tprofile {}\tcommand {}\t{}",
            s.state, s.pane, s.target, s.profile, s.current_command, s.reason
        );
    }
    Ok(state_code(s.state))
}

async fn send(global: &Global, a: SendArgs) -> Result<u8, Failure> {
    let text = if a.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| failure(exit::ERROR, format!("cannot read standard input: {e}")))?;
        s
    } else {
        a.text.clone()
    };
    let more = Overrides {
        submit_keys: a.submit_keys.clone(),
        type_delay_ms: a.type_delay_ms,
        guard_busy: a.guard_busy,
        busy_lines: a.busy_lines,
        ..Overrides::default()
    };
    let cfg = load_config(global, more)?;
    let tmux = tmux_for(global, &cfg);
    let how = SendOptions {
        force: a.force,
        no_submit: a.no_submit,
    };
    let (pane, outcome) = tools::send(&tmux, &cfg, a.target.target.as_deref(), &text, how)
        .await
        .map_err(tool_failure)?;
    match outcome {
        Outcome::Delivered { key, evidence } => {
            println!("delivered to {pane} (submitted with {key}: {evidence})");
            Ok(exit::OK)
        }
        Outcome::Typed => {
            println!("typed into {pane}, not submitted");
            Ok(exit::OK)
        }
        Outcome::Unconfirmed { reason } => {
            println!("unconfirmed: typed into {pane} but {reason}");
            Ok(exit::UNCONFIRMED)
        }
    }
}

async fn set_target(global: &Global, a: SetTargetArgs) -> Result<u8, Failure> {
    let cfg = load_config(global, Overrides::default())?;
    let tmux = tmux_for(global, &cfg);
    let Some(pane) = a.pane.filter(|_| !a.clear) else {
        let was = tools::clear_target(&tmux, &cfg.session)
            .await
            .map_err(tool_failure)?;
        match was {
            Some(p) => println!(
                "session {}: the default target is no longer pinned (it was {p})",
                cfg.session
            ),
            None => println!("session {}: no default target was pinned", cfg.session),
        }
        return Ok(exit::OK);
    };
    let (pane, target) = tools::set_target(&tmux, &cfg, &pane)
        .await
        .map_err(tool_failure)?;
    println!(
        "default target of session {} is now {pane} ({target})",
        cfg.session
    );
    Ok(exit::OK)
}

async fn notify(global: &Global, a: NotifyArgs) -> Result<u8, Failure> {
    let cfg = load_config(global, Overrides::default())?;
    let tmux = tmux_for(global, &cfg);
    let shown = tools::notify(&tmux, &cfg.session, &a.text, a.duration_ms)
        .await
        .map_err(tool_failure)?;
    println!("shown to {shown} client(s)");
    Ok(exit::OK)
}

async fn panes(global: &Global, a: PanesArgs) -> Result<u8, Failure> {
    let more = Overrides {
        busy_lines: a.busy_lines,
        ..Overrides::default()
    };
    let cfg = load_config(global, more)?;
    let tmux = tmux_for(global, &cfg);
    let rows = tools::panes(&tmux, &cfg).await.map_err(tool_failure)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&rows).map_err(|e| failure(exit::ERROR, e.to_string()))?
        );
    } else {
        println!("PANE\tTARGET\tLABEL\tWINDOW\tCOMMAND\tPROFILE\tSTATE\tTITLE");
        for r in &rows {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.pane,
                r.target,
                r.label.as_deref().unwrap_or("-"),
                r.window,
                r.current_command,
                r.profile,
                r.state,
                r.title
            );
        }
    }
    Ok(exit::OK)
}

async fn up(global: &Global, a: UpArgs) -> Result<u8, Failure> {
    let opts = crate::up::UpOptions {
        layout: match a.layout {
            LayoutArg::Pair => crate::up::Layout::Pair,
            LayoutArg::Chat => crate::up::Layout::Chat,
        },
        agents: a.agents,
        worker: a.worker,
        controller: a.controller,
        attach: a.attach,
        no_attach: a.no_attach,
        reset_session: a.reset_session,
        state_dir: global.state_dir.clone(),
        no_daemon: a.no_daemon,
        ready_timeout: a.ready_timeout,
        print_mcp: a.print_mcp,
    };
    crate::up::up(&global.tmux(), global.session(), opts)
        .await
        .map(|()| exit::OK)
        .map_err(|e| Failure::with_code(usage_or_error(e.is_usage()), &e))
}

async fn chat(global: &Global, a: ChatArgs) -> Result<u8, Failure> {
    use crate::chat_client::{self, ChatOptions, Ending};
    let opts = ChatOptions {
        name: a.name,
        state_dir: global.state_dir.clone(),
        session: global.session_flag.clone(),
    };
    match chat_client::run(opts).await {
        Ok(Ending::Clean) => Ok(exit::OK),
        Ok(Ending::Refused | Ending::Disconnected) => Ok(exit::ERROR),
        Ok(Ending::NotUnderstood) => Ok(exit::USAGE),
        Err(e) => Err(Failure::with_code(usage_or_error(e.is_usage()), &e)),
    }
}

async fn mcp(global: &Global, a: McpArgs) -> Result<u8, Failure> {
    let state_dir = global
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let result = if a.print_config {
        let agent = a.agent.map(|agent| match agent {
            AgentArg::ClaudeCode => crate::mcp::AgentCli::ClaudeCode,
            AgentArg::Codex => crate::mcp::AgentCli::Codex,
            AgentArg::Gemini => crate::mcp::AgentCli::Gemini,
        });
        crate::mcp::print_config(a.name.as_deref(), &state_dir, agent)
    } else {
        crate::mcp::run(a.name.as_deref().unwrap_or_default(), &state_dir).await
    };
    result
        .map(|()| exit::OK)
        .map_err(|e| Failure::with_code(usage_or_error(e.is_usage()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mcp_flags_parse() {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: McpArgs,
        }
        let t = T::try_parse_from(["x", "--as", "codex"]).unwrap();
        assert_eq!(t.a.name.as_deref(), Some("codex"));
        assert!(T::try_parse_from(["x"]).is_err(), "--as is required");
        let t = T::try_parse_from(["x", "--print-config", "--agent", "claude-code"]).unwrap();
        assert_eq!(t.a.agent, Some(AgentArg::ClaudeCode));
        assert!(T::try_parse_from(["x", "--as", "a", "--agent", "codex"]).is_err());
    }

    /// The global flags mean the same before and after the subcommand.
    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        for argv in [
            &[
                "m",
                "--state-dir",
                "/s",
                "--config",
                "/c.yaml",
                "-L",
                "x",
                "mcp",
                "--as",
                "a",
            ][..],
            &[
                "m",
                "mcp",
                "--as",
                "a",
                "--state-dir",
                "/s",
                "--config",
                "/c.yaml",
                "-L",
                "x",
            ][..],
            &[
                "m",
                "--state-dir",
                "/s",
                "mcp",
                "--as",
                "a",
                "--config",
                "/c.yaml",
                "-L",
                "x",
            ][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(cli.global.state_dir, Some(PathBuf::from("/s")), "{argv:?}");
            assert_eq!(
                cli.global.config,
                Some(PathBuf::from("/c.yaml")),
                "{argv:?}"
            );
            assert_eq!(cli.global.socket_name.as_deref(), Some("x"), "{argv:?}");
            assert!(matches!(cli.command, Some(Tool::Mcp(_))), "{argv:?}");
        }
        for sub in ["down", "chat", "info", "status", "panes", "up"] {
            let cli = Cli::try_parse_from(["m", sub, "--state-dir", "/s"]).unwrap();
            assert_eq!(cli.global.state_dir, Some(PathBuf::from("/s")), "{sub}");
            let cli = Cli::try_parse_from(["m", "--state-dir", "/s", sub]).unwrap();
            assert_eq!(cli.global.state_dir, Some(PathBuf::from("/s")), "{sub}");
        }
        // The daemon (no subcommand) takes them too.
        let cli = Cli::try_parse_from(["m", "--state-dir", "/s", "--mode", "auto"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.global.state_dir, Some(PathBuf::from("/s")));
    }

    #[test]
    fn set_target_takes_a_pane_or_clear() {
        let parse = |a: &[&str]| Cli::try_parse_from([&["m", "set-target"][..], a].concat());
        assert!(parse(&[]).is_err());
        assert!(parse(&["%1", "--clear"]).is_err());
        let Some(Tool::SetTarget(t)) = parse(&["--clear"]).unwrap().command else {
            panic!("set-target")
        };
        assert!(t.clear && t.pane.is_none());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
