//! The per-connection HTTP/1.1 loop.
//!
//! For each request: read the head within the handshake (first request) or
//! keep-alive timeout; if the request claims an account another shard owns,
//! hand the socket and every byte read so far to that shard and stop (in
//! cluster mode, when another node owns it, forward the connection there);
//! if it is a WebSocket upgrade, become a WebSocket session; otherwise read
//! the body, authenticate, route, answer, and loop while keep-alive holds.
//!
//! Invariants: no more than `header_bytes_max + body_bytes_max` bytes of a
//! request are buffered; a malformed or over-limit request is answered with
//! its status and the connection closed (its framing can no longer be
//! trusted); a connection that stalls mid-request is closed at the deadline.

use crate::accounts::AuthedDevice;
use crate::config::Limits;
use crate::http::head::{self, Head, HeadError};
use crate::http::request::Request;
use crate::http::response::HttpError;
use crate::http::response::Response;
use crate::http::transport::Transport;
use crate::http::{auth, forward, router, websocket};
use crate::metrics::ShardMetrics;
use crate::shard::place::Place;
use crate::shard::{ConnectionGuard, ShardCtx};
use monoio::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

enum HeadRead {
    Head(Head, usize, Vec<u8>),
    Refused(HeadError),
    Closed,
}

async fn read_head(transport: &mut Transport, mut buf: Vec<u8>, limits: &Limits) -> HeadRead {
    loop {
        if !buf.is_empty() {
            match head::parse(&buf, limits) {
                Ok(Some((head, len))) => return HeadRead::Head(head, len, buf),
                Ok(None) => {}
                Err(error) => return HeadRead::Refused(error),
            }
        }
        let (result, back) = transport.read_more(buf, limits.read_buffer_bytes).await;
        buf = back;
        match result {
            Ok(0) | Err(_) => return HeadRead::Closed,
            Ok(_) => {}
        }
    }
}

/// Reads until `buf` holds at least `wanted` bytes; `None` if the peer closed.
async fn read_to(
    transport: &mut Transport,
    mut buf: Vec<u8>,
    wanted: usize,
    chunk: usize,
) -> Option<Vec<u8>> {
    while buf.len() < wanted {
        let missing = wanted - buf.len();
        let (result, back) = transport.read_more(buf, chunk.max(missing)).await;
        buf = back;
        match result {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(buf)
}

/// Serves a newly accepted connection: the TLS handshake first when the
/// listener has TLS (within `handshake_timeout_ms`; a failure is counted
/// and closes the connection), then [`serve`].
pub async fn serve_accepted(
    ctx: Rc<ShardCtx>,
    stream: TcpStream,
    guard: ConnectionGuard,
    origin: Origin,
) {
    let Some(tls) = ctx.tls.as_ref().filter(|_| origin == Origin::Client) else {
        return serve(ctx, Transport::plain(stream), Vec::new(), guard, origin).await;
    };
    let deadline = Duration::from_millis(ctx.config.limits.handshake_timeout_ms);
    match monoio::time::timeout(deadline, Transport::accept_tls(stream, tls.config())).await {
        Ok(Ok(transport)) => serve(ctx, transport, Vec::new(), guard, origin).await,
        Ok(Err(_)) | Err(_) => ShardMetrics::inc(&ctx.stats().tls_handshake_failures_total),
    }
}

/// Where a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client (the public listener, or a hand-off between shards).
    Client,
    /// Another node of the cluster, forwarding a client it does not own
    /// (the internal listener).
    Forwarded,
}

/// The 503 for a login whose owner node is unavailable.
fn node_unavailable() -> Response {
    Response::from(HttpError::from(crate::shard::mesh::CallError::NodeUnavailable))
}

/// Serves one connection until it closes, is handed off or forwarded, or
/// upgrades.
pub async fn serve(
    ctx: Rc<ShardCtx>,
    mut transport: Transport,
    mut buf: Vec<u8>,
    guard: ConnectionGuard,
    origin: Origin,
) {
    let limits = ctx.config.limits.clone();
    let mut first = true;
    loop {
        let wait_ms = if first { limits.handshake_timeout_ms } else { limits.http_idle_timeout_ms };
        let Some((head, head_len, read_buf)) =
            next_head(&ctx, &mut transport, buf, wait_ms, &limits).await
        else {
            return;
        };
        buf = read_buf;
        first = false;

        let is_upgrade = head.is_websocket_upgrade();
        let query = if is_upgrade { head.query.as_str() } else { "" };
        if let Some(account) = auth::claimed_account(head.header("authorization"), query) {
            match ctx.place_of(&account) {
                Place::Shard(owner) if owner == ctx.id => {}
                Place::Shard(owner) => {
                    drop(guard);
                    let Transport { stream, wire } = transport;
                    ctx.mesh.hand_off(owner, stream, wire.into_tls(), buf).await;
                    return;
                }
                // A forwarded connection is never forwarded again: the two
                // nodes' maps disagree for a moment (a move); the client retries.
                Place::Node(_) | Place::Unowned if origin == Origin::Forwarded => {
                    let _ = transport.write_all(&node_unavailable().to_http(true)).await;
                    return;
                }
                Place::Node(node) => {
                    return forward::forward(&ctx, transport, buf, node, guard).await;
                }
                Place::Unowned => {
                    let _ = transport.write_all(&node_unavailable().to_http(true)).await;
                    return;
                }
            }
        }
        if is_upgrade {
            let leftover = buf.split_off(head_len);
            // Values in scope stay alive across an await for the whole
            // session: release the head buffer now.
            drop(buf);
            websocket::accept(ctx, transport, head, leftover, guard).await;
            return;
        }
        match answer(&ctx, &mut transport, head, head_len, buf, &limits).await {
            Some(rest) => buf = rest,
            None => return,
        }
    }
}

/// Reads the next request head within `wait_ms`; a refused head is
/// answered with its status. `None`: the connection is done.
async fn next_head(
    ctx: &ShardCtx,
    transport: &mut Transport,
    buf: Vec<u8>,
    wait_ms: u64,
    limits: &Limits,
) -> Option<(Head, usize, Vec<u8>)> {
    let read =
        monoio::time::timeout(Duration::from_millis(wait_ms), read_head(transport, buf, limits));
    match read.await {
        Err(_) | Ok(HeadRead::Closed) => None,
        Ok(HeadRead::Refused(error)) => {
            ShardMetrics::inc(&ctx.stats().protocol_errors_total);
            let response = Response::error(error.status(), &error.to_string());
            let _ = transport.write_all(&response.to_http(true)).await;
            None
        }
        Ok(HeadRead::Head(head, len, buf)) => Some((head, len, buf)),
    }
}

/// Reads the body of a plain request, authenticates, routes and answers it.
/// Returns the bytes after the request while the connection stays open.
async fn answer(
    ctx: &Rc<ShardCtx>,
    transport: &mut Transport,
    head: Head,
    head_len: usize,
    buf: Vec<u8>,
    limits: &Limits,
) -> Option<Vec<u8>> {
    if head.content_length > limits.body_bytes_max {
        ShardMetrics::inc(&ctx.stats().protocol_errors_total);
        let message = format!("body over {} bytes", limits.body_bytes_max);
        let _ = transport.write_all(&Response::error(413, &message).to_http(true)).await;
        return None;
    }
    let request_len = head_len + head.content_length;
    let body_read = read_to(transport, buf, request_len, limits.read_buffer_bytes);
    let wait = Duration::from_millis(limits.http_idle_timeout_ms);
    let Ok(Some(mut buf)) = monoio::time::timeout(wait, body_read).await else {
        return None;
    };
    let rest = buf.split_off(request_len);
    let body = buf.split_off(head_len);
    let close = head.close_after;
    let peer = transport.peer_addr().ok().map(|addr| addr.ip());
    let response = match authenticate_header(ctx, head.header("authorization"), peer) {
        Ok(caller) => router::dispatch(ctx, caller, Request::from_head(head, body, peer)).await,
        Err(response) => response,
    };
    let result = transport.write_all(&response.to_http(close)).await;
    (result.is_ok() && !close).then_some(rest)
}

/// Authenticates an `Authorization` header on this (the owner) shard.
/// No header: anonymous. A header that fails: the 401 (or 429) to send.
fn authenticate_header(
    ctx: &ShardCtx,
    header: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Result<Option<AuthedDevice>, Response> {
    let Some(header) = header else {
        return Ok(None);
    };
    auth::authenticate(ctx, auth::from_basic_header(header), peer)
        .map(Some)
        .map_err(auth::AuthRefused::response)
}
