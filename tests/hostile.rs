//! Hostile input against the real server: malformed and over-limit HTTP,
//! broken WebSocket upgrades, bad frames (through tungstenite and as raw
//! bytes written by hand), stalled connections and the per-shard connection
//! limit. Every case asserts the exact refusal (status and JSON error code,
//! close code, or framed status with the same id) and then that the server
//! still serves other clients.

mod common;

use common::{
    ack, error_body, expect_close, next_frame, parse_response, ws_call, Account, Server,
    ServerOptions, Ws, TEST_LIMITS,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{Frame, WsResponse};
use tungstenite::Message;

// ---------------------------------------------------------------------------
// Raw HTTP helpers
// ---------------------------------------------------------------------------

/// What came back on one raw connection.
struct Exchange {
    bytes: Vec<u8>,
    /// The server closed (EOF or reset) before `wait` passed.
    closed: bool,
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads until the peer closes or `wait` passes without it closing.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Exchange {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Exchange { bytes, closed: false };
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Exchange { bytes, closed: true },
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(error) if is_timeout(&error) => return Exchange { bytes, closed: false },
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            // A reset is the server closing too.
            Err(_) => return Exchange { bytes, closed: true },
        }
    }
}

/// Sends `bytes` on a new connection and reads until the server closes.
fn exchange(server: &Server, bytes: &[u8], wait: Duration) -> Exchange {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let _ = stream.write_all(bytes);
    read_until_closed(&mut stream, wait)
}

/// Sends `bytes` and expects one JSON error answer with `status`, after
/// which the server closes the connection. Returns the error message.
fn expect_refused(server: &Server, bytes: &[u8], status: u16) -> String {
    let what = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).to_string();
    let reply = exchange(server, bytes, Duration::from_secs(10));
    assert!(reply.closed, "{what}: connection left open after the error");
    let (got, body) = parse_response(&reply.bytes);
    assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(&body));
    let (code, message) = error_body(&body);
    assert_eq!(code, u64::from(status), "{what}: JSON code");
    assert!(!message.is_empty(), "{what}: empty message");
    message
}

/// A request head with the given extra header lines (each ending in CRLF).
fn head(method: &str, target: &str, extra: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

/// Reads exactly one response (framed by Content-Length) from a keep-alive
/// connection. `None` if the server closed before sending anything.
fn read_one_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((status, body, used)) = split_first_response(buf) {
            buf.drain(..used);
            return Some((status, body));
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                assert!(buf.is_empty(), "closed mid-response: {buf:?}");
                return None;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(error) if is_timeout(&error) => panic!("no response within 10 s"),
            Err(_) => {
                assert!(buf.is_empty(), "reset mid-response: {buf:?}");
                return None;
            }
        }
    }
}

/// The first complete response in `bytes`: (status, body, bytes used).
fn split_first_response(bytes: &[u8]) -> Option<(u16, Vec<u8>, usize)> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_string();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    if bytes.len() < head_end + length {
        return None;
    }
    Some((status, bytes[head_end..head_end + length].to_vec(), head_end + length))
}

fn registration(body: &str) -> Vec<u8> {
    let mut bytes = format!(
        "PUT /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

// ---------------------------------------------------------------------------
// Raw WebSocket helpers (client frames written by hand)
// ---------------------------------------------------------------------------

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;

/// A WebSocket upgraded by hand over a plain TCP stream.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn upgrade_request(account: &Account) -> Vec<u8> {
    format!(
        "GET /v1/websocket/?login={}.{}&password={} HTTP/1.1\r\nHost: x\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        account.uuid, account.device_id, account.password
    )
    .into_bytes()
}

impl RawWs {
    fn connect(server: &Server, account: &Account) -> Self {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(&upgrade_request(account)).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).expect("read upgrade response");
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        buf.drain(..head_end);
        Self { stream, buf }
    }

    /// Writes one frame with FIN set to `fin`; masked as RFC 6455 requires of
    /// clients unless `masked` is false.
    fn send(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            len @ 0..=125 => frame.push(mask_bit | len as u8),
            len @ 126..=0xffff => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads one server frame: (opcode, payload). `None` once the server
    /// closed the connection.
    fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(error) if is_timeout(&error) => panic!("no frame from the server in 10 s"),
                Err(_) => return None,
            }
        }
    }

    /// Reads frames (skipping pings and text) until the close frame; returns
    /// its code, or `None` if the connection ended without one.
    fn close_code(&mut self) -> Option<u16> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (opcode, payload) = self.read_frame()?;
            if opcode == OP_CLOSE {
                assert!(payload.len() >= 2, "close frame without a code");
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
        panic!("server did not close");
    }
}

/// One complete unmasked server frame at the start of `bytes`.
fn parse_server_frame(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    let opcode = bytes[0] & 0x0f;
    assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
    let (len, at) = match bytes[1] & 0x7f {
        126 => {
            if bytes.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4)
        }
        127 => {
            if bytes.len() < 10 {
                return None;
            }
            let mut len = [0u8; 8];
            len.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(len) as usize, 10)
        }
        len => (len as usize, 2),
    };
    if bytes.len() < at + len {
        return None;
    }
    Some((opcode, bytes[at..at + len].to_vec(), at + len))
}

// ---------------------------------------------------------------------------
// tungstenite helpers
// ---------------------------------------------------------------------------

/// A connected, already-answered WebSocket for checking that other clients
/// are still served after hostile input on another connection.
fn bystander(server: &Server) -> Ws {
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();
    assert_eq!(ws_call(&mut ws, 1, "GET", "/v1/keepalive", None).status, 200);
    ws
}

fn assert_bystander_served(ws: &mut Ws, id: u64) {
    let response = ws_call(ws, id, "GET", "/v1/keepalive", None);
    assert_eq!(response.status, 200, "bystander after hostile input");
}

/// Reads the next response frame, acknowledging server requests on the way.
fn next_response(ws: &mut Ws) -> WsResponse {
    loop {
        match next_frame(ws) {
            Frame::Response(response) => return response,
            Frame::Request(request) => ack(ws, request.id, 200),
        }
    }
}

fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_string())).unwrap();
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

#[test]
fn malformed_http_heads_are_400_or_501_and_closed() {
    let server = Server::start();
    // A TLS ClientHello sent to the plain-text port.
    let client_hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5b, 0x1f, 0x0e, 0x00,
        0x00, 0x20, 0x13, 0x01, 0x13, 0x02, 0x0d, 0x0a, 0x0d, 0x0a,
    ];
    let message = expect_refused(&server, client_hello, 400);
    assert!(message.contains("malformed"), "{message}");
    server.assert_serving();

    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        ("absolute-URI target", head("GET", "http://127.0.0.1/health", ""), 400, "must be a path"),
        (
            "negative Content-Length",
            head("PUT", "/v1/accounts", "Content-Length: -1\r\n"),
            400,
            "Content-Length",
        ),
        (
            "non-numeric Content-Length",
            head("PUT", "/v1/accounts", "Content-Length: ten\r\n"),
            400,
            "Content-Length",
        ),
        (
            "conflicting Content-Length",
            head("PUT", "/v1/accounts", "Content-Length: 1\r\nContent-Length: 2\r\n"),
            400,
            "conflicting Content-Length",
        ),
        (
            "chunked body",
            head("PUT", "/v1/accounts", "Transfer-Encoding: chunked\r\n"),
            501,
            "transfer-encoding",
        ),
        ("HTTP/2.0 version", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 400, "malformed"),
    ];
    for (what, bytes, status, phrase) in cases {
        let message = expect_refused(&server, &bytes, status);
        assert!(message.contains(phrase), "{what}: {message}");
        server.assert_serving();
    }
}

#[test]
fn over_limit_heads_are_431_and_bodies_413() {
    let server = Server::start();
    // One header making the head longer than header_bytes_max = 2048.
    let long = head("GET", "/health", &format!("X-Long: {}\r\n", "a".repeat(2100)));
    let message = expect_refused(&server, &long, 431);
    assert_eq!(message, "request header fields too large");
    server.assert_serving();

    // A head that never ends, past the limit: refused without waiting for more.
    let endless = format!("GET /health HTTP/1.1\r\nX-Endless: {}", "b".repeat(2100));
    expect_refused(&server, endless.as_bytes(), 431);
    server.assert_serving();

    // More headers than header_count_max = 32, in a short head.
    let many: String = (0..40).map(|i| format!("H{i}: v\r\n")).collect();
    let message = expect_refused(&server, &head("GET", "/health", &many), 431);
    assert_eq!(message, "request header fields too large");
    server.assert_serving();

    // Content-Length over body_bytes_max = 16384, body never sent.
    let big = head("PUT", "/v1/accounts", "Content-Length: 16385\r\n");
    let message = expect_refused(&server, &big, 413);
    assert!(message.contains("16384"), "{message}");
    server.assert_serving();
}

#[test]
fn unknown_path_is_404_and_wrong_method_405() {
    let server = Server::start();
    let (status, body) = server.request("GET", "/v1/nothing/here", None, b"");
    assert_eq!(status, 404);
    assert_eq!(error_body(&body).0, 404);
    server.assert_serving();

    let (status, body) = server.request("DELETE", "/health", None, b"");
    assert_eq!(status, 405);
    let (code, message) = error_body(&body);
    assert_eq!(code, 405);
    assert!(message.contains("GET"), "{message}");
    server.assert_serving();

    let (status, body) = server.request("POST", "/v1/accounts", None, b"{}");
    assert_eq!(status, 405);
    assert_eq!(error_body(&body).0, 405);
    server.assert_serving();
}

#[test]
fn invalid_registration_bodies_are_400() {
    let server = Server::start();
    let key_15 = base64::encode(&[7u8; 15]);
    let long_password = "p".repeat(600);
    let cases = [
        ("invalid JSON", "{\"password\": ".to_string(), "invalid JSON"),
        ("empty body", String::new(), "empty"),
        (
            "registrationId 0",
            r#"{"password":"pw","registrationId":0}"#.to_string(),
            "registrationId",
        ),
        (
            "registrationId 99999",
            r#"{"password":"pw","registrationId":99999}"#.to_string(),
            "registrationId",
        ),
        (
            "15-byte unidentifiedAccessKey",
            format!(r#"{{"password":"pw","registrationId":5,"unidentifiedAccessKey":"{key_15}"}}"#),
            "unidentifiedAccessKey",
        ),
        (
            "600-byte password",
            format!(r#"{{"password":"{long_password}","registrationId":5}}"#),
            "password",
        ),
    ];
    for (what, body, phrase) in cases {
        let message = expect_refused(&server, &registration(&body), 400);
        assert!(message.contains(phrase), "{what}: {message}");
        server.assert_serving();
    }
    // The same range checks hold for a well-formed 16-byte key: accepted.
    let key_16 = base64::encode(&[7u8; 16]);
    let body =
        format!(r#"{{"password":"pw","registrationId":5,"unidentifiedAccessKey":"{key_16}"}}"#);
    let (status, _) = server.request("PUT", "/v1/accounts", None, body.as_bytes());
    assert_eq!(status, 200);
}

#[test]
fn stalled_connections_are_closed_at_the_handshake_timeout() {
    let server = Server::start();

    // Slowloris: a head trickled one byte at a time never completes; the
    // handshake deadline (1000 ms) is for the whole head, not per read.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = false;
    while Instant::now() < deadline {
        if stream.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut byte = [0u8; 64];
        match stream.read(&mut byte) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                panic!("server answered a partial head: {:?}", String::from_utf8_lossy(&byte[..n]))
            }
            Err(error) if is_timeout(&error) => continue,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "slowloris connection still open after 10 s");
    server.assert_serving();

    // A partial head, then silence: closed without an answer.
    let partial =
        exchange(&server, b"PUT /v1/accounts HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(10));
    assert!(partial.closed, "partial head left open");
    assert!(partial.bytes.is_empty(), "answered: {:?}", partial.bytes);
    server.assert_serving();

    // A connection that sends nothing at all.
    let silent = exchange(&server, b"", Duration::from_secs(10));
    assert!(silent.closed, "silent connection left open");
    assert!(silent.bytes.is_empty(), "answered: {:?}", silent.bytes);
    server.assert_serving();
}

#[test]
fn pipelined_keep_alive_requests_are_answered_in_order() {
    let server = Server::start();
    let body = br#"{"password":"pipelined","registrationId":77}"#;
    let mut bytes = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    bytes.extend_from_slice(
        format!("PUT /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len())
            .as_bytes(),
    );
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    bytes.extend_from_slice(b"GET /v1/keepalive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // All four in one write.
    let reply = exchange(&server, &bytes, Duration::from_secs(10));
    assert!(reply.closed, "Connection: close not honoured");
    let mut rest = reply.bytes.as_slice();
    let mut answers = Vec::new();
    while let Some((status, body, used)) = split_first_response(rest) {
        answers.push((status, body));
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    let health: serde_json::Value = serde_json::from_slice(&answers[0].1).unwrap();
    assert_eq!(health["status"], "ok");
    let registered: serde_json::Value = serde_json::from_slice(&answers[1].1).unwrap();
    assert_eq!(registered["deviceId"], 1);
    assert_eq!(error_body(&answers[2].1).0, 404);
    server.assert_serving();

    // Keep-alive without pipelining: one connection, several round trips.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let mut buf = Vec::new();
    for _ in 0..3 {
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, _) = read_one_response(&mut stream, &mut buf).expect("answer");
        assert_eq!(status, 200);
    }
}

// ---------------------------------------------------------------------------
// WebSocket upgrade
// ---------------------------------------------------------------------------

#[test]
fn broken_upgrades_are_refused_without_101() {
    let server = Server::start();
    let account = server.register();
    let target = format!("/v1/websocket/?login={}.1&password={}", account.uuid, account.password);
    let good_headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let build = |method: &str, target: &str, replace: Option<(&str, Option<&str>)>| {
        let mut extra = String::new();
        for (name, value) in good_headers {
            let value = match replace {
                Some((replaced, new)) if replaced == name => match new {
                    Some(new) => new,
                    None => continue,
                },
                _ => value,
            };
            extra.push_str(&format!("{name}: {value}\r\n"));
        }
        head(method, target, &extra)
    };
    // The well-formed request itself upgrades.
    let mut ok = TcpStream::connect(server.addr()).unwrap();
    ok.write_all(&build("GET", &target, None)).unwrap();
    ok.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = [0u8; 12];
    ok.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 101");
    drop(ok);

    let other_target =
        format!("/v1/websocket/other?login={}.1&password={}", account.uuid, account.password);
    let bad_password =
        format!("/v1/websocket/?login={}.1&password={}x", account.uuid, account.password);
    let key_15 = base64::encode(&[1u8; 15]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "version 8",
            build("GET", &target, Some(("Sec-WebSocket-Version", Some("8")))),
            400,
            "Sec-WebSocket-Version",
        ),
        (
            "no key",
            build("GET", &target, Some(("Sec-WebSocket-Key", None))),
            400,
            "Sec-WebSocket-Key",
        ),
        (
            "key not Base64",
            build("GET", &target, Some(("Sec-WebSocket-Key", Some("!!not base64!!")))),
            400,
            "Sec-WebSocket-Key",
        ),
        (
            "key of 15 bytes",
            build("GET", &target, Some(("Sec-WebSocket-Key", Some(&key_15)))),
            400,
            "Sec-WebSocket-Key",
        ),
        (
            "Connection without upgrade",
            build("GET", &target, Some(("Connection", Some("keep-alive")))),
            400,
            "Connection",
        ),
        ("other path", build("GET", &other_target, None), 404, "/v1/websocket/other"),
        ("POST", build("POST", &target, None), 400, "GET"),
        ("bad password", build("GET", &bad_password, None), 401, "invalid credentials"),
    ];
    for (what, bytes, status, phrase) in cases {
        let message = expect_refused(&server, &bytes, status);
        assert!(message.contains(phrase), "{what}: {message}");
        server.assert_serving();
    }
}

// ---------------------------------------------------------------------------
// WebSocket frames
// ---------------------------------------------------------------------------

#[test]
fn unreadable_text_frames_close_with_1007() {
    let server = Server::start();
    let mut watcher = bystander(&server);
    let cases = [
        ("not JSON", "hello, this is not json"),
        ("JSON array", r#"[{"id":1,"verb":"GET","path":"/v1/keepalive"}]"#),
        ("object without id", r#"{"verb":"GET","path":"/v1/keepalive"}"#),
        ("string id", r#"{"id":"1","verb":"GET","path":"/v1/keepalive"}"#),
    ];
    for (round, (what, text)) in cases.into_iter().enumerate() {
        let account = server.register();
        let mut ws = server.connect(&account).unwrap();
        send_text(&mut ws, text);
        assert_eq!(expect_close(&mut ws), Some(1007), "{what}");
        assert_bystander_served(&mut watcher, 10 + round as u64);
        server.assert_serving();
    }
}

#[test]
fn invalid_frames_with_an_id_are_answered_and_the_socket_stays_open() {
    let server = Server::start();
    let mut watcher = bystander(&server);
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();

    // Neither verb nor status.
    send_text(&mut ws, r#"{"id":5}"#);
    let response = next_response(&mut ws);
    assert_eq!((response.id, response.status), (5, 400));

    // A body that is not Base64.
    send_text(&mut ws, r#"{"id":6,"verb":"PUT","path":"/v1/accounts","body":"***not base64***"}"#);
    let response = next_response(&mut ws);
    assert_eq!((response.id, response.status), (6, 400));

    // A body decoding to more than body_bytes_max (16384) in a frame under
    // frame_bytes_max (32768).
    let body = base64::encode(&vec![b'x'; 20_000]);
    let text = format!(r#"{{"id":7,"verb":"PUT","path":"/v1/accounts","body":"{body}"}}"#);
    assert!(text.len() < 32_768);
    send_text(&mut ws, &text);
    let response = next_response(&mut ws);
    assert_eq!((response.id, response.status), (7, 413));

    // Unknown path and wrong verb go through the router.
    let response = ws_call(&mut ws, 8, "GET", "/v1/nothing", None);
    assert_eq!(response.status, 404);
    assert_eq!(error_body(&response.body.unwrap()).0, 404);
    let response = ws_call(&mut ws, 9, "DELETE", "/v1/keepalive", None);
    assert_eq!(response.status, 405);
    assert_eq!(error_body(&response.body.unwrap()).0, 405);

    // A status out of range: 400 to that id.
    send_text(&mut ws, r#"{"id":10,"status":99}"#);
    let response = next_response(&mut ws);
    assert_eq!((response.id, response.status), (10, 400));

    // A response to an id the server never sent: ignored.
    send_text(&mut ws, r#"{"id":424242,"status":200,"message":"OK"}"#);
    // The same connection still answers, and nothing was sent in reply to
    // the stray response (ws_call panics on a response to another id).
    let response = ws_call(&mut ws, 11, "GET", "/v1/keepalive", None);
    assert_eq!(response.status, 200);

    assert_bystander_served(&mut watcher, 2);
    server.assert_serving();
}

#[test]
fn binary_and_oversized_messages_close_with_1003_and_1009() {
    let server = Server::start();
    let mut watcher = bystander(&server);

    let mut ws = server.connect(&server.register()).unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1003), "binary frame");
    assert_bystander_served(&mut watcher, 2);
    server.assert_serving();

    let mut ws = server.connect(&server.register()).unwrap();
    // Over frame_bytes_max = 32768; the server may close before reading it all.
    let _ = ws.send(Message::text("x".repeat(40_000)));
    assert_eq!(expect_close(&mut ws), Some(1009), "oversized text");
    assert_bystander_served(&mut watcher, 3);
    server.assert_serving();
}

#[test]
fn raw_frame_violations_close_with_1007_1002_and_1009() {
    let server = Server::start();
    let mut watcher = bystander(&server);

    // Invalid UTF-8 in a (masked) text frame.
    let mut raw = RawWs::connect(&server, &server.register());
    raw.send(true, OP_TEXT, &[0xff, 0xfe], true);
    assert_eq!(raw.close_code(), Some(1007), "invalid UTF-8");
    assert_bystander_served(&mut watcher, 2);
    server.assert_serving();

    // An unmasked client frame, otherwise a valid request.
    let mut raw = RawWs::connect(&server, &server.register());
    raw.send(true, OP_TEXT, br#"{"id":1,"verb":"GET","path":"/v1/keepalive"}"#, false);
    assert_eq!(raw.close_code(), Some(1002), "unmasked frame");
    assert_bystander_served(&mut watcher, 3);
    server.assert_serving();

    // A continuation frame with no message started.
    let mut raw = RawWs::connect(&server, &server.register());
    raw.send(true, OP_CONTINUATION, b"orphan", true);
    assert_eq!(raw.close_code(), Some(1002), "orphan continuation");
    assert_bystander_served(&mut watcher, 4);
    server.assert_serving();

    // A fragmented message whose frames are each under frame_bytes_max but
    // whose total is over it.
    let mut raw = RawWs::connect(&server, &server.register());
    raw.send(false, OP_TEXT, &[b'x'; 20_000], true);
    raw.send(true, OP_CONTINUATION, &[b'x'; 20_000], true);
    assert_eq!(raw.close_code(), Some(1009), "fragmented oversized message");
    assert_bystander_served(&mut watcher, 5);
    server.assert_serving();

    // Control: a well-formed masked request over the raw socket is answered.
    let mut raw = RawWs::connect(&server, &server.register());
    raw.send(true, OP_TEXT, br#"{"id":77,"verb":"GET","path":"/v1/keepalive"}"#, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no answer to id 77");
        let (opcode, payload) = raw.read_frame().expect("connection open");
        if opcode != OP_TEXT {
            continue;
        }
        let mut payload = payload;
        if let Ok(Frame::Response(response)) =
            switchboard::protocol::frame::decode(&mut payload, 1 << 20)
        {
            assert_eq!((response.id, response.status), (77, 200));
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Connection limit
// ---------------------------------------------------------------------------

/// Waits until a fresh connection is served /health again (a connection
/// landing on a shard still at its limit is closed at accept).
fn wait_for_a_free_slot(server: &Server, what: &str) {
    common::wait_until(what, Duration::from_secs(10), || {
        let reply = exchange(
            server,
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        );
        reply.bytes.starts_with(b"HTTP/1.1 200")
    });
}

#[test]
fn connections_over_the_per_shard_limit_are_closed_at_accept() {
    // Two connections per shard, two shards; a long handshake timeout so the
    // admitted idle connections stay open while we look.
    let config = TEST_LIMITS
        .replace("[limits]", "[limits]\nconnections_per_shard_max = 2")
        .replace("handshake_timeout_ms = 1000", "handshake_timeout_ms = 20000");
    let server =
        Server::start_with(ServerOptions { config_toml: config, ..ServerOptions::default() });

    let mut streams: Vec<TcpStream> =
        (0..8).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    // Ask each one for /health on keep-alive (so no admitted connection
    // gives its slot back while we look). Admitted ones answer 200; refused
    // ones were closed at accept without a byte.
    let mut answered = 0;
    let mut refused = 0;
    for stream in &mut streams {
        let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = Vec::new();
        match read_one_response(stream, &mut buf) {
            Some((status, _)) => {
                assert_eq!(status, 200);
                answered += 1;
            }
            None => refused += 1,
        }
    }
    eprintln!("per-shard limit: {answered} admitted, {refused} refused");
    assert_eq!(answered + refused, 8);
    assert!((2..=4).contains(&answered), "{answered} of 8 connections admitted with 2 shards x 2");
    assert!(refused >= 4, "only {refused} refused");

    // Closing them frees the slots: new connections are served again.
    drop(streams);
    wait_for_a_free_slot(&server, "slots freed");
    // Two held at once always fit (at most two land on one shard).
    common::wait_until("two held connections", Duration::from_secs(10), || {
        let mut held: Vec<TcpStream> =
            (0..2).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
        held.iter_mut().all(|stream| {
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut buf = Vec::new();
            matches!(read_one_response(stream, &mut buf), Some((200, _)))
        })
    });
    // The held connections just closed: wait until the server has seen it
    // (a request landing on a still-full shard is refused at accept).
    wait_for_a_free_slot(&server, "held slots freed");
    server.assert_serving();
}
