//! Signal's protobuf framing, carried in WebSocket binary frames: one
//! `WebSocketMessage` per frame, holding a request or a response
//! (`proto/WebSocketResources.proto`).
//!
//! The decoder walks the frame's bytes with prost's wire primitives and
//! borrows every string and body from the frame until it builds the
//! framing-neutral [`Frame`] the session handles (one copy of each field,
//! no intermediate message). The encoders write straight into the output
//! buffer from borrowed parts.
//!
//! Invariants: [`decode`] never panics; it allocates at most the frame's
//! own size (bodies over `body_bytes_max` and more than
//! [`HEADERS_MAX`] headers are refused before they are copied); unknown
//! fields are skipped, groups and malformed wire data are
//! [`ProtoError::Unreadable`] (close 1007). A request without an id is
//! valid and is not answered; id 0 is an id like any other.

use crate::protocol::frame::{Frame, RequestOut, ResponseOut, WsRequest, WsResponse};
use prost::encoding::{decode_key, decode_varint, encode_key, encode_varint, WireType};

/// Most headers one frame may carry.
pub const HEADERS_MAX: usize = 64;

/// `WebSocketMessage.Type` REQUEST.
const TYPE_REQUEST: u64 = 1;
/// `WebSocketMessage.Type` RESPONSE.
const TYPE_RESPONSE: u64 = 2;

/// Why a binary frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Not a valid `WebSocketMessage` (or type UNKNOWN, or a request
    /// without verb or path, or a response without id or status): close 1007.
    #[error("not a valid WebSocketMessage: {0}")]
    Unreadable(&'static str),
    /// Readable, but a request's body is over the limit: answer 413 to `id`
    /// (or drop it, if the request has no id).
    #[error("request {id:?}: body too large")]
    BodyTooLarge {
        /// The request's id, if it has one.
        id: Option<u64>,
    },
}

/// One decoded binary frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The request or response, in the framing-neutral form.
    pub frame: Frame,
    /// False for a request without an id: it is handled, never answered.
    pub reply: bool,
}

/// One field off the wire, borrowing length-delimited data.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

/// Reads the next field of `buf`: its number and value.
fn next_field<'a>(buf: &mut &'a [u8]) -> Result<(u32, Field<'a>), ProtoError> {
    let unreadable = |_| ProtoError::Unreadable("malformed protobuf");
    let (tag, wire_type) = decode_key(buf).map_err(unreadable)?;
    let field = match wire_type {
        WireType::Varint => Field::Varint(decode_varint(buf).map_err(unreadable)?),
        WireType::LengthDelimited => {
            let len = decode_varint(buf).map_err(unreadable)?;
            let len = usize::try_from(len).ok().filter(|len| *len <= buf.len());
            let len = len.ok_or(ProtoError::Unreadable("length past the end of the frame"))?;
            let (value, rest) = buf.split_at(len);
            *buf = rest;
            Field::Bytes(value)
        }
        WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
            let len = if wire_type == WireType::SixtyFourBit { 8 } else { 4 };
            if buf.len() < len {
                return Err(ProtoError::Unreadable("fixed field past the end of the frame"));
            }
            *buf = &buf[len..];
            Field::Other
        }
        WireType::StartGroup | WireType::EndGroup => {
            return Err(ProtoError::Unreadable("groups are not used by this protocol"))
        }
    };
    Ok((tag, field))
}

fn as_str(bytes: &[u8]) -> Result<&str, ProtoError> {
    std::str::from_utf8(bytes).map_err(|_| ProtoError::Unreadable("string is not UTF-8"))
}

/// The borrowed fields shared by requests and responses.
#[derive(Default)]
struct Parts<'a> {
    id: Option<u64>,
    verb: Option<&'a str>,
    path: Option<&'a str>,
    status: Option<u64>,
    message: Option<&'a str>,
    body: Option<&'a [u8]>,
    headers: Vec<&'a str>,
}

impl<'a> Parts<'a> {
    fn push_header(&mut self, bytes: &'a [u8]) -> Result<(), ProtoError> {
        if self.headers.len() == HEADERS_MAX {
            return Err(ProtoError::Unreadable("too many headers"));
        }
        self.headers.push(as_str(bytes)?);
        Ok(())
    }

    fn headers(&self) -> Vec<String> {
        self.headers.iter().map(|header| header.to_string()).collect()
    }

    fn body(&self) -> Option<Vec<u8>> {
        self.body.map(<[u8]>::to_vec)
    }
}

/// Reads a `WebSocketRequestMessage`'s fields.
fn request_parts(mut buf: &[u8]) -> Result<Parts<'_>, ProtoError> {
    let mut parts = Parts::default();
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            (1, Field::Bytes(verb)) => parts.verb = Some(as_str(verb)?),
            (2, Field::Bytes(path)) => parts.path = Some(as_str(path)?),
            (3, Field::Bytes(body)) => parts.body = Some(body),
            (4, Field::Varint(id)) => parts.id = Some(id),
            (5, Field::Bytes(header)) => parts.push_header(header)?,
            (1..=5, _) => return Err(ProtoError::Unreadable("request field of the wrong type")),
            _ => {}
        }
    }
    Ok(parts)
}

/// Reads a `WebSocketResponseMessage`'s fields.
fn response_parts(mut buf: &[u8]) -> Result<Parts<'_>, ProtoError> {
    let mut parts = Parts::default();
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            (1, Field::Varint(id)) => parts.id = Some(id),
            (2, Field::Varint(status)) => parts.status = Some(status),
            (3, Field::Bytes(message)) => parts.message = Some(as_str(message)?),
            (4, Field::Bytes(body)) => parts.body = Some(body),
            (5, Field::Bytes(header)) => parts.push_header(header)?,
            (1..=5, _) => return Err(ProtoError::Unreadable("response field of the wrong type")),
            _ => {}
        }
    }
    Ok(parts)
}

/// Decodes one binary frame; `body_bytes_max` bounds a request's body.
pub fn decode(mut buf: &[u8], body_bytes_max: usize) -> Result<Decoded, ProtoError> {
    let (mut kind, mut request, mut response) = (None, None, None);
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            (1, Field::Varint(value)) => kind = Some(value),
            (2, Field::Bytes(bytes)) => request = Some(bytes),
            (3, Field::Bytes(bytes)) => response = Some(bytes),
            (1..=3, _) => return Err(ProtoError::Unreadable("message field of the wrong type")),
            _ => {}
        }
    }
    match kind {
        Some(TYPE_REQUEST) => {
            let parts = request_parts(request.ok_or(ProtoError::Unreadable("no request"))?)?;
            decode_request(parts, body_bytes_max)
        }
        Some(TYPE_RESPONSE) => {
            let parts = response_parts(response.ok_or(ProtoError::Unreadable("no response"))?)?;
            decode_response(parts)
        }
        _ => Err(ProtoError::Unreadable("type is neither REQUEST nor RESPONSE")),
    }
}

fn decode_request(parts: Parts<'_>, body_bytes_max: usize) -> Result<Decoded, ProtoError> {
    let verb = parts.verb.filter(|verb| !verb.is_empty());
    let verb = verb.ok_or(ProtoError::Unreadable("request without a verb"))?;
    let path = parts.path.filter(|path| path.starts_with('/'));
    let path = path.ok_or(ProtoError::Unreadable("request without a path"))?;
    if parts.body.is_some_and(|body| body.len() > body_bytes_max) {
        return Err(ProtoError::BodyTooLarge { id: parts.id });
    }
    let request = WsRequest {
        id: parts.id.unwrap_or(0),
        verb: verb.to_ascii_uppercase(),
        path: path.to_string(),
        body: parts.body(),
        headers: parts.headers(),
    };
    Ok(Decoded { frame: Frame::Request(request), reply: parts.id.is_some() })
}

fn decode_response(parts: Parts<'_>) -> Result<Decoded, ProtoError> {
    let id = parts.id.ok_or(ProtoError::Unreadable("response without an id"))?;
    let status = parts.status.ok_or(ProtoError::Unreadable("response without a status"))?;
    let status = u16::try_from(status)
        .ok()
        .filter(|status| (100..=599).contains(status))
        .ok_or(ProtoError::Unreadable("status is not an HTTP status code"))?;
    let response = WsResponse {
        id,
        status,
        message: parts.message.map(str::to_string),
        body: parts.body(),
        headers: parts.headers(),
    };
    Ok(Decoded { frame: Frame::Response(response), reply: true })
}

/// Bytes of a length-delimited field's key, length prefix and `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(len as u64) + len
}

fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

/// Writes `WebSocketMessage { type, <tag>: <inner> }` where `inner` has
/// `inner_len` bytes and is written by `write_inner`.
fn put_message(
    out: &mut Vec<u8>,
    kind: u64,
    inner_len: usize,
    write_inner: impl FnOnce(&mut Vec<u8>),
) {
    let tag = kind as u32 + 1;
    out.reserve(2 + delimited_len(tag, inner_len));
    put_varint(out, 1, kind);
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(inner_len as u64, out);
    let start = out.len();
    write_inner(out);
    debug_assert_eq!(out.len() - start, inner_len, "inner length computed exactly");
}

/// Appends the binary frame of a request whose body is `body_len` bytes
/// written by `write_body` (so an envelope is encoded in place).
pub fn write_request_with(
    out: &mut Vec<u8>,
    request: &RequestOut<'_>,
    body_len: Option<usize>,
    write_body: impl FnOnce(&mut Vec<u8>),
) {
    let headers_len: usize = request.headers.iter().map(|h| delimited_len(5, h.len())).sum();
    let inner_len = delimited_len(1, request.verb.len())
        + delimited_len(2, request.path.len())
        + body_len.map_or(0, |len| delimited_len(3, len))
        + prost::encoding::key_len(4)
        + prost::encoding::encoded_len_varint(request.id)
        + headers_len;
    put_message(out, TYPE_REQUEST, inner_len, |out| {
        put_bytes(out, 1, request.verb.as_bytes());
        put_bytes(out, 2, request.path.as_bytes());
        if let Some(len) = body_len {
            encode_key(3, WireType::LengthDelimited, out);
            encode_varint(len as u64, out);
            write_body(out);
        }
        put_varint(out, 4, request.id);
        for header in request.headers {
            put_bytes(out, 5, header.as_bytes());
        }
    });
}

/// Appends the binary frame of a request.
pub fn write_request(out: &mut Vec<u8>, request: &RequestOut<'_>) {
    let body = request.body;
    write_request_with(out, request, body.map(<[u8]>::len), |out| {
        out.extend_from_slice(body.unwrap_or_default())
    });
}

/// Appends the binary frame of a response.
pub fn write_response(out: &mut Vec<u8>, response: &ResponseOut<'_>) {
    let headers_len: usize = response.headers.iter().map(|h| delimited_len(5, h.len())).sum();
    let inner_len = prost::encoding::key_len(1)
        + prost::encoding::encoded_len_varint(response.id)
        + prost::encoding::key_len(2)
        + prost::encoding::encoded_len_varint(u64::from(response.status))
        + response.message.map_or(0, |message| delimited_len(3, message.len()))
        + response.body.map_or(0, |body| delimited_len(4, body.len()))
        + headers_len;
    put_message(out, TYPE_RESPONSE, inner_len, |out| {
        put_varint(out, 1, response.id);
        put_varint(out, 2, u64::from(response.status));
        if let Some(message) = response.message {
            put_bytes(out, 3, message.as_bytes());
        }
        if let Some(body) = response.body {
            put_bytes(out, 4, body);
        }
        for header in response.headers {
            put_bytes(out, 5, header.as_bytes());
        }
    });
}
