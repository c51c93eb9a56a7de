//! The event-loop lag probe: a task that asks to wake every
//! [`PROBE_INTERVAL_MS`] and records how late it actually woke. Anything that
//! holds the shard's thread (a RocksDB read, a long parse) shows up here as
//! lag, so `switchboard_loop_lag_max_us` bounds the longest stall seen.

use crate::metrics::ShardMetrics;
use crate::shard::runtime::ShardCtx;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// CPU time this thread has used, in microseconds (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_us() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; the call only writes it.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if result != 0 {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000
}

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
