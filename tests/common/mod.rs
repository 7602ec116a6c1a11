//! Test support: a private tmux server on its own socket (`tmux -L <unique>`), created by the
//! test and killed when the guard drops, and polling with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use macs_bridge::tmux::oneshot::{Socket, Tmux};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A private tmux server; killed on drop.
pub struct TmuxServer {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl TmuxServer {
    /// Starts a server with one session running `command` in a 120x40 window.
    pub fn start(session: &str, command: &str) -> TmuxServer {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("macs-test-{}-{n}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TmuxServer { name, dir };
        server.ok(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "40",
            command,
        ]);
        server
    }

    /// Reserves a unique socket name and a temp dir, with no server running: for commands that
    /// start the server themselves (`up`). Whatever server runs on it is killed on drop.
    pub fn reserve() -> TmuxServer {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("macs-test-{}-{n}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        TmuxServer { name, dir }
    }

    pub fn tmux(&self) -> Tmux {
        Tmux::new(Socket::Name(self.name.clone()))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Runs `tmux -L NAME ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Runs tmux and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The plain text of a pane's screen.
    pub fn capture(&self, target: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", target])
    }

    /// The pane id of a target.
    pub fn pane_id(&self, target: &str) -> String {
        self.ok(&["display-message", "-p", "-t", target, "#{pane_id}"])
            .trim()
            .to_string()
    }

    /// Runs `command` in a new window of `session` (as `macs:`), in the background; its pane id.
    pub fn new_window(&self, session: &str, command: &str) -> String {
        self.ok(&[
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            session,
            command,
        ])
        .trim()
        .to_string()
    }

    /// The macs-bridge binary with this server's socket.
    pub fn bridge(&self, session: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_macs-bridge"));
        cmd.arg("-L").arg(&self.name).arg("--session").arg(session);
        cmd.env_remove("TMUX_SOCKET")
            .env_remove("TARGET_PANE_LABEL")
            .env_remove("MACS_SESSION")
            .env("TARGET_PANE_TYPE_DELAY_MS", "100");
        cmd
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.name)
            .arg("kill-server")
            .output();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shell with a fixed prompt and no rc files.
pub fn shell() -> String {
    "env PS1='$ ' bash --norc --noprofile".to_string()
}

pub fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write file");
}

/// A running `macs-bridge` daemon whose stdout JSON events are collected; killed on drop.
pub struct Daemon {
    pub child: std::process::Child,
    pub events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    /// Starts `macs-bridge --json ARGS…` against the server's session `macs`.
    pub fn start(server: &TmuxServer, state_dir: &Path, args: &[&str]) -> Daemon {
        Daemon::start_env(server, state_dir, args, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_env(
        server: &TmuxServer,
        state_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        use std::io::BufRead;
        let mut cmd = server.bridge("macs");
        cmd.envs(env.iter().copied());
        cmd.arg("--json")
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start the daemon");
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    ev.lock().expect("lock").push(v);
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        let se = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = se.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let d = Daemon {
            child,
            events,
            stderr,
        };
        d.wait_event("the daemon to start", |e| e["event"] == "started");
        d
    }

    /// A manual-mode daemon without heuristics, once its API socket answers.
    pub fn start_manual(server: &TmuxServer, state_dir: &Path) -> Daemon {
        let d = Daemon::start(server, state_dir, &["--mode", "manual", "--no-heuristic"]);
        wait_for("the API socket", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(state_dir.join("macs.sock"))
                .ok()
                .map(|_| ())
        });
        d
    }

    /// Waits for an event matching `pred` and returns it.
    pub fn wait_event(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_event_for(what, Duration::from_secs(30), pred)
    }

    /// [`Daemon::wait_event`] with its own deadline.
    pub fn wait_event_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.find_event_within(timeout, pred).unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}; events: {:#?}\nstderr: {}",
                self.events.lock().expect("lock"),
                self.stderr.lock().expect("lock")
            )
        })
    }

    /// The first event matching `pred`, waiting up to `timeout` for it.
    pub fn find_event_within(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.lock().expect("lock").iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many events match `pred` so far.
    /// Every event so far that `pred` accepts.
    pub fn matching(&self, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| pred(e))
            .cloned()
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| pred(e))
            .count()
    }

    /// Stops it with SIGTERM and waits (a clean shutdown).
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }

    /// Waits for it to die on its own (a crash point); panics after `timeout`.
    pub fn wait_death(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.try_wait().expect("try_wait").is_some() {
                std::mem::forget(self);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not die; events: {:#?}\nstderr: {}",
                self.events.lock().expect("lock"),
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it with SIGKILL (a crash).
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// Writes a sim-agent script into the server's temp dir and returns the command that runs it.
pub fn sim_command(server: &TmuxServer, name: &str, script: &str, extra: &str) -> String {
    let path = server.path(&format!("{name}.script"));
    std::fs::write(&path, script).expect("write script");
    format!(
        "{} sim-agent --script {} --name {name} --log {} {extra}",
        env!("CARGO_BIN_EXE_macs-bridge"),
        path.display(),
        server.path(&format!("{name}.log")).display()
    )
}

/// The inputs a sim-agent logged.
pub fn sim_inputs(server: &TmuxServer, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(server.path(&format!("{name}.log"))).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["input"].as_str().map(str::to_string))
        .collect()
}

/// Files in a directory, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".gitkeep")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A process's standard output and error together, for assertions and their messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A process's exit code (-1 when a signal ended it).
pub fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Runs `macs-bridge chat` for the daemon in `state_dir` with `lines` on standard input, as a
/// script would, and returns what it printed.
pub fn chat_lines(server: &TmuxServer, state_dir: &Path, lines: &str) -> Output {
    use std::io::Write;
    let mut child = server
        .bridge("macs")
        .args(["chat", "--state-dir"])
        .arg(state_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the chat client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write to the chat client");
    child.wait_with_output().expect("the chat client's output")
}

/// A session with one pane per (name, script), each labelled with its name.
pub fn agents(list: &[(&str, &str)]) -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    for (i, (name, script)) in list.iter().enumerate() {
        let cmd = sim_command(&server, name, script, "");
        if i == 0 {
            server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
            server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", name]);
        } else {
            let pane = server.ok(&["split-window", "-P", "-F", "#{pane_id}", "-t", "macs", &cmd]);
            server.ok(&["set-option", "-p", "-t", pane.trim(), "@macs-agent", name]);
            server.ok(&["select-layout", "-t", "macs", "tiled"]);
        }
    }
    server
}

/// A raw JSON-RPC connection to the daemon: requests, and the notifications pushed to it.
pub struct Raw {
    pub stream: std::os::unix::net::UnixStream,
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    /// Notifications read while waiting for replies.
    pub pushed: Vec<serde_json::Value>,
}

impl Raw {
    pub fn connect(state: &Path) -> Raw {
        let stream =
            std::os::unix::net::UnixStream::connect(state.join("macs.sock")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        Raw {
            stream,
            reader,
            pushed: Vec::new(),
        }
    }

    /// Sends one request line and returns its reply (notifications on the way are kept).
    pub fn send(&mut self, line: &str) -> serde_json::Value {
        use std::io::Write;
        self.stream.write_all(line.as_bytes()).expect("write");
        self.stream.write_all(b"\n").expect("write");
        loop {
            let v = self.next_line();
            if v.get("method").is_none() {
                return v;
            }
            self.pushed.push(v);
        }
    }

    /// Calls `method` with `params`; the reply.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let line =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.send(&line.to_string())
    }

    /// Waits for a pushed notification matching `pred` (within the read timeout).
    pub fn wait_push(&mut self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        if let Some(i) = self.pushed.iter().position(&pred) {
            return self.pushed.remove(i);
        }
        loop {
            let v = self.next_line();
            if pred(&v) {
                return v;
            }
            self.pushed.push(v);
        }
    }

    fn next_line(&mut self) -> serde_json::Value {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("read from the daemon");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line).expect("a JSON line")
    }
}
