//! Catching a partition's local copy up with its log and fencing it: what
//! a node does before it serves a partition in replicated durability (at
//! start for the partitions it owns, after a takeover gave it some, at the
//! end of a move it is the target of, and after a failed append).
//!
//! Steps: open the log (made with the configured replicas if missing);
//! read and apply every entry after the sequence the local copy records;
//! append this node's fence naming the sequence it caught up to. When the
//! fence is refused, someone appended meanwhile (the deposed owner's last
//! batch): read on and fence again, at most [`FENCE_TRIES_MAX`] times.
//!
//! Invariants: an entry is applied, with the unit's applied-sequence
//! record, in one synced write, in log order, each exactly once; after
//! [`catch_up_and_fence`] returns `Ok(seq)` no append but this node's can
//! follow `seq` until someone fences after it; a log purged past the local
//! copy is caught up from the partition's snapshot first, and is
//! [`AdoptError::Behind`] when the snapshot does not reach the log either.

use super::entry::{self, Decoded};
use super::snapshot;
use crate::cluster::nats::error::NatsError;
use crate::cluster::nats::handle::NatsHandle;
use crate::store::{replica, units, Store, StoreError};
use bytes::Bytes;

/// Fences refused before adoption gives up (each means another append
/// came between the read and the fence).
pub const FENCE_TRIES_MAX: usize = 16;

/// Why a partition could not be caught up.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The log could not be read or appended to.
    #[error("partition log: {0}")]
    Log(#[from] NatsError),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// An entry of the log does not decode.
    #[error("log entry {seq}: {reason}")]
    Entry {
        /// Its sequence.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The log was purged past the local copy's sequence.
    #[error("the log starts at {first_seq}, after the local copy's {applied}")]
    Behind {
        /// The log's first sequence.
        first_seq: u64,
        /// The local copy's.
        applied: u64,
    },
    /// Others kept appending.
    #[error("the fence was refused {FENCE_TRIES_MAX} times")]
    Contended,
}

impl AdoptError {
    /// Whether trying again later may succeed (NATS was unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Log(error) if error.is_transient()) || matches!(self, Self::Contended)
    }
}

/// Where the unit's data lives here, and whose fence to write.
pub struct Adoption<'a> {
    /// The cluster thread.
    pub nats: &'a NatsHandle,
    /// The local store.
    pub store: &'a Store,
    /// The shard whose families hold the unit.
    pub shard: usize,
    /// The unit and the unit count.
    pub unit: (usize, usize),
    /// Replicas of a log made here.
    pub replicas: usize,
    /// This node's id and the map epoch it adopts in (the fence's content).
    pub fence: (&'a str, u64),
}

/// Catches the unit up with its log as it is now, without a fence (a
/// move's target, while the source still serves); the sequence applied.
pub async fn catch_up(adoption: &Adoption<'_>) -> Result<u64, AdoptError> {
    let (applied, last_seq) = restored(adoption).await?;
    replay(adoption, applied, last_seq).await
}

/// Opens the log and restores the snapshot when the log does not reach
/// the local copy; the sequence applied and the log's last.
async fn restored(adoption: &Adoption<'_>) -> Result<(u64, u64), AdoptError> {
    let partition = adoption.unit.0 as u32;
    let state = adoption.nats.log_ensure(partition, adoption.replicas).await?;
    let mut applied = units::applied_seq(adoption.store, adoption.shard, adoption.unit)?;
    if state.first_seq > applied + 1 && state.last_seq > applied {
        applied = restore_snapshot(adoption, state.first_seq, applied).await?;
    }
    Ok((applied, state.last_seq))
}

/// Catches the unit up and fences it; the fence's sequence (the next
/// append must follow it).
pub async fn catch_up_and_fence(adoption: &Adoption<'_>) -> Result<u64, AdoptError> {
    let partition = adoption.unit.0 as u32;
    let (mut applied, mut last_seq) = restored(adoption).await?;
    for _ in 0..FENCE_TRIES_MAX {
        applied = replay(adoption, applied, last_seq).await?;
        let fence = Bytes::from(entry::encode_fence(adoption.fence.0, adoption.fence.1));
        match adoption.nats.log_append(partition, applied, fence).await {
            Ok(seq) => {
                replica::apply_caught_up(adoption.store, adoption.shard, adoption.unit, &[], seq)?;
                return Ok(seq);
            }
            Err(NatsError::WrongLastSequence(_)) => {
                last_seq = adoption.nats.log_state(partition).await?.last_seq;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(AdoptError::Contended)
}

/// Replaces the local copy with the partition's snapshot, which must
/// reach the log's first sequence; the sequence it covers.
async fn restore_snapshot(
    adoption: &Adoption<'_>,
    first_seq: u64,
    applied: u64,
) -> Result<u64, AdoptError> {
    let partition = adoption.unit.0 as u32;
    let behind = AdoptError::Behind { first_seq, applied };
    let Some(bytes) = adoption.nats.snapshot_get(partition, adoption.replicas).await? else {
        return Err(behind);
    };
    let decoded = snapshot::decode(&bytes, adoption.unit)
        .map_err(|error| AdoptError::Entry { seq: 0, reason: format!("snapshot: {error}") })?;
    if decoded.0 + 1 < first_seq {
        return Err(behind);
    }
    snapshot::restore(adoption.store, adoption.shard, adoption.unit, &decoded)?;
    tracing::info!(partition, seq = decoded.0, "partition restored from its snapshot");
    Ok(decoded.0)
}

/// Applies the entries after `applied` through `last_seq`; the sequence
/// applied through.
async fn replay(
    adoption: &Adoption<'_>,
    mut applied: u64,
    last_seq: u64,
) -> Result<u64, AdoptError> {
    let partition = adoption.unit.0 as u32;
    while applied < last_seq {
        let entries = adoption.nats.log_read(partition, (applied + 1, last_seq)).await?;
        if entries.is_empty() {
            let reason = format!("no entries read after {applied}");
            return Err(AdoptError::Log(NatsError::Unavailable(reason)));
        }
        let mut ops = Vec::new();
        for (seq, bytes) in entries {
            if seq != applied + 1 {
                let reason = format!("expected {} next", applied + 1);
                return Err(AdoptError::Entry { seq, reason });
            }
            match entry::decode(&bytes, adoption.unit) {
                Ok(Decoded::Ops(entry_ops)) => ops.extend(entry_ops),
                Ok(Decoded::Fence { .. }) => {}
                Err(error) => return Err(AdoptError::Entry { seq, reason: error.to_string() }),
            }
            applied = seq;
        }
        replica::apply_caught_up(adoption.store, adoption.shard, adoption.unit, &ops, applied)?;
    }
    Ok(applied)
}
