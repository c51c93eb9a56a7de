//! Aggregating a warning that can repeat many times a second (a queue over
//! its cap trimmed on every insert), so the log stays readable: the first
//! occurrence is logged at once, later ones are counted and folded into one
//! line per interval. The metrics keep the exact counts; this only decides
//! when a line is due.
//!
//! Pure state: the caller passes `now_ms` (from the shard's clock).

use std::cell::Cell;

/// What a due log line summarises: every occurrence since the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Occurrences folded into this line (at least 1).
    pub occurrences: u64,
    /// Sum of the amounts noted with them (e.g. envelopes trimmed).
    pub amount: u64,
}

/// One kind of repeated warning.
#[derive(Debug)]
pub struct RepeatedWarning {
    interval_ms: u64,
    /// When the last line was logged (`None`: never).
    last_logged_ms: Cell<Option<u64>>,
    occurrences: Cell<u64>,
    amount: Cell<u64>,
}

impl RepeatedWarning {
    /// A warning logged at most once per `interval_ms`.
    pub fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            last_logged_ms: Cell::new(None),
            occurrences: Cell::new(0),
            amount: Cell::new(0),
        }
    }

    /// Notes one occurrence of `amount`; returns the summary to log when a
    /// line is due (the first occurrence, or the first one an interval after
    /// the last line), else `None` (it is counted into the next line).
    pub fn note(&self, now_ms: u64, amount: u64) -> Option<Summary> {
        self.occurrences.set(self.occurrences.get() + 1);
        self.amount.set(self.amount.get() + amount);
        let due = self
            .last_logged_ms
            .get()
            .is_none_or(|last_ms| now_ms.saturating_sub(last_ms) >= self.interval_ms);
        if !due {
            return None;
        }
        self.last_logged_ms.set(Some(now_ms));
        Some(Summary { occurrences: self.occurrences.replace(0), amount: self.amount.replace(0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn a_flood_makes_one_line_per_interval_with_exact_counts() {
        let clock = Clock::manual(1_000);
        let warning = RepeatedWarning::new(10_000);
        assert_eq!(warning.note(clock.now_ms(), 3), Some(Summary { occurrences: 1, amount: 3 }));
        let mut lines = 0;
        for _ in 0..1_000 {
            clock.advance_ms(5);
            lines += usize::from(warning.note(clock.now_ms(), 2).is_some());
        }
        // 5 s of flood: still inside the first interval.
        assert_eq!(lines, 0);
        clock.advance_ms(5_000);
        let summary = warning.note(clock.now_ms(), 2).expect("an interval passed");
        assert_eq!(summary, Summary { occurrences: 1_001, amount: 2_002 });
        assert_eq!(warning.note(clock.now_ms(), 1), None);
    }
}
