//! The command line: global flags, the pane tools (`snapshot`, `status`, `send`, `set-target`,
//! `notify`, `panes`) and exit codes. Each tool attaches a control client to the session for
//! the time it runs and detaches when done.
//!
//! Flags beat environment variables; the documented defaults come last.

use std::io::Read;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::detect::{PaneState, Profiles};
use crate::inject::{self, InjectError, InjectOptions, Look, Outcome, PaneWatch};
use crate::pane::Panes;
use crate::tmux::client::{Client, ClientEvent, ClientOptions};
use crate::tmux::command::{CaptureOpts, Command, KeyName, Target};
use crate::tmux::oneshot::{Socket, Tmux};
use crate::tmux::PaneId;

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
    pub daemon: crate::daemon::DaemonArgs,
    #[command(subcommand)]
    pub command: Option<Tool>,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The tmux session to work in [default: macs].
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
    Demo(crate::demo::DemoArgs),
    /// Start a session of agents: the panes, their prompts and the daemon.
    Up(crate::up::UpArgs),
    /// Stop the session's daemon (and with --kill, the session).
    Down(crate::up::DownArgs),
    /// Join the group chat: talk to the agents, see who said what and what was delivered
    /// (through the running daemon's socket). Reads lines from standard input when piped.
    Chat(crate::chat_client::ChatArgs),
    /// An MCP server on stdio for one agent (Claude Code, Codex, Gemini CLI): messages, agents
    /// and controller requests through the running daemon. `--print-config` shows the setup.
    Mcp(crate::mcp::McpArgs),
}

#[derive(Debug, Args)]
pub struct TargetArg {
    /// The pane: an id (`%3`), a tmux target (`macs:0.1`) or a label (`@macs-agent` option,
    /// pane title, window name). Default: the pinned target, else `TARGET_PANE_LABEL`, else `worker`.
    #[arg(short, long, value_name = "PANE")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub target: TargetArg,
    /// How many lines, counted from the bottom.
    #[arg(long, env = "TARGET_PANE_LINES", default_value_t = 200)]
    pub lines: u32,
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
    /// Lines from the bottom the classifier reads.
    #[arg(long, env = "TARGET_PANE_BUSY_LINES", default_value_t = 40)]
    pub busy_lines: usize,
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
    /// Submit keys tried in order until one is seen to submit.
    #[arg(
        long,
        env = "TARGET_PANE_SUBMIT_KEYS",
        default_value = "Enter,C-m",
        value_delimiter = ','
    )]
    pub submit_keys: Vec<String>,
    /// Milliseconds between the text and the submit key.
    #[arg(long, env = "TARGET_PANE_TYPE_DELAY_MS", default_value_t = 400)]
    pub type_delay_ms: u64,
    /// Refuse a pane that is not idle (1) or not (0).
    #[arg(long, env = "TARGET_PANE_GUARD_BUSY", default_value = "1", value_parser = parse_flag)]
    pub guard_busy: bool,
    /// Lines from the bottom the classifier reads.
    #[arg(long, env = "TARGET_PANE_BUSY_LINES", default_value_t = 40)]
    pub busy_lines: usize,
    /// The text; `-` reads standard input.
    #[arg(value_name = "TEXT", allow_hyphen_values = true)]
    pub text: String,
}

#[derive(Debug, Args)]
pub struct SetTargetArgs {
    /// The pane to pin.
    #[arg(value_name = "PANE")]
    pub pane: String,
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
    #[arg(long, env = "TARGET_PANE_BUSY_LINES", default_value_t = 40)]
    pub busy_lines: usize,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("expected 1 or 0, got {other:?}")),
    }
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
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
        Failure {
            code: exit::ERROR,
            message,
        }
    }
}

fn failure(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// A live view of a session for the one-shot tools: the registry fed by the control client.
pub struct LiveView {
    pub panes: Panes,
    pub events: tokio::sync::mpsc::UnboundedReceiver<ClientEvent>,
    pub profiles: Profiles,
    pub busy_lines: usize,
}

impl LiveView {
    /// Attaches to the session and builds the registry.
    pub async fn open(global: &Global) -> Result<LiveView, Failure> {
        let mut opts = ClientOptions::new(global.tmux(), global.session());
        opts.reconnect = false;
        let (client, mut events) = Client::connect(opts).await?;
        let mut panes = Panes::new(client);
        // The first event is `Attached`: handling it subscribes and lists the panes.
        // Then every capture must be applied before anyone looks.
        let mut first = true;
        while first || panes.seeding() {
            first = false;
            let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .map_err(|_| failure(exit::ERROR, "tmux did not send the panes in time"))?
                .ok_or_else(|| failure(exit::ERROR, "lost the connection to tmux"))?;
            panes.handle(ev).await?;
        }
        panes.drain(&mut events).await?;
        Ok(LiveView {
            panes,
            events,
            profiles: Profiles::builtin(),
            busy_lines: 40,
        })
    }

    /// Resolves a target (or the default one) to a pane id.
    pub async fn resolve(&self, target: Option<&str>) -> Result<PaneId, Failure> {
        let wanted = match target {
            Some(t) => t.to_string(),
            None => match self.panes.pinned_target().await? {
                Some(pinned) => pinned,
                None => std::env::var("TARGET_PANE_LABEL")
                    .ok()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "worker".into()),
            },
        };
        Ok(self.panes.find(&wanted).await?)
    }

    pub fn client(&self) -> &Client {
        self.panes.client()
    }

    pub fn close(self) {
        self.panes.client().shutdown();
    }
}

impl PaneWatch for LiveView {
    async fn look(&mut self, pane: PaneId) -> Result<Look, InjectError> {
        self.panes.drain(&mut self.events).await?;
        let p = self.panes.get(pane).ok_or(InjectError::PaneGone(pane))?;
        Ok(p.look(&self.profiles, self.busy_lines))
    }

    async fn settle(&mut self, max: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(max, self.events.recv()).await {
            let _ = self.panes.handle(ev).await;
        }
    }

    fn client(&self) -> &Client {
        self.panes.client()
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    pane: &'a str,
    target: String,
    label: Option<&'a str>,
    title: &'a str,
    current_command: &'a str,
    profile: &'a str,
    state: PaneState,
    reason: &'a str,
}

/// Runs one tool; returns the exit code.
pub async fn run_tool(global: &Global, tool: Tool) -> Result<u8, Failure> {
    match tool {
        Tool::Snapshot(a) => snapshot(global, a).await,
        Tool::Status(a) => status(global, a).await,
        Tool::Send(a) => send(global, a).await,
        Tool::SetTarget(a) => set_target(global, a).await,
        Tool::Notify(a) => notify(global, a).await,
        Tool::Panes(a) => panes(global, a).await,
        Tool::Demo(a) => crate::demo::run(a).await,
        Tool::SimAgent(a) => tokio::task::spawn_blocking(move || crate::sim::run(a))
            .await
            .map_err(|e| failure(exit::ERROR, format!("sim-agent stopped: {e}")))?
            .map_err(|e| failure(exit::ERROR, format!("sim-agent: {e:#}"))),
        Tool::Up(a) => crate::up::up(global, a).await,
        Tool::Down(a) => crate::up::down(global, a).await,
        Tool::Chat(a) => crate::chat_client::run(global, a).await,
        Tool::Mcp(a) => crate::mcp::run(a).await,
    }
}

async fn snapshot(global: &Global, a: SnapshotArgs) -> Result<u8, Failure> {
    let view = LiveView::open(global).await?;
    let pane = view.resolve(a.target.target.as_deref()).await?;
    let opts = CaptureOpts {
        escapes: a.escapes,
        start: Some(-(i64::from(a.lines))),
        ..CaptureOpts::default()
    };
    let mut lines = view
        .client()
        .run(&Command::capture_pane(&Target::Pane(pane), &opts))
        .await?;
    // capture-pane pads the screen with blank rows below the last output: drop them.
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let skip = lines.len().saturating_sub(a.lines as usize);
    for line in &lines[skip..] {
        println!("{line}");
    }
    view.close();
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
    let mut view = LiveView::open(global).await?;
    view.busy_lines = a.busy_lines;
    let id = view.resolve(a.target.target.as_deref()).await?;
    let pane = view
        .panes
        .get(id)
        .ok_or_else(|| failure(exit::ERROR, format!("pane {id} closed")))?;
    let c = pane.classify(&view.profiles, view.busy_lines);
    let info = &pane.info;
    if a.json {
        let json = StatusJson {
            pane: &info.id,
            target: info.target(),
            label: info.label.as_deref(),
            title: &info.title,
            current_command: &info.current_command,
            profile: &c.profile,
            state: c.state,
            reason: &c.reason,
        };
        println!(
            "{}",
            serde_json::to_string(&json).map_err(|e| failure(exit::ERROR, e.to_string()))?
        );
    } else {
        println!(
            "{}\tpane {} ({})\tprofile {}\tcommand {}\t{}",
            c.state,
            info.id,
            info.target(),
            c.profile,
            info.current_command,
            c.reason
        );
    }
    let code = state_code(c.state);
    view.close();
    Ok(code)
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
    let mut submit_keys = Vec::new();
    for k in a
        .submit_keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
    {
        submit_keys.push(KeyName::parse(k).map_err(|e| {
            failure(
                exit::USAGE,
                format!("TARGET_PANE_SUBMIT_KEYS / --submit-keys: {e}"),
            )
        })?);
    }
    if submit_keys.is_empty() && !a.no_submit {
        return Err(failure(exit::USAGE, "no submit keys given"));
    }
    let opts = InjectOptions {
        type_delay: Duration::from_millis(a.type_delay_ms),
        submit_keys,
        guard_busy: a.guard_busy && !a.force,
        no_submit: a.no_submit,
        ..InjectOptions::default()
    };
    let mut view = LiveView::open(global).await?;
    view.busy_lines = a.busy_lines;
    let pane = view.resolve(a.target.target.as_deref()).await?;
    let result = inject::deliver(&mut view, pane, &text, &opts).await;
    view.close();
    match result {
        Ok(Outcome::Delivered { key, evidence }) => {
            println!("delivered to {pane} (submitted with {key}: {evidence})");
            Ok(exit::OK)
        }
        Ok(Outcome::Typed) => {
            println!("typed into {pane}, not submitted");
            Ok(exit::OK)
        }
        Ok(Outcome::Unconfirmed { reason }) => {
            println!("unconfirmed: typed into {pane} but {reason}");
            Ok(exit::UNCONFIRMED)
        }
        Err(e @ (InjectError::NotIdle { .. } | InjectError::PromptHasText { .. })) => Err(failure(
            exit::BUSY,
            format!("refused: {e} (use --force to type anyway)"),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn set_target(global: &Global, a: SetTargetArgs) -> Result<u8, Failure> {
    let view = LiveView::open(global).await?;
    let pane = view.panes.find(&a.pane).await?;
    view.panes.pin_target(pane).await?;
    let info = view
        .panes
        .get(pane)
        .map(|p| p.info.target())
        .unwrap_or_default();
    println!(
        "default target of session {} is now {pane} ({info})",
        global.session()
    );
    view.close();
    Ok(exit::OK)
}

async fn notify(global: &Global, a: NotifyArgs) -> Result<u8, Failure> {
    let tmux = global.tmux();
    tmux.check_version().await?;
    let text = inject::sanitize(&a.text).replace(['\n', '\t'], " ");
    // Shown on every client attached to the session, for the given time; never typed.
    let clients = tmux
        .run([
            "list-clients",
            "-t",
            &format!("={}", global.session()),
            "-F",
            "#{client_name}",
        ])
        .await?;
    let clients: Vec<&str> = clients.lines().filter(|l| !l.is_empty()).collect();
    if clients.is_empty() {
        return Err(failure(
            exit::ERROR,
            format!(
                "no tmux client is attached to session {:?}: nobody would see the message",
                global.session()
            ),
        ));
    }
    // display-message expands formats (`#{…}`, `#(…)`) and then styles (`#[…]`): neutralise both.
    let mut shown = crate::tmux::command::literal_status_text(&text);
    // tmux takes an argument that ends in `;` as the end of a command.
    if shown.ends_with(';') {
        shown.push(' ');
    }
    for c in &clients {
        tmux.run([
            "display-message",
            "-c",
            c,
            "-d",
            &a.duration_ms.to_string(),
            &shown,
        ])
        .await?;
    }
    println!("shown to {} client(s)", clients.len());
    Ok(exit::OK)
}

#[derive(Serialize)]
struct PaneRow<'a> {
    pane: &'a str,
    target: String,
    label: Option<&'a str>,
    window: &'a str,
    title: &'a str,
    current_command: &'a str,
    profile: String,
    state: PaneState,
}

async fn panes(global: &Global, a: PanesArgs) -> Result<u8, Failure> {
    let mut view = LiveView::open(global).await?;
    view.busy_lines = a.busy_lines;
    let rows: Vec<PaneRow> = view
        .panes
        .iter()
        .map(|p| {
            let c = p.classify(&view.profiles, view.busy_lines);
            PaneRow {
                pane: &p.info.id,
                target: p.info.target(),
                label: p.info.label.as_deref(),
                window: &p.info.window_name,
                title: &p.info.title,
                current_command: &p.info.current_command,
                profile: c.profile,
                state: c.state,
            }
        })
        .collect();
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
                r.label.unwrap_or("-"),
                r.window,
                r.current_command,
                r.profile,
                r.state,
                r.title
            );
        }
    }
    drop(rows);
    view.close();
    Ok(exit::OK)
}
