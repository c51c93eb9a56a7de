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
//! - [`report`]: the text of `cluster status` and `cluster haproxy-map`.
//!
//! Invariants: with cluster mode off nothing here runs and single-box
//! behaviour is unchanged; the map changes only by compare-and-swap on its
//! revision (the epoch); a partition has exactly one owner in any epoch.
//!
//! Imports: `config`, `shard`, `protocol`. Used by `calls` (a transport
//! under it, never a second router) and `server`.

pub mod identity;
pub mod map;
pub mod nats;
pub mod partition;
pub mod report;
