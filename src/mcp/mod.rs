//! `macs-bridge mcp --as NAME`: an MCP server over standard input and output (the `rmcp` SDK)
//! that gives one agent (Claude Code, Codex, Gemini CLI…) tools to work with its team through the
//! running daemon: `send_message`, `list_agents`, `read_messages`, `ask_controller`,
//! `get_request`. Messages sent here name NAME as their sender, like any other.
//!
//! - [`tools`]: the tools, their schemas, checks and texts (no I/O).
//! - [`daemon`]: the JSON-RPC line to the daemon's socket, with its time limits.
//! - [`snippets`]: the configuration each agent CLI needs to start this server.
//!
//! Standard output belongs to the protocol: nothing else may ever be printed there (logs go to
//! standard error). A tool call never ends the session: every failure, the daemon's absence
//! included, is a tool result with `isError: true`.

pub mod daemon;
pub mod snippets;
pub mod tools;

use std::path::{Path, PathBuf};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use daemon::{DaemonLink, Rpc};
pub use snippets::{snippets, Snippets};

/// Why `mcp` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The request itself is wrong (a bad `--as` name): exit code 2.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl McpError {
    /// Whether the request itself was wrong.
    pub fn is_usage(&self) -> bool {
        matches!(self, McpError::Usage(_))
    }
}

/// The agent CLIs there are snippets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCli {
    ClaudeCode,
    Codex,
    Gemini,
}

/// Runs `macs-bridge mcp --as NAME`: serves on standard input and output until the client
/// closes standard input. `state_dir` holds the daemon's socket.
pub async fn run(name: &str, state_dir: &Path) -> Result<(), McpError> {
    let state_dir = absolute(state_dir);
    let name = check_name(name)?;
    let server = McpServer::new(DaemonLink::new(&state_dir, &name), &name);
    tracing::info!(%name, state_dir = %state_dir.display(), "MCP server starting on stdio");
    let service = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| {
            McpError::Failed(format!("mcp: the client did not start an MCP session: {e}"))
        })?;
    let reason = service
        .waiting()
        .await
        .map_err(|e| McpError::Failed(format!("mcp: the server stopped: {e}")))?;
    tracing::info!(?reason, "MCP session over");
    Ok(())
}

/// `mcp --print-config`: prints the configuration that makes the agent CLIs start this server
/// (for `name`, else a placeholder), all of it or only `only`'s snippet.
pub fn print_config(
    name: Option<&str>,
    state_dir: &Path,
    only: Option<AgentCli>,
) -> Result<(), McpError> {
    let state_dir = absolute(state_dir);
    let name = match name {
        Some(n) => check_name(n)?,
        None => {
            eprintln!("macs-bridge: no --as NAME given: replace NAME with each agent's name");
            "NAME".to_string()
        }
    };
    let exe = std::env::current_exe().map_err(|e| {
        McpError::Failed(format!("cannot tell where this macs-bridge binary is: {e}"))
    })?;
    let s = snippets(&exe, &name, &state_dir);
    match only {
        None => print!("{}", s.render()),
        Some(AgentCli::ClaudeCode) => println!("{}", s.claude_code),
        Some(AgentCli::Codex) => print!("{}", s.codex),
        Some(AgentCli::Gemini) => println!("{}", s.gemini),
    }
    Ok(())
}

/// An agent's name, as the daemon takes it ([`crate::api::protocol::is_valid_name`]).
fn check_name(name: &str) -> Result<String, McpError> {
    let usage = McpError::Usage;
    let name = name.trim();
    if name.is_empty() {
        return Err(usage("mcp: --as needs the agent's name".into()));
    }
    if name.eq_ignore_ascii_case("all") {
        return Err(usage(
            "mcp: --as all: `all` means every agent; give this agent its own name".into(),
        ));
    }
    if !crate::api::protocol::is_valid_name(name) {
        return Err(usage(format!(
            "mcp: --as {name:?} is not a name the daemon takes: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        )));
    }
    Ok(name.to_string())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The MCP side: answers `initialize`, `tools/list` and `tools/call`.
pub struct McpServer<R> {
    rpc: R,
    name: String,
    tools: Vec<Tool>,
}

impl<R: Rpc> McpServer<R> {
    pub fn new(rpc: R, name: &str) -> McpServer<R> {
        McpServer {
            rpc,
            name: name.to_string(),
            tools: tools::list(),
        }
    }
}

impl<R: Rpc> ServerHandler for McpServer<R> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("macs-bridge", env!("CARGO_PKG_VERSION"))
                    .with_title("macs-bridge: agents in tmux working together"),
            )
            .with_instructions(format!(
                "You are `{}` in a team of AI agents and a person, each in a tmux pane, connected \
                 by macs-bridge. send_message writes to another agent (list_agents names them) or \
                 to `all`; messages for you are typed into your prompt as `[from NAME] …`, and \
                 read_messages lists them (with the replies others wrote to you). When you end a \
                 turn that a message started, your reply goes back to the group on its own. \
                 handoff gives another agent a task and waits for its reply; assign gives one and \
                 has the reply typed into your prompt later as `[reply from NAME] …`. \
                 ask_controller asks your controller for direction and waits for the answer; \
                 get_request looks it up later.",
                self.name
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        tools::call(&self.rpc, &self.name, &request.name, request.arguments)
            .await
            .map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(" codex ").unwrap(), "codex");
        assert!(check_name("").unwrap_err().is_usage());
        assert!(check_name("ALL").unwrap_err().is_usage());
        assert!(check_name("a\u{1b}b").is_err());
        assert!(check_name("two words").is_err());
        assert_eq!(check_name("agent-1.b_c").unwrap(), "agent-1.b_c");
    }
}
