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
    AgentConfig, Config, ConfigError, Guards, Injection, Limits, Mode, Origin, ProfileSettings,
    Rule,
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

/// A commented `macs.yaml` with every key at its default value: `examples/macs.yaml`.
pub const EXAMPLE: &str = include_str!("../../examples/macs.yaml");

/// Reads a variable from the process environment (for [`Config::load`]); a value that is not
/// UTF-8 is passed on lossily, so that it is reported rather than ignored.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}
