//! Bounds the work one escape sequence can cause: before the screen model sees a CSI sequence,
//! its numeric parameters are clamped to the screen's size (`CSI 65535 @` on a 80-column screen
//! becomes `CSI 80 @`, which does the same thing). It works on characters (after UTF-8
//! decoding), keeps its state across chunks (a sequence split between two `%output` lines is
//! held until its final character comes) and never holds more than [`MAX_CSI`] characters.
//!
//! It only rewrites numbers inside CSI sequences and drops sequences too long to be real; it
//! passes every other character through, in order.
//!
//! On the way it notes the window title an OSC 0 or OSC 2 sequence sets (`ESC ] 2 ; text BEL`):
//! the screen model ignores titles, and tmux tells control clients about a pane's title only on
//! a one-second timer, while agents (Codex's spinner) say in it whether they are working.

/// The longest CSI sequence passed on (parameters and intermediates, in characters). Longer
/// ones are dropped whole: no real program sends them.
pub const MAX_CSI: usize = 64;

/// The largest number any CSI parameter keeps (parameters are 16-bit in terminals).
const MAX_PARAM: u64 = u16::MAX as u64;

/// The longest title noted (in bytes); a longer OSC string sets none (it is still passed
/// on, and the model drops it).
pub const MAX_TITLE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC (held back, not yet passed on).
    Escape,
    /// After ESC and an intermediate (ESC and the intermediates were passed on).
    EscapeIntermediate,
    /// Inside a CSI sequence: its parameters are held in `params`.
    Csi,
    /// Inside an OSC string (passed on as it comes; its text is noted in `osc`).
    Osc,
}

/// The streaming filter. One per screen model.
#[derive(Debug, Clone)]
pub struct Clamp {
    state: State,
    params: String,
    /// The held sequence grew past [`MAX_CSI`]: it is dropped when it ends.
    overflow: bool,
    /// The OSC string so far, and whether it grew past [`MAX_TITLE`].
    osc: String,
    osc_overflow: bool,
    /// The last title set since [`Clamp::take_title`].
    title: Option<String>,
    /// The start of a character cut at the end of a skimmed chunk (at most 3 bytes).
    cut_char: Vec<u8>,
}

impl Default for Clamp {
    fn default() -> Self {
        Clamp::new()
    }
}

impl Clamp {
    pub fn new() -> Clamp {
        Clamp {
            state: State::Ground,
            params: String::new(),
            overflow: false,
            osc: String::new(),
            osc_overflow: false,
            title: None,
            cut_char: Vec::new(),
        }
    }

    /// The window title the output set last since the previous call, if any.
    pub fn take_title(&mut self) -> Option<String> {
        self.title.take()
    }

    /// Forgets a sequence in progress (after the model was rebuilt).
    pub fn reset(&mut self) {
        *self = Clamp::new();
    }

    /// Passes one character through, appending what the model should see to `out`.
    pub fn push(&mut self, c: char, rows: u16, cols: u16, out: &mut String) {
        match self.state {
            State::Ground => self.ground(c, out),
            State::Escape => match c {
                '[' => self.start_csi(),
                ']' => {
                    self.state = State::Osc;
                    self.osc.clear();
                    self.osc_overflow = false;
                    out.push_str("\x1b]");
                }
                '\x1b' => out.push('\x1b'),
                '\x18' | '\x1a' => {
                    self.state = State::Ground;
                    out.push(c);
                }
                // C0 controls are carried out in the middle of an escape sequence.
                '\0'..='\x1f' => out.push(c),
                '\u{80}'..='\u{9f}' => {
                    self.state = State::Ground;
                    self.ground(c, out);
                }
                ' '..='/' => {
                    self.state = State::EscapeIntermediate;
                    out.push('\x1b');
                    out.push(c);
                }
                _ => {
                    self.state = State::Ground;
                    out.push('\x1b');
                    out.push(c);
                }
            },
            State::EscapeIntermediate => match c {
                '\x1b' => self.state = State::Escape,
                '\u{80}'..='\u{9f}' => {
                    self.state = State::Ground;
                    self.ground(c, out);
                }
                '\0'..='\x1f' | ' '..='/' => out.push(c),
                _ => {
                    self.state = State::Ground;
                    out.push(c);
                }
            },
            State::Osc => {
                match c {
                    // BEL or ST ends it; ESC ends it too (ESC \ is ST: the ESC is held as usual).
                    '\x07' | '\u{9c}' => {
                        self.end_osc();
                        self.state = State::Ground;
                    }
                    '\x1b' => {
                        self.end_osc();
                        self.state = State::Escape;
                        return;
                    }
                    '\x18' | '\x1a' => self.state = State::Ground,
                    '\0'..='\x1f' | '\x7f' => {}
                    _ if self.osc.len() + c.len_utf8() <= MAX_TITLE + 2 => self.osc.push(c),
                    _ => self.osc_overflow = true,
                }
                out.push(c);
            }
            State::Csi => match c {
                '0'..='?' | ' '..='/' => {
                    if self.params.len() < MAX_CSI {
                        self.params.push(c);
                    } else {
                        self.overflow = true;
                    }
                }
                '@'..='~' => self.finish(c, rows, cols, out),
                '\x1b' => {
                    // The sequence is cancelled: the model would drop it too.
                    self.params.clear();
                    self.state = State::Escape;
                }
                '\x18' | '\x1a' => {
                    self.params.clear();
                    self.state = State::Ground;
                    out.push(c);
                }
                '\0'..='\x1f' => out.push(c),
                '\x7f' => {}
                '\u{9b}' => self.start_csi(),
                '\u{80}'..='\u{9f}' => {
                    self.params.clear();
                    self.state = State::Ground;
                    self.ground(c, out);
                }
                // Some parsers take any other character as a final one: clamp as for one.
                _ => self.finish(c, rows, cols, out),
            },
        }
    }

    /// Notes the titles set in output that the screen model does not see (a pane whose output
    /// is skimmed, see `Pane::skip`): only OSC strings are parsed, found by their `ESC ]`;
    /// everything between them is passed over. A string cut between chunks is finished by the
    /// next one. The model is rebuilt from a capture before it sees output again, which resets
    /// this filter.
    pub fn skim_titles(&mut self, data: &[u8]) {
        let mut sink = String::new();
        let joined;
        let mut rest = if self.cut_char.is_empty() {
            data
        } else {
            joined = [std::mem::take(&mut self.cut_char).as_slice(), data].concat();
            &joined
        };
        while !rest.is_empty() {
            if matches!(self.state, State::Escape | State::Osc) {
                let Some((c, len)) = first_char(rest) else {
                    // A character cut at the end of the chunk: finished by the next one.
                    self.cut_char = rest.to_vec();
                    break;
                };
                self.push(c, 1, 1, &mut sink);
                sink.clear();
                rest = &rest[len..];
                continue;
            }
            self.state = State::Ground;
            match memchr::memmem::find(rest, b"\x1b]") {
                Some(at) => {
                    self.state = State::Escape;
                    rest = &rest[at + 1..];
                }
                None => {
                    if rest.last() == Some(&0x1b) {
                        self.state = State::Escape;
                    }
                    break;
                }
            }
        }
    }

    fn ground(&mut self, c: char, out: &mut String) {
        match c {
            '\x1b' => self.state = State::Escape,
            '\u{9b}' => self.start_csi(),
            _ => out.push(c),
        }
    }

    /// Notes the title an OSC 0 (icon name and title) or OSC 2 (title) string sets.
    fn end_osc(&mut self) {
        if self.osc_overflow {
            return;
        }
        if let Some(t) = self
            .osc
            .strip_prefix("0;")
            .or_else(|| self.osc.strip_prefix("2;"))
        {
            self.title = Some(t.to_string());
        }
    }

    fn start_csi(&mut self) {
        self.state = State::Csi;
        self.params.clear();
        self.overflow = false;
    }

    /// Passes the held sequence on with its numbers clamped, or drops it if it overflowed.
    fn finish(&mut self, last: char, rows: u16, cols: u16, out: &mut String) {
        self.state = State::Ground;
        if self.overflow {
            self.params.clear();
            self.overflow = false;
            return;
        }
        let private = self.params.starts_with(['<', '=', '>', '?']);
        let (rows, cols) = (u64::from(rows.max(1)), u64::from(cols.max(1)));
        let bound = |index: usize| -> u64 {
            match last {
                // Counts and positions along a row.
                '@' | 'C' | 'D' | 'G' | 'I' | 'P' | 'X' | 'Z' | '`' | 'a' => cols,
                // Counts and positions down the screen.
                'A' | 'B' | 'E' | 'F' | 'L' | 'M' | 'S' | 'T' | 'd' | 'e' => rows,
                'r' if !private => rows,
                'H' | 'f' => match index {
                    0 => rows,
                    1 => cols,
                    _ => rows.min(cols),
                },
                // REP: more than a screenful of repeats leaves the same screen.
                'b' => (rows * cols).min(MAX_PARAM),
                c if !c.is_ascii() => rows,
                _ => MAX_PARAM,
            }
        };
        out.push_str("\x1b[");
        let mut index = 0;
        let mut number: Option<u64> = None;
        for c in self.params.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.saturating_mul(10)
                        .saturating_add(u64::from(d))
                        .min(u64::MAX / 10),
                );
                continue;
            }
            if let Some(n) = number.take() {
                push_number(out, n.min(bound(index)));
            }
            if c == ';' {
                index += 1;
            }
            out.push(c);
        }
        if let Some(n) = number.take() {
            push_number(out, n.min(bound(index)));
        }
        out.push(last);
        self.params.clear();
    }
}

fn push_number(out: &mut String, n: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// The first character of `bytes` (not empty) and its length: an invalid byte is U+FFFD, one
/// byte long; `None` when the bytes are the start of a character cut short.
fn first_char(bytes: &[u8]) -> Option<(char, usize)> {
    let len = match bytes[0] {
        b if b < 0x80 => return Some((char::from(b), 1)),
        b if b >= 0xf0 => 4,
        b if b >= 0xe0 => 3,
        _ => 2,
    };
    let take = len.min(bytes.len());
    match std::str::from_utf8(&bytes[..take]) {
        Ok(s) => Some((s.chars().next().unwrap_or('\u{fffd}'), take)),
        Err(e) if e.error_len().is_none() && take < len => None,
        Err(_) => Some(('\u{fffd}', 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(clamp: &mut Clamp, input: &str, rows: u16, cols: u16) -> String {
        let mut out = String::new();
        for c in input.chars() {
            clamp.push(c, rows, cols, &mut out);
        }
        out
    }

    fn once(input: &str) -> String {
        run(&mut Clamp::new(), input, 24, 80)
    }

    #[test]
    fn titles_are_noted_and_passed_on() {
        let mut c = Clamp::new();
        let input = "a\x1b]0;\u{2827} work\x07b\x1b]2;idle dir\x1b\\c\x1b]7;file://x\x07";
        assert_eq!(run(&mut c, input, 24, 80), input);
        assert_eq!(c.take_title().as_deref(), Some("idle dir"));
        assert_eq!(c.take_title(), None);
        // Split across chunks, and an 8-bit ST.
        let mut out = String::new();
        for ch in "\x1b]2;split".chars() {
            c.push(ch, 24, 80, &mut out);
        }
        assert_eq!(c.take_title(), None);
        for ch in " title\u{9c}".chars() {
            c.push(ch, 24, 80, &mut out);
        }
        assert_eq!(c.take_title().as_deref(), Some("split title"));
        // Too long, cancelled, or with controls inside: none set, or the controls left out.
        let long = format!("\x1b]2;{}\x07", "x".repeat(MAX_TITLE + 1));
        run(&mut c, &long, 24, 80);
        run(&mut c, "\x1b]2;cancelled\x18", 24, 80);
        assert_eq!(c.take_title(), None);
        run(&mut c, "\x1b]2;a\x08b\x07", 24, 80);
        assert_eq!(c.take_title().as_deref(), Some("ab"));
    }

    #[test]
    fn titles_are_read_from_skimmed_output_however_it_is_cut() {
        let input =
            "\x1b[1mwork\x1b]0;\u{2827} Working\x07 more \x1b[0m\x1b]2;ready \u{2714}\x1b\\tail"
                .as_bytes();
        for cut in 0..input.len() {
            let mut c = Clamp::new();
            c.skim_titles(&input[..cut]);
            c.skim_titles(&input[cut..]);
            assert_eq!(
                c.take_title().as_deref(),
                Some("ready \u{2714}"),
                "cut at {cut}"
            );
        }
        // Byte by byte, the first title alone.
        let mut c = Clamp::new();
        for b in &input[..input.len() / 2] {
            c.skim_titles(&[*b]);
        }
        assert_eq!(c.take_title().as_deref(), Some("\u{2827} Working"));
        // Other escapes set nothing, and a string too long sets none.
        let mut c = Clamp::new();
        c.skim_titles(b"\x1b[2J\x1b]7;file://x\x07\x1b]52;c;aGk=\x07");
        c.skim_titles(format!("\x1b]2;{}\x07", "x".repeat(MAX_TITLE + 1)).as_bytes());
        assert_eq!(c.take_title(), None);
    }

    #[test]
    fn counts_are_clamped_to_the_screen() {
        assert_eq!(once("\x1b[65535@"), "\x1b[80@");
        assert_eq!(once("\x1b[65535L"), "\x1b[24L");
        assert_eq!(once("\x1b[65535T"), "\x1b[24T");
        assert_eq!(once("\x1b[99999999999999999999999999S"), "\x1b[24S");
        assert_eq!(once("x\x1b[65535b"), "x\x1b[1920b");
        assert_eq!(once("\x1b[900;900H"), "\x1b[24;80H");
        assert_eq!(once("\u{9b}65535P"), "\x1b[80P");
    }

    #[test]
    fn ordinary_sequences_pass_unchanged() {
        for s in [
            "\x1b[1;31mred\x1b[0m",
            "\x1b[38;2;255;128;0m",
            "\x1b[?1049h",
            "\x1b[?2004l",
            "\x1b[2J\x1b[H",
            "\x1b[5;10r",
            "\x1b[3@",
            "\x1b]0;title\x07",
            "\x1b(B\x1b7\x1b8",
            "plain text, ünïcödé 中文",
        ] {
            assert_eq!(once(s), s, "{s:?}");
        }
        // Mode numbers are not counts.
        assert_eq!(once("\x1b[?1049r"), "\x1b[?1049r");
    }

    #[test]
    fn a_sequence_split_across_chunks_is_clamped_whole() {
        let mut c = Clamp::new();
        let mut out = run(&mut c, "ab\x1b", 24, 80);
        out += &run(&mut c, "[655", 24, 80);
        assert_eq!(out, "ab");
        out += &run(&mut c, "35@cd", 24, 80);
        assert_eq!(out, "ab\x1b[80@cd");
    }

    #[test]
    fn overlong_sequences_are_dropped_and_the_text_after_survives() {
        let long = format!("\x1b[{}m", "1;".repeat(100));
        assert_eq!(once(&format!("{long}after")), "after");
        let digits = format!("\x1b[{}@after", "9".repeat(1000));
        assert_eq!(once(&digits), "after");
    }

    #[test]
    fn controls_inside_a_sequence_are_kept_in_order() {
        assert_eq!(once("\x1b[6\n5535@"), "\n\x1b[80@");
        assert_eq!(once("\x1b\n[65535@"), "\n\x1b[80@");
        // ESC cancels a sequence in progress; CAN too.
        assert_eq!(once("\x1b[65\x1b[3@"), "\x1b[3@");
        assert_eq!(once("\x1b[65\x18x"), "\x18x");
    }
}
