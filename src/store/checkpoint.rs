//! The background checkpointer: copies the WAL into the database file off the writer's path.
//!
//! A checkpoint is the only step of WAL mode that waits for the disk (with `synchronous=NORMAL`,
//! two fsyncs: the WAL, then the database file). Left to SQLite's automatic checkpoints, it runs
//! inside whichever commit crosses the threshold, and on a slow disk that made storing a message
//! take 2.5 times as long as without. Here a thread with its own connection runs a `PASSIVE`
//! checkpoint after writes: the writer tells it after each commit ([`Checkpointer::wrote`], a
//! flag and, for the first commit since the last checkpoint, a condition variable), and it
//! gathers the commits of the next [`GATHER`] into one checkpoint. It never blocks the writer,
//! which keeps appending to the WAL meanwhile, and it sleeps without a timer while nothing is
//! written. The writer's own automatic checkpoint stays on with a high threshold
//! ([`super::schema`]), so the WAL stays bounded even if this thread fell behind or failed.
//!
//! Durability does not change: a transaction is committed once it is in the WAL, whether or not
//! it has been checkpointed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tracing::{debug, warn};

/// How long after a commit the checkpoint runs: the commits meanwhile share it.
const GATHER: Duration = Duration::from_millis(200);

/// The checkpointing thread; stopped and joined on drop.
#[derive(Debug)]
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// A commit since the thread last started gathering (read without the lock by the writer).
    pending: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    /// Checkpoints run so far (for tests).
    runs: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    wrote: bool,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Checkpointer {
    /// Starts checkpointing the store at `path` (already open, in WAL mode).
    pub fn start(path: &Path) -> Result<Checkpointer, CheckpointerError> {
        let conn = Connection::open(path).map_err(CheckpointerError::Open)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(CheckpointerError::Open)?;
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("macs-store-checkpoint".into())
            .spawn(move || run(&conn, &theirs, &shown))
            .map_err(CheckpointerError::Spawn)?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// A transaction was committed: a checkpoint follows within [`GATHER`]. Costs one atomic
    /// swap, and a lock only for the first commit since the thread last started gathering.
    pub fn wrote(&self) {
        if self.shared.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.lock().wrote = true;
        self.shared.changed.notify_one();
    }

    /// Checkpoints run so far.
    #[cfg(test)]
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::Acquire)
    }
}

fn run(conn: &Connection, shared: &Shared, path: &str) {
    let mut failing = false;
    loop {
        // Asleep, with no timer, until something is committed.
        let state = shared.lock();
        let state = shared
            .changed
            .wait_while(state, |s| !s.wrote && !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        if state.stop {
            return;
        }
        // Let the commits of the next moments join this checkpoint.
        let (mut state, _) = shared
            .changed
            .wait_timeout_while(state, GATHER, |s| !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        if state.stop {
            return;
        }
        // Under the lock: a commit from here on sets both again and is not lost.
        state.wrote = false;
        shared.pending.store(false, Ordering::Release);
        drop(state);
        checkpoint(conn, path, &mut failing);
        shared.runs.fetch_add(1, Ordering::AcqRel);
    }
}

fn checkpoint(conn: &Connection, path: &str, failing: &mut bool) {
    // (busy, frames in the WAL, frames copied)
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match result {
        Ok((_, log, copied)) => {
            if *failing {
                debug!(path, "checkpoints work again");
                *failing = false;
            }
            if log > 0 {
                debug!(path, log, copied, "checkpoint");
            }
        }
        Err(error) if !*failing => {
            warn!(path, %error, "cannot checkpoint the store's WAL (retrying after the next write)");
            *failing = true;
        }
        Err(_) => {}
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the store's checkpoint thread panicked");
            }
        }
    }
}

/// Why the checkpointer could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum CheckpointerError {
    #[error("cannot open a second connection: {0}")]
    Open(#[source] rusqlite::Error),
    #[error("cannot start a thread: {0}")]
    Spawn(#[source] std::io::Error),
}
