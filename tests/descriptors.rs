//! Issue 12 (descriptor exhaustion): when `accept` fails with EMFILE, the
//! open connections keep working, the shard logs a bounded number of lines
//! and backs off, and it accepts again once descriptors free up. The server
//! runs with a lowered `RLIMIT_NOFILE` set in the child before exec.

mod common;

use common::{ws_call, Server, ServerOptions, TEST_LIMITS};
use std::net::TcpStream;
use std::time::Duration;

/// The open-file limit of the server process in this test.
const NOFILE_LIMIT: u64 = 128;

#[test]
fn out_of_descriptors_keeps_open_connections_and_recovers() {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("server.log");
    let server = Server::start_with(ServerOptions {
        shards: 1,
        config_toml: TEST_LIMITS
            .replace("handshake_timeout_ms = 1000", "handshake_timeout_ms = 60000"),
        log_path: Some(log_path.clone()),
        nofile_limit: Some(NOFILE_LIMIT),
        ..ServerOptions::default()
    });
    let account = server.register();
    let mut ws = server.connect(&account).unwrap();

    // Hold more idle connections than the server has descriptors: the
    // kernel completes them, the server runs out while accepting.
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..(NOFILE_LIMIT + 64) {
        held.push(TcpStream::connect(server.addr()).unwrap());
    }
    common::wait_until("accept to fail", Duration::from_secs(10), || {
        server.log_contains(&log_path, "accept failed")
    });
    // The open WebSocket still works while the shard is out of descriptors.
    for id in 1..=20 {
        assert_eq!(ws_call(&mut ws, id, "GET", "/v1/keepalive", None).status, 200);
        std::thread::sleep(Duration::from_millis(10));
    }

    // Descriptors free up: new connections are accepted again.
    drop(held);
    common::wait_until("a new connection to be served", Duration::from_secs(20), || {
        server.try_request("GET", "/health").is_some_and(|status| status == 200)
    });
    drop(ws);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines = log.lines().filter(|line| line.contains("accept failed")).count();
    assert!((1..=3).contains(&lines), "{lines} accept-failure lines:\n{log}");
    let failures = server.metric("accept_errors_total");
    assert!(failures >= 1, "failures counted: {failures}");
    server.assert_serving();
}
