//! The layers of the configuration, weakest first: the defaults, the config file, the
//! environment, the flags ([`Overrides`]); [`Config::load`] applies them in that order, each
//! value checked as it is applied, and every error names the setting and where it came from.
//!
//! The file is `--config FILE`, else `macs.yaml` in the state dir (the `--state-dir` flag,
//! else the caller's hint) when it exists. Relative paths in the file are relative to the
//! file's directory; those from flags are left as given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::*;
use super::raw::RawConfig;
use super::resolved::{AgentConfig, Config, ConfigError, Mode, Origin, Rule};
use super::FILE_NAME;

/// Allowed ranges, inclusive.
const TYPE_DELAY_MS: (u64, u64) = (0, 10_000);
const CONFIRM_TIMEOUT_MS: (u64, u64) = (100, 60_000);
const CONTROLLER_TIMEOUT_SECS: (u64, u64) = (1, 86_400);
const LINES: (u64, u64) = (1, 100_000);
const BUSY_LINES: (u64, u64) = (1, 10_000);
const BLOCK_BYTES: (u64, u64) = (256, 16 * 1024 * 1024);
const BLOCK_LINES: (u64, u64) = (1, 100_000);
const RESPONSE_BYTES: (u64, u64) = (1, 16 * 1024 * 1024);
const GUARD_COUNT: (u64, u64) = (1, 1000);
const RATE_WINDOW_SECS: (u64, u64) = (1, 86_400);

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

impl Config {
    /// Loads the configuration: the defaults, then the config file (`overrides.config`, else
    /// `macs.yaml` in `overrides.state_dir` or `state_dir_hint` when present), then the
    /// environment (`env`, so tests need not touch the process's: pass [`super::process_env`]), then
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
        if let Some(g) = raw.guards {
            let count = |name: &str, v: u64| -> Result<u32, ConfigError> {
                Ok(in_range(&o, name, v, GUARD_COUNT)? as u32)
            };
            if let Some(v) = g.heuristic_streak {
                self.guards.heuristic_streak = count("guards.heuristic_streak", v)?;
            }
            if let Some(v) = g.same_request {
                self.guards.same_request = count("guards.same_request", v)?;
            }
            if let Some(v) = g.max_hops {
                self.guards.max_hops = count("guards.max_hops", v)?;
            }
            if let Some(v) = g.max_rate {
                self.guards.max_rate = count("guards.max_rate", v)?;
            }
            if let Some(v) = g.rate_window_secs {
                self.guards.rate_window_secs =
                    in_range(&o, "guards.rate_window_secs", v, RATE_WINDOW_SECS)?;
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
            let mut out = Vec::with_capacity(agents.len());
            for (i, a) in agents.into_iter().enumerate() {
                let field = format!("agents[{i}].name");
                let name = check_agent_name(&o, &field, &a.name)?;
                if name.eq_ignore_ascii_case(crate::names::CHAT_LABEL)
                    || !seen.insert(name.to_ascii_lowercase())
                {
                    return Err(invalid(
                        &o,
                        &field,
                        format!(
                            "{name:?} is taken (`all` and `{}` are reserved; names are unique, whatever their case)",
                            crate::names::CHAT_LABEL
                        ),
                    ));
                }
                let target = match a.target {
                    Some(t) => Some(check_name(&o, &format!("agents[{i}].target"), &t)?),
                    None => None,
                };
                let profile = match a.profile {
                    Some(p) => Some(check_name(&o, &format!("agents[{i}].profile"), &p)?),
                    None => None,
                };
                let command = match a.command {
                    Some(c) => Some(check_agent_cmd(&o, &format!("agents[{i}].command"), &c)?),
                    None => None,
                };
                out.push(AgentConfig {
                    name,
                    target,
                    profile,
                    command,
                });
            }
            self.agents = out;
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
