//! The configuration: `macs.yaml`, environment variables and command-line flags, merged into
//! one checked [`Config`]. One loader, [`Config::load`], serves every command.
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
//!
//! # Layout
//! - [`raw`]: the YAML shape (serde structs, unknown keys refused).
//! - [`layered`]: the layers, weakest first: defaults < file < environment < flags
//!   ([`Overrides`]), and [`Config::load`] that applies them.
//! - [`resolved`]: the checked [`Config`] (compiled regexes, canonical key names) and its
//!   parts, [`Origin`] and [`ConfigError`].
//! - `check`: the checks each value goes through, naming the setting and its origin.

mod check;
pub mod layered;
pub mod raw;
pub mod resolved;
#[cfg(test)]
mod tests;

pub use layered::Overrides;
pub use raw::RawConfig;
pub use resolved::{
    AgentConfig, Config, ConfigError, Injection, Limits, Mode, Origin, ProfileSettings, Rule,
};

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

/// Reads a variable from the process environment (for [`Config::load`]); a value that is not
/// UTF-8 is passed on lossily, so that it is reported rather than ignored.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}
