//! Test support for the Jepsen-style loss tests (`tests/cluster_chaos.rs`):
//! the recipient devices. Each is a thread that holds one WebSocket at a
//! time through a serving node, acknowledges every server request with 200
//! as it reads it, reconnects through any serving node whenever its socket
//! ends under it, and records every delivery and every connection in its
//! [`DeviceLog`]; once [`Flags::drain`] is up it ends its socket, drains to
//! queue-empty on a new connection and stops.
//!
//! Invariants: connection `n` of a log is `connections[n - 1]`, and once a
//! device ends with `Ok` every delivery's [`Delivery::conn`] names one of
//! them; [`Delivery::acked_at`] is set only when the 200 was written to the
//! socket. A device never panics on a fault's effect (a refused, reset,
//! closed or silent socket): it reconnects. What must never happen (a
//! delivery that is not one of the tests' sends, a refusal other than 503,
//! a binary message) ends it with an `Err` the test fails on. Bounded: a
//! handshake waits [`HANDSHAKE_WAIT`], a socket silent [`SILENT_MAX`] is
//! dead, the final drain takes at most [`DRAIN_TIMEOUT`].
//!
//! Include it with `#[path = "common/chaos_devices.rs"] mod chaos_devices;`
//! beside `chaos.rs` (see there).
#![allow(dead_code)]

use crate::chaos::{Flags, Serving, REFUSED_PACE};
use crate::common::Account;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a device waits for a handshake's answer (a frozen node
/// accepts the connection in its kernel and answers nothing).
const HANDSHAKE_WAIT: Duration = Duration::from_secs(3);
/// A device's socket read timeout: how often it looks at the flags.
const READ_TICK: Duration = Duration::from_millis(200);
/// A socket silent this long is dead (the server pings every 500 ms).
pub const SILENT_MAX: Duration = Duration::from_secs(3);
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

/// One connection of a device.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The node it went through (which may forward it to the owner).
    pub via: usize,
    pub opened_at: Duration,
    /// When it ended, and why: `drain` (the device closed it to drain),
    /// `queue-empty` (the drain connection, done), anything else ended it
    /// under the device (closed by the server, reset, silent).
    pub ended_at: Duration,
    pub why: String,
}

impl Connection {
    /// Whether it ended under the device rather than by the device's choice.
    pub fn dropped(&self) -> bool {
        self.why != DRAIN_END && self.why != QUEUE_EMPTY_END
    }
}

/// [`Connection::why`] of the connection the device closed to drain.
pub const DRAIN_END: &str = "drain";
/// [`Connection::why`] of the drain connection.
pub const QUEUE_EMPTY_END: &str = "queue-empty";

/// Everything one device saw.
#[derive(Debug, Default)]
pub struct DeviceLog {
    pub deliveries: Vec<Delivery>,
    /// Connection `n` (as in [`Delivery::conn`]) is `connections[n - 1]`.
    pub connections: Vec<Connection>,
}

impl DeviceLog {
    /// The connection a delivery came on.
    pub fn connection(&self, delivery: &Delivery) -> &Connection {
        &self.connections[delivery.conn as usize - 1]
    }

    /// Connections that ended under the device.
    pub fn drops(&self) -> usize {
        self.connections.iter().filter(|c| c.dropped()).count()
    }
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
            let conn = log.connections.len() as u32 + 1;
            let opened_at = started.elapsed();
            let end = session(&mut ws, (conn, via), draining, &mut log, &flags, started);
            drop(ws);
            let why = match end {
                End::Drain => DRAIN_END.to_string(),
                End::QueueEmpty => QUEUE_EMPTY_END.to_string(),
                End::Dropped(why) => why,
                End::Fatal(why) => return Err(format!("device {index} via {via}: {why}")),
            };
            let ended_at = started.elapsed();
            log.connections.push(Connection { via, opened_at, ended_at, why });
            if draining && log.connections.last().is_some_and(|c| c.why == QUEUE_EMPTY_END) {
                return Ok(log);
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
