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
use macs_bridge::tmux::oneshot::{Socket, Tmux};
use macs_bridge::tmux::PaneId;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

mod common;

use common::{cpu_seconds, on_signal_clean_up, pct, Observer, Process, Server};

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

// ---------------------------------------------------------------------------------------------
// The agents and the daemon

struct Agent {
    name: String,
    pane: PaneId,
    log: PathBuf,
}

/// The tmux server with ten labelled sim-agents, one per window.
fn start_agents(dir: &Path) -> (Server, Vec<Agent>) {
    let script = dir.join("agent.script");
    fs::write(&script, AGENT_SCRIPT).expect("write the agents' script");
    let command = |name: &str, log: &Path| {
        format!(
            "{BRIDGE} sim-agent --script '{}' --name {name} --log '{}'",
            script.display(),
            log.display()
        )
    };
    let name = format!("macs-chat-bench-{}", std::process::id());
    let mut agents = Vec::new();
    let mut server = None;
    for i in 1..=AGENTS {
        let agent = format!("agent{i}");
        let log = dir.join(format!("{agent}.log"));
        let cmd = command(&agent, &log);
        let pane = match &server {
            None => {
                let s = Server::start(name.clone(), "macs", &cmd);
                let p = s.ok(&["display-message", "-p", "-t", "=macs:0.0", "#{pane_id}"]);
                server = Some(s);
                p
            }
            Some(s) => s.ok(&[
                "new-window",
                "-d",
                "-P",
                "-F",
                "#{pane_id}",
                "-t",
                "=macs:",
                &cmd,
            ]),
        };
        let pane: PaneId = pane.trim().parse().expect("a pane id");
        let s = server.as_ref().expect("the server");
        s.ok(&[
            "set-option",
            "-p",
            "-t",
            &pane.to_string(),
            "@macs-agent",
            &agent,
        ]);
        agents.push(Agent {
            name: agent,
            pane,
            log,
        });
    }
    (server.expect("the server"), agents)
}

struct Daemon {
    process: Process,
    state: PathBuf,
}

impl Daemon {
    fn socket(&self) -> PathBuf {
        macs_bridge::api::socket_path(&self.state)
    }

    fn pid(&self) -> u32 {
        self.process.child.id()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.state.with_extension("stderr")).unwrap_or_default()
    }
}

/// Starts the daemon on a fresh state dir; returns once its API lists every agent idle.
fn start_daemon(rt: &tokio::runtime::Runtime, server: &Server, state: PathBuf) -> Daemon {
    fs::create_dir_all(&state).expect("mkdir the state dir");
    let stdout = fs::File::create(state.with_extension("stdout")).expect("a log file");
    let stderr = fs::File::create(state.with_extension("stderr")).expect("a log file");
    let child = Proc::new(BRIDGE)
        .args(["-L", &server.name, "--session", "macs", "--mode", "manual"])
        .args(["--no-heuristic", "--json", "--state-dir"])
        .arg(&state)
        .env_remove("TMUX_SOCKET")
        .env_remove("TARGET_PANE_LABEL")
        .env_remove("MACS_SESSION")
        .env("TARGET_PANE_TYPE_DELAY_MS", "0")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start the daemon");
    let mut daemon = Daemon {
        process: Process::new(child),
        state,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        if let Ok(Some(status)) = daemon.process.child.try_wait() {
            panic!("the daemon exited ({status}):\n{}", daemon.log());
        }
        let answer = rt.block_on(async {
            let c = ApiClient::connect(daemon.socket()).await.ok()?;
            c.call(method::AGENTS_LIST, json!({})).await.ok()
        });
        if let Some(a) = answer {
            let agents = a["agents"].as_array().cloned().unwrap_or_default();
            let idle = agents.iter().filter(|a| a["state"] == "idle").count();
            if agents.len() == AGENTS && idle == AGENTS {
                return daemon;
            }
            last = a.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never listed {AGENTS} idle agents: {last}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU use of some processes over a stretch of time, in % of one core.
struct CpuMeter {
    pids: Vec<u32>,
    before: Vec<Option<f64>>,
    start: Instant,
}

impl CpuMeter {
    fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            before: pids.iter().map(|p| cpu_seconds(*p)).collect(),
            start: Instant::now(),
        }
    }

    fn shares(&self) -> Vec<f64> {
        let wall = self.start.elapsed().as_secs_f64();
        self.pids
            .iter()
            .zip(&self.before)
            .map(|(pid, before)| match (before, cpu_seconds(*pid)) {
                (Some(b), Some(a)) => (a - b) / wall * 100.0,
                _ => f64::NAN,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Watching the panes' output on our own control connection

/// The `%output` of `pane` in which `token` shows, from now on, stamped on the bench's clock.
fn shown(obs: &Observer, pane: PaneId, token: &str) -> oneshot::Receiver<Instant> {
    let (tx, rx) = oneshot::channel();
    obs.expect(pane, &[token], move |stamp| {
        let _ = tx.send(stamp.at);
    });
    rx
}

// ---------------------------------------------------------------------------------------------
// The store alone

struct StoreCase {
    what: String,
    recipients: usize,
    messages: u64,
    elapsed: Duration,
}

fn store_case(what: &str, store: &mut Store, recipients: usize) -> StoreCase {
    let names: Vec<(String, Option<String>)> = (1..=recipients)
        .map(|i| (format!("agent{i}"), Some(format!("%{i}"))))
        .collect();
    let to = if recipients == 1 { "agent1" } else { "all" };
    let start = Instant::now();
    let mut messages = 0;
    while start.elapsed() < STORE_CASE {
        for _ in 0..100 {
            let n = NEXT_N.fetch_add(1, Ordering::Relaxed);
            let m = NewMessage::chat("person", to, &content(n));
            // Held, as the daemon stores them for paused agents in the throughput case.
            store
                .add_message(&m, &names, &|_| true)
                .expect("add a message");
            messages += 1;
        }
    }
    StoreCase {
        what: what.to_string(),
        recipients,
        messages,
        elapsed: start.elapsed(),
    }
}

/// A message's text: about 80 bytes, different every time, one line, typed with `send-keys -l`
/// (no `/`, `@` or `name.ext` that would make the daemon paste it).
fn content(n: u64) -> String {
    format!("bench message {n:08}: please look at the parser change and tell me what you think")
}

// ---------------------------------------------------------------------------------------------
// Throughput through the daemon

struct Flood {
    what: String,
    conns: usize,
    depth: usize,
    rows_per_message: usize,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Round trip of each accepted call (ms).
    rtt: Vec<f64>,
    /// CPU of the daemon and of the tmux server, in % of one core.
    cpu: Vec<f64>,
}

/// C connections, each with D `chat.send` calls in flight, for `dur`.
async fn flood(
    socket: &Path,
    what: &str,
    conns: usize,
    depth: usize,
    dur: Duration,
    direct_to: Option<Arc<Vec<String>>>,
    pids: &[u32],
) -> Flood {
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(ApiClient::connect(socket).await.expect("connect"));
    }
    let meter = CpuMeter::start(pids);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for c in &clients {
        for _ in 0..depth {
            let caller: Caller = c.caller();
            let to = direct_to.clone();
            tasks.push(tokio::spawn(async move {
                let mut rtt = Vec::new();
                let (mut errors, mut first_error, mut last) = (0u64, None, Instant::now());
                while Instant::now() < deadline {
                    let n = NEXT_N.fetch_add(1, Ordering::Relaxed);
                    let params = match &to {
                        Some(names) => {
                            json!({"to": names[n as usize % names.len()], "content": content(n)})
                        }
                        None => json!({"to": "all", "content": content(n)}),
                    };
                    let t = Instant::now();
                    match caller.call(method::CHAT_SEND, params).await {
                        Ok(_) => rtt.push(ms(t.elapsed())),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                    last = Instant::now();
                }
                (rtt, errors, first_error, last)
            }));
        }
    }
    let mut out = Flood {
        what: what.to_string(),
        conns,
        depth,
        rows_per_message: if direct_to.is_some() { 1 } else { AGENTS },
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        rtt: Vec::new(),
        cpu: Vec::new(),
    };
    let mut end = start;
    for t in tasks {
        let (rtt, errors, first_error, last) = t.await.expect("a sender task");
        out.ok += rtt.len() as u64;
        out.rtt.extend(rtt);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
        end = end.max(last);
    }
    out.cpu = meter.shares();
    out.elapsed = end - start;
    out
}

struct Typing {
    held: u64,
    resume_call: Duration,
    delivered: u64,
    other: Vec<String>,
    window: Duration,
}

/// Resumes everyone and counts the deliveries typed in `TYPING_WINDOW`.
async fn resume_and_type(socket: &Path, held: u64) -> Typing {
    let mut sub = ApiClient::connect(socket).await.expect("connect");
    sub.subscribe(&[event::DELIVERY_UPDATE])
        .await
        .expect("subscribe");
    let caller = sub.caller();
    let t = Instant::now();
    caller
        .call(method::AGENT_RESUME, json!({}))
        .await
        .expect("agent.resume");
    let resume_call = t.elapsed();
    let window_start = Instant::now();
    let deadline = window_start + TYPING_WINDOW;
    let (mut delivered, mut other) = (0, Vec::new());
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline.into(), sub.next_notification()).await
    {
        if n.method != event::DELIVERY_UPDATE {
            other.push(format!("{}: {}", n.method, n.params));
            continue;
        }
        match n.params["status"].as_str() {
            Some("delivered") => delivered += 1,
            Some("queued" | "delivering") => {}
            _ => other.push(n.params.to_string()),
        }
    }
    Typing {
        held,
        resume_call,
        delivered,
        other,
        window: window_start.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// Latency to an idle agent's pane

#[derive(Default)]
struct Latency {
    /// `chat.send` answered (ms).
    reply: Vec<f64>,
    /// The text on screen (ms).
    shown: Vec<f64>,
    /// `delivery.update` delivered (ms).
    delivered: Vec<f64>,
    /// Samples whose `chat.send` answer said the recipient was queued (not typed at once).
    queued: usize,
    failures: Vec<String>,
    tokens: Vec<(usize, String)>,
    cpu: Vec<f64>,
}

async fn latency(
    socket: &Path,
    obs: &Observer,
    agents: &[Agent],
    samples: usize,
    pids: &[u32],
) -> Latency {
    let mut client = ApiClient::connect(socket).await.expect("connect");
    client
        .subscribe(&[event::DELIVERY_UPDATE, event::AGENT_STATE])
        .await
        .expect("subscribe");
    let caller = client.caller();
    // Stamped as they arrive, consumed in order by the sample loop.
    let (tx, mut notes) = mpsc::unbounded_channel::<(Value, String, Instant)>();
    tokio::spawn(async move {
        while let Some(n) = client.next_notification().await {
            let at = Instant::now();
            if tx.send((n.params, n.method, at)).is_err() {
                break;
            }
        }
    });
    let list = caller
        .call(method::AGENTS_LIST, json!({}))
        .await
        .expect("agents.list");
    let mut state: HashMap<String, String> = list["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["name"].as_str()?.into(), a["state"].as_str()?.into())))
        .collect();
    let apply = |state: &mut HashMap<String, String>, p: &Value, m: &str| {
        if m == event::AGENT_STATE {
            if let (Some(n), Some(s)) = (p["name"].as_str(), p["state"].as_str()) {
                state.insert(n.to_string(), s.to_string());
            }
        }
    };

    let mut out = Latency::default();
    let mut rng = Rng::new();
    let mut meter = None;
    let mut k = 0usize;
    let mut done = 0usize;
    while done < samples && out.failures.len() < MAX_FAILURES {
        if k == WARMUP {
            meter = Some(CpuMeter::start(pids));
        }
        let agent = &agents[k % agents.len()];
        // Only to an agent the daemon last saw idle.
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        while let Ok((p, m, _)) = notes.try_recv() {
            apply(&mut state, &p, &m);
        }
        while state.get(&agent.name).map(String::as_str) != Some("idle") {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some((p, m, _))) => apply(&mut state, &p, &m),
                Ok(None) => panic!("the daemon closed the API connection"),
                Err(_) => panic!("{} never turned idle", agent.name),
            }
        }
        let token = format!("tok{k:05}x{:06x}", rng.next() & 0xff_ffff);
        let shown = shown(obs, agent.pane, &token);
        let t0 = Instant::now();
        let r = caller
            .call(
                method::CHAT_SEND,
                json!({"to": agent.name, "content": format!("bench ping {token} please ack")}),
            )
            .await;
        let replied = t0.elapsed();
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                out.failures.push(format!("sample {k}: chat.send: {e}"));
                k += 1;
                continue;
            }
        };
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let was_queued = r["queued"].as_array().is_some_and(|q| !q.is_empty());
        let shown = match tokio::time::timeout(STEP_TIMEOUT, shown).await {
            Ok(Ok(at)) => at - t0,
            _ => {
                out.failures.push(format!(
                    "sample {k}: the text never showed in {}",
                    agent.name
                ));
                k += 1;
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let delivered = loop {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some((p, m, at))) => {
                    apply(&mut state, &p, &m);
                    if m == event::DELIVERY_UPDATE && p["message_id"] == id.as_str() {
                        match p["status"].as_str() {
                            Some("delivered") => break Ok(at - t0),
                            Some("queued" | "delivering") => {}
                            _ => break Err(format!("sample {k}: {p}")),
                        }
                    }
                }
                _ => break Err(format!("sample {k}: no `delivered` for {id}")),
            }
        };
        let delivered = match delivered {
            Ok(d) => d,
            Err(e) => {
                out.failures.push(e);
                k += 1;
                continue;
            }
        };
        if k >= WARMUP {
            out.reply.push(ms(replied));
            out.shown.push(ms(shown));
            out.delivered.push(ms(delivered));
            out.queued += usize::from(was_queued);
            out.tokens.push((k % agents.len(), token));
            done += 1;
        }
        k += 1;
    }
    if let Some(m) = meter {
        out.cpu = m.shares();
    }
    out
}

/// How many times each latency token shows among the inputs the agents logged.
fn check_logs(agents: &[Agent], tokens: &[(usize, String)]) -> (usize, usize) {
    let inputs: Vec<String> = agents
        .iter()
        .map(|a| fs::read_to_string(&a.log).unwrap_or_default())
        .collect();
    let mut once = 0;
    let mut wrong = 0;
    for (i, token) in tokens {
        let needle = format!("{token} please ack");
        match inputs[*i].matches(&needle).count() {
            1 => once += 1,
            _ => wrong += 1,
        }
    }
    (once, wrong)
}

// ---------------------------------------------------------------------------------------------
// Figures

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// 1234567 → "1,234,567".
fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_min(n: u64, d: Duration) -> f64 {
    n as f64 * 60.0 / d.as_secs_f64().max(1e-9)
}

fn print_store(cases: &[StoreCase]) {
    println!();
    println!("| store alone: `add_message` | recipients | messages | s | messages/min | delivery rows/min |");
    println!("|---|---|---|---|---|---|");
    for c in cases {
        let m = per_min(c.messages, c.elapsed);
        println!(
            "| {} | {} | {} | {:.1} | {} | {} |",
            c.what,
            c.recipients,
            thousands(c.messages as f64),
            c.elapsed.as_secs_f64(),
            thousands(m),
            thousands(m * c.recipients as f64)
        );
    }
}

fn print_floods(floods: &[Flood]) {
    println!();
    println!(
        "| through the daemon: `chat.send` | conns × in flight | accepted | s | messages/min | delivery rows/min | call p50 ms | call p99 ms | daemon CPU | tmux CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in floods {
        let m = per_min(f.ok, f.elapsed);
        println!(
            "| {} | {} × {} | {} | {:.1} | {} | {} | {:.2} | {:.2} | {:.0} % | {:.0} % |",
            f.what,
            f.conns,
            f.depth,
            thousands(f.ok as f64),
            f.elapsed.as_secs_f64(),
            thousands(m),
            thousands(m * f.rows_per_message as f64),
            pct(&f.rtt, 50.0),
            pct(&f.rtt, 99.0),
            f.cpu.first().copied().unwrap_or(f64::NAN),
            f.cpu.get(1).copied().unwrap_or(f64::NAN),
        );
    }
    for f in floods.iter().filter(|f| f.errors > 0) {
        println!(
            "  {}: {} calls failed; the first: {}",
            f.what,
            f.errors,
            f.first_error.as_deref().unwrap_or("?")
        );
    }
}

fn print_latency(l: &Latency) {
    println!();
    println!(
        "| latency, {AGENTS} idle agents (ms from just before `chat.send`) | n | p50 | p90 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|");
    let rows: [(&str, &[f64]); 3] = [
        ("`chat.send` answered (routed, persisted)", &l.reply),
        ("text on screen in the agent's pane", &l.shown),
        ("`delivery.update` delivered", &l.delivered),
    ];
    for (what, v) in rows {
        println!(
            "| {what} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            max(v)
        );
    }
    println!();
    println!(
        "  answers that said the recipient was queued: {}; CPU while sampling: daemon {:.1} %, tmux server {:.1} % of one core",
        l.queued,
        l.cpu.first().copied().unwrap_or(f64::NAN),
        l.cpu.get(1).copied().unwrap_or(f64::NAN),
    );
    if !l.failures.is_empty() {
        println!("  {} failed sample(s):", l.failures.len());
        for f in &l.failures {
            println!("    {f}");
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// The machine, and its load average when the bench starts.
fn machine() -> String {
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!("{}, load average {load} at the start", common::machine())
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let samples = numbers.next().unwrap_or(500) as usize;
    let seconds = numbers.next().unwrap_or(8);
    let case = Duration::from_secs(seconds.max(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let probe = Tmux::new(Socket::Name(format!(
        "macs-chat-bench-probe-{}",
        std::process::id()
    )));
    match rt.block_on(probe.check_version()) {
        Ok(v) if !v.is_too_old() => {}
        Ok(v) => {
            println!("skipped: {} is older than 3.2", v.text);
            return;
        }
        Err(e) => {
            println!("skipped: no usable tmux ({e})");
            return;
        }
    }
    on_signal_clean_up(&rt);
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
