//! Conformance of the protobuf framing (issue 20) against a fully
//! independent codec: `protoc` encodes the client's text-format messages
//! and decodes the server's binary frames with `proto/*.proto`, so the
//! server's bytes and the checked-in .proto files are checked together.
//! No test code here touches a protobuf byte itself.
//!
//! `protoc` is part of the test toolchain (`scripts/setup` installs the
//! `protobuf-compiler` package); without it this test fails.

mod common;

use common::{Account, Server, Ws};
use std::io::Write;
use std::process::{Command, Stdio};
use switchboard::protocol::base64;
use tungstenite::Message;
use uuid::Uuid;

/// Runs `protoc --{mode}=signalservice.{message} -I proto proto/{file}`
/// on `input`; its standard output.
fn protoc(mode: &str, message: &str, file: &str, input: &[u8]) -> Vec<u8> {
    let mode = format!("--{mode}=signalservice.{message}");
    let proto = format!("proto/{file}");
    let mut child = Command::new("protoc")
        .args([mode.as_str(), "-I", "proto", proto.as_str()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run protoc ({error}): this test needs the protobuf compiler; \
                 run scripts/setup (it installs the protobuf-compiler package)"
            )
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "protoc {mode} {proto} failed: {stderr}");
    output.stdout
}

/// `text` (text format) as a binary `WebSocketMessage`.
fn encode_message(text: &str) -> Vec<u8> {
    protoc("encode", "WebSocketMessage", "WebSocketResources.proto", text.as_bytes())
}

/// A binary message decoded by protoc into (dotted field path, raw value)
/// pairs, nested messages flattened; fails on fields the .proto lacks.
fn decode(message: &str, file: &str, wire: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8(protoc("decode", message, file, wire)).unwrap();
    let mut prefix: Vec<&str> = Vec::new();
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some(name) = line.strip_suffix(" {") {
            prefix.push(name);
        } else if line == "}" {
            prefix.pop();
        } else {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("line {line:?}"));
            let path = prefix.iter().copied().chain([name]).collect::<Vec<_>>().join(".");
            fields.push((path, value.to_string()));
        }
    }
    let unknown: Vec<_> =
        fields.iter().filter(|(path, _)| path.contains(char::is_numeric)).collect();
    assert!(unknown.is_empty(), "fields {message} does not declare: {unknown:?}\n{text}");
    fields
}

/// The one value of `path` (`None` when absent; fails when repeated).
fn field<'a>(fields: &'a [(String, String)], path: &str) -> Option<&'a str> {
    let mut values = fields.iter().filter(|(name, _)| name == path).map(|(_, value)| value);
    let value = values.next().map(String::as_str);
    assert!(values.next().is_none(), "{path} repeated in {fields:?}");
    value
}

/// The bytes of a text-format string literal (`"..."`, C escapes).
fn unquote(literal: &str) -> Vec<u8> {
    let inner = literal.strip_prefix('"').and_then(|s| s.strip_suffix('"')).expect("quoted");
    let (mut out, mut bytes) = (Vec::new(), inner.bytes().peekable());
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next().expect("escape") {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            digit @ b'0'..=b'7' => {
                let mut value = u32::from(digit - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(&next @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(next - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value).expect("octal escape is one byte"));
            }
            b'x' => {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                let hex = std::str::from_utf8(&hex).expect("hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            }
            other => out.push(other), // \" \' \\
        }
    }
    out
}

/// `bytes` as a text-format string literal (every byte escaped in octal
/// unless plainly printable).
fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => out.push_str(&format!("\\{}", char::from(byte))),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out.push('"');
    out
}

/// The next binary frame on `ws`, decoded by protoc.
fn next_message(ws: &mut Ws) -> Vec<(String, String)> {
    loop {
        match ws.read().expect("read frame") {
            Message::Binary(wire) => {
                return decode("WebSocketMessage", "WebSocketResources.proto", &wire)
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?} on a protobuf connection"),
        }
    }
}

/// Reads the next server request, checks its verb and path, answers it 200
/// (protoc-encoded) and returns its fields.
fn answer_request(ws: &mut Ws, path: &str) -> Vec<(String, String)> {
    let message = next_message(ws);
    assert_eq!(field(&message, "type"), Some("REQUEST"), "{message:?}");
    assert_eq!(field(&message, "request.verb"), Some("\"PUT\""));
    assert_eq!(field(&message, "request.path").map(unquote), Some(path.as_bytes().to_vec()));
    let id = field(&message, "request.id").expect("server requests carry an id");
    let response = format!("type: RESPONSE response {{ id: {id} status: 200 message: \"OK\" }}");
    ws.send(Message::binary(encode_message(&response))).unwrap();
    message
}

fn connect(server: &Server, account: &Account) -> Ws {
    let url = format!(
        "ws://{}/v1/websocket/?login={}.{}&password={}&framing=protobuf",
        server.addr(),
        account.uuid,
        account.device_id,
        account.password
    );
    common::connect_url(&url).expect("protobuf websocket")
}

/// Sends a message as a protoc-encoded request and checks the response.
fn send_message(ws: &mut Ws, recipient: &Account, content: &[u8]) {
    let body = serde_json::json!({"messages": [{"type": 8, "destinationDeviceId": 1,
        "destinationRegistrationId": 4242, "content": base64::encode(content)}],
        "online": false, "urgent": true, "timestamp": 1700000000123u64});
    let request = format!(
        "type: REQUEST request {{ verb: \"PUT\" path: \"/v1/messages/{}\" body: {} id: 77 \
         headers: \"Content-Type:application/json\" }}",
        recipient.uuid,
        quote(body.to_string().as_bytes())
    );
    ws.send(Message::binary(encode_message(&request))).unwrap();
    let response = next_message(ws);
    assert_eq!(field(&response, "type"), Some("RESPONSE"), "{response:?}");
    assert_eq!(field(&response, "response.id"), Some("77"));
    assert_eq!(field(&response, "response.status"), Some("200"));
    let body = unquote(field(&response, "response.body").expect("a body"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, serde_json::json!({"needsSync": false}));
}

/// Checks an `Envelope` (decoded by protoc) from `sender` to `recipient`.
fn check_envelope(wire: &[u8], sender: &Account, recipient: &Account, content: &[u8]) {
    let envelope = decode("Envelope", "SignalService.proto", wire);
    let bytes = |name: &str| field(&envelope, name).map(unquote);
    assert_eq!(field(&envelope, "type"), Some("PLAINTEXT_CONTENT"), "{envelope:?}");
    assert_eq!(field(&envelope, "client_timestamp"), Some("1700000000123"));
    assert_eq!(field(&envelope, "source_device"), Some("1"));
    assert_eq!(bytes("content"), Some(content.to_vec()));
    assert_eq!(bytes("source_service_id"), Some(sender.uuid.as_bytes().to_vec()));
    assert_eq!(bytes("destination_service_id"), Some(recipient.uuid.as_bytes().to_vec()));
    assert_eq!(bytes("server_guid").map(|guid| guid.len()), Some(16));
    let server_ms: u64 = field(&envelope, "server_timestamp").unwrap().parse().unwrap();
    assert!(server_ms > 1_700_000_000_000, "server_timestamp {server_ms}");
    assert!(matches!(field(&envelope, "urgent"), None | Some("true")), "{envelope:?}");
    assert!(matches!(field(&envelope, "story"), None | Some("false")), "{envelope:?}");
}

#[test]
fn protoc_encoded_requests_are_served_and_server_frames_decode_with_the_proto_files() {
    let server = Server::start();
    let sender = server.register();
    let recipient = server.register();
    let mut sender_ws = connect(&server, &sender);
    answer_request(&mut sender_ws, "/api/v1/queue/empty");
    let mut recipient_ws = connect(&server, &recipient);
    answer_request(&mut recipient_ws, "/api/v1/queue/empty");

    let content = b"\x00\x01 protoc \xff\"\\\n";
    send_message(&mut sender_ws, &recipient, content);
    let delivered = answer_request(&mut recipient_ws, "/api/v1/message");
    let headers: Vec<&str> = delivered
        .iter()
        .filter(|(name, _)| name == "request.headers")
        .map(|(_, value)| value.as_str())
        .collect();
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("\"X-Signal-Timestamp:")
                && h[20..h.len() - 1].parse::<u64>().is_ok()),
        "X-Signal-Timestamp:<ms> among {headers:?}"
    );
    let body = unquote(field(&delivered, "request.body").expect("an envelope"));
    check_envelope(&body, &sender, &recipient, content);

    // The provisioning socket's address, through Provisioning.proto.
    let url = format!("ws://{}/v1/websocket/provisioning/?framing=protobuf", server.addr());
    let mut provisioning = common::connect_url(&url).unwrap();
    let message = answer_request(&mut provisioning, "/v1/address");
    let wire = unquote(field(&message, "request.body").expect("an address"));
    let address = decode("ProvisioningAddress", "Provisioning.proto", &wire);
    let address = unquote(field(&address, "address").expect("address set"));
    Uuid::parse_str(std::str::from_utf8(&address).unwrap()).expect("the address is a UUID");
}
