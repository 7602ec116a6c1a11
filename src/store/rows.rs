//! Rows to records: how each table's columns become the store's types, and how the enums are
//! stored (as their lowercase names).

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Type, ValueRef};
use rusqlite::Row;

use super::{
    Delivery, DeliveryStatus, Message, MessageKind, RequestKind, RequestRow, RequestStatus, Stage,
};

/// A `count(*)`, which SQLite gives as a signed integer that is never negative.
pub(super) fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn time_ms(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| bad_value(format!("time {ms} ms")))
}

pub(super) fn bad_value(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        Type::Integer,
        format!("not a valid value: {what}").into(),
    )
}

pub(super) fn delivery_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Delivery> {
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
        typed: r.get(at + 10)?,
        stage: r.get(at + 11)?,
    })
}

/// A message and its `seq`.
pub(super) fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<(i64, Message)> {
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

pub(super) fn request_from_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    let kind: RequestKind = r.get(3)?;
    let trail: String = r.get(10)?;
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
        answer_raw: r.get(9)?,
        server: r.get(11)?,
        trail: trail
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
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
sql_text_enum!(RequestKind, "request kind");
sql_text_enum!(Stage, "typing stage");
