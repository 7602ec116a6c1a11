//! Soak: the daemon killed with SIGKILL at random moments, hundreds of times, while a worker
//! asks 30 questions answered through `outbox/`, and while 150 chat messages flow to three
//! agents. Counted at the end: answers and messages lost, typed twice, and prompts left
//! holding text. Run by hand (it takes minutes):
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! MACS_SOAK_KILLS=300 cargo test --release --test soak -- --ignored --nocapture
//! ```

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{files_in, sim_command, sim_inputs, Daemon, TmuxServer};

/// A small xorshift: random kill times without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
            | 1;
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn kills_wanted() -> usize {
    std::env::var("MACS_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn prompt_of(server: &TmuxServer, target: &str) -> String {
    server
        .capture(target)
        .lines()
        .rev()
        .find(|l| l.starts_with('›'))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Starts a daemon, tolerating a slow start under load (tries again).
fn start(server: &TmuxServer, state: &Path, args: &[&str]) -> Daemon {
    Daemon::start(server, state, args)
}

/// Kills the daemon after a random moment, while `work` runs between kills; returns kills.
fn kill_loop(
    server: &TmuxServer,
    state: &Path,
    args: &[&str],
    rng: &mut Rng,
    max_kills: usize,
    mut done: impl FnMut() -> bool,
    mut work: impl FnMut(),
) -> usize {
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while !done() && Instant::now() < deadline {
        let daemon = start(server, state, args);
        if kills < max_kills {
            let until = Instant::now() + Duration::from_millis(150 + rng.below(1200));
            while Instant::now() < until {
                work();
                std::thread::sleep(Duration::from_millis(10));
            }
            daemon.crash();
            kills += 1;
        } else {
            // Enough kills: let it finish.
            let until = Instant::now() + Duration::from_secs(120);
            while !done() && Instant::now() < until {
                work();
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = daemon.stop();
        }
    }
    kills
}

const QUESTIONS: usize = 30;

#[test]
#[ignore = "a soak of several minutes; run by hand"]
fn manual_answers_through_hundreds_of_kills() {
    let wanted = kills_wanted();
    let mut rng = Rng::new();
    let (mut kills, mut rounds) = (0, 0);
    let (mut lost, mut twice, mut stuck) = (0, 0, 0);
    while kills < wanted {
        rounds += 1;
        let mut script = String::new();
        for i in 1..=QUESTIONS {
            script.push_str(&format!(
                "request\nQuestion {i} of {QUESTIONS}: go on?\nend\nwait\nsay Got it.\n"
            ));
        }
        let server = TmuxServer::start("macs", "sleep 600");
        let cmd = sim_command(&server, "worker", &script, "");
        server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
        server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", "worker"]);
        let state = tempfile::tempdir().expect("state dir");
        let args = ["--mode", "manual", "--no-heuristic"];
        let answered: std::cell::RefCell<BTreeSet<String>> = Default::default();
        let inbox = state.path().join("inbox");
        let outbox = state.path().join("outbox");
        let answer_all = || {
            for f in files_in(&inbox) {
                let Some(id) = f.strip_suffix(".md") else {
                    continue;
                };
                if id.contains('.') || answered.borrow().contains(id) {
                    continue;
                }
                let tmp = outbox.join(format!(".{id}.tmp"));
                if std::fs::write(&tmp, format!("Answer {id}.\n")).is_ok()
                    && std::fs::rename(&tmp, outbox.join(format!("{id}.md"))).is_ok()
                {
                    answered.borrow_mut().insert(id.to_string());
                }
            }
        };
        let logs = || sim_inputs(&server, "worker");
        let budget = wanted - kills;
        kills += kill_loop(
            &server,
            state.path(),
            &args,
            &mut rng,
            budget,
            || logs().len() >= QUESTIONS && prompt_of(&server, "macs:0.0") == "›",
            answer_all,
        );
        let got = logs();
        let distinct: BTreeSet<&String> = got.iter().collect();
        twice += got.len() - distinct.len();
        lost += QUESTIONS.saturating_sub(distinct.len());
        if prompt_of(&server, "macs:0.0") != "›" {
            stuck += 1;
        }
        eprintln!(
            "manual round {rounds}: {kills} kills so far; inputs {} (distinct {})",
            got.len(),
            distinct.len()
        );
    }
    eprintln!(
        "manual soak: {rounds} rounds of {QUESTIONS} questions, {kills} kills: \
         {lost} lost, {twice} typed twice, {stuck} prompts stuck"
    );
    assert_eq!((lost, twice, stuck), (0, 0, 0));
}

const MESSAGES: usize = 150;
const AGENTS: [&str; 3] = ["a1", "a2", "a3"];

/// Sends one line to the daemon's API and reads the reply; None when the daemon is away.
fn call(state: &Path, line: &str) -> Option<serde_json::Value> {
    let stream = UnixStream::connect(state.join("macs.sock")).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut w = stream.try_clone().ok()?;
    w.write_all(line.as_bytes()).ok()?;
    w.write_all(b"\n").ok()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut reply = String::new();
        if reader.read_line(&mut reply).ok()? == 0 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&reply).ok()?;
        if v.get("method").is_none() {
            return Some(v);
        }
    }
}

#[test]
#[ignore = "a soak of several minutes; run by hand"]
fn chat_messages_through_hundreds_of_kills() {
    let wanted = kills_wanted();
    let mut rng = Rng::new();
    let (mut kills, mut rounds) = (0, 0);
    let (mut lost, mut twice, mut stuck) = (0, 0, 0);
    while kills < wanted {
        rounds += 1;
        let server = TmuxServer::start("macs", "sleep 600");
        for (i, name) in AGENTS.iter().enumerate() {
            let cmd = sim_command(&server, name, "on-input\nbusy 100ms\nend\n", "");
            let pane = if i == 0 {
                server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
                "macs:0.0".to_string()
            } else {
                let p = server.ok(&["split-window", "-P", "-F", "#{pane_id}", "-t", "macs", &cmd]);
                server.ok(&["select-layout", "-t", "macs", "tiled"]);
                p.trim().to_string()
            };
            server.ok(&["set-option", "-p", "-t", &pane, "@macs-agent", name]);
        }
        let state = tempfile::tempdir().expect("state dir");
        let args = ["--mode", "manual", "--no-heuristic"];
        let next = std::cell::Cell::new(0usize);
        let sent: std::cell::RefCell<HashMap<String, Vec<String>>> = Default::default();
        let state_path = state.path().to_path_buf();
        let send_some = || {
            let n = next.get();
            if n >= MESSAGES {
                return;
            }
            let to = AGENTS[n % AGENTS.len()];
            let content = format!("message {n} of round {rounds}");
            let line = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"chat.send","params":{{"to":"{to}","content":"{content}"}}}}"#
            );
            let stored = match call(&state_path, &line) {
                Some(v) => v.get("result").is_some(),
                // No answer: the daemon may have stored it before dying. Look before sending
                // again, as a careful client would.
                None => call(
                    &state_path,
                    r#"{"jsonrpc":"2.0","id":2,"method":"chat.history","params":{"limit":1000}}"#,
                )
                .and_then(|v| v["result"]["messages"].as_array().cloned())
                .is_some_and(|m| m.iter().any(|m| m["content"] == content.as_str())),
            };
            if stored {
                sent.borrow_mut()
                    .entry(to.to_string())
                    .or_default()
                    .push(format!("[from person] {content}"));
                next.set(n + 1);
            }
        };
        let all_in = |server: &TmuxServer| {
            AGENTS
                .iter()
                .all(|a| sim_inputs(server, a).len() >= MESSAGES / AGENTS.len())
        };
        let budget = wanted - kills;
        kills += kill_loop(
            &server,
            state.path(),
            &args,
            &mut rng,
            budget,
            || all_in(&server) && next.get() >= MESSAGES,
            send_some,
        );
        for (i, a) in AGENTS.iter().enumerate() {
            let got = sim_inputs(&server, a);
            let distinct: BTreeSet<&String> = got.iter().collect();
            twice += got.len() - distinct.len();
            let want = sent.borrow().get(*a).cloned().unwrap_or_default();
            lost += want.iter().filter(|w| !distinct.contains(w)).count();
            let target = if i == 0 {
                "macs:0.0".to_string()
            } else {
                format!("macs:0.{i}")
            };
            if prompt_of(&server, &target) != "›" {
                stuck += 1;
            }
        }
        eprintln!(
            "chat round {rounds}: {kills} kills so far, {} messages sent",
            next.get()
        );
    }
    eprintln!(
        "chat soak: {rounds} rounds of {MESSAGES} messages, {kills} kills: \
         {lost} lost, {twice} typed twice, {stuck} prompts stuck"
    );
    assert_eq!((lost, twice, stuck), (0, 0, 0));
}
