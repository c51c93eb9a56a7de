//! Messaging helpers: build send bodies, send over HTTP, link devices, and
//! receive (and acknowledge) envelopes on a WebSocket.
#![allow(dead_code)]

use crate::common::{ack, next_frame, Account, Server, Ws};
use switchboard::protocol::base64;
use switchboard::protocol::frame::Frame;
use uuid::Uuid;

/// Registration id every test device registers with.
pub const REGISTRATION_ID: u32 = 4242;

/// A send body naming `devices` (id, registration id), each with `content`.
pub fn send_body(devices: &[(u32, u32)], content: &[u8], online: bool, timestamp: u64) -> Vec<u8> {
    let messages: Vec<serde_json::Value> = devices
        .iter()
        .map(|(device, registration)| {
            serde_json::json!({
                "type": 1,
                "destinationDeviceId": device,
                "destinationRegistrationId": registration,
                "content": base64::encode(content),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "messages": messages, "online": online, "urgent": true, "timestamp": timestamp,
    }))
    .unwrap()
}

/// `PUT /v1/messages/{destination}` over HTTP.
pub fn send(
    server: &Server,
    sender: Option<&Account>,
    destination: &Uuid,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    server.request_with("PUT", &format!("/v1/messages/{destination}"), sender, headers, body)
}

/// Sends `content` from `sender` to device 1 of `destination`; asserts 200.
pub fn send_one(
    server: &Server,
    sender: &Account,
    destination: &Account,
    content: &[u8],
    timestamp: u64,
) {
    let body = send_body(&[(1, REGISTRATION_ID)], content, false, timestamp);
    let (status, response) = send(server, Some(sender), &destination.uuid, &body, &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
}

/// Links a new device to `primary`'s account.
pub fn link_device(server: &Server, primary: &Account) -> Account {
    let (status, body) = server.request("GET", "/v1/devices/provisioning/code", Some(primary), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let code: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let password = format!("linked-{}", Uuid::new_v4());
    let request = serde_json::json!({
        "verificationCode": code["verificationCode"], "password": password,
        "registrationId": REGISTRATION_ID, "name": "linked",
    });
    let (status, body) =
        server.request("PUT", "/v1/devices/link", None, &serde_json::to_vec(&request).unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    Account { uuid: primary.uuid, device_id: json["deviceId"].as_u64().unwrap() as u32, password }
}

/// What arrived on a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    Envelope(serde_json::Value),
    /// A receipt (`/api/v1/receipt`), e.g. the server's DELIVERY receipt for
    /// envelopes the recipient acknowledged.
    Receipt(serde_json::Value),
    QueueEmpty,
}

/// Reads server requests until `done` says stop, answering each with
/// `status`; returns what arrived in order.
pub fn receive_until(
    ws: &mut Ws,
    status: u16,
    mut done: impl FnMut(&[Arrival]) -> bool,
) -> Vec<Arrival> {
    let mut arrivals = Vec::new();
    while !done(&arrivals) {
        match next_frame(ws) {
            Frame::Request(request) => {
                ack(ws, request.id, status);
                match request.path.as_str() {
                    "/api/v1/message" => {
                        let body = request.body.expect("message has a body");
                        arrivals.push(Arrival::Envelope(serde_json::from_slice(&body).unwrap()));
                    }
                    "/api/v1/receipt" => {
                        let body = request.body.expect("receipt has a body");
                        arrivals.push(Arrival::Receipt(serde_json::from_slice(&body).unwrap()));
                    }
                    "/api/v1/queue/empty" => arrivals.push(Arrival::QueueEmpty),
                    other => panic!("unexpected server request {other}"),
                }
            }
            Frame::Response(response) => panic!("unexpected response {response:?}"),
        }
    }
    arrivals
}

/// Reads (and acks with 200) the stored backlog up to `queue/empty`.
pub fn drain_backlog(ws: &mut Ws) -> Vec<serde_json::Value> {
    let arrivals = receive_until(ws, 200, |a| a.last() == Some(&Arrival::QueueEmpty));
    envelopes(&arrivals)
}

/// Reads (and acks with 200) `count` envelopes.
pub fn receive_envelopes(ws: &mut Ws, count: usize) -> Vec<serde_json::Value> {
    let arrivals = receive_until(ws, 200, |a| envelopes(a).len() == count);
    envelopes(&arrivals)
}

/// The receipts among `arrivals`, in order.
pub fn receipts(arrivals: &[Arrival]) -> Vec<serde_json::Value> {
    arrivals
        .iter()
        .filter_map(|arrival| match arrival {
            Arrival::Receipt(json) => Some(json.clone()),
            _ => None,
        })
        .collect()
}

pub fn envelopes(arrivals: &[Arrival]) -> Vec<serde_json::Value> {
    arrivals
        .iter()
        .filter_map(|a| match a {
            Arrival::Envelope(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The decoded content of an envelope.
pub fn content(envelope: &serde_json::Value) -> Vec<u8> {
    base64::decode(envelope["content"].as_str().unwrap().as_bytes()).unwrap()
}
