//! The authenticated WebSocket: framing both ways, keepalive, idle close,
//! replacement with 4409, and hand-off of connections between shards.

mod common;

use common::{ack, expect_close, next_frame, ws_call, Server};
use std::time::Duration;
use switchboard::protocol::frame::Frame;
use tungstenite::Message;

#[test]
fn server_sends_queue_empty_and_client_answers() {
    let server = Server::start();
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();
    match next_frame(&mut ws) {
        Frame::Request(request) => {
            assert_eq!(request.verb, "PUT");
            assert_eq!(request.path, "/api/v1/queue/empty");
            let timestamp =
                switchboard::protocol::frame::header_value(&request.headers, "X-Signal-Timestamp")
                    .expect("timestamp header");
            assert!(timestamp.parse::<u64>().unwrap() > 1_600_000_000_000);
            ack(&mut ws, request.id, 200);
        }
        other => panic!("expected the queue-empty request, got {other:?}"),
    }
}

#[test]
fn client_requests_are_routed_like_http() {
    let server = Server::start();
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();
    let response = ws_call(&mut ws, 17, "GET", "/v1/devices", None);
    assert_eq!(response.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&response.body.unwrap()).unwrap();
    assert_eq!(json["devices"][0]["id"], 1);
    let response = ws_call(&mut ws, 18, "GET", "/v1/keepalive", None);
    assert_eq!(response.status, 200);
    let response = ws_call(&mut ws, 19, "GET", "/v1/nothing", None);
    assert_eq!(response.status, 404);
    let response = ws_call(&mut ws, 20, "DELETE", "/v1/devices", None);
    assert_eq!(response.status, 405);
    // Registration over the socket creates a new account.
    let body = br#"{"password":"framed","registrationId":9}"#;
    let response = ws_call(&mut ws, 21, "PUT", "/v1/accounts", Some(body));
    assert_eq!(response.status, 200);
}

#[test]
fn server_pings_and_keeps_an_answering_client() {
    let server = Server::start();
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();
    // TEST_LIMITS: ping every 500 ms, idle close after 2000 ms. Reading
    // answers pings (tungstenite replies with pongs), so the socket stays
    // open well past the idle timeout.
    let mut pings = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        match ws.read().expect("connection stays open") {
            Message::Ping(_) => pings += 1,
            Message::Text(text) => {
                let mut bytes = text.as_bytes().to_vec();
                if let Ok(Frame::Request(request)) =
                    switchboard::protocol::frame::decode(&mut bytes, 1 << 16)
                {
                    ack(&mut ws, request.id, 200);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        let _ = ws.flush();
    }
    assert!(pings >= 3, "saw {pings} pings");
    assert_eq!(ws_call(&mut ws, 5, "GET", "/v1/keepalive", None).status, 200);
}

#[test]
fn silent_client_is_closed_after_the_idle_timeout() {
    let server = Server::start();
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();
    // Do not read (so no pongs) for longer than idle_timeout_ms = 2000.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(expect_close(&mut ws), Some(1001));
    server.assert_serving();
}

#[test]
fn second_connection_of_a_device_replaces_the_first_with_4409() {
    let server = Server::start();
    let account = server.register();
    let mut first = server.connect(&account).unwrap();
    let mut second = server.connect(&account).unwrap();
    assert_eq!(expect_close(&mut first), Some(4409));
    assert_eq!(ws_call(&mut second, 1, "GET", "/v1/keepalive", None).status, 200);
    common::wait_until("replacement counted", Duration::from_secs(5), || {
        server.metric("websockets_replaced_total") == 1
    });
}

#[test]
fn connections_are_handed_to_the_owner_shard() {
    let server = Server::start();
    let accounts = [server.register_on_shard(0, 2), server.register_on_shard(1, 2)];
    // The kernel spreads connections over both listeners, so some land on
    // the shard that does not own the account and must be handed off.
    let mut sockets = Vec::new();
    for round in 0..16 {
        let account = &accounts[round % 2];
        let mut ws = server.connect(account).unwrap();
        assert_eq!(ws_call(&mut ws, 1, "GET", "/v1/devices", None).status, 200);
        sockets.push(ws);
        // The previous socket of this device was replaced: drop it.
        if sockets.len() > 2 {
            sockets.remove(0);
        }
    }
    let handed = server.metric("handoffs_received_total");
    assert!(handed > 0, "no connection was handed off in 16 tries");
    assert_eq!(handed, server.metric("handoffs_sent_total"));
    // Plain HTTP with credentials is handed off too.
    for _ in 0..8 {
        for account in &accounts {
            assert_eq!(server.request("GET", "/v1/devices", Some(account), b"").0, 200);
        }
    }
}

#[test]
fn many_devices_on_both_shards_hold_sockets_at_once() {
    let server = Server::start();
    let accounts: Vec<_> = (0..40).map(|_| server.register()).collect();
    let mut sockets: Vec<_> = accounts.iter().map(|a| server.connect(a).unwrap()).collect();
    for (id, ws) in sockets.iter_mut().enumerate() {
        assert_eq!(ws_call(ws, id as u64, "GET", "/v1/keepalive", None).status, 200);
    }
    common::wait_until("sessions counted", Duration::from_secs(5), || {
        server.metric("websockets_open") == 40
    });
}

/// Issue 12 (back-pressure, not refusal): a client that pipelines many sends
/// over one socket, far beyond `client_requests_inflight_max`, is slowed
/// down by TCP instead of being answered 503; every send gets its 200.
#[test]
fn pipelined_sends_beyond_the_inflight_cap_are_all_answered_200() {
    let config = format!("{}client_requests_inflight_max = 2\n", common::TEST_LIMITS);
    let server =
        Server::start_with(common::ServerOptions { config_toml: config, ..Default::default() });
    let sender = server.register();
    let recipient = server.register();
    let mut ws = server.connect(&sender).unwrap();
    let content = switchboard::protocol::base64::encode(&[7u8; 1024]);
    let path = format!("/v1/messages/{}", recipient.uuid);
    let sends_total: u64 = 3_000;
    let batch_len: u64 = 250;
    let mut statuses = std::collections::HashMap::new();
    let mut next_id = 1;
    while next_id <= sends_total {
        for id in next_id..(next_id + batch_len).min(sends_total + 1) {
            let body = format!(
                r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":4242,"content":"{content}"}}],"online":false,"urgent":true,"timestamp":{id}}}"#
            );
            let request = switchboard::protocol::frame::WsRequest {
                id,
                verb: "PUT".into(),
                path: path.clone(),
                body: Some(body.into_bytes()),
                headers: vec![],
            };
            let text = switchboard::protocol::frame::encode_request(&request);
            ws.send(tungstenite::Message::text(text)).unwrap();
        }
        next_id += batch_len;
        // Read answers until at most one batch is outstanding.
        while (next_id - 1) - statuses.len() as u64 > batch_len / 2 {
            match common::next_frame(&mut ws) {
                switchboard::protocol::frame::Frame::Response(response) => {
                    statuses.insert(response.id, response.status);
                }
                switchboard::protocol::frame::Frame::Request(request) => {
                    common::ack(&mut ws, request.id, 200)
                }
            }
        }
    }
    while (statuses.len() as u64) < sends_total {
        if let switchboard::protocol::frame::Frame::Response(response) = common::next_frame(&mut ws)
        {
            statuses.insert(response.id, response.status);
        }
    }
    let refused: Vec<_> = statuses.iter().filter(|(_, status)| **status != 200).collect();
    assert!(
        refused.is_empty(),
        "{} of {sends_total} refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    server.assert_serving();
}
