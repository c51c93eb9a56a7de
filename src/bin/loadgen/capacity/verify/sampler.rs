//! Samples the server under test once a second from the start of the day
//! until told to stop: its CPU (utime + stime), RSS, open files, data
//! directory size, and the counters of `/metrics` a plan predicts. Each
//! sample is what `/proc` and the admin listener said at that instant; the
//! rates are differences of consecutive samples.

use crate::client::HttpConn;
use crate::push::metric;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One reading of the server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds since the day started.
    pub t_secs: f64,
    pub cpu_secs: f64,
    pub rss_bytes: f64,
    pub open_files: f64,
    pub disk_bytes: f64,
    pub websockets_open: f64,
    /// Items stored (durable) and not yet acknowledged, trimmed or expired.
    pub stored_items: f64,
    /// Pushes settled so far (sent or given up).
    pub pushes_total: f64,
}

/// What a sampler needs to know about the server.
pub struct Target {
    pub pid: u32,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
}

/// Samples `target` every second once `started` is set, until `stop`.
pub fn spawn(
    target: Target,
    started: Arc<OnceLock<Instant>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let start = loop {
            if let Some(start) = started.get() {
                break *start;
            }
            if stop.load(Ordering::Relaxed) {
                return Vec::new();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut samples = Vec::new();
        let mut next = start;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            if let Some(sample) = read(&target, start) {
                samples.push(sample);
            }
            next += Duration::from_secs(1);
        }
        samples
    })
}

/// One sample now, or `None` when the server is gone.
pub fn read(target: &Target, start: Instant) -> Option<Sample> {
    let t_secs = Instant::now().saturating_duration_since(start).as_secs_f64();
    let metrics = crate::block_on(async {
        let mut conn = HttpConn::connect_plain(target.admin)?;
        conn.request("GET", "/metrics", b"").await
    })
    .ok()
    .map(|(_, body)| String::from_utf8_lossy(&body).into_owned())?;
    let get = |name: &str| metric(&metrics, name) as f64;
    let gone = get("messages_acked_total") - get("messages_elided_total")
        + get("messages_trimmed_total")
        + get("messages_expired_total");
    Some(Sample {
        t_secs,
        cpu_secs: crate::report::cpu_secs(target.pid)?,
        rss_bytes: crate::report::rss_bytes(target.pid)? as f64,
        open_files: std::fs::read_dir(format!("/proc/{}/fd", target.pid)).ok()?.count() as f64,
        disk_bytes: crate::compact::dir_bytes(&target.data_dir).unwrap_or(0) as f64,
        websockets_open: get("websockets_open"),
        stored_items: (get("messages_stored_total") - gone).max(0.0),
        pushes_total: get("push_apns_sent_total") + get("push_failed_total"),
    })
}
