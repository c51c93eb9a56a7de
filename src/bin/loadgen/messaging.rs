//! `messaging`: P sender/recipient pairs over real WebSockets. Each sender
//! sends framed `PUT /v1/messages/{recipient}` with up to `window` in flight;
//! each recipient acknowledges every envelope with 200. Reports sends
//! answered 200 per second, envelopes delivered per second, and the
//! send->deliver latency distribution (HDR histogram).
//!
//! Closed loop (no `rate`): senders keep their window full, finding the
//! maximum. Open loop (`rate` msgs/s in total): each send has an intended
//! time on a fixed schedule and its latency is measured from that intended
//! time, not from when it was actually written, so a stalled server cannot
//! hide its queueing delay (coordinated omission).

use crate::accounts::{register_many, Credentials, REGISTRATION_ID};
use crate::client::{source_address, WsConn};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};

/// A 200 response frame to server request `id`.
pub fn ok_response(id: u64) -> String {
    frame::encode_response(&WsResponse {
        id,
        status: 200,
        message: Some("OK".into()),
        body: None,
        headers: vec![],
    })
}

static BASE: OnceLock<Instant> = OnceLock::new();

/// Microseconds from a process-wide base instant to `at` (the send stamp).
pub fn micros_since_base(at: Instant) -> u64 {
    at.saturating_duration_since(*BASE.get_or_init(Instant::now)).as_micros() as u64
}

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
}

#[derive(Debug, Serialize)]
pub struct MessagingResult {
    pub pairs: usize,
    pub window: usize,
    pub content_bytes: usize,
    pub target_rate: Option<u64>,
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
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ),
            from_write_histogram: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ),
        })
    }

    /// Records one delivery whose payload starts with its send stamps
    /// (intended, then written; see [`stamped_payload`]).
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
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// When send number `sent` is due: now in a closed loop; on the fixed
/// schedule in an open loop, or `None` while it is not yet due.
pub fn intended_send_time(
    start: Instant,
    interval: Option<Duration>,
    sent: u64,
    now: Instant,
) -> Option<Instant> {
    match interval {
        Some(interval) => Some(start + interval * sent as u32).filter(|at| *at <= now),
        None => Some(now),
    }
}

/// One pair's schedule: its first send time and, in an open loop, the
/// interval between its sends (`rate` is the pair's share, msgs/s). Each
/// pair starts at a random phase within one interval after the run's start,
/// as independent clients would; with a common start every pair sent at the
/// same instant, and the measured latency was mostly those bursts queueing.
pub fn pair_schedule(
    start_at: &OnceLock<Instant>,
    rate: Option<f64>,
) -> (Instant, Option<Duration>) {
    let start = *start_at.get_or_init(Instant::now);
    let Some(rate) = rate else { return (start, None) };
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut random = [0u8; 4];
    // Without randomness, every pair starts at once (the old behaviour).
    let phase = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.0,
    };
    (start + interval.mul_f64(phase), Some(interval))
}

/// In an open loop with nothing in flight, sleeps until send number `sent`
/// is due; returns at once in a closed loop.
pub async fn wait_for_next_send(start: Instant, interval: Option<Duration>, sent: u64) {
    if let Some(interval) = interval {
        monoio::time::sleep(
            (start + interval * sent as u32).saturating_duration_since(Instant::now()),
        )
        .await;
    }
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
    pub fn new(args: &MessagingArgs) -> Self {
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

/// A payload of `content_bytes` (at least 16) starting with two stamps:
/// when the send was due (`intended`) and now, when it is being written.
pub fn stamped_payload(intended: Instant, content_bytes: usize) -> Vec<u8> {
    let mut payload = micros_since_base(intended).to_be_bytes().to_vec();
    payload.extend_from_slice(&micros_since_base(Instant::now()).to_be_bytes());
    payload.resize(content_bytes.max(16), 0x5a);
    payload
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
    MessagingResult {
        pairs: args.pairs,
        window: args.window,
        content_bytes: args.content_bytes,
        target_rate: args.rate,
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
    }
}

pub fn run(args: MessagingArgs) -> std::io::Result<MessagingResult> {
    BASE.get_or_init(Instant::now);
    let accounts = crate::block_on(register_many(args.server, args.pairs * 2, 64))?;
    let pairs: Vec<(Credentials, Credentials)> =
        accounts.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
    let shared = RunShared::new(&args);
    let mut threads = Vec::new();
    for thread in 0..args.threads {
        let share: Vec<(usize, (Credentials, Credentials))> =
            pairs_of_thread(args.pairs, args.threads, thread)
                .into_iter()
                .map(|index| (index, pairs[index].clone()))
                .collect();
        let RunShared { counters, ready, start_at, per_pair_rate } = shared.share();
        let (server, window, content_bytes, source_ips) =
            (args.server, args.window, args.content_bytes, args.source_ips);
        threads.push(std::thread::spawn(move || {
            crate::block_on(async move {
                let mut tasks = Vec::new();
                for (index, (sender, recipient)) in share {
                    let source = source_address(index, source_ips);
                    let Ok(mut receiver) =
                        WsConn::connect(server, source, &recipient.uuid, &recipient.password).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let Ok(sending) =
                        WsConn::connect(server, source, &sender.uuid, &sender.password).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    // Drain the recipient's initial queue/empty before timing starts.
                    if let Ok(Some(mut text)) = receiver.next_text().await {
                        if let Ok(Frame::Request(request)) = frame::decode(&mut text, 1 << 20) {
                            let _ = receiver.queue_text(ok_response(request.id));
                            let _ = receiver.flush().await;
                        }
                    }
                    ready.fetch_add(1, Ordering::Relaxed);
                    let (c1, c2, s) = (counters.clone(), counters.clone(), start_at.clone());
                    tasks.push(monoio::spawn(receive_loop(receiver, c1)));
                    let destination = recipient.uuid.clone();
                    tasks.push(monoio::spawn(send_loop(
                        sending,
                        destination,
                        window,
                        content_bytes,
                        per_pair_rate,
                        c2,
                        s,
                    )));
                }
                for task in tasks {
                    task.await;
                }
            })
        }));
    }
    let result = shared.collect(&args);
    // The connection tasks end when the process exits.
    drop(threads);
    Ok(result)
}

async fn send_loop(
    mut conn: WsConn,
    destination: String,
    window: usize,
    content_bytes: usize,
    rate: Option<f64>,
    counters: Arc<Counters>,
    start_at: Arc<OnceLock<Instant>>,
) {
    let path = format!("/v1/messages/{destination}");
    let online = counters.online;
    let (start, interval) = pair_schedule(&start_at, rate);
    let mut sent = 0u64;
    let mut inflight = 0usize;
    let mut next_id = 1u64;
    while !counters.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while inflight < window {
            let Some(intended) = intended_send_time(start, interval, sent, now) else { break };
            let content = stamped_payload(intended, content_bytes);
            let body = format!(
                r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":{REGISTRATION_ID},"content":"{}"}}],"online":{online},"urgent":true,"timestamp":{}}}"#,
                base64::encode(&content),
                sent
            );
            let request = WsRequest {
                id: next_id,
                verb: "PUT".into(),
                path: path.clone(),
                body: Some(body.into_bytes()),
                headers: vec![],
            };
            if conn.queue_text(frame::encode_request(&request)).is_err() {
                return;
            }
            next_id += 1;
            sent += 1;
            inflight += 1;
        }
        if conn.flush().await.is_err() {
            return;
        }
        if inflight == 0 {
            wait_for_next_send(start, interval, sent).await;
            continue;
        }
        let Ok(Some(mut text)) = conn.next_text().await else { return };
        match frame::decode(&mut text, 1 << 20) {
            Ok(Frame::Response(response)) => {
                inflight -= 1;
                if response.status == 200 {
                    counters.sent_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Frame::Request(request)) => {
                let _ = conn.queue_text(ok_response(request.id));
            }
            Err(_) => return,
        }
    }
}

async fn receive_loop(mut conn: WsConn, counters: Arc<Counters>) {
    while let Ok(Some(mut text)) = conn.next_text().await {
        let Ok(Frame::Request(request)) = frame::decode(&mut text, 1 << 20) else { continue };
        let _ = conn.queue_text(ok_response(request.id));
        if request.path != "/api/v1/message" {
            continue;
        }
        let content = request.body.as_deref().and_then(envelope_content).unwrap_or_default();
        counters.record_delivery(&content);
    }
}

/// The decoded `content` of an envelope's JSON. Base64 never needs JSON
/// escapes, so the string runs to the next quote: this avoids building a
/// whole JSON tree per delivery, which cost the load generator more CPU
/// than the brokers' clients spend (they read the payload raw).
pub fn envelope_content(json: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"content\":\"";
    let start = json.windows(KEY.len()).position(|window| window == KEY)? + KEY.len();
    let len = json[start..].iter().position(|&byte| byte == b'"')?;
    base64::decode(&json[start..start + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            counters.histogram.lock().unwrap().max()
                >= counters.from_write_histogram.lock().unwrap().max() + 5_000
        );
    }

    #[test]
    fn pairs_start_at_spread_phases_within_one_interval() {
        let start_at = OnceLock::new();
        let start = *start_at.get_or_init(Instant::now);
        assert_eq!(pair_schedule(&start_at, None), (start, None));
        let starts: Vec<Duration> = (0..64)
            .map(|_| {
                let (first, interval) = pair_schedule(&start_at, Some(10.0));
                assert_eq!(interval, Some(Duration::from_millis(100)));
                first - start
            })
            .collect();
        assert!(starts.iter().all(|offset| *offset <= Duration::from_millis(100)));
        let distinct: std::collections::HashSet<_> = starts.iter().collect();
        assert!(distinct.len() > 32, "phases are spread, not shared");
    }

    #[test]
    fn envelope_content_finds_and_decodes_the_payload() {
        let json = br#"{"type":1,"content":"AAECAw==","serverGuid":"x"}"#;
        assert_eq!(envelope_content(json), Some(vec![0, 1, 2, 3]));
        assert_eq!(envelope_content(br#"{"type":1}"#), None);
        assert_eq!(envelope_content(br#"{"content":"AAEC"#), None, "unterminated");
        assert_eq!(envelope_content(br#"{"content":"!!!"}"#), None, "not Base64");
    }
}
