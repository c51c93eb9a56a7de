//! The same message path on every I/O driver setting an operator can pick:
//! epoll (monoio's legacy driver), io_uring with the smallest ring, and
//! io_uring with SQPOLL. Each run sends across shards, delivers live and
//! from a backlog larger than the window, acknowledges, closes a replaced
//! connection with 4409 and an idle one with 1001 (session deadlines come
//! from the shard's timer wheel, not per-connection timers).

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{expect_close, Server, ServerOptions, TEST_LIMITS};
use messaging::*;
use std::time::Duration;

/// The idle timeout of these runs: longer than the test limits' 2 s, so a
/// slow, loaded machine (the whole suite runs at once) cannot close the
/// recipient's socket while the test is busy sending over HTTP between reads.
const IDLE_TIMEOUT_MS: u64 = 4000;

fn start(settings: &str) -> Server {
    let limits = TEST_LIMITS
        .replace("\nidle_timeout_ms = 2000\n", &format!("\nidle_timeout_ms = {IDLE_TIMEOUT_MS}\n"));
    assert_ne!(limits, TEST_LIMITS, "the test limits set idle_timeout_ms = 2000");
    Server::start_with(ServerOptions {
        config_toml: format!("{settings}\n{limits}"),
        ..ServerOptions::default()
    })
}

fn exercise(server: &Server) {
    let sender = server.register_on_shard(0, 2);
    let recipient = server.register_on_shard(1, 2);
    for index in 0..100u64 {
        send_one(server, &sender, &recipient, b"backlog", index);
    }
    let mut ws = server.connect(&recipient).unwrap();
    let backlog = drain_backlog(&mut ws);
    let order: Vec<u64> = backlog.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..100).collect::<Vec<_>>());
    for index in 100..110u64 {
        send_one(server, &sender, &recipient, b"live", index);
    }
    let live = receive_envelopes(&mut ws, 10);
    let order: Vec<u64> = live.iter().map(|e| e["timestamp"].as_u64().unwrap()).collect();
    assert_eq!(order, (100..110).collect::<Vec<_>>());
    common::wait_until("acks applied", Duration::from_secs(5), || {
        server.metric("messages_acked_total") == 110
    });

    // A second connection of the same device replaces the first.
    let mut newer = server.connect(&recipient).unwrap();
    assert_eq!(expect_close(&mut ws), Some(4409));
    assert!(drain_backlog(&mut newer).is_empty());

    // A silent connection (it does not even read, so it sends no pongs) is
    // closed after idle_timeout_ms.
    drop(newer);
    let mut idle = server.connect(&sender).unwrap();
    std::thread::sleep(Duration::from_millis(IDLE_TIMEOUT_MS + 1000));
    assert_eq!(expect_close(&mut idle), Some(1001));
    server.assert_serving();
}

#[test]
fn epoll_driver_serves_the_whole_message_path() {
    exercise(&start("io_driver = \"epoll\""));
}

#[test]
fn smallest_io_uring_ring_serves_the_whole_message_path() {
    exercise(&start("io_driver = \"io_uring\"\nio_uring_entries = 256"));
}

#[test]
fn io_uring_with_sqpoll_serves_the_whole_message_path() {
    exercise(&start("io_driver = \"io_uring\"\nio_uring_sqpoll_idle_ms = 10"));
}
