//! The measured figures a plan is read from: a results file of
//! `scripts/bench-capacity` (`benches/results/<date>-<host>-capacity.json`),
//! every figure per core of the machine that ran it. Each figure keeps the
//! path of the JSON value it came from, so the plan can say which
//! measurement drives each line.

use super::curve::{CpuCurve, CurvePoint};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One measured figure and where in the results file it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    pub value: f64,
    pub source: String,
}

/// Why a results file gives no figures.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    #[error("figures file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("figures file {0} is not JSON: {1}")]
    Json(PathBuf, serde_json::Error),
    #[error("figures file {0} has no usable {1} (is it a scripts/bench-capacity results file?)")]
    Missing(PathBuf, String),
}

/// Every figure a plan needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub file: PathBuf,
    /// The machine and date the figures were measured on.
    pub machine: String,
    pub date: String,
    /// Server CPU by load, one core.
    pub curve: CpuCurve,
    /// Connections the CPU points were measured with.
    pub curve_connections: Figure,
    pub rss_start_bytes: Figure,
    pub rss_per_account_bytes: Figure,
    /// RSS the first writes take whatever the account count (memtable
    /// arenas), per shard.
    pub rss_registration_fixed_bytes: Figure,
    pub rss_per_idle_connection_bytes: Figure,
    /// Extra RSS of a connection carrying traffic, over an idle one, and
    /// the messages per second per connection it was measured at.
    pub rss_busy_extra_bytes: Figure,
    pub busy_messages_per_connection_sec: Figure,
    /// RSS growth per envelope written and not yet flushed (memtable).
    pub rss_per_unflushed_envelope_bytes: Figure,
    /// RSS growth of a store under churn (writes that fill and flush the
    /// memtables, reads of flushed tables, deletes): the most the store's
    /// memtables, block cache and buffers took, per shard.
    pub rss_store_high_water_bytes: Figure,
    pub fds_start: Figure,
    /// Content bytes of the envelopes the disk figures were measured with.
    pub disk_content_bytes: Figure,
    pub disk_bytes_per_envelope_compacted: Figure,
    pub disk_bytes_empty: Figure,
    pub cpu_us_per_reconnect: Figure,
    pub push_per_sec: Figure,
}

/// The number at `path` (`/`-separated keys; numbers index arrays).
fn number(root: &Value, path: &str) -> Option<f64> {
    path.split('/')
        .try_fold(root, |value, key| match key.parse::<usize>() {
            Ok(index) => value.get(index),
            Err(_) => value.get(key),
        })?
        .as_f64()
        .filter(|value| value.is_finite())
}

impl Figures {
    /// Reads the figures of the results file at `file`.
    pub fn read(file: &Path) -> Result<Self, FiguresError> {
        let text = std::fs::read_to_string(file).map_err(|e| FiguresError::Read(file.into(), e))?;
        let root: Value =
            serde_json::from_str(&text).map_err(|e| FiguresError::Json(file.into(), e))?;
        Self::from_json(file, &root)
    }

    /// The figures of a parsed results file.
    pub fn from_json(file: &Path, root: &Value) -> Result<Self, FiguresError> {
        let missing = |what: &str| FiguresError::Missing(file.into(), what.into());
        let get = |path: &str| -> Result<Figure, FiguresError> {
            let value = number(root, path).ok_or_else(|| missing(path))?;
            Ok(Figure { value, source: path.to_string() })
        };
        let derived = |value: f64, source: String| Figure { value, source };
        let curve =
            read_curve(root).ok_or_else(|| missing("closed_loop and open_loop CPU points"))?;
        let pairs = get("pairs")?;
        let idle = "idle/loadgen/result";
        let rss_start = get("idle/server_rss_start_bytes")?;
        let (small, small_gain) =
            registration(root, "small").ok_or_else(|| missing("registration/small"))?;
        let (large, large_gain) =
            registration(root, "large").ok_or_else(|| missing("registration/large"))?;
        let per_account = ((large_gain - small_gain) / (large - small).max(1.0)).max(0.0);
        let registration_fixed = (small_gain - per_account * small).max(0.0);
        let per_idle = get(&format!("{idle}/server_rss_per_connection_bytes"))?;
        let (busy_extra, busy_rate) =
            busy_connection(root, 2.0 * pairs.value, per_account, per_idle.value)
                .ok_or_else(|| missing("open_loop server_rss_mid_bytes"))?;
        let churn = "store_churn/result/server_rss_bytes";
        let rss = |index: usize| get(&format!("{churn}/{index}")).map(|figure| figure.value);
        let high_water = (rss(1)?.max(rss(2)?) - rss(0)?).max(0.0);
        let kept = get("backlog_kept/loadgen/result/stored")?;
        let compacted = get("backlog_kept/compacted/result/bytes_after")?;
        let empty = get("backlog_kept/empty_compacted/result/bytes_after")?;
        let per_compacted = (compacted.value - empty.value).max(0.0) / kept.value.max(1.0);
        Ok(Figures {
            file: file.into(),
            machine: machine(root),
            date: root["date"].as_str().unwrap_or("?").to_string(),
            curve,
            curve_connections: derived(2.0 * pairs.value, "2 x pairs".into()),
            rss_start_bytes: rss_start,
            rss_per_account_bytes: derived(
                per_account,
                "registration: slope of RSS gained between small and large".into(),
            ),
            rss_registration_fixed_bytes: derived(
                registration_fixed,
                "registration/small: RSS gained less its accounts at the slope".into(),
            ),
            rss_per_idle_connection_bytes: per_idle,
            rss_busy_extra_bytes: derived(
                busy_extra,
                "open_loop (25 % or nearest) server_rss_mid_bytes".into(),
            ),
            busy_messages_per_connection_sec: derived(
                busy_rate,
                "open_loop (25 % or nearest) rate / (2 x pairs)".into(),
            ),
            rss_per_unflushed_envelope_bytes: get("backlog/result/server_rss_bytes_per_stored")?,
            rss_store_high_water_bytes: derived(
                high_water,
                "store_churn: the larger of RSS after storing and after draining, less before"
                    .into(),
            ),
            fds_start: get("idle/server_fds_start")?,
            disk_content_bytes: get("backlog_kept/loadgen/result/content_bytes")?,
            disk_bytes_per_envelope_compacted: derived(
                per_compacted,
                "backlog_kept: (compacted - empty_compacted) bytes_after / stored".into(),
            ),
            disk_bytes_empty: empty,
            cpu_us_per_reconnect: get("storm/result/server_cpu_us_per_reconnect")?,
            push_per_sec: get("push/result/push/per_sec")?,
        })
    }
}

/// A registration run's accounts and the RSS they added.
fn registration(root: &Value, size: &str) -> Option<(f64, f64)> {
    let run = &root["registration"][size];
    let result = &run["loadgen"]["result"];
    let gained =
        result["server_rss_registered_bytes"].as_f64()? - run["server_rss_start_bytes"].as_f64()?;
    Some((result["population"]["accounts"].as_f64()?, gained))
}

/// The CPU points: each open loop and the closed loop.
fn read_curve(root: &Value) -> Option<CpuCurve> {
    let point = |run: &Value| -> Option<CurvePoint> {
        let result = &run["loadgen"]["result"];
        Some(CurvePoint {
            rate_per_sec: result["sent_per_sec"].as_f64()?,
            cpu_us_per_message: run["server_cpu_us_per_message"].as_f64()?,
            latency_us_p50: result["from_write_latency_us_p50"].as_f64()?,
            latency_us_p99: result["from_write_latency_us_p99"].as_f64()?,
        })
    };
    let mut points = vec![point(&root["closed_loop"])?];
    for entry in root["open_loop"].as_array()? {
        points.push(point(&entry["run"])?);
    }
    CpuCurve::new(points)
}

/// The extra RSS per busy connection over an idle one, and the rate per
/// connection it was measured at, from the open loop nearest 25 % of the
/// maximum: `(mid - start - accounts) / connections - idle`.
fn busy_connection(
    root: &Value,
    connections: f64,
    per_account: f64,
    per_idle: f64,
) -> Option<(f64, f64)> {
    let runs = root["open_loop"].as_array()?;
    let run = runs
        .iter()
        .min_by_key(|entry| (entry["percent"].as_f64().unwrap_or(0.0) - 25.0).abs() as u64)?;
    let start = run["run"]["server_rss_start_bytes"].as_f64()?;
    let mid = run["run"]["server_rss_mid_bytes"].as_f64()?;
    let per_connection = ((mid - start) / connections - per_account).max(0.0);
    Some(((per_connection - per_idle).max(0.0), run["rate"].as_f64()? / connections))
}

/// The machine a results file names (its first loadgen run's).
fn machine(root: &Value) -> String {
    let machine = &root["closed_loop"]["loadgen"]["machine"];
    format!(
        "{} ({} GB), host {}",
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["memory_bytes"].as_f64().map_or(0.0, |b| (b / 1e9).round()),
        machine["host"].as_str().unwrap_or("?")
    )
}
