//! The live WebSocket session of each device on this shard.
//!
//! Invariant: at most one session per device is registered. Registering a
//! second returns the first, which the caller tells to close with 4409
//! (Signal's "connection replaced"); a session unregisters only itself (by
//! its connection id), so a replaced session ending late cannot remove its
//! successor.

use crate::accounts::AuthedDevice;
use crate::shard::mailbox::Mailbox;
use std::collections::HashMap;
use std::rc::Rc;

/// How to reach a registered session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection on this shard.
    pub conn_id: u64,
    /// The session's mailbox.
    pub mailbox: Rc<Mailbox>,
}

/// Sessions by device.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    by_device: HashMap<AuthedDevice, SessionHandle>,
    next_conn_id: u64,
}

impl SessionRegistry {
    /// Registers a session for `device`; returns its connection id and the
    /// session it replaced, if any.
    pub fn register(
        &mut self,
        device: AuthedDevice,
        mailbox: Rc<Mailbox>,
    ) -> (u64, Option<SessionHandle>) {
        self.next_conn_id += 1;
        let conn_id = self.next_conn_id;
        let old = self.by_device.insert(device, SessionHandle { conn_id, mailbox });
        (conn_id, old)
    }

    /// Removes `device`'s session if it is still connection `conn_id`.
    pub fn unregister(&mut self, device: &AuthedDevice, conn_id: u64) {
        if self.by_device.get(device).is_some_and(|handle| handle.conn_id == conn_id) {
            self.by_device.remove(device);
        }
    }

    /// The live session of `device`.
    pub fn get(&self, device: &AuthedDevice) -> Option<&SessionHandle> {
        self.by_device.get(device)
    }

    /// The live sessions of the devices `pick` says yes to.
    pub fn handles_where(&self, pick: impl Fn(&AuthedDevice) -> bool) -> Vec<SessionHandle> {
        self.by_device.iter().filter(|(device, _)| pick(device)).map(|(_, h)| h.clone()).collect()
    }

    /// Every live session's handle (to tell them all something).
    pub fn handles(&self) -> impl Iterator<Item = &SessionHandle> {
        self.by_device.values()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_device.len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn second_session_replaces_first_and_late_unregister_is_ignored() {
        let device = AuthedDevice { account: Uuid::new_v4(), device_id: 1 };
        let mut registry = SessionRegistry::default();
        let (first, replaced) = registry.register(device, Rc::new(Mailbox::new(1)));
        assert!(replaced.is_none());
        let (second, replaced) = registry.register(device, Rc::new(Mailbox::new(1)));
        assert_eq!(replaced.unwrap().conn_id, first);
        registry.unregister(&device, first);
        assert_eq!(registry.get(&device).unwrap().conn_id, second);
        registry.unregister(&device, second);
        assert!(registry.is_empty());
    }
}
