//! What the cluster thread is started with: the NATS servers, the names,
//! the replication of the buckets and the membership timing.
//!
//! Invariants, checked by [`NatsOptions::validate`] before anything
//! connects: at least one and at most [`URLS_MAX`] URLs; names the buckets
//! and keys can carry; 1 to [`REPLICAS_MAX`] replicas; at least two
//! heartbeats per TTL, so one lost heartbeat does not expire a live node.

use super::error::NatsError;
use super::record;
use std::time::Duration;

/// Most NATS server URLs a node is given.
pub const URLS_MAX: usize = 16;

/// Most replicas JetStream keeps of a stream.
pub const REPLICAS_MAX: usize = 5;

/// Replicas of both buckets unless told otherwise: a 3-server NATS cluster
/// keeps the map and membership through the loss of any one server.
pub const REPLICAS_DEFAULT: usize = 3;

/// How often a node rewrites its membership key, ms.
pub const HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;

/// How long a node's key outlives its last heartbeat, ms (issue 21: 15 s).
pub const NODE_TTL_MS_DEFAULT: u64 = 15_000;

/// The shortest node TTL, ms: JetStream expires messages on a timer of
/// its own, and a shorter TTL would make liveness flap.
pub const NODE_TTL_MS_MIN: u64 = 1_000;

/// How long one NATS request or JetStream operation may take, ms.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// How often the client pings its server, ms. A server that stops
/// answering (frozen, or cut off) is left for another after about three
/// missed pings; `async-nats`'s own default (60 s) would leave the node
/// deaf for minutes, longer than its membership TTL.
pub const PING_INTERVAL_MS_DEFAULT: u64 = 2_000;

/// How long [`spawn`](super::spawn) keeps trying to connect and to make
/// the buckets before it gives up, ms.
pub const STARTUP_TIMEOUT_MS_DEFAULT: u64 = 20_000;

/// The cluster thread's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// The NATS servers (`nats://host:port`); any one reachable is enough,
    /// the client learns the rest of the cluster from it.
    pub urls: Vec<String>,
    /// The cluster's name: the buckets are `switchboard_map_<cluster>` and
    /// `switchboard_nodes_<cluster>`, so clusters can share a NATS system.
    pub cluster: String,
    /// This node's id: its membership key, and its connection's name
    /// (`switchboard-<node_id>`, as NATS monitoring shows it).
    pub node_id: String,
    /// Replicas of each bucket when this node creates it (an existing
    /// bucket is used as it is). More than the NATS servers is an error.
    pub replicas: usize,
    /// Open the buckets only, never create them (an inspecting command
    /// must not make a cluster's buckets with its own settings): a missing
    /// bucket is [`NatsError::Bucket`] at once.
    pub open_only: bool,
    /// How often the node's membership key is rewritten, ms.
    pub heartbeat_interval_ms: u64,
    /// The membership bucket's `max_age`: a node is gone this long after
    /// its last heartbeat, ms.
    pub node_ttl_ms: u64,
    /// The bound on one request or JetStream operation, ms.
    pub request_timeout_ms: u64,
    /// How often the connection is pinged to find a dead server, ms.
    pub ping_interval_ms: u64,
    /// The bound on connecting and making the buckets at start, ms.
    pub startup_timeout_ms: u64,
}

impl NatsOptions {
    /// Options for node `node_id` of `cluster` on `urls`, the rest default.
    pub fn new(urls: Vec<String>, cluster: &str, node_id: &str) -> Self {
        Self {
            urls,
            cluster: cluster.to_string(),
            node_id: node_id.to_string(),
            replicas: REPLICAS_DEFAULT,
            open_only: false,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS_DEFAULT,
            node_ttl_ms: NODE_TTL_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            ping_interval_ms: PING_INTERVAL_MS_DEFAULT,
            startup_timeout_ms: STARTUP_TIMEOUT_MS_DEFAULT,
        }
    }

    /// Refuses options the thread could not run with, naming the setting.
    pub fn validate(&self) -> Result<(), NatsError> {
        let invalid =
            |setting: &'static str, reason: String| NatsError::InvalidOptions { setting, reason };
        if self.urls.is_empty() || self.urls.len() > URLS_MAX {
            return Err(invalid("urls", format!("give 1 to {URLS_MAX} NATS URLs")));
        }
        record::check_bucket_part(&self.cluster).map_err(|reason| invalid("cluster", reason))?;
        record::check_key(&self.node_id).map_err(|reason| invalid("node_id", reason))?;
        if !(1..=REPLICAS_MAX).contains(&self.replicas) {
            return Err(invalid("replicas", format!("must be 1 to {REPLICAS_MAX}")));
        }
        if self.node_ttl_ms < NODE_TTL_MS_MIN {
            return Err(invalid("node_ttl_ms", format!("must be at least {NODE_TTL_MS_MIN}")));
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms.saturating_mul(2) > self.node_ttl_ms
        {
            let reason = "must be positive and at most half of node_ttl_ms".to_string();
            return Err(invalid("heartbeat_interval_ms", reason));
        }
        if self.request_timeout_ms == 0 {
            return Err(invalid("request_timeout_ms", "must be positive".into()));
        }
        if self.ping_interval_ms == 0 {
            return Err(invalid("ping_interval_ms", "must be positive".into()));
        }
        if self.startup_timeout_ms == 0 {
            return Err(invalid("startup_timeout_ms", "must be positive".into()));
        }
        Ok(())
    }

    /// The bucket holding the partition map.
    pub fn map_bucket(&self) -> String {
        format!("switchboard_map_{}", self.cluster)
    }

    /// The bucket holding the membership records.
    pub fn nodes_bucket(&self) -> String {
        format!("switchboard_nodes_{}", self.cluster)
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`Self::ping_interval_ms`] as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    /// [`Self::node_ttl_ms`] as a duration.
    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> NatsOptions {
        NatsOptions::new(vec!["nats://127.0.0.1:4222".into()], "prod", "node-1")
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(options().validate(), Ok(()));
        assert_eq!(options().map_bucket(), "switchboard_map_prod");
        assert_eq!(options().nodes_bucket(), "switchboard_nodes_prod");
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut NatsOptions);
        let cases: [(Spoil, &str); 9] = [
            (|o| o.urls.clear(), "urls"),
            (|o| o.cluster = "a.b".into(), "cluster"),
            (|o| o.node_id = String::new(), "node_id"),
            (|o| o.replicas = 0, "replicas"),
            (|o| o.replicas = 6, "replicas"),
            (|o| o.node_ttl_ms = 999, "node_ttl_ms"),
            (|o| o.heartbeat_interval_ms = 8_000, "heartbeat_interval_ms"),
            (|o| o.ping_interval_ms = 0, "ping_interval_ms"),
            (|o| o.startup_timeout_ms = 0, "startup_timeout_ms"),
        ];
        for (spoil, named) in cases {
            let mut bad = options();
            spoil(&mut bad);
            match bad.validate() {
                Err(NatsError::InvalidOptions { setting, .. }) => assert_eq!(setting, named),
                other => panic!("{named}: {other:?}"),
            }
        }
    }
}
