//! Typing indicators, receipts and stories (DESIGN.md sections 2 to 4):
//! typing goes live only; receipts and stories are stored and delivered in
//! order with envelopes; every route refuses hostile input with its exact
//! status and the server keeps serving.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/schema.rs"]
mod schema;

use common::{ack, error_body, next_frame, Account, Server, Ws};
use messaging::{link_device, send_one};
use serde_json::{json, Value};
use switchboard::protocol::frame::Frame;
use uuid::Uuid;

/// The next server request on `ws` (path, JSON body), answered with `status`.
fn next_request(ws: &mut Ws, status: u16) -> (String, Option<Value>) {
    match next_frame(ws) {
        Frame::Request(request) => {
            ack(ws, request.id, status);
            let body = request.body.map(|body| serde_json::from_slice(&body).unwrap());
            (request.path, body)
        }
        Frame::Response(response) => panic!("unexpected response {response:?}"),
    }
}

/// Connects `account` and reads its backlog up to `queue/empty` (acking 200).
fn connect_and_drain(server: &Server, account: &Account) -> (Ws, Vec<(String, Value)>) {
    let mut ws = server.connect(account).unwrap();
    let mut items = Vec::new();
    loop {
        match next_request(&mut ws, 200) {
            (path, _) if path == "/api/v1/queue/empty" => return (ws, items),
            (path, body) => items.push((path, body.expect("queued items have bodies"))),
        }
    }
}

fn put_json(server: &Server, path: &str, caller: Option<&Account>, body: &Value) -> (u16, Vec<u8>) {
    server.request("PUT", path, caller, &serde_json::to_vec(body).unwrap())
}

#[test]
fn typing_reaches_connected_devices_across_shards_and_is_never_stored() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let (mut ws, backlog) = connect_and_drain(&server, &recipient);
    assert!(backlog.is_empty());
    let typing = json!({"action": "STARTED", "timestamp": 1234, "groupId": "AAEC"});
    let path = format!("/v1/typing/{}", recipient.uuid);
    let (status, body) = put_json(&server, &path, Some(&sender), &typing);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (path_seen, event) = next_request(&mut ws, 200);
    assert_eq!(path_seen, "/api/v1/typing");
    schema::assert_matches("TypingEvent", event.as_ref().unwrap());
    assert_eq!(
        event.unwrap(),
        json!({"action": "STARTED", "timestamp": 1234, "groupId": "AAEC",
               "sourceUuid": sender.uuid.to_string(), "sourceDevice": 1})
    );
    drop(ws);
    // Offline: still 200, and nothing waits for the next connection.
    let stopped = json!({"action": "STOPPED", "timestamp": 1235});
    assert_eq!(put_json(&server, &path, Some(&sender), &stopped).0, 200);
    let (_ws, backlog) = connect_and_drain(&server, &recipient);
    assert!(backlog.is_empty(), "typing was stored: {backlog:?}");
    let unknown = format!("/v1/typing/{}", Uuid::new_v4());
    let (status, body) = put_json(&server, &unknown, Some(&sender), &stopped);
    assert_eq!((status, error_body(&body).0), (404, 404));
}

#[test]
fn receipts_are_stored_in_order_with_envelopes_and_redelivered_until_acknowledged() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    send_one(&server, &sender, &recipient, b"first", 10);
    let receipt = json!({"type": "READ", "timestamps": [7, 8]});
    let path = format!("/v1/receipts/{}", recipient.uuid);
    let (status, body) = put_json(&server, &path, Some(&sender), &receipt);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    send_one(&server, &sender, &recipient, b"last", 11);

    // Refuse the receipt once: it stays queued, in its place.
    let mut ws = server.connect(&recipient).unwrap();
    assert_eq!(next_request(&mut ws, 200).0, "/api/v1/message");
    assert_eq!(next_request(&mut ws, 500).0, "/api/v1/receipt");
    assert_eq!(next_request(&mut ws, 200).0, "/api/v1/message");
    assert_eq!(next_request(&mut ws, 200).0, "/api/v1/queue/empty");
    drop(ws);
    // The two acknowledged envelopes' deletes land before the next read.
    let acked = || server.metric("messages_acked_total") >= 2;
    common::wait_until("the acks' deletes", std::time::Duration::from_secs(10), acked);
    let (_ws, backlog) = connect_and_drain(&server, &recipient);
    assert_eq!(backlog.len(), 1, "only the refused receipt is left: {backlog:?}");
    assert_eq!(backlog[0].0, "/api/v1/receipt");
    schema::assert_matches("Receipt", &backlog[0].1);
    assert_eq!(
        backlog[0].1,
        json!({"type": "READ", "timestamps": [7, 8],
               "sourceUuid": sender.uuid.to_string(), "sourceDevice": 1})
    );
}

#[test]
fn stories_reach_every_device_of_each_recipient_and_unknown_ones_are_reported() {
    let server = Server::start();
    let author = server.register_on_shard(0, 2);
    let first = server.register_on_shard(1, 2);
    let first_linked = link_device(&server, &first);
    let second = server.register_on_shard(0, 2);
    let nobody = Uuid::new_v4();
    let story = json!({
        "recipients": [first.uuid.to_string(), nobody.to_string(), second.uuid.to_string()],
        "content": "c3Rvcnk=", "timestamp": 99, "allowsReplies": true,
    });
    let (status, body) = put_json(&server, "/v1/stories", Some(&author), &story);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, json!({"unknownRecipients": [nobody.to_string()]}));
    let mut guids = Vec::new();
    for device in [&first, &first_linked, &second] {
        let (_ws, backlog) = connect_and_drain(&server, device);
        assert_eq!(backlog.len(), 1, "{backlog:?}");
        let (path, copy) = &backlog[0];
        assert_eq!(path, "/api/v1/story");
        schema::assert_matches("StorySend", copy);
        assert_eq!(copy["content"], "c3Rvcnk=");
        assert_eq!(copy["timestamp"], 99);
        assert_eq!(copy["allowsReplies"], true);
        assert_eq!(copy["story"], true);
        assert_eq!(copy["urgent"], false);
        assert_eq!(copy["sourceUuid"], author.uuid.to_string());
        guids.push(Uuid::parse_str(copy["serverGuid"].as_str().unwrap()).unwrap());
    }
    guids.sort();
    guids.dedup();
    assert_eq!(guids.len(), 3, "each copy has its own serverGuid");
}

#[test]
fn the_routes_work_framed_over_the_websocket() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let (mut sender_ws, _) = connect_and_drain(&server, &sender);
    let (mut recipient_ws, _) = connect_and_drain(&server, &recipient);
    let typing = serde_json::to_vec(&json!({"action": "STARTED", "timestamp": 1})).unwrap();
    let path = format!("/v1/typing/{}", recipient.uuid);
    let response = common::ws_call(&mut sender_ws, 1, "PUT", &path, Some(&typing));
    assert_eq!(response.status, 200);
    assert_eq!(next_request(&mut recipient_ws, 200).0, "/api/v1/typing");
    let receipt = serde_json::to_vec(&json!({"type": "DELIVERY", "timestamps": [1]})).unwrap();
    let path = format!("/v1/receipts/{}", recipient.uuid);
    let response = common::ws_call(&mut sender_ws, 2, "PUT", &path, Some(&receipt));
    assert_eq!(response.status, 200);
    let (path_seen, body) = next_request(&mut recipient_ws, 200);
    assert_eq!(path_seen, "/api/v1/receipt");
    assert_eq!(body.unwrap()["type"], "DELIVERY");
}

#[test]
fn hostile_bodies_and_paths_are_refused_with_their_status_and_the_server_serves_on() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let typing = format!("/v1/typing/{}", recipient.uuid);
    let receipts = format!("/v1/receipts/{}", recipient.uuid);
    let too_many: Vec<u64> = (0..101).collect();
    // (method, path, caller, body, expected status)
    type Case<'a> = (&'a str, String, Option<&'a Account>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("PUT", typing.clone(), None, br#"{"action":"STARTED","timestamp":1}"#.to_vec(), 401),
        ("PUT", typing.clone(), Some(&sender), b"{not json".to_vec(), 400),
        ("PUT", typing.clone(), Some(&sender), b"".to_vec(), 400),
        (
            "PUT",
            typing.clone(),
            Some(&sender),
            br#"{"action":"WAVING","timestamp":1}"#.to_vec(),
            400,
        ),
        ("PUT", typing.clone(), Some(&sender), br#"{"action":"STARTED"}"#.to_vec(), 400),
        (
            "PUT",
            typing.clone(),
            Some(&sender),
            br#"{"action":"STARTED","timestamp":1,"x":1}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            typing.clone(),
            Some(&sender),
            br#"{"action":"STARTED","timestamp":1,"groupId":"!!"}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            typing.clone(),
            Some(&sender),
            br#"{"action":"STARTED","timestamp":-1}"#.to_vec(),
            400,
        ),
        ("GET", typing.clone(), Some(&sender), vec![], 405),
        ("PUT", "/v1/typing/not-a-uuid".into(), Some(&sender), b"{}".to_vec(), 404),
        ("PUT", receipts.clone(), None, br#"{"type":"READ","timestamps":[1]}"#.to_vec(), 401),
        (
            "PUT",
            receipts.clone(),
            Some(&sender),
            br#"{"type":"SEEN","timestamps":[1]}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            receipts.clone(),
            Some(&sender),
            br#"{"type":"READ","timestamps":[]}"#.to_vec(),
            400,
        ),
        ("PUT", receipts.clone(), Some(&sender), br#"{"type":"READ"}"#.to_vec(), 400),
        (
            "PUT",
            receipts.clone(),
            Some(&sender),
            br#"{"type":"READ","timestamps":["a"]}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            receipts.clone(),
            Some(&sender),
            serde_json::to_vec(&json!({"type": "READ", "timestamps": too_many})).unwrap(),
            400,
        ),
        ("DELETE", receipts.clone(), Some(&sender), vec![], 405),
        (
            "PUT",
            format!("/v1/receipts/{}", Uuid::new_v4()),
            Some(&sender),
            br#"{"type":"READ","timestamps":[1]}"#.to_vec(),
            404,
        ),
        ("PUT", "/v1/receipts/zzz".into(), Some(&sender), b"{}".to_vec(), 404),
        (
            "PUT",
            "/v1/stories".into(),
            None,
            br#"{"recipients":[],"content":"AA==","timestamp":1}"#.to_vec(),
            401,
        ),
        (
            "PUT",
            "/v1/stories".into(),
            Some(&sender),
            br#"{"recipients":[],"content":"AA==","timestamp":1}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            "/v1/stories".into(),
            Some(&sender),
            br#"{"recipients":["x"],"content":"AA==","timestamp":1}"#.to_vec(),
            400,
        ),
        (
            "PUT",
            "/v1/stories".into(),
            Some(&sender),
            format!(r#"{{"recipients":["{}"],"content":"!!","timestamp":1}}"#, recipient.uuid)
                .into_bytes(),
            400,
        ),
        (
            "PUT",
            "/v1/stories".into(),
            Some(&sender),
            format!(r#"{{"recipients":["{}"],"timestamp":1}}"#, recipient.uuid).into_bytes(),
            400,
        ),
        (
            "PUT",
            "/v1/stories".into(),
            Some(&sender),
            format!(
                r#"{{"recipients":["{}"],"content":"AA==","timestamp":1,"extra":0}}"#,
                recipient.uuid
            )
            .into_bytes(),
            400,
        ),
        ("POST", "/v1/stories".into(), Some(&sender), vec![], 405),
    ];
    for (method, path, caller, body, expected) in cases {
        let (status, response) = server.request(method, &path, caller, &body);
        assert_eq!(status, expected, "{method} {path} {}", String::from_utf8_lossy(&body));
        if expected != 405 && expected != 404 || !response.is_empty() {
            assert_eq!(error_body(&response).0, u64::from(expected), "{method} {path}");
        }
    }
    let fine = json!({"action": "STOPPED", "timestamp": 1});
    assert_eq!(put_json(&server, &typing, Some(&sender), &fine).0, 200);
    server.assert_serving();
}
