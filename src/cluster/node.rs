//! Joining a cluster at start-up: connect the cluster thread, register this
//! node (client and internal addresses, heartbeated), find or create the
//! partition map, check the data directory was made for this node, cluster
//! and `P`, and subscribe to the node's call subject.
//!
//! The first map: a node that finds none waits until every node of
//! `initial_nodes` (this node alone when the list is empty) is registered,
//! then creates [`PartitionMap::initial`] over them; several nodes racing do
//! no harm, KV `create` lets exactly one win and the others read its map.
//!
//! Invariants: [`join`] returns only with a map of this node's `P` in the
//! watch and the data directory's identity checked; a map of another `P`,
//! or a directory made for another node, cluster or `P`, stops start-up
//! with an error that names it. Runs before the shards start, on the
//! starting thread (it blocks on the cluster thread's answers).

use super::freeze::Freezer;
use super::identity::{self, DataDirIdentity, NodeId};
use super::map::PartitionMap;
use super::moves::admin_subject;
use super::nats::error::NatsError;
use super::nats::handle::NatsHandle;
use super::nats::options::NatsOptions;
use super::nats::serve::CallIntake;
use super::partition::PartitionCount;
use crate::config::cluster::ClusterConfig;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls from other nodes waiting for this node's shards, at most.
pub const CALL_INTAKE_SLOTS: usize = 4096;

/// Admin requests (moves' steps) waiting, at most.
pub const ADMIN_INTAKE_SLOTS: usize = 64;

/// How often a node waiting for the initial nodes looks again, ms.
const MAP_POLL_MS: u64 = 200;

/// How often the wait for the initial nodes is logged, ms.
const WAIT_LOG_MS: u64 = 5_000;

/// A node that joined its cluster: what every shard's link shares.
pub struct Node {
    /// The cluster thread.
    pub nats: NatsHandle,
    /// This node's id.
    pub id: NodeId,
    /// The cluster's settings.
    pub config: ClusterConfig,
    /// `P`, from the cluster's map.
    pub partitions: PartitionCount,
    /// Calls from other nodes; taken once, by the shard that serves them.
    pub intake: Mutex<Option<CallIntake>>,
    /// Admin requests (moves); taken once, by the shard that serves them.
    pub admin_intake: Mutex<Option<CallIntake>>,
    /// Frozen partitions and the calls running in each.
    pub freezer: Arc<Freezer>,
    /// Moves this node is the target of: partition -> move id.
    pub imports: Mutex<HashMap<usize, Vec<u8>>>,
    /// Replicated durability: each partition's log state (`None` otherwise).
    pub states: Option<Arc<super::replica::states::UnitStates>>,
}

/// Deletes from `store` the partitions the map does not give this node (a
/// copy left by a move that crashed, or a partition that moved away while
/// it was down); the partitions dropped. Runs before the shards load.
pub fn drop_unowned(
    store: &crate::store::Store,
    node: &Node,
    shard_count: usize,
) -> anyhow::Result<Vec<u32>> {
    let version = node.nats.watch_map().current().ok_or(anyhow::anyhow!("no map"))?;
    let map = PartitionMap::decode(&version.bytes)?;
    let count = node.partitions.get() as usize;
    let mut dropped = Vec::new();
    for partition in node.partitions.partitions() {
        let (index, shard) = (partition.index(), partition.index() as usize % shard_count);
        let unit = (index as usize, count);
        if map.owner(partition) != Some(&node.id)
            && crate::store::units::has_data(store, shard, unit)?
        {
            crate::store::units::delete(store, shard, unit)?;
            dropped.push(index);
        }
    }
    if !dropped.is_empty() {
        tracing::warn!(?dropped, "dropped the local copies of partitions other nodes own");
    }
    Ok(dropped)
}

/// The NATS subject node `node` of cluster `cluster` takes calls on.
pub fn call_subject(cluster: &str, node: &str) -> String {
    format!("switchboard.{cluster}.call.{node}")
}

/// Joins the cluster `config` names (see the module doc); `client_addr`
/// and `internal_addr` are the bound listeners' addresses; `replicated`:
/// the node's durability is replicated (its partitions start not ready).
pub fn join(
    config: &ClusterConfig,
    data_dir: &Path,
    client_addr: &str,
    internal_addr: SocketAddr,
    replicated: bool,
) -> anyhow::Result<Arc<Node>> {
    let id = NodeId::new(&config.node_id)?;
    let mut options = NatsOptions::new(config.nats.clone(), &config.name, &config.node_id);
    options.replicas = config.map_replicas as usize;
    options.heartbeat_interval_ms = config.heartbeat_interval_ms;
    options.node_ttl_ms = config.heartbeat_ttl_ms;
    options.request_timeout_ms = config.call_timeout_ms;
    let (nats, _thread) = super::nats::thread::spawn(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let internal = internal_addr.to_string();
    runtime.block_on(refuse_a_live_namesake(&nats, config))?;
    runtime.block_on(retry_transient(|| nats.register_node(client_addr, &internal)))?;
    let map = runtime.block_on(find_or_create_map(&nats, config))?;
    let partitions = map.partition_count();
    let asked = DataDirIdentity { cluster: config.name.clone(), node_id: id.clone(), partitions };
    identity::check_or_create(data_dir, &asked)?;
    let subject = call_subject(&config.name, &config.node_id);
    let intake = runtime.block_on(retry_transient(|| nats.serve(&subject, CALL_INTAKE_SLOTS)))?;
    tracing::info!(
        node = %id, epoch = map.epoch(), partitions = partitions.get(),
        owned = map.partitions_of(&id).len(), "joined the cluster"
    );
    let admin = admin_subject(&config.name, &config.node_id);
    let within = Some(Duration::from_millis(super::operate::MOVE_TIMEOUT_MS));
    let serving = retry_transient(|| nats.serve_within(&admin, ADMIN_INTAKE_SLOTS, within));
    let admin_intake = runtime.block_on(serving)?;
    let node = Node {
        nats,
        id,
        config: config.clone(),
        partitions,
        intake: Mutex::new(Some(intake)),
        admin_intake: Mutex::new(Some(admin_intake)),
        freezer: Arc::new(Freezer::new(partitions.get() as usize)),
        imports: Mutex::new(HashMap::new()),
        states: replicated
            .then(|| Arc::new(super::replica::states::UnitStates::new(partitions.get() as usize))),
    };
    Ok(Arc::new(node))
}

/// How long start-up retries a transient NATS error (a bucket another node
/// just created may not be ready on every server yet), ms.
const STARTUP_RETRY_MS: u64 = 20_000;

/// `operation`, again after transient errors, for at most [`STARTUP_RETRY_MS`].
async fn retry_transient<T, F, Fut>(operation: F) -> Result<T, NatsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, NatsError>>,
{
    let deadline = Instant::now() + Duration::from_millis(STARTUP_RETRY_MS);
    loop {
        match operation().await {
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tracing::info!(%error, "cluster start-up: retrying");
                tokio::time::sleep(Duration::from_millis(MAP_POLL_MS)).await;
            }
            result => return result,
        }
    }
}

/// Refuses to join while another process heartbeats under this node's id
/// (both would take its calls). A record left by this node's previous run
/// (killed, restarted within the TTL) stops changing: it is watched for
/// one heartbeat interval and a half before registering over it.
/// A membership bucket that cannot be read yet (just created by a node
/// starting beside this one) cannot hold a namesake's record either: the
/// check then passes, with a warning.
async fn refuse_a_live_namesake(nats: &NatsHandle, config: &ClusterConfig) -> anyhow::Result<()> {
    let seen = |read: Result<Vec<super::nats::record::NodeRecord>, NatsError>| match read {
        Ok(records) => {
            records.into_iter().find(|record| record.id == config.node_id).map(|r| r.last_seen_ms)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the members to check the node id is free");
            None
        }
    };
    let Some(first) = seen(retry_transient(|| nats.nodes()).await) else { return Ok(()) };
    tokio::time::sleep(Duration::from_millis(config.heartbeat_interval_ms * 3 / 2)).await;
    match seen(retry_transient(|| nats.nodes()).await) {
        Some(later) if later > first => anyhow::bail!(
            "node id {} is in use: another live node heartbeats under it (node ids must be unique)",
            config.node_id
        ),
        _ => Ok(()),
    }
}

/// The cluster's map: read, or created over the initial nodes once they
/// are all registered.
async fn find_or_create_map(
    nats: &NatsHandle,
    config: &ClusterConfig,
) -> anyhow::Result<PartitionMap> {
    let initial: Vec<NodeId> =
        config.initial_node_ids().iter().map(|id| NodeId::new(id)).collect::<Result<_, _>>()?;
    let count = PartitionCount::new(config.partitions)?;
    let mut last_log = Instant::now();
    loop {
        if let Some(version) = retry_transient(|| nats.read_map()).await? {
            return Ok(PartitionMap::decode(&version.bytes)?);
        }
        let live = retry_transient(|| nats.nodes()).await?;
        let missing: Vec<&NodeId> =
            initial.iter().filter(|id| !live.iter().any(|r| r.id == id.as_str())).collect();
        if missing.is_empty() {
            let map = PartitionMap::initial(count, &initial)?;
            match nats.create_map(Bytes::from(map.encode())).await {
                Ok(_) | Err(NatsError::MapExists) => continue,
                Err(error) if error.is_transient() => {}
                Err(error) => return Err(error.into()),
            }
        } else if last_log.elapsed() >= Duration::from_millis(WAIT_LOG_MS) {
            last_log = Instant::now();
            tracing::warn!(?missing, "no partition map yet: waiting for the initial nodes");
        }
        tokio::time::sleep(Duration::from_millis(MAP_POLL_MS)).await;
    }
}
