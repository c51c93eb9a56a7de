//! The event loop of one authenticated WebSocket connection.
//!
//! Two tasks per connection: a reader that turns socket reads into
//! [`SessionEvent::Bytes`] (waiting when the bounded event queue is full, so
//! a client can never make us buffer more than a few reads ahead), and this
//! loop, which owns the tungstenite state, the in-flight window of
//! server-initiated requests and the write half of the socket.
//!
//! Each text frame is one JSON request or response (DESIGN.md section 3).
//! Client requests go to the same router as plain HTTP, each in its own task
//! (at most `client_requests_inflight_max` at once; beyond that 503), with
//! the connection's device as the caller. Server requests are numbered in
//! their own id space and bounded by the window.
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
use crate::http::conn::{now_ms, read_more};
use crate::http::request::Request;
use crate::http::router;
use crate::http::websocket::memstream::MemStream;
use crate::http::websocket::registry::SessionEvent;
use crate::metrics::ShardMetrics;
use crate::protocol::envelope::with_delivered_timestamp;
use crate::protocol::frame::{self, Frame, FrameError, WsRequest, WsResponse};
use crate::shard::runtime::{ConnectionGuard, ShardCtx};
use crate::store::messages::read_page;
use crate::store::writer::{Family, Op};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use monoio::io::{AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Bytes tungstenite copies out of the MemStream per read call.
const TUNGSTENITE_READ_CHUNK_BYTES: usize = 512;

/// Events queued ahead of the loop, at most.
const EVENT_QUEUE_LEN_MAX: usize = 16;

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

struct Session {
    ctx: Rc<ShardCtx>,
    device: AuthedDevice,
    ws: WebSocket<MemStream>,
    window: InflightWindow<ServerRequest>,
    outbox: Outbox,
    /// Set by senders when envelopes are stored for this device.
    new_messages: Rc<Cell<bool>>,
    events: mpsc::Sender<SessionEvent>,
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
    let limits = ctx.config.limits.clone();
    let fd = stream.as_raw_fd();
    let (reader, mut writer) = stream.into_split();
    let (events, mut inbox) = mpsc::channel::<SessionEvent>(EVENT_QUEUE_LEN_MAX);
    let new_messages = Rc::new(Cell::new(false));
    let (conn_id, replaced) =
        ctx.sessions.borrow_mut().register(device, events.clone(), new_messages.clone());
    if let Some(old) = replaced {
        ShardMetrics::inc(&ctx.stats().websockets_replaced_total);
        let mut old_events = old.events;
        monoio::spawn(async move {
            let _ = old_events.send(SessionEvent::Replaced).await;
        });
    }
    ShardMetrics::inc(&ctx.stats().websockets_open);
    monoio::spawn(read_loop(reader, events.clone(), limits.read_buffer_bytes));

    let now = now_ms();
    let mut memstream = MemStream::default();
    memstream.feed(&leftover);
    let had_leftover = !leftover.is_empty();
    drop(leftover);
    let mut session = Session {
        ctx: ctx.clone(),
        device,
        ws: WebSocket::from_raw_socket(memstream, Role::Server, Some(ws_config(&limits))),
        window: InflightWindow::new(limits.inflight_requests_max),
        outbox: Outbox::default(),
        new_messages,
        events,
        client_requests_inflight: 0,
        last_heard_ms: now,
        next_ping_ms: now + limits.ping_interval_ms,
    };
    // The stored backlog first, then queue/empty, then live traffic.
    let mut end = session.pump_outbox();
    if end == End::Open && had_leftover {
        end = session.on_bytes(&[]);
    }
    loop {
        if end == End::Open {
            end = session.pump_outbox();
        }
        if !session.flush(&mut writer, &limits).await {
            break;
        }
        if end == End::Close {
            break;
        }
        let now = now_ms();
        let deadline_ms = session.next_ping_ms.min(session.last_heard_ms + limits.idle_timeout_ms);
        let wait = Duration::from_millis(deadline_ms.saturating_sub(now).max(1));
        end = match monoio::time::timeout(wait, inbox.next()).await {
            Err(_elapsed) => session.on_tick(&limits),
            Ok(None) => End::Close,
            Ok(Some(event)) => session.on_event(event),
        };
        // Handle every event already queued before writing, so one write
        // carries many frames (a syscall per frame dominated the profile).
        while end == End::Open {
            match inbox.try_recv() {
                Ok(event) => end = session.on_event(event),
                Err(mpsc::TryRecvError::Closed) => end = End::Close,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
    }
    ctx.sessions.borrow_mut().unregister(&device, conn_id);
    ShardMetrics::dec(&ctx.stats().websockets_open);
    linger(fd, &mut inbox).await;
    // SAFETY: `fd` is still open (the write half, alive here, holds it);
    // shutting it down wakes the reader task, which then ends and drops the
    // read half, so the descriptor is closed exactly once, by monoio.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
    drop(writer);
}

/// Most time spent waiting for the peer to close after our close frame.
const CLOSE_LINGER_MS: u64 = 1000;

/// The closing handshake: stop sending (FIN after the close frame), then
/// read and discard until the peer closes or the linger ends. Closing at
/// once would make the kernel answer the peer's late frames (a pong, its
/// close reply) with a reset, which can destroy our close frame unread.
async fn linger(fd: std::os::fd::RawFd, inbox: &mut mpsc::Receiver<SessionEvent>) {
    // SAFETY: `fd` is open for the duration of `run`, which owns the write
    // half; shutting down the write side does not close the descriptor.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(CLOSE_LINGER_MS);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match monoio::time::timeout(left, inbox.next()).await {
            Ok(Some(
                SessionEvent::Bytes(_)
                | SessionEvent::Respond(_)
                | SessionEvent::Replaced
                | SessionEvent::Wake
                | SessionEvent::Ephemeral(_),
            )) => {}
            Ok(Some(SessionEvent::ReadClosed) | None) | Err(_) => return,
        }
    }
}

/// Smallest read buffer a session keeps while its traffic is light.
const READ_CHUNK_MIN_BYTES: usize = 512;

/// Reads the socket into events. The buffer adapts: a read that fills it
/// doubles it (up to `chunk_max`), a read under a quarter of it halves it
/// (down to [`READ_CHUNK_MIN_BYTES`]), so an idle connection holds a small
/// buffer in its pending read and a busy one reads in large chunks.
async fn read_loop(
    mut reader: OwnedReadHalf<TcpStream>,
    mut events: mpsc::Sender<SessionEvent>,
    chunk_max: usize,
) {
    let mut chunk = READ_CHUNK_MIN_BYTES.min(chunk_max);
    loop {
        let (result, buf) = read_more(&mut reader, Vec::with_capacity(chunk), chunk).await;
        let event = match result {
            Ok(0) | Err(_) => SessionEvent::ReadClosed,
            Ok(read) => {
                if read >= chunk {
                    chunk = (chunk * 2).min(chunk_max);
                } else if read < chunk / 4 {
                    chunk = (chunk / 2).max(READ_CHUNK_MIN_BYTES).min(chunk_max);
                }
                SessionEvent::Bytes(buf)
            }
        };
        let closed = matches!(event, SessionEvent::ReadClosed);
        if events.send(event).await.is_err() || closed {
            return;
        }
    }
}

impl Session {
    fn on_event(&mut self, event: SessionEvent) -> End {
        match event {
            SessionEvent::Bytes(bytes) => {
                self.last_heard_ms = now_ms();
                self.on_bytes(&bytes)
            }
            SessionEvent::ReadClosed => End::Close,
            SessionEvent::Replaced => {
                self.close_with(4409, "connection replaced");
                End::Close
            }
            SessionEvent::Respond(text) => {
                self.client_requests_inflight -= 1;
                self.send_text(text)
            }
            // The flag carries the news; pump_outbox runs after every event.
            SessionEvent::Wake => End::Open,
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

    /// Sends stored envelopes while the window has room and the queue may
    /// hold unsent ones; sends `queue/empty` the first time it runs dry.
    fn pump_outbox(&mut self) -> End {
        if self.new_messages.replace(false) {
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

    fn on_tick(&mut self, limits: &Limits) -> End {
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
        let mut events = self.events.clone();
        monoio::spawn(async move {
            let response = router::dispatch(&ctx, Some(device), http_request).await;
            let text = frame::encode_response(&WsResponse {
                id,
                status: response.status,
                message: Some(crate::http::response::reason(response.status).to_string()),
                body: (!response.body.is_empty()).then_some(response.body),
                headers: vec![format!("Content-Type: {}", response.content_type)],
            });
            let _ = events.send(SessionEvent::Respond(text)).await;
        });
        End::Open
    }

    fn on_client_response(&mut self, response: WsResponse) -> End {
        match self.window.complete(response.id) {
            Some(Inflight { kind: ServerRequest::Message { key }, .. })
                if response.status == 200 =>
            {
                self.delete_acked(key);
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

    /// Deletes an acknowledged envelope. The delete need not be synced: if
    /// a crash loses it, the envelope is delivered again (at-least-once).
    fn delete_acked(&mut self, key: Vec<u8>) {
        ShardMetrics::inc(&self.ctx.stats().messages_acked_total);
        let ctx = self.ctx.clone();
        let device = self.device;
        monoio::spawn(async move {
            let op = Op::Delete { family: Family::Messages, key };
            match ctx.writer.write_lazy(vec![op]).await {
                Ok(()) => count_removed(&ctx, device, 1),
                Err(error) => tracing::warn!(shard = ctx.id, %error, "acked envelope not deleted"),
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
    async fn flush(&mut self, writer: &mut OwnedWriteHalf<TcpStream>, limits: &Limits) -> bool {
        if !self.ws.get_mut().has_output() {
            return true;
        }
        let bytes = self.ws.get_mut().take_output();
        let write = writer.write_all(bytes);
        matches!(
            monoio::time::timeout(Duration::from_millis(limits.idle_timeout_ms), write).await,
            Ok((Ok(_), _))
        )
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
