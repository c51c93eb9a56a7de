//! Test support: a cluster of real `switchboard serve` nodes joined through
//! a [`NatsCluster`], each its own child process with its own data
//! directory, started, killed (`kill -9`), frozen (`SIGSTOP`/`SIGCONT`) and
//! restarted on the same data directory and node id by the test itself.
//!
//! Every node gets `--shards 1 --cluster-nats <all NATS URLs> --node-id ID
//! --cluster-listen 127.0.0.1:0 --partitions 16` and a config file with the
//! test limits and a `[cluster]` table: a name unique to the cluster (so
//! parallel tests never share buckets), every node as `initial_nodes`, a
//! 3 s heartbeat TTL, 500 ms heartbeats and a 1 s call timeout. The map is
//! then [`PartitionMap::initial`] of the node ids, which is how
//! [`Cluster::owner_of`] computes an account's owner without asking.
//!
//! Include it with `mod common;`, `#[path = "common/nats.rs"] mod nats;`,
//! `#[path = "common/messaging.rs"] mod messaging;` and
//! `#[path = "common/cluster.rs"] mod cluster;`.
#![allow(dead_code)]

use crate::common::{self, Account, Server, ServerOptions};
use crate::messaging::{send_body, REGISTRATION_ID};
use crate::nats::NatsCluster;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard::cluster::map::{NodeId, PartitionMap};
use switchboard::cluster::partition::{partition_of, PartitionCount};
use uuid::Uuid;

/// Partitions every test cluster is created with.
pub const PARTITIONS: u32 = 16;
/// The longest a node (or the cluster) may take to serve again after a
/// fault ends (a restart, a takeover).
pub const RECOVERY: Duration = Duration::from_secs(30);
/// `[cluster] call_timeout_ms`: the longest a call to another node waits.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);
/// `[cluster] heartbeat_ttl_ms`: a node silent this long counts as down.
pub const HEARTBEAT_TTL: Duration = Duration::from_millis(3000);
/// What a 503 may take beyond [`CALL_TIMEOUT`] (scheduling on 2 cores).
pub const ANSWER_SLACK: Duration = Duration::from_secs(2);

/// A running cluster of nodes; every node is killed on drop.
pub struct Cluster {
    /// `[cluster] name`, unique per cluster (`t` and 12 hex digits).
    pub name: String,
    nodes: Vec<Node>,
    nats_urls: Vec<String>,
    map: PartitionMap,
    dir: tempfile::TempDir,
    /// `durability` of every node (`None`: the default).
    durability: Option<&'static str>,
    /// More `[cluster]` lines for every node.
    cluster_extra: String,
}

/// One node: its id, its process (`None` once killed) and its logs.
struct Node {
    id: String,
    server: Option<Server>,
    /// Starts so far; each start logs to its own file.
    starts: u32,
    paused: bool,
}

/// One answer to an HTTP request: status, head, body, and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Cluster {
    /// Starts one node per id (in parallel: each waits for the others to
    /// make the map) and returns once every node's `/health` is 200.
    pub fn start(nats: &NatsCluster, ids: &[&str]) -> Self {
        Self::start_with(nats, ids, None, "")
    }

    /// [`Cluster::start`] with `durability = "replicated"` on every node.
    pub fn start_replicated(nats: &NatsCluster, ids: &[&str]) -> Self {
        Self::start_with(nats, ids, Some("replicated"), "")
    }

    /// [`Cluster::start_replicated`] with more `[cluster]` lines.
    pub fn start_replicated_with(nats: &NatsCluster, ids: &[&str], cluster_extra: &str) -> Self {
        Self::start_with(nats, ids, Some("replicated"), cluster_extra)
    }

    fn start_with(
        nats: &NatsCluster,
        ids: &[&str],
        durability: Option<&'static str>,
        cluster_extra: &str,
    ) -> Self {
        let node_ids: Vec<NodeId> = ids.iter().map(|id| id.parse().expect("a node id")).collect();
        let count = PartitionCount::new(PARTITIONS).unwrap();
        let name = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut cluster = Self {
            name,
            nodes: ids
                .iter()
                .map(|id| Node { id: id.to_string(), server: None, starts: 0, paused: false })
                .collect(),
            nats_urls: nats.urls(),
            map: PartitionMap::initial(count, &node_ids).expect("the initial map"),
            dir: tempfile::tempdir().expect("a temp dir for the nodes"),
            durability,
            cluster_extra: cluster_extra.to_string(),
        };
        let starting: Vec<_> = (0..ids.len()).map(|i| cluster.spawn_start(i)).collect();
        for (i, thread) in starting.into_iter().enumerate() {
            let server = cluster.joined(i, thread);
            cluster.nodes[i].server = Some(server);
        }
        // The nodes serve as a cluster, not as single boxes: the map exists.
        let streams = nats.stream_names();
        assert!(streams.contains(&cluster.map_stream()), "no map bucket: {streams:?}");
        cluster
    }

    /// The running node `i` (panics when it was killed).
    pub fn node(&self, i: usize) -> &Server {
        let node = &self.nodes[i];
        node.server.as_ref().unwrap_or_else(|| panic!("node {} is not running", node.id))
    }

    /// Node `i`'s client address.
    pub fn addr(&self, i: usize) -> String {
        self.node(i).addr()
    }

    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    /// The stream of the map bucket (whose NATS leader fault tests kill).
    pub fn map_stream(&self) -> String {
        format!("KV_switchboard_map_{}", self.name)
    }

    /// The index of the node owning `uuid` in the initial map.
    pub fn owner_of(&self, uuid: &Uuid) -> usize {
        let partition = partition_of(uuid, self.map.partition_count());
        let owner = self.map.owner(partition).expect("an owner for every partition");
        self.nodes.iter().position(|node| node.id == owner.as_str()).expect("a node of the map")
    }

    /// Kills node `i` with SIGKILL (it gets no chance to flush or say goodbye).
    pub fn kill9(&mut self, i: usize) {
        let mut server = self.nodes[i].server.take().expect("the node is running");
        server.kill();
        self.nodes[i].paused = false;
    }

    /// Starts killed node `i` again on its data directory and node id (its
    /// ports change) and waits for its `/health`.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].server.is_none(), "node {} is still running", self.nodes[i].id);
        let thread = self.spawn_start(i);
        let server = self.joined(i, thread);
        self.nodes[i].server = Some(server);
    }

    /// Freezes node `i` (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, libc::SIGSTOP);
        self.nodes[i].paused = true;
    }

    /// Lets frozen node `i` run again (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.signal(i, libc::SIGCONT);
        self.nodes[i].paused = false;
    }

    fn signal(&self, i: usize, signal: libc::c_int) {
        let pid = self.node(i).child.id() as libc::pid_t;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "signal {signal} to node {}", self.nodes[i].id);
    }

    /// Starts node `i` on a thread (it blocks until the node is healthy).
    fn spawn_start(&mut self, i: usize) -> std::thread::JoinHandle<Server> {
        self.nodes[i].starts += 1;
        let node = &self.nodes[i];
        let node_dir = self.dir.path().join(&node.id);
        std::fs::create_dir_all(&node_dir).expect("the node's directory");
        let options = ServerOptions {
            shards: 1,
            config_toml: self.config_toml(),
            extra_args: vec![
                "--cluster-nats".into(),
                self.nats_urls.join(","),
                "--node-id".into(),
                node.id.clone(),
                "--cluster-listen".into(),
                "127.0.0.1:0".into(),
                "--partitions".into(),
                PARTITIONS.to_string(),
            ],
            data_dir: Some(node_dir.join("data")),
            log_path: Some(self.log_path(i)),
            ..Default::default()
        };
        std::thread::spawn(move || Server::start_with(options))
    }

    /// The started server of node `i`, or a panic with its log.
    fn joined(&self, i: usize, thread: std::thread::JoinHandle<Server>) -> Server {
        thread.join().unwrap_or_else(|panic| {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("node {} did not start: {reason}\n{}", self.nodes[i].id, self.log_tail(i))
        })
    }

    pub fn config_toml(&self) -> String {
        let initial: Vec<String> = self.nodes.iter().map(|n| format!("{:?}", n.id)).collect();
        let durability =
            self.durability.map(|mode| format!("durability = {mode:?}\n")).unwrap_or_default();
        format!(
            "{durability}{}\n[cluster]\nname = {:?}\ninitial_nodes = [{}]\nheartbeat_ttl_ms = {}\n\
             heartbeat_interval_ms = 500\ncall_timeout_ms = {}\n{}",
            common::TEST_LIMITS,
            self.name,
            initial.join(", "),
            HEARTBEAT_TTL.as_millis(),
            CALL_TIMEOUT.as_millis(),
            self.cluster_extra
        )
    }

    /// The log file of node `i`'s latest start.
    fn log_path(&self, i: usize) -> PathBuf {
        let node = &self.nodes[i];
        self.dir.path().join(format!("{}.{}.log", node.id, node.starts))
    }

    /// The last lines of node `i`'s latest log.
    pub fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- node {} (start {}) ---\n{tail}\n", self.nodes[i].id, self.nodes[i].starts)
    }

    /// Every node's log tail, for a failure message.
    pub fn log_tails(&self) -> String {
        (0..self.nodes.len()).map(|i| self.log_tail(i)).collect()
    }

    /// Calls `attempt` every 50 ms until it returns `Ok`; after `timeout`
    /// panics with its last error and every node's log tail.
    pub fn poll<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut attempt: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let error = match attempt() {
                Ok(value) => return value,
                Err(error) => error,
            };
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {error}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Registers accounts through node `via` until one is owned by node `owner`.
    pub fn register_owned_by(&self, via: usize, owner: usize) -> Account {
        for _ in 0..200 {
            let password = format!("pw-{}", Uuid::new_v4());
            let body = format!(r#"{{"password":"{password}","registrationId":{REGISTRATION_ID}}}"#);
            let uuid = self.register_raw(via, &body);
            if self.owner_of(&uuid) == owner {
                return Account { uuid, device_id: 1, password };
            }
        }
        panic!("no account registered through node {via} landed on node {owner}");
    }

    /// `PUT /v1/accounts` with `body` through node `via`: the new uuid.
    pub fn register_raw(&self, via: usize, body: &str) -> Uuid {
        let (status, response) =
            self.node(via).request("PUT", "/v1/accounts", None, body.as_bytes());
        let text = String::from_utf8_lossy(&response);
        assert_eq!(status, 200, "register through node {}: {text}", self.nodes[via].id);
        let json: serde_json::Value = serde_json::from_slice(&response).expect("JSON");
        Uuid::parse_str(json["uuid"].as_str().expect("a uuid")).expect("a uuid")
    }

    /// `PUT /v1/messages/{dest}` through node `via` from `sender` to device
    /// 1 with content `m{timestamp}`.
    pub fn send(&self, via: usize, sender: &Account, dest: &Uuid, timestamp: u64) -> Answer {
        send_at(&self.addr(via), sender, dest, timestamp)
    }
}

impl Cluster {
    /// Sends to `dest` through `via` until one answers 200 (only 503
    /// before it, each the 503 of an unreachable owner, and recorded in
    /// `ledger`), timestamps from `*next`.
    pub fn wait_served(
        &self,
        via: usize,
        (sender, dest): (&Account, &Uuid),
        ledger: &mut Ledger,
        next: &mut u64,
    ) {
        let started = Instant::now();
        self.poll("sends to the partitions to answer 200", RECOVERY, || {
            let answer = self.send(via, sender, dest, *next);
            if answer.status == 503 {
                assert_unavailable(&answer, "a send before the partitions serve again");
            }
            ledger.record(*next, &answer);
            *next += 1;
            (answer.status == 200).then_some(()).ok_or(format!(
                "{} {}",
                answer.status,
                answer.text()
            ))
        });
        eprintln!("served again through {} after {:?}", self.id(via), started.elapsed());
    }

    /// `account`'s WebSocket through node `via`, polling while it is
    /// refused with 503 (a node that serves again may take a moment longer
    /// to take forwarded sockets than calls).
    pub fn connect_when_served(&self, via: usize, account: &Account) -> common::Ws {
        self.poll("a socket", RECOVERY, || match self.node(via).connect(account) {
            Ok(ws) => Ok(ws),
            Err(tungstenite::Error::Http(response)) if response.status() == 503 => {
                Err(format!("{response:?}"))
            }
            Err(other) => panic!("a socket through {}: {other}", self.id(via)),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            // SIGKILL ends a stopped process too (Server's drop sends it).
            node.server.take();
        }
    }
}

/// The content the sends of [`Cluster::send`] carry for `timestamp`.
pub fn message(timestamp: u64) -> String {
    format!("m{timestamp}")
}

/// [`Cluster::send`] to the node at `addr` (usable from another thread).
pub fn send_at(addr: &str, sender: &Account, dest: &Uuid, timestamp: u64) -> Answer {
    let body = send_body(&[(1, REGISTRATION_ID)], message(timestamp).as_bytes(), false, timestamp);
    request(addr, "PUT", &format!("/v1/messages/{dest}"), Some(sender), &body)
}

/// One request to `addr` on a new connection, timed, with its head; status
/// 0 when the connection ends without a complete answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&Account>,
    body: &[u8],
) -> Answer {
    let length = body.len();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n");
    if let Some(account) = auth {
        head.push_str(&format!("Authorization: {}\r\n", account.basic()));
    }
    let bytes = [format!("{head}Connection: close\r\n\r\n").into_bytes(), body.to_vec()].concat();
    let started = Instant::now();
    let raw = common::exchange(addr, &bytes, Duration::from_secs(10));
    let elapsed = started.elapsed();
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        let head =
            format!("no complete answer to {method} {path}: {:?}", String::from_utf8_lossy(&raw));
        return Answer { status: 0, head, body: vec![], elapsed };
    };
    let (status, body) = common::parse_response(&raw);
    Answer { status, head: String::from_utf8_lossy(&raw[..end]).into_owned(), body, elapsed }
}

/// Asserts `answer` is the 503 of an unreachable owner: a `Retry-After` of
/// whole seconds, within the call timeout and some slack.
pub fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {} {}", answer.head, answer.text());
    let retry = common::header_value(&answer.head, "Retry-After")
        .unwrap_or_else(|| panic!("{what}: 503 without Retry-After: {}", answer.head));
    assert!(retry.parse::<u64>().is_ok(), "{what}: Retry-After {retry:?} is not seconds");
    assert!(
        answer.elapsed <= CALL_TIMEOUT + ANSWER_SLACK,
        "{what}: the 503 took {:?}, over the call timeout {CALL_TIMEOUT:?} and {ANSWER_SLACK:?}",
        answer.elapsed
    );
}

/// Which sends were tried and which were acknowledged (200), by timestamp.
#[derive(Debug, Default)]
pub struct Ledger {
    pub tried: std::collections::BTreeSet<u64>,
    pub acked: std::collections::BTreeSet<u64>,
}

impl Ledger {
    /// Records the answer to the send of `timestamp`: a 200 or a 503 (the
    /// only answers a send may get while a node is down).
    pub fn record(&mut self, timestamp: u64, answer: &Answer) {
        self.tried.insert(timestamp);
        match answer.status {
            200 => {
                self.acked.insert(timestamp);
            }
            503 => {}
            other => panic!("send {timestamp}: {other} {} {}", answer.head, answer.text()),
        }
    }

    /// Adds what `other` recorded (its timestamps are its own).
    pub fn merge(&mut self, other: Ledger) {
        self.tried.extend(other.tried);
        self.acked.extend(other.acked);
    }

    /// Asserts every acknowledged send is among `delivered` envelopes,
    /// each at most once, and nothing was delivered that was never sent.
    pub fn assert_delivered(&self, delivered: &[serde_json::Value]) {
        let mut seen = std::collections::BTreeSet::new();
        for envelope in delivered {
            let timestamp = envelope["timestamp"].as_u64().expect("a timestamp");
            assert!(seen.insert(timestamp), "send {timestamp} was delivered twice");
            assert!(self.tried.contains(&timestamp), "send {timestamp} was never made");
            let content = crate::messaging::content(envelope);
            assert_eq!(content, message(timestamp).as_bytes(), "content of send {timestamp}");
        }
        let lost: Vec<&u64> = self.acked.difference(&seen).collect();
        eprintln!(
            "{} sends tried, {} acknowledged, {} delivered",
            self.tried.len(),
            self.acked.len(),
            seen.len()
        );
        assert!(lost.is_empty(), "{} acknowledged sends were lost: {lost:?}", lost.len());
    }
}
