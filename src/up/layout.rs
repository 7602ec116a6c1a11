//! The panes `up` sets out: which ones a layout has and what runs in them, where a missing one
//! goes, and opening them (keeping the ones that exist).

use std::path::Path;

use crate::names::CHAT_LABEL;
use crate::prompts::PromptKind;
use crate::tmux::oneshot::{Socket, Tmux};
use crate::tmux::PaneId;

use super::agent::Launch;
use super::session::{self, PaneRow, Place};
use super::{env_var, error, person_flags, Layout, UpError, UpOptions, DEFAULT_AGENT};

/// One pane of the layout.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) label: String,
    /// Who it is, for messages ("the worker").
    pub(super) what: String,
    /// The flag that names its command, for messages.
    pub(super) flag: &'static str,
    pub(super) launch: Launch,
    /// How the command is shown, when not as itself.
    pub(super) shown: Option<String>,
    pub(super) prompt: Option<PromptKind>,
}

/// What `up` did with a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Kept,
    Created,
    Restarted,
}

impl Fate {
    fn as_str(self) -> &'static str {
        match self {
            Fate::Kept => "kept",
            Fate::Created => "new",
            Fate::Restarted => "restarted",
        }
    }
}

/// The chat pane's command: `macs-bridge chat` on the same server and session.
fn chat_launch(exe: &Path, server: &[String], session: &str) -> (Launch, Option<String>) {
    let mut argv = vec![exe.to_string_lossy().into_owned()];
    argv.extend(server.iter().cloned());
    argv.extend(["--session".into(), session.into(), "chat".into()]);
    let launch = Launch {
        argv,
        env: Vec::new(),
    };
    (launch, None)
}

/// What `up` knows once the panes are there.
pub(super) struct Laid {
    /// The pane of each slot.
    pub(super) ids: Vec<Option<PaneId>>,
    pub(super) fates: Vec<Fate>,
    /// What existed before, by slot.
    pub(super) found: Vec<Option<PaneRow>>,
}

/// The panes of the layout, with their commands.
pub(super) fn slots(
    socket: &Socket,
    session: &str,
    a: &UpOptions,
    exe: &Path,
) -> Result<Vec<Slot>, UpError> {
    let env_fn = |k: &str| env_var(k);
    let worker_line = a.worker.as_deref().unwrap_or(DEFAULT_AGENT);
    Ok(match a.layout {
        Layout::Pair => vec![
            Slot {
                label: "worker".into(),
                what: "the worker".into(),
                flag: "--worker",
                launch: Launch::parse("--worker", worker_line, &env_fn)?,
                shown: None,
                prompt: Some(PromptKind::WorkerPrompt),
            },
            Slot {
                label: "controller".into(),
                what: "the controller".into(),
                flag: "--controller",
                launch: Launch::parse(
                    "--controller",
                    a.controller.as_deref().unwrap_or(DEFAULT_AGENT),
                    &env_fn,
                )?,
                shown: None,
                prompt: Some(PromptKind::ControllerPrompt),
            },
        ],
        Layout::Chat => {
            if a.controller.is_some() {
                println!("note: the chat layout has no controller pane; --controller is not used");
            }
            // Inside the session `$TMUX` names the server; -L/--socket are passed on as given.
            let server = person_flags(socket);
            let (launch, shown) = chat_launch(exe, &server, session);
            let mut slots = vec![Slot {
                label: CHAT_LABEL.into(),
                what: "the chat pane".into(),
                flag: "--layout",
                launch,
                shown,
                prompt: None,
            }];
            let agent = Launch::parse("--worker", worker_line, &env_fn)?;
            for n in 1..=a.agents {
                slots.push(Slot {
                    label: format!("agent{n}"),
                    what: format!("agent{n}"),
                    flag: "--worker",
                    launch: agent.clone(),
                    shown: None,
                    prompt: None,
                });
            }
            slots
        }
    })
}

/// Creates or restarts the panes of the layout that are missing or exited, each placed next to
/// one that exists; keeps the others. `windows` collects the agents' windows, held with
/// `remain-on-exit` for the caller to release.
pub(super) async fn open_layout(
    tmux: &Tmux,
    session: &str,
    layout: Layout,
    slots: &[Slot],
    cwd: &Path,
    existed: bool,
    windows: &mut Vec<String>,
) -> Result<Laid, UpError> {
    // What exists already: panes labelled for this layout, outside the daemon's window.
    let rows = session::list(tmux, session).await?;
    let found: Vec<Option<PaneRow>> = slots
        .iter()
        .map(|s| {
            rows.iter()
                .find(|r| !r.bridge && r.label.as_deref() == Some(s.label.as_str()))
                .cloned()
        })
        .collect();

    // Every program to start must exist before anything is created.
    let path = std::env::var_os("PATH");
    for (slot, row) in slots.iter().zip(&found) {
        if row.as_ref().is_none_or(|r| r.dead) && slot.shown.is_none() {
            slot.launch
                .check_program(&slot.what, slot.flag, path.as_deref())
                .map_err(|e| error(e.to_string()))?;
        }
    }

    let mut ids: Vec<Option<PaneId>> = found.iter().map(|r| r.as_ref().map(|r| r.id)).collect();
    let mut fates = vec![Fate::Kept; slots.len()];
    for row in found.iter().flatten() {
        if !windows.contains(&row.window) {
            session::hold_window(tmux, &row.window).await?;
            windows.push(row.window.clone());
        }
    }
    let mut session_exists = existed;
    for (i, slot) in slots.iter().enumerate() {
        let place = match &found[i] {
            Some(r) if !r.dead => continue,
            Some(r) => Place::Respawn(r.id),
            None => placement(layout, i, &ids, session_exists),
        };
        let opened = session::open_pane(tmux, session, cwd, &place, &slot.launch, &slot.label)
            .await
            .map_err(|e| {
                error(format!(
                    "could not start {} ({}): {e}",
                    slot.what,
                    slot.launch.display()
                ))
            })?;
        session_exists = true;
        ids[i] = Some(opened.pane);
        fates[i] = if matches!(place, Place::Respawn(_)) {
            Fate::Restarted
        } else {
            Fate::Created
        };
        if !windows.contains(&opened.window) {
            windows.push(opened.window.clone());
        }
    }
    for w in windows.iter() {
        session::style_window(tmux, w).await?;
    }
    if layout == Layout::Chat && fates.iter().any(|f| *f != Fate::Kept) {
        if let Some(w) = windows.first() {
            session::chat_layout(tmux, w).await?;
        }
    }
    Ok(Laid { ids, fates, found })
}

pub(super) fn print_layout(session: &str, existed: bool, slots: &[Slot], laid: &Laid) {
    println!(
        "session {session}: {}",
        if existed { "reused" } else { "created" }
    );
    for (i, slot) in slots.iter().enumerate() {
        let id = laid.ids[i]
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "  {:<11} {:<5} {:<9} {}",
            slot.label,
            id,
            laid.fates[i].as_str(),
            slot.shown.clone().unwrap_or_else(|| slot.launch.display())
        );
    }
}

/// Where a missing pane goes, given the panes of the layout that exist (`ids`, by slot).
fn placement(layout: Layout, i: usize, ids: &[Option<PaneId>], session_exists: bool) -> Place {
    let split = |of: PaneId, flags: &[&str]| Place::Split {
        of,
        flags: flags.iter().map(|f| f.to_string()).collect(),
    };
    let first_new = || {
        if session_exists {
            Place::NewWindow
        } else {
            let (width, height) = terminal_size().unwrap_or((200, 50));
            Place::NewSession { width, height }
        }
    };
    match layout {
        Layout::Pair => match (
            i,
            ids.first().copied().flatten(),
            ids.get(1).copied().flatten(),
        ) {
            (0, _, Some(controller)) => split(controller, &["-h", "-b"]),
            (1, Some(worker), _) => split(worker, &["-h"]),
            _ => first_new(),
        },
        Layout::Chat => {
            let agents = ids.get(1..).unwrap_or(&[]);
            if i == 0 {
                return match agents.iter().find_map(|id| *id) {
                    Some(agent) => split(agent, &["-v", "-b", "-f", "-l", "30%"]),
                    None => first_new(),
                };
            }
            let before = ids.get(1..i).unwrap_or(&[]).iter().rev().find_map(|id| *id);
            if let Some(before) = before {
                return split(before, &["-h"]);
            }
            let after = ids.get(i + 1..).unwrap_or(&[]).iter().find_map(|id| *id);
            if let Some(after) = after {
                return split(after, &["-h", "-b"]);
            }
            match ids.first().copied().flatten() {
                Some(chat) => split(chat, &["-v", "-l", "70%"]),
                None => first_new(),
            }
        }
    }
}

/// The size of the terminal on standard output, when it is one.
fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own, or fails.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col >= 20 && ws.ws_row >= 5).then_some((ws.ws_col, ws.ws_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(p: &Place) -> (Option<PaneId>, Vec<String>) {
        match p {
            Place::Split { of, flags } => (Some(*of), flags.clone()),
            _ => (None, Vec::new()),
        }
    }

    #[test]
    fn missing_panes_go_next_to_the_ones_that_exist() {
        let p = |n| Some(PaneId(n));
        // Pair: the worker left of the controller, whichever exists.
        assert!(matches!(
            placement(Layout::Pair, 0, &[None, None], true),
            Place::NewWindow
        ));
        assert!(matches!(
            placement(Layout::Pair, 0, &[None, None], false),
            Place::NewSession { .. }
        ));
        assert_eq!(
            flags(&placement(Layout::Pair, 1, &[p(1), None], true)),
            (p(1), vec!["-h".to_string()])
        );
        assert_eq!(
            flags(&placement(Layout::Pair, 0, &[None, p(2)], true)),
            (p(2), vec!["-h".to_string(), "-b".to_string()])
        );
        // Chat: the chat pane on top, the agents in a row below it.
        let ids = [p(1), None, None, None];
        assert_eq!(flags(&placement(Layout::Chat, 1, &ids, true)).0, p(1));
        let ids = [p(1), p(2), None, None];
        assert_eq!(
            flags(&placement(Layout::Chat, 2, &ids, true)),
            (p(2), vec!["-h".to_string()])
        );
        let ids = [p(1), None, p(3), None];
        assert_eq!(
            flags(&placement(Layout::Chat, 1, &ids, true)),
            (p(3), vec!["-h".to_string(), "-b".to_string()])
        );
        let ids = [None, None, p(3), None];
        let (of, f) = flags(&placement(Layout::Chat, 0, &ids, true));
        assert_eq!(of, p(3));
        assert!(f.contains(&"-f".to_string()) && f.contains(&"-b".to_string()));
    }
}
