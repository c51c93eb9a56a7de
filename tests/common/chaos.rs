//! Test support for the Jepsen-style loss tests (`tests/cluster_chaos.rs`):
//! the settings they read from the environment, a seeded random source,
//! the table of nodes that serve at the moment, sender threads that record
//! every send's answer, recipient devices that drain and acknowledge
//! continuously (reconnecting through any serving node when their socket
//! drops) and record every delivery, and the tally of both.
//!
//! Nothing here panics on a fault's effect (a refused or reset connection,
//! a silent socket): a sender records it as not acknowledged, a device
//! reconnects. What must never happen (a status other than 200 or 503, a
//! delivery of something never sent, a device refused with anything but
//! 503) ends the thread with an `Err` the test fails on.
//!
//! Include it with `mod common;`, `#[path = "common/messaging.rs"] mod
//! messaging;`, `#[path = "common/cluster.rs"] mod cluster;` and
//! `#[path = "common/chaos.rs"] mod chaos;`.
#![allow(dead_code)]

use crate::common::Account;
use crate::messaging::{send_body, REGISTRATION_ID};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Seconds of faults per test (default [`SECS_DEFAULT`]).
pub const SECS_ENV: &str = "SWITCHBOARD_CHAOS_SECS";
/// The seed of every random choice (default: from the clock, printed).
pub const SEED_ENV: &str = "SWITCHBOARD_CHAOS_SEED";
/// The fault period of the short run `.ci/run` makes.
pub const SECS_DEFAULT: u64 = 12;
/// The longest fault period the tests accept (a limit on everything).
pub const SECS_MAX: u64 = 3600;
/// Faults a run makes at least, however short its period.
pub const FAULTS_MIN: usize = 2;
/// How long a send waits for its answer (a frozen node answers nothing).
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// A sender's pause after an acknowledged send, and after a refused one.
const SEND_PACE: Duration = Duration::from_millis(15);
const REFUSED_PACE: Duration = Duration::from_millis(100);

/// What a run reads from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The fault period: faults start until it ends (at least [`FAULTS_MIN`]).
    pub secs: u64,
    pub seed: u64,
}

impl Settings {
    /// Reads [`SECS_ENV`] and [`SEED_ENV`]; panics naming a bad value.
    pub fn from_env() -> Self {
        let read = |name: &str| -> Option<u64> {
            let text = std::env::var(name).ok()?;
            Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
        };
        let secs = read(SECS_ENV).unwrap_or(SECS_DEFAULT);
        assert!((1..=SECS_MAX).contains(&secs), "{SECS_ENV}={secs}: 1 to {SECS_MAX} seconds");
        let seed = read(SEED_ENV).unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map(|d| d.as_nanos() as u64).unwrap_or(1) % 1_000_000_000
        });
        Self { secs, seed }
    }

    /// The most faults a run makes: one per 2 s of its period at most.
    pub fn faults_max(&self) -> usize {
        (self.secs as usize / 2).max(FAULTS_MIN)
    }
}

/// A seeded random source (splitmix64): the same seed, the same choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "a choice among nothing");
        (self.next_u64() % n as u64) as usize
    }

    /// A duration between `low_ms` and `high_ms`, inclusive.
    pub fn millis(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        assert!(low_ms <= high_ms);
        Duration::from_millis(low_ms + self.next_u64() % (high_ms - low_ms + 1))
    }
}

/// The client address of every node that serves now (`None` while it is
/// killed or frozen), shared by the threads that pick a node to talk to.
#[derive(Default)]
pub struct Serving {
    addrs: Mutex<Vec<Option<String>>>,
}

impl Serving {
    pub fn new(addrs: Vec<String>) -> Arc<Self> {
        Arc::new(Self { addrs: Mutex::new(addrs.into_iter().map(Some).collect()) })
    }

    /// Marks node `i` as serving at `addr`, or not serving (`None`).
    pub fn set(&self, i: usize, addr: Option<String>) {
        self.addrs.lock().unwrap()[i] = addr;
    }

    /// The first serving node from `prefer` on (wrapping): index and address.
    pub fn pick(&self, prefer: usize) -> Option<(usize, String)> {
        let addrs = self.addrs.lock().unwrap();
        let count = addrs.len();
        (0..count)
            .map(|k| (prefer + k) % count)
            .find_map(|i| addrs[i].clone().map(|addr| (i, addr)))
    }
}

/// Flags the test's threads watch; every one is raised on drop, so a
/// failing test never leaves a thread running.
#[derive(Default)]
pub struct Flags {
    /// Senders stop.
    pub stop_sending: AtomicBool,
    /// Devices end their socket, drain to queue-empty once more and stop.
    pub drain: AtomicBool,
    /// Everything stops at once (the test failed).
    pub abort: AtomicBool,
}

/// Raises every flag of [`Flags`] when dropped.
pub struct StopOnDrop(pub Arc<Flags>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop_sending.store(true, Ordering::SeqCst);
        self.0.abort.store(true, Ordering::SeqCst);
    }
}

/// One send: to which recipient, through which node, when (since the
/// run's start) and its status (0: no answer, the connection failed).
#[derive(Debug, Clone, Copy)]
pub struct SendRecord {
    pub recipient: usize,
    pub via: usize,
    pub at: Duration,
    pub status: u16,
}

/// Every send by timestamp, and which were acknowledged (200).
#[derive(Debug, Default)]
pub struct SendLog {
    pub sends: BTreeMap<u64, SendRecord>,
    pub acked: BTreeSet<u64>,
}

impl SendLog {
    /// Records a send's answer; `Err` for anything but 200, 503 or 0.
    pub fn record(&mut self, timestamp: u64, send: SendRecord, answer: &str) -> Result<(), String> {
        let previous = self.sends.insert(timestamp, send);
        assert!(previous.is_none(), "timestamp {timestamp} sent twice");
        match send.status {
            200 => {
                self.acked.insert(timestamp);
                Ok(())
            }
            503 | 0 => Ok(()),
            other => Err(format!("send {timestamp} through node {}: {other} {answer}", send.via)),
        }
    }

    pub fn merge(&mut self, other: SendLog) {
        for (timestamp, send) in other.sends {
            assert!(self.sends.insert(timestamp, send).is_none(), "timestamp {timestamp} twice");
        }
        self.acked.extend(other.acked);
    }
}

/// One sender thread's part: its account, the node it prefers, the
/// recipients it sends to in turn and its first timestamp.
pub struct SenderPlan {
    pub account: Account,
    pub prefer: usize,
    pub recipients: Vec<Uuid>,
    pub first_timestamp: u64,
}

/// Sends until [`Flags::stop_sending`], through the preferred node or the
/// next serving one, recording every answer; stops at the first answer
/// that is neither 200, 503 nor a failed connection.
pub fn spawn_sender(
    plan: SenderPlan,
    serving: Arc<Serving>,
    flags: Arc<Flags>,
    started: Instant,
) -> JoinHandle<Result<SendLog, String>> {
    std::thread::spawn(move || {
        let mut log = SendLog::default();
        let mut n = 0u64;
        while !flags.stop_sending.load(Ordering::SeqCst) {
            let Some((via, addr)) = serving.pick(plan.prefer) else {
                std::thread::sleep(REFUSED_PACE);
                continue;
            };
            let recipient = n as usize % plan.recipients.len();
            let timestamp = plan.first_timestamp + n;
            let (status, answer) =
                try_send(&addr, &plan.account, &plan.recipients[recipient], timestamp);
            let at = started.elapsed();
            log.record(timestamp, SendRecord { recipient, via, at, status }, &answer)?;
            n += 1;
            std::thread::sleep(if status == 200 { SEND_PACE } else { REFUSED_PACE });
        }
        Ok(log)
    })
}

/// `PUT /v1/messages/{dest}` (content `m{timestamp}`, as
/// [`crate::cluster::send_at`]) on a new connection: the status (0 when
/// the connection fails or ends without an answer) and the answer's text.
pub fn try_send(addr: &str, sender: &Account, dest: &Uuid, timestamp: u64) -> (u16, String) {
    let content = crate::cluster::message(timestamp);
    let body = send_body(&[(1, REGISTRATION_ID)], content.as_bytes(), false, timestamp);
    let head = format!(
        "PUT /v1/messages/{dest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
         Authorization: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        sender.basic()
    );
    let Ok(socket) = addr.parse::<SocketAddr>() else { return (0, format!("bad address {addr}")) };
    let mut stream = match TcpStream::connect_timeout(&socket, Duration::from_secs(1)) {
        Ok(stream) => stream,
        Err(error) => return (0, format!("connect {addr}: {error}")),
    };
    let _ = stream.set_read_timeout(Some(ANSWER_WAIT));
    let _ = stream.set_write_timeout(Some(ANSWER_WAIT));
    if let Err(error) = stream.write_all(&[head.into_bytes(), body].concat()) {
        return (0, format!("write to {addr}: {error}"));
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// How long a device waits for a handshake's answer (a frozen node
/// accepts the connection in its kernel and answers nothing).
const HANDSHAKE_WAIT: Duration = Duration::from_secs(3);
/// A device's socket read timeout: how often it looks at the flags.
const READ_TICK: Duration = Duration::from_millis(200);
/// A socket silent this long is dead (the server pings every 500 ms).
const SILENT_MAX: Duration = Duration::from_secs(3);
/// How long the final drain of one device may take, reconnects included.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A device's WebSocket (plain TCP on loopback).
pub type DeviceWs = tungstenite::WebSocket<TcpStream>;

/// One delivery of an envelope to a device.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub timestamp: u64,
    /// The device's connection it came on (1, 2, ...) and its node.
    pub conn: u32,
    pub via: usize,
    /// When it arrived, since the run's start.
    pub at: Duration,
    /// When the device's 200 for it was written to the socket; `None`
    /// when the socket failed first (the server may not have it).
    pub acked_at: Option<Duration>,
}

/// Everything one device saw.
#[derive(Debug, Default)]
pub struct DeviceLog {
    pub deliveries: Vec<Delivery>,
    /// Connections opened.
    pub connections: u32,
    /// Sockets that ended under the device: when, through which node, why.
    pub drops: Vec<(Duration, usize, String)>,
}

/// Why a device's socket session ended.
enum End {
    /// The drain flag went up: reconnect to drain.
    Drain,
    /// The drain connection's backlog is read.
    QueueEmpty,
    /// The socket failed, closed or went silent: reconnect.
    Dropped(String),
    /// Something that must not happen: the test fails.
    Fatal(String),
}

/// Why a connection was not opened.
enum Refusal {
    Retry(String),
    Fatal(String),
}

/// Runs device 1 of `account` (device number `index`, which picks the
/// node it tries first) until it drained to queue-empty after
/// [`Flags::drain`]: connects through a serving node, acknowledges every
/// delivery with 200 and records it, reconnects whenever its socket ends.
pub fn spawn_device(
    account: Account,
    index: usize,
    serving: Arc<Serving>,
    flags: Arc<Flags>,
    started: Instant,
) -> JoinHandle<Result<DeviceLog, String>> {
    std::thread::spawn(move || {
        let mut log = DeviceLog::default();
        let mut attempt = index;
        let mut drain_deadline = None;
        loop {
            if flags.abort.load(Ordering::SeqCst) {
                return Err(format!("device {index}: aborted"));
            }
            let draining = flags.drain.load(Ordering::SeqCst);
            if draining
                && *drain_deadline.get_or_insert(Instant::now() + DRAIN_TIMEOUT) < Instant::now()
            {
                return Err(format!("device {index}: no queue-empty within {DRAIN_TIMEOUT:?}"));
            }
            let Some((via, addr)) = serving.pick(attempt) else {
                std::thread::sleep(REFUSED_PACE);
                continue;
            };
            attempt += 1;
            let mut ws = match open(&addr, &account) {
                Ok(ws) => ws,
                Err(Refusal::Retry(_)) => {
                    std::thread::sleep(REFUSED_PACE);
                    continue;
                }
                Err(Refusal::Fatal(why)) => return Err(format!("device {index} via {via}: {why}")),
            };
            log.connections += 1;
            let conn = log.connections;
            match session(&mut ws, (conn, via), draining, &mut log, &flags, started) {
                End::Drain => {}
                End::QueueEmpty => return Ok(log),
                End::Dropped(why) => log.drops.push((started.elapsed(), via, why)),
                End::Fatal(why) => return Err(format!("device {index} via {via}: {why}")),
            }
        }
    })
}

/// Opens `account`'s WebSocket at `addr`.
fn open(addr: &str, account: &Account) -> Result<DeviceWs, Refusal> {
    let socket: SocketAddr = addr.parse().map_err(|_| Refusal::Fatal(format!("address {addr}")))?;
    let stream = TcpStream::connect_timeout(&socket, Duration::from_secs(1))
        .map_err(|error| Refusal::Retry(error.to_string()))?;
    let _ = stream.set_read_timeout(Some(HANDSHAKE_WAIT));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_WAIT));
    let url = format!(
        "ws://{addr}/v1/websocket/?login={}.{}&password={}",
        account.uuid, account.device_id, account.password
    );
    match tungstenite::client(url.as_str(), stream) {
        Ok((ws, _)) => {
            let _ = ws.get_ref().set_read_timeout(Some(READ_TICK));
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let status = response.status();
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            let why = format!("socket refused with {status}: {body}");
            Err(if status == 503 { Refusal::Retry(why) } else { Refusal::Fatal(why) })
        }
        Err(other) => Err(Refusal::Retry(other.to_string())),
    }
}

/// Reads and acknowledges server requests on connection `conn` (through
/// node `via`) until the socket ends, the drain flag goes up (unless this
/// is the drain connection) or, draining, queue-empty arrives.
fn session(
    ws: &mut DeviceWs,
    (conn, via): (u32, usize),
    draining: bool,
    log: &mut DeviceLog,
    flags: &Flags,
    started: Instant,
) -> End {
    let mut heard = Instant::now();
    loop {
        if flags.abort.load(Ordering::SeqCst) {
            return End::Fatal("aborted".into());
        }
        if !draining && flags.drain.load(Ordering::SeqCst) {
            return End::Drain;
        }
        if heard.elapsed() > SILENT_MAX {
            return End::Dropped(format!("silent for {SILENT_MAX:?}"));
        }
        let text = match ws.read() {
            Ok(tungstenite::Message::Text(text)) => text,
            Ok(tungstenite::Message::Close(frame)) => {
                return End::Dropped(format!("closed {frame:?}"))
            }
            Ok(tungstenite::Message::Binary(_)) => return End::Fatal("a binary message".into()),
            Ok(_) => {
                heard = Instant::now();
                continue;
            }
            Err(tungstenite::Error::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(error) => return End::Dropped(error.to_string()),
        };
        heard = Instant::now();
        let mut bytes = text.as_bytes().to_vec();
        let request = match switchboard::protocol::frame::decode(&mut bytes, 1 << 20) {
            Ok(switchboard::protocol::frame::Frame::Request(request)) => request,
            other => return End::Fatal(format!("not a server request: {other:?}")),
        };
        let delivered = match request.path.as_str() {
            "/api/v1/message" => match delivery(request.body.as_deref(), (conn, via), started) {
                Ok(delivery) => Some(delivery),
                Err(why) => return End::Fatal(why),
            },
            "/api/v1/queue/empty" | "/api/v1/receipt" => None,
            other => return End::Fatal(format!("unexpected server request {other}")),
        };
        let acked = ack(ws, request.id);
        if let Some(mut delivery) = delivered {
            delivery.acked_at = acked.is_ok().then(|| started.elapsed());
            log.deliveries.push(delivery);
        }
        if let Err(why) = acked {
            return End::Dropped(format!("ack: {why}"));
        }
        if draining && request.path == "/api/v1/queue/empty" {
            return End::QueueEmpty;
        }
    }
}

/// The delivery an envelope's body describes; `Err` when it is not one
/// of the tests' sends (`m{timestamp}`).
fn delivery(
    body: Option<&[u8]>,
    (conn, via): (u32, usize),
    started: Instant,
) -> Result<Delivery, String> {
    let envelope: serde_json::Value = serde_json::from_slice(body.unwrap_or_default())
        .map_err(|error| format!("an envelope that is not JSON: {error}"))?;
    let timestamp = envelope["timestamp"].as_u64().ok_or(format!("no timestamp: {envelope}"))?;
    let content = crate::messaging::content(&envelope);
    if content != crate::cluster::message(timestamp).as_bytes() {
        return Err(format!(
            "envelope {timestamp} carries {:?}",
            String::from_utf8_lossy(&content)
        ));
    }
    Ok(Delivery { timestamp, conn, via, at: started.elapsed(), acked_at: None })
}

/// Answers server request `id` with 200.
fn ack(ws: &mut DeviceWs, id: u64) -> Result<(), String> {
    use switchboard::protocol::frame::{encode_response, WsResponse};
    let response =
        WsResponse { id, status: 200, message: Some("OK".into()), body: None, headers: vec![] };
    ws.send(tungstenite::Message::text(encode_response(&response))).map_err(|e| e.to_string())
}
