//! The sim-agent's interpreter: runs a script's steps, keeps the agent's state (idle, busy,
//! asking; the composer; the queue of inputs), reacts to keys and draws through [`Screen`].
//! It reads only its keyboard events and writes only to standard output and the log.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::script::{expand, DurRange, Step};
use super::term::{self, Event};
use super::ui::{self, Region, Screen, SimLook, TLine};

/// Why the script stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    Exit(u8),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Busy,
    Asking,
}

struct Menu {
    command: Option<String>,
    selected: usize,
    answer: Option<bool>,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// The working line and the spinner are redrawn this often.
const BUSY_FRAME: Duration = Duration::from_millis(200);
/// The tui look repaints at least this often, changed or not.
const TUI_FRAME: Duration = Duration::from_millis(300);
/// Longest nap in the event loop (signals are looked at in between).
const MAX_NAP: Duration = Duration::from_millis(250);
const QUEUE_SHOWN: usize = 5;

pub(super) struct Agent {
    name: String,
    look: SimLook,
    screen: Screen,
    rx: mpsc::Receiver<Event>,
    log: Option<File>,
    rng: u64,
    vars: HashMap<String, String>,
    /// Submitted inputs no `wait` has taken yet.
    queue: VecDeque<String>,
    /// The text in the composer.
    input: String,
    mode: Mode,
    busy_label: &'static str,
    streaming: bool,
    turn_start: Instant,
    interrupted: bool,
    menu: Option<Menu>,
    gutter: String,
    pub(super) failures: usize,
    submitted: u64,
    taken: u64,
    dirty: bool,
    last_draw: Option<Instant>,
    spin: usize,
}

impl Agent {
    pub(super) fn new(
        name: String,
        look: SimLook,
        rx: mpsc::Receiver<Event>,
        log: Option<File>,
        seed: u64,
    ) -> Agent {
        let mut vars = HashMap::new();
        vars.insert("NAME".to_owned(), name.clone());
        vars.insert("N".to_owned(), "0".to_owned());
        Agent {
            name,
            look,
            screen: Screen::new(look),
            rx,
            log,
            rng: seed | 1,
            vars,
            queue: VecDeque::new(),
            input: String::new(),
            mode: Mode::Busy,
            busy_label: "Working",
            streaming: false,
            turn_start: Instant::now(),
            interrupted: false,
            menu: None,
            gutter: "•".to_owned(),
            failures: 0,
            submitted: 0,
            taken: 0,
            dirty: true,
            last_draw: None,
            spin: 0,
        }
    }

    pub(super) fn banner(&mut self, source: &str) {
        self.screen.push_item(vec![
            TLine::new(
                format!(
                    ">_ sim-agent {} · macs-bridge {}",
                    self.name,
                    env!("CARGO_PKG_VERSION")
                ),
                3,
            ),
            TLine::new(format!("   script: {source}"), 3),
        ]);
    }

    // -----------------------------------------------------------------------------------------
    // Steps.

    pub(super) fn exec(&mut self, steps: &[Step]) -> Result<(), Stop> {
        for step in steps {
            match step {
                Step::Reply { lines } => {
                    let lines = self.expand_lines(lines);
                    self.reply(lines);
                }
                Step::Raw { text } => {
                    let text = self.expand(text);
                    for l in text.split('\n') {
                        self.screen.push_line(TLine::new(l, 0));
                    }
                    self.dirty = true;
                }
                Step::Request { lines } => self.block(
                    "<<CONTROLLER_REQUEST>>".into(),
                    lines,
                    "<<CONTROLLER_REQUEST_END>>",
                ),
                Step::Respond { lines } => self.block(
                    "<<CONTROLLER_RESPONSE>>".into(),
                    lines,
                    "<<CONTROLLER_RESPONSE_END>>",
                ),
                Step::Message { to, lines } => {
                    let open = format!("<<MESSAGE to={}>>", self.expand(to));
                    self.block(open, lines, "<<MESSAGE_END>>");
                }
                Step::Busy { dur, label } => self.busy(*dur, label)?,
                Step::Stream { dur, lines } => self.stream(*dur, lines)?,
                Step::Wait { timeout } => self.wait(*timeout)?,
                Step::Expect {
                    var,
                    re,
                    source,
                    line,
                } => {
                    if !self.matches(var, re) {
                        self.failures += 1;
                        let got = self.vars.get(var).cloned().unwrap_or_default();
                        self.screen.push_item(vec![TLine::new(
                            format!("✗ expected ${var} to match {source} (script line {line}), got {got:?}"),
                            2,
                        )]);
                        self.dirty = true;
                    }
                }
                Step::If {
                    var,
                    re,
                    then,
                    otherwise,
                } => {
                    if self.matches(var, re) {
                        self.exec(then)?;
                    } else {
                        self.exec(otherwise)?;
                    }
                }
                Step::Ask { command } => {
                    let command = command.as_ref().map(|c| self.expand(c));
                    self.ask(command)?;
                }
                Step::Repeat { count, body } => {
                    let outer = self.vars.get("ITER").cloned();
                    let mut i: u64 = 0;
                    while count.is_none_or(|n| i < n) {
                        i += 1;
                        self.vars.insert("ITER".to_owned(), i.to_string());
                        self.poll_now()?;
                        self.exec(body)?;
                    }
                    match outer {
                        Some(v) => self.vars.insert("ITER".to_owned(), v),
                        None => self.vars.remove("ITER"),
                    };
                }
                Step::OnInput { body } => loop {
                    self.wait(None)?;
                    self.exec(body)?;
                },
                Step::Set { var, value } => {
                    let v = self.expand(value);
                    self.vars.insert(var.clone(), v);
                }
                Step::Gutter { glyph } => self.gutter = self.expand(glyph),
                Step::Exit { code } => return Err(Stop::Exit(*code)),
            }
        }
        Ok(())
    }

    fn expand(&self, t: &str) -> String {
        expand(t, &self.vars)
    }

    fn expand_lines(&self, lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .flat_map(|l| {
                self.expand(l)
                    .split('\n')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// A reply item: the gutter before the first line, two spaces before the others.
    fn reply_lines(&self, lines: Vec<String>) -> Vec<TLine> {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let text = match (i, l.is_empty()) {
                    (0, _) => format!("{} {l}", self.gutter),
                    (_, true) => String::new(),
                    _ => format!("  {l}"),
                };
                TLine::new(text, 2)
            })
            .collect()
    }

    fn reply(&mut self, lines: Vec<String>) {
        let item = self.reply_lines(lines);
        self.screen.push_item(item);
        self.dirty = true;
    }

    fn block(&mut self, open: String, body: &[String], close: &str) {
        let mut lines = vec![open];
        lines.extend(self.expand_lines(body));
        lines.push(close.to_owned());
        self.reply(lines);
    }

    /// Matches `$var` against `re`; on a match, `$0`…`$9` and named groups are set.
    fn matches(&mut self, var: &str, re: &Regex) -> bool {
        let value = self.vars.get(var).cloned().unwrap_or_default();
        let Some(caps) = re.captures(&value) else {
            return false;
        };
        for i in 0..10 {
            let v = caps.get(i).map_or("", |m| m.as_str()).to_owned();
            self.vars.insert(i.to_string(), v);
        }
        for name in re.capture_names().flatten() {
            let v = caps.name(name).map_or("", |m| m.as_str()).to_owned();
            self.vars.insert(name.to_owned(), v);
        }
        true
    }

    fn pick(&mut self, d: DurRange) -> Duration {
        if d.max <= d.min {
            return d.min;
        }
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
        d.min + (d.max - d.min).mul_f64(frac)
    }

    fn busy(&mut self, dur: DurRange, label: &'static str) -> Result<(), Stop> {
        let end = Instant::now() + self.pick(dur);
        self.mode = Mode::Busy;
        self.busy_label = label;
        self.dirty = true;
        let result = self.until(end).map(|_| ());
        self.busy_label = "Working";
        result
    }

    /// Spends the time until `end` busy; an interrupt ends it early with `■ Interrupted`.
    /// True when it was interrupted.
    fn until(&mut self, end: Instant) -> Result<bool, Stop> {
        loop {
            if self.take_interrupt() {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            self.pump(Some(end))?;
        }
    }

    fn take_interrupt(&mut self) -> bool {
        if !std::mem::take(&mut self.interrupted) {
            return false;
        }
        self.screen.push_item(vec![TLine::new("■ Interrupted", 2)]);
        self.dirty = true;
        true
    }

    fn stream(&mut self, dur: DurRange, lines: &[String]) -> Result<(), Stop> {
        let lines = self.expand_lines(lines);
        let item = self.reply_lines(lines);
        let total = self.pick(dur);
        let step = total / u32::try_from(item.len().max(1)).unwrap_or(u32::MAX);
        self.mode = Mode::Busy;
        self.streaming = true;
        self.dirty = true;
        let start = Instant::now();
        let mut result = Ok(());
        for (i, line) in item.into_iter().enumerate() {
            if i == 0 {
                self.screen.push_item(vec![line]);
            } else {
                self.screen.push_line(line);
            }
            self.dirty = true;
            let next = start + step * u32::try_from(i + 1).unwrap_or(u32::MAX);
            match self.until(next) {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.streaming = false;
        self.dirty = true;
        result
    }

    fn wait(&mut self, timeout: Option<DurRange>) -> Result<(), Stop> {
        self.mode = Mode::Idle;
        self.dirty = true;
        let deadline = timeout.map(|d| Instant::now() + self.pick(d));
        loop {
            if let Some(text) = self.queue.pop_front() {
                self.take(text);
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.vars.insert("INPUT".to_owned(), String::new());
                self.vars.insert("REQUEST".to_owned(), String::new());
                break;
            }
            self.pump(deadline)?;
        }
        self.mode = Mode::Busy;
        self.turn_start = Instant::now();
        self.dirty = true;
        Ok(())
    }

    /// An input is taken: it becomes `$INPUT` and is echoed.
    fn take(&mut self, text: String) {
        self.taken += 1;
        self.vars.insert("N".to_owned(), self.taken.to_string());
        self.vars.insert("REQUEST".to_owned(), request_text(&text));
        let echo = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| {
                TLine::new(
                    if i == 0 {
                        format!("› {l}")
                    } else {
                        format!("  {l}")
                    },
                    2,
                )
            })
            .collect();
        self.screen.push_item(echo);
        self.vars.insert("INPUT".to_owned(), text);
        self.dirty = true;
    }

    fn ask(&mut self, command: Option<String>) -> Result<(), Stop> {
        self.menu = Some(Menu {
            command,
            selected: 0,
            answer: None,
        });
        self.mode = Mode::Asking;
        self.dirty = true;
        let answer = loop {
            if let Some(a) = self.menu.as_ref().and_then(|m| m.answer) {
                break a;
            }
            self.pump(None)?;
        };
        let command = self.menu.take().and_then(|m| m.command);
        let yn = if answer { "y" } else { "n" };
        self.vars.insert("INPUT".to_owned(), yn.to_owned());
        self.write_log(serde_json::json!({ "t": now_secs(), "agent": self.name, "answer": yn }));
        let what = command.map_or_else(|| "the request".to_owned(), |c| format!("to run {c}"));
        let line = if answer {
            format!("✔ You approved {} {what}", self.name)
        } else {
            format!("✗ You did not approve {} {what}", self.name)
        };
        self.screen.push_item(vec![TLine::new(line, 2)]);
        self.mode = Mode::Busy;
        self.dirty = true;
        Ok(())
    }

    /// After the script: idle at the prompt for good, echoing inputs.
    pub(super) fn idle_forever(&mut self) -> Stop {
        self.mode = Mode::Idle;
        self.dirty = true;
        loop {
            if let Some(text) = self.queue.pop_front() {
                self.take(text);
                continue;
            }
            if let Err(stop) = self.pump(None) {
                return stop;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Events and drawing.

    /// Handles what is pending without waiting (used between rounds of a loop).
    fn poll_now(&mut self) -> Result<(), Stop> {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => self.handle(ev)?,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Err(Stop::Exit(0)),
            }
        }
        self.check_signals()?;
        self.draw_if_due()
    }

    /// Draws what changed, waits for input (until `deadline`, the next frame, or a short nap),
    /// handles everything that arrived, and draws again.
    fn pump(&mut self, deadline: Option<Instant>) -> Result<(), Stop> {
        self.draw_if_due()?;
        let now = Instant::now();
        let mut nap = MAX_NAP;
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(now));
        }
        if let (Some(every), Some(last)) = (self.frame_every(), self.last_draw) {
            nap = nap.min((last + every).saturating_duration_since(now));
        }
        match self.rx.recv_timeout(nap) {
            Ok(ev) => {
                self.handle(ev)?;
                self.poll_now()?;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Stop::Exit(0)),
        }
        self.check_signals()?;
        self.draw_if_due()
    }

    fn check_signals(&mut self) -> Result<(), Stop> {
        if let Some(sig) = term::pending_signal() {
            return Err(Stop::Exit(u8::try_from(128 + sig).unwrap_or(255)));
        }
        if term::take_resized() {
            self.dirty = true;
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event) -> Result<(), Stop> {
        self.dirty = true;
        if ev == Event::Closed {
            return Err(Stop::Exit(0));
        }
        if self.mode == Mode::Asking {
            if let Some(menu) = self.menu.as_mut() {
                match ev {
                    Event::Char('y' | 'Y' | '1') => menu.answer = Some(true),
                    Event::Char('n' | 'N' | '2') | Event::Escape | Event::Interrupt => {
                        menu.answer = Some(false)
                    }
                    Event::Up => menu.selected = 0,
                    Event::Down => menu.selected = 1,
                    Event::Enter => menu.answer = Some(menu.selected == 0),
                    _ => {}
                }
            }
            return Ok(());
        }
        match ev {
            Event::Char(c) => self.input.push(c),
            Event::Paste(s) => self.input.push_str(&s),
            Event::Newline => self.input.push('\n'),
            Event::Backspace => {
                self.input.pop();
            }
            Event::ClearLine => self.input.clear(),
            Event::Enter => self.submit(),
            Event::Interrupt | Event::Escape if self.mode == Mode::Busy => self.interrupted = true,
            Event::Interrupt => self.input.clear(),
            Event::Eof if self.input.is_empty() => return Err(Stop::Exit(0)),
            Event::Eof | Event::Escape | Event::Up | Event::Down | Event::Closed => {}
        }
        Ok(())
    }

    fn submit(&mut self) {
        let raw = std::mem::take(&mut self.input);
        let text = raw.trim_end().trim_start_matches(['\n', '\r']).to_owned();
        if text.trim().is_empty() {
            return;
        }
        self.submitted += 1;
        let mut entry = serde_json::json!({
            "t": now_secs(),
            "agent": self.name,
            "n": self.submitted,
            "input": text,
            "queued": self.mode != Mode::Idle,
        });
        if raw != text {
            entry["raw"] = serde_json::Value::String(raw);
        }
        self.write_log(entry);
        self.queue.push_back(text);
    }

    fn write_log(&mut self, entry: serde_json::Value) {
        if let Some(f) = self.log.as_mut() {
            // A log that cannot be written must not take the agent down: tests see it missing.
            let _ = writeln!(f, "{entry}").and_then(|()| f.flush());
        }
    }

    /// How often the screen is redrawn without a change.
    fn frame_every(&self) -> Option<Duration> {
        match (self.mode, self.look) {
            (Mode::Busy, _) => Some(BUSY_FRAME),
            (_, SimLook::Tui) => Some(TUI_FRAME),
            _ => None,
        }
    }

    fn draw_if_due(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        let timer = match (self.frame_every(), self.last_draw) {
            (Some(every), Some(last)) => now.duration_since(last) >= every,
            _ => false,
        };
        if !(self.dirty || timer || self.last_draw.is_none()) {
            return Ok(());
        }
        if self.mode == Mode::Busy && timer {
            self.spin += 1;
        }
        let (cols, rows) = term::size();
        let region = self.region(cols);
        let title = self.title();
        let mut bytes = self.screen.title(&title);
        bytes.push_str(&self.screen.draw(&region, cols, rows));
        let mut out = io::stdout().lock();
        out.write_all(bytes.as_bytes())?;
        out.flush()?;
        self.dirty = false;
        self.last_draw = Some(now);
        Ok(())
    }

    fn title(&self) -> String {
        match self.mode {
            Mode::Idle => self.name.clone(),
            Mode::Busy => format!("{} {}", SPINNER[self.spin % SPINNER.len()], self.name),
            Mode::Asking => format!("[ ! ] Action Required | {}", self.name),
        }
    }

    /// The live region at the bottom: working line, queue, composer or menu, footer.
    fn region(&self, cols: usize) -> Region {
        let footer = format!("  sim-agent {} · ? for shortcuts", self.name);
        let mut rows = vec![String::new()];
        if let (Mode::Asking, Some(menu)) = (self.mode, self.menu.as_ref()) {
            rows.push("  Would you like to run the following command?".into());
            rows.push(String::new());
            if let Some(c) = &menu.command {
                for (i, l) in c.split('\n').enumerate() {
                    rows.push(format!("  {} {l}", if i == 0 { "$" } else { " " }));
                }
                rows.push(String::new());
            }
            let first = rows.len();
            for (i, opt) in ["1. Yes, proceed (y)", "2. No (esc)"].iter().enumerate() {
                let mark = if i == menu.selected { "›" } else { " " };
                rows.push(format!("{mark} {opt}"));
            }
            rows.push(String::new());
            rows.push("  Press enter to confirm or esc to cancel".into());
            rows.push(String::new());
            rows.push(footer);
            return Region {
                cursor: (first + menu.selected, 0),
                rows,
            };
        }
        if self.mode == Mode::Busy {
            if !self.streaming {
                rows.push(format!(
                    "• {} ({} • esc to interrupt)",
                    self.busy_label,
                    elapsed(self.turn_start.elapsed())
                ));
            }
            for q in self.queue.iter().take(QUEUE_SHOWN) {
                let mut lines = q.lines();
                let first = lines.next().unwrap_or("");
                let more = lines.count();
                let more = if more > 0 {
                    format!(" (+{more} lines)")
                } else {
                    String::new()
                };
                rows.push(ui::truncate(
                    &format!("  ↳ queued: {first}{more}"),
                    cols.saturating_sub(2),
                ));
            }
            if self.queue.len() > QUEUE_SHOWN {
                rows.push(format!("  ↳ … and {} more", self.queue.len() - QUEUE_SHOWN));
            }
            if rows.len() > 1 {
                rows.push(String::new());
            }
        }
        let mut cursor = (rows.len(), 2);
        for (i, l) in self.input.split('\n').enumerate() {
            cursor = (rows.len(), 2 + ui::str_width(l));
            rows.push(format!("{} {l}", if i == 0 { "›" } else { " " }));
        }
        rows.push(String::new());
        rows.push(footer);
        Region { rows, cursor }
    }

    /// Leaves the screen: the last frame for the plain look.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        let (cols, _) = term::size();
        let bytes = self.screen.finish(cols);
        let mut out = io::stdout().lock();
        out.write_all(bytes.as_bytes())?;
        out.flush()
    }
}

/// `5s`, `1m 05s`.
fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}

/// The text between `<<CONTROLLER_REQUEST>>` and `<<CONTROLLER_REQUEST_END>>` (the last such
/// pair), else all of `input`; trimmed.
fn request_text(input: &str) -> String {
    const OPEN: &str = "<<CONTROLLER_REQUEST>>";
    const CLOSE: &str = "<<CONTROLLER_REQUEST_END>>";
    if let Some(end) = input.rfind(CLOSE) {
        if let Some(start) = input[..end].rfind(OPEN) {
            return input[start + OPEN.len()..end].trim().to_owned();
        }
    }
    input.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text_is_cut_from_a_wrapper() {
        let wrapper = "A worker asks:\n<<CONTROLLER_REQUEST>>\nShould I refactor?\n<<CONTROLLER_REQUEST_END>>\nAnswer with a block.";
        assert_eq!(request_text(wrapper), "Should I refactor?");
        assert_eq!(request_text("  plain question "), "plain question");
        assert_eq!(
            request_text("<<CONTROLLER_REQUEST_END>> x"),
            "<<CONTROLLER_REQUEST_END>> x"
        );
    }

    #[test]
    fn elapsed_reads_like_codex() {
        assert_eq!(elapsed(Duration::from_millis(5900)), "5s");
        assert_eq!(elapsed(Duration::from_secs(65)), "1m 05s");
    }
}
