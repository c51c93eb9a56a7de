//! The event loop of one authenticated WebSocket connection.
//!
//! One task per connection. It waits for any of: the socket becoming
//! readable (a readiness poll, so an idle connection holds no read buffer:
//! reads go into the shard's scratch buffer and straight to the
//! [`WsConnection`]), an event in its [`Mailbox`] (responses to client
//! requests, online-only envelopes, "replaced", "new envelopes stored"), or
//! its next deadline (ping, idle timeout, request timeouts). It handles
//! everything that is ready before it writes, so one write carries many
//! frames. While a write waits for the peer to read, it reads nothing more
//! (back-pressure).
//!
//! Division of labour: [`WsConnection`] is the transport (socket,
//! tungstenite, framing); the [`Outbox`] is delivery (store pages, the
//! in-flight window, acks, deletes); this loop only connects the two and
//! serves client requests through the router, each in its own task, with
//! the connection's device as the caller.
//!
//! Back-pressure, not refusal: at most `client_requests_inflight_max`
//! client requests are handled at once. At that count the session stops
//! taking messages out of what it has buffered and stops reading the socket
//! (TCP then slows the client down) until a response frees a slot; what was
//! buffered stays bounded by one read budget plus one frame.
//!
//! Close codes: 1009 frame or message over the limit, 1003 a message of
//! the other framing (binary on a JSON connection, text on a protobuf
//! one), 1007 a frame that cannot be read (no readable id, invalid UTF-8,
//! not a valid `WebSocketMessage`), 1002 a WebSocket protocol violation, 1001 idle timeout,
//! 4409 replaced by a newer connection of the same device, 4401 the device
//! was removed from its account.

use crate::accounts::AuthedDevice;
use crate::calls;
use crate::config::Framing;
use crate::delivery::outbox::DeliveryForm;
use crate::delivery::outbox::{Outbox, Outgoing};
use crate::delivery::push;
use crate::http::transport::Transport;
use crate::http::websocket::connection::{linger, Incoming, WsConnection};
use crate::http::websocket::framing;
use crate::http::websocket::socket::Received;
use crate::http::wire::Wire;
use crate::metrics::ShardMetrics;
use crate::protocol::frame::{Frame, WsRequest};
use crate::shard::mailbox::{Mailbox, SessionEvent};
use crate::shard::{ConnectionGuard, ShardCtx};
use futures_util::future::FusedFuture;
use futures_util::FutureExt;
use monoio::net::TcpStream;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

/// Droppable events (online-only envelopes) queued ahead of the loop, at most.
const OFFERED_EVENTS_MAX: usize = 64;

/// Most bytes read from one socket per readiness before the loop turns (and
/// writes): a fast sender cannot starve its own responses.
const READ_BUDGET_BYTES: usize = 256 * 1024;

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Keep going.
    Open,
    /// Close after flushing what is queued.
    Close,
}

impl End {
    fn from_sent(sent: bool) -> Self {
        if sent {
            End::Open
        } else {
            End::Close
        }
    }
}

/// What woke the loop.
enum Woken {
    Readable,
    Event(SessionEvent),
}

struct Session {
    ctx: Rc<ShardCtx>,
    device: AuthedDevice,
    conn: WsConnection,
    outbox: Outbox,
    mailbox: Rc<Mailbox>,
    client_requests_inflight: usize,
    /// True while `client_requests_inflight` is at its cap: nothing more is
    /// read from the socket or taken from the buffer until a slot frees.
    paused: bool,
    last_heard_ms: u64,
    next_ping_ms: u64,
}

/// What the upgrade asked of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// The connection's framing.
    pub framing: Framing,
    /// Whether the device receives stories (`X-Signal-Receive-Stories`).
    pub receive_stories: bool,
}

/// Runs the session until the connection ends.
pub async fn run(
    ctx: Rc<ShardCtx>,
    Transport { stream, wire }: Transport,
    leftover: Vec<u8>,
    (device, options): (AuthedDevice, SessionOptions),
    _guard: ConnectionGuard,
) {
    let mailbox = Rc::new(Mailbox::new(OFFERED_EVENTS_MAX));
    // Items staged for the device before this session registers are in the
    // batch being written or older, or in the open batch if it holds any.
    let prefix = crate::store::messages::device_prefix(&device.account, device.device_id);
    let open_batch = ctx.writer.open_batch();
    let staged = if ctx.writer.open_batch_holds(&prefix) { open_batch } else { open_batch - 1 };
    mailbox.tail().note_staged(staged);
    let (conn_id, replaced) = ctx.sessions.borrow_mut().register(device, mailbox.clone());
    if let Some(old) = replaced {
        ShardMetrics::inc(&ctx.stats().websockets_replaced_total);
        old.mailbox.push(SessionEvent::Replaced);
    }
    ShardMetrics::inc(&ctx.stats().websockets_open);
    push::on_connected(&ctx, device);
    let mut session = Session::new(&ctx, wire, device, mailbox.clone(), options);
    // The stored backlog first, then queue/empty, then live traffic.
    let mut end = session.pump_outbox();
    if end == End::Open && !leftover.is_empty() {
        end = session.on_bytes(&leftover);
    }
    drop(leftover);
    session.event_loop(&stream, end).await;
    calls::send_delivery_receipts(&ctx, device, session.outbox.delete_acked(&ctx));
    ctx.sessions.borrow_mut().unregister(&device, conn_id);
    push::on_session_closed(&ctx, device);
    mailbox.close();
    ShardMetrics::dec(&ctx.stats().websockets_open);
    Box::pin(linger(&ctx, &stream, &mailbox)).await;
}

impl Session {
    fn new(
        ctx: &Rc<ShardCtx>,
        wire: Wire,
        device: AuthedDevice,
        mailbox: Rc<Mailbox>,
        options: SessionOptions,
    ) -> Self {
        let limits = &ctx.config.limits;
        let now_ms = ctx.clock.now_ms();
        let form = DeliveryForm {
            protobuf: options.framing == Framing::Protobuf,
            stories: options.receive_stories,
        };
        Session {
            ctx: ctx.clone(),
            device,
            conn: WsConnection::new(wire, limits, options.framing),
            outbox: Outbox::new(device, limits.inflight_requests_max, form),
            mailbox,
            client_requests_inflight: 0,
            paused: false,
            last_heard_ms: now_ms,
            next_ping_ms: now_ms + limits.ping_interval_ms,
        }
    }

    /// Turns until the connection ends: settle deliveries, write, wait,
    /// handle what woke it and everything else already queued.
    async fn event_loop(&mut self, stream: &TcpStream, mut end: End) {
        // A readiness poll stays armed across turns until it fires.
        let mut readable = pin!(futures_util::future::Fuse::terminated());
        let mut read_again = true;
        loop {
            let receipts_due = self.outbox.delete_acked(&self.ctx);
            calls::send_delivery_receipts(&self.ctx, self.device, receipts_due);
            if end == End::Open {
                end = self.pump_outbox();
            }
            if !self.conn.flush(stream, &self.ctx, &self.mailbox).await || end == End::Close {
                return;
            }
            // TLS may hold decrypted bytes that no readiness event announces.
            let buffered = !self.paused && self.conn.has_buffered_input();
            let woken = if !self.paused && (std::mem::take(&mut read_again) || buffered) {
                Woken::Readable
            } else {
                if readable.is_terminated() {
                    readable.set(stream.readable(false).fuse());
                }
                self.wait(readable.as_mut()).await
            };
            end = match woken {
                Woken::Readable => {
                    let (read_end, more) = self.on_readable();
                    read_again = more;
                    read_end
                }
                Woken::Event(event) => self.on_event(event),
            };
            // Handle every event already queued before writing, so one write
            // carries many frames (a syscall per frame dominated the profile).
            while end == End::Open {
                let Some(event) = self.mailbox.try_recv() else { break };
                end = self.on_event(event);
            }
        }
    }

    /// Waits for a mailbox event (or deadline) or for the socket to be readable.
    async fn wait(&self, mut readable: std::pin::Pin<&mut impl Future>) -> Woken {
        let limits = &self.ctx.config.limits;
        let due_ms = self.next_ping_ms.min(self.last_heard_ms + limits.idle_timeout_ms);
        self.ctx.timers.set_deadline(&self.mailbox, due_ms);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(event) = self.mailbox.poll_recv(cx) {
                return Poll::Ready(Woken::Event(event));
            }
            // Paused: the socket is left unread (back-pressure on the client).
            if !self.paused && readable.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woken::Readable);
            }
            Poll::Pending
        })
        .await
    }

    fn on_event(&mut self, event: SessionEvent) -> End {
        match event {
            SessionEvent::Replaced => {
                self.conn.close_with(4409, "connection replaced");
                End::Close
            }
            SessionEvent::Unlinked => {
                self.conn.close_with(4401, "device removed");
                End::Close
            }
            SessionEvent::Shutdown => {
                self.conn.close_with(1001, "server shutting down");
                End::Close
            }
            SessionEvent::Respond(payload) => {
                self.client_requests_inflight -= 1;
                // Empty: a request that is not answered (a protobuf request without an id).
                if !payload.is_empty() && !self.conn.send_encoded(&payload) {
                    return End::Close;
                }
                if std::mem::take(&mut self.paused) {
                    // A slot is free: take up the messages left buffered
                    // (the client was heard: they are its messages).
                    self.last_heard_ms = self.ctx.clock.now_ms();
                    return self.on_bytes(&[]);
                }
                End::Open
            }
            // The mailbox's flag carries the news; pump_outbox runs every turn.
            SessionEvent::Stored => End::Open,
            SessionEvent::Deadline => self.on_deadline(),
            SessionEvent::Ephemeral { path, json } => {
                match self.outbox.offer_ephemeral(&self.ctx, path, &json) {
                    Some(outgoing) => self.send(outgoing),
                    None => End::Open,
                }
            }
        }
    }

    /// Writes one server request the outbox opened.
    fn send(&mut self, outgoing: Outgoing) -> End {
        let now_ms = self.ctx.clock.now_ms();
        let Outgoing { id, path, body } = outgoing;
        End::from_sent(self.conn.send_request(id, "PUT", path, body.as_deref(), now_ms))
    }

    /// Sends what the outbox has ready (stored envelopes, `queue/empty`).
    fn pump_outbox(&mut self) -> End {
        let news = self.mailbox.take_queue_news();
        let (ctx, conn) = (&self.ctx, &mut self.conn);
        let now_ms = ctx.clock.now_ms();
        let mut send = |Outgoing { id, path, body }: Outgoing| {
            conn.send_request(id, "PUT", path, body.as_deref(), now_ms)
        };
        End::from_sent(self.outbox.pump(ctx, news, self.mailbox.tail(), &mut send))
    }

    /// Reads what the socket holds (up to [`READ_BUDGET_BYTES`]) through the
    /// shard's scratch buffer into the connection. Returns whether the
    /// budget ran out with bytes perhaps left (read again before waiting).
    fn on_readable(&mut self) -> (End, bool) {
        let ctx = self.ctx.clone();
        let mut scratch = ctx.read_scratch.borrow_mut();
        let mut read_bytes = 0;
        while read_bytes < READ_BUDGET_BYTES {
            match self.conn.recv(&mut scratch) {
                Received::Bytes(len) => {
                    read_bytes += len;
                    self.last_heard_ms = ctx.clock.now_ms();
                    if self.on_bytes(&scratch[..len]) == End::Close {
                        return (End::Close, false);
                    }
                    if self.paused || len < scratch.len() {
                        // Paused: read no more until a slot frees. Else
                        // drained for now; the next poll says if more came.
                        return (End::Open, false);
                    }
                }
                Received::WouldBlock => return (End::Open, false),
                Received::Closed => return (End::Close, false),
            }
        }
        (End::Open, true)
    }

    fn on_deadline(&mut self) -> End {
        let ctx = self.ctx.clone();
        let limits = &ctx.config.limits;
        let now_ms = ctx.clock.now_ms();
        // Paused, the session is not reading: the client is not idle, it waits for us.
        let idle =
            !self.paused && now_ms.saturating_sub(self.last_heard_ms) >= limits.idle_timeout_ms;
        if idle {
            self.conn.close_with(1001, "idle timeout");
            return End::Close;
        }
        self.outbox.expire(now_ms, limits.request_timeout_ms);
        if now_ms >= self.next_ping_ms {
            self.next_ping_ms = now_ms + limits.ping_interval_ms;
            return End::from_sent(self.conn.ping());
        }
        End::Open
    }

    /// Feeds bytes to the connection and handles every complete message,
    /// pausing (leaving the rest buffered) while client requests are at their cap.
    fn on_bytes(&mut self, bytes: &[u8]) -> End {
        self.conn.feed(bytes);
        let inflight_max = self.ctx.config.limits.client_requests_inflight_max;
        loop {
            if self.client_requests_inflight >= inflight_max {
                self.paused = true;
                return End::Open;
            }
            let end = match self.conn.next_incoming() {
                Incoming::Frame { frame: Frame::Request(request), reply } => {
                    self.on_client_request(request, reply)
                }
                Incoming::Frame { frame: Frame::Response(response), .. } => {
                    let acked = framing::acknowledges(self.conn.framing(), response.status);
                    self.outbox.on_response(&self.ctx, response.id, acked);
                    End::Open
                }
                Incoming::Invalid { id, status, reason } => {
                    ShardMetrics::inc(&self.ctx.stats().protocol_errors_total);
                    End::from_sent(self.conn.respond(id, status, Some(reason), None))
                }
                Incoming::Drained => return End::Open,
                Incoming::Closed => return End::Close,
                Incoming::Fail { code, reason } => return self.fail(code, &reason),
            };
            if end == End::Close {
                return End::Close;
            }
        }
    }

    fn on_client_request(&mut self, request: WsRequest, reply: bool) -> End {
        debug_assert!(
            self.client_requests_inflight < self.ctx.config.limits.client_requests_inflight_max,
            "on_bytes pauses at the cap"
        );
        self.client_requests_inflight += 1;
        let framing = self.conn.framing();
        let (ctx, device, mailbox) = (self.ctx.clone(), self.device, self.mailbox.clone());
        monoio::spawn(async move {
            let payload = framing::answer(&ctx, device, framing, request, reply).await;
            // Dropped only when the session has ended.
            mailbox.push(SessionEvent::Respond(payload));
        });
        End::Open
    }

    /// Closes for a protocol error with `code`.
    fn fail(&mut self, code: u16, reason: &str) -> End {
        ShardMetrics::inc(&self.ctx.stats().protocol_errors_total);
        self.conn.close_with(code, reason);
        End::Close
    }
}
