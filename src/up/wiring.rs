//! Wiring an agent to the bridge's MCP server (`macs-bridge mcp --as NAME --state-dir DIR`) as
//! it starts, through the agent CLI's own mechanism, never through the person's own
//! configuration files:
//!
//! | CLI | how | file |
//! |---|---|---|
//! | Claude Code (`claude`) | `--mcp-config=FILE` (the `=` form: the flag takes several files, and a following word must not be read as one) | `<state dir>/mcp/<name>/claude-mcp.json` |
//! | Codex (`codex`) | `-c mcp_servers.macs.command=…` `-c mcp_servers.macs.args=…` `-c mcp_servers.macs.tool_timeout_sec=…` (overrides for this run only) | none |
//! | Gemini CLI (`gemini`) | `GEMINI_CLI_SYSTEM_DEFAULTS_PATH=FILE`: the weakest of its settings layers, so the person's own settings still win, and its `mcpServers` are merged with theirs | `<state dir>/mcp/<name>/gemini-system-defaults.json` |
//!
//! Any other program gets no MCP configuration (its prompt only); `macs-bridge mcp
//! --print-config --as NAME` shows what to add by hand.
//!
//! Gemini reads one system-defaults file: when the machine has one (at the path
//! `GEMINI_CLI_SYSTEM_DEFAULTS_PATH` names in `up`'s environment, else
//! `/etc/gemini-cli/system-defaults.json`), the written file is a copy of it with the `macs`
//! server added, so nothing of it is lost. Gemini expands `$VAR` in its settings' strings, so a
//! path holding `$` is refused for it.
//!
//! [`plan`] is pure (the launch, the file and its text); [`write_file`] puts a file in place:
//! the `mcp/` directories are made private (0700), a symbolic link where one should be is
//! refused, and the file (0600) is written aside and renamed over the old one, so it is never
//! half-written and a link there is replaced, never followed.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::mcp::{self, AgentCli};

use super::agent::Launch;

/// The directory under the state dir that holds the agents' MCP configuration files.
pub const MCP_DIR: &str = "mcp";
/// Claude Code's file in `mcp/<name>/`.
pub const CLAUDE_FILE: &str = "claude-mcp.json";
/// Gemini CLI's file in `mcp/<name>/`.
pub const GEMINI_FILE: &str = "gemini-system-defaults.json";
/// The variable that points Gemini CLI at its system-defaults settings file.
pub const GEMINI_DEFAULTS_VAR: &str = "GEMINI_CLI_SYSTEM_DEFAULTS_PATH";
/// Where Gemini CLI looks for system defaults when the variable is unset (Linux).
pub const GEMINI_DEFAULTS_FILE: &str = "/etc/gemini-cli/system-defaults.json";

/// An agent's launch, wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    /// What to run: the command with the MCP flags or variables added.
    pub launch: Launch,
    /// Which CLI it is, when it is one of the three.
    pub cli: Option<AgentCli>,
    /// The configuration file to write before it starts, and its text.
    pub file: Option<(PathBuf, String)>,
}

impl Wired {
    /// Where the configuration went, in a few words for the summary.
    pub fn describe(&self) -> String {
        let file = || {
            self.file
                .as_ref()
                .map(|(p, _)| p.display().to_string())
                .unwrap_or_default()
        };
        match self.cli {
            Some(AgentCli::ClaudeCode) => format!("claude --mcp-config={}", file()),
            Some(AgentCli::Codex) => "codex -c mcp_servers.macs.… (this run only)".into(),
            Some(AgentCli::Gemini) => format!("{GEMINI_DEFAULTS_VAR}={}", file()),
            None => "none (not Codex, Claude Code or Gemini CLI)".into(),
        }
    }
}

/// Which of the three CLIs a launch runs, by its program's file name.
pub fn cli_of(launch: &Launch) -> Option<AgentCli> {
    match launch.program() {
        "claude" => Some(AgentCli::ClaudeCode),
        "codex" => Some(AgentCli::Codex),
        "gemini" => Some(AgentCli::Gemini),
        _ => None,
    }
}

/// The configuration directory of agent `name`: `<state dir>/mcp/<name>`.
pub fn agent_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(MCP_DIR).join(name)
}

/// Wires `launch` (agent `name`) to `exe mcp --as NAME --state-dir STATE_DIR`. `gemini_defaults`
/// is the text of the machine's Gemini system-defaults file, when there is one, and where it
/// is (for messages). Errors are messages for the person.
pub fn plan(
    launch: &Launch,
    name: &str,
    exe: &Path,
    state_dir: &Path,
    gemini_defaults: Option<(&Path, &str)>,
) -> Result<Wired, String> {
    let cli = cli_of(launch);
    let snippets = mcp::snippets(exe, name, state_dir);
    let mut launch = launch.clone();
    let dir = agent_dir(state_dir, name);
    let file = match cli {
        None => None,
        Some(AgentCli::ClaudeCode) => {
            let path = dir.join(CLAUDE_FILE);
            launch
                .argv
                .insert(1, format!("--mcp-config={}", path.display()));
            Some((path, format!("{}\n", snippets.claude_code.trim_end())))
        }
        Some(AgentCli::Codex) => {
            // After `--no-daemon` (added for codex); the person's own words come later and win.
            let at = launch
                .argv
                .iter()
                .position(|a| a == "--no-daemon")
                .unwrap_or(0)
                + 1;
            for (i, word) in snippets.codex_overrides.iter().enumerate() {
                launch.argv.insert(at + i, word.clone());
            }
            None
        }
        Some(AgentCli::Gemini) => {
            for (what, p) in [("the state dir", state_dir), ("macs-bridge's path", exe)] {
                if p.to_string_lossy().contains('$') {
                    return Err(format!(
                        "{name}: {what} {} holds `$`, which Gemini CLI would expand in its settings; use a path without it",
                        p.display()
                    ));
                }
            }
            let path = dir.join(GEMINI_FILE);
            let ours: Value = serde_json::from_str(&snippets.gemini)
                .map_err(|e| format!("{name}: the Gemini settings do not parse: {e}"))?;
            let text = gemini_settings(ours, gemini_defaults)?;
            launch
                .env
                .push((GEMINI_DEFAULTS_VAR.into(), path.display().to_string()));
            Some((path, text))
        }
    };
    Ok(Wired { launch, cli, file })
}

/// Gemini's system-defaults file: the machine's one (when there is one) with our `mcpServers`
/// entry added, else ours alone.
fn gemini_settings(ours: Value, existing: Option<(&Path, &str)>) -> Result<String, String> {
    let mut merged = match existing {
        None => Map::new(),
        Some((path, text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                return Err(format!(
                    "Gemini CLI's system defaults {} are not a plain JSON object, so macs-bridge cannot add its MCP server to a copy of them; set {GEMINI_DEFAULTS_VAR} to a JSON file, or start gemini through another command",
                    path.display()
                ))
            }
        },
    };
    let servers = merged
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    if !servers.is_object() {
        *servers = Value::Object(Map::new());
    }
    if let (Some(into), Some(from)) = (
        servers.as_object_mut(),
        ours.get("mcpServers").and_then(Value::as_object),
    ) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
    let text = serde_json::to_string_pretty(&Value::Object(merged))
        .map_err(|e| format!("cannot write Gemini's settings: {e}"))?;
    Ok(format!("{text}\n"))
}

/// The machine's Gemini system-defaults file, when there is one: the path from `env` (the
/// variable [`GEMINI_DEFAULTS_VAR`]), else [`GEMINI_DEFAULTS_FILE`]. A file under our own
/// state dir (a variable left over from a pane `up` started) does not count.
pub fn gemini_defaults_path(
    env: &dyn Fn(&str) -> Option<String>,
    state_dir: &Path,
) -> Option<PathBuf> {
    let path = env(GEMINI_DEFAULTS_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(GEMINI_DEFAULTS_FILE));
    (!path.starts_with(state_dir.join(MCP_DIR)) && path.is_file()).then_some(path)
}

/// Writes `text` to `path` (under `<state dir>/mcp/`), privately, never through a link.
pub fn write_file(state_dir: &Path, path: &Path, text: &str) -> Result<(), String> {
    let root = state_dir.join(MCP_DIR);
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no directory", path.display()))?;
    private_dir(&root)?;
    if dir != root {
        private_dir(dir)?;
    }
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| format!("{}: no file name", path.display()))?;
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Makes `dir` a private directory (0700), or checks that it is a directory and makes it so;
/// a symbolic link there is refused.
fn private_dir(dir: &Path) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link; macs-bridge writes agents' settings only into a real directory: remove it",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => Err(format!("{} exists but is not a directory", dir.display())),
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
            }
            Ok(())
        }
        Err(_) => fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(line: &str) -> Launch {
        Launch::parse("--worker", line, &|_| None).unwrap()
    }

    const EXE: &str = "/opt/macs/bin/macs-bridge";
    const STATE: &str = "/home/me/team";

    fn plan_of(line: &str, name: &str) -> Wired {
        plan(&launch(line), name, Path::new(EXE), Path::new(STATE), None).unwrap()
    }

    #[test]
    fn claude_gets_its_file_with_the_equals_form() {
        let w = plan_of("claude 'fix the tests'", "agent1");
        assert_eq!(w.cli, Some(AgentCli::ClaudeCode));
        let file = "/home/me/team/mcp/agent1/claude-mcp.json";
        assert_eq!(
            w.launch.argv,
            ["claude", &format!("--mcp-config={file}"), "fix the tests"]
        );
        let (path, text) = w.file.clone().unwrap();
        assert_eq!(path, PathBuf::from(file));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["mcpServers"]["macs"]["command"], EXE);
        assert_eq!(
            v["mcpServers"]["macs"]["args"],
            serde_json::json!(["mcp", "--as", "agent1", "--state-dir", STATE])
        );
        assert!(w.describe().contains(file));
    }

    #[test]
    fn codex_gets_overrides_for_this_run_and_no_file() {
        let w = plan_of("/usr/bin/codex --model o3", "worker");
        assert_eq!(w.cli, Some(AgentCli::Codex));
        assert!(w.file.is_none());
        let argv = &w.launch.argv;
        assert_eq!(&argv[..2], ["/usr/bin/codex", "--no-daemon"]);
        assert_eq!(&argv[argv.len() - 2..], ["--model", "o3"]);
        let overrides: Vec<&String> = argv
            .iter()
            .skip_while(|a| *a != "-c")
            .step_by(2)
            .take_while(|a| *a == "-c")
            .collect();
        assert_eq!(overrides.len(), 3, "{argv:?}");
        assert!(argv.contains(&format!("mcp_servers.macs.command=\"{EXE}\"")));
        assert!(argv.contains(
            &"mcp_servers.macs.args=[\"mcp\", \"--as\", \"worker\", \"--state-dir\", \"/home/me/team\"]"
                .to_string()
        ));
    }

    #[test]
    fn gemini_gets_a_defaults_file_merged_with_the_machines() {
        let w = plan_of("gemini -m flash", "g");
        assert_eq!(w.cli, Some(AgentCli::Gemini));
        let file = "/home/me/team/mcp/g/gemini-system-defaults.json";
        assert!(w
            .launch
            .env
            .contains(&(GEMINI_DEFAULTS_VAR.to_string(), file.to_string())));
        assert!(w
            .launch
            .env
            .contains(&("GEMINI_CLI_NO_RELAUNCH".to_string(), "true".to_string())));
        assert_eq!(w.launch.argv, ["gemini", "-m", "flash"]);
        let v: Value = serde_json::from_str(&w.file.unwrap().1).unwrap();
        assert_eq!(v["mcpServers"]["macs"]["args"][2], "g");

        let existing = r#"{"ui": {"theme": "x"}, "mcpServers": {"corp": {"command": "corp-mcp"}}}"#;
        let w = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            Path::new(STATE),
            Some((Path::new("/etc/gemini-cli/system-defaults.json"), existing)),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&w.file.unwrap().1).unwrap();
        assert_eq!(v["ui"]["theme"], "x");
        assert_eq!(v["mcpServers"]["corp"]["command"], "corp-mcp");
        assert_eq!(v["mcpServers"]["macs"]["command"], EXE);

        let e = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            Path::new(STATE),
            Some((Path::new("/etc/x.json"), "// comment\n{}")),
        )
        .unwrap_err();
        assert!(
            e.contains("/etc/x.json") && e.contains("not a plain JSON object"),
            "{e}"
        );
        let e = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            Path::new("/home/$USER/team"),
            None,
        )
        .unwrap_err();
        assert!(e.contains("holds `$`"), "{e}");
    }

    #[test]
    fn other_programs_are_left_as_they_are() {
        for line in ["aider --yes", "npx codex", "macs-bridge sim-agent"] {
            let w = plan_of(line, "a");
            assert_eq!(w.cli, None, "{line}");
            assert_eq!(w.launch, launch(line));
            assert!(w.file.is_none());
        }
    }

    #[test]
    fn files_are_private_and_links_are_refused() {
        let state = tempfile::tempdir().unwrap();
        let path = agent_dir(state.path(), "a").join(CLAUDE_FILE);
        write_file(state.path(), &path, "{}\n").unwrap();
        write_file(state.path(), &path, "{\"x\": 1}\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"x\": 1}\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&state.path().join(MCP_DIR)), 0o700);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        // A link where the file goes is replaced, not followed.
        let elsewhere = state.path().join("elsewhere.json");
        fs::write(&elsewhere, "keep").unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        write_file(state.path(), &path, "{}\n").unwrap();
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep");
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());

        // A link where a directory goes is refused.
        let other = tempfile::tempdir().unwrap();
        let linked = agent_dir(state.path(), "b");
        std::os::unix::fs::symlink(other.path(), &linked).unwrap();
        let e = write_file(state.path(), &linked.join(CLAUDE_FILE), "{}").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_dir(other.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_machines_gemini_defaults_are_found_but_never_our_own() {
        let state = tempfile::tempdir().unwrap();
        let mine = state.path().join("corp.json");
        fs::write(&mine, "{}").unwrap();
        let env_to =
            |p: PathBuf| move |k: &str| (k == GEMINI_DEFAULTS_VAR).then(|| p.display().to_string());
        assert_eq!(
            gemini_defaults_path(&env_to(mine.clone()), state.path()),
            Some(mine)
        );
        let ours = agent_dir(state.path(), "g").join(GEMINI_FILE);
        write_file(state.path(), &ours, "{}").unwrap();
        assert_eq!(gemini_defaults_path(&env_to(ours), state.path()), None);
        let absent = state.path().join("absent.json");
        assert_eq!(gemini_defaults_path(&env_to(absent), state.path()), None);
    }
}
