//! Waiting for freshly started agents to reach their prompt, and typing their start-up prompt
//! into each one that does, with the same writer as `send` ([`inject::deliver`]).
//!
//! One control client watches every agent at once (a [`LiveView`]); nothing is typed into a
//! pane that is not idle, and a pane that shows a question (a trust dialog at start) is left to
//! the person: its prompt is skipped, and they are told so.

use std::time::Duration;

use tokio::time::Instant;

use crate::tmux::oneshot::Tmux;
use crate::tools::LiveView;

use super::UpError;
use crate::detect::PaneState;
use crate::inject::{self, InjectError, InjectOptions, Outcome, PaneWatch};
use crate::tmux::command::{CaptureOpts, Command, OptionScope, Target};
use crate::tmux::PaneId;

use super::session::PROMPTED_OPTION;

/// Profiles of programs that are not agents: typing a prompt there would run it as commands.
const NOT_AGENTS: [&str; 2] = ["shell", "python"];

/// A prompt to send.
#[derive(Debug, Clone)]
pub struct PromptJob {
    pub label: String,
    pub pane: PaneId,
    pub text: String,
}

/// What became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptResult {
    /// Typed and seen to submit.
    Sent { how: String },
    /// Typed and submit keys sent, but the submission was not seen.
    Unconfirmed { reason: String },
    /// The agent shows a question or menu (a trust dialog): left to the person.
    Asking { reason: String },
    /// The pane shows a shell or REPL prompt, not an agent.
    NotAgent { profile: String },
    /// The program exited; its pane is kept on screen.
    Exited { status: String, output: String },
    /// The pane closed.
    Gone,
    /// Not idle within the time given.
    NotReady { state: PaneState, reason: String },
    /// The writer refused (the prompt line holds someone's text, or the state changed).
    Refused { reason: String },
}

/// How long to wait and how to type.
#[derive(Debug, Clone)]
pub struct ReadyOptions {
    /// How long agents get to reach their prompt.
    pub timeout: Duration,
    /// How long a pane must stay idle before it is typed into (agents draw their start-up
    /// screens in steps).
    pub idle_for: Duration,
    /// How long a question must stay before the agent is left to the person.
    pub asking_for: Duration,
    pub inject: InjectOptions,
    pub busy_lines: usize,
}

/// How long an agent's unchanged state goes unreported while `up` waits for it.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What an agent looks like while `up` waits for it: reported when it changes, and every
/// [`PROGRESS_EVERY`] while it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub label: String,
    pub pane: PaneId,
    /// Since `up` began waiting.
    pub waited: Duration,
    pub state: PaneState,
    /// Why the classifier says so.
    pub reason: String,
    /// The last non-blank line on its screen (control characters removed, at most 80
    /// characters).
    pub shows: String,
}

struct Pending {
    job: PromptJob,
    idle_since: Option<Instant>,
    asking_since: Option<Instant>,
    last: Option<(PaneState, String)>,
    /// What was last reported, and when.
    reported: Option<((PaneState, String), Instant)>,
}

/// Waits for each pane to be idle and sends its prompt; returns what happened to each, in the
/// order given. Marks a pane that got its prompt with [`PROMPTED_OPTION`]. `progress` hears how
/// each agent looks while it is waited for.
pub async fn send_prompts(
    tmux: &Tmux,
    session: &str,
    jobs: Vec<PromptJob>,
    opts: &ReadyOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Vec<(PromptJob, PromptResult)>, UpError> {
    let mut done: Vec<(PromptJob, PromptResult)> = Vec::new();
    if jobs.is_empty() {
        return Ok(done);
    }
    let mut view = LiveView::open(tmux.clone(), session).await?;
    view.busy_lines = opts.busy_lines;
    let began = Instant::now();
    let deadline = began + opts.timeout;
    let mut pending: Vec<Pending> = jobs
        .into_iter()
        .map(|job| Pending {
            job,
            idle_since: None,
            asking_since: None,
            last: None,
            reported: None,
        })
        .collect();
    while !pending.is_empty() {
        let round = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            match step(&mut view, &mut pending[i], opts, began, progress).await? {
                Some(result) => {
                    let p = pending.remove(i);
                    done.push((p.job, result));
                }
                None => i += 1,
            }
        }
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for p in pending.drain(..) {
                let (state, reason) = p
                    .last
                    .unwrap_or((PaneState::Unknown, "nothing seen".into()));
                done.push((p.job, PromptResult::NotReady { state, reason }));
            }
            break;
        }
        view.settle(Duration::from_millis(200)).await;
        // At most five looks a second, however busy the agents' screens are.
        let spent = round.elapsed();
        if spent < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(200) - spent).await;
        }
    }
    view.close();
    Ok(done)
}

/// One look at one pane: a result when it is done with, `None` to look again.
async fn step(
    view: &mut LiveView,
    p: &mut Pending,
    opts: &ReadyOptions,
    began: Instant,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Option<PromptResult>, UpError> {
    let pane = p.job.pane;
    let target = Target::Pane(pane);
    let facts = view
        .client()
        .run(&Command::display_message(
            Some(&target),
            "#{pane_dead}\u{1f}#{pane_dead_status}",
        ))
        .await;
    match facts {
        Err(_) => return Ok(Some(PromptResult::Gone)),
        Ok(lines) => {
            let line = lines.first().map(String::as_str).unwrap_or("");
            if let Some(status) = line.strip_prefix("1\u{1f}") {
                let output = view
                    .client()
                    .run(&Command::capture_pane(
                        &target,
                        &CaptureOpts {
                            join: true,
                            ..CaptureOpts::default()
                        },
                    ))
                    .await
                    .unwrap_or_default();
                return Ok(Some(PromptResult::Exited {
                    status: status.to_string(),
                    output: tail(&output, 8),
                }));
            }
        }
    }
    let look = match view.look(pane).await {
        Ok(l) => l,
        Err(InjectError::PaneGone(_)) => return Ok(Some(PromptResult::Gone)),
        Err(e) => return Err(e.into()),
    };
    let now = Instant::now();
    p.last = Some((look.state, look.reason.clone()));
    let seen = (look.state, look.reason.clone());
    let due = match &p.reported {
        None => true,
        Some((last, at)) => *last != seen || now.duration_since(*at) >= PROGRESS_EVERY,
    };
    if due {
        progress(&Progress {
            label: p.job.label.clone(),
            pane,
            waited: now.duration_since(began),
            state: look.state,
            reason: look.reason.clone(),
            shows: last_line(&look.lines, 80),
        });
        p.reported = Some((seen, now));
    }
    match look.state {
        PaneState::Idle => {
            p.asking_since = None;
            if NOT_AGENTS.contains(&look.profile.as_str()) {
                return Ok(Some(PromptResult::NotAgent {
                    profile: look.profile,
                }));
            }
            let since = *p.idle_since.get_or_insert(now);
            if now.duration_since(since) < opts.idle_for {
                return Ok(None);
            }
        }
        PaneState::Asking => {
            p.idle_since = None;
            let since = *p.asking_since.get_or_insert(now);
            if now.duration_since(since) >= opts.asking_for {
                return Ok(Some(PromptResult::Asking {
                    reason: look.reason,
                }));
            }
            return Ok(None);
        }
        PaneState::Busy | PaneState::Unknown => {
            p.idle_since = None;
            p.asking_since = None;
            return Ok(None);
        }
    }
    let result = match inject::deliver(view, pane, &p.job.text, &opts.inject).await {
        Ok(Outcome::Delivered { key, evidence }) => PromptResult::Sent {
            how: format!("submitted with {key}: {evidence}"),
        },
        Ok(Outcome::Typed) => PromptResult::Sent {
            how: "typed, not submitted".into(),
        },
        Ok(Outcome::Unconfirmed { reason }) => PromptResult::Unconfirmed { reason },
        Err(InjectError::PaneGone(_)) => PromptResult::Gone,
        Err(e @ (InjectError::NotIdle { .. } | InjectError::PromptHasText { .. })) => {
            PromptResult::Refused {
                reason: e.to_string(),
            }
        }
        Err(e) => return Err(e.into()),
    };
    if matches!(
        result,
        PromptResult::Sent { .. } | PromptResult::Unconfirmed { .. }
    ) {
        // Typed: never again on a later `up`, even when the submission was not seen.
        view.client()
            .run(&Command::set_option(
                OptionScope::Pane(target),
                PROMPTED_OPTION,
                "1",
            ))
            .await?;
    }
    Ok(Some(result))
}

/// The last non-blank line of a screen, made safe to print, cut to `max` characters.
fn last_line(lines: &[String], max: usize) -> String {
    let line = lines
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() > max {
        let cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

/// The last `n` non-blank lines of a capture, without tmux's own "Pane is dead" line.
fn tail(lines: &[String], n: usize) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty() && !l.starts_with("Pane is dead"))
        .collect();
    kept[kept.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_of_output() {
        let lines: Vec<String> = ["a", "", "b", "c  ", "Pane is dead (status 2, now)", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(tail(&lines, 2), "b\nc");
        assert_eq!(tail(&lines, 10), "a\nb\nc");
        assert_eq!(tail(&[], 3), "");
    }

    #[test]
    fn last_line_is_the_last_words_on_screen_made_safe() {
        let lines: Vec<String> = ["• Working (1s)", "  › ask\x1b[31m  ", "", "   "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(last_line(&lines, 80), "› ask[31m");
        assert_eq!(last_line(&lines, 4), "› a…");
        assert_eq!(last_line(&[], 10), "");
    }
}
