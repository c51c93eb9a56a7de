//! The frames a `day` device writes (JSON framing, as the spec's clients):
//! a send to every device of an account (identified, or sealed sender with
//! the recipient's access key), a typing indicator, a READ receipt; and
//! the content every message carries, which says who sent it so the
//! recipient can answer with a receipt.

use crate::accounts::REGISTRATION_ID;
use crate::schedule::stamped_payload;
use std::fmt::Write;
use std::time::Instant;
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, WsRequest};

/// The kind byte of a content: a message from another account.
pub const KIND_MESSAGE: u8 = 0;
/// The kind byte of a content: a sync copy to the sender's own device.
pub const KIND_SYNC: u8 = 1;

/// Where the sender's account index sits in a content (after the two
/// send stamps), and the kind byte after it.
const SENDER_AT: usize = 16;
const KIND_AT: usize = 20;

/// A content of `bytes` (at least 24) written now: the send stamps, the
/// sender's account index and the kind.
pub fn content(bytes: usize, sender: u32, kind: u8) -> Vec<u8> {
    let mut payload = stamped_payload(Instant::now(), bytes.max(KIND_AT + 1));
    payload[SENDER_AT..KIND_AT].copy_from_slice(&sender.to_le_bytes());
    payload[KIND_AT] = kind;
    payload
}

/// What a received content says: (write stamp in microseconds since the
/// stamp base, sender account index, kind), or `None` if it is too short.
pub fn read_content(content: &[u8]) -> Option<(u64, u32, u8)> {
    let written = u64::from_be_bytes(content.get(8..16)?.try_into().ok()?);
    let sender = u32::from_le_bytes(content.get(SENDER_AT..KIND_AT)?.try_into().ok()?);
    Some((written, sender, *content.get(KIND_AT)?))
}

/// A send of `content` to `devices` of account `uuid`: sealed sender with
/// `access_key_b64`, else identified; urgent unless a sync copy.
pub fn send(
    id: u64,
    uuid: &str,
    devices: &[u32],
    content: &[u8],
    access_key_b64: Option<&str>,
    timestamp: u64,
) -> String {
    let content_b64 = base64::encode(content);
    // Spec numbering: 1 ciphertext, 7 sealed sender.
    let kind = if access_key_b64.is_some() { 7 } else { 1 };
    let mut body = String::with_capacity(content_b64.len() * devices.len() + 128);
    body.push_str(r#"{"messages":["#);
    for (index, device) in devices.iter().enumerate() {
        let comma = if index > 0 { "," } else { "" };
        let _ = write!(
            body,
            r#"{comma}{{"type":{kind},"destinationDeviceId":{device},"destinationRegistrationId":{REGISTRATION_ID},"content":"{content_b64}"}}"#
        );
    }
    let urgent = content.get(KIND_AT) != Some(&KIND_SYNC);
    let _ = write!(body, r#"],"online":false,"urgent":{urgent},"timestamp":{timestamp}}}"#);
    let headers = access_key_b64
        .map(|key| vec![format!("Unidentified-Access-Key: {key}")])
        .unwrap_or_default();
    request(id, format!("/v1/messages/{uuid}"), body, headers)
}

/// A typing-started indicator to account `uuid`.
pub fn typing(id: u64, uuid: &str, timestamp: u64) -> String {
    let body = format!(r#"{{"action":"STARTED","timestamp":{timestamp}}}"#);
    request(id, format!("/v1/typing/{uuid}"), body, Vec::new())
}

/// A READ receipt for the message sent at `timestamp` to account `uuid`.
pub fn read_receipt(id: u64, uuid: &str, timestamp: u64) -> String {
    let body = format!(r#"{{"type":"READ","timestamps":[{timestamp}]}}"#);
    request(id, format!("/v1/receipts/{uuid}"), body, Vec::new())
}

/// A framed `PUT path` with `body` and `headers`.
fn request(id: u64, path: String, body: String, headers: Vec<String>) -> String {
    let request =
        WsRequest { id, verb: "PUT".into(), path, body: Some(body.into_bytes()), headers };
    frame::encode_request(&request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::protocol::envelope::SendRequest;
    use switchboard::protocol::frame::Frame;

    #[test]
    fn a_sealed_send_to_two_devices_decodes_as_the_server_reads_it() {
        let payload = content(40, 7, KIND_MESSAGE);
        assert_eq!(payload.len(), 40);
        let (_, sender, kind) = read_content(&payload).unwrap();
        assert_eq!((sender, kind), (7, KIND_MESSAGE));
        let text = send(3, "u-1", &[1, 2], &payload, Some("a2V5"), 9);
        let Frame::Request(request) = frame::decode(&mut text.into_bytes(), 1 << 20).unwrap()
        else {
            panic!("a request")
        };
        assert_eq!(request.headers, vec!["Unidentified-Access-Key: a2V5".to_string()]);
        let mut body = request.body.unwrap();
        let parsed: SendRequest = simd_json::serde::from_slice(&mut body).unwrap();
        let send = parsed.validate().unwrap();
        assert_eq!(send.messages.len(), 2);
        assert!(send.urgent && !send.online);
        assert_eq!(send.messages[1].device_id, 2);
        assert_eq!(send.messages[0].kind, 7);
    }

    #[test]
    fn a_sync_copy_is_not_urgent_and_a_short_content_reads_as_nothing() {
        let payload = content(24, 1, KIND_SYNC);
        let text = send(1, "u", &[2], &payload, None, 1);
        let Frame::Request(request) = frame::decode(&mut text.into_bytes(), 1 << 20).unwrap()
        else {
            panic!("a request")
        };
        let body = String::from_utf8(request.body.unwrap()).unwrap();
        assert!(body.contains(r#""urgent":false"#), "{body}");
        assert_eq!(read_content(&payload[..20]), None);
    }
}
