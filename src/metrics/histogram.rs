//! Histograms in the Prometheus exposition: fixed buckets, cumulative
//! `_bucket{le}` lines, `_sum` and `_count`.
//!
//! - [`LatencyHistogram`]: microseconds recorded, exposed in seconds,
//!   buckets from 100 us to 30 s.
//! - [`SizeHistogram`]: counts (e.g. jobs per writer batch), buckets by
//!   powers of two up to 4096.
//!
//! Invariants: recording is a few relaxed atomic adds (no lock, no
//! allocation); a value above the last bound lands in `+Inf` only, so
//! `_count` always equals the `+Inf` bucket.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in microseconds.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000, 30_000_000,
];

/// Upper bounds of the size buckets.
pub const SIZE_BOUNDS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// Buckets over `N` bounds (plus `+Inf`) and the sum of what was recorded.
struct Buckets<const N: usize> {
    counts: [AtomicU64; N],
    plus_inf: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Default for Buckets<N> {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            plus_inf: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Buckets<N> {
    fn record(&self, bounds: &[u64; N], value: u64) {
        match bounds.iter().position(|bound| value <= *bound) {
            Some(bucket) => self.counts[bucket].fetch_add(1, Ordering::Relaxed),
            None => self.plus_inf.fetch_add(1, Ordering::Relaxed),
        };
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Appends the lines of `name` on `shard`, values divided by `unit`.
    fn render(&self, out: &mut String, bounds: &[u64; N], unit: f64, name: &str, shard: usize) {
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let le = *bound as f64 / unit;
            let _ = writeln!(out, "{name}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.plus_inf.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{shard=\"{shard}\",le=\"+Inf\"}} {cumulative}");
        let sum = self.sum.load(Ordering::Relaxed) as f64 / unit;
        let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {cumulative}");
    }
}

/// A latency histogram: record microseconds, exposed in seconds.
#[derive(Default)]
pub struct LatencyHistogram(Buckets<14>);

impl LatencyHistogram {
    /// Records one observation of `us` microseconds.
    pub fn record_us(&self, us: u64) {
        self.0.record(&LATENCY_BOUNDS_US, us);
    }

    /// Appends this histogram's lines for `name` on `shard`.
    pub fn render(&self, out: &mut String, name: &str, shard: usize) {
        self.0.render(out, &LATENCY_BOUNDS_US, 1e6, name, shard);
    }
}

/// A histogram of sizes (counts of things).
#[derive(Default)]
pub struct SizeHistogram(Buckets<13>);

impl SizeHistogram {
    /// Records one observation of `size`.
    pub fn record(&self, size: u64) {
        self.0.record(&SIZE_BOUNDS, size);
    }

    /// Appends this histogram's lines for `name` on `shard`.
    pub fn render(&self, out: &mut String, name: &str, shard: usize) {
        self.0.render(out, &SIZE_BOUNDS, 1.0, name, shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_in_seconds_with_sum_and_count() {
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

    #[test]
    fn size_buckets_count_things() {
        let histogram = SizeHistogram::default();
        for size in [1, 3, 3, 5000] {
            histogram.record(size);
        }
        let mut out = String::new();
        histogram.render(&mut out, "y", 1);
        assert!(out.contains("y_bucket{shard=\"1\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("y_bucket{shard=\"1\",le=\"4\"} 3\n"));
        assert!(out.contains("y_bucket{shard=\"1\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("y_sum{shard=\"1\"} 5007\n"));
    }
}
