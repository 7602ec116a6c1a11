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
