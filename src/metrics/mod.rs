//! Counters exported at `GET /metrics` in the Prometheus text format.
//!
//! Owns: the counters and their exposition. Imports nothing of this crate.
//!
//! Each shard has its own [`ShardMetrics`] and is its only writer (except
//! the push worker's outcome counters, `push_*_sent/failed/retried`, which
//! the push thread adds to on the shard that queued the push), so the
//! atomics are hardly ever contended; `Relaxed` suffices because each counter is
//! independent and a scrape needs no ordering between them. A scrape (on any
//! shard) only loads.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub mod histogram;

pub use histogram::{LatencyHistogram, SizeHistogram};

/// One shard's histograms.
#[derive(Default)]
pub struct Histograms {
    /// Seconds from queueing a push to the provider accepting it (written
    /// by the push worker).
    pub push_send_seconds: LatencyHistogram,
    /// Seconds from a request's first byte being routed to its answer, every route.
    pub request_seconds: LatencyHistogram,
    /// The same for `PUT /v1/messages/{uuid}` alone.
    pub send_request_seconds: LatencyHistogram,
    /// Seconds from an envelope being stored to its delivery to a connected
    /// device (a backlog's age shows here too; ms resolution).
    pub deliver_seconds: LatencyHistogram,
    /// Jobs merged into one RocksDB write (written by the writer thread).
    pub writer_batch_jobs: SizeHistogram,
    /// Seconds one RocksDB batch write took, with its WAL sync.
    pub writer_write_seconds: LatencyHistogram,
}

/// How one histogram renders.
type RenderOne = fn(&Histograms, &mut String, &str, usize);

/// Every histogram: name, help, and how to render one shard's.
const HISTOGRAMS: [(&str, &str, RenderOne); 6] = [
    (
        "push_send_seconds",
        "Seconds from queueing a push to the provider accepting it.",
        |h, o, n, s| h.push_send_seconds.render(o, n, s),
    ),
    (
        "request_seconds",
        "Seconds to answer a request (HTTP or framed), every route.",
        |h, o, n, s| h.request_seconds.render(o, n, s),
    ),
    ("send_request_seconds", "Seconds to answer PUT /v1/messages/{uuid}.", |h, o, n, s| {
        h.send_request_seconds.render(o, n, s)
    }),
    ("deliver_seconds", "Seconds from an envelope being stored to its delivery.", |h, o, n, s| {
        h.deliver_seconds.render(o, n, s)
    }),
    ("writer_batch_jobs", "Write jobs merged into one RocksDB batch.", |h, o, n, s| {
        h.writer_batch_jobs.render(o, n, s)
    }),
    (
        "writer_write_seconds",
        "Seconds one RocksDB batch write took, with its sync.",
        |h, o, n, s| h.writer_write_seconds.render(o, n, s),
    ),
];

macro_rules! shard_metrics {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:literal,)*) => {
        /// One shard's counters, gauges and histograms.
        #[derive(Default)]
        pub struct ShardMetrics {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
            /// Histograms (see [`HISTOGRAMS`]).
            pub histograms: Histograms,
        }

        impl ShardMetrics {
            fn describe() -> &'static [(&'static str, &'static str, &'static str)] {
                &[$((stringify!($name), $kind, concat!($($doc),*)),)*]
            }

            fn values(&self) -> Vec<u64> {
                vec![$(self.$name.load(Ordering::Relaxed),)*]
            }
        }
    };
}

shard_metrics! {
    /// Connections accepted by this shard's listener.
    connections_accepted_total: "counter",
    /// Connections refused because the shard was at its connection limit.
    connections_refused_total: "counter",
    /// Failed accepts on this shard's listener (out of descriptors, mostly).
    accept_errors_total: "counter",
    /// TLS handshakes that failed or timed out (the connection was closed).
    tls_handshake_failures_total: "counter",
    /// Certificate reloads (SIGHUP) that failed; the previous certificate stays.
    tls_reload_failures_total: "counter",
    /// Connections open on this shard (HTTP and WebSocket).
    connections_open: "gauge",
    /// Connections handed from this shard to their owner shard.
    handoffs_sent_total: "counter",
    /// Connections received from other shards.
    handoffs_received_total: "counter",
    /// Cluster mode: calls sent to another node.
    cluster_calls_sent_total: "counter",
    /// Cluster mode: calls from other nodes run here.
    cluster_calls_served_total: "counter",
    /// Cluster mode: calls another node refused as not its partition's
    /// owner (a stale map here), routed again.
    cluster_wrong_owner_total: "counter",
    /// Cluster mode: calls to another node that got no usable answer (503).
    cluster_calls_failed_total: "counter",
    /// Cluster mode: connections forwarded whole to the owner node.
    cluster_forwards_total: "counter",
    /// Authenticated WebSocket sessions open.
    websockets_open: "gauge",
    /// WebSocket sessions closed because another connection of the device replaced them.
    websockets_replaced_total: "counter",
    /// Requests handled (plain HTTP and framed over WebSocket).
    requests_total: "counter",
    /// Requests answered with a 4xx or 5xx status.
    requests_failed_total: "counter",
    /// Failed logins (HTTP 401).
    auth_failures_total: "counter",
    /// Connections closed for malformed input or a limit.
    protocol_errors_total: "counter",
    /// Times a ring to another shard was full.
    ring_full_total: "counter",
    /// Accounts owned by this shard.
    accounts: "gauge",
    /// Envelopes made durable on this shard.
    messages_stored_total: "counter",
    /// Queue writes RocksDB refused (a full disk, an I/O error); their sends were answered 503.
    store_write_failures_total: "counter",
    /// Envelopes sent to a connected device (including redeliveries).
    messages_delivered_total: "counter",
    /// Of those, envelopes served from the session's in-memory queue tail
    /// instead of being read back from RocksDB.
    messages_delivered_from_tail_total: "counter",
    /// Items acknowledged by their device and deleted, or elided (below).
    messages_acked_total: "counter",
    /// Of those, items acknowledged while their put was still in the
    /// shard's open write batch: neither the put nor a delete was written.
    messages_elided_total: "counter",
    /// Envelopes deleted because a device's queue went over its cap.
    messages_trimmed_total: "counter",
    /// Envelopes deleted by the retention sweep.
    messages_expired_total: "counter",
    /// Online-only envelopes dropped because the device's session was saturated.
    ephemeral_dropped_total: "counter",
    /// The server's own `DELIVERY` receipts sent to senders on acknowledgement.
    delivery_receipts_total: "counter",
    /// The server's `DELIVERY` receipts dropped (the sender's owner refused or was busy).
    delivery_receipts_failed_total: "counter",
    /// Pushes APNs accepted (written by the push worker).
    push_apns_sent_total: "counter",
    /// Pushes FCM accepted (written by the push worker).
    push_fcm_sent_total: "counter",
    /// Pushes given up: refused for good, or still failing after every retry.
    push_failed_total: "counter",
    /// Push attempts retried (429, 5xx, connection errors, renewed credentials).
    push_retried_total: "counter",
    /// Pushes not sent because one of the same kind went out within its window.
    push_coalesced_total: "counter",
    /// Pushes dropped: the ring to the push worker was full.
    push_dropped_total: "counter",
    /// Pushes this shard queued that the worker has not settled yet (on the
    /// ring, being sent, or waiting to retry).
    push_queue_len: "gauge",
    /// Push tokens removed after the provider said they are dead.
    push_tokens_removed_total: "counter",
    /// Push challenge answers refused (wrong, used or expired token).
    push_challenges_failed_total: "counter",
    /// Requests refused with 429 by a rate limit.
    rate_limited_total: "counter",
    /// Identifier hashes this shard owns that an account is discoverable by.
    directory_entries: "gauge",
    /// Identifier hashes looked up in accepted `PUT /v1/directory/lookup` requests.
    directory_lookup_hashes_total: "counter",
    /// Longest RocksDB queue read on the shard thread, wall clock, in microseconds.
    store_read_max_us: "gauge",
    /// Most CPU time one RocksDB queue read used on the shard thread, in
    /// microseconds (wall time above this is waiting: preemption or I/O).
    store_read_cpu_max_us: "gauge",
    /// Longest event-loop stall seen, in microseconds (lag probe).
    loop_lag_max_us: "gauge",
    /// Event-loop stalls of 1 ms or more.
    loop_lag_over_1ms_total: "counter",
}

impl ShardMetrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `count` to a counter.
    pub fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }

    /// Subtracts one from a gauge.
    pub fn dec(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every shard's metrics.
pub type Metrics = Arc<[ShardMetrics]>;

/// Builds zeroed metrics for `shard_count` shards.
pub fn new_metrics(shard_count: usize) -> Metrics {
    (0..shard_count).map(|_| ShardMetrics::default()).collect()
}

/// Renders all shards' metrics, labelled by shard.
pub fn render(metrics: &[ShardMetrics]) -> String {
    let values: Vec<Vec<u64>> = metrics.iter().map(ShardMetrics::values).collect();
    let mut out = String::new();
    for (index, (name, kind, help)) in ShardMetrics::describe().iter().enumerate() {
        let _ = writeln!(out, "# HELP switchboard_{name} {}", help.trim());
        let _ = writeln!(out, "# TYPE switchboard_{name} {kind}");
        for (shard, shard_values) in values.iter().enumerate() {
            let _ =
                writeln!(out, "switchboard_{name}{{shard=\"{shard}\"}} {}", shard_values[index]);
        }
    }
    for (name, help, render_one) in HISTOGRAMS {
        let name = format!("switchboard_{name}");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (shard, stats) in metrics.iter().enumerate() {
            render_one(&stats.histograms, &mut out, &name, shard);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_shard() {
        let metrics = new_metrics(2);
        ShardMetrics::inc(&metrics[1].requests_total);
        let text = render(&metrics);
        assert!(text.contains("switchboard_requests_total{shard=\"1\"} 1"));
        assert!(text.contains("switchboard_requests_total{shard=\"0\"} 0"));
        assert!(text.contains("# TYPE switchboard_connections_open gauge"));
    }
}
