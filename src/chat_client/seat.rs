//! The person's seat at a terminal: a line editor (reedline) with history, arrow keys and
//! Emacs keys, completion of `@names` and `/commands` (Tab), a prompt that shows the agents'
//! states and queues, and messages printed above the line being typed.
//!
//! reedline's `read_line` blocks, so it runs on its own thread; lines come out through a
//! channel, and text to show goes in through reedline's external printer, which prints it
//! above the input line and draws the line again as it was.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reedline::{
    default_emacs_keybindings, ColumnarMenu, Completer, Emacs, ExternalPrinter, FileBackedHistory,
    Highlighter, History, KeyCode, KeyModifiers, MenuBuilder, Prompt, PromptEditMode,
    PromptHistorySearch, Reedline, ReedlineEvent, ReedlineMenu, Signal, Span, StyledText,
    Suggestion,
};
use tokio::sync::mpsc;

use super::render::{paint_name, COMMANDS};
use crate::api::protocol::{AgentInfo, AgentState};

/// Lines of input kept in the history.
const HISTORY_LINES: usize = 1000;
/// How often the editor looks for text to print and for the signal to stop; one line of text
/// is printed each time.
const POLL: Duration = Duration::from_millis(10);

/// What the agents look like now: read by the prompt and the completer.
#[derive(Default)]
pub(super) struct Board {
    pub(super) agents: Vec<AgentInfo>,
}

pub(super) type SharedBoard = Arc<Mutex<Board>>;

/// What the person did.
pub(super) enum Typed {
    Line(String),
    /// Ctrl-D, or Ctrl-C on an empty line.
    Quit,
    /// The terminal failed.
    Failed(String),
}

pub(super) struct Seat {
    /// Lines waiting to be printed.
    pending: Arc<Mutex<VecDeque<String>>>,
    typed: mpsc::UnboundedReceiver<Typed>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Closed when the editor's thread ends.
    done: std::sync::mpsc::Receiver<()>,
    /// The terminal's settings before the editor changed them.
    saved: Option<libc::termios>,
}

impl Seat {
    /// Starts the editor on its own thread. `history`: the file that keeps the lines typed
    /// (`None`: kept in memory only).
    pub(super) fn start(
        me: &str,
        history: Option<PathBuf>,
        board: SharedBoard,
        colour: bool,
    ) -> Result<Seat, String> {
        // reedline 0.49 counts the rows of a batch of printed lines before they reach the
        // terminal, and with more than one line in a batch it takes the cursor for lost and
        // scrolls a whole screen of blank lines. So the editor gets one line per turn of its
        // loop: its idle callback moves it from `pending` to the printer.
        let printer = ExternalPrinter::<String>::new(16);
        let feed = printer.clone();
        let pending: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let queue = Arc::clone(&pending);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, typed) = mpsc::unbounded_channel();
        let empty = Arc::new(AtomicBool::new(true));
        let history: Box<dyn History> =
            match history.map(|p| FileBackedHistory::with_file(HISTORY_LINES, p)) {
                Some(Ok(h)) => Box::new(h),
                _ => Box::new(FileBackedHistory::new(HISTORY_LINES).map_err(|e| e.to_string())?),
            };
        let mut keys = default_emacs_keybindings();
        keys.add_binding(
            KeyModifiers::NONE,
            KeyCode::Tab,
            ReedlineEvent::UntilFound(vec![
                ReedlineEvent::Menu("completion".into()),
                ReedlineEvent::MenuNext,
            ]),
        );
        let mut editor = Reedline::create()
            .with_history(history)
            .with_edit_mode(Box::new(Emacs::new(keys)))
            .with_completer(Box::new(Names {
                board: board.clone(),
            }))
            .with_menu(ReedlineMenu::EngineCompleter(Box::new(
                ColumnarMenu::default().with_name("completion"),
            )))
            .with_quick_completions(true)
            .with_partial_completions(true)
            .with_highlighter(Box::new(Watch {
                empty: empty.clone(),
            }))
            .with_ansi_colors(colour)
            .with_external_printer(printer)
            .with_idle_callback(Box::new(move || {
                if !feed.receiver().is_empty() {
                    return;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                if let Some(line) = next {
                    let _ = feed.sender().try_send(line);
                }
            }))
            .with_poll_interval(POLL)
            .with_break_signal(stop.clone());
        let prompt = SeatPrompt {
            me: me.to_string(),
            board,
            colour,
        };
        let saved = terminal_settings();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chat-seat".into())
            .spawn(move || {
                let _done = done_tx;
                loop {
                    let outcome = match editor.read_line(&prompt) {
                        Ok(Signal::Success(line)) => Some(Typed::Line(line)),
                        Ok(Signal::CtrlC) if empty.load(Ordering::Relaxed) => Some(Typed::Quit),
                        Ok(Signal::CtrlC) => None,
                        Ok(Signal::CtrlD) => Some(Typed::Quit),
                        Ok(Signal::ExternalBreak(_)) => return,
                        Ok(_) => None,
                        Err(e) => Some(Typed::Failed(e.to_string())),
                    };
                    let Some(typed) = outcome else { continue };
                    let more = matches!(typed, Typed::Line(_));
                    if tx.send(typed).is_err() || !more {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the line editor: {e}"))?;
        Ok(Seat {
            pending,
            typed,
            stop,
            thread: Some(thread),
            done,
            saved,
        })
    }

    /// Shows `text` above the input line, each line wrapped to the terminal's width.
    pub(super) fn print(&self, text: &str) {
        let wrapped = wrap(text, terminal_width() - 1);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(wrapped.lines().map(str::to_string));
    }

    /// The next thing the person did; `None` once the editor is gone.
    pub(super) async fn next(&mut self) -> Option<Typed> {
        self.typed.recv().await
    }

    /// Stops the editor and gives the terminal back as it was. A terminal that hung up can
    /// keep the editor from noticing: it gets a second, then the settings are put back here.
    pub(super) fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let ended = !matches!(
            self.done.recv_timeout(Duration::from_secs(1)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if let Some(t) = self.thread.take() {
            if ended {
                let _ = t.join();
            }
        }
        if let Some(saved) = self.saved.take() {
            // SAFETY: restoring the settings tcgetattr gave for fd 0.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The terminal's settings now (standard input).
fn terminal_settings() -> Option<libc::termios> {
    // SAFETY: tcgetattr writes the whole termios we own, or fails (then it is not read).
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(t)
    }
}

fn terminal_width() -> usize {
    match crate::tty::stdout_size() {
        Some((cols, _)) if cols >= 20 => usize::from(cols),
        _ => 80,
    }
}

/// `text` with every line wrapped to `width` columns (continuations indented); colour codes
/// take no width.
pub(super) fn wrap(text: &str, width: usize) -> String {
    let opts = textwrap::Options::new(width).subsequent_indent("    ");
    text.lines()
        .map(|l| textwrap::fill(l, &opts))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The prompt: `person> ` on the left, the agents' states and queues on the right.
struct SeatPrompt {
    me: String,
    board: SharedBoard,
    colour: bool,
}

impl Prompt for SeatPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Owned(self.me.clone())
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        Cow::Owned(summary(&board.agents, self.colour))
    }

    fn render_prompt_indicator(&self, _: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("… ")
    }

    fn render_prompt_history_search_indicator(&self, h: PromptHistorySearch) -> Cow<'_, str> {
        Cow::Owned(format!("(search: {}) ", h.term))
    }
}

/// `a1 busy 2q · a2 idle · a3 paused 2h`: each agent's state, what waits for it and what is
/// held.
pub(super) fn summary(agents: &[AgentInfo], colour: bool) -> String {
    agents
        .iter()
        .map(|a| {
            let mut s = format!(
                "{} {}",
                paint_name(&crate::inject::sanitize(&a.name), colour),
                if a.paused {
                    "paused"
                } else {
                    state_word(a.state)
                }
            );
            let waiting = a.queued.saturating_sub(a.held);
            if waiting > 0 {
                s.push_str(&format!(" {waiting}q"));
            }
            if a.held > 0 {
                s.push_str(&format!(" {}h", a.held));
            }
            if a.replying_to.is_some() {
                s.push_str(" (reply due)");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn state_word(s: AgentState) -> &'static str {
    s.as_str()
}

/// Completes `@name` (also `!@name`), `/command`, and the name after `/pause`, `/resume` and
/// `/key KEY`.
struct Names {
    board: SharedBoard,
}

impl Completer for Names {
    fn complete(&mut self, line: &str, pos: usize) -> Vec<Suggestion> {
        let names: Vec<String> = {
            let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
            board.agents.iter().map(|a| a.name.clone()).collect()
        };
        complete(line, pos, &names)
            .into_iter()
            .map(|(start, value)| Suggestion {
                value,
                span: Span::new(start, pos),
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect()
    }
}

/// The completions of the word before `pos`: (where the word starts, the replacement).
pub(super) fn complete(line: &str, pos: usize, names: &[String]) -> Vec<(usize, String)> {
    let pos = pos.min(line.len());
    let Some(before) = line.get(..pos) else {
        return Vec::new();
    };
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &before[start..];
    let first = start == 0;
    let out = |prefix: &str, candidates: Vec<String>, typed: &str| -> Vec<(usize, String)> {
        candidates
            .into_iter()
            .filter(|c| c.starts_with(typed))
            .map(|c| (start, format!("{prefix}{c}")))
            .collect()
    };
    let with_all = || {
        let mut v = names.to_vec();
        v.push("all".into());
        v
    };
    if let Some(rest) = word.strip_prefix("!@") {
        return out("!@", with_all(), rest);
    }
    if let Some(rest) = word.strip_prefix('@') {
        return out("@", with_all(), rest);
    }
    if first {
        if let Some(rest) = word.strip_prefix('/') {
            let cmds = COMMANDS.iter().map(|c| c.to_string()).collect();
            return out("/", cmds, rest);
        }
        return Vec::new();
    }
    let head: Vec<&str> = before[..start].split_whitespace().collect();
    match head.as_slice() {
        ["/pause" | "/resume"] | ["/key", _] => out("", names.to_vec(), word),
        _ => Vec::new(),
    }
}

/// Leaves the line as typed; notes whether it is empty, so that Ctrl-C on an empty line can
/// leave (on a line with text it only clears the line). Called on every paint.
struct Watch {
    empty: Arc<AtomicBool>,
}

impl Highlighter for Watch {
    fn highlight(&self, line: &str, _: usize) -> StyledText {
        self.empty.store(line.is_empty(), Ordering::Relaxed);
        let mut t = StyledText::new();
        t.push((nu_ansi_term::Style::new(), line.to_string()));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["codex".into(), "claude".into(), "gemini".into()]
    }

    #[test]
    fn names_and_commands_complete() {
        let c = |line: &str| complete(line, line.len(), &names());
        assert_eq!(c("@c"), vec![(0, "@codex".into()), (0, "@claude".into())]);
        assert_eq!(c("hi @g"), vec![(3, "@gemini".into())]);
        assert_eq!(c("!@ge"), vec![(0, "!@gemini".into())]);
        assert_eq!(c("@a"), vec![(0, "@all".into())]);
        assert_eq!(c("/pa"), vec![(0, "/pause".into())]);
        assert_eq!(c("/pause cl"), vec![(7, "claude".into())]);
        assert_eq!(c("/key C-c ge"), vec![(9, "gemini".into())]);
        assert!(c("hello co").is_empty());
        assert!(c("say /pa").is_empty());
    }

    #[test]
    fn the_summary_shows_states_queues_and_held_messages() {
        let a = |name: &str, state, queued, held, paused| AgentInfo {
            name: name.into(),
            pane: "%1".into(),
            profile: "codex".into(),
            state,
            queued,
            held,
            paused,
            typing: false,
            replying_to: None,
        };
        let s = summary(
            &[
                a("a1", AgentState::Busy, 2, 0, false),
                a("a2", AgentState::Idle, 0, 0, false),
                a("a3", AgentState::Idle, 2, 2, true),
            ],
            false,
        );
        assert_eq!(s, "a1 busy 2q · a2 idle · a3 paused 2h");
    }

    #[test]
    fn long_lines_wrap_under_their_start() {
        assert_eq!(
            wrap("12:00:00 codex → person: one two three", 20),
            "12:00:00 codex →\n    person: one two\n    three"
        );
    }
}
