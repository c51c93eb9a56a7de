//! What `switchboard cluster status` and `switchboard cluster haproxy-map`
//! print, from the map and the live node records (read by the caller from
//! the NATS buckets). Pure: text in, text out.
//!
//! Invariants: a node that owns partitions but has no live record is shown
//! as down (its partitions answer 503 until it returns); a live node that
//! owns nothing is shown with 0; the HAProxy map names a client address for
//! every hex prefix, or refuses (typed error) when an owner is not live, so
//! a load balancer is never given a map with holes.

use crate::cluster::map::PartitionMap;
use crate::cluster::nats::record::NodeRecord;
use crate::cluster::partition::hex_prefix_table;
use std::fmt::Write;

/// Why no HAProxy map can be printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The cluster has no map yet (no node has started in cluster mode).
    #[error("the cluster has no partition map yet")]
    NoMap,
    /// A partition's owner has no live record, so no address to send to.
    #[error("node {0} owns partitions but is not live (no heartbeat): no address for them")]
    OwnerDown(String),
}

/// The status table: the epoch, then one line per node (live or owning).
pub fn status_text(map: Option<&PartitionMap>, nodes: &[NodeRecord], now_ms: u64) -> String {
    let mut out = String::new();
    match map {
        Some(map) => {
            let _ = writeln!(
                out,
                "map epoch {}, {} partitions",
                map.epoch(),
                map.partition_count().get()
            );
        }
        None => out.push_str("no partition map yet\n"),
    }
    let _ = writeln!(
        out,
        "{:<24} {:<6} {:>10} {:>12}  client / internal",
        "node", "live", "partitions", "last seen"
    );
    let owners = map.map(|map| map.counts_per_node()).unwrap_or_default();
    let mut names: Vec<&str> = nodes.iter().map(|node| node.id.as_str()).collect();
    names.extend(owners.iter().map(|(node, _)| node.as_str()));
    names.sort_unstable();
    names.dedup();
    for name in names {
        let owned = owners.iter().find(|(node, _)| node.as_str() == name).map_or(0, |(_, n)| *n);
        let line = match nodes.iter().find(|node| node.id == name) {
            Some(node) => {
                let ago_ms = now_ms.saturating_sub(node.last_seen_ms);
                let addrs = format!("{} / {}", node.client_addr, node.internal_addr);
                format!("{name:<24} {:<6} {owned:>10} {:>10}ms  {addrs}", "yes", ago_ms)
            }
            None => format!("{name:<24} {:<6} {owned:>10} {:>12}  -", "DOWN", "-"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The HAProxy map: one `prefix client_addr` line per hex prefix of the
/// account UUID (the login's first hex digits fix its partition).
pub fn haproxy_map_text(
    map: Option<&PartitionMap>,
    nodes: &[NodeRecord],
) -> Result<String, ReportError> {
    let map = map.ok_or(ReportError::NoMap)?;
    let mut out = String::new();
    for (prefix, partition) in hex_prefix_table(map.partition_count()) {
        let owner = map.owner(partition).expect("every partition of a map has an owner");
        let node = nodes
            .iter()
            .find(|node| node.id == owner.as_str())
            .ok_or_else(|| ReportError::OwnerDown(owner.to_string()))?;
        let _ = writeln!(out, "{prefix} {}", node.client_addr);
    }
    Ok(out)
}

/// What a cluster's buckets hold now: its map (if made) and its live nodes.
pub struct Snapshot {
    /// The map, if a node created it.
    pub map: Option<PartitionMap>,
    /// Live nodes (their membership keys have not expired).
    pub nodes: Vec<NodeRecord>,
}

/// Reads `cluster`'s buckets on the NATS servers `urls` without creating
/// anything (a short-lived cluster thread named `inspect-<pid>`).
pub fn read_snapshot(urls: Vec<String>, cluster: &str) -> Result<Snapshot, String> {
    use crate::cluster::nats::{options::NatsOptions, thread};
    let mut options = NatsOptions::new(urls, cluster, &format!("inspect-{}", std::process::id()));
    options.open_only = true;
    options.startup_timeout_ms = 5_000;
    let (handle, _thread) = thread::spawn(options).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let nodes = transient_retried(|| handle.nodes()).await?;
        let map = match transient_retried(|| handle.read_map()).await? {
            Some(version) => Some(PartitionMap::decode(&version.bytes).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Snapshot { map, nodes })
    })
}

/// `read`, again while it fails transiently (a bucket whose stream is
/// electing a leader answers "no responders" for a moment), for up to 5 s.
async fn transient_retried<T, F, Fut>(read: F) -> Result<T, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::cluster::nats::error::NatsError>>,
{
    for _ in 0..25 {
        match read().await {
            Err(error) if error.is_transient() => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            result => return result.map_err(|e| e.to_string()),
        }
    }
    read().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::map::NodeId;
    use crate::cluster::partition::PartitionCount;

    fn record(id: &str, port: u16) -> NodeRecord {
        let mut record = NodeRecord::new(id, &format!("10.0.0.1:{port}"), "10.0.0.1:7001").unwrap();
        record.last_seen_ms = 1_000;
        record
    }

    fn map_of(nodes: &[&str], count: u32) -> PartitionMap {
        let nodes: Vec<NodeId> = nodes.iter().map(|id| id.parse().unwrap()).collect();
        PartitionMap::initial(PartitionCount::new(count).unwrap(), &nodes).unwrap()
    }

    #[test]
    fn status_shows_the_epoch_owners_and_a_down_node() {
        let map = map_of(&["a", "b"], 16);
        let text = status_text(Some(&map), &[record("a", 8080), record("c", 8082)], 1_500);
        assert!(text.starts_with("map epoch 1, 16 partitions\n"), "{text}");
        let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        assert!(
            line("a ").contains("yes")
                && line("a ").contains(" 8 ")
                && line("a ").contains("500ms")
        );
        assert!(line("b ").contains("DOWN") && line("b ").contains(" 8 "), "{text}");
        assert!(line("c ").contains("yes") && line("c ").contains(" 0 "), "{text}");
        assert!(status_text(None, &[], 0).starts_with("no partition map yet"));
    }

    #[test]
    fn haproxy_map_names_an_address_for_every_prefix() {
        let map = map_of(&["a", "b"], 16);
        let text = haproxy_map_text(Some(&map), &[record("a", 8080), record("b", 8081)]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 16);
        assert_eq!(lines[0], "0 10.0.0.1:8080");
        assert_eq!(lines[15], "f 10.0.0.1:8081");
        let down = haproxy_map_text(Some(&map), &[record("a", 8080)]);
        assert_eq!(down, Err(ReportError::OwnerDown("b".into())));
        assert_eq!(haproxy_map_text(None, &[]), Err(ReportError::NoMap));
    }
}
