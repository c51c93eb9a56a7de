//! What a messaging-shaped run (`messaging`, `mqtt`, `nats`) shares and
//! measures: its arguments, the counters and latency histograms its sending
//! and receiving tasks update, and the collection of the timed window into
//! a [`MessagingResult`].

use crate::placement::{ClusterTarget, Placement};
use crate::schedule::micros_since_base;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use switchboard::config::Framing;

/// What a messaging-shaped run is asked to do.
pub struct MessagingArgs {
    pub server: SocketAddr,
    pub pairs: usize,
    pub window: usize,
    pub duration_secs: u64,
    pub threads: usize,
    pub content_bytes: usize,
    pub rate: Option<u64>,
    /// Send `online: true`: relay to connected devices without storing.
    pub online: bool,
    pub source_ips: usize,
    /// Open-loop senders wait by busy polling (see [`crate::schedule`]).
    pub busy_poll: bool,
    /// The WebSocket framing (`messaging` only; `None` for the baselines).
    pub framing: Option<Framing>,
    /// A cluster's nodes instead of `server` (`messaging` only): where
    /// each pair's accounts live and connect.
    pub cluster: Option<ClusterTarget>,
}

/// What a messaging-shaped run measured (the `result` of its JSON output).
#[derive(Debug, Serialize)]
pub struct MessagingResult {
    pub pairs: usize,
    pub window: usize,
    pub content_bytes: usize,
    pub target_rate: Option<u64>,
    /// Open-loop senders waited by busy polling instead of 1 ms timers.
    pub busy_poll: bool,
    /// The WebSocket framing (`json` or `protobuf`; absent for the baselines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framing: Option<Framing>,
    /// Against a cluster: the placement of the pairs (absent on one server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Against a cluster: its nodes' client addresses, in map order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<SocketAddr>>,
    pub duration_secs: f64,
    pub sent_ok: u64,
    pub send_errors: u64,
    pub delivered: u64,
    pub sent_per_sec: f64,
    pub delivered_per_sec: f64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
    /// The same, measured from when each send was written rather than when
    /// it was due: the difference is the load generator's own lateness.
    pub from_write_latency_us_p50: u64,
    pub from_write_latency_us_p99: u64,
    pub from_write_latency_us_p999: u64,
    /// How late each delivered send was written after it was due (its two
    /// stamps apart): the load generator's own lateness. In a closed loop,
    /// the time to build a window's batch.
    pub send_lateness_us_p50: u64,
    pub send_lateness_us_p99: u64,
    pub send_lateness_us_p999: u64,
    pub send_lateness_us_max: u64,
}

/// What the sending and receiving tasks of a run share.
pub struct Counters {
    /// Sends are online-only (relay, nothing stored).
    pub online: bool,
    /// Sends the server (or broker) acknowledged.
    pub sent_ok: AtomicU64,
    /// Sends refused, and connections that could not be set up.
    pub send_errors: AtomicU64,
    /// Deliveries received (and acknowledged).
    pub delivered: AtomicU64,
    /// Set when the sending window is over.
    pub stop: AtomicBool,
    /// Send-to-delivery latency from the intended send time, microseconds.
    pub histogram: Mutex<Histogram<u64>>,
    /// Delivery latency from when the send was actually built and written,
    /// microseconds: without the load generator's own lateness in sending.
    pub from_write_histogram: Mutex<Histogram<u64>>,
    /// Write stamp minus due stamp of each delivered send, microseconds
    /// (0 when written on time).
    pub lateness_histogram: Mutex<Histogram<u64>>,
}

impl Counters {
    /// Zeroed counters.
    pub fn new(online: bool) -> Arc<Self> {
        Arc::new(Self {
            online,
            sent_ok: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            histogram: Mutex::new(microseconds_histogram()),
            from_write_histogram: Mutex::new(microseconds_histogram()),
            lateness_histogram: Mutex::new(microseconds_histogram()),
        })
    }

    /// Records one delivery whose payload starts with its send stamps
    /// (intended, then written; see [`crate::schedule::stamped_payload`]).
    pub fn record_delivery(&self, payload: &[u8]) {
        let now_us = micros_since_base(Instant::now());
        let since = |stamp: &[u8]| {
            let sent_us = u64::from_be_bytes(stamp.try_into().expect("8 bytes"));
            now_us.saturating_sub(sent_us).clamp(1, 60_000_000)
        };
        if payload.len() >= 8 {
            let _ = self.histogram.lock().unwrap().record(since(&payload[..8]));
        }
        if payload.len() >= 16 {
            let _ = self.from_write_histogram.lock().unwrap().record(since(&payload[8..16]));
            let stamp = |at: &[u8]| u64::from_be_bytes(at.try_into().expect("8 bytes"));
            let late_us = stamp(&payload[8..16]).saturating_sub(stamp(&payload[..8]));
            let _ = self.lateness_histogram.lock().unwrap().record(late_us.min(60_000_000));
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A histogram of 0 to 60 s in microseconds, 3 significant digits.
fn microseconds_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// What every thread of a messaging-shaped run shares: counters, the count
/// of pairs ready, the start of the timed window, and each pair's share of
/// the open-loop rate.
pub struct RunShared {
    pub counters: Arc<Counters>,
    pub ready: Arc<AtomicU64>,
    pub start_at: Arc<OnceLock<Instant>>,
    pub per_pair_rate: Option<f64>,
}

impl RunShared {
    /// Also sets how the run's open-loop senders wait, before they start.
    pub fn new(args: &MessagingArgs) -> Self {
        crate::schedule::set_busy_poll(args.busy_poll);
        Self {
            counters: Counters::new(args.online),
            ready: Arc::new(AtomicU64::new(0)),
            start_at: Arc::new(OnceLock::new()),
            per_pair_rate: args.rate.map(|rate| rate as f64 / args.pairs.max(1) as f64),
        }
    }

    /// A copy for one thread.
    pub fn share(&self) -> Self {
        Self {
            counters: self.counters.clone(),
            ready: self.ready.clone(),
            start_at: self.start_at.clone(),
            per_pair_rate: self.per_pair_rate,
        }
    }

    /// Waits for the run, then summarizes it (see [`collect`]).
    pub fn collect(&self, args: &MessagingArgs) -> MessagingResult {
        collect(args, &self.counters, &self.ready, &self.start_at)
    }
}

/// The pair indexes thread `thread` of `threads` drives.
pub fn pairs_of_thread(pairs: usize, threads: usize, thread: usize) -> Vec<usize> {
    (0..pairs).filter(|pair| pair % threads.max(1) == thread).collect()
}

/// Waits for the pairs to be ready, lets the senders run for the duration,
/// stops them, waits (bounded) for deliveries to catch up, and summarizes.
pub fn collect(
    args: &MessagingArgs,
    counters: &Counters,
    ready: &AtomicU64,
    start_at: &OnceLock<Instant>,
) -> MessagingResult {
    let wait_started = Instant::now();
    while (ready.load(Ordering::Relaxed) as usize) < args.pairs
        && wait_started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = *start_at.get_or_init(Instant::now);
    std::thread::sleep(Duration::from_secs(args.duration_secs));
    counters.stop.store(true, Ordering::Relaxed);
    let sent_window = started.elapsed().as_secs_f64();
    let sent_ok = counters.sent_ok.load(Ordering::Relaxed);
    let drain_started = Instant::now();
    while counters.delivered.load(Ordering::Relaxed) < counters.sent_ok.load(Ordering::Relaxed)
        && drain_started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let histogram = counters.histogram.lock().unwrap().clone();
    let from_write = counters.from_write_histogram.lock().unwrap().clone();
    let lateness = counters.lateness_histogram.lock().unwrap().clone();
    MessagingResult {
        pairs: args.pairs,
        window: args.window,
        content_bytes: args.content_bytes,
        target_rate: args.rate,
        busy_poll: args.busy_poll,
        framing: args.framing,
        placement: args.cluster.as_ref().map(|cluster| cluster.placement),
        nodes: args.cluster.as_ref().map(|cluster| cluster.map.nodes.clone()),
        duration_secs: sent_window,
        sent_ok,
        send_errors: counters.send_errors.load(Ordering::Relaxed),
        delivered,
        sent_per_sec: sent_ok as f64 / sent_window,
        delivered_per_sec: delivered as f64 / (sent_window + drain_started.elapsed().as_secs_f64()),
        latency_us_p50: histogram.value_at_quantile(0.50),
        latency_us_p90: histogram.value_at_quantile(0.90),
        latency_us_p99: histogram.value_at_quantile(0.99),
        latency_us_p999: histogram.value_at_quantile(0.999),
        latency_us_max: histogram.max(),
        from_write_latency_us_p50: from_write.value_at_quantile(0.50),
        from_write_latency_us_p99: from_write.value_at_quantile(0.99),
        from_write_latency_us_p999: from_write.value_at_quantile(0.999),
        send_lateness_us_p50: lateness.value_at_quantile(0.50),
        send_lateness_us_p99: lateness.value_at_quantile(0.99),
        send_lateness_us_p999: lateness.value_at_quantile(0.999),
        send_lateness_us_max: lateness.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::stamped_payload;

    #[test]
    fn payload_carries_both_stamps_and_both_are_recorded() {
        micros_since_base(Instant::now()); // stamps count from the first call
        let intended = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let payload = stamped_payload(intended, 8);
        assert_eq!(payload.len(), 16, "room for both stamps");
        let due = u64::from_be_bytes(payload[..8].try_into().unwrap());
        let written = u64::from_be_bytes(payload[8..16].try_into().unwrap());
        assert!(written >= due + 5_000, "written {written} due {due}");
        let counters = Counters::new(false);
        counters.record_delivery(&payload);
        assert_eq!(counters.histogram.lock().unwrap().len(), 1);
        assert_eq!(counters.from_write_histogram.lock().unwrap().len(), 1);
        let lateness = counters.lateness_histogram.lock().unwrap().clone();
        assert_eq!(lateness.len(), 1);
        assert!(lateness.equivalent(lateness.max(), written - due), "the two stamps apart");
        assert!(
            counters.histogram.lock().unwrap().max()
                >= counters.from_write_histogram.lock().unwrap().max() + 5_000
        );
    }
}
