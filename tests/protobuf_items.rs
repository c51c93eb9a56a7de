//! Signal's protobuf framing (issue 20) beyond envelopes, on the test's own
//! codec (`common/pb.rs`): request ids (0, none), keepalive, typing and
//! `READ` receipts as JSON requests, the server's `DELIVERY` receipts as
//! `SERVER_DELIVERY_RECEIPT` envelopes, and stories only for devices that
//! ask for them with `X-Signal-Receive-Stories`.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/pb.rs"]
mod pb;
#[path = "common/pb_client.rs"]
mod pb_client;

use common::{Account, Server, Ws};
use messaging::link_device;
use pb::{Request, WsMessage};
use pb_client::{call, call_json, drain, receive_until, Arrival};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::protocol::frame::Frame;

/// A protobuf socket for `account` (with `headers`) and its backlog drained.
fn connected(server: &Server, account: &Account, headers: &[(&str, &str)]) -> (Ws, Vec<Arrival>) {
    let mut ws = pb_client::connect(server, account, headers);
    let backlog = drain(&mut ws);
    (ws, backlog)
}

fn wait_for_metric(server: &Server, name: &str, count: u64) {
    let reached = || server.metric(name) >= count;
    common::wait_until(name, Duration::from_secs(10), reached);
}

#[test]
fn keepalive_answers_id_zero_is_answered_and_a_request_without_id_is_not() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let (mut ws, _) = connected(&server, &sender, &[]);
    let (mut recipient_ws, _) = connected(&server, &recipient, &[]);
    let response = call(&mut ws, Request::new(7, "GET", "/v1/keepalive", None));
    assert_eq!((response.id, response.status), (Some(7), Some(200)));
    let response = call(&mut ws, Request::new(0, "GET", "/v1/keepalive", None));
    assert_eq!((response.id, response.status), (Some(0), Some(200)), "id 0 is an id");
    // Without an id: executed (the typing indicator arrives), never answered.
    let typing = json!({"action": "STARTED", "timestamp": 55}).to_string();
    let path = format!("/v1/typing/{}", recipient.uuid);
    let mut request = Request::new(0, "PUT", &path, Some(typing.as_bytes()));
    request.id = None;
    pb_client::send(&mut ws, &WsMessage::request(request));
    let arrived = receive_until(&mut recipient_ws, 200, |a| !a.is_empty());
    assert!(matches!(&arrived[0], Arrival::Typing(t) if t["timestamp"] == 55), "{arrived:?}");
    // The next responses answer the next requests: none for the id-less one.
    for id in [8, 9] {
        let response = call(&mut ws, Request::new(id, "GET", "/v1/keepalive", None));
        assert_eq!((response.id, response.status), (Some(id), Some(200)));
    }
}

#[test]
fn typing_and_read_receipts_reach_a_protobuf_device_as_json_requests() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let (mut sender_ws, _) = connected(&server, &sender, &[]);
    let (mut recipient_ws, _) = connected(&server, &recipient, &[]);
    let typing = json!({"action": "STARTED", "timestamp": 1234, "groupId": "AAEC"});
    let path = format!("/v1/typing/{}", recipient.uuid);
    assert_eq!(call_json(&mut sender_ws, 1, "PUT", &path, &typing).status, Some(200));
    let receipt = json!({"type": "READ", "timestamps": [7, 8]});
    let path = format!("/v1/receipts/{}", recipient.uuid);
    assert_eq!(call_json(&mut sender_ws, 2, "PUT", &path, &receipt).status, Some(200));
    let arrivals = receive_until(&mut recipient_ws, 200, |a| a.len() == 2);
    let source = json!({"sourceUuid": sender.uuid.to_string(), "sourceDevice": 1});
    let with_source = |mut item: Value| {
        item.as_object_mut().unwrap().extend(source.as_object().unwrap().clone());
        item
    };
    assert_eq!(
        arrivals,
        vec![Arrival::Typing(with_source(typing)), Arrival::Receipt(with_source(receipt))]
    );
}

/// The client timestamps of `count` server delivery receipts arriving on
/// `ws`, each checked to name `acknowledger`.
fn delivery_receipt_stamps(ws: &mut Ws, count: usize, acknowledger: &Account) -> Vec<u64> {
    let receipts = pb_client::receive_envelopes(ws, count);
    let mut stamps = Vec::new();
    for receipt in receipts {
        assert_eq!(receipt.kind, Some(pb::SERVER_DELIVERY_RECEIPT), "{receipt:?}");
        assert_eq!(receipt.source_service_id.as_deref(), Some(&acknowledger.uuid.as_bytes()[..]));
        assert_eq!(receipt.source_device, Some(u64::from(acknowledger.device_id)));
        assert_eq!(receipt.urgent, Some(false), "receipts are not urgent: {receipt:?}");
        stamps.push(receipt.client_timestamp.expect("the acknowledged envelope's timestamp"));
    }
    stamps.sort_unstable();
    stamps
}

#[test]
fn acknowledged_envelopes_owe_server_delivery_receipt_envelopes() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let sender_json = link_device(&server, &sender);
    let recipient = server.register_on_shard(1, 2);
    let recipient_linked = link_device(&server, &recipient);
    let (mut sender_ws, _) = connected(&server, &sender, &[]);
    for timestamp in 100..103 {
        let devices = [(1, messaging::REGISTRATION_ID), (2, messaging::REGISTRATION_ID)];
        let body = messaging::send_body(&devices, b"hi", false, timestamp);
        assert_eq!(messaging::send(&server, Some(&sender), &recipient.uuid, &body, &[]).0, 200);
    }
    // The recipient's protobuf device acknowledges (any 2xx) ...
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    let arrivals = receive_until(&mut ws, 202, |a| a.last() == Some(&Arrival::QueueEmpty));
    assert_eq!(pb_client::envelopes(&arrivals).len(), 3);
    assert_eq!(delivery_receipt_stamps(&mut sender_ws, 3, &recipient), [100, 101, 102]);
    // ... and so does its JSON device: one receipt envelope per message.
    let mut json_ws = server.connect(&recipient_linked).unwrap();
    assert_eq!(messaging::drain_backlog(&mut json_ws).len(), 3);
    assert_eq!(delivery_receipt_stamps(&mut sender_ws, 3, &recipient_linked), [100, 101, 102]);
    // The sender's JSON device gets them as `PUT /api/v1/receipt` JSON.
    wait_for_metric(&server, "delivery_receipts_total", 2);
    let mut json_ws = server.connect(&sender_json).unwrap();
    let arrivals = messaging::receive_until(&mut json_ws, 200, |a| {
        a.last() == Some(&messaging::Arrival::QueueEmpty)
    });
    let mut from_devices: Vec<(u64, u64)> = Vec::new();
    for receipt in messaging::receipts(&arrivals) {
        assert_eq!(receipt["type"], "DELIVERY");
        assert_eq!(receipt["sourceUuid"], recipient.uuid.to_string());
        let device = receipt["sourceDevice"].as_u64().unwrap();
        let stamps = receipt["timestamps"].as_array().unwrap();
        from_devices.extend(stamps.iter().map(|stamp| (device, stamp.as_u64().unwrap())));
    }
    from_devices.sort_unstable();
    let expected: Vec<(u64, u64)> =
        [1, 2].iter().flat_map(|&d| (100..103).map(move |t| (d, t))).collect();
    assert_eq!(from_devices, expected);
}

/// The paths of the next `count` requests on a JSON socket (acked 200).
fn json_paths(ws: &mut Ws, count: usize) -> Vec<String> {
    let mut paths = Vec::new();
    while paths.len() < count {
        match common::next_frame(ws) {
            Frame::Request(request) => {
                common::ack(ws, request.id, 200);
                paths.push(request.path);
            }
            Frame::Response(response) => panic!("unexpected response {response:?}"),
        }
    }
    paths
}

#[test]
fn stories_reach_only_protobuf_devices_that_ask_for_them() {
    let server = Server::start();
    let author = server.register();
    let asking = server.register();
    let silent = server.register();
    let refusing = server.register();
    let json_device = server.register();
    let recipients: Vec<String> =
        [&asking, &silent, &refusing, &json_device].iter().map(|a| a.uuid.to_string()).collect();
    let story = json!({"recipients": recipients, "content": "c3Rvcnk=", "timestamp": 99,
                       "allowsReplies": true});
    let (status, body) =
        server.request("PUT", "/v1/stories", Some(&author), story.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let (_ws, backlog) = connected(&server, &asking, &[("X-Signal-Receive-Stories", "true")]);
    let envelopes = pb_client::envelopes(&backlog);
    assert_eq!(envelopes.len(), 1, "{backlog:?}");
    assert_eq!(envelopes[0].story, Some(true));
    assert_eq!(envelopes[0].content.as_deref(), Some(&b"story"[..]));
    assert_eq!(envelopes[0].client_timestamp, Some(99));
    assert_eq!(envelopes[0].source_service_id.as_deref(), Some(&author.uuid.as_bytes()[..]));
    for (device, headers) in
        [(&silent, vec![]), (&refusing, vec![("X-Signal-Receive-Stories", "false")])]
    {
        let (_ws, backlog) = connected(&server, device, &headers);
        assert_eq!(backlog, vec![], "no story without asking ({headers:?})");
    }
    let mut ws = server.connect(&json_device).unwrap();
    assert_eq!(json_paths(&mut ws, 2), ["/api/v1/story", "/api/v1/queue/empty"]);
    drop(ws);
    // Acknowledged for the devices that did not ask: gone even when they ask now.
    wait_for_metric(&server, "messages_acked_total", 4);
    for device in [&silent, &refusing] {
        let (_ws, backlog) = connected(&server, device, &[("X-Signal-Receive-Stories", "true")]);
        assert_eq!(backlog, vec![], "the story was acknowledged unseen");
    }
}
