//! Measuring and reporting: process RSS, a progress line, the machine, the
//! human summaries of the messaging-shaped, idle, storm and backlog
//! scenarios.

use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// Resident set size of process `pid`, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU seconds process `pid` has used (user and system, all its threads),
/// from `/proc/<pid>/stat`; clock-tick resolution (10 ms on most kernels).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// A one-line progress bar on stderr for long phases.
pub struct Progress {
    label: &'static str,
    total: u64,
    started: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Self {
        Self { label, total, started: Instant::now() }
    }

    pub fn set(&mut self, done: u64) {
        let width = 30;
        let filled =
            if self.total == 0 { width } else { (done * width / self.total.max(1)).min(width) }
                as usize;
        eprint!(
            "\r{} [{}{}] {done}/{} {:.0}s ",
            self.label,
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self, done: u64) {
        self.set(done);
        eprintln!();
    }
}

/// The machine a result came from.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub host: String,
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub kernel: String,
    pub cpu_model: String,
}

pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_default();
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kib| kib * 1024);
    Machine {
        host: read("/proc/sys/kernel/hostname").trim().to_string(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        cpu_model,
    }
}

/// The human summary of an idle result.
pub fn summarize_idle(result: &crate::idle::IdleResult) {
    eprintln!(
        "idle: {} of {} connections open ({} failed) in {:.1}s; server RSS per connection: {} \
         (second half alone: {})",
        result.connections_open,
        result.connections_wanted,
        result.connect_failures,
        result.connect_secs,
        bytes_or_na(result.server_rss_per_connection_bytes),
        bytes_or_na(result.server_rss_per_connection_second_half_bytes),
    );
}

fn bytes_or_na(bytes: Option<f64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{b:.0} bytes"))
}

/// The human summary of a reconnect-storm result.
pub fn summarize_storm(result: &crate::storm::StormResult) {
    eprintln!(
        "reconnect-storm: {} of {} devices live again {:.2}s after all dropped ({:.0} reconnects/s, {} failed)",
        result.reconnected,
        result.connections,
        result.reconnect_secs,
        result.reconnects_per_sec,
        result.reconnect_failures
    );
}

/// The human summary of a backlog result.
pub fn summarize_backlog(result: &crate::backlog::BacklogResult) {
    let drain = match result.drained {
        0 => "nothing drained".to_string(),
        drained => format!("drained {drained} at {:.0}/s", result.drained_per_sec),
    };
    eprintln!(
        "backlog: stored {} envelopes at {:.0}/s ({}); {drain}",
        result.stored,
        result.stored_per_sec,
        result
            .disk_bytes_per_envelope
            .map_or("disk n/a".into(), |b| format!("{b:.0} disk bytes each")),
    );
    if let Some(push) = &result.push {
        eprintln!(
            "backlog: pushes for {} devices: {} sent, {} failed, {} coalesced, settled in {:.2}s ({:.0}/s)",
            push.devices, push.sent, push.failed, push.coalesced, push.secs, push.per_sec
        );
    }
}

/// The human summary of a messaging-shaped result.
pub fn summarize_messaging(label: &str, result: &crate::measure::MessagingResult) {
    eprintln!(
        "{label}: {:.0} sends/s acknowledged, {:.0} deliveries/s; latency p50 {} us, p99 {} us, p99.9 {} us, max {} us \
         (from the write instead of the due time: p50 {} us, p99 {} us, p99.9 {} us); \
         sends written after due: p50 {} us, p99 {} us, max {} us",
        result.sent_per_sec,
        result.delivered_per_sec,
        result.latency_us_p50,
        result.latency_us_p99,
        result.latency_us_p999,
        result.latency_us_max,
        result.from_write_latency_us_p50,
        result.from_write_latency_us_p99,
        result.from_write_latency_us_p999,
        result.send_lateness_us_p50,
        result.send_lateness_us_p99,
        result.send_lateness_us_max
    );
}
