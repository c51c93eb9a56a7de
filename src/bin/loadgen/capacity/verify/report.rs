//! A verify run as text (the table of predicted against measured, the
//! provisions, the verdict) and as a gnuplot data file of both over the
//! run (`scripts/capacity --verify` renders it).

use super::compare::{rates, Row, ERROR_MAX, UNDER_MAX};
use super::Verified;
use crate::capacity::print::{bytes, count};
use std::fmt::Write;
use std::path::Path;

/// A quantity's value as its row reads it.
fn value(row: &Row, value: f64) -> String {
    match row.quantity {
        q if q.contains("bytes") => bytes(value),
        q if q.contains("cores") => format!("{value:.3}"),
        q if q.contains("latency") => format!("{:.2} ms", value / 1e3),
        _ => count(value),
    }
}

/// The verify run as text.
pub fn text(verified: &Verified) -> String {
    let mut out = String::new();
    let t = &verified.traffic;
    let _ = writeln!(
        out,
        "verify on {} ({} cores): {} accounts ({} devices), the day in {:.0} s ({:.0}x)",
        verified.machine.cpu_model,
        verified.machine.cores,
        count(t.accounts as f64),
        count(t.devices() as f64),
        verified.verify_secs,
        verified.compression
    );
    let _ = writeln!(
        out,
        "\n{:<22} {:<36} {:>12} {:>12} {:>8}",
        "quantity", "compared as", "predicted", "measured", "error"
    );
    for row in &verified.rows {
        let verdict = match (row.gated, row.passes()) {
            (false, _) => "(not gated)",
            (true, true) => "ok",
            (true, false) => "OFF",
        };
        let _ = writeln!(
            out,
            "{:<22} {:<36} {:>12} {:>12} {:>+7.1}% {verdict}",
            row.quantity,
            row.how,
            value(row, row.predicted),
            value(row, row.measured),
            row.error * 100.0
        );
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:>14} {:>14} {:>8}",
        "provision (run's plan)", "planned", "measured max", "short"
    );
    for p in &verified.provisions {
        let show = |v: f64| {
            if p.resource == "RAM" || p.resource == "disk" {
                bytes(v)
            } else {
                format!("{v:.2}")
            }
        };
        let verdict = if p.passes() { "ok" } else { "UNDER-PROVISIONED" };
        let short = p.short.max(0.0) * 100.0;
        let _ = writeln!(
            out,
            "{:<22} {:>14} {:>14} {:>7.1}% {verdict}",
            p.resource,
            show(p.provisioned),
            show(p.measured_max),
            short
        );
    }
    let _ = writeln!(
        out,
        "\nverdict: {}",
        match verified.passed {
            true => format!("every planned quantity within {:.0} % and nothing under-provisioned beyond {:.0} %", ERROR_MAX * 100.0, UNDER_MAX * 100.0),
            false => format!("FAILED: a quantity is more than {:.0} % off, or a provision short by more than {:.0} %", ERROR_MAX * 100.0, UNDER_MAX * 100.0),
        }
    );
    out
}

/// Writes the run's time series for gnuplot: one line per sample with the
/// predicted and measured CPU (cores), RSS (MB), connections, stored
/// items, pushes/s, open files, data directory (MB) and latency p99 (ms).
pub fn write_plot_data(verified: &Verified, path: &Path) -> std::io::Result<()> {
    let mut out = String::from(
        "# t_secs cpu_pred cpu_meas rss_pred_mb rss_meas_mb conn_pred conn_meas stored_pred stored_meas \
         pushes_pred pushes_meas files_pred files_meas disk_meas_mb p99_pred_ms p99_meas_ms\n",
    );
    let cpu = rates(&verified.samples, |s| s.cpu_secs);
    let pushes = rates(&verified.samples, |s| s.pushes_total);
    let at = |series: &[(f64, f64)], t: f64| {
        series.iter().find(|(time, _)| (time - t).abs() < 0.5).map_or(f64::NAN, |(_, v)| *v)
    };
    let latency: Vec<(f64, f64)> = verified
        .day
        .timeline
        .iter()
        .filter(|p| p.latency_us_p99 > 0)
        .map(|p| (p.t_secs, p.latency_us_p99 as f64 / 1e3))
        .collect();
    for (sample, predicted) in verified.samples.iter().zip(&verified.predicted) {
        let t = sample.t_secs;
        let _ = writeln!(
            out,
            "{t:.2} {:.4} {:.4} {:.2} {:.2} {:.1} {:.1} {:.1} {:.1} {:.2} {:.2} {:.1} {:.1} {:.2} {:.3} {:.3}",
            predicted.cpu_cores, at(&cpu, t), predicted.rss_bytes / 1e6, sample.rss_bytes / 1e6,
            predicted.load.connections, sample.websockets_open, predicted.stored_items, sample.stored_items,
            predicted.load.pushes_per_sec(), at(&pushes, t), predicted.open_files, sample.open_files,
            sample.disk_bytes / 1e6, predicted.latency_p99_us / 1e3, at(&latency, t)
        );
    }
    std::fs::write(path, out)
}
