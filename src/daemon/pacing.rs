//! When a pane that printed something is looked at.
//!
//! A look (the visible rows and the scrollback as text, the state classifier, block scanning)
//! costs far more than feeding the same output to the screen model, so a pane that streams
//! output must not be looked at after every batch of it. The rule:
//!
//! - output after a quiet spell ([`QUIET`] since the last look, and nothing left unlooked) is
//!   looked at at once: the first sign of life, a prompt coming back, costs no latency;
//! - output that follows closely waits until the pane has been quiet for [`QUIET`] (the end of
//!   a burst: an agent's turn ending is output stopping), or at most [`MAX_INTERVAL`] since
//!   the last look while it keeps streaming.
//!
//! What must not wait goes around this: a block's end marker in the output (the runner looks
//! right after it), a pane being typed into, and anything the core asks to see.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::tmux::PaneId;

/// How long a pane must be quiet before output that followed a look closely is looked at.
pub const QUIET: Duration = Duration::from_millis(30);
/// The longest a streaming pane goes without a look.
pub const MAX_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Pacing {
    last_look: HashMap<PaneId, Instant>,
    /// Panes with output not looked at yet, and when that output came last.
    pending: HashMap<PaneId, Instant>,
}

impl Pacing {
    /// The pane printed something at `now`: whether to look at it now (otherwise it is due
    /// later, see [`Pacing::next_due`]).
    pub fn output(&mut self, id: PaneId, now: Instant) -> bool {
        let since = self
            .last_look
            .get(&id)
            .map(|t| now.saturating_duration_since(*t));
        let now_ok = match since {
            None => true,
            Some(s) => s >= MAX_INTERVAL || (s >= QUIET && !self.pending.contains_key(&id)),
        };
        if !now_ok {
            self.pending.insert(id, now);
        }
        now_ok
    }

    /// The pane was looked at.
    pub fn looked(&mut self, id: PaneId, now: Instant) {
        self.last_look.insert(id, now);
        self.pending.remove(&id);
    }

    pub fn forget(&mut self, id: PaneId) {
        self.last_look.remove(&id);
        self.pending.remove(&id);
    }

    fn due_at(&self, id: PaneId, last_output: Instant) -> Instant {
        let quiet = last_output + QUIET;
        match self.last_look.get(&id) {
            Some(t) => quiet.min(*t + MAX_INTERVAL),
            None => last_output,
        }
    }

    /// The earliest moment a pane with output not looked at is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .map(|(id, out)| self.due_at(*id, *out))
            .min()
    }

    /// The panes due at `now` (they stay pending until looked at).
    pub fn due(&self, now: Instant) -> Vec<PaneId> {
        self.pending
            .iter()
            .filter(|(id, out)| self.due_at(**id, **out) <= now)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PaneId = PaneId(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_output_and_output_after_a_quiet_spell_are_looked_at_at_once() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        assert!(p.output(P, t0));
        p.looked(P, t0);
        assert!(p.output(P, t0 + ms(40)));
        p.looked(P, t0 + ms(40));
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn a_burst_is_looked_at_once_it_stops() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        assert!(p.output(P, t0));
        p.looked(P, t0);
        for i in 1..=5 {
            assert!(!p.output(P, t0 + ms(5 * i)));
        }
        let last = t0 + ms(25);
        assert_eq!(p.next_due(), Some(last + QUIET));
        assert!(p.due(last + QUIET - ms(1)).is_empty());
        assert_eq!(p.due(last + QUIET), vec![P]);
        p.looked(P, last + QUIET);
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn a_pane_that_never_stops_is_looked_at_every_max_interval() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        assert!(p.output(P, t0));
        p.looked(P, t0);
        let mut looks = 1;
        let mut t = t0;
        // 20 ms apart for 5 s: never quiet for 30 ms.
        for _ in 0..250 {
            t += ms(20);
            if p.output(P, t) || !p.due(t).is_empty() {
                p.looked(P, t);
                looks += 1;
            }
        }
        assert!((10..=11).contains(&looks), "{looks} looks in 5 s");
    }

    #[test]
    fn a_forgotten_pane_is_due_never() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        p.output(P, t0);
        p.looked(P, t0);
        p.output(P, t0 + ms(1));
        p.forget(P);
        assert_eq!(p.next_due(), None);
    }
}
