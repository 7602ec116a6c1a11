//! Fault injection for crash tests: `MACS_CRASH_AT=<point>` makes the daemon kill itself with
//! SIGKILL when it reaches that point, as `kill -9` at the worst moment would. The points:
//!
//! - `recorded`: the journal row says "typing", nothing was typed yet;
//! - `mid-text`: half of the text was typed;
//! - `typed`: the whole text is in the prompt, no submit key was sent;
//! - `submitted`: the submit key was sent, its outcome not yet recorded;
//! - `before-archive`: the delivery is recorded, the archive files are not written.
//!
//! And two of API calls handled together ([`BATCH_POINTS`]):
//!
//! - `batch-open`: two or more calls were handled in one journal batch, not yet committed;
//! - `batch-committed`: the batch is committed, nothing of it answered or typed yet.
//!
//! `<point>:N` fires on the Nth pass through the point instead of the first.
//!
//! Unset (always, outside tests), every check is one environment lookup at start-up.

use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const ENV: &str = "MACS_CRASH_AT";

/// The named points, in the order a delivery passes them.
pub const POINTS: [&str; 5] = [
    "recorded",
    "mid-text",
    "typed",
    "submitted",
    "before-archive",
];

/// The points of a batch of API calls.
pub const BATCH_POINTS: [&str; 2] = ["batch-open", "batch-committed"];

/// The armed point, and on which pass it fires (`MACS_CRASH_AT=batch-open:5`: the fifth time
/// the point is reached; the first when no count is given).
fn armed_point() -> Option<(&'static str, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(ENV).ok()?;
            let (name, nth) = match v.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().ok().filter(|n| *n > 0)?),
                None => (v, 1),
            };
            (POINTS.contains(&name.as_str()) || BATCH_POINTS.contains(&name.as_str()))
                .then_some((name, nth))
        })
        .as_ref()
        .map(|(name, nth)| (name.as_str(), *nth))
}

/// Whether `point` is armed.
pub fn armed(point: &str) -> bool {
    armed_point().is_some_and(|(name, _)| name == point)
}

/// Dies here, with SIGKILL, when `point` is armed.
pub fn point(point: &str) {
    static PASSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some((name, nth)) = armed_point() else {
        return;
    };
    if name != point {
        return;
    }
    if PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= nth {
        eprintln!("macs-bridge: crash point {point:?} reached ({ENV}); killing myself");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
