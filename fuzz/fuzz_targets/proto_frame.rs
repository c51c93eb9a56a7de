//! Any bytes as a WebSocket binary frame (Signal's protobuf framing):
//! decoding never panics; whatever decodes re-encodes to a frame that
//! decodes to the same value, and prost reads our encoding too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use switchboard::protocol::frame::{Frame, RequestOut, ResponseOut};
use switchboard::protocol::proto::frame::{decode, write_request, write_response};
use switchboard::protocol::proto::messages::WebSocketMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = decode(data, 64 * 1024) else { return };
    let mut out = Vec::new();
    match &decoded.frame {
        Frame::Request(request) => write_request(
            &mut out,
            &RequestOut {
                id: request.id,
                verb: &request.verb,
                path: &request.path,
                body: request.body.as_deref(),
                headers: &request.headers,
            },
        ),
        Frame::Response(response) => write_response(
            &mut out,
            &ResponseOut {
                id: response.id,
                status: response.status,
                message: response.message.as_deref(),
                body: response.body.as_deref(),
                headers: &response.headers,
            },
        ),
    }
    let again = decode(&out, 64 * 1024).expect("re-encoded frame decodes");
    assert_eq!(again.frame, decoded.frame);
    WebSocketMessage::decode(&out[..]).expect("prost reads our encoding");
});
