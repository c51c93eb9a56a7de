//! Which of this node's partitions are frozen (a move is copying them),
//! and how many owner-side calls run in each: shared by the node's shards.
//!
//! The handshake that makes a freeze safe, with sequentially consistent
//! atomics on both sides: a call first counts itself in
//! ([`Freezer::enter`]), then looks at the frozen flag and backs out if it
//! is set; a move first sets the flag ([`Freezer::freeze`]), then waits
//! for the count to reach zero ([`Freezer::busy`]). Either the call saw the
//! flag, or the move sees the call and waits for it. So once a move has
//! seen zero, no write of an owner-side call can land in the partition
//! until it thaws.
//!
//! Invariants: counts never underflow (a guard releases exactly what it
//! took); a frozen partition stays frozen until [`Freezer::thaw`].

use crate::shard::place::UnitGuard;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Frozen flags and running calls, per partition.
pub struct Freezer {
    frozen: Vec<AtomicBool>,
    busy: Vec<AtomicU32>,
}

impl Freezer {
    /// Nothing frozen, nothing running, for `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        Self {
            frozen: (0..partitions).map(|_| AtomicBool::new(false)).collect(),
            busy: (0..partitions).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Counts a call into `unit`; `None` (nothing counted) when it is frozen.
    pub fn enter(self: &Arc<Self>, unit: usize) -> Option<UnitGuard> {
        self.busy[unit].fetch_add(1, Ordering::SeqCst);
        if self.frozen[unit].load(Ordering::SeqCst) {
            self.busy[unit].fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let freezer = self.clone();
        Some(UnitGuard::new(move || {
            freezer.busy[unit].fetch_sub(1, Ordering::SeqCst);
        }))
    }

    /// Whether `unit` is frozen.
    pub fn is_frozen(&self, unit: usize) -> bool {
        self.frozen[unit].load(Ordering::SeqCst)
    }

    /// Freezes `unit`: calls entering from now on back out.
    pub fn freeze(&self, unit: usize) {
        self.frozen[unit].store(true, Ordering::SeqCst);
    }

    /// Thaws `unit`.
    pub fn thaw(&self, unit: usize) {
        self.frozen[unit].store(false, Ordering::SeqCst);
    }

    /// Calls running in `unit` now.
    pub fn busy(&self, unit: usize) -> u32 {
        self.busy[unit].load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_unit_refuses_calls_and_counts_only_the_running_ones() {
        let freezer = Arc::new(Freezer::new(4));
        let first = freezer.enter(2).expect("not frozen");
        let second = freezer.enter(2).expect("not frozen");
        assert_eq!(freezer.busy(2), 2);
        freezer.freeze(2);
        assert!(freezer.enter(2).is_none());
        assert_eq!(freezer.busy(2), 2, "a refused call leaves no count");
        assert!(freezer.enter(3).is_some(), "other units are not frozen");
        drop((first, second));
        assert_eq!(freezer.busy(2), 0);
        freezer.thaw(2);
        assert!(!freezer.is_frozen(2));
        assert!(freezer.enter(2).is_some());
    }

    #[test]
    fn racing_calls_and_a_freeze_never_leave_a_call_unseen() {
        // Many threads enter and leave while the main thread freezes: once
        // it has seen zero, no guard may be held.
        for _ in 0..20 {
            let freezer = Arc::new(Freezer::new(1));
            let held = Arc::new(AtomicU32::new(0));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (freezer, held) = (freezer.clone(), held.clone());
                    std::thread::spawn(move || {
                        for _ in 0..2_000 {
                            if let Some(guard) = freezer.enter(0) {
                                held.fetch_add(1, Ordering::SeqCst);
                                held.fetch_sub(1, Ordering::SeqCst);
                                drop(guard);
                            }
                        }
                    })
                })
                .collect();
            freezer.freeze(0);
            while freezer.busy(0) > 0 {
                std::hint::spin_loop();
            }
            assert_eq!(held.load(Ordering::SeqCst), 0);
            threads.into_iter().for_each(|thread| thread.join().unwrap());
        }
    }
}
