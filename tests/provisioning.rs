//! The provisioning socket and device linking end to end (DESIGN.md
//! sections 2 and 3): address, provisioning message through the rings,
//! close after the 200, single use, timeout, the per-shard bound, and
//! hostile input to `PUT /v1/provisioning/{uuid}`.

mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/schema.rs"]
mod schema;

use common::{
    ack, connect_url, error_body, expect_close, next_frame, Account, Server, ServerOptions, Ws,
};
use messaging::{receive_envelopes, send, send_body, REGISTRATION_ID};
use serde_json::{json, Value};
use switchboard::protocol::base64;
use switchboard::protocol::frame::Frame;
use uuid::Uuid;

/// Opens a provisioning socket and reads its address (acking it).
fn open_provisioning(server: &Server) -> (Ws, Uuid) {
    let mut ws =
        connect_url(&format!("ws://{}/v1/websocket/provisioning/", server.addr())).unwrap();
    match next_frame(&mut ws) {
        Frame::Request(request) => {
            assert_eq!((request.verb.as_str(), request.path.as_str()), ("PUT", "/v1/address"));
            let body: Value = serde_json::from_slice(&request.body.unwrap()).unwrap();
            schema::assert_matches("ProvisioningUUIDPayload", &body);
            let address = Uuid::parse_str(body["uuid"].as_str().unwrap()).unwrap();
            assert_eq!(body.as_object().unwrap().len(), 1, "ProvisioningUUID has only uuid");
            ack(&mut ws, request.id, 200);
            (ws, address)
        }
        Frame::Response(response) => panic!("unexpected {response:?}"),
    }
}

/// `PUT /v1/provisioning/{address}` from `primary` to the server at `addr`.
fn provision(addr: &str, primary: &Account, address: &Uuid, message: &[u8]) -> (u16, Vec<u8>) {
    let body = serde_json::to_vec(&json!({"body": base64::encode(message)})).unwrap();
    let path = format!("/v1/provisioning/{address}");
    common::request_at(addr, "PUT", &path, Some(primary), &[], &body)
}

#[test]
fn a_new_device_links_through_the_provisioning_socket_and_then_receives_messages() {
    let server = Server::start();
    let (mut new_device, address) = open_provisioning(&server);
    // The primary sits on the other shard than the address: the message crosses the rings.
    let other_shard = 1 - switchboard::shard::owner(&address, 2);
    let primary = server.register_on_shard(other_shard, 2);
    let (status, body) =
        server.request("GET", "/v1/devices/provisioning/code", Some(&primary), b"");
    assert_eq!(status, 200);
    let code: Value = serde_json::from_slice(&body).unwrap();
    let code = code["verificationCode"].as_str().unwrap().to_string();

    let primary_call = {
        let (server_addr, primary, message) = (server.addr(), primary.clone(), code.clone());
        std::thread::spawn(move || provision(&server_addr, &primary, &address, message.as_bytes()))
    };
    let message = match next_frame(&mut new_device) {
        Frame::Request(request) => {
            assert_eq!((request.verb.as_str(), request.path.as_str()), ("PUT", "/v1/message"));
            ack(&mut new_device, request.id, 200);
            serde_json::from_slice::<Value>(&request.body.unwrap()).unwrap()
        }
        Frame::Response(response) => panic!("unexpected {response:?}"),
    };
    assert_eq!(message, json!({"body": base64::encode(code.as_bytes())}));
    schema::assert_matches("ProvisioningMessagePayload", &message);
    assert_eq!(expect_close(&mut new_device), Some(1000));
    assert_eq!(primary_call.join().unwrap().0, 204, "answered once handed over, as Signal");
    assert_eq!(provision(&server.addr(), &primary, &address, b"again").0, 404, "single use");

    // The new device links with the code it was sent, then both devices get mail.
    let password = "new-device-secret";
    let link = json!({"verificationCode": code, "password": password,
                      "registrationId": REGISTRATION_ID, "name": "new"});
    let (status, body) =
        server.request("PUT", "/v1/devices/link", None, &serde_json::to_vec(&link).unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let linked: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(linked["uuid"], primary.uuid.to_string());
    let device_id = linked["deviceId"].as_u64().unwrap() as u32;
    let linked = Account { uuid: primary.uuid, device_id, password: password.into() };
    let sender = server.register();
    let body = send_body(&[(1, REGISTRATION_ID), (device_id, REGISTRATION_ID)], b"hi", false, 5);
    assert_eq!(send(&server, Some(&sender), &primary.uuid, &body, &[]).0, 200);
    for device in [&primary, &linked] {
        let mut ws = server.connect(device).unwrap();
        let envelope = receive_envelopes(&mut ws, 1).remove(0);
        assert_eq!(envelope["sourceUuid"], sender.uuid.to_string());
    }
}

#[test]
fn unknown_and_gone_addresses_are_404_and_the_primary_never_waits_for_the_device() {
    let server = Server::start();
    let primary = server.register();
    assert_eq!(provision(&server.addr(), &primary, &Uuid::new_v4(), b"x").0, 404);
    // The primary hears 204 before the new device answers (here: refuses),
    // as Signal's server answers; the socket then closes.
    let (mut new_device, address) = open_provisioning(&server);
    assert_eq!(provision(&server.addr(), &primary, &address, b"m").0, 204);
    match next_frame(&mut new_device) {
        Frame::Request(request) => ack(&mut new_device, request.id, 500),
        Frame::Response(response) => panic!("unexpected {response:?}"),
    }
    assert_eq!(expect_close(&mut new_device), Some(1000));
    assert_eq!(provision(&server.addr(), &primary, &address, b"m").0, 404, "single use");
    // A device that hangs up before answering: the same.
    let (new_device, address) = open_provisioning(&server);
    drop(new_device);
    common::wait_until("the socket to go", std::time::Duration::from_secs(10), || {
        provision(&server.addr(), &primary, &address, b"m").0 == 404
    });
}

#[test]
fn an_unclaimed_socket_times_out_and_the_per_shard_bound_refuses_the_rest() {
    let config = format!(
        "{}provisioning_timeout_ms = 300\nprovisioning_sockets_per_shard_max = 1\n",
        common::TEST_LIMITS
    );
    let server =
        Server::start_with(ServerOptions { shards: 1, config_toml: config, ..Default::default() });
    let (mut first, _) = open_provisioning(&server);
    let refused = connect_url(&format!("ws://{}/v1/websocket/provisioning/", server.addr()));
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| "a socket")),
    }
    assert_eq!(expect_close(&mut first), Some(1001), "unclaimed socket closed");
    common::wait_until("room again", std::time::Duration::from_secs(10), || {
        connect_url(&format!("ws://{}/v1/websocket/provisioning/", server.addr())).is_ok()
    });
}

#[test]
fn hostile_provisioning_requests_are_refused_and_the_server_serves_on() {
    let server = Server::start();
    let primary = server.register();
    let address = Uuid::new_v4();
    let path = format!("/v1/provisioning/{address}");
    let big = base64::encode(&vec![7u8; 13_000]);
    // (method, path, caller, body, expected status)
    type Case<'a> = (&'a str, String, Option<&'a Account>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("PUT", path.clone(), None, br#"{"body":"AA=="}"#.to_vec(), 401),
        ("PUT", path.clone(), Some(&primary), b"not json".to_vec(), 400),
        ("PUT", path.clone(), Some(&primary), br#"{"body":"!!!"}"#.to_vec(), 400),
        ("PUT", path.clone(), Some(&primary), br#"{}"#.to_vec(), 400),
        ("PUT", path.clone(), Some(&primary), br#"{"body":"AA==","extra":1}"#.to_vec(), 400),
        ("PUT", path.clone(), Some(&primary), format!(r#"{{"body":"{big}"}}"#).into_bytes(), 413),
        ("GET", path.clone(), Some(&primary), vec![], 405),
        (
            "PUT",
            "/v1/provisioning/not-a-uuid".into(),
            Some(&primary),
            br#"{"body":"AA=="}"#.to_vec(),
            404,
        ),
    ];
    for (method, path, caller, body, expected) in cases {
        let (status, response) = server.request(method, &path, caller, &body);
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(error_body(&response).0, u64::from(expected), "{method} {path}");
    }
    // The provisioning socket answers its keepalive (200), takes no other
    // requests (400) and, in the JSON framing, no binary frames (1003).
    let (mut ws, _) = open_provisioning(&server);
    let response = common::ws_call(&mut ws, 4, "GET", "/v1/keepalive/provisioning", None);
    assert_eq!(response.status, 200);
    let response = common::ws_call(&mut ws, 5, "GET", "/v1/messages", None);
    assert_eq!(response.status, 400);
    ws.send(tungstenite::Message::text("{not json")).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1007));
    let (mut ws, _) = open_provisioning(&server);
    ws.send(tungstenite::Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003));
    server.assert_serving();
}
