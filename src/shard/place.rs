//! Where a call or a connection goes: routing units and their places.
//!
//! A *unit* is what ownership is decided for. On a single box the units are
//! the shards (`owner(uuid, S)`); in cluster mode they are the cluster's `P`
//! partitions (`owner(uuid, P)`, the same range function), each owned by one
//! node and, there, by its shard `p mod S`. An identifier hash (contact
//! discovery) falls in the unit its first 8 bytes give, as a UUID's top 64
//! bits do.
//!
//! [`ClusterLink`] is how the cluster layer (above this one) tells a shard
//! where each partition is and carries calls to other nodes; the shard layer
//! only names it, so it stays below `cluster`.
//!
//! Invariants: the unit of a key depends only on the key and the unit count,
//! which is fixed for a process; [`Place::Shard`] always names a shard of
//! this process.

use crate::shard::mesh::CallError;
use crate::shard::msg::{Call, Outcome};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use uuid::Uuid;

/// The unit of `uuid` among `unit_count` units.
pub fn unit_of(uuid: &Uuid, unit_count: usize) -> usize {
    crate::shard::owner(uuid, unit_count)
}

/// Where a unit is served now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// On this process's shard (index).
    Shard(usize),
    /// On another node of the cluster (its id).
    Node(Rc<str>),
    /// Nowhere for now: no map yet, or its owner is known to be down.
    Unowned,
}

/// What a call to another node came back with, besides an outcome.
#[derive(Debug)]
pub enum RemoteError {
    /// The node does not own the unit in its map of epoch `epoch`: the
    /// call was not run; it is handed back to be routed again.
    WrongOwner {
        /// The callee's map epoch.
        epoch: u64,
        /// The call, unrun.
        call: Box<Call>,
    },
    /// No answer that can be trusted (no responders, timeout, busy, a
    /// garbled reply): the caller answers 503.
    Unavailable(CallError),
}

/// Held while an owner-side call runs in a unit; a move of the unit waits
/// until none is held (see [`ClusterLink::enter`]).
pub struct UnitGuard(Option<Box<dyn FnOnce()>>);

impl UnitGuard {
    /// A guard that runs `release` when dropped.
    pub fn new(release: impl FnOnce() + 'static) -> Self {
        Self(Some(Box::new(release)))
    }
}

impl Drop for UnitGuard {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

/// A boxed future on this shard's thread.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The cluster as one shard sees it.
pub trait ClusterLink {
    /// `P`: the number of routing units.
    fn unit_count(&self) -> usize;
    /// Where unit `unit` is served according to the newest map.
    fn place(&self, unit: usize) -> Place;
    /// The newest map's epoch (0 before the first map).
    fn epoch(&self) -> u64;
    /// Runs `call` for unit `unit` on `node`, which the map says owns it.
    fn call_remote<'a>(
        &'a self,
        node: Rc<str>,
        unit: usize,
        call: Call,
    ) -> LocalFuture<'a, Result<Outcome, RemoteError>>;
    /// Marks an owner-side call running in `unit` (held until the guard
    /// drops); `None` when the unit is frozen for a move (answer 503).
    fn enter(&self, unit: usize) -> Option<UnitGuard>;
    /// Waits (bounded by the call timeout) until this node's map is at
    /// least at `epoch`; false if it did not get there.
    fn wait_for_epoch(&self, epoch: u64) -> LocalFuture<'_, bool>;
    /// The internal listener of `node`, where connections are forwarded.
    fn internal_addr(&self, node: &str) -> LocalFuture<'_, Option<SocketAddr>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_uuids_fall_in_the_same_unit_for_the_same_top_bits() {
        for unit_count in [1, 2, 3, 16, 64] {
            for high in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX] {
                let uuid = Uuid::from_u128(u128::from(high) << 64 | 0xabc);
                let mut hash = [0xcdu8; crate::protocol::discovery::HASH_BYTES];
                hash[..8].copy_from_slice(&high.to_be_bytes());
                let hash_unit = crate::directory::owner_of_hash(&hash, unit_count);
                assert_eq!(unit_of(&uuid, unit_count), hash_unit);
                assert!(hash_unit < unit_count);
            }
        }
    }
}
