use super::*;
use crate::capacity::load::tests::example;
use serde_json::json;
use std::path::Path;

/// A results file with round figures, so every expected number below is
/// worked out by hand in its comment.
pub fn round_figures() -> Figures {
    let run = |rate: f64, cpu: f64, mid: f64, p50: f64, p99: f64| {
        json!({"server_cpu_us_per_message": cpu, "server_rss_start_bytes": 30e6, "server_rss_mid_bytes": mid,
               "loadgen": {"result": {"sent_per_sec": rate, "from_write_latency_us_p50": p50,
                                      "from_write_latency_us_p99": p99}}})
    };
    let root = json!({
        "date": "2026-12-06", "pairs": 50,
        "closed_loop": run(100_000.0, 10.0, 33e6, 1000.0, 5000.0),
        "open_loop": [
            {"percent": 10, "rate": 10_000, "run": run(10_000.0, 60.0, 31e6, 100.0, 500.0)},
            {"percent": 25, "rate": 25_000, "run": run(25_000.0, 36.0, 32e6, 200.0, 1000.0)},
            {"percent": 50, "rate": 50_000, "run": run(50_000.0, 19.0, 32.5e6, 400.0, 2000.0)},
        ],
        "idle": {"server_rss_start_bytes": 30e6, "server_fds_start": 20,
                 "loadgen": {"result": {"connections_wanted": 10_000, "server_rss_before_bytes": 40e6,
                                        "server_rss_per_connection_bytes": 3000.0}}},
        "backlog": {"result": {"server_rss_bytes_per_stored": 600.0}},
        "backlog_kept": {"loadgen": {"result": {"stored": 100_000, "content_bytes": 64}},
                         "compacted": {"result": {"bytes_after": 43.4e6}},
                         "empty_compacted": {"result": {"bytes_after": 0.2e6}}},
        "storm": {"result": {"server_cpu_us_per_reconnect": 50.0}},
        "push": {"result": {"push": {"per_sec": 8000.0}}},
    });
    Figures::from_json(Path::new("round.json"), &root).expect("round figures")
}

pub fn inputs(traffic: Traffic) -> PlanInputs {
    PlanInputs {
        traffic,
        away_days: 2.0,
        retention_days: 30.0,
        headroom: 0.5,
        ram_factor: 2.0,
        disk_factor: 2.0,
        push_windows: PushWindows::DEFAULT,
    }
}

fn close(value: f64, expected: f64, what: &str) {
    assert!(
        (value - expected).abs() <= expected.abs() * 1e-6 + 1e-6,
        "{what}: {value} against {expected}"
    );
}

#[test]
fn derived_figures_are_read_by_hand() {
    let figures = round_figures();
    // (40 MB - 30 MB) / 10,000 accounts.
    close(figures.rss_per_account_bytes.value, 1000.0, "per account");
    // Nearest 25 %: (32 MB - 30 MB) / 100 connections - 1,000 = 19,000; less
    // the idle 3,000: 16,000 extra at 25,000 / 100 = 250 messages/s each.
    close(figures.rss_busy_extra_bytes.value, 16_000.0, "busy extra");
    close(figures.busy_messages_per_connection_sec.value, 250.0, "busy rate");
    // (43.4 MB - 0.2 MB) / 100,000.
    close(figures.disk_bytes_per_envelope_compacted.value, 432.0, "compacted");
    assert_eq!(figures.curve.max_rate(), 100_000.0);
}

#[test]
fn the_worked_example_planned_by_hand() {
    let plan = plan(&inputs(example()), &round_figures());
    // Demand: 19,370.370 message-equivalents + 1,000 connects x (50 / 10)
    // = 24,370.370/s, under half of 100,000: one shard, two cores.
    close(plan.per_shard_rate, 24_370.370_370, "per shard");
    assert_eq!((plan.shards, plan.cores), (1, 2));
    // Busy: 0.6 + (19,370.37 - 10,000) / 15,000 x 0.3 = 0.787407, plus
    // 1,000 connects x 50 us = 0.05.
    close(plan.cpu_busy_cores, 0.837_407_407, "cpu");
    assert_eq!(plan.cpu_range, Range::Measured);
    // RAM: 30 MB + 1.6 M x 1 KB + 600 k x 3 KB + (5,811.1 / 250) x 16 KB
    // + 2 x 64 MiB = 3,564,589,639 bytes; x 2 provisioned.
    close(plan.ram.total(), 3_564_589_639.111, "ram use");
    close(plan.ram_bytes, 7_129_179_278.222, "ram");
    // Stored: 37,040,000 away (two days) + 14,490,185 present offline;
    // 432 + 448 x 4/3 = 1,029.333 bytes each, + 0.2 MB empty.
    close(plan.stored_envelopes, 51_530_185.185, "stored");
    close(plan.bytes_per_envelope, 1_029.333_333, "bytes per envelope");
    close(plan.disk_use_bytes, 53_041_937_284.0, "disk use");
    close(plan.disk_bytes, 106_352_310_023.9, "disk");
    // Files: 600,000 + 20 + 791 table files; + 1,000 spare.
    close(plan.open_files, 601_811.0, "open files");
    // Pushes: 4,076.68 alerts + 1,022.86 background = 5,099.54/s, 63.7 %
    // of the worker's 8,000/s.
    close(plan.pushes_per_sec, 5_099.543_901, "pushes");
    close(plan.push_worker_share, 0.637_442_988, "push share");
}

#[test]
fn more_traffic_takes_more_shards_and_retention_bounds_the_backlog() {
    let busy = Traffic { accounts: 16_000_000, ..example() };
    let plan_ = plan(&inputs(busy), &round_figures());
    // Demand 243,703.7/s over 50,000 per shard: 5 shards, 6 cores.
    assert_eq!((plan_.shards, plan_.cores), (5, 6));
    let short = PlanInputs { retention_days: 1.0, ..inputs(example()) };
    let bounded = plan(&short, &round_figures());
    // One day of away backlog instead of two: 18,520,000 + 14,490,185.
    close(bounded.stored_envelopes, 33_010_185.185, "bounded by retention");
}
