//! Codec micro-benchmarks: WebSocket frame encode/decode, envelope JSON,
//! Base64. Baselines in the same run: serde_json parsing of the same frame
//! (what simd-json replaces): a parse into a `Value` tree, and an
//! equal-work decode (typed fields, owned strings, Base64 body decoded, the
//! same input copy as ours), plus a plain memcpy of the same bytes.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use switchboard::protocol::base64;
use switchboard::protocol::envelope::{with_delivered_timestamp, Envelope};
use switchboard::protocol::frame::{decode, encode_request, WsRequest};

fn envelope() -> Envelope {
    Envelope {
        kind: 1,
        source_uuid: Some("8c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into()),
        source_device: Some(1),
        timestamp: 1_700_000_000_000,
        server_timestamp: 1_700_000_000_001,
        content: base64::encode(&[7u8; 160]),
        server_guid: "1c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into(),
        destination_uuid: "2c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into(),
        urgent: true,
        story: false,
        server_delivered_timestamp: None,
    }
}

fn frame_text() -> String {
    encode_request(&WsRequest {
        id: 42,
        verb: "PUT".into(),
        path: "/api/v1/message".into(),
        body: Some(envelope().to_json()),
        headers: vec!["X-Signal-Timestamp: 1700000000000".into()],
    })
}

/// The frame as serde_json would decode it doing the same work as
/// `frame::decode`: owned verb, path and headers, the body Base64-decoded.
#[derive(serde::Deserialize)]
struct SerdeRequest {
    id: u64,
    verb: String,
    path: String,
    body: Option<String>,
    #[serde(default)]
    headers: Vec<String>,
}

fn serde_equal_work(bytes: &[u8]) -> WsRequest {
    let parsed: SerdeRequest = serde_json::from_slice(bytes).expect("valid frame");
    WsRequest {
        id: parsed.id,
        verb: parsed.verb,
        path: parsed.path,
        body: parsed.body.map(|body| base64::decode(body.as_bytes()).expect("Base64")),
        headers: parsed.headers,
    }
}

fn codec(c: &mut Criterion) {
    let text = frame_text();
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("decode_simd_json", |b| {
        b.iter_batched(
            || text.as_bytes().to_vec(),
            |mut bytes| black_box(decode(&mut bytes, 1 << 20)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(text.as_bytes()).unwrap()))
    });
    group.bench_function("baseline_serde_json_equal_work", |b| {
        b.iter_batched(
            || text.as_bytes().to_vec(),
            |bytes| black_box(serde_equal_work(&bytes)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("baseline_memcpy", |b| b.iter(|| black_box(text.as_bytes().to_vec())));
    let request = WsRequest {
        id: 42,
        verb: "PUT".into(),
        path: "/api/v1/message".into(),
        body: Some(envelope().to_json()),
        headers: vec![],
    };
    group.bench_function("encode", |b| b.iter(|| black_box(encode_request(black_box(&request)))));
    group.finish();

    let mut group = c.benchmark_group("envelope");
    let stored = envelope().to_json();
    group.bench_function("encode_json", |b| b.iter(|| black_box(envelope().to_json())));
    group.bench_function("splice_delivered_timestamp", |b| {
        b.iter(|| black_box(with_delivered_timestamp(&stored, 1_700_000_000_002)))
    });
    group.bench_function("baseline_reparse_and_encode", |b| {
        b.iter(|| {
            let mut envelope: Envelope = serde_json::from_slice(&stored).unwrap();
            envelope.server_delivered_timestamp = Some(1_700_000_000_002);
            black_box(serde_json::to_vec(&envelope).unwrap())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("base64");
    let content = vec![9u8; 1024];
    let encoded = base64::encode(&content);
    group.throughput(Throughput::Bytes(content.len() as u64));
    group
        .bench_function("encode_1k", |b| b.iter(|| black_box(base64::encode(black_box(&content)))));
    group.bench_function("decode_1k", |b| {
        b.iter(|| black_box(base64::decode(black_box(encoded.as_bytes()))))
    });
    group.bench_function("baseline_memcpy_1k", |b| b.iter(|| black_box(content.clone())));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
