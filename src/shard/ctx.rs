//! The per-shard context: the state one shard owns, as components.
//!
//! Each component keeps its own invariants through its own methods:
//! [`Accounts`] (durable-then-visible records, one change per account, link
//! codes), [`SessionRegistry`] (one live session per device), [`SessionTimers`]
//! (session deadlines), [`QueueLens`] (stored envelopes per device), [`Mesh`]
//! (calls and hand-offs to other shards), [`ProvisioningRegistry`] (waiting
//! provisioning sockets, bounded, single-use addresses), [`EnvelopeStamps`] (server
//! timestamps that never go backwards and sequence numbers), and the
//! connection count behind [`ConnectionGuard`]. The store and the writer
//! thread are shared handles; metrics are written only to this shard's entry.
//!
//! Invariants: a `ShardCtx` is created on its shard's thread and never leaves
//! it (shared between the shard's tasks by `Rc`); a connection over
//! `connections_per_shard_max` is refused at admission.
//!
//! Imports: `clock`, `config`, `metrics`, `store`, `accounts` and the other
//! `shard` parts only: no operation, route or loop lives here.

use crate::accounts::Accounts;
use crate::clock::Clock;
use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::{Metrics, ShardMetrics};
use crate::push::link::{PushLink, ShardPush};
use crate::ratelimit::Limiters;
use crate::shard::mailbox::SessionTimers;
use crate::shard::mesh::Mesh;
use crate::shard::owed_deletes::OwedDeletes;
use crate::shard::place::{unit_of, ClusterLink, Place};
use crate::shard::provisioning::ProvisioningRegistry;
use crate::shard::queue_lens::QueueLens;
use crate::shard::receipt_window::ReceiptWindow;
use crate::shard::sessions::SessionRegistry;
use crate::shard::warnings::RepeatedWarning;
use crate::store::commit::Writer;
use crate::store::writer::WriterThread;
use crate::store::Store;
use crate::tls::ServerTls;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use uuid::Uuid;

/// Least time between two log lines of one repeated warning on a shard.
pub const WARNING_INTERVAL_MS: u64 = 10_000;

/// Most timestamps [`ShardCtx::receipt_window`] holds before it is flushed
/// early.
pub const RECEIPT_WINDOW_TIMESTAMPS_MAX: usize = 64 * 1024;

/// Size of [`ShardCtx::read_scratch`]: bytes one socket read can take.
pub const READ_SCRATCH_BYTES: usize = 64 * 1024;

/// Everything one shard owns, shared by its tasks.
pub struct ShardCtx {
    /// This shard's index.
    pub id: usize,
    /// Number of shards in the process.
    pub shard_count: usize,
    /// The configuration (read-only).
    pub config: Arc<Config>,
    /// The public listener's TLS, when it has a certificate.
    pub tls: Option<ServerTls>,
    /// Where every wall-clock reading on this shard comes from.
    pub clock: Clock,
    /// Accounts this shard owns.
    pub accounts: Accounts,
    /// The contact-discovery index entries this shard owns.
    pub directory: Directory,
    /// Rate limits for requests this shard handles.
    pub limiters: Limiters,
    /// Push schedule and the rings to the push worker.
    pub push: ShardPush,
    /// Authenticated WebSocket sessions on this shard, by device.
    pub sessions: RefCell<SessionRegistry>,
    /// Sessions' deadlines.
    pub timers: SessionTimers,
    /// Stored envelopes per device.
    pub queue_lens: QueueLens,
    /// Acknowledged envelopes whose deletes are being retried.
    pub owed_deletes: OwedDeletes,
    /// Delivery receipts owed by this shard's acknowledgements, not yet sent.
    pub receipt_window: ReceiptWindow,
    /// Provisioning sockets waiting on this shard.
    pub provisioning: ProvisioningRegistry,
    /// Server timestamps and sequence numbers for new envelopes.
    pub stamps: EnvelopeStamps,
    /// "Queue over its cap", logged at most once per [`WARNING_INTERVAL_MS`].
    pub queue_trim_warning: RepeatedWarning,
    /// "Queue write failed" (a full disk, an I/O error), logged at most once
    /// per [`WARNING_INTERVAL_MS`].
    pub write_error_warning: RepeatedWarning,
    /// "Accept failed", logged at most once per [`WARNING_INTERVAL_MS`].
    pub accept_error_warning: RepeatedWarning,
    /// This shard's end of the ring mesh.
    pub mesh: Mesh,
    /// The shard's writer: the open batch and the commit loop feeding the
    /// writer thread.
    pub writer: Writer,
    /// The database (this shard reads only its own families).
    pub store: Store,
    /// All shards' metrics; this shard writes only its own entry.
    pub metrics: Metrics,
    /// Where sessions read their sockets: one buffer per shard, borrowed only
    /// inside a synchronous read-and-handle step (never across an await).
    pub read_scratch: RefCell<Vec<u8>>,
    /// The cluster, in cluster mode: where each partition is served.
    pub cluster: Option<Rc<dyn ClusterLink>>,
    connections_open: Cell<usize>,
}

/// The parts a shard's context is built from.
pub struct ShardParts {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub shard_count: usize,
    /// Configuration.
    pub config: Arc<Config>,
    /// The public listener's TLS, when configured.
    pub tls: Option<ServerTls>,
    /// The clock.
    pub clock: Clock,
    /// The loaded accounts.
    pub accounts: Accounts,
    /// The loaded contact-discovery index entries.
    pub directory: Directory,
    /// This shard's end of the push worker's rings.
    pub push_link: PushLink,
    /// The counted queues.
    pub queue_lens: QueueLens,
    /// The shard's end of the mesh.
    pub mesh: Mesh,
    /// The writer thread.
    pub writer: WriterThread,
    /// The opened store.
    pub store: Store,
    /// Metrics of all shards.
    pub metrics: Metrics,
    /// The cluster, in cluster mode.
    pub cluster: Option<Rc<dyn ClusterLink>>,
}

impl ShardCtx {
    /// The context over loaded parts.
    pub fn new(parts: ShardParts) -> Self {
        let timers = SessionTimers::new(timer_tick_ms(&parts.config.limits));
        let limiters = Limiters::new(&parts.config.rate_limits);
        let push = ShardPush::new(&parts.config.push, parts.push_link);
        let persist_delay = std::time::Duration::from_millis(parts.config.persist_delay_ms);
        let writer =
            Writer::new(parts.writer, parts.config.limits.ring_full_wait_ms, persist_delay);
        Self {
            id: parts.id,
            shard_count: parts.shard_count,
            config: parts.config,
            tls: parts.tls,
            clock: parts.clock,
            accounts: parts.accounts,
            directory: parts.directory,
            limiters,
            push,
            sessions: RefCell::new(SessionRegistry::default()),
            timers,
            queue_lens: parts.queue_lens,
            owed_deletes: OwedDeletes::default(),
            receipt_window: ReceiptWindow::new(RECEIPT_WINDOW_TIMESTAMPS_MAX),
            provisioning: ProvisioningRegistry::default(),
            stamps: EnvelopeStamps::default(),
            queue_trim_warning: RepeatedWarning::new(WARNING_INTERVAL_MS),
            write_error_warning: RepeatedWarning::new(WARNING_INTERVAL_MS),
            accept_error_warning: RepeatedWarning::new(WARNING_INTERVAL_MS),
            mesh: parts.mesh,
            writer,
            store: parts.store,
            metrics: parts.metrics,
            read_scratch: RefCell::new(vec![0; READ_SCRATCH_BYTES]),
            cluster: parts.cluster,
            connections_open: Cell::new(0),
        }
    }

    /// This shard's metrics.
    pub fn stats(&self) -> &ShardMetrics {
        &self.metrics[self.id]
    }

    /// The routing units: the shards, or in cluster mode the partitions.
    pub fn unit_count(&self) -> usize {
        self.cluster.as_ref().map_or(self.shard_count, |cluster| cluster.unit_count())
    }

    /// The routing unit of `uuid` (see [`crate::shard::place`]).
    pub fn unit_of(&self, uuid: &Uuid) -> usize {
        unit_of(uuid, self.unit_count())
    }

    /// Where unit `unit` is served.
    pub fn place_of_unit(&self, unit: usize) -> Place {
        match &self.cluster {
            None => Place::Shard(unit),
            Some(cluster) => cluster.place(unit),
        }
    }

    /// Where the owner of `uuid` is.
    pub fn place_of(&self, uuid: &Uuid) -> Place {
        self.place_of_unit(self.unit_of(uuid))
    }

    /// Whether this shard owns `uuid`.
    pub fn owns(&self, uuid: &Uuid) -> bool {
        self.place_of(uuid) == Place::Shard(self.id)
    }

    /// Counts an open connection; `None` when the shard is at its limit.
    pub fn admit_connection(self: &Rc<Self>) -> Option<ConnectionGuard> {
        if self.connections_open.get() >= self.config.limits.connections_per_shard_max {
            ShardMetrics::inc(&self.stats().connections_refused_total);
            return None;
        }
        self.connections_open.set(self.connections_open.get() + 1);
        ShardMetrics::inc(&self.stats().connections_open);
        Some(ConnectionGuard { ctx: self.clone() })
    }
}

/// The session timers' step: an eighth of the shortest session interval,
/// between 10 and 250 ms (deadlines fire at most one step late).
fn timer_tick_ms(limits: &crate::config::Limits) -> u64 {
    (limits.ping_interval_ms.min(limits.idle_timeout_ms) / 8).clamp(10, 250)
}

/// Holds one slot of the shard's connection limit until dropped.
pub struct ConnectionGuard {
    ctx: Rc<ShardCtx>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.ctx.connections_open.set(self.ctx.connections_open.get() - 1);
        ShardMetrics::dec(&self.ctx.stats().connections_open);
    }
}

/// Server timestamps and sequence numbers for envelopes accepted here.
///
/// Invariants: timestamps handed out never go backwards, even when the wall
/// clock does; sequence numbers are unique on the shard (they order
/// envelopes within one millisecond in the store's key order).
#[derive(Debug, Default)]
pub struct EnvelopeStamps {
    next_seq: Cell<u64>,
    last_server_ms: Cell<u64>,
}

impl EnvelopeStamps {
    /// The next envelope sequence number.
    pub fn next_seq(&self) -> u64 {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        seq
    }

    /// The server timestamp for an envelope accepted at `now_ms`: the clock,
    /// but never earlier than one already handed out.
    pub fn next_server_ms(&self, now_ms: u64) -> u64 {
        let ms = now_ms.max(self.last_server_ms.get());
        self.last_server_ms.set(ms);
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timestamps_never_go_backwards_and_sequences_are_unique() {
        let stamps = EnvelopeStamps::default();
        assert_eq!(stamps.next_server_ms(1_000), 1_000);
        assert_eq!(stamps.next_server_ms(900), 1_000, "the clock stepped back");
        assert_eq!(stamps.next_server_ms(1_001), 1_001);
        assert_eq!((stamps.next_seq(), stamps.next_seq()), (0, 1));
    }
}
