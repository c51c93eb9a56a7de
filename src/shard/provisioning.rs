//! Provisioning sockets waiting on this shard, by address.
//!
//! A new device's unauthenticated socket gets a fresh address this shard
//! owns and waits here until a primary device delivers a provisioning
//! message to it (or it times out). Invariants: at most
//! `provisioning_sockets_per_shard_max` sockets wait at once (an
//! unauthenticated flood is refused at the upgrade, not buffered); an
//! address is single-use: [`ProvisioningRegistry::take`] removes it, so a
//! second delivery finds nothing; a socket unregisters only its own address.

use crate::shard::mailbox::Mailbox;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use uuid::Uuid;

/// A provisioning message handed to a waiting socket.
pub struct Delivery {
    /// The message body (bytes the primary sent, Base64-decoded).
    pub body: Vec<u8>,
}

/// One waiting socket: its mailbox (to wake it) and the delivery slot.
pub struct Waiting {
    /// The socket's mailbox; a delivery wakes it with the stored flag.
    pub mailbox: Rc<Mailbox>,
    /// The delivery, once a primary sent one.
    pub delivery: RefCell<Option<Delivery>>,
}

/// Why a socket could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many provisioning sockets on this shard")]
pub struct ProvisioningFull;

/// The waiting sockets of this shard.
#[derive(Default)]
pub struct ProvisioningRegistry {
    by_address: RefCell<HashMap<Uuid, Rc<Waiting>>>,
}

impl ProvisioningRegistry {
    /// Registers a socket at `address` if fewer than `sockets_max` wait.
    pub fn register(
        &self,
        address: Uuid,
        waiting: Rc<Waiting>,
        sockets_max: usize,
    ) -> Result<(), ProvisioningFull> {
        let mut by_address = self.by_address.borrow_mut();
        if by_address.len() >= sockets_max {
            return Err(ProvisioningFull);
        }
        by_address.insert(address, waiting);
        Ok(())
    }

    /// True when another socket may register.
    pub fn has_room(&self, sockets_max: usize) -> bool {
        self.by_address.borrow().len() < sockets_max
    }

    /// Removes and returns the socket at `address` (single use).
    pub fn take(&self, address: &Uuid) -> Option<Rc<Waiting>> {
        self.by_address.borrow_mut().remove(address)
    }

    /// Removes `address` if it is still `waiting`'s (a socket leaving).
    pub fn unregister(&self, address: &Uuid, waiting: &Rc<Waiting>) {
        let mut by_address = self.by_address.borrow_mut();
        if by_address.get(address).is_some_and(|entry| Rc::ptr_eq(entry, waiting)) {
            by_address.remove(address);
        }
    }

    /// Number of waiting sockets.
    pub fn len(&self) -> usize {
        self.by_address.borrow().len()
    }

    /// True when no socket waits.
    pub fn is_empty(&self) -> bool {
        self.by_address.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Rc<Waiting> {
        Rc::new(Waiting { mailbox: Rc::new(Mailbox::new(1)), delivery: RefCell::new(None) })
    }

    #[test]
    fn addresses_are_bounded_and_single_use() {
        let registry = ProvisioningRegistry::default();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        registry.register(first, waiting(), 1).unwrap();
        assert_eq!(registry.register(second, waiting(), 1), Err(ProvisioningFull));
        assert!(!registry.has_room(1));
        assert!(registry.take(&first).is_some());
        assert!(registry.take(&first).is_none(), "single use");
        assert!(registry.is_empty());
    }

    #[test]
    fn a_socket_unregisters_only_its_own_address() {
        let registry = ProvisioningRegistry::default();
        let address = Uuid::new_v4();
        let (mine, other) = (waiting(), waiting());
        registry.register(address, mine.clone(), 4).unwrap();
        registry.unregister(&address, &other);
        assert_eq!(registry.len(), 1);
        registry.unregister(&address, &mine);
        assert!(registry.is_empty());
    }
}
