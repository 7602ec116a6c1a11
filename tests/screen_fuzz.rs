//! Fuzzes the pane screen model (`pane::Screen`: clamp + emulator + panic guard) with arbitrary
//! bytes biased toward escape sequences, wide characters and huge CSI counts, mixed with
//! resizes (1x1 panes, one row, one column, shrinking) and reads, each input split at a random
//! point as `%output` chunks are. A fault (a panic caught by the guard) or a panic while
//! reading fails the run.
//!
//! - In CI: `cargo test --test screen_fuzz` runs a few hundred fixed seeds
//!   (`MACS_FUZZ_RUNS`, `MACS_FUZZ_SEED` to change them).
//! - By hand: `MACS_FUZZ_SECS=600 cargo test --release --test screen_fuzz -- --ignored
//!   --nocapture` fuzzes for that long and reports runs, faults, and the time per byte of the
//!   worst inputs, each also replayed 4 and 16 times over: a cost that grows faster than the
//!   input shows as a rising time per byte.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use macs_bridge::pane::{Screen, MODEL_SCROLLBACK};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Debug)]
enum Op {
    Feed(Vec<u8>),
    Resize(u16, u16),
    Read,
}

fn size(r: &mut Rng, (rows, cols): (u16, u16)) -> (u16, u16) {
    let shrink = |r: &mut Rng, n: u16| n.saturating_sub(r.below(u64::from(n) + 1) as u16).max(1);
    match r.below(8) {
        0 => (1, 1),
        1 => (1, 1 + r.below(200) as u16),
        2 => (1 + r.below(60) as u16, 1),
        3 => (shrink(r, rows), cols),
        4 => (rows, shrink(r, cols)),
        5 => (1 + r.below(4) as u16, 1 + r.below(4) as u16),
        6 => (1 + r.below(300) as u16, 1 + r.below(500) as u16),
        _ => (1 + r.below(60) as u16, 1 + r.below(220) as u16),
    }
}

fn number(r: &mut Rng, rows: u16, cols: u16) -> String {
    match r.below(12) {
        0 => String::new(),
        1 => "0".into(),
        2 => "1".into(),
        3 => rows.to_string(),
        4 => (u32::from(cols) + 1).to_string(),
        5 => "65535".into(),
        6 => "65536".into(),
        7 => "4294967296".into(),
        8 => "9".repeat(1 + r.below(30) as usize),
        9 => r.below(1000).to_string(),
        _ => r.below(10).to_string(),
    }
}

const FINALS: &[u8] = b"@ABCDEFGHIJKLMPSTXZ`abcdefghlmnqrstuxz{|}~^_";
const WIDE: &[&str] = &[
    "中",
    "文",
    "😀",
    "👍🏽",
    "e\u{301}",
    "\u{200b}",
    "\u{fe0f}",
    "❤\u{fe0f}",
    "ｱ",
    "\u{1f1fa}\u{1f1f8}",
    "\u{0}",
    "\u{7f}",
    "\u{9b}",
    "\u{85}",
];
const ESCAPES: &[&[u8]] = &[
    b"\x1b7",
    b"\x1b8",
    b"\x1bc",
    b"\x1bD",
    b"\x1bE",
    b"\x1bM",
    b"\x1b#8",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?47h",
    b"\x1b[?47l",
    b"\x1b[?1047h",
    b"\x1b[?1047l",
    b"\x1b[?6h",
    b"\x1b[?6l",
    b"\x1b[?7l",
    b"\x1b[?7h",
    b"\x1b[?25l",
    b"\x1b[s",
    b"\x1b[u",
    b"\x1b[3J",
    b"\x1b[2J",
    b"\x1b[!p",
    b"\x1b]0;title\x07",
    b"\x1b]2;t\x1b\\",
    b"\x1bP1$r\x1b\\",
    b"\x1b(0",
    b"\x1b(B",
    b"\x1b)0",
    b"\x0e",
    b"\x0f",
    b"\r\n",
    b"\n",
    b"\r",
    b"\t",
    b"\x08",
    b"\x1b[?2004h",
    b"\x1b[4h",
    b"\x1b[4l",
    b"\x1b[20h",
    b"\x1b[?69h",
    b"\x1b[?1h",
];

fn chunk(r: &mut Rng, rows: u16, cols: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + r.below(24) {
        match r.below(10) {
            0 => (0..r.below(40)).for_each(|_| out.push(r.next() as u8)),
            1 | 2 => (0..r.below(80)).for_each(|_| out.push(b' ' + r.below(95) as u8)),
            3 => (0..1 + r.below(8)).for_each(|_| out.extend_from_slice(r.pick(WIDE).as_bytes())),
            4 => out.extend_from_slice(r.pick(ESCAPES)),
            _ => {
                // A CSI sequence with numeric parameters, 7-bit or 8-bit.
                out.extend_from_slice(if r.below(10) == 0 {
                    "\u{9b}".as_bytes()
                } else {
                    b"\x1b["
                });
                match r.below(6) {
                    0 => out.push(b'?'),
                    1 => out.push(b'>'),
                    _ => {}
                }
                for i in 0..=r.below(4) {
                    if i > 0 {
                        out.push(if r.below(8) == 0 { b':' } else { b';' });
                    }
                    out.extend_from_slice(number(r, rows, cols).as_bytes());
                }
                if r.below(12) == 0 {
                    out.push(r.pick(b" $"));
                }
                out.push(r.pick(FINALS));
            }
        }
    }
    out
}

/// One run: a starting size and a list of operations, all from the seed.
fn input(seed: u64) -> ((u16, u16), Vec<Op>) {
    let mut r = Rng(seed);
    let start = size(&mut r, (24, 80));
    let (mut rows, mut cols) = start;
    let mut ops = Vec::new();
    for _ in 0..1 + r.below(30) {
        match r.below(10) {
            0 | 1 => {
                (rows, cols) = size(&mut r, (rows, cols));
                ops.push(Op::Resize(rows, cols));
            }
            2 => ops.push(Op::Read),
            _ => {
                let c = chunk(&mut r, rows, cols);
                let at = r.below(c.len() as u64 + 1) as usize;
                ops.push(Op::Feed(c[..at].to_vec()));
                ops.push(Op::Feed(c[at..].to_vec()));
            }
        }
    }
    ops.push(Op::Read);
    (start, ops)
}

fn bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|o| match o {
            Op::Feed(d) => d.len(),
            _ => 0,
        })
        .sum()
}

/// Runs one input; the error says what failed.
fn run((rows, cols): (u16, u16), ops: &[Op]) -> Result<Duration, String> {
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let mut s = Screen::new(rows, cols, MODEL_SCROLLBACK);
        for op in ops {
            match op {
                Op::Feed(d) => s.feed(d).map_err(|e| e.to_string())?,
                Op::Resize(r, c) => s.set_size(*r, *c).map_err(|e| e.to_string())?,
                Op::Read => {
                    let (r, c) = s.size();
                    let rows = s.rows();
                    assert_eq!(rows.len(), usize::from(r));
                    let history = s.lines_with_history(200);
                    assert!(history.len() >= rows.len());
                    let (cr, cc) = s.cursor_position();
                    assert!(cr < r && cc <= c, "cursor {cr},{cc} outside {r}x{c}");
                    std::hint::black_box(s.alternate_screen());
                }
            }
        }
        Ok(())
    }));
    match outcome {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(fault)) => Err(fault),
        Err(_) => Err("panic outside the model's guard".into()),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn the_model_survives_hostile_output_and_resizes() {
    let runs = env_u64("MACS_FUZZ_RUNS").unwrap_or(300);
    let first = env_u64("MACS_FUZZ_SEED").unwrap_or(1);
    let mut failures = Vec::new();
    for seed in first..first + runs {
        let (start, ops) = input(seed);
        if let Err(e) = run(start, &ops) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed: {failures:#?}",
        failures.len()
    );
}

#[test]
#[ignore = "long: MACS_FUZZ_SECS=600 cargo test --release --test screen_fuzz -- --ignored --nocapture"]
fn fuzz_for_a_while() {
    let secs = env_u64("MACS_FUZZ_SECS").unwrap_or(600);
    let first = env_u64("MACS_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() << 20)
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut total, mut busy) = (0u64, 0usize, Duration::ZERO);
    let mut failures = Vec::new();
    // (ns per byte, seed, bytes, time) of inputs of at least 256 bytes.
    let mut worst: Vec<(f64, u64, usize, Duration)> = Vec::new();
    let mut slowest = (Duration::ZERO, 0u64);
    let mut seed = first;
    while Instant::now() < deadline {
        let (start, ops) = input(seed);
        let n = bytes(&ops);
        match run(start, &ops) {
            Ok(took) => {
                busy += took;
                if took > slowest.0 {
                    slowest = (took, seed);
                }
                if n >= 256 {
                    worst.push((took.as_secs_f64() * 1e9 / n as f64, seed, n, took));
                    if worst.len() > 200 {
                        worst.sort_by(|a, b| b.0.total_cmp(&a.0));
                        worst.truncate(20);
                    }
                }
            }
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
        runs += 1;
        total += n;
        seed = seed.wrapping_add(1);
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "screen_fuzz: {runs} runs from seed {first}, {} faults, {:.1} MB fed, {:.1} MB/s overall, \
         slowest run {:.1} ms (seed {})",
        failures.len(),
        total as f64 / 1e6,
        total as f64 / 1e6 / busy.as_secs_f64().max(1e-9),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1
    );
    println!("worst time per byte (inputs of 256 bytes or more), replayed 1x / 4x / 16x:");
    for &(_, seed, n, _) in worst.iter().take(5) {
        let (start, ops) = input(seed);
        let per_byte: Vec<String> = [1usize, 4, 16]
            .iter()
            .map(|&k| {
                let repeated: Vec<Op> = ops.iter().cycle().take(ops.len() * k).cloned().collect();
                let best = (0..3)
                    .filter_map(|_| run(start, &repeated).ok())
                    .min()
                    .unwrap_or_default();
                format!("{:.0} ns/B", best.as_secs_f64() * 1e9 / (n * k) as f64)
            })
            .collect();
        println!("  seed {seed} ({n} bytes): {}", per_byte.join(" / "));
    }
    assert!(
        failures.is_empty(),
        "{} runs failed: {failures:#?}",
        failures.len()
    );
}
