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
//! run in a background thread with its own connection (`checkpoint.rs`), never inside a commit,
//! and only after commits: an idle store wakes nothing.
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

mod batch;
mod checkpoint;
mod ids;
mod journal;
mod requests;
mod rows;
mod schema;
mod sql;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension};
use tracing::warn;

pub use schema::SCHEMA_VERSION;
pub use types::is_valid_request_id;
pub use types::{
    Counts, Cursor, Delivery, DeliveryCounts, DeliveryStatus, HistoryQuery, Message, MessageKind,
    MessageWithDeliveries, NewMessage, Recovered, RequestKind, RequestRow, RequestStatus, Stage,
    StoreError, ALL, DEFAULT_LIMIT, MAX_CONTENT_BYTES, MAX_ERROR_BYTES, MAX_LIMIT, MAX_META_BYTES,
    MAX_NAME_BYTES, MAX_RECIPIENTS, MAX_REQUEST_ID_LEN,
};

use checkpoint::Checkpointer;
use ids::IdClock;
use rows::{count_of, delivery_from_row, message_from_row, time_ms};
use sql::*;
use types::{
    check_message, check_name, check_party, check_recipients, check_text, sql_limit, truncate,
    Context,
};

/// The store's file in the state dir.
pub const FILE_NAME: &str = "macs.sqlite3";

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

    /// At start-up: the deliveries that were being typed when the daemon stopped (left
    /// `delivering`: the core looks at each pane and finishes them, see [`journal`]), and how
    /// many are `queued` and `held`. Nothing is changed.
    pub fn recover(&mut self) -> Result<Recovered, StoreError> {
        self.write(|tx| {
            Ok(Recovered {
                typing: in_status(tx, DeliveryStatus::Delivering)?,
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

    /// The deliveries of message `id` (one per recipient).
    pub fn deliveries_of(&self, id: &str) -> Result<Vec<Delivery>, StoreError> {
        let first = first_delivery_id(self.seq_of(id)?)?;
        let mut stmt = self.conn.prepare_cached(DELIVERIES_OF).ctx("prepare")?;
        stmt.query_map([first, first + DELIVERY_SLOTS], |r| delivery_from_row(r, 0))
            .and_then(|rows| rows.collect())
            .ctx("read deliveries")
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
