//! HTTP/1.1 and the WebSocket surface.
//!
//! - [`head`]: parsing a request head with `httparse`, within limits.
//! - [`request`] / [`response`]: the request and response types every
//!   handler sees, whether the request came as plain HTTP or framed over a
//!   WebSocket, and the typed error they map from.
//! - [`auth`]: Basic credentials from a header or the `login`/`password` query.
//! - [`router`] and [`routes`]: one router, one file per request kind.
//! - [`refusal`]: the one place domain outcomes become statuses and bodies.
//! - [`conn`]: the per-connection HTTP loop (keep-alive, hand-off to the
//!   owner shard, upgrade).
//! - [`forward`]: cluster mode: a connection copied whole to the node that
//!   owns its login.
//! - [`websocket`]: the upgrade handshake and the authenticated session.
//! - [`transport`] and [`wire`]: an accepted connection (socket plus plain
//!   or TLS byte path), the TLS handshake, readiness-driven reads and writes.
//!
//! Owns: the transport (HTTP/1.1, the WebSocket connection and session
//! loop) and routing; domain outcomes become status codes here, in
//! [`refusal`], and nowhere else. Imports: every layer below (`calls`,
//! `delivery`, `shard`, `accounts`, `store`, `metrics`, `protocol`,
//! `config`, `clock`); never `server`.

pub mod auth;
pub mod conn;
pub mod forward;
pub mod head;
pub mod refusal;
pub mod request;
pub mod response;
pub mod router;
pub mod routes;
pub mod transport;
pub mod websocket;
pub mod wire;
