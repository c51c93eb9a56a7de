//! The event-loop lag probe: a task that asks to wake every
//! [`PROBE_INTERVAL_MS`] and records how late it actually woke. Anything that
//! holds the shard's thread (a RocksDB read, a long parse) shows up here as
//! lag, so `switchboard_loop_lag_max_us` bounds the longest stall seen.

use crate::metrics::ShardMetrics;
use crate::shard::ShardCtx;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the probe wakes.
pub const PROBE_INTERVAL_MS: u64 = 5;

/// Runs the probe for the life of the shard.
pub async fn probe_loop(ctx: Rc<ShardCtx>) {
    let interval = Duration::from_millis(PROBE_INTERVAL_MS);
    loop {
        let asked = Instant::now();
        monoio::time::sleep(interval).await;
        let late_us = asked.elapsed().saturating_sub(interval).as_micros() as u64;
        let stats = ctx.stats();
        stats.loop_lag_max_us.fetch_max(late_us, Ordering::Relaxed);
        if late_us >= 1000 {
            ShardMetrics::inc(&stats.loop_lag_over_1ms_total);
        }
    }
}
