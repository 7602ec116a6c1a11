//! The `macs-bridge` binary: parses the command line, sets up logging, runs the library and
//! turns the outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use macs_bridge::cli::{self, exit, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("macs-bridge: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(_) if cli.daemon != cli::daemon::DaemonArgs::default() => {
                Err(cli::Failure {
                    code: exit::USAGE,
                    message: "the daemon's flags (--mode, --dry-run, --target …) go without a subcommand; put a subcommand's own flags after it".into(),
                })
            }
            Some(tool) => cli::run_tool(&cli.global, tool).await,
            None => cli::daemon::run(&cli.global, cli.daemon).await,
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("macs-bridge: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "macs_bridge=debug,info",
        _ => "macs_bridge=trace,debug",
    };
    let filter =
        EnvFilter::try_from_env("MACS_BRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal (not in a log file), and never with NO_COLOR set.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
}
