//! Cluster mode: forwarding a whole connection to the node that owns its
//! login, the network form of the hand-off between shards. The owner's
//! internal listener serves it as if the device had connected there, so
//! authentication, 4409 replacement, the delivery window, queue-empty and
//! push scheduling stay the owner's.
//!
//! The edge node sends the bytes it has read (the request head, maybe more)
//! first, then copies bytes both ways until either side closes, and then
//! closes both. TLS, if any, ends here: the internal hop is plain TCP on the
//! operator's internal network.
//!
//! Invariants: at most [`FORWARD_CHUNK_BYTES`] are buffered per direction;
//! an owner that cannot be reached within the call timeout gets the client
//! a 503 with `Retry-After` (nothing was sent anywhere), and so does one
//! that starts no answer within the call timeout (the request was sent: it
//! may still run when the owner continues, as a timed-out call may); the forwarding
//! connection counts against this shard's connection limit while it lasts.

use crate::http::refusal::NODE_UNAVAILABLE_RETRY_AFTER_S;
use crate::http::response::{HttpError, Response};
use crate::http::transport::Transport;
use crate::http::websocket::socket::Received;
use crate::metrics::ShardMetrics;
use crate::shard::{ConnectionGuard, ShardCtx};
use monoio::net::TcpStream;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// Bytes one read moves from one side to the other.
pub const FORWARD_CHUNK_BYTES: usize = 16 * 1024;

/// Forwards the connection to `node`, starting with `buffered` (the bytes
/// read from the client so far), until either side closes.
pub async fn forward(
    ctx: &Rc<ShardCtx>,
    mut client: Transport,
    buffered: Vec<u8>,
    node: Rc<str>,
    guard: ConnectionGuard,
) {
    let _guard = guard;
    let Some(mut upstream) = connect(ctx, &node).await else {
        ShardMetrics::inc(&ctx.stats().cluster_calls_failed_total);
        let _ = client.write_all(&unavailable().to_http(true)).await;
        return;
    };
    ShardMetrics::inc(&ctx.stats().cluster_forwards_total);
    if upstream.write_all(&buffered).await.is_err() {
        let _ = client.write_all(&unavailable().to_http(true)).await;
        return;
    }
    drop(buffered);
    // An owner that takes the request but starts no answer within the call
    // timeout (stopped, or wedged) gets the client a 503 too, as a call
    // would; what it does later with the bytes it has is at-least-once.
    if let Err(error) = splice(&mut client, &mut upstream, call_timeout(ctx)).await {
        if error.kind() == io::ErrorKind::TimedOut {
            ShardMetrics::inc(&ctx.stats().cluster_calls_failed_total);
            let _ = client.write_all(&unavailable().to_http(true)).await;
        }
    }
}

/// The cluster's call timeout.
fn call_timeout(ctx: &ShardCtx) -> Duration {
    Duration::from_millis(ctx.config.cluster.as_ref().map_or(2_000, |c| c.call_timeout_ms))
}

/// The 503 a client gets when its owner node cannot be reached.
fn unavailable() -> Response {
    Response::from(HttpError {
        retry_after_s: Some(NODE_UNAVAILABLE_RETRY_AFTER_S),
        ..HttpError::unavailable("the account's node is unavailable, retry")
    })
}

/// A plain connection to `node`'s internal listener, within the call timeout.
async fn connect(ctx: &ShardCtx, node: &str) -> Option<Transport> {
    let cluster = ctx.cluster.as_ref()?;
    let connecting = async {
        let addr = cluster.internal_addr(node).await?;
        TcpStream::connect(addr).await.ok()
    };
    let stream = monoio::time::timeout(call_timeout(ctx), connecting).await.ok()??;
    let _ = stream.set_nodelay(true);
    Some(Transport::plain(stream))
}

/// Copies bytes both ways until either side closes or fails; `TimedOut`
/// when the upstream has sent nothing `answer_within` after the client's
/// last bytes (the client got nothing yet).
async fn splice(
    client: &mut Transport,
    upstream: &mut Transport,
    answer_within: Duration,
) -> io::Result<()> {
    let mut chunk = vec![0u8; FORWARD_CHUNK_BYTES];
    let mut answered = false;
    let mut answer_by = std::time::Instant::now() + answer_within;
    loop {
        let moved_up = pump(client, upstream, &mut chunk).await?;
        let moved_down = pump(upstream, client, &mut chunk).await?;
        answered |= moved_down;
        if moved_up {
            answer_by = std::time::Instant::now() + answer_within;
        }
        if moved_up || moved_down || client.wire.has_buffered_input() {
            continue;
        }
        // Once answered, the timer only re-arms (a socket may idle for hours).
        let wait = match answered {
            true => Duration::from_secs(3600),
            false => answer_by.saturating_duration_since(std::time::Instant::now()),
        };
        monoio::select! {
            ready = client.stream.readable(false) => ready?,
            ready = upstream.stream.readable(false) => ready?,
            _ = monoio::time::sleep(wait) => {
                if !answered {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

/// Moves what `from` has ready to `to`; whether anything moved. A closed
/// `from` is an `UnexpectedEof` error (the caller closes both sides).
async fn pump(from: &mut Transport, to: &mut Transport, chunk: &mut [u8]) -> io::Result<bool> {
    match from.wire.recv(chunk) {
        Received::Bytes(read) => to.write_all(&chunk[..read]).await.map(|()| true),
        Received::Closed => Err(io::ErrorKind::UnexpectedEof.into()),
        Received::WouldBlock => Ok(false),
    }
}
