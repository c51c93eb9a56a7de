//! Stored envelopes per device on this shard, counted in memory (from the
//! store at start-up, then on every store and delete) so the per-device cap
//! is checked without touching the disk.
//!
//! Invariants: a device with no stored envelope has no entry (the map does
//! not grow with devices that once had mail); counts never go below zero. A
//! count can only over-count (a redelivered ack racing a trim), which
//! delays a trim and never causes one early.

use crate::accounts::AuthedDevice;
use std::cell::RefCell;
use std::collections::HashMap;

/// Envelope counts by device.
#[derive(Debug, Default)]
pub struct QueueLens {
    by_device: RefCell<HashMap<AuthedDevice, u32>>,
}

impl QueueLens {
    /// Counts loaded from the store.
    pub fn new(counts: HashMap<AuthedDevice, u32>) -> Self {
        Self { by_device: RefCell::new(counts) }
    }

    /// Records one envelope stored for `device`; returns its queue length.
    pub fn add_one(&self, device: AuthedDevice) -> u32 {
        let mut lens = self.by_device.borrow_mut();
        let len = lens.entry(device).or_insert(0);
        *len += 1;
        *len
    }

    /// Records `count` envelopes of `device` deleted.
    pub fn remove(&self, device: AuthedDevice, count: u32) {
        let mut lens = self.by_device.borrow_mut();
        if let Some(len) = lens.get_mut(&device) {
            *len = len.saturating_sub(count);
            if *len == 0 {
                lens.remove(&device);
            }
        }
    }

    /// Sets the counts of devices whose envelopes moved in.
    pub fn insert_loaded(&self, counts: impl IntoIterator<Item = (AuthedDevice, u32)>) {
        self.by_device.borrow_mut().extend(counts.into_iter().filter(|(_, len)| *len > 0));
    }

    /// Keeps only the devices `keep` says yes to.
    pub fn retain(&self, keep: impl Fn(&AuthedDevice) -> bool) {
        self.by_device.borrow_mut().retain(|device, _| keep(device));
    }

    /// The queue length of `device`.
    pub fn len_of(&self, device: &AuthedDevice) -> u32 {
        self.by_device.borrow().get(device).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn counts_rise_fall_and_empty_devices_leave_no_entry() {
        let lens = QueueLens::default();
        let device = AuthedDevice { account: Uuid::new_v4(), device_id: 1 };
        assert_eq!(lens.add_one(device), 1);
        assert_eq!(lens.add_one(device), 2);
        lens.remove(device, 5);
        assert_eq!(lens.len_of(&device), 0);
        assert!(lens.by_device.borrow().is_empty());
        lens.remove(device, 1);
        assert_eq!(lens.len_of(&device), 0, "never below zero");
    }
}
