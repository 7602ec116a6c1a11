//! The core: a state machine that decides everything the daemon does, and does none of it.
//!
//! [`Core::handle`] takes an [`Event`] — what tmux showed in a pane, a file a person saved in
//! `outbox/`, an API call, a backend's answer, a writer's report, a tick — and returns
//! [`Effect`]s: type this into that pane, write this view file, answer that call, print this
//! line. It never awaits, never talks to tmux, never reads a file; the runner
//! (the daemon) carries the effects out and feeds their results back as events. Time comes
//! in with each event, so tests drive it with any clock.
//!
//! Its one side channel is the journal (the SQLite [`Store`]), written synchronously: the
//! journal *is* the core's durable state, and every row that says "about to type X" must be
//! committed before the effect that types X is handed out, which a synchronous write inside
//! `handle` guarantees by construction.
//!
//! # Parts
//! - [`agents`]: the one registry of panes and agents (name → pane, role, queue, state).
//! - [`detection`]: blocks, turns and heuristics in what a pane shows.
//! - [`requests`]: a request's road: detected → asked → answered → delivered, or the person.
//! - [`deliveries`]: the per-pane queues, the journal rows and the writer's reports.
//! - [`recovery`]: what to do with a row found half-typed after a crash.
//! - [`chat`]: the group chat: routing, pause/resume, urgent text and keys.
//! - [`api`]: the API methods, one function each.

pub mod agents;
pub mod api;
pub mod backends;
pub mod chat;
pub mod deliveries;
pub mod detection;
pub mod recovery;
pub mod replies;
pub mod requests;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::protocol::RpcError;
use crate::chatline::Routes;
use crate::config::{AgentConfig, Config, Mode, Rule};
use crate::detect::blocks::{self, BlockKind, Limits};
use crate::detect::heuristic::Heuristics;
use crate::detect::Profiles;
use crate::inject::Look;
use crate::inject::{InjectError, Outcome};
use crate::mailbox::{Delivered, RequestRecord, ResponseError, ResponseFile};
use crate::pane::PaneInfo;
use crate::store::{Stage, Store};
use crate::tmux::command::KeyName;
use crate::tmux::PaneId;

pub use agents::Agents;
pub use api::Request;
pub use backends::{Backend, ExecDone};

/// An API call waiting for its answer, named by the runner.
pub type CallId = u64;

/// What happened, as the runner tells it.
#[derive(Debug)]
pub enum Event {
    /// The first view of the session: its panes, the target pinned with `set-target`, and the
    /// request ids that have files in `inbox/` or `outbox/`.
    Start {
        panes: Vec<PaneInfo>,
        pinned: Option<String>,
        files: Vec<String>,
        /// Which tmux server this is (its pid and start time): pane ids are per server.
        server: String,
    },
    /// The panes changed (came, went, were renamed or relabelled): the whole list.
    Panes(Vec<PaneInfo>),
    /// What a pane shows now (sent for the panes [`Core::wants_look`] names).
    Seen(PaneSeen),
    /// The connection to tmux was lost (it comes back with `Panes`).
    Lost,
    /// `outbox/<id>.md` stopped changing and was read.
    Outbox {
        id: String,
        read: Result<ResponseFile, ResponseError>,
    },
    /// An API call from connection `conn`; `agent` is who the connection is when it comes
    /// from a process inside an agent's pane (decided by the runner from the socket's peer
    /// credentials), `None` for the person.
    Call {
        call: CallId,
        conn: u64,
        agent: Option<String>,
        request: Request,
    },
    /// An API connection closed.
    Gone { conn: u64 },
    /// An `exec` backend run ended.
    Exec(ExecDone),
    /// A writer is about to take a step of a delivery; answered by [`Effect::Ack`].
    Stage {
        delivery: i64,
        stage: Stage,
        ack: u64,
    },
    /// A writer finished a job.
    Done {
        job: Job,
        result: Result<Outcome, InjectError>,
    },
    /// Time passed: a deadline of [`Core::next_deadline`] is due, or a pane of
    /// [`Core::tick_panes`] has been silent long enough for its state to change.
    Tick,
    /// The daemon is stopping: finish what is being typed, start nothing new.
    Stopping,
}

/// A pane's screen as the runner's model shows it.
#[derive(Debug, Clone)]
pub struct PaneSeen {
    pub pane: PaneId,
    pub look: Look,
    /// The visible rows with some scrollback before them, for finding blocks.
    pub lines: Vec<String>,
    /// Start markers that went through the pane's output since the last look (a block can
    /// scroll out of reach between two looks).
    pub starts: usize,
}

/// What the core wants done.
#[derive(Debug)]
pub enum Effect {
    /// A line for the person (stdout, or a JSON line with `--json`).
    Print {
        event: &'static str,
        line: String,
        fields: Value,
    },
    /// A notification for API subscribers.
    Publish { method: &'static str, params: Value },
    /// Start a writer on this job (one per pane at a time).
    Deliver(Job),
    /// Show (or clear) what waits for a pane, on its border and the people's status lines.
    ShowQueue {
        pane: PaneId,
        status: Option<String>,
    },
    /// Show a line to the people attached to the session (never typed into a pane).
    Tell { pane: PaneId, text: String },
    /// Send [`Event::Seen`] for these panes (they may have changed without output).
    Look(Vec<PaneId>),
    /// Write a view file of the mailbox.
    View(View),
    /// Run the `exec` backend for a request.
    RunExec {
        id: String,
        prompt: String,
        timeout: Duration,
    },
    /// Answer an API call.
    Reply {
        call: CallId,
        result: Result<Value, RpcError>,
    },
    /// Let a writer go on (the step it announced is in the journal).
    Ack(u64),
}

/// The mailbox files, written from the journal.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Inbox(RequestRecord),
    InboxNote {
        id: String,
        text: String,
    },
    Archive {
        id: String,
        response: ResponseFile,
        facts: Delivered,
    },
    ArchiveNote {
        id: String,
        name: &'static str,
        text: String,
    },
    Error {
        id: String,
        text: String,
    },
    ClearError {
        id: String,
    },
}

/// One thing for a writer to type (or press) into one pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The journal row (a delivery id).
    pub delivery: i64,
    pub pane: PaneId,
    /// The exact text, already sanitised (what the journal holds).
    pub text: String,
    pub how: How,
    /// Past the busy guard (never into a menu or over someone's text).
    pub urgent: bool,
}

/// How a job is typed.
#[derive(Debug, Clone, PartialEq)]
pub enum How {
    /// Type the text and submit it.
    Type,
    /// The whole text is already in the prompt (found after a crash): submit it.
    Submit,
    /// Part of the text is in the prompt (found after a crash): clear it with these keys, then
    /// type the text and submit it.
    Retype { clear: Vec<KeyName> },
    /// Press this key (the person's `!C-c`); no idle check.
    Key(KeyName),
}

/// The settings the core works with, taken from the [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub session: String,
    pub auto: bool,
    pub dry_run: bool,
    pub heuristic: bool,
    pub worker: String,
    /// The worker was named by `--target` (which beats a pinned target).
    pub worker_from_flag: bool,
    pub controller: String,
    pub chain: Vec<Backend>,
    pub timeout: Duration,
    pub rules: Vec<Rule>,
    pub limits: Limits,
    pub state_dir: PathBuf,
    pub agents: Vec<AgentConfig>,
    pub routes: std::collections::BTreeMap<String, Vec<String>>,
    pub guards: crate::config::Guards,
}

impl Settings {
    /// The mode as the person reads it: `dry run`, `auto` or `manual`.
    pub fn mode_label(&self) -> &'static str {
        if self.dry_run {
            "dry run"
        } else if self.auto {
            "auto"
        } else {
            "manual"
        }
    }

    pub fn from_config(cfg: &Config, worker_from_flag: bool) -> Settings {
        Settings {
            session: cfg.session.clone(),
            auto: cfg.mode == Mode::Auto && !cfg.dry_run,
            dry_run: cfg.dry_run,
            heuristic: cfg.heuristic,
            worker: cfg.worker.clone(),
            worker_from_flag,
            controller: cfg.controller.clone(),
            chain: backends::chain(cfg),
            timeout: Duration::from_secs(cfg.controller_timeout_secs),
            rules: cfg.rules.clone(),
            limits: Limits {
                max_bytes: cfg.limits.block_bytes,
                max_lines: cfg.limits.block_lines,
            },
            state_dir: cfg.state_dir.clone(),
            agents: cfg.agents.clone(),
            routes: cfg.routes.clone(),
            guards: cfg.guards.clone(),
        }
    }
}

/// The core's state. See the module documentation.
pub struct Core {
    s: Settings,
    profiles: Profiles,
    heuristics: Heuristics,
    /// The journal; `None` in a dry run (nothing is written or typed).
    store: Option<Store>,
    agents: Agents,
    routes: Routes,
    paused: BTreeSet<String>,
    /// Requests on their way down the backend chain.
    auto: backends::Auto,
    /// `hello` names by connection.
    names: HashMap<u64, String>,
    /// Per name, the last message id `chat.read` returned.
    read_marks: HashMap<String, String>,
    /// `request.ask` calls waiting for their answer: request id → (call, deadline).
    asks: HashMap<String, Vec<(CallId, Instant)>>,
    /// Delivery rows already in a queue (or being typed).
    in_queue: HashSet<i64>,
    /// Tasks and the discussion under way.
    conv: replies::Conversation,
    started: bool,
    /// The tmux server's identity.
    server: String,
    /// The daemon is stopping: nothing new is typed.
    stopping: bool,
    now: Instant,
    out: Vec<Effect>,
    /// What `daemon.info` reports beyond the agents.
    health: Health,
}

/// How the daemon is doing, for `daemon.info`.
struct Health {
    born: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    /// The control connection to tmux is up.
    attached: bool,
    last_error: Option<crate::api::protocol::LastError>,
}

/// The event lines that say something went wrong: the last one is kept for `daemon.info`.
const ERROR_EVENTS: &[&str] = &[
    "error",
    "unconfirmed",
    "failed",
    "no-answer",
    "capped",
    "detached",
];

impl Core {
    pub fn new(
        s: Settings,
        profiles: Profiles,
        heuristics: Heuristics,
        store: Option<Store>,
    ) -> Core {
        let paused = store
            .as_ref()
            .and_then(|st| st.paused().ok())
            .unwrap_or_default()
            .into_iter()
            .collect();
        Core {
            routes: Routes::new(&s.routes),
            s,
            profiles,
            heuristics,
            store,
            agents: Agents::default(),
            paused,
            auto: backends::Auto::default(),
            names: HashMap::new(),
            read_marks: HashMap::new(),
            asks: HashMap::new(),
            in_queue: HashSet::new(),
            conv: replies::Conversation::default(),
            started: false,
            server: String::new(),
            stopping: false,
            now: Instant::now(),
            out: Vec::new(),
            health: Health {
                born: Instant::now(),
                started_at: chrono::Utc::now(),
                attached: false,
                last_error: None,
            },
        }
    }

    /// Handles one event at `now` and returns what to do, in order.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Effect> {
        self.now = now;
        match event {
            Event::Start {
                panes,
                pinned,
                files,
                server,
            } => {
                self.server = server;
                self.health.attached = true;
                self.start(panes, pinned, files)
            }
            Event::Panes(panes) => {
                self.health.attached = true;
                self.panes_changed(panes)
            }
            Event::Seen(seen) => self.seen(seen),
            Event::Lost => {
                self.health.attached = false;
                self.print(
                    "detached",
                    "lost tmux; waiting for the session to come back".into(),
                    json!({}),
                )
            }
            Event::Outbox { id, read } => self.outbox(&id, read),
            Event::Call {
                call,
                conn,
                agent,
                request,
            } => self.call(call, conn, agent, request),
            Event::Gone { conn } => {
                self.names.remove(&conn);
            }
            Event::Exec(done) => self.exec_done(done),
            Event::Stage {
                delivery,
                stage,
                ack,
            } => {
                self.journal(|st| st.set_stage(delivery, stage));
                self.out.push(Effect::Ack(ack));
            }
            Event::Done { job, result } => self.done(job, result),
            Event::Tick => self.tick(),
            Event::Stopping => self.stopping = true,
        }
        std::mem::take(&mut self.out)
    }

    /// Whether the runner should send [`Event::Seen`] for this pane when it changes: the
    /// worker, the controller, chat agents, and panes with something queued.
    pub fn wants_look(&self, pane: PaneId) -> bool {
        self.agents.watched(pane)
    }

    /// Whether something waits for `pane` to be idle: its every change of screen matters.
    pub fn waits_for_idle(&self, pane: PaneId) -> bool {
        self.agents.waits_for_idle(pane)
    }

    /// When the core next needs an [`Event::Tick`]: the earliest `request.ask` deadline or
    /// controller timeout; `None` while nothing waits on the clock (the runner arms no timer).
    pub fn next_deadline(&self) -> Option<Instant> {
        let asks = self.asks.values().flatten().map(|(_, d)| *d).min();
        let controller = self.auto.asking.as_ref().map(|a| a.since + self.s.timeout);
        asks.into_iter()
            .chain(controller)
            .chain(self.conversation_deadline())
            .min()
    }

    /// The panes a tick looks at again, since silence alone can change their state: those
    /// that wait to be typed into, and the worker.
    pub fn tick_panes(&self) -> Vec<PaneId> {
        let mut look = self.agents.waiting_panes();
        if let Some(w) = self.agents.worker {
            if !look.contains(&w) {
                look.push(w);
            }
        }
        look
    }

    /// The journal, for read-only questions (tests, the runner's shutdown).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The agent a process in `pane` speaks for: the chat agent there, or the worker or the
    /// controller; `None` for any other pane (the person's).
    pub fn identity_of(&self, pane: PaneId) -> Option<String> {
        if let Some(name) = self.agents.agent_of(pane) {
            return Some(name);
        }
        (self.agents.worker == Some(pane) || self.agents.controller == Some(pane))
            .then(|| self.agents.recipient(pane))
    }

    /// The worker pane, when one matches.
    pub fn worker(&self) -> Option<PaneId> {
        self.agents.worker
    }

    fn print(&mut self, event: &'static str, line: String, fields: Value) {
        if ERROR_EVENTS.contains(&event) {
            self.note_error(event, &line);
        }
        self.out.push(Effect::Print {
            event,
            line,
            fields,
        });
    }

    /// Keeps `text` as the last error `daemon.info` reports.
    fn note_error(&mut self, event: &str, text: &str) {
        self.health.last_error = Some(crate::api::protocol::LastError {
            at: chrono::Utc::now().to_rfc3339(),
            event: event.to_string(),
            text: text.to_string(),
        });
    }

    fn publish(&mut self, method: &'static str, params: impl serde::Serialize) {
        self.out.push(Effect::Publish {
            method,
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        });
    }

    fn view(&mut self, v: View) {
        self.out.push(Effect::View(v));
    }

    /// Opens a journal batch spanning the next events (see [`Store::begin_batch`]): what they
    /// write commits at [`Core::end_batch`], and their effects must not be carried out before.
    /// Says whether one was opened (there is a journal and it could begin).
    pub fn begin_batch(&mut self) -> bool {
        match self.store.as_mut().map(Store::begin_batch) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "journal batch not opened");
                false
            }
            None => false,
        }
    }

    /// Commits the batch [`Core::begin_batch`] opened.
    pub fn end_batch(&mut self) -> Result<(), crate::store::StoreError> {
        self.store.as_mut().map_or(Ok(()), Store::end_batch)
    }

    /// Runs a journal write; a failure is logged (the daemon goes on; what the journal lost is
    /// named in the log).
    fn journal<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, crate::store::StoreError>,
    ) -> Option<T> {
        let store = self.store.as_mut()?;
        match f(store) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "journal write failed");
                self.note_error("journal", &format!("journal write failed: {e}"));
                None
            }
        }
    }

    fn start(&mut self, panes: Vec<PaneInfo>, pinned: Option<String>, files: Vec<String>) {
        if !self.s.worker_from_flag {
            if let Some(p) = pinned {
                self.s.worker = p;
            }
        }
        self.agents.set_panes(panes);
        self.resolve_roles();
        let mode = self.s.mode_label();
        if self.agents.worker.is_none() {
            tracing::warn!(target = %self.s.worker, "no worker pane yet; waiting for one to appear");
            self.print(
                "waiting",
                format!(
                    "no pane matches the worker target {:?} yet (panes: {})",
                    self.s.worker,
                    self.agents.describe()
                ),
                json!({ "target": self.s.worker }),
            );
        }
        let worker = self.agents.worker;
        self.print(
            "started",
            format!(
                "session {} · mode {mode} · worker {} · state dir {}",
                self.s.session,
                worker.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                self.s.state_dir.display()
            ),
            json!({ "session": self.s.session, "mode": mode,
                    "worker": worker.map(|p| p.to_string()) }),
        );
        // Rows half-typed first: a controller prompt being typed is not asked again.
        self.recover_typing();
        self.recover_requests(&files);
        self.load_all_queues();
        self.started = true;
        let all = self.agents.watched_panes();
        self.out.push(Effect::Look(all));
    }

    fn panes_changed(&mut self, panes: Vec<PaneInfo>) {
        // Items waiting for a pane that is gone go back to the journal's queue: an agent whose
        // pane comes back under another id gets them there.
        for item in self.agents.set_panes(panes) {
            self.in_queue.remove(&item.delivery);
        }
        let (worker, controller) = (self.agents.worker, self.agents.controller);
        let gained = self.resolve_roles();
        for name in gained {
            self.load_queue(&name);
        }
        if self.agents.worker != worker || self.agents.controller != controller {
            self.load_all_queues();
        }
        if !self.auto.waiting.is_empty() {
            self.pump_controller();
        }
        let all = self.agents.watched_panes();
        self.out.push(Effect::Look(all));
    }

    /// Loads every recipient's queued rows into its pane's queue: the chat agents', and the
    /// worker's and the controller's (which need not be chat agents).
    fn load_all_queues(&mut self) {
        for name in self.agents.names() {
            self.load_queue(&name);
        }
        for pane in [self.agents.worker, self.agents.controller]
            .into_iter()
            .flatten()
        {
            if self.agents.agent_of(pane).is_none() {
                let name = self.agents.recipient(pane);
                self.load_queue_of(pane, &name);
            }
        }
    }

    /// Looks up the worker, the controller and the chat agents again; returns the agents that
    /// gained a pane.
    fn resolve_roles(&mut self) -> Vec<String> {
        let wants_controller = self.s.auto && self.s.chain.contains(&Backend::Pane);
        let controller = wants_controller.then_some(self.s.controller.as_str());
        let chat = !self.s.dry_run;
        self.agents
            .resolve(&self.s.worker, controller, chat, &self.s.agents)
    }

    fn tick(&mut self) {
        self.expire_asks();
        self.expire_conversation();
        self.controller_timeout();
        // Silence can change a state with no output: look again at panes that wait.
        let look = self.tick_panes();
        if !look.is_empty() {
            self.out.push(Effect::Look(look));
        }
    }
}

/// The text of a response file: the WORKER INSTRUCTIONS of a `<<CONTROLLER_RESPONSE>>` block
/// when it holds one, else the whole text.
pub fn extract_response(raw: &str) -> String {
    let lines: Vec<String> = raw.lines().map(str::to_string).collect();
    let scan = blocks::find_blocks(&lines, &Limits::default());
    let body = match scan
        .blocks
        .into_iter()
        .find(|b| b.kind == BlockKind::Response)
    {
        Some(b) => b.body,
        None => raw.to_string(),
    };
    blocks::parse_response(&body)
        .instructions
        .trim()
        .to_string()
}

/// The first line of a text, at most 80 characters (for event lines).
pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(80).collect()
}
