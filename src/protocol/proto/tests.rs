//! Unit tests of the protobuf codec: round trips against prost's own
//! encoding and the JSON framing, and hostile frames.

use super::envelope::*;
use super::frame::{self, Decoded, ProtoError};
use super::messages::*;
use crate::protocol::envelope::{signal_type_of_spec, spec_type_of_signal};
use crate::protocol::frame::{self as json_frame, Frame, RequestOut, ResponseOut, WsRequest};
use bytes::Bytes;
use prost::Message;
use uuid::Uuid;

fn request_message(id: Option<u64>, verb: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
    WebSocketMessage {
        r#type: Some(MessageType::Request as i32),
        request: Some(WebSocketRequestMessage {
            verb: Some(verb.into()),
            path: Some(path.into()),
            body: body.map(Bytes::copy_from_slice),
            id,
            headers: vec!["X-Signal-Receive-Stories:true".into()],
        }),
        response: None,
    }
    .encode_to_vec()
}

#[test]
fn a_prost_request_decodes_to_the_same_frame_as_its_json_form() {
    let bytes = request_message(Some(7), "put", "/v1/messages/x", Some(b"{\"a\":1}"));
    let Decoded { frame, reply } = frame::decode(&bytes, 1024).unwrap();
    assert!(reply);
    let expected = WsRequest {
        id: 7,
        verb: "PUT".into(),
        path: "/v1/messages/x".into(),
        body: Some(b"{\"a\":1}".to_vec()),
        headers: vec!["X-Signal-Receive-Stories:true".into()],
    };
    let mut json = json_frame::encode_request(&expected).into_bytes();
    assert_eq!(json_frame::decode(&mut json, 1024).unwrap(), frame);
    assert_eq!(frame, Frame::Request(expected));
}

#[test]
fn id_zero_is_an_id_and_no_id_means_no_reply() {
    let zero = frame::decode(&request_message(Some(0), "GET", "/v1/keepalive", None), 64).unwrap();
    assert!(zero.reply);
    let none = frame::decode(&request_message(None, "GET", "/v1/keepalive", None), 64).unwrap();
    assert!(!none.reply);
}

#[test]
fn our_encodings_are_what_prost_reads() {
    let headers = vec!["X-Signal-Timestamp:12".to_string()];
    for (id, body) in [(0u64, None), (u64::MAX, Some(&b"\x00\xffbody"[..])), (300, Some(&b""[..]))]
    {
        let mut out = Vec::new();
        let request =
            RequestOut { id, verb: "PUT", path: "/api/v1/message", body, headers: &headers };
        frame::write_request(&mut out, &request);
        let message = WebSocketMessage::decode(&out[..]).unwrap();
        let inner = message.request.unwrap();
        assert_eq!(message.r#type, Some(1));
        assert_eq!((inner.id, inner.verb.as_deref()), (Some(id), Some("PUT")));
        assert_eq!(inner.body.as_deref(), body);
        assert_eq!(inner.headers, headers);

        let mut out = Vec::new();
        let message_text = Some("OK");
        let response =
            ResponseOut { id, status: 200, message: message_text, body, headers: &headers };
        frame::write_response(&mut out, &response);
        let message = WebSocketMessage::decode(&out[..]).unwrap();
        let inner = message.response.unwrap();
        assert_eq!((message.r#type, inner.id, inner.status), (Some(2), Some(id), Some(200)));
        assert_eq!(inner.body.as_deref(), body);
        assert_eq!(frame::decode(&out, 1 << 20).unwrap().frame, {
            let mut json = Vec::new();
            json_frame::write_response(&mut json, &response);
            json_frame::decode(&mut json, 1 << 20).unwrap()
        });
    }
}

#[test]
fn hostile_frames_are_unreadable() {
    let valid = request_message(Some(1), "GET", "/", None);
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x08],                                           // truncated varint
        vec![0x08, 0xff, 0xff, 0xff],                         // truncated varint
        vec![0x08, 0x00],                                     // type UNKNOWN
        vec![0x08, 0x01],                                     // REQUEST without request
        vec![0x08, 0x02],                                     // RESPONSE without response
        vec![0x08, 0x03],                                     // unknown type
        vec![0x0a, 0x01, 0x00],                               // type with the wrong wire type
        vec![0x08, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], // huge length
        vec![0x08, 0x01, 0x12, 0x02, 0x0b, 0x0c],             // a group inside the request
        vec![0x08, 0x01, 0x13],                               // a group
        vec![0x08, 0x01, 0x12, 0x02, 0x0a, 0x05],             // verb past the end
        vec![0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 0xff],       // verb not UTF-8
    ];
    cases.push(valid[..valid.len() - 1].to_vec());
    // A request without a path, a response without id or status.
    let no_path = WebSocketMessage {
        r#type: Some(1),
        request: Some(WebSocketRequestMessage { verb: Some("GET".into()), ..Default::default() }),
        response: None,
    };
    let no_status = WebSocketMessage {
        r#type: Some(2),
        request: None,
        response: Some(WebSocketResponseMessage { id: Some(1), ..Default::default() }),
    };
    let no_id = WebSocketMessage {
        r#type: Some(2),
        request: None,
        response: Some(WebSocketResponseMessage { status: Some(200), ..Default::default() }),
    };
    cases.extend([no_path.encode_to_vec(), no_status.encode_to_vec(), no_id.encode_to_vec()]);
    for case in cases {
        assert!(matches!(frame::decode(&case, 1024), Err(ProtoError::Unreadable(_))), "{case:x?}");
    }
}

#[test]
fn unknown_fields_are_skipped_and_bounds_hold() {
    let mut bytes = request_message(Some(4), "GET", "/v1/keepalive", None);
    // Unknown fields of every wire type, at the top level.
    bytes.extend_from_slice(&[0x48, 0x01, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x62, 0x02, 0xde, 0xad]);
    assert!(frame::decode(&bytes, 16).unwrap().reply);
    let big = request_message(Some(9), "PUT", "/", Some(&[0u8; 100]));
    assert_eq!(frame::decode(&big, 99), Err(ProtoError::BodyTooLarge { id: Some(9) }));
    let many_headers = WebSocketMessage {
        r#type: Some(1),
        request: Some(WebSocketRequestMessage {
            verb: Some("GET".into()),
            path: Some("/".into()),
            headers: vec![String::new(); frame::HEADERS_MAX + 1],
            ..Default::default()
        }),
        response: None,
    };
    let decoded = frame::decode(&many_headers.encode_to_vec(), 16);
    assert_eq!(decoded, Err(ProtoError::Unreadable("too many headers")));
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 64)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let _ = frame::decode(&bytes, 32);
    }
}

#[test]
fn the_two_type_numberings_map_onto_each_other() {
    for spec in [1u8, 3, 6, 7] {
        let signal = signal_type_of_spec(spec).unwrap() as i64;
        assert_eq!(spec_type_of_signal(signal), Some(spec));
    }
    assert_eq!(spec_type_of_signal(6), Some(7), "6 is sealed sender in Signal's numbering");
    assert_eq!(spec_type_of_signal(8), Some(6), "8 is plaintext in Signal's numbering");
    for refused in [0, 2, 4, 5, 7, 9, -1] {
        assert_eq!(spec_type_of_signal(refused), None, "{refused}");
    }
}

fn stored_envelope(kind: u8, source: Option<Uuid>) -> crate::protocol::envelope::Envelope {
    crate::protocol::envelope::Envelope {
        kind,
        source_uuid: source.map(|uuid| uuid.to_string()),
        source_device: source.map(|_| 2),
        timestamp: 11,
        server_timestamp: 12,
        content: crate::protocol::base64::encode(b"\x00secret\xff"),
        server_guid: Uuid::from_u128(3).to_string(),
        destination_uuid: Uuid::from_u128(4).to_string(),
        urgent: true,
        story: false,
        server_delivered_timestamp: None,
    }
}

#[test]
fn a_stored_envelope_becomes_signals_envelope() {
    let source = Uuid::from_u128(5);
    let json = stored_envelope(1, Some(source)).to_json();
    let envelope = from_envelope_json(&json, false).unwrap();
    assert_eq!(envelope.r#type, Some(EnvelopeType::Ciphertext as i32));
    assert_eq!(envelope.content.as_deref(), Some(&b"\x00secret\xff"[..]));
    assert_eq!(envelope.source_service_id.as_deref(), Some(&source.as_bytes()[..]));
    assert_eq!(envelope.server_guid.as_deref(), Some(&Uuid::from_u128(3).as_bytes()[..]));
    assert_eq!((envelope.client_timestamp, envelope.server_timestamp), (Some(11), Some(12)));
    assert_eq!((envelope.ephemeral, envelope.story), (None, None));
    let sealed = from_envelope_json(&stored_envelope(7, None).to_json(), true).unwrap();
    assert_eq!(sealed.r#type, Some(EnvelopeType::UnidentifiedSender as i32));
    assert_eq!((sealed.source_service_id, sealed.source_device), (None, None));
    assert_eq!(sealed.ephemeral, Some(true));
    // No retired field number is ever written.
    let bytes = envelope.encode_to_vec();
    let mut buf = &bytes[..];
    while !buf.is_empty() {
        let (tag, wire_type) = prost::encoding::decode_key(&mut buf).unwrap();
        assert!(![2, 9, 11, 13, 15].contains(&tag), "retired field {tag}");
        prost::encoding::skip_field(wire_type, tag, &mut buf, Default::default()).unwrap();
    }
    assert!(from_envelope_json(b"{\"type\":1}", false).is_err());
    assert!(from_envelope_json(b"garbage", false).is_err());
}

#[test]
fn a_delivery_receipt_is_one_envelope_per_timestamp() {
    let acker = Uuid::from_u128(8);
    let json = format!(
        r#"{{"type":"DELIVERY","timestamps":[10,11],"sourceUuid":"{acker}","sourceDevice":3}}"#
    );
    let guid = Uuid::from_u128(1);
    let to = Uuid::from_u128(2);
    let envelopes = delivery_receipt_envelopes(json.as_bytes(), &guid, &to, 50).unwrap().unwrap();
    assert_eq!(envelopes.len(), 2);
    for (envelope, timestamp) in envelopes.iter().zip([10, 11]) {
        assert_eq!(envelope.r#type, Some(EnvelopeType::ServerDeliveryReceipt as i32));
        assert_eq!(envelope.client_timestamp, Some(timestamp));
        assert_eq!(envelope.urgent, Some(false));
        assert_eq!(envelope.source_device, Some(3));
        assert_eq!(envelope.source_service_id.as_deref(), Some(&acker.as_bytes()[..]));
    }
    assert_ne!(envelopes[0].server_guid, envelopes[1].server_guid);
    let again = delivery_receipt_envelopes(json.as_bytes(), &guid, &to, 50).unwrap().unwrap();
    assert_eq!(again, envelopes, "a redelivery repeats the GUIDs");
    let read = json.replace("DELIVERY", "READ");
    assert_eq!(delivery_receipt_envelopes(read.as_bytes(), &guid, &to, 50), Ok(None));
}

/// A small deterministic generator for the randomized round trips.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len_max: u64) -> Vec<u8> {
        let len = self.next() % (len_max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, len_max: u64) -> String {
        let alphabet = "abcXYZ09/-_:é ?=&\"\\";
        let chars: Vec<char> = alphabet.chars().collect();
        let len = self.next() % (len_max + 1);
        (0..len).map(|_| chars[(self.next() % chars.len() as u64) as usize]).collect()
    }
}

#[test]
fn random_frames_round_trip_alike_in_both_framings() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..2_000u64 {
        let headers: Vec<String> =
            (0..rng.next() % 4).map(|_| format!("X-{}:{}", round, rng.text(12))).collect();
        let body = (!rng.next().is_multiple_of(3)).then(|| rng.bytes(300));
        let id = if round.is_multiple_of(5) { 0 } else { rng.next() };
        let (mut json, mut binary) = (Vec::new(), Vec::new());
        if round.is_multiple_of(2) {
            let path = format!("/{}", rng.text(40));
            let verb = ["GET", "PUT", "POST", "DELETE"][(rng.next() % 4) as usize];
            let request =
                RequestOut { id, verb, path: &path, body: body.as_deref(), headers: &headers };
            json_frame::write_request(&mut json, &request);
            frame::write_request(&mut binary, &request);
        } else {
            let message = (rng.next().is_multiple_of(2)).then(|| rng.text(20));
            let status = 100 + (rng.next() % 500) as u16;
            let response = ResponseOut {
                id,
                status,
                message: message.as_deref(),
                body: body.as_deref(),
                headers: &headers,
            };
            json_frame::write_response(&mut json, &response);
            frame::write_response(&mut binary, &response);
        }
        let from_json = json_frame::decode(&mut json, 1 << 20).unwrap();
        let from_binary = frame::decode(&binary, 1 << 20).unwrap();
        assert_eq!(from_binary.frame, from_json, "round {round}");
        assert!(from_binary.reply);
        assert!(WebSocketMessage::decode(&binary[..]).is_ok(), "prost reads round {round}");
    }
}

#[test]
fn random_stored_envelopes_keep_their_content_and_fields() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..500 {
        let content = rng.bytes(400);
        let sealed = rng.next().is_multiple_of(2);
        let mut stored = stored_envelope(if sealed { 7 } else { [1, 3, 6][round % 3] }, None);
        if !sealed {
            stored.source_uuid = Some(Uuid::from_u128(u128::from(rng.next())).to_string());
            stored.source_device = Some((rng.next() % 127 + 1) as u32);
        }
        stored.content = crate::protocol::base64::encode(&content);
        stored.timestamp = rng.next();
        stored.urgent = rng.next().is_multiple_of(2);
        stored.story = rng.next().is_multiple_of(2);
        let envelope = from_envelope_json(&stored.to_json(), false).unwrap();
        let again = Envelope::decode(&envelope.encode_to_vec()[..]).unwrap();
        assert_eq!(again, envelope);
        assert_eq!(again.content.as_deref(), Some(&content[..]), "round {round}");
        assert_eq!(again.client_timestamp, Some(stored.timestamp));
        assert_eq!(again.urgent, Some(stored.urgent));
        assert_eq!(again.story, stored.story.then_some(true));
        assert_eq!(again.source_device, stored.source_device);
        let kind = signal_type_of_spec(stored.kind).map(|kind| kind as i32);
        assert_eq!(again.r#type, kind);
    }
}
