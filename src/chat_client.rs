//! `macs-bridge chat`: the person's seat in the group chat, a client of the daemon's API
//! (`<state dir>/macs.sock`).
//!
//! It owns the person's terminal while it runs and nothing else: every message, key and pause
//! goes to the daemon as a call, and what it shows comes from the daemon's notifications. It
//! never talks to tmux.
//!
//! # Input
//!
//! | line | what it does |
//! |---|---|
//! | `@name text` | a message to one agent (the daemon reads the `@name`) |
//! | `@all text`, `text` | a message to everyone |
//! | `!text`, `!@name text` | urgent: typed as soon as the prompt can take it, not queued behind the agent's turn |
//! | `!KEY`, `!KEY @name` | a key (`C-c`, `^C`, `Escape`, `Enter`, `Up` …: a named or modified key, alone on the line) to `@name`, else to the agent last addressed by name (`@name …`, `!KEY @name`); `@all` messages do not change who that is |
//! | `/key KEY [name]` | any key, also a single character (`y`, `1`) to answer an agent's menu |
//! | `/pause [name]`, `/resume [name]` | hold (or let go) the messages for one agent, or for everyone |
//! | `/list` | the agents, their states and queues |
//! | `/history [N]` | the last N messages (20) |
//! | `/help`, `/quit` | |
//!
//! A line starting with `/` is a command; to send text that starts with `/`, address it
//! (`@all /tmp is full`). To send a key's name as urgent text, address it (`!@all Escape`).
//!
//! # Piped input
//!
//! When standard input is not a terminal, each line is run in turn and its result printed on
//! standard output (errors on standard error, with the line number); nothing else is shown. At
//! the end of input, once every line's answer is in, it exits: 0 when all went well, else the
//! code of the first failure (1: the daemon refused, 2: a line it could not understand).
//!
//! # The terminal
//!
//! When both standard input and output are terminals (and `TERM` is not `dumb`), the input line
//! is edited here, in non-canonical mode, so that a message arriving while the person types is
//! printed above the input line, which is then drawn again as it was: nothing typed is lost or
//! garbled. Editing is simple: Backspace, Ctrl-U (clear), Ctrl-W (word), Enter; Ctrl-C clears
//! the line or, on an empty line, quits, as Ctrl-D does. Arrow keys are ignored. A line wider
//! than the terminal shows its end. Characters count as one column each (wide characters may
//! shift the line). The terminal's settings are put back on every way out (also SIGTERM and
//! SIGHUP). Otherwise lines are read as the terminal gives them, and arriving messages are
//! printed as they come.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::api::protocol::{
    self, event, method, AgentKeyParams, AgentNameParams, AgentNamesResult, AgentStateEvent,
    AgentsListResult, ChatHistoryParams, ChatHistoryResult, ChatMessage, ChatSendParams,
    ChatSendResult, DeliveryStatus, DeliveryUpdateEvent, Empty, HelloParams, HelloResult,
    Notification, RequestDetectedEvent, SubscriptionDropped,
};
use crate::api::{ApiClient, ApiError};
use crate::chatline::{self, Typed};
use crate::config::ConfigError;

/// Who joins the chat, and where.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    /// The name the person writes under; `None`: [`crate::names::PERSON`].
    pub name: Option<String>,
    /// The daemon's state dir, which holds its socket; `None`: the current directory, or
    /// `state_dir` in its macs.yaml.
    pub state_dir: Option<PathBuf>,
    /// The session the person asked for, if they named one: only compared with the daemon's.
    pub session: Option<String>,
}

/// How a chat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `/quit`, the end of input, or every piped line went well.
    Clean,
    /// A piped line the daemon refused (or whose call failed).
    Refused,
    /// A piped line that could not be understood.
    NotUnderstood,
    /// The daemon closed the connection.
    Disconnected,
}

/// Why the chat could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A bad `--as` name: exit code 2.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("lost the connection to the daemon")]
    LostConnection,
}

impl ChatError {
    /// Whether the request itself was wrong.
    pub fn is_usage(&self) -> bool {
        matches!(self, ChatError::Usage(_))
    }
}

/// Messages `/history` shows by default, and the most it asks for.
const HISTORY_DEFAULT: u32 = 20;
const HISTORY_MAX: u32 = 1000;
/// Messages shown when the interactive chat starts.
const HISTORY_ON_JOIN: u32 = 10;
/// Lines of a detected request shown.
const REQUEST_LINES: usize = 8;

const HELP: &str = "\
@name text       a message to one agent
@all text, text  a message to everyone
!text            urgent: not queued behind the agent's turn (!@name text for one agent)
!C-c [@name]     a key (C-c, ^C, Escape, Enter, Up …) to @name, or to the agent you last addressed
/key KEY [name]  any key, also one character (y, 1) to answer a menu
/pause [name]    hold the messages for one agent, or everyone; /resume [name] lets them go
/list            the agents and their states
/history [N]     the last N messages (20)
/quit            leave (or Ctrl-D, or Ctrl-C on an empty line)";

/// Runs the chat until `/quit`, the end of input, or the daemon goes away.
pub async fn run(args: ChatOptions) -> Result<Ending, ChatError> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| crate::names::PERSON.to_string());
    if !protocol::is_valid_name(&name) {
        return Err(ChatError::Usage(format!(
            "--as {name:?}: a name is 1-64 letters, digits, `-`, `_` or `.`, and not `all`"
        )));
    }
    let socket = crate::api::socket_path(&state_dir(&args)?);
    let client = ApiClient::connect(&socket).await?;
    let hello = HelloParams { name: name.clone() };
    match client
        .call_as::<_, HelloResult>(method::HELLO, &hello)
        .await
    {
        Ok(h) => {
            if let Some(wanted) = &args.session {
                if *wanted != h.session {
                    eprintln!(
                        "macs-bridge chat: note: the daemon at {} serves session {:?}, not {wanted:?}",
                        socket.display(),
                        h.session
                    );
                }
            }
        }
        // An older daemon without `hello`: messages go out as `person`.
        Err(ApiError::Rpc(e)) if e.code == protocol::code::METHOD_NOT_FOUND => {}
        Err(e) => return Err(e.into()),
    }
    let mut chat = Chat {
        client,
        me: name,
        last_agent: None,
        seen: Seen::default(),
    };
    let stdin_tty = std::io::stdin().is_terminal();
    let stdout_tty = std::io::stdout().is_terminal();
    if !stdin_tty {
        return chat.run_piped().await;
    }
    let fancy = stdout_tty && std::env::var("TERM").map_or(true, |t| t != "dumb");
    chat.run_interactive(fancy).await
}

/// The state dir the daemon would use: `--state-dir`, else the current directory, or what
/// `macs.yaml` there says.
fn state_dir(args: &ChatOptions) -> Result<PathBuf, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = crate::config::Overrides {
        state_dir: args.state_dir.clone(),
        ..Default::default()
    };
    let hint = args.state_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let cfg = crate::config::Config::load(&overrides, &env, &hint)?;
    Ok(cfg.state_dir)
}

// ---------------------------------------------------------------------------------------------
// Input lines.

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `content` goes as typed; the daemon reads a leading `@name`/`@all`.
    Send {
        content: String,
        urgent: bool,
    },
    /// `to: None`: the agent last addressed by name.
    Key {
        key: String,
        to: Option<String>,
    },
    Pause(Option<String>),
    Resume(Option<String>),
    List,
    History(u32),
    Help,
    Quit,
}

/// Reads one input line; `Ok(None)` for a blank one, `Err` says what is wrong with it.
/// `/commands` are read here; everything else by [`chatline::read_typed`].
pub fn parse_line(line: &str) -> Result<Option<Action>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if let Some(cmd) = line.strip_prefix('/') {
        return parse_command(cmd).map(Some);
    }
    Ok(Some(match chatline::read_typed(line)? {
        Typed::Text { content, urgent } => Action::Send { content, urgent },
        Typed::Key { key, to } => Action::Key { key, to },
    }))
}

fn parse_command(cmd: &str) -> Result<Action, String> {
    let mut words = cmd.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let one_name = |args: &[&str]| -> Result<Option<String>, String> {
        match args {
            [] => Ok(None),
            [n] => Ok(Some(n.trim_start_matches('@').to_string())),
            _ => Err(format!("/{name} takes one name at most")),
        }
    };
    match name {
        "quit" | "exit" | "q" => Ok(Action::Quit),
        "help" | "h" | "?" => Ok(Action::Help),
        "list" | "agents" | "ls" => Ok(Action::List),
        "pause" => Ok(Action::Pause(one_name(&args)?)),
        "resume" => Ok(Action::Resume(one_name(&args)?)),
        "history" => match args.as_slice() {
            [] => Ok(Action::History(HISTORY_DEFAULT)),
            [n] => match n.parse::<u32>() {
                Ok(n) if (1..=HISTORY_MAX).contains(&n) => Ok(Action::History(n)),
                _ => Err(format!("/history N: N is a number from 1 to {HISTORY_MAX}")),
            },
            _ => Err("/history takes one number".into()),
        },
        "key" => match args.as_slice() {
            [k, rest @ ..] if rest.len() <= 1 => {
                let Some(key) = chatline::key_word(k) else {
                    return Err(format!("{k:?} is not a key (try C-c, Escape, Enter, y)"));
                };
                Ok(Action::Key {
                    key,
                    to: one_name(rest)?,
                })
            }
            _ => Err("/key KEY [name]".into()),
        },
        _ => Err(format!(
            "unknown command /{name} (/help lists them); to send text that starts with /, address it: @all /{name}…"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Running actions.

/// Why a line failed.
enum Problem {
    /// The line could not be understood (exit 2).
    Input(String),
    /// The daemon refused it, or the connection failed (exit 1).
    Api(ApiError),
}

impl Problem {
    fn ending(&self) -> Ending {
        match self {
            Problem::Input(_) => Ending::NotUnderstood,
            Problem::Api(_) => Ending::Refused,
        }
    }

    fn lost_connection(&self) -> bool {
        matches!(self, Problem::Api(ApiError::Closed { .. }))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Input(m) => f.write_str(m),
            Problem::Api(e) => write!(f, "{e}"),
        }
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        Problem::Api(e)
    }
}

/// The chat messages already shown (so a message is not shown twice when history and
/// notifications overlap), and the last one, to catch up from.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    last: Option<String>,
}

impl Seen {
    /// Records `id`; false when it was seen already.
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        if self.order.len() > 4096 {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.last = Some(id.to_string());
        true
    }
}

struct Chat {
    client: ApiClient,
    me: String,
    /// The agent last addressed by name: where `!C-c` goes.
    last_agent: Option<String>,
    seen: Seen,
}

impl Chat {
    /// Runs one action; the text to show.
    async fn execute(&mut self, action: Action) -> Result<String, Problem> {
        match action {
            Action::Send { content, urgent } => {
                let params = ChatSendParams {
                    content,
                    urgent,
                    ..Default::default()
                };
                let r: ChatSendResult = self.client.call_as(method::CHAT_SEND, &params).await?;
                if r.to != "all" && r.recipients.len() == 1 {
                    self.last_agent = Some(r.recipients[0].clone());
                }
                Ok(describe_send(&r))
            }
            Action::Key { key, to } => {
                let Some(name) = to.or_else(|| self.last_agent.clone()) else {
                    return Err(Problem::Input(format!(
                        "whom? no agent was addressed yet: write `!{key} @name`"
                    )));
                };
                let params = AgentKeyParams {
                    name: name.clone(),
                    key: key.clone(),
                };
                let _: Empty = self.client.call_as(method::AGENT_KEY, &params).await?;
                self.last_agent = Some(name.clone());
                Ok(format!("sent {key} to {name}"))
            }
            Action::Pause(name) | Action::Resume(name) if name.as_deref() == Some("all") => {
                Err(Problem::Input("leave the name out for everyone".into()))
            }
            Action::Pause(name) => {
                let r: AgentNamesResult = self
                    .client
                    .call_as(method::AGENT_PAUSE, &AgentNameParams { name })
                    .await?;
                Ok(format!("paused: {}", names_or_nobody(&r.names)))
            }
            Action::Resume(name) => {
                let r: AgentNamesResult = self
                    .client
                    .call_as(method::AGENT_RESUME, &AgentNameParams { name })
                    .await?;
                Ok(format!("resumed: {}", names_or_nobody(&r.names)))
            }
            Action::List => {
                let r: AgentsListResult =
                    self.client.call_as(method::AGENTS_LIST, &Empty {}).await?;
                Ok(describe_agents(&r))
            }
            Action::History(n) => {
                let params = ChatHistoryParams {
                    limit: Some(n),
                    ..Default::default()
                };
                let r: ChatHistoryResult =
                    self.client.call_as(method::CHAT_HISTORY, &params).await?;
                for m in &r.messages {
                    self.seen.first_time(&m.id);
                }
                if r.messages.is_empty() {
                    return Ok("no messages yet".into());
                }
                Ok(r.messages
                    .iter()
                    .map(format_message)
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            Action::Help => Ok(HELP.to_string()),
            Action::Quit => Ok(String::new()),
        }
    }

    /// Standard input is not a terminal: run each line, print each result, exit at the end.
    async fn run_piped(&mut self) -> Result<Ending, ChatError> {
        let mut input = spawn_stdin(false);
        let mut code = Ending::Clean;
        let mut n = 0usize;
        while let Some(item) = input.recv().await {
            let line = match item {
                Input::Eof => break,
                Input::Bytes(_) => continue,
                Input::Line(l) => l,
            };
            n += 1;
            let outcome = match line
                .map_err(Problem::Input)
                .and_then(|l| parse_line(&l).map_err(Problem::Input))
            {
                Ok(None) => continue,
                Ok(Some(Action::Quit)) => break,
                Ok(Some(action)) => self.execute(action).await,
                Err(p) => Err(p),
            };
            match outcome {
                Ok(text) => println!("{text}"),
                Err(p) => {
                    eprintln!("macs-bridge chat: line {n}: {p}");
                    if code == Ending::Clean {
                        code = p.ending();
                    }
                    if p.lost_connection() {
                        return Err(ChatError::LostConnection);
                    }
                }
            }
        }
        Ok(code)
    }

    async fn run_interactive(&mut self, fancy: bool) -> Result<Ending, ChatError> {
        self.client.subscribe(&[]).await?;
        let mut ui = Ui::new(fancy);
        ui.print(&format!(
            "macs-bridge chat · you are {} · /help lists the commands",
            self.me
        ));
        for action in [Action::List, Action::History(HISTORY_ON_JOIN)] {
            match self.execute(action).await {
                Ok(text) if text != "no messages yet" => ui.print(&text),
                Ok(_) => {}
                Err(p) => ui.print(&format!("! {p}")),
            }
        }
        let mut input = spawn_stdin(ui.raw.is_some());
        let mut editor = LineEditor::default();
        let mut term = signal(tokio::signal::unix::SignalKind::terminate());
        let mut hup = signal(tokio::signal::unix::SignalKind::hangup());
        ui.redraw(&editor.buf);
        loop {
            let lines: Vec<Edit> = tokio::select! {
                item = input.recv() => match item {
                    None | Some(Input::Eof) => break,
                    Some(Input::Bytes(b)) => editor.feed(&b),
                    Some(Input::Line(Ok(l))) => vec![Edit::Submit(l)],
                    Some(Input::Line(Err(e))) => { ui.print(&format!("! {e}")); continue; }
                },
                n = self.client.next_notification() => match n {
                    Some(n) => {
                        self.show(n, &mut ui, &editor.buf).await;
                        continue;
                    }
                    None => {
                        ui.print("! the daemon closed the connection");
                        ui.finish();
                        return Ok(Ending::Disconnected);
                    }
                },
                _ = recv_signal(&mut term) => break,
                _ = recv_signal(&mut hup) => break,
            };
            for edit in lines {
                match edit {
                    Edit::Changed => ui.redraw(&editor.buf),
                    Edit::Quit => {
                        ui.finish();
                        return Ok(Ending::Clean);
                    }
                    Edit::Submit(line) => {
                        ui.commit(&line);
                        let action = match parse_line(&line) {
                            Ok(None) => {
                                ui.redraw(&editor.buf);
                                continue;
                            }
                            Ok(Some(Action::Quit)) => {
                                ui.finish();
                                return Ok(Ending::Clean);
                            }
                            Ok(Some(a)) => a,
                            Err(e) => {
                                ui.print(&format!("! {e}"));
                                ui.redraw(&editor.buf);
                                continue;
                            }
                        };
                        match self.execute(action).await {
                            Ok(text) => ui.print(&text),
                            Err(p) => {
                                ui.print(&format!("! {p}"));
                                if p.lost_connection() {
                                    ui.finish();
                                    return Ok(Ending::Disconnected);
                                }
                            }
                        }
                        ui.redraw(&editor.buf);
                    }
                }
            }
        }
        ui.finish();
        Ok(Ending::Clean)
    }

    /// Shows a notification above the input line.
    async fn show(&mut self, n: Notification, ui: &mut Ui, typed: &str) {
        if n.method == event::SUBSCRIPTION_DROPPED {
            let reason = n
                .parse::<SubscriptionDropped>()
                .map(|d| d.reason)
                .unwrap_or_default();
            ui.print(&format!("! updates stopped ({reason}); catching up"));
            if let Err(e) = self.catch_up(ui).await {
                ui.print(&format!("! cannot catch up: {e}"));
            }
        } else if n.method == event::CHAT_MESSAGE {
            if let Ok(m) = n.parse::<ChatMessage>() {
                if self.seen.first_time(&m.id) {
                    ui.print(&format_message(&m));
                }
            }
        } else if let Some(text) = render_event(&n) {
            ui.print(&text);
        }
        ui.redraw(typed);
    }

    /// After a dropped subscription: subscribe again, then show what was missed.
    async fn catch_up(&mut self, ui: &mut Ui) -> Result<(), ApiError> {
        self.client.subscribe(&[]).await?;
        let params = ChatHistoryParams {
            limit: Some(HISTORY_MAX),
            since: self.seen.last.clone(),
            involving: None,
        };
        let r: ChatHistoryResult = self.client.call_as(method::CHAT_HISTORY, &params).await?;
        for m in &r.messages {
            if self.seen.first_time(&m.id) {
                ui.print(&format_message(m));
            }
        }
        Ok(())
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// What is shown.

fn names_or_nobody(names: &[String]) -> String {
    if names.is_empty() {
        "nobody".into()
    } else {
        names.join(", ")
    }
}

fn describe_send(r: &ChatSendResult) -> String {
    let mut s = format!("sent #{} to {}", r.id, clean(&r.to));
    if r.to == "all" {
        s.push_str(&format!(" ({})", names_or_nobody(&r.recipients)));
    }
    if !r.queued.is_empty() {
        s.push_str(&format!("; queued for {}", r.queued.join(", ")));
    }
    s
}

fn describe_agents(r: &AgentsListResult) -> String {
    if r.agents.is_empty() {
        return "no agents".into();
    }
    let w = r
        .agents
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = vec![format!(
        "{:<w$}  {:<5}  {:<8}  {:<7}  QUEUED",
        "NAME", "PANE", "PROFILE", "STATE"
    )];
    for a in &r.agents {
        out.push(format!(
            "{:<w$}  {:<5}  {:<8}  {:<7}  {}{}",
            clean(&a.name),
            clean(&a.pane),
            clean(&a.profile),
            a.state,
            a.queued,
            if a.paused { "  paused" } else { "" }
        ));
    }
    out.join("\n")
}

/// Text from the daemon (and so from agents' screens) made safe to print: no escape sequences
/// or control characters but newline and tab.
fn clean(s: &str) -> String {
    crate::inject::sanitize(s)
}

/// `HH:MM:SS` in local time from an RFC 3339 time; the text itself when it is not one.
fn clock(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S")
            .to_string(),
        Err(_) => clean(ts).chars().take(19).collect(),
    }
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Continuation lines are indented under the text.
fn indent_rest(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

/// `12:00:01 codex → person: text`
pub fn format_message(m: &ChatMessage) -> String {
    format!(
        "{} {} → {}{}: {}",
        clock(&m.ts),
        clean(&m.from),
        clean(&m.to),
        if m.urgent { " (urgent)" } else { "" },
        indent_rest(&clean(&m.content))
    )
}

/// How a notification other than `chat.message` is shown; `None` for what is not shown.
pub fn render_event(n: &Notification) -> Option<String> {
    match n.method.as_str() {
        event::DELIVERY_UPDATE => {
            let d: DeliveryUpdateEvent = n.parse().ok()?;
            if d.status == DeliveryStatus::Delivering {
                return None;
            }
            let detail = d
                .detail
                .map(|s| format!(" ({})", clean(&s)))
                .unwrap_or_default();
            Some(format!(
                "         ↳ #{} {}: {}{detail}",
                clean(&d.message_id),
                clean(&d.recipient),
                d.status
            ))
        }
        event::AGENT_STATE => {
            let s: AgentStateEvent = n.parse().ok()?;
            Some(format!("{} · {} is {}", now(), clean(&s.name), s.state))
        }
        event::REQUEST_DETECTED => {
            let r: RequestDetectedEvent = n.parse().ok()?;
            let text = clean(&r.text);
            let lines: Vec<&str> = text.lines().collect();
            let mut shown = lines
                .iter()
                .take(REQUEST_LINES)
                .copied()
                .collect::<Vec<_>>()
                .join("\n    ");
            if lines.len() > REQUEST_LINES {
                shown.push_str(&format!(
                    "\n    … ({} more lines)",
                    lines.len() - REQUEST_LINES
                ));
            }
            Some(format!(
                "{} ? {} asks ({} #{}): {shown}",
                now(),
                clean(&r.agent),
                clean(&r.kind),
                clean(&r.id)
            ))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Standard input.

enum Input {
    /// A line (piped or canonical mode), or why it could not be read.
    Line(Result<String, String>),
    /// Raw bytes (non-canonical mode).
    Bytes(Vec<u8>),
    Eof,
}

/// Reads standard input on its own thread (a blocking read in the runtime's pool would hold
/// the runtime open at exit).
fn spawn_stdin(raw: bool) -> mpsc::UnboundedReceiver<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("chat-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut r = stdin.lock();
            if raw {
                let mut buf = [0u8; 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(Input::Bytes(buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                    }
                }
            } else {
                read_lines(&mut r, &tx);
            }
            let _ = tx.send(Input::Eof);
        });
    if spawned.is_err() {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Input::Line(Err("cannot read standard input".into())));
        let _ = tx.send(Input::Eof);
        return rx;
    }
    rx
}

/// Lines of at most [`protocol::MAX_LINE`] bytes; a longer one is skipped and reported.
fn read_lines(r: &mut impl BufRead, tx: &mpsc::UnboundedSender<Input>) {
    let limit = protocol::MAX_LINE;
    loop {
        let mut buf = Vec::new();
        let n = match r
            .by_ref()
            .take(limit as u64 + 2)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Input::Line(Err(format!("cannot read standard input: {e}"))));
                return;
            }
        };
        if n == 0 {
            return;
        }
        let ended = buf.last() == Some(&b'\n');
        if ended {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = if buf.len() > limit {
            if !ended {
                let _ = r.skip_until(b'\n');
            }
            Err(format!("the line is longer than {} KiB", limit / 1024))
        } else {
            String::from_utf8(buf).map_err(|_| "the line is not UTF-8".to_string())
        };
        if tx.send(Input::Line(line)).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The input line in non-canonical mode.

/// What a key press did.
#[derive(Debug, PartialEq, Eq)]
enum Edit {
    Changed,
    Submit(String),
    Quit,
}

/// The line being typed: bytes in, edits out. No I/O.
#[derive(Default)]
struct LineEditor {
    buf: String,
    /// The start of a UTF-8 character split across reads.
    partial: Vec<u8>,
    esc: Esc,
}

#[derive(Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ …` or `ESC O …`, until its final byte.
    Seq,
}

/// The longest line kept (more is ignored).
const MAX_INPUT: usize = protocol::MAX_LINE;

impl LineEditor {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Edit> {
        let mut edits = Vec::new();
        for &b in bytes {
            match self.esc {
                Esc::Start => {
                    self.esc = if b == b'[' || b == b'O' {
                        Esc::Seq
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Seq => {
                    if (0x40..=0x7e).contains(&b) {
                        self.esc = Esc::None;
                    }
                    continue;
                }
                Esc::None => {}
            }
            let edit = match b {
                0x1b => {
                    self.esc = Esc::Start;
                    None
                }
                b'\r' | b'\n' => Some(Edit::Submit(std::mem::take(&mut self.buf))),
                0x7f | 0x08 => self.buf.pop().map(|_| Edit::Changed),
                0x15 => {
                    self.buf.clear();
                    Some(Edit::Changed)
                }
                0x17 => {
                    let kept = self.buf.trim_end().len();
                    let start = self.buf[..kept]
                        .rfind(char::is_whitespace)
                        .map_or(0, |i| i + 1);
                    self.buf.truncate(start);
                    Some(Edit::Changed)
                }
                0x03 if !self.buf.is_empty() => {
                    self.buf.clear();
                    Some(Edit::Changed)
                }
                0x03 => Some(Edit::Quit),
                0x04 if self.buf.is_empty() => Some(Edit::Quit),
                0x0c => Some(Edit::Changed),
                b'\t' => self.push(' '),
                b if b < 0x20 => None,
                b => {
                    self.partial.push(b);
                    match std::str::from_utf8(&self.partial) {
                        Ok(s) => {
                            let s = s.to_string();
                            self.partial.clear();
                            s.chars().last().and_then(|c| self.push(c))
                        }
                        Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                            self.partial.clear();
                            None
                        }
                        Err(_) => None,
                    }
                }
            };
            if let Some(e) = edit {
                if e != Edit::Changed || edits.last() != Some(&Edit::Changed) {
                    edits.push(e);
                }
            }
        }
        edits
    }

    fn push(&mut self, c: char) -> Option<Edit> {
        (self.buf.len() + c.len_utf8() <= MAX_INPUT).then(|| {
            self.buf.push(c);
            Edit::Changed
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The terminal.

const PROMPT: &str = "> ";

/// Prints above the input line and draws it (raw), or just prints (canonical mode).
struct Ui {
    raw: Option<RawMode>,
}

impl Ui {
    fn new(fancy: bool) -> Ui {
        Ui {
            raw: if fancy { RawMode::enter() } else { None },
        }
    }

    /// Prints `text` on lines of its own, above the input line.
    fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.raw.is_some() {
            let _ = out.write_all(b"\r\x1b[K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Draws the input line: the prompt and as much of the end of `typed` as fits.
    fn redraw(&mut self, typed: &str) {
        if self.raw.is_none() {
            return;
        }
        let width = terminal_width().saturating_sub(PROMPT.len() + 1).max(8);
        let count = typed.chars().count();
        let shown: String = if count > width {
            let tail: String = typed.chars().skip(count - (width - 1)).collect();
            format!("…{tail}")
        } else {
            typed.to_string()
        };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K{PROMPT}{shown}");
        let _ = out.flush();
    }

    /// The line just submitted stays on screen, as a terminal would leave it.
    fn commit(&mut self, line: &str) {
        if self.raw.is_some() {
            self.print(&format!("{PROMPT}{line}"));
        }
    }

    /// Leaves the input line empty and the terminal as it was.
    fn finish(&mut self) {
        if self.raw.is_some() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\r\x1b[K");
            let _ = out.flush();
        }
        self.raw = None;
    }
}

fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own, or fails.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col >= 20 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// Non-canonical input without echo or signals while it lives; the saved settings come back
/// when it is dropped.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own, fully written by tcgetattr
        // before it is read.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return None;
            }
            let saved = t;
            // Output processing stays on (`\n` still starts a new line); only input changes.
            t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the settings tcgetattr gave for fd 0.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(content: &str, urgent: bool) -> Option<Action> {
        Some(Action::Send {
            content: content.into(),
            urgent,
        })
    }

    fn key(key: &str, to: Option<&str>) -> Option<Action> {
        Some(Action::Key {
            key: key.into(),
            to: to.map(String::from),
        })
    }

    #[test]
    fn lines_become_actions() {
        assert_eq!(parse_line("  ").unwrap(), None);
        assert_eq!(parse_line("@codex hi\r").unwrap(), send("@codex hi", false));
        assert_eq!(parse_line("hello all").unwrap(), send("hello all", false));
        assert_eq!(parse_line("!stop that").unwrap(), send("stop that", true));
        assert_eq!(
            parse_line("!@codex stop").unwrap(),
            send("@codex stop", true)
        );
        assert_eq!(parse_line("!C-c").unwrap(), key("C-c", None));
        assert_eq!(parse_line("!^C @codex").unwrap(), key("C-c", Some("codex")));
        assert_eq!(
            parse_line("!Escape @claude").unwrap(),
            key("Escape", Some("claude"))
        );
        assert_eq!(parse_line("!^[").unwrap(), key("Escape", None));
        // A key word followed by more text, or a single character, is urgent text.
        assert_eq!(
            parse_line("!End the task").unwrap(),
            send("End the task", true)
        );
        assert_eq!(parse_line("!y").unwrap(), send("y", true));
        assert_eq!(parse_line("!C-c @all").unwrap(), send("C-c @all", true));
        assert!(parse_line("!").is_err());
        assert_eq!(parse_line("/key y codex").unwrap(), key("y", Some("codex")));
        assert_eq!(parse_line("/key ^C @a").unwrap(), key("C-c", Some("a")));
        assert!(parse_line("/key nonsense-key").is_err());
        assert_eq!(parse_line("/pause").unwrap(), Some(Action::Pause(None)));
        assert_eq!(
            parse_line("/resume @codex").unwrap(),
            Some(Action::Resume(Some("codex".into())))
        );
        assert!(parse_line("/pause a b").is_err());
        assert_eq!(parse_line("/history").unwrap(), Some(Action::History(20)));
        assert_eq!(parse_line("/history 5").unwrap(), Some(Action::History(5)));
        assert!(parse_line("/history 0").is_err());
        assert!(parse_line("/history x").is_err());
        assert_eq!(parse_line("/list").unwrap(), Some(Action::List));
        assert_eq!(parse_line("/quit").unwrap(), Some(Action::Quit));
        let e = parse_line("/tmp/x is full").unwrap_err();
        assert!(e.contains("@all /tmp/x"), "{e}");
    }

    #[test]
    fn the_editor_keeps_a_line_across_reads_and_handles_editing_keys() {
        let mut ed = LineEditor::default();
        assert_eq!(ed.feed(b"he"), vec![Edit::Changed]);
        // A UTF-8 character split across two reads, and an arrow key, which is ignored.
        assert_eq!(ed.feed(&[b'l', 0xc3]), vec![Edit::Changed]);
        assert_eq!(ed.feed(&[0xa9, 0x1b, b'[', b'A']), vec![Edit::Changed]);
        assert_eq!(ed.buf, "helé");
        ed.feed(&[0x7f]);
        assert_eq!(ed.buf, "hel");
        ed.feed(b" world  ");
        ed.feed(&[0x17]);
        assert_eq!(ed.buf, "hel ");
        assert_eq!(
            ed.feed(b"x\r"),
            vec![Edit::Changed, Edit::Submit("hel x".into())]
        );
        assert_eq!(ed.buf, "");
        ed.feed(b"abc");
        assert_eq!(ed.feed(&[0x03]), vec![Edit::Changed]);
        assert_eq!(ed.buf, "");
        assert_eq!(ed.feed(&[0x03]), vec![Edit::Quit]);
        assert_eq!(ed.feed(&[0x04]), vec![Edit::Quit]);
        ed.feed(b"a");
        ed.feed(&[0x15]);
        assert_eq!(ed.buf, "");
    }

    #[test]
    fn incoming_text_cannot_move_the_cursor() {
        let m = ChatMessage {
            id: "7".into(),
            ts: "2026-01-02T03:04:05Z".into(),
            from: "codex".into(),
            to: "person".into(),
            content: "line one\x1b[2J\nline two\x07".into(),
            urgent: true,
            meta: None,
            deliveries: vec![],
        };
        let s = format_message(&m);
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s:?}");
        assert!(
            s.ends_with("codex → person (urgent): line one\n    line two"),
            "{s:?}"
        );
        let d = Notification::new(
            event::DELIVERY_UPDATE,
            serde_json::json!({"message_id":"7","recipient":"codex","status":"queued","detail":"busy"}),
        );
        assert_eq!(
            render_event(&d).unwrap(),
            "         ↳ #7 codex: queued (busy)"
        );
    }

    #[test]
    fn piped_lines_are_bounded() {
        let long = "x".repeat(protocol::MAX_LINE + 10);
        let input = format!("one\r\n{long}\ntwo");
        let (tx, mut rx) = mpsc::unbounded_channel();
        read_lines(&mut std::io::Cursor::new(input.into_bytes()), &tx);
        let mut got = Vec::new();
        while let Ok(Input::Line(l)) = rx.try_recv() {
            got.push(l.map_err(|e| e.contains("longer")));
        }
        assert_eq!(got, vec![Ok("one".into()), Err(true), Ok("two".into())]);
    }
}
