//! The checked configuration: [`Config`] and its parts, as every part of the program uses
//! them. Every value in it was checked when it was loaded (regexes compiled, key names
//! canonical, numbers in range); [`Config::defaults`] is the weakest layer.
//!
//! Only types and the defaults: loading lives in [`super::layered`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::inject::InjectOptions;
use crate::tmux::command::KeyName;

use super::DEFAULT_HEURISTIC_PHRASES;

/// Who answers the worker's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Controller backends answer (a controller agent, a command, rules).
    Auto,
    /// A person answers through the mailbox files.
    #[default]
    Manual,
}

impl FromStr for Mode {
    type Err = String;
    /// `auto` or `manual`, in any case.
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Mode::Auto),
            "manual" => Ok(Mode::Manual),
            _ => Err(format!("expected `auto` or `manual`, got {s:?}")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        })
    }
}

/// How answers are typed into a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// `TARGET_PANE_TYPE_DELAY_MS`, default 400.
    pub type_delay_ms: u64,
    /// `TARGET_PANE_SUBMIT_KEYS`, default `Enter,C-m`: never empty, each one accepted by
    /// [`KeyName::parse`] and spelled the canonical way (`enter` becomes `Enter`).
    pub submit_keys: Vec<String>,
    /// `TARGET_PANE_GUARD_BUSY`, default true.
    pub guard_busy: bool,
    /// Default 2000.
    pub confirm_timeout_ms: u64,
}

impl Injection {
    /// The submit keys as [`KeyName`]s (every one parses: they were checked at load time).
    pub fn submit_key_names(&self) -> Vec<KeyName> {
        self.submit_keys
            .iter()
            .filter_map(|k| KeyName::parse(k).ok())
            .collect()
    }

    /// The keystroke writer's options for these settings.
    pub fn inject_options(&self) -> InjectOptions {
        InjectOptions {
            type_delay: Duration::from_millis(self.type_delay_ms),
            submit_keys: self.submit_key_names(),
            guard_busy: self.guard_busy,
            confirm_timeout: Duration::from_millis(self.confirm_timeout_ms),
            ..InjectOptions::default()
        }
    }
}

/// Size limits on what panes and people send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// An unterminated block is capped at this many bytes, default 65536.
    pub block_bytes: usize,
    /// … or this many lines, default 500.
    pub block_lines: usize,
    /// The largest response file read, default 65536.
    pub response_bytes: u64,
}

/// The loop guards: how far automatic answers and agents talking to agents may go before the
/// person is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guards {
    /// Heuristic requests of one worker answered automatically in a row (no request block
    /// between) before the next goes to the person, default 3.
    pub heuristic_streak: u32,
    /// Times the same request text is answered automatically before it goes to the person,
    /// default 2.
    pub same_request: u32,
    /// Messages from agent to agent to agent… beyond this many hops from the person are held,
    /// default 4.
    pub max_hops: u32,
    /// Messages one agent may send within `rate_window_secs` before the next are held,
    /// default 10 in 60 s.
    pub max_rate: u32,
    pub rate_window_secs: u64,
}

impl Default for Guards {
    fn default() -> Guards {
        Guards {
            heuristic_streak: 3,
            same_request: 2,
            max_hops: 4,
            max_rate: 10,
            rate_window_secs: 60,
        }
    }
}

/// Agent profiles beyond the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileSettings {
    /// Profile files or directories (resolved against the config file's directory; each one
    /// existed when the config was loaded).
    pub files: Vec<PathBuf>,
    /// Pane (id, target or label) -> profile name.
    pub panes: BTreeMap<String, String>,
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `MACS_SESSION`, default `macs`.
    pub session: String,
    /// Default manual.
    pub mode: Mode,
    pub dry_run: bool,
    /// Default true.
    pub heuristic: bool,
    /// Default [`DEFAULT_HEURISTIC_PHRASES`].
    pub heuristic_phrases: Vec<String>,
    /// Default: the caller's hint (the current directory).
    pub state_dir: PathBuf,
    /// The worker pane: `TARGET_PANE_LABEL`, default `worker`.
    pub worker: String,
    /// The controller pane, default `controller`.
    pub controller: String,
    /// `TMUX_SOCKET`: a socket path, or a name when it holds no `/`. None: tmux's default.
    pub socket: Option<String>,
    pub injection: Injection,
    /// `TARGET_PANE_LINES`, default 200.
    pub lines: usize,
    /// `TARGET_PANE_BUSY_LINES`, default 40.
    pub busy_lines: usize,
    pub limits: Limits,
    pub guards: Guards,
    pub profiles: ProfileSettings,
    /// Controller backends in order, from [`super::CONTROLLER_BACKENDS`]; empty: the mode's default.
    pub controller_backends: Vec<String>,
    /// The `exec` backend's command (shell words); empty: none.
    pub controller_cmd: String,
    /// How long the pane and exec backends may take to answer one request.
    pub controller_timeout_secs: u64,
    /// The `rules` backend: the first rule whose regex matches answers.
    pub rules: Vec<Rule>,
    /// Chat agents from the file (labelled panes join on their own).
    pub agents: Vec<AgentConfig>,
    /// Chat routes: sender -> names it may send to (`all`); empty: everyone to everyone.
    pub routes: BTreeMap<String, Vec<String>>,
    /// The config file these settings came from, if any.
    pub source: Option<PathBuf>,
}

/// A chat agent named in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    /// Its pane: id, tmux target or label (default: the name, as a label).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
}

/// A rule of the `rules` backend.
#[derive(Debug, Clone)]
pub struct Rule {
    pub regex: regex::Regex,
    pub reply: String,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.regex.as_str() == other.regex.as_str() && self.reply == other.reply
    }
}

impl Eq for Rule {}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key this version does not know (a typo, or a key of another version).
    #[error("{}: unknown key `{key}` ({detail})", path.display())]
    UnknownKey {
        path: PathBuf,
        /// The key path, such as `injection.submit_key`.
        key: String,
        /// What serde said: the keys expected there, and where.
        detail: String,
    },
    /// Not YAML, or a value of the wrong type (the message names the field and the line).
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    /// A value of the right type that is not allowed.
    #[error("{origin}: {field}: {message}")]
    Invalid {
        origin: Origin,
        /// The setting, as spelled in the config file (`injection.submit_keys[1]`).
        field: String,
        message: String,
    },
}

impl Config {
    /// The defaults, with `state_dir` as the state dir.
    pub fn defaults(state_dir: &Path) -> Config {
        Config {
            session: "macs".into(),
            mode: Mode::Manual,
            dry_run: false,
            heuristic: true,
            heuristic_phrases: DEFAULT_HEURISTIC_PHRASES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            state_dir: state_dir.to_owned(),
            worker: "worker".into(),
            controller: "controller".into(),
            socket: None,
            injection: Injection {
                type_delay_ms: 400,
                submit_keys: vec!["Enter".into(), "C-m".into()],
                guard_busy: true,
                confirm_timeout_ms: 2000,
            },
            lines: 200,
            busy_lines: 40,
            limits: Limits {
                block_bytes: 65536,
                block_lines: 500,
                response_bytes: 65536,
            },
            guards: Guards::default(),
            profiles: ProfileSettings::default(),
            controller_backends: Vec::new(),
            controller_cmd: String::new(),
            controller_timeout_secs: 300,
            rules: Vec::new(),
            agents: Vec::new(),
            routes: BTreeMap::new(),
            source: None,
        }
    }
}
