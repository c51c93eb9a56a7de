//! The WebSocket surface: the upgrade handshake and the authenticated session.
//!
//! - [`socket`]: non-blocking reads and writes on a session's socket, driven
//!   by readiness.
//! - [`connection`]: the transport of one connection (socket, frame reader,
//!   output buffer, the closing handshake).
//! - [`framing`]: the JSON or protobuf framing a connection speaks, chosen
//!   at the upgrade.
//! - [`session`]: the event loop of one authenticated connection (one task),
//!   joining the connection to its delivery outbox.
//! - [`provisioning`]: the event loop of one provisioning socket (a new
//!   device waiting for its provisioning message).
//!
//! The session's mailbox, the shard's timer wheel and the registry of live
//! sessions are shard state (`crate::shard`), reached by delivery too.
//!
//! Invariant: nothing is upgraded until the request is a valid RFC 6455
//! upgrade (else 400) and, for `/v1/websocket`, its credentials check out
//! (else 401, the same answer whether or not the account exists).
//! `/v1/websocket/provisioning` is unauthenticated, so its sockets are
//! bounded per shard (503 over `provisioning_sockets_per_shard_max`) and
//! closed when unclaimed after `provisioning_timeout_ms`.

pub mod connection;
pub mod framing;
pub mod provisioning;
pub mod session;
pub mod socket;

use crate::config::Framing;
use crate::http::auth;
use crate::http::head::Head;
use crate::http::response::Response;
use crate::http::transport::Transport;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::shard::{ConnectionGuard, ShardCtx};
use std::rc::Rc;

/// Which socket an upgrade asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// `/v1/websocket`: an authenticated device.
    Device,
    /// `/v1/websocket/provisioning`: a new device waiting to be linked.
    Provisioning,
}

/// What a checked upgrade asks for.
struct Upgrade {
    socket: Socket,
    accept_key: String,
    framing: Framing,
}

/// Whether a device receives stories: `X-Signal-Receive-Stories` when
/// given (`true` or `false`); when absent, yes in the JSON framing (the
/// spec's clients) and no in the protobuf framing (as Signal's server
/// treats a client that does not ask).
fn receives_stories(head: &Head, framing: Framing) -> Result<bool, Response> {
    match head.header("x-signal-receive-stories") {
        Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(Response::error(400, "X-Signal-Receive-Stories must be true or false")),
        None => Ok(framing == Framing::Json),
    }
}

/// Checks the upgrade request; the error is the response to send.
fn check_upgrade(head: &Head, configured: Framing) -> Result<Upgrade, Response> {
    let socket = match head.path.trim_end_matches('/') {
        "/v1/websocket" => Socket::Device,
        "/v1/websocket/provisioning" => Socket::Provisioning,
        _ => return Err(Response::error(404, &format!("no WebSocket at {}", head.path))),
    };
    if head.method != "GET" {
        return Err(Response::error(400, "a WebSocket upgrade must be GET"));
    }
    let connection_upgrade = head.header("connection").is_some_and(|value| {
        value.split(',').any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(Response::error(400, "Connection: Upgrade required"));
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(Response::error(400, "Sec-WebSocket-Version must be 13"));
    }
    let key = head.header("sec-websocket-key").unwrap_or("");
    if base64::decode(key.as_bytes()).map_or(true, |bytes| bytes.len() != 16) {
        return Err(Response::error(400, "Sec-WebSocket-Key must be Base64 of 16 bytes"));
    }
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let framing = framing::choose(head, configured)?;
    Ok(Upgrade { socket, accept_key, framing })
}

/// The `101 Switching Protocols` answer, with the server's clock in
/// `X-Signal-Timestamp` (libsignal reads it from the upgrade response).
fn switching(accept_key: &str, now_ms: u64) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\nX-Signal-Timestamp: {now_ms}\r\n\r\n"
    )
    .into_bytes()
}

/// Validates, authenticates and upgrades; then starts the session task.
pub async fn accept(
    ctx: Rc<ShardCtx>,
    mut transport: Transport,
    head: Head,
    leftover: Vec<u8>,
    guard: ConnectionGuard,
) {
    let checked = check_upgrade(&head, ctx.config.websocket_framing)
        .and_then(|upgrade| Ok((receives_stories(&head, upgrade.framing)?, upgrade)));
    let (receive_stories, Upgrade { socket, accept_key, framing }) = match checked {
        Ok(checked) => checked,
        Err(response) => {
            ShardMetrics::inc(&ctx.stats().protocol_errors_total);
            let _ = transport.write_all(&response.to_http(true)).await;
            return;
        }
    };
    if socket == Socket::Provisioning {
        drop(head);
        return accept_provisioning(ctx, transport, (&accept_key, framing), leftover, guard).await;
    }
    let credentials = head
        .header("authorization")
        .and_then(auth::from_basic_header)
        .or_else(|| auth::from_query(&head.query));
    let peer = transport.peer_addr().ok().map(|addr| addr.ip());
    let device = match auth::authenticate(&ctx, credentials, peer) {
        Ok(device) => device,
        Err(refused) => {
            let _ = transport.write_all(&refused.response().to_http(true)).await;
            return;
        }
    };
    drop(head);
    if transport.write_all(&switching(&accept_key, ctx.clock.now_ms())).await.is_err() {
        return;
    }
    // Its own task: the session's future holds only the session, not the
    // HTTP connection's states (an idle connection's memory is mostly this).
    let options = session::SessionOptions { framing, receive_stories };
    monoio::spawn(session::run(ctx, transport, leftover, (device, options), guard));
}

/// Upgrades an unauthenticated provisioning socket, unless the shard already
/// holds `provisioning_sockets_per_shard_max` of them (503).
async fn accept_provisioning(
    ctx: Rc<ShardCtx>,
    mut transport: Transport,
    (accept_key, framing): (&str, Framing),
    leftover: Vec<u8>,
    guard: ConnectionGuard,
) {
    if !ctx.provisioning.has_room(ctx.config.limits.provisioning_sockets_per_shard_max) {
        ShardMetrics::inc(&ctx.stats().connections_refused_total);
        let response = Response::error(503, "too many provisioning sockets, retry");
        let _ = transport.write_all(&response.to_http(true)).await;
        return;
    }
    if transport.write_all(&switching(accept_key, ctx.clock.now_ms())).await.is_ok() {
        monoio::spawn(provisioning::run(ctx, transport, leftover, framing, guard));
    }
}

#[cfg(test)]
mod session_size_tests {
    fn size_of_future<A, B, C, D, E, F: std::future::Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The session's future is most of what an idle connection costs (it
    /// was 2,560 bytes while each session held its own runtime timers; the
    /// shard's timer wheel replaced them; 1,264 until the wait for a full
    /// socket and the closing linger were boxed: 960). Guard against regrowth.
    #[test]
    fn an_idle_session_future_stays_small() {
        let bytes = size_of_future(super::session::run);
        assert!(bytes <= 1_024, "session future is {bytes} bytes");
    }
}
