//! `macs-bridge demo`: the main job on a built-in setup that needs nothing but tmux.
//!
//! It starts a private tmux server (never the user's), a scripted worker and a scripted
//! controller (`sim-agent`, scripts in `examples/sim/demo-*.txt`, built in), and the daemon in
//! auto mode with the pane backend. The worker asks three questions with request blocks; the
//! bridge types each into the controller, takes the controller's response block, and types the
//! instructions into the worker. The demo narrates the daemon's events and exits 0 when every
//! round was delivered and the worker accepted every answer, non-zero otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::tmux::oneshot::{Socket, Tmux, TmuxError};

const WORKER_SCRIPT: &str = include_str!("../examples/sim/demo-worker.txt");
const CONTROLLER_SCRIPT: &str = include_str!("../examples/sim/demo-controller.txt");
const ROUNDS: usize = 3;
const SESSION: &str = "demo";

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Attach to the demo's tmux session to watch it live (needs a terminal).
    pub attach: bool,
    /// Give up after this many seconds.
    pub timeout: u64,
}

/// Why the demo could not run (a demo that runs and fails is not an error: see [`run`]).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Tmux(#[from] TmuxError),
}

fn failure(message: impl Into<String>) -> DemoError {
    DemoError::Failed(message.into())
}

/// Where the demo tells what happens: standard output, or a file shown in a pane.
struct Narrator {
    file: Option<std::fs::File>,
}

impl Narrator {
    fn say(&mut self, line: &str) {
        let stamp = chrono::Local::now().format("%H:%M:%S");
        match &mut self.file {
            Some(f) => {
                let _ = writeln!(f, "{stamp}  {line}");
            }
            None => println!("{stamp}  {line}"),
        }
    }
}

/// Removes the private server and the scratch dir, whatever happens.
struct Cleanup {
    tmux: Tmux,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(&self.tmux.bin);
        cmd.args(self.tmux.socket.args()).arg("kill-server");
        let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the demo; `Ok(true)` when every round was delivered and the worker accepted every
/// answer.
pub async fn run(args: DemoOptions) -> Result<bool, DemoError> {
    use std::io::IsTerminal;
    if args.attach && !std::io::stdin().is_terminal() {
        return Err(failure("--attach needs a terminal to attach tmux to"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| failure(format!("cannot find this program's path: {e}")))?;
    let socket = format!("macs-demo-{}", std::process::id());
    let tmux = Tmux::new(Socket::Name(socket.clone()));
    let version = tmux.check_version().await?;
    let dir = std::env::temp_dir().join(format!(
        "macs-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| failure(format!("cannot create {}: {e}", dir.display())))?;
    let _cleanup = Cleanup {
        tmux: tmux.clone(),
        dir: dir.clone(),
    };
    let write = |name: &str, text: &str| -> Result<PathBuf, DemoError> {
        let p = dir.join(name);
        std::fs::write(&p, text)
            .map_err(|e| failure(format!("cannot write {}: {e}", p.display())))?;
        Ok(p)
    };
    let worker_script = write("worker.txt", WORKER_SCRIPT)?;
    let controller_script = write("controller.txt", CONTROLLER_SCRIPT)?;
    let worker_log = dir.join("worker.jsonl");
    let narration = dir.join("narration.log");
    let state = dir.join("state");

    let mut narrator = Narrator {
        file: if args.attach {
            Some(
                std::fs::File::create(&narration)
                    .map_err(|e| failure(format!("cannot write the narration: {e}")))?,
            )
        } else {
            None
        },
    };
    narrator.say(&format!(
        "macs-bridge demo on a private tmux server ({}, socket {socket}): a scripted worker asks a scripted controller {ROUNDS} questions; the bridge carries them back and forth.",
        version.text
    ));

    let sim = |script: &Path, name: &str, log: Option<&Path>| -> String {
        let mut words = vec![
            exe.display().to_string(),
            "sim-agent".into(),
            "--script".into(),
            script.display().to_string(),
            "--name".into(),
            name.into(),
        ];
        if let Some(log) = log {
            words.push("--log".into());
            words.push(log.display().to_string());
        }
        shell_words::join(words)
    };
    let worker_cmd = sim(&worker_script, "worker", Some(&worker_log));
    let controller_cmd = sim(&controller_script, "controller", None);
    let t = |args: &[&str]| {
        let tmux = tmux.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move { tmux.run(args).await }
    };
    t(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "160",
        "-y",
        "45",
        "-n",
        "team",
        &worker_cmd,
    ])
    .await?;
    let worker_pane = t(&["display-message", "-p", "-t", "=demo:team", "#{pane_id}"])
        .await?
        .trim()
        .to_string();
    let controller_pane = t(&[
        "split-window",
        "-h",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        &worker_pane,
        &controller_cmd,
    ])
    .await?
    .trim()
    .to_string();
    for (pane, name) in [(&worker_pane, "worker"), (&controller_pane, "controller")] {
        t(&["set-option", "-p", "-t", pane, "@macs-agent", name]).await?;
        t(&["select-pane", "-t", pane, "-T", name]).await?;
    }
    t(&[
        "set-option",
        "-w",
        "-t",
        "=demo:team",
        "pane-border-status",
        "top",
    ])
    .await?;
    t(&[
        "set-option",
        "-w",
        "-t",
        "=demo:team",
        "pane-border-format",
        " #{@macs-agent} #{?@macs-status,#{@macs-status},} ",
    ])
    .await?;
    if args.attach {
        let tail = shell_words::join(["tail", "-n", "+1", "-f", &narration.display().to_string()]);
        t(&[
            "split-window",
            "-v",
            "-l",
            "12",
            "-t",
            "=demo:team",
            "-f",
            &tail,
        ])
        .await?;
    }
    narrator.say(&format!(
        "worker in pane {worker_pane}, controller in pane {controller_pane}; starting the bridge in auto mode"
    ));

    let mut daemon = tokio::process::Command::new(&exe)
        .args([
            "-L",
            &socket,
            "--session",
            SESSION,
            "--mode",
            "auto",
            "--json",
            "--no-heuristic",
        ])
        .arg("--state-dir")
        .arg(&state)
        .env_remove("MACS_SESSION")
        .env_remove("TMUX_SOCKET")
        .env_remove("TARGET_PANE_LABEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failure(format!("cannot start the bridge: {e}")))?;
    std::fs::create_dir_all(&state).ok();
    let stdout = daemon
        .stdout
        .take()
        .ok_or_else(|| failure("no daemon output"))?;
    let stderr = daemon
        .stderr
        .take()
        .ok_or_else(|| failure("no daemon stderr"))?;
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut all = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });

    let mut attach = if args.attach {
        Some(
            tokio::process::Command::new(&tmux.bin)
                .args(tmux.socket.args())
                .args(["attach-session", "-t", "=demo"])
                .env_remove("TMUX")
                .spawn()
                .map_err(|e| failure(format!("cannot attach: {e}")))?,
        )
    } else {
        None
    };

    let mut lines = BufReader::new(stdout).lines();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut delivered = 0usize;
    let mut problems = Vec::new();
    let outcome = loop {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => break Err(format!("not done after {}s", args.timeout)),
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) | Ok(Err(_)) => break Err("the bridge stopped".to_string()),
        };
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let s = |k: &str| ev[k].as_str().unwrap_or("").to_string();
        let first = |k: &str| s(k).lines().next().unwrap_or("").to_string();
        match ev["event"].as_str().unwrap_or("") {
            "started" => narrator.say("bridge attached to the session; watching the worker"),
            "request" => narrator.say(&format!("worker asks   [{}] {}", s("id"), first("text"))),
            "asking" => {}
            "prompted" => narrator.say(&format!(
                "bridge typed request {} into the controller's prompt",
                s("id")
            )),
            "answer" => narrator.say(&format!(
                "controller answers [{}] {}",
                s("id"),
                ev["text"]
                    .as_str()
                    .map(|t| crate::detect::blocks::parse_response(&strip_markers(t)).instructions)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            "delivered" => {
                delivered += 1;
                narrator.say(&format!(
                    "bridge typed the answer into the worker and saw it submitted ({delivered}/{ROUNDS})"
                ));
            }
            "queued" => {}
            "fallback" | "no-answer" | "error" | "unconfirmed" | "capped" => {
                narrator.say(&format!("problem: {line}"));
                problems.push(line.clone());
            }
            _ => {}
        }
        if delivered >= ROUNDS {
            break Ok(());
        }
    };

    // The worker checks each answer itself (`expect`); read what it received.
    let received = wait_for_inputs(&worker_log, ROUNDS, Duration::from_secs(5)).await;
    let accepted = received.len() == ROUNDS
        && received
            .iter()
            .enumerate()
            .all(|(i, text)| text.contains(&format!("step {}", i + 1)));

    let all_delivered = match (&outcome, accepted) {
        (Ok(()), true) => {
            narrator.say(&format!(
                "done: {ROUNDS} requests answered by the controller and delivered to the worker, each once."
            ));
            true
        }
        (Ok(()), false) => {
            narrator.say(&format!(
                "failed: the worker did not receive the expected answers: {received:?}"
            ));
            false
        }
        (Err(why), _) => {
            narrator.say(&format!(
                "failed: {why}; {delivered} of {ROUNDS} delivered; worker received {received:?}"
            ));
            false
        }
    };
    if let Some(child) = &mut attach {
        narrator.say("detach with C-b d to end the demo");
        let _ = child.wait().await;
    }
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    if !all_delivered {
        let err = stderr_task.await.unwrap_or_default();
        if !err.trim().is_empty() {
            eprintln!("bridge log:\n{}", err.trim_end());
        }
        for p in problems {
            eprintln!("{p}");
        }
    }
    Ok(all_delivered)
}

fn strip_markers(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("<<CONTROLLER_RESPONSE"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The worker's inputs from its log, waiting up to `max` for `n` of them.
async fn wait_for_inputs(log: &Path, n: usize, max: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let inputs: Vec<String> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["input"].as_str().map(str::to_string))
            .collect();
        if inputs.len() >= n || tokio::time::Instant::now() >= deadline {
            return inputs;
        }
        // Polling a file the worker appends to; a short wait between looks.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
