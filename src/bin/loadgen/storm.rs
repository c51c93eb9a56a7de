//! `reconnect-storm`: C devices connect, then every connection drops at
//! once (as after a network blip or a load-balancer restart) and all of them
//! reconnect immediately. Reports how long the storm took to settle: every
//! device authenticated again and its session live (its `queue/empty`
//! received), and the reconnect rate.

use crate::accounts::{register_many, Credentials};
use crate::client::{source_address, WsConn};
use crate::messaging::ok_response;
use serde::Serialize;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard::protocol::frame::{self, Frame};

pub struct StormArgs {
    pub server: SocketAddr,
    pub connections: usize,
    pub concurrency: usize,
    pub source_ips: usize,
    /// The server's process id, to measure its CPU over the storm.
    pub server_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct StormResult {
    pub connections: usize,
    pub connect_secs: f64,
    pub connected: usize,
    pub reconnect_secs: f64,
    pub reconnected: usize,
    pub reconnect_failures: usize,
    pub first_failure: Option<String>,
    pub reconnects_per_sec: f64,
    /// Server CPU from the drop until every device was live again, per
    /// device (its old session's close, its connect, login and empty queue).
    pub server_cpu_us_per_reconnect: Option<f64>,
}

/// Connects and waits for the session's `queue/empty`: the device is live.
async fn connect_live(
    server: SocketAddr,
    index: usize,
    source_ips: usize,
    account: &Credentials,
) -> std::io::Result<WsConn> {
    let source = source_address(index, source_ips);
    let connect = async {
        let mut conn = WsConn::connect(server, source, &account.uuid, &account.password).await?;
        loop {
            let Some(mut text) = conn.next_text().await? else {
                return Err(std::io::Error::other("closed before queue/empty"));
            };
            if let Ok(Frame::Request(request)) = frame::decode(&mut text, 1 << 20) {
                conn.queue_text(ok_response(request.id))?;
                conn.flush().await?;
                if request.path == "/api/v1/queue/empty" {
                    return Ok(conn);
                }
            }
        }
    };
    monoio::time::timeout(Duration::from_secs(30), connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("not live within 30 s")))
}

/// Connects every account with `concurrency` attempts in flight; returns the
/// live connections, the failure count and the first failure.
async fn connect_all(
    args: &StormArgs,
    accounts: &[Credentials],
) -> (Vec<WsConn>, usize, Option<String>) {
    let queue = Rc::new(RefCell::new((0..accounts.len()).rev().collect::<Vec<_>>()));
    let live = Rc::new(RefCell::new(Vec::with_capacity(accounts.len())));
    let failures = Rc::new(RefCell::new((0usize, None::<String>)));
    let accounts = Rc::new(accounts.to_vec());
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (queue, live, failures, accounts) =
            (queue.clone(), live.clone(), failures.clone(), accounts.clone());
        let (server, source_ips) = (args.server, args.source_ips);
        workers.push(monoio::spawn(async move {
            loop {
                let Some(index) = queue.borrow_mut().pop() else { return };
                match connect_live(server, index, source_ips, &accounts[index]).await {
                    Ok(conn) => live.borrow_mut().push(conn),
                    Err(error) => {
                        let mut failures = failures.borrow_mut();
                        failures.0 += 1;
                        failures.1.get_or_insert(error.to_string());
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await;
    }
    let live = std::mem::take(&mut *live.borrow_mut());
    let (count, first) = failures.borrow().clone();
    (live, count, first)
}

pub fn run(args: StormArgs) -> std::io::Result<StormResult> {
    crate::block_on(async move {
        let accounts = register_many(args.server, args.connections, 64).await?;
        eprintln!("reconnect-storm: registered {} accounts", accounts.len());
        let started = Instant::now();
        let (live, _, _) = connect_all(&args, &accounts).await;
        let connect_secs = started.elapsed().as_secs_f64();
        let connected = live.len();
        eprintln!("reconnect-storm: {connected} live in {connect_secs:.1}s; dropping them all");
        let cpu_before = args.server_pid.and_then(crate::report::cpu_secs);
        drop(live);
        let storm = Instant::now();
        let (again, failures, first_failure) = connect_all(&args, &accounts).await;
        let reconnect_secs = storm.elapsed().as_secs_f64();
        let cpu_after = args.server_pid.and_then(crate::report::cpu_secs);
        let server_cpu_us_per_reconnect = cpu_before
            .zip(cpu_after)
            .filter(|_| !again.is_empty())
            .map(|(before, after)| (after - before) * 1e6 / again.len() as f64);
        Ok(StormResult {
            connections: args.connections,
            connect_secs,
            connected,
            reconnect_secs,
            reconnected: again.len(),
            reconnect_failures: failures,
            first_failure,
            reconnects_per_sec: again.len() as f64 / reconnect_secs,
            server_cpu_us_per_reconnect,
        })
    })
}
