//! The admin listener: `/metrics` and readiness `/health` are served there
//! and `/metrics` is no longer served on the public port; readiness turns
//! 503 while draining; a bad or taken address is refused or (the default
//! only) warned about; hostile requests get clear errors.

mod common;

use common::{request_at, unique_admin_addr, Server, ServerOptions};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn metrics_and_health_are_served_on_the_admin_listener_only() {
    let server = Server::start();
    let (status, body) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("switchboard_requests_total{shard=\"0\"}"));
    let (status, body) = server.admin_get("/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["shards"], 2);
    assert_eq!(health["shards_ready"], 2);
    // The public port: no metrics, health stays for load balancers.
    let (status, _) = server.request("GET", "/metrics", None, b"");
    assert_eq!(status, 404);
    let (status, _) = server.request("GET", "/health", None, b"");
    assert_eq!(status, 200);
}

#[test]
fn admin_refuses_other_paths_methods_and_garbage() {
    let server = Server::start();
    assert_eq!(server.admin_get("/v1/accounts").0, 404);
    let (status, _) = request_at(&server.admin, "POST", "/metrics", None, &[], b"x");
    assert_eq!(status, 405);
    let mut raw = std::net::TcpStream::connect(&server.admin).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // An endless head is cut at the limit, not buffered.
    let mut flood = std::net::TcpStream::connect(&server.admin).unwrap();
    flood.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = flood.write_all(&vec![b'A'; 64 * 1024]);
    let mut answer = Vec::new();
    let _ = flood.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 400") || answer.is_empty());
    // The listener still serves after all of that.
    assert_eq!(server.admin_get("/health").0, 200);
}

#[test]
fn a_silent_admin_client_does_not_block_the_next_scrape_for_long() {
    let server = Server::start();
    let _silent = std::net::TcpStream::connect(&server.admin).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(server.admin_get("/metrics").0, 200);
    // Bounded by the admin read timeout (2 s), with room for a loaded box.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn readiness_is_503_while_draining() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::in_process_config(dir.path().join("data"), 2);
    let running = switchboard::server::start(config).expect("start");
    let admin = running.admin_addr.expect("admin listener").to_string();
    common::wait_until("both shards ready", Duration::from_secs(10), || {
        request_at(&admin, "GET", "/health", None, &[], b"").0 == 200
    });
    running.begin_drain();
    let (status, body) = request_at(&admin, "GET", "/health", None, &[], b"");
    assert_eq!(status, 503);
    assert!(String::from_utf8(body).unwrap().contains("draining"));
    running.wait();
}

#[test]
fn a_taken_admin_address_stops_start_up_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--admin-listen", &addr])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin_listen") && stderr.contains(&addr), "{stderr}");
}

#[test]
fn a_malformed_admin_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["nonsense", "127.0.0.1", "[::1", ""] {
        let output = std::process::Command::new(common::binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--admin-listen", bad])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad:?} was accepted");
        assert!(String::from_utf8_lossy(&output.stderr).contains("admin_listen"), "{bad:?}");
    }
}

#[test]
fn admin_off_serves_no_admin_listener() {
    let admin = unique_admin_addr();
    let options = ServerOptions {
        extra_args: vec!["--admin-listen".into(), "off".into()],
        ..Default::default()
    };
    let server = Server::start_with(options);
    assert_eq!(server.request("GET", "/health", None, b"").0, 200);
    // The harness passes no address of its own when the test gives one.
    assert!(std::net::TcpStream::connect(&server.admin).is_err());
    assert!(std::net::TcpStream::connect(&admin).is_err());
}
