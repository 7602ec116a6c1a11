//! The screen model of one pane: a terminal emulator (`avt`) fed the pane's output, behind
//! two guards that make untrusted bytes harmless to the daemon.
//!
//! - Bounded work: bytes are decoded as UTF-8 across chunks (tmux cuts output mid-character)
//!   and go through [`Clamp`], so no escape sequence asks for more work than a screenful.
//! - Isolation: every change to the model runs under `catch_unwind`. A panic inside the
//!   emulator leaves an empty model of the right size and an error, so the registry can log it
//!   and rebuild the pane from a capture; the rest of the daemon never sees it.
//!
//! Rows of scrollback are rendered as text once: a row that scrolled off the primary screen
//! never changes in `avt` (only a full reset, `ESC c`, or a resize touches history, and both
//! drop the cache), so [`Screen::lines_with_history`] keeps the text of the rows it rendered,
//! numbered from the first row ever scrolled off (rows evicted past the scrollback limit are
//! counted), and renders only the rows that are new since the last call and the visible ones.
//!
//! It reads nothing but what it is fed, does no I/O, and never types into a pane.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::clamp::Clamp;

/// A panic inside the emulator, caught. The model was reset to an empty screen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the screen model failed while {op}: {message}; it was reset")]
pub struct ModelFault {
    /// What the model was doing: `feeding`, `resizing` or `seeding`.
    pub op: &'static str,
    pub message: String,
}

/// One pane's screen: visible rows, scrollback, cursor, alternate screen.
pub struct Screen {
    term: avt::Terminal,
    rows: u16,
    cols: u16,
    scrollback: usize,
    /// The start of a UTF-8 character cut at the end of the last chunk (at most 3 bytes).
    partial: Vec<u8>,
    clamp: Clamp,
    /// Scratch buffers, kept to save allocations.
    bytes: Vec<u8>,
    text: String,
    /// The text of rows of primary history, oldest first; `history[0]` is row number
    /// `history_from` (rows numbered from the first one scrolled off, evicted ones included).
    history: VecDeque<String>,
    history_from: u64,
    /// Primary rows evicted past the scrollback limit so far.
    evicted: u64,
}

/// Counts evicted rows and sees resets while the emulator runs.
struct Watch<'a> {
    evicted: &'a mut u64,
    reset: bool,
}

impl avt::Observer for Watch<'_> {
    type Output = bool;

    fn before(&mut self, _: &mut avt::Observation<'_>, op: &avt::Operation) {
        if matches!(
            op,
            avt::Operation::Resize { .. } | avt::Operation::Function(avt::parser::Function::Ris)
        ) {
            self.reset = true;
        }
    }

    fn evicted(&mut self, _: &mut avt::Observation<'_>, _: &avt::Line) {
        *self.evicted += 1;
    }

    fn end(&mut self, _: &mut avt::Observation<'_>) -> bool {
        self.reset
    }
}

fn terminal(rows: u16, cols: u16, scrollback: usize) -> avt::Terminal {
    let (rows, cols) = (usize::from(rows.max(1)), usize::from(cols.max(1)));
    match avt::Terminal::with_scrollback(cols, rows, Some(scrollback)) {
        Ok(t) => t,
        // Both sides are at least 1, the only thing avt refuses.
        Err(_) => unreachable!("avt refused a {cols}x{rows} terminal"),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl Screen {
    /// An empty screen of `rows` x `cols` (0 counts as 1) keeping `scrollback` rows of history.
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Screen {
        let (rows, cols) = (rows.max(1), cols.max(1));
        Screen {
            term: terminal(rows, cols, scrollback),
            rows,
            cols,
            scrollback,
            partial: Vec::new(),
            clamp: Clamp::new(),
            bytes: Vec::new(),
            text: String::new(),
            history: VecDeque::new(),
            history_from: 0,
            evicted: 0,
        }
    }

    /// `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        (self.rows, self.cols)
    }

    /// The window title the output set last since the previous call (OSC 0 or 2), if any.
    pub fn take_title(&mut self) -> Option<String> {
        self.clamp.take_title()
    }

    /// Feeds pane output. On a fault the model is empty: rebuild it from a capture.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ModelFault> {
        self.guard("feeding", |s| s.feed_raw(data))
    }

    /// Resizes the screen. Rows keep their text (cut at the new width, not re-wrapped, as
    /// tmux's capture after a resize will replace them anyway); the cursor stays on its row.
    pub fn set_size(&mut self, rows: u16, cols: u16) -> Result<(), ModelFault> {
        let (rows, cols) = (rows.max(1), cols.max(1));
        if (rows, cols) == (self.rows, self.cols) {
            return Ok(());
        }
        self.guard("resizing", |s| s.resize_raw(rows, cols))
    }

    /// Replaces the visible screen by a capture (`capture-pane -p -e` lines, top to bottom)
    /// with the cursor at `cursor` (`(x, y)`, as tmux gives it), on the alternate screen when
    /// `alternate`. The primary screen's history is kept.
    pub fn seed(
        &mut self,
        lines: &[String],
        cursor: (u16, u16),
        alternate: bool,
    ) -> Result<(), ModelFault> {
        self.guard("seeding", |s| {
            let history = if s.alternate_screen() {
                Vec::new()
            } else {
                s.history_rows()
            };
            s.rebuild(s.rows, s.cols, &history, lines, alternate, cursor);
        })
    }

    /// Replaces the whole model, history included, by a capture (`capture-pane -p -e -S -N`
    /// lines: rows of history, then the visible rows) with the cursor at `cursor` (`(x, y)`),
    /// on the alternate screen when `alternate` (which has no history).
    pub fn replace(
        &mut self,
        lines: &[String],
        cursor: (u16, u16),
        alternate: bool,
    ) -> Result<(), ModelFault> {
        self.guard("seeding", |s| {
            let (history, visible) =
                lines.split_at(lines.len().saturating_sub(usize::from(s.rows)));
            s.rebuild(s.rows, s.cols, history, visible, alternate, cursor);
        })
    }

    /// Notes the titles set in output the model does not see (it is rebuilt by
    /// [`Screen::replace`] before it is fed again).
    pub fn skim_titles(&mut self, data: &[u8]) {
        self.clamp.skim_titles(data);
    }

    /// The visible rows, top to bottom, as plain text without trailing blanks (as
    /// `capture-pane -p` gives them).
    pub fn rows(&self) -> Vec<String> {
        self.term.screen().visible_lines().map(row_text).collect()
    }

    /// Up to `history` rows of scrollback (oldest first) followed by the visible rows.
    /// The alternate screen has no scrollback. Rows of history are rendered once (see the
    /// module's documentation).
    pub fn lines_with_history(&mut self, history: usize) -> Vec<String> {
        let visible = usize::from(self.rows);
        if self.alternate_screen() {
            let all: Vec<&avt::Line> = self.term.screen().all_lines().collect();
            let keep = history.saturating_add(visible).min(all.len());
            return all[all.len() - keep..]
                .iter()
                .map(|l| row_text(l))
                .collect();
        }
        let all: Vec<&avt::Line> = self.term.primary_screen().all_lines().collect();
        let scrolled = all.len().saturating_sub(visible);
        let keep = history.min(scrolled);
        // Rows numbered from the first ever scrolled off: the ones wanted are [from, to).
        let to = self.evicted + scrolled as u64;
        let from = to - keep as u64;
        let cached_to = self.history_from + self.history.len() as u64;
        if self.history_from > from || cached_to < from || cached_to > to {
            // Not a window of what is wanted (asked for more than before, or out of step):
            // start again.
            self.history.clear();
            self.history_from = from;
        }
        while self.history_from < from {
            self.history.pop_front();
            self.history_from += 1;
        }
        let first_new = self.history_from + self.history.len() as u64;
        for n in first_new..to {
            let line = all[(n - self.evicted) as usize];
            self.history.push_back(row_text(line));
        }
        let mut out = Vec::with_capacity(keep + visible);
        out.extend(self.history.iter().cloned());
        out.extend(all[scrolled..].iter().map(|l| row_text(l)));
        out
    }

    /// `(row, col)` of the cursor, 0-based.
    pub fn cursor_position(&self) -> (u16, u16) {
        let c = self.term.cursor();
        let clip = |n: usize, max: u16| u16::try_from(n).unwrap_or(max).min(max);
        (clip(c.row, self.rows - 1), clip(c.col, self.cols))
    }

    /// Whether the program switched to the alternate screen.
    pub fn alternate_screen(&self) -> bool {
        self.term.active_screen_kind() == avt::ScreenKind::Alternate
    }

    /// Runs a change under `catch_unwind`; on a panic, resets to an empty model.
    fn guard(&mut self, op: &'static str, f: impl FnOnce(&mut Screen)) -> Result<(), ModelFault> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(()) => Ok(()),
            Err(payload) => {
                self.term = terminal(self.rows, self.cols, self.scrollback);
                self.forget_history();
                self.partial.clear();
                self.clamp.reset();
                Err(ModelFault {
                    op,
                    message: panic_message(payload.as_ref()),
                })
            }
        }
    }

    fn feed_raw(&mut self, data: &[u8]) {
        let mut bytes = std::mem::take(&mut self.bytes);
        let mut text = std::mem::take(&mut self.text);
        bytes.clear();
        text.clear();
        bytes.append(&mut self.partial);
        bytes.extend_from_slice(data);
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let (good, next) = match std::str::from_utf8(rest) {
                Ok(s) => (s, &rest[rest.len()..]),
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    let good = std::str::from_utf8(good).unwrap_or_default();
                    match e.error_len() {
                        Some(n) => {
                            self.push_str(good, &mut text);
                            self.push_char('\u{fffd}', &mut text);
                            rest = &bad[n..];
                            continue;
                        }
                        None => {
                            // A character cut at the end of the chunk: keep it for the next.
                            self.partial.extend_from_slice(bad);
                            (good, &bad[bad.len()..])
                        }
                    }
                }
            };
            self.push_str(good, &mut text);
            rest = next;
        }
        let mut watch = Watch {
            evicted: &mut self.evicted,
            reset: false,
        };
        if self.term.feed_with(text.as_str(), &mut watch) {
            self.forget_history();
        }
        self.bytes = bytes;
        self.text = text;
    }

    fn push_str(&mut self, s: &str, out: &mut String) {
        for c in s.chars() {
            self.push_char(c, out);
        }
    }

    fn push_char(&mut self, c: char, out: &mut String) {
        self.clamp.push(c, self.rows, self.cols, out);
    }

    fn history_rows(&self) -> Vec<String> {
        let all: Vec<&avt::Line> = self.term.primary_screen().all_lines().collect();
        let history = all.len().saturating_sub(usize::from(self.rows));
        all[..history].iter().map(|l| row_text(l)).collect()
    }

    fn resize_raw(&mut self, rows: u16, cols: u16) {
        let alternate = self.alternate_screen();
        let (cursor_row, cursor_col) = self.cursor_position();
        let primary: Vec<String> = self
            .term
            .primary_screen()
            .all_lines()
            .map(row_text)
            .collect();
        let first_visible = primary.len().saturating_sub(usize::from(self.rows));
        let shown = self.rows();
        self.rows = rows;
        self.cols = cols;
        if alternate {
            // The primary screen's cursor is not known here: put it under its last text.
            let below_text = primary
                .iter()
                .rposition(|l| !l.is_empty())
                .map_or(first_visible, |i| i + 1);
            let (history, visible, row) = fit(&primary, below_text, rows);
            let alt_cursor = (cursor_col.min(cols - 1), cursor_row.min(rows - 1));
            self.start(rows, cols, &history);
            self.draw(&visible, (0, row));
            self.feed_raw(b"\x1b[?1049h");
            // Full-screen programs redraw after a resize; crop the bottom as tmux does.
            self.draw(&shown, alt_cursor);
        } else {
            let cursor_at = first_visible + usize::from(cursor_row);
            let (history, visible, row) = fit(&primary, cursor_at, rows);
            self.rebuild(
                rows,
                cols,
                &history,
                &visible,
                false,
                (cursor_col.min(cols - 1), row),
            );
        }
    }

    /// A fresh model: `history` scrolled off the top, `visible` drawn row by row (lines may
    /// hold SGR escapes), the cursor at `(x, y)`.
    fn rebuild(
        &mut self,
        rows: u16,
        cols: u16,
        history: &[String],
        visible: &[String],
        alternate: bool,
        cursor: (u16, u16),
    ) {
        self.start(rows, cols, history);
        if alternate {
            self.feed_raw(b"\x1b[?1049h");
        }
        self.draw(visible, cursor);
    }

    /// Drops the rendered history (the emulator's history was replaced or reset).
    fn forget_history(&mut self) {
        self.history.clear();
        self.history_from = 0;
        self.evicted = 0;
    }

    fn start(&mut self, rows: u16, cols: u16, history: &[String]) {
        self.term = terminal(rows, cols, self.scrollback);
        self.forget_history();
        self.partial.clear();
        self.clamp.reset();
        let skip = history.len().saturating_sub(self.scrollback);
        if history.len() > skip {
            // No wrapping: a row too wide for the screen is cut, never re-flowed.
            self.feed_raw(b"\x1b[?7l");
            for line in &history[skip..] {
                self.feed_raw(line.as_bytes());
                self.feed_raw(b"\x1b[0m\r\n");
            }
            // Push them all off the visible screen.
            for _ in 1..rows {
                self.feed_raw(b"\n");
            }
            self.feed_raw(b"\x1b[?7h");
        }
    }

    fn draw(&mut self, lines: &[String], cursor: (u16, u16)) {
        self.feed_raw(b"\x1b[?7l");
        for (i, line) in lines.iter().take(usize::from(self.rows)).enumerate() {
            self.feed_raw(format!("\x1b[{};1H\x1b[0m", i + 1).as_bytes());
            self.feed_raw(line.as_bytes());
        }
        self.feed_raw(b"\x1b[0m\x1b[?7h");
        self.feed_raw(format!("\x1b[{};{}H", cursor.1 + 1, cursor.0 + 1).as_bytes());
        self.partial.clear();
        self.clamp.reset();
    }
}

/// Splits a screen's rows (history first) for a screen of `rows` rows: rows below the cursor
/// (at index `cursor_at`) that hold nothing go first, then rows at the top move into history,
/// as tmux does when a pane shrinks. Returns history, visible rows and the cursor's new row.
fn fit(all: &[String], cursor_at: usize, rows: u16) -> (Vec<String>, Vec<String>, u16) {
    if all.is_empty() {
        return (Vec::new(), Vec::new(), 0);
    }
    let cursor_at = cursor_at.min(all.len() - 1);
    let last = all
        .iter()
        .rposition(|l| !l.is_empty())
        .unwrap_or(0)
        .max(cursor_at);
    let kept = &all[..=last];
    let top = kept.len().saturating_sub(usize::from(rows)).min(cursor_at);
    let row = u16::try_from(cursor_at - top)
        .unwrap_or(u16::MAX)
        .min(rows - 1);
    (
        kept[..top].to_vec(),
        kept[top..]
            .iter()
            .take(usize::from(rows))
            .cloned()
            .collect(),
        row,
    )
}

/// A row as plain text without trailing blanks (the second cell of a wide character is not a
/// character of its own).
fn row_text(line: &avt::Line) -> String {
    let cells = line.cells();
    let end = cells
        .iter()
        .rposition(|c| !c.char().is_whitespace())
        .map_or(0, |i| i + 1);
    let mut s = String::with_capacity(end);
    for c in &cells[..end] {
        if c.width() != 0 {
            s.push(c.char());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(rows: u16, cols: u16) -> Screen {
        Screen::new(rows, cols, 100)
    }

    fn text(s: &Screen) -> Vec<String> {
        s.rows()
    }

    #[test]
    fn a_panic_inside_the_model_is_caught_and_the_model_reset() {
        let mut s = screen(3, 10);
        s.feed(b"before\x1b[12").unwrap();
        let fault = s.guard("feeding", |_| panic!("boom")).unwrap_err();
        assert_eq!(fault.op, "feeding");
        assert!(fault.message.contains("boom"), "{fault}");
        assert_eq!(s.rows(), ["", "", ""]);
        // Nothing of the sequence in progress survives the reset.
        s.feed(b"3after").unwrap();
        assert_eq!(s.rows()[0], "3after");
        assert_eq!(s.size(), (3, 10));
    }

    #[test]
    fn plain_output_and_cursor() {
        let mut s = screen(3, 10);
        s.feed(b"hello\r\nworld").unwrap();
        assert_eq!(text(&s), ["hello", "world", ""]);
        assert_eq!(s.cursor_position(), (1, 5));
    }

    #[test]
    fn utf8_cut_between_chunks_is_joined() {
        let mut s = screen(2, 10);
        let bytes = "中文é".as_bytes();
        s.feed(&bytes[..1]).unwrap();
        s.feed(&bytes[1..4]).unwrap();
        s.feed(&bytes[4..]).unwrap();
        assert_eq!(text(&s)[0], "中文é");
        s.feed(b"\r\n\xff!").unwrap();
        assert_eq!(text(&s)[1], "\u{fffd}!");
    }

    #[test]
    fn one_row_pane_printing_a_wider_line() {
        // vt100 0.15 panicked here (grid.rs:678).
        let mut s = screen(1, 5);
        s.feed(b"0123456789abcdef\r\nxy").unwrap();
        assert_eq!(text(&s), ["xy"]);
    }

    #[test]
    fn resize_then_cursor_restore() {
        // vt100 0.15: ESC 7, shrink, ESC 8 panicked (screen.rs:934).
        let mut s = screen(24, 80);
        s.feed(b"\x1b[20;70Hx\x1b7").unwrap();
        s.set_size(5, 10).unwrap();
        s.feed(b"\x1b8y").unwrap();
        let (row, col) = s.cursor_position();
        assert!(row < 5 && col <= 10);
    }

    #[test]
    fn leaving_the_alternate_screen_after_a_shrink() {
        let mut s = screen(24, 80);
        s.feed(b"shell$ vim\r\n\x1b[?1049h\x1b[20;1Hin vim")
            .unwrap();
        assert!(s.alternate_screen());
        s.set_size(4, 20).unwrap();
        assert!(s.alternate_screen());
        s.feed(b"\x1b[?1049lback").unwrap();
        assert!(!s.alternate_screen());
        assert!(
            s.rows().iter().any(|r| r.contains("shell$ vim")),
            "{:?}",
            s.rows()
        );
    }

    #[test]
    fn wide_character_in_a_one_column_pane() {
        let mut s = screen(3, 1);
        s.feed("中文😀x".as_bytes()).unwrap();
        s.set_size(1, 1).unwrap();
        s.feed("中\r\n".as_bytes()).unwrap();
        assert_eq!(s.size(), (1, 1));
    }

    #[test]
    fn huge_counts_are_cheap_and_correct() {
        let mut s = screen(50, 200);
        for i in 0..50 {
            s.feed(format!("\x1b[{};1Hline {i}", i + 1).as_bytes())
                .unwrap();
        }
        s.feed(b"\x1b[1;1H").unwrap();
        for _ in 0..20 {
            s.feed(b"\x1b[65535@\x1b[65535L\x1b[65535T\x1b[65535P")
                .unwrap();
        }
        s.feed(b"\x1b[1;1Hafter").unwrap();
        assert_eq!(s.rows()[0], "after");
    }

    #[test]
    fn history_then_visible_rows() {
        let mut s = screen(3, 20);
        for i in 0..10 {
            s.feed(format!("line{i}\r\n").as_bytes()).unwrap();
        }
        assert_eq!(
            s.lines_with_history(100),
            [
                "line0", "line1", "line2", "line3", "line4", "line5", "line6", "line7", "line8",
                "line9", ""
            ]
        );
        assert_eq!(s.lines_with_history(1), ["line7", "line8", "line9", ""]);
        assert_eq!(s.rows(), ["line8", "line9", ""]);
    }

    #[test]
    fn shrinking_keeps_the_rows_near_the_cursor() {
        let mut s = screen(10, 20);
        s.feed(b"a\r\nb\r\nc\r\n$ ").unwrap();
        s.set_size(2, 20).unwrap();
        assert_eq!(s.rows(), ["c", "$"]);
        assert_eq!(s.cursor_position(), (1, 2));
        assert_eq!(s.lines_with_history(10), ["a", "b", "c", "$"]);
        s.set_size(10, 5).unwrap();
        assert_eq!(s.rows()[..4], ["a", "b", "c", "$"]);
    }

    #[test]
    fn seeding_keeps_history_and_places_the_cursor() {
        let mut s = screen(2, 20);
        s.feed(b"old1\r\nold2\r\nold3").unwrap();
        s.seed(&["\x1b[1mnew\x1b[0m".into(), "$ ".into()], (2, 1), false)
            .unwrap();
        assert_eq!(s.rows(), ["new", "$"]);
        assert_eq!(s.cursor_position(), (1, 2));
        assert_eq!(s.lines_with_history(5), ["old1", "new", "$"]);
        s.seed(&["full screen app".into()], (0, 0), true).unwrap();
        assert!(s.alternate_screen());
        assert_eq!(s.rows(), ["full screen app", ""]);
    }

    /// What `lines_with_history` gave before it kept rendered history: every row rendered
    /// anew with `avt`'s own text, trailing whitespace trimmed.
    fn rendered_anew(s: &Screen, history: usize) -> Vec<String> {
        let visible = usize::from(s.rows);
        let all: Vec<&avt::Line> = s.term.screen().all_lines().collect();
        let keep = history.saturating_add(visible).min(all.len());
        all[all.len() - keep..]
            .iter()
            .map(|l| {
                let mut t = l.text();
                t.truncate(t.trim_end().len());
                t
            })
            .collect()
    }

    #[test]
    fn kept_history_is_what_rendering_every_row_anew_gives() {
        use crate::tmux::control::{Event, Parser};
        let fixture = include_bytes!("../../tests/fixtures/control/agents-3.3a.ctl");
        let mut chunks: Vec<Vec<u8>> = Parser::new()
            .feed(fixture)
            .into_iter()
            .filter_map(|e| match e {
                Event::Output { data, .. } | Event::ExtendedOutput { data, .. } => Some(data),
                _ => None,
            })
            .collect();
        // Besides real agent screens: wide characters, the alternate screen, a full reset,
        // a screen clear, a scroll region, reverse index at the top, a resize.
        // A reset followed by enough rows to reach past the rows kept before it.
        let mut reset = b"\x1bc".to_vec();
        for n in 0..60 {
            reset.extend_from_slice(format!("after reset {n}\r\n").as_bytes());
        }
        let extra: [&[u8]; 7] = [
            &reset,
            "漢字の行 end   \r\n界\r\n".as_bytes(),
            b"\x1b[?1049hfull screen\r\napp\x1b[?1049l",
            b"\x1b[2Jcleared\r\n",
            b"\x1b[2;5rregion\r\n\r\n\r\n\r\n\r\n\r\n\x1b[r",
            b"\x1b[H\x1bM\x1bMreverse",
            b"\x1b[999Bbottom\r\n",
        ];
        for (i, e) in extra.iter().enumerate() {
            let at = (i + 1) * chunks.len() / (extra.len() + 1);
            chunks.insert(at, e.to_vec());
        }
        // A small scrollback, so that rows are evicted many times over.
        let mut s = Screen::new(12, 60, 40);
        let mut asks = [30usize, 5, 30, 200, 0, 30].into_iter().cycle();
        for (i, chunk) in chunks.iter().enumerate() {
            s.feed(chunk).unwrap();
            if i == chunks.len() / 2 {
                s.set_size(10, 50).unwrap();
            }
            let n = asks.next().unwrap();
            assert_eq!(
                s.lines_with_history(n),
                rendered_anew(&s, n),
                "chunk {i}, {n} rows"
            );
        }
        assert!(
            s.evicted > 0,
            "no row was evicted: the test does not test that"
        );
    }
}
