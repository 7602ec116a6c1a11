//! The pane tools: `snapshot`, `status`, `send`, `set-target`, `notify` and `panes`. Each one
//! attaches a control client to the session for the time it runs ([`LiveView`]) and detaches
//! when done.
//!
//! The tools take plain values (the tmux server, the loaded [`Config`], the pane asked for)
//! and return what they found or a [`ToolError`]; they know nothing of the command line, exit
//! codes or how results are printed (`crate::cli` does that), except that `notify` and the
//! tools' own messages name flags a person can use.

pub mod live;

use serde::Serialize;

use crate::config::Config;
use crate::detect::{PaneState, ProfileError, Profiles};
use crate::inject::{self, InjectError, InjectOptions, Outcome};
use crate::tmux::client::ClientError;
use crate::tmux::command::{CaptureOpts, Command, Target};
use crate::tmux::oneshot::{Tmux, TmuxError};
use crate::tmux::PaneId;

pub use live::{LiveError, LiveView};

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(transparent)]
    Profiles(#[from] ProfileError),
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// `send` would not type: the pane is not idle, or its prompt holds someone's text.
    #[error("refused: {0} (use --force to type anyway)")]
    Refused(InjectError),
    #[error("pane {0} closed")]
    PaneClosed(PaneId),
    #[error("no tmux client is attached to session {0:?}: nobody would see the message")]
    NobodyAttached(String),
    #[error("no session {0:?} on this tmux server")]
    NoSession(String),
}

/// Opens a view of the config's session, with the config's profiles and busy lines.
async fn open(tmux: &Tmux, cfg: &Config) -> Result<LiveView, ToolError> {
    let mut profiles = Profiles::builtin();
    if !cfg.profiles.files.is_empty() {
        profiles.load_overrides(cfg.profiles.files.iter())?;
    }
    let mut view = LiveView::open(tmux.clone(), &cfg.session).await?;
    view.profiles = profiles;
    view.busy_lines = cfg.busy_lines;
    Ok(view)
}

/// The pane a tool means: `target`, else the pinned target, else the config's worker.
async fn resolve(view: &LiveView, cfg: &Config, target: Option<&str>) -> Result<PaneId, ToolError> {
    Ok(view.resolve(target, &cfg.worker).await?)
}

/// `snapshot`: the last `cfg.lines` lines of a pane (without the blank rows below the output).
pub async fn snapshot(
    tmux: &Tmux,
    cfg: &Config,
    target: Option<&str>,
    escapes: bool,
) -> Result<Vec<String>, ToolError> {
    let view = open(tmux, cfg).await?;
    let pane = resolve(&view, cfg, target).await?;
    let n = cfg.lines;
    let opts = CaptureOpts {
        escapes,
        start: Some(-(i64::try_from(n).unwrap_or(i64::MAX))),
        ..CaptureOpts::default()
    };
    let mut lines = view
        .client()
        .run(&Command::capture_pane(&Target::Pane(pane), &opts))
        .await?;
    view.close();
    // capture-pane pads the screen with blank rows below the last output: drop them.
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub pane: String,
    pub target: String,
    pub label: Option<String>,
    pub title: String,
    pub current_command: String,
    pub profile: String,
    pub state: PaneState,
    pub reason: String,
}

/// `status`: a pane's state and why.
pub async fn status(tmux: &Tmux, cfg: &Config, target: Option<&str>) -> Result<Status, ToolError> {
    let view = open(tmux, cfg).await?;
    let id = resolve(&view, cfg, target).await?;
    let pane = view.panes.get(id).ok_or(ToolError::PaneClosed(id))?;
    let c = pane.classify(&view.profiles, view.busy_lines);
    let info = &pane.info;
    let status = Status {
        pane: info.id.clone(),
        target: info.target(),
        label: info.label.clone(),
        title: info.title.clone(),
        current_command: info.current_command.clone(),
        profile: c.profile,
        state: c.state,
        reason: c.reason,
    };
    view.close();
    Ok(status)
}

/// How `send` types, beyond the config's injection settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Type even when the pane is not idle.
    pub force: bool,
    /// Type the text but do not submit it.
    pub no_submit: bool,
}

/// `send`: types `text` into a pane's prompt and submits it, through the keystroke writer.
pub async fn send(
    tmux: &Tmux,
    cfg: &Config,
    target: Option<&str>,
    text: &str,
    how: SendOptions,
) -> Result<(PaneId, Outcome), ToolError> {
    let injection = cfg.injection.inject_options();
    let opts = InjectOptions {
        guard_busy: injection.guard_busy && !how.force,
        no_submit: how.no_submit,
        ..injection
    };
    let mut view = open(tmux, cfg).await?;
    let pane = resolve(&view, cfg, target).await?;
    let result = inject::deliver(&mut view, pane, text, &opts).await;
    view.close();
    match result {
        Ok(outcome) => Ok((pane, outcome)),
        Err(e @ (InjectError::NotIdle { .. } | InjectError::PromptHasText { .. })) => {
            Err(ToolError::Refused(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// `set-target`: pins `pane` as the session's default target; the pane and its tmux target.
pub async fn set_target(
    tmux: &Tmux,
    cfg: &Config,
    pane: &str,
) -> Result<(PaneId, String), ToolError> {
    let view = open(tmux, cfg).await?;
    let id = view.panes.find(pane).await.map_err(LiveError::from)?;
    view.panes.pin_target(id).await?;
    let target = view
        .panes
        .get(id)
        .map(|p| p.info.target())
        .unwrap_or_default();
    view.close();
    Ok((id, target))
}

/// `set-target --clear`: unpins the session's default target; what was pinned, if anything.
pub async fn clear_target(tmux: &Tmux, session: &str) -> Result<Option<String>, ToolError> {
    tmux.check_version().await?;
    if !tmux.has_session(session).await? {
        return Err(ToolError::NoSession(session.to_string()));
    }
    let exact = format!("={session}:");
    let was = tmux
        .run([
            "show-options",
            "-v",
            "-q",
            "-t",
            &exact,
            crate::pane::TARGET_OPTION,
        ])
        .await?;
    tmux.run(["set-option", "-u", "-t", &exact, crate::pane::TARGET_OPTION])
        .await?;
    Ok(Some(was.trim().to_string()).filter(|s| !s.is_empty()))
}

/// `notify`: shows `text` on every client attached to `session` for `duration_ms`, never
/// typed into a pane. Returns how many clients it was shown to.
pub async fn notify(
    tmux: &Tmux,
    session: &str,
    text: &str,
    duration_ms: u64,
) -> Result<usize, ToolError> {
    tmux.check_version().await?;
    let text = inject::sanitize(text).replace(['\n', '\t'], " ");
    let clients = tmux
        .run([
            "list-clients",
            "-t",
            &format!("={session}"),
            "-F",
            "#{client_name}",
        ])
        .await?;
    let clients: Vec<&str> = clients.lines().filter(|l| !l.is_empty()).collect();
    if clients.is_empty() {
        return Err(ToolError::NobodyAttached(session.to_string()));
    }
    // display-message expands formats (`#{…}`, `#(…)`) and then styles (`#[…]`): neutralise both.
    let mut shown = crate::tmux::command::literal_status_text(&text);
    // tmux takes an argument that ends in `;` as the end of a command.
    if shown.ends_with(';') {
        shown.push(' ');
    }
    for c in &clients {
        tmux.run([
            "display-message",
            "-c",
            c,
            "-d",
            &duration_ms.to_string(),
            &shown,
        ])
        .await?;
    }
    Ok(clients.len())
}

/// One row of `panes`.
#[derive(Debug, Clone, Serialize)]
pub struct PaneRow {
    pub pane: String,
    pub target: String,
    pub label: Option<String>,
    pub window: String,
    pub title: String,
    pub current_command: String,
    pub profile: String,
    pub state: PaneState,
}

/// `panes`: every pane of the session with its label, profile and state.
pub async fn panes(tmux: &Tmux, cfg: &Config) -> Result<Vec<PaneRow>, ToolError> {
    let view = open(tmux, cfg).await?;
    let rows = view
        .panes
        .iter()
        .map(|p| {
            let c = p.classify(&view.profiles, view.busy_lines);
            PaneRow {
                pane: p.info.id.clone(),
                target: p.info.target(),
                label: p.info.label.clone(),
                window: p.info.window_name.clone(),
                title: p.info.title.clone(),
                current_command: p.info.current_command.clone(),
                profile: c.profile,
                state: c.state,
            }
        })
        .collect();
    view.close();
    Ok(rows)
}
