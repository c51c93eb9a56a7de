//! A node's replicated-durability tasks, on the shard that serves its
//! admin subject: the membership watch that takes over a dead node's
//! partitions, and the adopter that makes this node's partitions ready
//! (caught up and fenced) or drops the ones the map gave away.
//!
//! Membership watch: every heartbeat interval, read the live nodes and the
//! map; if the map names an owner that is not live (its membership key
//! expired: no heartbeat for a TTL), compute [`take_over`] and
//! compare-and-swap it in. Every node does this; one swap lands, the
//! others see a conflict and read the new map.
//!
//! Adopter: every [`ADOPT_POLL_MS`], for each partition not frozen by a
//! move: owned here but not ready → close its sessions, forget its memory,
//! catch up and fence ([`adopt`](super::adopt)), load, ready; ready here
//! but owned elsewhere → not ready, close its sessions, drop its copy.
//!
//! Invariants: a partition is served here only after it was caught up
//! with its log and fenced in this run; a partition given away is never
//! written here again (not ready: its appends are refused before they are
//! sent, and a fence after them refuses any in flight).

use super::adopt::{catch_up_and_fence, Adoption};
use super::states::UnitStates;
use super::takeover::take_over;
use crate::cluster::identity::NodeId;
use crate::cluster::map::PartitionMap;
use crate::cluster::moves::memory;
use crate::cluster::nats::error::NatsError;
use crate::cluster::node::Node;
use crate::shard::msg::UnitOp;
use crate::shard::ShardCtx;
use bytes::Bytes;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the adopter looks at the partitions, ms.
pub const ADOPT_POLL_MS: u64 = 20;

/// The wait before trying a failed adoption again, ms.
const ADOPT_RETRY_MS: u64 = 500;

/// Runs both tasks for the life of the shard (nothing without replication).
pub async fn run(ctx: Rc<ShardCtx>, node: Arc<Node>) {
    let Some(states) = node.states.clone() else { return };
    monoio::spawn(watch_members(node.clone()));
    monoio::spawn(snapshot_loop(ctx.clone(), node.clone(), states.clone()));
    adopt_loop(ctx, node, states).await
}

/// The map as the cluster thread has it, decoded.
fn current_map(node: &Node) -> Option<(PartitionMap, u64)> {
    let version = node.nats.watch_map().current()?;
    Some((PartitionMap::decode(&version.bytes).ok()?, version.revision))
}

async fn watch_members(node: Arc<Node>) {
    let interval = Duration::from_millis(node.config.heartbeat_interval_ms);
    loop {
        monoio::time::sleep(interval).await;
        if let Err(error) = take_over_dead(&node).await {
            tracing::warn!(%error, "membership watch: no takeover this round");
        }
    }
}

/// One round of the membership watch.
async fn take_over_dead(node: &Node) -> Result<(), NatsError> {
    let live = node.nats.nodes().await?;
    let Some(version) = node.nats.read_map().await? else { return Ok(()) };
    let Ok(map) = PartitionMap::decode(&version.bytes) else { return Ok(()) };
    let mut live: Vec<NodeId> =
        live.iter().filter_map(|record| NodeId::new(&record.id).ok()).collect();
    // A node that can swap the map is alive, whatever its heartbeats did
    // (a NATS server's loss can fail them for a while).
    if !live.contains(&node.id) {
        live.push(node.id.clone());
    }
    let Ok(Some(taken)) = take_over(&map, &live) else { return Ok(()) };
    match node.nats.swap_map(Bytes::from(taken.encode()), version.revision).await {
        Ok(_) => {
            let dead: Vec<&str> = map
                .counts_per_node()
                .into_iter()
                .map(|(id, _)| id.as_str())
                .filter(|id| !live.iter().any(|l| l.as_str() == *id))
                .collect();
            tracing::warn!(?dead, epoch = taken.epoch(), "took over the partitions of dead nodes");
            Ok(())
        }
        Err(NatsError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

async fn adopt_loop(ctx: Rc<ShardCtx>, node: Arc<Node>, states: Arc<UnitStates>) {
    let mut retry_at: HashMap<usize, Instant> = HashMap::new();
    loop {
        monoio::time::sleep(Duration::from_millis(ADOPT_POLL_MS)).await;
        let Some((map, _)) = current_map(&node) else { continue };
        for partition in node.partitions.partitions() {
            let unit = partition.index() as usize;
            let importing = node.imports.lock().expect("imports lock").contains_key(&unit);
            if node.freezer.is_frozen(unit) || importing {
                continue;
            }
            let mine = map.owner(partition) == Some(&node.id);
            if mine && !states.is_ready(unit) {
                if retry_at.get(&unit).is_some_and(|at| Instant::now() < *at) {
                    continue;
                }
                match adopt(&ctx, &node, unit, map.epoch()).await {
                    Ok(seq) => {
                        retry_at.remove(&unit);
                        states.ready(unit, seq);
                    }
                    Err(error) => {
                        tracing::warn!(unit, %error, "partition not adopted yet");
                        retry_at
                            .insert(unit, Instant::now() + Duration::from_millis(ADOPT_RETRY_MS));
                    }
                }
            } else if !mine && states.unready(unit) {
                tracing::warn!(unit, "partition owned elsewhere now: dropping the local copy");
                if let Err(error) = give_up(&ctx, unit).await {
                    tracing::error!(unit, %error, "local copy of a lost partition not dropped");
                }
            }
        }
    }
}

/// Catches partition `unit` up and loads it; the fence's sequence.
async fn adopt(ctx: &ShardCtx, node: &Node, unit: usize, epoch: u64) -> Result<u64, String> {
    let started = Instant::now();
    let shard = unit % ctx.shard_count;
    memory::run(ctx, shard, unit, UnitOp::CloseSessions).await?;
    memory::run(ctx, shard, unit, UnitOp::Drop).await?;
    let adoption = Adoption {
        nats: &node.nats,
        store: &ctx.store,
        shard,
        unit: (unit, node.partitions.get() as usize),
        replicas: node.config.map_replicas as usize,
        fence: (node.id.as_str(), epoch),
    };
    let seq = catch_up_and_fence(&adoption).await.map_err(|error| error.to_string())?;
    memory::run(ctx, shard, unit, UnitOp::Load).await?;
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::info!(unit, seq, epoch, took_ms, "partition caught up with its log: serving it");
    Ok(seq)
}

/// Every `snapshot_interval_ms`: snapshots each ready partition whose log
/// grew by `snapshot_entries_min` since its last snapshot here, and purges
/// the log up to it.
async fn snapshot_loop(ctx: Rc<ShardCtx>, node: Arc<Node>, states: Arc<UnitStates>) {
    let mut covered: HashMap<usize, u64> = HashMap::new();
    let interval = Duration::from_millis(node.config.snapshot_interval_ms);
    loop {
        monoio::time::sleep(interval).await;
        for unit in 0..states.len() {
            let since = states.last_seq(unit).saturating_sub(*covered.get(&unit).unwrap_or(&0));
            if !states.is_ready(unit) || since < node.config.snapshot_entries_min {
                continue;
            }
            match snapshot_unit(&ctx, &node, unit).await {
                Ok(seq) => drop(covered.insert(unit, seq)),
                Err(error) => tracing::warn!(unit, %error, "partition snapshot not taken"),
            }
        }
    }
}

/// Snapshots partition `unit` (if the map, read fresh, still names this
/// node) and purges its log up to the snapshot; the sequence covered.
pub async fn snapshot_unit(ctx: &ShardCtx, node: &Node, unit: usize) -> Result<u64, String> {
    let count = node.partitions.get() as usize;
    let (map, _) = crate::cluster::moves::read_map(&node.nats).await?;
    let id = crate::cluster::partition::PartitionId::new(unit as u32, node.partitions)
        .map_err(|e| e.to_string())?;
    if map.owner(id) != Some(&node.id) {
        return Err(format!("partition {unit} is not this node's any more"));
    }
    let started = Instant::now();
    let taken = super::snapshot::take(&ctx.store, unit % ctx.shard_count, (unit, count));
    let (seq, bytes) = taken.map_err(|e| e.to_string())?;
    let size = bytes.len();
    let replicas = node.config.map_replicas as usize;
    node.nats
        .snapshot_put(unit as u32, replicas, Bytes::from(bytes))
        .await
        .map_err(|e| e.to_string())?;
    let purged = node.nats.log_purge(unit as u32, seq + 1).await.map_err(|e| e.to_string())?;
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::info!(unit, seq, size, purged, took_ms, "partition snapshot stored, log purged");
    Ok(seq)
}

/// Closes partition `unit`'s sessions and drops its local copy.
async fn give_up(ctx: &ShardCtx, unit: usize) -> Result<(), String> {
    memory::run(ctx, unit % ctx.shard_count, unit, UnitOp::CloseSessions).await?;
    memory::drop_partition(ctx, unit).await
}
