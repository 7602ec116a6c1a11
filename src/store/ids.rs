//! Message ids and times: `m-YYYYMMDD-HHMMSS-NNNNNN`, unique and sorting in storage order.
//!
//! The clock here never goes back: a message's time is the wall clock, or the previous message's
//! time when the wall clock is behind it (after an NTP step, or a restart on a machine whose
//! clock is late). `NNNNNN` counts the messages within that second, from 1; in the unlikely
//! case of a millionth message in one second, the time moves on to the next second. So the ids,
//! the times and the order of storage always agree, and a query by time or by id gives the same
//! messages in the same order.

use chrono::DateTime;

/// The largest counter within one second.
const MAX_COUNTER: u32 = 999_999;

/// Hands out message ids and times.
#[derive(Debug, Clone, Default)]
pub(super) struct IdClock {
    /// The time of the last id handed out, in unix milliseconds (`None` before the first).
    last_ms: Option<i64>,
    /// The counter of the last id, within the second of `last_ms`.
    counter: u32,
}

impl IdClock {
    /// Continues after the newest stored message: its time and id. An id that does not end in
    /// a counter makes the next id start a new second, which keeps ids unique and sorted.
    pub fn after(last_ms: i64, last_id: &str) -> IdClock {
        let counter = last_id
            .rsplit('-')
            .next()
            .filter(|c| c.len() == 6)
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(MAX_COUNTER);
        IdClock {
            last_ms: Some(last_ms),
            counter,
        }
    }

    /// The time (unix ms) and id of the next message, given the wall clock `now_ms`; `None`
    /// when that time cannot be written as a date (years before 1 or after 9999).
    pub fn next(&mut self, now_ms: i64) -> Option<(i64, String)> {
        let mut ms = match self.last_ms {
            Some(last) => now_ms.max(last),
            None => now_ms,
        };
        let same_second = self
            .last_ms
            .is_some_and(|last| last.div_euclid(1000) == ms.div_euclid(1000));
        let mut counter = if same_second { self.counter + 1 } else { 1 };
        if counter > MAX_COUNTER {
            ms = (ms.div_euclid(1000) + 1) * 1000;
            counter = 1;
        }
        let at = DateTime::from_timestamp_millis(ms)?;
        let id = format!("m-{}-{counter:06}", at.format("%Y%m%d-%H%M%S"));
        if id.len() != 24 {
            return None; // a year with more or fewer than four digits would not sort
        }
        self.last_ms = Some(ms);
        self.counter = counter;
        Some((ms, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000_000; // 2026-11-18T...

    #[test]
    fn ids_count_within_a_second_and_restart_in_the_next() {
        let mut c = IdClock::default();
        let (ms, a) = c.next(T + 5).unwrap();
        assert_eq!(ms, T + 5);
        assert!(a.starts_with("m-2026"), "{a}");
        assert!(a.ends_with("-000001"), "{a}");
        let (_, b) = c.next(T + 6).unwrap();
        assert!(b.ends_with("-000002"), "{b}");
        let (_, d) = c.next(T + 1000).unwrap();
        assert!(d.ends_with("-000001"), "{d}");
        assert!(a < b && b < d);
    }

    #[test]
    fn a_clock_going_back_keeps_times_and_ids_in_order() {
        let mut c = IdClock::default();
        let (t1, a) = c.next(T + 900).unwrap();
        let (t2, b) = c.next(T - 60_000).unwrap();
        assert_eq!(t1, t2);
        assert!(a < b, "{a} {b}");
        let (t3, d) = c.next(T + 2000).unwrap();
        assert!(t3 > t2 && b < d);
    }

    #[test]
    fn a_full_second_moves_on_to_the_next() {
        let mut c = IdClock::after(T, &format!("m-x-{MAX_COUNTER}"));
        let (ms, id) = c.next(T).unwrap();
        assert_eq!(ms, (T / 1000 + 1) * 1000);
        assert!(id.ends_with("-000001"));
        let old = format!(
            "m-{}-{MAX_COUNTER}",
            DateTime::from_timestamp_millis(T)
                .unwrap()
                .format("%Y%m%d-%H%M%S")
        );
        assert!(old < id);
    }

    #[test]
    fn continuing_after_a_stored_id_or_a_strange_one() {
        let mut c = IdClock::after(T, "m-20261118-000000-000041");
        let (_, id) = c.next(T).unwrap();
        assert!(id.ends_with("-000042"), "{id}");
        let mut c = IdClock::after(T, "imported");
        let (ms, _) = c.next(T).unwrap();
        assert_eq!(ms, (T / 1000 + 1) * 1000);
    }

    #[test]
    fn absurd_clocks_give_none() {
        assert!(IdClock::default().next(i64::MAX).is_none());
        assert!(IdClock::default().next(-70_000_000_000_000).is_none());
    }
}
