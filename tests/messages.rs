//! The message path against the real server with 2 shards: sending,
//! persistence, live and backlog delivery, acknowledgement, redelivery,
//! every refusal, sealed sender, online-only, GET/DELETE, cap and retention.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{error_body, ws_call, Server, ServerOptions, TEST_LIMITS};
use messaging::*;
use std::collections::HashSet;
use switchboard::protocol::base64;
use uuid::Uuid;

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

#[test]
fn live_delivery_within_and_across_shards_fills_every_field() {
    let server = Server::start();
    let recipients = [server.register_on_shard(0, 2), server.register_on_shard(1, 2)];
    let senders = [server.register_on_shard(0, 2), server.register_on_shard(1, 2)];
    for recipient in &recipients {
        let mut ws = server.connect(recipient).unwrap();
        assert!(drain_backlog(&mut ws).is_empty());
        for (index, sender) in senders.iter().enumerate() {
            let before_ms = switchboard::clock::Clock::system().now_ms();
            let text = format!("hello {index}");
            send_one(&server, sender, recipient, text.as_bytes(), 1000 + index as u64);
            let envelope = receive_envelopes(&mut ws, 1).remove(0);
            assert_eq!(envelope["type"], 1);
            assert_eq!(envelope["sourceUuid"], sender.uuid.to_string());
            assert_eq!(envelope["sourceDevice"], 1);
            assert_eq!(envelope["destinationUuid"], recipient.uuid.to_string());
            assert_eq!(envelope["timestamp"], 1000 + index as u64);
            assert_eq!(envelope["urgent"], true);
            assert!(envelope["serverTimestamp"].as_u64().unwrap() >= before_ms);
            assert!(
                envelope["serverDeliveredTimestamp"].as_u64().unwrap()
                    >= envelope["serverTimestamp"].as_u64().unwrap()
            );
            Uuid::parse_str(envelope["serverGuid"].as_str().unwrap())
                .expect("serverGuid is a UUID");
            assert_eq!(content(&envelope), text.as_bytes());
        }
    }
}

#[test]
fn sends_over_the_websocket_are_answered_like_http() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    let mut sender_ws = server.connect(&sender).unwrap();
    let body = send_body(&[(1, REGISTRATION_ID)], b"framed", false, 5);
    let response =
        ws_call(&mut sender_ws, 1, "PUT", &format!("/v1/messages/{}", recipient.uuid), Some(&body));
    assert_eq!(response.status, 200);
    assert_eq!(json(&response.body.unwrap())["needsSync"], false);
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1);
    assert_eq!(content(&backlog[0]), b"framed");
}

#[test]
fn multi_device_fan_out_and_sync_to_own_devices() {
    let server = Server::start();
    let sender = server.register();
    let sender_linked = link_device(&server, &sender);
    let recipient = server.register();
    let second = link_device(&server, &recipient);
    let third = link_device(&server, &recipient);
    assert_eq!((second.device_id, third.device_id), (2, 3));
    let mut sockets: Vec<_> =
        [&recipient, &second, &third].iter().map(|a| server.connect(a).unwrap()).collect();
    for ws in sockets.iter_mut() {
        drain_backlog(ws);
    }
    let devices = [(1, REGISTRATION_ID), (2, REGISTRATION_ID), (3, REGISTRATION_ID)];
    let (status, body) =
        send(&server, Some(&sender), &recipient.uuid, &send_body(&devices, b"all", false, 9), &[]);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["needsSync"], true, "the sender has a second device");
    let mut guids = HashSet::new();
    for ws in sockets.iter_mut() {
        let envelope = receive_envelopes(ws, 1).remove(0);
        assert_eq!(content(&envelope), b"all");
        guids.insert(envelope["serverGuid"].as_str().unwrap().to_string());
    }
    assert_eq!(guids.len(), 3, "each device's envelope has its own serverGuid");

    // Sync to one's own other device: the sending device is excluded.
    let sync = send_body(&[(2, REGISTRATION_ID)], b"sync", false, 10);
    let (status, body) = send(&server, Some(&sender), &sender.uuid, &sync, &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["needsSync"], false);
    let mut ws = server.connect(&sender_linked).unwrap();
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["sourceDevice"], 1);
    // Naming the sending device itself is an extra device.
    let both = send_body(&[(1, REGISTRATION_ID), (2, REGISTRATION_ID)], b"x", false, 11);
    let (status, body) = send(&server, Some(&sender), &sender.uuid, &both, &[]);
    assert_eq!(status, 409);
    assert_eq!(json(&body)["extraDevices"], serde_json::json!([1]));
}

#[test]
fn every_refusal_stores_nothing() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    link_device(&server, &recipient);
    let both = [(1, REGISTRATION_ID), (2, REGISTRATION_ID)];
    let to = |body: &[u8]| send(&server, Some(&sender), &recipient.uuid, body, &[]);

    let (status, body) = to(&send_body(&[(1, REGISTRATION_ID)], b"x", false, 1));
    assert_eq!(status, 409);
    assert_eq!(json(&body), serde_json::json!({"missingDevices": [2], "extraDevices": []}));
    let (status, body) =
        to(&send_body(&[(1, REGISTRATION_ID), (2, REGISTRATION_ID), (5, 1)], b"x", false, 1));
    assert_eq!(status, 409);
    assert_eq!(json(&body), serde_json::json!({"missingDevices": [], "extraDevices": [5]}));
    let (status, body) = to(&send_body(&[(1, REGISTRATION_ID), (2, 77)], b"x", false, 1));
    assert_eq!(status, 410);
    assert_eq!(json(&body), serde_json::json!({"staleDevices": [2]}));
    let (status, body) =
        send(&server, Some(&sender), &Uuid::new_v4(), &send_body(&both, b"x", false, 1), &[]);
    assert_eq!((status, error_body(&body).0), (404, 404));
    let bad_type = String::from_utf8(send_body(&both, b"x", false, 1))
        .unwrap()
        .replace("\"type\":1", "\"type\":2");
    assert_eq!(to(bad_type.as_bytes()).0, 400);
    let bad_content =
        String::from_utf8(send_body(&both, b"x", false, 1)).unwrap().replace("\"eA==\"", "\"***\"");
    assert_eq!(to(bad_content.as_bytes()).0, 400);
    assert_eq!(to(b"{not json").0, 400);
    assert_eq!(to(b"").0, 400);
    let (status, body) = to(&send_body(&both, &vec![7u8; 20_000], false, 1));
    assert_eq!((status, error_body(&body).0), (413, 413));
    let (status, _) = send(&server, None, &recipient.uuid, &send_body(&both, b"x", false, 1), &[]);
    assert_eq!(status, 401, "no credentials and no access key");

    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty(), "a refused send stored something");
    server.assert_serving();
}

#[test]
fn sealed_sender_hides_the_source_and_checks_the_key() {
    let server = Server::start();
    let key = [3u8; 16];
    let body = format!(
        r#"{{"password":"pw","registrationId":{REGISTRATION_ID},"unidentifiedAccessKey":"{}"}}"#,
        base64::encode(&key)
    );
    let (status, created) = server.request("PUT", "/v1/accounts", None, body.as_bytes());
    assert_eq!(status, 200);
    let recipient = common::Account {
        uuid: Uuid::parse_str(json(&created)["uuid"].as_str().unwrap()).unwrap(),
        device_id: 1,
        password: "pw".into(),
    };
    let message = send_body(&[(1, REGISTRATION_ID)], b"sealed", false, 3);
    let right = base64::encode(&key);
    let wrong = base64::encode(&[4u8; 16]);
    let (status, _) =
        send(&server, None, &recipient.uuid, &message, &[("Unidentified-Access-Key", &wrong)]);
    assert_eq!(status, 401);
    let (status, _) =
        send(&server, None, &recipient.uuid, &message, &[("Unidentified-Access-Key", "!!")]);
    assert_eq!(status, 401);
    let (status, body) =
        send(&server, None, &recipient.uuid, &message, &[("Unidentified-Access-Key", &right)]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["type"], 7);
    assert!(backlog[0].get("sourceUuid").is_none() && backlog[0].get("sourceDevice").is_none());

    // Unrestricted: any key is accepted.
    let (status, created) = server.request(
        "PUT",
        "/v1/accounts",
        None,
        format!(r#"{{"password":"pw","registrationId":{REGISTRATION_ID},"unrestrictedUnidentifiedAccess":true}}"#).as_bytes(),
    );
    assert_eq!(status, 200);
    let open = Uuid::parse_str(json(&created)["uuid"].as_str().unwrap()).unwrap();
    let (status, _) = send(&server, None, &open, &message, &[("Unidentified-Access-Key", &wrong)]);
    assert_eq!(status, 200);
}

#[test]
fn offline_backlog_then_live_in_order_without_duplicates() {
    let server = Server::start();
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    for index in 0..30u64 {
        send_one(&server, &sender, &recipient, format!("m{index}").as_bytes(), index);
    }
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    let order: Vec<u64> = backlog.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..30).collect::<Vec<_>>());
    for index in 30..40u64 {
        send_one(&server, &sender, &recipient, format!("m{index}").as_bytes(), index);
    }
    let live = receive_envelopes(&mut ws, 10);
    let order: Vec<u64> = live.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(order, (30..40).collect::<Vec<_>>());
    // Acked envelopes are gone: a new connection finds an empty queue.
    drop(ws);
    common::wait_until("acks applied", std::time::Duration::from_secs(5), || {
        server.metric("messages_acked_total") == 40
    });
    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty());
}

#[test]
fn backlog_larger_than_the_window_arrives_whole_and_in_order() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let count = 200u64; // over the in-flight window of 64
    for index in 0..count {
        send_one(&server, &sender, &recipient, b"w", index);
    }
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    let order: Vec<u64> = backlog.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..count).collect::<Vec<_>>());
}

#[test]
fn unacknowledged_envelopes_are_redelivered_in_order() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    for index in 0..5u64 {
        send_one(&server, &sender, &recipient, b"r", index);
    }
    let mut ws = server.connect(&recipient).unwrap();
    // Refuse every envelope (status 500): nothing may be deleted.
    let first = envelopes(&receive_until(&mut ws, 500, |a| a.last() == Some(&Arrival::QueueEmpty)));
    assert_eq!(first.len(), 5);
    drop(ws);
    let mut ws = server.connect(&recipient).unwrap();
    // Now read without answering at all, then drop the connection.
    let second = envelopes(&receive_until_silent(&mut ws, 5));
    drop(ws);
    let mut ws = server.connect(&recipient).unwrap();
    let third = drain_backlog(&mut ws);
    let guids = |list: &[serde_json::Value]| -> Vec<String> {
        list.iter().map(|e| e["serverGuid"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(guids(&first), guids(&second));
    assert_eq!(guids(&first), guids(&third));
}

/// Reads `count` envelopes without answering them.
fn receive_until_silent(ws: &mut common::Ws, count: usize) -> Vec<Arrival> {
    let mut arrivals = Vec::new();
    while arrivals.len() < count {
        if let switchboard::protocol::frame::Frame::Request(request) = common::next_frame(ws) {
            if request.path == "/api/v1/message" {
                arrivals.push(Arrival::Envelope(json(&request.body.unwrap())));
            }
        }
    }
    arrivals
}

#[test]
fn online_only_messages_reach_connected_devices_and_are_never_stored() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let body = send_body(&[(1, REGISTRATION_ID)], b"typing", true, 1);
    assert_eq!(send(&server, Some(&sender), &recipient.uuid, &body, &[]).0, 200);
    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty(), "online-only was stored");
    let body = send_body(&[(1, REGISTRATION_ID)], b"typing-live", true, 2);
    assert_eq!(send(&server, Some(&sender), &recipient.uuid, &body, &[]).0, 200);
    let live = receive_envelopes(&mut ws, 1);
    assert_eq!(content(&live[0]), b"typing-live");
    assert_eq!(server.metric("messages_stored_total"), 0);
}

#[test]
fn get_and_delete_serve_clients_without_a_socket() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    for index in 0..3u64 {
        send_one(&server, &sender, &recipient, b"rest", index);
    }
    let (status, body) = server.request("GET", "/v1/messages", Some(&recipient), b"");
    assert_eq!(status, 200);
    let page = json(&body);
    assert_eq!(page["more"], false);
    let messages = page["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3);
    let guid = messages[1]["serverGuid"].as_str().unwrap();
    let (status, _) =
        server.request("DELETE", &format!("/v1/messages/uuid/{guid}"), Some(&recipient), b"");
    assert_eq!(status, 204);
    let (status, _) =
        server.request("DELETE", &format!("/v1/messages/uuid/{guid}"), Some(&recipient), b"");
    assert_eq!(status, 204, "deletes are idempotent");
    let (status, _) =
        server.request("DELETE", "/v1/messages/uuid/not-a-uuid", Some(&recipient), b"");
    assert_eq!(status, 400);
    let (status, _) = server.request("GET", "/v1/messages", None, b"");
    assert_eq!(status, 401);
    let (_, body) = server.request("GET", "/v1/messages", Some(&recipient), b"");
    let left: Vec<u64> = json(&body)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(left, vec![0, 2]);
}

#[test]
fn get_pages_report_more() {
    let server = Server::start_with(ServerOptions {
        config_toml: TEST_LIMITS.replace("[limits]", "[limits]\nmessage_page_len_max = 4"),
        ..ServerOptions::default()
    });
    let sender = server.register();
    let recipient = server.register();
    for index in 0..6u64 {
        send_one(&server, &sender, &recipient, b"p", index);
    }
    let (_, body) = server.request("GET", "/v1/messages", Some(&recipient), b"");
    let page = json(&body);
    assert_eq!(page["messages"].as_array().unwrap().len(), 4);
    assert_eq!(page["more"], true);
}

#[test]
fn queue_over_its_cap_drops_the_oldest_and_counts_them() {
    let server = Server::start_with(ServerOptions {
        config_toml: TEST_LIMITS.replace("[limits]", "[limits]\nqueue_len_max = 5"),
        ..ServerOptions::default()
    });
    let sender = server.register();
    let recipient = server.register();
    for index in 0..8u64 {
        send_one(&server, &sender, &recipient, b"c", index);
    }
    common::wait_until("trim counted", std::time::Duration::from_secs(5), || {
        server.metric("messages_trimmed_total") == 3
    });
    let mut ws = server.connect(&recipient).unwrap();
    let kept: Vec<u64> =
        drain_backlog(&mut ws).iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(kept, vec![3, 4, 5, 6, 7]);
}

#[test]
fn envelopes_past_retention_are_swept_and_counted() {
    let server = Server::start_with(ServerOptions {
        config_toml: format!(
            "message_retention_ms = 300\nretention_sweep_interval_ms = 100\n{TEST_LIMITS}"
        ),
        ..ServerOptions::default()
    });
    let sender = server.register();
    let recipient = server.register();
    send_one(&server, &sender, &recipient, b"old", 1);
    common::wait_until("expiry counted", std::time::Duration::from_secs(5), || {
        server.metric("messages_expired_total") == 1
    });
    let mut ws = server.connect(&recipient).unwrap();
    assert!(drain_backlog(&mut ws).is_empty());
}

#[test]
fn link_codes_are_single_use_and_primary_only() {
    let server = Server::start();
    let primary = server.register();
    let linked = link_device(&server, &primary);
    let (status, _) = server.request("GET", "/v1/devices/provisioning/code", Some(&linked), b"");
    assert_eq!(status, 403, "only the primary issues codes");
    let (_, body) = server.request("GET", "/v1/devices/provisioning/code", Some(&primary), b"");
    let code = json(&body)["verificationCode"].as_str().unwrap().to_string();
    let link = |code: &str| {
        let request =
            format!(r#"{{"verificationCode":"{code}","password":"pw2","registrationId":7}}"#);
        server.request("PUT", "/v1/devices/link", None, request.as_bytes()).0
    };
    assert_eq!(link(&format!("{}.{}", primary.uuid, "0".repeat(32))), 403);
    assert_eq!(link("garbage"), 403);
    assert_eq!(link(&code), 200);
    assert_eq!(link(&code), 403, "a code works once");
    let (_, body) = server.request("GET", "/v1/devices", Some(&primary), b"");
    assert_eq!(json(&body)["devices"].as_array().unwrap().len(), 3);
}

/// Issue 12 (logs an operator can read): a flood of trims of one queue makes
/// one aggregated warning line per interval, while the metric stays exact.
#[test]
fn a_flood_of_trims_logs_one_aggregated_line_and_counts_every_trim() {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("server.log");
    let server = Server::start_with(ServerOptions {
        config_toml: TEST_LIMITS.replace("[limits]", "[limits]\nqueue_len_max = 5"),
        shards: 1,
        log_path: Some(log_path.clone()),
        ..ServerOptions::default()
    });
    let sender = server.register();
    let recipient = server.register();
    for index in 0..60u64 {
        send_one(&server, &sender, &recipient, b"c", index);
    }
    common::wait_until("every trim counted", std::time::Duration::from_secs(5), || {
        server.metric("messages_trimmed_total") == 55
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("over their cap")).collect();
    // The test runs well inside one 10 s interval: the first trim's line only.
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("trims=1"), "{}", lines[0]);
}
