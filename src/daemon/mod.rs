//! The daemon: `macs-bridge --session macs --mode manual|auto [--dry-run]`.
//!
//! One task owns all state (the [`Core`]): the pane registry, a block tracker and turn counter
//! per watched pane, the delivery queues and the mailbox. It receives, in one loop, what tmux
//! pushes, what the outbox watcher sees, what writer tasks report and a tick. Writer tasks (one
//! per pane at a time, [`delivery`]) type; nothing else does.
//!
//! Requests are detected in the worker's screen (blocks, and questions at the end of a turn when
//! heuristics are on), written to `inbox/` (manual mode) or printed (dry run). Responses come
//! back as `outbox/<id>.md`, are delivered when the worker is idle, and then archived.

pub mod chat;
pub mod chat_core;
pub mod controller;
pub mod delivery;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cli::{exit, Failure, Global};
use crate::config::{Config, Mode, Overrides};
use crate::detect::blocks::{self, BlockKind, Limits};
use crate::detect::heuristic::{self, Heuristics};
use crate::detect::tracker::BlockTracker;
use crate::detect::{PaneState, Profiles};
use crate::inject::{InjectError, InjectOptions, Look, Outcome};
use crate::mailbox::{Delivered, Mailbox, OutboxEvent, RequestKind, RequestRecord, ResponseFile};
use crate::pane::{PaneChange, Panes};
use crate::tmux::client::{Client, ClientEvent, ClientOptions};
use crate::tmux::command::{Command, KeyName, OptionScope, Target};
use crate::tmux::PaneId;
use controller::{Backend, ExecDone};
use delivery::{Delivery, Finished, Origin, PaneQueue, WatchView};

/// The pane option the bridge uses to show a person what waits (see `up`'s border format).
pub const STATUS_OPTION: &str = "@macs-status";

/// How long an outbox file must stay unchanged before it is read (editors write in pieces).
const OUTBOX_SETTLE: Duration = Duration::from_millis(300);
/// Rows of scrollback scanned for blocks besides the visible screen.
const SCAN_HISTORY: usize = 200;

/// The daemon's flags (used when no subcommand is given).
#[derive(Debug, Args, Default, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    /// auto: a controller answers; manual: a person answers through outbox/ files.
    #[arg(long, value_name = "auto|manual")]
    pub mode: Option<String>,
    /// Print each detection; write nothing, type nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Treat a question at the end of the worker's turn as a request (default on).
    #[arg(long, overrides_with = "no_heuristic")]
    pub heuristic: bool,
    /// Only request blocks count.
    #[arg(long, overrides_with = "heuristic")]
    pub no_heuristic: bool,
    /// The worker pane (id, tmux target or label). Default: TARGET_PANE_LABEL, else `worker`.
    #[arg(long, value_name = "PANE")]
    pub target: Option<String>,
    /// The state dir holding inbox/, outbox/, archive/ (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The config file (default: macs.yaml in the state dir, when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Auto mode: who answers, in order (pane, codex-interactive, exec, rules, manual);
    /// repeat or separate with commas. The person (manual) always comes last.
    #[arg(long, value_name = "BACKEND", value_delimiter = ',')]
    pub controller_backend: Vec<String>,
    /// The controller agent's pane for the pane backend (default: label `controller`).
    #[arg(long, value_name = "PANE")]
    pub controller_target: Option<String>,
    /// The exec backend's command (shell words), run once per request with the prompt on stdin.
    #[arg(long, value_name = "CMD")]
    pub controller_cmd: Option<String>,
    /// Seconds a backend may take to answer one request before the next one gets it.
    #[arg(long, value_name = "SECS")]
    pub controller_timeout: Option<u64>,
}

/// Messages to the core from its helpers.
enum CoreMsg {
    Outbox(OutboxEvent),
}

/// Per watched pane: what the detectors remember.
struct Track {
    tracker: BlockTracker,
    state: PaneState,
    turn: u64,
    block_this_turn: bool,
    asked_this_turn: bool,
    /// What the bridge typed here lately (for the heuristic's echo check).
    typed: Vec<String>,
    /// A capped block was reported and has not gone since.
    capped_reported: bool,
}

impl Track {
    fn new() -> Track {
        Track {
            tracker: BlockTracker::new(Duration::from_millis(1500)),
            state: PaneState::Unknown,
            turn: 0,
            block_this_turn: false,
            asked_this_turn: false,
            typed: Vec::new(),
            capped_reported: false,
        }
    }

    fn typed(&mut self, text: &str) {
        self.tracker.typed(text);
        self.typed.push(text.to_string());
        if self.typed.len() > 32 {
            self.typed.remove(0);
        }
    }
}

/// Prints what happens, as readable lines or JSON lines.
struct Printer {
    json: bool,
}

impl Printer {
    fn event(&self, event: &str, line: String, fields: serde_json::Value) {
        if self.json {
            let mut obj = json!({ "event": event, "at": Utc::now().to_rfc3339() });
            if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
                o.extend(f);
            }
            println!("{obj}");
        } else {
            println!("{} {event:<10} {line}", Utc::now().format("%H:%M:%S"));
        }
    }
}

/// Auto mode: the backend chain and the conversation with the controller pane.
struct Auto {
    chain: Vec<Backend>,
    timeout: Duration,
    controller: Option<PaneId>,
    /// Requests waiting for the controller pane, oldest first.
    waiting: std::collections::VecDeque<String>,
    /// The one request the controller pane is working on.
    asking: Option<Asking>,
    /// Requests on their way down the chain.
    routes: HashMap<String, Route>,
}

struct Asking {
    id: String,
    since: Instant,
    /// When the wrapper started to be typed; responses before that are not answers.
    typed: bool,
}

struct Route {
    text: String,
    agent: String,
    /// The next backend to try.
    next: usize,
    /// Why earlier backends did not answer.
    notes: Vec<String>,
}

/// An outbox file waiting to settle.
struct OutboxWait {
    changed_at: Instant,
}

struct Core {
    cfg: Config,
    client: Client,
    panes: Panes,
    profiles: Profiles,
    heuristics: Heuristics,
    limits: Limits,
    worker: Option<PaneId>,
    tracks: HashMap<PaneId, Track>,
    queues: HashMap<PaneId, PaneQueue>,
    looks: HashMap<PaneId, watch::Sender<Option<Look>>>,
    mailbox: Option<Mailbox>,
    printer: Printer,
    dirty: HashSet<PaneId>,
    outbox_waits: HashMap<String, OutboxWait>,
    /// Responses queued or being delivered, by request id.
    responses: HashMap<String, ResponseFile>,
    done_tx: mpsc::UnboundedSender<Finished>,
    inject: InjectOptions,
    watcher: Option<crate::mailbox::OutboxWatcher>,
    /// The worker was named by `--target` (which beats a pinned target).
    target_from_flag: bool,
    auto: Option<Auto>,
    exec_tx: mpsc::UnboundedSender<ExecDone>,
    /// The group chat, the store and the API (off in a dry run).
    chat: Option<chat_core::Chat>,
    /// A `request.ask` call that waits for its answer (set by the call, taken by its caller).
    pending_ask: Option<(String, Instant)>,
    /// Who answered each request, until its answer is delivered.
    answered_by: HashMap<String, String>,
}

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn run(global: &Global, args: DaemonArgs) -> Result<u8, Failure> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = overrides_from(global, &args)?;
    let state_hint = args.state_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let cfg = Config::load(&overrides, &env, &state_hint)?;

    let mut profiles = Profiles::builtin();
    if !cfg.profiles.files.is_empty() {
        profiles.load_overrides(cfg.profiles.files.iter())?;
    }
    let heuristics = Heuristics::new(&cfg.heuristic_phrases)
        .map_err(|e| failure(format!("heuristic phrases: {e}")))?;
    let mut submit_keys = Vec::new();
    for k in &cfg.injection.submit_keys {
        submit_keys.push(KeyName::parse(k)?);
    }
    let inject = InjectOptions {
        type_delay: Duration::from_millis(cfg.injection.type_delay_ms),
        submit_keys,
        guard_busy: cfg.injection.guard_busy,
        no_submit: false,
        confirm_timeout: Duration::from_millis(cfg.injection.confirm_timeout_ms),
        guard_prefix: true,
    };
    let mailbox = if cfg.dry_run {
        None
    } else {
        Some(Mailbox::open(&cfg.state_dir)?.with_response_limit(cfg.limits.response_bytes))
    };

    // The socket: -L/--socket/TMUX_SOCKET, else the config file's `socket`.
    let tmux = match (&global.socket_name, &global.socket, &cfg.socket) {
        (None, None, Some(s)) => {
            crate::tmux::oneshot::Tmux::new(crate::tmux::oneshot::Socket::from_env_value(s))
        }
        _ => global.tmux(),
    };
    let (client, mut events) =
        Client::connect(ClientOptions::new(tmux, cfg.session.clone())).await?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (exec_tx, mut exec_rx) = mpsc::unbounded_channel();
    let auto = (cfg.mode == Mode::Auto && !cfg.dry_run).then(|| Auto {
        chain: controller::chain(&cfg),
        timeout: Duration::from_secs(cfg.controller_timeout_secs),
        controller: None,
        waiting: Default::default(),
        asking: None,
        routes: HashMap::new(),
    });
    let (core_tx, mut core_rx) = mpsc::channel::<OutboxEvent>(1024);
    let mut core = Core {
        limits: Limits {
            max_bytes: cfg.limits.block_bytes,
            max_lines: cfg.limits.block_lines,
        },
        cfg,
        client: client.clone(),
        panes: Panes::new(client.clone()),
        profiles,
        heuristics,
        worker: None,
        tracks: HashMap::new(),
        queues: HashMap::new(),
        looks: HashMap::new(),
        mailbox,
        printer: Printer { json: args.json },
        dirty: HashSet::new(),
        outbox_waits: HashMap::new(),
        responses: HashMap::new(),
        done_tx,
        inject,
        watcher: None,
        target_from_flag: args.target.is_some(),
        auto,
        exec_tx,
        chat: None,
        pending_ask: None,
        answered_by: HashMap::new(),
    };
    let cancel = CancellationToken::new();
    let (api_tx, mut api_rx) = mpsc::channel::<crate::api::server::ApiMsg>(1024);
    if !core.cfg.dry_run {
        core.chat = Some(chat_core::Chat::open(&core.cfg)?);
        let path = crate::api::socket_path(&core.cfg.state_dir);
        let listener = crate::api::server::Listener::bind(&path)?;
        tokio::spawn(crate::api::server::serve(listener, api_tx, cancel.clone()));
    } else {
        drop(api_tx);
    }

    // The first event is the attach; build the view before anything else.
    core.start(&mut events).await?;
    core.watcher = match &core.mailbox {
        Some(mb) => Some(mb.watch(core_tx.clone())?),
        None => None,
    };
    core.recover();
    core.refresh_agents().await;
    core.recover_chat();

    spawn_signal_handler(cancel.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let closed = matches!(ev, ClientEvent::Closed);
                core.client_event(ev).await;
                // Apply whatever else is already waiting, then look at the panes once.
                let mut n = 0;
                while n < 4096 {
                    match events.try_recv() {
                        Ok(ev) => { core.client_event(ev).await; n += 1; }
                        Err(_) => break,
                    }
                }
                core.after_batch().await;
                if closed { break; }
            }
            Some(msg) = core_rx.recv() => core.core_msg(CoreMsg::Outbox(msg)),
            Some(done) = done_rx.recv() => core.finished(done).await,
            Some(done) = exec_rx.recv() => core.exec_done(done).await,
            Some(msg) = api_rx.recv() => core.api_msg(msg).await,
            _ = tick.tick() => core.tick().await,
        }
    }
    cancel.cancel();
    core.shutdown(&mut done_rx).await;
    Ok(exit::OK)
}

fn failure(message: String) -> Failure {
    Failure {
        code: exit::ERROR,
        message,
    }
}

fn overrides_from(global: &Global, args: &DaemonArgs) -> Result<Overrides, Failure> {
    let mode = match args.mode.as_deref() {
        None => None,
        Some("auto") => Some(Mode::Auto),
        Some("manual") => Some(Mode::Manual),
        Some(other) => {
            return Err(Failure {
                code: exit::USAGE,
                message: format!("--mode must be auto or manual, not {other:?}"),
            })
        }
    };
    let heuristic = if args.no_heuristic {
        Some(false)
    } else if args.heuristic {
        Some(true)
    } else {
        None
    };
    Ok(Overrides {
        session: global.session_flag.clone(),
        mode,
        dry_run: args.dry_run.then_some(true),
        heuristic,
        state_dir: args.state_dir.clone(),
        config: args.config.clone(),
        worker: args.target.clone(),
        controller: args.controller_target.clone(),
        controller_backends: (!args.controller_backend.is_empty())
            .then(|| args.controller_backend.clone()),
        controller_cmd: args.controller_cmd.clone(),
        controller_timeout_secs: args.controller_timeout,
        ..Overrides::default()
    })
}

fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        cancel.cancel();
    });
}

impl Core {
    async fn start(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<ClientEvent>,
    ) -> Result<(), Failure> {
        let mut first = true;
        while first || self.panes.seeding() {
            first = false;
            let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .map_err(|_| failure("tmux did not send the panes in time".into()))?
                .ok_or_else(|| failure("lost the connection to tmux".into()))?;
            self.panes.handle(ev).await?;
        }
        // The target pinned with `set-target` beats the environment and the file (not the flag).
        if !self.target_from_flag {
            match self.panes.pinned_target().await {
                Ok(Some(pinned)) => self.cfg.worker = pinned,
                Ok(None) => {}
                Err(e) => debug!(error = %e, "cannot read the pinned target"),
            }
        }
        self.pin_profiles().await;
        self.resolve_worker().await;
        if self.worker.is_none() {
            warn!(target = %self.cfg.worker, "no worker pane yet; waiting for one to appear");
            self.printer.event(
                "waiting",
                format!(
                    "no pane matches the worker target {:?} yet (panes: {})",
                    self.cfg.worker,
                    self.panes.describe()
                ),
                json!({ "target": self.cfg.worker }),
            );
        }
        let mode = if self.cfg.dry_run {
            "dry run"
        } else {
            match self.cfg.mode {
                Mode::Manual => "manual",
                Mode::Auto => "auto",
            }
        };
        self.printer.event(
            "started",
            format!(
                "session {} · mode {mode} · worker {} · state dir {}",
                self.cfg.session,
                self.worker
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                self.cfg.state_dir.display()
            ),
            json!({ "session": self.cfg.session, "mode": mode,
                    "worker": self.worker.map(|p| p.to_string()) }),
        );
        // Look at every watched pane once, so that blocks already on screen are known (and,
        // after a restart, matched against the requests already filed).
        if let Some(w) = self.worker {
            self.dirty.insert(w);
        }
        Ok(())
    }

    /// Profiles the config pins to panes become `@macs-profile` pane options, which every tool
    /// and the classifier read.
    async fn pin_profiles(&mut self) {
        let pins: Vec<(String, String)> = self
            .cfg
            .profiles
            .panes
            .iter()
            .map(|(t, p)| (t.clone(), p.clone()))
            .collect();
        for (target, profile) in pins {
            if self.profiles.get(&profile).is_none() {
                warn!(%target, %profile, "no such profile; not pinned");
                continue;
            }
            match self.panes.find(&target).await {
                Ok(id) => {
                    let cmd = Command::set_option(
                        OptionScope::Pane(Target::Pane(id)),
                        crate::pane::PROFILE_OPTION,
                        &profile,
                    );
                    if let Err(e) = self.client.run(&cmd).await {
                        warn!(error = %e, %target, "could not pin the profile");
                    } else if let Some(p) = self.panes.get_mut(id) {
                        p.info.profile = Some(profile);
                    }
                }
                Err(e) => warn!(error = %e, %target, "profile pinned to an unknown pane"),
            }
        }
    }

    /// After a restart: requests already filed are not filed again; responses already written
    /// are picked up.
    fn recover(&mut self) {
        let Some(mb) = &self.mailbox else { return };
        let now = Instant::now();
        match mb.pending_requests() {
            Ok(reqs) => {
                for r in reqs {
                    let Ok(pane) = r.pane.parse::<PaneId>() else {
                        continue;
                    };
                    let track = self.tracks.entry(pane).or_insert_with(Track::new);
                    if r.kind == RequestKind::Block {
                        track.tracker.preload(&BlockKind::Request, &r.text, now);
                    } else {
                        track.asked_this_turn = true;
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read the inbox"),
        }
        for r in mb.recent_archived_requests(64) {
            if let (Ok(pane), RequestKind::Block) = (r.pane.parse::<PaneId>(), &r.kind) {
                let track = self.tracks.entry(pane).or_insert_with(Track::new);
                track.tracker.preload(&BlockKind::Request, &r.text, now);
            }
        }
        let past = now.checked_sub(OUTBOX_SETTLE).unwrap_or(now);
        let answered = mb.outbox_ids();
        // Auto mode: requests that were on their way to a controller when the daemon stopped
        // go down the chain again (those that fell back to the person stay with the person).
        let mut again = Vec::new();
        if self.auto.is_some() {
            if let Ok(reqs) = mb.pending_requests() {
                for r in reqs {
                    if !answered.contains(&r.id) && !mb.has_inbox_note(&r.id) {
                        again.push(r);
                    }
                }
            }
        }
        for id in answered {
            self.outbox_waits
                .insert(id, OutboxWait { changed_at: past });
        }
        for r in again {
            if let Some(auto) = &mut self.auto {
                auto.routes.insert(
                    r.id.clone(),
                    Route {
                        text: r.text,
                        agent: r.agent,
                        next: 0,
                        notes: Vec::new(),
                    },
                );
            }
            self.route(&r.id);
        }
    }

    async fn resolve_worker(&mut self) {
        let found = self.panes.find(&self.cfg.worker).await.ok();
        if found != self.worker {
            if let Some(id) = found {
                info!(pane = %id, target = %self.cfg.worker, "worker pane");
                self.tracks.entry(id).or_insert_with(Track::new);
                self.dirty.insert(id);
            }
            self.worker = found;
        }
        if self
            .auto
            .as_ref()
            .is_some_and(|a| a.chain.contains(&Backend::Pane))
        {
            let found = self.panes.find(&self.cfg.controller).await.ok();
            let found = found.filter(|c| Some(*c) != self.worker);
            if let Some(auto) = &mut self.auto {
                if found != auto.controller {
                    if let Some(id) = found {
                        info!(pane = %id, target = %self.cfg.controller, "controller pane");
                        self.tracks.entry(id).or_insert_with(Track::new);
                        self.dirty.insert(id);
                    }
                    auto.controller = found;
                }
            }
        }
    }

    fn controller(&self) -> Option<PaneId> {
        self.auto.as_ref().and_then(|a| a.controller)
    }

    async fn client_event(&mut self, ev: ClientEvent) {
        let changes = match self.panes.handle(ev).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "tmux event not applied");
                return;
            }
        };
        let membership = changes.iter().any(|c| {
            matches!(
                c,
                PaneChange::Info(_)
                    | PaneChange::Added(_)
                    | PaneChange::Removed(_)
                    | PaneChange::Resynced
            )
        });
        for change in changes {
            match change {
                PaneChange::Output(id) | PaneChange::Info(id) | PaneChange::Added(id) => {
                    self.dirty.insert(id);
                }
                PaneChange::Removed(id) => {
                    self.looks.remove(&id);
                    if self.worker == Some(id) {
                        self.worker = None;
                    }
                    if let Some(auto) = &mut self.auto {
                        if auto.controller == Some(id) {
                            auto.controller = None;
                        }
                    }
                }
                PaneChange::Resynced => {
                    self.worker = None;
                    self.resolve_worker().await;
                    self.dirty.extend(self.panes.iter().map(|p| p.id()));
                }
                PaneChange::Lost => {
                    self.printer.event(
                        "detached",
                        "lost tmux; waiting for the session to come back".into(),
                        json!({}),
                    );
                }
            }
        }
        if membership {
            let controller_missing = self
                .auto
                .as_ref()
                .is_some_and(|a| a.controller.is_none() && a.chain.contains(&Backend::Pane));
            if self.worker.is_none() || controller_missing {
                self.resolve_worker().await;
            }
            if self.chat.is_some() {
                self.refresh_agents().await;
            }
        }
    }

    /// Looks at every pane that changed: state, turns, blocks, heuristics, deliveries.
    async fn after_batch(&mut self) {
        // The worker and controller are looked up again only when panes come, go or change
        // their names (see `client_event`), not per batch: a session without a worker would
        // pay a tmux round trip per message.
        let dirty: Vec<PaneId> = self.dirty.drain().collect();
        for id in dirty {
            self.look_at(id).await;
        }
    }

    async fn look_at(&mut self, id: PaneId) {
        let is_controller = self.controller() == Some(id);
        let chat_agent = self.agent_of_pane(id);
        let watched = self.worker == Some(id) || is_controller || chat_agent.is_some();
        let wants_look = self
            .looks
            .get(&id)
            .is_some_and(|tx| tx.receiver_count() > 0)
            || self.queues.get(&id).is_some_and(|q| !q.waiting.is_empty());
        if !watched && !wants_look {
            return;
        }
        let busy_lines = self.cfg.busy_lines;
        let Some(pane) = self.panes.get_mut(id) else {
            return;
        };
        let look = pane.look(&self.profiles, busy_lines);
        let lines = if watched {
            pane.lines_with_history(SCAN_HISTORY)
        } else {
            Vec::new()
        };
        let profile_name = look.profile.clone();
        let agent = pane.info.display_name().to_string();

        let mut capped_event = None;
        if watched {
            let track = self.tracks.entry(id).or_insert_with(Track::new);
            let was = track.state;
            if look.state == PaneState::Busy && was != PaneState::Busy {
                track.turn += 1;
                track.block_this_turn = false;
                track.asked_this_turn = false;
            }
            track.state = look.state;

            // Blocks first, so that a block that ends the turn counts for this turn.
            let scan = blocks::find_blocks(&lines, &self.limits);
            let fresh = track
                .tracker
                .observe(&scan.blocks, track.turn, Instant::now());
            for capped in &scan.capped {
                warn!(pane = %id, lines = capped.lines, bytes = capped.bytes, "block too large or unterminated; ignored");
            }
            if !scan.capped.is_empty() && !track.capped_reported {
                track.capped_reported = true;
                let c = &scan.capped[0];
                capped_event = Some(format!(
                    "{id}: a {} block of {} lines / {} bytes was never closed within the limits ({} lines, {} bytes); ignored",
                    c.kind.label(), c.lines, c.bytes, self.limits.max_lines, self.limits.max_bytes
                ));
            } else if scan.capped.is_empty() {
                track.capped_reported = false;
            }
            let mut requests = Vec::new();
            let mut responses = Vec::new();
            let mut messages = Vec::new();
            let is_worker = self.worker == Some(id);
            for b in fresh {
                match (&b.kind, is_controller) {
                    (BlockKind::Request, false) if is_worker => {
                        track.block_this_turn = true;
                        requests.push((RequestKind::Block, b.body));
                    }
                    (BlockKind::Response, true) => responses.push(b.body),
                    (BlockKind::Message { to }, _) if chat_agent.is_some() => {
                        messages.push((to.clone(), b.body));
                    }
                    _ => debug!(pane = %id, kind = ?b.kind, "block ignored"),
                }
            }
            let turn_ended = is_worker && was == PaneState::Busy && look.state == PaneState::Idle;
            if turn_ended && self.cfg.heuristic && !track.block_this_turn && !track.asked_this_turn
            {
                if let Some(profile) = self.profiles.get(&profile_name) {
                    if let Some(reply) = heuristic::last_reply(profile, &look.lines) {
                        if !heuristic::is_echo(&reply, &track.typed) {
                            if let Some(reason) = self.heuristics.judge(&reply) {
                                debug!(pane = %id, %reason, "heuristic request");
                                track.asked_this_turn = true;
                                requests.push((RequestKind::Heuristic, reply));
                            }
                        }
                    }
                }
            }
            for (kind, text) in requests {
                self.request(id, &agent, kind, text);
            }
            for body in responses {
                self.controller_response(body);
            }
            if let Some(from) = &chat_agent {
                for (to, body) in messages {
                    self.agent_message(from, &to, &body);
                }
                self.agent_state(id, look.state);
            }
        }
        if let Some(line) = capped_event {
            self.printer
                .event("capped", line, json!({ "pane": id.to_string() }));
        }

        if let Some(tx) = self.looks.get(&id) {
            tx.send_replace(Some(look.clone()));
        }
        self.pump_queue(id, Some(&look)).await;
    }

    /// A detected request.
    fn request(&mut self, pane: PaneId, agent: &str, kind: RequestKind, text: String) {
        let now = Utc::now();
        let id = Mailbox::new_id(now);
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect::<String>();
        let kind_word = match kind {
            RequestKind::Block => "block",
            RequestKind::Heuristic => "heuristic",
        };
        if self.cfg.dry_run {
            self.printer.event(
                "request",
                format!("{pane} ({agent}) {kind_word}: {first}"),
                json!({ "pane": pane.to_string(), "agent": agent, "kind": kind_word, "text": text }),
            );
            return;
        }
        let record = RequestRecord {
            id: id.clone(),
            session: self.cfg.session.clone(),
            pane: pane.to_string(),
            agent: agent.to_string(),
            kind,
            detected_at: now,
            text: text.clone(),
        };
        let Some(mb) = &self.mailbox else { return };
        match mb.write_request(&record) {
            Ok(path) => self.printer.event(
                "request",
                format!(
                    "{id} from {pane} ({agent}) {kind_word} → {}: {first}",
                    path.display()
                ),
                json!({ "id": id, "pane": pane.to_string(), "agent": agent, "kind": kind_word,
                        "text": text, "file": path }),
            ),
            Err(e) => {
                warn!(error = %e, %id, "could not write the request to the inbox");
                return;
            }
        }
        self.record_request(&record, kind_word);
        if let Some(auto) = &mut self.auto {
            auto.routes.insert(
                id.clone(),
                Route {
                    text,
                    agent: agent.to_string(),
                    next: 0,
                    notes: Vec::new(),
                },
            );
            self.route(&id);
        }
    }

    /// Sends a request down the chain, from the next backend it has not tried.
    fn route(&mut self, id: &str) {
        let Some(auto) = &mut self.auto else { return };
        let Some(route) = auto.routes.get_mut(id) else {
            return;
        };
        while let Some(&backend) = auto.chain.get(route.next) {
            route.next += 1;
            match backend {
                Backend::Rules => match controller::rules_answer(&self.cfg.rules, &route.text) {
                    Some(rule) => {
                        let (reply, why) = (rule.reply.clone(), rule.regex.as_str().to_string());
                        self.answer(id, &reply, &format!("rules (matched {why:?})"));
                        return;
                    }
                    None => route.notes.push("rules: no rule matched".into()),
                },
                Backend::Pane => {
                    if auto.controller.is_some() {
                        auto.waiting.push_back(id.to_string());
                        self.printer.event(
                            "asking",
                            format!("{id}: waiting for the controller pane"),
                            json!({ "id": id, "backend": "pane" }),
                        );
                        self.pump_controller();
                        return;
                    }
                    route.notes.push(format!(
                        "pane: no controller pane (no pane matches {:?})",
                        self.cfg.controller
                    ));
                }
                Backend::Exec => {
                    let codex_args = std::env::var("MACS_CODEX_ARGS").ok();
                    match controller::exec_argv(&self.cfg.controller_cmd, codex_args.as_deref()) {
                        Ok(argv) => {
                            // The wrapper teaches the format; a fresh process needs no more.
                            let prompt =
                                wrap_request(&self.cfg.state_dir, id, &route.agent, &route.text);
                            self.printer.event(
                                "asking",
                                format!("{id}: running {}", argv.join(" ")),
                                json!({ "id": id, "backend": "exec" }),
                            );
                            controller::spawn_exec(
                                id.to_string(),
                                argv,
                                prompt,
                                auto.timeout,
                                std::env::var("MACS_CODEX_HOME").ok(),
                                self.exec_tx.clone(),
                            );
                            return;
                        }
                        Err(e) => route.notes.push(format!("exec: {e}")),
                    }
                }
                Backend::Manual => break,
            }
        }
        // The person answers.
        let notes = auto.routes.remove(id).map(|r| r.notes).unwrap_or_default();
        self.fallback(id, &notes);
    }

    /// No backend answered: the request waits in the inbox for a person, with a note.
    fn fallback(&mut self, id: &str, notes: &[String]) {
        let why = if notes.is_empty() {
            "no controller backend is configured".to_string()
        } else {
            notes.join("; ")
        };
        if let Some(mb) = &self.mailbox {
            let text = format!(
                "Request {id} is waiting for a person: the controller could not answer it.\n\n{}\n\nAnswer it in outbox/{id}.md.\n",
                notes.iter().map(|n| format!("- {n}")).collect::<Vec<_>>().join("\n")
            );
            if let Err(e) = mb.write_inbox_note(id, &text) {
                warn!(error = %e, %id, "could not write the inbox note");
            }
            let _ = mb.archive_note(id, "fallback", &text);
        }
        self.printer.event(
            "fallback",
            format!("{id} goes to the person (inbox/{id}.md): {why}"),
            json!({ "id": id, "reasons": notes }),
        );
    }

    /// A backend answered: the answer becomes `outbox/<id>.md` and goes the usual way.
    fn answer(&mut self, id: &str, text: &str, backend: &str) {
        if let Some(auto) = &mut self.auto {
            auto.routes.remove(id);
        }
        let Some(mb) = &self.mailbox else { return };
        if let Err(e) = mb.write_response(id, text) {
            // A person may have answered first: theirs stands.
            warn!(error = %e, %id, "the controller's answer was not written");
            return;
        }
        self.answered_by.insert(id.to_string(), backend.to_string());
        let note = format!(
            "answered by: {backend}\nat: {}\n\n{text}\n",
            Utc::now().to_rfc3339()
        );
        let _ = mb.archive_note(id, "controller", &note);
        self.printer.event(
            "answer",
            format!(
                "{id} answered by {backend}: {}",
                first_line(
                    blocks::parse_response(&extract_response(text))
                        .instructions
                        .trim()
                )
            ),
            json!({ "id": id, "backend": backend, "text": text }),
        );
        // No need to wait for the watcher: read it now.
        self.outbox_waits.insert(
            id.to_string(),
            OutboxWait {
                changed_at: Instant::now()
                    .checked_sub(OUTBOX_SETTLE)
                    .unwrap_or_else(Instant::now),
            },
        );
    }

    /// Gives the controller pane its next request, when it has none.
    fn pump_controller(&mut self) {
        let Some(auto) = &mut self.auto else { return };
        let Some(controller) = auto.controller else {
            return;
        };
        if auto.asking.is_some() {
            return;
        }
        let Some(id) = auto.waiting.pop_front() else {
            return;
        };
        let Some(route) = auto.routes.get(&id) else {
            return;
        };
        let text = wrap_request(&self.cfg.state_dir, &id, &route.agent, &route.text);
        auto.asking = Some(Asking {
            id: id.clone(),
            since: Instant::now(),
            typed: false,
        });
        self.queues
            .entry(controller)
            .or_default()
            .waiting
            .push_back(Delivery {
                pane: controller,
                text,
                origin: Origin::ControllerPrompt { id },
                urgent: false,
            });
        self.dirty.insert(controller);
    }

    /// A new response block in the controller pane.
    fn controller_response(&mut self, body: String) {
        let Some(auto) = &mut self.auto else { return };
        match auto.asking.take() {
            Some(asking) if asking.typed => {
                let text = blocks::block_text(&BlockKind::Response, &body);
                self.answer(&asking.id, &text, "pane");
                self.pump_controller();
            }
            other => {
                auto.asking = other;
                self.printer.event(
                    "ignored",
                    "a response block in the controller pane that answers no request".into(),
                    json!({ "text": body }),
                );
            }
        }
    }

    async fn exec_done(&mut self, done: ExecDone) {
        match done.result {
            Ok(out) => self.answer(&done.id, &out, "exec"),
            Err(reason) => {
                self.printer.event(
                    "no-answer",
                    format!("{}: exec: {reason}", done.id),
                    json!({ "id": done.id, "backend": "exec", "reason": reason }),
                );
                if let Some(route) = self.auto.as_mut().and_then(|a| a.routes.get_mut(&done.id)) {
                    route.notes.push(format!("exec: {reason}"));
                }
                self.route(&done.id);
            }
        }
    }

    fn core_msg(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Outbox(OutboxEvent::Changed { id }) => {
                self.outbox_waits.insert(
                    id,
                    OutboxWait {
                        changed_at: Instant::now(),
                    },
                );
            }
        }
    }

    async fn tick(&mut self) {
        self.expire_asks();
        // The watcher may have dropped events (a full queue, an inotify overflow): look at all.
        if self.watcher.as_ref().is_some_and(|w| w.take_missed()) {
            if let Some(mb) = &self.mailbox {
                for id in mb.outbox_ids() {
                    self.outbox_waits.insert(
                        id,
                        OutboxWait {
                            changed_at: Instant::now(),
                        },
                    );
                }
            }
        }
        // Outbox files that have been quiet long enough.
        let ready: Vec<String> = self
            .outbox_waits
            .iter()
            .filter(|(_, w)| w.changed_at.elapsed() >= OUTBOX_SETTLE)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.outbox_waits.remove(&id);
            self.outbox_ready(&id).await;
        }
        // A controller pane that takes too long: the next backend gets the request.
        let timed_out = self.auto.as_mut().and_then(|a| {
            let late = a
                .asking
                .as_ref()
                .is_some_and(|x| x.since.elapsed() >= a.timeout);
            if late {
                a.asking.take().map(|x| (x.id, a.timeout))
            } else {
                None
            }
        });
        if let Some((id, timeout)) = timed_out {
            let reason = format!(
                "the controller pane did not answer within {}s",
                timeout.as_secs()
            );
            self.printer.event(
                "no-answer",
                format!("{id}: pane: {reason}"),
                json!({ "id": id, "backend": "pane", "reason": reason }),
            );
            if let Some(c) = self.controller() {
                if let Some(q) = self.queues.get_mut(&c) {
                    q.waiting.retain(
                        |d| !matches!(&d.origin, Origin::ControllerPrompt { id: i } if *i == id),
                    );
                }
            }
            if let Some(route) = self.auto.as_mut().and_then(|a| a.routes.get_mut(&id)) {
                route.notes.push(format!("pane: {reason}"));
            }
            self.route(&id);
            self.pump_controller();
        }
        // Silence can change a state with no output: look again at panes that wait.
        let waiting: Vec<PaneId> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.waiting.is_empty() && !q.in_flight)
            .map(|(id, _)| *id)
            .collect();
        self.dirty.extend(waiting);
        if let Some(w) = self.worker {
            self.dirty.insert(w);
        }
        self.after_batch().await;
    }

    /// An outbox file settled: check it and queue it for the worker that asked.
    async fn outbox_ready(&mut self, id: &str) {
        let Some(mb) = &self.mailbox else { return };
        if mb.is_archived(id) {
            return;
        }
        if self.queues.values().any(|q| q.in_flight_id() == Some(id)) {
            // Being typed right now; a change after this is not sent again.
            return;
        }
        let response = match mb.read_response(id) {
            Ok(r) => r,
            Err(e) => {
                self.printer.event(
                    "error",
                    format!("outbox/{id}.md: {e} (see outbox/{id}.error)"),
                    json!({ "id": id, "error": e.to_string() }),
                );
                if let Err(w) = mb.write_error(id, &e) {
                    warn!(error = %w, "could not write the .error file");
                }
                return;
            }
        };
        mb.clear_error(id);
        let request = match mb.read_request(id) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, %id, "response without a readable request");
                return;
            }
        };
        let parsed = blocks::parse_response(&extract_response(&response.raw));
        let text = parsed.instructions.trim().to_string();
        if request.pane == chat_core::API_PANE {
            // Asked through the API (an MCP tool call): the answer goes back to the caller,
            // never into a pane.
            let facts = Delivered {
                at: Utc::now(),
                pane: chat_core::API_PANE.to_string(),
                outcome: format!("returned to {}'s API call", request.agent),
                sent_text: text.clone(),
            };
            if let Err(e) = mb.archive(id, &response, &facts) {
                warn!(error = %e, %id, "answered, but could not archive");
            }
            mb.remove_inbox_note(id);
            let by = self
                .answered_by
                .remove(id)
                .unwrap_or_else(|| "person".to_string());
            self.printer.event(
                "answered",
                format!("{id} for {} (API): {}", request.agent, first_line(&text)),
                json!({ "id": id, "agent": request.agent, "text": text }),
            );
            self.request_answered(id, &text, &by);
            return;
        }
        let pane = request
            .pane
            .parse::<PaneId>()
            .ok()
            .filter(|p| self.panes.get(*p).is_some())
            .or(self.worker);
        let Some(pane) = pane else {
            warn!(%id, "no pane to deliver to yet; will retry");
            self.outbox_waits.insert(
                id.to_string(),
                OutboxWait {
                    changed_at: Instant::now(),
                },
            );
            return;
        };
        let queue = self.queues.entry(pane).or_default();
        // A response edited while it waits replaces the queued text.
        queue
            .waiting
            .retain(|d| !matches!(&d.origin, Origin::Outbox { id: i } if i == id));
        queue.waiting.push_back(Delivery {
            pane,
            text: text.clone(),
            origin: Origin::Outbox { id: id.to_string() },
            urgent: false,
        });
        self.responses.insert(id.to_string(), response);
        self.printer.event(
            "queued",
            format!("{id} for {pane}: {}", first_line(&text)),
            json!({ "id": id, "pane": pane.to_string(), "text": text }),
        );
        self.dirty.insert(pane);
    }

    /// Starts the next delivery for a pane when it is ready; shows the queue to the person.
    async fn pump_queue(&mut self, id: PaneId, look: Option<&Look>) {
        let paused = self.is_paused_pane(id);
        let Some(queue) = self.queues.get_mut(&id) else {
            return;
        };
        let prompt_free = |l: &Look| {
            l.prompt_input
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        };
        let ready = look.is_some_and(|l| l.state == PaneState::Idle && prompt_free(l));
        // An urgent message goes also into a busy agent (never into a menu).
        let urgent_ready = queue.waiting.front().is_some_and(|d| d.urgent)
            && look.is_some_and(|l| l.state == PaneState::Busy);
        if !queue.in_flight && !paused && (ready || urgent_ready) {
            if let Some(d) = queue.waiting.pop_front() {
                queue.in_flight = true;
                queue.current = Some(d.origin.clone());
                if let (Origin::ControllerPrompt { id: pid }, Some(auto)) =
                    (&d.origin, &mut self.auto)
                {
                    if let Some(asking) = auto.asking.as_mut().filter(|a| a.id == *pid) {
                        asking.typed = true;
                    }
                }
                let track = self.tracks.entry(id).or_insert_with(Track::new);
                track.typed(&d.text);
                let tx = self
                    .looks
                    .entry(id)
                    .or_insert_with(|| watch::channel(None).0);
                tx.send_replace(look.cloned());
                let view = WatchView {
                    client: self.client.clone(),
                    looks: tx.subscribe(),
                };
                let mut opts = self.inject.clone();
                if d.urgent {
                    opts.guard_busy = false;
                }
                if let Origin::Chat { id: did } = &d.origin {
                    let did = did.clone();
                    self.chat_delivery(&did, crate::store::DeliveryStatus::Delivering, None);
                }
                delivery::spawn_writer(view, d, opts, self.done_tx.clone());
            }
        }
        self.show_queue(id, look).await;
    }

    async fn show_queue(&mut self, id: PaneId, look: Option<&Look>) {
        let Some(queue) = self.queues.get_mut(&id) else {
            return;
        };
        let status = queue.status(look);
        if status == queue.shown {
            return;
        }
        queue.shown = status.clone();
        let scope = OptionScope::Pane(Target::Pane(id));
        let cmd = match &status {
            Some(s) => Command::set_option(scope, STATUS_OPTION, s),
            None => Command::unset_option(scope, STATUS_OPTION),
        };
        if let Err(e) = self.client.run(&cmd).await {
            debug!(error = %e, "could not set the status option");
        }
        if let Some(s) = status {
            // Also on the status line of the people attached, for a few seconds.
            let _ = self.tell_people(&format!("{id}: {s}")).await;
        }
    }

    /// Shows a line on the status line of every person's client of the session.
    async fn tell_people(&self, text: &str) -> Result<(), crate::tmux::client::ClientError> {
        let clients = self
            .client
            .run(&Command::list_clients_of(
                &self.cfg.session,
                "#{client_name}\u{1f}#{client_control_mode}",
            ))
            .await?;
        for line in clients {
            if let Some((name, "0")) = line.split_once('\u{1f}') {
                let _ = self
                    .client
                    .run(&Command::display_message_to(name, None, text))
                    .await;
            }
        }
        Ok(())
    }

    async fn finished(&mut self, done: Finished) {
        let pane = done.delivery.pane;
        if let Some(q) = self.queues.get_mut(&pane) {
            q.in_flight = false;
            q.current = None;
        }
        let origin = done.delivery.origin.clone();
        if let Origin::Chat { id } = &origin {
            use crate::store::DeliveryStatus as DS;
            let (status, detail) = match &done.result {
                Ok(Outcome::Delivered { .. }) | Ok(Outcome::Typed) => (DS::Delivered, None),
                Ok(Outcome::Unconfirmed { reason }) => (DS::Unconfirmed, Some(reason.clone())),
                Err(InjectError::Empty) => (DS::Failed, Some("nothing to type".to_string())),
                Err(e) => (DS::Queued, Some(e.to_string())),
            };
            self.chat_delivery(id, status, detail.as_deref());
        }
        match done.result {
            Ok(outcome) => self.delivered(done.delivery, outcome),
            Err(
                e @ (InjectError::NotIdle { .. }
                | InjectError::PromptHasText { .. }
                | InjectError::PaneGone(_)
                | InjectError::Client(_)),
            ) => {
                debug!(%pane, error = %e, "not delivered yet; back in the queue");
                self.queues
                    .entry(pane)
                    .or_default()
                    .waiting
                    .push_front(done.delivery);
            }
            Err(InjectError::Empty) => {
                if let (Origin::Outbox { id }, Some(mb)) = (&origin, &self.mailbox) {
                    let _ = mb.write_error_text(
                        id,
                        "the response has nothing to send once control characters are removed",
                    );
                    self.responses.remove(id);
                }
            }
        }
        self.dirty.insert(pane);
        self.after_batch().await;
    }

    fn delivered(&mut self, d: Delivery, outcome: Outcome) {
        let (word, detail) = match &outcome {
            Outcome::Delivered { key, evidence } => {
                ("delivered", format!("submitted with {key}: {evidence}"))
            }
            Outcome::Typed => ("typed", "not submitted".to_string()),
            Outcome::Unconfirmed { reason } => ("unconfirmed", reason.clone()),
        };
        let id = match &d.origin {
            Origin::Outbox { id } | Origin::ControllerPrompt { id } | Origin::Chat { id } => {
                id.clone()
            }
        };
        // Sending a request to the controller is not the delivery of an answer.
        let word = match (&d.origin, word) {
            (Origin::ControllerPrompt { .. }, "delivered") => "prompted",
            (_, w) => w,
        };
        // Record first, then tell: whoever reads the event finds the files in place.
        if let (Origin::Outbox { .. }, Some(mb)) = (&d.origin, &self.mailbox) {
            match &outcome {
                Outcome::Delivered { .. } | Outcome::Typed => {
                    if let Some(response) = self.responses.remove(&id) {
                        let facts = Delivered {
                            at: Utc::now(),
                            pane: d.pane.to_string(),
                            outcome: format!("{word} ({detail})"),
                            sent_text: d.text.clone(),
                        };
                        if let Err(e) = mb.archive(&id, &response, &facts) {
                            warn!(error = %e, %id, "delivered, but could not archive");
                        }
                        mb.remove_inbox_note(&id);
                        let by = self
                            .answered_by
                            .remove(&id)
                            .unwrap_or_else(|| "person".to_string());
                        self.request_answered(&id, &d.text, &by);
                    }
                }
                Outcome::Unconfirmed { reason } => {
                    // The text may be sitting in the prompt or may have gone: never type it
                    // twice on a guess. The person decides (save the file again to retry).
                    self.responses.remove(&id);
                    let _ = mb.write_error_text(
                        &id,
                        &format!(
                            "delivery unconfirmed: {reason}. The text may be in the worker's \
                             prompt; save this response again to retry."
                        ),
                    );
                }
            }
        }
        self.printer.event(
            word,
            format!("{id} → {}: {detail}", d.pane),
            json!({ "id": id, "pane": d.pane.to_string(), "detail": detail }),
        );
    }

    async fn shutdown(&mut self, done_rx: &mut mpsc::UnboundedReceiver<Finished>) {
        let in_flight = self.queues.values().filter(|q| q.in_flight).count();
        if in_flight > 0 {
            info!(in_flight, "waiting for deliveries in flight");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            let mut left = in_flight;
            while left > 0 {
                match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                    Ok(Some(done)) => {
                        left -= 1;
                        let pane = done.delivery.pane;
                        if let Some(q) = self.queues.get_mut(&pane) {
                            q.in_flight = false;
                        }
                        if let Ok(outcome) = done.result {
                            self.delivered(done.delivery, outcome);
                        }
                    }
                    _ => break,
                }
            }
        }
        for (id, q) in &self.queues {
            if q.shown.is_some() {
                let _ = self
                    .client
                    .run(&Command::unset_option(
                        OptionScope::Pane(Target::Pane(*id)),
                        STATUS_OPTION,
                    ))
                    .await;
            }
        }
        self.printer.event("stopped", "bye".into(), json!({}));
        self.client.shutdown();
    }
}

/// The request wrapped for a controller (`prompts/controller_request.txt`, or the state dir's
/// override; an unreadable override is reported and the built-in text used).
fn wrap_request(state_dir: &std::path::Path, id: &str, worker: &str, request: &str) -> String {
    use crate::prompts::{load, render_request, PromptKind};
    let template = load(PromptKind::ControllerRequest, state_dir).unwrap_or_else(|e| {
        warn!(error = %e, "using the built-in controller request wrapper");
        PromptKind::ControllerRequest.builtin().to_string()
    });
    render_request(&template, id, worker, request)
}

/// The text of a response file: the WORKER INSTRUCTIONS of a `<<CONTROLLER_RESPONSE>>` block
/// when it holds one, else the whole file.
fn extract_response(raw: &str) -> String {
    let lines: Vec<String> = raw.lines().map(str::to_string).collect();
    let scan = blocks::find_blocks(&lines, &Limits::default());
    match scan
        .blocks
        .into_iter()
        .find(|b| b.kind == BlockKind::Response)
    {
        Some(b) => b.body,
        None => raw.to_string(),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(80).collect()
}
