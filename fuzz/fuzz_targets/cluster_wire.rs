//! Any bytes as a call or an answer between nodes (the NATS request and
//! reply of cluster mode): decoding never panics, and whatever decodes
//! re-encodes to bytes that decode to the same header and value (compared
//! by `Debug`: the messages do not derive `PartialEq`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::cluster::wire::{
    decode_answer, decode_call, encode_answer, encode_call, WIRE_BYTES_MAX, WIRE_VERSION,
};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, call)) = decode_call(data) {
        assert!(data.len() <= WIRE_BYTES_MAX && data[0] == WIRE_VERSION);
        assert!(header.epoch >= 1);
        let again = encode_call(header.epoch, header.request_id, &call);
        let (header_again, call_again) = decode_call(&again).expect("a re-encoded call decodes");
        assert_eq!(header_again, header);
        assert_eq!(format!("{call_again:?}"), format!("{call:?}"));
    }
    if let Ok((header, answer)) = decode_answer(data) {
        assert!(data.len() <= WIRE_BYTES_MAX && data[0] == WIRE_VERSION);
        let again = encode_answer(header.epoch, header.request_id, &answer);
        let (header_again, answer_again) =
            decode_answer(&again).expect("a re-encoded answer decodes");
        assert_eq!(header_again, header);
        assert_eq!(format!("{answer_again:?}"), format!("{answer:?}"));
    }
});
