//! `messaging`: P sender/recipient pairs over real WebSockets. Each sender
//! sends framed `PUT /v1/messages/{recipient}` with up to `window` in flight;
//! each recipient acknowledges every envelope with 200. Reports sends
//! answered 200 per second, envelopes delivered per second, and the
//! send->deliver latency distribution (HDR histogram).
//!
//! Against a cluster (`--cluster-map`), each pair's accounts are placed
//! and connected by [`crate::placement`].
//!
//! Closed loop (no `rate`) or open loop (`rate` msgs/s in total): see
//! [`crate::schedule`]; the sending loop is [`crate::sender`]'s. The
//! counters and the result are in [`crate::measure`]. Frames are JSON text
//! or Signal's protobuf (`--framing`): see [`crate::framing`].

use crate::accounts::{register_many, Credentials, REGISTRATION_ID};
use crate::client::{source_address, WsConn};
use crate::framing;
use crate::measure::{pairs_of_thread, Counters, MessagingArgs, MessagingResult, RunShared};
use crate::placement::{self, Pair};
use crate::schedule::{init_stamp_base, stamped_payload};
use crate::sender::{send_loop, Wire};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use switchboard::config::Framing;
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};

/// The JSON body of one urgent send to device 1 of the recipient, with
/// `content_b64` (already Base64) and client timestamp `timestamp`: the same
/// in both framings (type 1, ciphertext, is 1 in both numberings).
pub fn send_body(content_b64: &str, online: bool, timestamp: u64) -> String {
    format!(
        r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":{REGISTRATION_ID},"content":"{content_b64}"}}],"online":{online},"urgent":true,"timestamp":{timestamp}}}"#
    )
}

/// The JSON-framed `PUT {path}` of one send (see [`send_body`]).
pub fn send_request(
    id: u64,
    path: &str,
    content_b64: &str,
    online: bool,
    timestamp: u64,
) -> String {
    let body = send_body(content_b64, online, timestamp);
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
    let pairs = crate::block_on(placed_pairs(&args))?;
    let shared = RunShared::new(&args);
    let mut threads = Vec::new();
    for thread in 0..args.threads {
        let share: Vec<(usize, Pair)> = pairs_of_thread(args.pairs, args.threads, thread)
            .into_iter()
            .map(|index| (index, pairs[index].clone()))
            .collect();
        let RunShared { counters, ready, start_at, per_pair_rate } = shared.share();
        let (window, content_bytes, source_ips) =
            (args.window, args.content_bytes, args.source_ips);
        let framing = args.framing.unwrap_or(Framing::Json);
        threads.push(std::thread::spawn(move || {
            crate::cores::pin_thread(thread);
            crate::block_on(async move {
                let mut tasks = Vec::new();
                for (index, pair) in share {
                    let source = source_address(index, source_ips);
                    let Some((receiver, sending)) = connect_pair(&pair, source, framing).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    ready.fetch_add(1, Ordering::Relaxed);
                    let (c1, c2, s) = (counters.clone(), counters.clone(), start_at.clone());
                    tasks.push(monoio::spawn(receive_loop(receiver, framing, c1)));
                    let wire = SignalWire {
                        path: format!("/v1/messages/{}", pair.recipient.uuid),
                        content_bytes,
                        online: c2.online,
                        framing,
                    };
                    tasks.push(monoio::spawn(send_loop(
                        sending,
                        wire,
                        window,
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

/// The run's pairs: on one server, `2 * pairs` accounts two by two; on a
/// cluster, accounts registered until each pair can be placed.
async fn placed_pairs(args: &MessagingArgs) -> std::io::Result<Vec<Pair>> {
    match &args.cluster {
        None => {
            let accounts = register_many(args.server, args.pairs * 2, 64).await?;
            Ok(placement::single_server(args.server, accounts))
        }
        Some(cluster) => placement::register_placed(cluster, args.pairs).await,
    }
}

/// Connects a pair's recipient, then its sender (each to its server), and
/// has the recipient acknowledge its initial `queue/empty` before timing
/// starts: `(recipient connection, sender connection)`, or `None` when
/// either fails to connect.
async fn connect_pair(
    pair: &Pair,
    source: Option<IpAddr>,
    framing: Framing,
) -> Option<(WsConn, WsConn)> {
    let connect = |server: SocketAddr, device: &Credentials| {
        let path = framing::upgrade_path(framing, &device.uuid, &device.password);
        async move { WsConn::connect_path(server, source, &path, "").await }
    };
    let mut receiver = connect(pair.recipient_server, &pair.recipient).await.ok()?;
    let sending = connect(pair.sender_server, &pair.sender).await.ok()?;
    // Drain the recipient's initial queue/empty before timing starts.
    if let Ok(Some(message)) = receiver.next_text().await {
        if let Ok(Frame::Request(request)) = framing::decode(framing, message) {
            let _ = framing::queue_ok(&mut receiver, framing, request.id);
            let _ = receiver.flush().await;
        }
    }
    Some((receiver, sending))
}

/// The Signal side of a sender: framed `PUT /v1/messages/{recipient}`
/// requests, answered by responses; the server's own requests to it (none
/// expected) are acknowledged.
struct SignalWire {
    /// `/v1/messages/{recipient}`.
    path: String,
    content_bytes: usize,
    /// Sends are online-only (relay, nothing stored).
    online: bool,
    framing: Framing,
}

impl Wire for SignalWire {
    type Link = WsConn;

    /// Send number `number` is request id `number + 1` (0 is no id) with
    /// client timestamp `number`.
    fn queue_send(&mut self, conn: &mut WsConn, number: u64, intended: Instant) -> io::Result<()> {
        let payload = stamped_payload(intended, self.content_bytes);
        let request = (number + 1, self.path.as_str());
        framing::queue_send(conn, self.framing, request, &payload, self.online, number)
    }

    fn on_message(
        &mut self,
        conn: &mut WsConn,
        message: Vec<u8>,
        counters: &Counters,
    ) -> io::Result<usize> {
        match framing::decode(self.framing, message)? {
            Frame::Response(response) => {
                let counter = match response.status {
                    200 => &counters.sent_ok,
                    _ => &counters.send_errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(1)
            }
            Frame::Request(request) => {
                let _ = framing::queue_ok(conn, self.framing, request.id);
                Ok(0)
            }
        }
    }
}

/// Acknowledges every request from the server and records each delivery.
async fn receive_loop(mut conn: WsConn, framing: Framing, counters: Arc<Counters>) {
    while let Ok(Some(message)) = conn.next_text().await {
        let Ok(Frame::Request(request)) = framing::decode(framing, message) else { continue };
        let _ = framing::queue_ok(&mut conn, framing, request.id);
        framing::record_delivery(framing, &request, &counters);
    }
}
