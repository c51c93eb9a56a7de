//! Crash safety: nothing acknowledged to a sender is lost.
//!
//! Each round starts the server as a child process, has several senders
//! pipeline framed sends over their WebSockets to recipients on both shards,
//! records every send answered 200, kills the server with SIGKILL while the
//! sends are in full flow, restarts it on the same data directory, and
//! drains every recipient's queue: each acknowledged envelope must be there,
//! byte for byte. Rounds run in `sync` and `group` durability. Bounded: a
//! fixed number of rounds, each with a time limit.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::{Account, Server, ServerOptions};
use messaging::{drain_backlog, send_body, REGISTRATION_ID};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::protocol::frame::{self, Frame, WsRequest};
use tungstenite::Message;

const SENDERS: usize = 4;
const RECIPIENTS: usize = 4;
const PIPELINE_DEPTH: u64 = 16;
const ACKED_BEFORE_KILL: usize = 3000;
const ROUNDS_PER_MODE: usize = 3;

/// Sends until the connection dies; returns the contents answered 200, by recipient.
fn sender_loop(
    server_addr: String,
    sender: Account,
    sender_index: usize,
    recipients: Vec<Account>,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<(uuid::Uuid, Vec<u8>)> {
    let url = format!(
        "ws://{server_addr}/v1/websocket/?login={}.{}&password={}",
        sender.uuid, sender.device_id, sender.password
    );
    let Ok(mut ws) = common::connect_url(&url) else { return Vec::new() };
    let mut confirmed = Vec::new();
    let mut pending: HashMap<u64, (uuid::Uuid, Vec<u8>)> = HashMap::new();
    let mut next_id = 1u64;
    let started = Instant::now();
    'outer: while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
        for _ in 0..PIPELINE_DEPTH {
            let recipient = &recipients[next_id as usize % recipients.len()];
            let content =
                format!("s{sender_index}-m{next_id}-{}", "x".repeat(next_id as usize % 50))
                    .into_bytes();
            let body = send_body(&[(1, REGISTRATION_ID)], &content, false, next_id);
            let request = WsRequest {
                id: next_id,
                verb: "PUT".into(),
                path: format!("/v1/messages/{}", recipient.uuid),
                body: Some(body),
                headers: vec![],
            };
            if ws.send(Message::text(frame::encode_request(&request))).is_err() {
                break 'outer;
            }
            pending.insert(next_id, (recipient.uuid, content));
            next_id += 1;
        }
        while !pending.is_empty() {
            let message = match ws.read() {
                Ok(message) => message,
                Err(_) => break 'outer,
            };
            let Message::Text(text) = message else { continue };
            let mut bytes = text.as_bytes().to_vec();
            match frame::decode(&mut bytes, 1 << 20) {
                Ok(Frame::Response(response)) => {
                    if let Some(sent) = pending.remove(&response.id) {
                        if response.status == 200 {
                            confirmed.push(sent);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(Frame::Request(request)) => common::ack(&mut ws, request.id, 200),
                Err(_) => break 'outer,
            }
        }
    }
    confirmed
}

fn crash_round(mode: &str, round: usize) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let options = || ServerOptions {
        data_dir: Some(data_dir.clone()),
        extra_args: vec!["--durability".into(), mode.into()],
        ..ServerOptions::default()
    };
    let mut server = Server::start_with(options());
    let recipients: Vec<Account> =
        (0..RECIPIENTS).map(|i| server.register_on_shard(i % 2, 2)).collect();
    let senders: Vec<Account> = (0..SENDERS).map(|_| server.register()).collect();

    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| {
            let (addr, recipients, acked, stop) =
                (server.addr(), recipients.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || sender_loop(addr, sender, index, recipients, acked, stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.load(Ordering::Relaxed) < ACKED_BEFORE_KILL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGKILL while the senders are still sending.
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let confirmed: Vec<(uuid::Uuid, Vec<u8>)> =
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        confirmed.len() >= ACKED_BEFORE_KILL.min(100),
        "{mode} round {round}: only {} sends were acknowledged",
        confirmed.len()
    );

    let server = Server::start_with(options());
    let mut delivered: HashSet<(uuid::Uuid, Vec<u8>)> = HashSet::new();
    for recipient in &recipients {
        let mut ws = server.connect(recipient).unwrap();
        for envelope in drain_backlog(&mut ws) {
            delivered.insert((recipient.uuid, messaging::content(&envelope)));
        }
    }
    let lost: Vec<_> = confirmed.iter().filter(|sent| !delivered.contains(*sent)).collect();
    assert!(
        lost.is_empty(),
        "{mode} round {round}: {} of {} acknowledged sends lost, e.g. {:?}",
        lost.len(),
        confirmed.len(),
        lost.first().map(|(_, content)| String::from_utf8_lossy(content).to_string())
    );
    eprintln!(
        "crash {mode} round {round}: {} acknowledged before SIGKILL, {} delivered after restart, 0 lost",
        confirmed.len(),
        delivered.len()
    );
}

#[test]
fn sigkill_loses_nothing_acknowledged_in_sync_mode() {
    for round in 0..ROUNDS_PER_MODE {
        crash_round("sync", round);
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged_in_group_mode() {
    for round in 0..ROUNDS_PER_MODE {
        crash_round("group", round);
    }
}

#[test]
fn restart_with_another_shard_count_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut server = Server::start_with(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..ServerOptions::default()
    });
    server.register();
    server.kill();
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "3", "--no-pin", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("created with 2 shards"), "{stderr}");
}
