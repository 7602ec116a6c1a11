//! What the benches share: a private tmux server (`tmux -L NAME`) and child processes that are
//! stopped when their guard drops, or on Ctrl-C/SIGTERM (no destructor runs then), the
//! bench's own control clients detached first; an [`Observer`] that stamps the `%output` in
//! which awaited text shows; CPU time of a process; percentiles; and the machine's
//! description for the figures.
//!
//! The tests' harness (`tests/common`) stays separate: a bench runs for minutes, is
//! interrupted by hand, and must leave no tmux server or daemon behind when it is.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use macs_bridge::tmux::client::{Client, ClientEvent, ClientOptions};
use macs_bridge::tmux::control::Event;
use macs_bridge::tmux::oneshot::{Socket, Tmux};
use macs_bridge::tmux::PaneId;

/// What must be stopped if the bench is interrupted: tmux servers and processes.
pub static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// The bench's control clients (detached before the server is killed).
pub static OBSERVERS: Mutex<Vec<Client>> = Mutex::new(Vec::new());

#[derive(Clone, PartialEq, Eq)]
pub enum Live {
    Server(ServerId),
    Process(u32),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ServerId {
    pub name: String,
    pid: i32,
    socket: PathBuf,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A private tmux server (`tmux -L NAME`); killed on drop.
pub struct Server {
    pub name: String,
    pub id: Option<ServerId>,
}

impl Server {
    pub fn start(name: String, session: &str, command: &str) -> Server {
        let mut server = Server { name, id: None };
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
        let info = server.ok(&["display-message", "-p", "#{pid} #{socket_path}"]);
        let (pid, socket) = info.trim().split_once(' ').expect("pid and socket");
        let id = ServerId {
            name: server.name.clone(),
            pid: pid.parse().expect("the server's pid"),
            socket: PathBuf::from(socket),
        };
        lock(&LIVE).push(Live::Server(id.clone()));
        server.id = Some(id);
        server
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = Proc::new("tmux")
            .arg("-L")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pane_id(&self, target: &str) -> PaneId {
        let id = self.ok(&["display-message", "-p", "-t", target, "#{pane_id}"]);
        id.trim().parse().expect("a pane id")
    }

    pub fn tmux(&self) -> Tmux {
        Tmux::new(Socket::Name(self.name.clone()))
    }

    pub fn pid(&self) -> u32 {
        self.id.as_ref().map_or(0, |id| id.pid as u32)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for client in lock(&OBSERVERS).drain(..) {
            client.shutdown();
        }
        match self.id.take() {
            Some(id) => {
                stop_server(&id);
                lock(&LIVE).retain(|l| *l != Live::Server(id.clone()));
            }
            None => {
                let _ = Proc::new("tmux")
                    .args(["-L", &self.name, "kill-server"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// `kill-server`; SIGKILL if it has not gone within 2 s; the socket file removed.
pub fn stop_server(id: &ServerId) {
    let _ = Proc::new("tmux")
        .args(["-L", &id.name, "kill-server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !wait_gone(id.pid, Duration::from_secs(2)) {
        unsafe { libc::kill(id.pid, libc::SIGKILL) };
    }
    let _ = fs::remove_file(&id.socket);
}

/// Whether a process has exited (no longer there, or a zombie).
pub fn gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_none_or(|state| state == "Z"),
        Err(_) => true,
    }
}

pub fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A child process; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Process {
    pub child: Child,
}

impl Process {
    pub fn new(child: Child) -> Process {
        lock(&LIVE).push(Live::Process(child.id()));
        Process { child }
    }

    /// SIGTERM and wait up to `within` for a clean exit (the daemon finishes what it is typing),
    /// then SIGKILL. Returns whether it exited by itself.
    pub fn stop(&mut self, within: Duration) -> bool {
        let pid = self.child.id();
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        let mut clean = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                clean = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        lock(&LIVE).retain(|l| *l != Live::Process(pid));
        clean
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// The bench's runtime with `workers` threads, once tmux is known to be usable (≥ 3.2), with
/// the clean-up on Ctrl-C installed; `None` (having said why) when the bench must be skipped.
pub fn runtime_with_tmux(bench: &str, workers: usize) -> Option<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let probe = Tmux::new(Socket::Name(format!(
        "macs-{bench}-probe-{}",
        std::process::id()
    )));
    match rt.block_on(probe.check_version()) {
        Ok(v) if !v.is_too_old() => {}
        Ok(v) => {
            println!("skipped: {} is older than 3.2", v.text);
            return None;
        }
        Err(e) => {
            println!("skipped: no usable tmux ({e})");
            return None;
        }
    }
    on_signal_clean_up(&rt);
    Some(rt)
}

/// On Ctrl-C or SIGTERM: kill what is alive, then exit (no destructor runs then).
pub fn on_signal_clean_up(rt: &tokio::runtime::Runtime) {
    rt.spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        for client in lock(&OBSERVERS).drain(..) {
            client.shutdown();
        }
        let live: Vec<Live> = lock(&LIVE).drain(..).collect();
        for l in &live {
            if let Live::Process(pid) = l {
                let pid = *pid as i32;
                unsafe { libc::kill(pid, libc::SIGTERM) };
                if !wait_gone(pid, Duration::from_secs(2)) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for l in &live {
            if let Live::Server(id) = l {
                stop_server(id);
            }
        }
        eprintln!("interrupted: the daemon and the tmux servers are stopped");
        std::process::exit(130);
    });
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the `(comm)` field: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The p-th percentile, nearest rank.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let tmux = Proc::new("tmux")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {tmux}")
}

// ---------------------------------------------------------------------------------------------
// Watching panes' output on the bench's own control connection

/// When a `%output` arrived: both clocks, read once per output.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub at: Instant,
    /// Wall-clock time in microseconds since the Unix epoch.
    pub wall_us: i64,
}

/// The wall clock in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A control-mode client of one session that stamps, per pane, the `%output` in which
/// awaited texts become complete (no polling).
pub struct Observer {
    client: Client,
    watches: Arc<Mutex<HashMap<PaneId, Watch>>>,
}

#[derive(Default)]
struct Watch {
    /// Offset in the pane's output of `buf[0]`.
    start: usize,
    buf: Vec<u8>,
    waiters: Vec<Waiter>,
}

struct Waiter {
    /// Only output from this offset on counts.
    from: usize,
    /// These texts, in this order.
    parts: Vec<Vec<u8>>,
    done: Box<dyn FnOnce(Stamp) + Send>,
}

impl Watch {
    fn feed(&mut self, data: &[u8], at: Stamp) {
        self.buf.extend_from_slice(data);
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            let from = w.from.saturating_sub(self.start).min(self.buf.len());
            if in_order(&self.buf[from..], &w.parts) {
                (w.done)(at);
            } else {
                self.waiters.push(w);
            }
        }
        if self.buf.len() > 1 << 20 {
            let cut = self.buf.len() - (1 << 16);
            self.buf.drain(..cut);
            self.start += cut;
        }
    }
}

fn in_order(mut hay: &[u8], parts: &[Vec<u8>]) -> bool {
    for p in parts {
        match hay.windows(p.len()).position(|w| w == p.as_slice()) {
            Some(i) => hay = &hay[i + p.len()..],
            None => return false,
        }
    }
    true
}

impl Observer {
    /// Attaches to `session` and watches `panes` (more can be watched by [`Observer::expect`]).
    pub async fn start(tmux: Tmux, session: &str, panes: &[PaneId]) -> Observer {
        let (client, mut events) = Client::connect(ClientOptions::new(tmux, session))
            .await
            .expect("attach the observer");
        lock(&OBSERVERS).push(client.clone());
        let watches: Arc<Mutex<HashMap<PaneId, Watch>>> = Arc::new(Mutex::new(
            panes.iter().map(|p| (*p, Watch::default())).collect(),
        ));
        let w = watches.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    ClientEvent::Tmux(Event::Output { pane, data })
                    | ClientEvent::Tmux(Event::ExtendedOutput { pane, data, .. }) => {
                        let at = Stamp {
                            at: Instant::now(),
                            wall_us: now_us(),
                        };
                        if let Some(watch) = lock(&w).get_mut(&pane) {
                            watch.feed(&data, at);
                        }
                    }
                    ClientEvent::Closed => break,
                    _ => {}
                }
            }
        });
        Observer { client, watches }
    }

    /// From now on, waits for `parts` to show in this order in `pane`'s output; calls `done`
    /// with the stamp of the `%output` that completed them.
    pub fn expect(&self, pane: PaneId, parts: &[&str], done: impl FnOnce(Stamp) + Send + 'static) {
        let mut watches = lock(&self.watches);
        let w = watches.entry(pane).or_default();
        let from = w.start + w.buf.len();
        w.waiters.push(Waiter {
            from,
            parts: parts.iter().map(|p| p.as_bytes().to_vec()).collect(),
            done: Box::new(done),
        });
    }

    /// The control client, to type from the bench's own connection.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.client.shutdown();
    }
}
