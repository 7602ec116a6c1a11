//! Names shared across the crate: the person, the chat pane's label, the pseudo-pane of API
//! requests.

/// The person's name in the chat.
pub const PERSON: &str = "person";
/// The pane label of the person's chat pane: never an agent.
pub const CHAT_LABEL: &str = "chat";
/// The `pane` of requests that came by `request.ask` (an MCP tool call): answers go back to
/// the caller, never typed.
pub const API_PANE: &str = "api";
