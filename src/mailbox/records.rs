//! The records the mailbox reads and writes: requests, delivery facts, responses, events.

use super::*;

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
pub(super) struct RequestFront {
    pub(super) id: String,
    pub(super) session: String,
    pub(super) pane: String,
    pub(super) agent: String,
    pub(super) kind: RequestKind,
    pub(super) detected_at: DateTime<Utc>,
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
pub(super) struct ResponseFront<'a> {
    pub(super) id: &'a str,
    pub(super) delivered_at: DateTime<Utc>,
    pub(super) pane: &'a str,
    pub(super) outcome: &'a str,
    /// The response file's mtime when it was read.
    pub(super) response_modified: Option<DateTime<Utc>>,
    /// The response file's size on disk when it was read.
    pub(super) response_bytes: u64,
    pub(super) sent_text: &'a str,
}

/// The front matter of an archive note.
#[derive(Debug, Serialize)]
pub(super) struct NoteFront<'a> {
    pub(super) id: &'a str,
    pub(super) note: &'a str,
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
    pub(super) fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// What the outbox watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEvent {
    /// `outbox/<id>.md` was created or written: it may still be half-written (wait until it
    /// stays quiet).
    Changed { id: String },
    /// `outbox/<id>.md` was closed after writing, or renamed into place: its writer is done.
    Written { id: String },
}

impl OutboxEvent {
    /// The request id the file is named after.
    pub fn id(&self) -> &str {
        match self {
            OutboxEvent::Changed { id } | OutboxEvent::Written { id } => id,
        }
    }
}
