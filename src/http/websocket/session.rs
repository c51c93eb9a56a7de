//! The event loop of one authenticated WebSocket connection.
//!
//! One task per connection. It waits for any of: the socket becoming
//! readable (a readiness poll, so an idle connection holds no read buffer:
//! reads go into the shard's scratch buffer and straight to tungstenite), an
//! event in its [`Mailbox`] (responses to client requests, online-only
//! envelopes, "replaced", "new envelopes stored"), or its next deadline
//! (ping, idle timeout, request timeouts). It owns the tungstenite state, the
//! in-flight window of server-initiated requests and the socket; it handles
//! everything that is ready before it writes, so one write carries many
//! frames. While a write waits for the peer to read, it reads nothing more
//! (back-pressure).
//!
//! Each text frame is one JSON request or response (DESIGN.md section 3).
//! Client requests go to the same router as plain HTTP, each in its own task
//! (at most `client_requests_inflight_max` at once; beyond that 503), with
//! the connection's device as the caller. Server requests are numbered in
//! their own id space and bounded by the window. Acknowledged envelopes are
//! deleted in one batch per loop turn.
//!
//! Close codes: 1009 frame or message over the limit, 1003 binary frame
//! (reserved for protobuf framing), 1007 a frame without a readable id or
//! invalid UTF-8, 1002 a WebSocket protocol violation, 1001 idle timeout,
//! 4409 replaced by a newer connection of the same device.

use crate::accounts::AuthedDevice;
use crate::config::Limits;
use crate::delivery::lag::thread_cpu_us;
use crate::delivery::outbox::Outbox;
use crate::delivery::retention::count_removed;
use crate::delivery::window::{Inflight, InflightWindow};
use crate::http::conn::now_ms;
use crate::http::request::Request;
use crate::http::router;
use crate::http::websocket::mailbox::{Mailbox, SessionEvent};
use crate::http::websocket::memstream::MemStream;
use crate::http::websocket::socket::{self, Received};
use crate::metrics::ShardMetrics;
use crate::protocol::envelope::with_delivered_timestamp;
use crate::protocol::frame::{self, Frame, FrameError, WsRequest, WsResponse};
use crate::shard::runtime::{ConnectionGuard, ShardCtx};
use crate::store::messages::read_page;
use crate::store::writer::{Family, Op};
use futures_util::future::FusedFuture;
use futures_util::FutureExt;
use monoio::net::TcpStream;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Bytes tungstenite copies out of the MemStream per read call, and the
/// capacity of its input buffer, which every connection holds.
const TUNGSTENITE_READ_CHUNK_BYTES: usize = 128;

/// Droppable events (online-only envelopes) queued ahead of the loop, at most.
const OFFERED_EVENTS_MAX: usize = 64;

/// Most bytes read from one socket per readiness before the loop turns (and
/// writes): a fast sender cannot starve its own responses.
const READ_BUDGET_BYTES: usize = 256 * 1024;

/// What a server-initiated request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerRequest {
    /// `PUT /api/v1/queue/empty`.
    QueueEmpty,
    /// A stored envelope: a 200 deletes the key.
    Message {
        /// Its store key.
        key: Vec<u8>,
    },
    /// An online-only envelope: nothing to delete.
    Ephemeral,
}

/// Why the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Keep going.
    Open,
    /// Close after flushing what is queued.
    Close,
}

/// What woke the loop.
enum Woken {
    Readable,
    Event(SessionEvent),
}

struct Session {
    ctx: Rc<ShardCtx>,
    device: AuthedDevice,
    fd: RawFd,
    ws: WebSocket<MemStream>,
    window: InflightWindow<ServerRequest>,
    outbox: Outbox,
    mailbox: Rc<Mailbox>,
    /// Keys acknowledged this turn, deleted together.
    acked: Vec<Vec<u8>>,
    client_requests_inflight: usize,
    last_heard_ms: u64,
    next_ping_ms: u64,
}

/// A close frame written by hand (server frames are unmasked): used where
/// tungstenite's state may already be failed.
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut frame = vec![0x88, (2 + reason.len()) as u8];
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    frame
}

fn ws_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        // tungstenite allocates this up front for every connection; the bytes
        // are already in memory (MemStream), so a small chunk only costs a
        // few more memcpy calls on large frames, and saves RSS per idle socket.
        .read_buffer_size(TUNGSTENITE_READ_CHUNK_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.frame_bytes_max * 4)
        .max_message_size(Some(limits.frame_bytes_max))
        .max_frame_size(Some(limits.frame_bytes_max))
}

/// Runs the session until the connection ends.
pub async fn run(
    ctx: Rc<ShardCtx>,
    stream: TcpStream,
    leftover: Vec<u8>,
    device: AuthedDevice,
    _guard: ConnectionGuard,
) {
    let limits = &ctx.config.limits;
    let mailbox = Rc::new(Mailbox::new(OFFERED_EVENTS_MAX));
    let (conn_id, replaced) = ctx.sessions.borrow_mut().register(device, mailbox.clone());
    if let Some(old) = replaced {
        ShardMetrics::inc(&ctx.stats().websockets_replaced_total);
        old.mailbox.push(SessionEvent::Replaced);
    }
    ShardMetrics::inc(&ctx.stats().websockets_open);

    let now = now_ms();
    let mut memstream = MemStream::default();
    memstream.feed(&leftover);
    let had_leftover = !leftover.is_empty();
    drop(leftover);
    let mut session = Session {
        ctx: ctx.clone(),
        device,
        fd: stream.as_raw_fd(),
        ws: WebSocket::from_raw_socket(memstream, Role::Server, Some(ws_config(limits))),
        window: InflightWindow::new(limits.inflight_requests_max),
        outbox: Outbox::default(),
        mailbox: mailbox.clone(),
        acked: Vec::new(),
        client_requests_inflight: 0,
        last_heard_ms: now,
        next_ping_ms: now + limits.ping_interval_ms,
    };
    // The stored backlog first, then queue/empty, then live traffic.
    let mut end = session.pump_outbox();
    if end == End::Open && had_leftover {
        end = session.on_bytes(&[]);
    }
    // A readiness poll stays armed across turns until it fires.
    let mut readable = pin!(futures_util::future::Fuse::terminated());
    let mut read_again = true;
    loop {
        session.delete_acked();
        if end == End::Open {
            end = session.pump_outbox();
        }
        if !session.flush(&stream, limits).await {
            break;
        }
        if end == End::Close {
            break;
        }
        let woken = if read_again {
            read_again = false;
            Woken::Readable
        } else {
            if readable.is_terminated() {
                readable.set(stream.readable(false).fuse());
            }
            let due_ms = session.next_ping_ms.min(session.last_heard_ms + limits.idle_timeout_ms);
            ctx.timers.set_deadline(&mailbox, due_ms);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(event) = mailbox.poll_recv(cx) {
                    return Poll::Ready(Woken::Event(event));
                }
                if readable.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woken::Readable);
                }
                Poll::Pending
            })
            .await
        };
        end = match woken {
            Woken::Readable => {
                let (read_end, more) = session.on_readable();
                read_again = more;
                read_end
            }
            Woken::Event(event) => session.on_event(event),
        };
        // Handle every event already queued before writing, so one write
        // carries many frames (a syscall per frame dominated the profile).
        while end == End::Open {
            match mailbox.try_recv() {
                Some(event) => end = session.on_event(event),
                None => break,
            }
        }
    }
    session.delete_acked();
    ctx.sessions.borrow_mut().unregister(&device, conn_id);
    mailbox.close();
    ShardMetrics::dec(&ctx.stats().websockets_open);
    linger(&ctx, &stream, &mailbox).await;
}

/// Most time spent waiting for the peer to close after our close frame.
const CLOSE_LINGER_MS: u64 = 1000;

/// The closing handshake: stop sending (FIN after the close frame), then
/// read and discard until the peer closes or the linger ends. Closing at
/// once would make the kernel answer the peer's late frames (a pong, its
/// close reply) with a reset, which can destroy our close frame unread.
async fn linger(ctx: &ShardCtx, stream: &TcpStream, mailbox: &Rc<Mailbox>) {
    let fd = stream.as_raw_fd();
    // SAFETY: `stream` keeps `fd` open; shutting down the write side does not
    // close the descriptor (monoio closes it when the stream is dropped).
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
    mailbox.take_deadline();
    ctx.timers.set_deadline(mailbox, now_ms() + CLOSE_LINGER_MS);
    loop {
        if !matches!(ready_or_deadline(stream.readable(false), mailbox).await, Ok(true)) {
            return;
        }
        let received = socket::recv(fd, &mut ctx.read_scratch.borrow_mut());
        if received == Received::Closed {
            return;
        }
    }
}

/// Waits until `ready` (the socket's readability or writability) resolves
/// (`Ok(true)`) or the mailbox's deadline passes (`Ok(false)`).
async fn ready_or_deadline(
    ready: impl Future<Output = std::io::Result<()>>,
    mailbox: &Mailbox,
) -> std::io::Result<bool> {
    let mut ready = pin!(ready);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = ready.as_mut().poll(cx) {
            return Poll::Ready(result.map(|()| true));
        }
        mailbox.poll_deadline(cx).map(|()| Ok(false))
    })
    .await
}

impl Session {
    fn on_event(&mut self, event: SessionEvent) -> End {
        match event {
            SessionEvent::Replaced => {
                self.close_with(4409, "connection replaced");
                End::Close
            }
            SessionEvent::Respond(text) => {
                self.client_requests_inflight -= 1;
                self.send_text(text)
            }
            // The mailbox's flag carries the news; pump_outbox runs every turn.
            SessionEvent::Stored => End::Open,
            SessionEvent::Deadline => self.on_deadline(),
            SessionEvent::Ephemeral(json) => {
                if self.window.is_full() {
                    ShardMetrics::inc(&self.ctx.stats().ephemeral_dropped_total);
                    return End::Open;
                }
                let body = with_delivered_timestamp(&json, now_ms());
                self.send_request("PUT", "/api/v1/message", Some(body), ServerRequest::Ephemeral)
            }
        }
    }

    /// Reads what the socket holds (up to [`READ_BUDGET_BYTES`]) through the
    /// shard's scratch buffer into tungstenite. Returns whether the budget
    /// ran out with bytes perhaps left (read again before waiting).
    fn on_readable(&mut self) -> (End, bool) {
        let ctx = self.ctx.clone();
        let mut scratch = ctx.read_scratch.borrow_mut();
        let mut read_bytes = 0;
        while read_bytes < READ_BUDGET_BYTES {
            match socket::recv(self.fd, &mut scratch) {
                Received::Bytes(len) => {
                    read_bytes += len;
                    self.last_heard_ms = now_ms();
                    if self.on_bytes(&scratch[..len]) == End::Close {
                        return (End::Close, false);
                    }
                    if len < scratch.len() {
                        // Drained for now; the next poll says if more came.
                        return (End::Open, false);
                    }
                }
                Received::WouldBlock => return (End::Open, false),
                Received::Closed => return (End::Close, false),
            }
        }
        (End::Open, true)
    }

    /// Sends stored envelopes while the window has room and the queue may
    /// hold unsent ones; sends `queue/empty` the first time it runs dry.
    fn pump_outbox(&mut self) -> End {
        if self.mailbox.take_stored() {
            self.outbox.on_stored();
        }
        while self.outbox.wants_read() && !self.window.is_full() {
            let free = self.window.capacity() - self.window.len();
            let read_started = std::time::Instant::now();
            let read_cpu_started_us = thread_cpu_us();
            let page = read_page(
                &self.ctx.store,
                self.ctx.id,
                &self.device.account,
                self.device.device_id,
                self.outbox.cursor(),
                free,
            );
            let read_us = read_started.elapsed().as_micros() as u64;
            let read_cpu_us = thread_cpu_us().saturating_sub(read_cpu_started_us);
            let stats = self.ctx.stats();
            stats.store_read_max_us.fetch_max(read_us, Ordering::Relaxed);
            stats.store_read_cpu_max_us.fetch_max(read_cpu_us, Ordering::Relaxed);
            let (page, more) = match page {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(shard = self.ctx.id, %error, "cannot read a queue");
                    return End::Open;
                }
            };
            let last_key = page.last().map(|message| message.key.clone());
            let now = now_ms();
            for message in page {
                let body = with_delivered_timestamp(&message.json, now);
                let kind = ServerRequest::Message { key: message.key };
                if self.send_request("PUT", "/api/v1/message", Some(body), kind) == End::Close {
                    return End::Close;
                }
                ShardMetrics::inc(&self.ctx.stats().messages_delivered_total);
            }
            if self.outbox.on_page(last_key.as_deref(), more) {
                // Sent outside the window: it is due exactly once per connection.
                let id = self.window.open_unbounded(ServerRequest::QueueEmpty, now);
                if self.send_request_with_id(id, "PUT", "/api/v1/queue/empty", None) == End::Close {
                    return End::Close;
                }
            }
        }
        End::Open
    }

    fn on_deadline(&mut self) -> End {
        let ctx = self.ctx.clone();
        let limits = &ctx.config.limits;
        let now = now_ms();
        if now.saturating_sub(self.last_heard_ms) >= limits.idle_timeout_ms {
            self.close_with(1001, "idle timeout");
            return End::Close;
        }
        for (id, _) in self.window.expire(now, limits.request_timeout_ms) {
            tracing::debug!(shard = self.ctx.id, id, "server request timed out");
        }
        if now >= self.next_ping_ms {
            self.next_ping_ms = now + limits.ping_interval_ms;
            if self.ws.send(Message::Ping(Default::default())).is_err() {
                return End::Close;
            }
        }
        End::Open
    }

    /// Feeds bytes to tungstenite and handles every complete message.
    fn on_bytes(&mut self, bytes: &[u8]) -> End {
        self.ws.get_mut().feed(bytes);
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let mut bytes = text.as_bytes().to_vec();
                    if self.on_text(&mut bytes) == End::Close {
                        return End::Close;
                    }
                }
                Ok(Message::Binary(_)) => {
                    return self
                        .fail(1003, "binary frames are not supported; send JSON text frames");
                }
                Ok(Message::Close(_)) => {
                    // tungstenite queued the close reply; flush it and end.
                    return End::Close;
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return End::Open;
                }
                Err(tungstenite::Error::Capacity(_)) => return self.fail(1009, "message too big"),
                Err(tungstenite::Error::Utf8(_)) => return self.fail(1007, "invalid UTF-8"),
                Err(tungstenite::Error::Protocol(error)) => {
                    let reason = error.to_string();
                    return self.fail(1002, &reason);
                }
                Err(_) => return End::Close,
            }
        }
    }

    fn on_text(&mut self, bytes: &mut [u8]) -> End {
        match frame::decode(bytes, self.ctx.config.limits.body_bytes_max) {
            Ok(Frame::Request(request)) => self.on_client_request(request),
            Ok(Frame::Response(response)) => self.on_client_response(response),
            Err(FrameError::Unreadable(reason)) => self.fail(1007, reason),
            Err(FrameError::Invalid { id, status, reason }) => {
                ShardMetrics::inc(&self.ctx.stats().protocol_errors_total);
                self.respond(id, status, Some(reason.to_string()), None)
            }
        }
    }

    fn on_client_request(&mut self, request: WsRequest) -> End {
        if self.client_requests_inflight >= self.ctx.config.limits.client_requests_inflight_max {
            return self.respond(request.id, 503, Some("too many requests in flight".into()), None);
        }
        self.client_requests_inflight += 1;
        let id = request.id;
        let http_request = Request::from_frame(
            request.verb,
            &request.path,
            &request.headers,
            request.body.unwrap_or_default(),
        );
        let ctx = self.ctx.clone();
        let device = self.device;
        let mailbox = self.mailbox.clone();
        monoio::spawn(async move {
            let response = router::dispatch(&ctx, Some(device), http_request).await;
            let text = frame::encode_response(&WsResponse {
                id,
                status: response.status,
                message: Some(crate::http::response::reason(response.status).to_string()),
                body: (!response.body.is_empty()).then_some(response.body),
                headers: vec![format!("Content-Type: {}", response.content_type)],
            });
            // Dropped only when the session has ended.
            mailbox.push(SessionEvent::Respond(text));
        });
        End::Open
    }

    fn on_client_response(&mut self, response: WsResponse) -> End {
        match self.window.complete(response.id) {
            Some(Inflight { kind: ServerRequest::Message { key }, .. })
                if response.status == 200 =>
            {
                self.acked.push(key);
            }
            Some(inflight) => {
                if response.status != 200 {
                    tracing::debug!(shard = self.ctx.id, status = response.status, kind = ?inflight.kind,
                        "client refused a server request");
                }
            }
            None => tracing::debug!(
                shard = self.ctx.id,
                id = response.id,
                "response to no open request"
            ),
        }
        End::Open
    }

    /// Deletes the envelopes acknowledged since the last call, as one write.
    /// The delete need not be synced: if a crash loses it, the envelopes are
    /// delivered again (at-least-once).
    fn delete_acked(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.acked);
        let count = keys.len() as u32;
        let ctx = self.ctx.clone();
        let device = self.device;
        monoio::spawn(async move {
            let ops = keys.into_iter().map(|key| Op::Delete { family: Family::Messages, key });
            match ctx.writer.write_lazy(ops.collect()).await {
                Ok(()) => {
                    // Counted once the delete is applied, as the metric says.
                    ShardMetrics::add(&ctx.stats().messages_acked_total, u64::from(count));
                    count_removed(&ctx, device, count);
                }
                Err(error) => tracing::warn!(shard = ctx.id, %error, "acked envelopes not deleted"),
            }
        });
    }

    fn send_request(
        &mut self,
        verb: &str,
        path: &str,
        body: Option<Vec<u8>>,
        kind: ServerRequest,
    ) -> End {
        let Ok(id) = self.window.open(kind, now_ms()) else {
            return End::Open;
        };
        self.send_request_with_id(id, verb, path, body)
    }

    fn send_request_with_id(
        &mut self,
        id: u64,
        verb: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> End {
        let text = frame::encode_request(&WsRequest {
            id,
            verb: verb.to_string(),
            path: path.to_string(),
            body,
            headers: vec![format!("X-Signal-Timestamp: {}", now_ms())],
        });
        self.send_text(text)
    }

    fn respond(
        &mut self,
        id: u64,
        status: u16,
        message: Option<String>,
        body: Option<Vec<u8>>,
    ) -> End {
        let text =
            frame::encode_response(&WsResponse { id, status, message, body, headers: vec![] });
        self.send_text(text)
    }

    fn send_text(&mut self, text: String) -> End {
        match self.ws.send(Message::text(text)) {
            Ok(()) => End::Open,
            Err(_) => End::Close,
        }
    }

    /// Closes for a protocol error with `code`.
    fn fail(&mut self, code: u16, reason: &str) -> End {
        ShardMetrics::inc(&self.ctx.stats().protocol_errors_total);
        self.close_with(code, reason);
        End::Close
    }

    fn close_with(&mut self, code: u16, reason: &str) {
        // Appended after whatever tungstenite already encoded.
        self.ws.get_mut().push_output(&close_frame(code, reason));
    }

    /// Writes everything queued to the socket; false when the peer is gone
    /// or does not read for `idle_timeout_ms`.
    async fn flush(&mut self, stream: &TcpStream, limits: &Limits) -> bool {
        if !self.ws.get_mut().has_output() {
            return true;
        }
        let bytes = self.ws.get_mut().take_output();
        let mut written = 0;
        while written < bytes.len() {
            match socket::send(self.fd, &bytes[written..]) {
                Ok(0) => {
                    let stalled_ms = now_ms();
                    let give_up_ms = stalled_ms + limits.idle_timeout_ms;
                    self.ctx.timers.set_deadline(&self.mailbox, give_up_ms);
                    loop {
                        match ready_or_deadline(stream.writable(false), &self.mailbox).await {
                            Ok(true) => break,
                            Ok(false) if now_ms() < give_up_ms => {
                                self.ctx.timers.set_deadline(&self.mailbox, give_up_ms);
                            }
                            Ok(false) | Err(_) => return false,
                        }
                    }
                }
                Ok(sent) => written += sent,
                Err(_) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_close_frame_is_well_formed() {
        let frame = close_frame(4409, "replaced");
        assert_eq!(frame[0], 0x88);
        assert_eq!(frame[1] as usize, 2 + "replaced".len());
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 4409);
        let long = close_frame(1009, &"x".repeat(500));
        assert_eq!(long.len(), 2 + 2 + 123);
    }
}

#[cfg(test)]
mod size_tests {
    fn size_of_future<A, B, C, D, E, F: std::future::Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The session's future is most of what an idle connection costs (it
    /// was 2,560 bytes while each session held its own runtime timers; the
    /// shard's timer wheel replaced them). Guard against regrowth.
    #[test]
    fn an_idle_session_future_stays_small() {
        let bytes = size_of_future(super::run);
        assert!(bytes <= 1_536, "session future is {bytes} bytes");
    }
}
