//! The server's own `DELIVERY` receipts (issue 10, point 3): when a device
//! acknowledges envelopes from an identified sender, the sender's devices
//! get a stored `PUT /api/v1/receipt` `{"type":"DELIVERY","timestamps",
//! "sourceUuid","sourceDevice"}` naming the acknowledging device; one burst
//! of acknowledgements makes one receipt per sender. Sealed-sender,
//! online-only, refused and self-sent envelopes owe none; a REST delete
//! owes one like a WebSocket ack does.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/schema.rs"]
mod schema;

use common::{next_frame, Account, Server, Ws};
use messaging::{drain_backlog, receipts, receive_until, send, send_body, send_one, Arrival};
use messaging::{link_device, REGISTRATION_ID};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::protocol::frame::{self, Frame, WsResponse};
use tungstenite::Message;

/// Connects `account` and returns the receipts of its backlog (acking all).
fn backlog_receipts(server: &Server, account: &Account) -> Vec<Value> {
    let mut ws = server.connect(account).unwrap();
    let arrivals = receive_until(&mut ws, 200, |a| a.last() == Some(&Arrival::QueueEmpty));
    receipts(&arrivals)
}

/// Reads `count` envelope requests without answering, then answers them all
/// with `status` in one write (one burst the server reads in one turn).
fn ack_in_one_burst(ws: &mut Ws, count: usize, status: u16) {
    let mut ids = Vec::new();
    while ids.len() < count {
        match next_frame(ws) {
            Frame::Request(request) if request.path == "/api/v1/message" => ids.push(request.id),
            Frame::Request(request) => common::ack(ws, request.id, 200),
            Frame::Response(response) => panic!("unexpected response {response:?}"),
        }
    }
    for id in ids {
        let response = WsResponse { id, status, message: None, body: None, headers: vec![] };
        ws.write(Message::text(frame::encode_response(&response))).unwrap();
    }
    ws.flush().unwrap();
}

/// Waits until the server has sent `count` delivery receipts (they are
/// sent in a task after the acks are read).
fn wait_for_receipts(server: &Server, count: u64) {
    let sent = || server.metric("delivery_receipts_total") >= count;
    common::wait_until("delivery receipts", Duration::from_secs(10), sent);
}

#[test]
fn a_burst_of_acks_makes_one_receipt_per_sender_on_every_sender_device() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let sender_linked = link_device(&server, &sender);
    let recipient = server.register_on_shard(1, 2);
    for timestamp in 100..120 {
        send_one(&server, &sender, &recipient, b"hi", timestamp);
    }
    let mut ws = server.connect(&recipient).unwrap();
    ack_in_one_burst(&mut ws, 20, 200);
    wait_for_receipts(&server, 1);
    let timestamps: Vec<u64> = (100..120).collect();
    let expected = json!({"type": "DELIVERY", "timestamps": timestamps,
        "sourceUuid": recipient.uuid.to_string(), "sourceDevice": 1});
    for device in [&sender, &sender_linked] {
        let got = backlog_receipts(&server, device);
        assert_eq!(got, vec![expected.clone()], "device {}", device.device_id);
        schema::assert_matches("Receipt", &got[0]);
    }
    assert_eq!(server.metric("delivery_receipts_total"), 1);
    assert_eq!(server.metric("delivery_receipts_failed_total"), 0);
}

#[test]
fn receipts_name_the_acknowledging_device_and_group_by_sender() {
    let server = Server::start();
    let (alice, bob) = (server.register(), server.register());
    let recipient = server.register();
    let second = link_device(&server, &recipient);
    let both = send_body(&[(1, REGISTRATION_ID), (2, REGISTRATION_ID)], b"x", false, 7);
    assert_eq!(send(&server, Some(&alice), &recipient.uuid, &both, &[]).0, 200);
    let both = send_body(&[(1, REGISTRATION_ID), (2, REGISTRATION_ID)], b"y", false, 8);
    assert_eq!(send(&server, Some(&bob), &recipient.uuid, &both, &[]).0, 200);
    let mut ws = server.connect(&second).unwrap();
    ack_in_one_burst(&mut ws, 2, 200);
    wait_for_receipts(&server, 2);
    let from_second = |timestamp: u64| {
        json!({"type": "DELIVERY", "timestamps": [timestamp],
               "sourceUuid": recipient.uuid.to_string(), "sourceDevice": 2})
    };
    assert_eq!(backlog_receipts(&server, &alice), vec![from_second(7)]);
    assert_eq!(backlog_receipts(&server, &bob), vec![from_second(8)]);
}

#[test]
fn online_refused_and_self_sent_envelopes_owe_no_receipt() {
    let server = Server::start();
    let sender = server.register();
    let linked = link_device(&server, &sender);
    let recipient = server.register();
    let mut ws = server.connect(&recipient).unwrap();
    drain_backlog(&mut ws);
    // Online-only: delivered live, never stored, no receipt.
    let online = send_body(&[(1, REGISTRATION_ID)], b"live", true, 1);
    assert_eq!(send(&server, Some(&sender), &recipient.uuid, &online, &[]).0, 200);
    // Refused by the device: stays queued, no receipt.
    send_one(&server, &sender, &recipient, b"refused", 2);
    ack_in_one_burst(&mut ws, 2, 500);
    drop(ws);
    // Sent to one's own other device.
    let sync = send_body(&[(2, REGISTRATION_ID)], b"sync", false, 3);
    assert_eq!(send(&server, Some(&sender), &sender.uuid, &sync, &[]).0, 200);
    let mut linked_ws = server.connect(&linked).unwrap();
    assert_eq!(drain_backlog(&mut linked_ws).len(), 1);
    drop(linked_ws);
    // Acknowledging the refused envelope on its redelivery owes one receipt.
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1, "the refused envelope was redelivered");
    wait_for_receipts(&server, 1);
    let got = backlog_receipts(&server, &sender);
    assert_eq!(got.len(), 1, "only the finally acknowledged envelope: {got:?}");
    assert_eq!(got[0]["timestamps"], json!([2]));
    assert_eq!(server.metric("delivery_receipts_total"), 1);
}

#[test]
fn sealed_sender_envelopes_owe_no_receipt() {
    let server = Server::start();
    let sender = server.register();
    let key = switchboard::protocol::base64::encode(&[7u8; 16]);
    let body = format!(
        r#"{{"password":"pw-sealed","registrationId":{REGISTRATION_ID},"unidentifiedAccessKey":"{key}"}}"#
    );
    let (status, answer) = server.request("PUT", "/v1/accounts", None, body.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let uuid: Value = serde_json::from_slice(&answer).unwrap();
    let recipient = Account {
        uuid: uuid["uuid"].as_str().unwrap().parse().unwrap(),
        device_id: 1,
        password: "pw-sealed".into(),
    };
    let sealed = send_body(&[(1, REGISTRATION_ID)], b"sealed", false, 5);
    let headers = [("Unidentified-Access-Key", key.as_str())];
    let (status, answer) = send(&server, None, &recipient.uuid, &sealed, &headers);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    send_one(&server, &sender, &recipient, b"identified", 6);
    let mut ws = server.connect(&recipient).unwrap();
    assert_eq!(drain_backlog(&mut ws).len(), 2);
    wait_for_receipts(&server, 1);
    let got = backlog_receipts(&server, &sender);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["timestamps"], json!([6]), "the sealed envelope owes none");
}

#[test]
fn a_rest_delete_sends_the_receipt_too() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    send_one(&server, &sender, &recipient, b"rest", 42);
    let (status, page) = server.request("GET", "/v1/messages", Some(&recipient), b"");
    assert_eq!(status, 200);
    let page: Value = serde_json::from_slice(&page).unwrap();
    let guid = page["messages"][0]["serverGuid"].as_str().unwrap().to_string();
    let path = format!("/v1/messages/uuid/{guid}");
    assert_eq!(server.request("DELETE", &path, Some(&recipient), b"").0, 204);
    assert_eq!(server.request("DELETE", &path, Some(&recipient), b"").0, 204);
    wait_for_receipts(&server, 1);
    let got = backlog_receipts(&server, &sender);
    assert_eq!(got.len(), 1, "a repeated delete owes nothing more: {got:?}");
    assert_eq!(got[0]["timestamps"], json!([42]));
}
