//! Delivery receipts this shard's acknowledgements owe, gathered over a
//! short window (`receipt_window_ms`) so that a sender hears of many
//! deliveries through one stored receipt instead of one per loop turn.
//!
//! Invariants: every acknowledged envelope's timestamp is taken out exactly
//! once, under its (acknowledging device, sender account) pair, in the order
//! the acknowledgements came; pairs come out in the order they first
//! appeared in the window. Bounded: at most `timestamps_max` timestamps are
//! held; past that [`ReceiptWindow::add`] says the window must be flushed
//! now. Pure state: no clock (the shard's loop times the window), no I/O.

use crate::accounts::AuthedDevice;
use crate::store::messages::ReceiptTo;
use std::cell::RefCell;
use std::collections::HashMap;
use uuid::Uuid;

/// The receipts owed by one device to one sender: its timestamps.
pub type Owed = (AuthedDevice, Uuid, Vec<u64>);

/// What the caller must do after [`ReceiptWindow::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The window was empty: start its timer.
    Opened,
    /// The window's timer is already running.
    Joined,
    /// The window is at its bound: flush it now.
    Full,
}

#[derive(Debug, Default)]
struct Held {
    owed: Vec<Owed>,
    /// Index in `owed` of each pair.
    index: HashMap<(AuthedDevice, Uuid), usize>,
    timestamps: usize,
}

/// The shard's open receipt window.
#[derive(Debug)]
pub struct ReceiptWindow {
    held: RefCell<Held>,
    timestamps_max: usize,
}

impl ReceiptWindow {
    /// An empty window holding at most `timestamps_max` timestamps.
    pub fn new(timestamps_max: usize) -> Self {
        Self { held: RefCell::default(), timestamps_max: timestamps_max.max(1) }
    }

    /// Adds the receipts `acker`'s acknowledgements owe.
    pub fn add(&self, acker: AuthedDevice, due: impl IntoIterator<Item = ReceiptTo>) -> Added {
        let mut held = self.held.borrow_mut();
        let was_empty = held.owed.is_empty();
        for to in due {
            let Held { owed, index, timestamps } = &mut *held;
            let at = *index.entry((acker, to.account)).or_insert_with(|| {
                owed.push((acker, to.account, Vec::new()));
                owed.len() - 1
            });
            owed[at].2.push(to.timestamp);
            *timestamps += 1;
        }
        if held.timestamps >= self.timestamps_max {
            Added::Full
        } else if was_empty && !held.owed.is_empty() {
            Added::Opened
        } else {
            Added::Joined
        }
    }

    /// Takes everything held (the window closes).
    pub fn take(&self) -> Vec<Owed> {
        let mut held = self.held.borrow_mut();
        held.index.clear();
        held.timestamps = 0;
        std::mem::take(&mut held.owed)
    }

    /// True when nothing is held (for tests: the shard only adds and takes).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.held.borrow().owed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u128) -> AuthedDevice {
        AuthedDevice { account: Uuid::from_u128(n), device_id: 1 }
    }

    fn to(account: u128, timestamp: u64) -> ReceiptTo {
        ReceiptTo { account: Uuid::from_u128(account), timestamp }
    }

    #[test]
    fn one_entry_per_device_and_sender_with_every_timestamp_once_in_ack_order() {
        let window = ReceiptWindow::new(100);
        assert!(window.is_empty());
        assert_eq!(window.add(device(1), [to(7, 10), to(8, 20)]), Added::Opened);
        assert_eq!(window.add(device(1), [to(7, 11)]), Added::Joined);
        assert_eq!(window.add(device(2), [to(7, 30)]), Added::Joined);
        assert_eq!(window.add(device(1), [to(7, 12)]), Added::Joined);
        let owed = window.take();
        assert_eq!(
            owed,
            vec![
                (device(1), Uuid::from_u128(7), vec![10, 11, 12]),
                (device(1), Uuid::from_u128(8), vec![20]),
                (device(2), Uuid::from_u128(7), vec![30]),
            ]
        );
        assert!(window.is_empty());
        assert!(window.take().is_empty(), "taken once");
        assert_eq!(window.add(device(1), [to(7, 13)]), Added::Opened, "a new window");
        assert_eq!(window.take(), vec![(device(1), Uuid::from_u128(7), vec![13])]);
    }

    #[test]
    fn nothing_owed_opens_nothing_and_the_bound_asks_for_a_flush() {
        let window = ReceiptWindow::new(3);
        assert_eq!(window.add(device(1), []), Added::Joined);
        assert!(window.is_empty());
        assert_eq!(window.add(device(1), [to(7, 1), to(7, 2)]), Added::Opened);
        assert_eq!(window.add(device(1), [to(7, 3)]), Added::Full);
        assert_eq!(window.take()[0].2, vec![1, 2, 3]);
    }
}
