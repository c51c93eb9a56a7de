//! The owner's side of a move, in the order the module doc's crash rules
//! need: check, `Begin` on the target, freeze, close the partition's
//! sessions, wait for running calls, copy every family in chunks, `Load`,
//! `Confirm`, flip the map by compare-and-swap, wait until this node routes
//! by the new map, drop the local copy, thaw. Any failure before the flip
//! aborts the move on the target and thaws: the source still owns it all.

use super::admin_subject;
use super::memory;
use super::messages::{self, AdminReply, AdminRequest, Chunk, MoveStep, Step, CHUNK_BYTES_MAX};
use crate::cluster::identity::NodeId;
use crate::cluster::map::PartitionMap;
use crate::cluster::nats::error::NatsError;
use crate::cluster::node::Node;
use crate::cluster::partition::PartitionId;
use crate::shard::msg::UnitOp;
use crate::shard::ShardCtx;
use crate::store::units::{self, Family};
use bytes::Bytes;
use std::time::Duration;

/// Longest wait for the calls running in a frozen partition, ms.
const DRAIN_CALLS_MS: u64 = 10_000;

/// How often the wait for running calls and for the new map looks, ms.
const POLL_MS: u64 = 1;

/// The map this node's cluster thread has seen last, decoded.
pub fn current_map(node: &Node) -> Option<PartitionMap> {
    let version = node.nats.watch_map().current()?;
    PartitionMap::decode(&version.bytes).ok()
}

/// Sends `request` to `to`'s admin subject; its reply, or why none.
pub async fn ask(node: &Node, to: &str, step: Step) -> Result<AdminReply, String> {
    let request = messages::encode(&AdminRequest { step: Some(step.clone()) });
    let subject = admin_subject(&node.config.name, to);
    // A catch-up from the log may take longer than a call.
    let long = matches!(step, Step::Prepare(_) | Step::Load(_))
        .then(|| Duration::from_millis(crate::cluster::operate::MOVE_TIMEOUT_MS));
    let reply = node.nats.request_within(&subject, Bytes::from(request), long).await;
    let reply = reply.map_err(|error| format!("node {to}: {error}"))?;
    messages::decode::<AdminReply>(&reply).map_err(|error| format!("node {to}: {error}"))
}

/// Asks `to` for `step`; an error unless it answered ok.
async fn step(node: &Node, to: &str, step: Step) -> Result<(), String> {
    let reply = ask(node, to, step).await?;
    match reply.ok {
        true => Ok(()),
        false => Err(format!("node {to}: {}", reply.error)),
    }
}

/// Moves `partition` from this node to `to`; the new map's epoch.
pub async fn run(ctx: &ShardCtx, node: &Node, partition: u32, to: &str) -> Result<u64, String> {
    let id = PartitionId::new(partition, node.partitions).map_err(|e| e.to_string())?;
    let to_id = NodeId::new(to).map_err(|e| e.to_string())?;
    let (map, revision) = super::read_map(&node.nats).await?;
    match map.owner(id) {
        Some(owner) if *owner == node.id => {}
        owner => {
            return Err(format!(
                "node {} does not own partition {partition} ({owner:?} does)",
                node.id
            ))
        }
    }
    if to_id == node.id {
        return Err(format!("partition {partition} is already on node {to}"));
    }
    let live = node.nats.nodes().await.map_err(|e| e.to_string())?;
    if !live.iter().any(|record| record.id == to) {
        return Err(format!("node {to} is not live"));
    }
    let mut move_id = vec![0u8; 16];
    getrandom::fill(&mut move_id).map_err(|e| e.to_string())?;
    let here = MoveStep { move_id, partition };
    step(node, to, Step::Begin(here.clone())).await?;
    if node.states.is_some() {
        // Replicated: the target catches up from the log while this node
        // still serves; the freeze only waits for the last entries.
        if let Err(error) = step(node, to, Step::Prepare(here.clone())).await {
            let _ = step(node, to, Step::Abort(here)).await;
            return Err(error);
        }
    }
    let unit = partition as usize;
    node.freezer.freeze(unit);
    let copied = copy(ctx, node, &here, to).await;
    let flipped = match copied {
        Ok(()) => flip(node, &map, id, &to_id, revision).await,
        Err(error) => Err(error),
    };
    let result = match flipped {
        Ok(epoch) => finish(ctx, node, unit, epoch).await.map(|()| epoch),
        Err(error) => {
            let _ = step(node, to, Step::Abort(here)).await;
            Err(error)
        }
    };
    node.freezer.thaw(unit);
    result
}

/// With the partition frozen: closes its sessions, waits for its running
/// calls, then copies every family to `to` and has it load and confirm.
async fn copy(ctx: &ShardCtx, node: &Node, here: &MoveStep, to: &str) -> Result<(), String> {
    let unit = here.partition as usize;
    let shard = unit % ctx.shard_count;
    memory::run(ctx, shard, unit, UnitOp::CloseSessions).await?;
    let mut waited_ms = 0;
    while node.freezer.busy(unit) > 0 {
        if waited_ms >= DRAIN_CALLS_MS {
            return Err(format!(
                "calls in partition {unit} still running after {DRAIN_CALLS_MS} ms"
            ));
        }
        monoio::time::sleep(Duration::from_millis(POLL_MS)).await;
        waited_ms += POLL_MS;
    }
    if node.states.is_none() {
        send_chunks(ctx, node, here, to).await?;
    }
    step(node, to, Step::Load(here.clone())).await?;
    step(node, to, Step::Confirm(here.clone())).await
}

/// Copies every family of the partition to `to`, chunk by chunk.
async fn send_chunks(ctx: &ShardCtx, node: &Node, here: &MoveStep, to: &str) -> Result<(), String> {
    let unit = here.partition as usize;
    let shard = unit % ctx.shard_count;
    let range = (unit, node.partitions.get() as usize);
    for family in Family::ALL {
        for pairs in units::chunks(&ctx.store, shard, family, range, CHUNK_BYTES_MAX) {
            let (keys, values) = pairs.map_err(|e| e.to_string())?.into_iter().unzip();
            let chunk =
                Chunk { step: Some(here.clone()), family: family.code().into(), keys, values };
            step(node, to, Step::Chunk(chunk)).await?;
            let pause_ms = node.config.move_chunk_pause_ms;
            if pause_ms > 0 {
                monoio::time::sleep(Duration::from_millis(pause_ms)).await;
            }
        }
    }
    Ok(())
}

/// Flips the map; the new epoch. A lost answer is resolved by reading the
/// map again: the flip happened exactly when the map names `to`.
async fn flip(
    node: &Node,
    map: &PartitionMap,
    id: PartitionId,
    to: &NodeId,
    revision: u64,
) -> Result<u64, String> {
    let flipped = map.with_owner(id, to).map_err(|e| e.to_string())?;
    match node.nats.swap_map(Bytes::from(flipped.encode()), revision).await {
        Ok(_) => Ok(flipped.epoch()),
        Err(NatsError::Conflict { .. }) => {
            Err("the map changed during the move; nothing moved".into())
        }
        Err(error) => {
            let reread = node.nats.read_map().await.map_err(|e| format!("{error}; then {e}"))?;
            let now = reread.and_then(|v| PartitionMap::decode(&v.bytes).ok());
            match now {
                Some(now) if now.owner(id) == Some(to) => Ok(now.epoch()),
                _ => Err(format!("the map was not changed: {error}")),
            }
        }
    }
}

/// After the flip: waits until this node routes by the new map (the
/// partition stays frozen meanwhile: thawed on the old map, it would be
/// served here without its data), then drops the local copy, memory first.
async fn finish(ctx: &ShardCtx, node: &Node, unit: usize, epoch: u64) -> Result<(), String> {
    let mut waited_ms = 0;
    while current_map(node).is_none_or(|map| map.epoch() < epoch) {
        monoio::time::sleep(Duration::from_millis(POLL_MS)).await;
        waited_ms += POLL_MS;
        if waited_ms % 5_000 == 0 {
            tracing::warn!(unit, epoch, "moved partition stays frozen until the new map arrives");
        }
    }
    memory::drop_partition(ctx, unit).await
}
