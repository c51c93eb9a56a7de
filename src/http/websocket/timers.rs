//! Coarse per-shard deadlines for sessions (pings, idle timeouts, stalled
//! writes, the closing linger), so a connection holds no timer of its own.
//!
//! A runtime timer costs hundreds of bytes per connection; here a session
//! costs one `Rc` in a wheel bucket. Deadlines are rounded up to the next
//! tick (`tick_ms`) and fire at most one tick late, never early.
//!
//! Invariants: a mailbox has at most one live wheel entry, the one in the
//! bucket its `timer_bucket` names; entries in other buckets are stale and
//! dropped when their bucket comes due. An entry that comes due before the
//! session's current deadline (the deadline moved later) is re-inserted at
//! that deadline instead of firing. Setting a later deadline adds nothing;
//! only an earlier one adds an entry.

use crate::http::websocket::mailbox::Mailbox;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Marks "no wheel entry" in [`Mailbox`]'s timer bucket.
pub const NO_BUCKET: u64 = u64::MAX;

/// The wheel: bucket number (deadline / tick, rounded up) to the sessions due then.
#[derive(Debug)]
pub struct SessionTimers {
    tick_ms: u64,
    wheel: RefCell<BTreeMap<u64, Vec<Rc<Mailbox>>>>,
}

impl SessionTimers {
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

    /// Sets `mailbox`'s deadline to `due_ms` (wall-clock milliseconds). When
    /// it passes, the mailbox's deadline flag is set and its task woken.
    pub fn set_deadline(&self, mailbox: &Rc<Mailbox>, due_ms: u64) {
        mailbox.due_ms.set(due_ms);
        let bucket = self.bucket_of(due_ms);
        if mailbox.timer_bucket.get() <= bucket {
            return;
        }
        mailbox.timer_bucket.set(bucket);
        self.wheel.borrow_mut().entry(bucket).or_default().push(mailbox.clone());
    }

    /// Fires every deadline at or before `now_ms`; returns how many fired.
    pub fn fire_due(&self, now_ms: u64) -> usize {
        let mut fired = 0;
        loop {
            let due = {
                let mut wheel = self.wheel.borrow_mut();
                match wheel.first_key_value() {
                    Some((&bucket, _)) if bucket * self.tick_ms <= now_ms => {
                        wheel.pop_first().map(|(bucket, entries)| (bucket, entries))
                    }
                    _ => None,
                }
            };
            let Some((bucket, entries)) = due else { return fired };
            for mailbox in entries {
                if mailbox.timer_bucket.get() != bucket {
                    continue; // stale: the live entry is elsewhere
                }
                mailbox.timer_bucket.set(NO_BUCKET);
                let due_ms = mailbox.due_ms.get();
                if due_ms <= now_ms {
                    mailbox.fire_deadline();
                    fired += 1;
                } else {
                    self.set_deadline(&mailbox, due_ms);
                }
            }
        }
    }

    /// Wheel entries, live and stale.
    pub fn len(&self) -> usize {
        self.wheel.borrow().values().map(Vec::len).sum()
    }

    /// True when no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.wheel.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> Rc<Mailbox> {
        Rc::new(Mailbox::new(4))
    }

    #[test]
    fn fires_at_or_after_the_deadline_never_before() {
        let timers = SessionTimers::new(100);
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
        let timers = SessionTimers::new(10);
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
        let timers = SessionTimers::new(10);
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
        let timers = SessionTimers::new(1);
        let sessions: Vec<_> = (0..100).map(|_| mailbox()).collect();
        for (i, session) in sessions.iter().enumerate() {
            timers.set_deadline(session, 1_000 + i as u64);
        }
        assert_eq!(timers.fire_due(1_049), 50);
        assert_eq!(sessions.iter().filter(|s| s.take_deadline()).count(), 50);
        assert_eq!(timers.fire_due(2_000), 50);
    }
}
