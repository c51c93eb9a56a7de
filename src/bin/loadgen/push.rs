//! The push side of the `backlog` scenario, and an APNs stand-in.
//!
//! - [`register_tokens`]: every recipient registers an APNs token, so the
//!   backlog it accumulates while offline is pushed.
//! - [`watch_pushes`]: follows the server's push counters (`/metrics`)
//!   until every device got its push (or a deadline): pushes sent, failed,
//!   coalesced, and the seconds from the first send.
//! - [`run_standin`]: a loopback APNs stand-in (HTTP/2 cleartext) that
//!   answers every push with a chosen status after a chosen delay, to
//!   measure the worker and to show a slow or failing provider does not
//!   slow sends; [`spawn_standin`] runs one inside the process (the
//!   capacity verify run).

use crate::accounts::Credentials;
use crate::client::HttpConn;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the server's push counters showed.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    /// Devices that should each get one push.
    pub devices: usize,
    /// Pushes the provider accepted.
    pub sent: u64,
    /// Pushes given up.
    pub failed: u64,
    /// Pushes coalesced into an earlier one.
    pub coalesced: u64,
    /// Seconds from the first send until every device's push was settled.
    pub secs: f64,
    /// Settled pushes per second over `secs`.
    pub per_sec: f64,
}

/// Every recipient registers an APNs token (a fresh 64-hex-digit one).
pub async fn register_tokens(
    server: SocketAddr,
    recipients: &[Credentials],
) -> std::io::Result<()> {
    let mut conn = HttpConn::connect(server)?;
    for (index, recipient) in recipients.iter().enumerate() {
        let body = format!(r#"{{"apnRegistrationId":"{index:064x}"}}"#);
        let login = Some((recipient.uuid.as_str(), recipient.password.as_str()));
        let (status, _) =
            conn.request_as("PUT", "/v1/accounts/apn", login, body.as_bytes()).await?;
        if status != 204 {
            return Err(std::io::Error::other(format!("PUT /v1/accounts/apn answered {status}")));
        }
    }
    Ok(())
}

/// Sums `switchboard_{name}` over the shards in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> u64 {
    let prefix = format!("switchboard_{name}{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls the server's admin listener (`admin`) until `devices` pushes are
/// settled (sent or failed) or `deadline` passes; `started` is when the
/// first send went out.
pub async fn watch_pushes(
    admin: SocketAddr,
    devices: usize,
    started: Instant,
    deadline: Duration,
) -> std::io::Result<PushOutcome> {
    loop {
        // The admin listener closes after each answer.
        let mut conn = HttpConn::connect_plain(admin)?;
        let (_, body) = conn.request("GET", "/metrics", b"").await?;
        let text = String::from_utf8_lossy(&body);
        let sent = metric(&text, "push_apns_sent_total");
        let failed = metric(&text, "push_failed_total");
        let settled = sent + failed >= devices as u64;
        if settled || started.elapsed() > deadline {
            let secs = started.elapsed().as_secs_f64();
            let coalesced = metric(&text, "push_coalesced_total");
            let per_sec = (sent + failed) as f64 / secs;
            return Ok(PushOutcome { devices, sent, failed, coalesced, secs, per_sec });
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves as APNs on `listen` until killed: every request is answered with
/// `status` after `delay_ms`; prints the request count each second.
pub fn run_standin(listen: SocketAddr, delay_ms: u64, status: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("apns-standin: listening on {}", listener.local_addr()?);
        serve_standin(listener, delay_ms, status, true).await
    })
}

/// Starts a stand-in answering 200 at once on a loopback port of its own,
/// on a thread of its own, for the rest of the process: its address.
pub fn spawn_standin() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve_standin(listener, 0, 200, false).await
        })
    });
    Ok(address)
}

/// Answers every push on `listener` with `status` after `delay_ms`,
/// printing the request count each second when `report`.
async fn serve_standin(
    listener: tokio::net::TcpListener,
    delay_ms: u64,
    status: u16,
    report: bool,
) -> anyhow::Result<()> {
    use hyper::service::service_fn;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    if report {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!("apns-standin: {} requests", counter.load(Ordering::Relaxed));
            }
        });
    }
    loop {
        let (tcp, _) = listener.accept().await?;
        let served = served.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: hyper::Request<hyper::body::Incoming>| {
                let served = served.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    served.fetch_add(1, Ordering::Relaxed);
                    let body = http_body_util::Full::new(bytes::Bytes::new());
                    hyper::Response::builder().status(status).body(body)
                }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            let builder =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder.serve_connection(io, service).await;
        });
    }
}
