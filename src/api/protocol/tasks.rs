//! The params and results of the conversation methods: `task.handoff`, `task.assign`,
//! `task.get` (a task typed into an agent, and the reply of the turn it started) and
//! `chat.discuss` / `chat.stop` (a bounded round table). No I/O.

use serde::{Deserialize, Serialize};

/// `task.handoff` and `task.assign`: a task for one agent, sent as a chat message from the
/// caller. `handoff` waits up to `wait_seconds` (default 60, at most 600) for the reply of the
/// turn the task starts; `assign` returns at once (`wait_seconds` is refused) and types the reply
/// into the caller as `[reply from NAME] …` when it comes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    pub to: String,
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
}

/// `task.get`: a task by the id of its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGetParams {
    pub id: String,
}

/// A task and, once the agent's turn ended, its reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The id of the task's chat message.
    pub id: String,
    pub to: String,
    pub status: TaskStatus,
    /// The reply's chat message id and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Part of the reply had scrolled off the agent's screen before the bridge read it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Not typed yet, or typed and the agent's turn has not ended.
    Pending,
    /// Held for the person (hop or rate limit, or the agent is paused).
    Held,
    Replied,
    #[serde(other)]
    Other,
}

/// `chat.discuss`: the person starts a round table. `content` goes to `to` (absent: every
/// agent); each agent's reply is relayed to the others as `[from NAME] …`, for at most `rounds`
/// rounds (1 to 10). A round waits for every agent's reply, at most `round_seconds` (default
/// 300).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscussParams {
    pub content: String,
    pub rounds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscussResult {
    /// The discussion's id (the id of its first message).
    pub id: String,
    pub agents: Vec<String>,
    pub rounds: u32,
}

/// `chat.stop`: ends the discussion under way (nothing more is relayed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopResult {
    /// The discussion that was stopped, if one was under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Relays that were waiting to be typed and were withdrawn.
    pub withdrawn: u32,
}
