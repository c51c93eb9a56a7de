//! Cluster mode under faults, against 3 real nodes joined through a real
//! 3-server NATS JetStream cluster on loopback (16 partitions in the
//! initial map of n1, n2, n3; heartbeat TTL 3 s, call timeout 1 s):
//! - `kill -9` of a node, with sends to it in flight: the other nodes
//!   answer 503 with `Retry-After` (within the call timeout and slack) for
//!   everything that needs its partitions (a send to its account, a login
//!   of its account, a WebSocket of its account), before and after its
//!   heartbeat expires, while other partitions answer 200; restarted on its
//!   data directory and node id (on new ports), it serves again and every
//!   send acknowledged with 200 is delivered, once;
//! - `SIGSTOP` of a node: the same 503s while it is frozen, 200 for other
//!   partitions, then recovery after `SIGCONT` with nothing acknowledged lost;
//!   a request authenticated as the stopped node's account (forwarded whole
//!   to it) answers 503 within the call timeout too;
//! - `kill -9` of the NATS server leading the map bucket's stream: sends
//!   between every pair of nodes answer 200 or 503 only, and 200 again
//!   within a bound; the same after the NATS server returns; nothing
//!   acknowledged is lost;
//! - a second process started under a live node's id exits 1 naming it.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use cluster::{assert_unavailable, send_at, Cluster, Ledger, HEARTBEAT_TTL, RECOVERY};
use common::Account;
use messaging::drain_backlog;
use nats::NatsCluster;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Sends from `sender` to `dest` through `addr`, timestamps from `first`,
/// until `stop` or 50 refusals (503s come fast); counts the sends in `made`.
fn spawn_sender(
    addr: String,
    sender: Account,
    dest: Uuid,
    first: u64,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> JoinHandle<Ledger> {
    std::thread::spawn(move || {
        let mut ledger = Ledger::default();
        let mut timestamp = first;
        while !stop.load(Ordering::SeqCst) && ledger.tried.len() < ledger.acked.len() + 50 {
            ledger.record(timestamp, &send_at(&addr, &sender, &dest, timestamp));
            made.fetch_add(1, Ordering::SeqCst);
            timestamp += 1;
        }
        ledger
    })
}

/// For `duration` (past the victim's heartbeat TTL), sends to `dest`
/// through each of `vias` in turn and asserts every answer is the 503 of
/// an unreachable owner; timestamps from `*next`.
fn assert_down_for(
    cluster: &Cluster,
    vias: &[usize],
    (sender, dest): (&Account, &Uuid),
    duration: Duration,
    ledger: &mut Ledger,
    next: &mut u64,
) {
    let until = Instant::now() + duration;
    let mut turn = 0;
    while Instant::now() < until || turn < vias.len() {
        let via = vias[turn % vias.len()];
        let answer = cluster.send(via, sender, dest, *next);
        assert_unavailable(
            &answer,
            &format!("send {} through {} to a down owner", next, cluster.id(via)),
        );
        ledger.record(*next, &answer);
        *next += 1;
        turn += 1;
        // Paced: a node that knows the owner is down answers at once.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts a WebSocket of `account` through node `via` is refused with 503.
fn assert_socket_refused(cluster: &Cluster, via: usize, account: &Account) {
    match cluster.node(via).connect(account) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503, "a socket of a down owner's account");
            assert!(response.headers().contains_key("Retry-After"), "{response:?}");
        }
        Err(other) => panic!("a socket of a down owner's account: {other}"),
        Ok(_) => panic!("a socket of a down owner's account was opened"),
    }
}

/// Asserts sends between accounts of live nodes are answered 200.
fn assert_others_served(cluster: &Cluster, sends: &[(usize, &Account, &Uuid)]) {
    for (i, (via, sender, dest)) in sends.iter().enumerate() {
        let answer = cluster.send(*via, sender, dest, 90_000 + i as u64);
        assert_eq!(answer.status, 200, "a send not involving the down node: {}", answer.text());
    }
}

#[test]
fn kill_9_of_a_node_answers_503_for_its_partitions_and_loses_nothing_acknowledged() {
    let nats = NatsCluster::start(3);
    let mut cluster = Cluster::start(&nats, &NODES);
    let victim = 2;
    let recipient = cluster.register_owned_by(0, victim);
    let victim_login = cluster.register_owned_by(1, victim);
    let sender = cluster.register_owned_by(1, 0);
    let other = cluster.register_owned_by(0, 1);
    let mut ledger = Ledger::default();
    for timestamp in 0..20 {
        let answer = cluster.send(timestamp as usize % 2, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp} before the kill: {}", answer.text());
        ledger.record(timestamp, &answer);
    }
    let (stop, made) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let in_flight = spawn_sender(
        cluster.addr(0),
        sender.clone(),
        recipient.uuid,
        1000,
        stop.clone(),
        made.clone(),
    );
    cluster.poll("sends in flight", Duration::from_secs(10), || {
        (made.load(Ordering::SeqCst) >= 5).then_some(()).ok_or("fewer than 5".to_string())
    });
    cluster.kill9(victim);

    let mut next = 10_000;
    let to_recipient = (&sender, &recipient.uuid);
    assert_down_for(&cluster, &[0, 1], to_recipient, Duration::ZERO, &mut ledger, &mut next);
    stop.store(true, Ordering::SeqCst);
    ledger.merge(in_flight.join().expect("the in-flight sender"));
    let login = cluster::request(&cluster.addr(0), "GET", "/v1/devices", Some(&victim_login), b"");
    assert_unavailable(&login, "a login of the down node's account");
    assert_socket_refused(&cluster, 1, &recipient);
    assert_others_served(&cluster, &[(0, &sender, &other.uuid), (1, &sender, &other.uuid)]);
    let past_ttl = HEARTBEAT_TTL + Duration::from_secs(1);
    assert_down_for(&cluster, &[0, 1], to_recipient, past_ttl, &mut ledger, &mut next);
    assert_others_served(&cluster, &[(1, &other, &sender.uuid)]);

    cluster.restart(victim);
    cluster.wait_served(0, to_recipient, &mut ledger, &mut next);
    cluster.wait_served(1, to_recipient, &mut ledger, &mut next);
    let mut ws = cluster.connect_when_served(1, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
}

#[test]
fn a_stopped_node_answers_503_until_it_continues_and_loses_nothing_acknowledged() {
    let nats = NatsCluster::start(3);
    let mut cluster = Cluster::start(&nats, &NODES);
    let victim = 0;
    let recipient = cluster.register_owned_by(1, victim);
    let sender = cluster.register_owned_by(1, 2);
    let other = cluster.register_owned_by(2, 1);
    let mut ledger = Ledger::default();
    for timestamp in 0..10 {
        let answer = cluster.send(1 + timestamp as usize % 2, &sender, &recipient.uuid, timestamp);
        assert_eq!(answer.status, 200, "send {timestamp} before the stop: {}", answer.text());
        ledger.record(timestamp, &answer);
    }

    cluster.pause(victim);
    let mut next = 10_000;
    let to_recipient = (&sender, &recipient.uuid);
    assert_down_for(&cluster, &[1, 2], to_recipient, Duration::ZERO, &mut ledger, &mut next);
    assert_others_served(&cluster, &[(2, &sender, &other.uuid), (1, &other, &sender.uuid)]);
    let past_ttl = HEARTBEAT_TTL + Duration::from_secs(1);
    assert_down_for(&cluster, &[1, 2], to_recipient, past_ttl, &mut ledger, &mut next);
    assert_socket_refused(&cluster, 2, &recipient);

    cluster.resume(victim);
    cluster.wait_served(1, to_recipient, &mut ledger, &mut next);
    cluster.wait_served(2, to_recipient, &mut ledger, &mut next);
    assert_others_served(&cluster, &[(0, &sender, &other.uuid)]);
    let mut ws = cluster.connect_when_served(2, &recipient);
    ledger.assert_delivered(&drain_backlog(&mut ws));
}

#[test]
fn a_request_forwarded_to_a_stopped_owner_answers_503_within_the_call_timeout() {
    let nats = NatsCluster::start(3);
    let mut cluster = Cluster::start(&nats, &NODES);
    let victim = 2;
    let stopped_login = cluster.register_owned_by(0, victim);
    let recipient = cluster.register_owned_by(0, 1);
    cluster.pause(victim);
    // Authenticated as the stopped node's account: forwarded whole to it.
    let answer = cluster.send(0, &stopped_login, &recipient.uuid, 1);
    assert_unavailable(&answer, "a request forwarded to a stopped owner");
    let login = cluster::request(&cluster.addr(1), "GET", "/v1/devices", Some(&stopped_login), b"");
    assert_unavailable(&login, "a login forwarded to a stopped owner");
    cluster.resume(victim);
}

/// One account owned by each node: (senders, recipients).
fn one_per_node(cluster: &Cluster) -> (Vec<Account>, Vec<Account>) {
    let each = |via: usize| -> Vec<Account> {
        (0..3).map(|i| cluster.register_owned_by((i + via) % 3, i)).collect()
    };
    (each(1), each(2))
}

/// One send between every ordered pair of distinct nodes: the sender owned
/// by the node it sends through, the recipient owned by another. Records
/// each answer (only 200 or 503 allowed) in the recipient's ledger and
/// returns the pairs that did not answer 200.
fn cross_sends(
    cluster: &Cluster,
    (senders, recipients): (&[Account], &[Account]),
    ledgers: &mut [Ledger],
    next: &mut u64,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (via, sender) in senders.iter().enumerate().take(3) {
        for owner in (0..3).filter(|&owner| owner != via) {
            let answer = cluster.send(via, sender, &recipients[owner].uuid, *next);
            ledgers[owner].record(*next, &answer);
            if answer.status != 200 {
                failed.push(format!(
                    "{} -> {}: {}",
                    cluster.id(via),
                    cluster.id(owner),
                    answer.status
                ));
            }
            *next += 1;
        }
    }
    failed
}

#[test]
fn kill_9_of_the_map_streams_nats_leader_stops_cross_node_sends_only_briefly() {
    let mut nats = NatsCluster::start(3);
    let cluster = Cluster::start(&nats, &NODES);
    let (senders, recipients) = one_per_node(&cluster);
    let accounts = (senders.as_slice(), recipients.as_slice());
    let mut ledgers: Vec<Ledger> = (0..3).map(|_| Ledger::default()).collect();
    let mut next = 0;
    let failed = cross_sends(&cluster, accounts, &mut ledgers, &mut next);
    assert!(failed.is_empty(), "before any fault: {failed:?}");

    let stream = cluster.map_stream();
    let leader = cluster.poll("the map stream to have a leader", Duration::from_secs(20), || {
        nats.stream_leader(&stream)
            .ok_or(format!("no leader of {stream}: {:?}", nats.stream_names()))
    });
    let leader = nats.index_of(&leader).expect("a server of the NATS cluster");
    nats.kill9(leader);
    let killed = Instant::now();
    cluster.poll("cross-node sends to answer 200 again", RECOVERY, || {
        let failed = cross_sends(&cluster, accounts, &mut ledgers, &mut next);
        failed.is_empty().then_some(()).ok_or(format!("{failed:?}"))
    });
    eprintln!("cross-node sends served {:?} after kill -9 of the map's leader", killed.elapsed());

    nats.restart(leader);
    cluster.poll("cross-node sends once the NATS server is back", RECOVERY, || {
        let failed = cross_sends(&cluster, accounts, &mut ledgers, &mut next);
        failed.is_empty().then_some(()).ok_or(format!("{failed:?}"))
    });
    for (owner, ledger) in ledgers.iter().enumerate() {
        let via = (owner + 1) % 3;
        let mut ws = cluster.connect_when_served(via, &recipients[owner]);
        ledger.assert_delivered(&drain_backlog(&mut ws));
    }
}

/// Node ids are unique: a second process under a live node's id (its own
/// data directory, the cluster's settings) is refused at start, naming the
/// id, and exits within a bound.
#[test]
fn a_second_process_under_a_live_node_id_is_refused() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start(&nats, &NODES);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, cluster.config_toml()).unwrap();
    let data = dir.path().join("data");
    let urls = nats.urls().join(",");
    let mut child = std::process::Command::new(common::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--admin-listen", "off"])
        .args(["--cluster-nats", &urls, "--node-id", "n2", "--cluster-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a namesake");
    let deadline = Instant::now() + RECOVERY;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a namesake of n2 was not refused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node id n2 is in use"), "{stderr}");
    assert!(!data.exists(), "the refused namesake made a data directory");
}
