//! Looking at panes: the screen as the model shows it (or as tmux shows it, while a pane that
//! floods is skimmed), handed to the core and to the writers that type into the pane.

use tracing::debug;

use super::{pacing, Runner, SCAN_HISTORY};
use crate::core::{Event, PaneSeen};
use crate::tmux::PaneId;

impl Runner {
    /// Looks at every pane that changed and that someone wants to see.
    pub(super) async fn look_dirty(&mut self) {
        let dirty: Vec<PaneId> = self.dirty.drain().collect();
        for id in dirty {
            self.look_at(id).await;
        }
    }

    pub(super) async fn look_at(&mut self, id: PaneId) {
        let now = std::time::Instant::now();
        self.pacing.looked(id, now);
        if !self.silences.is_empty() {
            self.looked.insert(id, std::time::Instant::now());
        }
        let writing = self.writing.contains(&id);
        let Some(pane) = self.panes.get(id) else {
            return;
        };
        // A pane that floods is skimmed (its output not modelled), unless something types
        // into it or waits to.
        let skim = !writing
            && !self.core.waits_for_idle(id)
            && pacing::floods(pane.skimmed(), self.pacing.rate(id, now));
        self.pacing.set_flooding(id, skim);
        if let Err(e) = self.panes.set_skim(id, skim).await {
            debug!(pane = %id, error = %e, "cannot capture the pane");
        }
        if !self.core.wants_look(id) && !writing {
            return;
        }
        if self.panes.get(id).is_some_and(|p| p.needs_view()) {
            // Looked at when tmux's rows come (`PaneChange::Viewed`).
            self.panes.request_view(id);
            return;
        }
        self.look_now(id).await;
    }

    /// Looks at a pane as its model (or tmux's rows, while the model is behind) shows it.
    pub(super) async fn look_now(&mut self, id: PaneId) {
        let wants = self.core.wants_look(id);
        let writing = self.writing.contains(&id);
        if !wants && !writing {
            return;
        }
        let busy_lines = self.cfg.busy_lines;
        let Some(pane) = self.panes.get_mut(id) else {
            return;
        };
        let history = if wants { SCAN_HISTORY } else { 0 };
        let (look, lines) = pane.look_with_history(&self.profiles, busy_lines, history);
        if let Some(tx) = self.looks.get(&id) {
            tx.send_replace(Some(look.clone()));
        }
        if wants {
            let starts = self.starts.remove(&id).unwrap_or(0);
            self.feed(Event::Seen(PaneSeen {
                pane: id,
                look,
                lines,
                starts,
            }))
            .await;
        }
    }
}
