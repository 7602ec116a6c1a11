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
//! | `task.handoff` | [`TaskParams`] `{to, task, wait_seconds?}` | [`TaskInfo`] `{id, to, status, reply_id?, reply?, partial?}` when the reply came or the wait ran out | -32001 unknown agent; -32002 routes; -32003 dry run |
//! | `task.assign` | [`TaskParams`] `{to, task}` | [`TaskInfo`] at once; the reply is typed into the caller later | as `task.handoff` |
//! | `task.get` | [`TaskGetParams`] `{id}` | [`TaskInfo`] | -32001 no such task |
//! | `chat.discuss` | [`DiscussParams`] `{content, rounds, to?, round_seconds?}` | [`DiscussResult`] `{id, agents, rounds}` | -32002 an agent's connection; -32003 a discussion is under way |
//! | `chat.stop` | `{}` | [`StopResult`] `{stopped?, withdrawn}` | -32002 an agent's connection |
//! | `daemon.info` | `{}` | [`DaemonInfoResult`] `{version, session, pid, state_dir, mode, started_at, uptime_secs, attached, agents, last_error?}` | |
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
//!
//! # Layout
//! - this module: names (methods, events, error codes) and limits;
//! - [`envelope`]: the JSON-RPC envelopes: parsing request and incoming lines, writing
//!   response, notification and request lines, [`RpcError`];
//! - [`messages`]: the params and results of every method;
//! - [`events`]: the params of every notification.
//!
//! Every name is re-exported here: callers write `protocol::ChatSendParams`.

pub mod envelope;
pub mod events;
pub mod messages;
pub mod tasks;
#[cfg(test)]
mod tests;

pub use envelope::*;
pub use events::*;
pub use messages::*;
pub use tasks::*;

/// The `jsonrpc` member of every envelope.
pub const JSONRPC: &str = "2.0";
/// The socket's file name in the state dir.
pub const SOCKET_NAME: &str = "macs.sock";
/// The longest request line the server reads, without its newline.
pub const MAX_LINE: usize = 64 * 1024;
/// The longest a call may ask the daemon to wait (`request.ask`, `task.handoff`), in seconds.
pub const MAX_WAIT_SECS: u64 = 600;

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
    pub const TASK_HANDOFF: &str = "task.handoff";
    pub const TASK_ASSIGN: &str = "task.assign";
    pub const TASK_GET: &str = "task.get";
    pub const CHAT_DISCUSS: &str = "chat.discuss";
    pub const CHAT_STOP: &str = "chat.stop";
    pub const DAEMON_INFO: &str = "daemon.info";
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
    method::TASK_HANDOFF,
    method::TASK_ASSIGN,
    method::TASK_GET,
    method::CHAT_DISCUSS,
    method::CHAT_STOP,
    method::DAEMON_INFO,
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
