//! A consumer that never reads (issue 12, point 6): a device completes the
//! WebSocket handshake and then never reads its socket while thousands of
//! envelopes are sent to it. Sends to it are still answered at once, other
//! devices' live deliveries stay prompt, the server's memory stays bounded
//! (the in-flight window caps what is handed to the connection), the
//! stalled session is closed by the idle timeout, and every envelope is
//! still queued for its next connection.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::Server;
use messaging::{drain_backlog, receive_envelopes, send_body, send_one, REGISTRATION_ID};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Envelopes sent to the stalled device.
const STALLED_ENVELOPES: usize = 2000;
/// Content bytes of each.
const CONTENT_BYTES: usize = 1024;

/// The server's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Opens an authenticated WebSocket by hand and returns the raw socket
/// after the 101, which the test then never reads.
fn stalled_socket(server: &Server, account: &common::Account) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "GET /v1/websocket/?login={}.1&password={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        account.uuid, account.password
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = [0u8; 12];
    stream.read_exact(&mut response).unwrap();
    assert_eq!(&response, b"HTTP/1.1 101");
    stream
}

#[test]
fn a_device_that_never_reads_costs_bounded_memory_and_nobody_else_waits() {
    let server = Server::start();
    let pid = server.child.id();
    let (sender, stalled) = (server.register(), server.register());
    let (live_sender, live) = (server.register(), server.register());
    let mut live_ws = server.connect(&live).unwrap();
    drain_backlog(&mut live_ws);
    let rss_before = rss_bytes(pid);
    let _socket = stalled_socket(&server, &stalled);
    let content = vec![0x5a; CONTENT_BYTES];
    let body = send_body(&[(1, REGISTRATION_ID)], &content, false, 1);
    let path = format!("/v1/messages/{}", stalled.uuid);
    let started = Instant::now();
    for index in 0..STALLED_ENVELOPES {
        let (status, _) = server.request("PUT", &path, Some(&sender), &body);
        assert_eq!(status, 200, "send {index} to the stalled device");
        if index % 100 == 0 {
            // Another device's live delivery is not held up.
            let sent_at = Instant::now();
            send_one(&server, &live_sender, &live, b"live", index as u64);
            assert_eq!(receive_envelopes(&mut live_ws, 1).len(), 1);
            let waited = sent_at.elapsed();
            assert!(waited < Duration::from_secs(1), "live delivery took {waited:?}");
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    let rss_growth = rss_bytes(pid).saturating_sub(rss_before);
    println!(
        "{STALLED_ENVELOPES} envelopes of {CONTENT_BYTES} bytes to a stalled device in \
         {send_secs:.2}s; server RSS grew {rss_growth} bytes"
    );
    // The stored envelopes (~3 MB with RocksDB's memtable) and at most one
    // window of frames for the connection; not one copy per envelope queued.
    assert!(rss_growth < 48 << 20, "server RSS grew {rss_growth} bytes");
    // The idle timeout (2 s in the test limits) closes the stalled session.
    let closed = || server.metric("websockets_open") == 1;
    common::wait_until("the stalled session to close", Duration::from_secs(15), closed);
    // Nothing was lost: the device gets every envelope when it comes back.
    let mut ws = server.connect(&stalled).unwrap();
    let backlog = drain_backlog(&mut ws);
    assert_eq!(backlog.len(), STALLED_ENVELOPES);
}
