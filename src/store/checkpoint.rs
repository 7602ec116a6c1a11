//! The background checkpointer: copies the WAL into the database file off the writer's path.
//!
//! A checkpoint is the only step of WAL mode that waits for the disk (with `synchronous=NORMAL`,
//! two fsyncs: the WAL, then the database file). Left to SQLite's automatic checkpoints, it runs
//! inside whichever commit crosses the threshold, and on a slow disk that made storing a message
//! take 2.5 times as long as without. Here a thread with its own connection runs a `PASSIVE`
//! checkpoint every [`EVERY`]: it never blocks the writer, which keeps appending to the WAL
//! meanwhile, and it does nothing when there is nothing to copy. The writer's own automatic
//! checkpoint stays on with a high threshold ([`super::schema`]), so the WAL stays bounded even
//! if this thread fell behind or failed.
//!
//! Durability does not change: a transaction is committed once it is in the WAL, whether or not
//! it has been checkpointed.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tracing::{debug, warn};

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(200);

/// The checkpointing thread; stopped and joined on drop.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the store at `path` (already open, in WAL mode).
    pub fn start(path: &Path) -> Result<Checkpointer, CheckpointerError> {
        let conn = Connection::open(path).map_err(CheckpointerError::Open)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(CheckpointerError::Open)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("macs-store-checkpoint".into())
            .spawn(move || run(&conn, &stopped, &shown))
            .map_err(CheckpointerError::Spawn)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, path: &str) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
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
                if failing {
                    debug!(path, "checkpoints work again");
                    failing = false;
                }
                if log > 0 {
                    debug!(path, log, copied, "checkpoint");
                }
            }
            Err(error) if !failing => {
                warn!(path, %error, "cannot checkpoint the store's WAL (retrying)");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
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
