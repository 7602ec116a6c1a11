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
