//! The checks every configured value goes through, whatever layer it comes from. Each one
//! names the setting (as spelled in the file) and its [`Origin`] in the error.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::tmux::command::KeyName;

use super::resolved::{ConfigError, Origin};
use super::CONTROLLER_BACKENDS;

pub(super) fn invalid(origin: &Origin, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.clone(),
        field: field.to_owned(),
        message: message.into(),
    }
}

pub(super) fn in_range(
    o: &Origin,
    field: &str,
    v: u64,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
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

pub(super) fn to_usize(o: &Origin, field: &str, v: u64) -> Result<usize, ConfigError> {
    usize::try_from(v).map_err(|_| invalid(o, field, format!("{v} is too large")))
}

pub(super) fn in_range_usize(
    o: &Origin,
    field: &str,
    v: u64,
    range: (u64, u64),
) -> Result<usize, ConfigError> {
    to_usize(o, field, in_range(o, field, v, range)?)
}

pub(super) fn parse_number(
    o: &Origin,
    field: &str,
    s: &str,
    range: (u64, u64),
) -> Result<u64, ConfigError> {
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
pub(super) fn text_flag(o: &Origin, field: &str, s: &str) -> Result<bool, ConfigError> {
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

pub(super) fn yaml_flag(
    o: &Origin,
    field: &str,
    v: &serde_yaml::Value,
) -> Result<bool, ConfigError> {
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

pub(super) fn check_session(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) fn check_name(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(o, field, "a pane name cannot be empty"));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(o, field, format!("{v:?} holds control characters")));
    }
    Ok(v.to_owned())
}

pub(super) fn check_socket(
    o: &Origin,
    field: &str,
    v: &str,
) -> Result<Option<String>, ConfigError> {
    let v = v.trim();
    if v.chars().any(char::is_control) {
        return Err(invalid(o, field, format!("{v:?} holds control characters")));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

pub(super) fn check_phrases(
    o: &Origin,
    field: &str,
    v: &[String],
) -> Result<Vec<String>, ConfigError> {
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
pub(super) fn check_keys(
    o: &Origin,
    field: &str,
    v: &[String],
) -> Result<Vec<String>, ConfigError> {
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

pub(super) fn check_files(
    o: &Origin,
    field: &str,
    files: Vec<PathBuf>,
) -> Result<Vec<PathBuf>, ConfigError> {
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
pub(super) fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) fn check_panes(
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
pub(super) fn check_cmd(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    shell_words::split(v)
        .map(|_| v.trim().to_owned())
        .map_err(|e| invalid(o, field, format!("not valid shell words: {e}")))
}

/// An agent's name: what the chat, the message blocks and `mcp --as` take (the daemon API's
/// rule): 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit, not
/// `all`.
pub(super) fn check_agent_name(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("all") {
        return Err(invalid(
            o,
            field,
            "`all` means every agent; give this one its own name",
        ));
    }
    // The names the chat takes (`hello`, `@name`).
    if !crate::api::protocol::is_valid_name(v) {
        return Err(invalid(
            o,
            field,
            format!("{v:?} is not an agent name: use 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
        ));
    }
    Ok(v.to_owned())
}

/// An agent's command line (`up` starts it): shell words, at least one, no NUL.
pub(super) fn check_agent_cmd(o: &Origin, field: &str, v: &str) -> Result<String, ConfigError> {
    let words = shell_words::split(v)
        .map_err(|e| invalid(o, field, format!("not valid shell words: {e}")))?;
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err(invalid(o, field, "no command given"));
    }
    if v.chars().any(|c| c == '\0') {
        return Err(invalid(o, field, "holds a NUL character"));
    }
    Ok(v.trim().to_owned())
}

pub(super) fn check_backends(
    o: &Origin,
    field: &str,
    v: &[String],
) -> Result<Vec<String>, ConfigError> {
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
pub(super) fn resolve(base: &Path, p: &Path) -> PathBuf {
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
