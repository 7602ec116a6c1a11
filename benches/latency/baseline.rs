//! The polling baseline, working as peers do: every 500 ms one `tmux capture-pane -p`
//! process, blocks found with `find_blocks`, requests filed with `Mailbox::write_request`;
//! every 500 ms a look at `outbox/`, answers typed with `send-keys -l` and `Enter`.

use super::*;

/// When a poller looks next; the bench moves it to a random point before each event.
pub(super) struct Phase {
    pub(super) next: Mutex<Instant>,
    pub(super) cv: Condvar,
}

impl Phase {
    pub(super) fn new() -> Phase {
        Phase {
            next: Mutex::new(Instant::now() + POLL),
            cv: Condvar::new(),
        }
    }

    pub(super) fn rephase(&self, within: Duration) {
        *lock(&self.next) = Instant::now() + within;
        self.cv.notify_all();
    }

    /// Sleeps until the next look (false: stop); then schedules the one after, every POLL.
    pub(super) fn wait(&self, stop: &AtomicBool) -> bool {
        let mut next = lock(&self.next);
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= *next {
                *next += POLL;
                if *next <= now {
                    *next = now + POLL;
                }
                return true;
            }
            let wait = *next - now;
            next = self
                .cv
                .wait_timeout(next, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

pub(super) struct Peer {
    pub(super) capture: Phase,
    pub(super) outbox: Phase,
    pub(super) stop: AtomicBool,
    /// How long each `capture-pane` process took, and each `write_request` (ms).
    pub(super) looks: Mutex<Vec<f64>>,
    pub(super) writes: Mutex<Vec<f64>>,
}

pub(super) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Every POLL: `tmux capture-pane -p` of the worker, find blocks, file new requests.
pub(super) fn peer_capture(peer: &Peer, socket: &str, pane: PaneId, mailbox: &Mailbox) {
    let pane_s = pane.to_string();
    let mut filed: HashSet<String> = HashSet::new();
    while peer.capture.wait(&peer.stop) {
        let t = Instant::now();
        let Ok(out) = Proc::new("tmux")
            .args(["-L", socket, "capture-pane", "-p", "-t", &pane_s])
            .output()
        else {
            continue;
        };
        lock(&peer.looks).push(ms_since(t));
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        for b in find_blocks(&lines, &Limits::default()).blocks {
            if b.kind != BlockKind::Request || !filed.insert(b.body.clone()) {
                continue;
            }
            let now = chrono::Utc::now();
            let record = RequestRecord {
                id: Mailbox::new_id(now),
                session: "base".into(),
                pane: pane_s.clone(),
                agent: "worker".into(),
                kind: RequestKind::Block,
                detected_at: now,
                text: b.body,
            };
            let t = Instant::now();
            if let Err(e) = mailbox.write_request(&record) {
                eprintln!("baseline: cannot file a request: {e}");
            }
            lock(&peer.writes).push(ms_since(t));
        }
    }
}

/// Every POLL: look in `outbox/`; type each answer with `send-keys -l`, then `Enter`.
pub(super) fn peer_outbox(peer: &Peer, socket: &str, pane: PaneId, state: &Path) {
    let pane_s = pane.to_string();
    let outbox = state.join("outbox");
    let archive = state.join("archive");
    while peer.outbox.wait(&peer.stop) {
        let Ok(entries) = fs::read_dir(&outbox) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".md") {
                continue;
            }
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue;
            };
            let text = text.trim_end();
            let _ = Proc::new("tmux")
                .args(["-L", socket, "send-keys", "-t", &pane_s, "-l", "--", text])
                .status();
            let _ = Proc::new("tmux")
                .args(["-L", socket, "send-keys", "-t", &pane_s, "Enter"])
                .status();
            let _ = fs::rename(entry.path(), archive.join(&name));
        }
    }
}
