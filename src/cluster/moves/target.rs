//! The target's side of a move: each step the source asks for, checked
//! against the move this node is taking (one per partition at a time).
//!
//! Invariants: a step names the move `Begin` started (else refused); the
//! target never drops a partition the map gives it; every write is synced
//! before the step answers (so a confirmed move is durable here).

use super::memory;
use super::messages::{Chunk, MoveStep};
use crate::cluster::node::Node;
use crate::shard::msg::UnitOp;
use crate::shard::ShardCtx;
use crate::store::units::{self, Family, Pair};

/// The partition of `step`, checked against `P`.
fn partition(node: &Node, step: &MoveStep) -> Result<usize, String> {
    let partition = step.partition as usize;
    if partition >= node.partitions.get() as usize || step.move_id.len() != 16 {
        return Err(format!("bad step: partition {partition} of {}", node.partitions.get()));
    }
    Ok(partition)
}

/// Whether this node's current map names it owner of `partition`.
async fn owns(node: &Node, partition: usize) -> Result<bool, String> {
    let (map, _) = super::read_map(&node.nats).await?;
    let id = crate::cluster::partition::PartitionId::new(partition as u32, node.partitions)
        .map_err(|e| e.to_string())?;
    Ok(map.owner(id) == Some(&node.id))
}

/// Checks that `step` is the move this node is taking for its partition.
fn held(node: &Node, step: &MoveStep) -> Result<usize, String> {
    let partition = partition(node, step)?;
    match node.imports.lock().expect("imports lock").get(&partition) {
        Some(id) if *id == step.move_id => Ok(partition),
        _ => Err(format!("no move {:02x?} of partition {partition} here", step.move_id)),
    }
}

/// `Begin`: drop any old copy, remember the move.
pub async fn begin(ctx: &ShardCtx, node: &Node, step: MoveStep) -> Result<(), String> {
    let partition = partition(node, &step)?;
    if owns(node, partition).await? {
        return Err(format!("node {} already owns partition {partition}", node.id));
    }
    memory::drop_partition(ctx, partition).await?;
    node.imports.lock().expect("imports lock").insert(partition, step.move_id);
    Ok(())
}

/// `Chunk`: write the pairs, synced.
pub fn chunk(ctx: &ShardCtx, node: &Node, chunk: Chunk) -> Result<(), String> {
    let step = chunk.step.ok_or("a chunk without its move")?;
    let partition = held(node, &step)?;
    let family = u8::try_from(chunk.family).ok().and_then(Family::from_code);
    let family = family.ok_or(format!("unknown family {}", chunk.family))?;
    if chunk.keys.len() != chunk.values.len() {
        return Err("a chunk's keys and values differ in number".into());
    }
    let pairs: Vec<Pair> = chunk.keys.into_iter().zip(chunk.values).collect();
    let range = (partition, node.partitions.get() as usize);
    let shard = partition % ctx.shard_count;
    units::write(&ctx.store, shard, family, range, &pairs).map_err(|e| e.to_string())
}

/// `Prepare` (replicated durability): bring the copy up to the log's end
/// from the partition's snapshot and log, with no fence: the source still
/// serves the partition meanwhile; `Load` catches the last entries up.
pub async fn prepare(ctx: &ShardCtx, node: &Node, step: MoveStep) -> Result<(), String> {
    let partition = held(node, &step)?;
    if node.states.is_none() {
        return Err("prepare is for replicated durability".into());
    }
    let (map, _) = super::read_map(&node.nats).await?;
    let adoption = adoption(ctx, node, partition, map.epoch());
    let applied = crate::cluster::replica::adopt::catch_up(&adoption).await;
    applied.map(drop).map_err(|error| error.to_string())
}

fn adoption<'a>(
    ctx: &'a ShardCtx,
    node: &'a Node,
    partition: usize,
    epoch: u64,
) -> crate::cluster::replica::adopt::Adoption<'a> {
    crate::cluster::replica::adopt::Adoption {
        nats: &node.nats,
        store: &ctx.store,
        shard: partition % ctx.shard_count,
        unit: (partition, node.partitions.get() as usize),
        replicas: node.config.map_replicas as usize,
        fence: (node.id.as_str(), epoch),
    }
}

/// `Load`: read the copied partition into the owning shard's memory;
/// replicated, first catch the copy up with the partition's log and fence
/// it (the frozen source appends nothing more), and make it ready.
pub async fn load(ctx: &ShardCtx, node: &Node, step: MoveStep) -> Result<(), String> {
    let partition = held(node, &step)?;
    let shard = partition % ctx.shard_count;
    let fenced = match &node.states {
        Some(_) => Some(fence(ctx, node, partition).await?),
        None => None,
    };
    memory::run(ctx, shard, partition, UnitOp::Load).await?;
    if let (Some(states), Some(seq)) = (&node.states, fenced) {
        states.ready(partition, seq);
    }
    Ok(())
}

/// Catches the copied `partition` up with its log and fences it.
async fn fence(ctx: &ShardCtx, node: &Node, partition: usize) -> Result<u64, String> {
    let (map, _) = super::read_map(&node.nats).await?;
    let adoption = adoption(ctx, node, partition, map.epoch());
    let fenced = crate::cluster::replica::adopt::catch_up_and_fence(&adoption).await;
    fenced.map_err(|error| error.to_string())
}

/// `Abort`: forget the move and its copy, unless the map gave us the partition.
pub async fn abort(ctx: &ShardCtx, node: &Node, step: MoveStep) -> Result<(), String> {
    let partition = held(node, &step)?;
    node.imports.lock().expect("imports lock").remove(&partition);
    if owns(node, partition).await? {
        return Ok(());
    }
    if let Some(states) = &node.states {
        states.unready(partition);
    }
    memory::drop_partition(ctx, partition).await
}

/// `Confirm`: whether this node still holds the move (it did not restart).
pub fn confirm(node: &Node, step: &MoveStep) -> Result<(), String> {
    held(node, step).map(|_| ())
}
