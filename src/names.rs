//! Names the parts of the program share: the person's name in the chat, the chat pane's label,
//! the pane name of requests that came through the API.
//!
//! A leaf module: constants only, importing nothing, so that any layer may use it without
//! depending on the daemon.

/// The person's default name in the chat.
pub const PERSON: &str = "person";

/// The pane label of the person's chat pane (`up --layout chat`): never an agent.
pub const CHAT_LABEL: &str = "chat";

/// The `pane` of requests that came by `request.ask` (an MCP tool call): answers go back to
/// the caller, never typed.
pub const API_PANE: &str = "api";
