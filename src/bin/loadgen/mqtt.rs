//! `mqtt`: the baseline. The same shape of load as `messaging`, against an
//! MQTT 3.1.1 broker over WebSocket (Mosquitto in `scripts/bench`): each
//! recipient is a persistent session (clean session off) subscribed at QoS 1
//! to its own topic, each sender publishes at QoS 1 with up to `window`
//! publishes awaiting PUBACK, and recipients PUBACK every delivery. A send
//! counts when the broker PUBACKs it; latency is publish to delivery, from
//! the same clock and content stamp as `messaging`.
//!
//! Closed or open loop (`--rate`, `--busy-poll`) as in `messaging`: the
//! senders run [`crate::sender`]'s loop, so an open loop's schedule, send
//! stamps and waits are the same against the broker as against switchboard.

use crate::client::WsConn;
use crate::measure::{pairs_of_thread, Counters, MessagingArgs, MessagingResult, RunShared};
use crate::schedule::{micros_since_base, stamped_payload};
use crate::sender::{send_loop, Wire};

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The type nibble of a PUBACK.
const PUBACK: u8 = 4;

/// Encodes an MQTT remaining length.
fn remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn string(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    body.push(0); // flags: clean session off (persistent), no will, no auth
    body.extend_from_slice(&600u16.to_be_bytes()); // keepalive seconds
    string(client_id, &mut body);
    packet(0x10, &body)
}

fn subscribe_packet(topic: &str) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    string(topic, &mut body);
    body.push(1); // QoS 1
    packet(0x82, &body)
}

fn publish_packet(topic: &str, packet_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    string(topic, &mut body);
    body.extend_from_slice(&packet_id.to_be_bytes());
    body.extend_from_slice(payload);
    packet(0x32, &body) // PUBLISH, QoS 1
}

fn puback_packet(packet_id: u16) -> Vec<u8> {
    packet(0x40, &packet_id.to_be_bytes())
}

/// One parsed packet: (type nibble, flags, body).
type Packet = (u8, u8, Vec<u8>);

/// Splits complete packets off the front of `buffer`.
fn parse_packets(buffer: &mut Vec<u8>) -> Vec<Packet> {
    let mut packets = Vec::new();
    loop {
        if buffer.len() < 2 {
            return packets;
        }
        let (mut len, mut shift, mut index) = (0usize, 0, 1);
        loop {
            let Some(&byte) = buffer.get(index) else { return packets };
            len |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            index += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if buffer.len() < index + len {
            return packets;
        }
        let first = buffer[0];
        let body = buffer[index..index + len].to_vec();
        buffer.drain(..index + len);
        packets.push((first >> 4, first & 0x0f, body));
    }
}

/// The payload and packet id of a QoS 1 PUBLISH body.
fn publish_parts(body: &[u8]) -> Option<(u16, &[u8])> {
    let topic_len = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let id_at = 2 + topic_len;
    let packet_id = u16::from_be_bytes([*body.get(id_at)?, *body.get(id_at + 1)?]);
    Some((packet_id, body.get(id_at + 2..)?))
}

async fn mqtt_connect(server: SocketAddr, client_id: &str) -> std::io::Result<(WsConn, Vec<u8>)> {
    let mut conn =
        WsConn::connect_path(server, None, "/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n").await?;
    conn.queue_binary(connect_packet(client_id))?;
    conn.flush().await?;
    let mut buffer = Vec::new();
    loop {
        let bytes =
            conn.next_text().await?.ok_or_else(|| std::io::Error::other("broker closed"))?;
        buffer.extend_from_slice(&bytes);
        if let Some((kind, _, body)) = parse_packets(&mut buffer).into_iter().next() {
            if kind == 2 && body.get(1) == Some(&0) {
                return Ok((conn, buffer));
            }
            return Err(std::io::Error::other(format!(
                "CONNACK refused: type {kind} body {body:?}"
            )));
        }
    }
}

pub fn run(args: MessagingArgs) -> std::io::Result<MessagingResult> {
    micros_since_base(Instant::now());
    let shared = RunShared::new(&args);
    let run_id = micros_since_base(Instant::now()) ^ std::process::id() as u64;
    for thread in 0..args.threads {
        let pairs = pairs_of_thread(args.pairs, args.threads, thread);
        let RunShared { counters, ready, start_at, per_pair_rate } = shared.share();
        let (server, window, content_bytes) = (args.server, args.window, args.content_bytes);
        std::thread::spawn(move || {
            crate::cores::pin_thread(thread);
            crate::block_on(async move {
                let mut tasks = Vec::new();
                for pair in pairs {
                    let topic = format!("lg/{run_id}/{pair}");
                    let Ok((mut receiver, leftover)) =
                        mqtt_connect(server, &format!("r{run_id}x{pair}")).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if receiver.queue_binary(subscribe_packet(&topic)).is_err()
                        || receiver.flush().await.is_err()
                    {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let Ok((sender, buffer)) =
                        mqtt_connect(server, &format!("s{run_id}x{pair}")).await
                    else {
                        counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    ready.fetch_add(1, Ordering::Relaxed);
                    tasks.push(monoio::spawn(receive_loop(receiver, leftover, counters.clone())));
                    let wire = Publisher { topic, content_bytes, next_id: 1, buffer };
                    tasks.push(monoio::spawn(send_loop(
                        sender,
                        wire,
                        window,
                        per_pair_rate,
                        counters.clone(),
                        start_at.clone(),
                    )));
                }
                for task in tasks {
                    task.await;
                }
            })
        });
    }
    // Let subscriptions settle before timing starts.
    let waited = Instant::now();
    while (shared.ready.load(Ordering::Relaxed) as usize) < args.pairs
        && waited.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Ok(shared.collect(&args))
}

/// The MQTT side of a sender: QoS 1 PUBLISHes to the pair's topic, each
/// answered by the broker's PUBACK.
struct Publisher {
    topic: String,
    content_bytes: usize,
    /// The packet id of the next PUBLISH.
    next_id: u16,
    /// Bytes of a packet split across WebSocket messages (after CONNACK,
    /// whatever came with it).
    buffer: Vec<u8>,
}

impl Wire for Publisher {
    type Link = WsConn;

    fn queue_send(&mut self, conn: &mut WsConn, _number: u64, intended: Instant) -> io::Result<()> {
        let payload = stamped_payload(intended, self.content_bytes);
        conn.queue_binary(publish_packet(&self.topic, self.next_id, &payload))?;
        self.next_id = next_packet_id(self.next_id);
        Ok(())
    }

    fn on_message(
        &mut self,
        _conn: &mut WsConn,
        bytes: Vec<u8>,
        counters: &Counters,
    ) -> io::Result<usize> {
        self.buffer.extend_from_slice(&bytes);
        let pubacks = count_pubacks(parse_packets(&mut self.buffer));
        counters.sent_ok.fetch_add(pubacks as u64, Ordering::Relaxed);
        Ok(pubacks)
    }
}

/// The packet id after `id`: 1 to 65,535 in turn (0 is not a packet id).
/// The window is far below 65,535, so no two PUBLISHes in flight share one.
fn next_packet_id(id: u16) -> u16 {
    id.checked_add(1).unwrap_or(1)
}

/// The PUBACKs among a sender's packets: the broker's answers to its
/// PUBLISHes (anything else, e.g. a PINGRESP, answers no send).
fn count_pubacks(packets: Vec<Packet>) -> usize {
    packets.iter().filter(|(kind, _, _)| *kind == PUBACK).count()
}

async fn receive_loop(mut conn: WsConn, mut buffer: Vec<u8>, counters: Arc<Counters>) {
    loop {
        for (kind, flags, body) in parse_packets(&mut buffer) {
            if kind != 3 {
                continue;
            }
            let Some((packet_id, payload)) = publish_parts(&body) else { continue };
            if flags & 0x06 != 0 && conn.queue_binary(puback_packet(packet_id)).is_err() {
                return;
            }
            counters.record_delivery(payload);
        }
        let Ok(Some(bytes)) = conn.next_text().await else { return };
        buffer.extend_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_through_the_parser() {
        let mut buffer = publish_packet("a/b", 7, &[1, 2, 3]);
        buffer.extend(puback_packet(7));
        buffer.extend(&vec![0x30, 200][..]); // truncated: stays buffered
        let packets = parse_packets(&mut buffer);
        assert_eq!(packets.len(), 2);
        assert_eq!((packets[0].0, packets[0].1), (3, 2));
        assert_eq!(publish_parts(&packets[0].2), Some((7, &[1u8, 2, 3][..])));
        assert_eq!(packets[1].0, 4);
        assert_eq!(buffer, vec![0x30, 200]);
    }

    #[test]
    fn a_sender_books_each_puback_and_nothing_else() {
        let mut buffer = puback_packet(1);
        buffer.extend([0xd0, 0x00]); // PINGRESP: answers no send
        buffer.extend(puback_packet(2));
        buffer.extend([0x40, 0x02, 0x00]); // a third PUBACK, split
        assert_eq!(count_pubacks(parse_packets(&mut buffer)), 2);
        buffer.push(3);
        assert_eq!(count_pubacks(parse_packets(&mut buffer)), 1, "completed by the next bytes");
        assert!(buffer.is_empty());
    }

    #[test]
    fn packet_ids_run_from_1_to_65535_and_skip_0() {
        assert_eq!(next_packet_id(1), 2);
        assert_eq!(next_packet_id(u16::MAX), 1);
    }

    #[test]
    fn long_remaining_lengths_encode_in_several_bytes() {
        let mut out = Vec::new();
        remaining_length(321, &mut out);
        assert_eq!(out, vec![0xc1, 0x02]);
    }
}
