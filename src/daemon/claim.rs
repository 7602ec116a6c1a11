//! One daemon per tmux session: the daemon claims the session with the session option
//! `@macs-daemon` (`PID STATE_DIR`), set with `set-option -o` so that two daemons starting
//! together cannot both win. A second daemon is refused with the first one's pid and state dir;
//! a claim left by a daemon that died (`kill -9`) is recognised — no live `macs-bridge` process
//! has its pid — and taken over. A clean shutdown gives the claim back.

use std::path::Path;

use crate::tmux::client::Client;
use crate::tmux::command::{Command, OptionScope, Target};

/// The session option holding the claim.
pub const CLAIM_OPTION: &str = "@macs-daemon";

/// Why the session could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another macs-bridge daemon already watches session {session:?}: pid {pid}, state dir \
         {state_dir}; stop it first (kill {pid}, or `macs-bridge down`), or use another session"
    )]
    Taken {
        session: String,
        pid: u32,
        state_dir: String,
    },
    #[error("cannot claim session {session:?}: {reason}")]
    Tmux { session: String, reason: String },
}

/// Whether `pid` is a live macs-bridge process other than this one.
pub(crate) fn alive(pid: u32) -> bool {
    if pid == std::process::id() || pid == 0 {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).contains("macs-bridge")
        })
        .unwrap_or(false)
}

/// A claim's value: the daemon's pid and state dir.
pub(crate) fn parse(value: &str) -> Option<(u32, String)> {
    let (pid, dir) = value.trim().split_once(' ')?;
    Some((pid.parse().ok()?, dir.to_string()))
}

/// Claims `session` for this daemon.
pub async fn claim(client: &Client, session: &str, state_dir: &Path) -> Result<(), ClaimError> {
    let scope = || OptionScope::Session(Target::session(session));
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let ours = format!("{} {}", std::process::id(), dir.display());
    let err = |e: crate::tmux::client::ClientError| ClaimError::Tmux {
        session: session.to_string(),
        reason: e.to_string(),
    };
    for _ in 0..3 {
        if client
            .run(&Command::set_option_once(scope(), CLAIM_OPTION, &ours))
            .await
            .is_ok()
        {
            return Ok(());
        }
        let value = client
            .run(&Command::show_option_value(scope(), CLAIM_OPTION))
            .await
            .map_err(err)?
            .into_iter()
            .next()
            .unwrap_or_default();
        match parse(&value) {
            Some((pid, state_dir)) if alive(pid) => {
                return Err(ClaimError::Taken {
                    session: session.to_string(),
                    pid,
                    state_dir,
                })
            }
            _ => {
                tracing::info!(claim = %value, "taking over a claim left by a daemon that is gone");
                client
                    .run(&Command::unset_option(scope(), CLAIM_OPTION))
                    .await
                    .map_err(err)?;
            }
        }
    }
    Err(ClaimError::Tmux {
        session: session.to_string(),
        reason: "the claim kept changing hands".into(),
    })
}

/// Gives the claim back (on a clean shutdown), when it is still ours.
pub async fn release(client: &Client, session: &str) {
    let scope = || OptionScope::Session(Target::session(session));
    let value = client
        .run(&Command::show_option_value(scope(), CLAIM_OPTION))
        .await
        .ok()
        .and_then(|l| l.into_iter().next())
        .unwrap_or_default();
    if parse(&value).is_some_and(|(pid, _)| pid == std::process::id()) {
        let _ = client
            .run(&Command::unset_option(scope(), CLAIM_OPTION))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_and_dead_or_own_pids_are_not_alive() {
        assert_eq!(parse("123 /tmp/x y"), Some((123, "/tmp/x y".into())));
        assert_eq!(parse("garbage"), None);
        assert!(!alive(std::process::id()));
        assert!(!alive(0));
        // pid 1 is never macs-bridge here.
        assert!(!alive(1));
    }
}
