//! The keystroke writer: puts text into an agent's prompt and submits it, following the recipe
//! that landed in every agent CLI tried (`../shared/AGENTS.md`):
//!
//! 1. look at the pane: it must be idle (not busy, not asking in a menu), and its prompt line must
//!    hold no text the bridge did not put there;
//! 2. strip ESC and control characters (only newline and tab survive);
//! 3. paste it (`set-buffer` + `paste-buffer -p -d`) when it has several lines or characters a
//!    picker would grab (`/`, `@`, `name.ext`), else type it (`send-keys -l`);
//! 4. wait the type delay, then send each submit key as its own keystroke until the screen shows
//!    the submission (the pane turned busy, or the prompt no longer holds the text);
//! 5. say "delivered" only when that was seen, "unconfirmed" otherwise.
//!
//! It never sends a key chosen by pane output: keys come from the caller's configuration.

use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::detect::PaneState;
use crate::tmux::client::{Client, ClientError};
use crate::tmux::command::{Command, KeyName, Target};
use crate::tmux::PaneId;

/// How text is put in and submitted.
#[derive(Debug, Clone)]
pub struct InjectOptions {
    /// Wait between the text and the first submit key (`TARGET_PANE_TYPE_DELAY_MS`).
    pub type_delay: Duration,
    /// Submit keys, tried in order until one is seen to submit (`TARGET_PANE_SUBMIT_KEYS`).
    pub submit_keys: Vec<KeyName>,
    /// Refuse a pane that is not idle (`TARGET_PANE_GUARD_BUSY`).
    pub guard_busy: bool,
    /// Type but do not submit.
    pub no_submit: bool,
    /// How long to watch for each submit key to take effect.
    pub confirm_timeout: Duration,
    /// Neutralise a leading `!` or `/` (shell escape, slash command) in the text.
    pub guard_prefix: bool,
}

impl Default for InjectOptions {
    fn default() -> Self {
        InjectOptions {
            type_delay: Duration::from_millis(400),
            submit_keys: vec![KeyName::parse("Enter").unwrap_or_else(|_| unreachable_key())],
            guard_busy: true,
            no_submit: false,
            confirm_timeout: Duration::from_secs(2),
            guard_prefix: true,
        }
    }
}

fn unreachable_key() -> KeyName {
    // `Enter` is always a valid key name; this keeps `unwrap` out of library code.
    KeyName::parse("C-m").unwrap_or_else(|_| panic!("tmux key names Enter and C-m rejected"))
}

pub use crate::detect::Look;

/// A live view of panes that the writer polls while it works.
pub trait PaneWatch {
    /// The pane as it is now (after applying whatever tmux has pushed).
    fn look(
        &mut self,
        pane: PaneId,
    ) -> impl std::future::Future<Output = Result<Look, InjectError>>;
    /// Waits up to `max` for the pane to change (or just waits, if the view cannot tell).
    fn settle(&mut self, max: Duration) -> impl std::future::Future<Output = ()>;
    /// The control client to type with.
    fn client(&self) -> &Client;
    /// The writer is about to take `step`; returns once it may (the daemon records each step
    /// in its journal first). Tools without a journal go on at once.
    fn step(&mut self, step: Step) -> impl std::future::Future<Output = ()> {
        let _ = step;
        async {}
    }
}

/// The steps of a delivery after the text is chosen, announced through [`PaneWatch::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The whole text is in the prompt; no submit key was sent.
    Text,
    /// A submit key is about to be sent.
    Submit,
}

/// How the text gets into the prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Type it (the prompt must be empty).
    #[default]
    Type,
    /// It is in the prompt already (found after a crash): only submit it.
    Submit,
    /// Part of it is in the prompt (found after a crash): clear the line with these keys,
    /// then type it.
    Retype(Vec<KeyName>),
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Seen to submit: the key that did it and what showed it.
    Delivered { key: String, evidence: String },
    /// Put in the prompt and left there (`--no-submit`).
    Typed,
    /// Typed and submit keys sent, but no submission was seen.
    Unconfirmed { reason: String },
}

/// Why nothing was typed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("the pane is {state} ({reason}); not typing into it")]
    NotIdle { state: PaneState, reason: String },
    #[error("the prompt holds text the bridge did not type ({text:?}); not typing over it")]
    PromptHasText { text: String },
    #[error("nothing to send: the text is empty once control characters are removed")]
    Empty,
    #[error("the pane {0} is gone")]
    PaneGone(PaneId),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Removes ESC and every control character but newline and tab; CRLF and CR become newlines;
/// trailing blank lines go.
pub fn sanitize(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // Drop a whole escape sequence, not just its ESC: `ESC [ 1 m` must not leave `[1m`.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        while let Some(&n) = chars.peek() {
                            chars.next();
                            if ('\x40'..='\x7e').contains(&n) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(n) = chars.next() {
                            if n == '\x07' {
                                break;
                            }
                            if n == '\x1b' && chars.peek() == Some(&'\\') {
                                chars.next();
                                break;
                            }
                        }
                    }
                    Some(_) => {
                        chars.next();
                    }
                    None => {}
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() || is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out.trim_end_matches(['\n', ' ', '\t']).to_string()
}

/// Characters that change how text reads without showing: bidirectional overrides and
/// isolates (which can make a shown command differ from the typed one), zero-width spaces and
/// joiners, the byte order mark, and other format characters that agents have no use for.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
        | '\u{206A}'..='\u{206F}' // deprecated format characters
        | '\u{FEFF}'               // byte order mark, zero-width no-break space
        | '\u{061C}'               // Arabic letter mark
        | '\u{180E}'               // Mongolian vowel separator
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// Makes text safe to be the start of a prompt: a leading `!` (shell escape) or `/` (slash
/// command) gets a space in front.
pub fn guard_prefix(text: &str) -> String {
    let first = text.trim_start_matches([' ', '\t', '\n']);
    if first.starts_with('!') || first.starts_with('/') {
        format!(" {first}")
    } else {
        text.to_string()
    }
}

/// Whether text must go as a paste: several lines, or characters an agent's picker would take.
pub fn needs_paste(text: &str) -> bool {
    if text.contains('\n') || text.contains('/') || text.contains('@') {
        return true;
    }
    // `name.ext`: a dot between word characters.
    let b = text.as_bytes();
    b.windows(3)
        .any(|w| w[1] == b'.' && w[0].is_ascii_alphanumeric() && w[2].is_ascii_alphabetic())
}

/// The last characters of the text's last line, to recognise it on screen.
pub fn tail_marker(text: &str) -> String {
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let chars: Vec<char> = last.trim().chars().collect();
    let start = chars.len().saturating_sub(16);
    chars[start..].iter().collect()
}

/// Where the typed text shows before it is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// On the prompt line the profile knows how to read: the submission empties it.
    InPrompt,
    /// Only somewhere in the bottom rows (wrapped, several lines, or collapsed by the agent).
    NearBottom,
    Nowhere,
}

pub fn seen(look: &Look, marker: &str) -> Seen {
    if marker.is_empty() {
        return Seen::Nowhere;
    }
    if let Some(input) = &look.prompt_input {
        if input.contains(marker) || input.contains("[Pasted text") {
            return Seen::InPrompt;
        }
        // The prompt shows the first line of the input; the marker is from the last one.
        if !input.trim().is_empty() {
            return Seen::InPrompt;
        }
    }
    let in_rows = look
        .lines
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(12)
        .any(|l| l.contains(marker));
    if in_rows {
        Seen::NearBottom
    } else {
        Seen::Nowhere
    }
}

/// Whether the screen shows that the text was taken, given where it showed before.
fn submitted(before: Seen, now: &Look, marker: &str) -> bool {
    match before {
        Seen::InPrompt => now
            .prompt_input
            .as_deref()
            .is_none_or(|s| s.trim().is_empty()),
        Seen::NearBottom => seen(now, marker) == Seen::Nowhere,
        Seen::Nowhere => false,
    }
}

static BUFFER_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Delivers `text` into `pane`.
pub async fn deliver<W: PaneWatch>(
    watch: &mut W,
    pane: PaneId,
    text: &str,
    opts: &InjectOptions,
) -> Result<Outcome, InjectError> {
    deliver_with(watch, pane, text, opts, &Mode::Type).await
}

/// Delivers `text` into `pane` the way `mode` says.
pub async fn deliver_with<W: PaneWatch>(
    watch: &mut W,
    pane: PaneId,
    text: &str,
    opts: &InjectOptions,
    mode: &Mode,
) -> Result<Outcome, InjectError> {
    let mut text = sanitize(text);
    if opts.guard_prefix {
        text = guard_prefix(&text);
    }
    if text.trim().is_empty() {
        return Err(InjectError::Empty);
    }
    // What the prompt may hold: nothing, or (after a crash) the bridge's own text.
    let own = |input: &str| *mode != Mode::Type && text.trim_start().starts_with(input.trim());
    let before = watch.look(pane).await?;
    let working = matches!(before.state, PaneState::Busy | PaneState::Asking);
    // A menu takes a key as its answer: never typed into, whatever the options say.
    if (opts.guard_busy && working) || before.state == PaneState::Asking {
        return Err(InjectError::NotIdle {
            state: before.state,
            reason: before.reason,
        });
    }
    // A person's half-typed line is never typed over, not even with the busy guard off.
    if let Some(input) = before
        .prompt_input
        .as_deref()
        .filter(|s| !s.trim().is_empty() && !own(s))
    {
        if !working {
            return Err(InjectError::PromptHasText {
                text: input.to_string(),
            });
        }
    }
    if opts.guard_busy && before.state != PaneState::Idle {
        return Err(InjectError::NotIdle {
            state: before.state,
            reason: before.reason,
        });
    }

    let target = Target::Pane(pane);
    let client = watch.client().clone();
    // tmux tells control clients that a pane entered a mode (copy mode, a chooser) up to a
    // second late: ask right before the first key, which a mode would take as its command.
    let in_mode = client
        .run(&Command::display_message(Some(&target), "#{pane_in_mode}"))
        .await?;
    if in_mode.first().is_some_and(|v| v.trim() == "1") {
        return Err(InjectError::NotIdle {
            state: PaneState::Asking,
            reason:
                "the pane is in a mode (copy mode: a person scrolled back); waiting until it ends"
                    .into(),
        });
    }
    // Output that came in while tmux answered (a person typing right now) is on the view by
    // now: look at the prompt once more, as late as possible before the first key.
    let last = watch.look(pane).await?;
    if let Some(input) = last
        .prompt_input
        .as_deref()
        .filter(|s| !s.trim().is_empty() && !own(s))
    {
        if last.state != PaneState::Busy {
            return Err(InjectError::PromptHasText {
                text: input.to_string(),
            });
        }
    }
    if let Mode::Retype(clear) = mode {
        if !clear.is_empty() {
            client.run(&Command::send_keys(&target, clear)).await?;
        }
    }
    if *mode == Mode::Submit {
        // Already in the prompt.
    } else if crate::faults::armed("mid-text") {
        // Crash tests: half of the first line, then die.
        let first = text.lines().next().unwrap_or("");
        let half: String = first.chars().take(first.chars().count() / 2).collect();
        if !half.is_empty() {
            client
                .run(&Command::send_keys_literal(&target, &half))
                .await?;
        }
        crate::faults::point("mid-text");
    } else if needs_paste(&text) {
        let n = BUFFER_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let buffer = format!("macs-{}-{n}", std::process::id());
        client.run(&Command::set_buffer(&buffer, &text)).await?;
        client
            .run(&Command::paste_buffer(&buffer, &target, true, true))
            .await?;
    } else {
        client
            .run(&Command::send_keys_literal(&target, &text))
            .await?;
    }
    debug!(%pane, len = text.len(), "text put in the prompt");
    watch.step(Step::Text).await;
    crate::faults::point("typed");
    if opts.no_submit {
        return Ok(Outcome::Typed);
    }

    // Wait the type delay (agents take an Enter that follows text too closely as a newline),
    // and until the text shows, for at most `confirm_timeout` more.
    let typed_at = Instant::now();
    let marker = tail_marker(&text);
    let mut before;
    loop {
        before = seen(&watch.look(pane).await?, &marker);
        let waited = typed_at.elapsed();
        if waited >= opts.type_delay
            && (before != Seen::Nowhere || waited >= opts.type_delay + opts.confirm_timeout)
        {
            break;
        }
        if before != Seen::Nowhere {
            tokio::time::sleep(opts.type_delay - waited).await;
        } else {
            watch.settle(Duration::from_millis(50)).await;
        }
    }

    // Busy before the key is no evidence that the key submitted anything.
    let busy_before = watch.look(pane).await?.state == PaneState::Busy;
    watch.step(Step::Submit).await;
    for key in &opts.submit_keys {
        client
            .run(&Command::send_keys(&target, std::slice::from_ref(key)))
            .await?;
        crate::faults::point("submitted");
        let deadline = Instant::now() + opts.confirm_timeout;
        loop {
            let now = watch.look(pane).await?;
            if now.state == PaneState::Busy && !busy_before {
                return Ok(Outcome::Delivered {
                    key: key.to_string(),
                    evidence: format!("the pane turned busy ({})", now.reason),
                });
            }
            if submitted(before, &now, &marker) {
                return Ok(Outcome::Delivered {
                    key: key.to_string(),
                    evidence: "the prompt no longer holds the text".into(),
                });
            }
            if Instant::now() >= deadline {
                break;
            }
            watch.settle(Duration::from_millis(100)).await;
        }
        debug!(%pane, key = %key, "no sign of submission yet");
    }
    Ok(Outcome::Unconfirmed {
        reason: if before != Seen::Nowhere {
            "the text is still in the prompt after every submit key".into()
        } else {
            "the text never showed on screen, and the pane did not turn busy".into()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escapes_and_controls() {
        assert_eq!(sanitize("a\x1b[31mred\x1b[0m b"), "ared b");
        assert_eq!(sanitize("x\x1b]0;title\x07y"), "xy");
        assert_eq!(sanitize("a\x03b\x04c\x7f"), "abc");
        assert_eq!(sanitize("l1\r\nl2\rl3\n\n"), "l1\nl2\nl3");
        assert_eq!(sanitize("tab\there"), "tab\there");
        assert_eq!(sanitize("é ✓ 日本"), "é ✓ 日本");
        // Bidi overrides and zero-width characters never reach a prompt.
        assert_eq!(
            sanitize("ls \u{202E}txt.exe\u{202C} a\u{200B}b\u{FEFF}"),
            "ls txt.exe ab"
        );
        assert_eq!(sanitize("x\u{2066}y\u{2069}z\u{200D}"), "xyz");
    }

    #[test]
    fn leading_bang_and_slash_are_neutralised() {
        assert_eq!(guard_prefix("!rm -rf /"), " !rm -rf /");
        assert_eq!(guard_prefix("  /quit"), " /quit");
        assert_eq!(guard_prefix("ok /x"), "ok /x");
    }

    #[test]
    fn paste_is_chosen_for_pickers_and_lines() {
        assert!(needs_paste("look at src/main.rs"));
        assert!(needs_paste("read notes.md"));
        assert!(needs_paste("ask @claude"));
        assert!(needs_paste("a\nb"));
        assert!(!needs_paste("yes, go ahead"));
        assert!(!needs_paste("version 1.2"));
    }

    #[test]
    fn tail_marker_takes_the_end_of_the_last_line() {
        assert_eq!(
            tail_marker("first\nthe second line is long enough"),
            "line is long enough".chars().skip(3).collect::<String>()
        );
        assert_eq!(tail_marker("hi"), "hi");
    }
}
