//! The replayer: what runs in each pane of the streaming phase. The bench starts itself again
//! as `panes --replay CORPUS RATE OFFSET SECONDS START STATS` in every pane: it waits for the
//! start (a FIFO the bench opens), then writes the corpus from OFFSET on (wrapping) at RATE
//! bytes a second, in a slice every [`SLICE`] on an absolute schedule, for SECONDS; it writes
//! the bytes it wrote and the time it took to STATS and waits to be killed (the pane stays).
//! START is a file: the replayer starts once it exists.
//!
//! The corpus is the pane output of `tests/fixtures/control/agents-3.3a.ctl` (real Codex,
//! Claude Code and Gemini CLI screens with all their escapes), unescaped.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use macs_bridge::tmux::control::{Event, Parser};

const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/control/agents-3.3a.ctl");

/// How often a replayer writes.
pub const SLICE: Duration = Duration::from_millis(20);

/// The pane output of the fixture.
pub fn corpus() -> Vec<u8> {
    Parser::new()
        .feed(FIXTURE)
        .into_iter()
        .filter_map(|e| match e {
            Event::Output { data, .. } | Event::ExtendedOutput { data, .. } => Some(data),
            _ => None,
        })
        .flatten()
        .collect()
}

/// `--replay CORPUS RATE OFFSET SECONDS START STATS`; returns whether these arguments asked
/// for it.
pub fn run_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "--replay") else {
        return false;
    };
    let a = &args[at + 1..];
    assert!(
        a.len() >= 6,
        "--replay CORPUS RATE OFFSET SECONDS START STATS"
    );
    let corpus = fs::read(&a[0]).expect("read the corpus");
    let rate: f64 = a[1].parse().expect("a rate");
    let offset: usize = a[2].parse().expect("an offset");
    let seconds: f64 = a[3].parse().expect("seconds");
    // The start is a file the bench writes (looked for before the measured stretch only).
    while !std::path::Path::new(&a[4]).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (written, took) = replay(&corpus, rate, offset % corpus.len().max(1), seconds);
    let _ = fs::write(&a[5], format!("{written} {}", took.as_secs_f64()));
    loop {
        std::thread::park();
    }
}

fn replay(corpus: &[u8], rate: f64, mut at: usize, seconds: f64) -> (u64, Duration) {
    let mut out = std::io::stdout().lock();
    let per_slice = (rate * SLICE.as_secs_f64()).round().max(1.0) as usize;
    let slices = (seconds / SLICE.as_secs_f64()).round() as u32;
    let start = Instant::now();
    let mut written = 0u64;
    for n in 0..slices {
        let due = start + SLICE * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut left = per_slice;
        while left > 0 {
            let end = (at + left).min(corpus.len());
            if out.write_all(&corpus[at..end]).is_err() {
                return (written, start.elapsed());
            }
            written += (end - at) as u64;
            left -= end - at;
            at = if end == corpus.len() { 0 } else { end };
        }
        let _ = out.flush();
    }
    (written, start.elapsed())
}
