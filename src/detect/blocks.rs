//! Request, response and message blocks in pane output: finding them on a screen.
//!
//! A block is a start marker row, body rows, and an end marker row:
//!
//! ```text
//! <<CONTROLLER_REQUEST>>      <<CONTROLLER_RESPONSE>>      <<MESSAGE to=NAME>>   (NAME: [A-Za-z0-9_.-]+, or `all`)
//! …                           WORKER INSTRUCTIONS: …       …
//! <<CONTROLLER_REQUEST_END>>  NOTES: …                     <<MESSAGE_END>>
//!                             <<CONTROLLER_RESPONSE_END>>
//! ```
//!
//! This module owns how a rendered screen is read into blocks ([`find_blocks`]), how a response
//! body splits into what is sent and what is kept ([`parse_response`]), and the text forms used
//! to compare blocks ([`normalize`], [`block_text`]). It does no I/O, keeps no state between
//! calls (that is [`super::tracker`]), and never panics on screen content.
//!
//! # How a marker row is recognised
//!
//! Agents render their replies: a marker keeps a row of its own, but with decorations around it.
//! A row is a marker row when, after removing (in this order)
//!
//! - trailing spaces and a right box border (`│ ┃ ║ ▌ …`),
//! - leading spaces, a left box border or quote bar (`│ ┃ ║ ▌ >`),
//! - a code-fence line number (Gemini numbers fenced lines: `   1 <<CONTROLLER_REQUEST>>`),
//! - a gutter glyph (the reply bullet `• ● ⏺ ✦ ◦`, the input echo `› ❯`, `⎿ └ ▸ …`),
//!
//! nothing but the marker is left. Markers are case-sensitive. A marker with any other text on
//! its row is prose (`use <<CONTROLLER_REQUEST>> blocks to ask`), with one exception: a *start*
//! marker that ends a row of text opens a block when no block is open. Agents were seen to print
//! `• reply A <<CONTROLLER_REQUEST>>` (the model put the marker after its sentence); the end
//! marker must still stand on its own row, so prose that merely ends in a marker opens at most an
//! unterminated block, which is reported, never acted on.
//!
//! # How a body is read
//!
//! The body is the rows between the two marker rows, decorated as the start row was: a left
//! border or quote bar at the start marker's column is removed from every body row that has it
//! there, so is a right border when the start row had one, and so are line numbers when the start
//! row had one. The rows are then de-indented by the start marker's indentation (so a hard-wrapped
//! row at column 0 does not pin the indent) and by their common indentation, right-trimmed, and
//! blank rows at both ends are dropped. Rows the TUI wrapped stay separate rows: they cannot be
//! rejoined reliably; [`normalize`] makes comparisons immune to that. A bullet glyph on the start
//! row is not removed from body rows (`• a list item` is content).
//!
//! # What is reported
//!
//! - [`Scan::blocks`]: complete blocks with a non-empty body, top to bottom. A block whose body is
//!   empty (a row listing the markers, say) is not a request and is skipped.
//! - [`Scan::open`]: a block still open at the bottom of `lines` (still being printed).
//! - [`Scan::capped`]: blocks that will never complete: one whose body passed [`Limits`] (scanning
//!   goes on with the next row, so nothing grows without bound), and one abandoned because another
//!   start marker on a row of its own came before its end marker (the new one is opened).
//!
//! An end marker with no open block, or of another kind than the open block, is not a marker (in
//! a body it is text). Escape sequences left in a row (`capture-pane -e`) are stripped first.

use std::borrow::Cow;
use std::ops::Range;

use super::state::strip_escapes;

/// `<<CONTROLLER_REQUEST>>`: worker → controller.
pub const REQUEST_START: &str = "<<CONTROLLER_REQUEST>>";
/// `<<CONTROLLER_REQUEST_END>>`.
pub const REQUEST_END: &str = "<<CONTROLLER_REQUEST_END>>";
/// `<<CONTROLLER_RESPONSE>>`: controller → worker.
pub const RESPONSE_START: &str = "<<CONTROLLER_RESPONSE>>";
/// `<<CONTROLLER_RESPONSE_END>>`.
pub const RESPONSE_END: &str = "<<CONTROLLER_RESPONSE_END>>";
/// `<<MESSAGE_END>>`; a message starts with `<<MESSAGE to=NAME>>`.
pub const MESSAGE_END: &str = "<<MESSAGE_END>>";
/// The addressee of a message to everyone: `<<MESSAGE to=all>>`.
pub const MESSAGE_TO_ALL: &str = "all";

const MESSAGE_OPEN: &str = "<<MESSAGE";

/// Which block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// `<<CONTROLLER_REQUEST>>`: a worker asks its controller for direction.
    Request,
    /// `<<CONTROLLER_RESPONSE>>`: a controller answers.
    Response,
    /// `<<MESSAGE to=NAME>>`: one agent to another (`to` is a name, or `all`).
    Message { to: String },
}

impl BlockKind {
    /// The start marker, as an agent prints it: `<<CONTROLLER_REQUEST>>`, `<<MESSAGE to=bob>>`.
    pub fn start_marker(&self) -> Cow<'static, str> {
        match self {
            BlockKind::Request => Cow::Borrowed(REQUEST_START),
            BlockKind::Response => Cow::Borrowed(RESPONSE_START),
            BlockKind::Message { to } => Cow::Owned(format!("{MESSAGE_OPEN} to={to}>>")),
        }
    }

    /// The end marker: `<<CONTROLLER_REQUEST_END>>`, `<<CONTROLLER_RESPONSE_END>>`,
    /// `<<MESSAGE_END>>`.
    pub fn end_marker(&self) -> &'static str {
        match self {
            BlockKind::Request => REQUEST_END,
            BlockKind::Response => RESPONSE_END,
            BlockKind::Message { .. } => MESSAGE_END,
        }
    }

    /// `"request"`, `"response"` or `"message"`, for logs.
    pub fn label(&self) -> &'static str {
        match self {
            BlockKind::Request => "request",
            BlockKind::Response => "response",
            BlockKind::Message { .. } => "message",
        }
    }

    fn end(&self) -> EndOf {
        match self {
            BlockKind::Request => EndOf::Request,
            BlockKind::Response => EndOf::Response,
            BlockKind::Message { .. } => EndOf::Message,
        }
    }
}

/// A complete block found on a screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    /// The rows between the markers, decorations removed (see the module documentation).
    pub body: String,
    /// The rows of `lines` the block covers, both marker rows included.
    pub rows: Range<usize>,
}

/// A block that has a start marker but no end marker (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    pub kind: BlockKind,
    /// The row of the start marker.
    pub start_row: usize,
    /// Body rows seen after the start marker (for a capped block: up to and including the row
    /// that passed the limit).
    pub lines: usize,
    /// Bytes in those rows, one newline each included.
    pub bytes: usize,
}

/// How big a block body may grow before it is given up as capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_lines: usize,
}

impl Default for Limits {
    /// 64 KiB and 500 rows.
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024,
            max_lines: 500,
        }
    }
}

/// What [`find_blocks`] saw on a screen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Complete blocks, top to bottom.
    pub blocks: Vec<Block>,
    /// A block still open at the bottom: being printed.
    pub open: Option<Unterminated>,
    /// Blocks given up: over the limits, or abandoned for a new start marker.
    pub capped: Vec<Unterminated>,
}

/// Finds the blocks on a screen. `lines` are rows top to bottom (visible rows, possibly with
/// scrollback above them), plain text; escape sequences are tolerated and stripped.
pub fn find_blocks(lines: &[String], limits: &Limits) -> Scan {
    let mut scan = Scan::default();
    let mut open: Option<Open> = None;
    for (i, raw) in lines.iter().enumerate() {
        let row = clean(raw);
        if let Some(m) = parse_marker(&row) {
            match m.found {
                Found::Start(kind) if m.own_row => {
                    if let Some(o) = open.take() {
                        scan.capped.push(o.unterminated());
                    }
                    open = Some(Open::new(kind, i, m.deco));
                    continue;
                }
                Found::Start(kind) => {
                    if open.is_none() {
                        open = Some(Open::new(kind, i, m.deco));
                        continue;
                    }
                }
                Found::End(end) => match open.take() {
                    Some(o) if o.kind.end() == end => {
                        let body = extract_body(&lines[o.start + 1..i], &o.deco);
                        if !body.is_empty() {
                            scan.blocks.push(Block {
                                kind: o.kind,
                                body,
                                rows: o.start..i + 1,
                            });
                        }
                        continue;
                    }
                    other => open = other,
                },
            }
        }
        // A body row (or prose when nothing is open).
        if let Some(o) = open.as_mut() {
            o.lines += 1;
            o.bytes = o.bytes.saturating_add(raw.len() + 1);
            if o.lines > limits.max_lines || o.bytes > limits.max_bytes {
                if let Some(o) = open.take() {
                    scan.capped.push(o.unterminated());
                }
            }
        }
    }
    scan.open = open.map(|o| o.unterminated());
    scan
}

/// A response body split in two: what goes to the worker and what stays in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Sent to the worker.
    pub instructions: String,
    /// Kept in the archive, not sent. `None` when there are none.
    pub notes: Option<String>,
}

/// Splits a response body at its headings: `WORKER INSTRUCTIONS:` (any case) starts what is sent
/// to the worker, `NOTES:` (upper case, as the format writes it: a sentence that starts with
/// "Notes:" inside the instructions must not cut them short) starts what is kept. A heading may
/// carry markdown marks (`## `, `**…**`) and text after its colon on the same row.
///
/// - No heading: the whole body is instructions.
/// - Only `NOTES:`: the text before it is instructions.
/// - Text before a `WORKER INSTRUCTIONS:` heading is not sent: it goes to the notes, before the
///   `NOTES:` section, so nothing is lost.
///
/// Each part is trimmed; empty notes are `None`. Instructions may come back empty (a response
/// that only has notes): the caller decides what to do with it.
pub fn parse_response(body: &str) -> Response {
    let rows: Vec<&str> = body.lines().collect();
    let mut wi: Option<(usize, &str)> = None;
    let mut notes: Option<(usize, &str)> = None;
    for (i, row) in rows.iter().enumerate() {
        if wi.is_none() {
            if let Some(rest) = heading(row, &["WORKER", "INSTRUCTIONS"], false) {
                wi = Some((i, rest));
                continue;
            }
        }
        if notes.is_none() {
            if let Some(rest) = heading(row, &["NOTES"], true) {
                notes = Some((i, rest));
            }
        }
    }
    let section = |at: usize, rest: &str, until: usize| -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !rest.trim().is_empty() {
            parts.push(rest);
        }
        parts.extend(rows[at + 1..until.max(at + 1)].iter().copied());
        trim_text(&parts.join("\n"))
    };
    let first_heading = [wi.map(|h| h.0), notes.map(|h| h.0)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rows.len());
    let preamble = trim_text(&rows[..first_heading].join("\n"));
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    match (wi, notes) {
        (None, None) => Response {
            instructions: trim_text(body),
            notes: None,
        },
        (None, Some((n, rest))) => Response {
            instructions: preamble,
            notes: non_empty(section(n, rest, rows.len())),
        },
        (Some((w, rest)), notes) => {
            let (wi_until, notes_text) = match notes {
                Some((n, nrest)) if n > w => (n, section(n, nrest, rows.len())),
                Some((n, nrest)) => (rows.len(), section(n, nrest, w)),
                None => (rows.len(), String::new()),
            };
            let kept: Vec<String> = [preamble, notes_text]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            Response {
                instructions: section(w, rest, wi_until),
                notes: non_empty(kept.join("\n\n")),
            }
        }
    }
}

/// Whitespace folded: every run of whitespace (newlines included) becomes one space, and the ends
/// are trimmed. The form in which texts are hashed and compared for echoes.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical text of a block: `<<MARKER>>\nbody\n<<END>>`.
pub fn block_text(kind: &BlockKind, body: &str) -> String {
    format!("{}\n{}\n{}", kind.start_marker(), body, kind.end_marker())
}

// ---------------------------------------------------------------------------------------------
// Marker rows.

/// Which end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndOf {
    Request,
    Response,
    Message,
}

#[derive(Debug)]
enum Found {
    Start(BlockKind),
    End(EndOf),
}

/// How the start marker row was decorated; body rows get the same treatment.
#[derive(Debug, Clone, Default)]
struct Deco {
    /// A left border or quote bar and its column (in chars).
    bar: Option<(char, usize)>,
    /// A right border after the marker.
    right_border: bool,
    /// A code-fence line number before the marker.
    line_numbers: bool,
    /// Columns before the marker (or the prose) once the bar and line number are gone.
    indent: usize,
}

#[derive(Debug)]
struct MarkerRow {
    found: Found,
    /// Nothing but decorations besides the marker; `false`: prose before a start marker.
    own_row: bool,
    deco: Deco,
}

/// Box borders and quote bars that repeat on every row of a box.
fn is_border(c: char) -> bool {
    matches!(
        c,
        '│' | '┃' | '║' | '▌' | '▐' | '▎' | '▏' | '╎' | '┆' | '┊' | '╏' | '┇' | '┋'
    )
}

/// A left border, or a markdown quote bar.
fn is_bar(c: char) -> bool {
    is_border(c) || c == '>'
}

/// Glyphs a TUI puts before the first row of a reply, a tool result or an input echo.
fn is_bullet(c: char) -> bool {
    matches!(
        c,
        '⏺' | '●'
            | '•'
            | '◦'
            | '✦'
            | '✧'
            | '⎿'
            | '└'
            | '›'
            | '❯'
            | '»'
            | '▸'
            | '▶'
            | '►'
            | '◆'
            | '◇'
            | '○'
            | '◉'
            | '▪'
            | '‣'
            | '·'
            | '∙'
    )
}

/// The row as text: escape sequences and control characters removed when there are any.
fn clean(raw: &str) -> Cow<'_, str> {
    if raw.chars().any(|c| c.is_control() && c != '\t') {
        Cow::Owned(strip_escapes(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

/// Reads a row as a marker row, or `None`.
fn parse_marker(row: &str) -> Option<MarkerRow> {
    let mut s = row.trim_end();
    let mut right_border = false;
    if let Some(c) = s.chars().next_back() {
        if is_border(c) {
            s = s[..s.len() - c.len_utf8()].trim_end();
            right_border = true;
        }
    }
    let (at, found) = marker_at_end(s)?;
    let prefix = &s[..at];
    let p = parse_prefix(prefix);
    let own_row = p.rest_empty;
    if !own_row {
        // Only a start marker may end a row of prose, and only as a word of its own.
        let spaced = prefix.chars().next_back().is_some_and(char::is_whitespace);
        if !matches!(found, Found::Start(_)) || !spaced {
            return None;
        }
    }
    Some(MarkerRow {
        found,
        own_row,
        deco: Deco {
            bar: p.bar,
            right_border,
            line_numbers: p.line_number,
            indent: p.indent,
        },
    })
}

/// The marker that ends `s`, and where it starts.
fn marker_at_end(s: &str) -> Option<(usize, Found)> {
    if !s.ends_with(">>") {
        return None;
    }
    let fixed = [
        (REQUEST_END, Found::End(EndOf::Request)),
        (RESPONSE_END, Found::End(EndOf::Response)),
        (MESSAGE_END, Found::End(EndOf::Message)),
        (REQUEST_START, Found::Start(BlockKind::Request)),
        (RESPONSE_START, Found::Start(BlockKind::Response)),
    ];
    for (marker, found) in fixed {
        if s.ends_with(marker) {
            return Some((s.len() - marker.len(), found));
        }
    }
    // `<<MESSAGE to=NAME>>`
    let at = s.rfind(MESSAGE_OPEN)?;
    let inner = s[at + MESSAGE_OPEN.len()..s.len() - 2].trim_end();
    let after = inner.trim_start();
    if after.len() == inner.len() {
        return None; // `<<MESSAGEto=…`
    }
    let name = after.strip_prefix("to=")?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then(|| {
        (
            at,
            Found::Start(BlockKind::Message {
                to: name.to_owned(),
            }),
        )
    })
}

struct Prefix {
    bar: Option<(char, usize)>,
    line_number: bool,
    indent: usize,
    /// Only decorations before the marker.
    rest_empty: bool,
}

/// Reads the decorations before a marker: spaces, a bar, a line number, a bullet, spaces.
fn parse_prefix(prefix: &str) -> Prefix {
    let chars: Vec<char> = prefix.chars().collect();
    let n = chars.len();
    let skip_ws = |mut i: usize| {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let word_ends = |i: usize| i >= n || chars[i].is_whitespace();
    let mut i = skip_ws(0);
    let mut bar = None;
    let mut removed = 0; // chars the bar and the line number take (removed from body rows too)
    if i < n && is_bar(chars[i]) && word_ends(i + 1) {
        bar = Some((chars[i], i));
        i += 1;
        removed = i;
        i = skip_ws(i);
    }
    let mut line_number = false;
    let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=6).contains(&digits) && i + digits < n && chars[i + digits] == ' ' {
        line_number = true;
        i += digits + 1;
        removed = i;
        i = skip_ws(i);
    }
    if i < n && is_bullet(chars[i]) && word_ends(i + 1) {
        i = skip_ws(i + 1);
    }
    Prefix {
        bar,
        line_number,
        indent: i - removed,
        rest_empty: i == n,
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies.

struct Open {
    kind: BlockKind,
    start: usize,
    deco: Deco,
    lines: usize,
    bytes: usize,
}

impl Open {
    fn new(kind: BlockKind, start: usize, deco: Deco) -> Open {
        Open {
            kind,
            start,
            deco,
            lines: 0,
            bytes: 0,
        }
    }

    fn unterminated(self) -> Unterminated {
        Unterminated {
            kind: self.kind,
            start_row: self.start,
            lines: self.lines,
            bytes: self.bytes,
        }
    }
}

/// The body text of `rows` decorated like the start marker row (see the module documentation).
fn extract_body(rows: &[String], deco: &Deco) -> String {
    let stripped: Vec<String> = rows.iter().map(|r| strip_row(&clean(r), deco)).collect();
    let common = stripped
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take_while(|c| c.is_whitespace()).count())
        .min()
        .unwrap_or(0);
    let rows: Vec<&str> = stripped
        .iter()
        .map(|r| drop_ws(r, common).trim_end())
        .collect();
    let first = rows.iter().position(|r| !r.is_empty());
    let last = rows.iter().rposition(|r| !r.is_empty());
    match (first, last) {
        (Some(a), Some(b)) => rows[a..=b].join("\n"),
        _ => String::new(),
    }
}

/// One body row with the start row's decorations removed and its indentation taken off.
fn strip_row(row: &str, deco: &Deco) -> String {
    let mut s = row.trim_end();
    if deco.right_border {
        if let Some(c) = s.chars().next_back() {
            if is_border(c) {
                s = s[..s.len() - c.len_utf8()].trim_end();
            }
        }
    }
    if let Some((bar, col)) = deco.bar {
        let mut it = s.char_indices();
        let lead_ok = it.by_ref().take(col).all(|(_, c)| c.is_whitespace());
        if lead_ok {
            if let Some((at, c)) = it.next() {
                if c == bar {
                    s = &s[at + c.len_utf8()..];
                }
            }
        }
    }
    if deco.line_numbers {
        let t = s.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let after = &t[digits..];
            if after.is_empty() {
                s = after;
            } else if let Some(rest) = after.strip_prefix(' ') {
                s = rest;
            }
        }
    }
    drop_ws(s, deco.indent).to_owned()
}

/// `s` without up to `n` leading whitespace characters.
fn drop_ws(s: &str, n: usize) -> &str {
    let mut at = s.len();
    for (taken, (i, c)) in s.char_indices().enumerate() {
        if taken == n || !c.is_whitespace() {
            at = i;
            break;
        }
    }
    &s[at..]
}

// ---------------------------------------------------------------------------------------------
// Responses.

/// If `row` is the heading `words` (`WORKER INSTRUCTIONS:`), the text after its colon.
fn heading<'a>(row: &'a str, words: &[&str], case_sensitive: bool) -> Option<&'a str> {
    let marks: &[char] = &['*', '_', '`'];
    let mut s = row.trim();
    s = s.trim_start_matches('#').trim_start();
    s = s.trim_start_matches(marks).trim_start();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            let t = s.trim_start();
            if t.len() == s.len() {
                return None;
            }
            s = t;
        }
        let head = s.get(..word.len())?;
        let same = if case_sensitive {
            head == *word
        } else {
            head.eq_ignore_ascii_case(word)
        };
        if !same {
            return None;
        }
        s = &s[word.len()..];
    }
    if s.chars().next().is_some_and(|c| c.is_alphanumeric()) {
        return None; // `NOTESX`
    }
    let s = s.trim_start_matches(marks).trim_start();
    match s.strip_prefix(':') {
        Some(rest) => Some(rest.trim_start_matches(marks).trim()),
        None if s.trim().is_empty() => Some(""),
        None => None,
    }
}

/// Blank rows at both ends dropped, each row right-trimmed, the common indentation removed.
fn trim_text(text: &str) -> String {
    let rows: Vec<&str> = text.lines().map(str::trim_end).collect();
    let common = rows
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take_while(|c| c.is_whitespace()).count())
        .min()
        .unwrap_or(0);
    let first = rows.iter().position(|r| !r.is_empty());
    let last = rows.iter().rposition(|r| !r.is_empty());
    match (first, last) {
        (Some(a), Some(b)) => rows[a..=b]
            .iter()
            .map(|r| drop_ws(r, common))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn fixture(name: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/blocks")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lines(&text)
    }

    fn scan(text: &str) -> Scan {
        find_blocks(&lines(text), &Limits::default())
    }

    fn bodies(scan: &Scan) -> Vec<(&BlockKind, &str)> {
        scan.blocks
            .iter()
            .map(|b| (&b.kind, b.body.as_str()))
            .collect()
    }

    const WRAPPED: &str = "Question line that is quite long and will certainly need to wrap in a 120 column terminal because it goes on and on\nand on beyond the width of the pane.";

    #[test]
    fn codex_render_test_screen() {
        let lines = fixture("codex-render-test.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(s.blocks.len(), 2, "{s:#?}");
        assert!(s.open.is_none() && s.capped.is_empty(), "{s:#?}");
        let b = &s.blocks[0];
        assert_eq!(b.kind, BlockKind::Request);
        assert_eq!(
            b.body,
            format!(
                "{WRAPPED}\nSecond line with stars and under_scores and backticks and <angle> brackets & ampersand.\n\n• a list item\n\n# not a heading?"
            )
        );
        assert!(lines[b.rows.start].contains(REQUEST_START));
        assert!(lines[b.rows.end - 1].contains(REQUEST_END));
        assert_eq!(s.blocks[1].body, "Inside a code fence");
    }

    #[test]
    fn claude_render_test_screen() {
        let s = find_blocks(&fixture("claude-render-test.txt"), &Limits::default());
        assert_eq!(
            bodies(&s),
            [
                (
                    &BlockKind::Request,
                    format!("{WRAPPED}\nSecond line with stars and under_scores and backticks and <angle> brackets & ampersand.\n- a list item\nnot a heading?").as_str()
                ),
                (&BlockKind::Request, "Inside a code fence"),
            ]
        );
    }

    #[test]
    fn gemini_render_test_screen_with_numbered_fence_lines() {
        let lines = fixture("gemini-render-test.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(s.blocks.len(), 2, "{s:#?}");
        assert_eq!(
            s.blocks[0].body,
            format!("{WRAPPED}\nSecond line with stars and _under_scores_ and backticks and <angle> brackets & ampersand.\n - a list item\nnot a heading?")
        );
        // `   1 <<CONTROLLER_REQUEST>>` / `   2 Inside a code fence` / `   3 <<…_END>>`
        let fenced = &s.blocks[1];
        assert_eq!(fenced.body, "Inside a code fence");
        assert!(lines[fenced.rows.start].starts_with("   1 "));
        assert_eq!(fenced.rows.len(), 3);
    }

    #[test]
    fn reply_bullets_of_each_agent() {
        for (file, first) in [
            ("demo-codex-ask-3-idle-after.txt", "• Sure"),
            ("demo-claude-ask-3-idle-after.txt", "● Sure"),
            ("demo-gemini-ask-3-idle-after.txt", "✦ Sure"),
        ] {
            let lines = fixture(file);
            let s = find_blocks(&lines, &Limits::default());
            assert_eq!(
                bodies(&s),
                [(&BlockKind::Request, "Should I proceed?")],
                "{file}"
            );
            assert!(
                lines[s.blocks[0].rows.start - 2].starts_with(first),
                "{file}"
            );
        }
        // The marker on the bullet row itself: `✦ <<CONTROLLER_REQUEST>>`.
        let s = find_blocks(&fixture("gemini-scrolled-off.txt"), &Limits::default());
        assert_eq!(
            bodies(&s),
            [
                (&BlockKind::Request, "Should I proceed?"),
                (&BlockKind::Request, "Early question?"),
            ]
        );
        let s = scan(
            "● <<CONTROLLER_REQUEST>>\n  Early question?\n  <<CONTROLLER_REQUEST_END>>\n  filler",
        );
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Early question?")]);
        // A bar as the reply's gutter (the sim-agent's `gutter │`): only on the first row.
        let s = scan("│ <<CONTROLLER_REQUEST>>\n  Should I?\n  <<CONTROLLER_REQUEST_END>>");
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Should I?")]);
        let s = scan("⏺ <<CONTROLLER_REQUEST>>\n  old Claude gutter\n  <<CONTROLLER_REQUEST_END>>");
        assert_eq!(bodies(&s), [(&BlockKind::Request, "old Claude gutter")]);
    }

    #[test]
    fn a_start_marker_after_text_on_its_row_opens_a_block() {
        // Seen on all three agents: the model wrote `reply A <<CONTROLLER_REQUEST>>`.
        let lines = fixture("codex-busy-tab-final.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Q1?")], "{s:#?}");
        assert!(lines[s.blocks[0].rows.start].starts_with("• reply A <<"));
        // The earlier request scrolled off the top: its end marker alone is ignored.
        assert!(s.open.is_none() && s.capped.is_empty());
    }

    #[test]
    fn markers_inside_prose_are_not_markers() {
        for text in [
            "● Please use <<CONTROLLER_REQUEST>> blocks to ask me.\n  Really?\n  <<CONTROLLER_REQUEST_END>> closes it.",
            "  The format is <<CONTROLLER_REQUEST>>…<<CONTROLLER_REQUEST_END>> on one row.",
            "  x<<CONTROLLER_REQUEST>>\n  body\n  <<CONTROLLER_REQUEST_END>>",
            "  <<CONTROLLER_REQUEST>> and more\n  body\n  <<CONTROLLER_REQUEST_END>>",
            "  <<controller_request>>\n  body\n  <<controller_request_end>>",
            "  <<<CONTROLLER_REQUEST>>\n  body\n  <<CONTROLLER_REQUEST_END>>",
        ] {
            let s = scan(text);
            assert!(s.blocks.is_empty(), "{text:?}: {s:#?}");
        }
        // An end marker after text does not end a block: the block stays open.
        let s = scan("<<CONTROLLER_REQUEST>>\nQ? <<CONTROLLER_REQUEST_END>>");
        assert!(s.blocks.is_empty());
        assert_eq!(s.open.map(|o| o.lines), Some(1));
    }

    #[test]
    fn end_without_start_is_ignored() {
        let s = scan(
            "  <<CONTROLLER_REQUEST_END>>\n  text\n  <<MESSAGE_END>>\n<<CONTROLLER_RESPONSE_END>>",
        );
        assert_eq!(s, Scan::default());
        // An end of another kind inside an open block is body text.
        let s = scan("<<CONTROLLER_REQUEST>>\nquoting <<MESSAGE_END>>:\n<<MESSAGE_END>>\n<<CONTROLLER_REQUEST_END>>");
        assert_eq!(
            bodies(&s),
            [(
                &BlockKind::Request,
                "quoting <<MESSAGE_END>>:\n<<MESSAGE_END>>"
            )]
        );
    }

    #[test]
    fn indentation_and_wrapped_rows() {
        let s = scan(
            "    <<CONTROLLER_REQUEST>>\n      indented more\n    level\n\n    a row the terminal wrapped at col\numn zero\n    <<CONTROLLER_REQUEST_END>>",
        );
        assert_eq!(
            bodies(&s),
            [(
                &BlockKind::Request,
                "  indented more\nlevel\n\na row the terminal wrapped at col\numn zero"
            )]
        );
        // Tabs and trailing spaces.
        let s = scan("\t<<CONTROLLER_REQUEST>>   \n\tQ?   \n\t<<CONTROLLER_REQUEST_END>>\t");
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Q?")]);
    }

    #[test]
    fn box_borders_are_removed() {
        let lines = fixture("boxed.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(
            bodies(&s),
            [
                (
                    &BlockKind::Request,
                    "Which database should I use?\n\n  - postgres\n  - sqlite"
                ),
                (&BlockKind::Message { to: "all".into() }, "quoted message"),
            ],
            "{s:#?}"
        );
    }

    #[test]
    fn several_blocks_and_messages_on_one_screen() {
        let lines = fixture("messages.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(
            bodies(&s),
            [
                (&BlockKind::Message { to: "all".into() }, "hello everyone"),
                (
                    &BlockKind::Message {
                        to: "codex-2.worker_b".into()
                    },
                    "please review src/lib.rs"
                ),
                (&BlockKind::Request, "Can I delete the old tests?"),
                (
                    &BlockKind::Response,
                    "WORKER INSTRUCTIONS:\nYes, delete them.\nNOTES:\nthey were flaky"
                ),
            ],
            "{s:#?}"
        );
        for b in &s.blocks {
            assert!(lines[b.rows.start].contains("<<"));
            assert!(lines[b.rows.end - 1].contains("_END>>"));
        }
        // Malformed message markers are text.
        for bad in [
            "<<MESSAGE>>",
            "<<MESSAGE to=>>",
            "<<MESSAGE to=a b>>",
            "<<MESSAGE to=a/b>>",
            "<<MESSAGEto=a>>",
        ] {
            let s = scan(&format!("{bad}\nx\n<<MESSAGE_END>>"));
            assert!(s.blocks.is_empty() && s.open.is_none(), "{bad}");
        }
        assert_eq!(
            bodies(&scan("<<MESSAGE  to=bob >>\nhi\n<<MESSAGE_END>>")),
            [(&BlockKind::Message { to: "bob".into() }, "hi")]
        );
    }

    #[test]
    fn echoed_input_is_found_like_any_block() {
        // The bridge's own typed text, echoed by Codex as `› …`: found here, filtered by the
        // tracker. `<<CONTROLLER_ANSWER>>` is not a marker.
        let lines = fixture("codex-echo.txt");
        let s = find_blocks(&lines, &Limits::default());
        assert_eq!(
            bodies(&s),
            [
                (&BlockKind::Request, "(your question)"),
                (&BlockKind::Request, "Should I proceed?"),
                (
                    &BlockKind::Response,
                    "WORKER INSTRUCTIONS:\nRun the tests first."
                ),
            ],
            "{s:#?}"
        );
    }

    #[test]
    fn other_double_angle_markers_are_text() {
        // A pasted `<<CONTROLLER_ANSWER>>` wrapper echoed by Codex: not one of ours.
        let s = find_blocks(
            &fixture("codex-keys-multi-500ms-idle.txt"),
            &Limits::default(),
        );
        assert_eq!(s.blocks.len(), 2, "{s:#?}");
        assert!(s.blocks.iter().all(|b| b.body == "Should I proceed?"));
        assert!(s.open.is_none() && s.capped.is_empty());
    }

    #[test]
    fn unterminated_block_at_the_bottom_is_open() {
        let s = scan("• text\n  <<CONTROLLER_REQUEST>>\n  first row\n  second row");
        assert!(s.blocks.is_empty());
        assert_eq!(
            s.open,
            Some(Unterminated {
                kind: BlockKind::Request,
                start_row: 1,
                lines: 2,
                bytes: "  first row\n  second row\n".len(),
            })
        );
        // A new start abandons the open block: reported as capped.
        let s =
            scan("<<MESSAGE to=x>>\nlost\n<<CONTROLLER_REQUEST>>\nQ?\n<<CONTROLLER_REQUEST_END>>");
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Q?")]);
        assert_eq!(s.capped.len(), 1);
        assert_eq!(s.capped[0].kind, BlockKind::Message { to: "x".into() });
        assert_eq!((s.capped[0].start_row, s.capped[0].lines), (0, 1));
    }

    #[test]
    fn over_the_limits_is_capped_and_scanning_goes_on() {
        let limits = Limits {
            max_bytes: 1000,
            max_lines: 5,
        };
        let mut text = String::from("<<CONTROLLER_REQUEST>>\n");
        for i in 0..20 {
            text.push_str(&format!("row {i}\n"));
        }
        text.push_str("<<CONTROLLER_REQUEST_END>>\n<<MESSAGE to=all>>\nafter\n<<MESSAGE_END>>");
        let s = find_blocks(&lines(&text), &limits);
        assert_eq!(s.capped.len(), 1, "{s:#?}");
        assert_eq!(s.capped[0].start_row, 0);
        assert_eq!(s.capped[0].lines, 6);
        assert_eq!(
            bodies(&s),
            [(&BlockKind::Message { to: "all".into() }, "after")]
        );
        assert!(s.open.is_none());

        // By bytes: one huge row.
        let huge = format!("<<CONTROLLER_REQUEST>>\n{}\nmore\n", "x".repeat(5000));
        let s = find_blocks(&lines(&huge), &limits);
        assert_eq!(s.capped.len(), 1);
        assert_eq!(s.capped[0].bytes, 5001);
        assert!(s.open.is_none() && s.blocks.is_empty());

        // The default limits hold an unterminated block of 100 000 rows to 501.
        let mut big = vec!["<<CONTROLLER_REQUEST>>".to_owned()];
        big.extend((0..100_000).map(|i| format!("row {i}")));
        let s = find_blocks(&big, &Limits::default());
        assert_eq!(s.capped.len(), 1);
        assert_eq!(s.capped[0].lines, 501);
        assert!(s.open.is_none());
    }

    #[test]
    fn empty_blocks_are_skipped() {
        let s = scan("• The markers:\n  <<CONTROLLER_REQUEST>>\n\n  <<CONTROLLER_REQUEST_END>>");
        assert_eq!(s, Scan::default());
    }

    #[test]
    fn escapes_in_rows_are_stripped() {
        let s = scan("\x1b[2m• \x1b[0m<<CONTROLLER_REQUEST>>\n  \x1b[1mQ?\x1b[0m\n\x1b[38;5;1m  <<CONTROLLER_REQUEST_END>>");
        assert_eq!(bodies(&s), [(&BlockKind::Request, "Q?")]);
    }

    #[test]
    fn fixture_screens_with_ansi_codes() {
        // The classifier's fixtures are `capture-pane -e` screens.
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/screens/claude_after_approval_idle.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let s = find_blocks(&lines(&text), &Limits::default());
        assert!(s.blocks.len() >= 2, "{s:#?}");
        assert!(s.blocks.iter().all(|b| b.body == "Should I proceed?"));
    }

    #[test]
    fn parse_response_with_and_without_headings() {
        let r = parse_response(
            "WORKER INSTRUCTIONS:\nRun the tests.\nThen commit.\nNOTES:\nThe worker was unsure.\n",
        );
        assert_eq!(r.instructions, "Run the tests.\nThen commit.");
        assert_eq!(r.notes.as_deref(), Some("The worker was unsure."));

        let r = parse_response("Just proceed.\n\nThanks.");
        assert_eq!(
            r,
            Response {
                instructions: "Just proceed.\n\nThanks.".into(),
                notes: None
            }
        );

        let r = parse_response("WORKER INSTRUCTIONS: proceed with plan B\n");
        assert_eq!(r.instructions, "proceed with plan B");
        assert_eq!(r.notes, None);

        // Markdown marks, other case, empty notes.
        let r = parse_response("## **Worker Instructions:**\n  - do it\nNOTES:\n\n");
        assert_eq!(r.instructions, "- do it");
        assert_eq!(r.notes, None);

        // Only notes: what comes before is the instruction.
        let r = parse_response("Go ahead.\nNOTES: low risk");
        assert_eq!(r.instructions, "Go ahead.");
        assert_eq!(r.notes.as_deref(), Some("low risk"));

        // Notes first, text before the instructions heading kept as notes.
        let r = parse_response("Preamble.\nNOTES:\nn1\nWORKER INSTRUCTIONS:\ni1");
        assert_eq!(r.instructions, "i1");
        assert_eq!(r.notes.as_deref(), Some("Preamble.\n\nn1"));

        // "Notes:" in a sentence of the instructions does not cut them.
        let r =
            parse_response("WORKER INSTRUCTIONS:\nNotes: keep them short.\nWORKER INSTRUCTIONSX");
        assert_eq!(
            r.instructions,
            "Notes: keep them short.\nWORKER INSTRUCTIONSX"
        );
        // Not headings.
        let r = parse_response("WORKER INSTRUCTIONS are below\nNOTESTAKER: x");
        assert_eq!(
            r.instructions,
            "WORKER INSTRUCTIONS are below\nNOTESTAKER: x"
        );
        assert_eq!(r.notes, None);
        assert_eq!(parse_response("").instructions, "");
    }

    #[test]
    fn normalize_and_block_text() {
        assert_eq!(normalize("  a\n\n b\t c \r\n"), "a b c");
        assert_eq!(normalize(" \n "), "");
        assert_eq!(
            block_text(&BlockKind::Request, "Q?"),
            "<<CONTROLLER_REQUEST>>\nQ?\n<<CONTROLLER_REQUEST_END>>"
        );
        assert_eq!(
            block_text(&BlockKind::Message { to: "all".into() }, "hi"),
            "<<MESSAGE to=all>>\nhi\n<<MESSAGE_END>>"
        );
        // A canonical block text reads back as itself.
        for kind in [
            BlockKind::Request,
            BlockKind::Response,
            BlockKind::Message { to: "w-1".into() },
        ] {
            let s = scan(&block_text(&kind, "line one\n  line two"));
            assert_eq!(bodies(&s), [(&kind, "line one\n  line two")]);
        }
    }

    #[test]
    fn odd_rows_do_not_panic() {
        for text in [
            ">>",
            "<<",
            "<<MESSAGE>>",
            "<<MESSAGE to=é>>",
            "│",
            "│ <<CONTROLLER_REQUEST>> │\n│",
            "   99999999999 <<CONTROLLER_REQUEST>>\n 1\n<<CONTROLLER_REQUEST_END>>",
            "> <<CONTROLLER_REQUEST>>\n>\n> é\n<<CONTROLLER_REQUEST_END>>",
            "\u{9b}<<CONTROLLER_REQUEST>>\n\x1b",
            "• <<CONTROLLER_REQUEST>>\n•\n<<CONTROLLER_REQUEST_END>>",
        ] {
            let _ = scan(text);
        }
    }

    proptest::proptest! {
        #[test]
        fn find_blocks_never_panics_and_stays_in_bounds(
            rows in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("(?s).{0,40}").unwrap(),
                    proptest::string::string_regex("[ │>•✦0-9]{0,4}<<(CONTROLLER_(REQUEST|RESPONSE)(_END)?|MESSAGE( to=[a-z.]{0,3})?|MESSAGE_END)>>[ │]{0,2}").unwrap(),
                    proptest::string::string_regex("[ \t│┃>]{0,3}[a-z ?]{0,12}").unwrap(),
                ],
                0..40,
            ),
            max_lines in 0usize..8,
            max_bytes in 0usize..200,
        ) {
            let limits = Limits { max_bytes, max_lines };
            let s = find_blocks(&rows, &limits);
            let mut last_end = 0;
            for b in &s.blocks {
                proptest::prop_assert!(b.rows.start < b.rows.end && b.rows.end <= rows.len());
                proptest::prop_assert!(b.rows.start >= last_end);
                proptest::prop_assert!(!b.body.is_empty());
                last_end = b.rows.end;
            }
            for u in s.capped.iter().chain(&s.open) {
                proptest::prop_assert!(u.start_row < rows.len());
                proptest::prop_assert!(u.lines <= max_lines + 1);
                proptest::prop_assert!(u.start_row + u.lines < rows.len() + 1);
            }
        }
    }
}
