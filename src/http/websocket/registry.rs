//! The live WebSocket session of each device on this shard.
//!
//! Invariant: at most one session per device is registered. Registering a
//! second returns the first, which the caller tells to close with 4409
//! (Signal's "connection replaced"); a session unregisters only itself (by
//! its connection id), so a replaced session ending late cannot remove its
//! successor.

use crate::accounts::AuthedDevice;
use futures_channel::mpsc;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

/// Something for a session's event loop to act on.
#[derive(Debug)]
pub enum SessionEvent {
    /// Bytes read from the socket.
    Bytes(Vec<u8>),
    /// The socket's read side ended.
    ReadClosed,
    /// A newer connection of the same device took over: close with 4409.
    Replaced,
    /// A client request finished: send this response frame text.
    Respond(String),
    /// New envelopes are stored for this device: read the queue. (The flag
    /// in [`SessionHandle::new_messages`] carries the news even when the
    /// event queue is full; this event only wakes the loop.)
    Wake,
    /// An online-only envelope (JSON, not stored): deliver it now or never.
    Ephemeral(Vec<u8>),
}

/// How to reach a registered session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection on this shard.
    pub conn_id: u64,
    /// The session's event queue.
    pub events: mpsc::Sender<SessionEvent>,
    /// Set when envelopes were stored for the device; the session clears it
    /// when it reads its queue.
    pub new_messages: Rc<Cell<bool>>,
}

impl SessionHandle {
    /// Tells the session its queue has new envelopes. Never blocks: when the
    /// event queue is full the session is awake anyway and sees the flag.
    pub fn notify_stored(&self) {
        self.new_messages.set(true);
        let _ = self.events.clone().try_send(SessionEvent::Wake);
    }

    /// Offers an online-only envelope; false when the session's queue is
    /// full (the envelope is then dropped, as online-only allows).
    pub fn offer_ephemeral(&self, json: Vec<u8>) -> bool {
        self.events.clone().try_send(SessionEvent::Ephemeral(json)).is_ok()
    }
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
        events: mpsc::Sender<SessionEvent>,
        new_messages: Rc<Cell<bool>>,
    ) -> (u64, Option<SessionHandle>) {
        self.next_conn_id += 1;
        let conn_id = self.next_conn_id;
        let old = self.by_device.insert(device, SessionHandle { conn_id, events, new_messages });
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
        let (first_tx, _first_rx) = mpsc::channel(1);
        let (second_tx, _second_rx) = mpsc::channel(1);
        let (first, replaced) = registry.register(device, first_tx, Rc::default());
        assert!(replaced.is_none());
        let (second, replaced) = registry.register(device, second_tx, Rc::default());
        assert_eq!(replaced.unwrap().conn_id, first);
        registry.unregister(&device, first);
        assert_eq!(registry.get(&device).unwrap().conn_id, second);
        registry.unregister(&device, second);
        assert!(registry.is_empty());
    }
}
