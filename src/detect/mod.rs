//! Pane state detection: agent profiles ([`profile`]) and the state classifier ([`state`]).
//!
//! This module owns the per-agent detection rules (`profiles/*.yaml`, built in and overridable
//! by the user) and the verdict idle / busy / asking / unknown for a pane. It reads what it is
//! given (screen rows, pane title, current command, silence) and does no I/O beyond loading
//! profile files: it never talks to tmux and never types into a pane. When in doubt it says
//! `unknown`, never `idle`.

pub mod blocks;
pub mod heuristic;
pub mod profile;
pub mod state;
pub mod tracker;

pub use blocks::{
    block_text, find_blocks, normalize, parse_response, Block, BlockKind, Limits, Response, Scan,
    Unterminated,
};
pub use heuristic::{is_echo, last_reply, Heuristics};
pub use profile::{Profile, ProfileError, Profiles, FALLBACK_PROFILE};
pub use state::{classify, prompt_input, strip_escapes, Classification, PaneState, PaneView};
pub use tracker::BlockTracker;

/// What a look at the pane shows.
#[derive(Debug, Clone)]
pub struct Look {
    pub state: PaneState,
    /// Why the classifier said so.
    pub reason: String,
    /// The profile that read the pane.
    pub profile: String,
    /// The pane's visible rows, plain text.
    pub lines: Vec<String>,
    /// Text on the prompt line that is input (None: no prompt line found, or empty).
    pub prompt_input: Option<String>,
}
