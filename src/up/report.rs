//! What `up` tells the person: where each agent's MCP configuration went, how the agents look
//! while `up` waits for them, what became of each prompt, and the command that runs `up` again
//! with the same options. Text only: nothing here talks to tmux.

use std::path::Path;

use crate::prompts::{self, PromptKind};
use crate::tmux::oneshot::Socket;

use super::agent::shell_line;
use super::layout::{Fate, Laid, Slot};
use super::ready::{Progress, PromptResult};
use super::{person_flags, Layout, UpOptions};

/// `macs-bridge [-L NAME|--socket PATH] --session S up …` with the options of this run, for
/// the person to run again: never `--reset-session` (it would kill what this run built).
pub(super) fn rerun_line(
    socket: &Socket,
    session: &str,
    a: &UpOptions,
    state_dir: &Path,
) -> String {
    let mut w: Vec<String> = vec!["macs-bridge".into()];
    w.extend(person_flags(socket));
    w.extend(["--session".into(), session.into(), "up".into()]);
    if a.layout == Layout::Chat {
        w.extend(["--layout".into(), "chat".into()]);
    }
    if let Some(n) = a.agents {
        w.extend(["--agents".into(), n.to_string()]);
    }
    if let Some(c) = &a.worker {
        w.extend(["--worker".into(), c.clone()]);
    }
    if let Some(c) = &a.controller {
        w.extend(["--controller".into(), c.clone()]);
    }
    if a.state_dir.is_some() {
        w.extend([
            "--state-dir".into(),
            state_dir.to_string_lossy().into_owned(),
        ]);
    }
    if a.no_daemon {
        w.push("--no-daemon".into());
    }
    if a.ready_timeout != super::DEFAULT_READY_TIMEOUT {
        w.extend(["--ready-timeout".into(), a.ready_timeout.to_string()]);
    }
    if a.print_mcp {
        w.push("--print-mcp".into());
    }
    if a.attach {
        w.push("--attach".into());
    } else if a.no_attach {
        w.push("--no-attach".into());
    }
    shell_line(&w)
}

/// One line per agent: how it reaches the bridge's MCP server.
pub(super) fn print_wiring(slots: &[Slot], laid: &Laid) {
    let agents: Vec<(usize, &Slot)> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.wired.is_some())
        .collect();
    if agents.is_empty() {
        return;
    }
    println!("MCP server `macs` (macs-bridge mcp --as NAME), per agent:");
    for (i, slot) in agents {
        let Some(wired) = &slot.wired else { continue };
        let mut line = wired.describe();
        if wired.cli.is_none() {
            line.push_str(&format!(
                "; to add it by hand: macs-bridge mcp --print-config --as {}",
                slot.label
            ));
        } else if laid.fates[i] == Fate::Kept {
            line.push_str(" (kept pane: as it was started then)");
        }
        println!("  {:<11} {line}", slot.label);
    }
}

/// `--print-mcp`: every agent's configuration in full, for each CLI.
pub(super) fn print_snippets(exe: &Path, slots: &[Slot], state_dir: &Path) {
    for slot in slots.iter().filter(|s| s.wired.is_some()) {
        println!(
            "\n## {}\n{}",
            slot.label,
            crate::mcp::snippets(exe, &slot.label, state_dir).render()
        );
    }
}

/// How an agent looks while `up` waits for it.
pub(super) fn progress_line(g: &Progress) -> String {
    let shows = if g.shows.is_empty() {
        "nothing yet".to_string()
    } else {
        format!("{:?}", g.shows)
    };
    format!(
        "  … {:>3}s {} ({}): {} ({}); shows {shows}",
        g.waited.as_secs(),
        g.label,
        g.pane,
        g.state,
        g.reason
    )
}

/// Where a prompt came from: the override file, or the built-in text.
pub(super) fn prompt_source(kind: PromptKind, state_dir: &Path) -> String {
    let path = prompts::override_path(kind, state_dir);
    if path.is_file() {
        path.display().to_string()
    } else {
        format!("{} (built in)", kind.file_name())
    }
}

/// What became of an agent's prompt; `again` is the command that runs `up` again.
pub(super) fn describe(result: &PromptResult, file: &str, again: &str) -> String {
    match result {
        PromptResult::Sent { how } => format!("prompt sent: {file}; {how}"),
        PromptResult::Unconfirmed { reason } => {
            format!("prompt typed but not seen to submit ({reason}): press Enter in the pane if it is still there")
        }
        PromptResult::Asking { reason } => format!(
            "prompt NOT sent: the agent is asking something ({reason}), probably whether to trust this folder. Answer it in the pane, then run `{again}` to send the prompt"
        ),
        PromptResult::NotAgent { profile } => format!(
            "prompt NOT sent: the pane shows a {profile} prompt, not an agent (did the agent exit?)"
        ),
        PromptResult::Exited { status, output } => {
            let status = if status.is_empty() { String::new() } else { format!(" with status {status}") };
            let output = if output.is_empty() {
                " and printed nothing".to_string()
            } else {
                format!(":\n{}", indent(output, "      | "))
            };
            format!("prompt NOT sent: the program exited{status}{output}")
        }
        PromptResult::Gone => "prompt NOT sent: the pane closed (its program exited)".into(),
        PromptResult::NotReady { state, reason } => format!(
            "prompt NOT sent: not idle in time (still {state}: {reason}); send it by hand with `macs-bridge send`, or run `{again}`"
        ),
        PromptResult::Refused { reason } => format!("prompt NOT sent: {reason}"),
    }
}

pub(super) fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::PaneState;
    use crate::tmux::PaneId;
    use std::path::PathBuf;
    use std::time::Duration;

    fn options() -> UpOptions {
        UpOptions {
            layout: Layout::Pair,
            agents: None,
            worker: None,
            controller: None,
            attach: false,
            no_attach: false,
            reset_session: false,
            state_dir: None,
            no_daemon: false,
            ready_timeout: super::super::DEFAULT_READY_TIMEOUT,
            print_mcp: false,
        }
    }

    #[test]
    fn the_rerun_line_repeats_the_options_given_but_never_the_reset() {
        let plain = rerun_line(&Socket::Default, "macs", &options(), Path::new("/s"));
        assert_eq!(plain, "macs-bridge --session macs up");
        let a = UpOptions {
            layout: Layout::Chat,
            agents: Some(2),
            worker: Some("claude --model 'sonnet 4'".into()),
            reset_session: true,
            state_dir: Some(PathBuf::from("team")),
            no_daemon: true,
            ready_timeout: 90,
            print_mcp: true,
            no_attach: true,
            ..options()
        };
        assert_eq!(
            rerun_line(&Socket::Name("t 1".into()), "dev", &a, Path::new("/home/me/team")),
            "macs-bridge -L 't 1' --session dev up --layout chat --agents 2 --worker 'claude --model '\\''sonnet 4'\\''' --state-dir /home/me/team --no-daemon --ready-timeout 90 --print-mcp --no-attach"
        );
    }

    #[test]
    fn progress_says_who_how_long_and_what_it_shows() {
        let g = Progress {
            label: "agent1".into(),
            pane: PaneId(3),
            waited: Duration::from_millis(4200),
            state: PaneState::Busy,
            reason: "working line".into(),
            shows: "• Working (3s • esc to interrupt)".into(),
        };
        assert_eq!(
            progress_line(&g),
            "  …   4s agent1 (%3): busy (working line); shows \"• Working (3s • esc to interrupt)\""
        );
        let g = Progress {
            shows: String::new(),
            ..g
        };
        assert!(progress_line(&g).ends_with("shows nothing yet"));
    }

    #[test]
    fn results_that_are_not_sent_say_how_to_go_on() {
        let again = "macs-bridge --session macs up --layout chat";
        let asking = describe(
            &PromptResult::Asking {
                reason: "menu".into(),
            },
            "f",
            again,
        );
        assert!(
            asking.contains(again) && asking.contains("NOT sent"),
            "{asking}"
        );
        let exited = describe(
            &PromptResult::Exited {
                status: "2".into(),
                output: "model not found".into(),
            },
            "f",
            again,
        );
        assert!(
            exited.contains("exited with status 2:\n      | model not found"),
            "{exited}"
        );
    }
}
