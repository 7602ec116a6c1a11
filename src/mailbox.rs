//! The manual-mode mailbox: `inbox/`, `outbox/` and `archive/` in the state dir.
//!
//! This module owns the files of manual mode and nothing else: it writes detected requests, reads
//! and checks the answers a person writes, writes `.error` files, archives delivered pairs and
//! watches `outbox/`. It never parses `<<CONTROLLER_RESPONSE>>` blocks (the caller does), never
//! delivers anything, and never deletes a file a person wrote unless the same text is safe in
//! `archive/` first.
//!
//! # Files
//!
//! ```text
//! STATE_DIR/
//!   inbox/<id>.md               a request waiting for an answer (written here, 0600)
//!   outbox/<id>.md              the answer, written by a person with any editor
//!   outbox/<id>.error           why that answer was not used (written here; the answer stays)
//!   archive/<id>.request.md     the inbox file, byte for byte, once the answer was delivered
//!   archive/<id>.response.md    the answer, with the delivery facts in its front matter
//!   archive/<id>.<name>.md      other facts about the request (`archive_note`, e.g. fallbacks)
//! ```
//!
//! The directories are created with mode 0700 when this module creates them; existing ones are
//! left as they are. Every file it writes has mode 0600.
//!
//! # Ids
//!
//! An id is 1 to 64 ASCII letters, digits, `-` or `_` ([`is_valid_id`]), so it is safe as a file
//! name and easy to type. [`Mailbox::new_id`] makes ids like `20261120-233512-3f9a`: the UTC date
//! and time, then four hex digits for the fraction of the second. Within one process every id is
//! new and sorts after the previous one; [`Mailbox::write_request`] also refuses an id that is
//! already in `inbox/` or `archive/`, so two processes cannot overwrite each other's requests.
//!
//! # Request files
//!
//! ```text
//! ---
//! id: 20261120-233512-3f9a
//! session: macs
//! pane: '%3'
//! agent: worker
//! kind: block
//! detected_at: 2026-11-20T23:35:12.123456789Z
//! ---
//! the request text, exactly
//! ```
//!
//! The front matter is YAML between two lines that are exactly `---`; everything after the
//! second one is the text. The file always ends with a newline that is not part of the text:
//! writing appends one `\n` to the text, reading removes exactly one final `\n` (when there is
//! one). So every text round-trips exactly, whatever it ends with, and `cat inbox/<id>.md` ends
//! cleanly. `---` lines inside the text are text: only the first two delimit. A UTF-8 BOM and
//! CRLF delimiter lines are accepted when reading (a person may have opened the file in an
//! editor); unknown front matter keys are ignored, so a newer version's files still load.
//!
//! # Response files
//!
//! `outbox/<id>.md` is plain text. Only names that are exactly `<id>.md` count: editor swap,
//! backup and temporary files (`.x.md.swp`, `x.md~`, `#x.md#`, `.#x.md`, `4913`, `x.md.tmp`,
//! `x.md.bak`, `.x.md.kate-swp`) and `x.error` are ignored ([`response_id`]). Reading removes a
//! UTF-8 BOM and turns CRLF into LF; the text is otherwise returned as written
//! ([`ResponseFile::raw`]). A response is refused, each with its own [`ResponseError`], when it
//! is missing, not a regular file, for an unknown id, for an id already answered, larger than the
//! limit (64 KiB by default, counted on disk), not UTF-8, empty, or whitespace only.
//!
//! # Half-written files
//!
//! Editors save in many ways: truncate and write (maybe in several chunks), or write a temporary
//! file and rename it over the old one. The watcher reports every change to `outbox/<id>.md`;
//! the daemon must not read the file until it has stopped changing. [`Settler`] decides that from
//! the file's [`FileStamp`] (size and mtime) and the monotonic clock: a file is ready once its
//! stamp stayed the same for the settle time (and no change event arrived meanwhile). It needs no
//! trust in the file system's clock. [`Mailbox::stable_since`] gives the simpler mtime-based
//! answer when the caller wants no state.
//!
//! # Atomic writes and crash safety
//!
//! Every write goes to a temporary file in the same directory (`.<name>.macs-tmp-<pid>-<n>`,
//! which every scan ignores), is flushed, then renamed over the destination (for `inbox/`,
//! hard-linked so that an existing request is never replaced). [`Mailbox::archive`] writes both
//! archive files first and only then removes `inbox/<id>.md` and `outbox/<id>.md`; the outbox
//! file is removed only when it still holds the archived text (a person may have saved again
//! meanwhile: that text stays). Running `archive` again, or [`Mailbox::recover`] (which `open`
//! runs), after a crash anywhere in between finishes the job without losing or duplicating a
//! file. A request whose `archive/<id>.response.md` exists counts as answered: it is never
//! pending again.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// The directory of requests waiting for an answer.
pub const INBOX: &str = "inbox";
/// The directory a person writes answers into.
pub const OUTBOX: &str = "outbox";
/// The directory of delivered requests and answers.
pub const ARCHIVE: &str = "archive";
/// The largest response read by default (`limits.response_bytes`).
pub const DEFAULT_RESPONSE_LIMIT: u64 = 64 * 1024;
/// The longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// What marks this module's temporary files (always behind a leading `.`).
const TEMP_MARK: &str = ".macs-tmp-";
/// Temporary files older than this are left-overs of a crash; `open` removes them.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Whether `id` is a valid request id: 1 to [`MAX_ID_LEN`] ASCII letters, digits, `-` or `_`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The id of an outbox (or inbox) file name, when the name is exactly `<id>.md`; `None` for
/// every other name (swap, backup and temporary files, `.error` files).
pub fn response_id(file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix(".md")?;
    is_valid_id(id).then_some(id)
}

// ---------------------------------------------------------------------------------------------
// Records.

pub use crate::store::RequestKind;

/// A detected request, as kept in `inbox/<id>.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub id: String,
    /// The tmux session.
    pub session: String,
    /// The pane id, such as `%3`.
    pub pane: String,
    /// The agent's label or name.
    pub agent: String,
    pub kind: RequestKind,
    pub detected_at: DateTime<Utc>,
    /// The request text.
    pub text: String,
}

/// The front matter of a request file (the record without its text).
#[derive(Debug, Serialize, Deserialize)]
struct RequestFront {
    id: String,
    session: String,
    pane: String,
    agent: String,
    kind: RequestKind,
    detected_at: DateTime<Utc>,
}

/// The facts of one delivery, kept in `archive/<id>.response.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub at: DateTime<Utc>,
    /// The pane the answer went to, such as `%3`.
    pub pane: String,
    /// What the writer saw: "delivered (Enter)", "unconfirmed: …".
    pub outcome: String,
    /// The text that was typed (the WORKER INSTRUCTIONS part of the response).
    pub sent_text: String,
}

/// The front matter of `archive/<id>.response.md`.
#[derive(Debug, Serialize)]
struct ResponseFront<'a> {
    id: &'a str,
    delivered_at: DateTime<Utc>,
    pane: &'a str,
    outcome: &'a str,
    /// The response file's mtime when it was read.
    response_modified: Option<DateTime<Utc>>,
    /// The response file's size on disk when it was read.
    response_bytes: u64,
    sent_text: &'a str,
}

/// The front matter of an archive note.
#[derive(Debug, Serialize)]
struct NoteFront<'a> {
    id: &'a str,
    note: &'a str,
}

/// A response as read from `outbox/<id>.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFile {
    /// The text, with a UTF-8 BOM removed and CRLF turned into LF; otherwise as written.
    pub raw: String,
    /// The file's mtime when it was read.
    pub modified: SystemTime,
    /// The file's size on disk when it was read.
    pub len: u64,
}

/// What a file looks like on disk at one moment: a write changes one or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub modified: SystemTime,
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// What the outbox watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEvent {
    /// `outbox/<id>.md` was created, written, renamed into place or closed after writing.
    /// It may still be half-written: see [`Settler`].
    Changed { id: String },
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A failure of the mailbox itself (as opposed to a bad response: [`ResponseError`]).
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} exists but is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("not a request id: {id:?} (an id is 1-64 letters, digits, `-` or `_`)")]
    BadId { id: String },
    #[error(
        "not an archive note name: {name:?} (letters, digits, `-` or `_`, \
         not starting with `request` or `response`)"
    )]
    BadNoteName { name: String },
    #[error("request id {id} is already taken: {} exists", path.display())]
    IdTaken { id: String, path: PathBuf },
    #[error("no request {id}: {} does not exist", path.display())]
    NoSuchRequest { id: String, path: PathBuf },
    #[error("{}: not a valid {what}: {reason}", path.display())]
    BadFile {
        path: PathBuf,
        /// "request file", "response archive"
        what: &'static str,
        reason: String,
    },
    #[error("cannot write the front matter of {id}: {source}")]
    Yaml {
        id: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot watch {}: {hint}", path.display())]
    WatchLimit {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: notify::Error,
    },
}

/// Why `outbox/<id>.md` cannot be used. The message is written to `outbox/<id>.error` for the
/// person to read, so it says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("not a request id: {id:?} (an id is 1-64 letters, digits, `-` or `_`)")]
    BadId { id: String },
    #[error("outbox/{id}.md does not exist")]
    Missing { id: String },
    #[error("outbox/{id}.md is not a regular file")]
    NotAFile { id: String },
    #[error(
        "no request with id {id} is waiting (there is no inbox/{id}.md): \
         name the file after one of the requests in inbox/"
    )]
    UnknownId { id: String },
    #[error(
        "request {id} was already answered (see archive/{id}.response.md): \
         this text was not sent"
    )]
    AlreadyAnswered { id: String },
    #[error("outbox/{id}.md is {len} bytes, more than the limit of {limit} bytes: shorten it")]
    TooLarge { id: String, len: u64, limit: u64 },
    #[error(
        "outbox/{id}.md is not UTF-8 text (invalid byte at offset {offset}): save it as UTF-8"
    )]
    NotUtf8 { id: String, offset: usize },
    #[error("outbox/{id}.md is empty: write the answer into it")]
    Empty { id: String },
    #[error("outbox/{id}.md holds only whitespace: write the answer into it")]
    WhitespaceOnly { id: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ResponseError {
    /// Whether the person has to fix the file: these get an `outbox/<id>.error`. The others
    /// (a missing file, a bad id from the caller, an I/O failure) are the daemon's to log.
    pub fn is_content_problem(&self) -> bool {
        matches!(
            self,
            ResponseError::NotAFile { .. }
                | ResponseError::UnknownId { .. }
                | ResponseError::AlreadyAnswered { .. }
                | ResponseError::TooLarge { .. }
                | ResponseError::NotUtf8 { .. }
                | ResponseError::Empty { .. }
                | ResponseError::WhitespaceOnly { .. }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The mailbox.

/// The three directories of manual mode under one state dir.
#[derive(Debug, Clone)]
pub struct Mailbox {
    root: PathBuf,
    inbox: PathBuf,
    outbox: PathBuf,
    archive: PathBuf,
    response_limit: u64,
}

impl Mailbox {
    /// Opens the mailbox in `state_dir`: creates the state dir and `inbox/`, `outbox/`,
    /// `archive/` when missing (mode 0700), removes this module's temporary files left by a
    /// crash, and finishes archives a crash interrupted ([`Mailbox::recover`]).
    pub fn open(state_dir: &Path) -> Result<Mailbox, MailboxError> {
        if !state_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(io_err("create the state directory", state_dir))?;
        }
        let mailbox = Mailbox {
            root: state_dir.to_owned(),
            inbox: state_dir.join(INBOX),
            outbox: state_dir.join(OUTBOX),
            archive: state_dir.join(ARCHIVE),
            response_limit: DEFAULT_RESPONSE_LIMIT,
        };
        for dir in [&mailbox.inbox, &mailbox.outbox, &mailbox.archive] {
            ensure_dir(dir)?;
            remove_stale_temps(dir);
        }
        let finished = mailbox.recover()?;
        if !finished.is_empty() {
            info!(ids = ?finished, "finished archiving answers a restart interrupted");
        }
        Ok(mailbox)
    }

    /// Sets the largest response accepted, in bytes on disk (`limits.response_bytes`).
    pub fn with_response_limit(mut self, bytes: u64) -> Mailbox {
        self.response_limit = bytes;
        self
    }

    /// The state dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn inbox_dir(&self) -> &Path {
        &self.inbox
    }

    pub fn outbox_dir(&self) -> &Path {
        &self.outbox
    }

    pub fn archive_dir(&self) -> &Path {
        &self.archive
    }

    /// `inbox/<id>.md`
    pub fn request_path(&self, id: &str) -> PathBuf {
        self.inbox.join(format!("{id}.md"))
    }

    /// `outbox/<id>.md`
    pub fn response_path(&self, id: &str) -> PathBuf {
        self.outbox.join(format!("{id}.md"))
    }

    /// `outbox/<id>.error`
    pub fn error_path(&self, id: &str) -> PathBuf {
        self.outbox.join(format!("{id}.error"))
    }

    /// `archive/<id>.<name>.md`
    pub fn archive_path(&self, id: &str, name: &str) -> PathBuf {
        self.archive.join(format!("{id}.{name}.md"))
    }

    /// A new request id for a request detected at `now`, such as `20261120-233512-3f9a`: the
    /// UTC time to the second, then four hex digits for the fraction of the second. Ids made by
    /// one process are all different and sort in the order they were made, even when `now`
    /// repeats or goes backwards (the suffix, and if need be the second, moves forward).
    pub fn new_id(now: DateTime<Utc>) -> String {
        static LAST: Mutex<Option<(i64, u32)>> = Mutex::new(None);
        let nanos = u64::from(now.timestamp_subsec_nanos().min(999_999_999));
        // 0..=0xffff: the fraction of the second, in 1/65536 steps.
        let mut next = (now.timestamp(), (nanos * 0x1_0000 / 1_000_000_000) as u32);
        let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(prev) = *last {
            if next <= prev {
                next = if prev.1 >= 0xffff {
                    (prev.0.saturating_add(1), 0)
                } else {
                    (prev.0, prev.1 + 1)
                };
            }
        }
        *last = Some(next);
        drop(last);
        let when = DateTime::<Utc>::from_timestamp(next.0, 0).unwrap_or(now);
        format!("{}-{:04x}", when.format("%Y%m%d-%H%M%S"), next.1)
    }

    /// Writes `inbox/<id>.md` atomically (mode 0600). Refuses an id that is already in
    /// `inbox/` or `archive/` ([`MailboxError::IdTaken`]): a request is never overwritten.
    pub fn write_request(&self, r: &RequestRecord) -> Result<PathBuf, MailboxError> {
        check_id(&r.id)?;
        for taken in [
            self.archive_path(&r.id, "request"),
            self.archive_path(&r.id, "response"),
        ] {
            if taken.exists() {
                return Err(MailboxError::IdTaken {
                    id: r.id.clone(),
                    path: taken,
                });
            }
        }
        let front = RequestFront {
            id: r.id.clone(),
            session: r.session.clone(),
            pane: r.pane.clone(),
            agent: r.agent.clone(),
            kind: r.kind,
            detected_at: r.detected_at,
        };
        let doc = render_doc(&r.id, &front, &r.text)?;
        let path = self.request_path(&r.id);
        match write_atomic(&path, doc.as_bytes(), Replace::Never) {
            Ok(()) => {
                debug!(id = %r.id, pane = %r.pane, kind = %r.kind, "request written to the inbox");
                Ok(path)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(MailboxError::IdTaken {
                id: r.id.clone(),
                path,
            }),
            Err(source) => Err(io_err("write", &path)(source)),
        }
    }

    /// Reads `inbox/<id>.md`.
    pub fn read_request(&self, id: &str) -> Result<RequestRecord, MailboxError> {
        check_id(id)?;
        let path = self.request_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(MailboxError::NoSuchRequest {
                    id: id.to_owned(),
                    path,
                })
            }
            Err(source) => return Err(io_err("read", &path)(source)),
        };
        parse_request(id, &bytes).map_err(|reason| MailboxError::BadFile {
            path,
            what: "request file",
            reason,
        })
    }

    /// Every request in `inbox/` not yet answered, oldest first (by `detected_at`, then id).
    /// A file that cannot be read or parsed is logged and skipped, never deleted. Names other
    /// than `<id>.md` are ignored.
    pub fn pending_requests(&self) -> Result<Vec<RequestRecord>, MailboxError> {
        let ids = list_ids(&self.inbox).map_err(io_err("list", &self.inbox))?;
        let mut pending = Vec::new();
        for id in ids {
            if self.is_archived(&id) {
                warn!(%id, "inbox holds a request that was already answered; not pending");
                continue;
            }
            match self.read_request(&id) {
                Ok(r) => pending.push(r),
                Err(error) => warn!(%id, %error, "skipping an inbox file that cannot be used"),
            }
        }
        pending.sort_by(|a, b| (a.detected_at, &a.id).cmp(&(b.detected_at, &b.id)));
        Ok(pending)
    }

    /// The ids of the `outbox/<id>.md` files present now, sorted; every other name is ignored.
    /// A directory that cannot be read is logged and gives no ids.
    pub fn outbox_ids(&self) -> Vec<String> {
        match list_ids(&self.outbox) {
            Ok(ids) => ids.into_iter().collect(),
            Err(error) => {
                warn!(dir = %self.outbox.display(), %error, "cannot list the outbox");
                Vec::new()
            }
        }
    }

    /// The size and mtime of `outbox/<id>.md` now; `None` when it is missing.
    pub fn response_stamp(&self, id: &str) -> Option<FileStamp> {
        if !is_valid_id(id) {
            return None;
        }
        fs::metadata(self.response_path(id))
            .ok()
            .map(|m| FileStamp::of(&m))
    }

    /// Since when `outbox/<id>.md` has not changed, by its mtime (never later than now, so a
    /// file from a clock in the future counts as just changed). The stateless way to wait for a
    /// half-written file: read it once `now - stable_since >= settle`. [`Settler`] is the
    /// sturdier way (it also notices a rewrite within one mtime tick, by the watcher's events).
    pub fn stable_since(&self, id: &str) -> Option<SystemTime> {
        let stamp = self.response_stamp(id)?;
        Some(stamp.modified.min(SystemTime::now()))
    }

    /// Reads and checks `outbox/<id>.md`. Each problem is its own [`ResponseError`]; the file
    /// is never changed.
    pub fn read_response(&self, id: &str) -> Result<ResponseFile, ResponseError> {
        if !is_valid_id(id) {
            return Err(ResponseError::BadId { id: id.to_owned() });
        }
        let path = self.response_path(id);
        check_regular_file(id, &path)?;
        if !self.request_path(id).exists() {
            return Err(if self.is_archived(id) {
                ResponseError::AlreadyAnswered { id: id.to_owned() }
            } else {
                ResponseError::UnknownId { id: id.to_owned() }
            });
        }
        read_response_file(id, &path, self.response_limit)
    }

    /// Reads and checks `outbox/<id>.md` without asking whether a request file exists (the
    /// journal knows the requests). The file is never changed.
    pub fn read_answer(&self, id: &str) -> Result<ResponseFile, ResponseError> {
        if !is_valid_id(id) {
            return Err(ResponseError::BadId { id: id.to_owned() });
        }
        read_response_file(id, &self.response_path(id), self.response_limit)
    }

    /// Writes `outbox/<id>.error` (atomically) saying why the response was not used. The
    /// response itself stays where it is.
    pub fn write_error(&self, id: &str, e: &ResponseError) -> Result<(), MailboxError> {
        self.write_error_text(id, &e.to_string())
    }

    /// Writes `outbox/<id>.error` with any reason (a delivery that was not confirmed, a
    /// response with nothing to send). Same format as [`Mailbox::write_error`].
    /// `inbox/<id>.note.txt`: why a request came to the person in auto mode (the controller
    /// backends that could not answer, and their reasons). Not a request file: scans skip it.
    pub fn write_inbox_note(&self, id: &str, text: &str) -> Result<PathBuf, MailboxError> {
        check_id(id)?;
        let path = self.inbox.join(format!("{id}.note.txt"));
        write_atomic(&path, text.as_bytes(), Replace::Always).map_err(io_err("write", &path))?;
        Ok(path)
    }

    /// Whether a request already fell back to the person (it has an inbox note).
    pub fn has_inbox_note(&self, id: &str) -> bool {
        is_valid_id(id) && self.inbox.join(format!("{id}.note.txt")).exists()
    }

    /// Removes the inbox note once the request is answered.
    pub fn remove_inbox_note(&self, id: &str) {
        if is_valid_id(id) {
            let _ = std::fs::remove_file(self.inbox.join(format!("{id}.note.txt")));
        }
    }

    /// Writes `outbox/<id>.md` (atomically), as a controller backend does with its answer; the
    /// answer then goes the way a person's does. An answer already there is not replaced.
    pub fn write_response(&self, id: &str, text: &str) -> Result<PathBuf, MailboxError> {
        check_id(id)?;
        let path = self.response_path(id);
        write_atomic(&path, text.as_bytes(), Replace::Never).map_err(io_err("write", &path))?;
        Ok(path)
    }

    pub fn write_error_text(&self, id: &str, reason: &str) -> Result<(), MailboxError> {
        check_id(id)?;
        let text = format!(
            "outbox/{id}.md was not delivered: {reason}\n\
             The file stays where it is. Fix it and save it again: it will be read again.\n\
             Checked at {}.\n",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let path = self.error_path(id);
        write_atomic(&path, text.as_bytes(), Replace::Always).map_err(io_err("write", &path))
    }

    /// Removes `outbox/<id>.error`, if there is one (once the response is good). A failure is
    /// logged.
    pub fn clear_error(&self, id: &str) {
        if !is_valid_id(id) {
            return;
        }
        let path = self.error_path(id);
        match fs::remove_file(&path) {
            Ok(()) => debug!(%id, "stale error file removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => warn!(path = %path.display(), %error, "cannot remove a stale error file"),
        }
    }

    /// Archives a delivered request and its answer: writes `archive/<id>.request.md` (the inbox
    /// file, byte for byte) and `archive/<id>.response.md` (the answer, the delivery facts in
    /// its front matter), then removes `inbox/<id>.md`, `outbox/<id>.md` (only if it still
    /// holds `response.raw`) and `outbox/<id>.error`.
    ///
    /// Safe to run again after a crash at any point: an identical archive file is left as it
    /// is, removals that already happened are skipped. If `archive/<id>.response.md` already
    /// holds a different delivery, it is kept and this one is written next to it
    /// (`<id>.response-2.md`, …): nothing is overwritten.
    pub fn archive(
        &self,
        id: &str,
        response: &ResponseFile,
        d: &Delivered,
    ) -> Result<(), MailboxError> {
        check_id(id)?;
        self.archive_request_copy(id)?;
        let front = ResponseFront {
            id,
            delivered_at: d.at,
            pane: &d.pane,
            outcome: &d.outcome,
            response_modified: system_to_utc(response.modified),
            response_bytes: response.len,
            sent_text: &d.sent_text,
        };
        let doc = render_doc(id, &front, &response.raw)?;
        let path = self.archive_path(id, "response");
        match fs::read(&path) {
            Ok(existing) if existing == doc.as_bytes() => {}
            Ok(_) => {
                warn!(%id, "request was already archived with another delivery; keeping both");
                self.write_extra_response(id, &doc)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(&path, doc.as_bytes(), Replace::Always)
                    .map_err(io_err("write", &path))?;
            }
            Err(source) => return Err(io_err("read", &path)(source)),
        }
        self.finish_archive(id).map(|_| ())
    }

    /// Writes `archive/<id>.<name>.md`: other facts about a request (a fallback taken, a
    /// delivery given up). One file per name: writing the same name again replaces it.
    pub fn archive_note(&self, id: &str, name: &str, text: &str) -> Result<(), MailboxError> {
        check_id(id)?;
        let reserved = name.starts_with("request") || name.starts_with("response");
        if !is_valid_id(name) || reserved {
            return Err(MailboxError::BadNoteName {
                name: name.to_owned(),
            });
        }
        let doc = render_doc(id, &NoteFront { id, note: name }, text)?;
        let path = self.archive_path(id, name);
        write_atomic(&path, doc.as_bytes(), Replace::Always).map_err(io_err("write", &path))
    }

    /// Whether the request was answered: `archive/<id>.response.md` exists.
    pub fn is_archived(&self, id: &str) -> bool {
        is_valid_id(id) && self.archive_path(id, "response").exists()
    }

    /// Up to `n` archived requests (`archive/<id>.request.md`), the latest ids first in the
    /// looking and oldest first in the result (ids from [`Mailbox::new_id`] sort by time). For
    /// a restart: a block still on screen that was already answered is not filed again. A file
    /// that cannot be read is logged and skipped.
    pub fn recent_archived_requests(&self, n: usize) -> Vec<RequestRecord> {
        let entries = match fs::read_dir(&self.archive) {
            Ok(entries) => entries,
            Err(error) => {
                warn!(dir = %self.archive.display(), %error, "cannot list the archive");
                return Vec::new();
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".request.md")?;
                is_valid_id(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut found = Vec::new();
        for id in ids {
            if found.len() >= n {
                break;
            }
            let path = self.archive_path(&id, "request");
            match fs::read(&path) {
                Ok(bytes) => match parse_request(&id, &bytes) {
                    Ok(r) => found.push(r),
                    Err(reason) => {
                        warn!(path = %path.display(), %reason, "skipping an archived request")
                    }
                },
                Err(error) => {
                    warn!(path = %path.display(), %error, "cannot read an archived request")
                }
            }
        }
        found.sort_by(|a, b| (a.detected_at, &a.id).cmp(&(b.detected_at, &b.id)));
        found
    }

    /// Finishes every archive a crash interrupted: for each id in `inbox/` or `outbox/` whose
    /// `archive/<id>.response.md` exists, does what [`Mailbox::archive`] had left to do.
    /// Returns the ids where it removed something (an outbox file that differs from the
    /// archived answer is kept, and not counted). `open` runs it; a failure for one id is
    /// logged and the others go on.
    pub fn recover(&self) -> Result<Vec<String>, MailboxError> {
        let mut ids = BTreeSet::new();
        for dir in [&self.inbox, &self.outbox] {
            ids.extend(list_ids(dir).map_err(io_err("list", dir))?);
        }
        let mut finished = Vec::new();
        for id in ids {
            if !self.is_archived(&id) {
                continue;
            }
            match self.finish_archive(&id) {
                Ok(true) => finished.push(id),
                Ok(false) => {}
                Err(error) => warn!(%id, %error, "cannot finish an interrupted archive"),
            }
        }
        Ok(finished)
    }

    /// Copies `inbox/<id>.md` to `archive/<id>.request.md` (when the inbox file is still there).
    fn archive_request_copy(&self, id: &str) -> Result<(), MailboxError> {
        let inbox = self.request_path(id);
        let path = self.archive_path(id, "request");
        match fs::read(&inbox) {
            Ok(bytes) => {
                if fs::read(&path).is_ok_and(|existing| existing == bytes) {
                    return Ok(());
                }
                write_atomic(&path, &bytes, Replace::Always).map_err(io_err("write", &path))
            }
            // Removed by an earlier run, after it was archived.
            Err(e) if e.kind() == io::ErrorKind::NotFound && path.exists() => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(MailboxError::NoSuchRequest {
                id: id.to_owned(),
                path: inbox,
            }),
            Err(source) => Err(io_err("read", &inbox)(source)),
        }
    }

    /// Writes a second (third…) delivery record next to `archive/<id>.response.md`.
    fn write_extra_response(&self, id: &str, doc: &str) -> Result<(), MailboxError> {
        for n in 2..1000u32 {
            let path = self.archive_path(id, &format!("response-{n}"));
            match fs::read(&path) {
                Ok(existing) if existing == doc.as_bytes() => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_err("read", &path)(source)),
            }
            return match write_atomic(&path, doc.as_bytes(), Replace::Never) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other.map_err(io_err("write", &path)),
            };
        }
        Err(MailboxError::IdTaken {
            id: id.to_owned(),
            path: self.archive_path(id, "response-999"),
        })
    }

    /// The removals of an archive, once `archive/<id>.response.md` exists. Returns whether it
    /// removed a file.
    fn finish_archive(&self, id: &str) -> Result<bool, MailboxError> {
        let archived = self.archive_path(id, "response");
        let bytes = fs::read(&archived).map_err(io_err("read", &archived))?;
        let archived_text = String::from_utf8(bytes)
            .ok()
            .and_then(|doc| {
                split_front(&doc)
                    .ok()
                    .map(|(_, body)| strip_final_newline(body))
            })
            .ok_or_else(|| MailboxError::BadFile {
                path: archived.clone(),
                what: "response archive",
                reason: "no front matter, or not UTF-8".into(),
            })?;

        // The inbox file goes only once its copy is in the archive.
        let inbox = self.request_path(id);
        let mut removed = false;
        if inbox.exists() {
            self.archive_request_copy(id)?;
            remove_if_present(&inbox)?;
            removed = true;
        }

        let outbox = self.response_path(id);
        match read_response_file(id, &outbox, self.response_limit) {
            Ok(r) if r.raw == archived_text => {
                remove_if_present(&outbox)?;
                self.clear_error(id);
                removed = true;
            }
            Ok(_) => warn!(
                %id,
                "outbox file changed after its answer was delivered; keeping it (not sent)"
            ),
            Err(ResponseError::Missing { .. }) => self.clear_error(id),
            Err(error) => {
                warn!(%id, %error, "keeping an outbox file that differs from the archive")
            }
        }
        debug!(%id, "archived");
        Ok(removed)
    }

    /// Watches `outbox/`. The callback only turns events into [`OutboxEvent`]s and
    /// `try_send`s them. An event that cannot be sent (the channel is full), a kernel queue
    /// overflow or a watcher error is never waited on: it sets a flag that
    /// [`OutboxWatcher::take_missed`] reports, and the caller then looks at every file in
    /// `outbox/` again ([`Mailbox::outbox_ids`]). Dropping the returned guard stops watching.
    pub fn watch(&self, tx: mpsc::Sender<OutboxEvent>) -> Result<OutboxWatcher, MailboxError> {
        use notify::Watcher;
        let missed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&missed);
        let handler = move |res: notify::Result<notify::Event>| match translate(res) {
            Ok(events) => {
                for ev in events {
                    forward(&tx, &flag, ev);
                }
            }
            Err(reason) => {
                warn!(%reason, "outbox events may have been lost; the outbox will be scanned again");
                flag.store(true, Ordering::Release);
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
    missed: Arc<AtomicBool>,
}

impl OutboxWatcher {
    /// Whether events may have been lost since the last call (the channel was full, the
    /// kernel's queue overflowed, the watcher failed). Clears the flag. Poll it on a timer;
    /// when it is true, treat every id of [`Mailbox::outbox_ids`] as changed.
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for OutboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWatcher")
            .field("missed", &self.missed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Sends one event without blocking; remembers a drop in `missed`.
fn forward(tx: &mpsc::Sender<OutboxEvent>, missed: &AtomicBool, ev: OutboxEvent) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(ev) {
        missed.store(true, Ordering::Release);
    }
}

/// Turns one watcher report into outbox events (pure; the callback's whole job). `Err` says
/// why events may have been lost.
fn translate(res: notify::Result<notify::Event>) -> Result<Vec<OutboxEvent>, String> {
    use notify::event::{AccessKind, AccessMode, EventKind};
    let event = match res {
        Ok(event) => event,
        Err(e) => return Err(format!("the outbox watcher reported: {e}")),
    };
    if event.need_rescan() {
        return Err("the kernel's event queue overflowed".into());
    }
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
        let ev = OutboxEvent::Changed { id: id.to_owned() };
        if !out.contains(&ev) {
            out.push(ev);
        }
    }
    Ok(out)
}

fn watch_error(path: &Path, source: notify::Error) -> MailboxError {
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

// ---------------------------------------------------------------------------------------------
// Waiting for a file to settle.

/// The verdict of [`Settler::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleVerdict {
    /// Unchanged for the settle time: read it now (and compare [`ResponseFile::len`] and
    /// [`ResponseFile::modified`] with this stamp to be sure it did not change while reading).
    Ready(FileStamp),
    /// Look again after this long.
    Wait(Duration),
    /// The file is gone: nothing to do.
    Gone,
}

/// Decides when each outbox file has stopped changing. Pure: the caller feeds it stamps
/// ([`Mailbox::response_stamp`]) and the time; it does no I/O and trusts no file system clock.
///
/// The daemon's loop: on [`OutboxEvent::Changed`] call [`Settler::changed`] and then
/// [`Settler::check`]; on `Wait(d)` look again after `d`; on `Ready` read the file. The clock of
/// a file restarts whenever its stamp differs from the last one seen or an event arrives, so a
/// save in several chunks, or a rewrite that keeps size and mtime, is never read half-done.
#[derive(Debug, Clone)]
pub struct Settler {
    settle: Duration,
    seen: HashMap<String, (Option<FileStamp>, Instant)>,
}

impl Settler {
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            seen: HashMap::new(),
        }
    }

    /// The watcher said the file changed: its clock restarts at `now`.
    pub fn changed(&mut self, id: &str, now: Instant) {
        self.seen.insert(id.to_owned(), (None, now));
    }

    /// A look at the file: `stamp` is what it looks like at `now` (`None`: missing).
    pub fn check(&mut self, id: &str, stamp: Option<FileStamp>, now: Instant) -> SettleVerdict {
        let Some(stamp) = stamp else {
            self.seen.remove(id);
            return SettleVerdict::Gone;
        };
        match self.seen.get_mut(id) {
            Some((seen @ None, _)) => *seen = Some(stamp),
            Some((Some(last), since)) if *last == stamp => {
                let quiet = now.saturating_duration_since(*since);
                return if quiet >= self.settle {
                    SettleVerdict::Ready(stamp)
                } else {
                    SettleVerdict::Wait(self.settle - quiet)
                };
            }
            _ => {
                self.seen.insert(id.to_owned(), (Some(stamp), now));
                return SettleVerdict::Wait(self.settle);
            }
        }
        // Stamp recorded after an event: wait the rest of the settle time from the event.
        let since = self.seen.get(id).map_or(now, |(_, since)| *since);
        let quiet = now.saturating_duration_since(since);
        SettleVerdict::Wait(
            self.settle
                .saturating_sub(quiet)
                .max(Duration::from_millis(1)),
        )
    }

    /// Forgets a file (after reading it, or when it was archived).
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }
}

// ---------------------------------------------------------------------------------------------
// Documents: front matter + text.

/// Maps an I/O error on `path` to [`MailboxError::Io`].
fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MailboxError + 'a {
    move |source| MailboxError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn check_id(id: &str) -> Result<(), MailboxError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(MailboxError::BadId { id: id.to_owned() })
    }
}

/// `---\n<yaml>---\n<text>\n`
fn render_doc<T: Serialize>(id: &str, front: &T, text: &str) -> Result<String, MailboxError> {
    let yaml = serde_yaml::to_string(front).map_err(|source| MailboxError::Yaml {
        id: id.to_owned(),
        source,
    })?;
    let mut doc = String::with_capacity(yaml.len() + text.len() + 10);
    doc.push_str("---\n");
    doc.push_str(&yaml);
    if !yaml.ends_with('\n') {
        doc.push('\n');
    }
    doc.push_str("---\n");
    doc.push_str(text);
    doc.push('\n');
    Ok(doc)
}

/// Whether a line (with or without its line ending) is a front matter delimiter.
fn is_delimiter(line: &str) -> bool {
    line.trim_end_matches(['\n', '\r', ' ', '\t']) == "---"
}

/// Splits a document into its front matter (YAML) and its body. Accepts a UTF-8 BOM and CRLF
/// delimiter lines.
fn split_front(doc: &str) -> Result<(&str, &str), String> {
    let doc = doc.strip_prefix('\u{feff}').unwrap_or(doc);
    let mut lines = doc.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if !is_delimiter(first) {
        return Err("it does not start with a `---` line".into());
    }
    let rest = &doc[first.len()..];
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if is_delimiter(line) {
            return Ok((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    Err("no `---` line closes the front matter".into())
}

/// The text of a body: without the one newline the writer added.
fn strip_final_newline(body: &str) -> String {
    body.strip_suffix('\n').unwrap_or(body).to_owned()
}

fn parse_request(id: &str, bytes: &[u8]) -> Result<RequestRecord, String> {
    let doc = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let (yaml, body) = split_front(doc)?;
    let front: RequestFront =
        serde_yaml::from_str(yaml).map_err(|e| format!("bad front matter: {e}"))?;
    if front.id != id {
        return Err(format!(
            "its front matter says id {:?}, its name says {id:?}",
            front.id
        ));
    }
    Ok(RequestRecord {
        id: front.id,
        session: front.session,
        pane: front.pane,
        agent: front.agent,
        kind: front.kind,
        detected_at: front.detected_at,
        text: strip_final_newline(body),
    })
}

/// `Missing` or `NotAFile` unless `path` is a regular file (after symlinks). Checked before
/// opening, so that a FIFO never blocks the daemon.
fn check_regular_file(id: &str, path: &Path) -> Result<(), ResponseError> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(ResponseError::NotAFile { id: id.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ResponseError::Missing { id: id.to_owned() })
        }
        Err(source) => Err(ResponseError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a response file with every content check but the id check.
fn read_response_file(id: &str, path: &Path, limit: u64) -> Result<ResponseFile, ResponseError> {
    let read_err = |source| ResponseError::Io {
        path: path.to_owned(),
        source,
    };
    check_regular_file(id, path)?;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ResponseError::Missing { id: id.to_owned() })
        }
        Err(e) => return Err(read_err(e)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(ResponseError::NotAFile { id: id.to_owned() });
    }
    let stamp = FileStamp::of(&meta);
    if stamp.len > limit {
        return Err(ResponseError::TooLarge {
            id: id.to_owned(),
            len: stamp.len,
            limit,
        });
    }
    // The file may grow while it is read: never read more than the limit and one byte.
    let mut bytes = Vec::with_capacity(usize::try_from(stamp.len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let len = bytes.len() as u64;
    if len > limit {
        return Err(ResponseError::TooLarge {
            id: id.to_owned(),
            len: len.max(stamp.len),
            limit,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ResponseError::NotUtf8 {
        id: id.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.is_empty() {
        return Err(ResponseError::Empty { id: id.to_owned() });
    }
    if text.trim().is_empty() {
        return Err(ResponseError::WhitespaceOnly { id: id.to_owned() });
    }
    Ok(ResponseFile {
        raw: text.replace("\r\n", "\n"),
        modified: stamp.modified,
        len: stamp.len.max(len),
    })
}

fn system_to_utc(t: SystemTime) -> Option<DateTime<Utc>> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    DateTime::<Utc>::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
}

// ---------------------------------------------------------------------------------------------
// Files.

fn ensure_dir(dir: &Path) -> Result<(), MailboxError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        // The umask may have taken bits away: say exactly 0700.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("set the mode of", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if dir.is_dir() {
                Ok(())
            } else {
                Err(MailboxError::NotADirectory {
                    path: dir.to_owned(),
                })
            }
        }
        Err(source) => Err(io_err("create", dir)(source)),
    }
}

/// The ids of the `<id>.md` files in a directory.
fn list_ids(dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        match name.to_str().and_then(response_id) {
            Some(id) => {
                ids.insert(id.to_owned());
            }
            None => debug!(dir = %dir.display(), name = ?name, "ignoring a file"),
        }
    }
    Ok(ids)
}

fn remove_if_present(path: &Path) -> Result<(), MailboxError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_err("remove", path)(source)),
    }
}

/// Removes this module's temporary files that a crash left behind. Best effort.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.contains(TEMP_MARK));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if ours && old {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    info!(path = %entry.path().display(), "removed a left-over temporary file")
                }
                Err(error) => {
                    warn!(path = %entry.path().display(), %error, "cannot remove a left-over temporary file")
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    Always,
    /// Fail with `AlreadyExists` when the destination exists.
    Never,
}

/// Writes a file atomically: a temporary file (mode 0600) in the same directory, flushed to
/// disk, then renamed (or hard-linked, for `Replace::Never`) into place.
fn write_atomic(dest: &Path, bytes: &[u8], replace: Replace) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{name}{TEMP_MARK}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_then_place(&tmp, dest, bytes, replace);
    if result.is_err() || replace == Replace::Never {
        // After a hard link (or a failure) the temporary name is still there.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; not every file system can sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_then_place(tmp: &Path, dest: &Path, bytes: &[u8], replace: Replace) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    match replace {
        Replace::Always => fs::rename(tmp, dest),
        Replace::Never => match fs::hard_link(tmp, dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            // A file system without hard links: check, then rename (a small race, no worse).
            Err(_) if dest.exists() => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "destination exists",
            )),
            Err(_) => fs::rename(tmp, dest),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_names() {
        assert_eq!(
            response_id("20261120-233512-3f9a.md"),
            Some("20261120-233512-3f9a")
        );
        assert_eq!(response_id("a_b-C9.md"), Some("a_b-C9"));
        for name in [
            ".x.md.swp",
            "x.md~",
            "#x.md#",
            ".#x.md",
            "4913",
            "x.md.tmp",
            "x.md.bak",
            ".x.md.kate-swp",
            "x.error",
            ".md",
            "x.y.md",
            "x .md",
            "../x.md",
            ".x.md.macs-tmp-1-2",
            "é.md",
        ] {
            assert_eq!(response_id(name), None, "{name}");
        }
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
    }

    #[test]
    fn ids_are_unique_sortable_and_typeable() {
        let now = DateTime::<Utc>::from_timestamp(1_795_000_000, 123_456_789).unwrap();
        let mut ids = Vec::new();
        for _ in 0..1000 {
            ids.push(Mailbox::new_id(now));
        }
        // Time going backwards still gives later ids.
        ids.push(Mailbox::new_id(now - chrono::Duration::seconds(30)));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        for id in &ids {
            assert!(is_valid_id(id), "{id}");
            assert_eq!(id.len(), "20261120-233512-3f9a".len(), "{id}");
        }
        assert!(ids[0].starts_with("20261118-"), "{}", ids[0]);
    }

    #[test]
    fn front_matter_split() {
        let (y, b) = split_front("---\na: 1\n---\nbody\n---\nmore\n").unwrap();
        assert_eq!((y, b), ("a: 1\n", "body\n---\nmore\n"));
        let (y, b) = split_front("\u{feff}---\r\na: 1\r\n---\r\nx").unwrap();
        assert_eq!((y, b), ("a: 1\r\n", "x"));
        let (y, b) = split_front("---\na: 1\n---").unwrap();
        assert_eq!((y, b), ("a: 1\n", ""));
        assert!(split_front("a: 1\n---\n").is_err());
        assert!(split_front("---\na: 1\n").is_err());
        assert!(split_front("").is_err());
    }

    #[test]
    fn translate_keeps_only_response_names() {
        use notify::event::{CreateKind, EventKind, Flag, ModifyKind, RemoveKind, RenameMode};
        let ev = |kind, paths: &[&str]| notify::Event {
            kind,
            paths: paths.iter().map(PathBuf::from).collect(),
            attrs: Default::default(),
        };
        let got = translate(Ok(ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/s/outbox/.a.md.swp", "/s/outbox/a.md"],
        )));
        assert_eq!(got.unwrap(), vec![OutboxEvent::Changed { id: "a".into() }]);
        let swap = translate(Ok(ev(
            EventKind::Create(CreateKind::File),
            &["/s/outbox/a.md~"],
        )));
        assert!(swap.unwrap().is_empty());
        let removed = translate(Ok(ev(
            EventKind::Remove(RemoveKind::File),
            &["/s/outbox/a.md"],
        )));
        assert!(removed.unwrap().is_empty());
        assert!(translate(Err(notify::Error::generic("boom"))).is_err());
        let overflow = ev(EventKind::Other, &[]).set_flag(Flag::Rescan);
        assert!(translate(Ok(overflow)).is_err());
    }

    #[test]
    fn forward_never_blocks_and_remembers_a_drop() {
        let (tx, mut rx) = mpsc::channel(1);
        let missed = AtomicBool::new(false);
        forward(&tx, &missed, OutboxEvent::Changed { id: "a".into() });
        assert!(!missed.load(Ordering::Acquire));
        forward(&tx, &missed, OutboxEvent::Changed { id: "b".into() });
        assert!(missed.load(Ordering::Acquire));
        assert_eq!(
            rx.try_recv().unwrap(),
            OutboxEvent::Changed { id: "a".into() }
        );
        drop(rx);
        missed.store(false, Ordering::Release);
        // A closed channel is the daemon shutting down, not a lost event.
        forward(&tx, &missed, OutboxEvent::Changed { id: "c".into() });
        assert!(!missed.load(Ordering::Acquire));
    }

    #[test]
    fn settler_waits_for_a_quiet_file() {
        let settle = Duration::from_millis(500);
        let mut s = Settler::new(settle);
        let t0 = Instant::now();
        let a = FileStamp {
            len: 3,
            modified: SystemTime::UNIX_EPOCH,
        };
        let b = FileStamp { len: 7, ..a };
        let ms = Duration::from_millis;
        s.changed("x", t0);
        assert_eq!(s.check("x", Some(a), t0), SettleVerdict::Wait(settle));
        assert_eq!(
            s.check("x", Some(a), t0 + ms(200)),
            SettleVerdict::Wait(ms(300))
        );
        // Grew: the clock restarts.
        assert_eq!(
            s.check("x", Some(b), t0 + ms(400)),
            SettleVerdict::Wait(settle)
        );
        assert_eq!(s.check("x", Some(b), t0 + ms(900)), SettleVerdict::Ready(b));
        // An event with the same stamp (a rewrite within one mtime tick) restarts it too.
        s.changed("x", t0 + ms(950));
        assert_eq!(
            s.check("x", Some(b), t0 + ms(1000)),
            SettleVerdict::Wait(ms(450))
        );
        assert_eq!(
            s.check("x", Some(b), t0 + ms(1450)),
            SettleVerdict::Ready(b)
        );
        assert_eq!(s.check("x", None, t0 + ms(1500)), SettleVerdict::Gone);
        // Never seen before (a startup scan): one settle time.
        assert_eq!(s.check("y", Some(a), t0), SettleVerdict::Wait(settle));
    }
}
