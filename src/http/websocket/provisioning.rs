//! The event loop of one provisioning socket (DESIGN.md section 3).
//!
//! On connect the server sends `PUT /v1/address` with `ProvisioningUUID
//! {"uuid"}` (a fresh address this shard owns) and waits. When a primary
//! device delivers a message to that address, the server sends
//! `PUT /v1/message` with `ProvisioningMessage {"body"}`; the device's 200
//! tells the primary its message was accepted, and the server closes the
//! socket normally (1000). An unclaimed socket is closed after
//! `provisioning_timeout_ms` (1001). Requests from the device are answered
//! 400: this socket only carries the server's two requests.
//!
//! Invariants: the address is registered for exactly the socket's life and
//! used at most once; a delivery whose socket ends unanswered tells the
//! primary "not accepted" (its sender is dropped), never leaves it waiting.

use crate::http::transport::Transport;
use crate::http::websocket::connection::{linger, Incoming, WsConnection};
use crate::http::websocket::socket::Received;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::protocol::frame::{self, Frame};
use crate::protocol::items::{ProvisioningAddress, ProvisioningMessage};
use crate::protocol::payloads::to_json;
use crate::shard::mailbox::{Mailbox, SessionEvent};
use crate::shard::provisioning::{Delivery, Waiting};
use crate::shard::{ConnectionGuard, ShardCtx};
use futures_channel::oneshot;
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

/// Id of the server's `PUT /v1/address` request.
const ADDRESS_REQUEST_ID: u64 = 1;
/// Id of the server's `PUT /v1/message` request.
const MESSAGE_REQUEST_ID: u64 = 2;

/// How the socket ends.
enum Ended {
    /// Keep going.
    Open,
    /// Close with this code and reason (after flushing).
    Close(u16, &'static str),
    /// The peer closed or the connection failed.
    Gone,
}

/// One provisioning socket's state.
struct Provisioning {
    conn: WsConnection,
    waiting: Rc<Waiting>,
    /// The primary waiting for the device's answer, once delivered.
    accepted: Option<oneshot::Sender<bool>>,
    /// When an unclaimed socket is closed, wall-clock ms.
    timeout_at_ms: u64,
}

/// Runs the provisioning socket until it is claimed, times out or drops.
pub async fn run(
    ctx: Rc<ShardCtx>,
    transport: Transport,
    leftover: Vec<u8>,
    _guard: ConnectionGuard,
) {
    let Transport { stream, wire } = transport;
    let address = crate::provisioning::new_address(&ctx);
    let mailbox = Rc::new(Mailbox::new(1));
    let waiting = Rc::new(Waiting { mailbox: mailbox.clone(), delivery: RefCell::new(None) });
    let limits = &ctx.config.limits;
    let sockets_max = limits.provisioning_sockets_per_shard_max;
    if ctx.provisioning.register(address, waiting.clone(), sockets_max).is_err() {
        return; // filled up since the upgrade was accepted
    }
    let now_ms = ctx.clock.now_ms();
    let mut socket = Provisioning {
        conn: WsConnection::new(wire, limits),
        waiting,
        accepted: None,
        timeout_at_ms: now_ms + limits.provisioning_timeout_ms,
    };
    socket.conn.feed(&leftover);
    drop(leftover);
    let body = to_json(&ProvisioningAddress { uuid: address.to_string() });
    socket.conn.send_request(ADDRESS_REQUEST_ID, "PUT", "/v1/address", Some(&body), now_ms);
    let ended = socket.event_loop(&ctx, &stream, &mailbox).await;
    // Before any await: the address is gone and an unanswered primary learns it.
    ctx.provisioning.unregister(&address, &socket.waiting);
    socket.waiting.delivery.borrow_mut().take();
    if let Some(accepted) = socket.accepted.take() {
        let _ = accepted.send(false);
    }
    if let Ended::Close(code, reason) = ended {
        socket.conn.close_with(code, reason);
        let _ = socket.conn.flush(&stream, &ctx, &mailbox).await;
    }
    mailbox.close();
    linger(&ctx, &stream, &mailbox).await;
}

impl Provisioning {
    async fn event_loop(
        &mut self,
        ctx: &ShardCtx,
        stream: &TcpStream,
        mailbox: &Rc<Mailbox>,
    ) -> Ended {
        let mut ended = self.on_incoming(ctx);
        loop {
            if !matches!(ended, Ended::Open) || !self.conn.flush(stream, ctx, mailbox).await {
                return if matches!(ended, Ended::Open) { Ended::Gone } else { ended };
            }
            // A stalled flush may have moved the deadline: set it again.
            ctx.timers.set_deadline(mailbox, self.timeout_at_ms);
            // TLS may hold decrypted bytes that no readiness event announces.
            let buffered = self.conn.has_buffered_input();
            let mut readable = std::pin::pin!(stream.readable(false));
            let event = std::future::poll_fn(|cx| {
                if buffered {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(event) = mailbox.poll_recv(cx) {
                    return Poll::Ready(Some(event));
                }
                readable.as_mut().poll(cx).map(|_| None)
            })
            .await;
            ended = match event {
                None => self.on_readable(ctx),
                Some(SessionEvent::Stored) => self.on_delivery(ctx),
                Some(SessionEvent::Deadline) if ctx.clock.now_ms() >= self.timeout_at_ms => {
                    Ended::Close(1001, "provisioning timed out")
                }
                Some(_) => Ended::Open,
            };
        }
    }

    /// Sends the delivered message, if one arrived.
    fn on_delivery(&mut self, ctx: &ShardCtx) -> Ended {
        self.waiting.mailbox.take_stored();
        let Some(Delivery { body, accepted }) = self.waiting.delivery.borrow_mut().take() else {
            return Ended::Open;
        };
        self.accepted = Some(accepted);
        let message = to_json(&ProvisioningMessage { body: base64::encode(&body) });
        let now_ms = ctx.clock.now_ms();
        if self.conn.send_request(MESSAGE_REQUEST_ID, "PUT", "/v1/message", Some(&message), now_ms)
        {
            Ended::Open
        } else {
            Ended::Gone
        }
    }

    /// Reads one scratch buffer's worth from the socket (an unauthenticated
    /// peer that keeps sending cannot hold the shard: the next readiness
    /// reads on) and handles every complete message in it.
    fn on_readable(&mut self, ctx: &ShardCtx) -> Ended {
        let mut scratch = ctx.read_scratch.borrow_mut();
        match self.conn.recv(&mut scratch) {
            Received::Bytes(len) => self.conn.feed(&scratch[..len]),
            Received::WouldBlock => return Ended::Open,
            Received::Closed => return Ended::Gone,
        }
        drop(scratch);
        self.on_incoming(ctx)
    }

    /// Handles every complete message fed so far.
    fn on_incoming(&mut self, ctx: &ShardCtx) -> Ended {
        loop {
            let body_bytes_max = ctx.config.limits.body_bytes_max;
            let decoded = match self.conn.next_incoming() {
                Incoming::Text(text) => frame::decode(text, body_bytes_max),
                Incoming::Drained => return Ended::Open,
                Incoming::Closed => return Ended::Gone,
                Incoming::Fail { code, .. } => {
                    ShardMetrics::inc(&ctx.stats().protocol_errors_total);
                    return Ended::Close(code, "protocol error");
                }
            };
            match decoded {
                Ok(Frame::Response(response)) if response.id == MESSAGE_REQUEST_ID => {
                    let accepted = response.status == 200;
                    if let Some(waiter) = self.accepted.take() {
                        let _ = waiter.send(accepted);
                    }
                    return Ended::Close(1000, "provisioned");
                }
                Ok(Frame::Response(_)) => {}
                Ok(Frame::Request(request)) => {
                    let reason = Some("the provisioning socket takes no requests");
                    self.conn.respond(request.id, 400, reason, None);
                }
                Err(_) => {
                    ShardMetrics::inc(&ctx.stats().protocol_errors_total);
                    return Ended::Close(1007, "unreadable frame");
                }
            }
        }
    }
}
