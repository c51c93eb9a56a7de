//! Sends in full flow for the fault tests (`crash.rs`, `power_cut.rs`).
//!
//! Senders pipeline framed sends over their WebSockets and keep every send
//! answered 200; in rounds with connected recipients, each recipient's first
//! device listens and answers every delivered envelope with 200, keeping its
//! content first (the server may act on a 200 and die before the test hears
//! of it). After the fault and a restart, [`drain_all`] empties every
//! device's queue and [`check_nothing_lost`] asserts the promise of DESIGN.md
//! section 4: each envelope of a send answered 200 was acknowledged by its
//! device before the fault or is queued for it after the restart
//! (at-least-once: duplicates allowed, loss never).
//!
//! Bounded: every thread stops when the server dies or after
//! [`FLOW_TIME_MAX`], and the caller waits for the flow with a time limit.
#![allow(dead_code)]

use crate::common::{Account, Server, Ws};
use crate::messaging::{self, drain_backlog, link_device, send_body, REGISTRATION_ID};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};
use tungstenite::Message;
use uuid::Uuid;

/// Sends a sender writes before it reads their answers.
pub const PIPELINE_DEPTH: u64 = 16;
/// A sender or a listening device stops after this long, server dead or not.
pub const FLOW_TIME_MAX: Duration = Duration::from_secs(30);

/// One envelope for one device: (account, device id, content).
pub type Addressed = (Uuid, u32, Vec<u8>);

/// A recipient account: every send to it names all of `devices`. Only the
/// first can be connected during the flow; the others stay away until the
/// restart, so their envelopes must be durable before the sender's 200.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub devices: Vec<Account>,
}

/// What the connected devices saw before the fault.
#[derive(Debug, Default)]
pub struct Seen {
    /// Envelopes a device read while the server was (maybe) alive, kept
    /// before it answered 200: the server may have acted on the 200.
    pub acked: Vec<Addressed>,
    /// Envelopes delivered but read only once the server was dead: their
    /// 200 can have reached no one.
    pub unacked: Vec<Addressed>,
}

/// What a flow produced, once the server is dead.
#[derive(Debug)]
pub struct Outcome {
    /// Sends answered 200.
    pub sends_ok: usize,
    /// Each envelope of each send answered 200.
    pub confirmed: Vec<Addressed>,
    pub seen: Seen,
}

/// Senders and listening devices at work against one server.
pub struct Flow {
    senders: Vec<JoinHandle<Vec<Addressed>>>,
    devices: Vec<JoinHandle<Seen>>,
    /// Sends answered 200 so far, over all senders.
    sends_ok: Arc<AtomicUsize>,
    /// Set once the server is dead (killed and reaped): a device that reads
    /// an envelope after that keeps it as unacknowledged.
    killed: Arc<AtomicBool>,
}

/// `count` recipients alternating over the two shards; those from index
/// `second_device_from` on get a second device, linked and kept away.
pub fn register_recipients(
    server: &Server,
    count: usize,
    second_device_from: usize,
) -> Vec<Recipient> {
    (0..count)
        .map(|index| {
            let primary = server.register_on_shard(index % 2, 2);
            let mut devices = vec![primary.clone()];
            if index >= second_device_from {
                devices.push(link_device(server, &primary));
            }
            Recipient { devices }
        })
        .collect()
}

impl Flow {
    /// Connects each recipient's first device (when `connected`), then
    /// starts one thread per sender.
    pub fn start(
        server: &Server,
        recipients: &[Recipient],
        senders: Vec<Account>,
        connected: bool,
    ) -> Self {
        let killed = Arc::new(AtomicBool::new(false));
        let devices = match connected {
            true => recipients.iter().map(|r| listen(server, &r.devices[0], &killed)).collect(),
            false => Vec::new(),
        };
        let sends_ok = Arc::new(AtomicUsize::new(0));
        let senders = senders
            .into_iter()
            .enumerate()
            .map(|(index, sender)| {
                let (addr, recipients) = (server.addr(), recipients.to_vec());
                let (sends_ok, killed) = (sends_ok.clone(), killed.clone());
                std::thread::spawn(move || {
                    sender_loop(addr, sender, index, recipients, sends_ok, killed)
                })
            })
            .collect();
        Self { senders, devices, sends_ok, killed }
    }

    /// Waits until `count` sends were answered 200, or `time_max` passed.
    pub fn wait_for_sends(&self, count: usize, time_max: Duration) {
        let deadline = Instant::now() + time_max;
        while self.sends_ok.load(Ordering::Relaxed) < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Call once the server is dead (killed and reaped): stops every thread
    /// and gathers what they saw.
    pub fn join_after_kill(self) -> Outcome {
        self.killed.store(true, Ordering::SeqCst);
        let confirmed: Vec<Addressed> =
            self.senders.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let mut seen = Seen::default();
        for device in self.devices {
            let device_seen = device.join().unwrap();
            seen.acked.extend(device_seen.acked);
            seen.unacked.extend(device_seen.unacked);
        }
        Outcome { sends_ok: self.sends_ok.load(Ordering::SeqCst), confirmed, seen }
    }
}

/// Sends until the connection dies (or `stop`); returns each envelope of
/// each send answered 200.
fn sender_loop(
    server_addr: String,
    sender: Account,
    sender_index: usize,
    recipients: Vec<Recipient>,
    sends_ok: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<Addressed> {
    let url = format!(
        "ws://{server_addr}/v1/websocket/?login={}.{}&password={}",
        sender.uuid, sender.device_id, sender.password
    );
    let Ok(mut ws) = crate::common::connect_url(&url) else { return Vec::new() };
    let mut confirmed = Vec::new();
    let mut pending: HashMap<u64, Vec<Addressed>> = HashMap::new();
    let mut next_id = 1u64;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < FLOW_TIME_MAX {
        for _ in 0..PIPELINE_DEPTH {
            let recipient = &recipients[next_id as usize % recipients.len()];
            let Some(copies) = send_one(&mut ws, sender_index, next_id, recipient) else {
                return confirmed;
            };
            pending.insert(next_id, copies);
            next_id += 1;
        }
        while !pending.is_empty() {
            let Some((id, status)) = next_answer(&mut ws) else { return confirmed };
            if let Some(copies) = pending.remove(&id).filter(|_| status == 200) {
                confirmed.extend(copies);
                sends_ok.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    confirmed
}

/// Writes send `id` to every device of `recipient`; returns its envelopes,
/// or `None` when the connection is gone.
fn send_one(
    ws: &mut Ws,
    sender_index: usize,
    id: u64,
    recipient: &Recipient,
) -> Option<Vec<Addressed>> {
    let content = format!("s{sender_index}-m{id}-{}", "x".repeat(id as usize % 50)).into_bytes();
    let devices: Vec<(u32, u32)> =
        recipient.devices.iter().map(|device| (device.device_id, REGISTRATION_ID)).collect();
    let request = WsRequest {
        id,
        verb: "PUT".into(),
        path: format!("/v1/messages/{}", recipient.devices[0].uuid),
        body: Some(send_body(&devices, &content, false, id)),
        headers: vec![],
    };
    ws.send(Message::text(frame::encode_request(&request))).ok()?;
    Some(recipient.devices.iter().map(|d| (d.uuid, d.device_id, content.clone())).collect())
}

/// Reads until the answer to one of this sender's requests: (id, status).
/// Server requests met on the way (delivery receipts) are answered 200.
/// `None` once the connection is gone.
fn next_answer(ws: &mut Ws) -> Option<(u64, u16)> {
    loop {
        let Message::Text(text) = ws.read().ok()? else { continue };
        let mut bytes = text.as_bytes().to_vec();
        match frame::decode(&mut bytes, 1 << 20).ok()? {
            Frame::Response(response) => return Some((response.id, response.status)),
            Frame::Request(request) => try_ack(ws, request.id)?,
        }
    }
}

/// Answers server request `id` with 200; `None` when the connection is gone
/// (unlike `common::ack`, a dead server is expected here).
fn try_ack(ws: &mut Ws, id: u64) -> Option<()> {
    let response =
        WsResponse { id, status: 200, message: Some("OK".into()), body: None, headers: vec![] };
    ws.send(Message::text(frame::encode_response(&response))).ok()
}

/// Connects `device` and starts its listening thread.
fn listen(server: &Server, device: &Account, killed: &Arc<AtomicBool>) -> JoinHandle<Seen> {
    let ws = server.connect(device).expect("recipient connects");
    let (device, killed) = (device.clone(), killed.clone());
    std::thread::spawn(move || listen_loop(ws, device, killed))
}

/// Answers every server request with 200 until the connection dies,
/// keeping each delivered envelope before answering it.
fn listen_loop(mut ws: Ws, device: Account, killed: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let started = Instant::now();
    while started.elapsed() < FLOW_TIME_MAX {
        let Ok(message) = ws.read() else { break };
        let Message::Text(text) = message else { continue };
        let mut bytes = text.as_bytes().to_vec();
        let Ok(Frame::Request(request)) = frame::decode(&mut bytes, 1 << 20) else { break };
        if request.path == "/api/v1/message" {
            let envelope: serde_json::Value =
                serde_json::from_slice(request.body.as_deref().unwrap_or_default()).unwrap();
            let copy = (device.uuid, device.device_id, messaging::content(&envelope));
            // Kept before the 200 is written: the server may act on it and
            // die before this thread learns anything more.
            match killed.load(Ordering::SeqCst) {
                true => seen.unacked.push(copy),
                false => seen.acked.push(copy),
            }
        }
        if try_ack(&mut ws, request.id).is_none() {
            break;
        }
    }
    seen
}

/// After the restart: drains (and acknowledges) every device's queue.
pub fn drain_all(server: &Server, recipients: &[Recipient]) -> Vec<Addressed> {
    let mut drained = Vec::new();
    for device in recipients.iter().flat_map(|r| &r.devices) {
        let mut ws = server.connect(device).unwrap_or_else(|error| {
            panic!("{device:?} cannot connect after the restart (account lost?): {error}")
        });
        for envelope in drain_backlog(&mut ws) {
            drained.push((device.uuid, device.device_id, messaging::content(&envelope)));
        }
    }
    drained
}

/// The counts of one round, for the log.
#[derive(Debug)]
pub struct Tally {
    pub sends_ok: usize,
    pub envelopes_ok: usize,
    pub delivered_before: usize,
    /// Of those, envelopes a device read only once the server was dead.
    pub read_after_kill: usize,
    pub drained_after: usize,
    /// Drained envelopes a device had already acknowledged, or drained twice.
    pub duplicates: usize,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sends answered 200 ({} envelopes), {} delivered before the fault ({} read only \
             after the kill), {} drained after the restart, {} duplicates, 0 lost",
            self.sends_ok,
            self.envelopes_ok,
            self.delivered_before,
            self.read_after_kill,
            self.drained_after,
            self.duplicates
        )
    }
}

/// Asserts that each envelope of each send answered 200 was acknowledged
/// by its device before the fault or is in `drained`; returns the counts.
pub fn check_nothing_lost(label: &str, outcome: &Outcome, drained: &[Addressed]) -> Tally {
    let acked: HashSet<&Addressed> = outcome.seen.acked.iter().collect();
    let drained_set: HashSet<&Addressed> = drained.iter().collect();
    let lost: Vec<&Addressed> = outcome
        .confirmed
        .iter()
        .filter(|copy| !acked.contains(copy) && !drained_set.contains(copy))
        .collect();
    let examples: Vec<String> = lost
        .iter()
        .take(5)
        .map(|&copy| {
            let (account, device, content) = copy;
            let content = String::from_utf8_lossy(content);
            match outcome.seen.unacked.contains(copy) {
                true => format!("{account}.{device} {content:?} (read only after the kill)"),
                false => format!("{account}.{device} {content:?}"),
            }
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{label}: {} of {} envelopes of sends answered 200 lost (neither acknowledged by their \
         device before the fault nor queued after the restart), e.g. {examples:#?}",
        lost.len(),
        outcome.confirmed.len()
    );
    let mut drained_once = HashSet::new();
    let duplicates =
        drained.iter().filter(|copy| acked.contains(copy) || !drained_once.insert(*copy)).count();
    Tally {
        sends_ok: outcome.sends_ok,
        envelopes_ok: outcome.confirmed.len(),
        delivered_before: outcome.seen.acked.len() + outcome.seen.unacked.len(),
        read_after_kill: outcome.seen.unacked.len(),
        drained_after: drained.len(),
        duplicates,
    }
}
