use super::*;
use crate::capacity::load::tests::example;
use std::path::Path;

/// A results file with round figures (`tests/fixtures/capacity-figures.json`,
/// also read by `tests/capacity_script.rs`), so every expected number below
/// is worked out by hand in its comment.
pub fn round_figures() -> Figures {
    let text = include_str!("../../../../tests/fixtures/capacity-figures.json");
    let root: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
    Figures::from_json(Path::new("capacity-figures.json"), &root).expect("round figures")
}

pub fn inputs(traffic: Traffic) -> PlanInputs {
    PlanInputs {
        traffic,
        away_days: 2.0,
        retention_days: 30.0,
        headroom: 0.25,
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
    // Gains of 8 MB at 2,000 accounts and 16 MB at 10,000: 1,000 B per
    // account, and 8 MB - 2 MB = 6 MB whatever the count.
    close(figures.rss_per_account_bytes.value, 1000.0, "per account");
    close(figures.rss_registration_fixed_bytes.value, 6e6, "fixed");
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
    // = 24,370.370/s, under a quarter of 100,000: one shard, two cores.
    close(plan.per_shard_rate, 24_370.370_370, "per shard");
    assert_eq!((plan.shards, plan.cores), (1, 2));
    // Busy: 0.6 + (19,370.37 - 10,000) / 15,000 x 0.3 = 0.787407, plus
    // 1,000 connects x 50 us = 0.05.
    close(plan.cpu_busy_cores, 0.837_407_407, "cpu");
    assert_eq!(plan.cpu_range, Range::Measured);
    // RAM: 30 + 6 MB + 1.6 M x 1 KB + 600 k x 3 KB + (5,811.1 / 250) x
    // 16 KB + the store at its high water (130 MB - 30 MB = 100 MB)
    // = 3,536,371,911 bytes; x 2 provisioned.
    close(plan.ram.total(), 3_536_371_911.111, "ram use");
    close(plan.ram_bytes, 7_072_743_822.222, "ram");
    // Stored: 37,040,000 away (two days) + 14,490,185 present offline.
    // Per item: envelopes 432 + 448 x 4/3 = 1,029.333 bytes, READ receipts
    // (28.73 % of items) 432 - 64 x 4/3 = 346.667: 833.233 on average;
    // + 0.2 MB empty.
    close(plan.stored_envelopes, 51_530_185.185, "stored");
    close(plan.bytes_per_item, 833.232_541, "bytes per item");
    close(plan.disk_use_bytes, 42_936_827_160.5, "disk use");
    close(plan.disk_bytes, 86_142_089_777.0, "disk");
    // Files: 600,000 + 20 + 640 table files; + 1,000 spare.
    close(plan.open_files, 601_660.0, "open files");
    // Pushes: 4,076.68 alerts + 1,022.86 background = 5,099.54/s, 63.7 %
    // of the worker's 8,000/s.
    close(plan.pushes_per_sec, 5_099.543_901, "pushes");
    close(plan.push_worker_share, 0.637_442_988, "push share");
}

#[test]
fn more_traffic_takes_more_shards_and_retention_bounds_the_backlog() {
    let busy = Traffic { accounts: 16_000_000, ..example() };
    let plan_ = plan(&inputs(busy), &round_figures());
    // Demand 243,703.7/s over 25,000 per shard: 10 shards, 11 cores.
    assert_eq!((plan_.shards, plan_.cores), (10, 11));
    let short = PlanInputs { retention_days: 1.0, ..inputs(example()) };
    let bounded = plan(&short, &round_figures());
    // One day of away backlog instead of two: 18,520,000 + 14,490,185.
    close(bounded.stored_envelopes, 33_010_185.185, "bounded by retention");
}
