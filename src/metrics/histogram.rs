//! Latency histograms in the Prometheus exposition: fixed buckets from
//! 100 us to 30 s, cumulative `_bucket{le}` lines in seconds, `_sum` and
//! `_count`.
//!
//! Invariants: recording is a few relaxed atomic adds (no lock, no
//! allocation); a value above the last bound lands in `+Inf` only, so
//! `_count` always equals the `+Inf` bucket.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, in microseconds.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000, 30_000_000,
];

/// One latency histogram.
#[derive(Default)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation of `us` microseconds.
    pub fn record_us(&self, us: u64) {
        let bucket = LATENCY_BOUNDS_US.partition_point(|bound| *bound < us);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Appends this histogram's lines for `name` on `shard`.
    pub fn render(&self, out: &mut String, name: &str, shard: usize) {
        let mut cumulative = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = LATENCY_BOUNDS_US
                .get(index)
                .map_or("+Inf".to_string(), |bound| format!("{}", *bound as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {cumulative}");
        }
        let sum_s = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {sum_s}");
        let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_in_seconds_with_sum_and_count() {
        let histogram = LatencyHistogram::default();
        for us in [50, 100, 101, 2_000_000, 60_000_000] {
            histogram.record_us(us);
        }
        let mut out = String::new();
        histogram.render(&mut out, "x", 0);
        assert!(out.contains("x_bucket{shard=\"0\",le=\"0.0001\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{shard=\"0\",le=\"0.00025\"} 3\n"));
        assert!(out.contains("x_bucket{shard=\"0\",le=\"5\"} 4\n"));
        assert!(out.contains("x_bucket{shard=\"0\",le=\"+Inf\"} 5\n"));
        assert!(out.contains("x_count{shard=\"0\"} 5\n"));
        assert!(out.contains("x_sum{shard=\"0\"} 62.000251\n"));
    }
}
