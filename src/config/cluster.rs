//! Cluster mode's settings: the `[cluster]` section of the file, which is
//! absent (cluster mode off, the default) unless the file has it or
//! `--cluster-nats` is given.
//!
//! Owns: the shape, defaults and validation of the section, and how the
//! per-node flags ([`ClusterOverrides`]) merge over it. Nothing here opens a
//! connection: the cluster thread reads a validated [`ClusterConfig`].
//!
//! Invariants: a [`ClusterConfig`] that passed [`ClusterConfig::validate`]
//! has 1 to [`NATS_URLS_MAX`] distinct `nats://` or `tls://` URLs, a
//! `node_id` and `name` of [`NAME_LEN_MAX`] characters at most from
//! `[a-z0-9-]`, a `listen` address clashing with no other listener,
//! `partitions` a power of two and `heartbeat_interval_ms * 2 <
//! heartbeat_ttl_ms`.

use super::cluster_addrs::{addrs_clash, check_host_port, check_nats_url, redact};
use super::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Most NATS server URLs a node is given (seeds; it learns the rest).
pub const NATS_URLS_MAX: usize = 16;
pub use super::cluster_addrs::URL_BYTES_MAX;
/// Longest node id or cluster name, in characters.
pub const NAME_LEN_MAX: usize = 64;
/// Most partitions a cluster may be created with.
pub const PARTITIONS_MAX: u32 = 4096;
/// Shortest and longest heartbeat TTL: a dead node's partitions answer 503
/// for up to this long before it counts as gone.
pub const HEARTBEAT_TTL_MS_MIN: u64 = 1000;
/// See [`HEARTBEAT_TTL_MS_MIN`].
pub const HEARTBEAT_TTL_MS_MAX: u64 = 600_000;
/// Shortest heartbeat interval: more often only loads the NATS servers.
pub const HEARTBEAT_INTERVAL_MS_MIN: u64 = 100;
/// Shortest and longest wait for a call to another node.
pub const CALL_TIMEOUT_MS_MIN: u64 = 10;
/// See [`CALL_TIMEOUT_MS_MIN`].
pub const CALL_TIMEOUT_MS_MAX: u64 = 60_000;
/// Most replicas of the map bucket (JetStream's own maximum).
pub const MAP_REPLICAS_MAX: u32 = 5;
/// Longest pause a move may take between chunks, ms.
pub const MOVE_CHUNK_PAUSE_MS_MAX: u64 = 10_000;
/// Most nodes `initial_nodes` may list.
pub const INITIAL_NODES_MAX: usize = 64;

const PARTITIONS_DEFAULT: u32 = 64;
const HEARTBEAT_TTL_MS_DEFAULT: u64 = 10_000;
const HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 2000;
const SNAPSHOT_INTERVAL_MS_DEFAULT: u64 = 60_000;
const SNAPSHOT_ENTRIES_MIN_DEFAULT: u64 = 10_000;
/// The shortest and longest `snapshot_interval_ms`.
pub const SNAPSHOT_INTERVAL_MS_RANGE: (u64, u64) = (1_000, 86_400_000);
/// The most `snapshot_entries_min`.
pub const SNAPSHOT_ENTRIES_MIN_MAX: u64 = 100_000_000;
const CALL_TIMEOUT_MS_DEFAULT: u64 = 2000;
const MAP_REPLICAS_DEFAULT: u32 = 3;

// A live node must get at least two heartbeats into every TTL, so that one
// late heartbeat does not expire it.
const _: () = assert!(HEARTBEAT_INTERVAL_MS_DEFAULT * 2 < HEARTBEAT_TTL_MS_DEFAULT);
const _: () = assert!(HEARTBEAT_INTERVAL_MS_MIN * 2 < HEARTBEAT_TTL_MS_MIN);
const _: () = assert!(PARTITIONS_DEFAULT.is_power_of_two() && PARTITIONS_MAX.is_power_of_two());
const _: () = assert!(PARTITIONS_DEFAULT <= PARTITIONS_MAX);
const _: () = assert!(MAP_REPLICAS_DEFAULT <= MAP_REPLICAS_MAX);

/// Cluster mode: this node's part in a cluster of switchboard nodes sharing
/// accounts by partition through NATS JetStream. Every field has a default
/// so that a shared file may leave the per-node ones (`node_id`, `listen`)
/// to flags or the environment; validation then requires them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:port` or `tls://host:port`, user
    /// info allowed) the node connects to; at least one.
    pub nats: Vec<String>,
    /// This node's id, unique in the cluster and fixed for its data
    /// directory: 1 to 64 characters of `[a-z0-9-]`, not starting with `-`.
    pub node_id: String,
    /// The internal listener other nodes forward connections (and calls'
    /// streams) to. Required; must differ from `listen` and `admin_listen`.
    pub listen: Option<SocketAddr>,
    /// The client address (`host:port`) other nodes and `cluster status`
    /// print for this node; `None` means the top-level `listen`.
    pub advertise: Option<String>,
    /// The cluster's name, which a data directory is made for; the same
    /// charset as `node_id`.
    pub name: String,
    /// Partitions (a power of two, 1 to 4096). Used only when the cluster
    /// is created; an existing cluster keeps the count it was made with.
    pub partitions: u32,
    /// A node whose heartbeat is older than this counts as down.
    pub heartbeat_ttl_ms: u64,
    /// How often a node heartbeats; less than half of `heartbeat_ttl_ms`.
    pub heartbeat_interval_ms: u64,
    /// Longest wait for another node's answer to a call before 503.
    pub call_timeout_ms: u64,
    /// Replicas of the map and membership buckets (at most the NATS
    /// cluster's size).
    pub map_replicas: u32,
    /// The nodes a new cluster's first map spreads its partitions over: the
    /// map is created once all of them are registered. Empty: this node
    /// alone (a cluster that grows by moves). Ignored once the map exists.
    pub initial_nodes: Vec<String>,
    /// A move pauses this long after each chunk it copies (a throttle on
    /// the disk and network a move takes from serving; 0: no pause).
    pub move_chunk_pause_ms: u64,
    /// Replicated durability: how often an owner looks whether a
    /// partition's log grew enough to snapshot it (and purge the log).
    pub snapshot_interval_ms: u64,
    /// Replicated durability: log entries since the last snapshot that
    /// make a partition due for the next one.
    pub snapshot_entries_min: u64,
}

impl Default for ClusterConfig {
    /// No NATS URLs, node id or listener yet (not valid as is).
    fn default() -> Self {
        Self {
            nats: Vec::new(),
            node_id: String::new(),
            listen: None,
            advertise: None,
            name: "switchboard".to_string(),
            partitions: PARTITIONS_DEFAULT,
            heartbeat_ttl_ms: HEARTBEAT_TTL_MS_DEFAULT,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS_DEFAULT,
            call_timeout_ms: CALL_TIMEOUT_MS_DEFAULT,
            map_replicas: MAP_REPLICAS_DEFAULT,
            initial_nodes: Vec::new(),
            move_chunk_pause_ms: 0,
            snapshot_interval_ms: SNAPSHOT_INTERVAL_MS_DEFAULT,
            snapshot_entries_min: SNAPSHOT_ENTRIES_MIN_DEFAULT,
        }
    }
}

/// The cluster settings a node takes from flags or `SWITCHBOARD_*`
/// variables, which win over the file's `[cluster]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterOverrides {
    /// `--cluster-nats URL,...`: turns cluster mode on.
    pub nats: Option<Vec<String>>,
    /// `--node-id ID`.
    pub node_id: Option<String>,
    /// `--cluster-listen ADDR`.
    pub listen: Option<SocketAddr>,
    /// `--cluster-advertise HOST:PORT`.
    pub advertise: Option<String>,
    /// `--partitions P`.
    pub partitions: Option<u32>,
    /// `--cluster-initial-nodes ID,...`.
    pub initial_nodes: Option<Vec<String>>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid { field, reason: reason.into() })
}

impl ClusterOverrides {
    /// Merges these over `cluster` (the file's section, if any). Cluster
    /// mode is on after this when the file had the section or `nats` is
    /// given; any other override without either is refused, naming it.
    pub fn apply(self, cluster: &mut Option<ClusterConfig>) -> Result<(), ConfigError> {
        if cluster.is_none() && self.nats.is_none() {
            let given = [
                ("cluster.node_id", "--node-id (SWITCHBOARD_NODE_ID)", self.node_id.is_some()),
                (
                    "cluster.listen",
                    "--cluster-listen (SWITCHBOARD_CLUSTER_LISTEN)",
                    self.listen.is_some(),
                ),
                (
                    "cluster.advertise",
                    "--cluster-advertise (SWITCHBOARD_CLUSTER_ADVERTISE)",
                    self.advertise.is_some(),
                ),
                (
                    "cluster.partitions",
                    "--partitions (SWITCHBOARD_PARTITIONS)",
                    self.partitions.is_some(),
                ),
                (
                    "cluster.initial_nodes",
                    "--cluster-initial-nodes (SWITCHBOARD_CLUSTER_INITIAL_NODES)",
                    self.initial_nodes.is_some(),
                ),
            ];
            return match given.iter().find(|(_, _, set)| *set) {
                Some((field, flag, _)) => invalid(
                    field,
                    format!(
                        "{flag} needs --cluster-nats (SWITCHBOARD_CLUSTER_NATS) or a [cluster] \
                         section in the config file"
                    ),
                ),
                None => Ok(()),
            };
        }
        let section = cluster.get_or_insert_with(ClusterConfig::default);
        if let Some(nats) = self.nats {
            section.nats = nats;
        }
        if let Some(node_id) = self.node_id {
            section.node_id = node_id;
        }
        if let Some(listen) = self.listen {
            section.listen = Some(listen);
        }
        if let Some(advertise) = self.advertise {
            section.advertise = Some(advertise);
        }
        if let Some(partitions) = self.partitions {
            section.partitions = partitions;
        }
        if let Some(initial_nodes) = self.initial_nodes {
            section.initial_nodes = initial_nodes;
        }
        Ok(())
    }
}

impl ClusterConfig {
    /// Checks every field, given the node's other listeners (`listen`, and
    /// `admin_listen` unless off): the error names the first at fault.
    pub fn validate(
        &self,
        listen: SocketAddr,
        admin_listen: Option<SocketAddr>,
    ) -> Result<(), ConfigError> {
        self.validate_nats()?;
        if self.node_id.is_empty() {
            return invalid("cluster.node_id", "is required in cluster mode (--node-id)");
        }
        if let Err(reason) = check_name(&self.node_id) {
            return invalid("cluster.node_id", format!("{reason} (--node-id)"));
        }
        if let Err(reason) = check_name(&self.name) {
            return invalid("cluster.name", reason);
        }
        let Some(cluster_listen) = self.listen else {
            return invalid(
                "cluster.listen",
                "is required in cluster mode: the internal address other nodes forward \
                 connections to (--cluster-listen)",
            );
        };
        if addrs_clash(cluster_listen, listen) {
            return invalid("cluster.listen", "must differ from listen (the client listener)");
        }
        if admin_listen.is_some_and(|admin| addrs_clash(cluster_listen, admin)) {
            return invalid("cluster.listen", "must differ from admin_listen");
        }
        if let Some(advertise) = &self.advertise {
            if let Err(reason) = check_host_port(advertise) {
                return invalid("cluster.advertise", format!("{reason}, like host:8080"));
            }
        }
        self.validate_initial_nodes()?;
        self.validate_numbers()
    }

    /// The nodes of a new cluster's first map: `initial_nodes`, or this
    /// node alone when it is empty.
    pub fn initial_node_ids(&self) -> Vec<String> {
        match self.initial_nodes.is_empty() {
            true => vec![self.node_id.clone()],
            false => self.initial_nodes.clone(),
        }
    }

    fn validate_initial_nodes(&self) -> Result<(), ConfigError> {
        if self.initial_nodes.len() > INITIAL_NODES_MAX {
            return invalid(
                "cluster.initial_nodes",
                format!("lists at most {INITIAL_NODES_MAX} nodes"),
            );
        }
        for (index, node) in self.initial_nodes.iter().enumerate() {
            if let Err(reason) = check_name(node) {
                return invalid("cluster.initial_nodes", format!("entry {}: {reason}", index + 1));
            }
            if self.initial_nodes[..index].contains(node) {
                return invalid("cluster.initial_nodes", format!("{node} is listed twice"));
            }
        }
        Ok(())
    }

    /// The client address other nodes and `cluster status` print: the
    /// `advertise` setting, or else the node's `listen`.
    pub fn client_addr(&self, listen: SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| listen.to_string())
    }

    fn validate_nats(&self) -> Result<(), ConfigError> {
        if self.nats.is_empty() || self.nats.len() > NATS_URLS_MAX {
            return invalid(
                "cluster.nats",
                format!(
                    "must list 1 to {NATS_URLS_MAX} NATS URLs (--cluster-nats URL,...), \
                     not {}",
                    self.nats.len()
                ),
            );
        }
        for (index, url) in self.nats.iter().enumerate() {
            if let Err(reason) = check_nats_url(url) {
                return invalid("cluster.nats", format!("{:?}: {reason}", redact(url)));
            }
            if self.nats[..index].contains(url) {
                return invalid("cluster.nats", format!("{:?} is listed twice", redact(url)));
            }
        }
        Ok(())
    }

    fn validate_numbers(&self) -> Result<(), ConfigError> {
        if !self.partitions.is_power_of_two() || self.partitions > PARTITIONS_MAX {
            return invalid(
                "cluster.partitions",
                format!("must be a power of two from 1 to {PARTITIONS_MAX} (--partitions)"),
            );
        }
        if !(HEARTBEAT_TTL_MS_MIN..=HEARTBEAT_TTL_MS_MAX).contains(&self.heartbeat_ttl_ms) {
            return invalid(
                "cluster.heartbeat_ttl_ms",
                format!("must be from {HEARTBEAT_TTL_MS_MIN} to {HEARTBEAT_TTL_MS_MAX}"),
            );
        }
        if self.heartbeat_interval_ms < HEARTBEAT_INTERVAL_MS_MIN
            || self.heartbeat_interval_ms.saturating_mul(2) >= self.heartbeat_ttl_ms
        {
            return invalid(
                "cluster.heartbeat_interval_ms",
                format!(
                    "must be at least {HEARTBEAT_INTERVAL_MS_MIN} and less than half of \
                     cluster.heartbeat_ttl_ms"
                ),
            );
        }
        if !(CALL_TIMEOUT_MS_MIN..=CALL_TIMEOUT_MS_MAX).contains(&self.call_timeout_ms) {
            return invalid(
                "cluster.call_timeout_ms",
                format!("must be from {CALL_TIMEOUT_MS_MIN} to {CALL_TIMEOUT_MS_MAX}"),
            );
        }
        let (interval_min, interval_max) = SNAPSHOT_INTERVAL_MS_RANGE;
        if !(interval_min..=interval_max).contains(&self.snapshot_interval_ms) {
            let reason = format!("must be {interval_min} to {interval_max}");
            return invalid("cluster.snapshot_interval_ms", reason);
        }
        if !(1..=SNAPSHOT_ENTRIES_MIN_MAX).contains(&self.snapshot_entries_min) {
            let reason = format!("must be 1 to {SNAPSHOT_ENTRIES_MIN_MAX}");
            return invalid("cluster.snapshot_entries_min", reason);
        }
        if self.move_chunk_pause_ms > MOVE_CHUNK_PAUSE_MS_MAX {
            return invalid(
                "cluster.move_chunk_pause_ms",
                format!("must be at most {MOVE_CHUNK_PAUSE_MS_MAX}"),
            );
        }
        if !(1..=MAP_REPLICAS_MAX).contains(&self.map_replicas) {
            return invalid(
                "cluster.map_replicas",
                format!("must be from 1 to {MAP_REPLICAS_MAX}"),
            );
        }
        Ok(())
    }
}

/// A node id or cluster name: 1 to [`NAME_LEN_MAX`] of `[a-z0-9-]`, not
/// starting with `-` (it becomes part of NATS subjects and bucket keys).
/// The error says why, without echoing the (possibly hostile) name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_LEN_MAX {
        return Err(format!(
            "must be 1 to {NAME_LEN_MAX} characters, not {}",
            name.chars().count()
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(allowed) || name.starts_with('-') {
        return Err("must be of a-z, 0-9 and '-', not starting with '-'".to_string());
    }
    Ok(())
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
