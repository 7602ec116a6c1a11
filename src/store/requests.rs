//! The requests table: one record per request (`detected -> asked -> answered -> delivered`,
//! or `fallback`), with the backends' trail and the answer as taken.

use rusqlite::{params, OptionalExtension};

use super::rows::request_from_row;
use super::sql::*;
use super::types::{check_name, check_text, sql_limit, Context};
use super::{RequestRow, RequestStatus, Store, StoreError, MAX_CONTENT_BYTES, MAX_NAME_BYTES};

impl Store {
    /// Adds or replaces a request (by id).
    pub fn upsert_request(&mut self, r: &RequestRow) -> Result<(), StoreError> {
        if !super::types::is_valid_request_id(&r.id) {
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
        for step in &r.trail {
            check_text("trail", step, MAX_CONTENT_BYTES, false)?;
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
                    r.kind,
                    detected_ns,
                    r.status,
                    r.answered_by,
                    now,
                    r.text,
                    r.answer,
                    r.answer_raw,
                    r.trail.join("\n"),
                    r.server
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

    /// Requests not yet delivered, oldest first: what a restart picks up.
    pub fn active_requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(ACTIVE_REQUESTS).ctx("prepare")?;
        let rows = stmt.query_map([], request_from_row).ctx("read requests")?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .ctx("read requests")
    }

    /// Moves a request to `status`, adding `step` to its trail when given.
    pub fn set_request_status(
        &mut self,
        id: &str,
        status: RequestStatus,
        step: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(mut row) = self.request(id)? else {
            return Err(StoreError::Invalid {
                what: "request id",
                reason: format!("no request {id:?}"),
            });
        };
        row.status = status;
        if let Some(step) = step {
            row.trail.push(step.replace('\n', " "));
        }
        self.upsert_request(&row)
    }
}
