//! switchboard: a thread-per-core, io_uring real-time message server with the
//! shape of Signal's WebSocket interface.
//!
//! # Layout
//!
//! Layers, lowest first. A module imports only from its own layer or those
//! listed before it (`tests/layers.rs` fails the build otherwise, and on any
//! import cycle between files). Data flows from the top down: socket ->
//! protocol -> http (transport, routing) -> domain operations -> store / rings.
//!
//! - [`clock`]: wall-clock time (system, or a manual clock tests step) and
//!   thread CPU time.
//! - [`config`]: one typed configuration (defaults, TOML file, env, flags) and every limit.
//! - [`tls`]: PEM certificates and keys, and the public listener's rustls
//!   configuration with a certificate replaced on `SIGHUP`.
//! - [`ratelimit`]: token buckets per key, for any route to use.
//! - [`protocol`]: pure codecs with no I/O: WebSocket request/response framing,
//!   Base64, JSON payloads.
//! - [`metrics`]: per-shard counters exported at `/metrics`.
//! - [`store`]: RocksDB schema: column families per shard, keys, the
//!   shard-count guard, the per-shard writer thread.
//! - [`accounts`]: the account table, credentials, link codes, and the
//!   owner-side account operations with their typed refusals.
//! - [`directory`]: the contact-discovery index (identifier hash ->
//!   account) for the hashes a shard owns.
//! - [`push`]: push notifications: the per-device schedule, the rings to
//!   the push worker, and the worker (tokio, HTTP/2 to APNs and FCM).
//! - [`shard`]: per-shard state as components ([`shard::ShardCtx`]),
//!   ownership, the ring mesh and its typed messages, session mailboxes and
//!   the deadline wheel. State only: no loop, no route.
//! - [`delivery`]: accepting a send, a connection's outbox (store pages,
//!   in-flight window, acks, deletes), the queue over REST, retention.
//! - [`provisioning`]: handing a primary's provisioning message to the new
//!   device's waiting socket.
//! - [`cluster`]: cluster mode (off by default): partitions, the partition
//!   map and its epoch, a data directory's identity, the NATS thread.
//! - [`calls`]: owner-side work run here or on the owner through the mesh.
//! - [`discovery`]: contact discovery across shards: claiming and releasing
//!   an account's identifier, scatter-gather lookups.
//! - [`http`]: HTTP/1.1, Basic auth, the router and one file per route, the
//!   one mapping of domain outcomes to statuses, the WebSocket transport and
//!   session loop.
//! - [`server`]: start-up, and each shard's thread (runtime, accept loop,
//!   ring pump, periodic tasks).
#![warn(missing_docs, unreachable_pub)]

pub mod accounts;
pub mod calls;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod discovery;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod provisioning;
pub mod push;
pub mod ratelimit;
pub mod server;
pub mod shard;
pub mod store;
pub mod tls;
