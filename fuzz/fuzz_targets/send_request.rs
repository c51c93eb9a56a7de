//! Any bytes as a `PUT /v1/messages` body: parsing and validation never
//! panic, and an accepted request names each device once with a valid type
//! and content that is padded Base64 (kept as received, never decoded by
//! the server: it must decode).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::base64;
use switchboard::protocol::envelope::{SendRequest, ENVELOPE_TYPES};
use switchboard::protocol::payloads::parse_json;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(send) = parse_json::<SendRequest>(&mut bytes).and_then(SendRequest::validate) {
        let mut devices: Vec<u32> = send.messages.iter().map(|m| m.device_id).collect();
        devices.sort_unstable();
        devices.dedup();
        assert_eq!(devices.len(), send.messages.len());
        assert!(send.messages.iter().all(|m| ENVELOPE_TYPES.contains(&m.kind)));
        assert!(send
            .messages
            .iter()
            .all(|m| m.content.len() % 4 == 0 && base64::decode(m.content.as_bytes()).is_ok()));
    }
});
