//! The sim-agent script language: parsing and checking only (no terminal, no clock, no I/O).
//!
//! The language is documented in [`crate::sim`] and `examples/sim/README.md`. Every error names
//! the line it was found on (for a block that is never closed: the line that opened it).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regex::{Regex, RegexBuilder};

/// A parsed script.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// `name NAME`: the agent's name (title, footer); `--name` beats it.
    pub name: Option<String>,
    /// `log FILE`: where submitted inputs are appended as JSON lines; `--log` beats it.
    pub log: Option<PathBuf>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Text with `$VAR` references, expanded when the step runs.
pub type Template = String;

/// One step of a script. `line` is the script line it came from.
#[derive(Debug, Clone)]
pub enum Step {
    /// `say TEXT`, `reply … end`: a reply item (`• ` before its first line, two spaces before
    /// the others).
    Reply { lines: Vec<Template> },
    /// `raw TEXT`: one line printed as it is, without gutter or indent.
    Raw { text: Template },
    /// `request … end` / `request TEXT`: a `<<CONTROLLER_REQUEST>>` block as a reply item.
    Request { lines: Vec<Template> },
    /// `respond … end` / `respond TEXT`: a `<<CONTROLLER_RESPONSE>>` block as a reply item.
    Respond { lines: Vec<Template> },
    /// `message TO … end` / `message TO TEXT`: a `<<MESSAGE to=TO>>` block as a reply item.
    Message { to: Template, lines: Vec<Template> },
    /// `busy DUR` / `think DUR`: the working line for that long (interruptible).
    Busy { dur: DurRange, label: &'static str },
    /// `stream DUR … end`: a reply item whose lines appear one by one over DUR, with no working
    /// line on screen (the title spinner stays), as Codex does while it streams an answer.
    Stream { dur: DurRange, lines: Vec<Template> },
    /// `wait [TIMEOUT]`: go idle until one input is submitted (or the timeout passes: `$INPUT`
    /// is then empty).
    Wait { timeout: Option<DurRange> },
    /// `expect [$VAR] /RE/`: the variable (default `$INPUT`) must match.
    Expect {
        var: String,
        re: Regex,
        source: String,
        line: usize,
    },
    /// `if [$VAR] /RE/ … [else …] end`.
    If {
        var: String,
        re: Regex,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
    /// `ask [COMMAND]`: the approval menu until answered; `$INPUT` becomes `y` or `n`.
    Ask { command: Option<Template> },
    /// `repeat N … end` (`count` Some) or `loop … end` (None).
    Repeat { count: Option<u64>, body: Vec<Step> },
    /// `on-input … end`: forever, wait for an input and run the body with it.
    OnInput { body: Vec<Step> },
    /// `set VAR TEXT`.
    Set { var: String, value: Template },
    /// `gutter GLYPH`: the glyph before a reply's first line from now on (default `•`).
    Gutter { glyph: String },
    /// `exit [CODE]`.
    Exit { code: u8 },
}

/// A duration, or a range of durations to pick from at random (`1s..3s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurRange {
    pub fn fixed(d: Duration) -> DurRange {
        DurRange { min: d, max: d }
    }
}

/// A script error: the line (1-based) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a script.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut p = Parser {
        lines: text.lines().collect(),
        pos: 0,
        script: Script::default(),
    };
    let (steps, end) = p.block(&[])?;
    if let Some(end) = end {
        // `block(&[])` only stops at EOF; kept for completeness.
        return Err(err(
            end.line,
            format!("`{}` without an open block", end.word),
        ));
    }
    p.script.steps = steps;
    Ok(p.script)
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    script: Script,
}

/// What stopped a block: `end` or `else`, and where.
struct Closer {
    word: &'static str,
    line: usize,
}

impl<'a> Parser<'a> {
    /// Parses steps until one of `closers` (`end`, `else`) or the end of the text.
    fn block(
        &mut self,
        closers: &[&'static str],
    ) -> Result<(Vec<Step>, Option<Closer>), ParseError> {
        let mut steps = Vec::new();
        while self.pos < self.lines.len() {
            let line_no = self.pos + 1;
            let line = strip_comment(self.lines[self.pos]);
            self.pos += 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (word, rest) = match line.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (line, ""),
            };
            if let Some(c) = ["end", "else"].into_iter().find(|c| *c == word) {
                if !rest.is_empty() {
                    return Err(err(line_no, format!("`{c}` takes no argument")));
                }
                return match closers.iter().find(|w| **w == c) {
                    Some(w) => Ok((
                        steps,
                        Some(Closer {
                            word: w,
                            line: line_no,
                        }),
                    )),
                    None if c == "else" => Err(err(line_no, "`else` outside an `if` block")),
                    None => Err(err(line_no, "`end` without an open block")),
                };
            }
            if let Some(step) = self.step(word, rest, line_no)? {
                steps.push(step);
            }
        }
        Ok((steps, None))
    }

    /// A control block's body, which must be closed by `end`.
    fn body(&mut self, opener: &str, line_no: usize) -> Result<Vec<Step>, ParseError> {
        match self.block(&["end"])? {
            (steps, Some(_)) => Ok(steps),
            (_, None) => Err(unclosed(opener, line_no)),
        }
    }

    /// The raw text lines of a text block, up to a line that is `end`. A line `\end` stands for
    /// a literal `end`.
    fn text_block(&mut self, opener: &str, line_no: usize) -> Result<Vec<Template>, ParseError> {
        let mut out = Vec::new();
        while self.pos < self.lines.len() {
            let raw = self.lines[self.pos].trim_end_matches('\r');
            self.pos += 1;
            match raw.trim() {
                "end" => return Ok(out),
                "\\end" => out.push("end".to_owned()),
                _ => out.push(raw.to_owned()),
            }
        }
        Err(unclosed(opener, line_no))
    }

    fn step(&mut self, word: &str, rest: &str, n: usize) -> Result<Option<Step>, ParseError> {
        let no_arg = |what: &str| -> Result<(), ParseError> {
            if rest.is_empty() {
                Ok(())
            } else {
                Err(err(n, format!("`{what}` takes no argument, got {rest:?}")))
            }
        };
        let need_arg = |what: &str, usage: &str| -> Result<(), ParseError> {
            if rest.is_empty() {
                Err(err(n, format!("`{what}` needs an argument: {usage}")))
            } else {
                Ok(())
            }
        };
        let step = match word {
            "name" => {
                need_arg("name", "name NAME")?;
                let name = unescape(rest);
                if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(err(n, format!("agent name {name:?} must be one word")));
                }
                self.script.name = Some(name);
                return Ok(None);
            }
            "log" => {
                need_arg("log", "log FILE")?;
                self.script.log = Some(PathBuf::from(unescape(rest)));
                return Ok(None);
            }
            "say" => Step::Reply {
                lines: split_lines(&unescape(rest)),
            },
            "reply" => {
                no_arg("reply")?;
                Step::Reply {
                    lines: self.text_block("reply", n)?,
                }
            }
            "raw" => Step::Raw {
                text: unescape(rest),
            },
            "request" => Step::Request {
                lines: self.inline_or_block("request", rest, n)?,
            },
            "respond" => {
                let lines = if rest.is_empty() {
                    self.text_block("respond", n)?
                } else {
                    let mut lines = vec!["WORKER INSTRUCTIONS:".to_owned()];
                    lines.extend(split_lines(&unescape(rest)));
                    lines
                };
                Step::Respond { lines }
            }
            "message" => {
                need_arg(
                    "message",
                    "message TO [TEXT] (without TEXT: lines up to `end`)",
                )?;
                let (to, text) = match rest.split_once(char::is_whitespace) {
                    Some((to, text)) => (to, text.trim()),
                    None => (rest, ""),
                };
                let lines = self.inline_or_block("message", text, n)?;
                Step::Message {
                    to: to.to_owned(),
                    lines,
                }
            }
            "busy" | "think" => {
                need_arg(word, &format!("{word} DURATION (500ms, 2s, 1s..3s)"))?;
                Step::Busy {
                    dur: parse_dur_range(rest).map_err(|m| err(n, m))?,
                    label: if word == "busy" {
                        "Working"
                    } else {
                        "Thinking"
                    },
                }
            }
            "stream" => {
                need_arg("stream", "stream DURATION, then the lines up to `end`")?;
                let dur = parse_dur_range(rest).map_err(|m| err(n, m))?;
                Step::Stream {
                    dur,
                    lines: self.text_block("stream", n)?,
                }
            }
            "wait" => Step::Wait {
                timeout: if rest.is_empty() {
                    None
                } else {
                    Some(parse_dur_range(rest).map_err(|m| err(n, m))?)
                },
            },
            "expect" => {
                need_arg("expect", "expect [$VAR] /REGEX/")?;
                let (var, re, source) = parse_match(rest).map_err(|m| err(n, m))?;
                Step::Expect {
                    var,
                    re,
                    source,
                    line: n,
                }
            }
            "if" => {
                need_arg("if", "if [$VAR] /REGEX/ … [else …] end")?;
                let (var, re, _) = parse_match(rest).map_err(|m| err(n, m))?;
                let (then, closer) = self.block(&["end", "else"])?;
                let otherwise = match closer {
                    None => return Err(unclosed("if", n)),
                    Some(Closer { word: "else", line }) => self.body("else", line)?,
                    Some(_) => Vec::new(),
                };
                Step::If {
                    var,
                    re,
                    then,
                    otherwise,
                }
            }
            "ask" => Step::Ask {
                command: (!rest.is_empty()).then(|| unescape(rest)),
            },
            "repeat" => {
                need_arg("repeat", "repeat N … end")?;
                let count = rest
                    .parse::<u64>()
                    .map_err(|_| err(n, format!("`repeat` needs a whole number, got {rest:?}")))?;
                Step::Repeat {
                    count: Some(count),
                    body: self.body("repeat", n)?,
                }
            }
            "loop" => {
                no_arg("loop")?;
                Step::Repeat {
                    count: None,
                    body: self.body("loop", n)?,
                }
            }
            "on-input" => {
                no_arg("on-input")?;
                Step::OnInput {
                    body: self.body("on-input", n)?,
                }
            }
            "set" => {
                let (var, value) = match rest.split_once(char::is_whitespace) {
                    Some((v, t)) => (v, t.trim()),
                    None => (rest, ""),
                };
                let var = var.strip_prefix('$').unwrap_or(var);
                if !is_var_name(var) {
                    return Err(err(
                        n,
                        format!("`set` needs a variable name (A-Z, 0-9, _), got {var:?}"),
                    ));
                }
                Step::Set {
                    var: var.to_owned(),
                    value: unescape(value),
                }
            }
            "gutter" => {
                need_arg("gutter", "gutter GLYPH (•, ⏺, ✦, │…)")?;
                Step::Gutter {
                    glyph: unescape(rest),
                }
            }
            "exit" => Step::Exit {
                code: if rest.is_empty() {
                    0
                } else {
                    rest.parse::<u8>().map_err(|_| {
                        err(
                            n,
                            format!("`exit` needs a code from 0 to 255, got {rest:?}"),
                        )
                    })?
                },
            },
            other => {
                return Err(err(
                    n,
                    format!(
                        "unknown directive `{other}` (known: {})",
                        DIRECTIVES.join(", ")
                    ),
                ))
            }
        };
        Ok(Some(step))
    }

    fn inline_or_block(
        &mut self,
        what: &str,
        rest: &str,
        n: usize,
    ) -> Result<Vec<Template>, ParseError> {
        if rest.is_empty() {
            self.text_block(what, n)
        } else {
            Ok(split_lines(&unescape(rest)))
        }
    }
}

const DIRECTIVES: &[&str] = &[
    "name", "log", "say", "reply", "raw", "request", "respond", "message", "busy", "think",
    "stream", "wait", "expect", "if", "else", "end", "ask", "repeat", "loop", "on-input", "set",
    "gutter", "exit",
];

fn unclosed(opener: &str, line: usize) -> ParseError {
    err(line, format!("`{opener}` block is never closed with `end`"))
}

/// A directive line without its comment: `#` at the start or after whitespace starts a comment;
/// `\#` is a literal `#` (kept escaped here, turned into `#` by [`unescape`]).
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Decodes `\n`, `\t`, `\\` and `\#` in a directive's argument; other `\x` stay as they are.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('#') => out.push('#'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn split_lines(s: &str) -> Vec<String> {
    s.split('\n').map(str::to_owned).collect()
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[$VAR] /REGEX/[flags]` → (variable, compiled regex, source as written).
fn parse_match(s: &str) -> Result<(String, Regex, String), String> {
    let (var, re) = match s.strip_prefix('$') {
        Some(rest) => {
            let (v, r) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("expected `$VAR /REGEX/`, got {s:?}"))?;
            let v = v.trim_start_matches('{').trim_end_matches('}');
            if !is_var_name(v) {
                return Err(format!("{v:?} is not a variable name"));
            }
            (v.to_owned(), r.trim())
        }
        None => ("INPUT".to_owned(), s),
    };
    Ok((var, parse_regex(re)?, re.to_owned()))
}

/// `/REGEX/` with optional flags `i`, `m`, `s`, `x` after the closing slash.
pub(crate) fn parse_regex(s: &str) -> Result<Regex, String> {
    let body = s
        .strip_prefix('/')
        .ok_or_else(|| format!("a regex is written /LIKE THIS/, got {s:?}"))?;
    let close = body
        .rfind('/')
        .ok_or_else(|| format!("the regex {s:?} has no closing `/`"))?;
    let (pattern, flags) = (&body[..close], &body[close + 1..]);
    let mut b = RegexBuilder::new(pattern);
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            other => {
                return Err(format!(
                    "unknown regex flag {other:?} in {s:?} (i, m, s, x)"
                ))
            }
        };
    }
    b.build().map_err(|e| format!("bad regex {s:?}: {e}"))
}

/// `500ms`, `2s`, `1.5s`, `2m`, `0`, or a range `1s..3s`.
pub(crate) fn parse_dur_range(s: &str) -> Result<DurRange, String> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (min, max) = (parse_dur(a.trim())?, parse_dur(b.trim())?);
            if min > max {
                return Err(format!("duration range {s:?} goes backwards"));
            }
            Ok(DurRange { min, max })
        }
        None => Ok(DurRange::fixed(parse_dur(s.trim())?)),
    }
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?} (write 500ms, 2s, 1.5s or 1m)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(bad());
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Expands `$NAME`, `${NAME}` and `$1`…`$9` from `vars` (unknown names expand to nothing);
/// `$$` is a literal `$`, and a `$` before anything else stays as it is.
pub fn expand(template: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            match r.find('}') {
                Some(close) if is_var_name(&r[..close]) || is_group(&r[..close]) => {
                    out.push_str(vars.get(&r[..close]).map_or("", String::as_str));
                    rest = &r[close + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(vars.get(&after[..1]).map_or("", String::as_str));
            rest = &after[1..];
        } else {
            let len = after
                .char_indices()
                .find(|&(j, c)| {
                    !(c.is_ascii_alphanumeric() || c == '_') || (j == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(j, _)| j);
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

fn is_group(s: &str) -> bool {
    !s.is_empty() && s.len() <= 2 && s.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> ParseError {
        parse(text).expect_err("script should be rejected")
    }

    #[test]
    fn parses_the_worker_example() {
        let s = parse(
            "# a worker\nname worker   # inline comment\nsay Hello,\\n I am \\#1.  # note\n\
             busy 2s\nrequest\nShould I refactor the parser first?\nend\nwait\n\
             expect /refactor/i\nask touch x.txt\nexit 4\n",
        )
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("worker"));
        assert_eq!(s.steps.len(), 7);
        match &s.steps[0] {
            Step::Reply { lines } => assert_eq!(lines, &["Hello,", " I am #1."]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.steps[1],
            Step::Busy { dur, label: "Working" } if dur == DurRange::fixed(Duration::from_secs(2))
        ));
        match &s.steps[2] {
            Step::Request { lines } => assert_eq!(lines, &["Should I refactor the parser first?"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.steps[3], Step::Wait { timeout: None }));
        match &s.steps[4] {
            Step::Expect { var, re, line, .. } => {
                assert_eq!(var, "INPUT");
                assert!(re.is_match("REFACTOR it"));
                assert_eq!(*line, 9);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&s.steps[5], Step::Ask { command: Some(c) } if c == "touch x.txt"));
        assert!(matches!(s.steps[6], Step::Exit { code: 4 }));
    }

    #[test]
    fn blocks_nest_and_keep_their_text() {
        let s = parse(
            "on-input\n  think 100ms..300ms\n  if /(?s)<<CONTROLLER_REQUEST>>\\n(.*)\\n<<CONTROLLER_REQUEST_END>>/\n\
             respond\nWORKER INSTRUCTIONS:\n  Go ahead with $1.   # not a comment\n\\end\nNOTES:\nend\n\
             else\nmessage all\nhi # everyone\nend\nend\nend\nrepeat 2\nloop\nwait 1s\nend\nend\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 2);
        let Step::OnInput { body } = &s.steps[0] else {
            panic!("{:?}", s.steps[0])
        };
        assert!(matches!(body[0], Step::Busy { label: "Thinking", dur } if dur.min < dur.max));
        let Step::If {
            then, otherwise, ..
        } = &body[1]
        else {
            panic!("{:?}", body[1])
        };
        match &then[0] {
            Step::Respond { lines } => assert_eq!(
                lines,
                &[
                    "WORKER INSTRUCTIONS:",
                    "  Go ahead with $1.   # not a comment",
                    "end",
                    "NOTES:"
                ]
            ),
            other => panic!("{other:?}"),
        }
        match &otherwise[0] {
            Step::Message { to, lines } => {
                assert_eq!(to, "all");
                assert_eq!(lines, &["hi # everyone"]);
            }
            other => panic!("{other:?}"),
        }
        let Step::Repeat {
            count: Some(2),
            body,
        } = &s.steps[1]
        else {
            panic!("{:?}", s.steps[1])
        };
        assert!(matches!(&body[0], Step::Repeat { count: None, body } if body.len() == 1));
    }

    #[test]
    fn inline_forms() {
        let s =
            parse("request Shall I?\nrespond Yes.\\nGo.\nmessage bob hi there\nlog /tmp/x.jsonl\n")
                .unwrap();
        assert_eq!(s.log, Some(PathBuf::from("/tmp/x.jsonl")));
        assert!(matches!(&s.steps[0], Step::Request { lines } if lines == &["Shall I?"]));
        assert!(
            matches!(&s.steps[1], Step::Respond { lines } if lines == &["WORKER INSTRUCTIONS:", "Yes.", "Go."])
        );
        assert!(
            matches!(&s.steps[2], Step::Message { to, lines } if to == "bob" && lines == &["hi there"])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("say hi\nsya hi\n", 2, "unknown directive `sya`"),
            ("say a\n\nbusy\n", 3, "needs an argument"),
            ("busy 2 seconds\n", 1, "bad duration"),
            ("busy 3s..1s\n", 1, "backwards"),
            ("wait\nexpect refactor\n", 2, "/LIKE THIS/"),
            ("expect /(unclosed/\n", 1, "bad regex"),
            ("expect /a/q\n", 1, "unknown regex flag"),
            ("say a\nrequest\nno end here\n", 2, "never closed"),
            ("repeat 2\nsay a\n", 1, "`repeat` block is never closed"),
            (
                "if /a/\nsay a\nelse\nsay b\n",
                3,
                "`else` block is never closed",
            ),
            ("say a\nend\n", 2, "`end` without an open block"),
            ("else\n", 1, "`else` outside an `if`"),
            ("repeat many\nend\n", 1, "whole number"),
            ("loop forever\nend\n", 1, "takes no argument"),
            ("exit 300\n", 1, "0 to 255"),
            ("name two words\n", 1, "one word"),
            ("set 1x y\n", 1, "variable name"),
            ("message\n", 1, "message TO"),
            ("on-input\nend x\n", 2, "takes no argument"),
        ];
        for (text, line, needle) in cases {
            let e = parse_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn durations() {
        let d = |s| parse_dur_range(s).unwrap();
        assert_eq!(d("500ms"), DurRange::fixed(Duration::from_millis(500)));
        assert_eq!(d("1.5s"), DurRange::fixed(Duration::from_millis(1500)));
        assert_eq!(d("2m"), DurRange::fixed(Duration::from_secs(120)));
        assert_eq!(d("0"), DurRange::fixed(Duration::ZERO));
        assert_eq!(
            d("1s..3s"),
            DurRange {
                min: Duration::from_secs(1),
                max: Duration::from_secs(3)
            }
        );
        for bad in ["", "s", "-1s", "1h", "1e9s", "NaNs"] {
            assert!(parse_dur_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expansion() {
        let vars: HashMap<String, String> = [
            ("INPUT", "a\nb"),
            ("1", "one"),
            ("who", "bob"),
            ("X_2", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(expand("got $INPUT!", &vars), "got a\nb!");
        assert_eq!(expand("$1-${who}-$X_2.$UNSET.", &vars), "one-bob-x..");
        assert_eq!(expand("cost $$5, $ alone, $", &vars), "cost $5, $ alone, $");
        assert_eq!(expand("${not closed", &vars), "${not closed");
        assert_eq!(expand("$12", &vars), "one2");
        assert_eq!(expand("ünïcode $who ✓", &vars), "ünïcode bob ✓");
    }

    #[test]
    fn comments() {
        assert_eq!(strip_comment("say a # b"), "say a ");
        assert_eq!(strip_comment("say issue#3"), "say issue#3");
        assert_eq!(strip_comment("say \\# not"), "say \\# not");
        assert_eq!(strip_comment("# all"), "");
    }
}
