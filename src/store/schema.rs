//! The file, its settings and its schema: opening, the connection's pragmas, migrations.
//!
//! Schema versions are counted in SQLite's `PRAGMA user_version`: 0 is a new file, and
//! [`MIGRATIONS`]`[n]` takes a file from version `n` to `n + 1`, all in one transaction with the
//! new version number, so a crash mid-way leaves the old version whole. A file newer than this
//! code is refused, never written.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tracing::warn;

use super::types::StoreError;

/// Version 1: messages, deliveries, requests and pauses.
///
/// Times are unix milliseconds (`_ms`) except a request's `detected_ns` (nanoseconds, as the
/// mailbox keeps it). The small columns of `messages` come before `content` and `meta`, so
/// filters on them do not read long texts. `deliveries_queue` serves each recipient's queue
/// (`recipient, status` in delivery order) and, walked by recipient, every question about
/// pending or unfinished deliveries; the unique `(message_seq, recipient)` index finds a
/// message's deliveries.
const SCHEMA_V1: &str = "
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    ts_ms      INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    addressee  TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('chat', 'key', 'system')),
    urgent     INTEGER NOT NULL CHECK (urgent IN (0, 1)),
    content    TEXT    NOT NULL,
    meta       TEXT    NOT NULL
) STRICT;
CREATE INDEX messages_ts ON messages (ts_ms);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    message_seq  INTEGER NOT NULL REFERENCES messages (seq),
    recipient    TEXT    NOT NULL,
    pane         TEXT,
    status       TEXT    NOT NULL CHECK (status IN
                     ('queued', 'delivering', 'delivered', 'unconfirmed', 'failed', 'held')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    delivered_ms INTEGER,
    UNIQUE (message_seq, recipient)
) STRICT;
CREATE INDEX deliveries_queue ON deliveries (recipient, status, id);

CREATE TABLE requests (
    id          TEXT    PRIMARY KEY,
    pane        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('block', 'heuristic')),
    detected_ns INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('open', 'answered', 'fallback')),
    answered_by TEXT,
    updated_ms  INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    answer      TEXT
) STRICT;
CREATE INDEX requests_detected ON requests (detected_ns);

CREATE TABLE pauses (
    recipient  TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL CHECK (paused IN (0, 1)),
    updated_ms INTEGER NOT NULL
) STRICT;
";

/// `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a statement waits for another connection's lock (a second process reading the
/// history, a checkpoint) before it fails with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection; the store uses about twenty.
const STATEMENT_CACHE: usize = 64;

/// Creates the file (and its directory, 0700) when missing, with mode 0600, and makes an
/// existing file and its `-wal` and `-shm` companions 0600 too.
pub(super) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err("create the directory", dir))?;
        }
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create or open", path))?;
    for file in [
        path.to_path_buf(),
        companion(path, "-wal"),
        companion(path, "-shm"),
    ] {
        match fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o777 != 0o600 => {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                    .map_err(io_err("make private (0600)", &file))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("look at", &file)(e)),
        }
    }
    Ok(())
}

/// `path` with `suffix` added to its file name (`x.sqlite3-wal`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Sets the connection up: WAL journal, `synchronous=NORMAL`, foreign keys, a busy timeout.
///
/// Why `NORMAL` is enough (see the module documentation of [`super`]): in WAL mode a commit has
/// written its frames to the WAL file before it returns, so a process that is killed, even with
/// SIGKILL, loses no committed transaction; `synchronous` only decides whether each commit also
/// waits for the disk (`FULL`: an fsync per commit), which matters only when the whole machine
/// goes down, and then the panes the messages were typed into are gone as well.
pub(super) fn configure(conn: &Connection, file: Option<&Path>) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if let Some(path) = file {
        if !mode.eq_ignore_ascii_case("wal") {
            warn!(
                path = %path.display(),
                %mode,
                "the store could not use a WAL journal (a network file system?): it works, \
                 but more slowly"
            );
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 8 MiB of page cache (the default is 2 MiB): the hot ends of the indexes stay in memory.
    conn.pragma_update(None, "cache_size", -8192)?;
    if let Ok(x) = std::env::var("MACS_STORE_EXPERIMENT") {
        // TEMPORARY
        conn.execute_batch(&x)?;
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if found < 0 {
        return Err(StoreError::Corrupt {
            problems: vec![format!(
                "{}: schema version {found} (user_version) is not one macs-bridge writes",
                path.display()
            )],
        });
    }
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(()); // the transaction rolls back: nothing was written
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql).map_err(open_err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}
