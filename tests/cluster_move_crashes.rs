//! Crash safety of partition moves: nodes n1, n2, n3 over 3 NATS servers (16 partitions,
//! `move_chunk_pause_ms = 300`); P of n1 holds 400 envelopes of 10 KB (~8 chunks: the copy
//! takes 2.4 s or more). `cluster move` moves P to n2; once a chunk is on n2's disk (P frozen:
//! a send via n1 answers 503 + `Retry-After`) one process gets SIGKILL.
//! - `the_target_killed_mid_copy_leaves_the_source_owning_everything` (n2): the CLI fails in
//!   one line in seconds, the epoch stays, P thaws (sends via n1, n3 answer 200 at once), n2
//!   restarts dropping its partial copy, n1 delivers every acknowledged send, a later move to
//!   n2 delivers exactly what was sent since. Shows: before the flip the source owns it all.
//! - `the_source_killed_mid_copy_keeps_the_partition_after_restart` (n1): while it is down,
//!   sends to P via n2, n3 answer 503 + `Retry-After`, the map names n1 (DOWN), the CLI never
//!   reports success; restarted, n1 serves P (sends via every node land there, not in n2's
//!   copy) and delivers every acknowledged send; a later move to n2 delivers exactly what was
//!   sent since. Shows: a source crash before the flip loses nothing and no freeze outlives it.
//! - `a_nats_server_killed_during_a_move_leaves_one_owner` (the map stream's leader): the move
//!   completes (epoch + 1, P on n2) or not (same epoch, P on n1); that one owner delivers
//!   every acknowledged send, made via any node; the CLI, due once P is served again, says so.
//!   Shows: the flip is one compare-and-swap, made once the target holds everything.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use common::{header_value, request_head_at, wait_until, Account, Server, ServerOptions};
use messaging::{content, drain_backlog, send_body, REGISTRATION_ID};
use nats::NatsCluster;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard::cluster::partition::{partition_of, PartitionCount};
use uuid::Uuid;

const PARTITIONS: u32 = 16;
const IDS: [&str; 3] = ["n1", "n2", "n3"];
/// Every node's `[cluster] move_chunk_pause_ms` and `call_timeout_ms`.
const PAUSE_MS: u64 = 300;
const CALL_TIMEOUT_MS: u64 = 1_000;
/// Envelopes queued in P, and the content bytes of each (its send body, base64 in JSON, stays
/// under the test limits' `body_bytes_max = 16384`).
const QUEUED: u64 = 400;
const PADDING: usize = 10_000;
/// n2's store grows this much with the first chunk of envelopes (~512 KiB, synced); the
/// chunk of accounts before it is under 1 KiB.
const CHUNK_LANDED_BYTES: u64 = 256 * 1024;
/// A 503 of an unreachable or frozen owner comes within the call timeout and 2 s of slack.
const UNAVAILABLE_WITHIN: Duration = Duration::from_millis(CALL_TIMEOUT_MS + 2_000);
/// The target dead, the source fails at its next step: the chunk in flight times out (a call
/// timeout), the abort too, after at most one pause; 8 s of slack on 2 cores.
const CLI_FAILS_WITHIN: Duration = Duration::from_millis(2 * CALL_TIMEOUT_MS + PAUSE_MS + 8_000);
/// A move of a few envelopes, or one riding out a NATS failover.
const MOVE_WITHIN: Duration = Duration::from_secs(90);
/// The tests of this file run one at a time: each is a whole cluster on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Nodes n1, n2, n3 of one cluster: killed on drop, their logs printed if the test fails.
struct Nodes {
    name: String,
    urls: Vec<String>,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Server>>,
    starts: [u32; 3],
}

impl Nodes {
    fn start(nats: &NatsCluster) -> Self {
        let name = format!("mc{}", &Uuid::new_v4().simple().to_string()[..12]);
        let (dir, nodes) = (tempfile::tempdir().expect("a temp dir"), vec![None, None, None]);
        let mut nodes = Self { name, urls: nats.urls(), dir, nodes, starts: [0; 3] };
        let threads: Vec<_> = (0..3).map(|i| nodes.spawn(i)).collect();
        nodes.nodes = threads.into_iter().map(|t| Some(t.join().expect("a node starts"))).collect();
        nodes
    }

    fn spawn(&mut self, i: usize) -> std::thread::JoinHandle<Server> {
        self.starts[i] += 1;
        let (limits, name) = (common::TEST_LIMITS, &self.name);
        let config_toml = format!(
            "{limits}\n[cluster]\nname = {name:?}\ninitial_nodes = {IDS:?}\n\
             heartbeat_ttl_ms = 3000\nheartbeat_interval_ms = 500\n\
             call_timeout_ms = {CALL_TIMEOUT_MS}\nmove_chunk_pause_ms = {PAUSE_MS}\n"
        );
        let args = format!("--cluster-nats {} --node-id {}", self.urls.join(","), IDS[i]);
        let args = format!("{args} --cluster-listen 127.0.0.1:0 --partitions {PARTITIONS}");
        let data_dir = Some(self.dir.path().join(IDS[i]));
        let mut options = ServerOptions { shards: 1, config_toml, data_dir, ..Default::default() };
        options.extra_args = args.split(' ').map(String::from).collect();
        options.log_path = Some(self.log_path(i));
        std::thread::spawn(move || Server::start_with(options))
    }

    fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().unwrap_or_else(|| panic!("node {} is not running", IDS[i]))
    }

    fn addr(&self, i: usize) -> String {
        self.node(i).addr()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.{}.log", IDS[i], self.starts[i]))
    }

    fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(common::binary());
        command.args(["cluster", args[0], "--cluster-nats", &self.urls.join(",")]);
        command.args(["--cluster-name", &self.name]).args(&args[1..]);
        command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// The stdout of `switchboard cluster <args>`, tried again for 20 s while it fails (as
    /// it may while NATS fails over).
    fn cli(&self, args: &[&str]) -> String {
        let (started, text) = (Instant::now(), |b: &[u8]| String::from_utf8_lossy(b).into_owned());
        loop {
            let output = self.cli_command(args).output().expect("run switchboard cluster");
            if output.status.success() {
                return text(&output.stdout);
            }
            let (took, error) = (started.elapsed(), text(&output.stderr));
            assert!(took < Duration::from_secs(20), "cluster {args:?} after {took:?}: {error}");
            eprint!("cluster {args:?} failed after {took:?} (trying again): {error}");
        }
    }

    fn status(&self) -> (u64, String) {
        let stdout = self.cli(&["status"]);
        let epoch = stdout.strip_prefix("map epoch ").and_then(|rest| rest.split(',').next());
        (epoch.and_then(|e| e.parse().ok()).unwrap_or_else(|| panic!("{stdout}")), stdout)
    }

    /// Each partition's owner's address: with 16 partitions, haproxy-map's row `p` (hex) is `p`.
    fn owner_addrs(&self) -> Vec<String> {
        let stdout = self.cli(&["haproxy-map"]);
        let rows: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
        let in_order = rows.iter().enumerate().all(|(p, (x, _))| *x == format!("{p:x}"));
        assert!(in_order && rows.len() == PARTITIONS as usize, "haproxy-map: {stdout}");
        rows.into_iter().map(|(_, addr)| addr.to_string()).collect()
    }

    fn start_move(&self, p: u32, to: &str) -> MoveCli {
        let args = ["move", "--partition", &p.to_string(), "--to", to];
        MoveCli(Some(self.cli_command(&args).spawn().expect("run cluster move")), Instant::now())
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.nodes.iter_mut().for_each(|node| drop(node.take()));
        let files = std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten();
        let logs: BTreeSet<PathBuf> = files.map(|f| f.path()).collect();
        for path in logs.iter().filter(|p| p.extension().is_some_and(|e| e == "log")) {
            let log = std::fs::read_to_string(path).unwrap_or_default(); // warnings only
            std::thread::panicking().then(|| eprintln!("--- {path:?} ---\n{log}"));
        }
    }
}

/// A running `cluster move` and its start; killed on drop (it waits 300 s for a dead owner).
struct MoveCli(Option<Child>, Instant);

impl MoveCli {
    /// Its (success, stdout, stderr) once it exits, or `None` while it still waits after
    /// `within` (or once its outcome was taken).
    fn outcome(&mut self, within: Duration) -> Option<(bool, String, String)> {
        let deadline = Instant::now() + within;
        while self.0.as_mut()?.try_wait().expect("poll cluster move").is_none() {
            if Instant::now() >= deadline {
                eprintln!("cluster move still waiting after {:?}", self.1.elapsed());
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = self.0.take()?.wait_with_output().expect("cluster move's output");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        eprintln!("cluster move exited after {:?}: {stdout}{stderr}", self.1.elapsed());
        Some((output.status.success(), stdout, stderr))
    }
}

impl Drop for MoveCli {
    fn drop(&mut self) {
        let _ = self.0.as_mut().map(|child| (child.kill(), child.wait()));
    }
}

/// `m{t}:` and [`PADDING`] bytes: the content of the send of timestamp `t`.
fn payload(t: u64) -> Vec<u8> {
    format!("m{t}:{}", "x".repeat(PADDING)).into_bytes()
}

/// A cluster at map `epoch` with [`QUEUED`] envelopes acknowledged in partition `p` of n1, and
/// the sends to its recipient: each a new timestamp, which were tried and which answered 200.
struct Setup {
    nodes: Nodes,
    sender: Account,
    recipient: Account,
    p: u32,
    epoch: u64,
    tried: BTreeSet<u64>,
    acked: BTreeSet<u64>,
}

impl Setup {
    fn new(nats: &NatsCluster) -> Self {
        let nodes = Nodes::start(nats);
        let (owners, count) = (nodes.owner_addrs(), PartitionCount::new(PARTITIONS).unwrap());
        let at = |uuid: &Uuid| partition_of(uuid, count).index();
        let on = |uuid: &Uuid, i: usize| owners[at(uuid) as usize] == nodes.addr(i);
        let register = |wanted: &dyn Fn(&Uuid) -> bool| {
            let account = (0..400).map(|_| nodes.node(0).register()).find(|a| wanted(&a.uuid));
            account.expect("an account in a wanted partition")
        };
        let recipient = register(&|uuid| on(uuid, 0));
        let p = at(&recipient.uuid);
        let sender = register(&|uuid| on(uuid, 2) && at(uuid) != p);
        let (epoch, tried, acked) = (nodes.status().0, BTreeSet::new(), BTreeSet::new());
        let mut s = Self { nodes, sender, recipient, p, epoch, tried, acked };
        (0..QUEUED).for_each(|_| s.sent(0, "queueing before the move", Duration::ZERO));
        eprintln!("queued {QUEUED} x {PADDING} B in partition P = {p} on n1");
        s
    }

    fn send(&mut self, via: usize) -> (u16, String, Duration) {
        let t = self.tried.len() as u64 + 1;
        let body = send_body(&[(1, REGISTRATION_ID)], &payload(t), false, t);
        let (path, addr) = (format!("/v1/messages/{}", self.recipient.uuid), self.nodes.addr(via));
        let started = Instant::now();
        let (status, head, _) = request_head_at(&addr, "PUT", &path, Some(&self.sender), &body);
        self.tried.insert(t);
        if status == 200 {
            self.acked.insert(t);
        }
        (status, head, started.elapsed())
    }

    /// A send via `via` that must answer 503 with a `Retry-After` of seconds, promptly.
    fn refused(&mut self, via: usize, when: &str) {
        let (status, head, took) = self.send(via);
        let retry = header_value(&head, "Retry-After").filter(|r| r.parse::<u64>().is_ok());
        let what = format!("a send via {} {when}", IDS[via]);
        assert!(status == 503 && retry.is_some(), "{what}: {head}");
        assert!(took <= UNAVAILABLE_WITHIN, "{what}: the 503 took {took:?}");
    }

    /// Sends via `via` until one answers 200 (503 + `Retry-After` before it) within
    /// `within`; with `Duration::ZERO` the first send must answer 200.
    fn sent(&mut self, via: usize, what: &str, within: Duration) {
        let (started, mut refusals) = (Instant::now(), 0);
        loop {
            let (status, head, _) = self.send(via);
            match status {
                200 => break,
                503 if header_value(&head, "Retry-After").is_some() => refusals += 1,
                _ => panic!("{what} via {}: {head}", IDS[via]),
            }
            assert!(started.elapsed() < within, "{what} via {}: {refusals} x 503 {head}", IDS[via]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let (via, took) = (IDS[via], started.elapsed());
        (refusals > 0).then(|| eprintln!("{what} via {via}: 200 after {refusals} x 503, {took:?}"));
    }

    /// Sends via every node (each 200 once the cluster settles), then drains the recipient's
    /// queue through `owner`: it holds every acknowledged send after timestamp `since` once,
    /// with its content, and nothing else sent after it; waits for `owner`'s deletes.
    fn delivered_by(&mut self, owner: usize, since: u64, what: &str) {
        (0..3).for_each(|via| self.sent(via, "a send to P", Duration::from_secs(15)));
        let mut ws = self.nodes.node(owner).connect(&self.recipient).expect("the recipient");
        let delivered = drain_backlog(&mut ws);
        let mut seen = BTreeSet::new();
        for envelope in &delivered {
            let t = envelope["timestamp"].as_u64().expect("a timestamp");
            assert!(seen.insert(t), "{what}: send {t} delivered twice");
            assert!(t > since && self.tried.contains(&t), "{what}: send {t} is stale or unsent");
            assert!(content(envelope) == payload(t), "{what}: the content of send {t}");
        }
        let acked: BTreeSet<u64> = self.acked.range(since + 1..).copied().collect();
        let lost: Vec<&u64> = acked.difference(&seen).collect();
        let (tried, late) = (self.tried.len() as u64 - since, seen.difference(&acked).count());
        let counts = format!("{tried} tried, {} acked, {} delivered", acked.len(), seen.len());
        eprintln!("{what}: {counts} ({late} not acked), {} lost", lost.len());
        assert!(lost.is_empty(), "{what}: {} acknowledged sends lost: {lost:?}", lost.len());
        let deleted = || self.nodes.node(owner).metric("messages_acked_total") >= seen.len() as u64;
        wait_until("the delivered envelopes' deletes", Duration::from_secs(10), deleted);
    }
}

/// Starts moving P to n2; once a chunk of envelopes has landed on n2's disk and a send via
/// n1 answers 503 (P frozen, mid-copy: some 6 more chunks and pauses to go), `kill`s. A
/// chunk shows in the size of n2's RocksDB files: its write-ahead log grows by it, synced.
fn kill_mid_copy(s: &mut Setup, kill: impl FnOnce(&mut Setup)) -> MoveCli {
    let (dir, sizes) = (s.nodes.dir.path().join("n2"), |e: std::fs::DirEntry| e.metadata().ok());
    let dir_bytes = || std::fs::read_dir(&dir).unwrap().flatten().filter_map(sizes);
    let dir_bytes = || dir_bytes().map(|meta| meta.len()).sum::<u64>();
    let before = dir_bytes();
    let mut cli = s.nodes.start_move(s.p, "n2");
    while dir_bytes() < before + CHUNK_LANDED_BYTES {
        let running = cli.0.as_mut().is_some_and(|c| c.try_wait().expect("poll").is_none());
        let on_time = running && cli.1.elapsed() < Duration::from_secs(60);
        assert!(on_time, "no chunk on n2: {:?}", cli.outcome(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(10));
    }
    let landed = cli.1.elapsed();
    s.refused(0, "mid-copy");
    kill(s);
    let grown = dir_bytes().saturating_sub(before) / 1024;
    eprintln!("chunk on n2 at {landed:?}, killed at {:?} ({grown} KiB on n2)", cli.1.elapsed());
    cli
}

/// With P drained: a send via each node, then P moves to n2, which delivers exactly what was
/// sent since (nothing stale from a partial copy, nothing delivered before).
fn moved_again_delivers_exactly(s: &mut Setup) {
    let since = s.tried.len() as u64;
    (0..3).for_each(|via| s.sent(via, "a fresh send", Duration::from_secs(15)));
    let answer = s.nodes.start_move(s.p, "n2").outcome(MOVE_WITHIN);
    let (ok, stdout, stderr) = answer.expect("the second move answers");
    assert!(ok, "the second move failed: {stderr}");
    let (epoch, _) = s.nodes.status();
    assert_eq!(stdout.trim_end(), format!("partition {} is on node n2 (map epoch {epoch})", s.p));
    assert!(epoch > s.epoch, "epoch {epoch} after {}", s.epoch);
    assert_eq!(s.nodes.owner_addrs()[s.p as usize], s.nodes.addr(1), "P's owner after it");
    s.delivered_by(1, since, "n2 after the second move");
}

#[test]
fn the_target_killed_mid_copy_leaves_the_source_owning_everything() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let nats = NatsCluster::start(3);
    let mut s = Setup::new(&nats);
    let mut cli = kill_mid_copy(&mut s, |s| drop(s.nodes.nodes[1].take())); // SIGKILL
    let (ok, stdout, stderr) = cli.outcome(CLI_FAILS_WITHIN).expect("the CLI fails in time");
    assert!(!ok && stdout.is_empty(), "the move succeeded without its target: {stdout}");
    let says = format!("partition {} not moved", s.p);
    assert!(stderr.lines().count() == 1 && stderr.contains(&says), "{stderr:?}");
    s.sent(0, "P thawed: a send right after the CLI failed", Duration::ZERO);
    s.sent(2, "P thawed: a send right after the CLI failed", Duration::ZERO);
    assert_eq!(s.nodes.status().0, s.epoch, "the map changed");
    s.nodes.nodes[1] = Some(s.nodes.spawn(1).join().expect("n2 restarts"));
    let log = std::fs::read_to_string(s.nodes.log_path(1)).unwrap_or_default();
    let line = log.lines().find(|l| l.contains("dropped the local copies")).unwrap_or_default();
    eprintln!("n2 restarted: {line:?}");
    assert!(line.ends_with(&format!(" dropped=[{}]", s.p)), "n2's partial copy of P: {log}");
    assert_eq!(s.nodes.owner_addrs()[s.p as usize], s.nodes.addr(0), "P's owner");
    s.delivered_by(0, 0, "n1 after the failed move");
    moved_again_delivers_exactly(&mut s);
}

#[test]
fn the_source_killed_mid_copy_keeps_the_partition_after_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let nats = NatsCluster::start(3);
    let mut s = Setup::new(&nats);
    let n1_owns = s.nodes.owner_addrs().iter().filter(|a| **a == s.nodes.addr(0)).count();
    let mut cli = kill_mid_copy(&mut s, |s| drop(s.nodes.nodes[0].take())); // SIGKILL
    [1, 2].into_iter().for_each(|via| s.refused(via, "right after n1's kill"));
    let row = ["n1".to_string(), "DOWN".into(), n1_owns.to_string(), "-".into(), "-".into()];
    let down = || s.nodes.status().1.lines().any(|l| l.split_whitespace().eq(row.iter()));
    wait_until("n1 DOWN, with its partitions", Duration::from_secs(15), down);
    assert_eq!(s.nodes.status().0, s.epoch, "the map changed with the source down");
    [1, 2].into_iter().for_each(|via| s.refused(via, "with n1 shown DOWN"));
    s.nodes.nodes[0] = Some(s.nodes.spawn(0).join().expect("n1 restarts"));
    assert_eq!(s.nodes.status().0, s.epoch, "the map changed");
    assert_eq!(s.nodes.owner_addrs()[s.p as usize], s.nodes.addr(0), "P's owner");
    s.delivered_by(0, 0, "n1 after the failed move");
    let answer = cli.outcome(Duration::ZERO);
    assert!(answer.as_ref().is_none_or(|(ok, _, _)| !ok), "a move reported done: {answer:?}");
    moved_again_delivers_exactly(&mut s);
}

#[test]
fn a_nats_server_killed_during_a_move_leaves_one_owner() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut nats = NatsCluster::start(3);
    let mut s = Setup::new(&nats);
    let stream = format!("KV_switchboard_map_{}", s.nodes.name);
    let leader = nats.stream_leader(&stream).unwrap_or_else(|| panic!("no leader of {stream}"));
    let mut cli = kill_mid_copy(&mut s, |_| nats.kill9(nats.index_of(&leader).unwrap()));
    let killed = Instant::now();
    s.sent(2, "a send once the move is over (thawed)", Duration::from_secs(60));
    eprintln!("killed NATS {leader} (the map's leader); P served {:?} after", killed.elapsed());
    let (epoch, addr) = (s.nodes.status().0, s.nodes.owner_addrs()[s.p as usize].clone());
    let owner = match (epoch.checked_sub(s.epoch), addr) {
        (Some(0), a) if a == s.nodes.addr(0) => 0,
        (Some(1), a) if a == s.nodes.addr(1) => 1,
        other => panic!("epoch {epoch} after {}, P at {other:?}\n{}", s.epoch, nats.log_tails()),
    };
    s.delivered_by(owner, 0, &format!("{} owning P at epoch {epoch}", IDS[owner]));
    // The move is over (P thawed): its answer is due; the CLI must say what the map says.
    let answer = cli.outcome(Duration::from_secs(10));
    let ok = answer.as_ref().map(|(ok, _, _)| *ok);
    assert_eq!(ok, Some(owner == 1), "the CLI's answer, P being on {}: {answer:?}", IDS[owner]);
}
