//! switchboard: a thread-per-core, io_uring real-time message server with the
//! shape of Signal's WebSocket interface.
//!
//! # Layout
//!
//! In the order data flows, from the socket inwards:
//!
//! - [`config`]: one typed configuration (defaults, TOML file, env, flags) and every limit.
//! - [`shard`]: one pinned monoio thread per core, account ownership, the SPSC ring
//!   mesh between shards, and connection hand-off to the owning shard.
//! - [`protocol`]: pure codecs with no I/O: WebSocket request/response framing,
//!   Base64, JSON payloads.
//! - [`http`]: HTTP/1.1 parsing, Basic auth, the WebSocket upgrade and session,
//!   and the router whose handlers serve both plain HTTP and framed requests.
//! - [`accounts`]: the shard-local account table and device credentials.
//! - [`delivery`]: per-connection in-flight windows for server-initiated requests.
//! - [`store`]: RocksDB schema: column families per shard, keys, the shard-count guard.
//! - [`metrics`]: counters exported at `/metrics`.
#![warn(missing_docs, unreachable_pub)]

pub mod accounts;
pub mod config;
pub mod delivery;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod shard;
pub mod store;
