//! The daemon API's wire protocol: JSON-RPC 2.0 envelopes, error codes, method and event names,
//! and the params and results of every method as serde structs, shared by the daemon's core
//! (which runs the methods) and every client (`chat`, the MCP server, custom tools).
//!
//! This module does no I/O: it turns lines into values and values into lines. It never decides
//! what a method does; the core does.
//!
//! # Framing
//!
//! One JSON object per line, UTF-8, ended by `\n` (a final `\r` is ignored, blank lines are
//! skipped). A request line may hold at most [`MAX_LINE`] bytes. Batches (arrays) are not
//! supported: a client that wants several calls in flight sends several lines.
//!
//! # Params
//!
//! Every method takes named params (an object; absent or `null` means `{}`). Unknown fields in
//! params are refused with -32602 naming the field, so a typo never silently does something
//! else. Results and notifications may gain fields: clients ignore fields they do not know.
//!
//! # Methods
//!
//! | method | params | result | errors (besides -32602 for bad params) |
//! |---|---|---|---|
//! | `hello` | [`HelloParams`] `{name}` | [`HelloResult`] `{name, session}` | -32602 not a valid name ([`is_valid_name`]) |
//! | `subscribe` (answered by the server) | [`SubscribeParams`] `{events?}` (absent or `[]`: all) | [`SubscribeResult`] `{subscribed}` | -32602 unknown event |
//! | `chat.send` | [`ChatSendParams`] `{from?, to?, content, urgent?, meta?}` | [`ChatSendResult`] `{id, to, recipients, queued}` | -32001 unknown recipient; -32003 nobody to send to, dry run |
//! | `chat.history` | [`ChatHistoryParams`] `{limit?, since?, involving?}` | [`ChatHistoryResult`] `{messages}` | -32001 unknown `since` id |
//! | `chat.read` | [`ChatReadParams`] `{name, since?}` | [`ChatReadResult`] `{messages}` | -32001 unknown name |
//! | `agents.list` | `{}` | [`AgentsListResult`] `{agents}` | |
//! | `agent.pause` | [`AgentNameParams`] `{name?}` (absent: everyone) | [`AgentNamesResult`] `{names}` | -32001 unknown name |
//! | `agent.resume` | [`AgentNameParams`] `{name?}` (absent: everyone) | [`AgentNamesResult`] `{names}` | -32001 unknown name |
//! | `agent.key` | [`AgentKeyParams`] `{name, key}` | `{}` | -32001 unknown name; -32002 the caller said `hello` as an agent (only the person sends keys); -32602 not a key |
//! | `pane.status` | [`PaneTargetParams`] `{target}` | [`PaneStatusResult`] | -32001 no such pane |
//! | `pane.snapshot` | [`PaneSnapshotParams`] `{target, lines?}` | [`PaneSnapshotResult`] `{pane, lines}` | -32001 no such pane |
//! | `request.ask` | [`RequestAskParams`] `{from, question, wait_seconds?}` | [`RequestInfo`] | -32003 dry run |
//! | `request.get` | [`RequestGetParams`] `{id}` | [`RequestInfo`] | -32001 no such request |
//!
//! Every call may also get -32603 (internal error: the core dropped the call) or -32003 (the
//! daemon is shutting down).
//!
//! # Notifications (server → client, after `subscribe`)
//!
//! | method | params |
//! |---|---|
//! | `chat.message` | [`ChatMessage`] `{id, ts, from, to, content, urgent, meta?}` |
//! | `agent.state` | [`AgentStateEvent`] `{name, pane, state}` |
//! | `request.detected` | [`RequestDetectedEvent`] `{id, pane, agent, kind, text}` |
//! | `delivery.update` | [`DeliveryUpdateEvent`] `{message_id, recipient, status, detail?}` |
//! | `subscription.dropped` | [`SubscriptionDropped`] `{reason}`: always sent, never subscribed to |
//!
//! # Errors
//!
//! | code | meaning |
//! |---|---|
//! | -32700 | parse error: the line is not JSON (id `null`) |
//! | -32600 | invalid request: not an object, `jsonrpc` is not `"2.0"`, no method, a batch, a line over 64 KiB |
//! | -32601 | method not found |
//! | -32602 | invalid params (the message names the field) |
//! | -32603 | internal error |
//! | -32001 | not found: an agent, pane, message or request with that name or id does not exist |
//! | -32002 | forbidden: this client may not do that |
//! | -32003 | unavailable: not now (shutting down, dry run, the pane went away) |

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `jsonrpc` member of every envelope.
pub const JSONRPC: &str = "2.0";
/// The socket's file name in the state dir.
pub const SOCKET_NAME: &str = "macs.sock";
/// The longest request line the server reads, without its newline.
pub const MAX_LINE: usize = 64 * 1024;

/// Method names.
pub mod method {
    pub const HELLO: &str = "hello";
    pub const SUBSCRIBE: &str = "subscribe";
    pub const CHAT_SEND: &str = "chat.send";
    pub const CHAT_HISTORY: &str = "chat.history";
    pub const CHAT_READ: &str = "chat.read";
    pub const AGENTS_LIST: &str = "agents.list";
    pub const AGENT_PAUSE: &str = "agent.pause";
    pub const AGENT_RESUME: &str = "agent.resume";
    pub const AGENT_KEY: &str = "agent.key";
    pub const PANE_STATUS: &str = "pane.status";
    pub const PANE_SNAPSHOT: &str = "pane.snapshot";
    pub const REQUEST_ASK: &str = "request.ask";
    pub const REQUEST_GET: &str = "request.get";
}

/// Every method the daemon answers. The server refuses others with -32601 before the core sees
/// them (`subscribe` is answered by the server itself).
pub const METHODS: &[&str] = &[
    method::HELLO,
    method::SUBSCRIBE,
    method::CHAT_SEND,
    method::CHAT_HISTORY,
    method::CHAT_READ,
    method::AGENTS_LIST,
    method::AGENT_PAUSE,
    method::AGENT_RESUME,
    method::AGENT_KEY,
    method::PANE_STATUS,
    method::PANE_SNAPSHOT,
    method::REQUEST_ASK,
    method::REQUEST_GET,
];

/// Notification names.
pub mod event {
    pub const CHAT_MESSAGE: &str = "chat.message";
    pub const AGENT_STATE: &str = "agent.state";
    pub const REQUEST_DETECTED: &str = "request.detected";
    pub const DELIVERY_UPDATE: &str = "delivery.update";
    /// Sent by the server when the core dropped this connection's subscription (it fell
    /// behind). Not subscribable: every subscriber gets it.
    pub const SUBSCRIPTION_DROPPED: &str = "subscription.dropped";
}

/// The events a client can subscribe to.
pub const EVENTS: &[&str] = &[
    event::CHAT_MESSAGE,
    event::AGENT_STATE,
    event::REQUEST_DETECTED,
    event::DELIVERY_UPDATE,
];

/// Error codes: JSON-RPC's own, then the application's (-32000 to -32099).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// An agent, pane, message or request with that name or id does not exist.
    pub const NOT_FOUND: i64 = -32001;
    /// This client may not do that (only the person sends keys).
    pub const FORBIDDEN: i64 = -32002;
    /// Not now: the daemon is shutting down, runs a dry run, or the pane went away.
    pub const UNAVAILABLE: i64 = -32003;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700: the line is not JSON.
    pub fn parse_error(msg: impl Into<String>) -> Self {
        Self::new(code::PARSE_ERROR, msg)
    }

    /// -32600: not a valid request object.
    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, msg)
    }

    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        let shown: String = method.chars().take(80).collect();
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {shown:?}"),
        )
    }

    /// -32602: the params are wrong; say which and why.
    pub fn invalid_params(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, msg)
    }

    /// -32603.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, msg)
    }

    /// -32001: no agent, pane, message or request by that name or id.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, msg)
    }

    /// -32002: this client may not do that.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(code::FORBIDDEN, msg)
    }

    /// -32003: not now.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::new(code::UNAVAILABLE, msg)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RpcError {}

/// A notification: a method and its params, no id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

impl Notification {
    /// A notification with typed params (which always serialize: they are plain structs).
    pub fn new(method: &str, params: impl Serialize) -> Notification {
        Notification {
            method: method.to_string(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        }
    }

    /// The params as `T`, or why not.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.params)
    }
}

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no `id` member): run, never answered.
    pub id: Option<Value>,
    pub method: String,
    /// Always an object (absent or `null` params become `{}`).
    pub params: Value,
}

/// A line that is not a valid request, with the error to answer and the id to answer it with
/// (`null` when the id could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Value,
    pub error: RpcError,
    /// The line was a notification (it had no id) that is well formed enough to know that: it
    /// gets no answer (JSON-RPC 2.0 §4.1). Parse errors and invalid requests are always answered.
    pub silent: bool,
}

/// Reads one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, Rejection> {
    let reject = |id: Value, error: RpcError| Rejection {
        id,
        error,
        silent: false,
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        reject(
            Value::Null,
            RpcError::parse_error(format!("parse error: {e}")),
        )
    })?;
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request(
                    "batch requests are not supported: send one request object per line",
                ),
            ))
        }
        _ => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("invalid request: expected a JSON object"),
            ))
        }
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("invalid request: id must be a string, a number or null"),
            ))
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC) {
        return Err(reject(
            answer_id,
            RpcError::invalid_request("invalid request: \"jsonrpc\" must be \"2.0\""),
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("invalid request: \"method\" must be a string"),
            ))
        }
        None => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("invalid request: no \"method\""),
            ))
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err(Rejection {
                silent: id.is_none(),
                id: answer_id,
                error: RpcError::invalid_params(
                    "params must be an object: every method takes named params",
                ),
            })
        }
    };
    Ok(Request { id, method, params })
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

#[derive(Serialize)]
struct NotificationOut<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a Value,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    params: &'a Value,
}

/// A response line (without the newline).
pub fn response_line(id: &Value, outcome: Result<&Value, &RpcError>) -> String {
    let (result, error) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    serde_json::to_string(&ResponseOut {
        jsonrpc: JSONRPC,
        id,
        result,
        error,
    })
    // Serializing a `Value` cannot fail (its keys are strings).
    .unwrap_or_default()
}

/// A notification line (without the newline).
pub fn notification_line(method: &str, params: &Value) -> String {
    serde_json::to_string(&NotificationOut {
        jsonrpc: JSONRPC,
        method,
        params,
    })
    .unwrap_or_default()
}

/// A request line (without the newline); `id: None` makes a notification.
pub fn request_line(id: Option<u64>, method: &str, params: &Value) -> String {
    serde_json::to_string(&RequestOut {
        jsonrpc: JSONRPC,
        id,
        method,
        params,
    })
    .unwrap_or_default()
}

/// What a client reads from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to a call. `id` is `null` when the server could not read the request's id.
    Response {
        id: Value,
        result: Result<Value, RpcError>,
    },
    Notification(Notification),
}

/// Reads one line from the server, or says why it is not a response or a notification.
pub fn parse_incoming(line: &[u8]) -> Result<Incoming, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC) {
        return Err("\"jsonrpc\" is not \"2.0\"".into());
    }
    if let Some(id) = obj.remove("id") {
        if let Some(err) = obj.remove("error") {
            let error: RpcError =
                serde_json::from_value(err).map_err(|e| format!("bad error object: {e}"))?;
            return Ok(Incoming::Response {
                id,
                result: Err(error),
            });
        }
        if let Some(result) = obj.remove("result") {
            return Ok(Incoming::Response {
                id,
                result: Ok(result),
            });
        }
        return Err("a message with an id but neither result nor error".into());
    }
    match obj.remove("method") {
        Some(Value::String(method)) => Ok(Incoming::Notification(Notification {
            method,
            params: obj.remove("params").unwrap_or(Value::Null),
        })),
        _ => Err("neither a response nor a notification".into()),
    }
}

/// The params of a call as `T`; a mismatch is -32602 naming the field.
pub fn params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(format!("params: {e}")))
}

/// A result value; a struct that cannot be serialized is -32603.
pub fn result<T: Serialize>(result: &T) -> Result<Value, RpcError> {
    serde_json::to_value(result)
        .map_err(|e| RpcError::internal(format!("cannot serialize the result: {e}")))
}

/// Whether `name` may be an agent's or client's name: 1 to 64 ASCII letters, digits, `-`, `_`
/// or `.`, starting with a letter or digit, and not `all` (which addresses everyone).
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && !name.eq_ignore_ascii_case("all")
}

// ---------------------------------------------------------------------------------------------
// Method params and results.

/// `hello`: a client says who it is. Optional; without it the client is `person`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloParams {
    /// The name this client sends under ([`is_valid_name`]). An agent's MCP server uses the
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
    /// Event names from [`EVENTS`]; absent or empty: all of them.
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
    /// Messages waiting for this agent.
    pub queued: u32,
    pub paused: bool,
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

// ---------------------------------------------------------------------------------------------
// Notification params.

/// `chat.message`, and each entry of `chat.history` / `chat.read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    /// When the daemon took it, RFC 3339 in UTC.
    pub ts: String,
    pub from: String,
    /// A name or `all`.
    pub to: String,
    pub content: String,
    #[serde(default)]
    pub urgent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
    /// In `chat.history`: where each recipient's copy stands (empty in `chat.message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub recipient: String,
    pub status: DeliveryStatus,
}

/// `agent.state`: an agent's pane changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStateEvent {
    pub name: String,
    pub pane: String,
    pub state: AgentState,
}

/// `request.detected`: a request block or a question was seen in a pane (or came by
/// `request.ask`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDetectedEvent {
    pub id: String,
    pub pane: String,
    pub agent: String,
    /// `block`, `heuristic` or `ask`.
    pub kind: String,
    pub text: String,
}

/// `delivery.update`: one recipient's copy of a message moved on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryUpdateEvent {
    pub message_id: String,
    pub recipient: String,
    pub status: DeliveryStatus,
    /// Why (for `queued`: what it waits for; for `unconfirmed`/`failed`: what happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where one recipient's copy of a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting: the agent is busy, asking, paused, or someone's text is in its prompt.
    Queued,
    /// Being typed now.
    Delivering,
    /// Typed and seen submitted.
    Delivered,
    /// Typed and submitted, but the submission was not seen: not typed again.
    Unconfirmed,
    /// Could not be typed (the pane went away…).
    Failed,
    /// A status this client does not know (a newer daemon's).
    #[serde(other)]
    Other,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Unconfirmed => "unconfirmed",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other => "other",
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// `subscription.dropped`: the subscription ended; no more notifications come until the client
/// subscribes again (and it may catch up with `chat.history` `since` its last message id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionDropped {
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reject(line: &str) -> Rejection {
        parse_request(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_request_with_each_kind_of_id() {
        for id in [json!(1), json!("a-b"), json!(-2.5), Value::Null] {
            let line = json!({"jsonrpc":"2.0","id":id,"method":"m","params":{"a":1}}).to_string();
            let r = parse_request(line.as_bytes()).unwrap();
            assert_eq!(r.id, Some(id));
            assert_eq!(r.method, "m");
            assert_eq!(r.params, json!({"a":1}));
        }
    }

    #[test]
    fn absent_or_null_params_are_an_empty_object_and_no_id_is_a_notification() {
        let r = parse_request(br#"{"jsonrpc":"2.0","method":"m"}"#).unwrap();
        assert_eq!(r.id, None);
        assert_eq!(r.params, json!({}));
        let r = parse_request(br#"{"jsonrpc":"2.0","id":3,"method":"m","params":null}"#).unwrap();
        assert_eq!(r.params, json!({}));
    }

    #[test]
    fn bad_lines_get_the_right_codes() {
        let e = reject("{nope");
        assert_eq!(
            (e.error.code, e.id.clone()),
            (code::PARSE_ERROR, Value::Null)
        );
        let e = reject(r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#);
        assert_eq!(e.error.code, code::INVALID_REQUEST);
        assert!(e.error.message.contains("batch"), "{}", e.error.message);
        assert_eq!(reject("42").error.code, code::INVALID_REQUEST);
        let e = reject(r#"{"jsonrpc":"1.0","id":7,"method":"m"}"#);
        assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, json!(7)));
        let e = reject(r#"{"jsonrpc":"2.0","id":"x"}"#);
        assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, json!("x")));
        let e = reject(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#);
        assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, Value::Null));
        let e = reject(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}"#);
        assert_eq!((e.error.code, e.silent), (code::INVALID_PARAMS, false));
        let e = reject(r#"{"jsonrpc":"2.0","method":"m","params":[1,2]}"#);
        assert!(e.silent, "a notification with bad params gets no answer");
    }

    #[test]
    fn lines_round_trip_through_the_client_parser() {
        let ok = response_line(&json!("id-1"), Ok(&json!({"x":1})));
        assert_eq!(
            parse_incoming(ok.as_bytes()).unwrap(),
            Incoming::Response {
                id: json!("id-1"),
                result: Ok(json!({"x":1}))
            }
        );
        let err = RpcError::not_found("no agent \"bob\"").with_data(json!({"known":["a"]}));
        let line = response_line(&json!(9), Err(&err));
        assert_eq!(
            parse_incoming(line.as_bytes()).unwrap(),
            Incoming::Response {
                id: json!(9),
                result: Err(err)
            }
        );
        let n = notification_line("chat.message", &json!({"id":"1"}));
        assert_eq!(
            n,
            r#"{"jsonrpc":"2.0","method":"chat.message","params":{"id":"1"}}"#
        );
        assert!(matches!(
            parse_incoming(n.as_bytes()).unwrap(),
            Incoming::Notification(Notification { ref method, .. }) if method == "chat.message"
        ));
        let req = request_line(Some(4), "hello", &json!({"name":"me"}));
        let r = parse_request(req.as_bytes()).unwrap();
        assert_eq!((r.id, r.method.as_str()), (Some(json!(4)), "hello"));
        let note = request_line(None, "hello", &json!({}));
        assert_eq!(parse_request(note.as_bytes()).unwrap().id, None);
    }

    #[test]
    fn params_name_the_bad_field() {
        let e = params::<ChatSendParams>(json!({"conent":"hi"})).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert!(e.message.contains("conent"), "{}", e.message);
        let p: ChatSendParams = params(json!({"content":"hi","urgent":true})).unwrap();
        assert!(p.urgent && p.to.is_none());
        let e = params::<AgentKeyParams>(json!({"name":"a"})).unwrap_err();
        assert!(e.message.contains("key"), "{}", e.message);
    }

    #[test]
    fn unknown_states_and_statuses_from_a_newer_daemon_are_read() {
        let a: AgentInfo = serde_json::from_value(json!({
            "name":"a","pane":"%1","profile":"codex","state":"sleeping","queued":0,"paused":false,
            "extra":"ignored"
        }))
        .unwrap();
        assert_eq!(a.state, AgentState::Unknown);
        let d: DeliveryUpdateEvent =
            serde_json::from_value(json!({"message_id":"1","recipient":"a","status":"teleported"}))
                .unwrap();
        assert_eq!(d.status, DeliveryStatus::Other);
        assert_eq!(
            serde_json::to_value(AgentState::from(crate::detect::PaneState::Asking)).unwrap(),
            json!("asking")
        );
    }

    #[test]
    fn names() {
        for ok in ["codex", "agent1", "a.b-c_d", "Claude"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "all", "ALL", "-x", "a b", "@a", "é", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
