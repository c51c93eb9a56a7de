//! Codec micro-benchmarks: WebSocket frame encode/decode, envelope JSON,
//! Base64. Baselines in the same run: serde_json parsing of the same frame
//! (what simd-json replaces): a parse into a `Value` tree, and an
//! equal-work decode (typed fields, owned strings, Base64 body decoded, the
//! same input copy as ours), plus a plain memcpy of the same bytes.
//!
//! `ws_read/*` and `ws_write/*` time the WebSocket layer each side of that:
//! reading a client's masked send frame with `ws_frames::FrameReader`
//! against tungstenite's `WebSocket::read` on an in-memory stream (what the
//! server did before), and writing a delivery frame with `write_request`
//! into a reused buffer against serde_json plus tungstenite's framing.
//! Each asserts both paths see (or write) the same bytes before timing.

#[path = "common/sample.rs"]
mod sample;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sample::envelope;
use std::hint::black_box;
use std::io;
use switchboard::config::Limits;
use switchboard::protocol::base64;
use switchboard::protocol::envelope::{with_delivered_timestamp, Envelope};
use switchboard::protocol::frame::{decode, encode_request, write_request, RequestOut, WsRequest};
use switchboard::protocol::ws_frames::{self, Event, FrameReader};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

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

/// The recipient of the send in `ws_read/*` (any UUID: nothing looks it up).
const DESTINATION_UUID: &str = "3c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c";
/// Frames in one read of the `batch16` benchmarks.
const BATCH_FRAMES: usize = 16;
/// The mask key of the client frames (any key: unmasking cost is the same).
const CLIENT_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client's typical send as the JSON text of one frame: `PUT
/// /v1/messages/<uuid>` whose body is the send JSON (the loadgen's shape)
/// with one 64-byte content.
fn send_frame_text() -> String {
    let content = base64::encode(&[7u8; 64]);
    let send = format!(
        r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":4242,"content":"{content}"}}],"online":false,"urgent":true,"timestamp":1700000000000}}"#
    );
    encode_request(&WsRequest {
        id: 42,
        verb: "PUT".into(),
        path: format!("/v1/messages/{DESTINATION_UUID}"),
        body: Some(send.into_bytes()),
        headers: vec![],
    })
}

/// `payload` as one final, masked client text frame (RFC 6455 section 5.2).
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= usize::from(u16::MAX), "16-bit lengths only");
    let mut frame = vec![0x81];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&CLIENT_MASK);
    let start = frame.len();
    frame.extend_from_slice(payload);
    // Masking is the same XOR as unmasking.
    ws_frames::unmask(&mut frame[start..], CLIENT_MASK);
    frame
}

/// The bytes between the socket and tungstenite, as the server kept them
/// before `ws_frames`: the load generator's `MemStream`, the same file.
#[path = "../src/bin/loadgen/memstream.rs"]
#[allow(dead_code, unused_imports)] // its unit tests do not run in a bench
mod memstream;
use memstream::MemStream;

/// tungstenite's server socket with the settings the server used
/// (`ws_config` before `ws_frames`: a 128-byte read chunk, no write buffer).
fn tungstenite_server() -> WebSocket<MemStream> {
    let frame_bytes_max = Limits::default().frame_bytes_max;
    let config = WebSocketConfig::default()
        .read_buffer_size(128)
        .write_buffer_size(0)
        .max_write_buffer_size(frame_bytes_max * 4)
        .max_message_size(Some(frame_bytes_max))
        .max_frame_size(Some(frame_bytes_max));
    WebSocket::from_raw_socket(MemStream::default(), Role::Server, Some(config))
}

/// Feeds `wire` and reads every message in it as the server's session loop
/// does now: up to `Drained`, which releases the reader's input. Returns the
/// payload bytes seen (the session decodes each payload in place).
fn read_ours(reader: &mut FrameReader, wire: &[u8], frame_bytes_max: usize) -> usize {
    reader.feed(wire);
    let mut seen = 0;
    while let Some(event) = reader.next(frame_bytes_max).expect("valid frames") {
        let Event::Text(span) = event else { panic!("only text frames were fed") };
        seen += black_box(reader.payload_mut(span)).len();
    }
    seen
}

/// The same through tungstenite as the server did before: each message
/// copied out of the `Message` into the `Vec` the session decoded, reading
/// up to `WouldBlock`.
fn read_tungstenite(ws: &mut WebSocket<MemStream>, wire: &[u8]) -> usize {
    ws.get_mut().feed(wire);
    let mut seen = 0;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => seen += black_box(text.as_bytes().to_vec()).len(),
            Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                return seen
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn ws_read(c: &mut Criterion) {
    let frame_bytes_max = Limits::default().frame_bytes_max;
    let text = send_frame_text();
    let one = client_text_frame(text.as_bytes());
    let batch = one.repeat(BATCH_FRAMES);
    // Both paths see the same messages before either is timed.
    let (mut reader, mut ws) = (FrameReader::default(), tungstenite_server());
    assert_eq!(read_ours(&mut reader, &batch, frame_bytes_max), text.len() * BATCH_FRAMES);
    assert_eq!(read_tungstenite(&mut ws, &batch), text.len() * BATCH_FRAMES);
    println!("ws_read: a {}-byte frame carrying {} bytes of JSON", one.len(), text.len());

    let mut group = c.benchmark_group("ws_read");
    for (name, wire, frames) in [("one", &one, 1), ("batch16", &batch, BATCH_FRAMES)] {
        group.throughput(Throughput::Elements(frames as u64));
        group.bench_function(format!("{name}/ours"), |b| {
            b.iter(|| read_ours(&mut reader, black_box(wire), frame_bytes_max))
        });
        group.bench_function(format!("{name}/tungstenite"), |b| {
            b.iter(|| read_tungstenite(&mut ws, black_box(wire)))
        });
    }
    group.finish();
}

/// The server request frame as serde_json encoded it before
/// `frame::write_request` (the Base64 body encoded into its own `String`).
#[derive(serde::Serialize)]
struct SerdeRequestOut<'a> {
    id: u64,
    verb: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    headers: &'a [String],
}

/// A delivery's request frame as the server writes it now: straight into
/// the connection's output buffer.
fn write_ours(out: &mut Vec<u8>, request: &RequestOut<'_>) {
    let start = ws_frames::begin_frame(out);
    write_request(out, request);
    ws_frames::end_frame(out, start, ws_frames::OPCODE_TEXT);
}

/// The same as the server did before: serde_json text, then tungstenite
/// framing it into the `MemStream`, whose output the session took whole.
fn write_serde_tungstenite(ws: &mut WebSocket<MemStream>, request: &RequestOut<'_>) -> Vec<u8> {
    let text = serde_json::to_string(&SerdeRequestOut {
        id: request.id,
        verb: request.verb,
        path: request.path,
        body: request.body.map(base64::encode),
        headers: request.headers,
    })
    .expect("strings and integers encode");
    ws.send(Message::text(text)).expect("MemStream never refuses");
    ws.get_mut().take_output()
}

fn ws_write(c: &mut Criterion) {
    // A delivery of the 64-byte content `ws_read` sends.
    let body = Envelope { content: base64::encode(&[7u8; 64]), ..envelope() }.to_json();
    // Built once for both: the server formats it per frame either way.
    let headers = vec!["X-Signal-Timestamp: 1700000000000".to_string()];
    let request = RequestOut {
        id: 42,
        verb: "PUT",
        path: "/api/v1/message",
        body: Some(&body),
        headers: &headers,
    };
    let (mut out, mut ws) = (Vec::new(), tungstenite_server());
    write_ours(&mut out, &request);
    assert_eq!(out, write_serde_tungstenite(&mut ws, &request), "both write the same frame");
    println!("ws_write: a {}-byte frame carrying a {}-byte envelope", out.len(), body.len());

    let mut group = c.benchmark_group("ws_write");
    group.throughput(Throughput::Elements(1));
    group.bench_function("delivery/ours", |b| {
        b.iter(|| {
            out.clear();
            write_ours(&mut out, black_box(&request));
            black_box(&out);
        })
    });
    group.bench_function("delivery/serde_tungstenite", |b| {
        b.iter(|| black_box(write_serde_tungstenite(&mut ws, black_box(&request))))
    });
    group.finish();
}

criterion_group!(benches, codec, ws_read, ws_write);
criterion_main!(benches);
