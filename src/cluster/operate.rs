//! The operator's cluster commands that change it: `cluster move` (one
//! partition to one node, run by the partition's owner), `cluster
//! rebalance` (the fewest moves to an even spread over the live nodes, one
//! after the other) and `cluster snapshot` (replicated durability: a
//! partition's snapshot now, its log purged up to it). Runs in the `switchboard` CLI process, which connects
//! to NATS only (it holds no data).
//!
//! Invariants: a move is asked of the partition's owner by the map read
//! just before; the command waits for the owner's answer (the move is done
//! or was undone) up to [`MOVE_TIMEOUT_MS`]; a rebalance stops at the first
//! failed move and says which.

use super::map::{plan_rebalance, Absent, Move, PartitionMap};
use super::moves::admin_subject;
use super::moves::messages::{
    self, AdminReply, AdminRequest, MovePartition, SnapshotPartition, Step,
};
use super::nats::handle::NatsHandle;
use super::nats::options::NatsOptions;
use super::partition::PartitionId;
use bytes::Bytes;

/// Longest wait for one move, ms (copying is bounded by disk and network).
pub const MOVE_TIMEOUT_MS: u64 = 300_000;

/// A connection to the cluster for the operator's commands.
pub struct Operator {
    nats: NatsHandle,
    cluster: String,
    runtime: tokio::runtime::Runtime,
}

impl Operator {
    /// Connects to cluster `cluster` through `urls` (its buckets must exist).
    pub fn connect(urls: Vec<String>, cluster: &str) -> Result<Self, String> {
        let id = format!("operator-{}", std::process::id());
        let mut options = NatsOptions::new(urls, cluster, &id);
        options.open_only = true;
        options.startup_timeout_ms = 5_000;
        options.request_timeout_ms = MOVE_TIMEOUT_MS;
        let (nats, _thread) = super::nats::thread::spawn(options).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { nats, cluster: cluster.to_string(), runtime })
    }

    /// The cluster's map now.
    pub fn map(&self) -> Result<PartitionMap, String> {
        let (map, _) = self.runtime.block_on(super::moves::read_map(&self.nats))?;
        Ok(map)
    }

    /// Moves `partition` to node `to`; the map's epoch after it.
    pub fn move_partition(&self, partition: u32, to: &str) -> Result<u64, String> {
        let map = self.map()?;
        let id = PartitionId::new(partition, map.partition_count()).map_err(|e| e.to_string())?;
        let owner = map.owner(id).ok_or("no owner")?.as_str().to_string();
        if owner == to {
            return Ok(map.epoch());
        }
        let step = Step::Move(MovePartition { partition, to: to.to_string() });
        let reply = self.ask(&owner, step)?;
        match reply.ok {
            true => Ok(reply.epoch),
            false => Err(format!("owner {owner}: {}", reply.error)),
        }
    }

    /// Has `partition`'s owner snapshot it and purge its log; the log
    /// sequence the snapshot covers.
    pub fn snapshot_partition(&self, partition: u32) -> Result<u64, String> {
        let map = self.map()?;
        let id = PartitionId::new(partition, map.partition_count()).map_err(|e| e.to_string())?;
        let owner = map.owner(id).ok_or("no owner")?.as_str().to_string();
        let step = Step::Snapshot(SnapshotPartition { partition });
        let reply = self.ask(&owner, step)?;
        match reply.ok {
            true => Ok(reply.seq),
            false => Err(format!("owner {owner}: {}", reply.error)),
        }
    }

    fn ask(&self, owner: &str, step: Step) -> Result<AdminReply, String> {
        let request = messages::encode(&AdminRequest { step: Some(step) });
        let subject = admin_subject(&self.cluster, owner);
        let reply = self.runtime.block_on(self.nats.request(&subject, Bytes::from(request)));
        let reply = reply.map_err(|e| format!("owner {owner}: {e}"))?;
        messages::decode(&reply).map_err(|e| e.to_string())
    }

    /// The moves an even spread over the live nodes needs.
    pub fn plan(&self) -> Result<Vec<Move>, String> {
        let map = self.map()?;
        let nodes = self.runtime.block_on(self.nats.nodes()).map_err(|e| e.to_string())?;
        let live: Vec<_> = nodes
            .iter()
            .filter_map(|record| super::identity::NodeId::new(&record.id).ok())
            .collect();
        if live.is_empty() {
            return Err("no live node".into());
        }
        plan_rebalance(&map, &live, Absent::Keep).map_err(|e| e.to_string())
    }
}
