//! Any bytes as a `PUT /v1/directory/lookup` or `PUT /v1/accounts/discoverable`
//! body: parsing and validation never panic; an accepted lookup holds
//! distinct 10-byte hashes within the bound, an accepted identifier is
//! 1 to 128 bytes without control characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::discovery::{DiscoverableRequest, LookupRequest, IDENTIFIER_BYTES_MAX};
use switchboard::protocol::payloads::parse_json;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(hashes) = parse_json::<LookupRequest>(&mut bytes).and_then(|l| l.validate(16)) {
        assert!(hashes.len() <= 16);
        let mut distinct: Vec<_> = hashes.iter().map(|h| h.hash).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len());
    }
    let mut bytes = data.to_vec();
    let parsed = parse_json::<DiscoverableRequest>(&mut bytes);
    if let Ok(identifier) = parsed.and_then(DiscoverableRequest::validate) {
        assert!(!identifier.is_empty() && identifier.len() <= IDENTIFIER_BYTES_MAX);
        assert!(!identifier.chars().any(char::is_control));
    }
});
