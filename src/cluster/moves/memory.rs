//! A shard's in-memory share of one partition, changed by a move: load what
//! the store holds of it (moved in), drop it (moved away), or close the
//! WebSockets of its devices (they reconnect to the new owner).
//!
//! Invariant: runs on the shard that owns the partition's data (its index
//! is `partition mod S`); [`run`] gets it there through the mesh.

use crate::accounts::AuthedDevice;
use crate::directory::owner_of_hash;
use crate::protocol::discovery::IdentifierHash;
use crate::shard::mailbox::SessionEvent;
use crate::shard::msg::{ShardMsg, UnitOp};
use crate::shard::place::unit_of;
use crate::shard::ShardCtx;
use crate::store::accounts::AccountRecord;
use crate::store::units::{self, Family};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use uuid::Uuid;

/// Does `op` for partition `unit` on this shard.
pub fn apply(ctx: &ShardCtx, unit: usize, op: UnitOp) -> Result<(), String> {
    let units = ctx.unit_count();
    let in_unit = move |uuid: &Uuid| unit_of(uuid, units) == unit;
    match op {
        UnitOp::CloseSessions => {
            let handles = ctx.sessions.borrow().handles_where(|device| in_unit(&device.account));
            for handle in handles {
                handle.mailbox.push(SessionEvent::Shutdown);
            }
        }
        UnitOp::Load => load(ctx, unit).map_err(|error| error.to_string())?,
        UnitOp::Drop => {
            ctx.accounts.retain(|uuid| !in_unit(uuid));
            ctx.directory.retain(|hash| owner_of_hash(hash, units) != unit);
            ctx.queue_lens.retain(|device| !in_unit(&device.account));
        }
    }
    ctx.stats().accounts.store(ctx.accounts.len() as u64, Ordering::Relaxed);
    ctx.stats().directory_entries.store(ctx.directory.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Does `op` for partition `unit` on `shard`: here, or through the mesh.
pub async fn run(ctx: &ShardCtx, shard: usize, unit: usize, op: UnitOp) -> Result<(), String> {
    if shard == ctx.id {
        return apply(ctx, unit, op);
    }
    let (done, finished) = futures_channel::oneshot::channel();
    let msg = ShardMsg::Unit { unit, op, done };
    if ctx.mesh.send_to(shard, msg).await.is_err() {
        return Err(format!("shard {shard}'s ring stayed full"));
    }
    finished.await.map_err(|_| format!("shard {shard} did not answer"))?
}

/// Forgets partition `unit` on this node: its shard's memory first (so
/// nothing is served from it), then its keys on disk, synced.
pub async fn drop_partition(ctx: &ShardCtx, unit: usize) -> Result<(), String> {
    let shard = unit % ctx.shard_count;
    run(ctx, shard, unit, UnitOp::Drop).await?;
    let range = (unit, ctx.unit_count());
    units::delete(&ctx.store, shard, range).map_err(|error| error.to_string())
}

/// Bytes of one family read at a time while loading.
const LOAD_CHUNK_BYTES: usize = 4 << 20;

/// Calls `each` on every pair of partition `range` in `family` of this
/// shard, reading [`LOAD_CHUNK_BYTES`] at a time.
fn for_each_pair(
    ctx: &ShardCtx,
    family: Family,
    range: (usize, usize),
    mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for pairs in units::chunks(&ctx.store, ctx.id, family, range, LOAD_CHUNK_BYTES) {
        for (key, value) in pairs? {
            each(key, value)?;
        }
    }
    Ok(())
}

/// Reads the partition's accounts, directory entries and queue lengths
/// from this shard's families into memory.
fn load(ctx: &ShardCtx, unit: usize) -> Result<(), StoreError> {
    let range = (unit, ctx.unit_count());
    let corrupt =
        |family: &str, reason: String| StoreError::Corrupt { family: family.to_string(), reason };
    let mut accounts = Vec::new();
    for_each_pair(ctx, Family::Accounts, range, |key, value| {
        let uuid = Uuid::from_slice(&key).map_err(|_| corrupt("accounts", "key".into()))?;
        accounts.push((uuid, AccountRecord::decode(&value).map_err(|e| corrupt("accounts", e))?));
        Ok(())
    })?;
    let mut entries = Vec::new();
    for_each_pair(ctx, Family::Directory, range, |key, value| {
        let hash =
            IdentifierHash::try_from(&key[..]).map_err(|_| corrupt("directory", "key".into()))?;
        let uuid = Uuid::from_slice(&value).map_err(|_| corrupt("directory", "value".into()))?;
        entries.push((hash, uuid));
        Ok(())
    })?;
    let mut counts: HashMap<AuthedDevice, u32> = HashMap::new();
    for_each_pair(ctx, Family::Messages, range, |key, _| {
        if let Some((account, device_id, _, _)) = crate::store::messages::parse_key(&key) {
            *counts.entry(AuthedDevice { account, device_id }).or_insert(0) += 1;
        }
        Ok(())
    })?;
    ctx.accounts.insert_loaded(accounts);
    ctx.directory.insert_loaded(entries);
    ctx.queue_lens.insert_loaded(counts);
    Ok(())
}
