//! `macs-bridge chat`: the person's seat in the group chat, a client of the daemon's API
//! (`<state dir>/macs.sock`).
//!
//! It owns the person's terminal while it runs and nothing else: every message, key and pause
//! goes to the daemon as a call, and what it shows comes from the daemon's notifications. It
//! never talks to tmux.
//!
//! - this module: joining the daemon, running each line's action, showing notifications;
//! - [`commands`]: what a typed line asks for (`/commands` here, the rest by
//!   [`crate::chatline`]);
//! - [`render`]: how messages, events and answers are shown (made safe to print);
//! - `stdin`: reading standard input on its own thread, lines bounded;
//! - `seat`: the line editor at a terminal (reedline), its prompt and completion.
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
//! When both standard input and output are terminals (and `TERM` is not `dumb`), the line is
//! edited with reedline: arrow keys, Emacs keys, history (Up/Down, Ctrl-R; kept in
//! `<state dir>/chat-history`), Tab completes `@names`, `/commands` and the name after
//! `/pause`, `/resume` and `/key KEY`. A message arriving while the person types is printed
//! above the input line, which is then drawn again as it was: nothing typed is lost or garbled.
//! The prompt shows each agent's state, queue and held messages (`a1 busy 2q · a3 paused 2h`),
//! brought up to date with every event. Names have a colour each (not with `NO_COLOR`). Ctrl-C
//! clears the line or, on an empty line, quits, as Ctrl-D does. The terminal's settings are put
//! back on every way out (also SIGTERM and SIGHUP). Otherwise lines are read as the terminal
//! gives them, and arriving messages are printed as they come.

pub mod commands;
pub mod render;
mod seat;
mod stdin;

use std::collections::{HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api::protocol::{
    self, event, method, AgentKeyParams, AgentNameParams, AgentNamesResult, AgentsListResult,
    ChatHistoryParams, ChatHistoryResult, ChatMessage, ChatSendParams, ChatSendResult, Empty,
    HelloParams, HelloResult, Notification, SubscriptionDropped,
};
use crate::api::{ApiClient, ApiError};
use crate::config::ConfigError;

pub use commands::{parse_line, Action};
use commands::{HELP, HISTORY_MAX, HISTORY_ON_JOIN};
pub use render::{
    describe_agents, format_message, format_message_in, render_event, render_event_in,
};
use render::{describe_send, names_or_nobody};
use seat::{Seat, SharedBoard, Typed};
use stdin::{spawn_stdin, Input};

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
    #[error("{0}")]
    Terminal(String),
}

impl ChatError {
    /// Whether the request itself was wrong.
    pub fn is_usage(&self) -> bool {
        matches!(self, ChatError::Usage(_))
    }
}

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
    let dir = state_dir(&args)?;
    let socket = crate::api::socket_path(&dir);
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
        colour: false,
    };
    let stdin_tty = std::io::stdin().is_terminal();
    let stdout_tty = std::io::stdout().is_terminal();
    if !stdin_tty {
        return chat.run_piped().await;
    }
    let fancy = stdout_tty && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let screen = if fancy {
        let colour = std::env::var_os("NO_COLOR").is_none();
        let board = SharedBoard::default();
        let seat = Seat::start(&chat.me, history_file(&dir), Arc::clone(&board), colour)
            .map_err(ChatError::Terminal)?;
        chat.colour = colour;
        Screen::Seat { seat, board }
    } else {
        Screen::Plain(spawn_stdin())
    };
    chat.run_interactive(screen).await
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

/// The file that keeps the lines typed, in the state dir: created private (0600), never
/// through a symbolic link; `None` (history in memory only) when that cannot be.
fn history_file(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("chat-history");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    Some(path)
}

/// Where the chat shows things and reads lines: the line editor at a terminal, or plain
/// lines.
enum Screen {
    Seat { seat: Seat, board: SharedBoard },
    Plain(tokio::sync::mpsc::UnboundedReceiver<Input>),
}

impl Screen {
    fn print(&self, text: &str) {
        match self {
            Screen::Seat { seat, .. } => seat.print(text),
            Screen::Plain(_) => println!("{text}"),
        }
    }

    /// The next line (or the end); errors reading a plain line are shown and skipped.
    async fn next(&mut self) -> Option<Typed> {
        match self {
            Screen::Seat { seat, .. } => seat.next().await,
            Screen::Plain(input) => loop {
                match input.recv().await {
                    None | Some(Input::Eof) => return Some(Typed::Quit),
                    Some(Input::Line(Ok(l))) => return Some(Typed::Line(l)),
                    Some(Input::Line(Err(e))) => println!("! {e}"),
                }
            },
        }
    }

    fn finish(&mut self) {
        if let Screen::Seat { seat, .. } = self {
            seat.finish();
        }
    }
}

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
    /// Names in colour.
    colour: bool,
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
                Ok(describe_agents(&r.agents))
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
                    .map(|m| format_message_in(m, self.colour))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            Action::Discuss { rounds, content } => {
                let params = crate::api::protocol::DiscussParams {
                    content,
                    rounds,
                    to: None,
                    round_seconds: None,
                };
                let r: crate::api::protocol::DiscussResult =
                    self.client.call_as(method::CHAT_DISCUSS, &params).await?;
                Ok(format!(
                    "discussion {}: {} rounds among {}",
                    r.id,
                    r.rounds,
                    r.agents.join(", ")
                ))
            }
            Action::Stop => {
                let r: crate::api::protocol::StopResult =
                    self.client.call_as(method::CHAT_STOP, &Empty {}).await?;
                Ok(match r.stopped {
                    Some(id) => {
                        format!("discussion {id} stopped ({} relays withdrawn)", r.withdrawn)
                    }
                    None => "no discussion is under way".to_string(),
                })
            }
            Action::Help => Ok(HELP.to_string()),
            Action::Quit => Ok(String::new()),
        }
    }

    /// Standard input is not a terminal: run each line, print each result, exit at the end.
    async fn run_piped(&mut self) -> Result<Ending, ChatError> {
        let mut input = spawn_stdin();
        let mut code = Ending::Clean;
        let mut n = 0usize;
        while let Some(item) = input.recv().await {
            let line = match item {
                Input::Eof => break,
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

    async fn run_interactive(&mut self, mut screen: Screen) -> Result<Ending, ChatError> {
        self.client.subscribe(&[]).await?;
        screen.print(&format!(
            "macs-bridge chat · you are {} · /help lists the commands, Tab completes",
            self.me
        ));
        self.refresh(&screen).await;
        for action in [Action::List, Action::History(HISTORY_ON_JOIN)] {
            match self.execute(action).await {
                Ok(text) if text != "no messages yet" => screen.print(&text),
                Ok(_) => {}
                Err(p) => screen.print(&format!("! {p}")),
            }
        }
        let mut term = signal(tokio::signal::unix::SignalKind::terminate());
        let mut hup = signal(tokio::signal::unix::SignalKind::hangup());
        let ending = loop {
            let typed = tokio::select! {
                t = screen.next() => t,
                n = self.client.next_notification() => match n {
                    Some(n) => {
                        self.show(n, &screen).await;
                        continue;
                    }
                    None => {
                        screen.print("! the daemon closed the connection");
                        break Ending::Disconnected;
                    }
                },
                _ = recv_signal(&mut term) => break Ending::Clean,
                _ = recv_signal(&mut hup) => break Ending::Clean,
            };
            let line = match typed {
                None | Some(Typed::Quit) => break Ending::Clean,
                Some(Typed::Failed(e)) => {
                    screen.finish();
                    return Err(ChatError::Terminal(format!("the terminal failed: {e}")));
                }
                Some(Typed::Line(line)) => line,
            };
            let action = match parse_line(&line) {
                Ok(None) => continue,
                Ok(Some(Action::Quit)) => break Ending::Clean,
                Ok(Some(a)) => a,
                Err(e) => {
                    screen.print(&format!("! {e}"));
                    continue;
                }
            };
            match self.execute(action).await {
                Ok(text) => {
                    self.refresh(&screen).await;
                    screen.print(&text);
                }
                Err(p) => {
                    screen.print(&format!("! {p}"));
                    if p.lost_connection() {
                        break Ending::Disconnected;
                    }
                }
            }
        };
        screen.finish();
        Ok(ending)
    }

    /// Brings the prompt's view of the agents up to date (at a terminal).
    async fn refresh(&self, screen: &Screen) {
        let Screen::Seat { board, .. } = screen else {
            return;
        };
        if let Ok(r) = self
            .client
            .call_as::<_, AgentsListResult>(method::AGENTS_LIST, &Empty {})
            .await
        {
            board.lock().unwrap_or_else(|e| e.into_inner()).agents = r.agents;
        }
    }

    /// Shows a notification above the input line.
    async fn show(&mut self, n: Notification, screen: &Screen) {
        if n.method == event::SUBSCRIPTION_DROPPED {
            let reason = n
                .parse::<SubscriptionDropped>()
                .map(|d| d.reason)
                .unwrap_or_default();
            screen.print(&format!("! updates stopped ({reason}); catching up"));
            if let Err(e) = self.catch_up(screen).await {
                screen.print(&format!("! cannot catch up: {e}"));
            }
            return;
        }
        // States and queues first, so that the prompt drawn after the line is current.
        self.refresh(screen).await;
        if n.method == event::CHAT_MESSAGE {
            if let Ok(m) = n.parse::<ChatMessage>() {
                if self.seen.first_time(&m.id) {
                    screen.print(&format_message_in(&m, self.colour));
                }
            }
        } else if let Some(text) = render_event_in(&n, self.colour) {
            screen.print(&text);
        }
    }

    /// After a dropped subscription: subscribe again, then show what was missed.
    async fn catch_up(&mut self, screen: &Screen) -> Result<(), ApiError> {
        self.client.subscribe(&[]).await?;
        let params = ChatHistoryParams {
            limit: Some(HISTORY_MAX),
            since: self.seen.last.clone(),
            involving: None,
        };
        let r: ChatHistoryResult = self.client.call_as(method::CHAT_HISTORY, &params).await?;
        for m in &r.messages {
            if self.seen.first_time(&m.id) {
                screen.print(&format_message_in(m, self.colour));
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
