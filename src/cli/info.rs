//! `info`: whether a daemon runs for the session, and how it is doing.

use clap::Args;

use super::{exit, failure, load_config, tmux_for, Failure, Global};
use crate::api::protocol::DaemonInfoResult;
use crate::config::Overrides;
use crate::daemon::health::{self, Health};

/// The flags of `info`.
#[derive(Debug, Args, Clone)]
pub struct InfoArgs {
    /// Print JSON (with `running`: true or false).
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(global: &Global, a: InfoArgs) -> Result<u8, Failure> {
    let cfg = load_config(global, Overrides::default())?;
    let tmux = tmux_for(global, &cfg);
    // A state dir named on the command line or in the config is asked; otherwise the one the
    // session's claim names.
    let asked = global.state_dir.as_ref().map(|_| cfg.state_dir.as_path());
    let h = health::check(&tmux, &cfg.session, asked, &cfg.state_dir).await;
    if a.json {
        let mut v = serde_json::to_value(&h).map_err(|e| failure(exit::ERROR, e.to_string()))?;
        v["running"] = serde_json::Value::Bool(h.running());
        println!("{v}");
    } else {
        print!("{}", describe(&h));
    }
    Ok(if h.running() { exit::OK } else { exit::ERROR })
}

fn describe(h: &Health) -> String {
    let Some(info) = &h.info else {
        return describe_missing(h);
    };
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("{k:<11} {v}\n"));
    row(
        "daemon",
        format!("running · pid {} · macs-bridge {}", info.pid, info.version),
    );
    let tmux = if info.attached {
        "attached to tmux"
    } else {
        "not attached to tmux now"
    };
    row("session", format!("{} ({tmux})", info.session));
    if info.session != h.session {
        row(
            "note",
            format!("this daemon serves {:?}, not {:?}", info.session, h.session),
        );
    }
    row("state dir", info.state_dir.clone());
    row("mode", info.mode.clone());
    row(
        "uptime",
        format!(
            "{} (since {})",
            uptime(info.uptime_secs),
            clock(&info.started_at)
        ),
    );
    row(
        "last error",
        match &info.last_error {
            None => "none".into(),
            Some(e) => format!("{} {}: {}", clock(&e.at), e.event, e.text),
        },
    );
    out.push_str(&agents(info));
    out
}

fn describe_missing(h: &Health) -> String {
    let mut out = format!("no daemon runs for session {:?}\n", h.session);
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<9} {v}\n"));
    match h.session_exists {
        Some(false) => row("session", "not on this tmux server".into()),
        None => row("session", "tmux could not be asked".into()),
        Some(true) => {}
    }
    match &h.claim {
        Some(c) if c.alive => row(
            "claim",
            format!(
                "pid {} (alive) with state dir {}, but it did not answer",
                c.pid, c.state_dir
            ),
        ),
        Some(c) => row(
            "claim",
            format!(
                "left by pid {}, which is gone (state dir {})",
                c.pid, c.state_dir
            ),
        ),
        None => {}
    }
    row("state dir", h.state_dir.display().to_string());
    if let Some(p) = &h.problem {
        row("socket", p.clone());
    }
    out
}

fn agents(info: &DaemonInfoResult) -> String {
    if info.agents.is_empty() {
        return "agents      none\n".into();
    }
    let table = crate::chat_client::describe_agents(&info.agents);
    let mut out = "agents\n".to_string();
    for line in table.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn uptime(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn clock(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| crate::inject::sanitize(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(uptime(7), "7s");
        assert_eq!(uptime(61), "1m 01s");
        assert_eq!(uptime(3723), "1h 02m 03s");
    }
}
