//! Any bytes as a push-token, challenge or verification-session body:
//! parsing and validation never panic, and an accepted token is of its
//! alphabet and within its bound (so it is safe in a URL path and a JSON
//! string).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::payloads::parse_json;
use switchboard::protocol::push::{
    ApnRegistration, ChallengeAnswer, GcmRegistration, VerificationSessionRequest,
    VerificationSessionUpdate, APN_TOKEN_LEN_MAX, FCM_TOKEN_LEN_MAX,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = parse_json::<ApnRegistration>(&mut data.to_vec()).and_then(|r| r.validate()) {
        assert!(!token.is_empty() && token.len() <= APN_TOKEN_LEN_MAX);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Ok(token) = parse_json::<GcmRegistration>(&mut data.to_vec()).and_then(|r| r.validate()) {
        assert!(!token.is_empty() && token.len() <= FCM_TOKEN_LEN_MAX);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b)));
    }
    let _ = parse_json::<ChallengeAnswer>(&mut data.to_vec());
    let _ = parse_json::<VerificationSessionRequest>(&mut data.to_vec());
    let _ = parse_json::<VerificationSessionUpdate>(&mut data.to_vec());
});
