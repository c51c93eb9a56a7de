//! `idle`: hold C authenticated WebSocket connections open, answering the
//! server's pings and requests, and report the server's RSS per connection.

use crate::accounts::{register_many, Credentials};
use crate::client::{source_address, WsConn};
use crate::report::{rss_bytes, Progress};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the idle scenario measured.
#[derive(Debug, Serialize)]
pub struct IdleResult {
    pub connections_wanted: usize,
    pub connections_open: usize,
    pub connect_failures: usize,
    pub first_failure: Option<String>,
    pub connect_secs: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_rss_per_connection_bytes: Option<f64>,
    pub loadgen_rss_bytes: Option<u64>,
}

pub struct IdleArgs {
    pub server: SocketAddr,
    pub connections: usize,
    pub threads: usize,
    pub source_ips: usize,
    pub server_pid: Option<u32>,
    pub hold_secs: u64,
    pub connect_concurrency: usize,
}

pub fn run(args: IdleArgs) -> std::io::Result<IdleResult> {
    let accounts = crate::block_on(register_many(args.server, args.connections, 64))?;
    eprintln!("idle: registered {} accounts", accounts.len());
    let rss_before = args.server_pid.and_then(rss_bytes);
    let open = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let shares: Vec<Vec<(usize, Credentials)>> = (0..args.threads)
        .map(|t| {
            accounts.iter().cloned().enumerate().filter(|(i, _)| i % args.threads == t).collect()
        })
        .collect();
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for share in shares {
        let (open, failures, first_failure, release) =
            (open.clone(), failures.clone(), first_failure.clone(), release.clone());
        let (server, source_ips, concurrency) =
            (args.server, args.source_ips, args.connect_concurrency);
        threads.push(std::thread::spawn(move || {
            crate::block_on(async move {
                let queue = Arc::new(std::sync::Mutex::new(share));
                let mut connectors = Vec::new();
                for _ in 0..concurrency {
                    let (queue, open, failures, first_failure) =
                        (queue.clone(), open.clone(), failures.clone(), first_failure.clone());
                    connectors.push(monoio::spawn(async move {
                        loop {
                            let next = queue.lock().unwrap().pop();
                            let Some((index, account)) = next else { return };
                            let source = source_address(index / 50_000, source_ips);
                            let connect =
                                WsConn::connect(server, source, &account.uuid, &account.password);
                            let attempt = monoio::time::timeout(Duration::from_secs(10), connect)
                                .await
                                .unwrap_or_else(|_| {
                                    Err(std::io::Error::other("connect timed out after 10 s"))
                                });
                            match attempt {
                                Ok(conn) => {
                                    open.fetch_add(1, Ordering::Relaxed);
                                    monoio::spawn(hold(conn, open.clone()));
                                }
                                Err(error) => {
                                    failures.fetch_add(1, Ordering::Relaxed);
                                    first_failure.lock().unwrap().get_or_insert(error.to_string());
                                }
                            }
                        }
                    }));
                }
                for connector in connectors {
                    connector.await;
                }
                // Keep serving the held connections until the main thread is done.
                while !release.load(Ordering::Relaxed) {
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        }));
    }
    let mut progress = Progress::new("idle: connections", args.connections as u64);
    while open.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed) < args.connections {
        progress.set(open.load(Ordering::Relaxed) as u64);
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    progress.finish(open.load(Ordering::Relaxed) as u64);
    let connect_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(args.hold_secs));
    let rss_after = args.server_pid.and_then(rss_bytes);
    let open_now = open.load(Ordering::Relaxed);
    let result = IdleResult {
        connections_wanted: args.connections,
        connections_open: open_now,
        connect_failures: failures.load(Ordering::Relaxed),
        first_failure: first_failure.lock().unwrap().clone(),
        connect_secs,
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_rss_per_connection_bytes: match (rss_before, rss_after) {
            (Some(before), Some(after)) if open_now > 0 => {
                Some((after.saturating_sub(before)) as f64 / open_now as f64)
            }
            _ => None,
        },
        loadgen_rss_bytes: rss_bytes(std::process::id()),
    };
    release.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(result)
}

/// Answers the server (pongs are automatic; requests get 200) until it closes.
async fn hold(mut conn: WsConn, open: Arc<AtomicUsize>) {
    while let Ok(Some(mut text)) = conn.next_text().await {
        if let Ok(switchboard::protocol::frame::Frame::Request(request)) =
            switchboard::protocol::frame::decode(&mut text, 1 << 20)
        {
            let _ = conn.queue_text(crate::messaging::ok_response(request.id));
        }
    }
    open.fetch_sub(1, Ordering::Relaxed);
}
