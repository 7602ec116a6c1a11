//! The params and results of every method, as serde structs (unknown fields in params are
//! refused). Shared by the daemon's core and every client. No I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::events::ChatMessage;

/// `hello`: a client says who it is. Optional; without it the client is `person`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloParams {
    /// The name this client sends under ([`super::is_valid_name`]). An agent's MCP server uses the
    /// agent's name; the person's `chat` uses `person` (or `--as`). Several connections may
    /// share a name (the person in two terminals); the core keeps it per connection and
    /// forgets it on `ApiMsg::Gone`.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloResult {
    pub name: String,
    /// The tmux session the daemon serves.
    pub session: String,
}

/// `subscribe`: which notifications to push to this connection. Subscribing again replaces
/// the set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Event names from [`super::EVENTS`]; absent or empty: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeResult {
    /// The events now pushed (all of them spelled out when the request said "all").
    pub subscribed: Vec<String>,
}

/// `chat.send`: a message to one agent or everyone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSendParams {
    /// The sender. Default: the name this client gave at `hello`, else `person`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A name or `all`. When absent, the core reads `@name …` or `@all …` at the start of
    /// `content` (and takes it off); plain text goes to all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub content: String,
    /// Skip the queue: typed as soon as the agent's prompt can take it, also when it is busy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
    /// Free-form data kept with the message and passed on in `chat.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSendResult {
    /// The message id (for `chat.history` `since` and `delivery.update`).
    pub id: String,
    /// The name or `all`, as resolved.
    pub to: String,
    /// Who gets it (the sender never gets its own message).
    pub recipients: Vec<String>,
    /// The recipients it waits for (busy, paused or asking); the others are being typed now.
    pub queued: Vec<String>,
}

/// `chat.history`: messages, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatHistoryParams {
    /// At most this many, the latest ones (default 50; the core may cap it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A message id: only messages after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only messages from or to this name (messages to `all` included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involving: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatHistoryResult {
    pub messages: Vec<ChatMessage>,
}

/// `chat.read` (for an agent's MCP server): the messages for `name` (to it or to all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatReadParams {
    pub name: String,
    /// A message id: only messages after it. Absent: the ones `name` has not read yet (the
    /// core keeps a read mark per name and moves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReadResult {
    pub messages: Vec<ChatMessage>,
}

/// `agents.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentsListResult {
    pub agents: Vec<AgentInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    /// The pane id, `%3`.
    pub pane: String,
    pub profile: String,
    pub state: AgentState,
    /// Messages waiting for this agent: in its queue, and held for the person (while it is
    /// paused, or past the agents' hop or rate limit).
    pub queued: u32,
    /// How many of `queued` are held: they go only when the agent is resumed.
    #[serde(default)]
    pub held: u32,
    pub paused: bool,
    /// Its prompt holds text the bridge did not type (someone is writing there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typing: bool,
    /// A turn this message started is under way: the agent's reply to it is still to come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replying_to: Option<String>,
}

/// `daemon.info` result: how the daemon is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfoResult {
    /// The daemon's version (`macs-bridge --version`).
    pub version: String,
    pub session: String,
    pub pid: u32,
    pub state_dir: String,
    /// `auto`, `manual` or `dry run`.
    pub mode: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    pub uptime_secs: u64,
    /// Whether its control connection to tmux is up now.
    pub attached: bool,
    pub agents: Vec<AgentInfo>,
    /// The last thing that went wrong (a delivery not confirmed, a backend that did not
    /// answer, an unreadable answer file, tmux lost …), if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
}

/// One error, as `daemon.info` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    /// When (RFC 3339).
    pub at: String,
    /// The event line's kind: `error`, `unconfirmed`, `no-answer`, `capped`, `detached` …
    pub event: String,
    pub text: String,
}

/// An agent's state on the wire (the core's `PaneState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Idle,
    Busy,
    Asking,
    /// Also what a client reads for a state it does not know (a newer daemon's).
    #[serde(other)]
    Unknown,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Idle => "idle",
            AgentState::Busy => "busy",
            AgentState::Asking => "asking",
            AgentState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl From<crate::detect::PaneState> for AgentState {
    fn from(s: crate::detect::PaneState) -> Self {
        use crate::detect::PaneState;
        match s {
            PaneState::Idle => AgentState::Idle,
            PaneState::Busy => AgentState::Busy,
            PaneState::Asking => AgentState::Asking,
            PaneState::Unknown => AgentState::Unknown,
        }
    }
}

/// `agent.pause` / `agent.resume`: one agent, or everyone when `name` is absent. A paused
/// agent's messages are queued, not typed, until it is resumed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentNameParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentNamesResult {
    /// The agents paused (or resumed).
    pub names: Vec<String>,
}

/// `agent.key`: a tmux key (`C-c`, `Escape`, `Enter`, `y` …: the syntax of
/// `tmux::command::KeyName::parse`) sent to an agent's pane at once, whatever its state. Only
/// the person may (a client that said `hello` with an agent's name gets -32002).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentKeyParams {
    pub name: String,
    pub key: String,
}

/// The empty result (`{}`) of `agent.key`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

/// `pane.status`: a pane id, tmux target or label, as for the pane tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaneTargetParams {
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaneStatusResult {
    pub pane: String,
    pub state: AgentState,
    pub profile: String,
    /// The tmux target, `macs:0.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The `@macs-agent` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_command: Option<String>,
    /// Which rule decided the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `pane.snapshot`: the last `lines` lines of a pane's screen and scrollback (default 200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaneSnapshotParams {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaneSnapshotResult {
    pub pane: String,
    pub lines: Vec<String>,
}

/// `request.ask` (for an agent's MCP server): a question for the person (or the controller
/// chain), like a request block. Waits up to `wait_seconds` (default 0, the core may cap it) for
/// the answer; [`RequestInfo::status`] says whether it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestAskParams {
    pub from: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
}

/// `request.get`: a request by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestGetParams {
    pub id: String,
}

/// A request and, once there is one, its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub id: String,
    pub from: String,
    pub question: String,
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Which backend or person answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Answered,
    #[serde(other)]
    Other,
}
