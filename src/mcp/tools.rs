//! The MCP tools: their descriptions and input schemas, how a call's arguments are read and
//! checked, which daemon method each becomes, and how the daemon's answer is told to the agent.
//!
//! No I/O here: [`call`] talks to the daemon only through [`Rpc`], so the tests stand in for it.
//! A call never fails the MCP session: bad arguments and every daemon error become a tool
//! result with `isError: true` and a message the agent can act on. Only an unknown tool name is
//! a protocol error (`-32602`), as the MCP specification asks.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use rmcp::ErrorData;
use serde::Deserialize;
use serde_json::{json, Value};

use super::daemon::Rpc;

/// The largest message or question, in bytes (as the daemon's limit for answers).
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// `ask_controller` waits this long when not told.
pub const DEFAULT_WAIT_SECS: u64 = 30;
/// The longest `ask_controller` or `handoff` may wait: the daemon's limit (Gemini CLI's default
/// tool timeout is 10 minutes).
pub use crate::api::protocol::MAX_WAIT_SECS;
/// Time the daemon gets to answer a call, besides any waiting the call asked for.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

pub const SEND_MESSAGE: &str = "send_message";
pub const LIST_AGENTS: &str = "list_agents";
pub const READ_MESSAGES: &str = "read_messages";
pub const ASK_CONTROLLER: &str = "ask_controller";
pub const GET_REQUEST: &str = "get_request";
pub const HANDOFF: &str = "handoff";
pub const ASSIGN: &str = "assign";
pub const GET_TASK: &str = "get_task";
/// `handoff` waits this long when not told.
pub const HANDOFF_WAIT_SECS: u64 = 120;

/// The tools, as `tools/list` shows them. The schemas are written by hand (not generated) so
/// that they stay plain: one type per property, no `null` unions and no integer formats, which
/// some clients' schema converters (Gemini's) reject.
pub fn list() -> Vec<Tool> {
    let schema = |v: Value| -> Arc<JsonObject> {
        match v {
            Value::Object(o) => Arc::new(o),
            _ => Arc::new(JsonObject::new()),
        }
    };
    let read_only = |title: &str| {
        ToolAnnotations::with_title(title)
            .read_only(true)
            .destructive(false)
            .open_world(false)
    };
    vec![
        Tool::new(
            SEND_MESSAGE,
            "Send a message to another agent of your team, or to `all` of them. It is typed into \
             the recipient's prompt (once it is idle) as `[from YOUR_NAME] …`, so they know who \
             wrote. Use list_agents to see who is there.",
            schema(json!({
                "type": "object",
                "properties": {
                    "to": {
                        "type": "string",
                        "description": "The recipient: an agent's name as list_agents shows it, or `all`."
                    },
                    "content": {
                        "type": "string",
                        "description": "The message text (at most 64 KiB)."
                    }
                },
                "required": ["to", "content"]
            })),
        )
        .with_annotations(
            ToolAnnotations::with_title("Send a message")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        Tool::new(
            LIST_AGENTS,
            "List the agents of your team: each one's name, state (idle, busy, asking, unknown), \
             how many messages wait in its queue, and whether it is paused.",
            schema(json!({ "type": "object", "properties": {} })),
        )
        .with_annotations(read_only("List agents")),
        Tool::new(
            READ_MESSAGES,
            "Read the messages addressed to you (and to `all`), oldest first: the ones you have not \
             read yet, or with `since`, every one after that message id.",
            schema(json!({
                "type": "object",
                "properties": {
                    "since": {
                        "type": "string",
                        "description": "A message id: only messages after it (default: the ones not read yet)."
                    }
                }
            })),
        )
        .with_annotations(read_only("Read messages")),
        Tool::new(
            ASK_CONTROLLER,
            "Ask your controller (the agent or person directing your work) a question, as a \
             <<CONTROLLER_REQUEST>> block would. Waits up to `wait_seconds` for the answer and \
             returns it; if none comes by then, returns the request id: call get_request with \
             it later.",
            schema(json!({
                "type": "object",
                "properties": {
                    "question": {
                        "type": "string",
                        "description": "What you need to know or want approved (at most 64 KiB)."
                    },
                    "wait_seconds": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_WAIT_SECS,
                        "description": format!(
                            "How long to wait for the answer, in seconds (default {DEFAULT_WAIT_SECS}, at most {MAX_WAIT_SECS}; 0: do not wait)."
                        )
                    }
                },
                "required": ["question"]
            })),
        )
        .with_annotations(
            ToolAnnotations::with_title("Ask the controller")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        Tool::new(
            GET_REQUEST,
            "Look up a request you filed with ask_controller: whether it is answered yet, and the \
             answer.",
            schema(json!({
                "type": "object",
                "properties": {
                    "id": {
                        "type": "string",
                        "description": "The request id ask_controller returned."
                    }
                },
                "required": ["id"]
            })),
        )
        .with_annotations(read_only("Get a request")),
        Tool::new(
            HANDOFF,
            "Hand a task to another agent and wait for its answer: the task is typed into its \
             prompt (once it is idle) as `[from YOUR_NAME] …`, and when its turn ends, the reply \
             it wrote is returned to you. If the reply takes longer than `wait_seconds`, you get \
             the task id: call get_task with it later.",
            schema(json!({
                "type": "object",
                "properties": {
                    "to": { "type": "string", "description": "The agent's name, as list_agents shows it." },
                    "task": { "type": "string", "description": "What the agent should do (at most 64 KiB)." },
                    "wait_seconds": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_WAIT_SECS,
                        "description": format!(
                            "How long to wait for the reply, in seconds (default {HANDOFF_WAIT_SECS}, at most {MAX_WAIT_SECS})."
                        )
                    }
                },
                "required": ["to", "task"]
            })),
        )
        .with_annotations(
            ToolAnnotations::with_title("Hand off a task")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        Tool::new(
            ASSIGN,
            "Give a task to another agent and go on with your work: returns at once, and when the \
             agent's turn ends its reply is typed into your prompt as `[reply from NAME] …` (once \
             you are idle).",
            schema(json!({
                "type": "object",
                "properties": {
                    "to": { "type": "string", "description": "The agent's name, as list_agents shows it." },
                    "task": { "type": "string", "description": "What the agent should do (at most 64 KiB)." }
                },
                "required": ["to", "task"]
            })),
        )
        .with_annotations(
            ToolAnnotations::with_title("Assign a task")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        Tool::new(
            GET_TASK,
            "Look up a task you gave with handoff or assign: whether the agent has replied, and \
             its reply.",
            schema(json!({
                "type": "object",
                "properties": {
                    "id": { "type": "string", "description": "The task id handoff or assign returned." }
                },
                "required": ["id"]
            })),
        )
        .with_annotations(read_only("Get a task")),
    ]
}

/// A checked tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Send {
        to: String,
        content: String,
    },
    ListAgents,
    Read {
        since: Option<String>,
    },
    Ask {
        question: String,
        wait_secs: u64,
    },
    Get {
        id: String,
    },
    Handoff {
        to: String,
        task: String,
        wait_secs: u64,
    },
    Assign {
        to: String,
        task: String,
    },
    GetTask {
        id: String,
    },
}

#[derive(Deserialize)]
struct TaskArgs {
    to: String,
    task: String,
    #[serde(default)]
    wait_seconds: Option<Value>,
}

#[derive(Deserialize)]
struct SendArgs {
    to: String,
    content: String,
}

#[derive(Deserialize)]
struct ReadArgs {
    #[serde(default)]
    since: Option<Value>,
}

#[derive(Deserialize)]
struct AskArgs {
    question: String,
    #[serde(default)]
    wait_seconds: Option<Value>,
}

#[derive(Deserialize)]
struct GetArgs {
    id: Value,
}

/// Reads a call. `Ok(None)`: no such tool. `Err`: the arguments are wrong, and why.
pub fn parse(name: &str, args: Option<JsonObject>) -> Result<Option<Call>, String> {
    let args = Value::Object(args.unwrap_or_default());
    let read = |e: serde_json::Error| format!("invalid arguments for {name}: {e}");
    let call = match name {
        SEND_MESSAGE => {
            let a: SendArgs = serde_json::from_value(args).map_err(read)?;
            let to = a.to.trim();
            if to.is_empty() {
                return Err("`to` is empty: name an agent (see list_agents) or `all`".into());
            }
            if to.chars().any(char::is_control) {
                return Err(format!("`to` holds control characters: {to:?}"));
            }
            Call::Send {
                to: to.to_string(),
                content: checked_text("content", a.content)?,
            }
        }
        LIST_AGENTS => Call::ListAgents,
        READ_MESSAGES => {
            let a: ReadArgs = serde_json::from_value(args).map_err(read)?;
            // Message ids are strings; a model may still write one as a number.
            let since = match a.since {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(format!(
                        "`since` must be a message id (a string or a number), not {other}"
                    ))
                }
            };
            Call::Read { since }
        }
        ASK_CONTROLLER => {
            let a: AskArgs = serde_json::from_value(args).map_err(read)?;
            Call::Ask {
                question: checked_text("question", a.question)?,
                wait_secs: wait_secs(a.wait_seconds)?,
            }
        }
        GET_REQUEST => {
            let a: GetArgs = serde_json::from_value(args).map_err(read)?;
            let id = match a.id {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                other => return Err(format!("`id` must be a request id, not {other}")),
            };
            if id.is_empty() {
                return Err("`id` is empty: pass the id ask_controller returned".into());
            }
            Call::Get { id }
        }
        HANDOFF | ASSIGN => {
            let a: TaskArgs = serde_json::from_value(args).map_err(read)?;
            let to = a.to.trim().trim_start_matches('@').to_string();
            if to.is_empty() || to == "all" || to.chars().any(char::is_control) {
                return Err(format!(
                    "`to` must name one agent (see list_agents), not {:?}",
                    a.to
                ));
            }
            let task = checked_text("task", a.task)?;
            if name == ASSIGN {
                if a.wait_seconds.is_some() {
                    return Err("assign does not wait; use handoff to wait for the reply".into());
                }
                Call::Assign { to, task }
            } else {
                let wait_secs = match a.wait_seconds {
                    None | Some(Value::Null) => HANDOFF_WAIT_SECS,
                    v => wait_secs(v)?,
                };
                Call::Handoff {
                    to,
                    task,
                    wait_secs,
                }
            }
        }
        GET_TASK => {
            let a: GetArgs = serde_json::from_value(args).map_err(read)?;
            let id = match a.id {
                Value::String(s) => s.trim().to_string(),
                other => return Err(format!("`id` must be a task id, not {other}")),
            };
            if id.is_empty() {
                return Err("`id` is empty: pass the id handoff or assign returned".into());
            }
            Call::GetTask { id }
        }
        _ => return Ok(None),
    };
    Ok(Some(call))
}

fn checked_text(field: &str, text: String) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(format!("`{field}` is empty: nothing to send"));
    }
    if text.len() > MAX_CONTENT_BYTES {
        return Err(format!(
            "`{field}` is too large: {} bytes, the limit is {MAX_CONTENT_BYTES} bytes (64 KiB); send it in parts or put it in a file and send the path",
            text.len()
        ));
    }
    Ok(text)
}

/// `wait_seconds`: a whole number of seconds from 0 to [`MAX_WAIT_SECS`]. Models sometimes send
/// `30.0` or `"30"`; both are taken.
fn wait_secs(v: Option<Value>) -> Result<u64, String> {
    let n = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_WAIT_SECS),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() && (0.0..=MAX_WAIT_SECS as f64).contains(&n) => {
            Ok(n.ceil() as u64)
        }
        Some(n) if n.is_finite() && n > MAX_WAIT_SECS as f64 => Err(format!(
            "`wait_seconds` is {n}: at most {MAX_WAIT_SECS}; wait less and call get_request later"
        )),
        _ => Err(format!(
            "`wait_seconds` must be a number of seconds from 0 to {MAX_WAIT_SECS}"
        )),
    }
}

impl Call {
    /// The daemon method, its params and how long the daemon gets to answer.
    pub fn request(&self, me: &str) -> (&'static str, Value, Duration) {
        match self {
            Call::Send { to, content } => (
                "chat.send",
                json!({ "from": me, "to": to, "content": content }),
                CALL_TIMEOUT,
            ),
            Call::ListAgents => ("agents.list", json!({}), CALL_TIMEOUT),
            Call::Read { since } => {
                let mut p = json!({ "name": me });
                if let Some(s) = since {
                    p["since"] = json!(s);
                }
                ("chat.read", p, CALL_TIMEOUT)
            }
            Call::Ask {
                question,
                wait_secs,
            } => (
                "request.ask",
                json!({ "from": me, "question": question, "wait_seconds": wait_secs }),
                CALL_TIMEOUT + Duration::from_secs(*wait_secs),
            ),
            Call::Get { id } => ("request.get", json!({ "id": id }), CALL_TIMEOUT),
            Call::Handoff {
                to,
                task,
                wait_secs,
            } => (
                "task.handoff",
                json!({ "to": to, "task": task, "wait_seconds": wait_secs }),
                CALL_TIMEOUT + Duration::from_secs(*wait_secs),
            ),
            Call::Assign { to, task } => (
                "task.assign",
                json!({ "to": to, "task": task }),
                CALL_TIMEOUT,
            ),
            Call::GetTask { id } => ("task.get", json!({ "id": id }), CALL_TIMEOUT),
        }
    }

    fn tool(&self) -> &'static str {
        match self {
            Call::Send { .. } => SEND_MESSAGE,
            Call::ListAgents => LIST_AGENTS,
            Call::Read { .. } => READ_MESSAGES,
            Call::Ask { .. } => ASK_CONTROLLER,
            Call::Get { .. } => GET_REQUEST,
            Call::Handoff { .. } => HANDOFF,
            Call::Assign { .. } => ASSIGN,
            Call::GetTask { .. } => GET_TASK,
        }
    }

    /// The daemon's answer, told as text for the agent.
    pub fn render(&self, v: &Value) -> String {
        match self {
            Call::Send { to, .. } => render_sent(to, v),
            Call::ListAgents => render_agents(v),
            Call::Read { since } => render_messages(since.as_deref(), v),
            Call::Ask { wait_secs, .. } => render_request(v, Some(*wait_secs)),
            Call::Get { .. } => render_request(v, None),
            Call::Handoff { wait_secs, .. } => render_task(v, Some(*wait_secs), false),
            Call::Assign { .. } => render_task(v, None, true),
            Call::GetTask { .. } => render_task(v, None, false),
        }
    }
}

/// Runs one `tools/call`: check, ask the daemon, tell.
pub async fn call<R: Rpc>(
    rpc: &R,
    me: &str,
    name: &str,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ErrorData> {
    let call = match parse(name, args) {
        Ok(Some(call)) => call,
        Ok(None) => {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{name}`; the tools are {SEND_MESSAGE}, {LIST_AGENTS}, {READ_MESSAGES}, {ASK_CONTROLLER} and {GET_REQUEST}"
                ),
                None,
            ))
        }
        Err(why) => return Ok(tool_error(why)),
    };
    let (method, params, timeout) = call.request(me);
    tracing::debug!(tool = call.tool(), method, "calling the daemon");
    match rpc.call(method, params, timeout).await {
        Ok(v) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(call.render(&v))]);
            if v.is_object() {
                result.structured_content = Some(v);
            }
            Ok(result)
        }
        Err(e) => {
            tracing::debug!(tool = call.tool(), error = %e, "the daemon call failed");
            Ok(tool_error(format!("{} failed: {e}", call.tool())))
        }
    }
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

// --- telling the daemon's answers -----------------------------------------------------------

/// A value as plain text: strings without quotes, `null` as empty.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list of names (or a count) as text.
fn names(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => text(other),
    }
}

fn render_sent(to: &str, v: &Value) -> String {
    let mut out = format!("Sent to {to}");
    if let Some(id) = v.get("id").filter(|id| !id.is_null()) {
        out.push_str(&format!(" (message {})", text(id)));
    }
    out.push('.');
    if let Some(r) = v.get("recipients").filter(|r| !r.is_null()) {
        let r = names(r);
        if !r.is_empty() {
            out.push_str(&format!(" Recipients: {r}."));
        }
    }
    match v.get("queued") {
        Some(Value::Bool(true)) => out.push_str(" Queued until the recipient is idle."),
        Some(Value::Number(n)) if n.as_u64() != Some(0) => {
            out.push_str(&format!(" Queued: {n} (delivered when idle)."))
        }
        Some(q @ Value::Array(items)) if !items.is_empty() => {
            out.push_str(&format!(" Queued for {} (delivered when idle).", names(q)))
        }
        _ => {}
    }
    out
}

fn render_agents(v: &Value) -> String {
    let agents = v
        .get("agents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if agents.is_empty() {
        return "No agents are connected to the bridge.".into();
    }
    let mut out = String::new();
    for a in &agents {
        let mut line = format!("{}: {}", text(&a["name"]), text(&a["state"]));
        if let Some(q) = a.get("queued").and_then(Value::as_u64) {
            line.push_str(&format!(", {q} queued"));
        }
        if a.get("paused").and_then(Value::as_bool) == Some(true) {
            line.push_str(", paused");
        }
        if let Some(p) = a.get("pane").filter(|p| !p.is_null()) {
            line.push_str(&format!(", pane {}", text(p)));
        }
        if let Some(p) = a.get("profile").filter(|p| !p.is_null()) {
            line.push_str(&format!(", profile {}", text(p)));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

fn render_messages(since: Option<&str>, v: &Value) -> String {
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if messages.is_empty() {
        return match since {
            Some(s) => format!("No messages for you after {s}."),
            None => "No new messages for you.".into(),
        };
    }
    let mut out = String::new();
    for m in &messages {
        let mut head = format!("[{}]", text(&m["id"]));
        let ts = text(&m["ts"]);
        if !ts.is_empty() {
            head.push(' ');
            head.push_str(&ts);
        }
        head.push_str(&format!(" {} → {}", text(&m["from"]), text(&m["to"])));
        if let Some(r) = m.get("in_reply_to").and_then(Value::as_str) {
            head.push_str(&format!(" (reply to {r})"));
        }
        head.push(':');
        let content = text(&m["content"]);
        if content.contains('\n') {
            out.push_str(&head);
            for line in content.lines() {
                out.push_str("\n  ");
                out.push_str(line);
            }
        } else {
            out.push_str(&format!("{head} {content}"));
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

/// `request.ask` (with the seconds it waited) and `request.get`.
fn render_request(v: &Value, waited: Option<u64>) -> String {
    let id = text(&v["id"]);
    let status = text(&v["status"]);
    let answer = v.get("answer").map(text).unwrap_or_default();
    if status == "answered" {
        return format!("The controller answered (request {id}):\n{answer}");
    }
    let mut out = match waited {
        Some(0) => format!("Request {id} is filed; the controller has not answered yet."),
        Some(s) => format!("No answer within {s} s. Request {id} is filed and stays open."),
        None => format!("Request {id}: {status}."),
    };
    if waited.is_some() || status == "pending" {
        out.push_str(&format!(
            " Call get_request with id \"{id}\" later to see the answer."
        ));
    }
    if waited.is_none() {
        let question = v.get("question").or_else(|| v.get("text"));
        if let Some(q) = question.map(text).filter(|q| !q.is_empty()) {
            out.push_str(&format!("\nThe request:\n{q}"));
        }
    }
    out
}

/// `task.handoff` (with the seconds it waited), `task.assign` and `task.get`.
fn render_task(v: &Value, waited: Option<u64>, assigned: bool) -> String {
    let id = text(&v["id"]);
    let to = text(&v["to"]);
    match text(&v["status"]).as_str() {
        "replied" => {
            let mut out = format!("{to} replied (task {id}):\n{}", text(&v["reply"]));
            if v["partial"].as_bool() == Some(true) {
                out.push_str("\n(The start of the reply had scrolled off its screen.)");
            }
            out
        }
        status => {
            let head = match (waited, status) {
                (_, "held") => format!(
                    "Task {id} for {to} is held for the person (too many messages between \
                     agents, or {to} is paused)."
                ),
                (Some(s), _) => format!("No reply from {to} within {s} s; task {id} stays open."),
                (None, _) if !assigned => format!("Task {id}: no reply from {to} yet."),
                (None, _) => format!(
                    "Task {id} is with {to}; its reply will be typed into your prompt as \
                     [reply from {to}] when its turn ends."
                ),
            };
            format!("{head} Call get_task with id \"{id}\" to see the reply.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::daemon::DaemonError;
    use std::sync::Mutex;

    fn obj(v: Value) -> Option<JsonObject> {
        match v {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    #[test]
    fn eight_tools_with_object_schemas_and_their_required_fields() {
        let tools = list();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                SEND_MESSAGE,
                LIST_AGENTS,
                READ_MESSAGES,
                ASK_CONTROLLER,
                GET_REQUEST,
                HANDOFF,
                ASSIGN,
                GET_TASK
            ]
        );
        for t in &tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            assert!(t.description.is_some());
            // Every property has exactly one plain type (no null unions, no formats).
            for (k, p) in t.input_schema["properties"].as_object().unwrap() {
                assert!(p["type"].is_string(), "{}.{k}", t.name);
                assert!(p.get("format").is_none(), "{}.{k}", t.name);
                assert!(p["description"].is_string(), "{}.{k}", t.name);
            }
        }
        let required = |i: usize| t_required(&tools[i]);
        assert_eq!(required(0), ["to", "content"]);
        assert!(required(1).is_empty());
        assert!(required(2).is_empty());
        assert_eq!(required(3), ["question"]);
        assert_eq!(required(4), ["id"]);
        assert_eq!(required(5), ["to", "task"]);
        assert_eq!(required(6), ["to", "task"]);
        assert_eq!(required(7), ["id"]);
    }

    #[test]
    fn tasks_become_daemon_calls_and_replies_are_told() {
        let h = parse(
            HANDOFF,
            obj(json!({"to": "@gemini", "task": "review a.rs"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            h,
            Call::Handoff {
                to: "gemini".into(),
                task: "review a.rs".into(),
                wait_secs: HANDOFF_WAIT_SECS
            }
        );
        let (method, params, _) = h.request("claude");
        assert_eq!(method, "task.handoff");
        assert_eq!(params["to"], "gemini");
        assert!(parse(ASSIGN, obj(json!({"to": "all", "task": "x"}))).is_err());
        assert!(parse(
            ASSIGN,
            obj(json!({"to": "a", "task": "x", "wait_seconds": 3}))
        )
        .is_err());
        assert!(parse(HANDOFF, obj(json!({"to": "a", "task": " "}))).is_err());
        let replied = json!({"id": "m-1", "to": "gemini", "status": "replied",
                             "reply": "Looks fine.", "reply_id": "m-2"});
        assert_eq!(
            h.render(&replied),
            "gemini replied (task m-1):\nLooks fine."
        );
        let pending = json!({"id": "m-1", "to": "gemini", "status": "pending"});
        assert!(h
            .render(&pending)
            .contains("No reply from gemini within 120 s"));
        let a = parse(ASSIGN, obj(json!({"to": "gemini", "task": "x"})))
            .unwrap()
            .unwrap();
        assert!(a.render(&pending).contains("[reply from gemini]"));
    }

    fn t_required(t: &Tool) -> Vec<String> {
        t.input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_schemas_describe_what_parse_takes() {
        // Every property a schema names is read by parse (a typo in either would show here).
        let ok = [
            (SEND_MESSAGE, json!({"to": "codex", "content": "hi"})),
            (LIST_AGENTS, json!({})),
            (READ_MESSAGES, json!({"since": "12"})),
            (
                ASK_CONTROLLER,
                json!({"question": "May I?", "wait_seconds": 5}),
            ),
            (GET_REQUEST, json!({"id": "20261121-000748-7fe6"})),
        ];
        for (name, args) in ok {
            let tool = list().into_iter().find(|t| t.name == name).unwrap();
            let props: Vec<&String> = tool.input_schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            let given: Vec<&String> = args.as_object().unwrap().keys().collect();
            let mut p = props.clone();
            p.sort();
            let mut g = given.clone();
            g.sort();
            assert_eq!(p, g, "{name}");
            assert!(parse(name, obj(args)).unwrap().is_some(), "{name}");
        }
    }

    #[test]
    fn bad_arguments_are_explained() {
        let err = |name: &str, v: Value| parse(name, obj(v)).unwrap_err();
        assert!(err(SEND_MESSAGE, json!({"content": "hi"})).contains("missing field `to`"));
        assert!(err(SEND_MESSAGE, json!({"to": "x"})).contains("missing field `content`"));
        assert!(err(SEND_MESSAGE, json!({"to": " ", "content": "hi"})).contains("`to` is empty"));
        assert!(err(SEND_MESSAGE, json!({"to": "x", "content": "  \n"})).contains("is empty"));
        assert!(err(SEND_MESSAGE, json!({"to": 3, "content": "hi"})).contains("invalid type"));
        let big = "x".repeat(MAX_CONTENT_BYTES + 1);
        let e = err(SEND_MESSAGE, json!({"to": "x", "content": big}));
        assert!(e.contains("too large") && e.contains("65537 bytes"), "{e}");
        // Exactly at the limit is fine.
        let edge = "x".repeat(MAX_CONTENT_BYTES);
        assert!(parse(SEND_MESSAGE, obj(json!({"to": "x", "content": edge}))).is_ok());
        assert!(err(ASK_CONTROLLER, json!({})).contains("missing field `question`"));
        let e = err(
            ASK_CONTROLLER,
            json!({"question": "q", "wait_seconds": 601}),
        );
        assert!(e.contains("at most 600"), "{e}");
        assert!(
            err(ASK_CONTROLLER, json!({"question": "q", "wait_seconds": -1})).contains("from 0")
        );
        assert!(err(
            ASK_CONTROLLER,
            json!({"question": "q", "wait_seconds": "soon"})
        )
        .contains("from 0"));
        assert!(err(GET_REQUEST, json!({})).contains("missing field `id`"));
        assert!(err(GET_REQUEST, json!({"id": ""})).contains("`id` is empty"));
        assert!(err(READ_MESSAGES, json!({"since": [1]})).contains("`since`"));
        assert_eq!(parse("rm_rf", None), Ok(None));
    }

    #[test]
    fn arguments_become_daemon_calls() {
        let call = |name: &str, v: Value| parse(name, obj(v)).unwrap().unwrap().request("claude");
        let (m, p, _) = call(
            SEND_MESSAGE,
            json!({"to": " codex ", "content": "run the tests"}),
        );
        assert_eq!(m, "chat.send");
        assert_eq!(
            p,
            json!({"from": "claude", "to": "codex", "content": "run the tests"})
        );
        let (m, p, _) = call(LIST_AGENTS, json!({"ignored": true}));
        assert_eq!((m, p), ("agents.list", json!({})));
        let (m, p, _) = call(READ_MESSAGES, json!({}));
        assert_eq!((m, p), ("chat.read", json!({"name": "claude"})));
        // Message ids are strings, also when a model writes a number.
        let (_, p, _) = call(READ_MESSAGES, json!({"since": 7}));
        assert_eq!(p, json!({"name": "claude", "since": "7"}));
        let (_, p, _) = call(READ_MESSAGES, json!({"since": ""}));
        assert_eq!(p, json!({"name": "claude"}));
        let (m, p, t) = call(ASK_CONTROLLER, json!({"question": "May I?"}));
        assert_eq!(m, "request.ask");
        assert_eq!(
            p,
            json!({"from": "claude", "question": "May I?", "wait_seconds": DEFAULT_WAIT_SECS})
        );
        assert!(t > Duration::from_secs(DEFAULT_WAIT_SECS), "{t:?}");
        let (_, p, _) = call(
            ASK_CONTROLLER,
            json!({"question": "q", "wait_seconds": 2.5}),
        );
        assert_eq!(p["wait_seconds"], 3);
        let (_, p, _) = call(
            ASK_CONTROLLER,
            json!({"question": "q", "wait_seconds": "0"}),
        );
        assert_eq!(p["wait_seconds"], 0);
        let (m, p, _) = call(GET_REQUEST, json!({"id": 42}));
        assert_eq!((m, p), ("request.get", json!({"id": "42"})));
    }

    #[test]
    fn answers_are_told_plainly() {
        let send = parse(SEND_MESSAGE, obj(json!({"to": "codex", "content": "x"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            send.render(&json!({"id": "12", "to": "codex", "recipients": ["codex"], "queued": []})),
            "Sent to codex (message 12). Recipients: codex."
        );
        assert_eq!(
            send.render(&json!({"id": "m1", "to": "all", "recipients": ["codex", "gemini"], "queued": ["gemini"]})),
            "Sent to codex (message m1). Recipients: codex, gemini. Queued for gemini (delivered when idle)."
        );
        assert_eq!(
            Call::ListAgents.render(&json!({"agents": [
                {"name": "codex", "pane": "%1", "profile": "codex", "state": "busy", "queued": 2, "paused": false},
                {"name": "gemini", "pane": "%2", "profile": "gemini", "state": "idle", "queued": 0, "paused": true}
            ]})),
            "codex: busy, 2 queued, pane %1, profile codex\ngemini: idle, 0 queued, paused, pane %2, profile gemini"
        );
        assert_eq!(
            Call::ListAgents.render(&json!({"agents": []})),
            "No agents are connected to the bridge."
        );
        let read = Call::Read { since: None };
        assert_eq!(
            read.render(&json!({"messages": [
                {"id": "3", "ts": "12:00:01", "from": "codex", "to": "claude", "content": "done"},
                {"id": "4", "ts": "12:00:02", "from": "person", "to": "all", "content": "a\nb"}
            ]})),
            "[3] 12:00:01 codex → claude: done\n[4] 12:00:02 person → all:\n  a\n  b"
        );
        assert_eq!(
            Call::Read {
                since: Some("4".into())
            }
            .render(&json!({"messages": []})),
            "No messages for you after 4."
        );
        let ask = |w| Call::Ask {
            question: "q".into(),
            wait_secs: w,
        };
        assert_eq!(
            ask(30).render(&json!({"id": "r1", "status": "answered", "answer": "Yes."})),
            "The controller answered (request r1):\nYes."
        );
        let pending = ask(30).render(&json!({"id": "r1", "status": "pending"}));
        assert!(pending.contains("No answer within 30 s"), "{pending}");
        assert!(pending.contains("get_request with id \"r1\""), "{pending}");
        let now = ask(0).render(&json!({"id": "r1", "status": "pending"}));
        assert!(now.starts_with("Request r1 is filed"), "{now}");
        let get = Call::Get { id: "r1".into() };
        let g = get
            .render(&json!({"id": "r1", "from": "w", "status": "pending", "question": "May I?"}));
        assert!(g.starts_with("Request r1: pending.") && g.ends_with("The request:\nMay I?"));
    }

    /// Stands in for the daemon: records calls, answers with `reply`.
    struct Fake {
        calls: Mutex<Vec<(String, Value)>>,
        reply: fn(&str) -> Result<Value, DaemonError>,
    }

    impl Rpc for Fake {
        async fn call(
            &self,
            method: &str,
            params: Value,
            _timeout: Duration,
        ) -> Result<Value, DaemonError> {
            self.calls
                .lock()
                .unwrap()
                .push((method.to_string(), params));
            (self.reply)(method)
        }
    }

    fn result_text(r: &CallToolResult) -> String {
        let v = serde_json::to_value(r).unwrap();
        v["content"][0]["text"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn calls_reach_the_daemon_and_failures_are_tool_errors() {
        let ok = Fake {
            calls: Mutex::new(Vec::new()),
            reply: |_| Ok(json!({"id": 1, "recipients": ["codex"], "queued": false})),
        };
        let r = call(
            &ok,
            "claude",
            SEND_MESSAGE,
            obj(json!({"to": "codex", "content": "hi"})),
        )
        .await
        .unwrap();
        assert_eq!(r.is_error, Some(false));
        assert_eq!(r.structured_content.as_ref().unwrap()["id"], 1);
        assert_eq!(ok.calls.lock().unwrap()[0].0, "chat.send");

        // Bad arguments never reach the daemon.
        let r = call(&ok, "claude", SEND_MESSAGE, obj(json!({"content": "hi"})))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(ok.calls.lock().unwrap().len(), 1);

        // An unknown tool is a protocol error (-32602), as the specification asks.
        let e = call(&ok, "claude", "nope", None).await.unwrap_err();
        assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);

        let refused = Fake {
            calls: Mutex::new(Vec::new()),
            reply: |m| {
                Err(DaemonError::Rpc {
                    method: m.into(),
                    code: -32602,
                    message: "unknown agent: zed".into(),
                })
            },
        };
        let r = call(
            &refused,
            "claude",
            SEND_MESSAGE,
            obj(json!({"to": "zed", "content": "hi"})),
        )
        .await
        .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert_eq!(result_text(&r), "send_message failed: unknown agent: zed");
    }
}
