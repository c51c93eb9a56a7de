//! Jepsen-style loss tests on loopback (issue 22): 3 real nodes with
//! `durability = "replicated"` joined through a real 3-server NATS
//! JetStream cluster (16 partitions; heartbeat TTL 3 s, call timeout 1 s;
//! partition snapshots every 2 s, so logs are purged as the run goes).
//! Three senders (one preferring each node, any serving node otherwise)
//! send continuously to three recipients (one owned by each node at
//! first) while three devices drain and acknowledge continuously,
//! reconnecting through any serving node when their socket drops. Every
//! send's answer and every delivery is recorded. Meanwhile, one fault at a
//! time, at seeded random moments and for seeded random lengths (1 to 7 s:
//! some within the TTL, some past it):
//! - `kill -9` of a node, then its restart on its data directory;
//! - `kill -9` of the NATS server leading a recipient's partition log
//!   stream, then its restart on its store;
//! - `SIGSTOP` of a node, then `SIGCONT`.
//!
//! Then senders stop, every send through every node to every recipient is
//! polled until it answers 200, and every device drains to queue-empty on
//! a new connection. Checks: only 200, 503 or a failed connection answer a
//! send; every send acknowledged with 200 is delivered at least once
//! (lost = 0), to its recipient, as sent; deliveries repeated before any
//! acknowledgement of theirs (duplicates) are counted, not failed; a
//! message the device acknowledged and got again (came back) fails the
//! test unless the acknowledgement was at risk: its connection ended
//! under the device within [`chaos_check::ACK_AT_RISK`], so the owner may
//! have died, frozen, been fenced, or (a NATS leader's loss) closed the
//! partition's sessions to catch it up, before the delete reached the log. The device cannot know (a
//! WebSocket acknowledgement has no answer): redelivering is
//! at-least-once, as for a single node's unsynced deletes. Each test
//! prints one table line (`chaos table:`), which `scripts/chaos` collects,
//! and the story of each message lost or come back; on a failure (or with
//! [`chaos::KEEP_LOGS_ENV`] set) the nodes' logs are kept (the path is
//! printed).
//!
//! Bounded: [`chaos::SECS_ENV`] seconds of faults (default
//! [`chaos::SECS_DEFAULT`]) and at most [`chaos::Settings::faults_max`]
//! faults, seeded by [`chaos::SEED_ENV`] (printed); the tests run one at a
//! time, whatever the test threads.
//!
//! Layout: this file holds the three tests, the run (clusters, accounts,
//! threads) and the fault loop; `common/chaos.rs` the settings, the seeded
//! random source, the fault kinds, the table of serving nodes and the
//! senders; `common/chaos_devices.rs` the recipient devices and their logs;
//! `common/chaos_check.rs` the tally, the report and the checks. Invariants
//! of the run: one fault at a time, each healed (the node or NATS server
//! restarted or continued, and marked serving again) before the next; a
//! node is marked not serving before its fault begins, so the threads
//! never pick it on purpose meanwhile (a NATS fault marks none); every
//! flag is raised on the way out, pass or fail, so every thread it
//! started stops at its next look at them.

#[path = "common/chaos.rs"]
mod chaos;
#[path = "common/chaos_check.rs"]
mod chaos_check;
#[path = "common/chaos_devices.rs"]
mod chaos_devices;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use chaos::{Fault, Flags, Rng, SendLog, SendRecord, SenderPlan, Serving, Settings, StopOnDrop};
use chaos_check::Tally;
use chaos_devices::DeviceLog;
use cluster::Cluster;
use common::Account;
use nats::NatsCluster;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// Snapshots (and log purges) every 2 s of a partition with 20 new log
/// entries: a takeover or restart during the run restores from one.
const SNAPSHOTS: &str = "snapshot_interval_ms = 2000\nsnapshot_entries_min = 20\n";
/// The longest the healed cluster may take to answer 200 everywhere.
const RECOVERY: Duration = Duration::from_secs(30);
/// The first timestamp of the sends that check the healed cluster.
const HEALED_TIMESTAMP: u64 = 9 * SENDER_TIMESTAMPS;
/// Timestamps per sender: sender `i` sends from `(i + 1) * SENDER_TIMESTAMPS` on.
const SENDER_TIMESTAMPS: u64 = 1_000_000_000;
/// The chaos tests take every core there is: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn kill_9_of_random_nodes_loses_nothing_acknowledged() {
    chaos(Fault::NodeKill);
}

#[test]
fn kill_9_of_a_partition_logs_nats_leader_loses_nothing_acknowledged() {
    chaos(Fault::NatsLeaderKill);
}

#[test]
fn sigstop_of_random_nodes_loses_nothing_acknowledged() {
    chaos(Fault::NodePause);
}

/// One test: the cluster, the traffic, the faults, the heal, the checks.
fn chaos(fault: Fault) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let settings = Settings::from_env();
    println!(
        "chaos: {} seed {} ({}={} to repeat), {} s of faults",
        fault.name(),
        settings.seed,
        chaos::SEED_ENV,
        settings.seed,
        settings.secs
    );
    let mut run = Run::start(fault, settings.seed ^ ((fault as u64 + 1) << 40));
    let _stop = StopOnDrop(run.flags.clone());
    let senders = run.spawn_senders();
    let devices: Vec<_> = (0..run.recipients.len())
        .map(|r| {
            let (serving, flags) = (run.serving.clone(), run.flags.clone());
            chaos_devices::spawn_device(run.recipients[r].clone(), r, serving, flags, run.started)
        })
        .collect();
    let faults = run.make_faults(&settings);
    run.flags.stop_sending.store(true, Ordering::SeqCst);
    let mut sends = SendLog::default();
    for sender in senders {
        sends.merge(run.joined(sender.join(), "a sender"));
    }
    run.wait_healed(&mut sends);
    run.flags.drain.store(true, Ordering::SeqCst);
    let devices: Vec<DeviceLog> =
        devices.into_iter().map(|device| run.joined(device.join(), "a device")).collect();
    let tally = Tally::of(&sends, &devices);
    println!("chaos table: {}", Tally::HEADER);
    println!("chaos table: {}", tally.line(fault.name(), faults, &sends));
    let faults_text = run.faults_text();
    chaos_check::print_details(fault, &tally, &sends, &devices, &faults_text);
    chaos_check::check(fault, &tally, &run.cluster, &faults_text);
}

/// A running test: the clusters, the shared state of its threads and
/// what it did so far.
struct Run {
    fault: Fault,
    rng: Rng,
    nats: NatsCluster,
    cluster: Cluster,
    serving: Arc<Serving>,
    flags: Arc<Flags>,
    /// When the traffic started: every time recorded is since then.
    started: Instant,
    /// Recipient `r` is owned by node `r` in the initial map.
    recipients: Vec<Account>,
    /// Sender `i` prefers node `i` and is owned by node `i + 1`.
    senders: Vec<Account>,
    /// Every fault: what, when it began and when it was healed.
    timeline: Vec<(String, Duration, Duration)>,
}

impl Run {
    fn start(fault: Fault, seed: u64) -> Self {
        let nats = NatsCluster::start(3);
        let cluster = Cluster::start_replicated_with(&nats, &NODES, SNAPSHOTS);
        let count = NODES.len();
        let recipients =
            (0..count).map(|r| cluster.register_owned_by((r + 1) % count, r)).collect();
        let senders = (0..count).map(|i| cluster.register_owned_by(i, (i + 1) % count)).collect();
        let serving = Serving::new((0..count).map(|i| cluster.addr(i)).collect());
        Self {
            fault,
            rng: Rng::new(seed),
            nats,
            cluster,
            serving,
            flags: Arc::new(Flags::default()),
            started: Instant::now(),
            recipients,
            senders,
            timeline: Vec::new(),
        }
    }

    fn spawn_senders(&self) -> Vec<std::thread::JoinHandle<Result<SendLog, String>>> {
        let recipients: Vec<_> = self.recipients.iter().map(|account| account.uuid).collect();
        (0..self.senders.len())
            .map(|i| {
                let plan = SenderPlan {
                    account: self.senders[i].clone(),
                    prefer: i,
                    recipients: recipients.clone(),
                    first_timestamp: SENDER_TIMESTAMPS * (i as u64 + 1),
                };
                chaos::spawn_sender(plan, self.serving.clone(), self.flags.clone(), self.started)
            })
            .collect()
    }

    /// Faults one at a time, each healed before the next, until the fault
    /// period is over (and at least [`chaos::FAULTS_MIN`] were made, at
    /// most [`Settings::faults_max`]); how many were made.
    fn make_faults(&mut self, settings: &Settings) -> usize {
        let period = Duration::from_secs(settings.secs);
        let mut faults = 0;
        while faults < settings.faults_max()
            && (faults < chaos::FAULTS_MIN || self.started.elapsed() < period)
        {
            std::thread::sleep(self.rng.millis(1000, 3000));
            let hold = self.rng.millis(1000, 7000);
            let began = self.started.elapsed();
            let what = match self.fault {
                Fault::NodeKill => self.kill_a_node(hold),
                Fault::NatsLeaderKill => self.kill_a_log_leader(hold),
                Fault::NodePause => self.pause_a_node(hold),
            };
            println!("chaos: {what} at {began:.1?}, healed at {:.1?}", self.started.elapsed());
            self.timeline.push((what, began, self.started.elapsed()));
            faults += 1;
        }
        faults
    }

    fn kill_a_node(&mut self, hold: Duration) -> String {
        let victim = self.rng.below(NODES.len());
        self.serving.set(victim, None);
        self.cluster.kill9(victim);
        std::thread::sleep(hold);
        self.cluster.restart(victim);
        self.serving.set(victim, Some(self.cluster.addr(victim)));
        format!("kill -9 of node {} for {hold:.1?}", NODES[victim])
    }

    fn pause_a_node(&mut self, hold: Duration) -> String {
        let victim = self.rng.below(NODES.len());
        self.serving.set(victim, None);
        self.cluster.pause(victim);
        std::thread::sleep(hold);
        self.cluster.resume(victim);
        self.serving.set(victim, Some(self.cluster.addr(victim)));
        format!("SIGSTOP of node {} for {hold:.1?}", NODES[victim])
    }

    /// Kills the NATS server leading the log stream of a random
    /// recipient's partition.
    fn kill_a_log_leader(&mut self, hold: Duration) -> String {
        let count = switchboard::cluster::partition::PartitionCount::new(cluster::PARTITIONS);
        let uuid = self.recipients[self.rng.below(self.recipients.len())].uuid;
        let partition =
            switchboard::cluster::partition::partition_of(&uuid, count.expect("a count")).index();
        let stream = format!("SB_LOG_{}_{partition}", self.cluster.name);
        let leader = self.cluster.poll("a leader of the log stream", RECOVERY, || {
            self.nats.stream_leader(&stream).ok_or(format!("no leader of {stream}"))
        });
        let victim = self.nats.index_of(&leader).expect("a server of the NATS cluster");
        self.nats.kill9(victim);
        std::thread::sleep(hold);
        self.nats.restart(victim);
        format!("kill -9 of NATS {leader} (leading {stream}) for {hold:.1?}")
    }

    /// Polls a send through every node to every recipient until each
    /// answers 200 (only 200, 503 or a failed connection before it).
    fn wait_healed(&self, sends: &mut SendLog) {
        let mut timestamp = HEALED_TIMESTAMP;
        for via in 0..NODES.len() {
            for (r, recipient) in self.recipients.iter().enumerate() {
                self.cluster.poll("a send to answer 200 once healed", RECOVERY, || {
                    let addr = self.cluster.addr(via);
                    let sent_at = self.started.elapsed();
                    let (status, answer) =
                        chaos::try_send(&addr, &self.senders[via], &recipient.uuid, timestamp);
                    let answered_at = self.started.elapsed();
                    let send = SendRecord { recipient: r, via, sent_at, answered_at, status };
                    if let Err(why) = sends.record(timestamp, send, &answer) {
                        panic!("{why}\n{}", self.cluster.log_tails());
                    }
                    timestamp += 1;
                    (status == 200).then_some(()).ok_or(format!("{status} {answer}"))
                });
            }
        }
        println!("chaos: every node serves every recipient at {:.1?}", self.started.elapsed());
    }

    /// A thread's result, or a panic with what went wrong and the logs.
    fn joined<T>(&self, result: std::thread::Result<Result<T, String>>, what: &str) -> T {
        let failed = match result {
            Ok(Ok(value)) => return value,
            Ok(Err(why)) => why,
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        };
        self.flags.abort.store(true, Ordering::SeqCst);
        panic!("{what} failed: {failed}\n{}\n{}", self.faults_text(), self.cluster.log_tails())
    }

    fn faults_text(&self) -> String {
        let lines: Vec<String> = (self.timeline.iter())
            .map(|(what, began, healed)| format!("  {what}: {began:.1?} .. {healed:.1?}"))
            .collect();
        format!("faults:\n{}", lines.join("\n"))
    }
}
