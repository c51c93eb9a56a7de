//! Replicated durability (`durability = "replicated"`, cluster mode): each
//! partition's committed writes go to a JetStream stream of its own (the
//! partition log, 3 replicas), one entry per batch, before they are applied
//! to the local store and answered; a dead node's partitions are taken
//! over by the live nodes, which catch them up from their logs.
//!
//! - [`entry`]: one log entry (a batch's ops on a partition, or a fence).
//! - [`states`]: per partition, ready or not, and the last sequence.
//! - [`appender`]: the writer threads' side: fenced appends per batch.
//! - [`adopt`]: catching a partition up with its log and fencing it.
//! - [`snapshot`]: a partition's data as of one sequence, in the object
//!   store, so its log can be purged.
//! - [`takeover`]: which live node takes which partition of a dead one.
//! - [`tasks`]: the membership watch and the adopter, on one shard.
//!
//! Invariants: the log is the truth and the local copy follows it: an op
//! is applied here only after its entry was acknowledged by the stream's
//! quorum, and the local copy records the last sequence it holds; exactly
//! one node appends to a partition's log at a time, because every append
//! names the sequence it follows and every new owner fences first.
//!
//! Imports: `store`, `shard`, `cluster::{nats, map, node, moves}`.

pub mod adopt;
pub mod appender;
pub mod entry;
pub mod snapshot;
pub mod states;
pub mod takeover;
pub mod tasks;

use crate::cluster::node::Node;
use crate::store::Store;

/// How long start-up retries catching up a partition whose log or
/// snapshot is transiently unavailable, ms.
const ADOPT_AT_START_MS: u64 = 30_000;

/// At start, before the shards load: catches up and fences every partition
/// the map gives this node, and makes them ready.
pub fn adopt_owned(node: &Node, store: &Store, shard_count: usize) -> anyhow::Result<()> {
    let Some(states) = &node.states else { return Ok(()) };
    let version = node.nats.watch_map().current().ok_or(anyhow::anyhow!("no map"))?;
    let map = crate::cluster::map::PartitionMap::decode(&version.bytes)?;
    let owned = map.partitions_of(&node.id);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let count = node.partitions.get() as usize;
    let adoptions: Vec<adopt::Adoption<'_>> = owned
        .iter()
        .map(|partition| {
            let unit = partition.index() as usize;
            adopt::Adoption {
                nats: &node.nats,
                store,
                shard: unit % shard_count,
                unit: (unit, count),
                replicas: node.config.map_replicas as usize,
                fence: (node.id.as_str(), map.epoch()),
            }
        })
        .collect();
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_millis(ADOPT_AT_START_MS);
    let mut waiting: Vec<&adopt::Adoption<'_>> = adoptions.iter().collect();
    while !waiting.is_empty() {
        let fenced = runtime.block_on(futures_util::future::join_all(
            waiting.iter().map(|a| adopt::catch_up_and_fence(a)),
        ));
        let mut failed = Vec::new();
        for (adoption, fenced) in waiting.into_iter().zip(fenced) {
            match fenced {
                Ok(seq) => states.ready(adoption.unit.0, seq),
                // A log just made may not have elected its leader yet.
                Err(error) if error.is_transient() && std::time::Instant::now() < deadline => {
                    tracing::info!(unit = adoption.unit.0, %error, "catching up: retrying");
                    failed.push(adoption);
                }
                Err(error) => anyhow::bail!("partition {}: {error}", adoption.unit.0),
            }
        }
        waiting = failed;
        if !waiting.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::info!(partitions = owned.len(), took_ms, "partitions caught up with their logs");
    Ok(())
}
