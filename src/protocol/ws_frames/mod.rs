//! WebSocket frames (RFC 6455), server side, parsed in place.
//!
//! [`FrameReader`] holds the bytes a client sent that are not yet consumed.
//! It parses each frame header with tungstenite's [`FrameHeader`], unmasks
//! the payload where it lies and hands out a span of it: a complete text
//! message costs no copy beyond the one from the read buffer into `input`.
//! Only a fragmented text message is assembled, in `message`.
//! [`begin_frame`] and [`end_frame`] write a server frame straight into the
//! connection's output buffer.
//!
//! Invariants: a frame or message over `frame_bytes_max` is refused as soon
//! as its header says so (nothing more of it is buffered); client frames
//! must be masked and use no reserved bits or opcodes; control frames are
//! final and at most 125 bytes; a text message is valid UTF-8; `input` is
//! released when drained, so an idle connection holds no buffer.

use std::io::Cursor;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Opcode of a text frame.
pub const OPCODE_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OPCODE_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OPCODE_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OPCODE_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OPCODE_PONG: u8 = 0xA;

/// The longest header of an unmasked (server) frame.
const SERVER_HEADER_BYTES_MAX: usize = 10;
/// The largest payload of a control frame.
const CONTROL_PAYLOAD_BYTES_MAX: u64 = 125;

/// Why the client's bytes cannot be read on: the connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A protocol violation (close 1002).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A frame or message over the limit (close 1009).
    #[error("message too big")]
    TooBig,
    /// A text message that is not UTF-8 (close 1007).
    #[error("invalid UTF-8")]
    BadUtf8,
}

impl WsError {
    /// The close code that reports this error to the client.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::TooBig => 1009,
            WsError::BadUtf8 => 1007,
        }
    }
}

/// Where a frame's payload lies in the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `input[start..end]`.
    Input {
        /// First byte of the payload.
        start: usize,
        /// One past its last byte.
        end: usize,
    },
    /// The assembled fragmented message.
    Assembled,
}

/// One frame (or whole message) read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A complete text message: read it with [`FrameReader::payload_mut`].
    Text(Span),
    /// A complete binary message: read it with [`FrameReader::payload_mut`].
    Binary(Span),
    /// A ping: answer with a pong carrying the same payload.
    Ping(Span),
    /// A close frame, with its code if it carried one.
    Close(Option<u16>),
}

/// The client's unconsumed bytes and a fragmented message in assembly.
#[derive(Debug, Default)]
pub struct FrameReader {
    input: Vec<u8>,
    /// Start of the unconsumed part of `input`.
    pos: usize,
    /// The fragments of a message so far.
    message: Vec<u8>,
    /// True between a non-final data frame and its final continuation.
    in_message: bool,
    /// True when the message in assembly is binary.
    message_binary: bool,
    /// True when `message` was handed out complete: cleared on the next read.
    message_done: bool,
}

impl FrameReader {
    /// Appends bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The bytes of `span`, unmasked.
    pub fn payload_mut(&mut self, span: Span) -> &mut [u8] {
        match span {
            Span::Input { start, end } => &mut self.input[start..end],
            Span::Assembled => &mut self.message,
        }
    }

    /// The next text or binary message, ping or close in what was fed; `None` when
    /// the rest is incomplete (feed more). Pongs are skipped.
    pub fn next(&mut self, frame_bytes_max: usize) -> Result<Option<Event>, WsError> {
        if std::mem::take(&mut self.message_done) {
            self.message = Vec::new();
        }
        loop {
            let available = &self.input[self.pos..];
            let mut cursor = Cursor::new(available);
            let parsed = FrameHeader::parse(&mut cursor)
                .map_err(|_| WsError::Protocol("reserved opcode"))?;
            let Some((header, payload_len)) = parsed else { return Ok(self.compact()) };
            let header_len = cursor.position() as usize;
            if payload_len > frame_bytes_max as u64 {
                return Err(WsError::TooBig);
            }
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            let Some(mask) = header.mask else {
                return Err(WsError::Protocol("client frames must be masked"));
            };
            if available.len() - header_len < payload_len as usize {
                return Ok(self.compact());
            }
            let start = self.pos + header_len;
            let end = start + payload_len as usize;
            self.pos = end;
            unmask(&mut self.input[start..end], mask);
            let span = Span::Input { start, end };
            let event = match header.opcode {
                OpCode::Control(control) => {
                    if !header.is_final || payload_len > CONTROL_PAYLOAD_BYTES_MAX {
                        return Err(WsError::Protocol("control frame fragmented or too long"));
                    }
                    self.on_control(control, span)?
                }
                OpCode::Data(data) => self.on_data(data, header.is_final, span, frame_bytes_max)?,
            };
            if event.is_some() {
                return Ok(event);
            }
        }
    }

    fn on_control(&mut self, control: Control, span: Span) -> Result<Option<Event>, WsError> {
        match control {
            Control::Ping => Ok(Some(Event::Ping(span))),
            Control::Pong => Ok(None),
            Control::Close => {
                close_code(self.payload_mut(span)).map(|code| Some(Event::Close(code)))
            }
            Control::Reserved(_) => Err(WsError::Protocol("reserved opcode")),
        }
    }

    fn on_data(
        &mut self,
        data: Data,
        is_final: bool,
        span: Span,
        frame_bytes_max: usize,
    ) -> Result<Option<Event>, WsError> {
        match data {
            Data::Text | Data::Binary if self.in_message => {
                Err(WsError::Protocol("new message inside a fragmented one"))
            }
            Data::Text | Data::Binary if is_final => {
                let binary = data == Data::Binary;
                if !binary {
                    std::str::from_utf8(self.payload_mut(span)).map_err(|_| WsError::BadUtf8)?;
                }
                Ok(Some(message_event(binary, span)))
            }
            Data::Text | Data::Binary | Data::Continue => {
                if data == Data::Continue && !self.in_message {
                    return Err(WsError::Protocol("continuation without a message"));
                }
                if data != Data::Continue {
                    self.message_binary = data == Data::Binary;
                }
                let Span::Input { start, end } = span else { unreachable!("frames lie in input") };
                if self.message.len() + (end - start) > frame_bytes_max {
                    return Err(WsError::TooBig);
                }
                self.message.extend_from_slice(&self.input[start..end]);
                self.in_message = !is_final;
                if !is_final {
                    return Ok(None);
                }
                if !self.message_binary {
                    std::str::from_utf8(&self.message).map_err(|_| WsError::BadUtf8)?;
                }
                self.message_done = true;
                Ok(Some(message_event(self.message_binary, Span::Assembled)))
            }
            Data::Reserved(_) => Err(WsError::Protocol("reserved opcode")),
        }
    }

    /// Drops the consumed bytes (releasing the buffer when nothing is left).
    fn compact(&mut self) -> Option<Event> {
        if self.pos == self.input.len() {
            self.input = Vec::new();
        } else if self.pos > 0 {
            self.input.drain(..self.pos);
        }
        self.pos = 0;
        None
    }
}

/// The event of a complete data message.
fn message_event(binary: bool, span: Span) -> Event {
    if binary {
        Event::Binary(span)
    } else {
        Event::Text(span)
    }
}

/// The code of a close frame's payload: none, or a code a peer may send.
fn close_code(payload: &[u8]) -> Result<Option<u16>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !CloseCode::from(code).is_allowed() {
                return Err(WsError::Protocol("close code not allowed"));
            }
            std::str::from_utf8(reason).map_err(|_| WsError::BadUtf8)?;
            Ok(Some(code))
        }
    }
}

/// XORs `payload` with the frame's mask, eight bytes at a time.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[index % 4];
    }
}

/// Starts a server frame at the end of `out`: returns where it starts.
/// Write the payload after it, then call [`end_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; SERVER_HEADER_BYTES_MAX]);
    start
}

/// Ends the frame begun at `start`: writes its (unmasked, final) header
/// and moves the payload up to it when the header is shorter than the room left.
pub fn end_frame(out: &mut Vec<u8>, start: usize, opcode: u8) {
    let payload_start = start + SERVER_HEADER_BYTES_MAX;
    let payload_len = out.len() - payload_start;
    let mut header = [0u8; SERVER_HEADER_BYTES_MAX];
    header[0] = 0x80 | opcode;
    let header_len = if payload_len < 126 {
        header[1] = payload_len as u8;
        2
    } else if payload_len <= usize::from(u16::MAX) {
        header[1] = 126;
        header[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    out[start..start + header_len].copy_from_slice(&header[..header_len]);
    out.copy_within(payload_start.., start + header_len);
    out.truncate(start + header_len + payload_len);
}

/// Appends one whole server frame.
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let start = begin_frame(out);
    out.extend_from_slice(payload);
    end_frame(out, start, opcode);
}

#[cfg(test)]
mod tests;
