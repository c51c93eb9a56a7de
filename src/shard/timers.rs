//! Coarse per-shard deadlines (session pings, idle timeouts, stalled
//! writes, the closing linger), so a connection holds no timer of its own.
//!
//! A runtime timer costs hundreds of bytes per connection; here an entry
//! costs one `Rc` in a wheel bucket. Deadlines are rounded up to the next
//! tick (`tick_ms`) and fire at most one tick late, never early.
//!
//! The wheel knows nothing of what it wakes: an entry implements
//! [`Deadline`] (its [`DeadlineSlot`] and what firing means), so the
//! dependency points from the entry (a session's mailbox) to the wheel.
//!
//! Invariants: an entry has at most one live wheel position, the bucket its
//! slot names; positions in other buckets are stale and dropped when their
//! bucket comes due. A position that comes due before the entry's current
//! deadline (the deadline moved later) is re-inserted at that deadline
//! instead of firing. Setting a later deadline adds nothing; only an earlier
//! one adds a position.
//!
//! Pure state: the caller passes `now_ms` (from the shard's clock).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Marks "no wheel position" in a [`DeadlineSlot`].
const NO_BUCKET: u64 = u64::MAX;

/// The wheel's bookkeeping inside an entry: its deadline and its position.
#[derive(Debug)]
pub struct DeadlineSlot {
    /// The entry's next deadline, wall-clock ms (`u64::MAX`: none).
    due_ms: Cell<u64>,
    /// The bucket of the live wheel position, or [`NO_BUCKET`].
    bucket: Cell<u64>,
}

impl Default for DeadlineSlot {
    fn default() -> Self {
        Self { due_ms: Cell::new(u64::MAX), bucket: Cell::new(NO_BUCKET) }
    }
}

/// Something the wheel can wake.
pub trait Deadline {
    /// The entry's wheel bookkeeping.
    fn slot(&self) -> &DeadlineSlot;
    /// Called once when the entry's deadline has passed.
    fn fire(&self);
}

/// The wheel: bucket number (deadline / tick, rounded up) to the entries due then.
#[derive(Debug)]
pub struct Timers<T> {
    tick_ms: u64,
    wheel: RefCell<BTreeMap<u64, Vec<Rc<T>>>>,
}

impl<T: Deadline> Timers<T> {
    /// An empty wheel firing in steps of `tick_ms` (at least 1).
    pub fn new(tick_ms: u64) -> Self {
        Self { tick_ms: tick_ms.max(1), wheel: RefCell::new(BTreeMap::new()) }
    }

    /// The step deadlines are rounded up to.
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    fn bucket_of(&self, due_ms: u64) -> u64 {
        due_ms.div_ceil(self.tick_ms)
    }

    /// Sets `entry`'s deadline to `due_ms` (wall-clock milliseconds). When it
    /// passes, [`Deadline::fire`] is called.
    pub fn set_deadline(&self, entry: &Rc<T>, due_ms: u64) {
        let slot = entry.slot();
        slot.due_ms.set(due_ms);
        let bucket = self.bucket_of(due_ms);
        if slot.bucket.get() <= bucket {
            return;
        }
        slot.bucket.set(bucket);
        self.wheel.borrow_mut().entry(bucket).or_default().push(entry.clone());
    }

    /// Fires every deadline at or before `now_ms`; returns how many fired.
    pub fn fire_due(&self, now_ms: u64) -> usize {
        let mut fired = 0;
        loop {
            let due = {
                let mut wheel = self.wheel.borrow_mut();
                match wheel.first_key_value() {
                    Some((&bucket, _)) if bucket * self.tick_ms <= now_ms => wheel.pop_first(),
                    _ => None,
                }
            };
            let Some((bucket, entries)) = due else { return fired };
            for entry in entries {
                let slot = entry.slot();
                if slot.bucket.get() != bucket {
                    continue; // stale: the live position is elsewhere
                }
                slot.bucket.set(NO_BUCKET);
                let due_ms = slot.due_ms.get();
                if due_ms <= now_ms {
                    entry.fire();
                    fired += 1;
                } else {
                    self.set_deadline(&entry, due_ms);
                }
            }
        }
    }

    /// Wheel positions, live and stale.
    pub fn len(&self) -> usize {
        self.wheel.borrow().values().map(Vec::len).sum()
    }

    /// True when no position is waiting.
    pub fn is_empty(&self) -> bool {
        self.wheel.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test entry counting how often it fired.
    #[derive(Default)]
    struct Entry {
        slot: DeadlineSlot,
        fired: Cell<bool>,
    }

    impl Deadline for Entry {
        fn slot(&self) -> &DeadlineSlot {
            &self.slot
        }
        fn fire(&self) {
            self.fired.set(true);
        }
    }

    impl Entry {
        fn take_deadline(&self) -> bool {
            self.fired.replace(false)
        }
    }

    fn mailbox() -> Rc<Entry> {
        Rc::new(Entry::default())
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let timers = Timers::new(100);
        let session = mailbox();
        timers.set_deadline(&session, 1_050);
        assert_eq!(timers.fire_due(1_049), 0);
        assert!(!session.take_deadline());
        assert_eq!(timers.fire_due(1_100), 1, "rounded up to the next tick");
        assert!(session.take_deadline());
        assert!(timers.is_empty());
    }

    #[test]
    fn a_later_deadline_adds_nothing_and_is_honoured() {
        let timers = Timers::new(10);
        let session = mailbox();
        timers.set_deadline(&session, 100);
        timers.set_deadline(&session, 500);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.fire_due(100), 0, "moved later: re-inserted, not fired");
        assert!(!session.take_deadline());
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.fire_due(500), 1);
        assert!(session.take_deadline());
    }

    #[test]
    fn an_earlier_deadline_fires_once_and_the_stale_entry_is_dropped() {
        let timers = Timers::new(10);
        let session = mailbox();
        timers.set_deadline(&session, 500);
        timers.set_deadline(&session, 100);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.fire_due(100), 1);
        assert!(session.take_deadline());
        assert_eq!(timers.fire_due(1_000), 0, "the entry at 500 is stale");
        assert!(timers.is_empty());
    }

    #[test]
    fn many_sessions_fire_in_their_own_buckets() {
        let timers = Timers::new(1);
        let sessions: Vec<_> = (0..100).map(|_| mailbox()).collect();
        for (i, session) in sessions.iter().enumerate() {
            timers.set_deadline(session, 1_000 + i as u64);
        }
        assert_eq!(timers.fire_due(1_049), 50);
        assert_eq!(sessions.iter().filter(|s| s.take_deadline()).count(), 50);
        assert_eq!(timers.fire_due(2_000), 50);
    }
}
