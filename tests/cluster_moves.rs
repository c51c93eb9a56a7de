//! Partition moves in cluster mode: real `switchboard serve` nodes joined through a real
//! 3-server NATS JetStream cluster (16 partitions), changed by the `switchboard cluster` CLI.
//! - `cluster move` from n1 to n3 under continuous sends through every node to an offline
//!   recipient in the partition: each send answers 200 or 503 with `Retry-After`, every 200
//!   is delivered after (none lost, none invented), a device online in the partition is
//!   closed with 1001, the status shows the new epoch and spread, n3 serves it without n1.
//! - `cluster rebalance` after n3 joins n1 and n2 (a dry run first changes nothing): 5 moves
//!   to 6/5/5; a message queued before in every partition is delivered after.
//! - hostile `cluster move` arguments fail in one line, changing nothing.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use common::{header_value, request_head_at, wait_until, ws_call};
use common::{Account, Server, ServerOptions, Ws};
use messaging::REGISTRATION_ID;
use messaging::{content, drain_backlog, envelopes, receive_until, send_body, Arrival};
use nats::NatsCluster;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::cluster::map::{NodeId, PartitionMap};
use switchboard::cluster::partition::{partition_of, PartitionCount, PartitionId};
use switchboard::protocol::frame::{decode, Frame};
use tungstenite::Message;
use uuid::Uuid;

const PARTITIONS: u32 = 16;
/// Most sends per sender thread (the recipient's queue holds 10,000).
const SENDS_MAX: u64 = 3_000;
/// The tests of this file run one at a time: each is a whole cluster on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());
/// Every node's `[cluster]` timing: 3 s heartbeat TTL, 500 ms beats, 1 s calls.
const TIMING: &str =
    "[cluster]\nheartbeat_ttl_ms = 3000\nheartbeat_interval_ms = 500\ncall_timeout_ms = 1000";

/// Nodes of one cluster, killed on drop (their log tails printed if the test fails).
struct Nodes {
    name: String,
    urls: Vec<String>,
    initial_toml: String,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Server>>,
}

impl Nodes {
    /// Starts the `initial` nodes in parallel (each waits for the others).
    fn start(nats: &NatsCluster, initial: &[&str]) -> Self {
        let mut nodes = Self {
            name: format!("mv{}", &Uuid::new_v4().simple().to_string()[..12]),
            urls: nats.urls(),
            initial_toml: initial.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", "),
            dir: tempfile::tempdir().expect("a temp dir"),
            nodes: vec![],
        };
        let threads: Vec<_> = initial.iter().map(|id| nodes.spawn(id)).collect();
        for (id, thread) in initial.iter().zip(threads) {
            nodes.joined(id, thread);
        }
        nodes
    }

    fn spawn(&self, id: &str) -> std::thread::JoinHandle<Server> {
        let (limits, name, initial) = (common::TEST_LIMITS, &self.name, &self.initial_toml);
        let config_toml =
            format!("{limits}\n{TIMING}\nname = {name:?}\ninitial_nodes = [{initial}]\n");
        let urls = self.urls.join(",");
        let args = format!("--cluster-nats {urls} --node-id {id} --cluster-listen 127.0.0.1:0");
        let extra_args = format!("{args} --partitions {PARTITIONS}");
        let options = ServerOptions {
            shards: 1,
            config_toml,
            extra_args: extra_args.split(' ').map(String::from).collect(),
            data_dir: Some(self.dir.path().join(id).join("data")),
            log_path: Some(self.dir.path().join(format!("{id}.log"))),
            ..Default::default()
        };
        std::thread::spawn(move || Server::start_with(options))
    }

    fn joined(&mut self, id: &str, thread: std::thread::JoinHandle<Server>) {
        self.nodes.push(Some(thread.join().unwrap_or_else(|_| panic!("node {id} did not start"))));
    }

    fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("a running node")
    }

    /// `switchboard cluster <args>` for this cluster: (success, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(common::binary())
            .args(["cluster", args[0], "--cluster-nats", &self.urls.join(",")])
            .args(["--cluster-name", &self.name])
            .args(&args[1..])
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .expect("run switchboard cluster");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }

    /// `cluster status`: the map epoch and each node's (live, partitions).
    fn status(&self) -> (u64, BTreeMap<String, (String, u32)>) {
        let (ok, stdout, stderr) = self.cli(&["status"]);
        assert!(ok, "cluster status failed: {stderr}");
        let epoch = stdout.strip_prefix("map epoch ").and_then(|rest| rest.split(',').next());
        let epoch = epoch.and_then(|e| e.parse().ok()).unwrap_or_else(|| panic!("{stdout}"));
        let nodes = stdout.lines().skip(2).map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0].to_string(), (fields[1].to_string(), fields[2].parse().expect(line)))
        });
        (epoch, nodes.collect())
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let files = std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten();
        let logs = files.map(|f| f.path()).filter(|p| p.extension().is_some_and(|e| e == "log"));
        for path in logs.filter(|_| std::thread::panicking()) {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(25)..].join("\n");
            eprintln!("--- {} tail ---\n{tail}", path.display());
        }
    }
}

fn partition(uuid: &Uuid) -> u32 {
    partition_of(uuid, PartitionCount::new(PARTITIONS).unwrap()).index()
}

/// The owner of partition `p` in the initial map of `ids`.
fn initial_owner(ids: &[&str], p: u32) -> String {
    let ids: Vec<NodeId> = ids.iter().map(|id| id.parse().unwrap()).collect();
    let count = PartitionCount::new(PARTITIONS).unwrap();
    let map = PartitionMap::initial(count, &ids).unwrap();
    map.owner(PartitionId::new(p, count).unwrap()).unwrap().as_str().to_string()
}

/// Registers through `server` until an account lands in a partition `wanted` accepts.
fn register_where(server: &Server, wanted: impl Fn(u32) -> bool) -> Account {
    let account = (0..400).map(|_| server.register()).find(|a| wanted(partition(&a.uuid)));
    account.expect("an account in a wanted partition")
}

/// A send of content `m{timestamp}` to device 1 of `dest` through `addr`:
/// (status, response head), or `None` when no whole answer came.
fn send(addr: &str, sender: &Account, dest: &Uuid, timestamp: u64) -> Option<(u16, String)> {
    let body =
        send_body(&[(1, REGISTRATION_ID)], format!("m{timestamp}").as_bytes(), false, timestamp);
    let path = format!("/v1/messages/{dest}");
    // An answer that is not a whole response panics (printed) and is `None`.
    let answer =
        std::panic::catch_unwind(|| request_head_at(addr, "PUT", &path, Some(sender), &body));
    answer.ok().map(|(status, head, _)| (status, head))
}

/// A send through `server` that must answer 200.
fn sent(server: &Server, sender: &Account, dest: &Uuid, timestamp: u64) {
    let answer = send(&server.addr(), sender, dest, timestamp);
    assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "send {timestamp} to {dest}: {answer:?}");
}

/// What the senders saw (tried, answered 200, 503s, anything else); whether to stop.
#[derive(Default)]
struct Tally {
    tried: BTreeSet<u64>,
    acked: BTreeSet<u64>,
    unavailable: u64,
    other: Vec<String>,
    stop: bool,
}

/// Sends to `dest` through `addr` until stopped (timestamps from `base`).
fn send_loop(addr: String, sender: Account, dest: Uuid, base: u64, sends: Arc<Mutex<Tally>>) {
    for timestamp in (base..base + SENDS_MAX).take_while(|_| !sends.lock().unwrap().stop) {
        let answer = send(&addr, &sender, &dest, timestamp);
        let mut tally = sends.lock().unwrap();
        tally.tried.insert(timestamp);
        match answer {
            Some((200, _)) => drop(tally.acked.insert(timestamp)),
            Some((503, head)) if header_value(&head, "Retry-After").is_some() => {
                tally.unavailable += 1
            }
            Some((_, head)) => tally.other.push(format!("send {timestamp} via {addr}: {head}")),
            None => tally.other.push(format!("send {timestamp} via {addr}: no answer")),
        }
    }
}

/// Reads `ws` (acking server requests) until the server closes it: the close code.
fn close_code(mut ws: Ws) -> Result<u16, String> {
    loop {
        match ws.read().map_err(|e| format!("ended without a close frame: {e}"))? {
            Message::Close(frame) => {
                return frame.map(|f| u16::from(f.code)).ok_or("no code".into())
            }
            Message::Text(text) => {
                if let Ok(Frame::Request(request)) = decode(&mut text.as_bytes().to_vec(), 1 << 20)
                {
                    common::ack(&mut ws, request.id, 200);
                }
            }
            _ => {}
        }
    }
}

/// Asserts every acked send is among `delivered` (each `m{timestamp}`) and
/// none was invented; prints the counts.
fn assert_nothing_lost(tally: &Tally, delivered: &[serde_json::Value]) {
    let (mut seen, mut duplicates) = (BTreeSet::new(), 0);
    for envelope in delivered {
        let timestamp = envelope["timestamp"].as_u64().expect("a timestamp");
        duplicates += u64::from(!seen.insert(timestamp));
        assert!(tally.tried.contains(&timestamp), "send {timestamp} was never made");
        assert_eq!(content(envelope), format!("m{timestamp}").as_bytes(), "content of {timestamp}");
    }
    let lost: Vec<&u64> = tally.acked.difference(&seen).collect();
    let late = seen.difference(&tally.acked).count();
    let (tried, acked, distinct) = (tally.tried.len(), tally.acked.len(), seen.len());
    let (unavailable, lost_count) = (tally.unavailable, lost.len());
    eprintln!(
        "sends: {tried} tried, {acked} acked (200), {unavailable} answered 503 + Retry-After; \
         delivered {distinct} distinct ({late} not acked), {duplicates} duplicates, \
         {lost_count} lost"
    );
    assert!(lost.is_empty(), "{} acknowledged sends were lost: {lost:?}", lost.len());
}

/// Three threads send to `to` (thread i through node i as `from[i]`)
/// while `f` runs, from 100 acked before it until 200 more are acked after it.
fn sends_around<T>(nodes: &Nodes, from: &[Account], to: Uuid, f: impl FnOnce() -> T) -> (Tally, T) {
    let sends = Arc::new(Mutex::new(Tally::default()));
    let acked = || sends.lock().unwrap().acked.len();
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (addr, sender) = (nodes.node(i).addr(), from[i].clone());
            let (sends, base) = (sends.clone(), (i as u64 + 1) * 1_000_000);
            std::thread::spawn(move || send_loop(addr, sender, to, base, sends))
        })
        .collect();
    wait_until("100 sends acked before the move", Duration::from_secs(60), || acked() >= 100);
    let (before, started) = (acked(), Instant::now());
    let result = f();
    let after = acked();
    let took = started.elapsed();
    eprintln!("{before} sends acked before the move, {} during its {took:?}", after - before);
    wait_until("200 more acked after it", Duration::from_secs(60), || acked() >= after + 200);
    sends.lock().unwrap().stop = true;
    threads.into_iter().for_each(|thread| thread.join().expect("a sender thread"));
    let tally = std::mem::take(&mut *sends.lock().unwrap());
    (tally, result)
}

#[test]
fn a_partition_moves_under_continuous_sends_with_nothing_acknowledged_lost() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ids = ["n1", "n2", "n3"];
    let nats = NatsCluster::start(3);
    let mut nodes = Nodes::start(&nats, &ids);
    let owned_by = |p: u32, id: &str| initial_owner(&ids, p) == id;
    let recipient = register_where(nodes.node(1), |p| owned_by(p, "n1"));
    let p = partition(&recipient.uuid);
    let watcher = register_where(nodes.node(2), |q| q == p);
    // Sender i sends through node i and is owned by node (i + 1) % 3.
    let sender = |i: usize| register_where(nodes.node(0), |q| q != p && owned_by(q, ids[i]));
    let senders = [sender(1), sender(2), sender(0)];
    let (epoch_before, _) = nodes.status();
    let ws = nodes.node(1).connect(&watcher).expect("the watcher's socket through n2");
    let closed = std::thread::spawn(move || close_code(ws));
    let (tally, (ok, stdout, stderr)) = sends_around(&nodes, &senders, recipient.uuid, || {
        nodes.cli(&["move", "--partition", &p.to_string(), "--to", "n3"])
    });
    eprintln!("cluster move of partition {p}: {stdout}{stderr}");
    assert!(ok, "cluster move failed: {stderr}");
    let expected = format!("partition {p} is on node n3 (map epoch ");
    assert!(stdout.starts_with(&expected) && stdout.lines().count() == 1, "{stdout}");
    assert!(tally.other.is_empty(), "answers neither 200 nor 503 + Retry-After: {:?}", tally.other);
    assert_eq!(closed.join().unwrap(), Ok(1001), "the watcher's socket in partition {p}");
    let (epoch, spread) = nodes.status();
    assert_eq!(stdout.trim_end(), format!("{expected}{epoch})"), "status epoch {epoch}");
    assert!(epoch > epoch_before, "epoch {epoch} after {epoch_before}");
    assert_eq!(ids.map(|id| spread[id].1), [5, 5, 6], "partitions of n1, n2, n3: {spread:?}");
    let ws = nodes.node(1).connect(&recipient);
    assert_nothing_lost(&tally, &drain_backlog(&mut ws.expect("the recipient through n2")));
    served_by_n3_without_n1(&mut nodes, &senders, &recipient, &watcher);
}

/// With n1 (the old owner) killed, sends to `recipient` through n2 and n3
/// answer 200 and arrive, and the watcher's socket is served.
fn served_by_n3_without_n1(nodes: &mut Nodes, from: &[Account], to: &Account, watcher: &Account) {
    drop(nodes.nodes[0].take().expect("n1 running")); // SIGKILL
    for (via, timestamp) in [(1, 9_000_001), (2, 9_000_002)] {
        // Senders 0 and 1 are owned by n2 and n3.
        sent(nodes.node(via), &from[via - 1], &to.uuid, timestamp);
    }
    let mut ws = nodes.node(2).connect(to).expect("the recipient through n3");
    let has = |a: &[Arrival], t: u64| envelopes(a).iter().any(|e| e["timestamp"] == t);
    receive_until(&mut ws, 200, |a| has(a, 9_000_001) && has(a, 9_000_002));
    let mut ws = nodes.node(1).connect(watcher).expect("the watcher through n2");
    assert_eq!(ws_call(&mut ws, 1, "GET", "/v1/keepalive", None).status, 200);
}

#[test]
fn rebalance_spreads_partitions_after_a_node_joins() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let nats = NatsCluster::start(3);
    let mut nodes = Nodes::start(&nats, &["n1", "n2"]);
    let sender = nodes.node(0).register();
    let accounts: BTreeMap<u32, Account> = (0..PARTITIONS)
        .map(|p| (p, register_where(nodes.node(p as usize % 2), |q| q == p)))
        .collect();
    for (p, account) in &accounts {
        sent(nodes.node(*p as usize % 2), &sender, &account.uuid, 500 + *p as u64);
    }
    let joining = nodes.spawn("n3");
    nodes.joined("n3", joining);
    let (epoch_before, spread) = nodes.status();
    assert_eq!(spread["n3"], ("yes".to_string(), 0), "n3 joins owning nothing: {spread:?}");
    let (ok, stdout, stderr) = nodes.cli(&["rebalance", "--dry-run"]);
    assert!(ok && stdout.starts_with("5 move(s) for an even spread\n"), "{stdout}{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.ends_with("to n3 (dry run)")).count(), 5, "{stdout}");
    assert_eq!(nodes.status(), (epoch_before, spread), "the dry run changed nothing");
    let (ok, stdout, stderr) = nodes.cli(&["rebalance"]);
    eprintln!("{stdout}{stderr}");
    assert!(ok && stdout.starts_with("5 move(s) for an even spread\n"), "{stdout}{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.contains(" to n3: done (map epoch ")).count(), 5);
    let (epoch, spread) = nodes.status();
    assert_eq!(epoch, epoch_before + 5, "{spread:?}");
    let mut owned: Vec<u32> = spread.values().map(|(_, n)| *n).collect();
    owned.sort();
    assert_eq!((owned, spread["n3"].1), (vec![5, 5, 6], 5), "{spread:?}");
    assert!(spread.values().all(|(live, _)| live == "yes"), "{spread:?}");
    let mut refused = vec![];
    for (p, account) in &accounts {
        let (mut ws, refusals) = connect_retrying(nodes.node(*p as usize % 3), account);
        if refusals > 0 {
            refused.push(format!("partition {p} through n{}: {refusals} x 503", p % 3 + 1));
        }
        let got = drain_backlog(&mut ws);
        let stamps: Vec<u64> = got.iter().filter_map(|e| e["timestamp"].as_u64()).collect();
        assert_eq!(stamps, [500 + *p as u64], "the queue of partition {p}'s account");
        assert_eq!(content(&got[0]), format!("m{}", 500 + p).as_bytes());
    }
    assert!(refused.is_empty(), "sockets refused after the rebalance returned: {refused:?}");
}

/// Opens `account`'s socket through `server`, retrying a 503 every 100 ms
/// for up to 10 s: the socket and how many 503s came before it.
fn connect_retrying(server: &Server, account: &Account) -> (Ws, u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for refusals in 0.. {
        match server.connect(account) {
            Ok(ws) => return (ws, refusals),
            Err(tungstenite::Error::Http(r)) if r.status() == 503 && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(error) => panic!("{}'s socket: {error:?}", account.uuid),
        }
    }
    unreachable!("a socket or a panic")
}

#[test]
fn a_move_with_hostile_arguments_fails_in_one_line_and_changes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let nats = NatsCluster::start(3);
    let nodes = Nodes::start(&nats, &["n1", "n2"]);
    let before = nodes.status();
    let cases = [
        ("16", "n2", "partition 16 not moved"),
        ("4294967295", "n2", "partition 4294967295 not moved"),
        ("0", "n9", "n9"),
        ("0", "no/such node", "partition 0 not moved"),
        ("9", "", "partition 9 not moved"),
    ];
    for (p, to, says) in cases {
        let (ok, stdout, stderr) = nodes.cli(&["move", "--partition", p, "--to", to]);
        eprintln!("move --partition {p} --to {to:?}: {stderr}");
        assert!(!ok && stdout.is_empty(), "move {p} to {to:?} succeeded: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "one line for {p} to {to:?}: {stderr}");
        assert!(stderr.contains(says), "{p} to {to:?}: {stderr:?} lacks {says:?}");
        assert_eq!(nodes.status(), before, "the map after move {p} to {to:?}");
    }
    // Partitions 0 (n1) and 9 (n2) were never left frozen.
    let sender = nodes.node(1).register();
    for p in [0, 9] {
        let account = register_where(nodes.node(0), |q| q == p);
        sent(nodes.node(1), &sender, &account.uuid, 77);
    }
}
