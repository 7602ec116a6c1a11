//! The tmux side of `up` and `down`: listing the session's panes, opening agent panes, and the
//! daemon's window. One-shot argv calls ([`Tmux::run`]); a call that must not be torn apart by
//! a program dying at once (creating a window and marking it) goes as one tmux invocation
//! (commands separated by `;` arguments), which tmux runs before it handles the child's exit.
//!
//! Text given to tmux here is passed through [`word`] (an argument ending in `;` would end the
//! tmux command) and, where tmux expands formats (`-c`), through [`literal`]. Never a shell.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::pane::LABEL_OPTION;
use crate::tmux::oneshot::{Tmux, TmuxError};
use crate::tmux::PaneId;

use super::agent::Launch;

/// The window that holds the agents.
pub const AGENTS_WINDOW: &str = "macs";
/// The window that runs the daemon.
pub const BRIDGE_WINDOW: &str = "bridge";
/// Window option marking the daemon's window (`down` stops only windows that have it).
pub const BRIDGE_OPTION: &str = "@macs-bridge";
/// Pane option set once an agent got its start-up prompt (`up` run again does not resend it).
pub const PROMPTED_OPTION: &str = "@macs-prompted";
/// The pane border: the agent's label (else the title) and the queue status the daemon sets.
pub const BORDER_FORMAT: &str =
    " #{?@macs-agent,#{@macs-agent},#{pane_title}}#{?@macs-status, #{@macs-status},} ";

const SEP: char = '\u{1f}';
const ROW_FORMAT: &str = "#{pane_id}\u{1f}#{window_id}\u{1f}#{pane_pid}\u{1f}#{pane_dead}\u{1f}#{pane_dead_status}\u{1f}#{@macs-prompted}\u{1f}#{@macs-bridge}\u{1f}#{window_name}\u{1f}#{@macs-agent}";

/// An argument for tmux's command line: one that ends in `;` would end the tmux command there,
/// so its last `;` is written `\;` (which tmux turns back into `;`).
pub fn word(s: &str) -> String {
    match s.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => s.to_string(),
    }
}

/// An argument tmux expands as a format (`-c DIR`): `#` is written `##`.
pub fn literal(s: &str) -> String {
    word(&s.replace('#', "##"))
}

/// `=NAME`: the session, matched exactly.
pub fn exact(session: &str) -> String {
    format!("={session}")
}

/// One pane of the session, as `list-panes` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneRow {
    pub id: PaneId,
    /// `@N`.
    pub window: String,
    pub window_name: String,
    pub pid: u32,
    pub dead: bool,
    pub dead_status: String,
    /// Got its start-up prompt ([`PROMPTED_OPTION`]).
    pub prompted: bool,
    /// In the daemon's window ([`BRIDGE_OPTION`]).
    pub bridge: bool,
    /// The `@macs-agent` label, when set.
    pub label: Option<String>,
}

impl PaneRow {
    fn parse(line: &str) -> Option<PaneRow> {
        let f: Vec<&str> = line.splitn(9, SEP).collect();
        if f.len() != 9 {
            return None;
        }
        Some(PaneRow {
            id: f[0].parse().ok()?,
            window: f[1].to_string(),
            pid: f[2].parse().unwrap_or(0),
            dead: f[3] == "1",
            dead_status: f[4].to_string(),
            prompted: !f[5].is_empty(),
            bridge: !f[6].is_empty(),
            window_name: f[7].to_string(),
            label: (!f[8].is_empty()).then(|| f[8].to_string()),
        })
    }
}

/// Every pane of the session (empty when the session does not exist).
pub async fn list(tmux: &Tmux, session: &str) -> Result<Vec<PaneRow>, TmuxError> {
    if !tmux.has_session(session).await? {
        return Ok(Vec::new());
    }
    let out = tmux
        .run(["list-panes", "-s", "-t", &exact(session), "-F", ROW_FORMAT])
        .await?;
    Ok(out.lines().filter_map(PaneRow::parse).collect())
}

/// Where a new agent pane goes.
#[derive(Debug, Clone)]
pub enum Place {
    /// The first window of a new session, `width` x `height`.
    NewSession { width: u16, height: u16 },
    /// A new window in the existing session.
    NewWindow,
    /// Splitting a pane: `flags` are `split-window`'s (`-h`, `-b`, `-v`, `-f`, `-l SIZE`).
    Split { of: PaneId, flags: Vec<String> },
    /// Again in a pane whose program has exited (kept by `remain-on-exit`).
    Respawn(PaneId),
}

/// A pane just opened: its id and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub pane: PaneId,
    pub window: String,
}

/// Opens a pane running `launch` in the session, labelled `label` (the `@macs-agent` option and
/// the pane title). A new window gets `remain-on-exit` at once, in the same tmux call, so that an
/// agent that fails at start stays on screen with its message: [`release_window`] gives the
/// window back to the person's own setting when `up` is done.
pub async fn open_pane(
    tmux: &Tmux,
    session: &str,
    cwd: &Path,
    place: &Place,
    launch: &Launch,
    label: &str,
) -> Result<Opened, TmuxError> {
    let temp = format!("macs-starting-{}", std::process::id());
    let temp_target = format!("{}:={temp}", exact(session));
    let cwd = literal(&cwd.to_string_lossy());
    let mut args: Vec<String> = Vec::new();
    let mut after: Vec<Vec<String>> = Vec::new();
    let print = ["-P", "-F", "#{pane_id} #{window_id}"].map(String::from);
    match place {
        Place::NewSession { width, height } => {
            args.extend(["new-session", "-d", "-s", session, "-n", &temp].map(String::from));
            args.extend([
                "-x".into(),
                width.to_string(),
                "-y".into(),
                height.to_string(),
            ]);
        }
        Place::NewWindow => {
            let at = format!("{}:", exact(session));
            args.extend(["new-window", "-d", "-t", &at, "-n", &temp].map(String::from));
        }
        Place::Split { of, flags } => {
            args.extend(["split-window".to_string(), "-d".into()]);
            args.extend(flags.iter().cloned());
            args.extend(["-t".to_string(), of.to_string()]);
        }
        Place::Respawn(pane) => {
            args.extend(["respawn-pane", "-k", "-t", &pane.to_string()].map(String::from));
        }
    }
    if matches!(place, Place::NewSession { .. } | Place::NewWindow) {
        after.push(
            [
                "set-option",
                "-w",
                "-t",
                &temp_target,
                "remain-on-exit",
                "on",
            ]
            .map(String::from)
            .to_vec(),
        );
        after.push(
            ["rename-window", "-t", &temp_target, AGENTS_WINDOW]
                .map(String::from)
                .to_vec(),
        );
    }
    args.extend(["-c".to_string(), cwd]);
    if !matches!(place, Place::Respawn(_)) {
        args.extend(print);
    }
    args.extend(launch.tmux_args().iter().map(|w| word(w)));
    for cmd in after {
        args.push(";".into());
        args.extend(cmd);
    }
    let out = tmux.run(&args).await?;
    let (pane, window) = match place {
        Place::Respawn(pane) => (*pane, window_of(tmux, *pane).await?),
        _ => {
            let mut it = out.split_whitespace();
            let pane = it.next().and_then(|p| p.parse::<PaneId>().ok());
            let window = it.next().map(str::to_string);
            match (pane, window) {
                (Some(p), Some(w)) => (p, w),
                _ => {
                    return Err(TmuxError::Failed {
                        args: "new pane".into(),
                        stderr: format!("tmux did not print the new pane's id: {out:?}"),
                    })
                }
            }
        }
    };
    let p = pane.to_string();
    tmux.run(["set-option", "-p", "-t", &p, LABEL_OPTION, &word(label)])
        .await?;
    tmux.run(["set-option", "-p", "-u", "-t", &p, PROMPTED_OPTION])
        .await?;
    tmux.run(["select-pane", "-t", &p, "-T", &word(label)])
        .await?;
    Ok(Opened { pane, window })
}

async fn window_of(tmux: &Tmux, pane: PaneId) -> Result<String, TmuxError> {
    let out = tmux
        .run([
            "display-message",
            "-p",
            "-t",
            &pane.to_string(),
            "#{window_id}",
        ])
        .await?;
    Ok(out.trim().to_string())
}

/// Turns the pane borders on for the agents' window, showing labels and the daemon's status.
pub async fn style_window(tmux: &Tmux, window: &str) -> Result<(), TmuxError> {
    tmux.run([
        "set-option",
        "-w",
        "-t",
        window,
        "pane-border-status",
        "top",
    ])
    .await?;
    tmux.run([
        "set-option",
        "-w",
        "-t",
        window,
        "pane-border-format",
        BORDER_FORMAT,
    ])
    .await?;
    Ok(())
}

/// Keeps panes whose program exits on screen (while `up` starts them).
pub async fn hold_window(tmux: &Tmux, window: &str) -> Result<(), TmuxError> {
    tmux.run(["set-option", "-w", "-t", window, "remain-on-exit", "on"])
        .await
        .map(|_| ())
}

/// Gives `remain-on-exit` back to the person's own setting (the window's value is unset).
pub async fn release_window(tmux: &Tmux, window: &str) -> Result<(), TmuxError> {
    tmux.run(["set-option", "-w", "-u", "-t", window, "remain-on-exit"])
        .await
        .map(|_| ())
}

/// Lays out a chat window: the first pane (the chat) across the top, the agents side by side
/// below.
pub async fn chat_layout(tmux: &Tmux, window: &str) -> Result<(), TmuxError> {
    tmux.run(["set-option", "-w", "-t", window, "main-pane-height", "30%"])
        .await?;
    tmux.run(["select-layout", "-t", window, "main-horizontal"])
        .await
        .map(|_| ())
}

/// Marks an agent as prompted.
pub async fn mark_prompted(tmux: &Tmux, pane: PaneId) -> Result<(), TmuxError> {
    tmux.run([
        "set-option",
        "-p",
        "-t",
        &pane.to_string(),
        PROMPTED_OPTION,
        "1",
    ])
    .await
    .map(|_| ())
}

/// The last non-blank lines of a pane, for messages about a program that exited.
pub async fn last_lines(tmux: &Tmux, pane: PaneId, n: usize) -> String {
    let out = tmux
        .run(["capture-pane", "-p", "-J", "-t", &pane.to_string()])
        .await
        .unwrap_or_default();
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("Pane is dead"))
        .collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..].join("\n")
}

/// Starts the daemon in a new window [`BRIDGE_WINDOW`], marked with [`BRIDGE_OPTION`] and
/// kept on screen when it exits (so a start-up error stays readable). One tmux call, so the
/// marks are there even if it fails at once.
pub async fn start_bridge(
    tmux: &Tmux,
    session: &str,
    cwd: &Path,
    env: &[(String, String)],
    argv: &[String],
) -> Result<PaneId, TmuxError> {
    let temp = format!("macs-bridge-starting-{}", std::process::id());
    let temp_target = format!("{}:={temp}", exact(session));
    let at = format!("{}:", exact(session));
    let mut args: Vec<String> = [
        "new-window",
        "-d",
        "-t",
        &at,
        "-n",
        &temp,
        "-P",
        "-F",
        "#{pane_id}",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-c".to_string(), literal(&cwd.to_string_lossy())]);
    for (k, v) in env {
        args.extend(["-e".to_string(), word(&format!("{k}={v}"))]);
    }
    args.push("--".into());
    args.extend(argv.iter().map(|w| word(w)));
    for cmd in [
        vec![
            "set-option",
            "-w",
            "-t",
            &temp_target,
            "remain-on-exit",
            "on",
        ],
        vec!["set-option", "-w", "-t", &temp_target, BRIDGE_OPTION, "1"],
        vec!["rename-window", "-t", &temp_target, BRIDGE_WINDOW],
    ] {
        args.push(";".into());
        args.extend(cmd.into_iter().map(String::from));
    }
    let out = tmux.run(&args).await?;
    out.trim().parse::<PaneId>().map_err(|_| TmuxError::Failed {
        args: "new-window (bridge)".into(),
        stderr: format!("tmux did not print the new pane's id: {out:?}"),
    })
}

/// Runs the daemon again in its window, whose last run has exited.
pub async fn respawn_bridge(
    tmux: &Tmux,
    pane: PaneId,
    cwd: &Path,
    env: &[(String, String)],
    argv: &[String],
) -> Result<(), TmuxError> {
    let mut args: Vec<String> = ["respawn-pane", "-k", "-t", &pane.to_string()]
        .map(String::from)
        .to_vec();
    args.extend(["-c".to_string(), literal(&cwd.to_string_lossy())]);
    for (k, v) in env {
        args.extend(["-e".to_string(), word(&format!("{k}={v}"))]);
    }
    args.push("--".into());
    args.extend(argv.iter().map(|w| word(w)));
    tmux.run(&args).await.map(|_| ())
}

/// How a daemon's first moments went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeStart {
    /// It printed its `started` line.
    Started,
    /// It exited: its status and last lines.
    Exited { status: String, output: String },
    /// Neither within the time given.
    Silent,
}

/// Waits until the daemon in `pane` has printed its `started` line, or exited.
pub async fn wait_bridge_started(tmux: &Tmux, pane: PaneId, timeout: Duration) -> BridgeStart {
    let deadline = Instant::now() + timeout;
    let p = pane.to_string();
    loop {
        let state = tmux
            .run([
                "display-message",
                "-p",
                "-t",
                &p,
                "#{pane_dead}\u{1f}#{pane_dead_status}",
            ])
            .await;
        let screen = tmux
            .run(["capture-pane", "-p", "-J", "-t", &p])
            .await
            .unwrap_or_default();
        if screen
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("started"))
        {
            return BridgeStart::Started;
        }
        match state {
            Ok(s) if s.starts_with('1') => {
                return BridgeStart::Exited {
                    status: s.trim().split(SEP).nth(1).unwrap_or("").to_string(),
                    output: last_lines(tmux, pane, 8).await,
                }
            }
            Ok(_) => {}
            Err(_) => {
                return BridgeStart::Exited {
                    status: String::new(),
                    output: "its window is gone".into(),
                }
            }
        }
        if Instant::now() >= deadline {
            return BridgeStart::Silent;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How stopping a daemon went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Clean { pid: u32 },
    /// It had exited already (its window was kept to show why).
    AlreadyExited,
    /// It did not exit in time; its window was killed (tmux hangs up on it).
    Killed { pid: u32 },
}

/// Stops the daemon of a bridge window: SIGTERM to the pane's process (the daemon shuts down
/// cleanly on it), waits up to `timeout` for it to exit, then kills the window.
pub async fn stop_bridge(
    tmux: &Tmux,
    row: &PaneRow,
    timeout: Duration,
) -> Result<Stopped, TmuxError> {
    let outcome = if row.dead || row.pid <= 1 {
        Stopped::AlreadyExited
    } else {
        let pid = row.pid;
        // Never signal a process group (pid 0, -1) or ourselves.
        let signalled = i32::try_from(pid)
            .is_ok_and(|p| p > 1 && pid != std::process::id() && unsafe_kill(p, libc::SIGTERM));
        if !signalled {
            Stopped::AlreadyExited
        } else if wait_exit(tmux, row.id, pid, timeout).await {
            Stopped::Clean { pid }
        } else {
            Stopped::Killed { pid }
        }
    };
    // The window may be gone already (remain-on-exit turned off by hand).
    let _ = tmux.run(["kill-window", "-t", &row.window]).await;
    Ok(outcome)
}

fn unsafe_kill(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a positive pid only sends a signal; no memory is involved.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether the process has exited within `timeout`: its pane is dead or gone, or the pid is.
async fn wait_exit(tmux: &Tmux, pane: PaneId, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let p = pane.to_string();
    loop {
        let gone = match tmux
            .run(["display-message", "-p", "-t", &p, "#{pane_dead}"])
            .await
        {
            Ok(s) => s.trim() == "1",
            Err(_) => true,
        };
        // SAFETY: signal 0 only checks that the process exists.
        let exists = i32::try_from(pid).is_ok_and(|p| unsafe { libc::kill(p, 0) == 0 });
        if gone || !exists {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's socket path (`#{socket_path}`), to hand the daemon the very same server.
pub async fn socket_path(tmux: &Tmux, session: &str) -> Result<String, TmuxError> {
    Ok(tmux
        .run([
            "display-message",
            "-p",
            "-t",
            &exact(session),
            "#{socket_path}",
        ])
        .await?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_ending_in_a_semicolon_are_escaped_for_tmux() {
        assert_eq!(word("plain"), "plain");
        assert_eq!(word("a;"), "a\\;");
        assert_eq!(word(";"), "\\;");
        assert_eq!(word("b\\;"), "b\\\\;");
        assert_eq!(word("mid;dle"), "mid;dle");
        assert_eq!(literal("/tmp/a#b;"), "/tmp/a##b\\;");
    }

    #[test]
    fn rows_parse_with_odd_labels() {
        let line = "%3\u{1f}@1\u{1f}4242\u{1f}0\u{1f}\u{1f}1\u{1f}\u{1f}macs\u{1f}my agent\u{1f}x";
        let row = PaneRow::parse(line).expect("parses");
        assert_eq!(row.id, PaneId(3));
        assert_eq!(row.window, "@1");
        assert_eq!(row.pid, 4242);
        assert!(!row.dead && row.prompted && !row.bridge);
        assert_eq!(row.label.as_deref(), Some("my agent\u{1f}x"));
        assert!(PaneRow::parse("garbage").is_none());
        let unlabelled = "%4\u{1f}@2\u{1f}1\u{1f}1\u{1f}0\u{1f}\u{1f}1\u{1f}bridge\u{1f}";
        let row = PaneRow::parse(unlabelled).expect("parses");
        assert!(row.dead && row.bridge && row.label.is_none());
    }
}
