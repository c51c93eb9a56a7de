//! `idle`: hold C authenticated WebSocket connections open, answering the
//! server's pings and requests, and report the server's RSS per connection:
//! over all of them, and over the second half alone (opened after reading
//! the RSS at half way).

use crate::accounts::{register_many, Credentials};
use crate::client::{source_address, WsConn};
use crate::report::{rss_bytes, Progress};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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
    /// After the first half of the connections opened.
    pub server_rss_half_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    /// (after - before) / open.
    pub server_rss_per_connection_bytes: Option<f64>,
    /// (after - half) / the second half's connections: less sensitive to
    /// memory registration freed (which the first connections reuse).
    pub server_rss_per_connection_second_half_bytes: Option<f64>,
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

/// What the connecting threads report to the main thread.
#[derive(Clone, Default)]
struct Tally {
    /// Connections open now (a held connection that closes is taken off).
    open: Arc<AtomicUsize>,
    /// Connection attempts that failed.
    failures: Arc<AtomicUsize>,
    /// The first failed attempt's error.
    first_failure: Arc<Mutex<Option<String>>>,
}

pub fn run(args: IdleArgs) -> std::io::Result<IdleResult> {
    let accounts = crate::block_on(register_many(args.server, args.connections, 64))?;
    eprintln!("idle: registered {} accounts", accounts.len());
    let rss_before = args.server_pid.and_then(rss_bytes);
    let tally = Tally::default();
    let started = Instant::now();
    let release = Arc::new(AtomicBool::new(false));
    // Two halves, the server's RSS read after each: the second half's growth
    // is the cost of a connection once registration's freed memory is used up.
    let half = accounts.len() / 2;
    let mut threads = Vec::new();
    let mut rss_half = None;
    for (range, wanted) in [(0..half, half), (half..accounts.len(), accounts.len())] {
        let shares = thread_shares(&accounts, range, args.threads);
        threads.extend(shares.into_iter().enumerate().map(|(thread, share)| {
            spawn_connect_thread(&args, thread, share, tally.clone(), release.clone())
        }));
        wait_for_connections(&tally, wanted, started);
        std::thread::sleep(Duration::from_secs(args.hold_secs));
        if wanted == half {
            rss_half = args.server_pid.and_then(rss_bytes).map(|rss| (rss, tally.opened()));
        }
    }
    let connect_secs = started.elapsed().as_secs_f64() - 2.0 * args.hold_secs as f64;
    let rss_after = args.server_pid.and_then(rss_bytes);
    let open_now = tally.open.load(Ordering::Relaxed);
    let marginal = rss_half.and_then(|(rss_half, open_half)| {
        rss_per_connection(Some(rss_half), rss_after, open_now.saturating_sub(open_half))
    });
    let result = IdleResult {
        connections_wanted: args.connections,
        connections_open: open_now,
        connect_failures: tally.failures.load(Ordering::Relaxed),
        first_failure: tally.first_failure.lock().unwrap().clone(),
        connect_secs,
        server_rss_before_bytes: rss_before,
        server_rss_half_bytes: rss_half.map(|(rss, _)| rss),
        server_rss_after_bytes: rss_after,
        server_rss_per_connection_bytes: rss_per_connection(rss_before, rss_after, open_now),
        server_rss_per_connection_second_half_bytes: marginal,
        loadgen_rss_bytes: rss_bytes(std::process::id()),
    };
    release.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(result)
}

impl Tally {
    fn opened(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Each thread's accounts among `range`, with their index among all
/// accounts: thread `t` of `threads` gets every index that is `t` modulo
/// `threads`.
fn thread_shares(
    accounts: &[Credentials],
    range: std::ops::Range<usize>,
    threads: usize,
) -> Vec<Vec<(usize, Credentials)>> {
    (0..threads)
        .map(|t| {
            range.clone().filter(|i| i % threads == t).map(|i| (i, accounts[i].clone())).collect()
        })
        .collect()
}

/// Server RSS growth per open connection, when both readings are known and
/// any connection is open.
fn rss_per_connection(before: Option<u64>, after: Option<u64>, open_now: usize) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if open_now > 0 => {
            Some((after.saturating_sub(before)) as f64 / open_now as f64)
        }
        _ => None,
    }
}

/// Shows the open connections on a progress line until every attempt has
/// succeeded or failed, or 600 s have passed since `started`.
fn wait_for_connections(tally: &Tally, connections: usize, started: Instant) {
    let mut progress = Progress::new("idle: connections", connections as u64);
    while tally.open.load(Ordering::Relaxed) + tally.failures.load(Ordering::Relaxed) < connections
    {
        progress.set(tally.open.load(Ordering::Relaxed) as u64);
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    progress.finish(tally.open.load(Ordering::Relaxed) as u64);
}

/// Thread number `thread`: opens `share`'s connections, `connect_concurrency`
/// attempts at a time, then serves them until `release` is set.
fn spawn_connect_thread(
    args: &IdleArgs,
    thread: usize,
    share: Vec<(usize, Credentials)>,
    tally: Tally,
    release: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let (server, source_ips, concurrency) =
        (args.server, args.source_ips, args.connect_concurrency);
    std::thread::spawn(move || {
        crate::cores::pin_thread(thread);
        crate::block_on(async move {
            let queue = Arc::new(Mutex::new(share));
            let mut connectors = Vec::new();
            for _ in 0..concurrency {
                let connector =
                    connect_from_queue(server, source_ips, queue.clone(), tally.clone());
                connectors.push(monoio::spawn(connector));
            }
            for connector in connectors {
                connector.await;
            }
            // Keep serving the held connections until the main thread is done.
            while !release.load(Ordering::Relaxed) {
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    })
}

/// One connector: takes accounts off `queue` until it is empty and connects
/// each, holding the connections that open and tallying the failures.
async fn connect_from_queue(
    server: SocketAddr,
    source_ips: usize,
    queue: Arc<Mutex<Vec<(usize, Credentials)>>>,
    tally: Tally,
) {
    loop {
        let next = queue.lock().unwrap().pop();
        let Some((index, account)) = next else { return };
        let source = source_address(index / 50_000, source_ips);
        match connect_with_timeout(server, source, &account).await {
            Ok(conn) => {
                tally.open.fetch_add(1, Ordering::Relaxed);
                monoio::spawn(hold(conn, tally.open.clone()));
            }
            Err(error) => {
                tally.failures.fetch_add(1, Ordering::Relaxed);
                tally.first_failure.lock().unwrap().get_or_insert(error.to_string());
            }
        }
    }
}

/// Connects as `account`, giving up after 10 s.
async fn connect_with_timeout(
    server: SocketAddr,
    source: Option<IpAddr>,
    account: &Credentials,
) -> std::io::Result<WsConn> {
    let connect = WsConn::connect(server, source, &account.uuid, &account.password);
    monoio::time::timeout(Duration::from_secs(10), connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("connect timed out after 10 s")))
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
