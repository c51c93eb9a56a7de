//! When to push, per device (Signal's rules; every interval from config):
//!
//! - an urgent envelope stored for a device with no live session: an alert
//!   push now, unless one was sent within `alert_coalesce_ms` (coalesced);
//! - a non-urgent one: a background push, at most one per
//!   `background_interval_ms`;
//! - a session that closes with envelopes queued: an alert push
//!   `after_close_delay_ms` later, unless the device connects first;
//! - a connect (or a REST fetch) cancels what is pending and reopens the
//!   alert window (the device has seen everything).
//!
//! Pure: the caller passes `now_ms` (from the shard's clock) and acts on
//! the decisions. Invariants: at most one entry per device, removed when it
//! holds nothing a later decision needs; due pushes come out once each.

use crate::accounts::AuthedDevice;
use crate::config::PushConfig;
use std::collections::{BTreeSet, HashMap};

/// What to do for one stored envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send an alert (urgent) push now.
    Alert,
    /// Send a background (non-urgent) push now.
    Background,
    /// A push of this kind went out within its window: nothing to send.
    Coalesced,
}

#[derive(Debug, Default, Clone, Copy)]
struct DeviceState {
    last_alert_ms: Option<u64>,
    last_background_ms: Option<u64>,
    /// When the after-close push is due.
    after_close_due_ms: Option<u64>,
}

/// Every device's push timing on one shard.
#[derive(Debug)]
pub struct PushSchedule {
    alert_coalesce_ms: u64,
    background_interval_ms: u64,
    after_close_delay_ms: u64,
    devices: HashMap<AuthedDevice, DeviceState>,
    /// After-close pushes by due time.
    due: BTreeSet<(u64, AuthedDevice)>,
    /// When settled entries were last swept.
    last_sweep_ms: u64,
}

/// Settled entries are swept at most this often (a sweep walks every entry).
const SWEEP_INTERVAL_MS: u64 = 60_000;

impl PushSchedule {
    /// An empty schedule with `config`'s intervals.
    pub fn new(config: &PushConfig) -> Self {
        Self {
            alert_coalesce_ms: config.alert_coalesce_ms,
            background_interval_ms: config.background_interval_ms,
            after_close_delay_ms: config.after_close_delay_ms,
            devices: HashMap::new(),
            due: BTreeSet::new(),
            last_sweep_ms: 0,
        }
    }

    /// An envelope was stored for `device`, which has a token and no session.
    pub fn on_stored(&mut self, device: AuthedDevice, urgent: bool, now_ms: u64) -> Decision {
        let state = self.devices.entry(device).or_default();
        let within = |last: Option<u64>, window_ms: u64| {
            last.is_some_and(|last_ms| now_ms.saturating_sub(last_ms) < window_ms)
        };
        if urgent {
            if within(state.last_alert_ms, self.alert_coalesce_ms) {
                return Decision::Coalesced;
            }
            state.last_alert_ms = Some(now_ms);
            // The alert covers what the after-close push would have said.
            if let Some(due_ms) = state.after_close_due_ms.take() {
                self.due.remove(&(due_ms, device));
            }
            Decision::Alert
        } else {
            if within(state.last_background_ms, self.background_interval_ms) {
                return Decision::Coalesced;
            }
            state.last_background_ms = Some(now_ms);
            Decision::Background
        }
    }

    /// `device`'s session closed with envelopes still queued.
    pub fn on_closed_with_queue(&mut self, device: AuthedDevice, now_ms: u64) {
        let state = self.devices.entry(device).or_default();
        if let Some(due_ms) = state.after_close_due_ms.take() {
            self.due.remove(&(due_ms, device));
        }
        let due_ms = now_ms.saturating_add(self.after_close_delay_ms);
        state.after_close_due_ms = Some(due_ms);
        self.due.insert((due_ms, device));
    }

    /// `device` connected (or fetched its queue): cancel what is pending.
    pub fn on_connected(&mut self, device: AuthedDevice) {
        let Some(state) = self.devices.get_mut(&device) else { return };
        if let Some(due_ms) = state.after_close_due_ms.take() {
            self.due.remove(&(due_ms, device));
        }
        state.last_alert_ms = None;
        if state.last_background_ms.is_none() {
            self.devices.remove(&device);
        }
    }

    /// Takes the after-close pushes due at `now_ms`; the caller sends the
    /// ones still wanted and marks them with [`PushSchedule::alerted`].
    pub fn take_due(&mut self, now_ms: u64) -> Vec<AuthedDevice> {
        let mut devices = Vec::new();
        while let Some(&(due_ms, device)) = self.due.first() {
            if due_ms > now_ms {
                break;
            }
            self.due.pop_first();
            if let Some(state) = self.devices.get_mut(&device) {
                state.after_close_due_ms = None;
            }
            devices.push(device);
        }
        devices
    }

    /// An alert went to `device` at `now_ms` (opens its coalescing window).
    pub fn alerted(&mut self, device: AuthedDevice, now_ms: u64) {
        self.devices.entry(device).or_default().last_alert_ms = Some(now_ms);
    }

    /// Forgets entries that can no longer change a decision (both windows
    /// passed, nothing due); walks them at most once per minute.
    pub fn forget_settled(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_INTERVAL_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        let (alert_ms, background_ms) = (self.alert_coalesce_ms, self.background_interval_ms);
        let settled = |last: Option<u64>, window_ms: u64| {
            last.is_none_or(|last_ms| now_ms.saturating_sub(last_ms) >= window_ms)
        };
        self.devices.retain(|_, state| {
            state.after_close_due_ms.is_some()
                || !settled(state.last_alert_ms, alert_ms)
                || !settled(state.last_background_ms, background_ms)
        });
    }

    /// Devices with an entry (for tests and metrics).
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// True when no device has an entry.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MINUTE_MS: u64 = 60_000;

    fn device(n: u128) -> AuthedDevice {
        AuthedDevice { account: Uuid::from_u128(n), device_id: 1 }
    }

    fn schedule() -> PushSchedule {
        PushSchedule::new(&PushConfig::default())
    }

    #[test]
    fn a_burst_of_urgent_envelopes_makes_one_alert_per_window() {
        let mut schedule = schedule();
        assert_eq!(schedule.on_stored(device(1), true, 0), Decision::Alert);
        for at_ms in [1, 500, MINUTE_MS - 1] {
            assert_eq!(schedule.on_stored(device(1), true, at_ms), Decision::Coalesced);
        }
        assert_eq!(schedule.on_stored(device(2), true, 1), Decision::Alert, "per device");
        assert_eq!(schedule.on_stored(device(1), true, MINUTE_MS), Decision::Alert);
    }

    #[test]
    fn background_pushes_are_one_per_twenty_minutes() {
        let mut schedule = schedule();
        assert_eq!(schedule.on_stored(device(1), false, 0), Decision::Background);
        assert_eq!(schedule.on_stored(device(1), false, 19 * MINUTE_MS), Decision::Coalesced);
        assert_eq!(schedule.on_stored(device(1), true, 19 * MINUTE_MS), Decision::Alert);
        assert_eq!(schedule.on_stored(device(1), false, 20 * MINUTE_MS), Decision::Background);
    }

    #[test]
    fn a_close_with_a_queue_pushes_a_minute_later_unless_the_device_connects() {
        let mut schedule = schedule();
        schedule.on_closed_with_queue(device(1), 1000);
        schedule.on_closed_with_queue(device(2), 1000);
        assert!(schedule.take_due(1000 + MINUTE_MS - 1).is_empty());
        schedule.on_connected(device(2));
        assert_eq!(schedule.take_due(1000 + MINUTE_MS), vec![device(1)]);
        assert!(schedule.take_due(10 * MINUTE_MS).is_empty(), "due once");
        // A due push not sent (the queue was empty by then) opens no window.
        assert_eq!(schedule.on_stored(device(1), true, 1000 + MINUTE_MS + 1), Decision::Alert);
        // One that was sent does.
        schedule.on_closed_with_queue(device(2), 0);
        assert_eq!(schedule.take_due(MINUTE_MS), vec![device(2)]);
        schedule.alerted(device(2), MINUTE_MS);
        assert_eq!(schedule.on_stored(device(2), true, MINUTE_MS + 1), Decision::Coalesced);
    }

    #[test]
    fn connecting_reopens_the_alert_window_and_an_alert_replaces_the_close_push() {
        let mut schedule = schedule();
        assert_eq!(schedule.on_stored(device(1), true, 0), Decision::Alert);
        schedule.on_connected(device(1));
        assert_eq!(schedule.on_stored(device(1), true, 1), Decision::Alert);
        schedule.on_connected(device(1));
        schedule.on_closed_with_queue(device(1), 2);
        assert_eq!(schedule.on_stored(device(1), true, 3), Decision::Alert);
        assert!(schedule.take_due(10 * MINUTE_MS).is_empty());
    }

    #[test]
    fn settled_entries_are_forgotten() {
        let mut schedule = schedule();
        schedule.on_stored(device(1), true, 0);
        schedule.on_stored(device(2), false, 0);
        schedule.forget_settled(MINUTE_MS);
        assert_eq!(schedule.len(), 1, "the background window is still open");
        schedule.forget_settled(20 * MINUTE_MS);
        assert!(schedule.is_empty());
    }
}
