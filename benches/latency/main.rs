//! End-to-end latency of the bridge in manual mode, next to a polling baseline, on a real tmux
//! server on a private socket.
//!
//! - **Detection**: the end marker of a `<<CONTROLLER_REQUEST>>` block is printed in the worker
//!   pane → `inbox/<id>.md` exists.
//! - **Delivery**: `outbox/<id>.md` is written → the answer's text shows in the worker pane (and,
//!   as a second figure, → the answer, a shell command, has run and printed its output).
//!
//! Each case (1 pane; 10 panes = the worker plus 9 panes printing a line every ~5 ms) runs two
//! workers at the same time on one tmux server, under the same load: one watched by the
//! `macs-bridge` daemon (release binary, `--mode manual`, `TARGET_PANE_TYPE_DELAY_MS=0`), one
//! served by a baseline that works as peers do: every 500 ms one `tmux capture-pane -p` process,
//! blocks found with `find_blocks`, the request filed with the crate's own
//! `Mailbox::write_request` (same format and fsyncs as the daemon); every 500 ms a look at
//! `outbox/`, the answer typed with a `tmux send-keys -l` process and an `Enter` one.
//!
//! How the moments are taken (one wall clock for all, in microseconds):
//! - "printed": the worker is `bash --norc --noprofile` with `PS1='$ '`; the bench types
//!   `. ask N` into it, and the `ask` script reads `$EPOCHREALTIME` just before the one `printf`
//!   that writes the whole block, and puts that time in the block's text. The script is sourced,
//!   so the pane's command stays `bash` throughout, as an agent's stays `codex`: with `ask` run
//!   as a program, about 1 delivery in 100 took ~1 s longer, because tmux reports a pane's
//!   current command to control clients only once a second, and a report that caught `ask`
//!   running kept the worker "busy" until the next one.
//! - "inbox file exists": an inotify watch (the `notify` crate) on both `inbox/` directories,
//!   stamped when the event arrives; the same instrument for both sides. The daemon's own
//!   `request` JSON line is compared with it as a check.
//! - "outbox written": just before the `rename` of the bench's answer file into `outbox/`.
//! - "on screen": the bench's own control-mode client (`macs_bridge::tmux::client::Client`, a
//!   separate connection per session) stamps the `%output` in which the text is complete.
//!
//! The baseline's poll phase is made independent of the requests: before each request and each
//! answer the bench moves the poller's next look to a random point of the next 500 ms (a free
//! poller meets events at uniformly random points of its period; a bench whose steps follow the
//! poller's own looks would not). Before each bridge answer the bench waits a random 0–100 ms, so
//! that the daemon's 100 ms tick meets answers at random points too.
//!
//! Run: `cargo bench --bench latency` (optional argument: samples per case and side, default
//! 200). Needs tmux ≥ 3.2 and bash ≥ 5.
//!
//! Modules: `watch` (the worker's output and the inbox files), `baseline` (the polling peer),
//! `figures`; `common` (tmux and process guards, the output observer) is shared with the chat
//! bench.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use macs_bridge::detect::blocks::{find_blocks, BlockKind, Limits};
use macs_bridge::mailbox::{Mailbox, RequestKind, RequestRecord};
use macs_bridge::tmux::command::{Command, KeyName, Target};
use macs_bridge::tmux::oneshot::Tmux;
use macs_bridge::tmux::PaneId;

mod baseline;
#[path = "../common/mod.rs"]
mod common;
mod figures;
mod watch;

use baseline::{peer_capture, peer_outbox, Peer, Phase};
use figures::{load_average, print_table};
use watch::{watch_inboxes, Filed, Observer};

use common::{cpu_seconds, lock, machine, now_us, pct, runtime_with_tmux, Process, Server};

const BRIDGE: &str = env!("CARGO_BIN_EXE_macs-bridge");
/// The baseline's poll period.
const POLL: Duration = Duration::from_millis(500);
/// Longest wait for any one step of a sample.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Samples run and thrown away before measuring, per side and case.
const WARMUP: usize = 5;
/// A side gives up after this many failed samples in a case.
const MAX_FAILURES: usize = 10;

/// Prints a request block; takes the time just before the single write that prints it. Sourced
/// (`. ask N`), so no process is started.
const ASK_SCRIPT: &str = r#"# sourced by the worker's shell: . ask N
t=$EPOCHREALTIME
printf '<<CONTROLLER_REQUEST>>\nbench request %s at %s: shall I go on?\n<<CONTROLLER_REQUEST_END>>\n' "$1" "$t"
"#;

/// A pane printing a line every ~5 ms (`read -t` on a pipe nobody writes: no process per line).
const STREAM_SCRIPT: &str = r#"#!/bin/bash
exec 3<> <(:)
i=0
while :; do
  i=$((i+1))
  printf 'stream %s line %07d: lorem ipsum dolor sit amet, consectetur adipiscing elit\n' "$1" "$i"
  read -t 0.005 -u 3
done
"#;

static NEXT_N: AtomicU64 = AtomicU64::new(100_000);
static ABORT: AtomicBool = AtomicBool::new(false);

/// `$EPOCHREALTIME` (`1795219616.752341`, with the locale's decimal mark) in microseconds.
fn parse_epoch(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once(['.', ','])?;
    let frac = format!("{frac:0<6}");
    Some(secs.parse::<i64>().ok()? * 1_000_000 + frac.get(..6)?.parse::<i64>().ok()?)
}

/// A small xorshift generator: random phases without a dependency.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        Rng((now_us() as u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_micros(self.0 % (max.as_micros() as u64).max(1))
    }
}

// ---------------------------------------------------------------------------------------------
// One side's samples

#[derive(Default)]
struct Samples {
    /// End marker printed → inbox file.
    detect: Vec<f64>,
    /// End marker printed → seen in `%output` by the bench (tmux's own share).
    hop: Vec<f64>,
    /// Outbox file → answer text in the pane.
    typed: Vec<f64>,
    /// Outbox file → the answer (a shell command) has run.
    ran: Vec<f64>,
    /// (request id, inbox event time), for the cross-check with the daemon's JSON lines.
    filed: Vec<(String, i64)>,
    failures: Vec<String>,
}

struct Side<'a> {
    obs: &'a Observer,
    filed: mpsc::Receiver<Filed>,
    outbox: PathBuf,
    /// The baseline's pollers; None for the bridge.
    peer: Option<&'a Peer>,
    rng: Rng,
}

struct One {
    detect: i64,
    hop: i64,
    typed: i64,
    ran: i64,
    id: String,
    seen: i64,
}

fn recv(rx: &mpsc::Receiver<i64>, what: &str) -> Result<i64, String> {
    rx.recv_timeout(STEP_TIMEOUT)
        .map_err(|_| format!("timed out waiting for {what}"))
}

impl Side<'_> {
    fn run(&mut self, samples: usize) -> Samples {
        let mut out = Samples::default();
        let mut done = 0;
        let mut k = 0;
        while done < samples && !ABORT.load(Ordering::SeqCst) {
            let n = NEXT_N.fetch_add(1, Ordering::SeqCst);
            match self.one(n) {
                Ok(s) if k >= WARMUP => {
                    out.detect.push(s.detect as f64 / 1000.0);
                    out.hop.push(s.hop as f64 / 1000.0);
                    out.typed.push(s.typed as f64 / 1000.0);
                    out.ran.push(s.ran as f64 / 1000.0);
                    out.filed.push((s.id, s.seen));
                    done += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    out.failures.push(format!("request {n}: {e}"));
                    if out.failures.len() >= MAX_FAILURES {
                        break;
                    }
                }
            }
            k += 1;
        }
        out
    }

    fn one(&mut self, n: u64) -> Result<One, String> {
        // The request.
        let end = self.obs.expect(&["<<CONTROLLER_REQUEST_END>>"]);
        let prompt = self.obs.expect(&["<<CONTROLLER_REQUEST_END>>", "$ "]);
        if let Some(p) = self.peer {
            p.capture.rephase(self.rng.below(POLL));
        }
        self.obs.type_line(&format!(". ask {n}"))?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        let filed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.filed.recv_timeout(left) {
                Ok(f) if f.n == n => break f,
                Ok(_) => continue, // a late file of an earlier, failed sample
                Err(_) => return Err("timed out waiting for the inbox file".into()),
            }
        };
        let seen = recv(&end, "the end marker on screen")?;
        recv(&prompt, "the prompt after the request")?;

        // The answer: a shell command whose output marks that it ran.
        if self.peer.is_none() {
            std::thread::sleep(self.rng.below(Duration::from_millis(100)));
        }
        let answer = format!("echo ack-$(({n}+1))");
        let output = format!("ack-{}\r\n", n + 1);
        let typed = self.obs.expect(&[&answer]);
        let ran = self.obs.expect(&[&output]);
        let back = self.obs.expect(&[&output, "$ "]);
        if let Some(p) = self.peer {
            p.outbox.rephase(self.rng.below(POLL));
        }
        let tmp = self.outbox.join(format!(".{}.md.swp", filed.id));
        fs::write(&tmp, format!("{answer}\n")).map_err(|e| e.to_string())?;
        let written = now_us();
        fs::rename(&tmp, self.outbox.join(format!("{}.md", filed.id)))
            .map_err(|e| e.to_string())?;
        let typed = recv(&typed, "the answer on screen")?;
        let ran = recv(&ran, "the answer's output")?;
        recv(&back, "the prompt after the answer")?;
        Ok(One {
            detect: filed.seen_us - filed.printed_us,
            hop: seen - filed.printed_us,
            typed: typed - written,
            ran: ran - written,
            id: filed.id,
            seen: filed.seen_us,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A case: one tmux server, the daemon, the baseline, and both sides run at once

struct CaseResult {
    panes: usize,
    bridge: Samples,
    baseline: Samples,
    /// Daemon `request` line minus inotify time, per bridge sample (ms).
    event_lag: Vec<f64>,
    /// How many `delivered` lines the daemon printed, and any other outcome lines.
    delivered: usize,
    other_outcomes: Vec<String>,
    status: String,
    /// CPU used while both sides ran, in % of one core: the daemon, the tmux server.
    cpu: (f64, f64),
    /// The baseline's `capture-pane` processes and `write_request` calls (ms).
    looks: Vec<f64>,
    writes: Vec<f64>,
}

fn bridge_status(server: &Server, session: &str, pane: PaneId) -> (bool, String) {
    let out = Proc::new(BRIDGE)
        .args([
            "-L",
            &server.name,
            "--session",
            session,
            "status",
            "--target",
        ])
        .arg(pane.to_string())
        .env_remove("TMUX_SOCKET")
        .env_remove("MACS_SESSION")
        .output()
        .expect("run macs-bridge status");
    (
        out.status.code() == Some(0),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn wait_idle(server: &Server, session: &str, pane: PaneId) -> String {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (idle, line) = bridge_status(server, session, pane);
        if idle {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "the worker in {session} never turned idle: {line}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A side's run for a thread; a panic stops the other side too.
fn drive(samples: usize, mut side: Side<'_>) -> impl FnOnce() -> Samples + Send + '_ {
    move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| side.run(samples))).unwrap_or_else(|p| {
            ABORT.store(true, Ordering::SeqCst);
            std::panic::resume_unwind(p)
        })
    }
}

fn run_case(rt: &tokio::runtime::Runtime, panes: usize, samples: usize) -> CaseResult {
    let dir = tempfile::tempdir().expect("a temp dir");
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).expect("mkdir");
    for (name, text) in [("ask", ASK_SCRIPT), ("stream", STREAM_SCRIPT)] {
        let path = bin.join(name);
        fs::write(&path, text).expect("write a script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let worker = format!(
        "env PS1='$ ' HISTFILE= LC_ALL=C PATH='{}':\"$PATH\" bash --norc --noprofile",
        bin.display()
    );
    let name = format!("macs-bench-{}-{panes}", std::process::id());
    let server = Server::start(name, "macs", &worker);
    server.ok(&[
        "new-session",
        "-d",
        "-s",
        "base",
        "-x",
        "120",
        "-y",
        "40",
        &worker,
    ]);
    for i in 1..panes {
        let cmd = format!(
            "bash --norc --noprofile '{}' {i}",
            bin.join("stream").display()
        );
        server.ok(&["new-window", "-d", "-t", "=macs:", &cmd]);
    }
    let bridge_pane = server.pane_id("=macs:0.0");
    let base_pane = server.pane_id("=base:0.0");
    let status = wait_idle(&server, "macs", bridge_pane);
    wait_idle(&server, "base", base_pane);

    // The daemon.
    let bridge_state = dir.path().join("bridge");
    let stderr = fs::File::create(dir.path().join("daemon.log")).expect("log file");
    let child = Proc::new(BRIDGE)
        .args([
            "-L",
            &server.name,
            "--session",
            "macs",
            "--mode",
            "manual",
            "--json",
        ])
        .args([
            "--no-heuristic",
            "--target",
            &bridge_pane.to_string(),
            "--state-dir",
        ])
        .arg(&bridge_state)
        .env_remove("TMUX_SOCKET")
        .env_remove("TARGET_PANE_LABEL")
        .env_remove("MACS_SESSION")
        .env("TARGET_PANE_TYPE_DELAY_MS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the daemon");
    let mut daemon = Process::new(child);
    let events: Arc<Mutex<Vec<(serde_json::Value, i64)>>> = Arc::default();
    let (started_tx, started_rx) = mpsc::channel();
    {
        let out = daemon.child.stdout.take().expect("stdout");
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let at = now_us();
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["event"] == "started" {
                        let _ = started_tx.send(());
                    }
                    lock(&events).push((v, at));
                }
            }
        });
    }
    if started_rx.recv_timeout(STEP_TIMEOUT).is_err() {
        let log = fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
        panic!("the daemon did not start:\n{log}");
    }

    // The baseline.
    let base_state = dir.path().join("baseline");
    let mailbox = Mailbox::open(&base_state).expect("the baseline's mailbox");
    let peer = Peer {
        capture: Phase::new(),
        outbox: Phase::new(),
        stop: AtomicBool::new(false),
        looks: Mutex::default(),
        writes: Mutex::default(),
    };

    let (bridge_tx, bridge_rx) = mpsc::channel();
    let (base_tx, base_rx) = mpsc::channel();
    let _watcher = watch_inboxes(vec![
        (bridge_state.join("inbox"), bridge_tx),
        (base_state.join("inbox"), base_tx),
    ]);
    let bridge_obs = Observer::start(rt, server.tmux(), "macs", bridge_pane);
    let base_obs = Observer::start(rt, server.tmux(), "base", base_pane);
    let tmux_pid: u32 = server
        .ok(&["display-message", "-p", "#{pid}"])
        .trim()
        .parse()
        .unwrap_or(0);
    let daemon_pid = daemon.child.id();
    let cpu_before = (
        cpu_seconds(daemon_pid),
        cpu_seconds(tmux_pid),
        Instant::now(),
    );

    let (bridge, baseline) = std::thread::scope(|s| {
        let peer = &peer;
        let socket = server.name.as_str();
        let (mailbox, base_state) = (&mailbox, &base_state);
        let capture = s.spawn(move || peer_capture(peer, socket, base_pane, mailbox));
        let outbox = s.spawn(move || peer_outbox(peer, socket, base_pane, base_state));
        let b = s.spawn(drive(
            samples,
            Side {
                obs: &bridge_obs,
                filed: bridge_rx,
                outbox: bridge_state.join("outbox"),
                peer: None,
                rng: Rng::new(1),
            },
        ));
        let p = s.spawn(drive(
            samples,
            Side {
                obs: &base_obs,
                filed: base_rx,
                outbox: base_state.join("outbox"),
                peer: Some(peer),
                rng: Rng::new(2),
            },
        ));
        let results = (b.join(), p.join());
        peer.stop.store(true, Ordering::SeqCst);
        peer.capture.cv.notify_all();
        peer.outbox.cv.notify_all();
        let _ = (capture.join(), outbox.join());
        match results {
            (Ok(b), Ok(p)) => (b, p),
            (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
        }
    });
    let wall = cpu_before.2.elapsed().as_secs_f64();
    let share = |before: Option<f64>, pid: u32| match (before, cpu_seconds(pid)) {
        (Some(b), Some(a)) => (a - b) / wall * 100.0,
        _ => f64::NAN,
    };
    let cpu = (
        share(cpu_before.0, daemon_pid),
        share(cpu_before.1, tmux_pid),
    );
    let (idle_after, status_after) = bridge_status(&server, "macs", bridge_pane);
    if !idle_after {
        eprintln!("note: after the run the worker reads as: {status_after}");
    }
    drop(daemon);

    let events = lock(&events);
    let request_at: HashMap<&str, i64> = events
        .iter()
        .filter(|(v, _)| v["event"] == "request")
        .filter_map(|(v, at)| Some((v["id"].as_str()?, *at)))
        .collect();
    let event_lag = bridge
        .filed
        .iter()
        .filter_map(|(id, seen)| Some((request_at.get(id.as_str())? - seen) as f64 / 1000.0))
        .collect();
    let delivered = events
        .iter()
        .filter(|(v, _)| v["event"] == "delivered")
        .count();
    let other_outcomes = events
        .iter()
        .filter(|(v, _)| {
            matches!(
                v["event"].as_str(),
                Some("unconfirmed" | "error" | "capped")
            )
        })
        .map(|(v, _)| v.to_string())
        .collect();
    let looks = std::mem::take(&mut *lock(&peer.looks));
    let writes = std::mem::take(&mut *lock(&peer.writes));
    CaseResult {
        panes,
        bridge,
        baseline,
        event_lag,
        delivered,
        other_outcomes,
        status,
        cpu,
        looks,
        writes,
    }
}

fn main() {
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let Some(rt) = runtime_with_tmux("bench", 1) else {
        return;
    };
    println!("machine: {}; load average {}", machine(), load_average());
    println!(
        "{samples} requests per case and side (after {WARMUP} warm-up ones); bridge: {BRIDGE}"
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for panes in [1, 10] {
        let t = Instant::now();
        let r = run_case(&rt, panes, samples);
        println!(
            "case {panes} pane(s): {} bridge and {} baseline samples in {:.0} s",
            r.bridge.detect.len(),
            r.baseline.detect.len(),
            t.elapsed().as_secs_f64()
        );
        results.push(r);
    }
    print_table(&results);
    println!(
        "\ntotal {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}
