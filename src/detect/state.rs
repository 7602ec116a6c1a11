//! The pane state classifier: idle, busy, asking or unknown, read from a pane's title, current
//! command and screen with the rules of one [`Profile`].
//!
//! Signals are read strongest first, and the first one that speaks decides:
//!
//! 1. the current command (`command.unknown_if`: the agent has exited to a shell → unknown;
//!    `command.busy_unless`: a shell profile whose foreground program is not a shell → busy);
//! 2. the pane title: `title.asking`, then `title.busy` (Codex keeps a braille spinner in its
//!    title while its screen looks idle; Gemini names its state there);
//! 3. the screen: `busy` (a busy line beats a prompt that stays visible), then `asking` (an
//!    approval menu beats the prompt glyph it reuses), then `idle` (the prompt);
//! 4. `title.idle`;
//! 5. silence (`idle_when_silent_ms`).
//!
//! An idle verdict is held back as busy while output is still arriving (`settle_ms`). When no
//! signal speaks the state is unknown: never guess idle.
//!
//! Only the last `busy_lines` non-blank rows of the screen are looked at (old spinners and menus
//! stay in scrollback); trailing blank rows are dropped first. This module does no I/O and never
//! panics on pane input.

use std::borrow::Cow;
use std::fmt;
use std::iter::Peekable;
use std::time::Duration;

use super::profile::{Profile, Rule};

/// What a pane is doing, as far as typing into it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaneState {
    /// Waiting at its prompt: text typed now becomes the next message.
    Idle,
    /// Working: typed text would be queued, steer the work (Codex) or go to another program.
    Busy,
    /// Showing a question or approval menu: a key typed now answers it.
    Asking,
    /// No signal says anything: treat as not idle.
    Unknown,
}

impl PaneState {
    /// `"idle"`, `"busy"`, `"asking"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaneState::Idle => "idle",
            PaneState::Busy => "busy",
            PaneState::Asking => "asking",
            PaneState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PaneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the classifier looks at. `lines` are the pane's visible rows top to bottom, plain text
/// (no escapes), trailing blank rows included as they are on screen.
#[derive(Debug, Clone, Copy)]
pub struct PaneView<'a> {
    pub lines: &'a [String],
    /// `#{pane_title}`; empty when unknown.
    pub title: &'a str,
    /// `#{pane_current_command}`; empty when unknown.
    pub current_command: &'a str,
    /// Time since the pane last produced output, when known.
    pub silent_for: Option<Duration>,
}

impl<'a> PaneView<'a> {
    /// A view of the screen alone: no title, no command, silence unknown.
    pub fn new(lines: &'a [String]) -> Self {
        PaneView {
            lines,
            title: "",
            current_command: "",
            silent_for: None,
        }
    }

    pub fn with_title(mut self, title: &'a str) -> Self {
        self.title = title;
        self
    }

    pub fn with_command(mut self, current_command: &'a str) -> Self {
        self.current_command = current_command;
        self
    }

    pub fn with_silence(mut self, silent_for: Duration) -> Self {
        self.silent_for = Some(silent_for);
        self
    }
}

/// The verdict on a pane.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    pub state: PaneState,
    /// The name of the profile that was applied.
    pub profile: String,
    /// Which rule decided, for logs and `status` (never pane contents).
    pub reason: String,
}

/// Classifies a pane with `profile`'s rules. `busy_lines` (`TARGET_PANE_BUSY_LINES`, default 40)
/// caps how many non-blank rows from the bottom of the screen are looked at.
pub fn classify(profile: &Profile, view: &PaneView, busy_lines: usize) -> Classification {
    let verdict = |state: PaneState, reason: String| Classification {
        state,
        profile: profile.name.clone(),
        reason,
    };

    let cmd = normalize_command(view.current_command);
    if !cmd.is_empty() {
        if profile.unknown_if.iter().any(|r| r.is_match(cmd)) {
            return verdict(
                PaneState::Unknown,
                format!("current command `{cmd}`: {} is not running", profile.name),
            );
        }
        if !profile.busy_unless.is_empty() && !profile.busy_unless.iter().any(|r| r.is_match(cmd)) {
            return verdict(
                PaneState::Busy,
                format!("`{cmd}` runs in the foreground (command.busy_unless)"),
            );
        }
    }

    let title = view.title.trim();
    let title_rule = |rules: &[Rule]| -> Option<String> {
        if title.is_empty() {
            return None;
        }
        rules
            .iter()
            .find(|r| r.regex.is_match(title))
            .map(|r| r.label.clone())
    };
    if let Some(label) = title_rule(&profile.title.asking) {
        return verdict(PaneState::Asking, format!("title asking: {label}"));
    }
    if let Some(label) = title_rule(&profile.title.busy) {
        return verdict(PaneState::Busy, format!("title busy: {label}"));
    }

    let cap = busy_lines.max(1);
    let window = Window::new(view.lines, cap);
    let default_lines = profile.last_lines.unwrap_or(cap);
    let screen_rule = |rules: &[Rule]| -> Option<String> {
        if window.is_empty() {
            return None;
        }
        rules
            .iter()
            .find(|r| {
                let n = r.last_lines.unwrap_or(default_lines).min(cap);
                r.regex.is_match(window.tail(n))
            })
            .map(|r| r.label.clone())
    };
    if let Some(label) = screen_rule(&profile.busy) {
        return verdict(PaneState::Busy, format!("screen busy: {label}"));
    }
    if let Some(label) = screen_rule(&profile.asking) {
        return verdict(PaneState::Asking, format!("screen asking: {label}"));
    }

    let idle = screen_rule(&profile.idle)
        .map(|l| format!("screen idle: {l}"))
        .or_else(|| title_rule(&profile.title.idle).map(|l| format!("title idle: {l}")));
    if let Some(reason) = idle {
        if let (Some(settle), Some(silent)) = (profile.settle, view.silent_for) {
            if silent < settle {
                return verdict(
                    PaneState::Busy,
                    format!(
                        "{reason}, but output came {} ms ago (settle_ms {})",
                        silent.as_millis(),
                        settle.as_millis()
                    ),
                );
            }
        }
        return verdict(PaneState::Idle, reason);
    }

    if let (Some(need), Some(silent)) = (profile.idle_when_silent, view.silent_for) {
        if silent >= need {
            return verdict(
                PaneState::Idle,
                format!(
                    "silent for {} ms (idle_when_silent_ms {})",
                    silent.as_millis(),
                    need.as_millis()
                ),
            );
        }
    }
    verdict(PaneState::Unknown, "no rule matched".into())
}

/// The text typed on the pane's prompt line, by `profile`'s `prompt` rule: `None` when the profile
/// has no prompt rule, no prompt row is in view, or the prompt holds nothing but a placeholder.
/// Only the prompt row itself is read (the first row of multi-line input).
pub fn prompt_input(profile: &Profile, lines: &[String]) -> Option<String> {
    let rule = profile.prompt.as_ref()?;
    let window = Window::new(lines, rule.last_lines);
    let caps = rule
        .regex
        .captures_iter(window.tail(rule.last_lines))
        .last()?;
    let input = caps.name("input").or_else(|| caps.get(1))?.as_str().trim();
    if input.is_empty() || rule.placeholders.iter().any(|p| p.is_match(input)) {
        return None;
    }
    Some(input.to_owned())
}

/// `#{pane_current_command}` as profiles see it: trimmed, the basename of a path, without the
/// leading `-` of a login shell.
pub(crate) fn normalize_command(cmd: &str) -> &str {
    let cmd = cmd.trim();
    let base = cmd.rsplit('/').next().unwrap_or(cmd);
    base.strip_prefix('-').unwrap_or(base)
}

/// The bottom of a screen as screen rules see it: rows right-trimmed, trailing blank rows dropped,
/// at most `cap` non-blank rows (with the blank rows between them), joined by `\n`.
pub(crate) struct Window {
    text: String,
    /// Byte offset in `text` of each non-blank row, top to bottom.
    starts: Vec<usize>,
}

impl Window {
    pub(crate) fn new(lines: &[String], cap: usize) -> Window {
        let rows: Vec<Cow<str>> = lines
            .iter()
            .map(|l| {
                if l.contains(['\x1b', '\u{9b}']) {
                    Cow::Owned(strip_escapes(l).trim_end().to_owned())
                } else {
                    Cow::Borrowed(l.trim_end())
                }
            })
            .collect();
        let Some(last) = rows.iter().rposition(|r| !r.is_empty()) else {
            return Window {
                text: String::new(),
                starts: Vec::new(),
            };
        };
        let mut first = last;
        let mut seen = 0;
        for (i, r) in rows[..=last].iter().enumerate().rev() {
            if !r.is_empty() {
                seen += 1;
                first = i;
                if seen >= cap {
                    break;
                }
            }
        }
        let mut text = String::new();
        let mut starts = Vec::new();
        for (i, r) in rows[first..=last].iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            if !r.is_empty() {
                starts.push(text.len());
            }
            text.push_str(r);
        }
        Window { text, starts }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The last `n` non-blank rows (and the blank rows between them).
    pub(crate) fn tail(&self, n: usize) -> &str {
        if n == 0 || self.starts.is_empty() {
            return "";
        }
        let from = self.starts.len().saturating_sub(n);
        &self.text[self.starts[from]..]
    }
}

/// Strips ANSI/VT escape sequences (CSI, OSC, DCS/SOS/PM/APC strings, charset selects and other
/// `ESC` sequences, and their 8-bit C1 forms) and other control characters except tab from a
/// captured line; used on `capture-pane -e` text. An unterminated sequence at the end is dropped.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => skip_escape(&mut it),
            '\u{9b}' => skip_csi(&mut it),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

type Chars<'a> = Peekable<std::str::Chars<'a>>;

/// After `ESC`.
fn skip_escape(it: &mut Chars) {
    match it.next() {
        Some('[') => skip_csi(it),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(it),
        // nF: intermediates (charset selects `ESC ( B`, `ESC # 8`…), then one final byte.
        Some(' '..='/') => {
            for c in it.by_ref() {
                if !(' '..='/').contains(&c) {
                    break;
                }
            }
        }
        // Two-byte sequences (`ESC 7`, `ESC =`, `ESC M`…) or the end.
        _ => {}
    }
}

/// After `ESC [`: parameter bytes, intermediate bytes, one final byte.
fn skip_csi(it: &mut Chars) {
    while let Some(&c) = it.peek() {
        if ('\x20'..='\x3f').contains(&c) {
            it.next();
        } else {
            if ('\x40'..='\x7e').contains(&c) {
                it.next();
            }
            // Anything else ends a malformed sequence and is kept.
            return;
        }
    }
}

/// After `ESC ]`, `ESC P`…: up to BEL or ST (`ESC \` or 0x9c).
fn skip_string(it: &mut Chars) {
    while let Some(c) = it.next() {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                if it.peek() == Some(&'\\') {
                    it.next();
                } else {
                    // ESC cancels the string and starts a new sequence.
                    skip_escape(it);
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::profile::Profiles;
    use std::path::{Path, PathBuf};

    fn lines(text: &str) -> Vec<String> {
        text.split('\n').map(strip_escapes).collect()
    }

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens")
    }

    /// The state a fixture's file name promises.
    fn expected_state(stem: &str) -> PaneState {
        let ends = |s: &str| stem.ends_with(s);
        if ends("_approval") || ends("_trust") || ends("_first") {
            PaneState::Asking
        } else if ends("_busy") || ends("_busy_queue") || ends("_working") {
            PaneState::Busy
        } else if ends("_idle") || ends("_done") {
            PaneState::Idle
        } else {
            panic!("fixture {stem}: the name does not say the state (end it in _idle, _busy, _approval…)")
        }
    }

    /// The profile a fixture's prefix names, and the realistic `#{pane_current_command}`s.
    fn expected_profile(stem: &str) -> (&'static str, &'static [&'static str]) {
        match stem.split('_').next().unwrap_or("") {
            "codex" => ("codex", &["codex", "node"]),
            "claude" => ("claude-code", &["claude", "2.1.197"]),
            "gemini" => ("gemini", &["node", "gemini"]),
            "aider" => ("aider", &["aider", "python3", "python3.11"]),
            "python" => ("python", &["python3", "python"]),
            "shell" => ("shell", &["bash", "-zsh"]),
            other => panic!("fixture {stem}: unknown agent prefix {other:?}"),
        }
    }

    struct Fixture {
        stem: String,
        lines: Vec<String>,
        title: String,
    }

    fn fixtures() -> Vec<Fixture> {
        let mut out = Vec::new();
        let dir = fixture_dir();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        paths.sort();
        for path in paths {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let title = std::fs::read_to_string(path.with_extension("title"))
                .map(|t| t.trim().to_owned())
                .unwrap_or_default();
            out.push(Fixture {
                stem,
                lines: lines(text.strip_suffix('\n').unwrap_or(&text)),
                title,
            });
        }
        assert!(
            out.len() >= 17,
            "expected the fixture screens in {}",
            dir.display()
        );
        out
    }

    #[test]
    fn every_fixture_classifies_as_its_name_says() {
        let profiles = Profiles::builtin();
        let mut failures = Vec::new();
        for f in fixtures() {
            let want = expected_state(&f.stem);
            let (want_profile, commands) = expected_profile(&f.stem);
            let profile = profiles.get(want_profile).unwrap();

            // The right profile given, screen (and title) only.
            let view = PaneView::new(&f.lines).with_title(&f.title);
            let got = classify(profile, &view, 40);
            if got.state != want {
                failures.push(format!("{} (profile given): {got:?}, want {want}", f.stem));
            }

            // Picked from the screen alone, then from the realistic commands.
            for cmd in std::iter::once(&"").chain(commands.iter()) {
                let view = view.with_command(cmd);
                let picked = profiles.pick(&view);
                let got = classify(picked, &view, 40);
                if picked.name != want_profile || got.state != want {
                    failures.push(format!(
                        "{} (picked, command {cmd:?}): profile {}, {got:?}; want {want_profile} {want}",
                        f.stem, picked.name
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    fn fixture(stem: &str) -> Vec<String> {
        let text = std::fs::read_to_string(fixture_dir().join(format!("{stem}.txt"))).unwrap();
        lines(&text)
    }

    #[test]
    fn title_spinner_makes_an_idle_looking_codex_busy() {
        let profiles = Profiles::builtin();
        let codex = profiles.get("codex").unwrap();
        let screen = fixture("codex_idle");
        let idle = classify(codex, &PaneView::new(&screen).with_title("work"), 40);
        assert_eq!(idle.state, PaneState::Idle, "{idle:?}");
        let view = PaneView::new(&screen).with_title("⠧ work");
        let c = classify(codex, &view, 40);
        assert_eq!(c.state, PaneState::Busy, "{c:?}");
        assert!(c.reason.starts_with("title busy"), "{c:?}");
        assert_eq!(profiles.pick(&view.with_command("codex")).name, "codex");
    }

    #[test]
    fn codex_approval_title_is_asking() {
        let profiles = Profiles::builtin();
        let codex = profiles.get("codex").unwrap();
        let screen = fixture("codex_idle");
        let view = PaneView::new(&screen).with_title("[ ! ] Action Required | work");
        assert_eq!(classify(codex, &view, 40).state, PaneState::Asking);
    }

    #[test]
    fn gemini_title_beats_its_screen() {
        let profiles = Profiles::builtin();
        let gemini = profiles.get("gemini").unwrap();
        let idle_screen = fixture("gemini_idle");
        let busy_screen = fixture("gemini_busy");
        let asking = PaneView::new(&idle_screen).with_title("✋  Action Required (work)");
        assert_eq!(classify(gemini, &asking, 40).state, PaneState::Asking);
        // Picked from `node` by the title alone, with a blank screen.
        let blank = vec![String::new(); 40];
        let view = PaneView::new(&blank)
            .with_title("✋  Action Required (work)")
            .with_command("node");
        assert_eq!(profiles.pick(&view).name, "gemini");
        assert_eq!(
            classify(profiles.pick(&view), &view, 40).state,
            PaneState::Asking
        );

        let working = PaneView::new(&idle_screen).with_title("✦  Working… (work)");
        assert_eq!(classify(gemini, &working, 40).state, PaneState::Busy);
        // A "Ready" title does not hide a busy line on the screen.
        let ready = PaneView::new(&busy_screen).with_title("◇  Ready (work)");
        assert_eq!(classify(gemini, &ready, 40).state, PaneState::Busy);
        // With the placeholder gone (text typed), the title alone says idle.
        let typed = [" > half a sentence".to_owned(), "".to_owned()];
        let view = PaneView::new(&typed[..1]).with_title("◇  Ready (work)");
        let c = classify(gemini, &view, 40);
        assert_eq!(c.state, PaneState::Idle, "{c:?}");
    }

    #[test]
    fn claude_title_says_nothing_about_state() {
        let profiles = Profiles::builtin();
        let claude = profiles.get("claude-code").unwrap();
        for (stem, want) in [
            ("claude_busy", PaneState::Busy),
            ("claude_done", PaneState::Idle),
        ] {
            let screen = fixture(stem);
            let view = PaneView::new(&screen).with_title("✳ Claude Code");
            assert_eq!(classify(claude, &view, 40).state, want, "{stem}");
        }
    }

    fn screen_of(rows: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|s| s.to_string()).collect();
        v.resize(40, String::new());
        v
    }

    #[test]
    fn shell_prompt_is_idle_and_a_foreground_program_is_busy() {
        let profiles = Profiles::builtin();
        let shell = profiles.get("shell").unwrap();
        let screen = screen_of(&["user@host:~$ ls", "a  b", "user@host:~$ "]);
        let bash = PaneView::new(&screen).with_command("bash");
        assert_eq!(profiles.pick(&bash).name, "shell");
        assert_eq!(classify(shell, &bash, 40).state, PaneState::Idle);

        let running = screen_of(&["user@host:~$ sleep 100", ""]);
        let sleep = PaneView::new(&running).with_command("sleep");
        assert_eq!(profiles.pick(&sleep).name, "shell");
        let c = classify(shell, &sleep, 40);
        assert_eq!(c.state, PaneState::Busy, "{c:?}");
        // Even with the old prompt still the last row (nothing printed yet).
        let sleep = PaneView::new(&screen).with_command("sleep");
        assert_eq!(classify(shell, &sleep, 40).state, PaneState::Busy);
        // The other prompt characters, a login shell, a path.
        for (prompt, cmd) in [
            ("root@host:/# ", "-bash"),
            ("host% ", "zsh"),
            ("~/src ❯ ", "/usr/bin/fish"),
        ] {
            let s = screen_of(&[prompt]);
            let v = PaneView::new(&s).with_command(cmd);
            assert_eq!(
                classify(profiles.pick(&v), &v, 40).state,
                PaneState::Idle,
                "{prompt}"
            );
        }
        // A continuation prompt or typed text is not idle.
        for row in ["> ", "user@host:~$ git sta"] {
            let s = screen_of(&[row]);
            let v = PaneView::new(&s).with_command("bash");
            assert_eq!(classify(shell, &v, 40).state, PaneState::Unknown, "{row}");
        }
    }

    #[test]
    fn python_repl_prompt_and_continuation() {
        let profiles = Profiles::builtin();
        let py = profiles.get("python").unwrap();
        let idle = screen_of(&[">>> 1 + 1", "2", ">>> "]);
        let cont = screen_of(&[">>> for i in range(3):", "...     print(i)", "... "]);
        let v = PaneView::new(&idle).with_command("python3");
        assert_eq!(profiles.pick(&v).name, "python");
        assert_eq!(classify(py, &v, 40).state, PaneState::Idle);
        let v = PaneView::new(&cont).with_command("python3");
        assert_eq!(classify(py, &v, 40).state, PaneState::Busy);
    }

    #[test]
    fn an_agent_that_exited_to_a_shell_is_unknown() {
        // Gemini leaves its screen behind (no alternate screen) and maybe a stale title.
        let profiles = Profiles::builtin();
        let gemini = profiles.get("gemini").unwrap();
        let screen = fixture("gemini_idle");
        let view = PaneView::new(&screen)
            .with_title("◇  Ready (work)")
            .with_command("bash");
        assert_eq!(classify(gemini, &view, 40).state, PaneState::Unknown);
        assert_eq!(profiles.pick(&view).name, "shell");
    }

    #[test]
    fn an_unknown_program_over_an_agent_screen_is_busy() {
        let profiles = Profiles::builtin();
        let screen = fixture("gemini_idle");
        let view = PaneView::new(&screen).with_command("sleep");
        let p = profiles.pick(&view);
        assert_eq!(p.name, "shell");
        assert_eq!(classify(p, &view, 40).state, PaneState::Busy);
    }

    #[test]
    fn only_the_last_busy_lines_count() {
        let profiles = Profiles::builtin();
        let aider = profiles.get("aider").unwrap();
        // An old spinner high up, then lots of output, then the prompt.
        let mut rows = vec!["  ░█       Waiting for openai/gpt-4o"];
        rows.extend(std::iter::repeat_n("output", 10));
        rows.push("> ");
        let s = screen_of(&rows);
        assert_eq!(
            classify(aider, &PaneView::new(&s), 40).state,
            PaneState::Idle
        );

        // A busy line within the window wins; outside the window it does not count.
        let codex = profiles.get("codex").unwrap();
        let mut rows = vec!["• Working (5s • esc to interrupt)"];
        rows.extend(std::iter::repeat_n("x", 3));
        rows.push("› Ask Codex to do anything");
        let s = screen_of(&rows);
        assert_eq!(
            classify(codex, &PaneView::new(&s), 40).state,
            PaneState::Busy
        );
        assert_eq!(
            classify(codex, &PaneView::new(&s), 3).state,
            PaneState::Idle
        );
    }

    #[test]
    fn trailing_blank_rows_do_not_push_the_prompt_out_of_the_window() {
        let w = Window::new(&screen_of(&["a", "", "b", "c   "]), 2);
        assert_eq!(w.tail(2), "b\nc");
        assert_eq!(w.tail(1), "c");
        assert_eq!(w.tail(9), "b\nc");
        let w = Window::new(&screen_of(&["a", "", "b"]), 40);
        assert_eq!(w.tail(2), "a\n\nb");
        let w = Window::new(&screen_of(&[]), 40);
        assert!(w.is_empty());
        assert_eq!(w.tail(3), "");
    }

    #[test]
    fn silence_settles_and_idles() {
        let mut profiles = Profiles::builtin();
        profiles
            .from_yaml_str(
                "test",
                "name: quiet\nidle: ['^ready>$']\nsettle_ms: 500\nidle_when_silent_ms: 2000\n",
            )
            .unwrap();
        let p = profiles.get("quiet").unwrap();
        let prompt = screen_of(&["ready> "]);
        let other = screen_of(&["thinking"]);
        let v = |s, ms| PaneView::new(s).with_silence(Duration::from_millis(ms));
        assert_eq!(classify(p, &v(&prompt, 100), 40).state, PaneState::Busy);
        assert_eq!(classify(p, &v(&prompt, 600), 40).state, PaneState::Idle);
        assert_eq!(
            classify(p, &PaneView::new(&prompt), 40).state,
            PaneState::Idle
        );
        assert_eq!(classify(p, &v(&other, 1000), 40).state, PaneState::Unknown);
        assert_eq!(classify(p, &v(&other, 2000), 40).state, PaneState::Idle);
    }

    #[test]
    fn claude_spinner_line_is_busy_without_the_footer() {
        let profiles = Profiles::builtin();
        let claude = profiles.get("claude-code").unwrap();
        let box_rows = ["────", "❯ ", "────"];
        for (spinner, want) in [
            ("✽ Warping… (24s)", PaneState::Busy),
            ("· Effecting…", PaneState::Busy),
            ("* Incubating…", PaneState::Busy),
            ("✻ Brewed for 25s", PaneState::Idle),
            ("✻ Worked for 3s · done 10:59 PM", PaneState::Idle),
        ] {
            let mut rows = vec!["❯ hello", "", spinner, ""];
            rows.extend(box_rows);
            rows.push("  ⏵⏵ bypass permissions on (shift+tab to cycle)");
            let s = screen_of(&rows);
            let c = classify(claude, &PaneView::new(&s), 40);
            assert_eq!(c.state, want, "{spinner}: {c:?}");
        }
    }

    #[test]
    fn menus_that_reuse_the_prompt_glyph_are_asking() {
        let profiles = Profiles::builtin();
        let codex = profiles.get("codex").unwrap();
        let update = screen_of(&[
            "› 1. Update now (runs `npm install -g @openai/codex`)",
            "  2. Skip",
            "  3. Skip until next version",
            "",
            "  Press enter to continue",
        ]);
        assert_eq!(
            classify(codex, &PaneView::new(&update), 40).state,
            PaneState::Asking
        );
        let claude = profiles.get("claude-code").unwrap();
        let menu = screen_of(&[
            " Do you want to make this edit to main.rs?",
            " ❯ 1. Yes",
            "   2. No",
        ]);
        assert_eq!(
            classify(claude, &PaneView::new(&menu), 40).state,
            PaneState::Asking
        );
    }

    #[test]
    fn profile_last_lines_is_the_default_window() {
        let mut profiles = Profiles::builtin();
        profiles
            .from_yaml_str(
                "test",
                "name: w\nlast_lines: 2\nbusy: ['BUSY', { regex: 'FAR', last_lines: 9 }]\n",
            )
            .unwrap();
        let p = profiles.get("w").unwrap();
        let s = screen_of(&["BUSY", "a", "b"]);
        assert_eq!(
            classify(p, &PaneView::new(&s), 40).state,
            PaneState::Unknown
        );
        let s = screen_of(&["FAR", "a", "b"]);
        assert_eq!(classify(p, &PaneView::new(&s), 40).state, PaneState::Busy);
        assert_eq!(classify(p, &PaneView::new(&s), 2).state, PaneState::Unknown);
    }

    #[test]
    fn reasons_name_the_rule() {
        let profiles = Profiles::builtin();
        let screen = fixture("codex_working");
        let c = classify(profiles.get("codex").unwrap(), &PaneView::new(&screen), 40);
        assert_eq!(c.profile, "codex");
        assert_eq!(c.reason, "screen busy: working line");
        assert_eq!(
            serde_json::to_string(&c.state).unwrap(),
            "\"busy\"",
            "serialises lowercase"
        );
        assert_eq!(PaneState::Asking.to_string(), "asking");
    }

    #[test]
    fn strip_escapes_removes_sequences() {
        let cases = [
            ("\x1b[1m\x1b[38;5;245mWar\x1b[39mping…\x1b[0m", "Warping…"),
            ("\x1b]0;title\x07text", "text"),
            ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x1b(Bplain\x1b(0q\x1b(B", "plainq"),
            ("a\x1b7b\x1b8c\x1b=d", "abcd"),
            ("\x1bP1$r0m\x1b\\ok", "ok"),
            ("\x1b[38:2::255:0:0mred", "red"),
            ("\u{9b}31mc1\u{9d}osc\u{9c}!", "c1!"),
            ("tab\there\r\x07", "tab\there"),
            ("cut \x1b[3", "cut "),
            ("cut \x1b]0;unterminated", "cut "),
            ("\x1b", ""),
            ("\x1b[\u{e9}x", "\u{e9}x"),
            ("── ❯ ⠧ plain", "── ❯ ⠧ plain"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_escapes(input), want, "{input:?}");
        }
    }

    #[test]
    fn escapes_left_in_lines_are_stripped_defensively() {
        let profiles = Profiles::builtin();
        let raw = screen_of(&["\x1b[1m•\x1b[0m Working (5s • esc to \x1b[2minterrupt)\x1b[0m"]);
        let c = classify(profiles.get("codex").unwrap(), &PaneView::new(&raw), 40);
        assert_eq!(c.state, PaneState::Busy);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let profiles = Profiles::builtin();
        let odd = vec![
            "\u{0}\u{1b}".to_owned(),
            "é".repeat(300),
            "\x1b[".to_owned(),
            "   ".to_owned(),
        ];
        for p in profiles.iter() {
            for n in [0, 1, 40, usize::MAX] {
                let _ = classify(
                    p,
                    &PaneView::new(&odd).with_command("///").with_title(" "),
                    n,
                );
                let _ = classify(p, &PaneView::new(&[]), n);
            }
        }
        let _ = profiles.pick(&PaneView::new(&odd).with_command("-"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod prompt_tests {
    use super::*;
    use crate::detect::profile::Profiles;
    use std::path::Path;

    fn fixture(stem: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/screens")
            .join(format!("{stem}.txt"));
        let text = std::fs::read_to_string(path).unwrap();
        text.split('\n').map(strip_escapes).collect()
    }

    fn input(profile: &str, lines: &[String]) -> Option<String> {
        prompt_input(Profiles::builtin().get(profile).unwrap(), lines)
    }

    #[test]
    fn placeholders_and_empty_prompts_are_no_input() {
        for (profile, stem) in [
            ("codex", "codex_idle"),
            ("codex", "codex_fresh_idle"),
            ("claude-code", "claude_done"),
            ("claude-code", "claude_yolo_idle"),
            ("gemini", "gemini_idle"),
            ("gemini", "gemini_yolo_idle"),
            ("aider", "aider_idle"),
            ("python", "python_idle"),
            ("shell", "shell_idle"),
        ] {
            assert_eq!(input(profile, &fixture(stem)), None, "{stem}");
        }
    }

    #[test]
    fn typed_text_is_found() {
        let rows = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&str, Vec<String>, &str); 7] = [
            (
                "codex",
                rows(&["› hello", "", "  mock-model default · ~/project"]),
                "hello",
            ),
            (
                "claude-code",
                rows(&[
                    "❯ old message",
                    "",
                    "────",
                    "❯ half typed",
                    "────",
                    "  ? for shortcuts",
                ]),
                "half typed",
            ),
            (
                "gemini",
                rows(&[" > hello", "", " workspace (/directory)", " ~/project"]),
                "hello",
            ),
            ("aider", rows(&["> /add src/main.rs"]), "/add src/main.rs"),
            ("python", rows(&[">>> import o"]), "import o"),
            ("shell", rows(&["user@host:~$ git sta"]), "git sta"),
            ("shell", rows(&["user@host:~$ echo $HOME"]), "echo $HOME"),
        ];
        for (profile, lines, want) in cases {
            assert_eq!(input(profile, &lines).as_deref(), Some(want), "{profile}");
        }
    }

    /// Real screens with a line a person typed and did not submit (Claude Code draws its
    /// prompt as `❯` and a non-breaking space): the bridge must see the text, never an empty
    /// prompt to type into.
    #[test]
    fn a_half_typed_line_on_the_real_screens_is_input() {
        for (profile, stem) in [
            ("claude-code", "claude_typed_idle"),
            ("codex", "codex_typed_idle"),
            ("gemini", "gemini_typed_idle"),
        ] {
            assert_eq!(
                input(profile, &fixture(stem)).as_deref(),
                Some("half typed by a person"),
                "{stem}"
            );
        }
    }
}
