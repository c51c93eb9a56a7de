//! Test support for the Jepsen-style loss tests (`tests/cluster_chaos.rs`):
//! what a run's records say, once its senders and devices have stopped.
//! [`Tally::of`] sets every send against every delivery (delivered,
//! duplicates, came back, lost, strays), [`print_details`] prints the
//! answers, connections and the story of each message lost or come back,
//! and [`check`] fails the test on what its fault kind does not allow,
//! keeping the node logs of a failed run.
//!
//! Invariants: the tally is a pure function of the records (no clock, no
//! I/O); a timestamp is in at most one of `duplicates` and `came_back`;
//! `came_back_unexplained` is a subset of `came_back`; `lost` is the sends
//! acknowledged with 200 and never delivered. [`check`] fails on any stray
//! or loss whatever the fault, and on a message that came back unless its
//! acknowledgement was at risk (see [`ACK_AT_RISK`], [`check`] and the
//! module docs of `tests/cluster_chaos.rs`).
//!
//! Include it with `#[path = "common/chaos_check.rs"] mod chaos_check;`
//! beside `chaos.rs` and `chaos_devices.rs` (see there).
#![allow(dead_code)]

use crate::chaos::{Fault, SendLog, SendRecord, KEEP_LOGS_ENV};
use crate::chaos_devices::{Delivery, DeviceLog};
use crate::cluster::Cluster;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How soon after a device's acknowledgement its connection must end
/// under it for the acknowledgement to count as at risk: a node that is
/// killed resets it at once, one that cannot append closes it, one that
/// is frozen goes silent and is given up after
/// [`crate::chaos_devices::SILENT_MAX`].
pub const ACK_AT_RISK: Duration = Duration::from_secs(5);

/// What the deliveries say about the sends.
#[derive(Debug, Default)]
pub struct Tally {
    /// Sends delivered at least once (acknowledged or not).
    pub delivered: BTreeSet<u64>,
    /// Delivered more than once, never after the device acknowledged it.
    pub duplicates: BTreeSet<u64>,
    /// Delivered again after the device had acknowledged it.
    pub came_back: BTreeSet<u64>,
    /// Those of `came_back` whose acknowledgement was not at risk: its
    /// connection stayed up longer than [`ACK_AT_RISK`] or was closed by
    /// the device, so the owner had it and lived on.
    pub came_back_unexplained: BTreeSet<u64>,
    /// Acknowledged with 200 and never delivered.
    pub lost: BTreeSet<u64>,
    /// Deliveries of something never sent, or to another recipient.
    pub strays: Vec<String>,
}

impl Tally {
    /// The table's header line (`chaos table:`), matching [`Tally::line`].
    pub const HEADER: &str =
        "fault             faults  sends  acked  delivered  duplicates  came_back  lost";

    /// The tally of `devices[r]` (recipient `r`'s device) against `sends`.
    pub fn of(sends: &SendLog, devices: &[DeviceLog]) -> Self {
        let mut tally = Tally::default();
        for (r, device) in devices.iter().enumerate() {
            // Per timestamp: deliveries so far, and the latest acknowledged one.
            let mut seen: BTreeMap<u64, (u32, Option<&Delivery>)> = BTreeMap::new();
            for delivery in &device.deliveries {
                let timestamp = delivery.timestamp;
                match sends.sends.get(&timestamp) {
                    Some(send) if send.recipient == r => {}
                    other => tally.strays.push(format!("{delivery:?} to {r}: sent {other:?}")),
                }
                let (count, acked) = seen.entry(timestamp).or_default();
                if let Some(acked) = acked {
                    tally.came_back.insert(timestamp);
                    if !at_risk(device, acked) {
                        tally.came_back_unexplained.insert(timestamp);
                    }
                } else if *count > 0 {
                    tally.duplicates.insert(timestamp);
                }
                *count += 1;
                if delivery.acked_at.is_some() {
                    *acked = Some(delivery);
                }
                tally.delivered.insert(timestamp);
            }
        }
        tally.duplicates = tally.duplicates.difference(&tally.came_back).copied().collect();
        tally.lost = sends.acked.difference(&tally.delivered).copied().collect();
        tally
    }

    /// One table line: the fault kind, how many faults, then the counts.
    pub fn line(&self, fault: &str, faults: usize, sends: &SendLog) -> String {
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

/// Whether `acked`'s acknowledgement may not have reached the owner's log:
/// its connection ended under the device within [`ACK_AT_RISK`].
fn at_risk(device: &DeviceLog, acked: &Delivery) -> bool {
    let connection = device.connection(acked);
    let acked_at = acked.acked_at.expect("an acknowledged delivery");
    connection.dropped() && connection.ended_at <= acked_at + ACK_AT_RISK
}

/// Prints the answers, the connections, and the story of every message
/// that came back or was lost (the first ten of each), then `faults_text`
/// (the run's faults). Device `r` is recipient `r`'s.
pub fn print_details(
    fault: Fault,
    tally: &Tally,
    sends: &SendLog,
    devices: &[DeviceLog],
    faults_text: &str,
) {
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for send in sends.sends.values() {
        *statuses.entry(send.status).or_default() += 1;
    }
    let connections: Vec<usize> = devices.iter().map(|device| device.connections.len()).collect();
    let drops: usize = devices.iter().map(DeviceLog::drops).sum();
    println!(
        "chaos: {} answers {statuses:?} (0: no answer); device \
         connections {connections:?}, {drops} ended under them; came back {}, {} of them \
         after an acknowledgement at risk, {} not",
        fault.name(),
        tally.came_back.len(),
        tally.came_back.len() - tally.came_back_unexplained.len(),
        tally.came_back_unexplained.len()
    );
    for (what, set) in [("came back", &tally.came_back), ("lost", &tally.lost)] {
        if !set.is_empty() {
            println!("chaos: {} {what}:", set.len());
            set.iter().take(10).for_each(|&timestamp| story(timestamp, sends, devices));
        }
    }
    let outages: Vec<String> = (0..devices.len())
        .map(|r| {
            let (since, until) = longest_outage(sends, r);
            format!("{:.1?} ({since:.1?} .. {until:.1?})", until - since)
        })
        .collect();
    println!("chaos: longest stretch without a 200, per recipient: {outages:?}");
    let mut by_wait: Vec<(&u64, &SendRecord)> = sends.sends.iter().collect();
    by_wait.sort_by_key(|(_, send)| std::cmp::Reverse(send.answered_at - send.sent_at));
    println!(
        "chaos: slowest answers (through node index `via`): {:?}",
        &by_wait[..3.min(by_wait.len())]
    );
    println!("chaos: {faults_text}");
}

/// Fails on a loss, a stray delivery, or a message that came back
/// without a reason `fault` allows (see the module docs); the failure
/// carries `faults_text`, where the node logs were kept and their tails.
pub fn check(fault: Fault, tally: &Tally, cluster: &Cluster, faults_text: &str) {
    // Every fault kind allows a come-back only for an acknowledgement at
    // risk (its connection ended under the device right after it). Under a
    // NATS leader loss no node dies, but an owner whose append failed
    // closes the partition's sessions to catch it up, and an ack already in
    // such a socket is not read; and when heartbeats also fail past the TTL
    // the partition moves with its deletes still owed. Both are the
    // at-least-once redelivery of an ack whose connection ended, as a
    // node's death is (known; see tuning/CLUSTER.md).
    let _ = fault; // the same rule for every kind (kept for the signature)
    let (came_back, why) =
        (&tally.came_back_unexplained, "though their acknowledgements were not at risk");
    let failing = !tally.strays.is_empty() || !tally.lost.is_empty() || !came_back.is_empty();
    let keep = failing || std::env::var_os(KEEP_LOGS_ENV).is_some();
    let kept = if keep { keep_logs(cluster) } else { String::new() };
    if !kept.is_empty() {
        println!("chaos: {kept}");
    }
    let context = || format!("{faults_text}\n{kept}\n{}", cluster.log_tails());
    assert!(tally.strays.is_empty(), "stray deliveries {:?}\n{}", tally.strays, context());
    assert!(
        tally.lost.is_empty(),
        "{} sends answered 200 were never delivered: {:?}\n{}",
        tally.lost.len(),
        tally.lost,
        context()
    );
    assert!(
        came_back.is_empty(),
        "{} messages came back after the device acknowledged them, {why}: {came_back:?}\n{}",
        came_back.len(),
        context()
    );
}

/// The longest time sends to recipient `r` went without a 200: from the
/// first send not answered 200 to the answer of the next 200.
fn longest_outage(sends: &SendLog, r: usize) -> (Duration, Duration) {
    let mut to_r: Vec<&SendRecord> = sends.sends.values().filter(|s| s.recipient == r).collect();
    to_r.sort_by_key(|send| send.sent_at);
    let (mut longest, mut down_since) = ((Duration::ZERO, Duration::ZERO), None);
    for send in to_r {
        match (send.status, down_since) {
            (200, Some(since)) => {
                if send.answered_at.saturating_sub(since) > longest.1 - longest.0 {
                    longest = (since, send.answered_at);
                }
                down_since = None;
            }
            (200, None) | (_, Some(_)) => {}
            (_, None) => down_since = Some(send.sent_at),
        }
    }
    longest
}

/// Prints what happened to the send of `timestamp`: its answer, and each
/// delivery with its connection.
fn story(timestamp: u64, sends: &SendLog, devices: &[DeviceLog]) {
    println!("  {timestamp}: sent {:?}", sends.sends.get(&timestamp));
    for device in devices {
        for delivery in device.deliveries.iter().filter(|d| d.timestamp == timestamp) {
            let connection = device.connection(delivery);
            println!(
                "    delivered at {:.2?} acked at {:.2?} on conn {} {connection:?}",
                delivery.at, delivery.acked_at, delivery.conn
            );
        }
    }
}

/// Copies every node log (each start's) of `cluster` to a directory that
/// outlives the test; says where.
fn keep_logs(cluster: &Cluster) -> String {
    let Some(dir) = cluster.node(0).data_dir.parent().and_then(|d| d.parent()) else {
        return "no log directory".into();
    };
    let kept = std::env::temp_dir().join(format!("switchboard-chaos-{}", cluster.name));
    let copied = std::fs::create_dir_all(&kept).and_then(|()| {
        let logs = std::fs::read_dir(dir)?.flatten().map(|entry| entry.path());
        for log in logs.filter(|path| path.extension().is_some_and(|e| e == "log")) {
            std::fs::copy(&log, kept.join(log.file_name().expect("a file name")))?;
        }
        Ok(())
    });
    match copied {
        Ok(()) => format!("node logs kept in {}", kept.display()),
        Err(error) => format!("node logs not kept in {}: {error}", kept.display()),
    }
}
