//! `messaging`: P sender/recipient pairs over real WebSockets. Each sender
//! sends framed `PUT /v1/messages/{recipient}` with up to `window` in flight;
//! each recipient acknowledges every envelope with 200. Reports sends
//! answered 200 per second, envelopes delivered per second, and the
//! send->deliver latency distribution (HDR histogram).
//!
//! Closed loop (no `rate`) or open loop (`rate` msgs/s in total): see
//! [`crate::schedule`]. The counters and the result are in
//! [`crate::measure`].

use crate::accounts::{register_many, Credentials, REGISTRATION_ID};
use crate::client::{source_address, Incoming, WsConn};
use crate::measure::{pairs_of_thread, Counters, MessagingArgs, MessagingResult, RunShared};
use crate::schedule::{
    init_stamp_base, intended_send_time, pair_schedule, ready_or_due, stamped_payload,
};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};

/// The framed `PUT {path}` of one urgent send to device 1 of the recipient,
/// with `content_b64` (already Base64) and client timestamp `timestamp`.
pub fn send_request(
    id: u64,
    path: &str,
    content_b64: &str,
    online: bool,
    timestamp: u64,
) -> String {
    let body = format!(
        r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":{REGISTRATION_ID},"content":"{content_b64}"}}],"online":{online},"urgent":true,"timestamp":{timestamp}}}"#
    );
    let request = WsRequest {
        id,
        verb: "PUT".into(),
        path: path.to_string(),
        body: Some(body.into_bytes()),
        headers: vec![],
    };
    frame::encode_request(&request)
}

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

pub fn run(args: MessagingArgs) -> std::io::Result<MessagingResult> {
    init_stamp_base();
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
            crate::cores::pin_thread(thread);
            crate::block_on(async move {
                let mut tasks = Vec::new();
                for (index, (sender, recipient)) in share {
                    let source = source_address(index, source_ips);
                    let Some((receiver, sending)) =
                        connect_pair(server, source, &sender, &recipient).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
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

/// Connects a pair's recipient, then its sender, and has the recipient
/// acknowledge its initial `queue/empty` before timing starts: `(recipient
/// connection, sender connection)`, or `None` when either fails to connect.
async fn connect_pair(
    server: SocketAddr,
    source: Option<IpAddr>,
    sender: &Credentials,
    recipient: &Credentials,
) -> Option<(WsConn, WsConn)> {
    let mut receiver =
        WsConn::connect(server, source, &recipient.uuid, &recipient.password).await.ok()?;
    let sending = WsConn::connect(server, source, &sender.uuid, &sender.password).await.ok()?;
    // Drain the recipient's initial queue/empty before timing starts.
    if let Ok(Some(mut text)) = receiver.next_text().await {
        if let Ok(Frame::Request(request)) = frame::decode(&mut text, 1 << 20) {
            let _ = receiver.queue_text(ok_response(request.id));
            let _ = receiver.flush().await;
        }
    }
    Some((receiver, sending))
}

/// One sender: its connection, schedule and window, kept between the
/// turns of [`send_loop`].
struct Sender {
    conn: WsConn,
    /// `/v1/messages/{recipient}`.
    path: String,
    content_bytes: usize,
    /// When send 0 is due, and in an open loop the interval between sends.
    start: Instant,
    interval: Option<Duration>,
    /// Sends awaiting their response at most (at least 1).
    window: usize,
    /// Sends written so far: the next one's number on the schedule.
    sent: u64,
    /// Sends written and not yet answered, at most `window`.
    inflight: usize,
    /// The request id of the next send.
    next_id: u64,
    /// Every frame that arrived has been taken, so only the socket's
    /// readiness can announce the next; false after a blocking read, which
    /// may leave frames buffered (in tungstenite, or decrypted by TLS)
    /// that no readiness would announce.
    drained: bool,
    counters: Arc<Counters>,
}

/// Sends to `destination` until the run stops, keeping up to `window` sends
/// awaiting their response, and counts each response.
///
/// In an open loop a send goes out when it is due whatever is in flight:
/// the sender waits for a reply *or* its next due time, whichever comes
/// first, and never blocks on a read while a send could go out. It reads
/// until a reply only when nothing can be sent before one comes (a closed
/// loop, or a full window: then the send is late, and its stamps say so).
async fn send_loop(
    conn: WsConn,
    destination: String,
    window: usize,
    content_bytes: usize,
    rate: Option<f64>,
    counters: Arc<Counters>,
    start_at: Arc<OnceLock<Instant>>,
) {
    let (start, interval) = pair_schedule(&start_at, rate).await;
    let mut sender = Sender {
        conn,
        path: format!("/v1/messages/{destination}"),
        content_bytes,
        start,
        interval,
        // A window of 0 would never send.
        window: window.max(1),
        sent: 0,
        inflight: 0,
        next_id: 1,
        drained: false,
        counters,
    };
    while !sender.counters.stop.load(Ordering::Relaxed) {
        if sender.turn().await.is_err() {
            return;
        }
    }
}

impl Sender {
    /// Writes every send due that the window has room for, then waits for
    /// a reply or the next due time and takes what came.
    async fn turn(&mut self) -> io::Result<()> {
        self.queue_due(Instant::now())?;
        self.conn.flush().await?;
        let Some(due) = self.next_due() else {
            self.drained = false;
            let text = self.conn.next_text().await?;
            return self.on_frame(text.ok_or(io::ErrorKind::UnexpectedEof)?);
        };
        // Frames a blocking read left buffered announce no readiness.
        if !self.drained && self.take_arrived()? > 0 {
            return Ok(());
        }
        if ready_or_due(due, self.conn.readable()).await.transpose()?.is_some() {
            self.take_arrived()?;
        }
        Ok(())
    }

    /// Queues every send due at `now` while the window has room.
    fn queue_due(&mut self, now: Instant) -> io::Result<()> {
        while self.inflight < self.window {
            let Some(intended) = intended_send_time(self.start, self.interval, self.sent, now)
            else {
                break;
            };
            let content = base64::encode(&stamped_payload(intended, self.content_bytes));
            let online = self.counters.online;
            let request = send_request(self.next_id, &self.path, &content, online, self.sent);
            self.conn.queue_text(request)?;
            self.next_id += 1;
            self.sent += 1;
            self.inflight += 1;
        }
        debug_assert!(self.inflight <= self.window);
        Ok(())
    }

    /// When the next send is due, if it can go out then: in an open loop
    /// with room in the window. `None` when only a reply can let it go.
    fn next_due(&self) -> Option<Instant> {
        let interval = self.interval?;
        (self.inflight < self.window).then(|| self.start + interval * self.sent as u32)
    }

    /// Takes every frame that has arrived, without waiting: how many.
    fn take_arrived(&mut self) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            match self.conn.try_next_text()? {
                Incoming::Message(text) => self.on_frame(text)?,
                Incoming::Nothing => {
                    self.drained = true;
                    return Ok(taken);
                }
                Incoming::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
            taken += 1;
        }
    }

    /// Counts a response to a send, or acknowledges a request from the
    /// server (sent with the next flush).
    fn on_frame(&mut self, mut text: Vec<u8>) -> io::Result<()> {
        match frame::decode(&mut text, 1 << 20).map_err(io::Error::other)? {
            Frame::Response(response) => {
                // A response to no send in flight would be a server bug.
                self.inflight = self.inflight.checked_sub(1).ok_or_else(|| {
                    io::Error::other(format!("response {} to no send", response.id))
                })?;
                let counter = match response.status {
                    200 => &self.counters.sent_ok,
                    _ => &self.counters.send_errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Frame::Request(request) => {
                let _ = self.conn.queue_text(ok_response(request.id));
            }
        }
        Ok(())
    }
}

/// Acknowledges every request from the server and records each delivery.
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
    fn envelope_content_finds_and_decodes_the_payload() {
        let json = br#"{"type":1,"content":"AAECAw==","serverGuid":"x"}"#;
        assert_eq!(envelope_content(json), Some(vec![0, 1, 2, 3]));
        assert_eq!(envelope_content(br#"{"type":1}"#), None);
        assert_eq!(envelope_content(br#"{"content":"AAEC"#), None, "unterminated");
        assert_eq!(envelope_content(br#"{"content":"!!!"}"#), None, "not Base64");
    }
}
