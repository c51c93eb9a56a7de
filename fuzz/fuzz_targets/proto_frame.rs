//! Any bytes as a WebSocket binary frame (Signal's protobuf framing):
//! decoding never panics; whatever decodes re-encodes to a frame that
//! decodes to the same value, and prost reads our encoding too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use switchboard::protocol::frame::Frame;
use switchboard::protocol::proto::frame::{decode, write_request, write_response};
use switchboard::protocol::proto::messages::WebSocketMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = decode(data, 64 * 1024) else { return };
    let mut out = Vec::new();
    match &decoded.frame {
        Frame::Request(request) => write_request(&mut out, &request.to_out()),
        Frame::Response(response) => write_response(&mut out, &response.to_out()),
    }
    let again = decode(&out, 64 * 1024).expect("re-encoded frame decodes");
    assert_eq!(again.frame, decoded.frame);
    WebSocketMessage::decode(&out[..]).expect("prost reads our encoding");
});
