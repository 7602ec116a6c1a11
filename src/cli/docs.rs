//! `completions` and `man`: the shell completion scripts (clap_complete) and the man pages
//! (clap_mangen), both generated from the command line's own definition, so they never drift
//! from it.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{exit, failure, Cli, Failure};

/// The flags of `completions`.
#[derive(Debug, Args, Clone)]
#[command(after_help = "Install, for example:\n  \
    bash: macs-bridge completions bash > ~/.local/share/bash-completion/completions/macs-bridge\n  \
    zsh:  macs-bridge completions zsh > ~/.zfunc/_macs-bridge   (with ~/.zfunc in fpath)\n  \
    fish: macs-bridge completions fish > ~/.config/fish/completions/macs-bridge.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// The flags of `man`.
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write `macs-bridge.1` and one page per command (`macs-bridge-up.1` …) into DIR
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

const BIN: &str = "macs-bridge";

pub(super) fn completions(a: CompletionsArgs) -> Result<u8, Failure> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, BIN, &mut std::io::stdout());
    Ok(exit::OK)
}

pub(super) fn man(a: ManArgs) -> Result<u8, Failure> {
    let cmd = Cli::command();
    let io = |e: std::io::Error| failure(exit::ERROR, format!("cannot write the man page: {e}"));
    match a.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(io)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(io)?;
            clap_mangen::generate_to(cmd, &dir).map_err(io)?;
            println!("man pages written to {}", dir.display());
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_names_the_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), BIN, &mut buf);
            let text = String::from_utf8(buf).expect("utf-8");
            for word in ["set-target", "completions", "state-dir"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_man_page_lists_the_commands_and_global_flags() {
        let mut buf = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf-8");
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{text}");
        for word in ["macs\\-bridge\\-info", "\\-\\-state\\-dir", "set\\-target"] {
            assert!(text.contains(word), "no {word} in the man page");
        }
    }
}
