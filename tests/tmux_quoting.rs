//! End to end against a real tmux (written against 3.3a): every claim `tmux::command` makes
//! about quoting holds, for text that reaches a paste buffer, a pane by `send-keys`, a pane by
//! `paste-buffer`, an option, and a person's status line.
//!
//! Each test starts its own tmux server on a private socket (`tmux -L macs-test-PID-N`) and
//! kills it on drop, also when the test fails. Waiting is always polling with a deadline.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use macs_bridge::tmux::command::{
    quote, CaptureOpts, Command, KeyName, ListScope, OptionScope, Target,
};
use macs_bridge::tmux::PaneId;

const DEADLINE: Duration = Duration::from_secs(10);
static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// Every tricky single-line string from the brief, and some more.
const TRICKY: &[&str] = &[
    "$HOME",
    "${HOME}",
    "\\$HOME",
    "~",
    "~/x",
    "a ~ b",
    "'",
    "''",
    "\"",
    "it's \"quoted\"",
    "'\"'\"",
    ";",
    "a;",
    "a ;",
    "\\;",
    "a\\;",
    "#",
    "# not a comment",
    "#{pane_id}",
    "##{pane_id}",
    "#(echo hi)",
    "#[fg=red]",
    "\\",
    "a\\",
    "\\\\",
    "\\n is not a newline",
    "\\'",
    "\\u0041 \\101",
    "-",
    "-n",
    "--",
    "-l x",
    "\ttab\tinside\t",
    "é ✓ 日本",
    "emoji 😀 👍🏽 🇫🇷",
    "{",
    "}",
    "{ a }",
    "%1",
    "%if",
    "A=b",
    "=s",
    "  lead and trail  ",
    "$(echo hi) `echo hi`",
    "$",
    "a'b\"c\\d$e~f;g#h{i}j",
];

/// Multi-line and control-character strings, for the places that carry them exactly.
const TRICKY_MULTILINE: &[&str] = &[
    "line1\nline2",
    "\n",
    "trailing\n",
    "\n\nleading",
    "tab\tand\nnewline",
    "it's\n'quoted'\n\"too\"",
    "a;\nb\\;\n#c",
];
const TRICKY_CONTROL: &[&str] = &["a\r\nb", "\x01\x1b[31mred\x1b[0m\x7f", "\u{85}nel", "\x07"];

// ---------------------------------------------------------------------------------------------
// Harness: a private server, a control-mode client, files polled with a deadline.

struct Server {
    name: String,
    dir: tempfile::TempDir,
    /// tmux 3.3a leaves the socket file behind on kill-server: removed on drop.
    socket: Option<PathBuf>,
}

impl Server {
    fn start() -> Server {
        let name = format!(
            "macs-test-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        );
        let mut server = Server {
            name,
            dir: tempfile::tempdir().expect("temp dir"),
            socket: None,
        };
        let out = server.oneshot(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "s",
            "-x",
            "120",
            "-y",
            "30",
        ]);
        assert!(out.status.success(), "new-session: {out:?}");
        let out = server.oneshot(&["display-message", "-p", "#{socket_path}"]);
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        server.socket = (!path.is_empty()).then(|| PathBuf::from(path));
        server
    }

    fn tmux(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("tmux");
        cmd.env_remove("TMUX").args(["-u", "-L", &self.name]);
        cmd
    }

    fn oneshot(&self, args: &[&str]) -> Output {
        self.tmux().args(args).output().expect("run tmux")
    }

    /// The exact bytes of a paste buffer.
    fn buffer(&self, name: &str) -> Vec<u8> {
        let out = self.oneshot(&["save-buffer", "-b", name, "-"]);
        assert!(out.status.success(), "save-buffer {name}: {out:?}");
        out.stdout
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn control(&self) -> Control {
        let mut child = self
            .tmux()
            .args(["-C", "attach-session", "-t", "=s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn control client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.ends_with(b"\n") {
                            line.pop();
                        }
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut control = Control {
            child,
            stdin,
            lines,
        };
        // A line sent before the attach is done runs without a session: `refresh-client`
        // then fails with "no current client" (seen on 3.3a). Wait for the attach first.
        let deadline = Instant::now() + DEADLINE;
        while !control
            .next_line(deadline)
            .starts_with(b"%session-changed ")
        {}
        control.ok(&Command::refresh_client_flags("no-output"));
        control
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.oneshot(&["kill-server"]);
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// `tmux -C attach-session` over pipes. One command at a time.
struct Control {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Vec<u8>>,
}

/// Notifications that may show up inside a reply block; none of our outputs starts so.
const NOTIFICATIONS: &[&str] = &[
    "%output ",
    "%extended-output ",
    "%continue ",
    "%pause ",
    "%window-",
    "%layout-change ",
    "%session",
    "%subscription-changed ",
    "%client-",
    "%unlinked-window-",
    "%pane-mode-changed ",
];

impl Control {
    fn next_line(&self, deadline: Instant) -> Vec<u8> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("tmux did not answer in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("control client exited"),
        }
    }

    /// Sends one command; `Ok(output)` on `%end`, `Err(output)` on `%error`.
    fn run(&mut self, cmd: &Command) -> Result<Vec<String>, String> {
        writeln!(self.stdin, "{}", cmd.line()).expect("write command");
        self.stdin.flush().expect("flush");
        let deadline = Instant::now() + DEADLINE;
        let guard = loop {
            let line = self.next_line(deadline);
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            if fields.len() == 4 && fields[0] == b"%begin" && fields[3] == b"1" {
                break (fields[1].to_vec(), fields[2].to_vec());
            }
        };
        let mut out = Vec::new();
        loop {
            let line = self.next_line(deadline);
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            if fields.len() == 4
                && (fields[0] == b"%end" || fields[0] == b"%error")
                && (fields[1], fields[2], fields[3]) == (&guard.0[..], &guard.1[..], &b"1"[..])
            {
                return if fields[0] == b"%end" {
                    Ok(out)
                } else {
                    Err(out.join("\n"))
                };
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            if !NOTIFICATIONS.iter().any(|n| text.starts_with(n)) {
                out.push(text);
            }
        }
    }

    /// [`Control::run`] that must succeed.
    #[track_caller]
    fn ok(&mut self, cmd: &Command) -> Vec<String> {
        match self.run(cmd) {
            Ok(out) => out,
            Err(e) => panic!("{:?} failed: {e}", cmd.line()),
        }
    }

    /// A new window running `sh -c SCRIPT sh FILE`; waits until the script wrote FILE.ready.
    fn window_running(&mut self, script: &str, file: &Path) -> Target {
        let file = file.to_str().expect("utf-8 temp path");
        let line = format!(
            "new-window -d -P -F '#{{pane_id}}' -t {} -- {} {} {} {} {}",
            quote("=s:"),
            quote("sh"),
            quote("-c"),
            quote(script),
            quote("sh"),
            quote(file),
        );
        let out = self.ok(&Command::raw(line));
        let id: PaneId = out[0].parse().expect("pane id");
        let ready = PathBuf::from(format!("{file}.ready"));
        wait_until("the pane's script to start", || {
            ready.exists().then_some(())
        });
        Target::Pane(id)
    }

    /// A pane whose tty is cooked and whose input is appended to `file` by `cat`.
    fn cat_pane(&mut self, file: &Path) -> Target {
        self.window_running(": > \"$1.ready\"; exec cat > \"$1\"", file)
    }

    /// A pane in raw mode that writes the first `n` bytes it reads to `file`, then exits.
    /// With `bracketed`, the program turns bracketed paste on first, and this waits until
    /// tmux has seen it (the pane shows a mark printed after the switch).
    fn raw_pane(&mut self, file: &Path, n: usize, bracketed: bool) -> Target {
        let on = if bracketed {
            "printf '\\033[?2004hBRACKETS-ON'; "
        } else {
            ""
        };
        let script = format!(
            "stty raw -echo; {on}: > \"$1.ready\"; head -c {n} > \"$1.tmp\"; mv \"$1.tmp\" \"$1\""
        );
        let pane = self.window_running(&script, file);
        if bracketed {
            wait_until("bracketed paste to be on", || {
                let screen = self.ok(&Command::capture_pane(&pane, &CaptureOpts::default()));
                screen
                    .iter()
                    .any(|l| l.contains("BRACKETS-ON"))
                    .then_some(())
            });
        }
        pane
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until it gives a value; fails the test at the deadline.
#[track_caller]
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `file` holds exactly `want`; on timeout shows what it holds.
#[track_caller]
fn wait_for_file(file: &Path, want: &[u8]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = std::fs::read(file).unwrap_or_default();
        if got == want {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{} holds\n  {:?}\nwant\n  {:?}",
                file.display(),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deterministic tricky strings: xorshift over a pool of the characters that matter.
fn random_strings(count: usize, with_controls: bool) -> Vec<String> {
    let mut pool: Vec<char> = "aZ0 '\"\\;#{}$~-%=\té✓日😀[]()`!*?@:,./^&|<>"
        .chars()
        .collect();
    if with_controls {
        pool.extend(['\n', '\r', '\x01', '\x1b', '\x7f', '\u{85}', '\u{9f}']);
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 24) as usize + 1;
            (0..len)
                .map(|_| pool[(next() % pool.len() as u64) as usize])
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Paste buffers.

#[test]
fn set_buffer_keeps_every_tricky_string_exactly() {
    let server = Server::start();
    let mut c = server.control();
    let strings = TRICKY
        .iter()
        .chain(TRICKY_MULTILINE)
        .chain(TRICKY_CONTROL)
        .map(|s| s.to_string())
        .chain(random_strings(300, true));
    for (i, text) in strings.enumerate() {
        let name = format!("-b{i} it's");
        c.ok(&Command::set_buffer(&name, &text));
        assert_eq!(
            server.buffer(&name),
            text.as_bytes(),
            "set-buffer of {text:?} rendered as {:?}",
            Command::set_buffer(&name, &text).line()
        );
        c.ok(&Command::delete_buffer(&name));
    }
}

#[test]
fn set_buffer_turns_nul_into_a_visible_mark_and_try_set_buffer_refuses_it() {
    let server = Server::start();
    let mut c = server.control();
    c.ok(&Command::set_buffer("nul", "a\0b"));
    assert_eq!(server.buffer("nul"), "a\u{fffd}b".as_bytes());
    assert!(Command::try_set_buffer("nul", "a\0b").is_err());
}

/// Surprise of tmux 3.3a: `set-buffer` with empty data succeeds but creates no buffer.
#[test]
fn set_buffer_with_empty_data_creates_no_buffer() {
    let server = Server::start();
    let mut c = server.control();
    c.ok(&Command::set_buffer("empty", ""));
    let pane = Target::Name("=s:0.0".into());
    let err = c
        .run(&Command::paste_buffer("empty", &pane, false, false))
        .expect_err("paste of a buffer that was never created");
    assert!(err.contains("no buffer"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Text into panes.

#[test]
fn send_keys_literal_types_every_tricky_string_exactly() {
    let server = Server::start();
    let mut c = server.control();
    let file = server.path("typed");
    let pane = c.cat_pane(&file);
    let mut want = Vec::new();
    let strings = TRICKY
        .iter()
        .map(|s| s.to_string())
        .chain(random_strings(60, false));
    for text in strings {
        c.ok(&Command::send_keys_literal(&pane, &text));
        c.ok(&Command::send_keys(&pane, &[KeyName::Enter]));
        want.extend_from_slice(text.as_bytes());
        want.push(b'\n');
        wait_for_file(&file, &want);
    }
}

#[test]
fn paste_buffer_delivers_every_tricky_string_exactly() {
    let server = Server::start();
    let mut c = server.control();
    let file = server.path("pasted");
    let pane = c.cat_pane(&file);
    let mut want = Vec::new();
    let strings = TRICKY
        .iter()
        .chain(TRICKY_MULTILINE)
        .map(|s| s.to_string())
        .chain(random_strings(60, false));
    for (i, text) in strings.enumerate() {
        // The way inject.rs pastes: bracketed (a no-op for cat, which never turns it on),
        // and the buffer deleted after.
        let name = format!("paste-{i}");
        c.ok(&Command::set_buffer(&name, &text));
        c.ok(&Command::paste_buffer(&name, &pane, true, true));
        c.ok(&Command::send_keys(&pane, &[KeyName::Enter]));
        // Each LF is pasted as CR, which the cooked tty turns back into LF.
        want.extend_from_slice(text.as_bytes());
        want.push(b'\n');
        wait_for_file(&file, &want);
        let gone = server.oneshot(&["show-buffer", "-b", &name]);
        assert!(!gone.status.success(), "-d left buffer {name}");
    }
}

/// In raw mode the pane reads the bytes as sent: `send-keys -l` carries every control
/// character and any Unicode exactly; text with NUL goes by `-H`, exactly too.
#[test]
fn send_keys_literal_is_byte_exact_in_a_raw_pane() {
    let server = Server::start();
    let mut c = server.control();
    let mut controls: String = (1u8..32).map(char::from).collect();
    controls.push('\x7f');
    for (i, text) in [
        controls,
        "é ✓ 日本 😀 $HOME ~ ';".to_string(),
        "a\0b\0".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let file = server.path(&format!("raw-{i}"));
        let pane = c.raw_pane(&file, text.len(), false);
        c.ok(&Command::send_keys_literal(&pane, text));
        wait_for_file(&file, text.as_bytes());
    }
}

/// tmux facts that `paste_buffer`'s docs rest on: without `-r`, LF is pasted as CR; `-p`
/// adds bracketed-paste markers only when the program turned bracketed paste on.
#[test]
fn paste_buffer_sends_lf_as_cr_and_brackets_only_when_asked() {
    let server = Server::start();
    let mut c = server.control();
    c.ok(&Command::set_buffer("nl", "a\nb\n"));

    let file = server.path("plain");
    let pane = c.raw_pane(&file, 4, false);
    c.ok(&Command::paste_buffer("nl", &pane, true, false));
    wait_for_file(&file, b"a\rb\r");

    let file = server.path("bracketed");
    let want = b"\x1b[200~a\rb\r\x1b[201~";
    let pane = c.raw_pane(&file, want.len(), true);
    c.ok(&Command::paste_buffer("nl", &pane, true, false));
    wait_for_file(&file, want);
}

// ---------------------------------------------------------------------------------------------
// Key names.

#[test]
fn key_names_are_known_to_tmux_and_send_the_right_bytes() {
    let server = Server::start();
    let mut c = server.control();
    // tmux refuses to bind a key name it does not know ("unknown key"): every name we can
    // build must bind.
    let mut names: Vec<String> = [
        "Enter",
        "Escape",
        "Tab",
        "BTab",
        "BSpace",
        "Space",
        "Up",
        "Down",
        "Left",
        "Right",
        "Home",
        "End",
        "PageUp",
        "PageDown",
        "Insert",
        "Delete",
        "C-c",
        "C-d",
        "C-j",
        "C-m",
        "C-u",
        "C-l",
        "M-Enter",
        "S-Up",
        "C-M-S-Down",
        "M--",
        "C-;",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend((1..=12).map(|n| format!("F{n}")));
    names.extend((0x21u8..0x7f).map(|b| char::from(b).to_string()));
    names.extend((0x21u8..0x7f).map(|b| format!("M-{}", char::from(b))));
    for name in &names {
        let key = KeyName::parse(name).expect("valid key name");
        let line = format!(
            "bind-key -T macs-test -- {} display-message x",
            quote(key.as_str())
        );
        if let Err(e) = c.run(&Command::raw(line)) {
            panic!("tmux does not know {key} (from {name:?}): {e}");
        }
    }
    // ...and the common ones write the bytes a terminal would.
    let cases: &[(KeyName, &[u8])] = &[
        (KeyName::Enter, b"\r"),
        (KeyName::CtrlM, b"\r"),
        (KeyName::CtrlJ, b"\n"),
        (KeyName::CtrlC, b"\x03"),
        (KeyName::CtrlU, b"\x15"),
        (KeyName::Tab, b"\t"),
        (KeyName::BSpace, b"\x7f"),
        (KeyName::Escape, b"\x1b"),
        (KeyName::Space, b" "),
    ];
    let keys: Vec<KeyName> = cases.iter().map(|(k, _)| k.clone()).collect();
    let want: Vec<u8> = cases.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let file = server.path("keys");
    let pane = c.raw_pane(&file, want.len(), false);
    c.ok(&Command::send_keys(&pane, &keys));
    wait_for_file(&file, &want);
}

/// tmux types a key name it does not know as text, so a name taken from a pane could type
/// anything: `KeyName::parse` refuses whatever a pane might show.
#[test]
fn key_names_cannot_be_built_from_pane_garbage() {
    let server = Server::start();
    let mut c = server.control();
    let file = server.path("typed");
    let pane = c.cat_pane(&file);
    c.ok(&Command::raw(format!(
        "send-keys -t {} -- 'Enterr' 'Enter'",
        quote(&pane.to_string())
    )));
    wait_for_file(&file, b"Enterr\n");

    let garbage = [
        "Enterr",
        "Enter; kill-server",
        "Enter Enter",
        "C-c\n",
        "\u{1b}[A",
        "#{pane_id}",
        "$(reboot)",
        "rm -rf ~",
        "❯ ",
        "y/n",
        "1.",
        "C-",
        "F13",
        "",
    ];
    for g in garbage
        .iter()
        .map(|s| s.to_string())
        .chain(random_strings(500, true))
    {
        if g.chars().count() == 1 && g.chars().all(|ch| ch.is_ascii_graphic()) {
            continue; // one printable character is a key: it types itself
        }
        assert!(KeyName::parse(&g).is_err(), "{g:?} became a key name");
    }
}

// ---------------------------------------------------------------------------------------------
// Status-line messages.

/// `display_message_to_client` from the control client: the message goes to the control
/// client itself (it only shows in `show-messages`), and nothing in it was expanded.
#[test]
fn display_message_to_client_does_not_expand_formats() {
    let server = Server::start();
    let mut c = server.control();
    c.ok(&Command::display_message_to_client(
        None,
        "id=#{pane_id} host=#H -x",
    ));
    let log = c.ok(&Command::raw("show-messages"));
    let msg = log
        .iter()
        .find(|l| l.contains(" message: id="))
        .unwrap_or_else(|| panic!("no message in {log:?}"));
    // The log holds the text between format expansion and drawing: `#` doubled.
    assert!(
        msg.ends_with(" message: id=##{pane_id} host=##H -x"),
        "{msg}"
    );
}

/// The real proof: a person's client (attached in a pane of a second private server) shows
/// the text on its status line exactly, with no format, job or style applied.
#[test]
fn display_message_to_shows_text_literally_on_a_status_line() {
    let inner = Server::start();
    let mut c = inner.control();
    let outer = Server::start();
    let attach = format!("env -u TMUX tmux -u -L {} attach-session -t =s", inner.name);
    let out = outer.oneshot(&[
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "=s:",
        &attach,
    ]);
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let client = wait_until("the person's client to attach", || {
        let out = c.ok(&Command::raw(
            "list-clients -F '#{client_name} #{client_control_mode}'",
        ));
        out.iter()
            .find_map(|l| l.strip_suffix(" 0").map(str::to_string))
    });
    c.ok(&Command::set_option(
        OptionScope::Global,
        "display-time",
        "0",
    ));

    for text in [
        "id=#{pane_id} host=#H job=#(echo hi) style=#[fg=red]x end#",
        "## ### #### #[ ##[ ###[ #, #} #{ #",
        "$HOME ~ 'q' \"d\" ; \\; {} -x",
        "é ✓ 日本",
        "tab\there",
    ] {
        c.ok(&Command::display_message_to(&client, None, text));
        let want = text.replace('\t', " ");
        wait_until(&format!("status line {want:?}"), || {
            let out = outer.oneshot(&["capture-pane", "-p", "-t", &screen]);
            let shown = String::from_utf8_lossy(&out.stdout).into_owned();
            let last = shown.lines().last().unwrap_or("").trim_end().to_string();
            (last == want).then_some(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Targets, options, and the other commands: tmux takes every line we render.

#[test]
fn options_round_trip_in_every_scope() {
    let server = Server::start();
    let mut c = server.control();
    let pane = Target::Name("=s:0.0".into());
    let scopes = [
        OptionScope::Pane(pane.clone()),
        OptionScope::Window(Target::Name("=s:0".into())),
        // The form pane.rs uses: tmux 3.3a would answer `-t =s` with "no such session".
        OptionScope::Session(Target::Name("=s".into())),
        OptionScope::Session(Target::session("s")),
        OptionScope::Server,
        OptionScope::Global,
    ];
    for scope in scopes {
        for value in TRICKY.iter().chain(["", "two\nlines"].iter()) {
            c.ok(&Command::set_option(scope.clone(), "@macs-test", value));
            let got = c.ok(&Command::show_option_value(scope.clone(), "@macs-test"));
            assert_eq!(got.join("\n"), *value, "{scope:?}");
        }
        c.ok(&Command::unset_option(scope.clone(), "@macs-test"));
        let got = c.ok(&Command::show_option_value(scope.clone(), "@macs-test"));
        assert!(got.is_empty(), "{scope:?}: {got:?}");
    }
}

#[test]
fn targets_and_sessions_resolve_exactly() {
    let server = Server::start();
    let mut c = server.control();
    let out = server.oneshot(&["new-session", "-d", "-s", "sess-long"]);
    assert!(out.status.success(), "{out:?}");

    c.ok(&Command::has_session("s"));
    c.ok(&Command::has_session("sess-long"));
    assert!(
        c.run(&Command::has_session("sess")).is_err(),
        "prefix matched"
    );

    let id = c.ok(&Command::display_message(
        Some(&Target::session("s")),
        "#{session_name} #{pane_id}",
    ));
    let (name, pane) = id[0].split_once(' ').expect("two fields");
    assert_eq!(name, "s");
    let pane: PaneId = pane.parse().expect("pane id");
    let by_id = c.ok(&Command::display_message(
        Some(&Target::Pane(pane)),
        "#{session_name}",
    ));
    assert_eq!(by_id, ["s"]);

    for scope in [
        ListScope::All,
        ListScope::Session("s".into()),
        ListScope::Window(Target::Name("=s:0".into())),
    ] {
        let panes = c.ok(&Command::list_panes(scope.clone(), "#{pane_id}"));
        assert!(panes.contains(&pane.to_string()), "{scope:?}: {panes:?}");
    }
    let long = c.ok(&Command::list_panes(
        ListScope::Session("sess-long".into()),
        "#{session_name}",
    ));
    assert_eq!(long, ["sess-long"]);
    // A format is expanded on purpose, and a format that starts with `-` is no flag.
    assert_eq!(
        c.ok(&Command::display_message(None, "-#{session_name}")),
        ["-s"]
    );
}

#[test]
fn capture_and_refresh_client_lines_are_accepted() {
    let server = Server::start();
    let mut c = server.control();
    let pane = Target::Name("=s:0.0".into());
    for opts in [
        CaptureOpts::default(),
        CaptureOpts {
            escapes: true,
            join: true,
            start: Some(-10),
            end: Some(5),
            ..CaptureOpts::default()
        },
        CaptureOpts {
            from_history_start: true,
            ..CaptureOpts::default()
        },
        CaptureOpts {
            alternate: true,
            quiet: true,
            ..CaptureOpts::default()
        },
    ] {
        c.ok(&Command::capture_pane(&pane, &opts));
    }
    let no_alt = CaptureOpts {
        alternate: true,
        ..CaptureOpts::default()
    };
    assert!(c.run(&Command::capture_pane(&pane, &no_alt)).is_err());

    c.ok(&Command::refresh_client_flags("pause-after=2,no-output"));
    c.ok(&Command::refresh_client_flags("!pause-after"));
    c.ok(&Command::refresh_client_size(100, 40));
    c.ok(&Command::subscribe(
        "macs-title",
        "%*",
        "#{pane_title}:#{pane_id}",
    ));
    c.ok(&Command::unsubscribe("macs-title"));
    let id = c.ok(&Command::display_message(Some(&pane), "#{pane_id}"));
    c.ok(&Command::continue_pane(id[0].parse().expect("pane id")));
}
