//! Naming panes: a target (pane id, label, title, window name, tmux target) to a pane, and the
//! list of panes for error messages. Pure: the core resolves its roles with it too.

use super::{FindError, PaneInfo};
use crate::tmux::PaneId;

/// The panes as `%1 worker (macs:0.0)`, for error messages.
pub fn describe_infos<'a>(infos: impl Iterator<Item = &'a PaneInfo>) -> String {
    let all: Vec<String> = infos
        .map(|i| format!("{} {} ({})", i.id, i.display_name(), i.target()))
        .collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// [`Panes::resolve`] on a list of panes of `session` (pure: the core resolves its roles with
/// it).
pub fn resolve_in<'a>(
    infos: impl Iterator<Item = &'a PaneInfo> + Clone,
    session: &str,
    target: &str,
) -> Result<PaneId, FindError> {
    let target = target.trim();
    let ambiguous = |matches: &[&PaneInfo]| FindError::Ambiguous {
        target: target.to_string(),
        matches: matches
            .iter()
            .map(|i| format!("{} ({})", i.id, i.target()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    if let Ok(id) = target.parse::<PaneId>() {
        if infos.clone().any(|i| i.pane_id() == id) {
            return Ok(id);
        }
    }
    if !target.is_empty() {
        type Field = fn(&PaneInfo) -> Option<&str>;
        let fields: [Field; 3] = [
            |i| i.label.as_deref(),
            |i| Some(i.title.as_str()),
            |i| Some(i.window_name.as_str()),
        ];
        for field in fields {
            for exact in [true, false] {
                let matches: Vec<&PaneInfo> = infos
                    .clone()
                    .filter(|i| {
                        field(i).is_some_and(|v| {
                            if exact {
                                v == target
                            } else {
                                v.eq_ignore_ascii_case(target)
                            }
                        })
                    })
                    .collect();
                match matches.as_slice() {
                    [] => continue,
                    [one] => return Ok(one.pane_id()),
                    _ => return Err(ambiguous(&matches)),
                }
            }
        }
    }
    let matches = match_tmux_target(infos.clone(), session, target);
    match matches.as_slice() {
        [one] => Ok(one.pane_id()),
        [] => Err(FindError::NotFound {
            target: target.to_string(),
            session: session.to_string(),
            known: describe_infos(infos),
        }),
        _ => Err(ambiguous(&matches)),
    }
}

/// The panes a tmux target (`[session:]window[.pane]`, `session:`, `session`) names within
/// `session`. Several panes come back only when a window with no known active pane is named.
fn match_tmux_target<'a>(
    infos: impl Iterator<Item = &'a PaneInfo> + Clone,
    session: &str,
    target: &str,
) -> Vec<&'a PaneInfo> {
    let (named_session, rest) = match target.split_once(':') {
        Some((s, rest)) => (Some(s.strip_prefix('=').unwrap_or(s)), rest),
        None if target == session || target.strip_prefix('=') == Some(session) => {
            (Some(session), "")
        }
        None => (None, target),
    };
    if named_session.is_some_and(|s| !s.is_empty() && s != session) {
        return Vec::new();
    }
    if named_session.is_none() && rest.is_empty() {
        return Vec::new();
    }
    // `window.pane`, unless what follows the last dot is no pane (window names may hold dots).
    let (window, pane) = match rest.rsplit_once('.') {
        Some((w, p)) if p.parse::<u32>().is_ok() || p.parse::<PaneId>().is_ok() => (w, Some(p)),
        _ => (rest, None),
    };
    let in_window = |i: &&PaneInfo| -> bool {
        if window.is_empty() {
            i.window_active
        } else if window.starts_with('@') {
            i.window == window
        } else if let Ok(index) = window.parse::<u32>() {
            i.window_index == index
        } else {
            i.window_name == window
        }
    };
    let candidates: Vec<&PaneInfo> = infos
        .filter(|i| i.session == session)
        .filter(in_window)
        .collect();
    match pane {
        Some(p) => candidates
            .into_iter()
            .filter(|i| match p.parse::<u32>() {
                Ok(index) => i.pane_index == index,
                Err(_) => i.id == p,
            })
            .collect(),
        None if candidates.len() <= 1 => candidates,
        None => {
            let active: Vec<&PaneInfo> = candidates.iter().copied().filter(|i| i.active).collect();
            if active.len() == 1 {
                active
            } else {
                candidates
            }
        }
    }
}
