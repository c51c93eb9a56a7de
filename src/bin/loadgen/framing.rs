//! The framing a `messaging` run speaks (`--framing`): the spec's JSON text
//! frames, or Signal's protobuf binary frames (one `WebSocketMessage` each,
//! asked for at the upgrade with `?framing=protobuf`), in which a recipient
//! receives each envelope as a protobuf `Envelope` with its content raw
//! instead of as JSON with its content in Base64.
//!
//! The JSON path is the one the scenario always had, unchanged (a match on
//! the framing is all it gained), so runs from before the option compare.
//! The protobuf path encodes and decodes frames with the server's own codec
//! ([`switchboard::protocol::proto::frame`]), as a client of it. A send's
//! body is the same JSON in both framings (Signal's clients send JSON there
//! too), with envelope type 1 (ciphertext), the same in both numberings.
//! In both, the server's delivery receipts to a sender are requests it
//! acknowledges like any other (`PUT /api/v1/receipt` in JSON, `PUT
//! /api/v1/message` with a `SERVER_DELIVERY_RECEIPT` envelope in protobuf).

use crate::client::WsConn;
use crate::measure::Counters;
use crate::messaging::{ok_response, send_body, send_request};
use prost::encoding::{decode_key, decode_varint, WireType};
use std::io;
use switchboard::config::Framing;
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame, RequestOut, ResponseOut, WsRequest};
use switchboard::protocol::proto::frame as proto_frame;

/// The largest body the load generator takes in a frame from the server.
const BODY_BYTES_MAX: usize = 1 << 20;

/// The path a device delivers envelopes (and protobuf receipts) on.
const MESSAGE_PATH: &str = "/api/v1/message";

/// `Envelope.Type` SERVER_DELIVERY_RECEIPT: a receipt, not a delivery.
const SERVER_DELIVERY_RECEIPT: u64 = 5;

/// The WebSocket upgrade path of a device with query credentials. JSON
/// asks for no framing (the server's default), as the scenario always did.
pub fn upgrade_path(framing: Framing, login: &str, password: &str) -> String {
    match framing {
        Framing::Json => format!("/v1/websocket/?login={login}&password={password}"),
        Framing::Protobuf => {
            format!("/v1/websocket/?login={login}&password={password}&framing=protobuf")
        }
    }
}

/// Queues the framed `PUT {path}` of send `id` (the request id) carrying
/// `payload` (raw; Base64 in the JSON body), client timestamp `timestamp`.
pub fn queue_send(
    conn: &mut WsConn,
    framing: Framing,
    request: (u64, &str),
    payload: &[u8],
    online: bool,
    timestamp: u64,
) -> io::Result<()> {
    let (id, path) = request;
    let content = base64::encode(payload);
    match framing {
        Framing::Json => conn.queue_text(send_request(id, path, &content, online, timestamp)),
        Framing::Protobuf => {
            let body = send_body(&content, online, timestamp);
            let mut out = Vec::with_capacity(body.len() + path.len() + 32);
            let request =
                RequestOut { id, verb: "PUT", path, body: Some(body.as_bytes()), headers: &[] };
            proto_frame::write_request(&mut out, &request);
            conn.queue_binary(out)
        }
    }
}

/// Queues a 200 answering the server's request `id`.
pub fn queue_ok(conn: &mut WsConn, framing: Framing, id: u64) -> io::Result<()> {
    match framing {
        Framing::Json => conn.queue_text(ok_response(id)),
        Framing::Protobuf => {
            let mut out = Vec::with_capacity(16);
            let response =
                ResponseOut { id, status: 200, message: Some("OK"), body: None, headers: &[] };
            proto_frame::write_response(&mut out, &response);
            conn.queue_binary(out)
        }
    }
}

/// Decodes one message from the server (a text frame's JSON, or a binary
/// frame's `WebSocketMessage`).
pub fn decode(framing: Framing, mut message: Vec<u8>) -> io::Result<Frame> {
    match framing {
        Framing::Json => frame::decode(&mut message, BODY_BYTES_MAX).map_err(io::Error::other),
        Framing::Protobuf => proto_frame::decode(&message, BODY_BYTES_MAX)
            .map(|decoded| decoded.frame)
            .map_err(io::Error::other),
    }
}

/// Records the delivery `request` is, if it is one: an envelope, not a
/// receipt nor `queue/empty`. Its content starts with the send stamps
/// (empty when unreadable: counted, but in no latency histogram).
pub fn record_delivery(framing: Framing, request: &WsRequest, counters: &Counters) {
    if request.path != MESSAGE_PATH {
        return;
    }
    let body = request.body.as_deref().unwrap_or_default();
    match framing {
        Framing::Json => counters.record_delivery(&envelope_content(body).unwrap_or_default()),
        Framing::Protobuf => match envelope_parts(body) {
            Some((SERVER_DELIVERY_RECEIPT, _)) => {}
            Some((_, content)) => counters.record_delivery(content),
            None => counters.record_delivery(&[]),
        },
    }
}

/// The decoded `content` of an envelope's JSON. Base64 never needs JSON
/// escapes, so the string runs to the next quote: this avoids building a
/// whole JSON tree per delivery, which cost the load generator more CPU
/// than the brokers' clients spend (they read the payload raw).
pub fn envelope_content(json: &[u8]) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"content\":\"";
    let start = json.windows(KEY.len()).position(|window| window == KEY)? + KEY.len();
    let len = json[start..].iter().position(|&byte| byte == b'"')?;
    base64::decode(&json[start..start + len]).ok()
}

/// The type (field 1, 0 when absent) and content (field 8, borrowed; empty
/// when absent) of a protobuf `Envelope`, read field by field without
/// building the message; `None` when the bytes are not protobuf.
pub fn envelope_parts(mut buf: &[u8]) -> Option<(u64, &[u8])> {
    let (mut kind, mut content) = (0, &[][..]);
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        match wire_type {
            WireType::Varint => {
                let value = decode_varint(&mut buf).ok()?;
                if tag == 1 {
                    kind = value;
                }
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok();
                let (value, rest) = buf.split_at_checked(len?)?;
                if tag == 8 {
                    content = value;
                }
                buf = rest;
            }
            WireType::SixtyFourBit => buf = buf.get(8..)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..)?,
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some((kind, content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prost::Message;
    use switchboard::protocol::proto::messages::{Envelope, EnvelopeType};

    #[test]
    fn envelope_content_finds_and_decodes_the_payload() {
        let json = br#"{"type":1,"content":"AAECAw==","serverGuid":"x"}"#;
        assert_eq!(envelope_content(json), Some(vec![0, 1, 2, 3]));
        assert_eq!(envelope_content(br#"{"type":1}"#), None);
        assert_eq!(envelope_content(br#"{"content":"AAEC"#), None, "unterminated");
        assert_eq!(envelope_content(br#"{"content":"!!!"}"#), None, "not Base64");
    }

    #[test]
    fn envelope_parts_reads_type_and_raw_content_of_a_protobuf_envelope() {
        let envelope = Envelope {
            r#type: Some(EnvelopeType::Ciphertext as i32),
            client_timestamp: Some(7),
            content: Some(Bytes::from_static(&[0, 1, 2, 3])),
            server_timestamp: Some(1_700_000_000_000),
            server_guid: Some(Bytes::from_static(&[9; 16])),
            urgent: Some(true),
            ..Envelope::default()
        };
        let bytes = envelope.encode_to_vec();
        assert_eq!(envelope_parts(&bytes), Some((1, &[0u8, 1, 2, 3][..])));
        let receipt = Envelope {
            r#type: Some(EnvelopeType::ServerDeliveryReceipt as i32),
            client_timestamp: Some(7),
            ..Envelope::default()
        };
        assert_eq!(envelope_parts(&receipt.encode_to_vec()), Some((5, &[][..])));
        assert_eq!(envelope_parts(&bytes[..bytes.len() - 1]), None, "cut short");
        assert_eq!(envelope_parts(b"{\"content\":1}"), None, "JSON is not an envelope");
    }

    #[test]
    fn a_protobuf_send_decodes_as_the_server_reads_it() {
        let body = send_body("AAECAw==", false, 42);
        let mut out = Vec::new();
        let request = RequestOut {
            id: 3,
            verb: "PUT",
            path: "/v1/messages/x",
            body: Some(body.as_bytes()),
            headers: &[],
        };
        proto_frame::write_request(&mut out, &request);
        let Frame::Request(decoded) = decode(Framing::Protobuf, out).unwrap() else {
            panic!("a request")
        };
        assert_eq!((decoded.id, decoded.path.as_str()), (3, "/v1/messages/x"));
        assert_eq!(decoded.body.as_deref(), Some(body.as_bytes()));
    }
}
