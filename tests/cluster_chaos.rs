//! Jepsen-style loss tests on loopback (issue 22): 3 real nodes with
//! `durability = "replicated"` joined through a real 3-server NATS
//! JetStream cluster (16 partitions; heartbeat TTL 3 s, call timeout 1 s).
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
//! (lost = 0), to its recipient, as sent; nothing acknowledged by the
//! device is delivered again (came back = 0); deliveries repeated before
//! any acknowledgement of theirs (duplicates) are counted, not failed.
//! Each test prints one table line (`chaos table:`), which `scripts/chaos`
//! collects.
//!
//! Bounded: [`chaos::SECS_ENV`] seconds of faults (default
//! [`chaos::SECS_DEFAULT`]) and at most [`chaos::Settings::faults_max`]
//! faults, seeded by [`chaos::SEED_ENV`] (printed); the tests run one at a
//! time, whatever the test threads.

#[path = "common/chaos.rs"]
mod chaos;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use chaos::{
    DeviceLog, Flags, Rng, SendLog, SendRecord, SenderPlan, Serving, Settings, StopOnDrop,
};
use cluster::Cluster;
use common::Account;
use nats::NatsCluster;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The longest the healed cluster may take to answer 200 everywhere.
const RECOVERY: Duration = Duration::from_secs(30);
/// The first timestamp of the sends that check the healed cluster.
const HEALED_TIMESTAMP: u64 = 9_000_000;
/// The chaos tests take every core there is: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    NodeKill,
    NatsLeaderKill,
    NodePause,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::NodeKill => "node-kill",
            Fault::NatsLeaderKill => "nats-leader-kill",
            Fault::NodePause => "node-pause",
        }
    }
}

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
            chaos::spawn_device(run.recipients[r].clone(), r, serving, flags, run.started)
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
    run.print_details(&tally, &sends, &devices);
    run.check(&tally);
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
        let cluster = Cluster::start_replicated(&nats, &NODES);
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
                    first_timestamp: 1_000_000 * (i as u64 + 1),
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
                    let (status, answer) =
                        chaos::try_send(&addr, &self.senders[via], &recipient.uuid, timestamp);
                    let send = SendRecord { recipient: r, via, at: self.started.elapsed(), status };
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

/// What the deliveries say about the sends.
#[derive(Debug, Default)]
struct Tally {
    /// Sends delivered at least once (acknowledged or not).
    delivered: BTreeSet<u64>,
    /// Delivered more than once, never after the device acknowledged it.
    duplicates: BTreeSet<u64>,
    /// Delivered again after the device had acknowledged it.
    came_back: BTreeSet<u64>,
    /// Acknowledged with 200 and never delivered.
    lost: BTreeSet<u64>,
    /// Deliveries of something never sent, or to another recipient.
    strays: Vec<String>,
}

impl Tally {
    const HEADER: &str =
        "fault             faults  sends  acked  delivered  duplicates  came_back  lost";

    fn of(sends: &SendLog, devices: &[DeviceLog]) -> Self {
        let mut tally = Tally::default();
        for (r, device) in devices.iter().enumerate() {
            // Per timestamp: deliveries so far, and whether one was acknowledged.
            let mut seen: BTreeMap<u64, (u32, bool)> = BTreeMap::new();
            for delivery in &device.deliveries {
                let timestamp = delivery.timestamp;
                match sends.sends.get(&timestamp) {
                    Some(send) if send.recipient == r => {}
                    other => tally.strays.push(format!("{delivery:?} to {r}: sent {other:?}")),
                }
                let (count, acked) = seen.entry(timestamp).or_default();
                if *acked {
                    tally.came_back.insert(timestamp);
                } else if *count > 0 {
                    tally.duplicates.insert(timestamp);
                }
                *count += 1;
                *acked |= delivery.acked_at.is_some();
                tally.delivered.insert(timestamp);
            }
        }
        tally.duplicates = tally.duplicates.difference(&tally.came_back).copied().collect();
        tally.lost = sends.acked.difference(&tally.delivered).copied().collect();
        tally
    }

    fn line(&self, fault: &str, faults: usize, sends: &SendLog) -> String {
        format!(
            "{fault:<16}  {faults:>6}  {:>5}  {:>5}  {:>9}  {:>10}  {:>9}  {:>4}",
            sends.sends.len(),
            sends.acked.len(),
            self.delivered.len(),
            self.duplicates.len(),
            self.came_back.len(),
            self.lost.len()
        )
    }
}

impl Run {
    /// Answers, connections, and the story of every message that came back
    /// or was lost (the first ten of each).
    fn print_details(&self, tally: &Tally, sends: &SendLog, devices: &[DeviceLog]) {
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for send in sends.sends.values() {
            *statuses.entry(send.status).or_default() += 1;
        }
        let connections: Vec<u32> = devices.iter().map(|device| device.connections).collect();
        let drops: usize = devices.iter().map(|device| device.drops.len()).sum();
        println!(
            "chaos: {} answers {statuses:?} (0: no answer); device connections {connections:?}, \
             {drops} dropped under them",
            self.fault.name()
        );
        let story = |timestamp: u64| {
            let send = sends.sends.get(&timestamp);
            let deliveries: Vec<String> = (devices.iter().flat_map(|device| &device.deliveries))
                .filter(|delivery| delivery.timestamp == timestamp)
                .map(|d| {
                    format!(
                        "conn {} via {} at {:.2?} acked {:.2?}",
                        d.conn, d.via, d.at, d.acked_at
                    )
                })
                .collect();
            format!("  {timestamp}: sent {send:?}; delivered {deliveries:?}")
        };
        for (what, set) in [("came back", &tally.came_back), ("lost", &tally.lost)] {
            if !set.is_empty() {
                println!("chaos: {} {what}:", set.len());
                set.iter().take(10).for_each(|&timestamp| println!("{}", story(timestamp)));
            }
        }
        if !tally.came_back.is_empty() || !tally.lost.is_empty() {
            for (r, device) in devices.iter().enumerate() {
                println!("chaos: device {r} drops (at, via, why): {:?}", device.drops);
            }
            println!("chaos: {}", self.faults_text());
        }
    }

    fn check(&self, tally: &Tally) {
        let context = || format!("{}\n{}", self.faults_text(), self.cluster.log_tails());
        assert!(tally.strays.is_empty(), "stray deliveries {:?}\n{}", tally.strays, context());
        assert!(
            tally.lost.is_empty(),
            "{} sends answered 200 were never delivered: {:?}\n{}",
            tally.lost.len(),
            tally.lost,
            context()
        );
        assert!(
            tally.came_back.is_empty(),
            "{} messages came back after the device acknowledged them: {:?}\n{}",
            tally.came_back.len(),
            tally.came_back,
            context()
        );
    }
}
