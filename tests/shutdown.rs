//! Issue 12 (graceful shutdown): on SIGTERM the server stops accepting,
//! closes every WebSocket with 1001 and exits 0 within the drain timeout;
//! every send answered 200 before it is delivered after a restart.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{expect_close, Server, ServerOptions};
use messaging::{drain_backlog, send_body, REGISTRATION_ID};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn sigterm_drains_closes_sockets_1001_exits_0_and_loses_no_acknowledged_send() {
    let data_dir = tempfile::tempdir().unwrap();
    let options = || ServerOptions {
        data_dir: Some(data_dir.path().join("data")),
        ..ServerOptions::default()
    };
    let mut server = Server::start_with(options());
    let recipient = server.register();
    let sender = server.register();
    let watcher = server.register();
    let mut watcher_ws = server.connect(&watcher).unwrap();
    assert!(drain_backlog(&mut watcher_ws).is_empty());

    // Send under load from another thread while the signal lands.
    let addr = server.addr();
    let (sender_thread, recipient_uuid) = (sender.clone(), recipient.uuid);
    let load = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        for timestamp in 0..400u64 {
            let body = send_body(&[(1, REGISTRATION_ID)], b"under load", false, timestamp);
            let path = format!("/v1/messages/{recipient_uuid}");
            // Once the listener is closed the connect fails: draining.
            let Ok((status, _)) = std::panic::catch_unwind(|| {
                common::request_at(&addr, "PUT", &path, Some(&sender_thread), &[], &body)
            }) else {
                break;
            };
            if status == 200 {
                acknowledged.push(timestamp);
            }
        }
        acknowledged
    });
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill only sends a signal to the child we started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert_eq!(expect_close(&mut watcher_ws), Some(1001));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let acknowledged = load.join().unwrap();
    assert!(!acknowledged.is_empty(), "some sends were acknowledged before the signal");

    let server = Server::start_with(options());
    let mut ws = server.connect(&recipient).unwrap();
    let delivered: HashSet<u64> =
        drain_backlog(&mut ws).iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    let lost: Vec<_> = acknowledged.iter().filter(|t| !delivered.contains(t)).collect();
    assert!(lost.is_empty(), "{} acknowledged sends lost: {lost:?}", lost.len());
}

/// systemd `Type=notify`: `READY=1` once listening, `STOPPING=1` on SIGTERM.
#[test]
fn systemd_hears_ready_and_stopping_on_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let receiver = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    receiver.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut child = std::process::Command::new(common::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let len = receiver.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..len], b"READY=1");
    // SAFETY: kill only sends a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let len = receiver.recv(&mut buf).expect("STOPPING=1 within 20 s");
    assert_eq!(&buf[..len], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
}
