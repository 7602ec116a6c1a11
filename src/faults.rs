//! Fault injection for crash tests: `MACS_CRASH_AT=<point>` makes the daemon kill itself with
//! SIGKILL when it reaches that point, as `kill -9` at the worst moment would. The points:
//!
//! - `recorded`: the journal row says "typing", nothing was typed yet;
//! - `mid-text`: half of the text was typed;
//! - `typed`: the whole text is in the prompt, no submit key was sent;
//! - `submitted`: the submit key was sent, its outcome not yet recorded;
//! - `before-archive`: the delivery is recorded, the archive files are not written.
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

fn armed_point() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var(ENV)
                .ok()
                .filter(|p| POINTS.contains(&p.as_str()))
        })
        .as_deref()
}

/// Whether `point` is armed.
pub fn armed(point: &str) -> bool {
    armed_point() == Some(point)
}

/// Dies here, with SIGKILL, when `point` is armed.
pub fn point(point: &str) {
    if armed(point) {
        eprintln!("macs-bridge: crash point {point:?} reached ({ENV}); killing myself");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
