//! When a pane that printed something is looked at.
//!
//! A look (the visible rows and the scrollback as text, the state classifier, block scanning)
//! costs far more than feeding the same output to the screen model, so a pane that streams
//! output must not be looked at after every batch of it. The rule:
//!
//! - output after a quiet spell ([`QUIET`] since the last look, and nothing left unlooked) is
//!   looked at at once: the first sign of life, a prompt coming back, costs no latency;
//! - output that follows closely is looked at once the pane has been quiet for [`QUIET`] (the
//!   end of a burst: an agent's turn ending is output stopping), but not sooner after the last
//!   look than the pane's output rate allows: `gap² ≥ bytes × COST`, so a pane printing a few
//!   KB/s (an agent streaming its answer) is looked at every few tens of milliseconds, one
//!   printing 100 KB/s about twice a second;
//! - and at least every [`MAX_INTERVAL`] while it prints ([`FLOODING_INTERVAL`] while it
//!   floods: see [`floods`]).
//!
//! What must not wait goes around this: a block's end marker in the output (the runner looks
//! right after it), a pane being typed into or that something waits to type into (a queued
//! message goes in the moment the pane is idle), and anything the core asks to see.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::tmux::PaneId;

/// How long a pane must be quiet before output that followed a look closely is looked at.
pub const QUIET: Duration = Duration::from_millis(30);
/// The longest a printing pane goes without a look.
pub const MAX_INTERVAL: Duration = Duration::from_millis(500);
/// The longest a pane that floods goes without a look while it prints. Such a pane is busy
/// by any measure, a look at it reads tmux's rows (a capture, work for tmux), and the look
/// that matters comes [`QUIET`] after it stops.
pub const FLOODING_INTERVAL: Duration = Duration::from_secs(2);
/// Seconds² of gap per byte of output since the last look (see the module's documentation):
/// 100 KB/s gives 0.5 s, 10 KB/s 50 ms, 1 KB/s 5 ms.
const COST: f64 = 5e-6;

#[derive(Debug, Default)]
pub struct Pacing {
    last_look: HashMap<PaneId, Instant>,
    /// Panes with output not looked at yet: when it came last, and how many bytes.
    pending: HashMap<PaneId, (Instant, u64)>,
    /// What each pane printed lately, to tell its rate.
    rates: HashMap<PaneId, Rate>,
    /// Panes that flood (see [`Pacing::set_flooding`]).
    flooding: HashSet<PaneId>,
}

/// Bytes printed in the current second and the one before (seconds counted from the first
/// output).
#[derive(Debug, Clone, Copy)]
struct Rate {
    start: Instant,
    this: u64,
    before: u64,
}

impl Rate {
    fn roll(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.start);
        if age >= 2 * RATE_WINDOW {
            self.before = 0;
            self.this = 0;
            self.start = now;
        } else if age >= RATE_WINDOW {
            self.before = self.this;
            self.this = 0;
            self.start += RATE_WINDOW;
        }
    }

    /// Bytes a second over the last [`RATE_WINDOW`] (the window before weighed by how much of
    /// it is still inside).
    fn per_second(mut self, now: Instant) -> f64 {
        self.roll(now);
        let into =
            now.saturating_duration_since(self.start).as_secs_f64() / RATE_WINDOW.as_secs_f64();
        (self.this as f64 + self.before as f64 * (1.0 - into)) / RATE_WINDOW.as_secs_f64()
    }
}

/// The stretch of time a pane's output rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

impl Pacing {
    /// The pane printed `bytes` at `now`: whether to look at it now (otherwise it is due
    /// later, see [`Pacing::next_due`]).
    pub fn output(&mut self, id: PaneId, now: Instant, bytes: u64) -> bool {
        let rate = self.rates.entry(id).or_insert(Rate {
            start: now,
            this: 0,
            before: 0,
        });
        rate.roll(now);
        rate.this += bytes;
        let since = self
            .last_look
            .get(&id)
            .map(|t| now.saturating_duration_since(*t));
        let now_ok = match since {
            None => true,
            Some(s) => {
                s >= self.max_interval(id) || (s >= QUIET && !self.pending.contains_key(&id))
            }
        };
        if !now_ok {
            let e = self.pending.entry(id).or_insert((now, 0));
            e.0 = now;
            e.1 += bytes;
        }
        now_ok
    }

    /// The pane was looked at.
    pub fn looked(&mut self, id: PaneId, now: Instant) {
        self.last_look.insert(id, now);
        self.pending.remove(&id);
    }

    /// Whether the pane floods (its looks wait up to [`FLOODING_INTERVAL`]).
    pub fn set_flooding(&mut self, id: PaneId, flooding: bool) {
        if flooding {
            self.flooding.insert(id);
        } else {
            self.flooding.remove(&id);
        }
    }

    /// Whether any pane floods.
    pub fn any_flooding(&self) -> bool {
        !self.flooding.is_empty()
    }

    fn max_interval(&self, id: PaneId) -> Duration {
        if self.flooding.contains(&id) {
            FLOODING_INTERVAL
        } else {
            MAX_INTERVAL
        }
    }

    /// Bytes a second the pane printed over about the last second.
    pub fn rate(&self, id: PaneId, now: Instant) -> f64 {
        self.rates.get(&id).map_or(0.0, |r| r.per_second(now))
    }

    pub fn forget(&mut self, id: PaneId) {
        self.last_look.remove(&id);
        self.pending.remove(&id);
        self.rates.remove(&id);
        self.flooding.remove(&id);
    }

    fn due_at(&self, id: PaneId, last_output: Instant, bytes: u64) -> Instant {
        let Some(look) = self.last_look.get(&id) else {
            return last_output;
        };
        let max = self.max_interval(id);
        let gap = Duration::from_secs_f64((bytes as f64 * COST).sqrt()).min(max);
        (last_output + QUIET).max(*look + gap).min(*look + max)
    }

    /// The earliest moment a pane with output not looked at is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .map(|(id, (out, bytes))| self.due_at(*id, *out, *bytes))
            .min()
    }

    /// The panes with output not looked at yet.
    pub fn pending(&self) -> impl Iterator<Item = PaneId> + '_ {
        self.pending.keys().copied()
    }

    /// The panes due at `now` (they stay pending until looked at).
    pub fn due(&self, now: Instant) -> Vec<PaneId> {
        self.pending
            .iter()
            .filter(|(id, (out, bytes))| self.due_at(**id, *out, *bytes) <= now)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The output rate (bytes a second, over about the last second) from which a pane's output is
/// skimmed rather than modelled byte by byte (see `pane::skim`); it is modelled again once the
/// rate falls under half of this. Agents streaming an answer print a few KB/s.
pub const FLOOD_RATE: f64 = 32_000.0;

/// Whether a pane printing at `rate` is skimmed from now on, given whether it was. A pane
/// being typed into, or that something waits to type into, is never skimmed (the caller's
/// part).
pub fn floods(was: bool, rate: f64) -> bool {
    if was {
        rate >= FLOOD_RATE / 2.0
    } else {
        rate >= FLOOD_RATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PaneId = PaneId(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A pane that printed for the first time at `t0` and was looked at then.
    fn looked_at(t0: Instant) -> Pacing {
        let mut p = Pacing::default();
        assert!(p.output(P, t0, 100));
        p.looked(P, t0);
        p
    }

    #[test]
    fn the_first_output_and_output_after_a_quiet_spell_are_looked_at_at_once() {
        let t0 = Instant::now();
        let mut p = looked_at(t0);
        assert!(p.output(P, t0 + ms(40), 100));
        p.looked(P, t0 + ms(40));
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn a_burst_is_looked_at_once_it_stops() {
        let t0 = Instant::now();
        let mut p = looked_at(t0);
        for i in 1..=5 {
            assert!(!p.output(P, t0 + ms(5 * i), 100));
        }
        let last = t0 + ms(25);
        assert_eq!(p.next_due(), Some(last + QUIET));
        assert!(p.due(last + QUIET - ms(1)).is_empty());
        assert_eq!(p.due(last + QUIET), vec![P]);
        p.looked(P, last + QUIET);
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn a_pane_floods_from_its_rate_over_the_last_second_with_some_hysteresis() {
        let t0 = Instant::now();
        let mut p = Pacing::default();
        let mut t = t0;
        let mut skim = false;
        let mut changes = Vec::new();
        // 100 KB/s for 3 s, then 20 KB/s for 3 s, then 2 KB/s for 3 s; chunks 20 ms apart.
        for (per_chunk, chunks) in [(2_000, 150), (400, 150), (40, 150)] {
            for _ in 0..chunks {
                t += ms(20);
                p.output(P, t, per_chunk);
                let now = floods(skim, p.rate(P, t));
                if now != skim {
                    changes.push((now, (t - t0).as_millis()));
                    skim = now;
                }
            }
        }
        // On within the first second, on through 20 KB/s, off once 2 KB/s has lasted a while.
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].0 && changes[0].1 <= 1_000, "{changes:?}");
        assert!(
            !changes[1].0 && (6_000..=7_000).contains(&changes[1].1),
            "{changes:?}"
        );
        // Silence brings the rate to nothing.
        assert_eq!(p.rate(P, t + Duration::from_secs(2)), 0.0);
        assert_eq!(p.rate(PaneId(9), t), 0.0);
    }

    #[test]
    fn a_pane_that_never_stops_is_looked_at_every_max_interval() {
        let t0 = Instant::now();
        let mut p = looked_at(t0);
        let mut looks = 1;
        let mut t = t0;
        // 2 KB 20 ms apart (100 KB/s) for 5 s: never quiet for 30 ms.
        for _ in 0..250 {
            t += ms(20);
            if p.output(P, t, 2_000) || !p.due(t).is_empty() {
                p.looked(P, t);
                looks += 1;
            }
        }
        assert!((10..=11).contains(&looks), "{looks} looks in 5 s");
    }

    #[test]
    fn the_faster_a_pane_printed_the_longer_its_look_waits_after_it_stops() {
        // 100 ms of output every 20 ms, then quiet: looked at 30 ms after it stops, or once the
        // gap its rate asks for has passed since the last look.
        let t0 = Instant::now();
        let mut at = Vec::new();
        for bytes_per_20ms in [20, 200, 2_000] {
            let mut p = looked_at(t0);
            for i in 1..=5 {
                assert!(!p.output(P, t0 + ms(20 * i), bytes_per_20ms));
            }
            at.push(p.next_due().expect("due") - t0);
        }
        // 100 B: 30 ms after the last output; 1 KB: the same (its gap is 71 ms from the look);
        // 10 KB: a gap of 224 ms from the look.
        assert_eq!(at[0], ms(130));
        assert_eq!(at[1], ms(130));
        assert!((ms(223)..=ms(224)).contains(&at[2]), "{at:?}");
    }

    #[test]
    fn a_forgotten_pane_is_due_never() {
        let t0 = Instant::now();
        let mut p = looked_at(t0);
        p.output(P, t0 + ms(1), 1);
        p.forget(P);
        assert_eq!(p.next_due(), None);
    }
}
