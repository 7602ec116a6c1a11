//! The sim-agent's terminal: raw mode and its restoration (on exit, on signals, on panic), the
//! terminal size, and the keyboard: bytes from standard input decoded into [`Event`]s by a pure
//! [`Decoder`] on a reader thread.
//!
//! Everything that changes the terminal is undone by [`TermGuard`]'s drop and by the panic hook;
//! signals (`SIGTERM`, `SIGHUP`, `SIGINT`, `SIGQUIT`) only set a flag that the agent's loop polls,
//! so the ordinary exit path restores the terminal.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, Once};

/// Escape sequences.
pub(crate) const PASTE_ON: &str = "\x1b[?2004h";
pub(crate) const PASTE_OFF: &str = "\x1b[?2004l";
pub(crate) const ALT_ON: &str = "\x1b[?1049h\x1b[H\x1b[2J";
pub(crate) const ALT_OFF: &str = "\x1b[?1049l";
pub(crate) const CURSOR_SHOW: &str = "\x1b[?25h";

/// A key or input the agent reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A printable character (or tab).
    Char(char),
    /// A bracketed paste: one input, newlines included (CR and CRLF become `\n`).
    Paste(String),
    /// CR: submit.
    Enter,
    /// LF outside a paste (Ctrl-J): a newline in the input.
    Newline,
    Backspace,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D.
    Eof,
    /// Ctrl-U: clear the input.
    ClearLine,
    Escape,
    Up,
    Down,
    /// Standard input closed.
    Closed,
}

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";
/// A CSI longer than this is garbage: dropped.
const MAX_CSI: usize = 64;

/// Bytes in, events out. Keeps what it cannot decode yet (a split UTF-8 character, a partial
/// escape sequence, an open paste) for the next `feed`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Inside a bracketed paste: what it holds so far.
    paste: Option<Vec<u8>>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if let Some(paste) = self.paste.as_mut() {
                match find(&self.buf, PASTE_END) {
                    Some(i) => {
                        paste.extend_from_slice(&self.buf[..i]);
                        self.buf.drain(..i + PASTE_END.len());
                        let text = paste_text(paste);
                        self.paste = None;
                        out.push(Event::Paste(text));
                        continue;
                    }
                    None => {
                        // Keep a tail that could be the start of the end marker.
                        let keep = (1..PASTE_END.len())
                            .rev()
                            .find(|&k| self.buf.ends_with(&PASTE_END[..k]))
                            .unwrap_or(0);
                        let take = self.buf.len() - keep;
                        paste.extend_from_slice(&self.buf[..take]);
                        self.buf.drain(..take);
                        return out;
                    }
                }
            }
            let Some(&b) = self.buf.first() else {
                return out;
            };
            let used = match b {
                0x1b => match self.escape(&mut out) {
                    Some(n) => n,
                    None => return out, // need more bytes
                },
                b'\r' => {
                    out.push(Event::Enter);
                    1
                }
                b'\n' => {
                    out.push(Event::Newline);
                    1
                }
                0x7f | 0x08 => {
                    out.push(Event::Backspace);
                    1
                }
                0x03 => {
                    out.push(Event::Interrupt);
                    1
                }
                0x04 => {
                    out.push(Event::Eof);
                    1
                }
                0x15 => {
                    out.push(Event::ClearLine);
                    1
                }
                b'\t' => {
                    out.push(Event::Char('\t'));
                    1
                }
                0x00..=0x1f => 1,
                0x20..=0x7e => {
                    out.push(Event::Char(b as char));
                    1
                }
                _ => {
                    let len = utf8_len(b);
                    if self.buf.len() < len {
                        return out;
                    }
                    match std::str::from_utf8(&self.buf[..len]) {
                        Ok(s) => {
                            out.extend(s.chars().filter(|c| !c.is_control()).map(Event::Char));
                            len
                        }
                        Err(_) => {
                            out.push(Event::Char(char::REPLACEMENT_CHARACTER));
                            1
                        }
                    }
                }
            };
            self.buf.drain(..used);
        }
    }

    /// An escape sequence at the start of `buf`: how many bytes it used, or None for "need more".
    fn escape(&mut self, out: &mut Vec<Event>) -> Option<usize> {
        let buf = &self.buf;
        match buf.get(1) {
            None => None,
            Some(b'[') => {
                let end = buf[2..].iter().position(|b| (0x40..=0x7e).contains(b));
                let Some(end) = end.map(|e| e + 2) else {
                    if buf.len() > MAX_CSI {
                        return Some(buf.len());
                    }
                    return None;
                };
                let seq = &buf[..=end];
                if seq == PASTE_START {
                    self.paste = Some(Vec::new());
                } else if seq == b"\x1b[A" {
                    out.push(Event::Up);
                } else if seq == b"\x1b[B" {
                    out.push(Event::Down);
                }
                Some(end + 1)
            }
            Some(b'O') => match buf.get(2) {
                None => None,
                Some(b'A') => {
                    out.push(Event::Up);
                    Some(3)
                }
                Some(b'B') => {
                    out.push(Event::Down);
                    Some(3)
                }
                Some(_) => Some(3),
            },
            // ESC followed by anything else (another ESC, Alt-x): the Escape key, then the rest.
            Some(_) => {
                out.push(Event::Escape);
                Some(1)
            }
        }
    }

    /// True when the decoder holds an escape sequence that may be a lone Escape key.
    pub fn pending_escape(&self) -> bool {
        self.paste.is_none() && self.buf.first() == Some(&0x1b)
    }

    /// No more bytes came after a pending ESC: it was the Escape key.
    pub fn flush_escape(&mut self) -> Vec<Event> {
        if !self.pending_escape() {
            return Vec::new();
        }
        let rest: Vec<u8> = self.buf.drain(..).skip(1).collect();
        let mut out = vec![Event::Escape];
        // Whatever followed (`ESC [` with nothing more) is taken as typed text.
        for b in rest {
            if (0x20..=0x7e).contains(&b) {
                out.push(Event::Char(b as char));
            }
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// A paste's text: CRLF and CR become LF (tmux turns LF into CR unless `paste-buffer -r`);
/// control characters other than newline and tab are dropped.
fn paste_text(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    s.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Raw mode and restoration.

/// The terminal settings to put back (also used by the panic hook).
static ORIGINAL: Mutex<Option<libc::termios>> = Mutex::new(None);
/// The alternate screen is on (the panic hook leaves it).
static ALT_SCREEN: AtomicBool = AtomicBool::new(false);
/// The last terminating signal received, 0 for none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The window size changed.
static RESIZED: AtomicBool = AtomicBool::new(false);
static HOOKS: Once = Once::new();

/// Owns the terminal modes while the agent runs: raw input, bracketed paste, the alternate screen
/// (tui look). Dropping it restores all of them.
pub struct TermGuard {
    active: bool,
}

impl TermGuard {
    /// Enters raw mode (when standard input is a terminal), turns bracketed paste on and, with
    /// `alt`, switches to the alternate screen.
    pub fn enter(alt: bool) -> io::Result<TermGuard> {
        install_hooks();
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a valid, fully initialised termios.
        unsafe {
            if libc::isatty(0) == 1 {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Ok(mut saved) = ORIGINAL.lock() {
                    *saved = Some(t);
                }
                let mut raw = t;
                libc::cfmakeraw(&mut raw);
                raw.c_cc[libc::VMIN] = 1;
                raw.c_cc[libc::VTIME] = 0;
                if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        let mut out = io::stdout().lock();
        out.write_all(PASTE_ON.as_bytes())?;
        if alt {
            ALT_SCREEN.store(true, Ordering::SeqCst);
            out.write_all(ALT_ON.as_bytes())?;
        }
        out.flush()?;
        Ok(TermGuard { active: true })
    }

    /// Restores the terminal now (idempotent).
    pub fn restore(&mut self) {
        if std::mem::take(&mut self.active) {
            restore_terminal();
        }
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Puts the terminal back: bracketed paste off, cursor shown, main screen, saved termios.
fn restore_terminal() {
    let mut seq = String::from(PASTE_OFF);
    seq.push_str(CURSOR_SHOW);
    if ALT_SCREEN.swap(false, Ordering::SeqCst) {
        seq.push_str(ALT_OFF);
    }
    // Written with write(2): the stdout lock may be held by a panicking thread.
    // SAFETY: writing a valid buffer to fd 1.
    unsafe {
        libc::write(1, seq.as_ptr().cast(), seq.len());
    }
    let saved = match ORIGINAL.try_lock() {
        Ok(mut g) => g.take(),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some(t) = saved {
        // SAFETY: restoring settings tcgetattr returned for fd 0.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGWINCH {
        RESIZED.store(true, Ordering::SeqCst);
    } else {
        SIGNAL.store(sig, Ordering::SeqCst);
    }
}

fn install_hooks() {
    HOOKS.call_once(|| {
        for sig in [
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGWINCH,
        ] {
            // SAFETY: a plain handler that only stores to atomics; no SA_RESTART, so a blocked
            // read returns EINTR and the loops look at the flags.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = 0;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// The terminating signal received since start, if any.
pub fn pending_signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// True once after the window was resized.
pub fn take_resized() -> bool {
    RESIZED.swap(false, Ordering::SeqCst)
}

/// The terminal's (columns, rows); 80x24 when standard output is not a terminal.
pub fn size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0 {
            return (usize::from(ws.ws_col), usize::from(ws.ws_row));
        }
    }
    (80, 24)
}

/// How long a lone ESC waits for the rest of an escape sequence before it counts as Escape.
const ESC_TIMEOUT_MS: i32 = 30;

/// Starts the thread that reads standard input and sends decoded events. It ends (after sending
/// [`Event::Closed`]) when standard input closes or the receiver is gone.
pub fn spawn_reader() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("sim-agent-stdin".into())
        .spawn(move || read_loop(&tx));
    if spawned.is_err() {
        // Without a reader the agent still runs its script; it just never gets input.
        let (_tx, rx) = mpsc::channel();
        return rx;
    }
    rx
}

fn read_loop(tx: &mpsc::Sender<Event>) {
    let mut dec = Decoder::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer of the given length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let _ = tx.send(Event::Closed);
            return;
        }
        if n == 0 {
            let _ = tx.send(Event::Closed);
            return;
        }
        let n = usize::try_from(n).unwrap_or(0);
        for ev in dec.feed(&buf[..n]) {
            if tx.send(ev).is_err() {
                return;
            }
        }
        while dec.pending_escape() && !readable(ESC_TIMEOUT_MS) {
            for ev in dec.flush_escape() {
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    }
}

/// Does standard input have bytes within `ms` milliseconds?
fn readable(ms: i32) -> bool {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut fds, 1, ms) };
    r > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new();
        chunks.iter().flat_map(|c| d.feed(c)).collect()
    }

    #[test]
    fn keys() {
        assert_eq!(
            feed_all(&[b"hi\x7f\r\n\x03\x04\x15\t"]),
            vec![
                Event::Char('h'),
                Event::Char('i'),
                Event::Backspace,
                Event::Enter,
                Event::Newline,
                Event::Interrupt,
                Event::Eof,
                Event::ClearLine,
                Event::Char('\t'),
            ]
        );
    }

    #[test]
    fn bracketed_paste_is_one_event_even_split_anywhere() {
        let input: &[u8] = b"a\x1b[200~line 1\rline 2\r\nl\xc3\xa9ne 3\x1b[201~\r";
        let want = vec![
            Event::Char('a'),
            Event::Paste("line 1\nline 2\nl\u{e9}ne 3".into()),
            Event::Enter,
        ];
        for split in 0..input.len() {
            for split2 in split..input.len() {
                let got = feed_all(&[&input[..split], &input[split..split2], &input[split2..]]);
                assert_eq!(got, want, "split at {split}, {split2}");
            }
        }
    }

    #[test]
    fn utf8_split_and_escapes() {
        assert_eq!(
            feed_all(&[b"\xe2\x80", b"\xba", b"\x1b[A\x1bOB\x1b[1;5C"]),
            vec![Event::Char('›'), Event::Up, Event::Down]
        );
        assert_eq!(feed_all(&[b"\xff"]), vec![Event::Char('\u{fffd}')]);
    }

    #[test]
    fn lone_escape_waits_for_a_flush() {
        let mut d = Decoder::new();
        assert!(d.feed(b"\x1b").is_empty());
        assert!(d.pending_escape());
        assert_eq!(d.flush_escape(), vec![Event::Escape]);
        assert!(!d.pending_escape());
        // ESC ESC: the first is the key.
        assert_eq!(d.feed(b"\x1b\x1b"), vec![Event::Escape]);
        assert_eq!(d.flush_escape(), vec![Event::Escape]);
        // A stray paste end, and garbage CSI, are dropped.
        assert_eq!(d.feed(b"\x1b[201~x"), vec![Event::Char('x')]);
    }
}
