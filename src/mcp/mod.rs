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

use clap::{Args, ValueEnum};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::cli::{exit, Failure};
use daemon::{DaemonLink, Rpc};
pub use snippets::{snippets, Snippets};

/// The flags of `mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// The agent this server speaks for: its name in the team (its pane's `@macs-agent` label).
    /// Messages it sends are from NAME; `read_messages` reads NAME's.
    #[arg(
        long = "as",
        value_name = "NAME",
        required_unless_present = "print_config"
    )]
    pub name: Option<String>,
    /// The daemon's state dir, where its socket `macs.sock` is [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the configuration that makes Claude Code, Codex and Gemini CLI start this server,
    /// and exit.
    #[arg(long)]
    pub print_config: bool,
    /// With --print-config: only this agent's snippet, exactly as its file wants it.
    #[arg(long, value_enum, value_name = "AGENT", requires = "print_config")]
    pub agent: Option<AgentCli>,
}

/// The agent CLIs there are snippets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentCli {
    ClaudeCode,
    Codex,
    Gemini,
}

/// Runs `macs-bridge mcp`: serves until the client closes standard input.
pub async fn run(args: McpArgs) -> Result<u8, Failure> {
    let state_dir = absolute(args.state_dir.as_deref().unwrap_or(Path::new(".")));
    if args.print_config {
        return print_config(args.name.as_deref(), &state_dir, args.agent);
    }
    let name = check_name(args.name.as_deref().unwrap_or_default())?;
    let server = McpServer::new(DaemonLink::new(&state_dir, &name), &name);
    tracing::info!(%name, state_dir = %state_dir.display(), "MCP server starting on stdio");
    let service = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| Failure {
            code: exit::ERROR,
            message: format!("mcp: the client did not start an MCP session: {e}"),
        })?;
    let reason = service.waiting().await.map_err(|e| Failure {
        code: exit::ERROR,
        message: format!("mcp: the server stopped: {e}"),
    })?;
    tracing::info!(?reason, "MCP session over");
    Ok(exit::OK)
}

fn print_config(
    name: Option<&str>,
    state_dir: &Path,
    only: Option<AgentCli>,
) -> Result<u8, Failure> {
    let name = match name {
        Some(n) => check_name(n)?,
        None => {
            eprintln!("macs-bridge: no --as NAME given: replace NAME with each agent's name");
            "NAME".to_string()
        }
    };
    let exe = std::env::current_exe().map_err(|e| Failure {
        code: exit::ERROR,
        message: format!("cannot tell where this macs-bridge binary is: {e}"),
    })?;
    let s = snippets(&exe, &name, state_dir);
    match only {
        None => print!("{}", s.render()),
        Some(AgentCli::ClaudeCode) => println!("{}", s.claude_code),
        Some(AgentCli::Codex) => print!("{}", s.codex),
        Some(AgentCli::Gemini) => println!("{}", s.gemini),
    }
    Ok(exit::OK)
}

/// An agent's name, as the daemon takes it ([`crate::api::protocol::is_valid_name`]).
fn check_name(name: &str) -> Result<String, Failure> {
    let usage = |message: String| Failure {
        code: exit::USAGE,
        message,
    };
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
                 read_messages lists them. ask_controller asks your controller for direction and \
                 waits for the answer; get_request looks it up later.",
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
        assert_eq!(check_name("").unwrap_err().code, exit::USAGE);
        assert_eq!(check_name("ALL").unwrap_err().code, exit::USAGE);
        assert!(check_name("a\u{1b}b").is_err());
        assert!(check_name("two words").is_err());
        assert_eq!(check_name("agent-1.b_c").unwrap(), "agent-1.b_c");
    }

    #[test]
    fn the_flags_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: McpArgs,
        }
        let t = T::try_parse_from(["x", "--as", "codex", "--state-dir", "/s"]).unwrap();
        assert_eq!(t.a.name.as_deref(), Some("codex"));
        assert!(T::try_parse_from(["x"]).is_err(), "--as is required");
        let t = T::try_parse_from(["x", "--print-config", "--agent", "claude-code"]).unwrap();
        assert_eq!(t.a.agent, Some(AgentCli::ClaudeCode));
        assert!(T::try_parse_from(["x", "--as", "a", "--agent", "codex"]).is_err());
    }
}
