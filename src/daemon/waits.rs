//! What the runner's loop waits on besides its channels: the outbox watcher's "events may be
//! lost" signal, the signals that stop the daemon, and a moment for streaming output to
//! gather.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Wake-ups for tmux events closer than this to the one before are in a run.
const CLOSE: Duration = Duration::from_millis(2);
/// A run of this many close wake-ups: output streams in (a command typed and its output, a
/// block printed, make a run of two or three).
const STREAMING: u32 = 8;
/// How long the runner lets streaming output gather before it takes it.
pub(super) const GATHER: Duration = Duration::from_millis(1);

/// When the runner takes tmux's events. tmux writes each pane's output as it reads it, in
/// pieces of a few hundred bytes, and the reader hands each piece on at once: with many panes
/// printing, waking the runner for every piece costs more than what it does with it (about
/// 10,000 wake-ups a second with 50 panes at 100 KB/s). While a pane floods (see `pacing`),
/// once [`STREAMING`] wake-ups in a row came closer than [`CLOSE`] to each other, the runner
/// holds tmux's events back for [`GATHER`] and then takes all that came meanwhile at once.
/// Only tmux's events wait: API calls and writers' reports are taken as they come, and the
/// reader goes on reading (tmux is never held up). A few events together (a command and its
/// output) and output after a quiet spell are taken at once.
#[derive(Debug, Default)]
pub(super) struct Gather {
    last: Option<Instant>,
    run: u32,
    /// Events are held back until then.
    until: Option<Instant>,
    /// The hold is over: the next events are taken at once.
    released: bool,
}

impl Gather {
    /// The runner woke for tmux events at `now`.
    pub(super) fn woke(&mut self, now: Instant) {
        let close = self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < CLOSE);
        self.run = if close { self.run.saturating_add(1) } else { 0 };
        self.last = Some(now);
        self.released = false;
    }

    /// Until when tmux's events are held back, if they are: only right after a wake-up for
    /// events in a stream.
    pub(super) fn hold(&mut self, now: Instant) -> Option<Instant> {
        let streaming = self.run >= STREAMING
            && self
                .last
                .is_some_and(|t| now.saturating_duration_since(t) < CLOSE);
        if self.released || (!streaming && self.until.is_none()) {
            return None;
        }
        Some(*self.until.get_or_insert(now + GATHER))
    }

    /// The hold is over.
    pub(super) fn release(&mut self) {
        self.until = None;
        self.released = true;
    }
}

/// Returns once the outbox watcher may have lost events; never without a watcher.
pub(super) async fn wait_missed(missed: Option<&crate::mailbox::Missed>) {
    match missed {
        Some(m) => m.wait().await,
        None => std::future::pending().await,
    }
}

pub(super) fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        cancel.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_events_is_held_back_once_per_wake_up_and_a_quiet_spell_ends_it() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        let mut t = t0;
        g.woke(t);
        // A command and its output: a few events close together are taken at once.
        for _ in 0..3 {
            t += Duration::from_micros(300);
            g.woke(t);
            assert_eq!(g.hold(t), None);
        }
        // Output that keeps coming is held back, until the same moment however often asked.
        for _ in 0..STREAMING {
            t += Duration::from_micros(1_500);
            g.woke(t);
        }
        assert_eq!(g.hold(t), Some(t + GATHER));
        let later = t + Duration::from_micros(500);
        assert_eq!(g.hold(later), Some(t + GATHER));
        // Then what came is taken at once, and the next wake-up may hold again.
        g.release();
        assert_eq!(g.hold(t + GATHER), None);
        t += Duration::from_micros(1_200);
        g.woke(t);
        assert_eq!(g.hold(t), Some(t + GATHER));
        g.release();
        // Once tmux is quiet, nothing waits; events after a quiet spell are taken at once.
        g.woke(t + Duration::from_millis(40));
        assert_eq!(g.hold(t + Duration::from_millis(40)), None);
    }
}
