//! Wiring an agent to the bridge's MCP server (`macs-bridge mcp --as NAME --state-dir DIR`) as
//! it starts, through the agent CLI's own mechanism, never by changing the person's own
//! configuration files:
//!
//! | CLI | how | written |
//! |---|---|---|
//! | Claude Code (`claude`) | `--mcp-config=FILE` (the `=` form: the flag takes several files, and a following word must not be read as one); added to the person's own servers | `<state dir>/mcp/<name>/claude-mcp.json` |
//! | Codex (`codex`) | `-c mcp_servers.macs.command=…` `-c mcp_servers.macs.args=…` `-c mcp_servers.macs.tool_timeout_sec=…`: overrides for this run only | nothing |
//! | Gemini CLI (`gemini`) | `GEMINI_CLI_HOME=<state dir>/mcp/<name>/gemini-home`: a `.gemini/` whose `settings.json` is a copy of the person's with the server added, and whose other entries are links to the person's (`~/.gemini/…`: their login, trusted folders, history stay theirs) | that directory |
//!
//! Any other program gets no MCP configuration (its prompt only); `macs-bridge mcp
//! --print-config --as NAME` shows what to add by hand.
//!
//! Why not Gemini's settings files: a project's `.gemini/settings.json` is the project's and
//! is shared by every Gemini in it (each agent needs its own name), and Gemini 0.61 reads the
//! system settings and defaults files (`GEMINI_CLI_SYSTEM_*_PATH`) only when they and every
//! directory above them are owned by root and writable by nobody else. Gemini expands `$VAR` in
//! its settings' strings, so a path holding `$` is refused for it; a person's `settings.json`
//! that is not plain JSON (comments) is refused too, naming the file, rather than dropped.
//!
//! [`plan`] is pure (the launch, the files and links, their text); [`apply`] puts them in
//! place: the directories under `<state dir>/mcp/` are made private (0700), a symbolic link
//! where a directory should be is refused, and each file (0600) is written aside and renamed
//! over the old one, so it is never half-written and a link there is replaced, never followed.

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
/// Gemini CLI's home in `mcp/<name>/` (it reads `.gemini/` in it).
pub const GEMINI_HOME: &str = "gemini-home";
/// The variable that gives Gemini CLI its home.
pub const GEMINI_HOME_VAR: &str = "GEMINI_CLI_HOME";
/// Gemini's directory in a home.
pub const GEMINI_DIR: &str = ".gemini";
/// Gemini's user settings in its directory.
pub const GEMINI_SETTINGS: &str = "settings.json";

/// An agent's launch, wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    /// What to run: the command with the MCP flags or variables added.
    pub launch: Launch,
    /// Which CLI it is, when it is one of the three.
    pub cli: Option<AgentCli>,
    /// The configuration file to write before it starts, and its text.
    pub file: Option<(PathBuf, String)>,
    /// Links to make next to the file: (link, what it points to).
    pub links: Vec<(PathBuf, PathBuf)>,
}

/// The person's own Gemini directory (`~/.gemini`), as far as wiring needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonGemini {
    /// The directory.
    pub dir: PathBuf,
    /// The text of its `settings.json`, when there is one.
    pub settings: Option<String>,
    /// Its other entries, by name.
    pub entries: Vec<String>,
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
            Some(AgentCli::Gemini) => {
                let home = self
                    .launch
                    .env
                    .iter()
                    .find(|(k, _)| k == GEMINI_HOME_VAR)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                format!("{GEMINI_HOME_VAR}={home} (settings.json: yours with the server added; the rest linked to yours)")
            }
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

/// Wires `launch` (agent `name`) to `exe mcp --as NAME --state-dir STATE_DIR`. `gemini` is the
/// person's own Gemini directory, when there is one. Errors are messages for the person.
pub fn plan(
    launch: &Launch,
    name: &str,
    exe: &Path,
    state_dir: &Path,
    gemini: Option<&PersonGemini>,
) -> Result<Wired, String> {
    let cli = cli_of(launch);
    let snippets = mcp::snippets(exe, name, state_dir);
    let mut launch = launch.clone();
    let dir = agent_dir(state_dir, name);
    let mut links = Vec::new();
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
            let home = dir.join(GEMINI_HOME);
            let inner = home.join(GEMINI_DIR);
            let ours: Value = serde_json::from_str(&snippets.gemini)
                .map_err(|e| format!("{name}: the Gemini settings do not parse: {e}"))?;
            let theirs =
                gemini.and_then(|g| Some((g.dir.join(GEMINI_SETTINGS), g.settings.as_deref()?)));
            let text = gemini_settings(ours, theirs.as_ref().map(|(p, t)| (p.as_path(), *t)))?;
            if let Some(g) = gemini {
                links = g
                    .entries
                    .iter()
                    .filter(|e| e.as_str() != GEMINI_SETTINGS)
                    .map(|e| (inner.join(e), g.dir.join(e)))
                    .collect();
            }
            launch
                .env
                .push((GEMINI_HOME_VAR.into(), home.display().to_string()));
            Some((inner.join(GEMINI_SETTINGS), text))
        }
    };
    Ok(Wired {
        launch,
        cli,
        file,
        links,
    })
}

/// Gemini's `settings.json`: the person's (when there is one) with our `mcpServers` entry
/// added, else ours alone.
fn gemini_settings(ours: Value, existing: Option<(&Path, &str)>) -> Result<String, String> {
    let mut merged = match existing {
        None => Map::new(),
        Some((path, text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                return Err(format!(
                    "{} is not a plain JSON object (comments?), so macs-bridge cannot start Gemini CLI with a copy of it that adds its MCP server; remove the comments, or start gemini under another command name to leave it unwired",
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

/// The person's Gemini directory: `$GEMINI_CLI_HOME/.gemini` when set (and not one of ours),
/// else `$HOME/.gemini`; `None` when it does not exist. Reads its `settings.json` and lists
/// its entries.
pub fn person_gemini(
    env: &dyn Fn(&str) -> Option<String>,
    state_dir: &Path,
) -> Result<Option<PersonGemini>, String> {
    let home = env(GEMINI_HOME_VAR)
        .filter(|v| !v.is_empty() && !Path::new(v).starts_with(state_dir.join(MCP_DIR)))
        .or_else(|| env("HOME").filter(|v| !v.is_empty()));
    let Some(home) = home else { return Ok(None) };
    let dir = Path::new(&home).join(GEMINI_DIR);
    if !dir.is_dir() {
        return Ok(None);
    }
    let read = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut entries = Vec::new();
    for entry in fs::read_dir(&dir).map_err(read)? {
        if let Some(n) = entry.map_err(read)?.file_name().to_str() {
            entries.push(n.to_string());
        }
    }
    entries.sort();
    let settings_path = dir.join(GEMINI_SETTINGS);
    let settings = match fs::read_to_string(&settings_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", settings_path.display())),
    };
    Ok(Some(PersonGemini {
        dir,
        settings,
        entries,
    }))
}

/// Writes a wired agent's file and makes its links (see [`write_file`]); links to entries the
/// person no longer has are removed. Only links are ever removed.
pub fn apply(state_dir: &Path, wired: &Wired) -> Result<(), String> {
    let Some((path, text)) = &wired.file else {
        return Ok(());
    };
    write_file(state_dir, path, text)?;
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let wanted: Vec<&Path> = wired.links.iter().map(|(l, _)| l.as_path()).collect();
    let listing = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in listing.flatten() {
        let p = entry.path();
        let is_link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !wanted.contains(&p.as_path()) {
            let _ = fs::remove_file(&p);
        }
    }
    for (link, target) in &wired.links {
        match fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => {
                if fs::read_link(link).ok().as_deref() == Some(target.as_path()) {
                    continue;
                }
                fs::remove_file(link)
                    .map_err(|e| format!("cannot replace {}: {e}", link.display()))?;
            }
            // Something of Gemini's own (written while it ran): left alone.
            Ok(_) => continue,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(target, link).map_err(|e| {
            format!(
                "cannot link {} to {}: {e}",
                link.display(),
                target.display()
            )
        })?;
    }
    Ok(())
}

/// Writes `text` to `path` (under `<state dir>/mcp/`), privately, never through a link.
pub fn write_file(state_dir: &Path, path: &Path, text: &str) -> Result<(), String> {
    let root = state_dir.join(MCP_DIR);
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no directory", path.display()))?;
    let below = dir
        .strip_prefix(&root)
        .map_err(|_| format!("{} is not under {}", path.display(), root.display()))?;
    private_dir(&root)?;
    let mut at = root.clone();
    for part in below.components() {
        at.push(part);
        private_dir(&at)?;
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
    fn gemini_gets_a_home_with_the_persons_settings_plus_the_server() {
        let w = plan_of("gemini -m flash", "g");
        assert_eq!(w.cli, Some(AgentCli::Gemini));
        let home = "/home/me/team/mcp/g/gemini-home";
        assert!(w
            .launch
            .env
            .contains(&(GEMINI_HOME_VAR.to_string(), home.to_string())));
        assert!(w
            .launch
            .env
            .contains(&("GEMINI_CLI_NO_RELAUNCH".to_string(), "true".to_string())));
        assert_eq!(w.launch.argv, ["gemini", "-m", "flash"]);
        assert!(w.describe().contains(home));
        let (path, text) = w.file.unwrap();
        assert_eq!(path, PathBuf::from(format!("{home}/.gemini/settings.json")));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["mcpServers"]["macs"]["args"][2], "g");
        assert!(w.links.is_empty());

        let person = PersonGemini {
            dir: PathBuf::from("/home/me/.gemini"),
            settings: Some(
                r#"{"ui": {"theme": "x"}, "mcpServers": {"corp": {"command": "corp-mcp"}}}"#.into(),
            ),
            entries: vec![
                "oauth_creds.json".into(),
                "settings.json".into(),
                "tmp".into(),
            ],
        };
        let w = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            Path::new(STATE),
            Some(&person),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&w.file.unwrap().1).unwrap();
        assert_eq!(v["ui"]["theme"], "x");
        assert_eq!(v["mcpServers"]["corp"]["command"], "corp-mcp");
        assert_eq!(v["mcpServers"]["macs"]["command"], EXE);
        assert_eq!(
            w.links,
            [
                (
                    PathBuf::from(format!("{home}/.gemini/oauth_creds.json")),
                    PathBuf::from("/home/me/.gemini/oauth_creds.json")
                ),
                (
                    PathBuf::from(format!("{home}/.gemini/tmp")),
                    PathBuf::from("/home/me/.gemini/tmp")
                ),
            ]
        );

        let commented = PersonGemini {
            settings: Some("// mine\n{}".into()),
            ..person
        };
        let e = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            Path::new(STATE),
            Some(&commented),
        )
        .unwrap_err();
        assert!(
            e.contains("/home/me/.gemini/settings.json") && e.contains("not a plain JSON object"),
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
    fn the_persons_gemini_dir_is_read_and_linked_never_written() {
        let state = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let theirs = home.path().join(GEMINI_DIR);
        fs::create_dir(&theirs).unwrap();
        fs::write(theirs.join("settings.json"), "{\"ui\": {}}").unwrap();
        fs::write(theirs.join("oauth_creds.json"), "secret").unwrap();
        fs::create_dir(theirs.join("tmp")).unwrap();
        let h = home.path().display().to_string();
        let env = move |k: &str| (k == "HOME").then(|| h.clone());
        let person = person_gemini(&env, state.path()).unwrap().unwrap();
        assert_eq!(person.dir, theirs);
        assert_eq!(person.settings.as_deref(), Some("{\"ui\": {}}"));
        assert_eq!(person.entries, ["oauth_creds.json", "settings.json", "tmp"]);

        let w = plan(
            &launch("gemini"),
            "g",
            Path::new(EXE),
            state.path(),
            Some(&person),
        )
        .unwrap();
        apply(state.path(), &w).unwrap();
        apply(state.path(), &w).unwrap();
        let inner = agent_dir(state.path(), "g")
            .join(GEMINI_HOME)
            .join(GEMINI_DIR);
        assert_eq!(
            fs::read_to_string(inner.join("oauth_creds.json")).unwrap(),
            "secret"
        );
        assert_eq!(
            fs::read_link(inner.join("tmp")).unwrap(),
            theirs.join("tmp")
        );
        let ours: Value =
            serde_json::from_str(&fs::read_to_string(inner.join("settings.json")).unwrap())
                .unwrap();
        assert!(ours["mcpServers"]["macs"].is_object());
        // Theirs is untouched.
        assert_eq!(
            fs::read_to_string(theirs.join("settings.json")).unwrap(),
            "{\"ui\": {}}"
        );
        // An entry they no longer have loses its link; what Gemini wrote itself stays.
        fs::write(inner.join("projects.json"), "{}").unwrap();
        let fewer = Wired {
            links: w.links[..1].to_vec(),
            ..w.clone()
        };
        apply(state.path(), &fewer).unwrap();
        assert!(inner.join("oauth_creds.json").exists());
        assert!(fs::symlink_metadata(inner.join("tmp")).is_err());
        assert!(inner.join("projects.json").exists());

        // GEMINI_CLI_HOME beats HOME, but never one of ours; no directory: none.
        let ours_home = agent_dir(state.path(), "g").join(GEMINI_HOME);
        let o = ours_home.display().to_string();
        let h = home.path().display().to_string();
        let env = move |k: &str| match k {
            "GEMINI_CLI_HOME" => Some(o.clone()),
            "HOME" => Some(h.clone()),
            _ => None,
        };
        assert_eq!(
            person_gemini(&env, state.path()).unwrap().unwrap().dir,
            theirs
        );
        let env = |k: &str| (k == "HOME").then(|| "/nonexistent".to_string());
        assert_eq!(person_gemini(&env, state.path()).unwrap(), None);
    }
}
