//! The cluster thread: the node's one connection to the NATS cluster, run
//! on its own thread with a current-thread tokio runtime (`async-nats` is
//! tokio-only), reached by the shards through a bounded channel the way
//! the push worker is (`push::worker`).
//!
//! - [`options`]: what the thread is started with, validated up front.
//! - [`record`]: the membership record of a node and the names the buckets
//!   and keys use (pure).
//! - [`error`]: the one error type, [`NatsError`](error::NatsError), and the mapping from
//!   `async-nats`'s many error kinds.
//! - [`buckets`]: the two JetStream KV buckets and every operation on them.
//! - [`log`]: the partition logs (replicated durability): fenced
//!   appends, ordered reads, purges.
//! - [`snapshots`]: the partition snapshots (an object store bucket).
//! - [`thread`]: starting the thread, its request loop, the heartbeat and
//!   the map watch.
//! - [`handle`]: the shards' end: [`NatsHandle`] (requests, answered on a
//!   oneshot) and [`MapWatch`] (the newest map, latest-wins).
//!
//! Two buckets per cluster `<c>`:
//! - `switchboard_map_<c>`: one key, `map`, whose value is the encoded
//!   partition map (opaque bytes here, `cluster::map` encodes it). It is
//!   created once ([`NatsHandle::create_map`], KV `create`) and changed only
//!   by compare-and-swap on its revision ([`NatsHandle::swap_map`], KV
//!   `update`); the revision is the map's epoch in the bucket.
//! - `switchboard_nodes_<c>`: one key per node id, its [`NodeRecord`],
//!   rewritten every heartbeat interval; the bucket's `max_age` is the node
//!   TTL, so the key of a node that stops heartbeating expires: a node is
//!   live exactly while its key is present.
//!
//! Invariants:
//! - Shards never wait on the network: a request is a small message on a
//!   bounded channel ([`REQUEST_SLOTS`]); a full channel is
//!   [`NatsError::Busy`] at once, never a wait. Every request gets exactly
//!   one answer (or [`NatsError::Stopped`] if the thread is gone).
//! - At most [`INFLIGHT_MAX`] requests run on the thread at once.
//! - The map revision a [`MapWatch`] shows never goes backwards.
//! - A write whose answer is [`NatsError::Unavailable`] may or may not have
//!   happened (a lost ack): the caller rereads the map before deciding.
//! - The thread ends once every [`NatsHandle`] is dropped; its heartbeats
//!   stop with it, so the node's key expires one TTL later.
//!
//! Imports: `bytes`, `async-nats`, `tokio`; nothing of the crate's layers.
//!
//! [`NatsHandle`]: handle::NatsHandle
//! [`MapWatch`]: handle::MapWatch
//! [`NodeRecord`]: record::NodeRecord
//! [`NatsError::Busy`]: error::NatsError::Busy
//! [`NatsError::Stopped`]: error::NatsError::Stopped
//! [`NatsError::Unavailable`]: error::NatsError::Unavailable
//! [`NatsHandle::create_map`]: handle::NatsHandle::create_map
//! [`NatsHandle::swap_map`]: handle::NatsHandle::swap_map

pub mod buckets;
pub mod error;
pub mod handle;
pub mod log;
pub mod options;
pub mod record;
pub mod serve;
pub mod snapshots;
pub mod thread;

use bytes::Bytes;

/// Requests the shards may have queued to the thread at once (over every
/// handle); one more is [`NatsError::Busy`](error::NatsError::Busy).
pub const REQUEST_SLOTS: usize = 1024;

/// Requests the thread runs concurrently; later ones wait in the channel.
pub const INFLIGHT_MAX: usize = 256;

/// The largest map value accepted, bytes: under NATS's default 1 MiB
/// `max_payload` with room for headers.
pub const MAP_BYTES_MAX: usize = 1 << 19;

/// The largest request payload accepted, bytes (NATS's default
/// `max_payload` is 1 MiB; the server may refuse less).
pub const REQUEST_BYTES_MAX: usize = 1 << 20;

/// Most node records [`NatsHandle::nodes`](handle::NatsHandle::nodes) reads; more keys than this in
/// the membership bucket is an error, not a silent truncation.
pub const NODES_MAX: usize = 1024;

/// The key of the map in its bucket.
pub const MAP_KEY: &str = "map";

/// Revisions of the map the bucket keeps (the current one and a few
/// before it, for an operator investigating a move: `nats kv history`).
pub const MAP_HISTORY: i64 = 8;

const _: () = assert!(INFLIGHT_MAX <= REQUEST_SLOTS);
const _: () = assert!(MAP_BYTES_MAX < REQUEST_BYTES_MAX);
// JetStream keeps at most 64 revisions per key.
const _: () = assert!(MAP_HISTORY >= 1 && MAP_HISTORY <= 64);

/// One value of the map and its revision in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapVersion {
    /// The encoded map, as stored.
    pub bytes: Bytes,
    /// The KV revision (stream sequence) of this value; the next
    /// [`swap_map`](handle::NatsHandle::swap_map) must name it. Never 0.
    pub revision: u64,
}
