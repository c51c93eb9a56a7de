//! Any bytes as a node's admin request (a partition move or one of its
//! steps) or reply: decoding never panics, and what decodes re-encodes to
//! bytes that decode to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::cluster::moves::messages::{decode, encode, AdminReply, AdminRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<AdminRequest>(data) {
        assert_eq!(decode::<AdminRequest>(&encode(&request)).as_ref(), Ok(&request));
    }
    if let Ok(reply) = decode::<AdminReply>(data) {
        assert_eq!(decode::<AdminReply>(&encode(&reply)).as_ref(), Ok(&reply));
    }
});
