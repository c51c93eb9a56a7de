//! The plan as an operator reads it: the peak's traffic, then one line per
//! resource with the predicted use, what to provision, and the measured
//! figure (by its place in the results file) that drives it.

use super::curve::Range;
use super::figures::Figures;
use super::plan::{Plan, PlanInputs, SPARE_FILES, TABLE_FILE_BYTES, WAL_BYTES_MAX};
use std::fmt::Write;

/// `value` with thousands separators, no decimals.
pub fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// `bytes` in GB, MB or KB (decimal units, one decimal).
pub fn bytes(bytes: f64) -> String {
    match bytes.abs() {
        b if b >= 1e12 => format!("{:.1} TB", bytes / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", bytes / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", bytes / 1e6),
        _ => format!("{:.1} KB", bytes / 1e3),
    }
}

/// The plan as text.
pub fn plan_text(inputs: &PlanInputs, plan: &Plan, figures: &Figures) -> String {
    let (t, p) = (&inputs.traffic, &plan.peak);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity plan: {} accounts, {} devices ({:.0} % linked), peak at {:.0}:00 ({}x the day's mean)",
        count(t.accounts as f64), count(t.devices() as f64), t.linked_share * 100.0, t.peak_hour, t.peak_factor
    );
    let _ = writeln!(
        out,
        "figures: {} ({}, {})",
        figures.file.display(),
        figures.machine,
        figures.date
    );
    let _ = writeln!(out, "\nat the peak, per second:");
    let _ = writeln!(
        out,
        "  connections          {:>12}   {} devices x {} concurrent",
        count(p.connections),
        count(t.devices() as f64),
        t.concurrent
    );
    let _ = writeln!(
        out,
        "  sends                {:>12}   {} accounts x {} a day x {} / 86,400",
        count(p.sends_per_sec),
        count(t.accounts as f64),
        t.messages_per_day,
        t.peak_factor
    );
    let _ = writeln!(
        out,
        "  message-equivalents  {:>12}   {} items (copies, sync, READ receipts) + {} typing",
        count(p.message_equivalents_per_sec),
        count(p.items_per_sec),
        count(p.typing_per_sec)
    );
    let _ = writeln!(
        out,
        "  stored               {:>12}   items for devices offline",
        count(p.stored_per_sec)
    );
    let _ = writeln!(
        out,
        "  connects             {:>12}   connections / {} min sessions",
        count(p.connects_per_sec),
        t.session_minutes
    );
    let _ = writeln!(
        out,
        "  pushes               {:>12}   {} alerts + {} background",
        count(p.pushes_per_sec()),
        count(p.alert_pushes_per_sec),
        count(p.background_pushes_per_sec)
    );
    let _ = writeln!(
        out,
        "\n{:<18} {:>14} {:>22}   driven by (measured unless marked)",
        "resource", "predicted use", "provision"
    );
    for line in lines(inputs, plan, figures) {
        let _ = writeln!(out, "{:<18} {:>14} {:>22}   {}", line.0, line.1, line.2, line.3);
    }
    if let Some(note) = range_note(plan, figures) {
        let _ = writeln!(out, "\nnote: {note}");
    }
    out
}

/// One line per resource: (name, predicted use, provision, driven by).
pub fn lines(
    inputs: &PlanInputs,
    plan: &Plan,
    figures: &Figures,
) -> Vec<(String, String, String, String)> {
    let f = figures;
    let max = f.curve.max_rate();
    let cpu_us =
        f.curve.cpu_us_per_message(plan.peak.message_equivalents_per_sec / plan.shards as f64);
    let r = &plan.ram;
    vec![
        ("shards".into(), count(plan.shards as f64), count(plan.shards as f64),
         format!("{}/s per shard (connects as messages) = {:.0} % of the one-core maximum {}/s (closed_loop); headroom {:.0} %",
                 count(plan.per_shard_rate), plan.per_shard_rate / max * 100.0, count(max), inputs.headroom * 100.0)),
        ("cores".into(), format!("{:.2} busy", plan.cpu_busy_cores), count(plan.cores as f64),
         format!("{cpu_us:.1} us/message at {}/s per shard (curve of {} points, open_loop + closed_loop); {:.0} us per connect (storm/result/server_cpu_us_per_reconnect); +1 core for the OS",
                 count(plan.peak.message_equivalents_per_sec / plan.shards as f64), f.curve.points().len(), f.cpu_us_per_reconnect.value)),
        ("RAM".into(), bytes(r.total()), format!("{} (x{})", bytes(plan.ram_bytes), inputs.ram_factor),
         format!("base {} ({} at start, idle/server_rss_start_bytes, + {} once written to, registration/small; per shard) + accounts {} ({:.0} B each, slope of registration) + connections {} ({:.0} B idle each) + busy {} ({:.0} B extra at {:.0} msg/s) + store {} (memtables, block cache: its high water per shard under churn, store_churn)",
                 bytes(r.base), bytes(f.rss_start_bytes.value), bytes(f.rss_registration_fixed_bytes.value), bytes(r.accounts), f.rss_per_account_bytes.value, bytes(r.connections),
                 f.rss_per_idle_connection_bytes.value, bytes(r.busy), f.rss_busy_extra_bytes.value, f.busy_messages_per_connection_sec.value,
                 bytes(r.store))),
        ("stored items".into(), count(plan.stored_envelopes), String::new(),
         format!("away devices for {} days (at most the {}-day retention) + present devices offline at the peak (model)",
                 inputs.away_days, inputs.retention_days)),
        ("disk".into(), bytes(plan.disk_use_bytes), format!("{} (x{} + WAL)", bytes(plan.disk_bytes), inputs.disk_factor),
         format!("{:.0} B per item at rest: {:.0} B per envelope compacted at {:.0} B content (backlog_kept) + 4/3 per content byte (Base64, arithmetic); WAL cap {} (src/store/mod.rs)",
                 plan.bytes_per_item, f.disk_bytes_per_envelope_compacted.value, f.disk_content_bytes.value, bytes(WAL_BYTES_MAX))),
        ("open files".into(), count(plan.open_files_use), format!("ulimit -n {}", count(plan.open_files)),
         format!("connections + {:.0} per shard at start (idle/server_fds_start) + one per {} table file (RocksDB default) + {} spare",
                 f.fds_start.value, bytes(TABLE_FILE_BYTES), count(SPARE_FILES))),
        ("push worker".into(), format!("{}/s", count(plan.pushes_per_sec)), format!("{:.0} % of one", plan.push_worker_share * 100.0),
         format!("one worker thread settled {}/s (push/result/push/per_sec: a lower bound, the sends fed it)", count(f.push_per_sec.value))),
        ("latency".into(), format!("{:.1}/{:.1} ms", plan.latency_us.0 / 1e3, plan.latency_us.1 / 1e3), String::new(),
         "p50/p99 from the write at that per-shard rate, from the curve (not planned: what the load costs)".into()),
    ]
}

/// Where the plan leaves the measured range, said plainly.
fn range_note(plan: &Plan, figures: &Figures) -> Option<String> {
    let rate = plan.peak.message_equivalents_per_sec / plan.shards as f64;
    match plan.cpu_range {
        Range::Measured => None,
        Range::BelowLowest => Some(format!(
            "{}/s per shard is below the lowest measured rate ({}/s): CPU per message is taken as that point's, and it rises further as load falls",
            count(rate), count(figures.curve.points()[0].rate_per_sec))),
        Range::AboveMaximum => Some(format!(
            "{}/s per shard is above the one-core maximum ({}/s): raise the headroom's shard count",
            count(rate), count(figures.curve.max_rate()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_an_operator_writes_them() {
        assert_eq!(count(1_234_567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(0.0), "0");
        assert_eq!(count(-1_000.0), "-1,000");
        assert_eq!(bytes(7_129_179_278.0), "7.1 GB");
        assert_eq!(bytes(2_500_000.0), "2.5 MB");
        assert_eq!(bytes(1.5e12), "1.5 TB");
    }
}
