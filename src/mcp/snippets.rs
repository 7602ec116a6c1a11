//! The configuration each agent CLI needs to start `macs-bridge mcp --as NAME` as its MCP
//! server named `macs`: Claude Code (`.mcp.json`), Codex (`config.toml`, or `-c` overrides for one
//! run) and Gemini CLI (`settings.json`). Text only: this module writes no file.
//!
//! The shapes follow each CLI's documentation: Claude Code reads
//! `{"mcpServers": {NAME: {"type": "stdio", "command", "args"}}}`; Codex reads a
//! `[mcp_servers.NAME]` table with `command`, `args` and `tool_timeout_sec` (default 60 s); Gemini
//! reads `{"mcpServers": {NAME: {"command", "args", "timeout"}}}` with `timeout` in milliseconds
//! (default 10 minutes). The tool timeouts are raised past `ask_controller`'s longest wait.

use std::path::Path;

use serde_json::{json, Value};

use super::tools::MAX_WAIT_SECS;

/// The server's name in every agent's configuration (its tools show as `mcp__macs__…` in
/// Claude Code).
pub const SERVER_NAME: &str = "macs";
/// The tool timeout the snippets ask for: `ask_controller`'s longest wait and a minute more.
pub const TOOL_TIMEOUT_SECS: u64 = MAX_WAIT_SECS + 60;

/// The snippets for one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippets {
    /// The agent's name (`--as`).
    pub name: String,
    /// A whole `.mcp.json` for Claude Code (project root; `claude --mcp-config FILE` takes it too).
    pub claude_code: String,
    /// The `[mcp_servers.macs]` table for Codex's `~/.codex/config.toml` (or `.codex/config.toml`
    /// in a trusted project).
    pub codex: String,
    /// The same for one Codex run, as command-line words: `codex -c KEY=VALUE …`. Codex's config
    /// file is shared by every Codex, so `up` gives each its own name this way.
    pub codex_overrides: Vec<String>,
    /// A whole `settings.json` for Gemini CLI (`.gemini/settings.json` in the project, or
    /// `~/.gemini/settings.json`).
    pub gemini: String,
}

/// The words after the program: `mcp --as NAME --state-dir DIR`.
pub fn server_args(name: &str, state_dir: &Path) -> Vec<String> {
    vec![
        "mcp".into(),
        "--as".into(),
        name.into(),
        "--state-dir".into(),
        state_dir.to_string_lossy().into_owned(),
    ]
}

/// The snippets for agent `name`, running `exe` (the macs-bridge binary, an absolute path) with
/// the daemon's `state_dir` (absolute: agents start their MCP servers in their own directory).
pub fn snippets(exe: &Path, name: &str, state_dir: &Path) -> Snippets {
    let command = exe.to_string_lossy().into_owned();
    let args = server_args(name, state_dir);
    let claude_code = json!({
        "mcpServers": {
            SERVER_NAME: { "type": "stdio", "command": command, "args": args }
        }
    });
    let gemini = json!({
        "mcpServers": {
            SERVER_NAME: { "command": command, "args": args, "timeout": TOOL_TIMEOUT_SECS * 1000 }
        }
    });
    let args_toml = format!(
        "[{}]",
        args.iter()
            .map(|a| toml_string(a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let codex = format!(
        "[mcp_servers.{SERVER_NAME}]\ncommand = {}\nargs = {args_toml}\ntool_timeout_sec = {TOOL_TIMEOUT_SECS}\n",
        toml_string(&command)
    );
    let codex_overrides = [
        format!(
            "mcp_servers.{SERVER_NAME}.command={}",
            toml_string(&command)
        ),
        format!("mcp_servers.{SERVER_NAME}.args={args_toml}"),
        format!("mcp_servers.{SERVER_NAME}.tool_timeout_sec={TOOL_TIMEOUT_SECS}"),
    ]
    .into_iter()
    .flat_map(|kv| ["-c".to_string(), kv])
    .collect();
    Snippets {
        name: name.to_string(),
        claude_code: pretty(&claude_code),
        codex,
        codex_overrides,
        gemini: pretty(&gemini),
    }
}

impl Snippets {
    /// All three, with a line before each saying where it goes: for a person to read and copy.
    pub fn render(&self) -> String {
        format!(
            "# Claude Code: .mcp.json in the project root (or pass it with `claude --mcp-config FILE`)\n{}\n\n\
             # Codex: ~/.codex/config.toml (or .codex/config.toml in a trusted project)\n{}\n\
             # Gemini CLI: .gemini/settings.json in the project (or ~/.gemini/settings.json); merge into mcpServers if the file exists\n{}\n",
            self.claude_code, self.codex, self.gemini
        )
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A TOML basic string. JSON's string escapes are TOML's (serde_json writes only `\"`, `\\`,
/// `\n`, `\r`, `\t`, `\b`, `\f` and `\u00XX`), except that TOML also wants DEL escaped.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| String::from("\"\""))
        .replace('\u{7f}', "\\u007F")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample() -> Snippets {
        snippets(
            Path::new("/opt/macs/bin/macs-bridge"),
            "worker",
            &PathBuf::from("/home/me/team state"),
        )
    }

    #[test]
    fn claude_code_gets_an_mcp_json() {
        let s = sample();
        let v: Value = serde_json::from_str(&s.claude_code).unwrap();
        assert_eq!(
            v,
            json!({"mcpServers": {"macs": {
                "type": "stdio",
                "command": "/opt/macs/bin/macs-bridge",
                "args": ["mcp", "--as", "worker", "--state-dir", "/home/me/team state"]
            }}})
        );
    }

    #[test]
    fn gemini_gets_a_settings_json_with_a_timeout_in_milliseconds() {
        let v: Value = serde_json::from_str(&sample().gemini).unwrap();
        let server = &v["mcpServers"]["macs"];
        assert_eq!(server["command"], "/opt/macs/bin/macs-bridge");
        assert_eq!(
            server["args"],
            json!([
                "mcp",
                "--as",
                "worker",
                "--state-dir",
                "/home/me/team state"
            ])
        );
        assert_eq!(server["timeout"], 660_000);
        assert_eq!(server.as_object().unwrap().len(), 3);
    }

    #[test]
    fn codex_gets_a_toml_table_and_the_same_as_overrides() {
        let s = sample();
        assert_eq!(
            s.codex,
            "[mcp_servers.macs]\n\
             command = \"/opt/macs/bin/macs-bridge\"\n\
             args = [\"mcp\", \"--as\", \"worker\", \"--state-dir\", \"/home/me/team state\"]\n\
             tool_timeout_sec = 660\n"
        );
        assert_eq!(
            s.codex_overrides,
            [
                "-c",
                "mcp_servers.macs.command=\"/opt/macs/bin/macs-bridge\"",
                "-c",
                "mcp_servers.macs.args=[\"mcp\", \"--as\", \"worker\", \"--state-dir\", \"/home/me/team state\"]",
                "-c",
                "mcp_servers.macs.tool_timeout_sec=660",
            ]
        );
    }

    #[test]
    fn odd_characters_are_escaped_for_toml_and_json() {
        let s = snippets(
            Path::new("/x/\"quoted\"\\dir/macs-bridge"),
            "a\u{7f}b",
            Path::new("/tmp/tab\there"),
        );
        assert!(
            s.codex
                .contains("command = \"/x/\\\"quoted\\\"\\\\dir/macs-bridge\""),
            "{}",
            s.codex
        );
        assert!(s.codex.contains("\"a\\u007Fb\""), "{}", s.codex);
        assert!(s.codex.contains("\"/tmp/tab\\there\""), "{}", s.codex);
        assert!(!s.codex.contains('\u{7f}') && !s.codex.contains('\t'));
        let v: Value = serde_json::from_str(&s.claude_code).unwrap();
        assert_eq!(v["mcpServers"]["macs"]["args"][2], "a\u{7f}b");
    }

    #[test]
    fn render_names_where_each_goes() {
        let r = sample().render();
        assert!(r.contains("# Claude Code: .mcp.json"));
        assert!(r.contains("# Codex: ~/.codex/config.toml"));
        assert!(r.contains("# Gemini CLI: .gemini/settings.json"));
        assert!(r.contains("[mcp_servers.macs]"));
    }
}
