//! Delivery before the fsync and elision (DESIGN.md section 4, issue 19):
//! a connected device gets an envelope before its batch is written; an
//! envelope its device acknowledges while its put is still in the open
//! batch is never written, and the sender's 200 then rests on that
//! acknowledgement; one the device leaves unacknowledged is stored and
//! comes back on the next connection. The batch is held for
//! acknowledgements at most `persist_delay_ms`: these tests set it long
//! (so the outcome does not depend on the machine's speed) or short.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{next_frame, Server, ServerOptions, Ws};
use messaging::{content, drain_backlog, send_body, REGISTRATION_ID};
use std::time::Duration;
use switchboard::protocol::frame::{self, Frame, WsRequest};
use tungstenite::Message;

fn server_with_persist_delay(delay_ms: u64) -> Server {
    let config_toml = format!("persist_delay_ms = {delay_ms}\n{}", common::TEST_LIMITS);
    Server::start_with(ServerOptions { config_toml, ..Default::default() })
}

/// Connects `account` and reads its (empty) backlog up to `queue/empty`.
fn connect_drained(server: &Server, account: &common::Account) -> Ws {
    let mut ws = server.connect(account).unwrap();
    assert!(drain_backlog(&mut ws).is_empty());
    ws
}

/// Writes a framed send of `content` to `destination`'s device 1.
fn send_framed(ws: &mut Ws, id: u64, destination: &uuid::Uuid, content: &[u8]) {
    let request = WsRequest {
        id,
        verb: "PUT".into(),
        path: format!("/v1/messages/{destination}"),
        body: Some(send_body(&[(1, REGISTRATION_ID)], content, false, 1_000 + id)),
        headers: vec![],
    };
    ws.send(Message::text(frame::encode_request(&request))).unwrap();
}

/// Reads until the response to `id`, acknowledging any server request;
/// returns its status and how many receipts were acknowledged meanwhile.
fn response_acking(ws: &mut Ws, id: u64) -> (u16, usize) {
    let mut receipts = 0;
    loop {
        match next_frame(ws) {
            Frame::Response(response) if response.id == id => return (response.status, receipts),
            Frame::Response(other) => panic!("response to an unknown id {other:?}"),
            Frame::Request(request) => {
                receipts += usize::from(request.path == "/api/v1/receipt");
                common::ack(ws, request.id, 200);
            }
        }
    }
}

/// Reads until the response to `id`, acknowledging any server request.
fn response_status(ws: &mut Ws, id: u64) -> u16 {
    response_acking(ws, id).0
}

/// Reads the next envelope request; returns its id and content.
fn next_envelope(ws: &mut Ws) -> (u64, Vec<u8>) {
    loop {
        match next_frame(ws) {
            Frame::Request(request) if request.path == "/api/v1/message" => {
                let body: serde_json::Value =
                    serde_json::from_slice(&request.body.expect("an envelope body")).unwrap();
                return (request.id, content(&body));
            }
            Frame::Request(request) => common::ack(ws, request.id, 200),
            Frame::Response(response) => panic!("unexpected response {response:?}"),
        }
    }
}

#[test]
fn an_envelope_acknowledged_before_its_batch_is_written_is_never_stored() {
    let server = server_with_persist_delay(10_000);
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let mut sender_ws = connect_drained(&server, &sender);
    let mut recipient_ws = connect_drained(&server, &recipient);

    send_framed(&mut sender_ws, 1, &recipient.uuid, b"early ack");
    // Delivered while its put waits in the open batch (held up to 10 s).
    let (id, delivered) = next_envelope(&mut recipient_ws);
    assert_eq!(delivered, b"early ack");
    common::ack(&mut recipient_ws, id, 200);
    let (status, receipts) = response_acking(&mut sender_ws, 1);
    assert_eq!(status, 200, "the acknowledgement answers the send");
    // The sender's DELIVERY receipt is elided the same way once it acks it.
    if receipts == 0 {
        match next_frame(&mut sender_ws) {
            Frame::Request(request) if request.path == "/api/v1/receipt" => {
                common::ack(&mut sender_ws, request.id, 200)
            }
            other => panic!("expected the DELIVERY receipt, got {other:?}"),
        }
    }
    let elided = || server.metric("messages_elided_total") >= 2;
    common::wait_until("both elided", Duration::from_secs(10), elided);
    assert_eq!(server.metric("messages_stored_total"), 0, "neither was ever written");
    assert_eq!(server.metric("messages_acked_total"), 2);

    // Nothing comes back on a new connection: there is nothing stored to redeliver.
    drop(recipient_ws);
    let mut again = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut again).is_empty(), "an elided envelope is not redelivered");
}

#[test]
fn an_envelope_left_unacknowledged_past_the_delay_is_stored_and_redelivered() {
    let server = server_with_persist_delay(20);
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(0, 2);
    let mut recipient_ws = connect_drained(&server, &recipient);
    let mut sender_ws = connect_drained(&server, &sender);

    send_framed(&mut sender_ws, 7, &recipient.uuid, b"never acked");
    let (_id, delivered) = next_envelope(&mut recipient_ws);
    assert_eq!(delivered, b"never acked", "delivered before the write");
    // The device stays silent: the batch is written after the delay, and the send answered.
    assert_eq!(response_status(&mut sender_ws, 7), 200);
    assert_eq!(server.metric("messages_elided_total"), 0);
    assert_eq!(server.metric("messages_stored_total"), 1);
    drop(recipient_ws);
    let mut again = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut again);
    assert_eq!(backlog.len(), 1, "stored, so delivered again");
    assert_eq!(content(&backlog[0]), b"never acked");
}

#[test]
fn a_send_to_a_device_away_is_not_held_for_an_acknowledgement() {
    // A delay the test would notice (its requests time out well before it).
    let server = server_with_persist_delay(10_000);
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let mut sender_ws = connect_drained(&server, &sender);
    for id in 1..=3 {
        send_framed(&mut sender_ws, id, &recipient.uuid, format!("away {id}").as_bytes());
        assert_eq!(response_status(&mut sender_ws, id), 200);
    }
    assert_eq!(server.metric("messages_stored_total"), 3);
    let mut recipient_ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut recipient_ws);
    let contents: Vec<Vec<u8>> = backlog.iter().map(content).collect();
    assert_eq!(contents, vec![b"away 1".to_vec(), b"away 2".to_vec(), b"away 3".to_vec()]);
}
