//! The event loop of one provisioning socket (DESIGN.md section 3).
//!
//! On connect the server sends `PUT /v1/address` with a fresh address this
//! shard owns and waits. When a primary device delivers a message to that
//! address, the server sends `PUT /v1/message`; after the device's answer
//! it closes the socket normally (1000). An unclaimed socket is closed
//! after `provisioning_timeout_ms` (1001). `GET /v1/keepalive/provisioning`
//! (and `GET /v1/keepalive`) is answered 200; any other request 400.
//!
//! Bodies per framing: JSON sends `ProvisioningUUID {"uuid"}` and
//! `ProvisioningMessage {"body": Base64}`; protobuf sends the protobuf
//! `ProvisioningAddress {address}` and then exactly the bytes the primary
//! put, as Signal's provisioning socket does.
//!
//! Invariants: the address is registered for exactly the socket's life and
//! used at most once.

use crate::config::Framing;
use crate::http::transport::Transport;
use crate::http::websocket::connection::{linger, Incoming, WsConnection};
use crate::http::websocket::socket::Received;
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::protocol::frame::Frame;
use crate::protocol::items::{ProvisioningAddress, ProvisioningMessage};
use crate::protocol::payloads::to_json;
use crate::protocol::proto::messages::ProvisioningAddress as ProtoAddress;
use crate::shard::mailbox::{Mailbox, SessionEvent};
use crate::shard::provisioning::{Delivery, Waiting};
use crate::shard::{ConnectionGuard, ShardCtx};
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
    /// When an unclaimed socket is closed, wall-clock ms.
    timeout_at_ms: u64,
}

/// Runs the provisioning socket until it is claimed, times out or drops.
pub async fn run(
    ctx: Rc<ShardCtx>,
    transport: Transport,
    leftover: Vec<u8>,
    framing: Framing,
    _guard: ConnectionGuard,
) {
    let Transport { stream, wire } = transport;
    let Some(address) = crate::provisioning::new_address(&ctx) else {
        return; // this node owns no partition: the client reconnects elsewhere
    };
    let mailbox = Rc::new(Mailbox::new(1));
    let waiting = Rc::new(Waiting { mailbox: mailbox.clone(), delivery: RefCell::new(None) });
    let limits = &ctx.config.limits;
    let sockets_max = limits.provisioning_sockets_per_shard_max;
    if ctx.provisioning.register(address, waiting.clone(), sockets_max).is_err() {
        return; // filled up since the upgrade was accepted
    }
    let now_ms = ctx.clock.now_ms();
    let mut socket = Provisioning {
        conn: WsConnection::new(wire, limits, framing),
        waiting,
        timeout_at_ms: now_ms + limits.provisioning_timeout_ms,
    };
    socket.conn.feed(&leftover);
    drop(leftover);
    let body = match framing {
        Framing::Json => to_json(&ProvisioningAddress { uuid: address.to_string() }),
        Framing::Protobuf => {
            prost::Message::encode_to_vec(&ProtoAddress { address: Some(address.to_string()) })
        }
    };
    socket.conn.send_request(ADDRESS_REQUEST_ID, "PUT", "/v1/address", Some(&body), now_ms);
    let ended = socket.event_loop(&ctx, &stream, &mailbox).await;
    // Before any await: the address is gone.
    ctx.provisioning.unregister(&address, &socket.waiting);
    socket.waiting.delivery.borrow_mut().take();
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
        let Some(Delivery { body }) = self.waiting.delivery.borrow_mut().take() else {
            return Ended::Open;
        };
        let message = match self.conn.framing() {
            Framing::Json => to_json(&ProvisioningMessage { body: base64::encode(&body) }),
            Framing::Protobuf => body,
        };
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
            match self.conn.next_incoming() {
                Incoming::Frame { frame: Frame::Response(response), .. }
                    if response.id == MESSAGE_REQUEST_ID =>
                {
                    return Ended::Close(1000, "provisioned");
                }
                Incoming::Frame { frame: Frame::Response(_), .. } => {}
                Incoming::Frame { frame: Frame::Request(request), reply } => {
                    let keepalive = request.verb == "GET"
                        && matches!(
                            request.path.as_str(),
                            "/v1/keepalive/provisioning" | "/v1/keepalive"
                        );
                    let (status, reason) = if keepalive {
                        (200, "OK")
                    } else {
                        (400, "the provisioning socket takes no requests")
                    };
                    if reply {
                        self.conn.respond(request.id, status, Some(reason), None);
                    }
                }
                Incoming::Invalid { id, status, reason } => {
                    ShardMetrics::inc(&ctx.stats().protocol_errors_total);
                    self.conn.respond(id, status, Some(reason), None);
                }
                Incoming::Drained => return Ended::Open,
                Incoming::Closed => return Ended::Gone,
                Incoming::Fail { code, .. } => {
                    ShardMetrics::inc(&ctx.stats().protocol_errors_total);
                    return Ended::Close(code, "protocol error");
                }
            }
        }
    }
}
