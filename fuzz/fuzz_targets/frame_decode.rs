//! Any bytes as a WebSocket text frame: decoding never panics, and whatever
//! decodes re-encodes to a frame that decodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::frame::{decode, encode_request, encode_response, Frame};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(frame) = decode(&mut bytes, 64 * 1024) {
        let text = match &frame {
            Frame::Request(request) => encode_request(request),
            Frame::Response(response) => encode_response(response),
        };
        let again = decode(&mut text.into_bytes(), 64 * 1024).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
});
