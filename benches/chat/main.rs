//! The group chat through the daemon: how many messages it routes and persists per minute, and
//! how long a message takes to reach an idle agent's pane, with 10 agents, on a real tmux server
//! on a private socket.
//!
//! Setup: one tmux server (`tmux -L macs-chat-bench-PID`), session `macs`, ten windows of
//! 120x40, each running a sim-agent (`macs-bridge sim-agent`, release binary) labelled
//! `agent1`…`agent10` (`@macs-agent`, as `up --layout chat` names them). Each agent's script is
//! `on-input / busy 200ms / end`: it takes every input, logs it, works 200 ms and is idle again.
//! The daemon is the release binary: `macs-bridge -L … --session macs --mode manual
//! --no-heuristic --json --state-dir DIR`, `TARGET_PANE_TYPE_DELAY_MS=0`, a fresh state dir per
//! phase, its stdout and stderr to files.
//!
//! 1. **Store alone**: `Store::open_in_memory` and `Store::open` (a file in a temp dir: WAL,
//!    `synchronous=NORMAL`, as the daemon opens it), `add_message` in a loop for a fixed time; a
//!    broadcast has 10 recipients (10 delivery rows), a direct message 1.
//! 2. **Latency** (first daemon): one message at a time, each to the next agent in turn
//!    (`chat.send {to, content}` from the person), sent only when the daemon has last reported
//!    that agent idle (`agent.state`). The content holds a unique token. Three moments, all on the
//!    bench's monotonic clock, measured from just before the `chat.send` call:
//!    - the answer to `chat.send` (the message is routed and committed to the store);
//!    - the text on screen: the bench's own control-mode client
//!      (`macs_bridge::tmux::client::Client`, a separate connection) stamps the `%output` of the
//!      agent's pane in which the token is complete (no polling);
//!    - "delivered": the `delivery.update` notification with status `delivered`, on the same API
//!      connection, subscribed before the run. The daemon says delivered once it has pressed
//!      Enter and seen the submission (the pane turned busy, or the prompt emptied).
//! 3. **Throughput** (second daemon): every agent paused first (`agent.pause`), so that
//!    deliveries are held in the store, never typed: the figure is messages *routed and
//!    persisted*, each `chat.send` answered only after its message and all its delivery rows are
//!    committed. C connections each keep D calls in flight for a fixed time; every call is a new
//!    message (broadcast from the person: 10 delivery rows; direct: 1). Then everyone is resumed
//!    (`agent.resume`: the held rows become queued) and the deliveries typed in a fixed window are
//!    counted (`delivery.update` delivered). A last case floods broadcasts again while the agents
//!    are being typed into, each with a backlog of thousands of queued messages. At the end the
//!    daemon is stopped and the store file is opened to check that it holds every accepted
//!    message and delivery row.
//!
//! The bench's own API clients run on the same two cores as the daemon, tmux and the agents.
//!
//! Run: `cargo bench --bench chat` (optional arguments: latency samples, default 500; seconds
//! per throughput case, default 8). Needs tmux ≥ 3.2.
//!
//! Modules: `setup` (the agents and the daemon), `throughput` (the store alone and the
//! floods), `latency`, `figures`; `common` (tmux and process guards, the output observer) is
//! shared with the latency bench.

use std::collections::HashMap;
use std::fs;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use macs_bridge::api::client::{ApiClient, Caller};
use macs_bridge::api::protocol::{event, method};
use macs_bridge::store::{DeliveryStatus, NewMessage, Store};
use macs_bridge::tmux::PaneId;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

#[path = "../common/mod.rs"]
mod common;
mod figures;
mod latency;
mod setup;
mod throughput;

use figures::{machine, per_min, print_floods, print_latency, print_store, thousands};
use latency::{check_logs, latency, Latency};
use setup::{start_agents, start_daemon, Agent, CpuMeter};
use throughput::{flood, resume_and_type, store_case, Flood, StoreCase, Typing};

use common::{cpu_seconds, pct, runtime_with_tmux, Observer, Process, Server};

const BRIDGE: &str = env!("CARGO_BIN_EXE_macs-bridge");
const AGENTS: usize = 10;
/// Every agent: take an input, work 200 ms, be idle again.
const AGENT_SCRIPT: &str = "on-input\nbusy 200ms\nend\n";
/// Longest wait for any one step.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Latency samples run and thrown away first.
const WARMUP: usize = 5;
/// The latency run gives up after this many failed samples.
const MAX_FAILURES: usize = 10;
/// How long each store-alone case runs.
const STORE_CASE: Duration = Duration::from_secs(3);
/// How long deliveries are counted after `agent.resume`.
const TYPING_WINDOW: Duration = Duration::from_secs(15);

/// Message numbers, so that every message's content is different.
static NEXT_N: AtomicU64 = AtomicU64::new(1);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A small xorshift generator: unique tokens without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let samples = numbers.next().unwrap_or(500) as usize;
    let seconds = numbers.next().unwrap_or(8);
    let case = Duration::from_secs(seconds.max(1));
    let Some(rt) = runtime_with_tmux("chat-bench", 2) else {
        return;
    };
    println!("machine: {}", machine());
    println!(
        "{samples} latency samples (after {WARMUP} warm-up ones); {seconds} s per throughput case; bridge: {BRIDGE}"
    );
    let started = Instant::now();

    // 1. The store alone.
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut stores = Vec::new();
    {
        let mut mem = Store::open_in_memory().expect("a store in memory");
        let file = dir.path().join("store-alone.sqlite3");
        let mut disk = Store::open(&file).expect("a store file");
        for (what, store) in [("in memory", &mut mem), ("file (WAL)", &mut disk)] {
            stores.push(store_case(what, store, AGENTS));
            stores.push(store_case(what, store, 1));
        }
    }
    println!(
        "store alone done ({:.0} s)",
        started.elapsed().as_secs_f64()
    );

    // 2. and 3. The daemon, with ten agents.
    let (server, agents) = start_agents(dir.path());
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_daemon_phases(&rt, &server, &agents, dir.path(), samples, case)
    }));
    drop(server);
    let (lat, logs, floods, typing, counts) = match run {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };

    print_store(&stores);
    print_latency(&lat);
    println!(
        "  the agents' logs: {} of {} latency messages logged exactly once, {} not",
        logs.0,
        lat.tokens.len(),
        logs.1
    );
    print_floods(&floods);
    let accepted: u64 = floods.iter().map(|f| f.ok).sum();
    let rows: u64 = floods
        .iter()
        .map(|f| f.ok * f.rows_per_message as u64)
        .sum();
    println!();
    println!(
        "  resumed: `agent.resume` moved {} held deliveries to queued in {:.0} ms; then {} typed and delivered in {:.0} s ({} per minute across {AGENTS} agents); other outcomes: {}",
        thousands(typing.held as f64),
        ms(typing.resume_call),
        typing.delivered,
        typing.window.as_secs_f64(),
        thousands(per_min(typing.delivered, typing.window)),
        if typing.other.is_empty() {
            "none".to_string()
        } else {
            typing.other.join("; ")
        }
    );
    println!(
        "  the store file after the daemon stopped: {} messages (accepted: {}), {} delivery rows (expected: {}); {} delivered",
        thousands(counts.0 as f64),
        thousands(accepted as f64),
        thousands(counts.1 as f64),
        thousands(rows as f64),
        counts.2
    );
    println!("\ntotal {:.0} s", started.elapsed().as_secs_f64());
}

type Results = (Latency, (usize, usize), Vec<Flood>, Typing, (u64, u64, u64));

fn run_daemon_phases(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    agents: &[Agent],
    dir: &Path,
    samples: usize,
    case: Duration,
) -> Results {
    let phase = Instant::now();
    // Latency: a fresh daemon, nothing paused.
    let lat = {
        let daemon = start_daemon(rt, server, dir.join("latency"));
        let panes: Vec<PaneId> = agents.iter().map(|a| a.pane).collect();
        let obs = rt.block_on(Observer::start(server.tmux(), "macs", &panes));
        let pids = [daemon.pid(), server.pid()];
        let lat = rt.block_on(latency(&daemon.socket(), &obs, agents, samples, &pids));
        drop(obs);
        drop(daemon);
        lat
    };
    // Let the last deliveries' work end before the logs are read.
    std::thread::sleep(Duration::from_millis(500));
    let logs = check_logs(agents, &lat.tokens);
    println!("latency done ({:.0} s)", phase.elapsed().as_secs_f64());

    // Throughput: another fresh daemon, everyone paused.
    let phase = Instant::now();
    let mut daemon = start_daemon(rt, server, dir.join("throughput"));
    let socket = daemon.socket();
    let pids = [daemon.pid(), server.pid()];
    let paused = rt.block_on(async {
        let c = ApiClient::connect(&socket).await.expect("connect");
        c.call(method::AGENT_PAUSE, json!({}))
            .await
            .expect("agent.pause")
    });
    assert_eq!(
        paused["names"].as_array().map_or(0, Vec::len),
        AGENTS,
        "{paused}"
    );
    let names: Arc<Vec<String>> = Arc::new(agents.iter().map(|a| a.name.clone()).collect());
    let run = |what: &str, conns: usize, depth: usize, direct: bool| {
        let to = direct.then(|| names.clone());
        let f = rt.block_on(flood(&socket, what, conns, depth, case, to, &pids));
        println!(
            "  {what} {conns}×{depth}: {} accepted in {:.1} s",
            f.ok,
            f.elapsed.as_secs_f64()
        );
        f
    };
    let mut floods = vec![
        run("broadcast, agents paused", 1, 1, false),
        run("broadcast, agents paused", 4, 1, false),
        run("broadcast, agents paused", 8, 8, false),
        run("direct, agents paused", 8, 8, true),
    ];
    let held: u64 = floods
        .iter()
        .map(|f| f.ok * f.rows_per_message as u64)
        .sum();
    let typing = rt.block_on(resume_and_type(&socket, held));
    // Once more while the agents are being typed into, each with a backlog of queued messages
    // longer than the daemon keeps in memory (1,000 per agent).
    floods.push(run("broadcast, agents resumed, backlog", 8, 8, false));
    let clean = daemon.process.stop(Duration::from_secs(20));
    if !clean {
        eprintln!("note: the daemon did not stop within 20 s of SIGTERM; killed");
    }
    let counts = {
        let store = Store::open(&daemon.state.join(macs_bridge::store::FILE_NAME))
            .expect("open the daemon's store");
        let c = store.counts().expect("count the store");
        (
            c.messages,
            c.deliveries.total(),
            c.deliveries.get(DeliveryStatus::Delivered),
        )
    };
    drop(daemon);
    println!("throughput done ({:.0} s)", phase.elapsed().as_secs_f64());
    (lat, logs, floods, typing, counts)
}
