//! `backlog`: recipients stay offline while senders store M envelopes for
//! each; then every recipient connects at once and drains its queue
//! (acknowledging each envelope). Reports the drain rate and, when the
//! server's data directory is given, the disk bytes per stored envelope.

use crate::accounts::{register_many, Credentials, REGISTRATION_ID};
use crate::client::{source_address, WsConn};
use crate::messaging::ok_response;
use crate::report::Progress;
use serde::Serialize;
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame, WsRequest};

pub struct BacklogArgs {
    pub server: SocketAddr,
    pub pairs: usize,
    pub messages_per_device: usize,
    pub window: usize,
    pub content_bytes: usize,
    pub data_dir: Option<PathBuf>,
    pub source_ips: usize,
}

#[derive(Debug, Serialize)]
pub struct BacklogResult {
    pub pairs: usize,
    pub messages_per_device: usize,
    pub content_bytes: usize,
    pub stored: u64,
    pub store_secs: f64,
    pub stored_per_sec: f64,
    pub disk_bytes_before: Option<u64>,
    pub disk_bytes_after: Option<u64>,
    pub disk_bytes_per_envelope: Option<f64>,
    pub drained: u64,
    pub drain_secs: f64,
    pub drained_per_sec: f64,
}

/// Bytes of all files under `dir`.
fn dir_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Some(total)
}

pub fn run(args: BacklogArgs) -> std::io::Result<BacklogResult> {
    crate::block_on(async move {
        let accounts = register_many(args.server, args.pairs * 2, 64).await?;
        let pairs: Vec<(Credentials, Credentials)> =
            accounts.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        let disk_bytes_before = args.data_dir.as_deref().and_then(dir_bytes);

        let stored = Rc::new(Cell::new(0u64));
        let started = Instant::now();
        let mut senders = Vec::new();
        for (index, (sender, recipient)) in pairs.iter().cloned().enumerate() {
            let stored = stored.clone();
            let (server, source, window, count, content_bytes) = (
                args.server,
                source_address(index, args.source_ips),
                args.window,
                args.messages_per_device,
                args.content_bytes,
            );
            senders.push(monoio::spawn(async move {
                let Ok(mut conn) = WsConn::connect(server, source, &sender.uuid, &sender.password).await else { return };
                let path = format!("/v1/messages/{}", recipient.uuid);
                let content = base64::encode(&vec![0x5a; content_bytes]);
                let (mut sent, mut answered, mut next_id) = (0usize, 0usize, 1u64);
                while answered < count {
                    while sent < count && sent - answered < window {
                        let body = format!(
                            r#"{{"messages":[{{"type":1,"destinationDeviceId":1,"destinationRegistrationId":{REGISTRATION_ID},"content":"{content}"}}],"online":false,"urgent":true,"timestamp":{sent}}}"#
                        );
                        let request = WsRequest { id: next_id, verb: "PUT".into(), path: path.clone(), body: Some(body.into_bytes()), headers: vec![] };
                        if conn.queue_text(frame::encode_request(&request)).is_err() {
                            return;
                        }
                        next_id += 1;
                        sent += 1;
                    }
                    if conn.flush().await.is_err() {
                        return;
                    }
                    let Ok(Some(mut text)) = conn.next_text().await else { return };
                    match frame::decode(&mut text, 1 << 20) {
                        Ok(Frame::Response(response)) => {
                            answered += 1;
                            if response.status == 200 {
                                stored.set(stored.get() + 1);
                            }
                        }
                        Ok(Frame::Request(request)) => {
                            let _ = conn.queue_text(ok_response(request.id));
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        let total = (args.pairs * args.messages_per_device) as u64;
        let mut progress = Progress::new("backlog: storing", total);
        let watcher_stored = stored.clone();
        let watcher = monoio::spawn(async move {
            loop {
                progress.set(watcher_stored.get());
                if watcher_stored.get() >= total {
                    progress.finish(watcher_stored.get());
                    return;
                }
                monoio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        for sender in senders {
            sender.await;
        }
        let store_secs = started.elapsed().as_secs_f64();
        if stored.get() < total {
            eprintln!("backlog: only {} of {total} sends were stored", stored.get());
        }
        drop(watcher);
        let disk_bytes_after = args.data_dir.as_deref().and_then(dir_bytes);

        // Everyone reconnects at once and drains.
        let drained = Rc::new(Cell::new(0u64));
        let drain_started = Instant::now();
        let mut receivers = Vec::new();
        for (index, (_, recipient)) in pairs.iter().cloned().enumerate() {
            let drained = drained.clone();
            let (server, source) = (args.server, source_address(index, args.source_ips));
            receivers.push(monoio::spawn(async move {
                let Ok(mut conn) =
                    WsConn::connect(server, source, &recipient.uuid, &recipient.password).await
                else {
                    return;
                };
                while let Ok(Some(mut text)) = conn.next_text().await {
                    let Ok(Frame::Request(request)) = frame::decode(&mut text, 1 << 20) else {
                        continue;
                    };
                    let _ = conn.queue_text(ok_response(request.id));
                    match request.path.as_str() {
                        "/api/v1/message" => drained.set(drained.get() + 1),
                        "/api/v1/queue/empty" => {
                            let _ = conn.flush().await;
                            return;
                        }
                        _ => {}
                    }
                }
            }));
        }
        for receiver in receivers {
            receiver.await;
        }
        let drain_secs = drain_started.elapsed().as_secs_f64();
        let stored_count = stored.get();
        Ok(BacklogResult {
            pairs: args.pairs,
            messages_per_device: args.messages_per_device,
            content_bytes: args.content_bytes,
            stored: stored_count,
            store_secs,
            stored_per_sec: stored_count as f64 / store_secs,
            disk_bytes_before,
            disk_bytes_after,
            disk_bytes_per_envelope: match (disk_bytes_before, disk_bytes_after) {
                (Some(before), Some(after)) if stored_count > 0 => {
                    Some(after.saturating_sub(before) as f64 / stored_count as f64)
                }
                _ => None,
            },
            drained: drained.get(),
            drain_secs,
            drained_per_sec: drained.get() as f64 / drain_secs,
        })
    })
}
