//! The durable store: the group chat's messages, their deliveries, the bridge's requests and the
//! pauses, in one SQLite file (`<state dir>/macs.sqlite3`, mode 0600).
//!
//! This module owns that file and nothing else. It records what the daemon's core decided and
//! did, and answers what is left to do; it never decides who a message goes to (the caller
//! passes the recipients), never types into a pane, and never moves a delivery on its own except
//! in [`Store::recover`], which only ever makes a half-typed delivery `unconfirmed`, never
//! `queued`. It is synchronous: one [`Store`] owns one connection, used by the one task that owns
//! the core state.
//!
//! # Tables
//!
//! - `messages`: id, time, from, to (a name or `all`), content, urgent, meta (JSON), kind
//!   (`chat`, `key`, `system`). Ids are `m-YYYYMMDD-HHMMSS-NNNNNN` (UTC), made by the store; they
//!   sort in the order the messages were stored, and so do the times: the clock never goes back (`ids.rs`).
//! - `deliveries`: one row per message and recipient, with the recipient's pane at the time, a
//!   [`DeliveryStatus`], the attempts, the last error and the times. A recipient's queue is
//!   served in message order.
//! - `requests`: the workers' requests, mirroring `inbox/` and `archive/` for history queries.
//! - `pauses`: who is paused, so that `/pause` outlives a restart.
//!
//! # Delivering exactly once, across crashes
//!
//! The core marks a delivery `delivering` ([`Store::mark`]) before it types anything, and
//! `delivered`, `unconfirmed` or `failed` after. [`Store::add_message`] writes a message with
//! all its delivery rows in one transaction, so a reader never sees a message with some of its
//! deliveries. After a crash, [`Store::recover`] turns every `delivering` row into
//! `unconfirmed` (the daemon died while typing it: it may or may not have reached the agent, so
//! it is not typed again on a guess); `queued` and `held` rows were never typed and go out as
//! usual. A `delivered` row never changes again ([`DeliveryStatus::can_become`]).
//!
//! # Durability: WAL and `synchronous=NORMAL`
//!
//! In WAL mode a commit has written its frames into the `-wal` file (the operating system's page
//! cache) before it returns. When the daemon is killed, even with SIGKILL, the kernel still
//! holds those writes and the next open replays them: every committed transaction survives, and
//! the one in flight vanishes whole (`tests/store.rs` kills a writing process to check). So "a
//! delivery marked `delivering` stays marked" holds with `NORMAL`. What `FULL` adds is an fsync
//! of the WAL at every commit, which protects the last commits against a power cut or a kernel
//! crash; it costs a disk flush per delivery step (1.4 ms per commit on the development VM,
//! against 0.05 ms), and after such a crash the tmux server and the agents' sessions are gone
//! too, so a lost `delivering` mark cannot lead to typing the same text twice into the same
//! conversation. With `NORMAL` the file is never corrupted by a power cut (WAL fsyncs at each
//! checkpoint); it may only lose the last moments.
//!
//! Checkpoints (copying the WAL into the database file, the only step that waits for the disk)
//! run in a background thread with its own connection (`checkpoint.rs`), never inside a commit.
//!
//! # Cost
//!
//! Each commit on a file costs about 30 µs of CPU beyond its statements (WAL frames, locks),
//! so the unit of cost is the transaction: [`Store::add_message`] for ten recipients is one,
//! [`Store::mark`] is one per call. [`Store::mark_many`] marks several deliveries in one, and
//! [`Store::batch`] runs any writes in one (a burst of messages, a tick's worth of marks).
//! Reads use the indexes only; [`Store::counts`] is the exception (it walks the tables).
//!
//! # Limits
//!
//! Names (sender, addressee, recipient) and pane ids are 1 to [`MAX_NAME_BYTES`] bytes without
//! whitespace or control characters; `all` is only an addressee. Content is 1 to
//! [`MAX_CONTENT_BYTES`] bytes and not only whitespace; `meta` at most [`MAX_META_BYTES`] as JSON;
//! at most [`MAX_RECIPIENTS`] recipients, each once. A query returns at most [`MAX_LIMIT`]
//! rows. Breaking a limit is an [`StoreError::Invalid`] error; nothing is cut silently except a
//! delivery's `last_error` (at [`MAX_ERROR_BYTES`]).

mod checkpoint;
mod ids;
mod schema;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Type, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use tracing::warn;

pub use schema::SCHEMA_VERSION;
pub use types::{
    Counts, Cursor, Delivery, DeliveryCounts, DeliveryStatus, HistoryQuery, Message, MessageKind,
    MessageWithDeliveries, NewMessage, Recovered, RequestRow, RequestStatus, StoreError, ALL,
    DEFAULT_LIMIT, MAX_CONTENT_BYTES, MAX_ERROR_BYTES, MAX_LIMIT, MAX_META_BYTES, MAX_NAME_BYTES,
    MAX_RECIPIENTS,
};

use checkpoint::Checkpointer;
use ids::IdClock;
use types::{
    check_message, check_name, check_party, check_recipients, check_text, parse_request_kind,
    request_kind_str, sql_limit, truncate, Context,
};

/// The store's file in the state dir.
pub const FILE_NAME: &str = "macs.sqlite3";

/// The `last_error` [`Store::recover`] gives a delivery that was being typed.
pub const RECOVERED_ERROR: &str =
    "the daemon stopped while typing this; it was not typed again (it may have arrived)";

// ---------------------------------------------------------------------------------------------
// SQL. Every statement is a constant, prepared once per connection (`prepare_cached`).

/// The columns [`delivery_from_row`] reads, from `deliveries d` joined with `messages m`.
macro_rules! delivery_cols {
    () => {
        "d.id, d.recipient, d.pane, d.status, d.attempts, d.last_error, \
         d.created_ms, d.updated_ms, d.delivered_ms, m.id"
    };
}
const DELIVERY_COLS: usize = 10;

/// The columns [`message_from_row`] reads, from `messages m`.
macro_rules! message_cols {
    () => {
        "m.seq, m.id, m.ts_ms, m.sender, m.addressee, m.kind, m.urgent, m.content, m.meta"
    };
}

/// Every recipient name with a delivery not yet `delivered`, walked through `deliveries_active`
/// one name at a time: as many index look-ups as there are names, however many rows there are.
macro_rules! recipients_cte {
    () => {
        "WITH RECURSIVE names(name) AS (
             SELECT min(recipient) FROM deliveries WHERE status <> 'delivered'
             UNION ALL
             SELECT (SELECT min(recipient) FROM deliveries
                     WHERE recipient > names.name AND status <> 'delivered')
             FROM names WHERE names.name IS NOT NULL
         ) "
    };
}

/// A delivery's id is `seq * DELIVERY_SLOTS + its place among the recipients`.
const DELIVERY_SLOTS: i64 = MAX_RECIPIENTS as i64;

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (id, ts_ms, sender, addressee, kind, urgent, content, meta) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const INSERT_DELIVERY: &str = "INSERT INTO deliveries \
     (id, message_seq, recipient, pane, status, created_ms, updated_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
const NEXT_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.recipient = ?1 AND d.status = 'queued' AND d.status <> 'delivered' \
     ORDER BY d.id LIMIT ?2"
);
const NEXT_WITH_MESSAGES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    ", ",
    message_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.recipient = ?1 AND d.status = 'queued' AND d.status <> 'delivered' \
     ORDER BY d.id LIMIT ?2"
);
/// The deliveries of one message: ids from `seq * DELIVERY_SLOTS` (`?1`) to the next message's.
const DELIVERIES_OF: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.id >= ?1 AND d.id < ?2 ORDER BY d.id"
);
const DELIVERIES_IN_STATUS: &str = concat!(
    recipients_cte!(),
    "SELECT ",
    delivery_cols!(),
    " FROM names CROSS JOIN deliveries d \
     ON d.recipient = names.name AND d.status = ?1 AND d.status <> 'delivered' \
     CROSS JOIN messages m ON m.seq = d.message_seq ORDER BY d.id"
);
const COUNT_IN_STATUS: &str = concat!(
    recipients_cte!(),
    "SELECT count(*) FROM names CROSS JOIN deliveries d \
     ON d.recipient = names.name AND d.status = ?1 AND d.status <> 'delivered'"
);
const PENDING_RECIPIENTS: &str = concat!(
    recipients_cte!(),
    "SELECT name FROM names WHERE name IS NOT NULL AND (\
        EXISTS (SELECT 1 FROM deliveries WHERE recipient = names.name AND status = 'queued' \
                AND status <> 'delivered') \
     OR EXISTS (SELECT 1 FROM deliveries WHERE recipient = names.name AND status = 'held' \
                AND status <> 'delivered'))"
);
const DELIVERY_STATUS: &str = "SELECT status FROM deliveries WHERE id = ?1";
/// Moves delivery `?1` to status `?2` when its status is one of those listed (the statuses
/// [`DeliveryStatus::can_become`] allows before `?2`); `?3` attempts more, `?4` the error (or
/// NULL to keep the last one), `?5` the time.
macro_rules! update_delivery {
    ($($from:literal),+) => {
        concat!(
            "UPDATE deliveries SET status = ?2, attempts = attempts + ?3, \
             last_error = coalesce(?4, last_error), updated_ms = ?5, \
             delivered_ms = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_ms END \
             WHERE id = ?1 AND (",
            $("status = '", $from, "' OR ",)+
            "0)"
        )
    };
}
/// The `UPDATE` for a move to `to`, from the statuses that may become `to`.
fn update_delivery_sql(to: DeliveryStatus) -> &'static str {
    match to {
        DeliveryStatus::Queued => update_delivery!("held", "delivering", "unconfirmed", "failed"),
        DeliveryStatus::Delivering => update_delivery!("queued", "held"),
        DeliveryStatus::Delivered => update_delivery!("delivering", "unconfirmed"),
        DeliveryStatus::Unconfirmed => update_delivery!("delivering"),
        DeliveryStatus::Failed => {
            update_delivery!("queued", "held", "delivering", "unconfirmed")
        }
        DeliveryStatus::Held => update_delivery!("queued"),
    }
}
const MOVE_RECIPIENT: &str = "UPDATE deliveries SET status = ?3, updated_ms = ?4 \
     WHERE recipient = ?1 AND status = ?2 AND status <> 'delivered'";
const SET_PAUSE: &str = "INSERT INTO pauses (recipient, paused, updated_ms) VALUES (?1, ?2, ?3) \
     ON CONFLICT (recipient) DO UPDATE SET paused = excluded.paused, \
     updated_ms = excluded.updated_ms";
const PAUSED: &str = "SELECT recipient FROM pauses WHERE paused = 1 ORDER BY recipient";
const SEQ_OF_ID: &str = "SELECT seq FROM messages WHERE id = ?1";
/// The first message at or after a time. `ts_ms` never decreases along `seq` ([`ids`]), so this
/// is where a time bound falls in `seq`.
const FIRST_SEQ_AT: &str = "SELECT seq FROM messages WHERE ts_ms >= ?1 ORDER BY ts_ms, seq LIMIT 1";
/// `seq` bounds walk the table; the time bounds (`+` keeps SQLite from using `messages_ts`
/// instead) only double-check them. `?5`: involving a name; `?6`: addressed to a name.
macro_rules! select_messages {
    ($order:literal) => {
        concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages m WHERE m.seq > ?1 AND m.seq < ?2 \
             AND +m.ts_ms >= ?3 AND +m.ts_ms < ?4 \
             AND (?5 IS NULL OR m.sender = ?5 OR m.addressee = ?5 OR m.addressee = 'all') \
             AND (?6 IS NULL OR (m.sender <> ?6 AND (m.addressee = ?6 OR m.addressee = 'all'))) \
             ORDER BY m.seq ",
            $order,
            " LIMIT ?7"
        )
    };
}
const MESSAGES_FORWARD: &str = select_messages!("ASC");
const MESSAGES_BACKWARD: &str = select_messages!("DESC");
const LAST_MESSAGE: &str = "SELECT (SELECT max(ts_ms) FROM messages), \
     (SELECT id FROM messages ORDER BY seq DESC LIMIT 1)";
const UPSERT_REQUEST: &str = "INSERT INTO requests \
     (id, pane, agent, kind, detected_ns, status, answered_by, updated_ms, text, answer) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (id) DO UPDATE SET pane = excluded.pane, agent = excluded.agent, \
     kind = excluded.kind, detected_ns = excluded.detected_ns, status = excluded.status, \
     answered_by = excluded.answered_by, updated_ms = excluded.updated_ms, \
     text = excluded.text, answer = excluded.answer";
macro_rules! request_cols {
    () => {
        "id, pane, agent, kind, detected_ns, status, answered_by, text, answer"
    };
}
const GET_REQUEST: &str = concat!("SELECT ", request_cols!(), " FROM requests WHERE id = ?1");
const RECENT_REQUESTS: &str = concat!(
    "SELECT ",
    request_cols!(),
    " FROM requests ORDER BY detected_ns DESC, id DESC LIMIT ?1"
);
const COUNT_MESSAGES: &str = "SELECT count(*) FROM messages";
const COUNT_REQUESTS: &str = "SELECT count(*) FROM requests";
const COUNT_DELIVERIES: &str = "SELECT status, count(*) FROM deliveries GROUP BY status";

// ---------------------------------------------------------------------------------------------
// The store.

/// The durable store: one SQLite connection (and, for a file, a thread that checkpoints it).
pub struct Store {
    /// Declared before `conn`, so that it stops first and the writer's connection is the last
    /// one to close (which checkpoints and removes the WAL).
    checkpointer: Option<Checkpointer>,
    conn: Connection,
    /// The file, or `None` in memory.
    path: Option<PathBuf>,
    ids: IdClock,
    /// Whether a [`Store::batch`] transaction is open.
    in_batch: bool,
    /// The wall clock in unix milliseconds (replaced in tests).
    clock: Box<dyn Fn() -> i64 + Send>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

fn wall_clock_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A bound on `seq`: everything when nothing narrows it.
const SEQ_MIN: i64 = i64::MIN;
const SEQ_MAX: i64 = i64::MAX;

impl Store {
    /// Opens the store at `path` (normally `<state dir>/`[`FILE_NAME`]): creates the file (mode
    /// 0600; its directory 0700) when missing, makes an existing one 0600, and brings its schema
    /// to [`SCHEMA_VERSION`]. A file written by a newer version is refused.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        schema::prepare_file(path)?;
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        let wal = schema::configure(&conn, Some(path)).map_err(open_err)?;
        schema::migrate(&mut conn, path)?;
        schema::enable_foreign_keys(&conn).map_err(open_err)?;
        // The WAL file exists now; SQLite gives it the database's mode, but make sure.
        schema::prepare_file(path)?;
        let checkpointer = if wal {
            match Checkpointer::start(path) {
                Ok(c) => {
                    conn.pragma_update(
                        None,
                        "wal_autocheckpoint",
                        schema::BACKSTOP_CHECKPOINT_PAGES,
                    )
                    .map_err(open_err)?;
                    Some(c)
                }
                Err(error) => {
                    warn!(
                        path = %path.display(),
                        %error,
                        "no background checkpoints: each commit that fills the WAL will wait \
                         for the disk"
                    );
                    None
                }
            }
        } else {
            None
        };
        let mut store = Store::with_connection(conn, Some(path.to_owned()))?;
        store.checkpointer = checkpointer;
        Ok(store)
    }

    /// A store in memory, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let memory = Path::new(":memory:");
        let open_err = |source| StoreError::Open {
            path: memory.to_owned(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        schema::configure(&conn, None).map_err(open_err)?;
        schema::migrate(&mut conn, memory)?;
        schema::enable_foreign_keys(&conn).map_err(open_err)?;
        Store::with_connection(conn, None)
    }

    fn with_connection(conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
        let (last_ms, last_id): (Option<i64>, Option<String>) = conn
            .query_row(LAST_MESSAGE, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("read the newest message")?;
        let ids = match (last_ms, last_id) {
            (Some(ms), Some(id)) => IdClock::after(ms, &id),
            _ => IdClock::default(),
        };
        Ok(Store {
            checkpointer: None,
            conn,
            path,
            ids,
            in_batch: false,
            clock: Box::new(wall_clock_ms),
        })
    }

    /// The file, or `None` for a store in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Closes the connection, saying so when that fails (dropping the store also closes it).
    /// No `ANALYZE` ever runs: the query plans stay the ones the tests check.
    pub fn close(self) -> Result<(), StoreError> {
        let Store {
            checkpointer, conn, ..
        } = self;
        drop(checkpointer);
        conn.close().map_err(|(_, source)| StoreError::Sqlite {
            action: "close",
            source,
        })
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Runs `f` in one transaction: the writes inside it (any of this store's methods) commit
    /// together, with one write to the WAL, or not at all when `f` fails (or panics). Each
    /// write is still all-or-nothing on its own: one that fails inside `f` leaves no trace, and
    /// `f` may go on.
    ///
    /// For bursts: ten messages in one batch took 40-45% of the CPU time of ten alone on the
    /// development VM. But nothing in it is durable before `batch` returns: do not type a
    /// delivery that was marked `delivering` inside a batch until the batch has committed.
    pub fn batch<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_batch {
            return f(self);
        }
        self.begin()?;
        self.in_batch = true;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.in_batch = false;
        match result {
            Ok(Ok(value)) => {
                self.commit()?;
                Ok(value)
            }
            Ok(Err(error)) => {
                self.rollback();
                Err(error)
            }
            Err(panic) => {
                self.rollback();
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Runs one write: in its own transaction, or inside the open batch as a savepoint (so
    /// that it is all or nothing there too).
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_batch {
            run(&self.conn, "SAVEPOINT store_write", "begin a write")?;
            let result = f(&self.conn);
            if result.is_err() {
                // Best effort: if this fails too, the batch's own rollback undoes it.
                let _ = run(&self.conn, "ROLLBACK TO store_write", "roll back a write");
            }
            run(&self.conn, "RELEASE store_write", "end a write")?;
            return result;
        }
        self.begin()?;
        match f(&self.conn) {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(error) => {
                self.rollback();
                Err(error)
            }
        }
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            // Left open by a write that panicked: it never committed, so drop it.
            self.rollback();
        }
        run(&self.conn, "BEGIN IMMEDIATE", "begin a transaction")
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let result = run(&self.conn, "COMMIT", "commit");
        if result.is_err() && !self.conn.is_autocommit() {
            self.rollback();
        }
        result
    }

    fn rollback(&mut self) {
        if let Err(error) = run(&self.conn, "ROLLBACK", "roll back") {
            warn!(%error, "the store could not roll back a transaction");
        }
    }

    /// Stores a message and one delivery per recipient, in one transaction. Recipients for
    /// which `held` says true start `held`, the others `queued`. An empty recipient list is
    /// allowed (a message kept for history only).
    pub fn add_message(
        &mut self,
        m: &NewMessage,
        recipients: &[(String, Option<String>)],
        held: &dyn Fn(&str) -> bool,
    ) -> Result<Message, StoreError> {
        let to = check_message(m)?;
        check_recipients(recipients)?;
        let meta = serde_json::to_string(&m.meta).map_err(|e| StoreError::Invalid {
            what: "meta",
            reason: e.to_string(),
        })?;
        check_text("meta", &meta, MAX_META_BYTES, true)?;
        let now = self.now_ms();
        let (ts_ms, id) = self.ids.next(now).ok_or_else(|| StoreError::Invalid {
            what: "clock",
            reason: format!("the system time ({now} ms since 1970) is not a usable date"),
        })?;
        let ts = time_ms(ts_ms).ctx("convert the message time")?;

        self.write(|tx| {
            let mut insert = tx.prepare_cached(INSERT_MESSAGE).ctx("prepare")?;
            insert
                .execute(params![
                    id, ts_ms, m.from, to, m.kind, m.urgent, m.content, meta
                ])
                .ctx("store a message")?;
            let seq = tx.last_insert_rowid();
            let first = first_delivery_id(seq)?;
            let mut insert = tx.prepare_cached(INSERT_DELIVERY).ctx("prepare")?;
            for (id, (name, pane)) in (first..).zip(recipients) {
                let status = if held(name) {
                    DeliveryStatus::Held
                } else {
                    DeliveryStatus::Queued
                };
                insert
                    .execute(params![id, seq, name, pane, status, ts_ms])
                    .ctx("store a delivery")?;
            }
            Ok(())
        })?;
        Ok(Message {
            id,
            ts,
            from: m.from.clone(),
            to,
            content: m.content.clone(),
            urgent: m.urgent,
            meta: m.meta.clone(),
            kind: m.kind,
        })
    }

    /// The recipient's `queued` deliveries, oldest first, at most `limit` (cut to
    /// [`MAX_LIMIT`]).
    pub fn next_deliveries(
        &self,
        recipient: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(NEXT_DELIVERIES).ctx("prepare")?;
        let rows = stmt
            .query_map(params![recipient, sql_limit(limit)], |r| {
                delivery_from_row(r, 0)
            })
            .ctx("read a queue")?;
        rows.collect::<rusqlite::Result<_>>().ctx("read a queue")
    }

    /// As [`Store::next_deliveries`], with each delivery's message (what the core types).
    pub fn next_deliveries_with_messages(
        &self,
        recipient: &str,
        limit: usize,
    ) -> Result<Vec<(Delivery, Message)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(NEXT_WITH_MESSAGES)
            .ctx("prepare")?;
        let rows = stmt
            .query_map(params![recipient, sql_limit(limit)], |r| {
                Ok((
                    delivery_from_row(r, 0)?,
                    message_from_row(r, DELIVERY_COLS)?.1,
                ))
            })
            .ctx("read a queue")?;
        rows.collect::<rusqlite::Result<_>>().ctx("read a queue")
    }

    /// Everyone with `queued` or `held` deliveries, sorted by name.
    pub fn pending_recipients(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(PENDING_RECIPIENTS)
            .ctx("prepare")?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .ctx("list pending recipients")?;
        let mut names: Vec<String> = rows
            .collect::<rusqlite::Result<_>>()
            .ctx("list pending recipients")?;
        names.sort();
        Ok(names)
    }

    /// Moves one delivery to `status`, when [`DeliveryStatus::can_become`] allows it; `error`,
    /// when given, becomes its `last_error`. Going `delivering` counts an attempt; going
    /// `delivered` sets `delivered_at`. Commit this *before* typing: see the module
    /// documentation.
    pub fn mark(
        &mut self,
        delivery_id: i64,
        status: DeliveryStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.mark_many(&[(delivery_id, status, error)])
    }

    /// [`Store::mark`] for several deliveries in one transaction (one commit): all of them, or
    /// none when one is refused.
    pub fn mark_many(
        &mut self,
        marks: &[(i64, DeliveryStatus, Option<&str>)],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.write(|tx| {
            for &(id, status, error) in marks {
                mark_in(tx, id, status, error, now)?;
            }
            Ok(())
        })
    }

    /// Pauses `recipient`: records the pause and turns its `queued` deliveries `held`; returns
    /// how many. Deliveries being typed are left alone.
    pub fn hold(&mut self, recipient: &str) -> Result<usize, StoreError> {
        self.set_pause(recipient, true)
    }

    /// Ends a pause: clears it and turns the recipient's `held` deliveries `queued` again, in
    /// their old order; returns how many.
    pub fn release(&mut self, recipient: &str) -> Result<usize, StoreError> {
        self.set_pause(recipient, false)
    }

    fn set_pause(&mut self, recipient: &str, paused: bool) -> Result<usize, StoreError> {
        check_party("recipient name", recipient)?;
        let (from, to) = if paused {
            (DeliveryStatus::Queued, DeliveryStatus::Held)
        } else {
            (DeliveryStatus::Held, DeliveryStatus::Queued)
        };
        let now = self.now_ms();
        self.write(|tx| {
            tx.prepare_cached(SET_PAUSE)
                .ctx("prepare")?
                .execute(params![recipient, paused, now])
                .ctx("record a pause")?;
            tx.prepare_cached(MOVE_RECIPIENT)
                .ctx("prepare")?
                .execute(params![recipient, from, to, now])
                .ctx("hold or release deliveries")
        })
    }

    /// The paused recipients, sorted.
    pub fn paused(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(PAUSED).ctx("prepare")?;
        let rows = stmt.query_map([], |r| r.get(0)).ctx("list pauses")?;
        rows.collect::<rusqlite::Result<_>>().ctx("list pauses")
    }

    /// At start-up: every `delivering` delivery (the daemon died while typing it) becomes
    /// `unconfirmed`, with [`RECOVERED_ERROR`]; returns those, oldest first, and how many are
    /// `queued` and `held`. Nothing is queued again.
    pub fn recover(&mut self) -> Result<Recovered, StoreError> {
        let now = self.now_ms();
        let updated_at = time_ms(now).ctx("convert the time")?;
        self.write(|tx| {
            let mut unconfirmed = in_status(tx, DeliveryStatus::Delivering)?;
            let status = DeliveryStatus::Unconfirmed;
            let mut update = tx
                .prepare_cached(update_delivery_sql(status))
                .ctx("prepare")?;
            for d in &mut unconfirmed {
                update
                    .execute(params![d.id, status, 0, RECOVERED_ERROR, now])
                    .ctx("mark a delivery unconfirmed")?;
                d.status = status;
                d.last_error = Some(RECOVERED_ERROR.to_string());
                d.updated_at = updated_at;
            }
            drop(update);
            Ok(Recovered {
                unconfirmed,
                queued: count_in_status(tx, DeliveryStatus::Queued)?,
                held: count_in_status(tx, DeliveryStatus::Held)?,
            })
        })
    }

    /// Messages with their deliveries, oldest first (see [`HistoryQuery`]).
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<MessageWithDeliveries>, StoreError> {
        if let Some(name) = &q.involving {
            check_name("name", name)?;
        }
        let range = self.range(q.since.as_ref(), q.before.as_ref())?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        let found = self.select(
            range,
            q.involving.as_deref(),
            None,
            q.since.is_some(),
            limit,
        )?;
        let mut stmt = self.conn.prepare_cached(DELIVERIES_OF).ctx("prepare")?;
        found
            .into_iter()
            .map(|(seq, message)| {
                let first = first_delivery_id(seq)?;
                let deliveries = stmt
                    .query_map([first, first + DELIVERY_SLOTS], |r| delivery_from_row(r, 0))
                    .and_then(|rows| rows.collect())
                    .ctx("read deliveries")?;
                Ok(MessageWithDeliveries {
                    message,
                    deliveries,
                })
            })
            .collect()
    }

    /// Messages addressed to `name`, directly or to `all`, and not sent by `name`, oldest first:
    /// the first `limit` after message `since`, or without `since` the last `limit` ones.
    pub fn messages_for(
        &self,
        name: &str,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        check_party("name", name)?;
        let since = since.map(|id| Cursor::Id(id.to_string()));
        let range = self.range(since.as_ref(), None)?;
        let found = self.select(range, None, Some(name), since.is_some(), limit)?;
        Ok(found.into_iter().map(|(_, m)| m).collect())
    }

    /// The bounds for a query: `seq` and `ts_ms`, each exclusive below and above except the
    /// lower time (`since` a time includes that time).
    fn range(&self, since: Option<&Cursor>, before: Option<&Cursor>) -> Result<Bounds, StoreError> {
        let mut r = Bounds {
            seq_after: SEQ_MIN,
            seq_before: SEQ_MAX,
            ms_from: i64::MIN,
            ms_before: i64::MAX,
        };
        match since {
            Some(Cursor::Id(id)) => r.seq_after = self.seq_of(id)?,
            Some(Cursor::Time(t)) => {
                r.ms_from = t.timestamp_millis();
                r.seq_after = match self.first_seq_at(r.ms_from)? {
                    Some(seq) => seq - 1,
                    None => SEQ_MAX - 1, // nothing that late
                };
            }
            None => {}
        }
        match before {
            Some(Cursor::Id(id)) => r.seq_before = self.seq_of(id)?,
            Some(Cursor::Time(t)) => {
                r.ms_before = t.timestamp_millis();
                r.seq_before = self.first_seq_at(r.ms_before)?.unwrap_or(SEQ_MAX);
            }
            None => {}
        }
        Ok(r)
    }

    fn seq_of(&self, id: &str) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(SEQ_OF_ID)
            .ctx("prepare")?
            .query_row([id], |r| r.get(0))
            .optional()
            .ctx("look up a message")?
            .ok_or_else(|| StoreError::NoSuchMessage { id: id.to_string() })
    }

    fn first_seq_at(&self, ms: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(FIRST_SEQ_AT)
            .ctx("prepare")?
            .query_row([ms], |r| r.get(0))
            .optional()
            .ctx("look up a time")
    }

    fn select(
        &self,
        r: Bounds,
        involving: Option<&str>,
        addressed_to: Option<&str>,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>, StoreError> {
        let sql = if forward {
            MESSAGES_FORWARD
        } else {
            MESSAGES_BACKWARD
        };
        let mut stmt = self.conn.prepare_cached(sql).ctx("prepare")?;
        let rows = stmt
            .query_map(
                params![
                    r.seq_after,
                    r.seq_before,
                    r.ms_from,
                    r.ms_before,
                    involving,
                    addressed_to,
                    sql_limit(limit)
                ],
                |row| message_from_row(row, 0),
            )
            .ctx("read messages")?;
        let mut found = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("read messages")?;
        if !forward {
            found.reverse();
        }
        Ok(found)
    }

    /// Adds or replaces a request (by id).
    pub fn upsert_request(&mut self, r: &RequestRow) -> Result<(), StoreError> {
        if !crate::mailbox::is_valid_id(&r.id) {
            return Err(StoreError::Invalid {
                what: "request id",
                reason: format!("{:?} is not 1-64 letters, digits, `-` or `_`", r.id),
            });
        }
        check_name("pane id", &r.pane)?;
        check_text("agent name", &r.agent, MAX_NAME_BYTES, false)?;
        check_text("request text", &r.text, MAX_CONTENT_BYTES, true)?;
        if let Some(by) = &r.answered_by {
            check_text("answered_by", by, MAX_NAME_BYTES, false)?;
        }
        if let Some(answer) = &r.answer {
            check_text("answer", answer, MAX_CONTENT_BYTES, true)?;
        }
        let detected_ns =
            r.detected_at
                .timestamp_nanos_opt()
                .ok_or_else(|| StoreError::Invalid {
                    what: "detected_at",
                    reason: format!("{} is outside 1677-2262", r.detected_at),
                })?;
        let now = self.now_ms();
        self.write(|tx| {
            tx.prepare_cached(UPSERT_REQUEST)
                .ctx("prepare")?
                .execute(params![
                    r.id,
                    r.pane,
                    r.agent,
                    request_kind_str(r.kind),
                    detected_ns,
                    r.status,
                    r.answered_by,
                    now,
                    r.text,
                    r.answer
                ])
                .ctx("store a request")?;
            Ok(())
        })
    }

    /// The request with this id.
    pub fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.conn
            .prepare_cached(GET_REQUEST)
            .ctx("prepare")?
            .query_row([id], request_from_row)
            .optional()
            .ctx("read a request")
    }

    /// The last `limit` requests by detection time (cut to [`MAX_LIMIT`]), oldest first.
    pub fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(RECENT_REQUESTS).ctx("prepare")?;
        let rows = stmt
            .query_map([sql_limit(limit)], request_from_row)
            .ctx("read requests")?;
        let mut found = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("read requests")?;
        found.reverse();
        Ok(found)
    }

    /// How many messages and requests there are, and deliveries by status. Counting walks the
    /// tables: meant for a status command or a benchmark, not for every message.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            self.conn
                .prepare_cached(sql)
                .ctx("prepare")?
                .query_row([], |r| r.get(0))
                .map(count_of)
                .ctx("count rows")
        };
        let mut counts = Counts {
            messages: count(COUNT_MESSAGES)?,
            requests: count(COUNT_REQUESTS)?,
            ..Counts::default()
        };
        let mut stmt = self.conn.prepare_cached(COUNT_DELIVERIES).ctx("prepare")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, DeliveryStatus>(0)?, count_of(r.get(1)?)))
            })
            .ctx("count deliveries")?;
        for row in rows {
            let (status, n) = row.ctx("count deliveries")?;
            *counts.deliveries.slot(status) = n;
        }
        Ok(counts)
    }

    /// Runs SQLite's integrity and foreign key checks (slow: reads the whole file).
    pub fn check_integrity(&self) -> Result<(), StoreError> {
        let mut problems: Vec<String> = {
            let mut stmt = self.conn.prepare("PRAGMA integrity_check").ctx("prepare")?;
            let rows = stmt.query_map([], |r| r.get(0)).ctx("check integrity")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("check integrity")?
        };
        problems.retain(|p| p != "ok");
        let mut stmt = self
            .conn
            .prepare("PRAGMA foreign_key_check")
            .ctx("prepare")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(format!(
                    "{} row {} points to a missing {} row",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or(-1),
                    r.get::<_, String>(2)?
                ))
            })
            .ctx("check foreign keys")?;
        for row in rows {
            problems.push(row.ctx("check foreign keys")?);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt { problems })
        }
    }
}

/// Bounds of a message query.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    seq_after: i64,
    seq_before: i64,
    ms_from: i64,
    ms_before: i64,
}

/// Runs a statement without parameters or rows (transaction control), prepared once.
fn run(conn: &Connection, sql: &'static str, action: &'static str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .ctx(action)
}

fn mark_in(
    tx: &Connection,
    id: i64,
    status: DeliveryStatus,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let attempt = i64::from(status == DeliveryStatus::Delivering);
    let error = error.map(|e| truncate(e, MAX_ERROR_BYTES));
    let changed = tx
        .prepare_cached(update_delivery_sql(status))
        .ctx("prepare")?
        .execute(params![id, status, attempt, error, now])
        .ctx("mark a delivery")?;
    if changed == 1 {
        return Ok(());
    }
    // Not moved: say why.
    let from: DeliveryStatus = tx
        .prepare_cached(DELIVERY_STATUS)
        .ctx("prepare")?
        .query_row([id], |r| r.get(0))
        .optional()
        .ctx("read a delivery")?
        .ok_or(StoreError::NoSuchDelivery { id })?;
    Err(StoreError::BadTransition {
        id,
        from,
        to: status,
    })
}

/// The id of a message's first delivery.
fn first_delivery_id(seq: i64) -> Result<i64, StoreError> {
    seq.checked_mul(DELIVERY_SLOTS)
        .filter(|first| first.checked_add(DELIVERY_SLOTS).is_some())
        .ok_or_else(|| StoreError::Corrupt {
            problems: vec![format!("message number {seq} is out of range")],
        })
}

fn in_status(tx: &Connection, status: DeliveryStatus) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = tx.prepare_cached(DELIVERIES_IN_STATUS).ctx("prepare")?;
    let rows = stmt
        .query_map([status], |r| delivery_from_row(r, 0))
        .ctx("read deliveries")?;
    rows.collect::<rusqlite::Result<_>>().ctx("read deliveries")
}

fn count_in_status(tx: &Connection, status: DeliveryStatus) -> Result<u64, StoreError> {
    tx.prepare_cached(COUNT_IN_STATUS)
        .ctx("prepare")?
        .query_row([status], |r| r.get(0))
        .map(count_of)
        .ctx("count deliveries")
}

// ---------------------------------------------------------------------------------------------
// Rows.

/// A `count(*)`, which SQLite gives as a signed integer that is never negative.
fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn time_ms(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| bad_value(format!("time {ms} ms")))
}

fn bad_value(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        Type::Integer,
        format!("not a valid value: {what}").into(),
    )
}

fn delivery_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(at)?,
        recipient: r.get(at + 1)?,
        pane: r.get(at + 2)?,
        status: r.get(at + 3)?,
        attempts: r.get(at + 4)?,
        last_error: r.get(at + 5)?,
        created_at: time_ms(r.get(at + 6)?)?,
        updated_at: time_ms(r.get(at + 7)?)?,
        delivered_at: r.get::<_, Option<i64>>(at + 8)?.map(time_ms).transpose()?,
        message_id: r.get(at + 9)?,
    })
}

/// A message and its `seq`.
fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<(i64, Message)> {
    let meta: String = r.get(at + 8)?;
    let meta = serde_json::from_str(&meta)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at + 8, Type::Text, e.into()))?;
    Ok((
        r.get(at)?,
        Message {
            id: r.get(at + 1)?,
            ts: time_ms(r.get(at + 2)?)?,
            from: r.get(at + 3)?,
            to: r.get(at + 4)?,
            kind: r.get(at + 5)?,
            urgent: r.get(at + 6)?,
            content: r.get(at + 7)?,
            meta,
        },
    ))
}

fn request_from_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    let kind: String = r.get(3)?;
    let kind =
        parse_request_kind(&kind).ok_or_else(|| bad_value(format!("request kind {kind:?}")))?;
    Ok(RequestRow {
        id: r.get(0)?,
        pane: r.get(1)?,
        agent: r.get(2)?,
        kind,
        detected_at: DateTime::from_timestamp_nanos(r.get(4)?),
        status: r.get(5)?,
        answered_by: r.get(6)?,
        text: r.get(7)?,
        answer: r.get(8)?,
    })
}

/// The enums are stored as their lowercase names.
macro_rules! sql_text_enum {
    ($t:ty, $what:literal) => {
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = value.as_str()?;
                <$t>::parse(s).ok_or_else(|| {
                    FromSqlError::Other(format!(concat!("not a ", $what, ": {:?}"), s).into())
                })
            }
        }
    };
}

sql_text_enum!(DeliveryStatus, "delivery status");
sql_text_enum!(MessageKind, "message kind");
sql_text_enum!(RequestStatus, "request status");
