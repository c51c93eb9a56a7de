//! Cluster mode (off unless `--cluster-nats` is given): several nodes share
//! the accounts by partition, coordinated through a NATS JetStream cluster.
//!
//! - [`partition`]: which partition an account is in, and which local shard
//!   serves a partition.
//! - [`map`]: the partition map (partition -> node) and its epoch, its
//!   binary encoding, the even spread and the moves that reach it.
//! - [`identity`]: what a data directory was made for (cluster, node, P);
//!   a node refuses to start on a directory made for another.
//! - [`nats`]: the cluster thread (tokio, async-nats) the shards reach over
//!   rings: membership heartbeats and the map bucket.
//! - [`node`]: joining the cluster at start-up (register, find or create
//!   the map, check the data directory, subscribe to the call subject).
//! - [`link`]: one shard's view of the cluster: where each partition is
//!   served, calls to other nodes, other nodes' internal addresses.
//! - [`freeze`]: frozen partitions and the calls running in each.
//! - [`moves`]: moving a partition to another node (copy, flip, drop).
//! - [`operate`]: the operator's `cluster move` and `cluster rebalance`.
//! - [`replica`]: replicated durability: the partition logs, catching
//!   up, fencing, and taking over a dead node's partitions.
//! - [`report`]: the text of `cluster status` and `cluster haproxy-map`.
//! - [`wire`]: the versioned binary encoding (prost) of a call and its
//!   answer between nodes, with the map epoch and the request id.
//!
//! Invariants: with cluster mode off nothing here runs and single-box
//! behaviour is unchanged; the map changes only by compare-and-swap on its
//! revision (the epoch); a partition has exactly one owner in any epoch.
//!
//! Imports: `config`, `shard`, `protocol`. Used by `calls` (a transport
//! under it, never a second router) and `server`.

pub mod freeze;
pub mod identity;
pub mod link;
pub mod map;
pub mod moves;
pub mod nats;
pub mod node;
pub mod operate;
pub mod partition;
pub mod replica;
pub mod report;
pub mod wire;
