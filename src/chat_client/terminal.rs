//! The person's terminal: the input line editor (bytes in, edits out, no I/O) and the screen
//! in non-canonical mode, where arriving messages are printed above the line being typed.

use std::io::Write;

use crate::api::protocol;

/// What a key press did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Edit {
    Changed,
    Submit(String),
    Quit,
}

/// The line being typed: bytes in, edits out. No I/O.
#[derive(Default)]
pub(super) struct LineEditor {
    pub(super) buf: String,
    /// The start of a UTF-8 character split across reads.
    partial: Vec<u8>,
    esc: Esc,
}

#[derive(Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ …` or `ESC O …`, until its final byte.
    Seq,
}

/// The longest line kept (more is ignored).
const MAX_INPUT: usize = protocol::MAX_LINE;

impl LineEditor {
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Vec<Edit> {
        let mut edits = Vec::new();
        for &b in bytes {
            match self.esc {
                Esc::Start => {
                    self.esc = if b == b'[' || b == b'O' {
                        Esc::Seq
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Seq => {
                    if (0x40..=0x7e).contains(&b) {
                        self.esc = Esc::None;
                    }
                    continue;
                }
                Esc::None => {}
            }
            let edit = match b {
                0x1b => {
                    self.esc = Esc::Start;
                    None
                }
                b'\r' | b'\n' => Some(Edit::Submit(std::mem::take(&mut self.buf))),
                0x7f | 0x08 => self.buf.pop().map(|_| Edit::Changed),
                0x15 => {
                    self.buf.clear();
                    Some(Edit::Changed)
                }
                0x17 => {
                    let kept = self.buf.trim_end().len();
                    let start = self.buf[..kept]
                        .rfind(char::is_whitespace)
                        .map_or(0, |i| i + 1);
                    self.buf.truncate(start);
                    Some(Edit::Changed)
                }
                0x03 if !self.buf.is_empty() => {
                    self.buf.clear();
                    Some(Edit::Changed)
                }
                0x03 => Some(Edit::Quit),
                0x04 if self.buf.is_empty() => Some(Edit::Quit),
                0x0c => Some(Edit::Changed),
                b'\t' => self.push(' '),
                b if b < 0x20 => None,
                b => {
                    self.partial.push(b);
                    match std::str::from_utf8(&self.partial) {
                        Ok(s) => {
                            let s = s.to_string();
                            self.partial.clear();
                            s.chars().last().and_then(|c| self.push(c))
                        }
                        Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                            self.partial.clear();
                            None
                        }
                        Err(_) => None,
                    }
                }
            };
            if let Some(e) = edit {
                if e != Edit::Changed || edits.last() != Some(&Edit::Changed) {
                    edits.push(e);
                }
            }
        }
        edits
    }

    fn push(&mut self, c: char) -> Option<Edit> {
        (self.buf.len() + c.len_utf8() <= MAX_INPUT).then(|| {
            self.buf.push(c);
            Edit::Changed
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The terminal.

const PROMPT: &str = "> ";

/// Prints above the input line and draws it (raw), or just prints (canonical mode).
pub(super) struct Ui {
    raw: Option<RawMode>,
}

impl Ui {
    pub(super) fn new(fancy: bool) -> Ui {
        Ui {
            raw: if fancy { RawMode::enter() } else { None },
        }
    }

    /// Whether the input line is edited here (non-canonical mode), so input comes as bytes.
    pub(super) fn is_raw(&self) -> bool {
        self.raw.is_some()
    }

    /// Prints `text` on lines of its own, above the input line.
    pub(super) fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.raw.is_some() {
            let _ = out.write_all(b"\r\x1b[K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Draws the input line: the prompt and as much of the end of `typed` as fits.
    pub(super) fn redraw(&mut self, typed: &str) {
        if self.raw.is_none() {
            return;
        }
        let width = terminal_width().saturating_sub(PROMPT.len() + 1).max(8);
        let count = typed.chars().count();
        let shown: String = if count > width {
            let tail: String = typed.chars().skip(count - (width - 1)).collect();
            format!("…{tail}")
        } else {
            typed.to_string()
        };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K{PROMPT}{shown}");
        let _ = out.flush();
    }

    /// The line just submitted stays on screen, as a terminal would leave it.
    pub(super) fn commit(&mut self, line: &str) {
        if self.raw.is_some() {
            self.print(&format!("{PROMPT}{line}"));
        }
    }

    /// Leaves the input line empty and the terminal as it was.
    pub(super) fn finish(&mut self) {
        if self.raw.is_some() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\r\x1b[K");
            let _ = out.flush();
        }
        self.raw = None;
    }
}

fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own, or fails.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col >= 20 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// Non-canonical input without echo or signals while it lives; the saved settings come back
/// when it is dropped.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own, fully written by tcgetattr
        // before it is read.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return None;
            }
            let saved = t;
            // Output processing stays on (`\n` still starts a new line); only input changes.
            t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the settings tcgetattr gave for fd 0.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_keeps_a_line_across_reads_and_handles_editing_keys() {
        let mut ed = LineEditor::default();
        assert_eq!(ed.feed(b"he"), vec![Edit::Changed]);
        // A UTF-8 character split across two reads, and an arrow key, which is ignored.
        assert_eq!(ed.feed(&[b'l', 0xc3]), vec![Edit::Changed]);
        assert_eq!(ed.feed(&[0xa9, 0x1b, b'[', b'A']), vec![Edit::Changed]);
        assert_eq!(ed.buf, "helé");
        ed.feed(&[0x7f]);
        assert_eq!(ed.buf, "hel");
        ed.feed(b" world  ");
        ed.feed(&[0x17]);
        assert_eq!(ed.buf, "hel ");
        assert_eq!(
            ed.feed(b"x\r"),
            vec![Edit::Changed, Edit::Submit("hel x".into())]
        );
        assert_eq!(ed.buf, "");
        ed.feed(b"abc");
        assert_eq!(ed.feed(&[0x03]), vec![Edit::Changed]);
        assert_eq!(ed.buf, "");
        assert_eq!(ed.feed(&[0x03]), vec![Edit::Quit]);
        assert_eq!(ed.feed(&[0x04]), vec![Edit::Quit]);
        ed.feed(b"a");
        ed.feed(&[0x15]);
        assert_eq!(ed.buf, "");
    }
}
