//! The delivery engine every mode shares: one queue per pane, one writer task per pane at a
//! time, typing only when the pane is idle.
//!
//! The core owns the queues and decides when a pane is ready (idle, nothing of someone else's on
//! its prompt line); the writer task runs the recipe in [`crate::inject`] against a live view
//! that the core publishes, and reports the outcome back. A delivery the writer finds not
//! ready after all goes back to the front of its queue.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::inject::{self, InjectError, InjectOptions, Look, Outcome, PaneWatch};
use crate::tmux::client::Client;
use crate::tmux::PaneId;

/// Where a delivery came from, so its outcome can be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A response file in `outbox/` answering request `id`.
    Outbox { id: String },
    /// A request (wrapped in the controller prompt) sent to a controller pane.
    ControllerPrompt { id: String },
    /// A chat message.
    Chat { id: String },
}

/// One piece of text waiting for a pane.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub pane: PaneId,
    pub text: String,
    pub origin: Origin,
    /// Skips the queue and the busy guard (the person's `!` messages); never types into a menu
    /// or over someone's text.
    pub urgent: bool,
}

/// What a writer task reports.
#[derive(Debug)]
pub struct Finished {
    pub delivery: Delivery,
    pub result: Result<Outcome, InjectError>,
}

/// The queue of one pane.
#[derive(Default)]
pub struct PaneQueue {
    pub waiting: VecDeque<Delivery>,
    pub in_flight: bool,
    /// The origin of the delivery being typed.
    pub current: Option<Origin>,
    /// What the person was last shown about this queue.
    pub shown: Option<String>,
}

impl PaneQueue {
    /// The outbox id being typed right now, if any.
    pub fn in_flight_id(&self) -> Option<&str> {
        match &self.current {
            Some(Origin::Outbox { id }) => Some(id),
            _ => None,
        }
    }

    /// The short status shown to the person, or None when nothing waits.
    pub fn status(&self, look: Option<&Look>) -> Option<String> {
        let n = self.waiting.len() + usize::from(self.in_flight);
        if n == 0 {
            return None;
        }
        if self.in_flight {
            return Some(format!("[macs: delivering, {n} queued]"));
        }
        let why = match look {
            Some(l) if l.state == crate::detect::PaneState::Idle && l.prompt_input.is_some() => {
                "waiting: the prompt holds someone's text"
            }
            Some(l) if l.state == crate::detect::PaneState::Asking => "waiting: a menu is open",
            _ => "waiting for idle",
        };
        Some(format!("[macs: {n} queued, {why}]"))
    }
}

/// A view of one pane for the writer task, fed by the core through a watch channel.
pub struct WatchView {
    pub client: Client,
    pub looks: watch::Receiver<Option<Look>>,
}

impl PaneWatch for WatchView {
    async fn look(&mut self, pane: PaneId) -> Result<Look, InjectError> {
        self.looks
            .borrow_and_update()
            .clone()
            .ok_or(InjectError::PaneGone(pane))
    }

    async fn settle(&mut self, max: Duration) {
        let _ = tokio::time::timeout(max, self.looks.changed()).await;
    }

    fn client(&self) -> &Client {
        &self.client
    }
}

/// Starts the writer task for one delivery.
pub fn spawn_writer(
    mut view: WatchView,
    delivery: Delivery,
    opts: InjectOptions,
    done: mpsc::UnboundedSender<Finished>,
) {
    tokio::spawn(async move {
        let result = inject::deliver(&mut view, delivery.pane, &delivery.text, &opts).await;
        let _ = done.send(Finished { delivery, result });
    });
}
