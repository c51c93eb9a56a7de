//! One WebSocket connection's transport: the socket, the frame reader and
//! the output buffer, with the JSON framing of DESIGN.md section 3 (the
//! mini-redis `Connection` shape). It knows frames, not deliveries: the
//! session decides what to send and what a received frame means.
//!
//! Bytes read (readiness-driven, into the shard's scratch buffer) are fed
//! to a [`FrameReader`], which parses and unmasks frames where they lie;
//! frames to send are encoded straight into `output`, which
//! [`WsConnection::flush`] writes once per loop turn, carrying every frame
//! queued in the turn. (tungstenite's `WebSocket` did this with four copies
//! of each incoming message and a serde pass over each outgoing one.)
//!
//! Invariants: a frame or message over `frame_bytes_max` is refused (close
//! 1009); `output` is bounded by its callers, not here: one loop turn
//! queues at most the outbox window's envelopes, the responses of the
//! capped client requests and control frames; writes never block
//! (a full socket waits for writability against the idle deadline, reading
//! nothing meanwhile: back-pressure); pings are answered with pongs, a
//! close with a close; after a close frame is queued nothing more is.

use crate::config::{Framing, Limits};
use crate::http::websocket::framing::{self, Message};
use crate::http::websocket::socket::{self, Received};
use crate::http::wire::Wire;
use crate::protocol::frame::{Frame, RequestOut, ResponseOut};
use crate::protocol::ws_frames::{self, Event, FrameReader};
use crate::shard::mailbox::Mailbox;
use crate::shard::ShardCtx;
use monoio::net::TcpStream;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

/// Most time spent waiting for the peer to close after our close frame.
const CLOSE_LINGER_MS: u64 = 1000;

/// What the bytes received so far hold next.
#[derive(Debug)]
pub enum Incoming {
    /// A complete request or response in the connection's framing; `reply`
    /// is false for a request not to be answered (a protobuf request
    /// without an id).
    Frame {
        /// The request or response.
        frame: Frame,
        /// Whether a request is answered.
        reply: bool,
    },
    /// A message whose id was readable but whose rest is wrong: answer it.
    Invalid {
        /// The id to answer.
        id: u64,
        /// 400 or 413.
        status: u16,
        /// Why.
        reason: &'static str,
    },
    /// Nothing complete yet: read more.
    Drained,
    /// The peer closed (the close reply is queued): flush and end.
    Closed,
    /// A protocol violation: close with `code` after counting it.
    Fail {
        /// The close code (1002, 1003, 1007, 1009).
        code: u16,
        /// Why, for the close frame.
        reason: String,
    },
}

/// The transport of one WebSocket connection.
pub struct WsConnection {
    wire: Wire,
    reader: FrameReader,
    /// Encoded frames not yet written to the socket.
    output: Vec<u8>,
    framing: Framing,
    frame_bytes_max: usize,
    body_bytes_max: usize,
    /// True once a close frame is queued: nothing follows it.
    closed: bool,
}

/// The payload of a close frame: the code, then at most 123 bytes of reason.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

impl WsConnection {
    /// The server side of an upgraded connection's `wire`, in `framing`.
    pub fn new(wire: Wire, limits: &Limits, framing: Framing) -> Self {
        Self {
            wire,
            reader: FrameReader::default(),
            output: Vec::new(),
            framing,
            frame_bytes_max: limits.frame_bytes_max,
            body_bytes_max: limits.body_bytes_max,
            closed: false,
        }
    }

    /// The connection's framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Reads what the connection holds now into `buf` (non-blocking).
    pub fn recv(&mut self, buf: &mut [u8]) -> Received {
        self.wire.recv(buf)
    }

    /// True while TLS holds decrypted bytes no readiness event announces.
    pub fn has_buffered_input(&mut self) -> bool {
        self.wire.has_buffered_input()
    }

    /// Hands bytes read from the socket to the frame reader.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.reader.feed(bytes);
    }

    /// The next complete message in what was fed, decoded in the
    /// connection's framing (pings are answered and pongs skipped).
    pub fn next_incoming(&mut self) -> Incoming {
        loop {
            let event = match self.reader.next(self.frame_bytes_max) {
                Ok(Some(event)) => event,
                Ok(None) => return Incoming::Drained,
                Err(error) => {
                    return Incoming::Fail { code: error.close_code(), reason: error.to_string() }
                }
            };
            match event {
                Event::Text(span) | Event::Binary(span) => {
                    let binary = matches!(event, Event::Binary(_));
                    let payload = self.reader.payload_mut(span);
                    return match framing::decode(self.framing, binary, payload, self.body_bytes_max)
                    {
                        Message::Frame { frame, reply } => Incoming::Frame { frame, reply },
                        Message::Invalid { id, status, reason } => {
                            Incoming::Invalid { id, status, reason }
                        }
                        Message::Fail { code, reason } => Incoming::Fail { code, reason },
                    };
                }
                Event::Ping(span) => {
                    if !self.closed {
                        let payload = self.reader.payload_mut(span);
                        ws_frames::write_frame(&mut self.output, ws_frames::OPCODE_PONG, payload);
                    }
                }
                Event::Close(code) => {
                    self.close_with(code.unwrap_or(1000), "");
                    return Incoming::Closed;
                }
            }
        }
    }

    /// Appends one message frame (text or binary, per the framing) whose
    /// payload `write` appends; false when the connection is closing.
    fn queue_message(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.closed {
            return false;
        }
        let start = ws_frames::begin_frame(&mut self.output);
        write(&mut self.output);
        ws_frames::end_frame(&mut self.output, start, framing::opcode(self.framing));
        true
    }

    /// Queues a message already encoded in the connection's framing; false
    /// when the connection cannot take it.
    pub fn send_encoded(&mut self, payload: &[u8]) -> bool {
        self.queue_message(|out| out.extend_from_slice(payload))
    }

    /// Queues a server request frame stamped `X-Signal-Timestamp`.
    pub fn send_request(
        &mut self,
        id: u64,
        verb: &str,
        path: &str,
        body: Option<&[u8]>,
        now_ms: u64,
    ) -> bool {
        let headers = [framing::header(self.framing, "X-Signal-Timestamp", &now_ms.to_string())];
        let request = RequestOut { id, verb, path, body, headers: &headers };
        let framing = self.framing;
        self.queue_message(|out| framing::write_request(framing, out, &request))
    }

    /// Queues a response frame to the client's request `id`.
    pub fn respond(
        &mut self,
        id: u64,
        status: u16,
        message: Option<&str>,
        body: Option<&[u8]>,
    ) -> bool {
        let response = ResponseOut { id, status, message, body, headers: &[] };
        let framing = self.framing;
        self.queue_message(|out| framing::write_response(framing, out, &response))
    }

    /// Queues a ping; false when the connection is closing.
    pub fn ping(&mut self) -> bool {
        if self.closed {
            return false;
        }
        ws_frames::write_frame(&mut self.output, ws_frames::OPCODE_PING, &[]);
        true
    }

    /// Queues a close frame with `code` after everything already queued
    /// (once: a second close is dropped). Over TLS no close_notify follows:
    /// the WebSocket close frame already ends the conversation, and the FIN
    /// after it ends the stream.
    pub fn close_with(&mut self, code: u16, reason: &str) {
        if !std::mem::replace(&mut self.closed, true) {
            let payload = close_payload(code, reason);
            ws_frames::write_frame(&mut self.output, ws_frames::OPCODE_CLOSE, &payload);
        }
    }

    /// Writes everything queued to the socket; false when the peer is gone
    /// or does not read for `idle_timeout_ms` (the wait is a deadline on the
    /// session's mailbox).
    pub async fn flush(
        &mut self,
        stream: &TcpStream,
        ctx: &ShardCtx,
        mailbox: &Rc<Mailbox>,
    ) -> bool {
        if !self.output.is_empty() {
            // Taken, not kept: an idle connection pins no output buffer.
            let bytes = std::mem::take(&mut self.output);
            let mut written = 0;
            while written < bytes.len() {
                match self.wire.send(&bytes[written..]) {
                    Ok(0) => {
                        if !Box::pin(wait_writable(stream, ctx, mailbox)).await {
                            return false;
                        }
                    }
                    Ok(sent) => written += sent,
                    Err(_) => return false,
                }
            }
        }
        loop {
            match self.wire.flush_pending() {
                Ok(true) => return true,
                Ok(false) if Box::pin(wait_writable(stream, ctx, mailbox)).await => {}
                Ok(false) | Err(_) => return false,
            }
        }
    }
}

/// Waits for a full socket to take bytes again, at most `idle_timeout_ms`;
/// false when the peer went away or stalled past it.
async fn wait_writable(stream: &TcpStream, ctx: &ShardCtx, mailbox: &Rc<Mailbox>) -> bool {
    let give_up_ms = ctx.clock.now_ms() + ctx.config.limits.idle_timeout_ms;
    ctx.timers.set_deadline(mailbox, give_up_ms);
    loop {
        match ready_or_deadline(stream.writable(false), mailbox).await {
            Ok(true) => return true,
            Ok(false) if ctx.clock.now_ms() < give_up_ms => {
                ctx.timers.set_deadline(mailbox, give_up_ms);
            }
            Ok(false) | Err(_) => return false,
        }
    }
}

/// The closing handshake: stop sending (FIN after the close frame), then
/// read and discard until the peer closes or the linger ends. Closing at
/// once would make the kernel answer the peer's late frames (a pong, its
/// close reply) with a reset, which can destroy our close frame unread.
pub async fn linger(ctx: &ShardCtx, stream: &TcpStream, mailbox: &Rc<Mailbox>) {
    let fd = stream.as_raw_fd();
    // SAFETY: `stream` keeps `fd` open; shutting down the write side does not
    // close the descriptor (monoio closes it when the stream is dropped).
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
    mailbox.take_deadline();
    ctx.timers.set_deadline(mailbox, ctx.clock.now_ms() + CLOSE_LINGER_MS);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payload_is_code_then_bounded_reason() {
        let payload = close_payload(4409, "replaced");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 4409);
        assert_eq!(&payload[2..], b"replaced");
        assert_eq!(close_payload(1009, &"x".repeat(500)).len(), 2 + 123);
        // Cut on a character boundary: the reason stays UTF-8.
        let cut = close_payload(1002, &"é".repeat(100));
        assert!(std::str::from_utf8(&cut[2..]).is_ok() && cut.len() <= 125);
    }
}
