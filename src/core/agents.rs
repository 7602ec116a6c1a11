//! The one registry of panes and agents: which pane is the worker, which the controller, which
//! are chat agents (by name), and per pane what the detectors remember, what waits to be typed
//! and what it showed last.
//!
//! Names are resolved purely from tmux's facts about the panes (the runner sends the list):
//! a pane id, the `@macs-agent` label, the title, the window name, or a tmux target
//! (`session:window.pane`, `window.pane`, a window index or name). A target that names no pane
//! matches nothing: it never falls back to another pane.

use std::collections::{BTreeMap, HashMap};

use crate::config::AgentConfig;
use crate::detect::PaneState;
use crate::names::CHAT_LABEL;
use crate::pane::PaneInfo;
use crate::tmux::PaneId;

use super::deliveries::Queue;
use super::detection::Track;
use super::recovery::Recovering;

/// What the core keeps per pane.
pub struct Slot {
    pub track: Track,
    pub queue: Queue,
    /// Rows found half-typed after a crash, finished before anything else is typed here.
    pub recovering: Vec<Recovering>,
    /// What the pane showed last: its state and the text on its prompt line.
    pub state: PaneState,
    pub prompt: Option<String>,
    /// The profile that read it.
    pub profile: String,
    /// A look has been seen since the start.
    pub seen: bool,
    /// What the person was last shown about the queue.
    pub shown: Option<String>,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            track: Track::default(),
            queue: Queue::default(),
            recovering: Vec::new(),
            state: PaneState::Unknown,
            prompt: None,
            profile: String::new(),
            seen: false,
            shown: None,
        }
    }
}

impl Slot {
    /// Idle with an empty prompt: ready to be typed into.
    pub fn ready(&self) -> bool {
        self.seen
            && self.state == PaneState::Idle
            && self.prompt.as_deref().is_none_or(|p| p.trim().is_empty())
    }
}

/// The registry. See the module documentation.
#[derive(Default)]
pub struct Agents {
    panes: BTreeMap<PaneId, PaneInfo>,
    pub worker: Option<PaneId>,
    pub controller: Option<PaneId>,
    /// Chat agents by name, with their pane when one matches.
    chat: BTreeMap<String, Option<PaneId>>,
    slots: HashMap<PaneId, Slot>,
}

impl Agents {
    pub fn set_panes(&mut self, panes: Vec<PaneInfo>) {
        self.panes = panes.into_iter().map(|p| (p.pane_id(), p)).collect();
        let live = &self.panes;
        // Keep the slots of panes that are gone only while they hold work (it is reported).
        self.slots
            .retain(|id, s| live.contains_key(id) || !s.queue.is_empty());
        if self.worker.is_some_and(|w| !live.contains_key(&w)) {
            self.worker = None;
        }
        if self.controller.is_some_and(|c| !live.contains_key(&c)) {
            self.controller = None;
        }
    }

    pub fn info(&self, pane: PaneId) -> Option<&PaneInfo> {
        self.panes.get(&pane)
    }

    pub fn slot(&mut self, pane: PaneId) -> &mut Slot {
        self.slots.entry(pane).or_default()
    }

    pub fn get_slot(&self, pane: PaneId) -> Option<&Slot> {
        self.slots.get(&pane)
    }

    pub fn slots(&self) -> impl Iterator<Item = (&PaneId, &Slot)> {
        self.slots.iter()
    }

    /// Resolves the roles again; returns the chat agents that gained a pane.
    pub fn resolve(
        &mut self,
        worker: &str,
        controller: Option<&str>,
        chat: bool,
        configured: &[AgentConfig],
    ) -> Vec<String> {
        let session = self.panes.values().next().map(|p| p.session.clone());
        let session = session.as_deref().unwrap_or("");
        self.worker = resolve(&self.panes, session, worker).ok();
        self.controller = controller
            .and_then(|c| resolve(&self.panes, session, c).ok())
            .filter(|c| Some(*c) != self.worker);
        if !chat {
            return Vec::new();
        }
        let mut found: BTreeMap<String, Option<PaneId>> = BTreeMap::new();
        for a in configured {
            let target = a.target.as_deref().unwrap_or(&a.name);
            found.insert(a.name.clone(), resolve(&self.panes, session, target).ok());
        }
        for (id, p) in &self.panes {
            if let Some(label) = &p.label {
                if label != CHAT_LABEL && !found.contains_key(label) {
                    found.insert(label.clone(), Some(*id));
                }
            }
        }
        let mut gained = Vec::new();
        for (name, pane) in &found {
            if pane.is_some() && self.chat.get(name) != Some(pane) {
                gained.push(name.clone());
            }
        }
        self.chat = found;
        gained
    }

    /// The chat agents' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.chat.keys().cloned().collect()
    }

    pub fn is_agent(&self, name: &str) -> bool {
        self.chat.contains_key(name)
    }

    /// A chat agent's pane.
    pub fn pane_of(&self, name: &str) -> Option<PaneId> {
        self.chat.get(name).copied().flatten()
    }

    /// The chat agent in a pane.
    pub fn agent_of(&self, pane: PaneId) -> Option<String> {
        self.chat
            .iter()
            .find(|(_, p)| **p == Some(pane))
            .map(|(n, _)| n.clone())
    }

    /// The name a pane's deliveries are journaled under: its chat name, else its label or
    /// window name (made a valid name), else its id.
    pub fn recipient(&self, pane: PaneId) -> String {
        if let Some(name) = self.agent_of(pane) {
            return name;
        }
        let Some(info) = self.panes.get(&pane) else {
            return pane.to_string();
        };
        let name: String = info
            .display_name()
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '-'
                } else {
                    c
                }
            })
            .take(64)
            .collect();
        if name.is_empty() {
            pane.to_string()
        } else {
            name
        }
    }

    /// The name people know a pane by (its label, else its window name).
    pub fn display(&self, pane: PaneId) -> String {
        self.panes
            .get(&pane)
            .map(|p| p.display_name().to_string())
            .unwrap_or_else(|| pane.to_string())
    }

    /// Whether the runner should look at this pane when it changes.
    pub fn watched(&self, pane: PaneId) -> bool {
        self.worker == Some(pane)
            || self.controller == Some(pane)
            || self.chat.values().any(|p| *p == Some(pane))
            || self
                .slots
                .get(&pane)
                .is_some_and(|s| !s.queue.is_empty() || !s.recovering.is_empty())
    }

    pub fn watched_panes(&self) -> Vec<PaneId> {
        self.panes
            .keys()
            .copied()
            .filter(|p| self.watched(*p))
            .collect()
    }

    /// Panes with something waiting and nothing being typed.
    pub fn waiting_panes(&self) -> Vec<PaneId> {
        self.slots
            .iter()
            .filter(|(id, s)| {
                self.panes.contains_key(id)
                    && (!s.recovering.is_empty()
                        || (!s.queue.waiting.is_empty() && s.queue.in_flight.is_none()))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every pane, for messages: `%3 worker (macs:0.0)`.
    pub fn describe(&self) -> String {
        if self.panes.is_empty() {
            return "none".into();
        }
        self.panes
            .values()
            .map(|p| format!("{} {} ({})", p.id, p.display_name(), p.target()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Resolves a target among the panes of `session`: a pane id, then the `@macs-agent` label,
/// the title and the window name (exact, then ignoring case), then tmux target syntax
/// (`session:window.pane`, `session:window`, `window.pane`, `window`). Names that match
/// several panes are an error; so is a target that matches none.
pub fn resolve(
    panes: &BTreeMap<PaneId, PaneInfo>,
    session: &str,
    target: &str,
) -> Result<PaneId, String> {
    let target = target.trim();
    if let Ok(id) = target.parse::<PaneId>() {
        if panes.contains_key(&id) {
            return Ok(id);
        }
        return Err(format!("no pane {target} in session {session:?}"));
    }
    type Field = fn(&PaneInfo) -> Option<&str>;
    let fields: [Field; 3] = [
        |i| i.label.as_deref(),
        |i| Some(i.title.as_str()),
        |i| Some(i.window_name.as_str()),
    ];
    for field in fields {
        for exact in [true, false] {
            let matches: Vec<&PaneInfo> = panes
                .values()
                .filter(|p| {
                    field(p).is_some_and(|v| {
                        if exact {
                            v == target
                        } else {
                            v.eq_ignore_ascii_case(target)
                        }
                    })
                })
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(matches[0].pane_id()),
                _ => {
                    return Err(format!(
                        "{target:?} names several panes: {}",
                        matches
                            .iter()
                            .map(|p| format!("{} ({})", p.id, p.target()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
        }
    }
    // tmux target syntax, resolved from what tmux said about the panes.
    let (sess, rest) = match target.split_once(':') {
        Some((s, r)) => (Some(s), r),
        None => (None, target),
    };
    if sess.is_some_and(|s| !s.is_empty() && s != session) {
        return Err(format!("{target:?} is not in session {session:?}"));
    }
    let (window, pane) = match rest.rsplit_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (rest, None),
    };
    let in_window: Vec<&PaneInfo> = panes
        .values()
        .filter(|p| {
            window.is_empty() && sess.is_some()
                || window.parse::<u32>().is_ok_and(|w| w == p.window_index)
                || p.window_name == window
                || p.window == window
        })
        .collect();
    let found: Vec<&PaneInfo> = match pane {
        Some(ix) => match ix.parse::<u32>() {
            Ok(ix) => in_window
                .into_iter()
                .filter(|p| p.pane_index == ix)
                .collect(),
            Err(_) => Vec::new(),
        },
        None if sess.is_some() || window.parse::<u32>().is_ok() => in_window,
        None => Vec::new(),
    };
    match found.as_slice() {
        [one] => Ok(one.pane_id()),
        [] => Err(format!("no pane matches {target:?} in session {session:?}")),
        several => Err(format!(
            "{target:?} names a window of {} panes; name one ({})",
            several.len(),
            several
                .iter()
                .map(|p| p.target())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
