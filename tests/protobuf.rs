//! Signal's protobuf WebSocket framing (issue 20), driven by a client that
//! shares nothing with the server's codec (`common/pb.rs`): sends over
//! protobuf, envelopes to protobuf and JSON devices in both directions with
//! the two type numberings, acknowledgement and redelivery, `queue/empty`,
//! the refusal bodies, typing, receipts and stories.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/pb.rs"]
mod pb;
#[path = "common/pb_client.rs"]
mod pb_client;

use common::{Account, Server, Ws};
use messaging::{link_device, REGISTRATION_ID};
use pb::{Envelope, Request, Response};
use pb_client::{call_json, drain, receive_envelopes, receive_until, Arrival};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::protocol::base64;
use uuid::Uuid;

/// Content with bytes Base64 and JSON would both have to escape.
const CONTENT: &[u8] = b"\x00\x01bin\xff\xfe\"\\\n";

/// A send body with one message of `kind` for each of `devices` (id,
/// registration id).
fn body_of(kind: u64, devices: &[(u32, u32)], content: &[u8], timestamp: u64) -> Value {
    let messages: Vec<Value> = devices
        .iter()
        .map(|(device, registration)| {
            json!({"type": kind, "destinationDeviceId": device,
                   "destinationRegistrationId": registration, "content": base64::encode(content)})
        })
        .collect();
    json!({"messages": messages, "online": false, "urgent": true, "timestamp": timestamp})
}

/// `PUT /v1/messages/{destination}` over a protobuf socket.
fn pb_send(ws: &mut Ws, id: u64, destination: &Uuid, body: &Value) -> Response {
    call_json(ws, id, "PUT", &format!("/v1/messages/{destination}"), body)
}

/// A protobuf socket for `account` with its backlog drained.
fn connected(server: &Server, account: &Account) -> Ws {
    let mut ws = pb_client::connect(server, account, &[]);
    assert_eq!(drain(&mut ws), vec![], "a fresh account's backlog is empty");
    ws
}

/// Waits until the server has applied `count` acknowledgements.
fn wait_for_acks(server: &Server, count: u64) {
    let acked = || server.metric("messages_acked_total") >= count;
    common::wait_until("acknowledgements applied", Duration::from_secs(10), acked);
}

/// Registers an account any sealed sender may write to.
fn register_unrestricted(server: &Server) -> Account {
    let password = format!("pw-{}", Uuid::new_v4());
    let body = json!({"password": password, "registrationId": REGISTRATION_ID,
                      "unrestrictedUnidentifiedAccess": true});
    let (status, answer) = server.request("PUT", "/v1/accounts", None, body.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    Account { uuid: answer["uuid"].as_str().unwrap().parse().unwrap(), device_id: 1, password }
}

fn assert_identified_envelope(envelope: &Envelope, sender: &Account, recipient: &Account) {
    assert_eq!(envelope.source_service_id.as_deref(), Some(&sender.uuid.as_bytes()[..]));
    assert_eq!(envelope.source_device, Some(u64::from(sender.device_id)));
    assert_eq!(envelope.destination_service_id.as_deref(), Some(&recipient.uuid.as_bytes()[..]));
    assert_eq!(envelope.server_guid.as_ref().map(Vec::len), Some(16), "16-byte server_guid");
    assert!(envelope.server_timestamp.is_some_and(|ms| ms > 0), "{envelope:?}");
    for retired in [2, 9, 11, 13, 15] {
        assert!(!envelope.field_numbers.contains(&retired), "retired field {retired} written");
    }
}

#[test]
fn a_send_over_protobuf_reaches_a_protobuf_device_with_every_field() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let mut sender_ws = connected(&server, &sender);
    let mut recipient_ws = connected(&server, &recipient);
    let body = body_of(pb::CIPHERTEXT, &[(1, REGISTRATION_ID)], CONTENT, 1234);
    let response = pb_send(&mut sender_ws, 1, &recipient.uuid, &body);
    assert_eq!((response.id, response.status), (Some(1), Some(200)));
    assert_eq!(response.json(), json!({"needsSync": false}));
    let envelope = receive_envelopes(&mut recipient_ws, 1).remove(0);
    assert_eq!(envelope.kind, Some(pb::CIPHERTEXT));
    assert_eq!(envelope.content.as_deref(), Some(CONTENT), "raw content bytes, no Base64");
    assert_eq!(envelope.client_timestamp, Some(1234));
    assert!(envelope.is_urgent());
    assert_ne!(envelope.story, Some(true));
    assert_identified_envelope(&envelope, &sender, &recipient);
}

#[test]
fn json_sends_reach_a_protobuf_device_in_signal_numbering() {
    let server = Server::start();
    let sender = server.register();
    let recipient = register_unrestricted(&server);
    // Spec types 1, 3 and 6 (plaintext) over HTTP, identified.
    for (index, kind) in [1u64, 3, 6].into_iter().enumerate() {
        let body = body_of(kind, &[(1, REGISTRATION_ID)], CONTENT, 10 + index as u64);
        let (status, answer) = messaging::send(
            &server,
            Some(&sender),
            &recipient.uuid,
            body.to_string().as_bytes(),
            &[],
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
    // Sealed sender (spec 7), no credentials.
    let sealed = body_of(7, &[(1, REGISTRATION_ID)], b"sealed", 13).to_string();
    let key = base64::encode(&[9u8; 16]);
    let headers = [("Unidentified-Access-Key", key.as_str())];
    let (status, answer) =
        messaging::send(&server, None, &recipient.uuid, sealed.as_bytes(), &headers);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    // Spec 6 over a JSON WebSocket.
    let mut json_ws = server.connect(&sender).unwrap();
    let body = body_of(6, &[(1, REGISTRATION_ID)], CONTENT, 14).to_string();
    let path = format!("/v1/messages/{}", recipient.uuid);
    let response = common::ws_call(&mut json_ws, 1, "PUT", &path, Some(body.as_bytes()));
    assert_eq!(response.status, 200);

    let mut ws = pb_client::connect(&server, &recipient, &[]);
    let backlog = pb_client::envelopes(&drain(&mut ws));
    let kinds: Vec<Option<u64>> = backlog.iter().map(|envelope| envelope.kind).collect();
    let signal = [pb::CIPHERTEXT, pb::PREKEY_BUNDLE, pb::PLAINTEXT_CONTENT];
    let expected: Vec<Option<u64>> = signal
        .into_iter()
        .chain([pb::UNIDENTIFIED_SENDER, pb::PLAINTEXT_CONTENT])
        .map(Some)
        .collect();
    assert_eq!(kinds, expected);
    for envelope in backlog.iter().take(3).chain(backlog.get(4)) {
        assert_eq!(envelope.content.as_deref(), Some(CONTENT));
        assert_identified_envelope(envelope, &sender, &recipient);
    }
    let sealed = &backlog[3];
    assert_eq!(sealed.content.as_deref(), Some(&b"sealed"[..]));
    assert_eq!((sealed.source_service_id.as_ref(), sealed.source_device), (None, None));
    assert_eq!(sealed.client_timestamp, Some(13));
}

#[test]
fn protobuf_sends_reach_a_json_device_in_spec_numbering() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let mut sender_ws = connected(&server, &sender);
    // Signal's 1, 3, 6 (sealed), 8 (plaintext) are the spec's 1, 3, 7, 6.
    for (index, kind) in [1u64, 3, 6, 8].into_iter().enumerate() {
        let body = body_of(kind, &[(1, REGISTRATION_ID)], CONTENT, 20 + index as u64);
        let response = pb_send(&mut sender_ws, index as u64 + 1, &recipient.uuid, &body);
        assert_eq!(response.status, Some(200), "Signal type {kind}: {:?}", response.body);
    }
    for kind in [0u64, 2, 4, 5, 7, 9] {
        let body = body_of(kind, &[(1, REGISTRATION_ID)], CONTENT, 1);
        let response = pb_send(&mut sender_ws, 100 + kind, &recipient.uuid, &body);
        assert_eq!(response.status, Some(400), "Signal type {kind} may not be sent");
    }
    let mut json_ws = server.connect(&recipient).unwrap();
    let backlog = messaging::drain_backlog(&mut json_ws);
    let kinds: Vec<&Value> = backlog.iter().map(|envelope| &envelope["type"]).collect();
    assert_eq!(kinds, [&json!(1), &json!(3), &json!(7), &json!(6)]);
    for (index, envelope) in backlog.iter().enumerate() {
        assert_eq!(messaging::content(envelope), CONTENT);
        assert_eq!(envelope["timestamp"], 20 + index as u64);
        assert_eq!(envelope["sourceUuid"], sender.uuid.to_string());
        assert_eq!(envelope["destinationUuid"], recipient.uuid.to_string());
    }
}

#[test]
fn any_2xx_acknowledges_and_refused_or_unanswered_envelopes_are_redelivered() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    for timestamp in 1..=4 {
        messaging::send_one(&server, &sender, &recipient, CONTENT, timestamp);
    }
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    let mut guids = Vec::new();
    for status in [204, 200, 500, 0] {
        let request = pb_client::next_request(&mut ws);
        if status != 0 {
            pb_client::respond(&mut ws, request.id.unwrap(), status);
        }
        match pb_client::arrival_of(request) {
            Arrival::Envelope(envelope) => guids.push(envelope.server_guid.unwrap()),
            other => panic!("expected an envelope, got {other:?}"),
        }
    }
    drop(ws);
    wait_for_acks(&server, 2);
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    let again = pb_client::envelopes(&drain(&mut ws));
    let again: Vec<Vec<u8>> = again.into_iter().map(|e| e.server_guid.unwrap()).collect();
    assert_eq!(again, guids[2..], "the refused and the unanswered envelope, nothing else");
    drop(ws);
    wait_for_acks(&server, 4);
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    assert_eq!(drain(&mut ws), vec![], "acknowledged on the second connection");
}

#[test]
fn queue_empty_comes_once_per_connection_right_after_the_backlog() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    messaging::send_one(&server, &sender, &recipient, b"one", 1);
    messaging::send_one(&server, &sender, &recipient, b"two", 2);
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    let arrivals = receive_until(&mut ws, 200, |a| a.last() == Some(&Arrival::QueueEmpty));
    assert_eq!(arrivals.len(), 3, "two envelopes, then queue/empty: {arrivals:?}");
    messaging::send_one(&server, &sender, &recipient, b"three", 3);
    messaging::send_one(&server, &sender, &recipient, b"four", 4);
    let live = receive_until(&mut ws, 200, |a| a.len() == 2);
    let stamps: Vec<_> = pb_client::envelopes(&live).iter().map(|e| e.client_timestamp).collect();
    assert_eq!(stamps, [Some(3), Some(4)], "live envelopes only, no second queue/empty");
    let (response, seen) =
        pb_client::call_seeing(&mut ws, Request::new(9, "GET", "/v1/keepalive", None));
    assert_eq!((response.status, seen), (Some(200), vec![]));
    drop(ws);
    wait_for_acks(&server, 4);
    let mut ws = pb_client::connect(&server, &recipient, &[]);
    assert_eq!(drain(&mut ws), vec![], "a new connection gets its own queue/empty");
}

#[test]
fn send_refusals_answer_with_the_json_bodies_of_the_json_framing() {
    let server = Server::start();
    let sender = server.register();
    let sender_linked = link_device(&server, &sender);
    let single = server.register();
    let pair = server.register();
    let pair_linked = link_device(&server, &pair);
    let mut ws = connected(&server, &sender);
    let cases = [
        (&single.uuid, vec![(1, REGISTRATION_ID), (2, REGISTRATION_ID)], 409),
        (&pair.uuid, vec![(1, REGISTRATION_ID)], 409),
        (&single.uuid, vec![(1, REGISTRATION_ID + 1)], 410),
    ];
    let expected = [
        json!({"missingDevices": [], "extraDevices": [2]}),
        json!({"missingDevices": [pair_linked.device_id], "extraDevices": []}),
        json!({"staleDevices": [1]}),
    ];
    for (id, ((destination, devices, status), body)) in cases.iter().zip(expected).enumerate() {
        let send = body_of(pb::CIPHERTEXT, devices, b"x", 1);
        let response = pb_send(&mut ws, id as u64 + 1, destination, &send);
        assert_eq!((response.status, response.json()), (Some(*status), body));
    }
    let send = body_of(pb::CIPHERTEXT, &[(1, REGISTRATION_ID)], b"x", 1);
    let response = pb_send(&mut ws, 10, &Uuid::new_v4(), &send);
    assert_eq!(response.status, Some(404), "unknown account");
    let response = pb_send(&mut ws, 11, &single.uuid, &send);
    assert_eq!((response.status, response.json()), (Some(200), json!({"needsSync": true})));
    assert_eq!(sender_linked.device_id, 2);
}
