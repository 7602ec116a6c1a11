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
//! the daemon must not read the file until it has stopped changing (it waits for the watcher to
//! go quiet about the file). [`Mailbox::response_stamp`] and [`Mailbox::stable_since`] tell a
//! caller the file's size and mtime.
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

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

mod files;
mod records;
mod watch;

use files::*;
pub use records::*;
pub use watch::{Missed, OutboxWatcher};

/// The directory of requests waiting for an answer.
pub const INBOX: &str = "inbox";
/// The directory a person writes answers into.
pub const OUTBOX: &str = "outbox";
/// The directory of delivered requests and answers.
pub const ARCHIVE: &str = "archive";
/// The largest response read by default (`limits.response_bytes`).
pub const DEFAULT_RESPONSE_LIMIT: u64 = 64 * 1024;
/// The longest id accepted.
pub const MAX_ID_LEN: usize = crate::store::MAX_REQUEST_ID_LEN;

/// What marks this module's temporary files (always behind a leading `.`).
const TEMP_MARK: &str = ".macs-tmp-";
/// Temporary files older than this are left-overs of a crash; `open` removes them.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Whether `id` is a valid request id: 1 to [`MAX_ID_LEN`] ASCII letters, digits, `-` or `_`.
pub fn is_valid_id(id: &str) -> bool {
    crate::store::is_valid_request_id(id)
}

/// The id of an outbox (or inbox) file name, when the name is exactly `<id>.md`; `None` for
/// every other name (swap, backup and temporary files, `.error` files).
pub fn response_id(file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix(".md")?;
    is_valid_id(id).then_some(id)
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
    #[error("refusing the state dir {}: {why}", path.display())]
    Unsafe { path: PathBuf, why: String },
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
    #[error("outbox/{id}.md is not a regular file (a symbolic link, a directory or a device is never read)")]
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

/// Creates the state dir when missing (mode 0700, parents too) and refuses one another user
/// could write into ([`files::check_private`]): before anything is written under it.
pub fn open_state_dir(state_dir: &Path) -> Result<(), MailboxError> {
    if !state_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io_err("create the state directory", state_dir))?;
    }
    files::check_private(state_dir, true)
}

impl Mailbox {
    /// Opens the mailbox in `state_dir`: creates the state dir and `inbox/`, `outbox/`,
    /// `archive/` when missing (mode 0700), removes this module's temporary files left by a
    /// crash, and finishes archives a crash interrupted ([`Mailbox::recover`]).
    pub fn open(state_dir: &Path) -> Result<Mailbox, MailboxError> {
        open_state_dir(state_dir)?;
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
        let bytes = match read_nofollow(&path) {
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
        fs::symlink_metadata(self.response_path(id))
            .ok()
            .map(|m| FileStamp::of(&m))
    }

    /// Since when `outbox/<id>.md` has not changed, by its mtime (never later than now, so a
    /// file from a clock in the future counts as just changed). The stateless way to wait for a
    /// half-written file: read it once `now - stable_since >= settle`.
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
        match read_nofollow(&path) {
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
            match read_nofollow(&path) {
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
        match read_nofollow(&inbox) {
            Ok(bytes) => {
                if read_nofollow(&path).is_ok_and(|existing| existing == bytes) {
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
            match read_nofollow(&path) {
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
        let bytes = read_nofollow(&archived).map_err(io_err("read", &archived))?;
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
}

#[cfg(test)]
mod tests {
    use super::watch::{forward, translate};
    use super::*;

    #[test]
    fn the_state_dir_is_made_private_and_one_others_could_write_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        open_state_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_state_dir(&dir).unwrap_err();
        assert!(matches!(e, MailboxError::Unsafe { .. }), "{e}");
        assert!(
            fs::read_dir(&dir).unwrap().next().is_none(),
            "nothing written"
        );
    }

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
        // Other tests in this process may have made later ids already: never earlier than now.
        assert!(ids[0].as_str() >= "20261118-", "{}", ids[0]);
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
        assert_eq!(got.unwrap(), vec![OutboxEvent::Written { id: "a".into() }]);
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
}
