//! Moving a partition to another node (`switchboard cluster move` and
//! `rebalance`): the owner (the source) freezes the partition, copies its
//! data (accounts, queued envelopes, push tokens inside the accounts,
//! directory entries) to the target in chunks, has the target load it,
//! flips the map by compare-and-swap, then drops its own copy.
//!
//! - [`messages`]: the admin subject's messages (operator and steps).
//! - [`memory`]: a shard's in-memory share of a partition: load, drop,
//!   close its sessions.
//! - [`source`]: the owner's side, step by step.
//! - [`target`]: the target's side of each step.
//! - [`admin`]: serving the node's admin subject.
//!
//! What a crash leaves (every step is ordered so that the map names exactly
//! one owner, whose disk holds the partition):
//! - before the flip, the source still owns the partition and its data;
//!   the target's partial copy is not served (the map does not name it),
//!   and is dropped by the next `Begin`, by `Abort`, or at its start-up;
//! - the target has loaded and confirmed the move (its writes are synced)
//!   before the source asks NATS to flip the map; a flip whose answer was
//!   lost is resolved by reading the map again;
//! - after the flip, the source's copy is stale: dropped right away, or at
//!   its next start-up (a node drops the partitions the map does not give
//!   it before its shards load).
//!
//! While frozen, sends and every other owner-side call for the partition
//! answer 503 with `Retry-After`, never 200-then-lost (see `freeze`); its
//! devices' WebSockets are closed (1001) so they reconnect to the new owner.
//! An acknowledgement a device sends in the instant between the copy and
//! the close may be lost: that message is delivered again (at least once).

pub mod admin;
pub mod memory;
pub mod messages;
pub mod source;
pub mod target;

use super::map::PartitionMap;
use super::nats::handle::NatsHandle;

/// The cluster's map as the bucket holds it now, and its revision (the
/// one a compare-and-swap must name).
pub async fn read_map(nats: &NatsHandle) -> Result<(PartitionMap, u64), String> {
    let version = nats.read_map().await.map_err(|error| error.to_string())?;
    let version = version.ok_or("the cluster has no partition map yet")?;
    let map = PartitionMap::decode(&version.bytes).map_err(|error| error.to_string())?;
    Ok((map, version.revision))
}

/// The NATS subject node `node` of cluster `cluster` takes admin requests on.
pub fn admin_subject(cluster: &str, node: &str) -> String {
    format!("switchboard.{cluster}.admin.{node}")
}
