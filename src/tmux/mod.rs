//! Everything that speaks to tmux: the control-mode stream parser ([`control`]), escaping
//! ([`escape`]), typed commands that render one quoted line each ([`command`]), the long-lived
//! control-mode client process ([`client`]) and one-shot argv calls ([`oneshot`]).
//!
//! Nothing here knows about agents, requests or chat.

pub mod client;
pub mod command;
pub mod control;
pub mod escape;
pub mod oneshot;

use std::fmt;
use std::str::FromStr;

/// Error for an id that does not have tmux's form (`%3`, `@1`, `$0`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tmux {kind} id: {text:?} (expected {prefix}N)")]
pub struct BadId {
    kind: &'static str,
    prefix: char,
    text: String,
}

macro_rules! tmux_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                s.strip_prefix($prefix)
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse().ok())
                    .map($name)
                    .ok_or_else(|| BadId { kind: $kind, prefix: $prefix, text: s.to_string() })
            }
        }

        impl $name {
            /// Parses the id from bytes as they come in a control-mode line.
            pub fn from_bytes(b: &[u8]) -> Option<Self> {
                std::str::from_utf8(b).ok()?.parse().ok()
            }
        }
    };
}

tmux_id!(
    /// A pane id, `%N`: unique for the life of the tmux server.
    PaneId, '%', "pane"
);
tmux_id!(
    /// A window id, `@N`.
    WindowId, '@', "window"
);
tmux_id!(
    /// A session id, `$N`.
    SessionId, '$', "session"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        assert_eq!("%12".parse::<PaneId>().unwrap(), PaneId(12));
        assert_eq!(PaneId(12).to_string(), "%12");
        assert_eq!("@3".parse::<WindowId>().unwrap().to_string(), "@3");
        assert_eq!("$0".parse::<SessionId>().unwrap(), SessionId(0));
        for bad in ["", "%", "12", "%-1", "%1a", "@1", "%99999999999"] {
            assert!(bad.parse::<PaneId>().is_err(), "{bad:?} parsed");
        }
    }
}
