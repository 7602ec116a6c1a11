//! The store's SQL: every statement is a constant, prepared once per connection
//! (`prepare_cached`).

use super::{DeliveryStatus, MAX_RECIPIENTS};

/// The columns [`delivery_from_row`] reads, from `deliveries d` joined with `messages m`.
macro_rules! delivery_cols {
    () => {
        "d.id, d.recipient, d.pane, d.status, d.attempts, d.last_error, \
         d.created_ms, d.updated_ms, d.delivered_ms, m.id, d.typed, d.stage"
    };
}
pub(super) const DELIVERY_COLS: usize = 12;

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
pub(super) const DELIVERY_SLOTS: i64 = MAX_RECIPIENTS as i64;

pub(super) const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (id, ts_ms, sender, addressee, kind, urgent, content, meta) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
pub(super) const INSERT_DELIVERY: &str = "INSERT INTO deliveries \
     (id, message_seq, recipient, pane, status, created_ms, updated_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
pub(super) const NEXT_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.recipient = ?1 AND d.status = 'queued' AND d.status <> 'delivered' \
     ORDER BY d.id LIMIT ?2"
);
pub(super) const NEXT_WITH_MESSAGES: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    ", ",
    message_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.recipient = ?1 AND d.status = 'queued' AND d.status <> 'delivered' \
     ORDER BY d.id LIMIT ?2"
);
/// The deliveries of one message: ids from `seq * DELIVERY_SLOTS` (`?1`) to the next message's.
pub(super) const DELIVERIES_OF: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq \
     WHERE d.id >= ?1 AND d.id < ?2 ORDER BY d.id"
);
pub(super) const DELIVERIES_IN_STATUS: &str = concat!(
    recipients_cte!(),
    "SELECT ",
    delivery_cols!(),
    " FROM names CROSS JOIN deliveries d \
     ON d.recipient = names.name AND d.status = ?1 AND d.status <> 'delivered' \
     CROSS JOIN messages m ON m.seq = d.message_seq ORDER BY d.id"
);
pub(super) const COUNT_IN_STATUS: &str = concat!(
    recipients_cte!(),
    "SELECT count(*) FROM names CROSS JOIN deliveries d \
     ON d.recipient = names.name AND d.status = ?1 AND d.status <> 'delivered'"
);
pub(super) const PENDING_RECIPIENTS: &str = concat!(
    recipients_cte!(),
    "SELECT name FROM names WHERE name IS NOT NULL AND (\
        EXISTS (SELECT 1 FROM deliveries WHERE recipient = names.name AND status = 'queued' \
                AND status <> 'delivered') \
     OR EXISTS (SELECT 1 FROM deliveries WHERE recipient = names.name AND status = 'held' \
                AND status <> 'delivered'))"
);
pub(super) const DELIVERY_STATUS: &str = "SELECT status FROM deliveries WHERE id = ?1";
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
pub(super) fn update_delivery_sql(to: DeliveryStatus) -> &'static str {
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
pub(super) const MOVE_RECIPIENT: &str = "UPDATE deliveries SET status = ?3, updated_ms = ?4 \
     WHERE recipient = ?1 AND status = ?2 AND status <> 'delivered'";
pub(super) const SET_PAUSE: &str =
    "INSERT INTO pauses (recipient, paused, updated_ms) VALUES (?1, ?2, ?3) \
     ON CONFLICT (recipient) DO UPDATE SET paused = excluded.paused, \
     updated_ms = excluded.updated_ms";
pub(super) const PAUSED: &str = "SELECT recipient FROM pauses WHERE paused = 1 ORDER BY recipient";
pub(super) const SEQ_OF_ID: &str = "SELECT seq FROM messages WHERE id = ?1";
/// The first message at or after a time. `ts_ms` never decreases along `seq` ([`ids`]), so this
/// is where a time bound falls in `seq`.
pub(super) const FIRST_SEQ_AT: &str =
    "SELECT seq FROM messages WHERE ts_ms >= ?1 ORDER BY ts_ms, seq LIMIT 1";
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
pub(super) const MESSAGES_FORWARD: &str = select_messages!("ASC");
pub(super) const MESSAGES_BACKWARD: &str = select_messages!("DESC");
pub(super) const LAST_MESSAGE: &str = "SELECT (SELECT max(ts_ms) FROM messages), \
     (SELECT id FROM messages ORDER BY seq DESC LIMIT 1)";
pub(super) const UPSERT_REQUEST: &str = "INSERT INTO requests \
     (id, pane, agent, kind, detected_ns, status, answered_by, updated_ms, text, answer, \
      answer_raw, trail, server) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
     ON CONFLICT (id) DO UPDATE SET pane = excluded.pane, agent = excluded.agent, \
     kind = excluded.kind, detected_ns = excluded.detected_ns, status = excluded.status, \
     answered_by = excluded.answered_by, updated_ms = excluded.updated_ms, \
     text = excluded.text, answer = excluded.answer, answer_raw = excluded.answer_raw, \
     trail = excluded.trail, server = excluded.server";
macro_rules! request_cols {
    () => {
        "id, pane, agent, kind, detected_ns, status, answered_by, text, answer, answer_raw, trail, \
         server"
    };
}
/// Requests still in flight (not delivered), oldest first.
pub(super) const ACTIVE_REQUESTS: &str = concat!(
    "SELECT ",
    request_cols!(),
    " FROM requests WHERE status <> 'delivered' ORDER BY detected_ns, id"
);
/// Starts typing a delivery: `delivering`, one more attempt, the exact text, no stage yet.
pub(super) const BEGIN_TYPING: &str = "UPDATE deliveries SET status = 'delivering', \
     attempts = attempts + 1, typed = ?2, stage = NULL, updated_ms = ?3 \
     WHERE id = ?1 AND (status = 'queued' OR status = 'held' OR status = 'delivering' \
     OR status = 'unconfirmed' OR status = 'failed')";
/// Records how far the typing of a `delivering` row got.
pub(super) const SET_STAGE: &str = "UPDATE deliveries SET stage = ?2, updated_ms = ?3 \
     WHERE id = ?1 AND status = 'delivering'";
/// One delivery with its message.
pub(super) const DELIVERY_WITH_MESSAGE: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    ", ",
    message_cols!(),
    " FROM deliveries d CROSS JOIN messages m ON m.seq = d.message_seq WHERE d.id = ?1"
);
/// Every `delivering` row with its message, in delivery order.
pub(super) const TYPING_WITH_MESSAGES: &str = concat!(
    recipients_cte!(),
    "SELECT ",
    delivery_cols!(),
    ", ",
    message_cols!(),
    " FROM names CROSS JOIN deliveries d \
     ON d.recipient = names.name AND d.status = 'delivering' AND d.status <> 'delivered' \
     CROSS JOIN messages m ON m.seq = d.message_seq ORDER BY d.id"
);
pub(super) const GET_REQUEST: &str =
    concat!("SELECT ", request_cols!(), " FROM requests WHERE id = ?1");
pub(super) const RECENT_REQUESTS: &str = concat!(
    "SELECT ",
    request_cols!(),
    " FROM requests ORDER BY detected_ns DESC, id DESC LIMIT ?1"
);
pub(super) const COUNT_MESSAGES: &str = "SELECT count(*) FROM messages";
pub(super) const COUNT_REQUESTS: &str = "SELECT count(*) FROM requests";
pub(super) const COUNT_DELIVERIES: &str = "SELECT status, count(*) FROM deliveries GROUP BY status";

/// A paused recipient's held deliveries.
pub(super) const HELD_COUNT: &str = "SELECT count(*) FROM deliveries \
     WHERE recipient = ?1 AND status = 'held' AND status <> 'delivered'";
