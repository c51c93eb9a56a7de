//! Live delivery from the sessions' in-memory queue tails, against the real
//! server with 2 shards: while senders race, when the recipient falls behind
//! (the tail overflows and the store takes over), and when a second
//! connection replaces the first mid-stream. In every case each envelope
//! arrives, in the order it was accepted, and none is invented.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::Server;
use messaging::*;
use std::collections::HashSet;
use std::time::Duration;
use switchboard::protocol::frame::{self, Frame, WsResponse};
use tungstenite::Message;

/// Sends timestamps `range` one after another (each accepted before the next).
fn send_range(
    server: &Server,
    sender: &common::Account,
    recipient: &common::Account,
    range: std::ops::Range<u64>,
) {
    for timestamp in range {
        send_one(server, sender, recipient, format!("t{timestamp}").as_bytes(), timestamp);
    }
}

fn timestamps(envelopes: &[serde_json::Value]) -> Vec<u64> {
    envelopes.iter().map(|envelope| envelope["timestamp"].as_u64().unwrap()).collect()
}

#[test]
fn racing_senders_are_served_from_the_tail_each_once_and_in_order() {
    let server = Server::start();
    let recipient = server.register_on_shard(1, 2);
    let senders = [server.register_on_shard(0, 2), server.register_on_shard(1, 2)];
    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty());
    let per_sender = 150u64;
    let received = std::thread::scope(|scope| {
        for (index, sender) in senders.iter().enumerate() {
            let (server, recipient) = (&server, &recipient);
            let base = index as u64 * 1_000;
            scope.spawn(move || send_range(server, sender, recipient, base..base + per_sender));
        }
        receive_envelopes(&mut ws, 2 * per_sender as usize)
    });
    let got = timestamps(&received);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "no duplicates");
    for base in [0, 1_000] {
        // Each sender's envelopes keep the order they were accepted in.
        let mine: Vec<u64> =
            got.iter().copied().filter(|t| (base..base + 1_000).contains(t)).collect();
        assert_eq!(mine, (base..base + per_sender).collect::<Vec<_>>());
    }
    assert!(
        server.metric("messages_delivered_from_tail_total") > 0,
        "live traffic to a caught-up session comes from memory"
    );
}

#[test]
fn a_recipient_that_falls_behind_loses_nothing_when_the_tail_overflows() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    send_range(&server, &sender, &recipient, 0..10);
    let mut ws = server.connect(&recipient).unwrap();
    assert_eq!(timestamps(&drain_backlog(&mut ws)), (0..10).collect::<Vec<_>>());
    // Not reading: the window (64) fills, then the tail (64) overflows.
    send_range(&server, &sender, &recipient, 10..250);
    let live = receive_envelopes(&mut ws, 240);
    assert_eq!(timestamps(&live), (10..250).collect::<Vec<_>>());
    send_range(&server, &sender, &recipient, 250..260);
    let after = receive_envelopes(&mut ws, 10);
    assert_eq!(timestamps(&after), (250..260).collect::<Vec<_>>(), "the tail starts again");
    drop(ws);
    common::wait_until("acks applied", Duration::from_secs(5), || {
        server.metric("messages_acked_total") == 260
    });
    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty(), "every envelope was delivered and deleted");
}

/// Reads envelopes, acknowledging each, until the server closes the socket
/// (4409, replaced); returns their timestamps.
fn receive_until_closed(ws: &mut common::Ws) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let text = match ws.read() {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => return got,
            Ok(_) => continue,
        };
        let mut bytes = text.as_bytes().to_vec();
        let Ok(Frame::Request(request)) = frame::decode(&mut bytes, 1 << 20) else {
            panic!("not a server request: {text}")
        };
        if request.path == "/api/v1/message" {
            let body: serde_json::Value = serde_json::from_slice(&request.body.unwrap()).unwrap();
            got.push(body["timestamp"].as_u64().unwrap());
        }
        let response =
            WsResponse { id: request.id, status: 200, message: None, body: None, headers: vec![] };
        if ws.send(Message::text(frame::encode_response(&response))).is_err() {
            return got;
        }
    }
}

#[test]
fn a_replacing_connection_gets_everything_the_first_did_not_acknowledge() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let total = 300u64;
    let mut first = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut first).is_empty());
    let (first_got, second_got) = std::thread::scope(|scope| {
        let sending = scope.spawn(|| send_range(&server, &sender, &recipient, 0..total));
        let reading = scope.spawn(move || receive_until_closed(&mut first));
        std::thread::sleep(Duration::from_millis(150));
        let mut second = server.connect(&recipient).unwrap();
        sending.join().unwrap();
        let first_got = reading.join().unwrap();
        let arrivals = receive_until(&mut second, 200, |arrivals| {
            let got: HashSet<u64> = timestamps(&envelopes(arrivals)).into_iter().collect();
            (0..total).all(|t| got.contains(&t) || first_got.contains(&t))
        });
        (first_got, timestamps(&envelopes(&arrivals)))
    });
    // The second connection reads the store from the start, then live
    // traffic: one ascending stream (it may repeat what the first read
    // but had not had acknowledged yet: at-least-once).
    assert!(second_got.windows(2).all(|pair| pair[0] < pair[1]), "{second_got:?}");
    let all: HashSet<u64> = first_got.iter().chain(&second_got).copied().collect();
    assert_eq!(all, (0..total).collect::<HashSet<_>>());
}
