//! The daemon (`macs-bridge --session macs --mode manual|auto [--dry-run]`): the runner around
//! the [`crate::core`] state machine.
//!
//! It owns every piece of I/O: the tmux control client and the screen models ([`Panes`]), the
//! outbox watcher, the API server, the writer tasks, the `exec` backend, the mailbox view files
//! and the printer. In one loop it turns what arrives into core events, hands each event to
//! [`Core::handle`], and carries out the effects it gets back, in order ([`effects`]).

mod bursts;
mod calls;
mod claim;
pub mod controller;
mod effects;
pub mod health;
mod looks;
mod pacing;
mod waits;
mod writer;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::api::protocol::RpcError;
use crate::api::server::{ApiMsg, Subscribers};
use crate::config::Config;
use crate::core::{Core, Event, Settings};
use crate::detect::heuristic::Heuristics;
use crate::detect::Profiles;
use crate::inject::{InjectOptions, Look};
use crate::mailbox::{Mailbox, OutboxEvent};
use crate::pane::{PaneChange, Panes};
use crate::store::Store;
use crate::tmux::client::{Client, ClientEvent, ClientOptions};
use crate::tmux::command::{Command, KeyName, OptionScope, Target};
use crate::tmux::PaneId;
use waits::{spawn_signal_handler, wait_missed};

/// The pane option the bridge uses to show a person what waits (see `up`'s border format).
pub const STATUS_OPTION: &str = "@macs-status";

/// How long an outbox file must stay unchanged before it is read (editors write in pieces).
const OUTBOX_SETTLE: Duration = Duration::from_millis(300);
/// Rows of scrollback scanned for blocks besides the visible screen (as many as are read from
/// tmux for a pane that is skimmed).
const SCAN_HISTORY: usize = crate::pane::VIEW_HISTORY;

/// What the daemon runs with: the loaded configuration, the tmux server, and how it prints.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub cfg: Config,
    pub tmux: crate::tmux::oneshot::Tmux,
    /// Print events as JSON lines.
    pub json: bool,
    /// The worker was named on the command line: it must exist, and it beats a pinned target.
    pub target_from_flag: bool,
}

/// Why the daemon could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Profiles(#[from] crate::detect::ProfileError),
    #[error("heuristic phrases: {0}")]
    Heuristics(#[from] regex::Error),
    #[error(transparent)]
    Key(#[from] crate::tmux::command::CommandError),
    #[error(transparent)]
    Mailbox(#[from] crate::mailbox::MailboxError),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    #[error(transparent)]
    Client(#[from] crate::tmux::client::ClientError),
    #[error(transparent)]
    Panes(#[from] crate::pane::FindError),
    #[error(transparent)]
    Claim(#[from] claim::ClaimError),
    /// `--target` names no pane (a usage error).
    #[error("--target {target:?} names no pane in session {session:?}; panes: {panes}")]
    NoTarget {
        target: String,
        session: String,
        panes: String,
    },
    #[error("{0}")]
    Start(String),
    /// API calls handled together could not be committed: none was answered or typed.
    #[error("the journal could not commit the API calls that came together ({0}); none of them was answered or typed, and the journal holds none of them: start the daemon again")]
    Journal(crate::store::StoreError),
}

/// Prints what happens, as readable lines or JSON lines.
struct Printer {
    json: bool,
}

impl Printer {
    fn event(&self, event: &str, line: &str, fields: serde_json::Value) {
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

/// The runner's state: everything with I/O.
struct Runner {
    cfg: Config,
    core: Core,
    client: Client,
    panes: Panes,
    profiles: Profiles,
    mailbox: Option<Mailbox>,
    printer: Printer,
    inject: InjectOptions,
    /// Panes whose screen changed since the last look.
    dirty: HashSet<PaneId>,
    /// When panes that print are looked at (see `pacing`).
    pacing: pacing::Pacing,
    /// The blocks each pane drew lately (a repaint needs no look of its own).
    drawn: bursts::Drawn,
    /// Start markers seen in each pane's output since its last look.
    starts: HashMap<PaneId, usize>,
    /// Live looks for the writers, per pane.
    looks: HashMap<PaneId, watch::Sender<Option<Look>>>,
    /// Panes a writer is typing into.
    writing: HashSet<PaneId>,
    reports_tx: mpsc::UnboundedSender<writer::Report>,
    acks: HashMap<u64, oneshot::Sender<()>>,
    next_ack: u64,
    exec_tx: mpsc::UnboundedSender<crate::core::ExecDone>,
    /// Outbox files waiting to settle, by id: when they last changed.
    outbox_waits: HashMap<String, tokio::time::Instant>,
    /// The silences after which some profile may see a pane differently (`settle_ms`,
    /// `idle_when_silent_ms`), shortest first; empty with the built-in profiles.
    silences: Vec<Duration>,
    /// When each pane was last looked at (for the silences above).
    looked: HashMap<PaneId, std::time::Instant>,
    watcher: Option<crate::mailbox::OutboxWatcher>,
    subs: Subscribers,
    calls: HashMap<u64, oneshot::Sender<Result<serde_json::Value, RpcError>>>,
    next_call: u64,
}

/// Raises the soft limit of open files to the hard one (at most 65,536): every API connection,
/// pane and file takes one.
fn raise_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write or read the struct passed, which lives on the stack.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            let want = lim.rlim_max.min(65_536);
            if lim.rlim_cur < want {
                lim.rlim_cur = want;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    debug!("could not raise the open file limit");
                }
            }
        }
    }
}

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    raise_file_limit();
    let DaemonOptions {
        cfg,
        tmux,
        json,
        target_from_flag,
    } = opts;

    let mut profiles = Profiles::builtin();
    if !cfg.profiles.files.is_empty() {
        profiles.load_overrides(cfg.profiles.files.iter())?;
    }
    let heuristics = Heuristics::new(&cfg.heuristic_phrases)?;
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
    let (mailbox, store) = if cfg.dry_run {
        (None, None)
    } else {
        let mb = Mailbox::open(&cfg.state_dir)?.with_response_limit(cfg.limits.response_bytes);
        let store = Store::open(&cfg.state_dir.join(crate::store::FILE_NAME))?;
        (Some(mb), Some(store))
    };

    let (client, mut events) =
        Client::connect(ClientOptions::new(tmux, cfg.session.clone())).await?;
    // One daemon per session (a dry run types nothing and may watch alongside).
    if !cfg.dry_run {
        if let Err(e) = claim::claim(&client, &cfg.session, &cfg.state_dir).await {
            client.shutdown();
            return Err(e.into());
        }
    }
    let settings = Settings::from_config(&cfg, target_from_flag);
    let core = Core::new(settings, profiles.clone(), heuristics, store);
    let (reports_tx, mut reports_rx) = mpsc::unbounded_channel();
    let (exec_tx, mut exec_rx) = mpsc::unbounded_channel();
    let (outbox_tx, mut outbox_rx) = mpsc::channel::<OutboxEvent>(1024);
    let cancel = CancellationToken::new();
    let (api_tx, mut api_rx) = mpsc::channel::<ApiMsg>(1024);
    if !cfg.dry_run {
        let path = crate::api::socket_path(&cfg.state_dir);
        let listener = crate::api::server::Listener::bind(&path)?;
        tokio::spawn(crate::api::server::serve(listener, api_tx, cancel.clone()));
    } else {
        drop(api_tx);
    }
    let mut r = Runner {
        printer: Printer { json },
        cfg,
        core,
        client: client.clone(),
        panes: Panes::new(client.clone()),
        silences: silences(&profiles),
        profiles,
        mailbox,
        inject,
        dirty: HashSet::new(),
        pacing: pacing::Pacing::default(),
        drawn: bursts::Drawn::default(),
        starts: HashMap::new(),
        looks: HashMap::new(),
        writing: HashSet::new(),
        reports_tx,
        acks: HashMap::new(),
        next_ack: 0,
        exec_tx,
        outbox_waits: HashMap::new(),
        looked: HashMap::new(),
        watcher: None,
        subs: Subscribers::new(),
        calls: HashMap::new(),
        next_call: 0,
    };

    // Watch `outbox/` before looking at what is there: a file saved in between is not missed.
    r.watcher = match &r.mailbox {
        Some(mb) => Some(mb.watch(outbox_tx.clone())?),
        None => None,
    };
    // The first event is the attach; build the view before anything else.
    r.start(&mut events).await?;
    // A worker named on the command line must exist: a mistyped target is an error, never
    // another pane (a target from the environment or the file may appear later, as `up`
    // starts agents).
    if target_from_flag && r.core.worker().is_none() {
        let panes = r.panes.describe();
        claim::release(&r.client, &r.cfg.session).await;
        r.client.shutdown();
        return Err(DaemonError::NoTarget {
            target: r.cfg.worker.clone(),
            session: r.cfg.session.clone(),
            panes,
        });
    }

    spawn_signal_handler(cancel.clone());
    // No timer runs while nothing waits on the clock: each turn of the loop arms one for the
    // earliest deadline there is, if any.
    let missed = r.watcher.as_ref().map(|w| w.missed());
    let mut failed = None;
    let mut gather = waits::Gather::default();
    loop {
        // Panes the core asked to see (`Effect::Look`) after any event, the first view
        // included, are looked at before waiting again; so is output not looked at yet of a
        // pane that something now waits to type into.
        let waited: Vec<PaneId> = r
            .pacing
            .pending()
            .filter(|id| r.core.waits_for_idle(*id))
            .collect();
        r.dirty.extend(waited);
        if !r.dirty.is_empty() {
            r.look_dirty().await;
        }
        // While a pane floods and output streams in, tmux's events gather before they are
        // taken (not while typing into a pane: each step of that waits for the screen to show
        // the last).
        let hold = if r.writing.is_empty() && r.pacing.any_flooding() {
            gather.hold(std::time::Instant::now())
        } else {
            None
        };
        let wake = r.next_wake();
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sleep_until(hold.map(tokio::time::Instant::from_std)) => {
                gather.release();
            }
            ev = events.recv(), if hold.is_none() => {
                let Some(ev) = ev else { break };
                gather.woke(std::time::Instant::now());
                let closed = matches!(ev, ClientEvent::Closed);
                let mut membership = r.client_event(ev).await;
                // Apply whatever else is already waiting, then look at the panes once.
                let mut n = 0;
                while n < 4096 {
                    match events.try_recv() {
                        Ok(ev) => { membership |= r.client_event(ev).await; n += 1; }
                        Err(_) => break,
                    }
                }
                if membership {
                    let infos = r.infos();
                    r.feed(Event::Panes(infos)).await;
                }
                r.look_dirty().await;
                if closed { break; }
            }
            Some(ev) = outbox_rx.recv() => r.outbox_event(ev).await,
            Some(rep) = reports_rx.recv() => r.report(rep).await,
            Some(done) = exec_rx.recv() => r.feed(Event::Exec(done)).await,
            Some(msg) = api_rx.recv() => {
                if let Err(e) = r.api(msg, &mut api_rx).await {
                    failed = Some(DaemonError::Journal(e));
                    break;
                }
            }
            _ = sleep_until(wake) => r.wake().await,
            _ = wait_missed(missed.as_deref()) => r.rescan_outbox().await,
        }
    }
    cancel.cancel();
    r.shutdown(&mut reports_rx).await;
    failed.map_or(Ok(()), Err)
}

impl Runner {
    async fn start(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<ClientEvent>,
    ) -> Result<(), DaemonError> {
        let mut first = true;
        // The screens are seeded in stream order; a capture that never comes back must not
        // keep the daemon from starting (its pane is seeded when it does).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while first || self.panes.seeding() {
            if !first && tokio::time::Instant::now() >= deadline {
                warn!("some panes were not seeded in time; going on");
                break;
            }
            first = false;
            let ev = tokio::time::timeout_at(deadline, events.recv())
                .await
                .map_err(|_| DaemonError::Start("tmux did not send the panes in time".into()))?
                .ok_or_else(|| DaemonError::Start("lost the connection to tmux".into()))?;
            if let Some(id) = self.output_pane(&ev) {
                self.dirty.insert(id);
            }
            self.panes.handle(ev).await?;
        }
        let pinned = match self.panes.pinned_target().await {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "cannot read the pinned target");
                None
            }
        };
        self.pin_profiles().await;
        let mut files = Vec::new();
        if let Some(mb) = &self.mailbox {
            files.extend(mb.outbox_ids());
            if let Ok(reqs) = mb.pending_requests() {
                files.extend(reqs.into_iter().map(|r| r.id));
            }
            // Answers written while the daemon was down are read now.
            let past = tokio::time::Instant::now()
                .checked_sub(OUTBOX_SETTLE)
                .unwrap_or_else(tokio::time::Instant::now);
            for id in mb.outbox_ids() {
                self.outbox_waits.insert(id, past);
            }
        }
        files.sort();
        files.dedup();
        let server = self
            .client
            .run(&Command::display_message(None, "#{pid} #{start_time}"))
            .await
            .ok()
            .and_then(|l| l.into_iter().next())
            .unwrap_or_default();
        let infos = self.infos();
        self.feed(Event::Start {
            panes: infos,
            pinned,
            files,
            server,
        })
        .await;
        Ok(())
    }

    /// Profiles the config pins to panes become `@macs-profile` pane options, which every
    /// tool and the classifier read.
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
                Err(e) => {
                    warn!(error = %e, %target, "profile pinned to an unknown pane");
                    self.printer.event(
                        "error",
                        &format!("profiles.panes: {target:?} names no pane ({e}); not pinned"),
                        json!({ "target": target, "error": e.to_string() }),
                    );
                }
            }
        }
    }

    /// Output seen while starting: those panes are looked at once the core knows them.
    fn output_pane(&self, ev: &ClientEvent) -> Option<PaneId> {
        match ev {
            ClientEvent::Tmux(crate::tmux::control::Event::Output { pane, .. }) => Some(*pane),
            _ => None,
        }
    }

    fn infos(&self) -> Vec<crate::pane::PaneInfo> {
        self.panes.iter().map(|p| p.info.clone()).collect()
    }

    /// Applies one tmux event to the screen models; says whether the set of panes changed.
    async fn client_event(&mut self, ev: ClientEvent) -> bool {
        // Output with the end marker of a block the pane did not draw lately: the screen is
        // looked at right after the marker, before what follows can erase the block (only for
        // panes the core reads blocks in: output of the others is not searched).
        use crate::tmux::control::Event as T;
        let watched = match &ev {
            ClientEvent::Tmux(T::Output { pane, .. } | T::ExtendedOutput { pane, .. }) => {
                self.core.wants_look(*pane)
            }
            _ => false,
        };
        let cut = if watched {
            self.drawn.cuts_of(&ev)
        } else {
            None
        };
        let Some((pane, cuts)) = cut else {
            return self.apply_event(ev).await;
        };
        let mut membership = false;
        for (part, ends_block) in bursts::split(ev, &cuts) {
            membership |= self.apply_event(part).await;
            if ends_block {
                self.look_at(pane).await;
            }
        }
        membership
    }

    async fn apply_event(&mut self, ev: ClientEvent) -> bool {
        use crate::tmux::control::Event as T;
        let mut bytes = 0;
        if let ClientEvent::Tmux(T::Output { pane, data } | T::ExtendedOutput { pane, data, .. }) =
            &ev
        {
            bytes = data.len() as u64;
            if self.core.wants_look(*pane) {
                let n = bursts::count_starts(data);
                if n > 0 {
                    *self.starts.entry(*pane).or_default() += n;
                }
            }
        }
        let changes = match self.panes.handle(ev).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "tmux event not applied");
                return false;
            }
        };
        let mut membership = false;
        for change in changes {
            match change {
                PaneChange::Output(id) => {
                    let now = std::time::Instant::now();
                    if self.writing.contains(&id)
                        || self.core.waits_for_idle(id)
                        || self.pacing.output(id, now, bytes)
                    {
                        self.dirty.insert(id);
                    }
                }
                PaneChange::Info(id) | PaneChange::Added(id) => {
                    self.dirty.insert(id);
                    membership = true;
                }
                PaneChange::Removed(id) => {
                    self.pacing.forget(id);
                    self.drawn.forget(id);
                    self.looks.remove(&id);
                    self.looked.remove(&id);
                    membership = true;
                }
                PaneChange::Resynced => {
                    self.dirty.extend(self.panes.iter().map(|p| p.id()));
                    membership = true;
                }
                PaneChange::Lost => {
                    self.feed(Event::Lost).await;
                }
                PaneChange::Viewed(id) => self.look_now(id).await,
            }
        }
        membership
    }

    /// Hands an event to the core and carries out what it says.
    async fn feed(&mut self, event: Event) {
        let effects = self.core.handle(std::time::Instant::now(), event);
        for e in effects {
            self.effect(e).await;
        }
    }

    async fn report(&mut self, rep: writer::Report) {
        match rep {
            writer::Report::Step {
                delivery,
                step,
                ack,
            } => {
                self.next_ack += 1;
                let n = self.next_ack;
                self.acks.insert(n, ack);
                let stage = match step {
                    crate::inject::Step::Text => crate::store::Stage::Text,
                    crate::inject::Step::Submit => crate::store::Stage::Submit,
                };
                self.feed(Event::Stage {
                    delivery,
                    stage,
                    ack: n,
                })
                .await;
            }
            writer::Report::Done { job, result } => {
                self.writing.remove(&job.pane);
                self.dirty.insert(job.pane);
                self.feed(Event::Done { job, result }).await;
                self.look_dirty().await;
            }
        }
    }

    /// The outbox watcher saw a file: read it at once when its writer is done (closed after
    /// writing, renamed into place), else once it stays quiet for [`OUTBOX_SETTLE`].
    async fn outbox_event(&mut self, ev: OutboxEvent) {
        let now = tokio::time::Instant::now();
        match ev {
            OutboxEvent::Written { id } => {
                let at = now.checked_sub(OUTBOX_SETTLE).unwrap_or(now);
                self.outbox_waits.insert(id, at);
                self.read_settled_outbox().await;
                self.look_dirty().await;
            }
            OutboxEvent::Changed { id } => {
                self.outbox_waits.insert(id, now);
            }
        }
    }

    /// The watcher may have dropped events (a full queue, an inotify overflow): every file in
    /// `outbox/` waits to settle again.
    async fn rescan_outbox(&mut self) {
        if let Some(mb) = &self.mailbox {
            for id in mb.outbox_ids() {
                self.outbox_waits.insert(id, tokio::time::Instant::now());
            }
        }
    }

    /// The earliest moment something is due: an outbox file settled, a deadline of the core, a
    /// pane silent for one of [`Runner::silences`] since it was last looked at. `None` when
    /// nothing is.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let outbox = self.outbox_waits.values().map(|t| *t + OUTBOX_SETTLE).min();
        let core = self
            .core
            .next_deadline()
            .map(tokio::time::Instant::from_std);
        let silence = self
            .silence_due()
            .map(|(_, at)| at)
            .min()
            .map(tokio::time::Instant::from_std);
        let paced = self.pacing.next_due().map(tokio::time::Instant::from_std);
        [outbox, core, silence, paced].into_iter().flatten().min()
    }

    /// For each pane whose state silence may change (the core's tick panes and the panes being
    /// typed into), the next moment a profile's silence is reached, if it was not looked at
    /// since.
    fn silence_due(&self) -> impl Iterator<Item = (PaneId, std::time::Instant)> + '_ {
        let panes = if self.silences.is_empty() {
            Vec::new()
        } else {
            let mut panes = self.core.tick_panes();
            panes.extend(self.writing.iter().copied());
            panes
        };
        panes.into_iter().filter_map(|id| {
            let last = self.panes.get(id)?.last_output()?;
            let looked = self.looked.get(&id).copied();
            let at = self
                .silences
                .iter()
                .map(|s| last + *s)
                .find(|at| looked.is_none_or(|l| l < *at))?;
            Some((id, at))
        })
    }

    /// What the clock made due: settled outbox files, the core's deadlines, panes gone silent.
    async fn wake(&mut self) {
        self.read_settled_outbox().await;
        let now = std::time::Instant::now();
        let silent: Vec<PaneId> = self
            .silence_due()
            .filter(|(_, at)| *at <= now)
            .map(|(id, _)| id)
            .collect();
        let core_due = self.core.next_deadline().is_some_and(|d| d <= now);
        if core_due || !silent.is_empty() {
            self.feed(Event::Tick).await;
        }
        // Panes being typed into are looked at too (their writer waits on the look).
        self.dirty.extend(silent.iter().copied());
        self.dirty.extend(self.pacing.due(now));
        self.look_dirty().await;
        // Each silence is handled once, even for a pane nobody looked at in the end.
        for id in silent {
            self.looked.insert(id, now);
        }
    }

    /// Reads the outbox files that are ready and hands them to the core.
    async fn read_settled_outbox(&mut self) {
        let ready: Vec<String> = self
            .outbox_waits
            .iter()
            .filter(|(_, t)| t.elapsed() >= OUTBOX_SETTLE)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.outbox_waits.remove(&id);
            let Some(mb) = &self.mailbox else { continue };
            let read = mb.read_answer(&id);
            if let Err(e) = &read {
                if !e.is_content_problem()
                    && !matches!(e, crate::mailbox::ResponseError::Missing { .. })
                {
                    // Could not read it now (out of file handles, …): try again later.
                    self.outbox_waits
                        .insert(id.clone(), tokio::time::Instant::now());
                }
                if matches!(e, crate::mailbox::ResponseError::Missing { .. }) {
                    continue;
                }
            }
            self.feed(Event::Outbox { id, read }).await;
        }
    }

    async fn shutdown(&mut self, reports: &mut mpsc::UnboundedReceiver<writer::Report>) {
        // Nothing new is typed from here on; what is being typed is finished and recorded.
        self.feed(Event::Stopping).await;
        if !self.writing.is_empty() {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            while !self.writing.is_empty() {
                match tokio::time::timeout_at(deadline, reports.recv()).await {
                    // Each step is journaled before the writer takes it, as always.
                    Ok(Some(rep)) => self.report(rep).await,
                    _ => break,
                }
            }
        }
        let shown: Vec<PaneId> = self.looks.keys().copied().collect();
        for id in shown {
            let _ = self
                .client
                .run(&Command::unset_option(
                    OptionScope::Pane(Target::Pane(id)),
                    STATUS_OPTION,
                ))
                .await;
        }
        if !self.cfg.dry_run {
            claim::release(&self.client, &self.cfg.session).await;
        }
        self.printer.event("stopped", "bye", json!({}));
        self.client.shutdown();
    }
}

/// The silences after which a profile may see a pane differently, shortest first.
fn silences(profiles: &Profiles) -> Vec<Duration> {
    let mut v: Vec<Duration> = profiles
        .iter()
        .flat_map(|p| [p.settle, p.idle_when_silent])
        .flatten()
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Sleeps until `at`; never returns without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
