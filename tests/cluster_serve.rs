//! Cluster mode serving, against 3 real nodes joined through a real
//! 3-server NATS JetStream cluster on loopback (16 partitions in the
//! initial map of n1, n2, n3):
//! - every kind of send, good or refused (200, 404, 409 missing and extra
//!   devices, 410, 413, 401 bad login, 401 wrong access key), is answered
//!   with the same status and body by the recipient's owner and by the
//!   other nodes, and only the good ones are stored, once each;
//! - a device whose WebSocket is on its owner and one whose WebSocket is on
//!   another node (forwarded whole) both receive, in order, what senders on
//!   the two other nodes send, and acks made through either hold: nothing
//!   comes back after reconnecting (through the other node each time);
//! - a new device links through a provisioning socket on one node with a
//!   code its primary (owned by another) asked for and handed over through
//!   a third node, and then receives through a node that does not own it.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/messaging.rs"]
mod messaging;
#[path = "common/nats.rs"]
mod nats;

use cluster::Cluster;
use common::{ack, expect_close, next_frame, Account, Ws};
use messaging::{drain_backlog, link_device, receive_envelopes, send_body, REGISTRATION_ID};
use nats::NatsCluster;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::protocol::base64;
use switchboard::protocol::frame::Frame;
use uuid::Uuid;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const RID: u32 = REGISTRATION_ID;

/// Opens `account`'s WebSocket at `addr` with a Basic `Authorization`
/// header instead of the `login` query.
pub fn connect_basic(addr: &str, account: &Account) -> Result<Ws, tungstenite::Error> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/v1/websocket/").into_client_request()?;
    request.headers_mut().insert("Authorization", account.basic().parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request)?;
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    Ok(ws)
}

/// One request of the parity test and the status the owner must give it.
struct Case {
    what: &'static str,
    sender: Option<Account>,
    dest: Uuid,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    expect: u16,
}

/// The accounts the parity cases use, all but the unknown one real.
struct Parties {
    sender: Account,
    /// Owned by the node under test, with devices 1 and 2.
    recipient: Account,
    /// Owned by the node under test, sealed-sender key `[3; 16]`.
    sealed: Uuid,
    unknown: Uuid,
}

/// Every kind of send for `via`: good sends carry timestamp `100 + via`.
fn parity_cases(p: &Parties, via: usize) -> Vec<Case> {
    let both = [(1, RID), (2, RID)];
    let to = |what, body: Vec<u8>, expect| Case {
        what,
        sender: Some(p.sender.clone()),
        dest: p.recipient.uuid,
        body,
        headers: vec![],
        expect,
    };
    let wrong_password = Account { password: "wrong".into(), ..p.sender.clone() };
    let stranger = Account { uuid: p.unknown, device_id: 1, password: "pw".into() };
    let good = send_body(&both, b"good", false, 100 + via as u64);
    let sealed = send_body(&[(1, RID)], b"sealed", false, 200 + via as u64);
    let key = |bytes: [u8; 16]| vec![("Unidentified-Access-Key", base64::encode(&bytes))];
    vec![
        to("a good send", good, 200),
        to("a missing device", send_body(&[(1, RID)], b"x", false, 1), 409),
        to("an extra device", send_body(&[(1, RID), (2, RID), (5, 1)], b"x", false, 1), 409),
        to("a stale registration id", send_body(&[(1, RID), (2, 77)], b"x", false, 1), 410),
        to("a body too large", send_body(&both, &[7u8; 20_000], false, 1), 413),
        Case {
            dest: p.unknown,
            ..to("an unknown recipient", send_body(&both, b"x", false, 1), 404)
        },
        Case {
            sender: Some(wrong_password),
            ..to("a wrong password", send_body(&both, b"x", false, 1), 401)
        },
        Case {
            sender: Some(stranger),
            ..to("an unknown login", send_body(&both, b"x", false, 1), 401)
        },
        Case { sender: None, ..to("no login and no key", send_body(&both, b"x", false, 1), 401) },
        Case {
            sender: None,
            dest: p.sealed,
            headers: key([4; 16]),
            ..to("a wrong access key", sealed.clone(), 401)
        },
        Case {
            sender: None,
            dest: p.sealed,
            headers: key([3; 16]),
            ..to("a sealed send", sealed, 200)
        },
    ]
}

/// Sends `case` through node `via`: (status, body).
fn answer(cluster: &Cluster, via: usize, case: &Case) -> (u16, Vec<u8>) {
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let path = format!("/v1/messages/{}", case.dest);
    cluster.node(via).request_with("PUT", &path, case.sender.as_ref(), &headers, &case.body)
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The bodies the owner must give, for the cases that have a fixed one.
fn assert_owner_body(case: &Case, body: &[u8]) {
    let json =
        || serde_json::from_slice::<Value>(body).unwrap_or_else(|_| panic!("{}", text(body)));
    match case.what {
        "a good send" => assert_eq!(json(), json!({"needsSync": false})),
        "a missing device" => {
            assert_eq!(json(), json!({"missingDevices": [2], "extraDevices": []}))
        }
        "an extra device" => assert_eq!(json(), json!({"missingDevices": [], "extraDevices": [5]})),
        "a stale registration id" => assert_eq!(json(), json!({"staleDevices": [2]})),
        "an unknown recipient" | "a body too large" => {
            assert_eq!(common::error_body(body).0, u64::from(case.expect))
        }
        _ => {}
    }
}

/// Registers the parties of the parity test, owned as their names say.
fn parties(cluster: &Cluster, owner: usize, sender_owner: usize) -> Parties {
    let recipient = cluster.register_owned_by(0, owner);
    // Linked through a node that does not own the account.
    let second = link_device(cluster.node((owner + 1) % 3), &recipient);
    assert_eq!(second.device_id, 2);
    let sealed_body = format!(
        r#"{{"password":"pw","registrationId":{RID},"unidentifiedAccessKey":"{}"}}"#,
        base64::encode(&[3u8; 16])
    );
    let sealed = (0..200)
        .map(|_| cluster.register_raw(2, &sealed_body))
        .find(|uuid| cluster.owner_of(uuid) == owner)
        .expect("a sealed-sender account on the owner");
    let unknown = Uuid::new_v4();
    let sender = cluster.register_owned_by(1, sender_owner);
    Parties { sender, recipient, sealed, unknown }
}

#[test]
fn every_send_is_answered_alike_by_the_owner_and_by_the_other_nodes() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start(&nats, &NODES);
    let owner = 1;
    let p = parties(&cluster, owner, 2);
    // The owner first (the reference), then a node owning only the sender,
    // then one owning neither.
    let order = [owner, 2, 0];
    let reference: Vec<(u16, Vec<u8>)> =
        parity_cases(&p, owner).iter().map(|case| answer(&cluster, owner, case)).collect();
    for (case, (status, body)) in parity_cases(&p, owner).iter().zip(&reference) {
        assert_eq!(*status, case.expect, "{} on its owner: {}", case.what, text(body));
        assert_owner_body(case, body);
    }
    for via in order.into_iter().skip(1) {
        for (case, (status, body)) in parity_cases(&p, via).iter().zip(&reference) {
            let (got, got_body) = answer(&cluster, via, case);
            assert_eq!(
                (got, text(&got_body)),
                (*status, text(body)),
                "{} through {} (owner {})",
                case.what,
                cluster.id(via),
                cluster.id(owner)
            );
        }
    }
    // Only the good sends were stored, once each, in the order made.
    let mut ws = cluster.node(0).connect(&p.recipient).expect("socket through a non-owner");
    let stamps: Vec<u64> =
        drain_backlog(&mut ws).iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(stamps, order.map(|via| 100 + via as u64).to_vec());
    let sealed = Account { uuid: p.sealed, device_id: 1, password: "pw".into() };
    let mut ws = cluster.node(2).connect(&sealed).expect("socket through a non-owner");
    let backlog = drain_backlog(&mut ws);
    let stamps: Vec<u64> = backlog.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(stamps, order.map(|via| 200 + via as u64).to_vec());
    assert!(backlog.iter().all(|e| e["type"] == 7 && e.get("sourceUuid").is_none()));
}

/// Sends `count` rounds, one from each sender through its own node, to
/// devices 1 and 2 of `recipient`; timestamps count up from 0.
fn send_rounds(cluster: &Cluster, senders: &[(usize, &Account)], recipient: &Uuid, count: u64) {
    let mut timestamp = 0u64;
    for _ in 0..count {
        for (via, sender) in senders {
            let body = send_body(&[(1, RID), (2, RID)], &timestamp.to_be_bytes(), false, timestamp);
            let path = format!("/v1/messages/{recipient}");
            let (status, response) = cluster.node(*via).request("PUT", &path, Some(sender), &body);
            assert_eq!(
                status,
                200,
                "send {timestamp} through {}: {}",
                cluster.id(*via),
                text(&response)
            );
            timestamp += 1;
        }
    }
}

/// Waits until `device`'s queue, read over HTTP through node `via`, is empty.
fn wait_queue_empty(cluster: &Cluster, via: usize, device: &Account) {
    cluster.poll("acknowledged envelopes to leave the queue", Duration::from_secs(10), || {
        let (status, body) = cluster.node(via).request("GET", "/v1/messages", Some(device), b"");
        let json: Value = serde_json::from_slice(&body).map_err(|_| text(&body))?;
        let left = json["messages"].as_array().map_or(usize::MAX, Vec::len);
        (status == 200 && left == 0).then_some(()).ok_or(format!("{status}: {left} left"))
    });
}

#[test]
fn devices_on_the_owner_and_on_another_node_receive_in_order_and_acks_hold() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start(&nats, &NODES);
    let recipient = cluster.register_owned_by(1, 0);
    let linked = link_device(cluster.node(2), &recipient);
    let sender_b = cluster.register_owned_by(0, 1);
    let sender_c = cluster.register_owned_by(0, 2);
    let on_owner = cluster.node(0).connect(&recipient).expect("socket on the owner");
    let forwarded = connect_basic(&cluster.addr(1), &linked).expect("socket on a non-owner");
    let rounds = 20;
    // Read (acking, answering pings) while the sends are made.
    let readers = [on_owner, forwarded].map(|mut ws| {
        std::thread::spawn(move || {
            assert!(drain_backlog(&mut ws).is_empty());
            let envelopes = receive_envelopes(&mut ws, 2 * rounds as usize);
            (envelopes, ws)
        })
    });
    send_rounds(&cluster, &[(1, &sender_b), (2, &sender_c)], &recipient.uuid, rounds);
    let mut sockets = Vec::new();
    for (device, reader) in ["on the owner", "forwarded"].into_iter().zip(readers) {
        let (envelopes, ws) = reader.join().unwrap_or_else(|_| panic!("device {device}"));
        let stamps: Vec<u64> = envelopes.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
        assert_eq!(stamps, (0..2 * rounds).collect::<Vec<_>>(), "device {device}");
        for envelope in &envelopes {
            let timestamp = envelope["timestamp"].as_u64().unwrap();
            let sender = if timestamp % 2 == 0 { &sender_b } else { &sender_c };
            assert_eq!(envelope["sourceUuid"], sender.uuid.to_string(), "device {device}");
            assert_eq!(messaging::content(envelope), timestamp.to_be_bytes());
        }
        sockets.push(ws);
    }
    drop(sockets);
    wait_queue_empty(&cluster, 2, &recipient);
    wait_queue_empty(&cluster, 0, &linked);
    // Reconnected the other way round: nothing comes back.
    let mut ws = connect_basic(&cluster.addr(2), &recipient).expect("socket on a non-owner");
    assert!(drain_backlog(&mut ws).is_empty(), "acked envelopes redelivered to device 1");
    let mut ws = cluster.node(0).connect(&linked).expect("socket on the owner");
    assert!(drain_backlog(&mut ws).is_empty(), "acked envelopes redelivered to device 2");
}

/// Opens a provisioning socket at `addr` and reads its address (acking it).
fn open_provisioning(addr: &str) -> (Ws, Uuid) {
    let mut ws = common::connect_url(&format!("ws://{addr}/v1/websocket/provisioning/")).unwrap();
    match next_frame(&mut ws) {
        Frame::Request(request) => {
            assert_eq!((request.verb.as_str(), request.path.as_str()), ("PUT", "/v1/address"));
            let body: Value = serde_json::from_slice(&request.body.unwrap()).unwrap();
            let address = Uuid::parse_str(body["uuid"].as_str().unwrap()).unwrap();
            ack(&mut ws, request.id, 200);
            (ws, address)
        }
        Frame::Response(response) => panic!("unexpected {response:?}"),
    }
}

/// `PUT /v1/provisioning/{address}` from `primary` through `addr`.
fn provision(addr: &str, primary: &Account, address: &Uuid, message: &[u8]) -> (u16, Vec<u8>) {
    let body = serde_json::to_vec(&json!({"body": base64::encode(message)})).unwrap();
    let path = format!("/v1/provisioning/{address}");
    common::request_at(addr, "PUT", &path, Some(primary), &[], &body)
}

/// Reads the provisioning message on `ws`, acks it, and waits for the close.
fn read_provisioning_message(ws: &mut Ws) -> Value {
    let message = match next_frame(ws) {
        Frame::Request(request) => {
            assert_eq!((request.verb.as_str(), request.path.as_str()), ("PUT", "/v1/message"));
            ack(ws, request.id, 200);
            serde_json::from_slice::<Value>(&request.body.unwrap()).unwrap()
        }
        Frame::Response(response) => panic!("unexpected {response:?}"),
    };
    assert_eq!(expect_close(ws), Some(1000));
    message
}

#[test]
fn a_device_links_through_a_provisioning_socket_on_another_node() {
    let nats = NatsCluster::start(3);
    let cluster = Cluster::start(&nats, &NODES);
    let (mut new_device, address) = open_provisioning(&cluster.addr(0));
    let primary = cluster.register_owned_by(0, 1);
    let (status, body) =
        cluster.node(2).request("GET", "/v1/devices/provisioning/code", Some(&primary), b"");
    assert_eq!(status, 200, "a link code through a non-owner: {}", text(&body));
    let code: Value = serde_json::from_slice(&body).unwrap();
    let code = code["verificationCode"].as_str().unwrap().to_string();

    let handed = {
        let (addr, primary, code) = (cluster.addr(2), primary.clone(), code.clone());
        std::thread::spawn(move || provision(&addr, &primary, &address, code.as_bytes()))
    };
    let message = read_provisioning_message(&mut new_device);
    assert_eq!(message, json!({"body": base64::encode(code.as_bytes())}));
    assert_eq!(handed.join().unwrap().0, 204);
    assert_eq!(provision(&cluster.addr(1), &primary, &address, b"again").0, 404, "single use");

    let link = json!({"verificationCode": code, "password": "new-device-secret",
                      "registrationId": RID, "name": "new"});
    let (status, body) = cluster.node(2).request(
        "PUT",
        "/v1/devices/link",
        None,
        &serde_json::to_vec(&link).unwrap(),
    );
    assert_eq!(status, 200, "link through a non-owner: {}", text(&body));
    let linked: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(linked["uuid"], primary.uuid.to_string());
    let device_id = linked["deviceId"].as_u64().unwrap() as u32;
    let linked = Account { uuid: primary.uuid, device_id, password: "new-device-secret".into() };

    let sender = cluster.register_owned_by(0, 0);
    let body = send_body(&[(1, RID), (device_id, RID)], b"hi", false, 5);
    let path = format!("/v1/messages/{}", primary.uuid);
    assert_eq!(cluster.node(0).request("PUT", &path, Some(&sender), &body).0, 200);
    for (via, device) in [(0, &linked), (2, &primary)] {
        let mut ws = cluster.node(via).connect(device).expect("socket through a non-owner");
        let envelope = receive_envelopes(&mut ws, 1).remove(0);
        assert_eq!(envelope["sourceUuid"], sender.uuid.to_string());
        assert_eq!(messaging::content(&envelope), b"hi");
    }
}
