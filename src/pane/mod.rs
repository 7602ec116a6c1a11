//! The pane registry: every pane of the attached session with its tmux facts (title, current
//! command, label, size) and a screen model ([`screen::Screen`]) seeded by `capture-pane -p -e`
//! and fed by `%output`. Panes and windows created after attach are picked up live, closed ones
//! dropped.
//!
//! [`Panes`] is owned by one task (the core, or a one-shot tool) which feeds it every
//! [`ClientEvent`] in order. It never types into a pane.
//!
//! Seeding is ordered: a capture is applied at the point of the stream where its reply was
//! read ([`ClientEvent::Replied`]), so output that came before the capture is replaced by it
//! and output after it lands on top — nothing is lost or applied twice.
//!
//! A pane's model that fails (a panic inside the emulator, caught) is logged and rebuilt from a
//! fresh capture; other panes and the registry go on.

pub mod clamp;
mod resolve;
pub mod screen;
mod skim;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tracing::{debug, trace, warn};

use crate::detect::{classify, prompt_input, Classification, Look, PaneView, Profile, Profiles};
use crate::tmux::client::{Client, ClientError, ClientEvent};
use crate::tmux::command::{CaptureOpts, Command, ListScope, OptionScope, Target};
use crate::tmux::control::Event;
use crate::tmux::PaneId;

pub use resolve::{describe_infos, resolve_in};
pub use screen::{ModelFault, Screen};
pub use skim::VIEW_HISTORY;

/// Lines of scrollback kept in each screen model.
pub const MODEL_SCROLLBACK: usize = 1000;

/// The pane option that names an agent (set by `up`, or by hand). Stable, unlike titles.
pub const LABEL_OPTION: &str = "@macs-agent";
/// The pane option that pins a pane's agent profile.
pub const PROFILE_OPTION: &str = "@macs-profile";
/// The session option that pins the default target (`set-target`).
pub const TARGET_OPTION: &str = "@macs-target";

const SEP: char = '\u{1f}';
/// The `list-panes` format: fields split by the unit separator, the title last (titles are
/// set by programs and may hold anything).
const LIST_FORMAT: &str = "#{pane_id}\u{1f}#{session_name}\u{1f}#{window_id}\u{1f}#{window_index}\u{1f}#{pane_index}\u{1f}#{pane_width}\u{1f}#{pane_height}\u{1f}#{pane_pid}\u{1f}#{pane_dead}\u{1f}#{alternate_on}\u{1f}#{cursor_x}\u{1f}#{cursor_y}\u{1f}#{pane_current_command}\u{1f}#{@macs-agent}\u{1f}#{@macs-profile}\u{1f}#{pane_active}\u{1f}#{window_active}\u{1f}#{pane_in_mode}\u{1f}#{window_name}\u{1f}#{pane_title}";

const SUB_TITLE: &str = "macs-title";
const SUB_COMMAND: &str = "macs-cmd";
const SUB_LABEL: &str = "macs-label";
const SUB_MODE: &str = "macs-mode";

/// What tmux says about a pane.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaneInfo {
    pub id: String,
    pub session: String,
    pub window: String,
    pub window_index: u32,
    pub pane_index: u32,
    pub width: u16,
    pub height: u16,
    pub pid: u32,
    pub dead: bool,
    pub alternate_on: bool,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub current_command: String,
    /// The `@macs-agent` pane option, when set.
    pub label: Option<String>,
    /// The `@macs-profile` pane option, when set.
    pub profile: Option<String>,
    /// The active pane of its window.
    pub active: bool,
    /// In the session's current window.
    pub window_active: bool,
    /// In a mode (copy mode, a chooser): keys go to the mode, not to the program.
    pub in_mode: bool,
    pub window_name: String,
    pub title: String,
}

impl PaneInfo {
    /// Parses one line of [`LIST_FORMAT`] output.
    pub fn parse(line: &str) -> Option<PaneInfo> {
        let f: Vec<&str> = line.splitn(20, SEP).collect();
        if f.len() != 20 {
            return None;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Some(PaneInfo {
            id: f[0].parse::<PaneId>().ok()?.to_string(),
            session: f[1].to_string(),
            window: f[2].to_string(),
            window_index: f[3].parse().ok()?,
            pane_index: f[4].parse().ok()?,
            width: f[5].parse().ok()?,
            height: f[6].parse().ok()?,
            pid: f[7].parse().unwrap_or(0),
            dead: f[8] == "1",
            alternate_on: f[9] == "1",
            cursor_x: f[10].parse().unwrap_or(0),
            cursor_y: f[11].parse().unwrap_or(0),
            current_command: f[12].to_string(),
            label: opt(f[13]),
            profile: opt(f[14]),
            active: f[15] == "1",
            window_active: f[16] == "1",
            in_mode: f[17] == "1",
            window_name: f[18].to_string(),
            title: f[19].to_string(),
        })
    }

    pub fn pane_id(&self) -> PaneId {
        self.id.parse().unwrap_or(PaneId(u32::MAX))
    }

    /// `session:window.pane`.
    pub fn target(&self) -> String {
        format!("{}:{}.{}", self.session, self.window_index, self.pane_index)
    }

    /// The name people know this pane by: its label, else its window name.
    pub fn display_name(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.window_name)
    }
}

/// One pane: tmux's facts and the screen model.
pub struct Pane {
    pub info: PaneInfo,
    screen: Screen,
    last_output: Option<Instant>,
    output_bytes: u64,
    faults: u64,
    /// The title the pane's output set since tmux last told us its title (tmux checks titles
    /// for control clients once a second; the output says it at once).
    live_title: Option<String>,
    /// Output floods: it is not fed to the model (see `skim.rs`).
    skim: bool,
    /// Output was not fed to the model: it is behind tmux until a capture replaces it.
    stale: bool,
    /// tmux's rows of the pane, read while the model is behind.
    view: Option<skim::View>,
}

impl Pane {
    fn new(info: PaneInfo) -> Pane {
        let screen = Screen::new(info.height, info.width, MODEL_SCROLLBACK);
        Pane {
            info,
            screen,
            last_output: None,
            output_bytes: 0,
            faults: 0,
            live_title: None,
            skim: false,
            stale: false,
            view: None,
        }
    }

    /// The pane's title as it is now: the last one its output set, or else tmux's.
    pub fn title(&self) -> &str {
        self.live_title.as_deref().unwrap_or(&self.info.title)
    }

    pub fn id(&self) -> PaneId {
        self.info.pane_id()
    }

    /// The visible rows, top to bottom, as plain text (trailing blanks trimmed, as
    /// `capture-pane -p` gives them). While the model is behind, tmux's rows as last read.
    pub fn lines(&self) -> Vec<String> {
        match self.behind_view() {
            Some(rows) => rows[rows.len().saturating_sub(usize::from(self.info.height))..].to_vec(),
            None => self.screen.rows(),
        }
    }

    /// Up to `history` rows of scrollback (oldest first) followed by the visible rows.
    /// Programs on the alternate screen have no scrollback: what scrolled off is gone from
    /// tmux too.
    pub fn lines_with_history(&mut self, history: usize) -> Vec<String> {
        match self.behind_view() {
            Some(rows) => {
                let keep = history.saturating_add(usize::from(self.info.height));
                rows[rows.len().saturating_sub(keep)..].to_vec()
            }
            None => self.screen.lines_with_history(history),
        }
    }

    /// The row the cursor is on, as plain text.
    pub fn cursor_row(&self) -> String {
        let (row, _) = self.screen.cursor_position();
        self.lines()
            .get(usize::from(row))
            .cloned()
            .unwrap_or_default()
    }

    /// The screen model.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// Time since the pane last printed anything (None: nothing seen since attach).
    pub fn silent_for(&self) -> Option<Duration> {
        self.last_output.map(|t| t.elapsed())
    }

    /// When the pane last printed anything (None: nothing seen since attach).
    pub fn last_output(&self) -> Option<Instant> {
        self.last_output
    }

    /// Bytes of output seen since attach.
    pub fn output_bytes(&self) -> u64 {
        self.output_bytes
    }

    /// How many times the screen model failed and was rebuilt.
    pub fn model_faults(&self) -> u64 {
        self.faults
    }

    /// Feeds output to the model. A fault (logged here) means the model was reset and wants
    /// a capture.
    fn feed(&mut self, data: &[u8]) -> Result<(), ModelFault> {
        self.last_output = Some(Instant::now());
        self.output_bytes += data.len() as u64;
        let result = self.screen.feed(data);
        if let Some(title) = self.screen.take_title() {
            self.live_title = Some(title);
        }
        self.note(result)
    }

    fn set_size(&mut self, rows: u16, cols: u16) -> Result<(), ModelFault> {
        let result = self.screen.set_size(rows, cols);
        self.note(result)
    }

    /// Replaces the model by a capture (`capture-pane -p -e` lines) and a cursor position.
    fn seed(&mut self, lines: &[String], cursor: (u16, u16)) -> Result<(), ModelFault> {
        let (rows, cols) = (self.info.height, self.info.width);
        let resized = self.screen.set_size(rows, cols);
        let result = resized.and_then(|()| self.screen.seed(lines, cursor, self.info.alternate_on));
        self.note(result)
    }

    fn note(&mut self, result: Result<(), ModelFault>) -> Result<(), ModelFault> {
        if let Err(fault) = &result {
            self.faults += 1;
            warn!(pane = %self.info.id, op = fault.op, message = %fault.message, "screen model failed; rebuilding the pane from a capture");
        }
        result
    }

    /// Classifies the pane with its pinned profile, or the one picked from what it shows.
    pub fn classify(&self, profiles: &Profiles, busy_lines: usize) -> Classification {
        let lines = self.lines();
        self.classify_lines(profiles, busy_lines, &lines).1
    }

    /// A pane in a mode takes keys as the mode's commands: it counts as asking (never typed
    /// into, not even urgently), with the reason.
    fn in_mode(&self, c: &mut Classification) {
        if self.info.in_mode {
            c.state = crate::detect::PaneState::Asking;
            c.reason =
                "the pane is in a mode (copy mode: a person scrolled back); waiting until it ends"
                    .into();
        }
    }

    fn classify_lines<'p>(
        &self,
        profiles: &'p Profiles,
        busy_lines: usize,
        lines: &[String],
    ) -> (&'p Profile, Classification) {
        let (profile, mut c) = self.classify_plain(profiles, busy_lines, lines);
        self.in_mode(&mut c);
        (profile, c)
    }

    fn classify_plain<'p>(
        &self,
        profiles: &'p Profiles,
        busy_lines: usize,
        lines: &[String],
    ) -> (&'p Profile, Classification) {
        let view = PaneView {
            lines,
            title: self.title(),
            current_command: &self.info.current_command,
            silent_for: self.silent_for(),
        };
        let profile = self
            .info
            .profile
            .as_deref()
            .and_then(|name| profiles.get(name))
            .unwrap_or_else(|| profiles.pick(&view));
        (profile, classify(profile, &view, busy_lines))
    }

    /// Everything the keystroke writer needs to know about the pane now.
    pub fn look(&self, profiles: &Profiles, busy_lines: usize) -> Look {
        self.look_at_rows(profiles, busy_lines, self.lines())
    }

    /// [`Pane::look`] and [`Pane::lines_with_history`] together, the visible rows rendered
    /// once.
    pub fn look_with_history(
        &mut self,
        profiles: &Profiles,
        busy_lines: usize,
        history: usize,
    ) -> (Look, Vec<String>) {
        let all = self.lines_with_history(history);
        self.view_read();
        let rows = usize::from(self.screen.size().0);
        let visible = all[all.len().saturating_sub(rows)..].to_vec();
        (self.look_at_rows(profiles, busy_lines, visible), all)
    }

    fn look_at_rows(&self, profiles: &Profiles, busy_lines: usize, lines: Vec<String>) -> Look {
        let (profile, c) = self.classify_lines(profiles, busy_lines, &lines);
        let prompt_input = prompt_input(profile, &lines);
        Look {
            state: c.state,
            reason: c.reason,
            profile: c.profile,
            lines,
            prompt_input,
        }
    }
}

/// What changed after an event, for the core to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaneChange {
    Added(PaneId),
    Removed(PaneId),
    Output(PaneId),
    Info(PaneId),
    /// tmux's rows of a pane whose model is behind were read (asked by
    /// [`Panes::request_view`]): the pane can be looked at.
    Viewed(PaneId),
    /// The whole view was rebuilt (after attach or re-attach).
    Resynced,
    /// The connection is gone; the registry is empty until re-attached.
    Lost,
}

/// Why a pane could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no pane matches {target:?} in session {session:?} (tried pane id, `{LABEL_OPTION}` label, pane title, window name and tmux target); panes: {known}")]
    NotFound {
        target: String,
        session: String,
        known: String,
    },
    #[error("{target:?} is ambiguous: it names {matches}; use a pane id or set distinct `{LABEL_OPTION}` labels")]
    Ambiguous { target: String, matches: String },
    #[error(transparent)]
    Client(#[from] ClientError),
}

struct Seed {
    pane: PaneId,
    lines: Vec<String>,
    /// A whole capture (history, cursor and screen read with it; see `skim.rs`), or only
    /// the visible rows, with the cursor from the last listing.
    whole: Option<skim::Whole>,
}

/// The registry of the attached session's panes.
pub struct Panes {
    client: Client,
    panes: BTreeMap<PaneId, Pane>,
    /// Captures waiting for their place in the stream, by reply sequence number.
    seeds: HashMap<u64, Seed>,
    /// Reads of tmux's rows for panes whose model is behind, by reply sequence number.
    views: HashMap<u64, (PaneId, crate::tmux::client::Later)>,
}

impl Panes {
    /// An empty registry; it fills on the first [`ClientEvent::Attached`] (or [`Panes::sync`]).
    pub fn new(client: Client) -> Panes {
        Panes {
            client,
            panes: BTreeMap::new(),
            seeds: HashMap::new(),
            views: HashMap::new(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn get(&self, id: PaneId) -> Option<&Pane> {
        self.panes.get(&id)
    }

    pub fn get_mut(&mut self, id: PaneId) -> Option<&mut Pane> {
        self.panes.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pane> {
        self.panes.values()
    }

    /// Subscribes to the pane facts tmux pushes and rebuilds the view from scratch.
    pub async fn sync(&mut self) -> Result<(), ClientError> {
        for (name, format) in [
            (SUB_TITLE, "#{pane_title}"),
            (SUB_COMMAND, "#{pane_current_command}"),
            (SUB_LABEL, "#{@macs-agent}"),
            (SUB_MODE, "#{pane_in_mode}"),
        ] {
            self.client
                .run(&Command::subscribe(name, "%*", format))
                .await?;
        }
        self.panes.clear();
        self.seeds.clear();
        self.views.clear();
        self.refresh().await
    }

    /// Lists the session's panes: adds new ones (seeded), updates facts, drops closed ones.
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        let session = self.client.session().to_string();
        let lines = self
            .client
            .run(&Command::list_panes(
                ListScope::Session(session),
                LIST_FORMAT,
            ))
            .await?;
        let mut seen = Vec::new();
        for line in &lines {
            let Some(info) = PaneInfo::parse(line) else {
                warn!(line, "unreadable list-panes line");
                continue;
            };
            let id = info.pane_id();
            seen.push(id);
            let reseed = match self.panes.get_mut(&id) {
                None => {
                    self.panes.insert(id, Pane::new(info));
                    true
                }
                Some(pane) => {
                    let resized = (pane.info.width, pane.info.height) != (info.width, info.height);
                    if resized {
                        // A fault is logged by the pane; the capture below rebuilds it.
                        let _ = pane.set_size(info.height, info.width);
                    }
                    pane.info = info;
                    resized
                }
            };
            if reseed {
                self.capture(id).await?;
            }
        }
        self.panes.retain(|id, _| seen.contains(id));
        Ok(())
    }

    /// Asks for a capture of the pane, applied when its reply's place in the stream comes.
    async fn capture(&mut self, id: PaneId) -> Result<(), ClientError> {
        if self.panes.get(&id).is_some_and(|p| p.stale) {
            return self.capture_whole(id).await;
        }
        let opts = CaptureOpts {
            escapes: true,
            ..CaptureOpts::default()
        };
        match self
            .client
            .run_seq(&Command::capture_pane(&Target::Pane(id), &opts))
            .await
        {
            Ok(answer) => {
                self.seeds.insert(
                    answer.seq,
                    Seed {
                        pane: id,
                        lines: answer.lines,
                        whole: None,
                    },
                );
                Ok(())
            }
            // The pane closed in the meantime: the next refresh drops it.
            Err(ClientError::Command { message, .. }) => {
                debug!(pane = %id, %message, "capture failed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Applies one client event. Returns what changed.
    pub async fn handle(&mut self, ev: ClientEvent) -> Result<Vec<PaneChange>, ClientError> {
        let mut changes = Vec::new();
        match ev {
            ClientEvent::Attached { generation } => {
                debug!(generation, "attached; rebuilding panes");
                self.sync().await?;
                changes.push(PaneChange::Resynced);
            }
            ClientEvent::Detached { .. } | ClientEvent::Closed => {
                self.panes.clear();
                self.seeds.clear();
                self.views.clear();
                changes.push(PaneChange::Lost);
            }
            ClientEvent::Replied { seq } => {
                if let Some(seed) = self.seeds.remove(&seq) {
                    if let Some(pane) = self.panes.get_mut(&seed.pane) {
                        // A capture that breaks the model is not asked for again (no loop):
                        // the pane stays empty until its next output or resize.
                        let _ = match seed.whole {
                            Some(whole) => pane.replace(&seed.lines, whole),
                            None => {
                                let cursor = (pane.info.cursor_x, pane.info.cursor_y);
                                pane.seed(&seed.lines, cursor)
                            }
                        };
                        changes.push(PaneChange::Output(seed.pane));
                    }
                }
                if let Some(id) = self.viewed(seq) {
                    changes.push(PaneChange::Viewed(id));
                }
            }
            ClientEvent::Tmux(ev) => self.handle_tmux(ev, &mut changes).await?,
        }
        Ok(changes)
    }

    async fn handle_tmux(
        &mut self,
        ev: Event,
        changes: &mut Vec<PaneChange>,
    ) -> Result<(), ClientError> {
        match ev {
            Event::Output { pane, data } | Event::ExtendedOutput { pane, data, .. } => {
                let fault = match self.panes.get_mut(&pane) {
                    Some(p) if p.skim || p.stale => {
                        changes.push(PaneChange::Output(pane));
                        p.skip(&data);
                        false
                    }
                    Some(p) => {
                        changes.push(PaneChange::Output(pane));
                        p.feed(&data).is_err()
                    }
                    None => {
                        // A pane born after the last listing.
                        trace!(%pane, "output from an unknown pane");
                        self.refresh_and_report(changes).await?;
                        match self.panes.get_mut(&pane) {
                            Some(p) => {
                                changes.push(PaneChange::Output(pane));
                                p.feed(&data).is_err()
                            }
                            None => false,
                        }
                    }
                };
                if fault && !self.seeds.values().any(|s| s.pane == pane) {
                    self.capture(pane).await?;
                }
            }
            Event::Pause { pane } => {
                // tmux held this pane's output back: rebuild it from a capture, then resume.
                debug!(%pane, "paused by tmux; resyncing");
                self.capture(pane).await?;
                self.client.run(&Command::continue_pane(pane)).await?;
            }
            Event::SubscriptionChanged {
                name, pane, value, ..
            } => {
                if let Some(p) = pane.and_then(|id| self.panes.get_mut(&id)) {
                    let id = p.id();
                    if name == SUB_TITLE {
                        // tmux's word is at least as new as the output delivered before it.
                        p.live_title = None;
                    }
                    let field = match name.as_str() {
                        SUB_TITLE => Some(&mut p.info.title),
                        SUB_COMMAND => Some(&mut p.info.current_command),
                        _ => None,
                    };
                    if let Some(field) = field {
                        if *field != value {
                            *field = value;
                            changes.push(PaneChange::Info(id));
                        }
                    } else if name == SUB_MODE {
                        let in_mode = value.trim() == "1";
                        if p.info.in_mode != in_mode {
                            p.info.in_mode = in_mode;
                            changes.push(PaneChange::Info(id));
                        }
                    } else if name == SUB_LABEL {
                        let label = (!value.is_empty()).then_some(value);
                        if p.info.label != label {
                            p.info.label = label;
                            changes.push(PaneChange::Info(id));
                        }
                    }
                }
            }
            Event::WindowAdd { .. }
            | Event::WindowClose { .. }
            | Event::UnlinkedWindowClose { .. }
            | Event::WindowPaneChanged { .. }
            | Event::LayoutChange { .. }
            | Event::SessionWindowChanged { .. }
            | Event::WindowRenamed { .. } => self.refresh_and_report(changes).await?,
            _ => {}
        }
        Ok(())
    }

    async fn refresh_and_report(
        &mut self,
        changes: &mut Vec<PaneChange>,
    ) -> Result<(), ClientError> {
        let before: Vec<PaneId> = self.panes.keys().copied().collect();
        let facts: HashMap<PaneId, PaneInfo> = self
            .panes
            .iter()
            .map(|(id, p)| (*id, p.info.clone()))
            .collect();
        self.refresh().await?;
        for id in &before {
            if !self.panes.contains_key(id) {
                changes.push(PaneChange::Removed(*id));
            }
        }
        for (id, pane) in &self.panes {
            match facts.get(id) {
                None => changes.push(PaneChange::Added(*id)),
                Some(old) if *old != pane.info => changes.push(PaneChange::Info(*id)),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Finds a pane: see [`Panes::resolve`]. Kept `async` for its callers; it asks tmux
    /// nothing (tmux answers for the current pane when a target does not exist).
    pub async fn find(&self, target: &str) -> Result<PaneId, FindError> {
        self.resolve(target)
    }

    /// Resolves a target from what the registry knows, never from tmux: a pane id (`%3`), a
    /// label (the `@macs-agent` option, then the pane title, then the window name; exact, then
    /// ignoring case), or tmux target syntax within the attached session (`macs:0.1`,
    /// `macs:editor.1`, `macs:0`, `0.1`, `0`, `@2.1`, `macs:`). A window alone names its
    /// active pane. Anything else is an error listing the panes.
    pub fn resolve(&self, target: &str) -> Result<PaneId, FindError> {
        resolve_in(
            self.panes.values().map(|p| &p.info),
            self.client.session(),
            target,
        )
    }

    /// The panes as `%1 worker (macs:0.0)`, for error messages.
    pub fn describe(&self) -> String {
        describe_infos(self.panes.values().map(|p| &p.info))
    }

    /// The pinned default target (`set-target`), if any.
    pub async fn pinned_target(&self) -> Result<Option<String>, ClientError> {
        let session = Target::session(self.client.session());
        let lines = self
            .client
            .run(&Command::show_option_value(
                OptionScope::Session(session),
                TARGET_OPTION,
            ))
            .await?;
        Ok(lines
            .into_iter()
            .next()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }

    /// Pins the default target as a session option, so every tool and the daemon see it.
    pub async fn pin_target(&self, id: PaneId) -> Result<(), ClientError> {
        let session = Target::session(self.client.session());
        self.client
            .run(&Command::set_option(
                OptionScope::Session(session),
                TARGET_OPTION,
                &id.to_string(),
            ))
            .await
            .map(|_| ())
    }

    /// Whether captures are still waiting for their place in the stream.
    pub fn seeding(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// Applies events that are already waiting, without blocking (for one-shot tools that
    /// want the freshest view before they look).
    pub async fn drain(
        &mut self,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<ClientEvent>,
    ) -> Result<Vec<PaneChange>, ClientError> {
        let mut all = Vec::new();
        while let Ok(ev) = events.try_recv() {
            all.extend(self.handle(ev).await?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `list-panes` line: id, session, window id, window index, pane index, size, flags,
    /// label, window name, title.
    #[allow(clippy::too_many_arguments)]
    fn line(
        id: &str,
        session: &str,
        window: &str,
        wi: u32,
        pi: u32,
        (w, h): (u16, u16),
        (active, window_active): (bool, bool),
        label: &str,
        window_name: &str,
        title: &str,
    ) -> String {
        let b = |v: bool| if v { "1" } else { "0" };
        [
            id,
            session,
            window,
            &wi.to_string(),
            &pi.to_string(),
            &w.to_string(),
            &h.to_string(),
            "4242",
            "0",
            "0",
            "0",
            "0",
            "bash",
            label,
            "",
            b(active),
            b(window_active),
            "0",
            window_name,
            title,
        ]
        .join("\u{1f}")
    }

    fn info(rows: u16, cols: u16) -> PaneInfo {
        PaneInfo::parse(&line(
            "%1",
            "s",
            "@0",
            0,
            0,
            (cols, rows),
            (true, true),
            "",
            "w",
            "t",
        ))
        .expect("parses")
    }

    #[test]
    fn list_line_parses_with_odd_titles() {
        let line = "%3\u{1f}macs\u{1f}@1\u{1f}0\u{1f}1\u{1f}120\u{1f}40\u{1f}4242\u{1f}0\u{1f}1\u{1f}5\u{1f}39\u{1f}node\u{1f}worker\u{1f}\u{1f}1\u{1f}0\u{1f}0\u{1f}win\u{1f}✦  Working… \u{1f} odd";
        let info = PaneInfo::parse(line).expect("parses");
        assert_eq!(info.id, "%3");
        assert_eq!(info.target(), "macs:0.1");
        assert_eq!(info.label.as_deref(), Some("worker"));
        assert_eq!(info.profile, None);
        assert!(info.alternate_on);
        assert!(info.active);
        assert!(!info.window_active);
        assert_eq!(info.title, "✦  Working… \u{1f} odd");
        assert_eq!(info.display_name(), "worker");
    }

    #[test]
    fn bad_list_lines_are_refused() {
        assert!(PaneInfo::parse("").is_none());
        assert!(PaneInfo::parse("garbage").is_none());
        let bad_id = line(
            "x3",
            "macs",
            "@1",
            0,
            1,
            (120, 40),
            (true, true),
            "",
            "w",
            "t",
        );
        assert!(PaneInfo::parse(&bad_id).is_none());
    }

    #[test]
    fn seeding_reproduces_the_capture_and_cursor() {
        let mut pane = Pane::new(info(4, 20));
        pane.seed(
            &["\x1b[1mhello\x1b[0m".into(), "$ ".into(), "".into()],
            (2, 1),
        )
        .unwrap();
        assert_eq!(pane.lines(), vec!["hello", "$", "", ""]);
        pane.feed(b"ls").unwrap();
        assert_eq!(pane.cursor_row(), "$ ls");
    }

    #[test]
    fn history_comes_before_the_visible_rows_in_order() {
        let mut pane = Pane::new(info(3, 20));
        for i in 0..10 {
            pane.feed(format!("line{i}\r\n").as_bytes()).unwrap();
        }
        let all = pane.lines_with_history(5);
        assert_eq!(
            all,
            ["line3", "line4", "line5", "line6", "line7", "line8", "line9", ""]
        );
        let some = pane.lines_with_history(1);
        assert_eq!(some, vec!["line7", "line8", "line9", ""]);
        assert_eq!(pane.lines(), vec!["line8", "line9", ""]);
        assert_eq!(pane.lines_with_history(100).len(), 11);
    }

    #[test]
    fn a_pane_whose_model_fails_stays_usable() {
        let mut pane = Pane::new(info(1, 1));
        for bytes in [
            &b"a line wider than the pane\r\n"[..],
            "中\u{301}😀".as_bytes(),
            b"\x1b7\x1b[?1049h\x1b8\x1b[?1049l",
        ] {
            // Either it works or it fails cleanly; either way the pane answers after.
            let _ = pane.feed(bytes);
            let _ = pane.set_size(1, 1);
        }
        pane.set_size(2, 10).unwrap();
        pane.feed(b"\x1b[2J\x1b[Hafter").unwrap();
        assert_eq!(pane.lines()[0], "after");
    }

    fn registry() -> Vec<PaneInfo> {
        [
            line(
                "%0",
                "macs",
                "@0",
                0,
                0,
                (80, 24),
                (true, true),
                "worker",
                "agents",
                "✳ Claude Code",
            ),
            line(
                "%1",
                "macs",
                "@0",
                0,
                1,
                (80, 24),
                (false, true),
                "controller",
                "agents",
                "codex",
            ),
            line(
                "%2",
                "macs",
                "@1",
                1,
                0,
                (80, 24),
                (false, false),
                "",
                "logs.d",
                "tail",
            ),
            line(
                "%3",
                "macs",
                "@1",
                1,
                1,
                (80, 24),
                (true, false),
                "",
                "logs.d",
                "tail",
            ),
            line(
                "%4",
                "macs",
                "@2",
                2,
                0,
                (80, 24),
                (true, false),
                "",
                "editor",
                "nvim",
            ),
        ]
        .iter()
        .map(|l| PaneInfo::parse(l).expect("parses"))
        .collect()
    }

    fn resolve(target: &str) -> Result<String, String> {
        let infos = registry();
        resolve_in(infos.iter(), "macs", target)
            .map(|id| id.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn resolve_ids_labels_titles_and_window_names() {
        assert_eq!(resolve("%3"), Ok("%3".into()));
        assert_eq!(resolve(" worker "), Ok("%0".into()));
        assert_eq!(resolve("CONTROLLER"), Ok("%1".into()));
        assert_eq!(resolve("nvim"), Ok("%4".into()));
        assert_eq!(resolve("editor"), Ok("%4".into()));
        let err = resolve("tail").unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("%2") && err.contains("%3"),
            "{err}"
        );
    }

    #[test]
    fn resolve_tmux_target_syntax() {
        assert_eq!(resolve("macs:0.1"), Ok("%1".into()));
        assert_eq!(resolve("=macs:1.0"), Ok("%2".into()));
        assert_eq!(resolve("macs:editor.0"), Ok("%4".into()));
        assert_eq!(resolve("macs:logs.d.1"), Ok("%3".into()));
        assert_eq!(resolve("0.1"), Ok("%1".into()));
        assert_eq!(resolve("@1.0"), Ok("%2".into()));
        assert_eq!(resolve("macs:@2"), Ok("%4".into()));
        // A window alone is its active pane; the session alone, its current window's.
        assert_eq!(resolve("1"), Ok("%3".into()));
        assert_eq!(resolve("macs:0"), Ok("%0".into()));
        assert_eq!(resolve("macs:"), Ok("%0".into()));
        assert_eq!(resolve("macs"), Ok("%0".into()));
        assert_eq!(resolve("macs:1.%3"), Ok("%3".into()));
    }

    #[test]
    fn targets_that_name_no_pane_never_resolve_to_another() {
        for target in [
            "%9",
            "nobody",
            "other:0.0",
            "macs:0.7",
            "macs:9",
            "9.0",
            "7",
            "",
            "macs:nowin",
            ":0.5",
            "macs:1.%0",
        ] {
            let err = resolve(target).unwrap_err();
            assert!(
                err.contains("no pane matches") && err.contains("%0 worker (macs:0.0)"),
                "{target:?}: {err}"
            );
        }
    }
}
