//! Everything the bridge types goes through here: one queue per pane, filled from the journal
//! (the store's delivery rows), one writer at a time per pane, typing only when the pane is
//! idle with an empty prompt (urgent text also into a busy pane, never into a menu).
//!
//! Before a job is handed to a writer, its row becomes `delivering` with the exact text
//! ([`crate::store::Store::begin_typing`]); the writer announces each further step
//! ([`super::Event::Stage`]) and the journal records it before the step happens; the outcome
//! is recorded when the writer reports. So at any crash the journal says what may be in the
//! pane ([`super::recovery`]).

use std::collections::VecDeque;

use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::api::protocol as p;
use crate::chatline::{delivered_text, To};
use crate::detect::PaneState;
use crate::inject::{self, InjectError, Outcome};
use crate::store::{DeliveryStatus as DS, Message, MessageKind, Stage};
use crate::tmux::command::KeyName;
use crate::tmux::PaneId;

use super::{Core, Effect, How, Job, View};

/// What an item is, so its outcome can be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// An answer to request `id`.
    Answer { request: String },
    /// Request `id` wrapped for the controller.
    Prompt { request: String },
    /// A chat message from `from`, `hop` messages away from the person (0: the person's own).
    Chat {
        message: String,
        hop: u32,
        from: String,
        thread: Thread,
    },
    /// A notice from the bridge.
    Notice,
    /// A key the person sends.
    Key(KeyName),
}

/// What a chat message is part of (from its `meta`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    /// `task.assign`: the reply is typed back into the sender.
    pub assign: bool,
    /// Part of a discussion (its round).
    pub round: Option<u32>,
}

impl Thread {
    pub fn from_meta(meta: &Value) -> Thread {
        Thread {
            assign: meta.get("task").and_then(Value::as_str) == Some("assign"),
            round: meta
                .get("round")
                .and_then(Value::as_u64)
                .map(|r| r.min(u64::from(u32::MAX)) as u32),
        }
    }
}

/// One journal row waiting for (or being typed into) a pane.
#[derive(Debug, Clone)]
pub struct Item {
    pub delivery: i64,
    /// The message this row delivers (every typed item is a message in the journal).
    pub message: String,
    pub text: String,
    pub kind: ItemKind,
    pub urgent: bool,
    pub recipient: String,
}

impl Item {
    /// The request an answer or a prompt is for.
    pub fn request(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Answer { request } | ItemKind::Prompt { request } => Some(request),
            _ => None,
        }
    }

    /// The item a journal row stands for.
    pub fn from_row(delivery: i64, recipient: &str, m: &Message) -> Option<Item> {
        let request = || {
            m.meta
                .get("request")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let (text, kind) = match m.kind {
            MessageKind::Chat => (
                if m.meta.get("relay").and_then(|v| v.as_bool()) == Some(true) {
                    // A discussion's relay: already `[from NAME] …` per reply.
                    m.content.clone()
                } else if m.meta.get("task").and_then(|v| v.as_str()) == Some("reply") {
                    format!("[reply from {}] {}", m.from, m.content)
                } else {
                    delivered_text(&m.from, &To::parse(&m.to), &m.content)
                },
                ItemKind::Chat {
                    message: m.id.clone(),
                    hop: m
                        .meta
                        .get("hop")
                        .and_then(|h| h.as_u64())
                        .map_or(0, |h| h.min(u64::from(u32::MAX)) as u32),
                    from: m.from.clone(),
                    thread: Thread::from_meta(&m.meta),
                },
            ),
            MessageKind::Answer => (
                m.content.clone(),
                ItemKind::Answer {
                    request: request()?,
                },
            ),
            MessageKind::Prompt => (
                m.content.clone(),
                ItemKind::Prompt {
                    request: request()?,
                },
            ),
            MessageKind::Notice | MessageKind::System => (m.content.clone(), ItemKind::Notice),
            MessageKind::Key => {
                let key = m.content.strip_prefix("key ").unwrap_or(&m.content);
                (key.to_string(), ItemKind::Key(KeyName::parse(key).ok()?))
            }
        };
        Some(Item {
            delivery,
            message: m.id.clone(),
            text,
            kind,
            urgent: m.urgent,
            recipient: recipient.to_string(),
        })
    }
}

/// A row found `delivering` at start-up (or after a writer failed midway), settled by
/// [`super::recovery`] from what the pane shows.
#[derive(Debug, Clone)]
pub struct Recovering {
    pub item: Item,
    /// The exact text the row says was being typed.
    pub typed: String,
    pub stage: Option<Stage>,
}

/// The queue of one pane.
#[derive(Debug, Default)]
pub struct Queue {
    pub waiting: VecDeque<Item>,
    /// The item a writer is typing.
    pub in_flight: Option<Item>,
}

impl Queue {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_none()
    }

    pub fn len(&self) -> usize {
        self.waiting.len() + usize::from(self.in_flight.is_some())
    }

    fn push(&mut self, item: Item) {
        if item.urgent {
            // Before the ordinary items, after earlier urgent ones.
            let at = self.waiting.iter().take_while(|x| x.urgent).count();
            self.waiting.insert(at, item);
        } else {
            self.waiting.push_back(item);
        }
    }
}

impl Core {
    /// Puts a chat agent's queued rows from the journal into its pane's queue (once each).
    pub(super) fn load_queue(&mut self, name: &str) {
        if let Some(pane) = self.agents.pane_of(name) {
            self.load_queue_of(pane, name);
        }
    }

    /// Puts `recipient`'s queued rows into `pane`'s queue (once each), and tries to type.
    pub(super) fn load_queue_of(&mut self, pane: PaneId, recipient: &str) {
        let Some(store) = &self.store else { return };
        let rows = match store.next_deliveries_with_messages(recipient, 1000) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, recipient, "cannot read the queue");
                return;
            }
        };
        let mut added = false;
        for (d, m) in rows {
            if self.in_queue.contains(&d.id) {
                continue;
            }
            let Some(item) = Item::from_row(d.id, recipient, &m) else {
                warn!(
                    delivery = d.id,
                    "a journal row that cannot be typed; marked failed"
                );
                self.journal(|st| st.mark(d.id, DS::Failed, Some("not a typeable item")));
                continue;
            };
            self.in_queue.insert(d.id);
            self.agents.slot(pane).queue.push(item);
            added = true;
        }
        if added && self.started {
            self.pump(pane);
        }
    }

    /// Starts the next job for a pane when it is ready; shows the queue to the person.
    pub(super) fn pump(&mut self, pane: PaneId) {
        let paused = self
            .agents
            .agent_of(pane)
            .is_some_and(|n| self.paused.contains(&n));
        let slot = self.agents.slot(pane);
        let front_urgent = slot.queue.waiting.front().is_some_and(|i| i.urgent);
        let front_key = slot
            .queue
            .waiting
            .front()
            .is_some_and(|i| matches!(i.kind, ItemKind::Key(_)));
        // A key (the person's `!C-c`) goes also to a paused agent: pausing holds messages.
        let can = slot.queue.in_flight.is_none()
            && slot.recovering.is_empty()
            && (!paused || front_key)
            && !self.stopping;
        let go = can
            && slot.seen
            && (slot.ready() || front_key || (front_urgent && slot.state == PaneState::Busy));
        if go {
            if let Some(item) = slot.queue.waiting.pop_front() {
                self.start_job(pane, item, How::Type);
            }
        }
        self.show_queue(pane);
    }

    /// Records the row as being typed, then hands the job to a writer.
    pub(super) fn start_job(&mut self, pane: PaneId, item: Item, how: How) {
        let (text, how) = match &item.kind {
            ItemKind::Key(k) => (k.to_string(), How::Key(k.clone())),
            _ => (inject::guard_prefix(&inject::sanitize(&item.text)), how),
        };
        if text.trim().is_empty() {
            self.journal(|st| st.mark(item.delivery, DS::Failed, Some("nothing to type")));
            self.in_queue.remove(&item.delivery);
            self.item_failed(
                &item,
                "the text has nothing to send once control characters are removed",
            );
            return;
        }
        if matches!(how, How::Type) && self.discussion_over(&item) {
            self.give_up(&item, "the discussion it belongs to is over");
            self.pump(pane);
            return;
        }
        if self.store.is_some()
            && self
                .journal(|st| st.begin_typing(item.delivery, &text))
                .is_none()
        {
            // Not recorded: not typed (it stays queued in the journal for a restart).
            self.in_queue.remove(&item.delivery);
            return;
        }
        if let ItemKind::Prompt { request } = &item.kind {
            if let Some(a) = self.auto.asking.as_mut().filter(|a| a.id == *request) {
                a.typed = true;
                a.delivery = Some(item.delivery);
            }
        }
        if let ItemKind::Chat { hop, .. } = &item.kind {
            // What this agent says next is one hop further from the person (set now: a quick
            // agent answers before the writer has confirmed the submission).
            self.agents.slot(pane).hop_in = *hop;
        }
        if !matches!(item.kind, ItemKind::Key(_)) {
            let track = &mut self.agents.slot(pane).track;
            track.typed(&text);
            // The agent gets input: its next reply ends a turn, whether or not it looks busy
            // (the reply on screen now is the one before it; a quick agent answers before the
            // writer has even confirmed the submission).
            track.awaiting = Some(track.last_reply.clone());
            track.left_prompt = None;
            if !item.urgent || self.agents.slot(pane).state == PaneState::Idle {
                self.remember_origin(pane, &item);
            }
        }
        self.delivery_update(&item, DS::Delivering, None);
        let job = Job {
            delivery: item.delivery,
            pane,
            text,
            how,
            urgent: item.urgent,
        };
        self.agents.slot(pane).queue.in_flight = Some(item);
        self.out.push(Effect::Deliver(job));
    }

    /// A writer finished.
    pub(super) fn done(&mut self, job: Job, result: Result<Outcome, InjectError>) {
        let pane = job.pane;
        let slot = self.agents.slot(pane);
        let item = match slot.queue.in_flight.take() {
            Some(i) if i.delivery == job.delivery => i,
            other => {
                slot.queue.in_flight = other;
                warn!(
                    delivery = job.delivery,
                    "a report for a job that is not in flight"
                );
                return;
            }
        };
        match result {
            Ok(outcome) => self.finished(pane, &job, item, outcome),
            Err(InjectError::Empty) => {
                self.give_up(&item, "nothing to type");
                self.item_failed(
                    &item,
                    "the response has nothing to send once control characters are removed",
                );
            }
            Err(e @ (InjectError::NotIdle { .. } | InjectError::PromptHasText { .. }))
                if self.agents.info(pane).is_some() =>
            {
                // Refused before the first keystroke: back to the front of the queue.
                debug!(%pane, error = %e, "not delivered yet; back in the queue");
                let detail = e.to_string();
                self.journal(|st| st.mark(item.delivery, DS::Queued, Some(&detail)));
                self.delivery_update(&item, DS::Queued, Some(&detail));
                self.agents.slot(pane).queue.waiting.push_front(item);
            }
            Err(e) if self.agents.info(pane).is_none() => {
                // The pane is gone: the row waits in the journal for its recipient's next pane.
                let detail = e.to_string();
                self.in_queue.remove(&item.delivery);
                self.journal(|st| st.mark(item.delivery, DS::Queued, Some(&detail)));
                self.delivery_update(&item, DS::Queued, Some(&detail));
            }
            Err(e) => {
                // tmux failed somewhere in the middle (a timeout, a lost connection): what
                // reached the pane is unknown. The journal's stage and a look at the pane decide,
                // as after a crash; nothing is typed again on a guess.
                debug!(%pane, error = %e, "the writer failed midway; looking at the pane");
                let stage = self
                    .store
                    .as_ref()
                    .and_then(|st| st.delivery(item.delivery).ok().flatten())
                    .and_then(|(d, _)| d.stage);
                self.agents.slot(pane).recovering.push(Recovering {
                    item,
                    typed: job.text.clone(),
                    stage,
                });
            }
        }
        self.out.push(Effect::Look(vec![pane]));
    }

    fn finished(&mut self, pane: PaneId, job: &Job, item: Item, outcome: Outcome) {
        self.in_queue.remove(&item.delivery);
        let (status, word, detail) = match &outcome {
            Outcome::Delivered { key, evidence } => (
                DS::Delivered,
                "delivered",
                format!("submitted with {key}: {evidence}"),
            ),
            Outcome::Typed => (DS::Delivered, "typed", "not submitted".to_string()),
            Outcome::Unconfirmed { reason } => (DS::Unconfirmed, "unconfirmed", reason.clone()),
        };
        let error = (status != DS::Delivered).then_some(detail.as_str());
        self.journal(|st| st.mark(item.delivery, status, error));
        self.delivery_update(&item, status, error);
        let id = match &item.kind {
            ItemKind::Answer { request } | ItemKind::Prompt { request } => request.clone(),
            ItemKind::Chat { message, .. } => message.clone(),
            ItemKind::Notice => format!("notice {}", item.message),
            ItemKind::Key(k) => format!("key {k} ({})", item.message),
        };
        let word = match (&item.kind, word) {
            (ItemKind::Prompt { .. }, "delivered") => "prompted",
            (_, w) => w,
        };
        if status != DS::Delivered {
            self.agents.slot(pane).track.awaiting = None;
        }
        match (&item.kind, status) {
            (ItemKind::Answer { request }, DS::Delivered) => {
                self.answer_delivered(request, pane, &job.text, &detail);
            }
            (ItemKind::Answer { request }, _) => {
                // The text may be in the prompt or may have gone: never typed twice on a
                // guess. The person decides (save the file again to retry).
                self.view(View::Error {
                    id: request.clone(),
                    text: format!(
                        "delivery unconfirmed: {detail}. The text may be in the worker's \
                         prompt; save this response again to retry."
                    ),
                });
            }
            _ => {}
        }
        self.print(
            word,
            format!("{id} → {pane}: {detail}"),
            json!({ "id": id, "pane": pane.to_string(), "detail": detail,
                    "delivery": item.delivery }),
        );
    }

    /// A row that will not be typed: failed in the journal, out of the queue, and said to
    /// subscribers.
    pub(super) fn give_up(&mut self, item: &Item, why: &str) {
        self.in_queue.remove(&item.delivery);
        self.journal(|st| st.mark(item.delivery, DS::Failed, Some(why)));
        self.delivery_update(item, DS::Failed, Some(why));
    }

    /// An item that can never be typed.
    fn item_failed(&mut self, item: &Item, why: &str) {
        if let ItemKind::Answer { request } = &item.kind {
            self.view(View::Error {
                id: request.clone(),
                text: why.to_string(),
            });
        }
    }

    /// Tells subscribers how a chat delivery stands.
    pub(super) fn delivery_update(&mut self, item: &Item, status: DS, detail: Option<&str>) {
        let ItemKind::Chat { message, .. } = &item.kind else {
            return;
        };
        let status = wire_status(status);
        self.publish(
            p::event::DELIVERY_UPDATE,
            p::DeliveryUpdateEvent {
                message_id: message.clone(),
                recipient: item.recipient.clone(),
                status,
                detail: detail.map(str::to_string),
            },
        );
    }

    /// Shows the person what waits for a pane (when it changed).
    pub(super) fn show_queue(&mut self, pane: PaneId) {
        let slot = self.agents.slot(pane);
        let n = slot.queue.len() + slot.recovering.len();
        let status = if n == 0 {
            None
        } else if slot.queue.in_flight.is_some() {
            Some(format!("[macs: delivering, {n} queued]"))
        } else {
            let why = if !slot.seen {
                "waiting for a first look"
            } else if slot.state == PaneState::Idle && !slot.ready() {
                "waiting: the prompt holds someone's text"
            } else if slot.state == PaneState::Asking && slot.reason.contains("mode") {
                "waiting: the pane is in copy mode"
            } else if slot.state == PaneState::Asking {
                "waiting: a menu is open"
            } else {
                "waiting for idle"
            };
            Some(format!("[macs: {n} queued, {why}]"))
        };
        if status == slot.shown {
            return;
        }
        slot.shown = status.clone();
        self.out.push(Effect::ShowQueue { pane, status });
    }
}

/// A journal status as the API says it.
pub(super) fn wire_status(s: DS) -> p::DeliveryStatus {
    match s {
        DS::Queued | DS::Held => p::DeliveryStatus::Queued,
        DS::Delivering => p::DeliveryStatus::Delivering,
        DS::Delivered => p::DeliveryStatus::Delivered,
        DS::Unconfirmed => p::DeliveryStatus::Unconfirmed,
        DS::Failed => p::DeliveryStatus::Failed,
    }
}
