//! The file, its settings and its schema: opening, the connection's pragmas, migrations.
//!
//! Schema versions are counted in SQLite's `PRAGMA user_version`. A new file (version 0) gets
//! [`SCHEMA`] at once; an older file goes through [`UPGRADES`]`[n - 1]` from version `n` to
//! `n + 1`. Either way it is one transaction with the new version number, so a crash mid-way
//! leaves the old version whole. A file newer than this code is refused, never written.
//!
//! Versions: 1, the first build (a second index on deliveries, ids in insertion order, `IN`
//! checks); 2, the layout described at [`SCHEMA`].

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};
use tracing::{info, warn};

use super::types::StoreError;

/// `CREATE TABLE` for the messages, under a name.
macro_rules! messages_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    ts_ms      INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    addressee  TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind = 'chat' OR kind = 'key' OR kind = 'system'
                   OR kind = 'answer' OR kind = 'prompt' OR kind = 'notice'),
    urgent     INTEGER NOT NULL CHECK (urgent IN (0, 1)),
    content    TEXT    NOT NULL,
    meta       TEXT    NOT NULL
) STRICT;
"
        )
    };
}

/// `CREATE TABLE` for the deliveries, under a name.
macro_rules! deliveries_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    id           INTEGER PRIMARY KEY,
    message_seq  INTEGER NOT NULL REFERENCES messages (seq),
    recipient    TEXT    NOT NULL,
    pane         TEXT,
    status       TEXT    NOT NULL CHECK (status = 'queued' OR status = 'delivering'
                     OR status = 'delivered' OR status = 'unconfirmed' OR status = 'failed'
                     OR status = 'held'),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    delivered_ms INTEGER,
    typed        TEXT,
    stage        TEXT    CHECK (stage IS NULL OR stage = 'text' OR stage = 'submit')
) STRICT;
"
        )
    };
}

/// `CREATE TABLE` for the requests, under a name.
macro_rules! requests_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    id          TEXT    PRIMARY KEY,
    pane        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind = 'block' OR kind = 'heuristic' OR kind = 'ask'),
    detected_ns INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status = 'open' OR status = 'asked'
                    OR status = 'answered' OR status = 'delivered' OR status = 'fallback'),
    answered_by TEXT,
    updated_ms  INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    answer      TEXT,
    answer_raw  TEXT,
    trail       TEXT    NOT NULL DEFAULT '',
    server      TEXT    NOT NULL DEFAULT ''
) STRICT;
"
        )
    };
}

/// The indexes (the tables' own unique and primary keys aside).
macro_rules! indexes {
    () => {
        "
CREATE INDEX messages_ts ON messages (ts_ms);
CREATE INDEX deliveries_active ON deliveries (recipient, status, id)
    WHERE status <> 'delivered';
CREATE INDEX requests_detected ON requests (detected_ns);
"
    };
}

/// The schema (version 2): messages, deliveries, requests and pauses.
///
/// Times are unix milliseconds (`_ms`) except a request's `detected_ns` (nanoseconds, as the
/// mailbox keeps it). The small columns of `messages` come before `content` and `meta`, so
/// filters on them do not read long texts.
///
/// A delivery's id is its message's `seq` times `DELIVERY_SLOTS` (256, [`super::MAX_RECIPIENTS`])
/// plus its place among the recipients: a message's deliveries are one range of the table, found
/// without an index, and ids grow in message order. `deliveries_active` holds only the rows not
/// yet `delivered`: it serves each recipient's queue (`recipient, status` in delivery order) and
/// every question about pending or unfinished deliveries, and it stays small (a few pages) while
/// the agents keep up, so that storing a message for ten recipients dirties a handful of pages,
/// not one per recipient. Queries repeat its condition (`status <> 'delivered'`) so that SQLite
/// may use it.
///
/// The `CHECK`s spell their lists with `OR`: SQLite codes `x IN (a, b, c)` with more than two
/// constants as a temporary b-tree built for every row written, which cost more than the rest
/// of an insert.
const SCHEMA: &str = concat!(
    messages_table!("messages"),
    deliveries_table!("deliveries"),
    requests_table!("requests"),
    "CREATE TABLE pauses (
    recipient  TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL CHECK (paused IN (0, 1)),
    updated_ms INTEGER NOT NULL
) STRICT;
",
    indexes!()
);

/// Version 1 to 2: the tables rebuilt with the new checks, delivery ids renumbered (message
/// `seq` × 256 + place, in the old id order), the old indexes replaced. Runs with foreign keys
/// off (the tables are swapped under their names); the caller checks them afterwards.
const UPGRADE_1_TO_2: &str = concat!(
    messages_table!("messages_v2"),
    "INSERT INTO messages_v2 (seq, id, ts_ms, sender, addressee, kind, urgent, content, meta)
    SELECT seq, id, ts_ms, sender, addressee, kind, urgent, content, meta FROM messages;
",
    deliveries_table!("deliveries_v2"),
    "INSERT INTO deliveries_v2 (id, message_seq, recipient, pane, status, attempts, last_error,
                           created_ms, updated_ms, delivered_ms)
    SELECT message_seq * 256 + row_number() OVER (PARTITION BY message_seq ORDER BY id) - 1,
           message_seq, recipient, pane, status, attempts, last_error,
           created_ms, updated_ms, delivered_ms
    FROM deliveries;
",
    requests_table!("requests_v2"),
    "INSERT INTO requests_v2 (id, pane, agent, kind, detected_ns, status, answered_by,
                         updated_ms, text, answer)
    SELECT id, pane, agent, kind, detected_ns, status, answered_by, updated_ms, text, answer
    FROM requests;
DROP TABLE deliveries;
DROP TABLE requests;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
ALTER TABLE requests_v2 RENAME TO requests;
",
    indexes!()
);

/// Version 2 to 3, the journal: deliveries keep the exact text typed and how far the typing
/// got (`typed`, `stage`); messages may be answers, controller prompts and notices as well as
/// chat; requests gain the `asked` and `delivered` states, `ask` requests, the raw answer taken
/// from `outbox/` and the backends' trail. The tables are rebuilt (their checks change).
const UPGRADE_2_TO_3: &str = concat!(
    messages_table!("messages_v3"),
    "INSERT INTO messages_v3 (seq, id, ts_ms, sender, addressee, kind, urgent, content, meta)
    SELECT seq, id, ts_ms, sender, addressee, kind, urgent, content, meta FROM messages;
",
    deliveries_table!("deliveries_v3"),
    "INSERT INTO deliveries_v3 (id, message_seq, recipient, pane, status, attempts, last_error,
                           created_ms, updated_ms, delivered_ms)
    SELECT id, message_seq, recipient, pane, status, attempts, last_error,
           created_ms, updated_ms, delivered_ms
    FROM deliveries;
",
    requests_table!("requests_v3"),
    "INSERT INTO requests_v3 (id, pane, agent, kind, detected_ns, status, answered_by,
                         updated_ms, text, answer)
    SELECT id, pane, agent, kind, detected_ns, status, answered_by, updated_ms, text, answer
    FROM requests;
DROP TABLE deliveries;
DROP TABLE requests;
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
ALTER TABLE deliveries_v3 RENAME TO deliveries;
ALTER TABLE requests_v3 RENAME TO requests;
",
    indexes!()
);

/// `UPGRADES[n - 1]` takes the schema from version `n` to `n + 1`.
const UPGRADES: &[&str] = &[UPGRADE_1_TO_2, UPGRADE_2_TO_3];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = UPGRADES.len() as i64 + 1;

/// Version 1, as the first build wrote it: for the upgrade test.
#[cfg(test)]
pub(super) const SCHEMA_V1: &str = "
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

/// How long a statement waits for another connection's lock (a second process reading the
/// history, a checkpoint) before it fails with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's own automatic checkpoint, in pages of WAL, while the background checkpointer
/// runs ([`super::checkpoint`]): only a backstop (64 MiB with 4 KiB pages).
pub(super) const BACKSTOP_CHECKPOINT_PAGES: i64 = 16 * 1024;

/// After a checkpoint empties it, the WAL file is cut back to this size.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

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

/// Sets the connection up: WAL journal, `synchronous=NORMAL`, a busy timeout.
///
/// Why `NORMAL` is enough (see the module documentation of [`super`]): in WAL mode a commit has
/// written its frames to the WAL file before it returns, so a process that is killed, even with
/// SIGKILL, loses no committed transaction; `synchronous` only decides whether each commit also
/// waits for the disk (`FULL`: an fsync per commit), which matters only when the whole machine
/// goes down, and then the panes the messages were typed into are gone as well.
///
/// Returns whether the journal is a WAL (it cannot be in memory, or on some network file
/// systems).
pub(super) fn configure(conn: &Connection, file: Option<&Path>) -> rusqlite::Result<bool> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // One plan per statement, whatever the values bound: without this, SQLite re-prepares a
    // statement whenever a new value is bound to a parameter it looked at while planning (a
    // `LIMIT ?`), which made every queue read parse its SQL again.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    let wal = mode.eq_ignore_ascii_case("wal");
    if let Some(path) = file {
        if !wal {
            warn!(
                path = %path.display(),
                %mode,
                "the store could not use a WAL journal (a network file system?): it works, \
                 but more slowly"
            );
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    // Off while migrating (this SQLite is built with them on by default): an upgrade swaps
    // tables under their names. `enable_foreign_keys` turns them on after.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 8 MiB of page cache (the default is 2 MiB): the hot ends of the indexes stay in memory.
    conn.pragma_update(None, "cache_size", -8192)?;
    Ok(wal)
}

/// Turns foreign key checks on: after [`migrate`], which swaps tables under their names.
pub(super) fn enable_foreign_keys(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Brings the schema to [`SCHEMA_VERSION`]. Foreign key checks must be off (they are until
/// [`enable_foreign_keys`]).
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
    if found == 0 {
        tx.execute_batch(SCHEMA).map_err(open_err)?;
    } else {
        for (from, sql) in (found..).zip(&UPGRADES[found as usize - 1..]) {
            info!(path = %path.display(), from, to = from + 1, "upgrading the store's schema");
            tx.execute_batch(sql).map_err(open_err)?;
        }
        let broken: i64 = tx
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(open_err)?;
        if broken > 0 {
            return Err(StoreError::Corrupt {
                problems: vec![format!(
                    "{}: {broken} rows point to missing rows after upgrading from schema \
                     version {found}; the file was left as it was",
                    path.display()
                )],
            });
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}
