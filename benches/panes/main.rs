//! The daemon with many panes: how often it wakes when nothing happens, and what it costs when
//! every pane streams agent output. One tmux server on a private socket per phase
//! (`tmux -L macs-panes-bench-PID-…`), 50 panes of 120x40, one window each: the first named
//! `worker`, the others labelled `agent1`…`agent49` (`@macs-agent`), so the daemon watches
//! every pane (the worker for requests, the agents for chat). The daemon is the release binary
//! (`macs-bridge -L … --session macs --mode manual --json --state-dir DIR`, a fresh state dir).
//!
//! 1. **Idle.** Every pane runs `bash --norc --noprofile` at a `$ ` prompt. Baseline: a plain
//!    control client (`tmux -C attach`, reading everything and doing nothing) is attached
//!    instead of the daemon. After a warm-up, the bench reads, for each process, the context
//!    switches of all its threads (`voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` in
//!    `/proc/PID/task/*/status`) and its CPU time (`utime` + `stime` in `/proc/PID/stat`), and
//!    again after the measured stretch. A thread that sleeps and wakes switches at least once
//!    per wake-up, so switches a second is the process's wake-ups a second. Aim: under 2 for
//!    the daemon.
//! 2. **Streaming.** Every pane runs this bench again as a replayer (`--replay`, see
//!    `replay.rs`; the pty in raw mode without echo): the pane output of
//!    `tests/fixtures/control/agents-3.3a.ctl` (real Codex, Claude Code and Gemini CLI screens
//!    with all their escapes), 100 KB/s per pane by default, written every 20 ms on an absolute
//!    schedule, each pane from another place in it. All start together once everything is
//!    attached; the measured stretch starts a second later. Baseline: the same with the plain
//!    control client instead of the daemon. Aim: the daemon at most 10 % of one core.
//!
//! Run: `cargo bench --bench panes` (optional arguments: seconds measured per phase, default
//! 10; KB/s per pane, default 100; panes, default 50). Needs tmux ≥ 3.2.

use std::fs;
use std::path::Path;
use std::process::{Command as Proc, Stdio};
use std::time::{Duration, Instant};

use macs_bridge::api::client::ApiClient;
use macs_bridge::api::protocol::method;
use serde_json::json;

#[path = "../common/mod.rs"]
mod common;
mod fleet;
mod replay;

use common::cpu_seconds;
use common::{machine, runtime_with_tmux, Process, Server};
use fleet::{load, start_daemon, start_panes, start_plain_client, Meter, Share};

const BRIDGE: &str = env!("CARGO_BIN_EXE_macs-bridge");
const SESSION: &str = "macs";
/// Time given to each phase before it is measured (the daemon's start-up work done).
const WARM_UP: Duration = Duration::from_secs(3);

fn main() {
    if replay::run_if_asked() {
        return;
    }
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let seconds = numbers.next().unwrap_or(10).max(1);
    let kbps = numbers.next().unwrap_or(100).max(1);
    let n = numbers.next().unwrap_or(50).max(2) as usize;
    let measured = Duration::from_secs(seconds);
    let Some(rt) = runtime_with_tmux("panes-bench", 2) else {
        return;
    };
    println!("machine: {}", machine());
    println!(
        "{n} panes; {seconds} s measured per phase after {} s of warm-up; streaming {kbps} KB/s per pane; bridge: {BRIDGE}",
        WARM_UP.as_secs()
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let name = |phase: &str| format!("macs-panes-bench-{}-{phase}", std::process::id());

    // 1. Idle.
    let shell = |_: usize| "env PS1='$ ' bash --norc --noprofile".to_string();
    let idle_base = {
        let server = start_panes(&name("idle-base"), n, &shell);
        let client = start_plain_client(&server);
        std::thread::sleep(WARM_UP);
        let load0 = load();
        let m = Meter::start(&[server.pid(), client.child.id()]);
        std::thread::sleep(measured);
        (m.read(), load0, load())
    };
    let idle = {
        let server = start_panes(&name("idle"), n, &shell);
        let daemon = start_daemon(&rt, &server, &dir.path().join("idle-state"), n - 1);
        std::thread::sleep(WARM_UP);
        let load0 = load();
        let m = Meter::start(&[daemon.child.id(), server.pid()]);
        std::thread::sleep(measured);
        (m.read(), load0, load())
    };
    println!();
    println!("idle: {n} shells at a prompt, nothing typed or printed");
    println!();
    println!("| idle, {n} panes | process | wake-ups/s (context switches, all threads) | threads | CPU % of one core | load average before → after |");
    println!("|---|---|---|---|---|---|");
    let row = |case: &str, who: &str, s: &Share, l: &(String, String)| {
        println!(
            "| {case} | {who} | {:.1} | {} | {:.2} | {} → {} |",
            s.wakeups, s.threads, s.cpu, l.0, l.1
        );
    };
    let l = (idle_base.1.clone(), idle_base.2.clone());
    row(
        "baseline: plain `tmux -C` client",
        "tmux server",
        &idle_base.0[0],
        &l,
    );
    row(
        "baseline: plain `tmux -C` client",
        "`tmux -C` client",
        &idle_base.0[1],
        &l,
    );
    let l = (idle.1.clone(), idle.2.clone());
    row("daemon attached", "**daemon**", &idle.0[0], &l);
    row("daemon attached", "tmux server", &idle.0[1], &l);
    println!();
    println!(
        "aim: the idle daemon under 2 wake-ups/s: {:.1}/s ({})",
        idle.0[0].wakeups,
        if idle.0[0].wakeups < 2.0 {
            "met"
        } else {
            "NOT met"
        }
    );

    // 2. Streaming.
    let corpus = dir.path().join("corpus.bin");
    let bytes = replay::corpus();
    fs::write(&corpus, &bytes).expect("write the corpus");
    let rate = kbps * 1000;
    let run = measured + WARM_UP + Duration::from_secs(1);
    let stream = |phase: &str, with_daemon: bool| -> Streamed {
        let start = dir.path().join(format!("start-{phase}"));
        let stats = dir.path().join(format!("stats-{phase}"));
        fs::create_dir_all(&stats).expect("mkdir stats");
        let me = std::env::current_exe().expect("the bench's path");
        let command = |i: usize| {
            format!(
                "stty raw -echo; exec '{}' --replay '{}' {rate} {} {} '{}' '{}/{i}'",
                me.display(),
                corpus.display(),
                i * bytes.len() / n,
                run.as_secs_f64(),
                start.display(),
                stats.display()
            )
        };
        let server = start_panes(&name(phase), n, &command);
        let watcher = if with_daemon {
            start_daemon(
                &rt,
                &server,
                &dir.path().join(format!("{phase}-state")),
                n - 1,
            )
        } else {
            start_plain_client(&server)
        };
        std::thread::sleep(Duration::from_secs(1));
        fs::write(&start, "go").expect("start the replayers");
        std::thread::sleep(Duration::from_secs(1));
        let load0 = load();
        let m = Meter::start(&[watcher.child.id(), server.pid()]);
        std::thread::sleep(measured);
        let shares = m.read();
        let load1 = load();
        // What the replayers wrote, once they are done.
        let deadline = Instant::now() + run + Duration::from_secs(30);
        let mut done = Vec::new();
        while done.len() < n && Instant::now() < deadline {
            done = (0..n)
                .filter_map(|i| fs::read_to_string(stats.join(i.to_string())).ok())
                .filter_map(|s| {
                    let (b, t) = s.split_once(' ')?;
                    Some((b.parse::<f64>().ok()?, t.parse::<f64>().ok()?))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(100));
        }
        let rates: Vec<f64> = done.iter().map(|(b, t)| b / t.max(1e-9) / 1000.0).collect();
        drop(watcher);
        drop(server);
        Streamed {
            shares,
            load: (load0, load1),
            panes: rates.len(),
            mean_kbps: rates.iter().sum::<f64>() / rates.len().max(1) as f64,
            min_kbps: rates.iter().copied().fold(f64::INFINITY, f64::min),
        }
    };
    let base = stream("stream-base", false);
    let daemon = stream("stream", true);
    println!();
    println!(
        "streaming: {n} panes, each replaying {:.2} MB of real agent screens (tests/fixtures/control/agents-3.3a.ctl) at {kbps} KB/s",
        bytes.len() as f64 / 1e6
    );
    println!();
    println!("| streaming, {n} panes × {kbps} KB/s | achieved KB/s per pane (mean, min; panes) | control client CPU % | tmux server CPU % | client wake-ups/s | load average before → after |");
    println!("|---|---|---|---|---|---|");
    for (case, s) in [
        ("baseline: plain `tmux -C` client", &base),
        ("**daemon** attached", &daemon),
    ] {
        println!(
            "| {case} | {:.1}, {:.1}; {} | {:.1} | {:.1} | {:.0} | {} → {} |",
            s.mean_kbps,
            s.min_kbps,
            s.panes,
            s.shares[0].cpu,
            s.shares[1].cpu,
            s.shares[0].wakeups,
            s.load.0,
            s.load.1
        );
    }
    println!();
    println!(
        "aim: the daemon at most 10 % of one core: {:.1} % ({})",
        daemon.shares[0].cpu,
        if daemon.shares[0].cpu <= 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}

struct Streamed {
    shares: Vec<Share>,
    load: (String, String),
    panes: usize,
    mean_kbps: f64,
    min_kbps: f64,
}
