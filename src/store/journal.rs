//! The journal: every item the bridge types is a delivery row, and its typing is recorded step
//! by step *before* each step happens.
//!
//! ```text
//! queued ──begin_typing(text)──▶ delivering ──stage(Text)──▶ … ──stage(Submit)──▶ … ──▶ delivered
//!                                  (stage NULL: at most the text, or part of it, went out)
//!                                  (stage text: the whole text is in the prompt, no key sent)
//!                                  (stage submit: a submit key may have been sent)
//! ```
//!
//! After a crash a `delivering` row says exactly what may have reached the pane: before
//! `submit`, nothing was submitted, so the text is in the prompt (all or part of it) or
//! nowhere, and the core clears it and types it again, or submits it; at `submit`, an empty
//! prompt means the key was taken. The core decides by looking at the pane
//! (its recovery module); this module only records.

use rusqlite::{params, OptionalExtension};

use super::rows::{delivery_from_row, message_from_row};
use super::sql::*;
use super::types::Context;
use super::{Delivery, Message, Stage, Store, StoreError};

impl Store {
    /// Records that `delivery_id` is about to be typed, with the exact text (after sanitising):
    /// `delivering`, one more attempt, no stage. Commit this before the first keystroke.
    pub fn begin_typing(&mut self, delivery_id: i64, text: &str) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.write(|tx| {
            let n = tx
                .prepare_cached(BEGIN_TYPING)
                .ctx("prepare")?
                .execute(params![delivery_id, text, now])
                .ctx("start typing a delivery")?;
            if n == 1 {
                Ok(())
            } else {
                Err(StoreError::NoSuchDelivery { id: delivery_id })
            }
        })
    }

    /// Records how far the typing got; commit before the step it names.
    pub fn set_stage(&mut self, delivery_id: i64, stage: Stage) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.write(|tx| {
            tx.prepare_cached(SET_STAGE)
                .ctx("prepare")?
                .execute(params![delivery_id, stage, now])
                .ctx("record a typing stage")?;
            Ok(())
        })
    }

    /// One delivery with its message.
    pub fn delivery(&self, delivery_id: i64) -> Result<Option<(Delivery, Message)>, StoreError> {
        self.conn
            .prepare_cached(DELIVERY_WITH_MESSAGE)
            .ctx("prepare")?
            .query_row([delivery_id], |r| {
                Ok((
                    delivery_from_row(r, 0)?,
                    message_from_row(r, DELIVERY_COLS)?.1,
                ))
            })
            .optional()
            .ctx("read a delivery")
    }

    /// Every delivery being typed (`delivering`), with its message, in delivery order.
    pub fn typing(&self) -> Result<Vec<(Delivery, Message)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(TYPING_WITH_MESSAGES)
            .ctx("prepare")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    delivery_from_row(r, 0)?,
                    message_from_row(r, DELIVERY_COLS)?.1,
                ))
            })
            .ctx("read the deliveries being typed")?;
        rows.collect::<rusqlite::Result<_>>()
            .ctx("read the deliveries being typed")
    }

    /// How many deliveries wait `held` for a paused recipient.
    pub fn held_count(&self, recipient: &str) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached(HELD_COUNT)
            .ctx("prepare")?
            .query_row([recipient], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .ctx("count held deliveries")
    }
}
