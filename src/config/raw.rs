//! Stage 1: `macs.yaml` as written. Every field optional, unknown keys refused at every level
//! (`deny_unknown_fields`); a key serde does not know becomes [`ConfigError::UnknownKey`] with
//! its full path. No value is checked here: that is [`super::layered`]'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::resolved::{AgentConfig, ConfigError};

/// `macs.yaml` as written: every field optional, unknown keys refused at every level.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub(super) session: Option<String>,
    pub(super) mode: Option<String>,
    /// A flag: true/false, 1/0, or a string such as "yes".
    pub(super) dry_run: Option<serde_yaml::Value>,
    pub(super) heuristic: Option<serde_yaml::Value>,
    pub(super) heuristic_phrases: Option<Vec<String>>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) worker: Option<String>,
    pub(super) controller: Option<String>,
    pub(super) socket: Option<String>,
    pub(super) injection: Option<RawInjection>,
    pub(super) lines: Option<u64>,
    pub(super) busy_lines: Option<u64>,
    pub(super) limits: Option<RawLimits>,
    pub(super) guards: Option<RawGuards>,
    pub(super) profiles: Option<RawProfiles>,
    pub(super) controller_backends: Option<Vec<String>>,
    pub(super) controller_cmd: Option<String>,
    pub(super) controller_timeout_secs: Option<u64>,
    pub(super) rules: Option<Vec<RawRule>>,
    pub(super) agents: Option<Vec<AgentConfig>>,
    pub(super) routes: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) r#match: String,
    pub(super) reply: String,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RawInjection {
    pub(super) type_delay_ms: Option<u64>,
    pub(super) submit_keys: Option<Vec<String>>,
    pub(super) guard_busy: Option<serde_yaml::Value>,
    pub(super) confirm_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) block_bytes: Option<u64>,
    pub(super) block_lines: Option<u64>,
    pub(super) response_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuards {
    pub(super) heuristic_streak: Option<u64>,
    pub(super) same_request: Option<u64>,
    pub(super) max_hops: Option<u64>,
    pub(super) max_rate: Option<u64>,
    pub(super) rate_window_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfiles {
    pub(super) files: Option<Vec<PathBuf>>,
    pub(super) panes: Option<BTreeMap<String, String>>,
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
