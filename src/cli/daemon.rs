//! The daemon's command line: its flags (`macs-bridge --session macs --mode manual …`, no
//! subcommand), how they become a [`Config`], and the daemon's errors as messages and exit
//! codes.

use clap::Args;

use super::{exit, load_config, tmux_for, Failure, Global};
use crate::config::{Config, Mode, Overrides};
use crate::daemon::{DaemonError, DaemonOptions};

/// The daemon's flags (used when no subcommand is given).
#[derive(Debug, Args, Default, Clone, PartialEq, Eq)]
#[command(next_help_heading = "Daemon options (without a subcommand)")]
pub struct DaemonArgs {
    /// auto: a controller answers; manual: a person answers through outbox/ files.
    #[arg(long, value_name = "auto|manual")]
    pub mode: Option<String>,
    /// Print each detection; write nothing, type nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Treat a question at the end of the worker's turn as a request (default on).
    #[arg(long, overrides_with = "no_heuristic")]
    pub heuristic: bool,
    /// Only request blocks count.
    #[arg(long, overrides_with = "heuristic")]
    pub no_heuristic: bool,
    /// The worker pane (id, tmux target or label). Default: TARGET_PANE_LABEL, else `worker`.
    #[arg(long, value_name = "PANE")]
    pub target: Option<String>,
    /// Auto mode: who answers, in order (pane, codex-interactive, exec, rules, manual);
    /// repeat or separate with commas. The person (manual) always comes last.
    #[arg(long, value_name = "BACKEND", value_delimiter = ',')]
    pub controller_backend: Vec<String>,
    /// The controller agent's pane for the pane backend (default: label `controller`).
    #[arg(long, value_name = "PANE")]
    pub controller_target: Option<String>,
    /// The exec backend's command (shell words), run once per request with the prompt on stdin.
    #[arg(long, value_name = "CMD")]
    pub controller_cmd: Option<String>,
    /// Seconds a backend may take to answer one request before the next one gets it.
    #[arg(long, value_name = "SECS")]
    pub controller_timeout: Option<u64>,
}

fn overrides_from(global: &Global, args: &DaemonArgs) -> Result<Overrides, Failure> {
    let mode = match args.mode.as_deref() {
        None => None,
        Some("auto") => Some(Mode::Auto),
        Some("manual") => Some(Mode::Manual),
        Some(other) => {
            return Err(Failure {
                code: exit::USAGE,
                message: format!("--mode must be auto or manual, not {other:?}"),
            })
        }
    };
    let heuristic = if args.no_heuristic {
        Some(false)
    } else if args.heuristic {
        Some(true)
    } else {
        None
    };
    Ok(Overrides {
        session: global.session_flag.clone(),
        mode,
        dry_run: args.dry_run.then_some(true),
        heuristic,
        worker: args.target.clone(),
        controller: args.controller_target.clone(),
        controller_backends: (!args.controller_backend.is_empty())
            .then(|| args.controller_backend.clone()),
        controller_cmd: args.controller_cmd.clone(),
        controller_timeout_secs: args.controller_timeout,
        ..Overrides::default()
    })
}

/// Runs the daemon with these flags until Ctrl-C or SIGTERM.
pub async fn run(global: &Global, args: DaemonArgs) -> Result<u8, Failure> {
    let more = overrides_from(global, &args)?;
    let cfg: Config = load_config(global, more)?;
    let opts = DaemonOptions {
        tmux: tmux_for(global, &cfg),
        cfg,
        json: args.json,
        target_from_flag: args.target.is_some(),
    };
    match crate::daemon::run(opts).await {
        Ok(()) => Ok(exit::OK),
        Err(e @ DaemonError::NoTarget { .. }) => Err(Failure::with_code(exit::USAGE, &e)),
        Err(e) => Err(Failure::with_code(exit::ERROR, &e)),
    }
}
