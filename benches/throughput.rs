//! Throughput of the control-mode parser, alone and with the screen model per pane (`avt`
//! behind the escape clamp and the panic guard, as the daemon runs it), on one core.
//!
//! Input: `tests/fixtures/control/agents-3.3a.ctl`, a real tmux 3.3a control-mode stream of a
//! 200x50 pane `cat`ing real Codex / Claude / Gemini screens (with their escapes), recorded with
//! `pause-after` on as the client runs it, so pane data comes as `%extended-output`. It is
//! repeated in memory to get enough input and fed in 64 KiB reads, as the client reads tmux's
//! stdout. MB are 10^6 bytes of control-mode input (escaped, as tmux writes it).
//!
//! Run: `cargo bench --bench throughput` (optional argument: megabytes of input, default 256).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use macs_bridge::pane::{Screen, MODEL_SCROLLBACK};
use macs_bridge::tmux::control::{Event, Parser};
use macs_bridge::tmux::PaneId;

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/control/agents-3.3a.ctl");
const READ: usize = 64 * 1024;
const ROWS: u16 = 50;
const COLS: u16 = 200;

fn main() {
    let megabytes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let input = repeat_to(FIXTURE, megabytes * 1_000_000);
    let payload = payload_bytes(&input);
    println!(
        "input: tests/fixtures/control/agents-3.3a.ctl ({:.1} MB fixture repeated to {:.1} MB; \
         {:.1} MB of pane data after unescaping)",
        FIXTURE.len() as f64 / 1e6,
        input.len() as f64 / 1e6,
        payload as f64 / 1e6,
    );

    let parse = best_of(5, || parse_only(&input));
    report("parser", input.len(), parse);

    // The model is slower: a quarter of the input is plenty for a stable figure.
    let model_input = &input[..cut_at_line(&input, input.len() / 4)];
    let model = best_of(3, || parse_and_model(model_input));
    report("parser + screen model", model_input.len(), model);

    // Where the model's time goes: the model alone on the same decoded pane bytes.
    let decoded = decode(model_input);
    let model_only = best_of(3, || {
        let start = Instant::now();
        let mut screen = Screen::new(ROWS, COLS, MODEL_SCROLLBACK);
        for chunk in &decoded {
            if screen.feed(chunk).is_err() {
                println!("model fault on the fixture");
            }
        }
        black_box(screen.cursor_position());
        start.elapsed()
    });
    report(
        "screen model alone (same input)",
        model_input.len(),
        model_only,
    );
}

fn parse_only(input: &[u8]) -> Duration {
    let start = Instant::now();
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut count = 0usize;
    for chunk in input.chunks(READ) {
        parser.feed_into(black_box(chunk), &mut events);
        count += events.len();
        events.clear();
    }
    black_box(count);
    start.elapsed()
}

fn parse_and_model(input: &[u8]) -> Duration {
    let start = Instant::now();
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut screens: HashMap<PaneId, Screen> = HashMap::new();
    for chunk in input.chunks(READ) {
        parser.feed_into(black_box(chunk), &mut events);
        for event in events.drain(..) {
            if let Event::Output { pane, data } | Event::ExtendedOutput { pane, data, .. } = event {
                let screen = screens
                    .entry(pane)
                    .or_insert_with(|| Screen::new(ROWS, COLS, MODEL_SCROLLBACK));
                if screen.feed(&data).is_err() {
                    println!("model fault on the fixture");
                }
            }
        }
    }
    for screen in screens.values() {
        black_box(screen.cursor_position());
    }
    start.elapsed()
}

fn decode(input: &[u8]) -> Vec<Vec<u8>> {
    Parser::new()
        .feed(input)
        .into_iter()
        .filter_map(|e| match e {
            Event::Output { data, .. } | Event::ExtendedOutput { data, .. } => Some(data),
            _ => None,
        })
        .collect()
}

fn payload_bytes(input: &[u8]) -> usize {
    decode(input).iter().map(Vec::len).sum()
}

fn repeat_to(fixture: &[u8], at_least: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(at_least + fixture.len());
    while out.len() < at_least {
        out.extend_from_slice(fixture);
    }
    out
}

fn cut_at_line(input: &[u8], at: usize) -> usize {
    input[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(input.len(), |p| at + p + 1)
}

fn best_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

fn report(what: &str, bytes: usize, took: Duration) {
    let secs = took.as_secs_f64().max(1e-9);
    println!(
        "{what:<34} {:>8.1} MB/s  ({:.1} MB in {:.3} s, best run)",
        bytes as f64 / 1e6 / secs,
        bytes as f64 / 1e6,
        secs
    );
}
