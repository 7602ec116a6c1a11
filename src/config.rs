//! The configuration: `macs.yaml`, environment variables and command-line flags, merged into
//! one checked [`Config`].
//!
//! Loading is two-staged, like the agent profiles: [`RawConfig`] is the YAML shape (serde, every
//! field optional, unknown keys refused at every level), then each value is checked and put into
//! [`Config`]. Every error names the setting and where the bad value came from: the file, the
//! environment variable or the flag ([`Origin`]).
//!
//! Precedence, strongest first: flags ([`Overrides`], filled by the caller from its command
//! line), environment variables, the config file, the defaults. The file is `--config FILE`, else
//! `macs.yaml` in the state dir (the `--state-dir` flag, else the caller's hint) when it exists.
//! Relative paths in the file are relative to the file's directory; those from flags are left as
//! given (relative to the working directory).
//!
//! Environment variables read (an empty value counts as unset): `MACS_SESSION` (session),
//! `TARGET_PANE_LABEL` (worker), `TMUX_SOCKET` (socket), `TARGET_PANE_TYPE_DELAY_MS`,
//! `TARGET_PANE_SUBMIT_KEYS` (comma-separated), `TARGET_PANE_GUARD_BUSY` (1/0, true/false,
//! yes/no, on/off), `TARGET_PANE_LINES`, `TARGET_PANE_BUSY_LINES`.
//!
//! [`EXAMPLE`] is a commented config file with every key at its default; a test loads it and
//! compares it with the defaults, so it cannot go stale.
//!
//! This module only reads and checks settings: it never touches tmux, the panes or the state
//! dir (except reading the config file and checking that profile files exist).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::inject::InjectOptions;
use crate::tmux::command::KeyName;

/// The config file looked for in the state dir.
pub const FILE_NAME: &str = "macs.yaml";

/// The phrases that make an idle worker's last words a request, by default.
pub const DEFAULT_HEURISTIC_PHRASES: &[&str] = &[
    "what would you like",
    "should i",
    "ready to proceed",
    "done",
    "complete",
    "finished",
];

/// The controller backends a config may name.
pub const CONTROLLER_BACKENDS: &[&str] = &["pane", "codex-interactive", "exec", "rules", "manual"];

/// Allowed ranges, inclusive.
const TYPE_DELAY_MS: (u64, u64) = (0, 10_000);
const CONFIRM_TIMEOUT_MS: (u64, u64) = (100, 60_000);
const CONTROLLER_TIMEOUT_SECS: (u64, u64) = (1, 86_400);
const LINES: (u64, u64) = (1, 100_000);
const BUSY_LINES: (u64, u64) = (1, 10_000);
const BLOCK_BYTES: (u64, u64) = (256, 16 * 1024 * 1024);
const BLOCK_LINES: (u64, u64) = (1, 100_000);
const RESPONSE_BYTES: (u64, u64) = (1, 16 * 1024 * 1024);

/// A commented `macs.yaml` with every key at its default value.
pub const EXAMPLE: &str = r#"# macs.yaml: the configuration of macs-bridge.
#
# It is read from the state directory when present, or from --config FILE.
# Every key is optional; the values below are the defaults. An unknown key is an error.
# Command-line flags beat environment variables, which beat this file.
# Relative paths are relative to the directory of this file.

# The tmux session to watch. Env: MACS_SESSION. Flag: --session.
session: macs

# manual: a person answers requests through files (inbox/, outbox/, archive/).
# auto: the controller backends below answer. Flag: --mode.
mode: manual

# Detect requests and log them, but never type into a pane. Flag: --dry-run.
dry_run: false

# Also take the worker going idle on one of these phrases as a request (not only
# <<CONTROLLER_REQUEST>> blocks). Flags: --heuristic, --no-heuristic.
heuristic: true
heuristic_phrases:
  - what would you like
  - should i
  - ready to proceed
  - done
  - complete
  - finished

# Where inbox/, outbox/ and archive/ live. Default: the directory given by --state-dir,
# else the current directory. Flag: --state-dir.
# state_dir: .

# The worker pane: a pane id (%3), a tmux target (macs:0.1) or a label (the @macs-agent
# option, else the pane title, else the window name). Env: TARGET_PANE_LABEL. Flag: --target.
worker: worker
# The controller agent's pane (for the `pane` controller backend).
controller: controller

# The tmux server: a socket path, or a socket name (as tmux -L) when it holds no `/`.
# Default: tmux's default server. Env: TMUX_SOCKET. Flags: --socket, -L.
# socket: /tmp/tmux-1000/default

injection:
  # Milliseconds between the text and the submit key (0-10000). Codex and Gemini turn an
  # Enter that follows the text too closely into a newline. Env: TARGET_PANE_TYPE_DELAY_MS.
  type_delay_ms: 400
  # tmux key names, tried in order until one is seen to submit.
  # Env: TARGET_PANE_SUBMIT_KEYS (comma-separated).
  submit_keys: [Enter, C-m]
  # Only type into a pane that is idle (true), or into any pane (false): 1/0 work too.
  # Env: TARGET_PANE_GUARD_BUSY.
  guard_busy: true
  # How long to watch each submit key take effect, in milliseconds (100-60000).
  confirm_timeout_ms: 2000

# Lines of a pane read for a snapshot (1-100000). Env: TARGET_PANE_LINES.
lines: 200
# Lines from the bottom the state classifier reads (1-10000). Env: TARGET_PANE_BUSY_LINES.
busy_lines: 40

limits:
  # An unterminated request block is cut off, and reported, at this many bytes (256-16777216)
  # or lines (1-100000).
  block_bytes: 65536
  block_lines: 500
  # The largest answer read from outbox/, in bytes (1-16777216).
  response_bytes: 65536

profiles:
  # Extra agent profile files, or directories of *.yaml files. A profile with the name of a
  # built-in one (codex, claude-code, gemini, aider, python, shell) replaces it.
  files: []
  #   - profiles/my-agent.yaml
  # Pin a profile to a pane: pane id, target or label -> profile name.
  panes: {}
  #   worker: codex

# Who answers in auto mode, tried in order: pane, codex-interactive, exec, rules, manual.
# Empty: the daemon's default (rules, when there are rules; then pane; then manual).
# Flag: --controller-backend (repeat it, or separate with commas).
controller_backends: []

# The `exec` backend's command, as shell words; it gets the prompt on standard input and
# answers on standard output. Flag: --controller-cmd.
controller_cmd: ""
#   e.g. codex exec --skip-git-repo-check -     (MACS_CODEX_ARGS words are added for codex)

# How long the pane and exec backends may take to answer one request before the next
# backend (in the end, the person) gets it, in seconds (1-86400). Flag: --controller-timeout.
controller_timeout_secs: 300

# The `rules` backend: the first rule whose regex matches the request text answers it.
rules: []
#   - match: '(?i)should I (continue|proceed)\?'
#     reply: Yes, continue.

# Group chat: agents by name. Panes with an @macs-agent label join too, under that label.
agents: []
#   - name: claude
#     target: macs:0.1          # pane id, tmux target or label
#     profile: claude-code      # optional: pin the profile
#     command: claude           # optional: what `up --layout chat` starts

# Who may send to whom (sender -> names, or `all`). Empty: everyone may talk to everyone.
# The person may always send.
routes: {}
#   claude: [codex]
#   codex: [all]
"#;

// ---------------------------------------------------------------------------------------------
// The checked configuration.

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
    pub profiles: ProfileSettings,
    /// Controller backends in order, from [`CONTROLLER_BACKENDS`]; empty: the mode's default.
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

/// Settings from the command line: each `Some` beats the environment and the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`: must exist.
    pub config: Option<PathBuf>,
    /// `--session`
    pub session: Option<String>,
    /// `--mode`
    pub mode: Option<Mode>,
    /// `--dry-run`
    pub dry_run: Option<bool>,
    /// `--heuristic` / `--no-heuristic`
    pub heuristic: Option<bool>,
    pub heuristic_phrases: Option<Vec<String>>,
    /// `--state-dir`: also where `macs.yaml` is looked for.
    pub state_dir: Option<PathBuf>,
    /// `--target`
    pub worker: Option<String>,
    pub controller: Option<String>,
    /// `--socket` (or `-L`)
    pub socket: Option<String>,
    pub type_delay_ms: Option<u64>,
    /// Key names, checked like the file's.
    pub submit_keys: Option<Vec<String>>,
    pub guard_busy: Option<bool>,
    pub confirm_timeout_ms: Option<u64>,
    pub lines: Option<u64>,
    pub busy_lines: Option<u64>,
    pub block_bytes: Option<u64>,
    pub block_lines: Option<u64>,
    pub response_bytes: Option<u64>,
    pub profile_files: Option<Vec<PathBuf>>,
    pub profile_panes: Option<BTreeMap<String, String>>,
    /// `--controller-backend`
    pub controller_backends: Option<Vec<String>>,
    pub controller_cmd: Option<String>,
    pub controller_timeout_secs: Option<u64>,
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

/// Reads a variable from the process environment (for [`Config::load`]); a value that is not
/// UTF-8 is passed on lossily, so that it is reported rather than ignored.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
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

    /// Loads the configuration: the defaults, then the config file (`overrides.config`, else
    /// `macs.yaml` in `overrides.state_dir` or `state_dir_hint` when present), then the
    /// environment (`env`, so tests need not touch the process's: pass [`process_env`]), then
    /// the flags. `state_dir_hint` is also the default state dir.
    pub fn load(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        state_dir_hint: &Path,
    ) -> Result<Config, ConfigError> {
        let mut cfg = Config::defaults(state_dir_hint);
        let file = match &overrides.config {
            Some(path) => Some(path.clone()),
            None => {
                let dir = overrides.state_dir.as_deref().unwrap_or(state_dir_hint);
                let candidate = dir.join(FILE_NAME);
                candidate.exists().then_some(candidate)
            }
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let raw = RawConfig::parse(&text, &path)?;
            cfg.apply_file(raw, &path)?;
            cfg.source = Some(path);
        }
        cfg.apply_env(env)?;
        cfg.apply_overrides(overrides)?;
        Ok(cfg)
    }

    fn apply_file(&mut self, raw: RawConfig, path: &Path) -> Result<(), ConfigError> {
        let o = Origin::File(path.to_owned());
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some(v) = raw.session {
            self.session = check_session(&o, "session", &v)?;
        }
        if let Some(v) = raw.mode {
            self.mode = v.parse().map_err(|m| invalid(&o, "mode", m))?;
        }
        if let Some(v) = raw.dry_run {
            self.dry_run = yaml_flag(&o, "dry_run", &v)?;
        }
        if let Some(v) = raw.heuristic {
            self.heuristic = yaml_flag(&o, "heuristic", &v)?;
        }
        if let Some(v) = raw.heuristic_phrases {
            self.heuristic_phrases = check_phrases(&o, "heuristic_phrases", &v)?;
        }
        if let Some(v) = raw.state_dir {
            self.state_dir = resolve(dir, &v);
        }
        if let Some(v) = raw.worker {
            self.worker = check_name(&o, "worker", &v)?;
        }
        if let Some(v) = raw.controller {
            self.controller = check_name(&o, "controller", &v)?;
        }
        if let Some(v) = raw.socket {
            self.socket = check_socket(&o, "socket", &v)?;
        }
        if let Some(inj) = raw.injection {
            if let Some(v) = inj.type_delay_ms {
                self.injection.type_delay_ms =
                    in_range(&o, "injection.type_delay_ms", v, TYPE_DELAY_MS)?;
            }
            if let Some(v) = inj.submit_keys {
                self.injection.submit_keys = check_keys(&o, "injection.submit_keys", &v)?;
            }
            if let Some(v) = inj.guard_busy {
                self.injection.guard_busy = yaml_flag(&o, "injection.guard_busy", &v)?;
            }
            if let Some(v) = inj.confirm_timeout_ms {
                self.injection.confirm_timeout_ms =
                    in_range(&o, "injection.confirm_timeout_ms", v, CONFIRM_TIMEOUT_MS)?;
            }
        }
        if let Some(v) = raw.lines {
            self.lines = in_range_usize(&o, "lines", v, LINES)?;
        }
        if let Some(v) = raw.busy_lines {
            self.busy_lines = in_range_usize(&o, "busy_lines", v, BUSY_LINES)?;
        }
        if let Some(l) = raw.limits {
            if let Some(v) = l.block_bytes {
                self.limits.block_bytes = in_range_usize(&o, "limits.block_bytes", v, BLOCK_BYTES)?;
            }
            if let Some(v) = l.block_lines {
                self.limits.block_lines = in_range_usize(&o, "limits.block_lines", v, BLOCK_LINES)?;
            }
            if let Some(v) = l.response_bytes {
                self.limits.response_bytes =
                    in_range(&o, "limits.response_bytes", v, RESPONSE_BYTES)?;
            }
        }
        if let Some(p) = raw.profiles {
            if let Some(files) = p.files {
                let files: Vec<PathBuf> = files.iter().map(|f| resolve(dir, f)).collect();
                self.profiles.files = check_files(&o, "profiles.files", files)?;
            }
            if let Some(panes) = p.panes {
                self.profiles.panes = check_panes(&o, "profiles.panes", panes)?;
            }
        }
        if let Some(v) = raw.controller_backends {
            self.controller_backends = check_backends(&o, "controller_backends", &v)?;
        }
        if let Some(v) = raw.controller_cmd {
            self.controller_cmd = check_cmd(&o, "controller_cmd", &v)?;
        }
        if let Some(v) = raw.controller_timeout_secs {
            self.controller_timeout_secs =
                in_range(&o, "controller_timeout_secs", v, CONTROLLER_TIMEOUT_SECS)?;
        }
        if let Some(rules) = raw.rules {
            let mut out = Vec::new();
            for (i, r) in rules.into_iter().enumerate() {
                let regex = regex::Regex::new(&r.r#match).map_err(|e| {
                    invalid(
                        &o,
                        &format!("rules[{i}].match"),
                        format!("invalid regex: {e}"),
                    )
                })?;
                if r.reply.trim().is_empty() {
                    return Err(invalid(&o, &format!("rules[{i}].reply"), "empty reply"));
                }
                out.push(Rule {
                    regex,
                    reply: r.reply,
                });
            }
            self.rules = out;
        }
        if let Some(agents) = raw.agents {
            let mut seen = std::collections::BTreeSet::new();
            for (i, a) in agents.iter().enumerate() {
                let field = format!("agents[{i}].name");
                let name = check_name(&o, &field, &a.name)?;
                if name.eq_ignore_ascii_case("all") || !seen.insert(name.clone()) {
                    return Err(invalid(
                        &o,
                        &field,
                        format!("{name:?} is taken (`all` is reserved; names are unique)"),
                    ));
                }
            }
            self.agents = agents;
        }
        if let Some(routes) = raw.routes {
            self.routes = routes;
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        const SESSION: &str = "MACS_SESSION";
        const LABEL: &str = "TARGET_PANE_LABEL";
        const SOCKET: &str = "TMUX_SOCKET";
        const DELAY: &str = "TARGET_PANE_TYPE_DELAY_MS";
        const KEYS: &str = "TARGET_PANE_SUBMIT_KEYS";
        const GUARD: &str = "TARGET_PANE_GUARD_BUSY";
        const LINES_VAR: &str = "TARGET_PANE_LINES";
        const BUSY: &str = "TARGET_PANE_BUSY_LINES";
        if let Some(v) = var(SESSION) {
            self.session = check_session(&Origin::Env(SESSION), "session", &v)?;
        }
        if let Some(v) = var(LABEL) {
            self.worker = check_name(&Origin::Env(LABEL), "worker", &v)?;
        }
        if let Some(v) = var(SOCKET) {
            self.socket = check_socket(&Origin::Env(SOCKET), "socket", &v)?;
        }
        if let Some(v) = var(DELAY) {
            let o = Origin::Env(DELAY);
            let n = parse_number(&o, "injection.type_delay_ms", &v, TYPE_DELAY_MS)?;
            self.injection.type_delay_ms = n;
        }
        if let Some(v) = var(KEYS) {
            let keys: Vec<String> = v.split(',').map(str::to_owned).collect();
            self.injection.submit_keys =
                check_keys(&Origin::Env(KEYS), "injection.submit_keys", &keys)?;
        }
        if let Some(v) = var(GUARD) {
            self.injection.guard_busy = text_flag(&Origin::Env(GUARD), "injection.guard_busy", &v)?;
        }
        if let Some(v) = var(LINES_VAR) {
            let n = parse_number(&Origin::Env(LINES_VAR), "lines", &v, LINES)?;
            self.lines = to_usize(&Origin::Env(LINES_VAR), "lines", n)?;
        }
        if let Some(v) = var(BUSY) {
            let n = parse_number(&Origin::Env(BUSY), "busy_lines", &v, BUSY_LINES)?;
            self.busy_lines = to_usize(&Origin::Env(BUSY), "busy_lines", n)?;
        }
        Ok(())
    }

    fn apply_overrides(&mut self, f: &Overrides) -> Result<(), ConfigError> {
        let flag = Origin::Flag;
        if let Some(v) = &f.session {
            self.session = check_session(&flag("--session"), "session", v)?;
        }
        if let Some(v) = f.mode {
            self.mode = v;
        }
        if let Some(v) = f.dry_run {
            self.dry_run = v;
        }
        if let Some(v) = f.heuristic {
            self.heuristic = v;
        }
        if let Some(v) = &f.heuristic_phrases {
            self.heuristic_phrases =
                check_phrases(&flag("--heuristic-phrase"), "heuristic_phrases", v)?;
        }
        if let Some(v) = &f.state_dir {
            self.state_dir = v.clone();
        }
        if let Some(v) = &f.worker {
            self.worker = check_name(&flag("--target"), "worker", v)?;
        }
        if let Some(v) = &f.controller {
            self.controller = check_name(&flag("--controller"), "controller", v)?;
        }
        if let Some(v) = &f.socket {
            self.socket = check_socket(&flag("--socket"), "socket", v)?;
        }
        if let Some(v) = f.type_delay_ms {
            self.injection.type_delay_ms = in_range(
                &flag("--type-delay-ms"),
                "injection.type_delay_ms",
                v,
                TYPE_DELAY_MS,
            )?;
        }
        if let Some(v) = &f.submit_keys {
            self.injection.submit_keys =
                check_keys(&flag("--submit-keys"), "injection.submit_keys", v)?;
        }
        if let Some(v) = f.guard_busy {
            self.injection.guard_busy = v;
        }
        if let Some(v) = f.confirm_timeout_ms {
            self.injection.confirm_timeout_ms = in_range(
                &flag("--confirm-timeout-ms"),
                "injection.confirm_timeout_ms",
                v,
                CONFIRM_TIMEOUT_MS,
            )?;
        }
        if let Some(v) = f.lines {
            self.lines = in_range_usize(&flag("--lines"), "lines", v, LINES)?;
        }
        if let Some(v) = f.busy_lines {
            self.busy_lines = in_range_usize(&flag("--busy-lines"), "busy_lines", v, BUSY_LINES)?;
        }
        if let Some(v) = f.block_bytes {
            self.limits.block_bytes =
                in_range_usize(&flag("--block-bytes"), "limits.block_bytes", v, BLOCK_BYTES)?;
        }
        if let Some(v) = f.block_lines {
            self.limits.block_lines =
                in_range_usize(&flag("--block-lines"), "limits.block_lines", v, BLOCK_LINES)?;
        }
        if let Some(v) = f.response_bytes {
            self.limits.response_bytes = in_range(
                &flag("--response-bytes"),
                "limits.response_bytes",
                v,
                RESPONSE_BYTES,
            )?;
        }
        if let Some(v) = &f.profile_files {
            self.profiles.files = check_files(&flag("--profile"), "profiles.files", v.clone())?;
        }
        if let Some(v) = &f.profile_panes {
            self.profiles.panes =
                check_panes(&flag("--profile-pane"), "profiles.panes", v.clone())?;
        }
        if let Some(v) = &f.controller_backends {
            self.controller_backends =
                check_backends(&flag("--controller-backend"), "controller_backends", v)?;
        }
        if let Some(v) = &f.controller_cmd {
            self.controller_cmd = check_cmd(&flag("--controller-cmd"), "controller_cmd", v)?;
        }
        if let Some(v) = f.controller_timeout_secs {
            self.controller_timeout_secs = in_range(
                &flag("--controller-timeout"),
                "controller_timeout_secs",
                v,
                CONTROLLER_TIMEOUT_SECS,
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the YAML shape.

/// `macs.yaml` as written: every field optional, unknown keys refused at every level.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    session: Option<String>,
    mode: Option<String>,
    /// A flag: true/false, 1/0, or a string such as "yes".
    dry_run: Option<serde_yaml::Value>,
    heuristic: Option<serde_yaml::Value>,
    heuristic_phrases: Option<Vec<String>>,
    state_dir: Option<PathBuf>,
    worker: Option<String>,
    controller: Option<String>,
    socket: Option<String>,
    injection: Option<RawInjection>,
    lines: Option<u64>,
    busy_lines: Option<u64>,
    limits: Option<RawLimits>,
    profiles: Option<RawProfiles>,
    controller_backends: Option<Vec<String>>,
    controller_cmd: Option<String>,
    controller_timeout_secs: Option<u64>,
    rules: Option<Vec<RawRule>>,
    agents: Option<Vec<AgentConfig>>,
    routes: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct RawRule {
    r#match: String,
    reply: String,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct RawInjection {
    type_delay_ms: Option<u64>,
    submit_keys: Option<Vec<String>>,
    guard_busy: Option<serde_yaml::Value>,
    confirm_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct RawLimits {
    block_bytes: Option<u64>,
    block_lines: Option<u64>,
    response_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    files: Option<Vec<PathBuf>>,
    panes: Option<BTreeMap<String, String>>,
}

impl RawConfig {
    /// Parses the text of a config file; `path` names it in errors. An empty file (or one of
    /// comments only) is an empty config.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match serde_yaml::from_str::<Option<RawConfig>>(text) {
            Ok(raw) => Ok(raw.unwrap_or_default()),
            Err(source) => Err(classify_parse_error(path, source)),
        }
    }
}

/// Turns serde's "unknown field" into [`ConfigError::UnknownKey`] with the full key path.
/// serde_yaml says `injection: unknown field `x`, expected …` (no prefix at the top level).
fn classify_parse_error(path: &Path, source: serde_yaml::Error) -> ConfigError {
    const MARK: &str = "unknown field `";
    let message = source.to_string();
    let Some(at) = message.find(MARK) else {
        return ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
    };
    let prefix = message[..at].trim_end_matches([' ', ':']);
    let after = &message[at + MARK.len()..];
    let Some(end) = after.find('`') else {
        return ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
    };
    let name = &after[..end];
    let key = if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    };
    let detail = after[end + 1..].trim_start_matches([',', ' ']).to_owned();
    ConfigError::UnknownKey {
        path: path.to_owned(),
        key,
        detail,
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: checks. Each names the origin and the field.

fn invalid(origin: &Origin, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.clone(),
        field: field.to_owned(),
        message: message.into(),
    }
}

fn in_range(o: &Origin, field: &str, v: u64, (min, max): (u64, u64)) -> Result<u64, ConfigError> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            o,
            field,
            format!("{v} is out of range: expected {min} to {max}"),
        ))
    }
}

fn to_usize(o: &Origin, field: &str, v: u64) -> Result<usize, ConfigError> {
    usize::try_from(v).map_err(|_| invalid(o, field, format!("{v} is too large")))
}

fn in_range_usize(
    o: &Origin,
    field: &str,
    v: u64,
    range: (u64, u64),
) -> Result<usize, ConfigError> {
    to_usize(o, field, in_range(o, field, v, range)?)
}

fn parse_number(o: &Origin, field: &str, s: &str, range: (u64, u64)) -> Result<u64, ConfigError> {
    let v = s.trim().parse::<u64>().map_err(|_| {
        invalid(
            o,
            field,
            format!(
                "expected a whole number from {} to {}, got {s:?}",
                range.0, range.1
            ),
        )
    })?;
    in_range(o, field, v, range)
}

/// 1/0, true/false, yes/no, on/off (any case).
fn text_flag(o: &Origin, field: &str, s: &str) -> Result<bool, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            o,
            field,
            format!("expected true or false (or 1 or 0), got {s:?}"),
        )),
    }
}

fn yaml_flag(o: &Origin, field: &str, v: &serde_yaml::Value) -> Result<bool, ConfigError> {
    use serde_yaml::Value;
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::String(s) => text_flag(o, field, s),
        other => {
            let shown = serde_json::to_string(other).unwrap_or_else(|_| "another type".into());
            Err(invalid(
                o,
                field,
                format!("expected true or false (or 1 or 0), got {shown}"),
            ))
        }
    }
}

fn check_session(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(o, field, "a session name cannot be empty"));
    }
    if v.contains([':', '.']) || v.chars().any(char::is_control) {
        return Err(invalid(
            o,
            field,
            format!("{v:?} is not a tmux session name (no `:`, `.` or control characters)"),
        ));
    }
    Ok(v.to_owned())
}

fn check_name(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(o, field, "a pane name cannot be empty"));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(o, field, format!("{v:?} holds control characters")));
    }
    Ok(v.to_owned())
}

fn check_socket(o: &Origin, field: &str, v: &str) -> Result<Option<String>, ConfigError> {
    let v = v.trim();
    if v.chars().any(char::is_control) {
        return Err(invalid(o, field, format!("{v:?} holds control characters")));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn check_phrases(o: &Origin, field: &str, v: &[String]) -> Result<Vec<String>, ConfigError> {
    v.iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.trim();
            if p.is_empty() {
                Err(invalid(
                    o,
                    &format!("{field}[{i}]"),
                    "a phrase cannot be empty",
                ))
            } else {
                Ok(p.to_owned())
            }
        })
        .collect()
}

/// Key names (blank ones skipped, as in `Enter,C-m,`); at least one.
fn check_keys(o: &Origin, field: &str, v: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut keys = Vec::new();
    for (i, k) in v.iter().enumerate() {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        let key =
            KeyName::parse(k).map_err(|e| invalid(o, &format!("{field}[{i}]"), e.to_string()))?;
        keys.push(key.to_string());
    }
    if keys.is_empty() {
        return Err(invalid(
            o,
            field,
            "at least one submit key is needed, e.g. Enter",
        ));
    }
    Ok(keys)
}

fn check_files(o: &Origin, field: &str, files: Vec<PathBuf>) -> Result<Vec<PathBuf>, ConfigError> {
    for (i, f) in files.iter().enumerate() {
        if !f.exists() {
            return Err(invalid(
                o,
                &format!("{field}[{i}]"),
                format!("{} does not exist", f.display()),
            ));
        }
    }
    Ok(files)
}

/// A profile name, as `profiles/*.yaml` spell them: `[A-Za-z0-9._-]+`.
fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_panes(
    o: &Origin,
    field: &str,
    panes: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (pane, profile) in panes {
        let pane = pane.trim().to_owned();
        if pane.is_empty() {
            return Err(invalid(o, field, "a pane name cannot be empty"));
        }
        let profile = profile.trim().to_owned();
        if !is_profile_name(&profile) {
            return Err(invalid(
                o,
                &format!("{field}.{pane}"),
                format!("{profile:?} is not a profile name (letters, digits, `.`, `_`, `-`)"),
            ));
        }
        out.insert(pane, profile);
    }
    Ok(out)
}

/// The exec command must split into shell words.
fn check_cmd(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    shell_words::split(v)
        .map(|_| v.trim().to_owned())
        .map_err(|e| invalid(o, field, format!("not valid shell words: {e}")))
}

fn check_backends(o: &Origin, field: &str, v: &[String]) -> Result<Vec<String>, ConfigError> {
    v.iter()
        .enumerate()
        .map(|(i, b)| {
            let b = b.trim();
            if CONTROLLER_BACKENDS.contains(&b) {
                Ok(b.to_owned())
            } else {
                Err(invalid(
                    o,
                    &format!("{field}[{i}]"),
                    format!(
                        "unknown controller backend {b:?} (expected one of: {})",
                        CONTROLLER_BACKENDS.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

/// `p` against `base` when relative, without `.` components.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    };
    let cleaned: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn dir_with_config(yaml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), yaml).unwrap();
        dir
    }

    fn key(s: &str) -> KeyName {
        KeyName::parse(s).unwrap()
    }

    #[test]
    fn defaults_without_file_env_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert_eq!(cfg, Config::defaults(dir.path()));
        assert_eq!(cfg.session, "macs");
        assert_eq!(cfg.mode, Mode::Manual);
        assert_eq!(cfg.injection.submit_keys, ["Enter", "C-m"]);
        assert_eq!(cfg.source, None);
    }

    #[test]
    fn precedence_flag_beats_env_beats_file_beats_default() {
        let dir = dir_with_config(
            "session: from-file\nworker: file-worker\nlines: 300\nbusy_lines: 50\n\
             injection:\n  type_delay_ms: 100\n  guard_busy: 0\n  submit_keys: [C-j]\n",
        );
        let full_env = env_of(&[
            ("MACS_SESSION", "from-env"),
            ("TARGET_PANE_LABEL", "env-worker"),
            ("TARGET_PANE_LINES", "400"),
            ("TARGET_PANE_TYPE_DELAY_MS", "200"),
            ("TARGET_PANE_GUARD_BUSY", "1"),
        ]);
        let flags = Overrides {
            session: Some("from-flag".into()),
            lines: Some(500),
            submit_keys: Some(vec!["Enter".into()]),
            ..Overrides::default()
        };

        // Defaults alone.
        let empty = tempfile::tempdir().unwrap();
        let d = Config::load(&Overrides::default(), &no_env, empty.path()).unwrap();
        assert_eq!(
            (d.session.as_str(), d.lines, d.busy_lines),
            ("macs", 200, 40)
        );

        // The file beats the defaults.
        let f = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert_eq!(f.session, "from-file");
        assert_eq!(f.worker, "file-worker");
        assert_eq!((f.lines, f.busy_lines), (300, 50));
        assert_eq!(f.injection.type_delay_ms, 100);
        assert!(!f.injection.guard_busy);
        assert_eq!(f.injection.submit_keys, ["C-j"]);
        assert_eq!(f.source, Some(dir.path().join(FILE_NAME)));

        // The environment beats the file; what it does not set stays the file's.
        let e = Config::load(&Overrides::default(), &full_env, dir.path()).unwrap();
        assert_eq!(e.session, "from-env");
        assert_eq!(e.worker, "env-worker");
        assert_eq!((e.lines, e.busy_lines), (400, 50));
        assert_eq!(e.injection.type_delay_ms, 200);
        assert!(e.injection.guard_busy);
        assert_eq!(e.injection.submit_keys, ["C-j"]);

        // Flags beat both.
        let g = Config::load(&flags, &full_env, dir.path()).unwrap();
        assert_eq!(g.session, "from-flag");
        assert_eq!(g.worker, "env-worker");
        assert_eq!(g.lines, 500);
        assert_eq!(g.injection.type_delay_ms, 200);
        assert_eq!(g.injection.submit_keys, ["Enter"]);
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let dir = dir_with_config("session: from-file\n");
        let env = env_of(&[("MACS_SESSION", ""), ("TARGET_PANE_LINES", "  ")]);
        let cfg = Config::load(&Overrides::default(), &env, dir.path()).unwrap();
        assert_eq!(cfg.session, "from-file");
        assert_eq!(cfg.lines, 200);
    }

    #[test]
    fn config_file_from_flag_and_state_dir_flag() {
        let elsewhere = dir_with_config("worker: from-elsewhere\n");
        let hint = dir_with_config("worker: from-hint\n");
        let explicit = Overrides {
            config: Some(elsewhere.path().join(FILE_NAME)),
            ..Overrides::default()
        };
        let cfg = Config::load(&explicit, &no_env, hint.path()).unwrap();
        assert_eq!(cfg.worker, "from-elsewhere");
        // Not the config file's dir: the state dir stays the hint unless the file says so.
        assert_eq!(cfg.state_dir, hint.path());

        let by_state_dir = Overrides {
            state_dir: Some(elsewhere.path().to_owned()),
            ..Overrides::default()
        };
        let cfg = Config::load(&by_state_dir, &no_env, hint.path()).unwrap();
        assert_eq!(cfg.worker, "from-elsewhere");
        assert_eq!(cfg.state_dir, elsewhere.path());

        let missing = Overrides {
            config: Some(hint.path().join("nope.yaml")),
            ..Overrides::default()
        };
        let err = Config::load(&missing, &no_env, hint.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("nope.yaml"), "{err}");
    }

    #[test]
    fn relative_paths_in_the_file_are_relative_to_it() {
        let dir = dir_with_config("state_dir: state\nprofiles:\n  files: [extra]\n");
        std::fs::create_dir(dir.path().join("extra")).unwrap();
        let opts = Overrides {
            config: Some(dir.path().join(FILE_NAME)),
            ..Overrides::default()
        };
        let cfg = Config::load(&opts, &no_env, Path::new(".")).unwrap();
        assert_eq!(cfg.state_dir, dir.path().join("state"));
        assert_eq!(cfg.profiles.files, vec![dir.path().join("extra")]);
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        for (yaml, want) in [
            ("sesion: x\n", "sesion"),
            (
                "injection:\n  submit_key: [Enter]\n",
                "injection.submit_key",
            ),
            ("limits:\n  block_byte: 10\n", "limits.block_byte"),
            ("profiles:\n  file: []\n", "profiles.file"),
        ] {
            let dir = dir_with_config(yaml);
            let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
            match &err {
                ConfigError::UnknownKey { path, key, .. } => {
                    assert_eq!(key, want);
                    assert_eq!(path, &dir.path().join(FILE_NAME));
                }
                other => panic!("{yaml:?}: expected UnknownKey, got {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(want), "{text}");
            assert!(text.contains(FILE_NAME), "{text}");
        }
    }

    #[test]
    fn bad_values_name_the_field_and_the_file() {
        for (yaml, field) in [
            ("lines: abc\n", "lines"),
            ("lines: 0\n", "lines"),
            ("busy_lines: -1\n", "busy_lines"),
            ("mode: automatic\n", "mode"),
            ("injection:\n  guard_busy: maybe\n", "injection.guard_busy"),
            ("injection:\n  guard_busy: 2\n", "injection.guard_busy"),
            (
                "injection:\n  type_delay_ms: 99999\n",
                "injection.type_delay_ms",
            ),
            ("injection:\n  submit_keys: []\n", "injection.submit_keys"),
            ("session: 'a:b'\n", "session"),
            ("controller_backends: [pain]\n", "controller_backends[0]"),
            ("profiles:\n  files: [missing.yaml]\n", "profiles.files[0]"),
            (
                "profiles:\n  panes: {worker: 'co dex'}\n",
                "profiles.panes.worker",
            ),
            ("heuristic_phrases: ['ok', '  ']\n", "heuristic_phrases[1]"),
        ] {
            let dir = dir_with_config(yaml);
            let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(field), "{yaml:?}: {text}");
            assert!(text.contains(FILE_NAME), "{yaml:?}: {text}");
        }
    }

    #[test]
    fn bad_key_names_are_refused_wherever_they_come_from() {
        let dir = dir_with_config("injection:\n  submit_keys: [Enter, Entr]\n");
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("injection.submit_keys[1]") && text.contains("Entr"),
            "{text}"
        );

        let empty = tempfile::tempdir().unwrap();
        let env = env_of(&[("TARGET_PANE_SUBMIT_KEYS", "Enter,Return")]);
        let err = Config::load(&Overrides::default(), &env, empty.path()).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::Invalid {
                    origin: Origin::Env("TARGET_PANE_SUBMIT_KEYS"),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("Return"), "{err}");

        let flags = Overrides {
            submit_keys: Some(vec!["C-M-S-X-Enter".into()]),
            ..Overrides::default()
        };
        let err = Config::load(&flags, &no_env, empty.path()).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::Invalid {
                    origin: Origin::Flag("--submit-keys"),
                    ..
                }
            ),
            "{err}"
        );

        // A trailing comma is fine; the keys are canonical.
        let env = env_of(&[("TARGET_PANE_SUBMIT_KEYS", "enter, c-m,")]);
        let cfg = Config::load(&Overrides::default(), &env, empty.path()).unwrap();
        assert_eq!(cfg.injection.submit_keys, ["Enter", "C-m"]);
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let empty = tempfile::tempdir().unwrap();
        for (var, value) in [
            ("TARGET_PANE_LINES", "many"),
            ("TARGET_PANE_BUSY_LINES", "0"),
            ("TARGET_PANE_TYPE_DELAY_MS", "-5"),
            ("TARGET_PANE_GUARD_BUSY", "2"),
            ("MACS_SESSION", "a.b"),
        ] {
            let env = env_of(&[(var, value)]);
            let err = Config::load(&Overrides::default(), &env, empty.path()).unwrap_err();
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
    }

    #[test]
    fn flags_spelled_every_way() {
        let dir = dir_with_config(
            "dry_run: 'yes'\nheuristic: 0\ninjection:\n  guard_busy: false\nmode: AUTO\n",
        );
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert!(cfg.dry_run);
        assert!(!cfg.heuristic);
        assert!(!cfg.injection.guard_busy);
        assert_eq!(cfg.mode, Mode::Auto);
        let env = env_of(&[("TARGET_PANE_GUARD_BUSY", "true")]);
        let cfg = Config::load(&Overrides::default(), &env, dir.path()).unwrap();
        assert!(cfg.injection.guard_busy);
    }

    #[test]
    fn empty_file_and_bom_are_fine() {
        let dir = dir_with_config("# nothing here\n");
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert_eq!(
            Config {
                source: None,
                ..cfg
            },
            Config::defaults(dir.path())
        );
        let dir = dir_with_config("\u{feff}session: bom\r\nlines: 12\r\n");
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert_eq!((cfg.session.as_str(), cfg.lines), ("bom", 12));
        let dir = dir_with_config("- just\n- a list\n");
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn rules_and_the_exec_command_are_checked() {
        let dir = dir_with_config(
            "rules:\n  - match: '(?i)should i continue'\n    reply: Yes.\ncontroller_cmd: \"my-bot --flag 'a b'\"\ncontroller_timeout_secs: 5\n",
        );
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        assert_eq!(cfg.rules.len(), 1);
        assert!(cfg.rules[0].regex.is_match("Should I continue?"));
        assert_eq!(cfg.rules[0].reply, "Yes.");
        assert_eq!(cfg.controller_cmd, "my-bot --flag 'a b'");
        assert_eq!(cfg.controller_timeout_secs, 5);
        for (text, names) in [
            ("rules:\n  - match: '('\n    reply: x\n", "rules[0].match"),
            ("rules:\n  - match: 'x'\n    reply: ' '\n", "rules[0].reply"),
            ("rules:\n  - match: 'x'\n    answer: y\n", "answer"),
            ("controller_cmd: \"a 'b\"\n", "controller_cmd"),
            ("controller_timeout_secs: 0\n", "controller_timeout_secs"),
        ] {
            let dir = dir_with_config(text);
            let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
            assert!(err.to_string().contains(names), "{text}: {err}");
            assert!(err.to_string().contains("macs.yaml"), "{text}: {err}");
        }
    }

    #[test]
    fn example_parses_to_the_defaults() {
        let dir = dir_with_config(EXAMPLE);
        let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
        let want = Config {
            source: Some(dir.path().join(FILE_NAME)),
            ..Config::defaults(dir.path())
        };
        assert_eq!(cfg, want);
    }

    /// Every key of [`RawConfig`] appears in [`EXAMPLE`] (as a key, or commented out when it
    /// has no value to show), so a new setting cannot be left out of the example.
    #[test]
    fn example_shows_every_key() {
        let full = RawConfig {
            session: Some(String::new()),
            mode: Some(String::new()),
            dry_run: Some(serde_yaml::Value::Null),
            heuristic: Some(serde_yaml::Value::Null),
            heuristic_phrases: Some(vec![]),
            state_dir: Some(PathBuf::new()),
            worker: Some(String::new()),
            controller: Some(String::new()),
            socket: Some(String::new()),
            injection: Some(RawInjection {
                type_delay_ms: Some(0),
                submit_keys: Some(vec![]),
                guard_busy: Some(serde_yaml::Value::Null),
                confirm_timeout_ms: Some(0),
            }),
            lines: Some(0),
            busy_lines: Some(0),
            limits: Some(RawLimits {
                block_bytes: Some(0),
                block_lines: Some(0),
                response_bytes: Some(0),
            }),
            profiles: Some(RawProfiles {
                files: Some(vec![]),
                panes: Some(BTreeMap::new()),
            }),
            controller_backends: Some(vec![]),
            controller_cmd: Some(String::new()),
            controller_timeout_secs: Some(0),
            rules: Some(vec![]),
            agents: Some(vec![]),
            routes: Some(BTreeMap::new()),
        };
        let full = serde_yaml::to_value(&full).unwrap();
        let example: serde_yaml::Value = serde_yaml::from_str(EXAMPLE).unwrap();

        fn walk(prefix: &str, full: &serde_yaml::Value, example: Option<&serde_yaml::Value>) {
            let serde_yaml::Value::Mapping(map) = full else {
                return;
            };
            for (k, v) in map {
                let k = k.as_str().unwrap();
                let path = if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                };
                let shown = example.and_then(|e| e.get(k));
                if shown.is_none() {
                    assert!(
                        EXAMPLE.contains(&format!("# {k}: ")),
                        "EXAMPLE does not show `{path}`"
                    );
                }
                walk(&path, v, shown);
            }
        }
        walk("", &full, Some(&example));
    }

    #[test]
    fn inject_options_follow_the_config() {
        let mut cfg = Config::defaults(Path::new("."));
        cfg.injection.type_delay_ms = 123;
        cfg.injection.guard_busy = false;
        let o = cfg.injection.inject_options();
        assert_eq!(o.type_delay, Duration::from_millis(123));
        assert_eq!(o.confirm_timeout, Duration::from_millis(2000));
        assert!(!o.guard_busy);
        assert_eq!(o.submit_keys, vec![key("Enter"), key("C-m")]);
    }
}
