//! The WebSocket surface: the upgrade handshake and the authenticated session.
//!
//! - [`memstream`]: the byte queues tungstenite reads from and writes to, so
//!   tungstenite never touches the socket.
//! - [`socket`]: non-blocking reads and writes on a session's socket, driven
//!   by readiness.
//! - [`connection`]: the transport of one connection (socket, tungstenite,
//!   JSON framing, the closing handshake).
//! - [`session`]: the event loop of one authenticated connection (one task),
//!   joining the connection to its delivery outbox.
//!
//! The session's mailbox, the shard's timer wheel and the registry of live
//! sessions are shard state (`crate::shard`), reached by delivery too.
//!
//! Invariant: nothing is upgraded until the request is a valid RFC 6455
//! upgrade (else 400) and its credentials check out (else 401, the same
//! answer whether or not the account exists).

pub mod connection;
pub mod memstream;
pub mod session;
pub mod socket;

use crate::http::auth;
use crate::http::head::Head;
use crate::http::response::Response;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::shard::{ConnectionGuard, ShardCtx};
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;
use std::rc::Rc;

/// Checks the upgrade request; the error is the response to send.
fn check_upgrade(head: &Head) -> Result<String, Response> {
    let path = head.path.trim_end_matches('/');
    if path != "/v1/websocket" {
        return Err(Response::error(404, &format!("no WebSocket at {}", head.path)));
    }
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
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Validates, authenticates and upgrades; then starts the session task.
pub async fn accept(
    ctx: Rc<ShardCtx>,
    mut stream: TcpStream,
    head: Head,
    leftover: Vec<u8>,
    guard: ConnectionGuard,
) {
    let accept_key = match check_upgrade(&head) {
        Ok(key) => key,
        Err(response) => {
            ShardMetrics::inc(&ctx.stats().protocol_errors_total);
            let _ = stream.write_all(response.to_http(true)).await;
            return;
        }
    };
    let credentials = head
        .header("authorization")
        .and_then(auth::from_basic_header)
        .or_else(|| auth::from_query(&head.query));
    let device = auth::authenticate(&ctx, credentials);
    let Some(device) = device else {
        let response = Response::error(401, "invalid credentials");
        let _ = stream.write_all(response.to_http(true)).await;
        return;
    };
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
    );
    drop(head);
    let (result, _) = stream.write_all(switching.into_bytes()).await;
    if result.is_err() {
        return;
    }
    // Its own task: the session's future holds only the session, not the
    // HTTP connection's states (an idle connection's memory is mostly this).
    monoio::spawn(session::run(ctx, stream, leftover, device, guard));
}
