//! `switchboard cluster status` and `switchboard cluster haproxy-map`
//! against a real 3-server NATS JetStream cluster on loopback: what they
//! print for live, down and idle nodes, the HAProxy map's lines, and that
//! inspecting a cluster that has no buckets refuses in one line and
//! creates nothing.

#[path = "common/nats.rs"]
mod nats;

use bytes::Bytes;
use nats::NatsCluster;
use std::process::{Command, Output};
use switchboard::cluster::map::{NodeId, PartitionMap};
use switchboard::cluster::nats::handle::NatsHandle;
use switchboard::cluster::nats::options::NatsOptions;
use switchboard::cluster::nats::thread;
use switchboard::cluster::partition::PartitionCount;

fn on_shard<F: std::future::Future>(future: F) -> F::Output {
    let mut runtime =
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("a monoio runtime");
    runtime.block_on(future)
}

/// Node `id` of cluster `cluster`, registered with client port `port`.
fn node(nats: &NatsCluster, cluster: &str, id: &str, port: u16) -> NatsHandle {
    let (handle, _thread) = thread::spawn(NatsOptions::new(nats.urls(), cluster, id))
        .unwrap_or_else(|e| panic!("node {id}: {e}\n{}", nats.log_tails()));
    let client = format!("127.0.0.1:{port}");
    on_shard(handle.register_node(&client, "127.0.0.1:7000")).expect("register");
    handle
}

fn cluster_command(nats: &NatsCluster, cluster: &str, command: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["cluster", command, "--cluster-nats", &nats.urls().join(","), "--cluster-name"])
        .arg(cluster)
        .env_remove("SWITCHBOARD_CLUSTER_NATS")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run switchboard cluster")
}

fn text(output: &Output) -> (bool, String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn map_of(nodes: &[&str]) -> Bytes {
    let nodes: Vec<NodeId> = nodes.iter().map(|id| id.parse().unwrap()).collect();
    let map = PartitionMap::initial(PartitionCount::new(16).unwrap(), &nodes).unwrap();
    Bytes::from(map.encode())
}

#[test]
fn status_and_the_haproxy_map_show_the_cluster_as_its_buckets_hold_it() {
    let nats = NatsCluster::start(3);
    let a = node(&nats, "shop", "node-a", 8001);
    let _b = node(&nats, "shop", "node-b", 8002);
    let revision = on_shard(a.create_map(map_of(&["node-a", "node-c"]))).expect("create the map");

    let (ok, stdout, stderr) = text(&cluster_command(&nats, "shop", "status"));
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("map epoch 1, 16 partitions"), "{stdout}");
    let line = |id: &str| stdout.lines().find(|l| l.starts_with(id)).unwrap_or("").to_string();
    assert!(line("node-a").contains("yes") && line("node-a").contains(" 8 "), "{stdout}");
    assert!(line("node-b").contains("yes") && line("node-b").contains(" 0 "), "{stdout}");
    assert!(line("node-c").contains("DOWN") && line("node-c").contains(" 8 "), "{stdout}");

    // An owner without a heartbeat has no address: no map with holes.
    let (ok, stdout, stderr) = text(&cluster_command(&nats, "shop", "haproxy-map"));
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("node-c") && stderr.lines().count() == 1, "{stderr}");

    on_shard(a.swap_map(map_of(&["node-a", "node-b"]), revision)).expect("swap");
    let (ok, stdout, stderr) = text(&cluster_command(&nats, "shop", "haproxy-map"));
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 16, "{stdout}");
    assert_eq!((lines[0], lines[15]), ("0 127.0.0.1:8001", "f 127.0.0.1:8002"));
}

#[test]
fn inspecting_a_cluster_without_buckets_refuses_and_creates_nothing() {
    let nats = NatsCluster::start(3);
    for _ in 0..2 {
        let (ok, stdout, stderr) = text(&cluster_command(&nats, "nobody", "status"));
        assert!(!ok && stdout.is_empty(), "{stdout}");
        assert!(stderr.contains("switchboard_map_nobody"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(
        !nats.stream_names().iter().any(|name| name.contains("nobody")),
        "{:?}",
        nats.stream_names()
    );
}
