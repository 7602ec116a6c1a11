//! Transactions: one per write, or one batch spanning many writes (see [`Store::batch`] and
//! [`Store::begin_batch`]).

use rusqlite::Connection;
use tracing::warn;

use super::{run, Store, StoreError};

impl Store {
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
            // Inside an open batch: all or nothing as a savepoint.
            run(&self.conn, "SAVEPOINT store_batch", "begin a nested batch")?;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
            if !matches!(result, Ok(Ok(_))) {
                let _ = run(&self.conn, "ROLLBACK TO store_batch", "roll back a batch");
            }
            run(&self.conn, "RELEASE store_batch", "end a nested batch")?;
            return match result {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
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

    /// Opens a batch that spans calls (the runner's way to commit API calls that arrive
    /// together at once): every write until [`Store::end_batch`] commits with it, as in
    /// [`Store::batch`]. Nothing written in it is durable before `end_batch` returns `Ok`.
    pub fn begin_batch(&mut self) -> Result<(), StoreError> {
        if self.in_batch {
            return Ok(());
        }
        self.begin()?;
        self.in_batch = true;
        Ok(())
    }

    /// Commits the batch [`Store::begin_batch`] opened. On an error nothing of it was stored.
    pub fn end_batch(&mut self) -> Result<(), StoreError> {
        if !self.in_batch {
            return Ok(());
        }
        self.in_batch = false;
        self.commit()
    }

    /// Runs one write: in its own transaction, or inside the open batch as a savepoint (so
    /// that it is all or nothing there too).
    pub(super) fn write<T>(
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
        if result.is_ok() {
            if let Some(c) = &self.checkpointer {
                c.wrote();
            }
        }
        result
    }

    fn rollback(&mut self) {
        if let Err(error) = run(&self.conn, "ROLLBACK", "roll back") {
            warn!(%error, "the store could not roll back a transaction");
        }
    }
}
