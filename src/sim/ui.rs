//! The sim-agent's drawing: turns the transcript and the live region (prompt, working line,
//! menu, footer) into bytes for the terminal, in one of two looks. It owns no state about the
//! script and does no I/O: it returns strings the caller writes.
//!
//! - `plain`: the normal screen, line by line, like Aider or a shell. Transcript lines are printed
//!   once and scroll into tmux's history; only the live region at the bottom is redrawn in place
//!   (cursor up, clear to the end of the screen).
//! - `tui`: the alternate screen, repainted whole (`ESC[row;1H` + `ESC[K` for every row) on every
//!   change and on a timer, like Codex and Claude Code: what scrolls off the top is gone.

use std::collections::VecDeque;

/// Which look the agent draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimLook {
    /// Line by line in the normal screen (scrollback kept).
    Plain,
    /// Full-screen repaints on the alternate screen.
    Tui,
}

/// A transcript line and the indent its wrapped continuation rows get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TLine {
    pub text: String,
    pub indent: usize,
}

impl TLine {
    pub fn new(text: impl Into<String>, indent: usize) -> TLine {
        TLine {
            text: text.into(),
            indent,
        }
    }
}

/// The live region at the bottom of the screen, and where the cursor goes in it.
#[derive(Debug, Clone, Default)]
pub struct Region {
    pub rows: Vec<String>,
    /// (row in `rows`, column in cells).
    pub cursor: (usize, usize),
}

/// The transcript kept for `tui` repaints.
const TRANSCRIPT_CAP: usize = 5000;

pub struct Screen {
    look: SimLook,
    /// tui: the whole transcript (capped). plain: unused.
    transcript: VecDeque<TLine>,
    /// plain: lines not yet printed above the region.
    pending: Vec<TLine>,
    /// plain: rows from the top of the drawn region down to the cursor.
    cursor_up: usize,
    any_item: bool,
    title: Option<String>,
}

impl Screen {
    pub fn new(look: SimLook) -> Screen {
        Screen {
            look,
            transcript: VecDeque::new(),
            pending: Vec::new(),
            cursor_up: 0,
            any_item: false,
            title: None,
        }
    }

    /// Adds an item (a reply, an echoed input…) to the transcript, after a blank line.
    pub fn push_item(&mut self, lines: Vec<TLine>) {
        if std::mem::replace(&mut self.any_item, true) {
            self.push_line(TLine::new("", 0));
        }
        for l in lines {
            self.push_line(l);
        }
    }

    /// Adds one line to the last item (a streamed line).
    pub fn push_line(&mut self, line: TLine) {
        match self.look {
            SimLook::Plain => self.pending.push(line),
            SimLook::Tui => {
                self.transcript.push_back(line);
                while self.transcript.len() > TRANSCRIPT_CAP {
                    self.transcript.pop_front();
                }
            }
        }
    }

    /// The bytes that set the pane title, when it changed.
    pub fn title(&mut self, title: &str) -> String {
        if self.title.as_deref() == Some(title) {
            return String::new();
        }
        self.title = Some(title.to_owned());
        let clean: String = title.chars().filter(|c| !c.is_control()).collect();
        format!("\x1b]2;{clean}\x07")
    }

    /// The bytes that draw `region` (and, plain: the pending transcript lines above it) on a
    /// terminal of `cols` x `rows`.
    pub fn draw(&mut self, region: &Region, cols: usize, rows: usize) -> String {
        let cols = cols.max(20);
        let rows = rows.max(3);
        match self.look {
            SimLook::Plain => self.draw_plain(region, cols, rows),
            SimLook::Tui => self.draw_tui(region, cols, rows),
        }
    }

    fn draw_plain(&mut self, region: &Region, cols: usize, rows: usize) -> String {
        let mut s = String::from("\x1b[?25l\r");
        if self.cursor_up > 0 {
            s.push_str(&format!("\x1b[{}A", self.cursor_up));
        }
        s.push_str("\x1b[J");
        for line in self.pending.drain(..) {
            for row in wrap(&line.text, line.indent, cols) {
                s.push_str(&row);
                s.push_str("\r\n");
            }
        }
        // The region never takes the whole screen, and no row reaches the last column (so the
        // cursor arithmetic never meets a pending wrap).
        let (shown, skip) = clip(&region.rows, rows - 1);
        for (i, row) in shown.iter().enumerate() {
            if i > 0 {
                s.push_str("\r\n");
            }
            s.push_str(&truncate(row, cols - 1));
        }
        let cursor_row = region
            .cursor
            .0
            .saturating_sub(skip)
            .min(shown.len().saturating_sub(1));
        let up = shown.len().saturating_sub(1) - cursor_row;
        if up > 0 {
            s.push_str(&format!("\x1b[{up}A"));
        }
        s.push_str(&format!(
            "\x1b[{}G\x1b[?25h",
            region.cursor.1.min(cols - 1) + 1
        ));
        self.cursor_up = cursor_row;
        s
    }

    fn draw_tui(&mut self, region: &Region, cols: usize, rows: usize) -> String {
        let (shown, skip) = clip(&region.rows, rows);
        let avail = rows - shown.len();
        // The transcript's last `avail` rows, wrapped.
        let mut tail: VecDeque<String> = VecDeque::new();
        for line in self.transcript.iter().rev() {
            if tail.len() >= avail {
                break;
            }
            for row in wrap(&line.text, line.indent, cols).into_iter().rev() {
                tail.push_front(row);
            }
        }
        while tail.len() > avail {
            tail.pop_front();
        }
        let mut s = String::from("\x1b[?25l");
        let blank = String::new();
        let screen = tail
            .iter()
            .chain(std::iter::repeat_n(&blank, avail - tail.len()))
            .chain(shown.iter());
        for (i, row) in screen.enumerate() {
            s.push_str(&format!("\x1b[{};1H\x1b[K{}", i + 1, truncate(row, cols)));
        }
        let cursor_row = avail
            + region
                .cursor
                .0
                .saturating_sub(skip)
                .min(shown.len().saturating_sub(1));
        s.push_str(&format!(
            "\x1b[{};{}H\x1b[?25h",
            cursor_row + 1,
            region.cursor.1.min(cols - 1) + 1
        ));
        s
    }

    /// The bytes to leave the screen with: plain prints what is pending in place of the region
    /// (the shell's prompt comes next); tui has nothing to add (the alternate screen goes).
    pub fn finish(&mut self, cols: usize) -> String {
        match self.look {
            SimLook::Tui => String::new(),
            SimLook::Plain => {
                let mut s = String::from("\r");
                if self.cursor_up > 0 {
                    s.push_str(&format!("\x1b[{}A", self.cursor_up));
                }
                s.push_str("\x1b[J");
                for line in self.pending.drain(..) {
                    for row in wrap(&line.text, line.indent, cols.max(20)) {
                        s.push_str(&row);
                        s.push_str("\r\n");
                    }
                }
                self.cursor_up = 0;
                s
            }
        }
    }
}

/// At most `max` rows from the bottom of `rows`, and how many were cut from the top.
fn clip(rows: &[String], max: usize) -> (&[String], usize) {
    let skip = rows.len().saturating_sub(max);
    (&rows[skip..], skip)
}

/// Terminal cells a character takes: 0 for combining marks and zero-width characters, 2 for
/// East Asian wide characters and emoji, 1 otherwise. A small table, not the full Unicode data.
pub fn char_width(c: char) -> usize {
    let u = u32::from(c);
    match u {
        0x0300..=0x036f | 0x200b..=0x200f | 0x20d0..=0x20ff | 0xfe00..=0xfe0f => 0,
        0x1100..=0x115f
        | 0x2e80..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1faff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

/// Width of a string in cells (tabs count as one: the agent shows them as a space).
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The longest prefix of `s` that fits in `cols` cells; tabs become spaces.
pub fn truncate(s: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let c = if c == '\t' { ' ' } else { c };
        let cw = char_width(c);
        if w + cw > cols {
            break;
        }
        w += cw;
        out.push(c);
    }
    out
}

/// Wraps a line to `cols` cells, at a space when there is one, as agents wrap their replies:
/// continuation rows start with `indent` spaces.
pub fn wrap(text: &str, indent: usize, cols: usize) -> Vec<String> {
    let text = text.replace('\t', " ");
    let cols = cols.max(indent + 10);
    let mut rows = Vec::new();
    let mut cur = text;
    loop {
        if str_width(&cur) <= cols {
            rows.push(cur);
            return rows;
        }
        // The byte where the row is full.
        let mut w = 0;
        let mut cut = cur.len();
        for (i, c) in cur.char_indices() {
            w += char_width(c);
            if w > cols {
                cut = i;
                break;
            }
        }
        // A space right after a full row is the best break.
        let upto = if cur[cut..].starts_with(' ') {
            cut + 1
        } else {
            cut
        };
        let space = cur[..upto]
            .rfind(' ')
            .filter(|&b| b > indent + 1 && !cur[..b].trim().is_empty());
        let (head, tail) = match space {
            Some(b) => (cur[..b].trim_end().to_owned(), cur[b + 1..].to_owned()),
            None => (cur[..cut].to_owned(), cur[cut..].to_owned()),
        };
        rows.push(head);
        cur = format!("{}{}", " ".repeat(indent), tail.trim_start());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_with_indent() {
        let rows = wrap("• one two three four five six", 2, 12);
        assert_eq!(rows, ["• one two", "  three four", "  five six"]);
        assert!(rows.iter().all(|r| str_width(r) <= 12));
        // No space: a hard cut.
        assert_eq!(
            wrap("abcdefghijklmnopqrstuvwxyz", 0, 10),
            ["abcdefghij", "klmnopqrst", "uvwxyz"]
        );
        assert_eq!(wrap("short", 2, 40), ["short"]);
        // Wide characters count double.
        let rows = wrap("漢字漢字漢字漢字漢字漢字", 0, 10);
        assert_eq!(rows[0], "漢字漢字漢");
    }

    #[test]
    fn plain_draw_moves_back_to_the_region_top() {
        let mut s = Screen::new(SimLook::Plain);
        let region = Region {
            rows: vec!["".into(), "› hi".into(), "".into(), "  footer".into()],
            cursor: (1, 4),
        };
        let first = s.draw(&region, 80, 24);
        assert!(!first.contains("\x1b[1A\x1b[J"), "{first:?}");
        assert!(
            first.contains("› hi") && first.ends_with("\x1b[2A\x1b[5G\x1b[?25h"),
            "{first:?}"
        );
        s.push_item(vec![TLine::new("• reply", 2)]);
        let second = s.draw(&region, 80, 24);
        assert!(
            second.starts_with("\x1b[?25l\r\x1b[1A\x1b[J• reply\r\n"),
            "{second:?}"
        );
    }

    #[test]
    fn tui_draw_paints_every_row() {
        let mut s = Screen::new(SimLook::Tui);
        s.push_item(vec![TLine::new("• a", 2)]);
        s.push_item(vec![TLine::new("• b", 2)]);
        let region = Region {
            rows: vec!["› ".into(), "  footer".into()],
            cursor: (0, 2),
        };
        let out = s.draw(&region, 40, 6);
        for r in 1..=6 {
            assert!(
                out.contains(&format!("\x1b[{r};1H\x1b[K")),
                "row {r}: {out:?}"
            );
        }
        assert!(out.contains("\x1b[1;1H\x1b[K• a") && out.contains("\x1b[3;1H\x1b[K• b"));
        assert!(out.contains("\x1b[5;1H\x1b[K› ") && out.ends_with("\x1b[5;3H\x1b[?25h"));
        // Scrolled off: only the tail of the transcript fits.
        let out = s.draw(&region, 40, 4);
        assert!(
            !out.contains("• a") && out.contains("\x1b[2;1H\x1b[K• b"),
            "{out:?}"
        );
    }

    #[test]
    fn title_only_when_changed() {
        let mut s = Screen::new(SimLook::Plain);
        assert_eq!(s.title("w"), "\x1b]2;w\x07");
        assert_eq!(s.title("w"), "");
        assert_eq!(s.title("a\x07b"), "\x1b]2;ab\x07");
    }
}
