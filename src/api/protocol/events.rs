//! The params of every notification the daemon pushes to subscribers (`chat.message`,
//! `agent.state`, `request.detected`, `delivery.update`, `subscription.dropped`). No I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::messages::AgentState;

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
    /// An agent's reply: the message that started the turn it ends (also `meta.in_reply_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
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
