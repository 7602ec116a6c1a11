//! The agents and the daemon: ten labelled sim-agents on a private tmux server, the daemon
//! on a fresh state dir, and CPU use of both.

use super::*;

pub(super) struct Agent {
    pub(super) name: String,
    pub(super) pane: PaneId,
    pub(super) log: PathBuf,
}

/// The tmux server with ten labelled sim-agents, one per window.
pub(super) fn start_agents(dir: &Path) -> (Server, Vec<Agent>) {
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

pub(super) struct Daemon {
    pub(super) process: Process,
    pub(super) state: PathBuf,
}

impl Daemon {
    pub(super) fn socket(&self) -> PathBuf {
        macs_bridge::api::socket_path(&self.state)
    }

    pub(super) fn pid(&self) -> u32 {
        self.process.child.id()
    }

    pub(super) fn log(&self) -> String {
        fs::read_to_string(self.state.with_extension("stderr")).unwrap_or_default()
    }
}

/// Starts the daemon on a fresh state dir; returns once its API lists every agent idle.
pub(super) fn start_daemon(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    state: PathBuf,
) -> Daemon {
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
pub(super) struct CpuMeter {
    pub(super) pids: Vec<u32>,
    pub(super) before: Vec<Option<f64>>,
    pub(super) start: Instant,
}

impl CpuMeter {
    pub(super) fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            before: pids.iter().map(|p| cpu_seconds(*p)).collect(),
            start: Instant::now(),
        }
    }

    pub(super) fn shares(&self) -> Vec<f64> {
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
