//! Per partition, whether this node may write to its log now, and the log
//! sequence its next append must follow: shared by the writer threads
//! (which append) and the adopter (which catches a partition up).
//!
//! A partition is *ready* only while this node owns it and its local copy
//! is caught up with its log, with this node's fence after everything
//! appended before. The adopter makes it ready ([`UnitStates::ready`])
//! after setting the last sequence; any failed append makes it not ready
//! ([`UnitStates::unready`]), and it stays so until the adopter has
//! caught it up again (or dropped it, when the map gave it away).
//!
//! Invariants: only the writer thread of the partition's shard appends
//! while it is ready, and only the adopter changes it while it is not, so
//! `last_seq` has one writer at a time; `ready` is stored with Release
//! after `last_seq`, read with Acquire before it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One partition's state.
#[derive(Default)]
struct UnitState {
    ready: AtomicBool,
    last_seq: AtomicU64,
}

/// Every partition's state on this node.
pub struct UnitStates {
    units: Vec<UnitState>,
}

impl UnitStates {
    /// `unit_count` partitions, none ready.
    pub fn new(unit_count: usize) -> Self {
        Self { units: (0..unit_count).map(|_| UnitState::default()).collect() }
    }

    /// The number of partitions.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether there are none (never, for a cluster's map).
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Whether `unit` takes writes now.
    pub fn is_ready(&self, unit: usize) -> bool {
        self.units.get(unit).is_some_and(|state| state.ready.load(Ordering::Acquire))
    }

    /// The sequence `unit`'s next append must follow (valid while ready).
    pub fn last_seq(&self, unit: usize) -> u64 {
        self.units[unit].last_seq.load(Ordering::Acquire)
    }

    /// Records `unit`'s append at `seq` (the writer, while ready).
    pub fn appended(&self, unit: usize, seq: u64) {
        self.units[unit].last_seq.store(seq, Ordering::Release);
    }

    /// Makes `unit` ready, its next append following `last_seq`.
    pub fn ready(&self, unit: usize, last_seq: u64) {
        let state = &self.units[unit];
        state.last_seq.store(last_seq, Ordering::Release);
        state.ready.store(true, Ordering::Release);
    }

    /// Makes `unit` not ready; true if it was.
    pub fn unready(&self, unit: usize) -> bool {
        self.units.get(unit).is_some_and(|state| state.ready.swap(false, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_ready_between_adoption_and_its_first_failure() {
        let states = UnitStates::new(4);
        assert!(!states.is_ready(2) && !states.is_ready(99));
        states.ready(2, 17);
        assert!(states.is_ready(2));
        assert_eq!(states.last_seq(2), 17);
        states.appended(2, 18);
        assert_eq!(states.last_seq(2), 18);
        assert!(states.unready(2));
        assert!(!states.unready(2));
        assert!(!states.is_ready(2));
    }
}
