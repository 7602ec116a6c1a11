//! Watching `outbox/` with `notify`: the callback only translates and `try_send`s.

use super::*;

impl Mailbox {
    /// Watches `outbox/`. The callback only turns events into [`OutboxEvent`]s and
    /// `try_send`s them. An event that cannot be sent (the channel is full), a kernel queue
    /// overflow or a watcher error is never waited on: it sets a flag that
    /// [`OutboxWatcher::take_missed`] reports (and [`OutboxWatcher::missed`] wakes on), and the
    /// caller then looks at every file in `outbox/` again ([`Mailbox::outbox_ids`]). Dropping
    /// the returned guard stops watching.
    pub fn watch(&self, tx: mpsc::Sender<OutboxEvent>) -> Result<OutboxWatcher, MailboxError> {
        use notify::Watcher;
        let missed = Arc::new(Missed::default());
        let flag = Arc::clone(&missed);
        let handler = move |res: notify::Result<notify::Event>| {
            match translate(res) {
                Ok(events) => {
                    for ev in events {
                        forward(&tx, &flag.flag, ev);
                    }
                }
                Err(reason) => {
                    warn!(%reason, "outbox events may have been lost; the outbox will be scanned again");
                    flag.flag.store(true, Ordering::Release);
                }
            }
            if flag.flag.load(Ordering::Acquire) {
                flag.wake.notify_one();
            }
        };
        let mut watcher =
            notify::recommended_watcher(handler).map_err(|e| watch_error(&self.outbox, e))?;
        watcher
            .watch(&self.outbox, notify::RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&self.outbox, e))?;
        Ok(OutboxWatcher {
            _watcher: watcher,
            missed,
        })
    }
}

/// Keeps the outbox watcher alive; dropping it stops the watching.
pub struct OutboxWatcher {
    _watcher: notify::RecommendedWatcher,
    missed: Arc<Missed>,
}

/// Whether the watcher may have lost events, with a wake-up for whoever waits on it (no timer
/// polls it).
#[derive(Debug, Default)]
pub struct Missed {
    flag: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Missed {
    /// Whether events may have been lost since the last call; clears the flag.
    pub fn take(&self) -> bool {
        self.flag.swap(false, Ordering::AcqRel)
    }

    /// Returns once events may have been lost (at once if that happened since the last
    /// [`Missed::take`]); clears the flag.
    pub async fn wait(&self) {
        loop {
            if self.take() {
                return;
            }
            self.wake.notified().await;
        }
    }
}

impl OutboxWatcher {
    /// Whether events may have been lost since the last call (the channel was full, the
    /// kernel's queue overflowed, the watcher failed). Clears the flag. When it is true, treat
    /// every id of [`Mailbox::outbox_ids`] as changed.
    pub fn take_missed(&self) -> bool {
        self.missed.take()
    }

    /// The flag behind [`OutboxWatcher::take_missed`], to wait on ([`Missed::wait`]).
    pub fn missed(&self) -> Arc<Missed> {
        Arc::clone(&self.missed)
    }
}

impl std::fmt::Debug for OutboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWatcher")
            .field("missed", &self.missed.flag.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Sends one event without blocking; remembers a drop in `missed`.
pub(super) fn forward(tx: &mpsc::Sender<OutboxEvent>, missed: &AtomicBool, ev: OutboxEvent) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(ev) {
        missed.store(true, Ordering::Release);
    }
}

/// Turns one watcher report into outbox events (pure; the callback's whole job). `Err` says
/// why events may have been lost.
pub(super) fn translate(res: notify::Result<notify::Event>) -> Result<Vec<OutboxEvent>, String> {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
    let event = match res {
        Ok(event) => event,
        Err(e) => return Err(format!("the outbox watcher reported: {e}")),
    };
    if event.need_rescan() {
        return Err("the kernel's event queue overflowed".into());
    }
    // The writer is done: closed after writing, or renamed into place.
    let done = matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    let relevant = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Remove(_) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Other => true,
    };
    if !relevant {
        return Ok(Vec::new());
    }
    let mut out: Vec<OutboxEvent> = Vec::new();
    for path in &event.paths {
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(response_id)
        else {
            continue;
        };
        let id = id.to_owned();
        let ev = if done {
            OutboxEvent::Written { id }
        } else {
            OutboxEvent::Changed { id }
        };
        if !out.contains(&ev) {
            out.push(ev);
        }
    }
    Ok(out)
}

pub(super) fn watch_error(path: &Path, source: notify::Error) -> MailboxError {
    const WATCHES: &str = "the system limit on inotify watches is reached \
        (fs.inotify.max_user_watches): raise it, e.g. \
        `sudo sysctl fs.inotify.max_user_watches=524288`, or stop programs that watch many files";
    const INSTANCES: &str = "the system limit on inotify instances or open files is reached \
        (fs.inotify.max_user_instances, `ulimit -n`): raise it, e.g. \
        `sudo sysctl fs.inotify.max_user_instances=512`, or stop programs that watch files";
    let hint = match &source.kind {
        notify::ErrorKind::MaxFilesWatch => Some(WATCHES),
        notify::ErrorKind::Io(e) => match e.raw_os_error() {
            Some(libc::ENOSPC) => Some(WATCHES),
            Some(libc::EMFILE | libc::ENFILE) => Some(INSTANCES),
            _ => None,
        },
        _ => None,
    };
    match hint {
        Some(hint) => MailboxError::WatchLimit {
            path: path.to_owned(),
            hint,
            source,
        },
        None => MailboxError::Watch {
            path: path.to_owned(),
            source,
        },
    }
}
