//! A connection's framing (JSON text or Signal's protobuf binary frames):
//! which one an upgrade asks for, and the decode and encode of one message
//! in it. The session and the provisioning socket see only the
//! framing-neutral [`Frame`].
//!
//! Choice at the upgrade, never later (Signal clients do not speak first:
//! the server sends the backlog right after the upgrade): an explicit
//! `?framing=` query parameter or `X-Switchboard-Framing` header wins;
//! otherwise a stock Signal client's User-Agent (`libsignal/`,
//! `Signal-Android/`, `Signal-Desktop/`, `Signal-iOS/`) selects protobuf;
//! otherwise the configured `websocket_framing` (default `json`).
//!
//! Invariants: a connection never mixes framings (a message of the other
//! kind closes it with 1003); a message that cannot be read closes it with
//! 1007; headers are written as `Name: value` in JSON and `Name:value` in
//! protobuf, as Signal writes them.

use crate::accounts::AuthedDevice;
use crate::config::Framing;
use crate::http::head::Head;
use crate::http::request::{is_stock_client, Request};
use crate::http::response::Response;
use crate::http::router;
use crate::protocol::frame::{self, Frame, FrameError, RequestOut, ResponseOut, WsRequest};
use crate::protocol::proto::frame::{self as proto_frame, Decoded, ProtoError};
use crate::protocol::ws_frames::{OPCODE_BINARY, OPCODE_TEXT};
use crate::shard::ShardCtx;
use std::rc::Rc;

/// The explicit choice's header (lower case, as heads store names).
pub const FRAMING_HEADER: &str = "x-switchboard-framing";
/// The explicit choice's query parameter.
pub const FRAMING_PARAM: &str = "framing";
/// The framing an upgrade asks for; the error is the 400 to answer.
pub fn choose(head: &Head, configured: Framing) -> Result<Framing, Response> {
    let parse =
        |text: &str| text.parse::<Framing>().map_err(|reason| Response::error(400, &reason));
    let from_query = form_urlencoded::parse(head.query.as_bytes())
        .find(|(key, _)| key == FRAMING_PARAM)
        .map(|(_, value)| parse(&value))
        .transpose()?;
    let from_header = head.header(FRAMING_HEADER).map(parse).transpose()?;
    match (from_query, from_header) {
        (Some(query), Some(header)) if query != header => {
            Err(Response::error(400, "the framing query parameter and header disagree"))
        }
        (Some(chosen), _) | (None, Some(chosen)) => Ok(chosen),
        (None, None) if is_stock_client(head.header("user-agent")) => Ok(Framing::Protobuf),
        (None, None) => Ok(configured),
    }
}

/// The WebSocket opcode of this framing's messages.
pub fn opcode(framing: Framing) -> u8 {
    match framing {
        Framing::Json => OPCODE_TEXT,
        Framing::Protobuf => OPCODE_BINARY,
    }
}

/// A `name`/`value` header as this framing writes it.
pub fn header(framing: Framing, name: &str, value: &str) -> String {
    match framing {
        Framing::Json => format!("{name}: {value}"),
        Framing::Protobuf => format!("{name}:{value}"),
    }
}

/// What one received message holds.
#[derive(Debug)]
pub enum Message {
    /// A request or response; `reply` is false for a request not to answer.
    Frame {
        /// The request or response.
        frame: Frame,
        /// False for a protobuf request without an id.
        reply: bool,
    },
    /// Its id was readable and the rest is wrong: answer `status` to `id`.
    Invalid {
        /// The id to answer.
        id: u64,
        /// 400 or 413.
        status: u16,
        /// Why, for the response's message.
        reason: &'static str,
    },
    /// Unusable: close with `code`.
    Fail {
        /// 1003 (the other framing), 1007 (unreadable) or 1009 (too big).
        code: u16,
        /// Why, for the close frame.
        reason: String,
    },
}

/// Decodes one received message of kind `binary` (`payload` may be
/// scrambled: the JSON decoder parses in place).
pub fn decode(
    framing: Framing,
    binary: bool,
    payload: &mut [u8],
    body_bytes_max: usize,
) -> Message {
    let fail = |code, reason: &str| Message::Fail { code, reason: reason.to_string() };
    match (framing, binary) {
        (Framing::Json, false) => match frame::decode(payload, body_bytes_max) {
            Ok(frame) => Message::Frame { frame, reply: true },
            Err(FrameError::Unreadable(reason)) => fail(1007, reason),
            Err(FrameError::Invalid { id, status, reason }) => {
                Message::Invalid { id, status, reason }
            }
        },
        (Framing::Protobuf, true) => match proto_frame::decode(payload, body_bytes_max) {
            Ok(Decoded { frame, reply }) => Message::Frame { frame, reply },
            Err(ProtoError::Unreadable(reason)) => fail(1007, reason),
            Err(ProtoError::BodyTooLarge { id: Some(id) }) => {
                Message::Invalid { id, status: 413, reason: "body too large" }
            }
            Err(ProtoError::BodyTooLarge { id: None }) => fail(1009, "body too large"),
        },
        (Framing::Json, true) => fail(1003, "binary frame on a JSON-framed connection"),
        (Framing::Protobuf, false) => fail(1003, "text frame on a protobuf-framed connection"),
    }
}

/// Appends the payload of a request frame in `framing`.
pub fn write_request(framing: Framing, out: &mut Vec<u8>, request: &RequestOut<'_>) {
    match framing {
        Framing::Json => frame::write_request(out, request),
        Framing::Protobuf => proto_frame::write_request(out, request),
    }
}

/// Appends the payload of a response frame in `framing`.
pub fn write_response(framing: Framing, out: &mut Vec<u8>, response: &ResponseOut<'_>) {
    match framing {
        Framing::Json => frame::write_response(out, response),
        Framing::Protobuf => proto_frame::write_response(out, response),
    }
}

/// Whether a client's `status` acknowledges a server request: 200 in the
/// JSON framing (the spec), any 2xx in Signal's protobuf framing.
pub fn acknowledges(framing: Framing, status: u16) -> bool {
    match framing {
        Framing::Json => status == 200,
        Framing::Protobuf => (200..300).contains(&status),
    }
}

/// Routes a device's framed request and encodes the answer in `framing`
/// (empty when the request is not to be answered). Envelope types in a
/// protobuf connection's sends are read in Signal's numbering.
pub async fn answer(
    ctx: &Rc<ShardCtx>,
    device: AuthedDevice,
    framing: Framing,
    request: WsRequest,
    reply: bool,
) -> Vec<u8> {
    let id = request.id;
    let body = request.body.unwrap_or_default();
    let signal_numbering = framing == Framing::Protobuf;
    let http_request =
        Request::from_frame(request.verb, &request.path, &request.headers, body, signal_numbering);
    let response = router::dispatch(ctx, Some(device), http_request).await;
    if reply {
        encode_routed_response(framing, id, &response)
    } else {
        Vec::new()
    }
}

/// The payload of the response frame answering request `id` with `response`.
fn encode_routed_response(framing: Framing, id: u64, response: &Response) -> Vec<u8> {
    let headers: Vec<String> = response
        .frame_header_pairs()
        .into_iter()
        .map(|(name, value)| header(framing, name, &value))
        .collect();
    let mut out = Vec::with_capacity(64 + response.body.len() * 4 / 3);
    let response_out = ResponseOut {
        id,
        status: response.status,
        message: Some(crate::http::response::reason(response.status)),
        body: (!response.body.is_empty()).then_some(&response.body[..]),
        headers: &headers,
    };
    write_response(framing, &mut out, &response_out);
    out
}
