//! The store's records, its error, and the checks on what callers hand in.
//!
//! Everything here is plain data: no SQL, no I/O. The records that go out over the JSON API are
//! `Serialize` (times as RFC 3339, enums in lowercase); the ones that come in from it are also
//! `Deserialize`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The addressee of a message to everyone.
pub const ALL: &str = "all";
/// The longest name (sender, addressee, recipient) and pane id, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// The largest message content, in bytes: four times the largest request block, enough for a
/// pasted diff, small enough that one message never dominates the file.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// The largest `meta`, as JSON text, in bytes.
pub const MAX_META_BYTES: usize = 64 * 1024;
/// The most recipients one message may have.
pub const MAX_RECIPIENTS: usize = 256;
/// A delivery's `last_error` is cut to this many bytes (never refused: it comes from the daemon).
pub const MAX_ERROR_BYTES: usize = 4 * 1024;
/// How many messages a query returns when it does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// The most messages or deliveries one query returns; larger limits are cut to this.
pub const MAX_LIMIT: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Enums.

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Text for an agent's prompt.
    #[default]
    Chat,
    /// A key (such as `C-c`) the person sends to agents' panes; the content is the key name.
    Key,
    /// A note from the bridge itself.
    System,
    /// An answer to a worker's request (from `outbox/` or a controller backend).
    Answer,
    /// A request wrapped for a controller agent.
    Prompt,
    /// A notice from the bridge to one agent (a message it sent was refused).
    Notice,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::Key => "key",
            MessageKind::System => "system",
            MessageKind::Answer => "answer",
            MessageKind::Prompt => "prompt",
            MessageKind::Notice => "notice",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "chat" => MessageKind::Chat,
            "key" => MessageKind::Key,
            "system" => MessageKind::System,
            "answer" => MessageKind::Answer,
            "prompt" => MessageKind::Prompt,
            "notice" => MessageKind::Notice,
            _ => return None,
        })
    }
}

/// Where one delivery (one message to one recipient) stands.
///
/// The moves [`DeliveryStatus::can_become`] allows:
///
/// ```text
/// queued      -> delivering | held | failed
/// held        -> queued | delivering | failed
/// delivering  -> delivered | unconfirmed | failed | queued (nothing was typed)
/// unconfirmed -> delivered (seen later) | queued (a person asked to retry) | failed
/// failed      -> queued (retry)
/// delivered   -> nothing
/// ```
///
/// Text is typed only after the row is `delivering`, so a row that is `queued` was never typed,
/// and `delivered` is final: nothing delivered is queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for the recipient to turn idle.
    Queued,
    /// Being typed now. Found at start-up, it means the daemon died while typing.
    Delivering,
    /// Typed, and the submission was seen on screen.
    Delivered,
    /// Typed, but the submission was not seen; never retyped on a guess.
    Unconfirmed,
    /// Given up (the recipient left, the pane is gone, tmux refused).
    Failed,
    /// Waiting while the recipient is paused.
    Held,
}

impl DeliveryStatus {
    /// Every status, in the order [`Counts`] lists them.
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Delivering,
        DeliveryStatus::Delivered,
        DeliveryStatus::Unconfirmed,
        DeliveryStatus::Failed,
        DeliveryStatus::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Unconfirmed => "unconfirmed",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether a delivery may move from this status to `next` (see the table above).
    pub fn can_become(self, next: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        matches!(
            (self, next),
            (Queued, Delivering | Held | Failed)
                | (Held, Queued | Delivering | Failed)
                | (Delivering, Delivered | Unconfirmed | Failed | Queued)
                | (Unconfirmed, Delivered | Queued | Failed)
                | (Failed, Queued)
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A `<<CONTROLLER_REQUEST>>` block.
    Block,
    /// A heuristic: the worker went idle on a phrase such as "what would you like".
    Heuristic,
    /// A question asked through the API (an MCP tool call).
    Ask,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Block => "block",
            RequestKind::Heuristic => "heuristic",
            RequestKind::Ask => "ask",
        }
    }

    pub fn parse(s: &str) -> Option<RequestKind> {
        Some(match s {
            "block" => RequestKind::Block,
            "heuristic" => RequestKind::Heuristic,
            "ask" => RequestKind::Ask,
            _ => return None,
        })
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a worker's request stands: `detected -> asked -> answered -> delivered`, or
/// `fallback` (with the person) from `detected` or `asked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Detected, waiting for an answer (stored as `open`).
    Open,
    /// A controller backend is working on it.
    Asked,
    /// Answered (by a backend or a person); the answer waits to be typed.
    Answered,
    /// The answer was typed and submitted (or returned to the API caller).
    Delivered,
    /// Handed to the person after the backends could not answer.
    Fallback,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Asked => "asked",
            RequestStatus::Answered => "answered",
            RequestStatus::Delivered => "delivered",
            RequestStatus::Fallback => "fallback",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        Some(match s {
            "open" => RequestStatus::Open,
            "asked" => RequestStatus::Asked,
            "answered" => RequestStatus::Answered,
            "delivered" => RequestStatus::Delivered,
            "fallback" => RequestStatus::Fallback,
            _ => return None,
        })
    }

    /// Whether the request has its answer (typed or not).
    pub fn is_answered(self) -> bool {
        matches!(self, RequestStatus::Answered | RequestStatus::Delivered)
    }
}

/// How far the typing of a `delivering` row got, recorded before each step: `None`, nothing
/// may have been typed beyond (part of) the text; `Text`, the text was put in the prompt;
/// `Submit`, a submit key may have been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Text,
    Submit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Text => "text",
            Stage::Submit => "submit",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "text" => Stage::Text,
            "submit" => Stage::Submit,
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Records.

/// A message as the caller hands it in; the store gives it its id and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The sender's name.
    pub from: String,
    /// A name, or `all` (any case; stored as `all`).
    pub to: String,
    pub content: String,
    #[serde(default)]
    pub urgent: bool,
    /// Anything the caller wants kept with the message (JSON); `null` when there is nothing.
    #[serde(default)]
    pub meta: serde_json::Value,
    #[serde(default)]
    pub kind: MessageKind,
}

impl NewMessage {
    /// A plain chat message: not urgent, no meta.
    pub fn chat(from: &str, to: &str, content: &str) -> NewMessage {
        NewMessage {
            from: from.to_string(),
            to: to.to_string(),
            content: content.to_string(),
            urgent: false,
            meta: serde_json::Value::Null,
            kind: MessageKind::Chat,
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `m-YYYYMMDD-HHMMSS-NNNNNN` (UTC; `NNNNNN` counts within the second): unique, and sorts
    /// in the order the messages were stored.
    pub id: String,
    /// When it was stored, to the millisecond; never earlier than the message before it.
    pub ts: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub content: String,
    pub urgent: bool,
    pub meta: serde_json::Value,
    pub kind: MessageKind,
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery's own id, for [`Store::mark`](super::Store::mark).
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    /// The recipient's pane when the message was stored (such as `%3`), when it had one.
    pub pane: Option<String>,
    pub status: DeliveryStatus,
    /// How many times it went `delivering`.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The exact text typed (set when it went `delivering`).
    pub typed: Option<String>,
    /// How far the typing got.
    pub stage: Option<Stage>,
}

/// A message and what became of it for each recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageWithDeliveries {
    #[serde(flatten)]
    pub message: Message,
    pub deliveries: Vec<Delivery>,
}

/// A point in the message history: a message id, or a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cursor {
    /// An RFC 3339 time.
    Time(DateTime<Utc>),
    /// A message id.
    Id(String),
}

impl Cursor {
    /// An RFC 3339 time when `s` is one, else a message id.
    pub fn parse(s: &str) -> Cursor {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Cursor::Time(t.with_timezone(&Utc)),
            Err(_) => Cursor::Id(s.to_string()),
        }
    }
}

/// Which messages [`Store::history`](super::Store::history) returns.
///
/// `since` is exclusive for an id and inclusive for a time; `before` is exclusive for both.
/// With `since`, the first `limit` messages after it (to page forward); otherwise the last
/// `limit` messages (before `before`, when given). Either way, oldest first, newest last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryQuery {
    /// [`DEFAULT_LIMIT`] when `None`; cut to [`MAX_LIMIT`].
    pub limit: Option<usize>,
    pub before: Option<Cursor>,
    pub since: Option<Cursor>,
    /// Only messages from this name, to it, or to `all`.
    pub involving: Option<String>,
}

/// A worker's request, as mirrored from `inbox/` and `archive/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    /// The request id ([`is_valid_request_id`]), also the name of its mailbox files.
    pub id: String,
    pub pane: String,
    pub agent: String,
    pub kind: RequestKind,
    pub text: String,
    pub detected_at: DateTime<Utc>,
    pub status: RequestStatus,
    /// The backend or person that answered (`pane`, `exec`, `rules`, `person`…).
    pub answered_by: Option<String>,
    pub answer: Option<String>,
    /// The answer file as read from `outbox/` (so that a restart never takes it as new).
    pub answer_raw: Option<String>,
    /// What each backend did with it, in order ("rules: no rule matched", …).
    pub trail: Vec<String>,
    /// The tmux server the pane belonged to (pane ids start again at `%0` after a restart).
    pub server: String,
}

/// What [`Store::recover`](super::Store::recover) found at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Deliveries that were being typed when the daemon died (still `delivering`: the core
    /// looks at the pane to finish them).
    pub typing: Vec<Delivery>,
    /// Deliveries still waiting for their recipient.
    pub queued: u64,
    /// Deliveries waiting for a paused recipient.
    pub held: u64,
}

/// How many rows the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub messages: u64,
    pub requests: u64,
    pub deliveries: DeliveryCounts,
}

/// Deliveries by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub delivering: u64,
    pub delivered: u64,
    pub unconfirmed: u64,
    pub failed: u64,
    pub held: u64,
}

impl DeliveryCounts {
    pub fn get(&self, status: DeliveryStatus) -> u64 {
        match status {
            DeliveryStatus::Queued => self.queued,
            DeliveryStatus::Delivering => self.delivering,
            DeliveryStatus::Delivered => self.delivered,
            DeliveryStatus::Unconfirmed => self.unconfirmed,
            DeliveryStatus::Failed => self.failed,
            DeliveryStatus::Held => self.held,
        }
    }

    pub(super) fn slot(&mut self, status: DeliveryStatus) -> &mut u64 {
        match status {
            DeliveryStatus::Queued => &mut self.queued,
            DeliveryStatus::Delivering => &mut self.delivering,
            DeliveryStatus::Delivered => &mut self.delivered,
            DeliveryStatus::Unconfirmed => &mut self.unconfirmed,
            DeliveryStatus::Failed => &mut self.failed,
            DeliveryStatus::Held => &mut self.held,
        }
    }

    pub fn total(&self) -> u64 {
        DeliveryStatus::ALL.into_iter().map(|s| self.get(s)).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A store failure.
///
/// [`StoreError::is_bad_input`] tells the caller's mistakes (a bad name, an unknown id, a move
/// the delivery table forbids), after which the store is fine, from failures of the file or the
/// database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not an SQLite file, locked for too long, or a failure while setting it up.
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store {} has schema version {found}, and this macs-bridge knows versions up to \
         {supported}: run a newer macs-bridge, or use another state dir",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the store failed to {action}: {source}")]
    Sqlite {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("no message with id {id:?}")]
    NoSuchMessage { id: String },
    #[error("no delivery with id {id}")]
    NoSuchDelivery { id: i64 },
    #[error("delivery {id} is {from}: it cannot become {to}")]
    BadTransition {
        id: i64,
        from: DeliveryStatus,
        to: DeliveryStatus,
    },
    #[error("the store failed its integrity check: {}", problems.join("; "))]
    Corrupt { problems: Vec<String> },
}

impl StoreError {
    /// Whether the caller asked for something wrong; the store itself is fine.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::Invalid { .. }
                | StoreError::NoSuchMessage { .. }
                | StoreError::NoSuchDelivery { .. }
                | StoreError::BadTransition { .. }
        )
    }
}

/// Adds what the store was doing to an SQLite error.
pub(super) trait Context<T> {
    fn ctx(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { action, source })
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        what,
        reason: reason.into(),
    }
}

/// A name: 1 to [`MAX_NAME_BYTES`] bytes, without whitespace or control characters (a chat
/// line ends `@name` at whitespace).
pub(super) fn check_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(invalid(what, "it is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(
            what,
            format!("{} bytes, more than {MAX_NAME_BYTES}", name.len()),
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            what,
            format!("{name:?} holds whitespace or a control character"),
        ));
    }
    Ok(())
}

/// A name that stands for one party: a valid name, and not `all`.
pub(super) fn check_party(what: &'static str, name: &str) -> Result<(), StoreError> {
    check_name(what, name)?;
    if name.eq_ignore_ascii_case(ALL) {
        return Err(invalid(what, "`all` is not one party's name"));
    }
    Ok(())
}

/// A text field: at most `max` bytes, and not empty unless `may_be_empty`.
pub(super) fn check_text(
    what: &'static str,
    text: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), StoreError> {
    if !may_be_empty && text.trim().is_empty() {
        return Err(invalid(what, "it is empty"));
    }
    if text.len() > max {
        return Err(invalid(
            what,
            format!("{} bytes, more than the limit of {max}", text.len()),
        ));
    }
    Ok(())
}

/// Checks a new message; returns its addressee as stored (`all` in lowercase).
pub(super) fn check_message(m: &NewMessage) -> Result<String, StoreError> {
    check_party("sender name", &m.from)?;
    check_name("addressee name", &m.to)?;
    check_text("message content", &m.content, MAX_CONTENT_BYTES, false)?;
    Ok(if m.to.eq_ignore_ascii_case(ALL) {
        ALL.to_string()
    } else {
        m.to.clone()
    })
}

/// Checks the recipients of one message: valid, not `all`, each once, not too many.
pub(super) fn check_recipients(recipients: &[(String, Option<String>)]) -> Result<(), StoreError> {
    if recipients.len() > MAX_RECIPIENTS {
        return Err(invalid(
            "recipients",
            format!("{}, more than {MAX_RECIPIENTS}", recipients.len()),
        ));
    }
    for (i, (name, pane)) in recipients.iter().enumerate() {
        check_party("recipient name", name)?;
        if let Some(pane) = pane {
            check_name("pane id", pane)?;
        }
        if recipients[..i].iter().any(|(n, _)| n == name) {
            return Err(invalid("recipients", format!("{name:?} is listed twice")));
        }
    }
    Ok(())
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How many rows to ask for: `limit`, cut to [`MAX_LIMIT`].
pub(super) fn sql_limit(limit: usize) -> i64 {
    // MAX_LIMIT is small, so the cast cannot overflow.
    limit.min(MAX_LIMIT) as i64
}

/// The longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether `id` is a valid request id: 1 to [`MAX_REQUEST_ID_LEN`] ASCII letters, digits, `-`
/// or `_` (safe as a file name, easy to type).
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_never_leave_delivered_and_never_skip_delivering() {
        use DeliveryStatus::*;
        for next in DeliveryStatus::ALL {
            assert!(!Delivered.can_become(next), "delivered -> {next}");
        }
        for from in [Queued, Held, Failed] {
            assert!(!from.can_become(Delivered), "{from} -> delivered");
            assert!(!from.can_become(Unconfirmed), "{from} -> unconfirmed");
        }
        for s in DeliveryStatus::ALL {
            assert!(!s.can_become(s), "{s} -> {s}");
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        assert!(Delivering.can_become(Queued));
        assert!(Unconfirmed.can_become(Queued));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("n", "agent-1.b_c").is_ok());
        assert!(check_name("n", "").is_err());
        assert!(check_name("n", "a b").is_err());
        assert!(check_name("n", "a\u{7}").is_err());
        assert!(check_name("n", &"x".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_name("n", &"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(check_party("n", "ALL").is_err());
        assert!(check_name("n", "all").is_ok());
    }

    #[test]
    fn truncate_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn cursor_parses_times_and_ids() {
        assert!(matches!(
            Cursor::parse("2026-11-21T00:00:00Z"),
            Cursor::Time(_)
        ));
        assert_eq!(
            Cursor::parse("m-20261121-000000-000001"),
            Cursor::Id("m-20261121-000000-000001".into())
        );
        let q: HistoryQuery =
            serde_json::from_str(r#"{"since":"2026-11-21T00:00:00+01:00","before":"m-1"}"#)
                .unwrap();
        assert!(matches!(q.since, Some(Cursor::Time(_))));
        assert_eq!(q.before, Some(Cursor::Id("m-1".into())));
    }
}
