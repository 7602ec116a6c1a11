//! The panes `up` sets out: which ones a layout has and what runs in them, where a missing one
//! goes, and opening them (keeping the ones that exist).

use std::path::Path;

use crate::names::CHAT_LABEL;
use crate::prompts::PromptKind;
use crate::tmux::oneshot::{Socket, Tmux};
use crate::tmux::PaneId;

use crate::config::Config;

use super::agent::Launch;
use super::session::{self, PaneRow, Place};
use super::wiring::Wired;
use super::{
    env_var, error, person_flags, usage, Layout, UpError, UpOptions, DEFAULT_AGENT,
    DEFAULT_CHAT_AGENTS,
};

/// One pane of the layout.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Its `@macs-agent` label: the agent's name (its name in the chat and for `mcp --as`).
    pub(super) label: String,
    /// Who it is, for messages ("the worker").
    pub(super) what: String,
    /// The flag (or setting) that names its command, for messages.
    pub(super) flag: &'static str,
    /// What runs: the person's command, wired to the MCP server once [`super::wire_slots`]
    /// has run.
    pub(super) launch: Launch,
    /// How the command is shown: the person's command (before wiring), or what the pane is.
    pub(super) shown: String,
    pub(super) prompt: Option<PromptKind>,
    /// How the agent reaches the MCP server (agents only, once wired).
    pub(super) wired: Option<Wired>,
}

impl Slot {
    fn agent(
        label: &str,
        what: String,
        flag: &'static str,
        launch: Launch,
        prompt: PromptKind,
    ) -> Slot {
        Slot {
            label: label.to_string(),
            what,
            flag,
            shown: launch.display(),
            launch,
            prompt: Some(prompt),
            wired: None,
        }
    }
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

/// The chat pane's program: a fixed `sh` script, the rest of the words its arguments (never
/// shell text). It waits for the daemon's socket, then runs `macs-bridge chat`; when the chat
/// ends with an error (the daemon stopped, or was not there yet: a stale socket), it joins again
/// once the daemon is back, waiting longer each time (up to 30 s). `/quit` (status 0) closes
/// the pane; a usage error (status 2) waits for Enter so that it can be read.
const CHAT_SCRIPT: &str = r#"sock=$1; shift; said=; pause=1
while :; do
  if [ -S "$sock" ]; then
    said=; "$@"; status=$?
    [ "$status" -eq 0 ] && exit 0
    if [ "$status" -eq 2 ]; then printf '%s' 'Press Enter to close. '; read -r _; exit 2; fi
    printf '
%s
' "macs-bridge chat ended (status $status); joining again in ${pause}s, once the daemon is there (Ctrl-C to leave)"
    sleep "$pause"; pause=$((pause * 2)); [ "$pause" -gt 30 ] && pause=30
  else
    pause=1
    [ -z "$said" ] && printf '%s
' "waiting for the macs-bridge daemon ($sock)..." && said=1
    sleep 0.2
  fi
done"#;

/// The chat pane's command: `macs-bridge chat --state-dir DIR` on the same server and session,
/// once the daemon's socket is there (see [`CHAT_SCRIPT`]).
fn chat_launch(exe: &Path, server: &[String], session: &str, state_dir: &Path) -> Launch {
    let state = state_dir.to_string_lossy().into_owned();
    let socket = state_dir.join(crate::api::protocol::SOCKET_NAME);
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        CHAT_SCRIPT.into(),
        "macs-chat".into(),
        socket.to_string_lossy().into_owned(),
        exe.to_string_lossy().into_owned(),
    ];
    argv.extend(server.iter().cloned());
    argv.extend(["--session".into(), session.into(), "chat".into()]);
    argv.extend(["--state-dir".into(), state]);
    Launch {
        argv,
        env: Vec::new(),
    }
}

/// What `up` knows once the panes are there.
pub(super) struct Laid {
    /// The pane of each slot.
    pub(super) ids: Vec<Option<PaneId>>,
    pub(super) fates: Vec<Fate>,
    /// What existed before, by slot.
    pub(super) found: Vec<Option<PaneRow>>,
}

/// A label `up` gives a pane: it must be an agent's name.
fn label_of(setting: &str, what: &str, value: &str) -> Result<String, UpError> {
    if crate::api::protocol::is_valid_name(value) && value != CHAT_LABEL {
        Ok(value.to_string())
    } else {
        Err(usage(format!(
            "{what} is {value:?} ({setting}), which is not a label `up` can give a pane: use a name (letters, digits, `-`, `_`, `.`), not a pane id or tmux target"
        )))
    }
}

/// The panes of the layout, with their commands (not wired yet). `cfg` gives the agents'
/// names and commands (`agents:`, `worker`, `controller`) when the flags do not.
pub(super) fn slots(
    socket: &Socket,
    session: &str,
    a: &UpOptions,
    exe: &Path,
    cfg: &Config,
    state_dir: &Path,
) -> Result<Vec<Slot>, UpError> {
    let env_fn = |k: &str| env_var(k);
    let command_of = |name: &str| {
        cfg.agents
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.command.clone())
    };
    Ok(match a.layout {
        Layout::Pair => {
            let worker = label_of(
                "TARGET_PANE_LABEL, or `worker` in macs.yaml",
                "the worker",
                &cfg.worker,
            )?;
            let controller = label_of(
                "`controller` in macs.yaml",
                "the controller",
                &cfg.controller,
            )?;
            let mut out = Vec::new();
            for (label, what, flag, given, prompt) in [
                (
                    &worker,
                    "the worker",
                    "--worker",
                    &a.worker,
                    PromptKind::WorkerPrompt,
                ),
                (
                    &controller,
                    "the controller",
                    "--controller",
                    &a.controller,
                    PromptKind::ControllerPrompt,
                ),
            ] {
                let (flag, line) = match (given, command_of(label)) {
                    (Some(line), _) => (flag, line.clone()),
                    (None, Some(line)) => ("`command` in macs.yaml", line),
                    (None, None) => (flag, DEFAULT_AGENT.to_string()),
                };
                let launch = Launch::parse(flag, &line, &env_fn)?;
                out.push(Slot::agent(label, what.to_string(), flag, launch, prompt));
            }
            out
        }
        Layout::Chat => {
            if a.controller.is_some() {
                println!("note: the chat layout has no controller pane; --controller is not used");
            }
            // Inside the session `$TMUX` names the server; -L/--socket are passed on as given.
            let server = person_flags(socket);
            let chat = chat_launch(exe, &server, session, state_dir);
            let mut slots = vec![Slot {
                label: CHAT_LABEL.into(),
                what: "the chat pane".into(),
                flag: "--layout",
                launch: chat,
                shown: format!(
                    "macs-bridge chat --state-dir {} (joins once the daemon is up)",
                    super::agent::shell_word(&state_dir.to_string_lossy())
                ),
                prompt: None,
                wired: None,
            }];
            // The configured agents that live in panes `up` starts (no target of their own).
            let configured: Vec<_> = cfg
                .agents
                .iter()
                .filter(|c| c.target.as_deref().is_none_or(|t| t == c.name))
                .collect();
            let worker_line = a.worker.as_deref().unwrap_or(DEFAULT_AGENT);
            if configured.is_empty() {
                let agent = Launch::parse("--worker", worker_line, &env_fn)?;
                for n in 1..=a.agents.unwrap_or(DEFAULT_CHAT_AGENTS) {
                    let label = format!("agent{n}");
                    slots.push(Slot::agent(
                        &label,
                        label.clone(),
                        "--worker",
                        agent.clone(),
                        PromptKind::ChatAgentPrompt,
                    ));
                }
            } else {
                if let Some(n) = a.agents {
                    return Err(usage(format!(
                        "--agents {n}: the agents are named in {} ({}); drop --agents, or change `agents:` there",
                        cfg.source.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "macs.yaml".into()),
                        configured.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
                for c in configured {
                    let (flag, line) = match &c.command {
                        Some(line) => ("`command` in macs.yaml", line.as_str()),
                        None => ("--worker", worker_line),
                    };
                    let launch = Launch::parse(flag, line, &env_fn)?;
                    slots.push(Slot::agent(
                        &c.name,
                        c.name.clone(),
                        flag,
                        launch,
                        PromptKind::ChatAgentPrompt,
                    ));
                }
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
        if row.as_ref().is_none_or(|r| r.dead) {
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
            slot.shown
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
    crate::tty::stdout_size().filter(|(cols, rows)| *cols >= 20 && *rows >= 5)
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
