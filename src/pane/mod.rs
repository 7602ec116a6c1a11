//! The pane registry: every pane of the attached session with its tmux facts (title, current
//! command, label, size) and a screen model (`vt100`) seeded by `capture-pane -p -e` and fed by
//! `%output`. Panes and windows created after attach are picked up live, closed ones dropped.
//!
//! [`Panes`] is owned by one task (the core, or a one-shot tool) which feeds it every
//! [`ClientEvent`] in order. It never types into a pane.
//!
//! Seeding is ordered: a capture is applied at the point of the stream where its reply was
//! read ([`ClientEvent::Replied`]), so output that came before the capture is replaced by it
//! and output after it lands on top — nothing is lost or applied twice.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tracing::{debug, trace, warn};

use crate::detect::{classify, prompt_input, Classification, PaneView, Profile, Profiles};
use crate::inject::Look;
use crate::tmux::client::{Client, ClientError, ClientEvent};
use crate::tmux::command::{CaptureOpts, Command, ListScope, OptionScope, Target};
use crate::tmux::control::Event;
use crate::tmux::PaneId;

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
const LIST_FORMAT: &str = "#{pane_id}\u{1f}#{session_name}\u{1f}#{window_id}\u{1f}#{window_index}\u{1f}#{pane_index}\u{1f}#{pane_width}\u{1f}#{pane_height}\u{1f}#{pane_pid}\u{1f}#{pane_dead}\u{1f}#{alternate_on}\u{1f}#{cursor_x}\u{1f}#{cursor_y}\u{1f}#{pane_current_command}\u{1f}#{@macs-agent}\u{1f}#{@macs-profile}\u{1f}#{window_name}\u{1f}#{pane_title}";

const SUB_TITLE: &str = "macs-title";
const SUB_COMMAND: &str = "macs-cmd";
const SUB_LABEL: &str = "macs-label";

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
    pub window_name: String,
    pub title: String,
}

impl PaneInfo {
    /// Parses one line of [`LIST_FORMAT`] output.
    pub fn parse(line: &str) -> Option<PaneInfo> {
        let f: Vec<&str> = line.splitn(17, SEP).collect();
        if f.len() != 17 {
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
            window_name: f[15].to_string(),
            title: f[16].to_string(),
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
    screen: vt100::Parser,
    last_output: Option<Instant>,
    output_bytes: u64,
}

impl Pane {
    fn new(info: PaneInfo) -> Pane {
        let screen = vt100::Parser::new(info.height.max(1), info.width.max(1), MODEL_SCROLLBACK);
        Pane {
            info,
            screen,
            last_output: None,
            output_bytes: 0,
        }
    }

    pub fn id(&self) -> PaneId {
        self.info.pane_id()
    }

    /// The visible rows, top to bottom, as plain text.
    pub fn lines(&self) -> Vec<String> {
        let s = self.screen.screen();
        let (_, cols) = s.size();
        s.rows(0, cols).collect()
    }

    /// Up to `history` rows of scrollback (oldest first, at most one screen's height) followed
    /// by the visible rows. Programs on the alternate screen have no scrollback: what scrolled
    /// off is gone from tmux too.
    pub fn lines_with_history(&mut self, history: usize) -> Vec<String> {
        let (rows, cols) = self.screen.screen().size();
        // vt100 0.15 cannot show a scrollback offset larger than the screen (it underflows),
        // so one screen of history is what can be read.
        self.screen.set_scrollback(history.min(usize::from(rows)));
        let offset = self.screen.screen().scrollback();
        let mut out = Vec::with_capacity(offset + usize::from(rows));
        out.extend(self.screen.screen().rows(0, cols).take(offset));
        self.screen.set_scrollback(0);
        out.extend(self.screen.screen().rows(0, cols));
        out
    }

    /// The row the cursor is on, as plain text.
    pub fn cursor_row(&self) -> String {
        let s = self.screen.screen();
        let (row, _) = s.cursor_position();
        self.lines().get(row as usize).cloned().unwrap_or_default()
    }

    /// The screen model (for detectors that need cells or scrollback).
    pub fn screen(&self) -> &vt100::Screen {
        self.screen.screen()
    }

    /// Time since the pane last printed anything (None: nothing seen since attach).
    pub fn silent_for(&self) -> Option<Duration> {
        self.last_output.map(|t| t.elapsed())
    }

    /// Bytes of output seen since attach.
    pub fn output_bytes(&self) -> u64 {
        self.output_bytes
    }

    fn feed(&mut self, data: &[u8]) {
        self.screen.process(data);
        self.last_output = Some(Instant::now());
        self.output_bytes += data.len() as u64;
    }

    /// Replaces the model by a capture (`capture-pane -p -e` lines) and a cursor position.
    fn seed(&mut self, lines: &[String], cursor: (u16, u16)) {
        let (rows, cols) = (self.info.height.max(1), self.info.width.max(1));
        let mut p = vt100::Parser::new(rows, cols, MODEL_SCROLLBACK);
        if self.info.alternate_on {
            p.process(b"\x1b[?1049h");
        }
        for (i, line) in lines.iter().take(rows as usize).enumerate() {
            p.process(format!("\x1b[{};1H", i + 1).as_bytes());
            p.process(line.as_bytes());
            p.process(b"\x1b[0m");
        }
        p.process(format!("\x1b[{};{}H", cursor.1 + 1, cursor.0 + 1).as_bytes());
        self.screen = p;
    }

    /// Classifies the pane with its pinned profile, or the one picked from what it shows.
    pub fn classify(&self, profiles: &Profiles, busy_lines: usize) -> Classification {
        let lines = self.lines();
        self.classify_lines(profiles, busy_lines, &lines).1
    }

    fn classify_lines<'p>(
        &self,
        profiles: &'p Profiles,
        busy_lines: usize,
        lines: &[String],
    ) -> (&'p Profile, Classification) {
        let view = PaneView {
            lines,
            title: &self.info.title,
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
        let lines = self.lines();
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
}

/// The registry of the attached session's panes.
pub struct Panes {
    client: Client,
    panes: BTreeMap<PaneId, Pane>,
    /// Captures waiting for their place in the stream, by reply sequence number.
    seeds: HashMap<u64, Seed>,
}

impl Panes {
    /// An empty registry; it fills on the first [`ClientEvent::Attached`] (or [`Panes::sync`]).
    pub fn new(client: Client) -> Panes {
        Panes {
            client,
            panes: BTreeMap::new(),
            seeds: HashMap::new(),
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
        ] {
            self.client
                .run(&Command::subscribe(name, "%*", format))
                .await?;
        }
        self.panes.clear();
        self.seeds.clear();
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
                        pane.screen.set_size(info.height.max(1), info.width.max(1));
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
                changes.push(PaneChange::Lost);
            }
            ClientEvent::Replied { seq } => {
                if let Some(seed) = self.seeds.remove(&seq) {
                    if let Some(pane) = self.panes.get_mut(&seed.pane) {
                        let cursor = (pane.info.cursor_x, pane.info.cursor_y);
                        pane.seed(&seed.lines, cursor);
                        changes.push(PaneChange::Output(seed.pane));
                    }
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
                match self.panes.get_mut(&pane) {
                    Some(p) => {
                        p.feed(&data);
                        changes.push(PaneChange::Output(pane));
                    }
                    None => {
                        // A pane born after the last listing.
                        trace!(%pane, "output from an unknown pane");
                        self.refresh_and_report(changes).await?;
                        if let Some(p) = self.panes.get_mut(&pane) {
                            p.feed(&data);
                            changes.push(PaneChange::Output(pane));
                        }
                    }
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

    /// Finds a pane by id (`%3`), label (the `@macs-agent` option, then the pane title, then
    /// the window name; exact, then ignoring case) or tmux target (`macs:0.1`).
    pub async fn find(&self, target: &str) -> Result<PaneId, FindError> {
        let target = target.trim();
        if let Ok(id) = target.parse::<PaneId>() {
            if self.panes.contains_key(&id) {
                return Ok(id);
            }
        }
        type Field = fn(&PaneInfo) -> Option<&str>;
        let fields: [Field; 3] = [
            |i| i.label.as_deref(),
            |i| Some(i.title.as_str()),
            |i| Some(i.window_name.as_str()),
        ];
        for field in fields {
            for exact in [true, false] {
                let matches: Vec<&Pane> = self
                    .panes
                    .values()
                    .filter(|p| {
                        field(&p.info).is_some_and(|v| {
                            if exact {
                                v == target
                            } else {
                                v.eq_ignore_ascii_case(target)
                            }
                        })
                    })
                    .collect();
                match matches.len() {
                    0 => continue,
                    1 => return Ok(matches[0].id()),
                    _ => {
                        return Err(FindError::Ambiguous {
                            target: target.to_string(),
                            matches: matches
                                .iter()
                                .map(|p| format!("{} ({})", p.info.id, p.info.target()))
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                    }
                }
            }
        }
        // Last, let tmux resolve it as a target, within this session.
        let resolved = self
            .client
            .run(&Command::display_message(
                Some(&Target::Name(target.to_string())),
                "#{session_name}\u{1f}#{pane_id}",
            ))
            .await;
        if let Ok(lines) = resolved {
            if let Some((session, id)) = lines.first().and_then(|l| l.split_once(SEP)) {
                if let Ok(id) = id.parse::<PaneId>() {
                    if session == self.client.session() && self.panes.contains_key(&id) {
                        return Ok(id);
                    }
                }
            }
        }
        Err(FindError::NotFound {
            target: target.to_string(),
            session: self.client.session().to_string(),
            known: self.describe(),
        })
    }

    /// The panes as `%1 worker (macs:0.0)`, for error messages.
    pub fn describe(&self) -> String {
        if self.panes.is_empty() {
            return "none".into();
        }
        self.panes
            .values()
            .map(|p| {
                format!(
                    "{} {} ({})",
                    p.info.id,
                    p.info.display_name(),
                    p.info.target()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
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

    #[test]
    fn list_line_parses_with_odd_titles() {
        let line = "%3\u{1f}macs\u{1f}@1\u{1f}0\u{1f}1\u{1f}120\u{1f}40\u{1f}4242\u{1f}0\u{1f}1\u{1f}5\u{1f}39\u{1f}node\u{1f}worker\u{1f}\u{1f}win\u{1f}✦  Working… \u{1f} odd";
        let info = PaneInfo::parse(line).expect("parses");
        assert_eq!(info.id, "%3");
        assert_eq!(info.target(), "macs:0.1");
        assert_eq!(info.label.as_deref(), Some("worker"));
        assert_eq!(info.profile, None);
        assert!(info.alternate_on);
        assert_eq!(info.title, "✦  Working… \u{1f} odd");
        assert_eq!(info.display_name(), "worker");
    }

    #[test]
    fn bad_list_lines_are_refused() {
        assert!(PaneInfo::parse("").is_none());
        assert!(PaneInfo::parse("garbage").is_none());
        let bad_id = "x3\u{1f}macs\u{1f}@1\u{1f}0\u{1f}1\u{1f}120\u{1f}40\u{1f}1\u{1f}0\u{1f}0\u{1f}0\u{1f}0\u{1f}bash\u{1f}\u{1f}\u{1f}w\u{1f}t";
        assert!(PaneInfo::parse(bad_id).is_none());
    }

    #[test]
    fn seeding_reproduces_the_capture_and_cursor() {
        let info = PaneInfo::parse("%1\u{1f}s\u{1f}@0\u{1f}0\u{1f}0\u{1f}20\u{1f}4\u{1f}1\u{1f}0\u{1f}0\u{1f}2\u{1f}1\u{1f}bash\u{1f}\u{1f}\u{1f}w\u{1f}t").expect("parses");
        let mut pane = Pane::new(info);
        pane.seed(
            &["\x1b[1mhello\x1b[0m".into(), "$ ".into(), "".into()],
            (2, 1),
        );
        assert_eq!(pane.lines(), vec!["hello", "$ ", "", ""]);
        pane.feed(b"ls");
        assert_eq!(pane.cursor_row(), "$ ls");
    }

    #[test]
    fn history_comes_before_the_visible_rows_in_order() {
        let info = PaneInfo::parse("%1\u{1f}s\u{1f}@0\u{1f}0\u{1f}0\u{1f}20\u{1f}3\u{1f}1\u{1f}0\u{1f}0\u{1f}0\u{1f}0\u{1f}bash\u{1f}\u{1f}\u{1f}w\u{1f}t").expect("parses");
        let mut pane = Pane::new(info);
        for i in 0..10 {
            pane.feed(format!("line{i}\r\n").as_bytes());
        }
        let all = pane.lines_with_history(100);
        let text: Vec<&str> = all.iter().map(|s| s.trim_end()).collect();
        assert_eq!(text, ["line5", "line6", "line7", "line8", "line9", ""]);
        let some = pane.lines_with_history(1);
        assert_eq!(some, vec!["line7", "line8", "line9", ""]);
        assert_eq!(pane.lines(), vec!["line8", "line9", ""]);
    }
}
