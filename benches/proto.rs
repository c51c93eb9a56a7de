//! The two framings' per-message codec work, side by side in one run:
//! what a delivery costs to encode (JSON frame with a Base64 body, against
//! Signal's protobuf `Envelope` built from the same stored JSON), and what
//! a client's send frame costs to decode in each framing.
//!
//! `delivery/*` starts from the stored value (the envelope JSON) and ends
//! with the frame payload in a reused buffer; `from_stored_json` times the
//! protobuf form's conversion alone (JSON parse and Base64 decode), which a
//! protobuf stored form would not pay. `send_decode/*` decodes the same
//! request (verb, path, headers, a 64-byte-content send body) from a text
//! or a binary frame payload. Each asserts both paths carry the same
//! content before timing.

#[path = "common/sample.rs"]
mod sample;

use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use std::hint::black_box;
use switchboard::protocol::base64;
use switchboard::protocol::envelope::{with_delivered_timestamp, Envelope};
use switchboard::protocol::frame::{self, Frame, RequestOut, WsRequest};
use switchboard::protocol::proto::envelope::from_envelope_json;
use switchboard::protocol::proto::frame as proto_frame;
use switchboard::protocol::proto::messages::Envelope as ProtoEnvelope;

fn stored_json() -> Vec<u8> {
    sample::envelope().to_json()
}

const HEADERS: [&str; 1] = ["X-Signal-Timestamp: 1700000000002"];

fn deliver_json(out: &mut Vec<u8>, stored: &[u8]) {
    let body = with_delivered_timestamp(stored, 1_700_000_000_002);
    let headers = [HEADERS[0].to_string()];
    let request = RequestOut {
        id: 42,
        verb: "PUT",
        path: "/api/v1/message",
        body: Some(&body),
        headers: &headers,
    };
    frame::write_request(out, &request);
}

fn deliver_protobuf(out: &mut Vec<u8>, stored: &[u8]) {
    let body = from_envelope_json(stored, false).expect("stored envelope").encode_to_vec();
    let headers = ["X-Signal-Timestamp:1700000000002".to_string()];
    let request = RequestOut {
        id: 42,
        verb: "PUT",
        path: "/api/v1/message",
        body: Some(&body),
        headers: &headers,
    };
    proto_frame::write_request(out, &request);
}

fn delivery(c: &mut Criterion) {
    let stored = stored_json();
    let (mut json_out, mut proto_out) = (Vec::new(), Vec::new());
    deliver_json(&mut json_out, &stored);
    deliver_protobuf(&mut proto_out, &stored);
    let Frame::Request(request) = frame::decode(&mut json_out.clone(), 1 << 20).unwrap() else {
        panic!("a request")
    };
    let json_envelope: Envelope = serde_json::from_slice(&request.body.unwrap()).unwrap();
    let decoded = proto_frame::decode(&proto_out, 1 << 20).unwrap();
    let Frame::Request(request) = decoded.frame else { panic!("a request") };
    let proto_envelope = ProtoEnvelope::decode(&request.body.unwrap()[..]).unwrap();
    assert_eq!(
        base64::decode(json_envelope.content.as_bytes()).unwrap(),
        proto_envelope.content.unwrap().to_vec(),
        "both framings deliver the same content"
    );
    let mut group = c.benchmark_group("delivery");
    let mut out = Vec::with_capacity(4096);
    group.bench_function("json", |b| {
        b.iter(|| {
            out.clear();
            deliver_json(&mut out, black_box(&stored));
            black_box(out.len())
        })
    });
    group.bench_function("protobuf", |b| {
        b.iter(|| {
            out.clear();
            deliver_protobuf(&mut out, black_box(&stored));
            black_box(out.len())
        })
    });
    group.bench_function("from_stored_json", |b| {
        b.iter(|| black_box(from_envelope_json(black_box(&stored), false).unwrap()))
    });
    group.finish();
}

fn send_request() -> WsRequest {
    let content = base64::encode(&[7u8; 64]);
    let send = format!(
        r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":4242,"content":"{content}"}}],"online":false,"urgent":true,"timestamp":1700000000000}}"#
    );
    WsRequest {
        id: 42,
        verb: "PUT".into(),
        path: "/v1/messages/2c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into(),
        body: Some(send.into_bytes()),
        headers: vec![],
    }
}

fn send_decode(c: &mut Criterion) {
    let request = send_request();
    let text = frame::encode_request(&request).into_bytes();
    let mut binary = Vec::new();
    proto_frame::write_request(&mut binary, &request.to_out());
    let from_text = frame::decode(&mut text.clone(), 1 << 20).unwrap();
    assert_eq!(proto_frame::decode(&binary, 1 << 20).unwrap().frame, from_text);
    let mut group = c.benchmark_group("send_decode");
    let mut scratch = text.clone();
    group.bench_function("json", |b| {
        b.iter(|| {
            scratch.copy_from_slice(&text);
            black_box(frame::decode(black_box(&mut scratch), 1 << 20).unwrap())
        })
    });
    group.bench_function("protobuf", |b| {
        b.iter(|| black_box(proto_frame::decode(black_box(&binary), 1 << 20).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, delivery, send_decode);
criterion_main!(benches);
