//! The panes, the daemon and the plain control client; what the kernel counts for each.

use super::*;

/// One tmux server with `n` panes, one window each (120x40), all running `command(i)`. The
/// first window is named `worker`; the others are labelled `agent1`… (`@macs-agent`), as
/// `up` labels chat agents, so the daemon watches every pane.
pub(super) fn start_panes(name: &str, n: usize, command: &dyn Fn(usize) -> String) -> Server {
    let server = Server::start(name.to_string(), SESSION, &command(0));
    server.ok(&["rename-window", "-t", &format!("={SESSION}:0"), "worker"]);
    for i in 1..n {
        let pane = server.ok(&[
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            &format!("={SESSION}:"),
            &command(i),
        ]);
        server.ok(&[
            "set-option",
            "-p",
            "-t",
            pane.trim(),
            "@macs-agent",
            &format!("agent{i}"),
        ]);
    }
    server
}

/// The release daemon on a fresh state dir (`--mode manual`), once its API lists the agents.
pub(super) fn start_daemon(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    state: &Path,
    agents: usize,
) -> Process {
    fs::create_dir_all(state).expect("mkdir the state dir");
    let stdout = fs::File::create(state.with_extension("stdout")).expect("a log file");
    let stderr = fs::File::create(state.with_extension("stderr")).expect("a log file");
    let child = Proc::new(BRIDGE)
        .args(["-L", &server.name, "--session", SESSION, "--mode", "manual"])
        .args(["--json", "--state-dir"])
        .arg(state)
        .env_remove("TMUX_SOCKET")
        .env_remove("TARGET_PANE_LABEL")
        .env_remove("MACS_SESSION")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start the daemon");
    let mut daemon = Process::new(child);
    let log = || fs::read_to_string(state.with_extension("stderr")).unwrap_or_default();
    let socket = macs_bridge::api::socket_path(state);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited ({status}):\n{}", log());
        }
        let listed = rt.block_on(async {
            let c = ApiClient::connect(&socket).await.ok()?;
            let a = c.call(method::AGENTS_LIST, json!({})).await.ok()?;
            Some(a["agents"].as_array().map_or(0, Vec::len))
        });
        if listed == Some(agents) {
            return daemon;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never listed {agents} agents ({listed:?}):\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain control client (`tmux -C attach`) that reads everything and does nothing with it:
/// what tmux costs with any control client attached.
pub(super) fn start_plain_client(server: &Server) -> Process {
    let child = Proc::new("tmux")
        .args(["-L", &server.name, "-C", "attach-session", "-t"])
        .arg(format!("={SESSION}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tmux -C");
    let client = Process::new(child);
    // Attached once tmux lists it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .ok(&["list-clients", "-F", "#{client_pid}"])
        .lines()
        .any(|l| l.trim() == client.child.id().to_string())
    {
        assert!(Instant::now() < deadline, "tmux -C never attached");
        std::thread::sleep(Duration::from_millis(20));
    }
    client
}

/// Context switches (voluntary + involuntary) of every thread of a process so far: each is
/// the thread going to sleep or being put off the CPU, so the voluntary ones count wake-ups.
pub(super) fn switches(pid: u32) -> Option<(u64, usize)> {
    let mut total = 0u64;
    let mut threads = 0usize;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(status) = fs::read_to_string(task.ok()?.path().join("status")) else {
            continue;
        };
        threads += 1;
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some((total, threads))
}

/// What the kernel counted for some processes over a stretch of time.
pub(super) struct Meter {
    pids: Vec<u32>,
    cpu: Vec<Option<f64>>,
    ctx: Vec<Option<(u64, usize)>>,
    start: Instant,
}

/// One process's share over a [`Meter`]'s stretch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    /// % of one core.
    pub cpu: f64,
    /// Context switches a second, over all threads.
    pub wakeups: f64,
    pub threads: usize,
}

impl Meter {
    pub(super) fn start(pids: &[u32]) -> Meter {
        Meter {
            pids: pids.to_vec(),
            cpu: pids.iter().map(|p| cpu_seconds(*p)).collect(),
            ctx: pids.iter().map(|p| switches(*p)).collect(),
            start: Instant::now(),
        }
    }

    pub(super) fn read(&self) -> Vec<Share> {
        let wall = self.start.elapsed().as_secs_f64();
        self.pids
            .iter()
            .enumerate()
            .map(|(i, pid)| {
                let cpu = match (self.cpu[i], cpu_seconds(*pid)) {
                    (Some(b), Some(a)) => (a - b) / wall * 100.0,
                    _ => f64::NAN,
                };
                let (wakeups, threads) = match (self.ctx[i], switches(*pid)) {
                    (Some((b, _)), Some((a, t))) => (a.saturating_sub(b) as f64 / wall, t),
                    _ => (f64::NAN, 0),
                };
                Share {
                    cpu,
                    wakeups,
                    threads,
                }
            })
            .collect()
    }
}

/// The load average (1, 5 and 15 minutes).
pub(super) fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
