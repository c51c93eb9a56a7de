//! One WebSocket connection's transport: the socket, tungstenite's state
//! and the JSON framing of DESIGN.md section 3 (the mini-redis `Connection`
//! shape). It knows frames, not deliveries: the session decides what to
//! send and what a received frame means.
//!
//! tungstenite never touches the socket: bytes read (readiness-driven, into
//! the shard's scratch buffer) are fed to it through a [`MemStream`], and
//! what it encodes is written by [`WsConnection::flush`], once per loop
//! turn, carrying every frame queued in the turn.
//!
//! Invariants: a message or frame over `frame_bytes_max` is refused by
//! tungstenite (close 1009); writes never block (a full socket waits for
//! writability against the idle deadline, reading nothing meanwhile:
//! back-pressure); a close frame is written by hand after whatever is
//! queued, so it is sent even when tungstenite's state has failed.

use crate::config::Limits;
use crate::http::websocket::memstream::MemStream;
use crate::http::websocket::socket::{self, Received};
use crate::http::wire::Wire;
use crate::protocol::frame::{self, WsRequest, WsResponse};
use crate::shard::mailbox::Mailbox;
use crate::shard::ShardCtx;
use monoio::net::TcpStream;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Bytes tungstenite copies out of the MemStream per read call, and the
/// capacity of its input buffer, which every connection holds.
const TUNGSTENITE_READ_CHUNK_BYTES: usize = 128;

/// Most time spent waiting for the peer to close after our close frame.
const CLOSE_LINGER_MS: u64 = 1000;

/// What the bytes received so far hold next.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message.
    Text(Vec<u8>),
    /// Nothing complete yet: read more.
    Drained,
    /// The peer closed (tungstenite queued the close reply) or the
    /// connection failed: flush and end.
    Closed,
    /// A protocol violation: close with `code` after counting it.
    Fail {
        /// The close code (1003, 1007, 1009, 1002).
        code: u16,
        /// Why, for the close frame.
        reason: String,
    },
}

/// The transport of one WebSocket connection.
pub struct WsConnection {
    wire: Wire,
    ws: WebSocket<MemStream>,
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

impl WsConnection {
    /// The server side of an upgraded connection's `wire`.
    pub fn new(wire: Wire, limits: &Limits) -> Self {
        let ws =
            WebSocket::from_raw_socket(MemStream::default(), Role::Server, Some(ws_config(limits)));
        Self { wire, ws }
    }

    /// Reads what the connection holds now into `buf` (non-blocking).
    pub fn recv(&mut self, buf: &mut [u8]) -> Received {
        self.wire.recv(buf)
    }

    /// True while TLS holds decrypted bytes no readiness event announces.
    pub fn has_buffered_input(&mut self) -> bool {
        self.wire.has_buffered_input()
    }

    /// Hands bytes read from the socket to tungstenite.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.ws.get_mut().feed(bytes);
    }

    /// The next complete message in what was fed (control frames are
    /// answered by tungstenite and skipped).
    pub fn next_incoming(&mut self) -> Incoming {
        loop {
            let fail = |code, reason: &str| Incoming::Fail { code, reason: reason.to_string() };
            return match self.ws.read() {
                Ok(Message::Text(text)) => Incoming::Text(text.as_bytes().to_vec()),
                Ok(Message::Binary(_)) => {
                    fail(1003, "binary frames are not supported; send JSON text frames")
                }
                Ok(Message::Close(_)) => Incoming::Closed,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(tungstenite::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    Incoming::Drained
                }
                Err(tungstenite::Error::Capacity(_)) => fail(1009, "message too big"),
                Err(tungstenite::Error::Utf8(_)) => fail(1007, "invalid UTF-8"),
                Err(tungstenite::Error::Protocol(error)) => fail(1002, &error.to_string()),
                Err(_) => Incoming::Closed,
            };
        }
    }

    /// Queues a text frame; false when tungstenite refuses (connection done).
    pub fn send_text(&mut self, text: String) -> bool {
        self.ws.send(Message::text(text)).is_ok()
    }

    /// Queues a server request `PUT`-style frame stamped `X-Signal-Timestamp`.
    pub fn send_request(
        &mut self,
        id: u64,
        verb: &str,
        path: &str,
        body: Option<Vec<u8>>,
        now_ms: u64,
    ) -> bool {
        let text = frame::encode_request(&WsRequest {
            id,
            verb: verb.to_string(),
            path: path.to_string(),
            body,
            headers: vec![format!("X-Signal-Timestamp: {now_ms}")],
        });
        self.send_text(text)
    }

    /// Queues a response frame to the client's request `id`.
    pub fn respond(
        &mut self,
        id: u64,
        status: u16,
        message: Option<String>,
        body: Option<Vec<u8>>,
    ) -> bool {
        let text =
            frame::encode_response(&WsResponse { id, status, message, body, headers: vec![] });
        self.send_text(text)
    }

    /// Queues a ping; false when tungstenite refuses.
    pub fn ping(&mut self) -> bool {
        self.ws.send(Message::Ping(Default::default())).is_ok()
    }

    /// Queues a close frame with `code` after everything already queued.
    /// (Over TLS no close_notify follows: the WebSocket close frame already
    /// ends the conversation, and the FIN after it ends the stream.)
    pub fn close_with(&mut self, code: u16, reason: &str) {
        self.ws.get_mut().push_output(&close_frame(code, reason));
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
        if self.ws.get_mut().has_output() {
            let bytes = self.ws.get_mut().take_output();
            let mut written = 0;
            while written < bytes.len() {
                match self.wire.send(&bytes[written..]) {
                    Ok(0) => {
                        if !wait_writable(stream, ctx, mailbox).await {
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
                Ok(false) if wait_writable(stream, ctx, mailbox).await => {}
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
    fn hand_written_close_frame_is_well_formed() {
        let frame = close_frame(4409, "replaced");
        assert_eq!(frame[0], 0x88);
        assert_eq!(frame[1] as usize, 2 + "replaced".len());
        assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 4409);
        let long = close_frame(1009, &"x".repeat(500));
        assert_eq!(long.len(), 2 + 2 + 123);
    }
}
