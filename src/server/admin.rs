//! The admin listener (`admin_listen`, default `127.0.0.1:9090`): `GET
//! /metrics` (Prometheus text) and `GET /health` (readiness), kept off the
//! public port so metrics are not served to phones or the internet.
//!
//! One plain thread serves it, one connection at a time: a scrape every few
//! seconds needs nothing more, and it never touches a shard's event loop.
//!
//! Invariants: a request head over [`HEAD_BYTES_MAX`] or slower than
//! [`IO_TIMEOUT_MS`] is answered 400 or dropped, so one stuck client delays
//! the next scrape by at most the timeout; every answer closes the
//! connection; `/health` is 503 until every shard has loaded its state and
//! started accepting, and again from the moment draining starts.

use crate::metrics::Metrics;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Largest request head read from an admin client.
pub const HEAD_BYTES_MAX: usize = 8192;

/// Longest wait for an admin client's request or for it to take the answer.
pub const IO_TIMEOUT_MS: u64 = 2000;

/// What readiness is computed from.
#[derive(Clone)]
pub struct Lifecycle {
    /// Shards that have loaded their state and are accepting.
    pub shards_ready: Arc<AtomicUsize>,
    /// Number of shards.
    pub shard_count: usize,
    /// Set once draining starts.
    pub draining: Arc<AtomicBool>,
}

/// Readiness as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Not every shard is accepting yet.
    Starting,
    /// Serving.
    Ready,
    /// Draining after SIGTERM or SIGINT.
    Draining,
}

impl Lifecycle {
    /// The current readiness.
    pub fn readiness(&self) -> Readiness {
        // Acquire pairs with the Release stores of the shards and the signal thread.
        if self.draining.load(Ordering::Acquire) {
            Readiness::Draining
        } else if self.shards_ready.load(Ordering::Acquire) < self.shard_count {
            Readiness::Starting
        } else {
            Readiness::Ready
        }
    }
}

/// Why the admin listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} (admin_listen): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
}

/// Binds `addr` and serves it on its own thread; returns the bound address.
pub fn spawn(
    addr: SocketAddr,
    metrics: Metrics,
    lifecycle: Lifecycle,
) -> Result<SocketAddr, AdminError> {
    let listener = TcpListener::bind(addr).map_err(|source| AdminError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| AdminError::Bind { addr, source })?;
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || serve(listener, &metrics, &lifecycle))
        .map_err(|source| AdminError::Bind { addr, source })?;
    Ok(local)
}

fn serve(listener: TcpListener, metrics: &Metrics, lifecycle: &Lifecycle) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => answer(stream, metrics, lifecycle),
            // Out of descriptors: wait for some to free instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads one request head from `stream` and writes its answer.
fn answer(mut stream: TcpStream, metrics: &Metrics, lifecycle: &Lifecycle) {
    let timeout = Some(Duration::from_millis(IO_TIMEOUT_MS));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return;
    }
    let Some(head) = read_head(&mut stream) else { return };
    let (status, content_type, body) = route(&head, metrics, lifecycle);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
}

/// Bytes up to the end of the head; `None` when the client closed or stalled.
/// A head over the limit is returned as is and refused by the parser.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < HEAD_BYTES_MAX {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(len) => head.extend_from_slice(&chunk[..len]),
        }
    }
    Some(head)
}

/// (status, content type, body) for a request head.
pub fn route(
    head: &[u8],
    metrics: &Metrics,
    lifecycle: &Lifecycle,
) -> (u16, &'static str, Vec<u8>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(head) else {
        return (400, TEXT, b"malformed or oversized request head\n".to_vec());
    };
    let path = request.path.unwrap_or("/").split('?').next().unwrap_or("/");
    let known = matches!(path, "/metrics" | "/health");
    match request.method {
        Some("GET") if path == "/metrics" => {
            (200, "text/plain; version=0.0.4", crate::metrics::render(metrics).into_bytes())
        }
        Some("GET") if path == "/health" => health(lifecycle),
        _ if known => (405, TEXT, b"only GET is served here\n".to_vec()),
        _ => (404, TEXT, b"the admin listener serves GET /metrics and GET /health\n".to_vec()),
    }
}

fn health(lifecycle: &Lifecycle) -> (u16, &'static str, Vec<u8>) {
    let (status, word) = match lifecycle.readiness() {
        Readiness::Ready => (200, "ok"),
        Readiness::Starting => (503, "starting"),
        Readiness::Draining => (503, "draining"),
    };
    let body = serde_json::json!({
        "status": word,
        "shards": lifecycle.shard_count,
        "shards_ready": lifecycle.shards_ready.load(Ordering::Acquire),
    });
    (status, "application/json", body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifecycle(ready: usize, draining: bool) -> Lifecycle {
        Lifecycle {
            shards_ready: Arc::new(AtomicUsize::new(ready)),
            shard_count: 2,
            draining: Arc::new(AtomicBool::new(draining)),
        }
    }

    #[test]
    fn health_follows_the_lifecycle() {
        let metrics = crate::metrics::new_metrics(2);
        let get = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(get, &metrics, &lifecycle(1, false)).0, 503);
        assert_eq!(route(get, &metrics, &lifecycle(2, false)).0, 200);
        let (status, _, body) = route(get, &metrics, &lifecycle(2, true));
        assert_eq!(status, 503);
        assert!(String::from_utf8(body).unwrap().contains("draining"));
    }

    #[test]
    fn hostile_and_unknown_requests_get_clear_errors() {
        let metrics = crate::metrics::new_metrics(1);
        let ready = lifecycle(2, false);
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n", &metrics, &ready).0, 200);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n", &metrics, &ready).0, 405);
        assert_eq!(route(b"GET /v1/accounts HTTP/1.1\r\n\r\n", &metrics, &ready).0, 404);
        assert_eq!(route(b"\x00\x01garbage\r\n\r\n", &metrics, &ready).0, 400);
        assert_eq!(route(&[b'A'; HEAD_BYTES_MAX], &metrics, &ready).0, 400);
    }
}
