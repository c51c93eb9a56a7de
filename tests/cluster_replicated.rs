//! Replicated durability, against 3 real nodes (`durability =
//! "replicated"`) joined through a real 3-server NATS JetStream cluster on
//! loopback (16 partitions; heartbeat TTL 3 s, call timeout 1 s):
//! - every partition gets its log stream (3 replicas) and sends answer 200
//!   as in cluster mode;
//! - `kill -9` of a node with a backlog queued for one of its devices:
//!   sends to its partitions answer only 200 or 503 (with `Retry-After`),
//!   and 200 again once the live nodes took its partitions over (time
//!   printed); the device then drains every acknowledged send through a
//!   live node, once each; restarted, the killed node drops its stale
//!   copies and serves as a forwarding node;
//! - a restarted owner (killed, back within the TTL) catches up from its
//!   log and loses nothing acknowledged;
//! - with snapshots every second, a partition's log is purged up to its
//!   snapshot; after its owner's `kill -9` the new owner restores the
//!   snapshot, replays the rest, and loses nothing acknowledged.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use cluster::{Cluster, Ledger, RECOVERY};
use messaging::drain_backlog;
use nats::NatsCluster;
use std::time::{Duration, Instant};
use switchboard::cluster::partition::{partition_of, PartitionCount};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn log_streams(nats: &NatsCluster, cluster: &Cluster) -> Vec<String> {
    let prefix = format!("SB_LOG_{}_", cluster.name);
    nats.stream_names().into_iter().filter(|name| name.starts_with(&prefix)).collect()
}

#[test]
fn a_killed_nodes_partitions_are_taken_over_and_nothing_acknowledged_is_lost() {
    let nats = NatsCluster::start(3);
    let mut cluster = Cluster::start_replicated(&nats, &NODES);
    assert_eq!(log_streams(&nats, &cluster).len(), cluster::PARTITIONS as usize);
    let victim = 2;
    let recipient = cluster.register_owned_by(0, victim);
    let sender = cluster.register_owned_by(1, 0);
    let mut ledger = Ledger::default();
    for timestamp in 0..30 {
        let answer = cluster.send(timestamp as usize % 2, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp} before the kill: {}", answer.text());
        ledger.record(timestamp, &answer);
    }
    let killed = Instant::now();
    cluster.kill9(victim);
    let mut next = 10_000;
    let to_recipient = (&sender, &recipient.uuid);
    cluster.wait_served(0, to_recipient, &mut ledger, &mut next);
    eprintln!("served again {:?} after the kill -9", killed.elapsed());
    cluster.wait_served(1, to_recipient, &mut ledger, &mut next);
    let mut ws = cluster.connect_when_served(1, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
    drop(ws);

    cluster.restart(victim);
    let after = cluster.send(victim, &sender, &recipient.uuid, next);
    assert_eq!(after.status, 200, "a send through the restarted node: {}", after.text());
    let mut ws = cluster.connect_when_served(victim, &recipient);
    let again = drain_backlog(&mut ws);
    let timestamps: Vec<u64> = again.iter().filter_map(|e| e["timestamp"].as_u64()).collect();
    assert_eq!(timestamps, vec![next], "only the new send; nothing acknowledged came back");
}

#[test]
fn an_owner_restarted_within_the_ttl_catches_up_and_loses_nothing() {
    let nats = NatsCluster::start(3);
    let mut cluster = Cluster::start_replicated(&nats, &NODES);
    let owner = 1;
    let recipient = cluster.register_owned_by(0, owner);
    let sender = cluster.register_owned_by(2, 2);
    let mut ledger = Ledger::default();
    for timestamp in 0..40 {
        let answer = cluster.send((timestamp % 3) as usize, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp}: {}", answer.text());
        ledger.record(timestamp, &answer);
    }
    cluster.kill9(owner);
    cluster.restart(owner);
    let mut next = 10_000;
    cluster.wait_served(0, (&sender, &recipient.uuid), &mut ledger, &mut next);
    let mut ws = cluster.connect_when_served(owner, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
}

#[test]
fn a_partition_restored_from_its_snapshot_after_the_log_was_purged_loses_nothing() {
    let nats = NatsCluster::start(3);
    let extra = "snapshot_interval_ms = 1000\nsnapshot_entries_min = 5\n";
    let mut cluster = Cluster::start_replicated_with(&nats, &NODES, extra);
    let victim = 2;
    let recipient = cluster.register_owned_by(0, victim);
    let sender = cluster.register_owned_by(1, 1);
    let mut ledger = Ledger::default();
    for timestamp in 0..30 {
        let answer = cluster.send(timestamp as usize % 3, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp}: {}", answer.text());
        ledger.record(timestamp, &answer);
    }
    let partition =
        partition_of(&recipient.uuid, PartitionCount::new(cluster::PARTITIONS).unwrap());
    let stream = format!("SB_LOG_{}_{}", cluster.name, partition.index());
    let (first, last) =
        cluster.poll("a snapshot and a purge of the recipient's log", RECOVERY, || {
            match nats.stream_seqs(&stream) {
                Some((first, last)) if first > 1 => Ok((first, last)),
                seqs => Err(format!("{stream}: {seqs:?}")),
            }
        });
    eprintln!("log {stream} at {first}..{last}");
    let snapshots = format!("OBJ_switchboard_snap_{}", cluster.name);
    assert!(nats.stream_names().contains(&snapshots), "the snapshot bucket {snapshots}");
    cluster.kill9(victim);
    let mut next = 10_000;
    cluster.wait_served(0, (&sender, &recipient.uuid), &mut ledger, &mut next);
    let mut ws = cluster.connect_when_served(0, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
}

#[test]
fn a_move_catches_up_from_the_log_and_loses_nothing() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start_replicated(&nats, &NODES);
    let recipient = cluster.register_owned_by(1, 0);
    let sender = cluster.register_owned_by(1, 1);
    let partition =
        partition_of(&recipient.uuid, PartitionCount::new(cluster::PARTITIONS).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, from, to, until) = (cluster.addr(1), sender.clone(), recipient.uuid, stop.clone());
    let sending = std::thread::spawn(move || {
        let mut ledger = Ledger::default();
        for timestamp in 0..20_000 {
            if until.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let answer = cluster::send_at(&addr, &from, &to, timestamp);
            if answer.status == 503 {
                cluster::assert_unavailable(&answer, "a send during the move");
            }
            ledger.record(timestamp, &answer);
        }
        ledger
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let output = std::process::Command::new(common::binary())
        .args(["cluster", "move", "--cluster-nats", &nats.urls().join(",")])
        .args(["--cluster-name", &cluster.name, "--partition", &partition.index().to_string()])
        .args(["--to", "n3"])
        .output()
        .expect("switchboard cluster move");
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let ledger = sending.join().expect("the sender");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.starts_with(&format!("partition {} is on node n3", partition.index())), "{text}");
    let refused = ledger.tried.len() - ledger.acked.len();
    eprintln!("move took {took:?}; {} sends acked, {refused} answered 503", ledger.acked.len());
    let mut ws = cluster.connect_when_served(1, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
}

/// `switchboard cluster <args>` for `cluster`: (success, stdout, stderr).
fn cli(nats: &NatsCluster, cluster: &Cluster, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(common::binary())
        .args(["cluster", args[0], "--cluster-nats", &nats.urls().join(",")])
        .args(["--cluster-name", &cluster.name])
        .args(&args[1..])
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("switchboard cluster");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn an_operator_snapshots_a_partition_on_demand_and_hostile_arguments_change_nothing() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start_replicated(&nats, &NODES);
    let recipient = cluster.register_owned_by(0, 2);
    let sender = cluster.register_owned_by(1, 1);
    for timestamp in 0..10 {
        let answer = cluster.send(timestamp as usize % 3, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp}: {}", answer.text());
    }
    let partition =
        partition_of(&recipient.uuid, PartitionCount::new(cluster::PARTITIONS).unwrap());
    let p = partition.index().to_string();
    let (ok, stdout, stderr) = cli(&nats, &cluster, &["snapshot", "--partition", &p]);
    assert!(ok, "cluster snapshot: {stderr}");
    let prefix = format!("partition {p}: snapshot at log sequence ");
    let seq: u64 = stdout.trim().strip_prefix(&prefix).and_then(|s| s.parse().ok()).expect(&stdout);
    assert!(seq >= 10, "ten sends are in the log before the snapshot: {seq}");
    let stream = format!("SB_LOG_{}_{p}", cluster.name);
    assert_eq!(nats.stream_seqs(&stream), Some((seq + 1, seq)), "purged up to the snapshot");
    for hostile in [&["snapshot", "--partition", "16"][..], &["snapshot", "--partition", "-1"]] {
        let (ok, stdout, stderr) = cli(&nats, &cluster, hostile);
        assert!(!ok && stdout.is_empty(), "{hostile:?}: {stdout}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains("partition") || first.contains("'-1'"), "{hostile:?}: {stderr}");
        assert!(stderr.trim().lines().count() <= 6, "short: {stderr}");
    }
    assert_eq!(nats.stream_seqs(&stream), Some((seq + 1, seq)), "nothing changed");
    let mut ws = cluster.connect_when_served(1, &recipient);
    assert_eq!(drain_backlog(&mut ws).len(), 10, "the snapshot kept every queued send");
}
