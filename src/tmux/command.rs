//! Typed tmux commands. Each one renders ONE control-mode command line, quoted so that every
//! argument reaches tmux exactly as given. No other module builds tmux syntax by hand.
//!
//! This module does no I/O and knows nothing of agents; it must never emit a line that holds a
//! raw control character (a newline would split the command, an empty line detaches the
//! control client).
//!
//! # How tmux reads a line (checked on tmux 3.3a, see `tests/tmux_quoting.rs`)
//! A control client's line goes through the config-file grammar (`cmd-parse.y`):
//! - inside double quotes `$VAR`, `${VAR}` and a leading `~` expand and `\` escapes;
//! - inside single quotes every byte is literal, `\` included, and there are no escapes;
//! - outside quotes `\` starts an escape: `\n`, `\t`, `\r`, `\e`, `\ooo` (octal), and `\'`
//!   stands for `'` (any other character after `\` stands for itself);
//! - outside quotes a trailing `;` separates commands, `#` at the start of a word opens a
//!   comment, `{`/`}` open and close a block, `~` and `$` expand;
//! - quoted and unquoted parts with no space between them make one word;
//! - a word that starts with `-` is a flag, quoted or not, until the first positional
//!   argument or `--`; an option's value (`-t -x`) is taken as is.
//!
//! # The quoting scheme ([`quote`])
//! Printable text (any Unicode) goes inside single quotes, where tmux expands nothing. A `'`
//! and every control character (C0, DEL, C1) are written *between* the quoted runs as a
//! backslash escape: `'` → `\'`, LF → `\n`, TAB → `\t`, CR → `\r`, ESC → `\e`, others →
//! `\ooo` per UTF-8 byte. So `it's` renders as `'it'\''s'`, `a⏎b` as `'a'\n'b'`, and the
//! empty string as `''`. Every positional argument comes after `--`. NUL cannot be carried: tmux keeps arguments as
//! C strings and cuts them at `\000`. [`quote`] writes U+FFFD in its place (visible, never a
//! silent cut); [`try_quote`] and the `try_` constructors refuse it instead.
//!
//! Formats: `send-keys`, `set-buffer` and `set-option` do not expand `#{…}` (we never pass
//! `-F`); `display-message` does, which [`Command::display_message_to_client`] neutralises.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::PaneId;

/// Why a command could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a key name [`KeyName::parse`] accepts. Holds at most 40 characters of the input.
    #[error("not a tmux key name: {0:?} (expected e.g. Enter, C-c, M-x, F5, Up, y)")]
    BadKey(String),
    /// Text with a NUL byte, which tmux cannot carry in a command argument.
    #[error("{what} contains a NUL byte, which tmux cannot carry")]
    Nul {
        /// Which argument: "buffer data", "buffer name", ...
        what: &'static str,
    },
}

/// One rendered command line, ready to write to the control client (the client adds `"\n"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    line: String,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// A tmux target: a pane id, or any target string (`macs:0.1`, `=macs:`, `@3`).
/// Always quoted when rendered, so a name can hold any character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Pane(PaneId),
    Name(String),
}

impl Target {
    /// The session called exactly `name`, as `=name:`. Unlike `=name`, this form also works
    /// where tmux expects a pane or window target (`set-option`, `display-message -t`):
    /// there tmux 3.3a answers `=name` with "no such session" or an empty result.
    pub fn session(name: &str) -> Target {
        Target::Name(format!("={name}:"))
    }

    fn push_quoted(&self, out: &mut String) {
        match self {
            Target::Pane(id) => push_quoted(out, &id.to_string()),
            Target::Name(name) => push_quoted(out, name),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pane(id) => id.fmt(f),
            Target::Name(name) => f.write_str(name),
        }
    }
}

impl From<PaneId> for Target {
    fn from(id: PaneId) -> Self {
        Target::Pane(id)
    }
}

impl From<&str> for Target {
    fn from(name: &str) -> Self {
        Target::Name(name.to_string())
    }
}

impl From<String> for Target {
    fn from(name: String) -> Self {
        Target::Name(name)
    }
}

/// A validated tmux key name for [`Command::send_keys`].
///
/// tmux types an unknown key name as literal text (`send-keys Enterr` types "Enterr"), so a
/// key name must never come from unchecked input: build one from a variant or with
/// [`KeyName::parse`], which accepts only names tmux knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyName {
    Enter,
    Escape,
    Tab,
    /// Shift-Tab.
    BTab,
    BSpace,
    Space,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    /// `C-c`
    CtrlC,
    /// `C-d`
    CtrlD,
    /// `C-j` (a line feed)
    CtrlJ,
    /// `C-m` (a carriage return, the same byte as Enter)
    CtrlM,
    /// `C-u`
    CtrlU,
    /// Any other name [`KeyName::parse`] accepted (`F5`, `y`, `C-l`, `M-Enter`, `S-Up`).
    Other(OtherKey),
}

/// A key name without a variant of its own, in tmux's spelling. Only [`KeyName::parse`]
/// makes one, so it always names a key tmux knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherKey(String);

impl OtherKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Named keys: (canonical spelling, other spellings tmux accepts). Matched without case.
const NAMED_KEYS: &[(&str, &[&str])] = &[
    ("Enter", &[]),
    ("Escape", &[]),
    ("Tab", &[]),
    ("BTab", &[]),
    ("BSpace", &[]),
    ("Space", &[]),
    ("Up", &[]),
    ("Down", &[]),
    ("Left", &[]),
    ("Right", &[]),
    ("Home", &[]),
    ("End", &[]),
    ("PPage", &["PageUp", "PgUp"]),
    ("NPage", &["PageDown", "PgDn"]),
    ("IC", &["Insert"]),
    ("DC", &["Delete"]),
];

/// Longest input [`KeyName::parse`] looks at (`C-M-S-BSpace` is 12).
const MAX_KEY_LEN: usize = 24;

impl KeyName {
    /// Parses tmux key syntax: optional `C-`, `M-`, `S-` prefixes (each at most once, any
    /// order, either case), then a named key (`Enter`, `Escape`, `Tab`, `BTab`, `BSpace`,
    /// `Space`, `Up`, `Down`, `Left`, `Right`, `Home`, `End`, `PageUp`/`PPage`/`PgUp`,
    /// `PageDown`/`NPage`/`PgDn`, `Insert`/`IC`, `Delete`/`DC`, `F1`–`F12`; any case) or one
    /// printable ASCII character. Everything else is refused, including text tmux itself
    /// would accept but that we never need (`^C`, keypad and mouse keys, non-ASCII keys).
    pub fn parse(s: &str) -> Result<KeyName, CommandError> {
        let bad = || CommandError::BadKey(s.chars().take(40).collect());
        if s.len() > MAX_KEY_LEN {
            return Err(bad());
        }
        let (mut ctrl, mut meta, mut shift) = (false, false, false);
        let mut rest = s;
        while rest.len() > 2 && rest.as_bytes()[1] == b'-' {
            let flag = match rest.as_bytes()[0] {
                b'C' | b'c' => &mut ctrl,
                b'M' | b'm' => &mut meta,
                b'S' | b's' => &mut shift,
                _ => return Err(bad()),
            };
            if *flag {
                return Err(bad());
            }
            *flag = true;
            rest = &rest[2..];
        }
        let base = Self::base_name(rest).ok_or_else(bad)?;
        let plain = !(ctrl || meta || shift);
        if plain {
            if let Some(k) = Self::unit_variant(&base) {
                return Ok(k);
            }
        }
        if ctrl && !meta && !shift {
            match base.as_str() {
                "c" => return Ok(KeyName::CtrlC),
                "d" => return Ok(KeyName::CtrlD),
                "j" => return Ok(KeyName::CtrlJ),
                "m" => return Ok(KeyName::CtrlM),
                "u" => return Ok(KeyName::CtrlU),
                _ => {}
            }
        }
        let mut name = String::with_capacity(base.len() + 6);
        for (on, prefix) in [(ctrl, "C-"), (meta, "M-"), (shift, "S-")] {
            if on {
                name.push_str(prefix);
            }
        }
        name.push_str(&base);
        Ok(KeyName::Other(OtherKey(name)))
    }

    /// The canonical spelling of a key without modifiers, if it is one we accept.
    fn base_name(s: &str) -> Option<String> {
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return c.is_ascii_graphic().then(|| c.to_string());
        }
        for (canonical, aliases) in NAMED_KEYS {
            if canonical.eq_ignore_ascii_case(s)
                || aliases.iter().any(|a| a.eq_ignore_ascii_case(s))
            {
                return Some((*canonical).to_string());
            }
        }
        let n = s.strip_prefix(['F', 'f'])?;
        let valid = !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
        match n.parse::<u8>() {
            Ok(1..=12) if valid => Some(format!("F{n}")),
            _ => None,
        }
    }

    fn unit_variant(canonical: &str) -> Option<KeyName> {
        Some(match canonical {
            "Enter" => KeyName::Enter,
            "Escape" => KeyName::Escape,
            "Tab" => KeyName::Tab,
            "BTab" => KeyName::BTab,
            "BSpace" => KeyName::BSpace,
            "Space" => KeyName::Space,
            "Up" => KeyName::Up,
            "Down" => KeyName::Down,
            "Left" => KeyName::Left,
            "Right" => KeyName::Right,
            "Home" => KeyName::Home,
            "End" => KeyName::End,
            "PPage" => KeyName::PageUp,
            "NPage" => KeyName::PageDown,
            "IC" => KeyName::Insert,
            "DC" => KeyName::Delete,
            _ => return None,
        })
    }

    /// The name as tmux spells it (`Enter`, `C-c`, `PPage`, `M-x`).
    pub fn as_str(&self) -> &str {
        match self {
            KeyName::Enter => "Enter",
            KeyName::Escape => "Escape",
            KeyName::Tab => "Tab",
            KeyName::BTab => "BTab",
            KeyName::BSpace => "BSpace",
            KeyName::Space => "Space",
            KeyName::Up => "Up",
            KeyName::Down => "Down",
            KeyName::Left => "Left",
            KeyName::Right => "Right",
            KeyName::Home => "Home",
            KeyName::End => "End",
            KeyName::PageUp => "PPage",
            KeyName::PageDown => "NPage",
            KeyName::Insert => "IC",
            KeyName::Delete => "DC",
            KeyName::CtrlC => "C-c",
            KeyName::CtrlD => "C-d",
            KeyName::CtrlJ => "C-j",
            KeyName::CtrlM => "C-m",
            KeyName::CtrlU => "C-u",
            KeyName::Other(k) => k.as_str(),
        }
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyName {
    type Err = CommandError;
    fn from_str(s: &str) -> Result<Self, CommandError> {
        KeyName::parse(s)
    }
}

/// Options of [`Command::capture_pane`]. The default captures the visible screen as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureOpts {
    /// `-e`: keep colours and attributes as escape sequences.
    pub escapes: bool,
    /// `-J`: join wrapped lines and keep trailing spaces.
    pub join: bool,
    /// `-S n`: first line; 0 is the top of the visible screen, negative lines are history.
    pub start: Option<i64>,
    /// `-E n`: last line, numbered like `start`.
    pub end: Option<i64>,
    /// `-S -`: start at the very beginning of the history (wins over `start`).
    pub from_history_start: bool,
    /// `-a`: the alternate screen. Without `quiet`, tmux fails when there is none.
    pub alternate: bool,
    /// `-q`: no error when there is no alternate screen.
    pub quiet: bool,
}

/// Which panes [`Command::list_panes`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// `-a`: every pane of the server.
    All,
    /// `-s -t '=NAME:'`: every pane of the session called exactly NAME (a bare name).
    Session(String),
    /// `-t T`: the panes of one window.
    Window(Target),
}

/// Where an option lives, for [`Command::set_option`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionScope {
    /// `-p -t T`
    Pane(Target),
    /// `-w -t T`
    Window(Target),
    /// `-t T`. A `Target::Name("=NAME")` is sent as `=NAME:` (see [`Target::session`]): tmux
    /// 3.3a resolves `-t =NAME` for `set-option` as a pane and fails.
    Session(Target),
    /// `-s`: server options.
    Server,
    /// `-g`: global session options (the defaults every session inherits).
    Global,
}

impl OptionScope {
    fn push_flags(&self, out: &mut String) {
        let (flag, target) = match self {
            OptionScope::Pane(t) => (" -p", Some(t)),
            OptionScope::Window(t) => (" -w", Some(t)),
            OptionScope::Session(t) => ("", Some(t)),
            OptionScope::Server => (" -s", None),
            OptionScope::Global => (" -g", None),
        };
        out.push_str(flag);
        match (self, target) {
            (OptionScope::Session(Target::Name(n)), _)
                if n.starts_with('=') && !n.contains(':') =>
            {
                out.push_str(" -t ");
                push_quoted(out, &format!("{n}:"));
            }
            (_, Some(t)) => {
                out.push_str(" -t ");
                t.push_quoted(out);
            }
            (_, None) => {}
        }
    }
}

/// Small builder: command name, then flags and arguments, each pushed with its quoting.
struct Line(String);

impl Line {
    fn new(name: &str) -> Self {
        Line(name.to_string())
    }
    fn flag(mut self, flag: &str) -> Self {
        self.0.push(' ');
        self.0.push_str(flag);
        self
    }
    fn flag_if(self, on: bool, flag: &str) -> Self {
        if on {
            self.flag(flag)
        } else {
            self
        }
    }
    fn arg(mut self, text: &str) -> Self {
        self.0.push(' ');
        push_quoted(&mut self.0, text);
        self
    }
    fn target(mut self, target: &Target) -> Self {
        self.0.push_str(" -t ");
        target.push_quoted(&mut self.0);
        self
    }
    fn opt_target(self, target: Option<&Target>) -> Self {
        match target {
            Some(t) => self.target(t),
            None => self,
        }
    }
    /// `--`: everything after is positional, even a word that starts with `-`.
    fn end_flags(self) -> Self {
        self.flag("--")
    }
    fn done(self) -> Command {
        Command { line: self.0 }
    }
}

impl Command {
    /// The line to send, without the trailing newline.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// A line taken as is, with no quoting: an escape hatch for tests only (for instance to
    /// send a command tmux will reject). The caller answers for its quoting; it must be one
    /// non-empty line (an empty line detaches a control client).
    pub fn raw(line: impl Into<String>) -> Self {
        Command { line: line.into() }
    }

    /// `send-keys -l -t T -- 'text'`: types `text` into the pane, every character exactly
    /// (any Unicode, tabs, newlines and other control characters included; `#{…}` is not
    /// expanded). Text with a NUL byte, which `-l` cannot carry, goes as
    /// [`Command::send_keys_hex`] instead, which is exact too.
    ///
    /// A newline in the text reaches the pane as LF (`C-j`): it may submit. Multi-line text
    /// belongs in a paste ([`Command::set_buffer`] + [`Command::paste_buffer`]).
    pub fn send_keys_literal(target: &Target, text: &str) -> Command {
        if text.contains('\0') {
            return Command::send_keys_hex(target, text.as_bytes());
        }
        Line::new("send-keys")
            .flag("-l")
            .target(target)
            .end_flags()
            .arg(text)
            .done()
    }

    /// `send-keys -H -t T 68 69`: writes these bytes to the pane as they are (any byte,
    /// NUL included; UTF-8 goes byte by byte).
    pub fn send_keys_hex(target: &Target, bytes: &[u8]) -> Command {
        let mut line = Line::new("send-keys").flag("-H").target(target).0;
        for b in bytes {
            let _ = write!(line, " {b:02x}");
        }
        Command { line }
    }

    /// `send-keys -t T -- 'Enter' 'C-c'`: presses keys by name.
    pub fn send_keys(target: &Target, keys: &[KeyName]) -> Command {
        keys.iter()
            .fold(
                Line::new("send-keys").target(target).end_flags(),
                |line, k| line.arg(k.as_str()),
            )
            .done()
    }

    /// `set-buffer -b NAME -- DATA`: stores `data` in a paste buffer exactly: newlines, tabs,
    /// any Unicode and any control character arrive as they are. A NUL byte cannot be stored
    /// this way: it becomes U+FFFD (use [`Command::try_set_buffer`] to refuse it instead).
    ///
    /// tmux 3.3a ignores `set-buffer` with empty data: it does not create (or empty) the
    /// buffer, and a later `paste-buffer -b NAME` fails with "no buffer NAME".
    pub fn set_buffer(buffer: &str, data: &str) -> Command {
        Line::new("set-buffer")
            .flag("-b")
            .arg(buffer)
            .end_flags()
            .arg(data)
            .done()
    }

    /// [`Command::set_buffer`] that refuses a NUL byte in the name or the data.
    pub fn try_set_buffer(buffer: &str, data: &str) -> Result<Command, CommandError> {
        refuse_nul(buffer, "buffer name")?;
        refuse_nul(data, "buffer data")?;
        Ok(Command::set_buffer(buffer, data))
    }

    /// `paste-buffer [-p] [-d] -b NAME -t T`.
    ///
    /// `bracketed` (`-p`) wraps the paste in `ESC[200~ … ESC[201~`, but only when the program
    /// in the pane has turned bracketed paste on. `delete` (`-d`) deletes the buffer after.
    ///
    /// Never `-r`: tmux then turns each LF into CR, which is what a terminal sends when a
    /// person pastes, so the program sees the same bytes as a real paste (a TUI in raw mode
    /// reads CR inside a bracketed paste as a newline; a cooked tty turns it back into LF).
    /// With `-r` a TUI would get bare LFs, which some read as `C-j`.
    pub fn paste_buffer(buffer: &str, target: &Target, bracketed: bool, delete: bool) -> Command {
        Line::new("paste-buffer")
            .flag_if(bracketed, "-p")
            .flag_if(delete, "-d")
            .flag("-b")
            .arg(buffer)
            .target(target)
            .done()
    }

    /// `delete-buffer -b NAME`.
    pub fn delete_buffer(buffer: &str) -> Command {
        Line::new("delete-buffer").flag("-b").arg(buffer).done()
    }

    /// `capture-pane -p …`: the pane's screen as the command's output.
    pub fn capture_pane(target: &Target, opts: &CaptureOpts) -> Command {
        let mut line = Line::new("capture-pane")
            .flag("-p")
            .flag_if(opts.escapes, "-e")
            .flag_if(opts.join, "-J")
            .flag_if(opts.alternate, "-a")
            .flag_if(opts.quiet, "-q");
        if opts.from_history_start {
            line = line.flag("-S -");
        } else if let Some(n) = opts.start {
            line = line.flag(&format!("-S {n}"));
        }
        if let Some(n) = opts.end {
            line = line.flag(&format!("-E {n}"));
        }
        line.target(target).done()
    }

    /// `list-panes [-a | -s -t '=NAME:' | -t T] -F 'FORMAT'`.
    pub fn list_panes(scope: ListScope, format: &str) -> Command {
        let line = Line::new("list-panes");
        let line = match &scope {
            ListScope::All => line.flag("-a"),
            ListScope::Session(name) => line.flag("-s").target(&Target::session(name)),
            ListScope::Window(t) => line.target(t),
        };
        line.flag("-F").arg(format).done()
    }

    /// `display-message -p [-t T] -- 'FORMAT'`: expands a format and answers it as output.
    /// The format is expanded on purpose: never put untrusted text in it.
    pub fn display_message(target: Option<&Target>, format: &str) -> Command {
        Line::new("display-message")
            .flag("-p")
            .opt_target(target)
            .end_flags()
            .arg(format)
            .done()
    }

    /// `display-message [-t T] -- 'TEXT'`: shows `text` on the status line of the client
    /// tmux picks, literally: formats (`#{…}`, `#(…)`, `#S`) and styles (`#[…]`) are
    /// neutralised by [`literal_status_text`], control characters become spaces.
    ///
    /// With no `-c`, tmux shows the message to the client that sent the command; for a
    /// control-mode connection that is the control client itself, which no person sees (the
    /// text only reaches `show-messages`). To reach a person, use [`Command::display_message_to`]
    /// with the name of their client (`list-clients -F '#{client_name} #{client_control_mode}'`).
    pub fn display_message_to_client(target: Option<&Target>, text: &str) -> Command {
        Line::new("display-message")
            .opt_target(target)
            .end_flags()
            .arg(&literal_status_text(text))
            .done()
    }

    /// `display-message -c CLIENT [-t T] -- 'TEXT'`: like
    /// [`Command::display_message_to_client`], on the status line of the named client
    /// (a client name is its tty, such as `/dev/pts/3`).
    pub fn display_message_to(client: &str, target: Option<&Target>, text: &str) -> Command {
        Line::new("display-message")
            .flag("-c")
            .arg(client)
            .opt_target(target)
            .end_flags()
            .arg(&literal_status_text(text))
            .done()
    }

    /// `refresh-client -f 'FLAGS'` (e.g. `pause-after=2,no-output`, `!pause-after`).
    pub fn refresh_client_flags(flags: &str) -> Command {
        Line::new("refresh-client").flag("-f").arg(flags).done()
    }

    /// `refresh-client -C COLSxROWS`: the size of the control client.
    pub fn refresh_client_size(cols: u16, rows: u16) -> Command {
        Line::new("refresh-client")
            .flag(&format!("-C {cols}x{rows}"))
            .done()
    }

    /// `refresh-client -B 'name:target:format'`: tmux sends `%subscription-changed` when the
    /// format's value changes. `target` is `%N`, `%*` (every pane), `@N`, `@*` or empty (the
    /// session). tmux splits at the first two `:`, so `name` and `target` must not hold one;
    /// the format may.
    pub fn subscribe(name: &str, target: &str, format: &str) -> Command {
        debug_assert!(!name.contains(':') && !target.contains(':'));
        Line::new("refresh-client")
            .flag("-B")
            .arg(&format!("{name}:{target}:{format}"))
            .done()
    }

    /// `refresh-client -B 'name'`: ends a subscription.
    pub fn unsubscribe(name: &str) -> Command {
        Line::new("refresh-client").flag("-B").arg(name).done()
    }

    /// `refresh-client -A '%N:continue'`: resumes output of a pane that `pause-after` paused.
    pub fn continue_pane(pane: PaneId) -> Command {
        Line::new("refresh-client")
            .flag("-A")
            .arg(&format!("{pane}:continue"))
            .done()
    }

    /// `set-option [scope] -- 'NAME' 'VALUE'`. User options start with `@`. The value is
    /// stored as is (no format expansion; newlines and any Unicode kept).
    pub fn set_option(scope: OptionScope, name: &str, value: &str) -> Command {
        let mut line = Line::new("set-option");
        scope.push_flags(&mut line.0);
        line.end_flags().arg(name).arg(value).done()
    }

    /// `set-option -o [scope] -- 'NAME' 'VALUE'`: fails (tmux: "already set") when the option
    /// has a value; a claim that two processes cannot both win.
    pub fn set_option_once(scope: OptionScope, name: &str, value: &str) -> Command {
        let mut line = Line::new("set-option").flag("-o");
        scope.push_flags(&mut line.0);
        line.end_flags().arg(name).arg(value).done()
    }

    /// `set-option -u [scope] -- 'NAME'`.
    pub fn unset_option(scope: OptionScope, name: &str) -> Command {
        let mut line = Line::new("set-option").flag("-u");
        scope.push_flags(&mut line.0);
        line.end_flags().arg(name).done()
    }

    /// `show-options -v -q [scope] -- 'NAME'`: the value alone; no output (not an error)
    /// when the option is not set.
    pub fn show_option_value(scope: OptionScope, name: &str) -> Command {
        let mut line = Line::new("show-options").flag("-v").flag("-q");
        scope.push_flags(&mut line.0);
        line.end_flags().arg(name).done()
    }

    /// `has-session -t '=NAME'`: succeeds only for the session called exactly NAME
    /// (without `=`, tmux would also take a prefix or a pattern).
    /// `list-clients -F FORMAT -t =SESSION:`: the clients attached to a session.
    pub fn list_clients_of(session: &str, format: &str) -> Command {
        Line::new("list-clients")
            .flag("-F")
            .arg(format)
            .target(&Target::session(session))
            .done()
    }

    pub fn has_session(name: &str) -> Command {
        Line::new("has-session")
            .target(&Target::Name(format!("={name}")))
            .done()
    }
}

/// Quotes one argument so tmux's parser gives back exactly `s` (see the module docs).
/// The result holds no control character. A NUL, which tmux cannot carry, becomes U+FFFD.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// [`quote`] that refuses a NUL byte instead of replacing it.
pub fn try_quote(s: &str) -> Result<String, CommandError> {
    refuse_nul(s, "argument")?;
    Ok(quote(s))
}

fn refuse_nul(s: &str, what: &'static str) -> Result<(), CommandError> {
    if s.contains('\0') {
        Err(CommandError::Nul { what })
    } else {
        Ok(())
    }
}

fn push_quoted(out: &mut String, s: &str) {
    let start = out.len();
    let mut open = false;
    for c in s.chars() {
        // tmux would cut the argument at a NUL: a visible mark instead.
        let c = if c == '\0' {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        };
        if c != '\'' && !c.is_control() {
            if !open {
                out.push('\'');
                open = true;
            }
            out.push(c);
            continue;
        }
        if open {
            out.push('\'');
            open = false;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            // Other C0 controls, DEL and the C1 controls (two UTF-8 bytes): octal bytes.
            _ => {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    let _ = write!(out, "\\{b:03o}");
                }
            }
        }
    }
    if open {
        out.push('\'');
    }
    if out.len() == start {
        out.push_str("''");
    }
}

/// Makes `text` show literally on a status line through `display-message`, which first
/// expands formats (`##` → `#`, `#{…}`, `#(…)` runs a shell command, `#,`, `#}`, `#S`…) and
/// then draws styles (`#[…]`; there `##` → `#` again and `##[` → a literal `#[`).
///
/// Checked on tmux 3.3a: format expansion leaves a run of `#` just before `[` alone, so a run
/// of k `#` becomes 2k `#` before a `[` and 4k `#` elsewhere. Control characters (a status
/// line is one line) become spaces. In `show-messages` the text appears with `#` doubled,
/// because the log keeps it between the two steps.
pub fn literal_status_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut hashes = 0usize;
    for c in text.chars() {
        if c == '#' {
            hashes += 1;
            continue;
        }
        let times = if c == '[' { 2 } else { 4 };
        out.push_str(&"#".repeat(hashes * times));
        hashes = 0;
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.push_str(&"#".repeat(hashes * 4));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pane(n: u32) -> Target {
        Target::Pane(PaneId(n))
    }

    /// What tmux's lexer (cmd-parse.y, 3.3a) makes of the subset of syntax `quote` emits:
    /// single-quoted runs and backslash escapes between them. `None` for anything else.
    fn unquote(q: &str) -> Option<String> {
        let mut out = Vec::new();
        let mut chars = q.chars();
        let mut buf = [0; 4];
        while let Some(c) = chars.next() {
            match c {
                '\'' => loop {
                    match chars.next()? {
                        '\'' => break,
                        c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                    }
                },
                '\\' => match chars.next()? {
                    'n' => out.push(b'\n'),
                    't' => out.push(b'\t'),
                    'r' => out.push(b'\r'),
                    'e' => out.push(0x1b),
                    '\'' => out.push(b'\''),
                    d @ '0'..='3' => {
                        let mut n = d.to_digit(8)?;
                        for _ in 0..2 {
                            n = n * 8 + chars.next()?.to_digit(8)?;
                        }
                        out.push(u8::try_from(n).ok()?);
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
        String::from_utf8(out).ok()
    }

    #[test]
    fn quote_renders_tricky_text() {
        let cases = [
            ("", "''"),
            ("abc", "'abc'"),
            (
                "$HOME ~ ; \\; # #{pane_id} { } -x",
                "'$HOME ~ ; \\; # #{pane_id} { } -x'",
            ),
            ("it's", "'it'\\''s'"),
            ("'", "\\'"),
            ("''", "\\'\\'"),
            ("\"", "'\"'"),
            ("a\\", "'a\\'"),
            ("a\nb", "'a'\\n'b'"),
            ("\n", "\\n"),
            ("\ta\t", "\\t'a'\\t"),
            ("x\r\x1b\x01\x7f", "'x'\\r\\e\\001\\177"),
            ("\u{85}", "\\302\\205"),
            ("é ✓ 日本 😀", "'é ✓ 日本 😀'"),
            ("a\0b", "'a\u{fffd}b'"),
        ];
        for (text, want) in cases {
            assert_eq!(quote(text), want, "quoting {text:?}");
        }
    }

    #[test]
    fn try_quote_refuses_nul() {
        assert_eq!(
            try_quote("a\0"),
            Err(CommandError::Nul { what: "argument" })
        );
        assert_eq!(try_quote("a").as_deref(), Ok("'a'"));
    }

    proptest! {
        #[test]
        fn quote_round_trips_and_holds_no_control_char(s in "\\PC*|[\\x00-\\x7f]*|['\\\\$~;#{}\\n\\t -]*") {
            let q = quote(&s);
            prop_assert!(!q.chars().any(|c| c.is_control()), "{q:?}");
            prop_assert!(!q.is_empty());
            prop_assert_eq!(unquote(&q), Some(s.replace('\0', "\u{fffd}")));
        }

        #[test]
        fn commands_are_one_line(s in any::<String>()) {
            for c in [
                Command::send_keys_literal(&Target::Name(s.clone()), &s),
                Command::set_buffer(&s, &s),
                Command::display_message_to_client(None, &s),
                Command::set_option(OptionScope::Session(Target::Name(s.clone())), &s, &s),
                Command::list_panes(ListScope::Session(s.clone()), &s),
            ] {
                prop_assert!(!c.line().is_empty());
                prop_assert!(!c.line().chars().any(|c| c.is_control()), "{:?}", c.line());
            }
        }

        #[test]
        fn key_parse_accepts_only_known_shapes(s in any::<String>()) {
            if let Ok(k) = KeyName::parse(&s) {
                let name = k.as_str();
                prop_assert!(name.len() <= MAX_KEY_LEN);
                prop_assert!(name.bytes().all(|b| b.is_ascii_graphic()), "{name:?}");
                prop_assert_eq!(KeyName::parse(name), Ok(k.clone()));
            }
        }
    }

    #[test]
    fn send_keys_lines() {
        assert_eq!(
            Command::send_keys_literal(&pane(3), "-n $HOME;").line(),
            "send-keys -l -t '%3' -- '-n $HOME;'"
        );
        assert_eq!(
            Command::send_keys_literal(&pane(3), "a\0b").line(),
            "send-keys -H -t '%3' 61 00 62"
        );
        assert_eq!(
            Command::send_keys_hex(&"=s:0.1".into(), "hé".as_bytes()).line(),
            "send-keys -H -t '=s:0.1' 68 c3 a9"
        );
        assert_eq!(
            Command::send_keys(&pane(1), &[KeyName::Enter, KeyName::CtrlC]).line(),
            "send-keys -t '%1' -- 'Enter' 'C-c'"
        );
        let k = KeyName::parse("m-enter").map(|k| k.to_string());
        assert_eq!(k.as_deref(), Ok("M-Enter"));
    }

    #[test]
    fn buffer_lines() {
        assert_eq!(
            Command::set_buffer("macs-1", "l1\nit's\t$x").line(),
            "set-buffer -b 'macs-1' -- 'l1'\\n'it'\\''s'\\t'$x'"
        );
        assert_eq!(
            Command::paste_buffer("b", &pane(2), true, true).line(),
            "paste-buffer -p -d -b 'b' -t '%2'"
        );
        assert_eq!(
            Command::paste_buffer("b", &pane(2), false, false).line(),
            "paste-buffer -b 'b' -t '%2'"
        );
        assert_eq!(Command::delete_buffer("-x").line(), "delete-buffer -b '-x'");
        assert_eq!(
            Command::try_set_buffer("b", "a\0"),
            Err(CommandError::Nul {
                what: "buffer data"
            })
        );
        assert_eq!(
            Command::try_set_buffer("b", "a").map(|c| c.line().to_string()),
            Ok("set-buffer -b 'b' -- 'a'".to_string())
        );
    }

    #[test]
    fn capture_lines() {
        assert_eq!(
            Command::capture_pane(&pane(0), &CaptureOpts::default()).line(),
            "capture-pane -p -t '%0'"
        );
        let all = CaptureOpts {
            escapes: true,
            join: true,
            start: Some(-50),
            end: Some(10),
            alternate: true,
            quiet: true,
            from_history_start: false,
        };
        assert_eq!(
            Command::capture_pane(&pane(0), &all).line(),
            "capture-pane -p -e -J -a -q -S -50 -E 10 -t '%0'"
        );
        let hist = CaptureOpts {
            from_history_start: true,
            start: Some(3),
            ..Default::default()
        };
        assert_eq!(
            Command::capture_pane(&pane(0), &hist).line(),
            "capture-pane -p -S - -t '%0'"
        );
    }

    #[test]
    fn list_and_display_lines() {
        assert_eq!(
            Command::list_panes(ListScope::All, "#{pane_id}").line(),
            "list-panes -a -F '#{pane_id}'"
        );
        assert_eq!(
            Command::list_panes(ListScope::Session("ma'cs".into()), "#{pane_id}").line(),
            "list-panes -s -t '=ma'\\''cs:' -F '#{pane_id}'"
        );
        assert_eq!(
            Command::list_panes(ListScope::Window("=s:1".into()), "x").line(),
            "list-panes -t '=s:1' -F 'x'"
        );
        assert_eq!(
            Command::display_message(Some(&pane(4)), "#{pane_id}").line(),
            "display-message -p -t '%4' -- '#{pane_id}'"
        );
        assert_eq!(
            Command::display_message(None, "-x").line(),
            "display-message -p -- '-x'"
        );
        assert_eq!(
            Command::display_message_to_client(None, "#{pane_id} #[bold] a\nb").line(),
            "display-message -- '####{pane_id} ##[bold] a b'"
        );
        assert_eq!(
            Command::display_message_to("/dev/pts/1", Some(&pane(1)), "hi").line(),
            "display-message -c '/dev/pts/1' -t '%1' -- 'hi'"
        );
    }

    #[test]
    fn literal_status_text_counts_hash_runs() {
        assert_eq!(literal_status_text("#"), "####");
        assert_eq!(literal_status_text("##x"), "########x");
        assert_eq!(literal_status_text("#[x] ##[y]"), "##[x] ####[y]");
        assert_eq!(literal_status_text("#(echo) #S"), "####(echo) ####S");
        assert_eq!(literal_status_text("a\tb\u{1b}c"), "a b c");
    }

    #[test]
    fn refresh_client_lines() {
        assert_eq!(
            Command::refresh_client_flags("pause-after=2,no-output").line(),
            "refresh-client -f 'pause-after=2,no-output'"
        );
        assert_eq!(
            Command::refresh_client_size(120, 30).line(),
            "refresh-client -C 120x30"
        );
        assert_eq!(
            Command::subscribe("title", "%*", "#{pane_title}").line(),
            "refresh-client -B 'title:%*:#{pane_title}'"
        );
        assert_eq!(
            Command::unsubscribe("title").line(),
            "refresh-client -B 'title'"
        );
        assert_eq!(
            Command::continue_pane(PaneId(7)).line(),
            "refresh-client -A '%7:continue'"
        );
    }

    #[test]
    fn option_lines() {
        assert_eq!(
            Command::set_option(OptionScope::Pane(pane(1)), "@macs-agent", "-x $y").line(),
            "set-option -p -t '%1' -- '@macs-agent' '-x $y'"
        );
        assert_eq!(
            Command::set_option(OptionScope::Window("@2".into()), "@w", "v").line(),
            "set-option -w -t '@2' -- '@w' 'v'"
        );
        assert_eq!(
            Command::set_option(OptionScope::Session("=macs".into()), "@t", "%1").line(),
            "set-option -t '=macs:' -- '@t' '%1'"
        );
        assert_eq!(
            Command::set_option(OptionScope::Session(Target::session("macs")), "@t", "").line(),
            "set-option -t '=macs:' -- '@t' ''"
        );
        assert_eq!(
            Command::set_option(OptionScope::Session("macs:1".into()), "@t", "v").line(),
            "set-option -t 'macs:1' -- '@t' 'v'"
        );
        assert_eq!(
            Command::set_option(OptionScope::Server, "@s", "v").line(),
            "set-option -s -- '@s' 'v'"
        );
        assert_eq!(
            Command::unset_option(OptionScope::Global, "@g").line(),
            "set-option -u -g -- '@g'"
        );
        assert_eq!(
            Command::show_option_value(OptionScope::Session("=m".into()), "@t").line(),
            "show-options -v -q -t '=m:' -- '@t'"
        );
        assert_eq!(
            Command::has_session("macs").line(),
            "has-session -t '=macs'"
        );
    }

    #[test]
    fn key_names_parse_to_variants_and_canonical_spelling() {
        let cases = [
            ("Enter", "Enter"),
            ("enter", "Enter"),
            ("C-m", "C-m"),
            ("c-m", "C-m"),
            ("C-c", "C-c"),
            ("C-j", "C-j"),
            ("Escape", "Escape"),
            ("BSpace", "BSpace"),
            ("PageUp", "PPage"),
            ("PgDn", "NPage"),
            ("Insert", "IC"),
            ("DC", "DC"),
            ("f5", "F5"),
            ("F12", "F12"),
            ("y", "y"),
            ("1", "1"),
            (";", ";"),
            ("-", "-"),
            ("M--", "M--"),
            ("C-l", "C-l"),
            ("S-M-C-Up", "C-M-S-Up"),
            ("M-Enter", "M-Enter"),
        ];
        for (input, want) in cases {
            assert_eq!(
                KeyName::parse(input).map(|k| k.to_string()),
                Ok(want.to_string())
            );
        }
        assert_eq!(KeyName::parse("Enter"), Ok(KeyName::Enter));
        assert_eq!(KeyName::parse("C-m"), Ok(KeyName::CtrlM));
        assert_eq!("Up".parse::<KeyName>(), Ok(KeyName::Up));
    }

    #[test]
    fn key_names_refuse_garbage() {
        for bad in [
            "",
            " ",
            "Enterr",
            "hello",
            "Enter Enter",
            "Enter;kill-server",
            "C-",
            "C-C-c",
            "X-c",
            "--",
            "F0",
            "F13",
            "F01",
            "é",
            "C-é",
            "\n",
            "C-c\n",
            "\u{1b}",
            "#{pane_id}",
            "$(reboot)",
            "^C",
            "KP1",
            "MouseDown1Pane",
            "C-M-S-BSpaceXXXXXXXXXXXXXXXX",
        ] {
            assert!(KeyName::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = "x".repeat(100);
        match KeyName::parse(&long) {
            Err(CommandError::BadKey(shown)) => assert_eq!(shown.len(), 40),
            other => panic!("{other:?}"),
        }
    }
}
