//! The capacity plan: a population's peak ([`super::load`]) turned into
//! cores, RAM, disk, open files and push-worker load with the measured
//! [`Figures`]. Pure arithmetic; every quantity is kept both as predicted
//! use (what the box should measure) and as provisioned (use with the
//! headroom the operator asked for), so a verify run can check both.
//!
//! Model (each line of [`Plan::lines`] names the figure behind it):
//! - shards `N`: the message-equivalents at the peak, with each connect
//!   counted as `cpu_us_per_reconnect / cpu_us_per_message at the maximum`
//!   messages, over `headroom` of the one-core maximum; cores = `N + 1`
//!   (the OS, RocksDB's compaction and flush threads), at least 2;
//! - CPU busy: `N x busy(rate / N)` from the measured curve, plus connects
//!   at their measured cost;
//! - RAM: base per shard (at start, plus the first writes' fixed cost),
//!   per account, per idle connection, extra for connections carrying
//!   traffic (in proportion to the live rate), and the store (memtables,
//!   block cache) at the high water measured under churn; provisioned x
//!   `ram_factor`;
//! - stored envelopes: what away devices hold after `away_days` (at most
//!   the retention) plus what present offline devices hold at the peak;
//! - disk: stored x the compacted bytes per item, scaled to the content
//!   size by its Base64 (4/3 per byte: arithmetic, not measured), READ
//!   receipts counted as envelopes without content;
//!   provisioned x `disk_factor` (compaction) plus the WAL cap (256 MiB,
//!   `src/store/mod.rs`);
//! - open files: connections, the server's own at start per shard, one per
//!   64 MiB table file (RocksDB keeps every table open); plus 1,000 spare;
//! - pushes: the peak rate against the worker's measured rate.

use super::curve::Range;
use super::figures::Figures;
use super::load::{self, Load, PushWindows};
use crate::day::model::{DailyCurve, Traffic};

/// The WAL cap the server sets (`set_max_total_wal_size`), bytes.
pub const WAL_BYTES_MAX: f64 = 256.0 * 1024.0 * 1024.0;
/// RocksDB's table file size (`target_file_size_base`), bytes.
pub const TABLE_FILE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
/// Open files kept spare above the plan.
pub const SPARE_FILES: f64 = 1_000.0;

/// What the operator asks a plan for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanInputs {
    pub traffic: Traffic,
    /// Days an away device stays away, on average.
    pub away_days: f64,
    /// Retention of undelivered envelopes, days (bounds `away_days`).
    pub retention_days: f64,
    /// Share of the one-core maximum a shard may carry at the peak.
    pub headroom: f64,
    /// RAM provisioned over the predicted use.
    pub ram_factor: f64,
    /// Disk provisioned over the predicted use (compaction space).
    pub disk_factor: f64,
    pub push_windows: PushWindows,
}

/// The plan at the peak hour.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub peak: Load,
    /// Message-equivalents per second per shard, connects included.
    pub per_shard_rate: f64,
    pub shards: u64,
    pub cores: u64,
    pub cpu_busy_cores: f64,
    pub cpu_range: Range,
    pub latency_us: (f64, f64),
    pub ram: Ram,
    pub ram_bytes: f64,
    pub stored_envelopes: f64,
    pub bytes_per_item: f64,
    pub disk_use_bytes: f64,
    pub disk_bytes: f64,
    pub open_files_use: f64,
    pub open_files: f64,
    pub pushes_per_sec: f64,
    pub push_worker_share: f64,
}

/// The parts of the predicted RSS, bytes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Ram {
    pub base: f64,
    pub accounts: f64,
    pub connections: f64,
    pub busy: f64,
    pub store: f64,
}

impl Ram {
    pub fn total(&self) -> f64 {
        self.base + self.accounts + self.connections + self.busy + self.store
    }
}

/// Connections counted as busy at `live_rate` live message-equivalents per
/// second: as many as the rate would keep at the measured per-connection
/// rate, at most all of them.
pub fn busy_connections(figures: &Figures, connections: f64, live_rate: f64) -> f64 {
    (live_rate / figures.busy_messages_per_connection_sec.value.max(1e-9)).min(connections)
}

/// RSS of everything but the store, for `shards` shards at `load`.
pub fn ram_at(figures: &Figures, traffic: &Traffic, shards: f64, load: &Load) -> Ram {
    let online = load.connections / traffic.devices() as f64;
    let live_rate = load.message_equivalents_per_sec * online;
    Ram {
        base: (figures.rss_start_bytes.value + figures.rss_registration_fixed_bytes.value) * shards,
        accounts: traffic.accounts as f64 * figures.rss_per_account_bytes.value,
        connections: load.connections * figures.rss_per_idle_connection_bytes.value,
        busy: busy_connections(figures, load.connections, live_rate)
            * figures.rss_busy_extra_bytes.value,
        store: 0.0,
    }
}

/// The fewest bytes an item is taken to need, whatever a figure minus its
/// content says.
const ITEM_BYTES_MIN: f64 = 64.0;

/// Bytes per item of `load`'s mix from a per-envelope `figure` measured
/// with the bench's content size: envelopes carry `content_bytes`, READ
/// receipts none; the stored form holds content in Base64, so each byte
/// of content moves the figure by 4/3 (arithmetic, not measured).
pub fn per_item(figures: &Figures, figure: f64, content_bytes: f64, load: &Load) -> f64 {
    let measured_content = figures.disk_content_bytes.value;
    let at = |content: f64| (figure + (content - measured_content) * 4.0 / 3.0).max(ITEM_BYTES_MIN);
    let receipts = load.receipt_items_per_sec / load.items_per_sec.max(1e-12);
    (1.0 - receipts) * at(content_bytes) + receipts * at(0.0)
}

/// Bytes per stored item at rest (compacted), for `load`'s mix.
pub fn bytes_per_item(figures: &Figures, content_bytes: f64, load: &Load) -> f64 {
    per_item(figures, figures.disk_bytes_per_envelope_compacted.value, content_bytes, load)
}

/// RSS per written item while its memtable is not flushed, for `load`'s mix.
pub fn memtable_bytes_per_item(figures: &Figures, content_bytes: f64, load: &Load) -> f64 {
    per_item(figures, figures.rss_per_unflushed_envelope_bytes.value, content_bytes, load)
}

/// Cores busy for `load` on `shards` shards: the curve at each shard's
/// share, plus connects at their measured cost.
pub fn cpu_busy(figures: &Figures, shards: f64, load: &Load) -> (f64, Range) {
    let (busy, range) = figures.curve.cores_busy(load.message_equivalents_per_sec / shards);
    (busy * shards + load.connects_per_sec * figures.cpu_us_per_reconnect.value / 1e6, range)
}

/// The plan of `inputs` with `figures`.
pub fn plan(inputs: &PlanInputs, figures: &Figures) -> Plan {
    let traffic = &inputs.traffic;
    let curve = DailyCurve::new(traffic.peak_factor, traffic.peak_hour);
    let peak = load::at(traffic, &curve, traffic.peak_hour, inputs.push_windows);
    let max_rate = figures.curve.max_rate();
    let connect_weight =
        figures.cpu_us_per_reconnect.value / figures.curve.cpu_us_per_message(max_rate);
    let demand = peak.message_equivalents_per_sec + peak.connects_per_sec * connect_weight;
    let shards = (demand / (inputs.headroom * max_rate)).ceil().max(1.0);
    let (cpu_busy_cores, cpu_range) = cpu_busy(figures, shards, &peak);
    let mut ram = ram_at(figures, traffic, shards, &peak);
    ram.store = shards * figures.rss_store_high_water_bytes.value;
    let away_secs = inputs.away_days.min(inputs.retention_days) * load::SECS_PER_DAY;
    let stored = load::away_backlog(traffic, &curve, away_secs, inputs.push_windows)
        + load::present_backlog(traffic, &curve, traffic.peak_hour, inputs.push_windows);
    let bytes_per_item = bytes_per_item(figures, traffic.content_bytes, &peak);
    let disk_use = stored * bytes_per_item + figures.disk_bytes_empty.value;
    let open_files_use =
        peak.connections + figures.fds_start.value * shards + (disk_use / TABLE_FILE_BYTES).ceil();
    Plan {
        peak,
        per_shard_rate: demand / shards,
        shards: shards as u64,
        cores: (shards as u64 + 1).max(2),
        cpu_busy_cores,
        cpu_range,
        latency_us: figures.curve.latency_us(demand / shards),
        ram,
        ram_bytes: ram.total() * inputs.ram_factor,
        stored_envelopes: stored,
        bytes_per_item,
        disk_use_bytes: disk_use,
        disk_bytes: disk_use * inputs.disk_factor + WAL_BYTES_MAX,
        open_files_use,
        open_files: open_files_use + SPARE_FILES,
        pushes_per_sec: peak.pushes_per_sec(),
        push_worker_share: peak.pushes_per_sec() / figures.push_per_sec.value,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub mod tests;
