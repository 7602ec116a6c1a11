//! The one registry of panes and agents: which pane is the worker, which the controller, which
//! are chat agents (by name), and per pane what the detectors remember, what waits to be typed
//! and what it showed last.
//!
//! Names are resolved purely from tmux's facts about the panes (the runner sends the list):
//! a pane id, the `@macs-agent` label, the title, the window name, or a tmux target
//! (`session:window.pane`, `window.pane`, a window index or name). A target that names no pane
//! matches nothing: it never falls back to another pane.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::AgentConfig;
use crate::detect::PaneState;
use crate::names::CHAT_LABEL;
use crate::pane::PaneInfo;
use crate::tmux::PaneId;

use super::deliveries::{Item, Queue};
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
    /// Why the classifier said so.
    pub reason: String,
    /// A look has been seen since the start.
    pub seen: bool,
    /// What the person was last shown about the queue.
    pub shown: Option<String>,
    /// The hop count of the last chat message typed here (0: from the person).
    pub hop_in: u32,
    /// When this agent sent its recent messages (for the send rate).
    pub sent: std::collections::VecDeque<std::time::Instant>,
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
            reason: String::new(),
            seen: false,
            shown: None,
            hop_in: 0,
            sent: Default::default(),
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
    /// The chat agents' panes (asked after every output of every pane).
    chat_panes: HashSet<PaneId>,
    slots: HashMap<PaneId, Slot>,
}

impl Agents {
    /// Takes the new list of panes; returns the items that waited for panes that are gone.
    pub fn set_panes(&mut self, panes: Vec<PaneInfo>) -> Vec<Item> {
        self.panes = panes.into_iter().map(|p| (p.pane_id(), p)).collect();
        let live = &self.panes;
        let mut orphans = Vec::new();
        // A gone pane's slot stays only while a writer works in it (its report comes back).
        self.slots.retain(|id, s| {
            if live.contains_key(id) {
                return true;
            }
            orphans.extend(s.queue.waiting.drain(..));
            s.queue.in_flight.is_some()
        });
        if self.worker.is_some_and(|w| !live.contains_key(&w)) {
            self.worker = None;
        }
        if self.controller.is_some_and(|c| !live.contains_key(&c)) {
            self.controller = None;
        }
        orphans
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
        self.chat_panes = found.values().flatten().copied().collect();
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
            || self.chat_panes.contains(&pane)
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
            .keys()
            .filter(|id| self.waits_for_idle(**id))
            .copied()
            .collect()
    }

    /// Whether something waits for this pane to be idle (a queued item, or one to recover).
    pub fn waits_for_idle(&self, id: PaneId) -> bool {
        self.panes.contains_key(&id)
            && self.slots.get(&id).is_some_and(|s| {
                !s.recovering.is_empty()
                    || (!s.queue.waiting.is_empty() && s.queue.in_flight.is_none())
            })
    }

    /// Every pane, for messages: `%3 worker (macs:0.0)`.
    pub fn describe(&self) -> String {
        crate::pane::describe_infos(self.panes.values())
    }
}

/// Resolves a target among the panes of `session`, from tmux's facts alone
/// ([`crate::pane::resolve_in`]): a target that names no pane matches nothing.
pub fn resolve(
    panes: &BTreeMap<PaneId, PaneInfo>,
    session: &str,
    target: &str,
) -> Result<PaneId, String> {
    crate::pane::resolve_in(panes.values(), session, target).map_err(|e| e.to_string())
}
