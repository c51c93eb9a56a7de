//! TLS on the public listener (`--tls-cert`, `--tls-key`), with certificates
//! made in the test (rcgen) and real TLS clients (rustls under tungstenite):
//! HTTPS routes and `wss` sessions work on every shard (the TLS session
//! travels with a handed-off connection); pipelined frames all arrive; a
//! plain client gets nothing; SIGHUP swaps the certificate for new
//! handshakes while open connections go on, and a broken file keeps the
//! old one; bad files stop start-up naming the file.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{next_frame, Account, Server, ServerOptions};
use messaging::{send_body, REGISTRATION_ID};
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchboard::protocol::frame::{self, Frame, WsRequest, WsResponse};
use tungstenite::{Message, WebSocket};
use uuid::Uuid;

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;
type Wss = WebSocket<TlsStream>;

/// A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM).
fn make_certificate() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A server with TLS from `cert`/`key`, written to `dir` as cert.pem and key.pem.
fn start_tls_server(dir: &Path, cert: &str, key: &str) -> Server {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    Server::start_with(ServerOptions {
        extra_args: vec![
            "--tls-cert".into(),
            cert_path.to_str().unwrap().into(),
            "--tls-key".into(),
            key_path.to_str().unwrap().into(),
        ],
        ..Default::default()
    })
}

/// A TLS connection to the server trusting `cert` only.
fn tls_connect(server: &Server, cert: &str) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(tls, tcp)
}

/// One HTTPS request (connection closed after): (status, body).
fn https(
    server: &Server,
    cert: &str,
    method: &str,
    path: &str,
    auth: Option<&Account>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = tls_connect(server, cert);
    let auth =
        auth.map_or(String::new(), |account| format!("Authorization: {}\r\n", account.basic()));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    // The server closes without close_notify after `Connection: close`.
    let _ = stream.read_to_end(&mut answer);
    common::parse_response(&answer)
}

fn register(server: &Server, cert: &str) -> Account {
    let password = format!("pw-{}", Uuid::new_v4());
    let body = serde_json::json!({"password": password, "registrationId": REGISTRATION_ID});
    let (status, answer) =
        https(server, cert, "PUT", "/v1/accounts", None, body.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    Account { uuid: json["uuid"].as_str().unwrap().parse().unwrap(), device_id: 1, password }
}

fn wss_connect(server: &Server, cert: &str, account: &Account) -> Wss {
    let stream = tls_connect(server, cert);
    let url = format!(
        "wss://127.0.0.1:{}/v1/websocket/?login={}&password={}",
        server.port, account.uuid, account.password
    );
    let (ws, response) = tungstenite::client(url.as_str(), stream).expect("wss upgrade");
    assert_eq!(response.status(), 101);
    ws
}

fn ack(ws: &mut Wss, id: u64) {
    let response = WsResponse { id, status: 200, message: None, body: None, headers: vec![] };
    ws.send(Message::text(frame::encode_response(&response))).unwrap();
}

/// Queues a framed send of `content` to `to` (not flushed).
fn queue_send(ws: &mut Wss, id: u64, to: &Account, content: &[u8]) {
    let body = send_body(&[(1, REGISTRATION_ID)], content, false, id);
    let request = WsRequest {
        id,
        verb: "PUT".into(),
        path: format!("/v1/messages/{}", to.uuid),
        body: Some(body),
        headers: vec!["content-type:application/json".into()],
    };
    ws.write(Message::text(frame::encode_request(&request))).unwrap();
}

/// Reads until `count` envelopes arrived (acking each), skipping the rest.
fn receive_envelopes(ws: &mut Wss, count: usize) -> usize {
    let mut received = 0;
    while received < count {
        if let Frame::Request(request) = next_frame(ws) {
            ack(ws, request.id);
            if request.path == "/api/v1/message" {
                received += 1;
            }
        }
    }
    received
}

#[test]
fn https_and_wss_work_on_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate();
    let server = start_tls_server(dir.path(), &cert, &key);
    // Enough accounts that both shards own some: the connections of half
    // of them are handed off with their TLS session.
    let accounts: Vec<Account> = (0..16).map(|_| register(&server, &cert)).collect();
    let (status, _) = https(&server, &cert, "GET", "/v1/keepalive", None, b"");
    assert_eq!(status, 200);
    for pair in accounts.chunks(2) {
        let (sender, recipient) = (&pair[0], &pair[1]);
        let mut sender_ws = wss_connect(&server, &cert, sender);
        let mut recipient_ws = wss_connect(&server, &cert, recipient);
        queue_send(&mut sender_ws, 1, recipient, b"over tls");
        sender_ws.flush().unwrap();
        loop {
            match next_frame(&mut sender_ws) {
                Frame::Response(response) if response.id == 1 => {
                    assert_eq!(response.status, 200);
                    break;
                }
                Frame::Request(request) => ack(&mut sender_ws, request.id),
                Frame::Response(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(receive_envelopes(&mut recipient_ws, 1), 1);
    }
    assert_eq!(server.metric("tls_handshake_failures_total"), 0);
    // 16 sessions over 2 shards: some landed on the shard not owning
    // their account (all landing right has odds of 1 in 65,536).
    assert!(server.metric("handoffs_sent_total") > 0);
}

/// A TLS server with a fresh certificate and two registered accounts.
struct Fixture {
    dir: tempfile::TempDir,
    cert: String,
    key: String,
    server: Server,
    sender: Account,
    recipient: Account,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate();
    let server = start_tls_server(dir.path(), &cert, &key);
    let (sender, recipient) = (register(&server, &cert), register(&server, &cert));
    Fixture { dir, cert, key, server, sender, recipient }
}

#[test]
fn pipelined_sends_over_tls_are_all_answered() {
    let Fixture { cert, server, sender, recipient, .. } = fixture();
    let mut ws = wss_connect(&server, &cert, &sender);
    let sends = 500u64;
    // All at once: many TLS records per read, more than one read's worth
    // of decrypted bytes held by rustls between readiness events.
    for id in 1..=sends {
        queue_send(&mut ws, id, &recipient, &[0x42; 512]);
    }
    ws.flush().unwrap();
    let mut answered = 0;
    while answered < sends {
        match next_frame(&mut ws) {
            Frame::Response(response) => {
                assert_eq!(response.status, 200, "send {}", response.id);
                answered += 1;
            }
            Frame::Request(request) => ack(&mut ws, request.id),
        }
    }
    let mut recipient_ws = wss_connect(&server, &cert, &recipient);
    assert_eq!(receive_envelopes(&mut recipient_ws, sends as usize), sends as usize);
}

#[test]
fn a_plain_client_on_the_tls_port_gets_no_http_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate();
    let server = start_tls_server(dir.path(), &cert, &key);
    let answer =
        server.raw(b"GET /v1/keepalive HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(5));
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    common::wait_until("the failed handshake is counted", Duration::from_secs(10), || {
        server.metric("tls_handshake_failures_total") >= 1
    });
    // The listener still serves TLS clients.
    assert_eq!(https(&server, &cert, "GET", "/v1/keepalive", None, b"").0, 200);
}

/// The end-entity certificate the server presents to a new connection.
fn presented_certificate(server: &Server, trusted: &str) -> Vec<u8> {
    let mut stream = tls_connect(server, trusted);
    stream.write_all(b"GET /v1/keepalive HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).unwrap();
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn sighup(server: &Server) {
    // SAFETY: kill with a valid pid and signal number.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) }, 0);
}

#[test]
fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let Fixture { dir, cert: cert_a, key: key_a, server, sender, recipient } = fixture();
    let mut open = wss_connect(&server, &cert_a, &recipient);
    assert_eq!(presented_certificate(&server, &cert_a), der(&cert_a));

    let (cert_b, key_b) = make_certificate();
    std::fs::write(dir.path().join("cert.pem"), &cert_b).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_b).unwrap();
    sighup(&server);
    common::wait_until("new handshakes get certificate B", Duration::from_secs(10), || {
        std::panic::catch_unwind(|| presented_certificate(&server, &cert_b) == der(&cert_b))
            .unwrap_or(false)
    });
    // The connection opened under A still carries traffic.
    let body = send_body(&[(1, REGISTRATION_ID)], b"after reload", false, 7);
    let path = format!("/v1/messages/{}", recipient.uuid);
    let (status, _) = https(&server, &cert_b, "PUT", &path, Some(&sender), &body);
    assert_eq!(status, 200);
    assert_eq!(receive_envelopes(&mut open, 1), 1);

    // A broken pair (key of A with certificate B) is refused; B stays.
    std::fs::write(dir.path().join("key.pem"), &key_a).unwrap();
    sighup(&server);
    common::wait_until("the failed reload is counted", Duration::from_secs(10), || {
        server.metric("tls_reload_failures_total") == 1
    });
    assert_eq!(presented_certificate(&server, &cert_b), der(&cert_b));
}

/// Runs `serve` with the given TLS files (no key: `--tls-key` left out);
/// it must refuse to start. Returns its stderr.
fn refused_start(cert: &Path, key: Option<&Path>) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(common::binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--admin-listen", "off"])
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--tls-cert")
        .arg(cert);
    if let Some(key) = key {
        command.arg("--tls-key").arg(key);
    }
    let output = command.output().unwrap();
    assert!(!output.status.success(), "it started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_tls_files_stop_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate();
    let (_, other_key) = make_certificate();
    let path = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (good_cert, good_key) = (path("cert.pem", &cert), path("key.pem", &key));
    let missing = dir.path().join("missing.pem");
    let stderr = refused_start(&missing, Some(&good_key));
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let garbage = path("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
    let stderr = refused_start(&garbage, Some(&good_key));
    assert!(stderr.contains("garbage.pem"), "{stderr}");
    let empty = path("empty.pem", "");
    let stderr = refused_start(&good_cert, Some(&empty));
    assert!(stderr.contains("empty.pem") && stderr.contains("private key"), "{stderr}");
    let wrong = path("wrong-key.pem", &other_key);
    let stderr = refused_start(&good_cert, Some(&wrong));
    assert!(stderr.contains("wrong-key.pem"), "{stderr}");
    // Only one of the two set.
    assert!(refused_start(&good_cert, None).contains("tls_key"));
}
