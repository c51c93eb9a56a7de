//! `backlog`: recipients stay offline while senders store M envelopes for
//! each; then every recipient connects at once and drains its queue
//! (acknowledging each envelope). Reports the drain rate and, when the
//! server's data directory is given, the disk bytes per stored envelope
//! (and per acknowledged one's delete); with the server's process id, its
//! CPU per stored and per drained envelope and its RSS growth per stored
//! envelope (the memtable's share, while nothing has been flushed).
//! With `keep`, the envelopes stay stored (no drain), for measuring their
//! size once compacted (`compact-dir`).

use crate::accounts::{register_many, Credentials};
use crate::client::{source_address, WsConn};
use crate::messaging::{ok_response, send_request};
use crate::push::{register_tokens, watch_pushes, PushOutcome};
use crate::report::Progress;
use serde::Serialize;
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard::protocol::base64;
use switchboard::protocol::frame::{self, Frame};

pub struct BacklogArgs {
    pub server: SocketAddr,
    /// The server's admin listener (push counters).
    pub admin: SocketAddr,
    pub pairs: usize,
    pub messages_per_device: usize,
    pub window: usize,
    pub content_bytes: usize,
    pub data_dir: Option<PathBuf>,
    pub source_ips: usize,
    /// Recipients register APNs tokens; the server's pushes are followed.
    pub push: bool,
    /// The server's process id (CPU and RSS figures).
    pub server_pid: Option<u32>,
    /// Skip the drain: the envelopes stay stored.
    pub keep: bool,
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
    /// The pushes the backlog caused (with `push`).
    pub push: Option<PushOutcome>,
    /// Disk growth over the drain per envelope drained (its delete).
    pub disk_bytes_per_delete: Option<f64>,
    /// Server CPU over the storing phase per envelope stored (the send,
    /// its write, and with `push` its push decision).
    pub server_cpu_us_per_stored: Option<f64>,
    /// Server CPU over the drain per envelope drained (read, delivery,
    /// acknowledgement, delete; the reconnect included).
    pub server_cpu_us_per_drained: Option<f64>,
    /// Server RSS growth over the storing phase per envelope stored.
    pub server_rss_bytes_per_stored: Option<f64>,
    /// Server RSS before storing, after storing and after draining.
    pub server_rss_bytes: [Option<u64>; 3],
}

/// The server's gauges at one point of the run (each absent when not
/// asked for or unreadable).
#[derive(Debug, Clone, Copy, Default)]
struct Gauges {
    disk_bytes: Option<u64>,
    cpu_secs: Option<f64>,
    rss_bytes: Option<u64>,
}

impl Gauges {
    fn read(args: &BacklogArgs) -> Self {
        Self {
            disk_bytes: args.data_dir.as_deref().and_then(dir_bytes),
            cpu_secs: args.server_pid.and_then(crate::report::cpu_secs),
            rss_bytes: args.server_pid.and_then(crate::report::rss_bytes),
        }
    }
}

/// `(later - earlier) / count`, when both are known and `count` is not 0.
fn per(earlier: Option<f64>, later: Option<f64>, count: u64) -> Option<f64> {
    let (earlier, later) = earlier.zip(later)?;
    (count > 0).then(|| (later - earlier) / count as f64)
}

/// Longest wait for every device's push after the first send.
const PUSH_DEADLINE: Duration = Duration::from_secs(60);

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
        if args.push {
            let recipients: Vec<Credentials> = pairs.iter().map(|(_, r)| r.clone()).collect();
            register_tokens(args.server, &recipients).await?;
        }
        // Reused accounts (--accounts-file) may hold envelopes from earlier
        // runs: drain them first so only this run's envelopes are counted.
        let (leftover, _) = drain_backlogs(&args, &pairs).await;
        if leftover > 0 {
            eprintln!("backlog: drained {leftover} envelopes left from earlier runs first");
        }
        let before = Gauges::read(&args);
        let store_started = Instant::now();
        let (stored, store_secs) = store_backlogs(&args, &pairs).await;
        let push = match args.push {
            true => Some(watch_pushes(args.admin, args.pairs, store_started, PUSH_DEADLINE).await?),
            false => None,
        };
        let after_store = Gauges::read(&args);
        // Everyone reconnects at once and drains.
        let (drained, drain_secs) = match args.keep {
            true => (0, 0.0),
            false => drain_backlogs(&args, &pairs).await,
        };
        let after_drain = Gauges::read(&args);
        Ok(result(
            &args,
            (stored, store_secs),
            (drained, drain_secs),
            push,
            [before, after_store, after_drain],
        ))
    })
}

/// The result of a run that stored `stored` envelopes in `store_secs` and
/// drained `drained` in `drain_secs`, with the gauges before storing,
/// after storing and after draining.
fn result(
    args: &BacklogArgs,
    (stored, store_secs): (u64, f64),
    (drained, drain_secs): (u64, f64),
    push: Option<PushOutcome>,
    [before, after_store, after_drain]: [Gauges; 3],
) -> BacklogResult {
    let bytes = |gauges: Gauges| gauges.disk_bytes.map(|b| b as f64);
    let rss = |gauges: Gauges| gauges.rss_bytes.map(|b| b as f64);
    BacklogResult {
        pairs: args.pairs,
        messages_per_device: args.messages_per_device,
        content_bytes: args.content_bytes,
        stored,
        store_secs,
        stored_per_sec: stored as f64 / store_secs,
        disk_bytes_before: before.disk_bytes,
        disk_bytes_after: after_store.disk_bytes,
        disk_bytes_per_envelope: disk_bytes_per_envelope(
            before.disk_bytes,
            after_store.disk_bytes,
            stored,
        ),
        drained,
        drain_secs,
        drained_per_sec: drained as f64 / drain_secs,
        push,
        disk_bytes_per_delete: per(bytes(after_store), bytes(after_drain), drained),
        server_cpu_us_per_stored: per(before.cpu_secs, after_store.cpu_secs, stored)
            .map(|s| s * 1e6),
        server_cpu_us_per_drained: per(after_store.cpu_secs, after_drain.cpu_secs, drained)
            .map(|s| s * 1e6),
        server_rss_bytes_per_stored: per(rss(before), rss(after_store), stored),
        server_rss_bytes: [before.rss_bytes, after_store.rss_bytes, after_drain.rss_bytes],
    }
}

/// Disk growth per stored envelope, when both sizes are known and any
/// envelope was stored.
fn disk_bytes_per_envelope(before: Option<u64>, after: Option<u64>, stored: u64) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if stored > 0 => {
            Some(after.saturating_sub(before) as f64 / stored as f64)
        }
        _ => None,
    }
}

/// How each sender fills its recipient's backlog.
#[derive(Clone, Copy)]
struct Fill {
    /// Sends awaiting their response.
    window: usize,
    /// Envelopes to store.
    count: usize,
    /// Content bytes per envelope.
    content_bytes: usize,
}

/// The storing phase: every sender stores its envelopes for its offline
/// recipient, with a progress line on stderr. Returns (envelopes stored,
/// seconds taken).
async fn store_backlogs(args: &BacklogArgs, pairs: &[(Credentials, Credentials)]) -> (u64, f64) {
    let fill = Fill {
        window: args.window,
        count: args.messages_per_device,
        content_bytes: args.content_bytes,
    };
    let stored = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let mut senders = Vec::new();
    for (index, (sender, recipient)) in pairs.iter().cloned().enumerate() {
        let source = source_address(index, args.source_ips);
        let store = store_backlog(args.server, source, sender, recipient, fill, stored.clone());
        senders.push(monoio::spawn(store));
    }
    let total = (args.pairs * args.messages_per_device) as u64;
    let progress = Progress::new("backlog: storing", total);
    let watcher = monoio::spawn(watch_stored(progress, stored.clone(), total));
    for sender in senders {
        sender.await;
    }
    let store_secs = started.elapsed().as_secs_f64();
    if stored.get() < total {
        eprintln!("backlog: only {} of {total} sends were stored", stored.get());
    }
    drop(watcher);
    (stored.get(), store_secs)
}

/// Shows `stored` against `total` on `progress` every 250 ms until all are
/// stored.
async fn watch_stored(mut progress: Progress, stored: Rc<Cell<u64>>, total: u64) {
    loop {
        progress.set(stored.get());
        if stored.get() >= total {
            progress.finish(stored.get());
            return;
        }
        monoio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One sender: connects and sends `fill.count` envelopes to `recipient`
/// (offline) with up to `fill.window` awaiting their response, counting
/// each stored one (answered 200) in `stored`. Gives up silently on a
/// connection error.
async fn store_backlog(
    server: SocketAddr,
    source: Option<IpAddr>,
    sender: Credentials,
    recipient: Credentials,
    fill: Fill,
    stored: Rc<Cell<u64>>,
) {
    let Fill { window, count, content_bytes } = fill;
    let Ok(mut conn) = WsConn::connect(server, source, &sender.uuid, &sender.password).await else {
        return;
    };
    let path = format!("/v1/messages/{}", recipient.uuid);
    let content = base64::encode(&vec![0x5a; content_bytes]);
    let (mut sent, mut answered, mut next_id) = (0usize, 0usize, 1u64);
    while answered < count {
        while sent < count && sent - answered < window {
            let text = send_request(next_id, &path, &content, false, sent as u64);
            if conn.queue_text(text).is_err() {
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
}

/// The draining phase: every recipient connects at once and drains its
/// queue. Returns (envelopes drained, seconds taken).
async fn drain_backlogs(args: &BacklogArgs, pairs: &[(Credentials, Credentials)]) -> (u64, f64) {
    let drained = Rc::new(Cell::new(0u64));
    let drain_started = Instant::now();
    let mut receivers = Vec::new();
    for (index, (_, recipient)) in pairs.iter().cloned().enumerate() {
        let source = source_address(index, args.source_ips);
        receivers.push(monoio::spawn(drain_backlog(
            args.server,
            source,
            recipient,
            drained.clone(),
        )));
    }
    for receiver in receivers {
        receiver.await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    (drained.get(), drain_secs)
}

/// One recipient: connects, acknowledges every request, and counts each
/// envelope in `drained` until the server says its queue is empty.
async fn drain_backlog(
    server: SocketAddr,
    source: Option<IpAddr>,
    recipient: Credentials,
    drained: Rc<Cell<u64>>,
) {
    let Ok(mut conn) = WsConn::connect(server, source, &recipient.uuid, &recipient.password).await
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
}
