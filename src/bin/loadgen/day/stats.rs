//! What a `day` run offered and saw: counters every device task bumps
//! (relaxed atomics: each is read only for totals and once a second for
//! the timeline, never to order anything), latency histograms, and the
//! timeline of one point per second of the run.
//!
//! Latency is measured from the write: each message's content carries the
//! instant its frame was built, and the receiving device reads it when the
//! delivery arrives (one process, one clock). Deliveries of a queue drained
//! after a reconnect are kept apart: their latency is the time the device
//! was away, not the server's.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Every counter of a run. Offered: what the devices asked for; the rest:
/// what came back.
#[derive(Debug, Default)]
pub struct DayStats {
    pub sends_offered: AtomicU64,
    pub sends_ok: AtomicU64,
    pub sync_offered: AtomicU64,
    pub sync_ok: AtomicU64,
    pub sealed_offered: AtomicU64,
    pub typing_offered: AtomicU64,
    pub typing_ok: AtomicU64,
    pub read_receipts_offered: AtomicU64,
    pub read_receipts_ok: AtomicU64,
    /// Requests answered with anything but success.
    pub requests_failed: AtomicU64,
    /// Requests not sent: the device already had [`super::device::PENDING_MAX`]
    /// awaiting their answer.
    pub requests_skipped: AtomicU64,
    /// Requests whose answer had not come when their session ended.
    pub unanswered_at_close: AtomicU64,
    /// Destination devices named by the sends (recipients' and sync copies').
    pub envelopes_addressed: AtomicU64,
    pub content_bytes_offered: AtomicU64,
    /// Envelopes delivered to a connected device after its queue was drained.
    pub deliveries_live: AtomicU64,
    /// Envelopes delivered from the stored queue after a (re)connect.
    pub deliveries_drained: AtomicU64,
    pub delivery_receipts_seen: AtomicU64,
    pub read_receipts_seen: AtomicU64,
    pub typing_seen: AtomicU64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub disconnects: AtomicU64,
    /// Devices connected now (a gauge).
    pub connected: AtomicU64,
    pub connected_max: AtomicU64,
    /// Latency from the write of live deliveries, microseconds.
    pub live_latency: Mutex<Option<Histogram<u64>>>,
    /// The same, since the last timeline point.
    pub live_latency_interval: Mutex<Option<Histogram<u64>>>,
    /// Send to delivery of drained envelopes, microseconds.
    pub drained_latency: Mutex<Option<Histogram<u64>>>,
}

/// A histogram of 1 us to 10 min, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// Records `value_us` into the histogram behind `slot`.
fn record(slot: &Mutex<Option<Histogram<u64>>>, value_us: u64) {
    let mut guard = slot.lock().expect("histogram lock");
    let _ = guard.get_or_insert_with(histogram).record(value_us.clamp(1, 600_000_000));
}

impl DayStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A device connected.
    pub fn on_connected(&self) {
        Self::bump(&self.connects);
        let now = self.connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.connected_max.fetch_max(now, Ordering::Relaxed);
    }

    /// A device's session ended with `unanswered` requests awaiting answers.
    pub fn on_disconnected(&self, unanswered: u64) {
        Self::bump(&self.disconnects);
        self.connected.fetch_sub(1, Ordering::Relaxed);
        self.unanswered_at_close.fetch_add(unanswered, Ordering::Relaxed);
    }

    /// A delivery arrived `latency_us` after its write; `drained` when it
    /// came from the queue stored while the device was away.
    pub fn on_delivery(&self, latency_us: u64, drained: bool) {
        if drained {
            Self::bump(&self.deliveries_drained);
            record(&self.drained_latency, latency_us);
        } else {
            Self::bump(&self.deliveries_live);
            record(&self.live_latency, latency_us);
            record(&self.live_latency_interval, latency_us);
        }
    }

    /// The interval's live latency (p50, p99, in microseconds; 0 without
    /// deliveries), starting a new interval.
    pub fn take_interval_latency(&self) -> (u64, u64) {
        let taken = self.live_latency_interval.lock().expect("histogram lock").take();
        taken.map_or((0, 0), |h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }
}

/// One second of the run, as the load generator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the day started.
    pub t_secs: f64,
    /// The hour of the simulated day.
    pub day_hour: f64,
    pub connected: u64,
    pub sends_offered: u64,
    pub sends_ok: u64,
    pub deliveries_live: u64,
    pub deliveries_drained: u64,
    /// Live delivery latency from the write over the second, microseconds.
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
}

/// Percentiles of one latency histogram, microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The percentiles of the histogram behind `slot`.
pub fn percentiles(slot: &Mutex<Option<Histogram<u64>>>) -> Percentiles {
    let guard = slot.lock().expect("histogram lock");
    guard.as_ref().map_or_else(Percentiles::default, |h| Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    })
}

/// Totals of a run: what was offered, what was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub sends_offered: u64,
    pub sends_ok: u64,
    pub sealed_offered: u64,
    pub sync_offered: u64,
    pub sync_ok: u64,
    pub typing_offered: u64,
    pub typing_ok: u64,
    pub read_receipts_offered: u64,
    pub read_receipts_ok: u64,
    pub requests_failed: u64,
    pub requests_skipped: u64,
    pub unanswered_at_close: u64,
    pub envelopes_addressed: u64,
    pub content_bytes_mean: f64,
    pub deliveries_live: u64,
    pub deliveries_drained: u64,
    pub delivery_receipts_seen: u64,
    pub read_receipts_seen: u64,
    pub typing_seen: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub disconnects: u64,
    pub connected_max: u64,
}

impl DayStats {
    /// The run's totals so far.
    pub fn totals(&self) -> Totals {
        let get = Self::get;
        let sends = get(&self.sends_offered) + get(&self.sync_offered);
        Totals {
            sends_offered: get(&self.sends_offered),
            sends_ok: get(&self.sends_ok),
            sealed_offered: get(&self.sealed_offered),
            sync_offered: get(&self.sync_offered),
            sync_ok: get(&self.sync_ok),
            typing_offered: get(&self.typing_offered),
            typing_ok: get(&self.typing_ok),
            read_receipts_offered: get(&self.read_receipts_offered),
            read_receipts_ok: get(&self.read_receipts_ok),
            requests_failed: get(&self.requests_failed),
            requests_skipped: get(&self.requests_skipped),
            unanswered_at_close: get(&self.unanswered_at_close),
            envelopes_addressed: get(&self.envelopes_addressed),
            content_bytes_mean: get(&self.content_bytes_offered) as f64 / sends.max(1) as f64,
            deliveries_live: get(&self.deliveries_live),
            deliveries_drained: get(&self.deliveries_drained),
            delivery_receipts_seen: get(&self.delivery_receipts_seen),
            read_receipts_seen: get(&self.read_receipts_seen),
            typing_seen: get(&self.typing_seen),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
            disconnects: get(&self.disconnects),
            connected_max: get(&self.connected_max),
        }
    }
}
