//! Contact discovery payloads: `PUT /v1/accounts/discoverable` and
//! `PUT /v1/directory/lookup` bodies, validated, and the lookup answer.
//!
//! Invariants: a validated identifier is 1 to [`IDENTIFIER_BYTES_MAX`]
//! bytes without control characters; a validated lookup holds at most the
//! configured number of hashes, each exactly [`HASH_BYTES`] bytes, distinct,
//! in request order, each with the text the client sent (answers echo it).

use crate::protocol::base64;
use crate::protocol::payloads::PayloadError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Bytes of an identifier hash (the first 10 of its SHA-256).
pub const HASH_BYTES: usize = 10;

/// An identifier hash.
pub type IdentifierHash = [u8; HASH_BYTES];

/// Longest identifier accepted, in bytes.
pub const IDENTIFIER_BYTES_MAX: usize = 128;

/// `PUT /v1/accounts/discoverable` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverableRequest {
    /// What others find the account by, e.g. a phone number in E.164.
    pub identifier: String,
}

impl DiscoverableRequest {
    /// Checks the identifier's length and characters.
    pub fn validate(self) -> Result<String, PayloadError> {
        let identifier = self.identifier;
        if identifier.is_empty() || identifier.len() > IDENTIFIER_BYTES_MAX {
            return Err(PayloadError(format!(
                "identifier must be 1 to {IDENTIFIER_BYTES_MAX} bytes"
            )));
        }
        if identifier.chars().any(char::is_control) {
            return Err(PayloadError("identifier must not contain control characters".into()));
        }
        Ok(identifier)
    }
}

/// `PUT /v1/directory/lookup` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// Base64 identifier hashes.
    pub hashes: Vec<String>,
}

/// One hash to look up: as the client wrote it, and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupHash {
    /// The Base64 text sent (echoed in the answer).
    pub text: String,
    /// The decoded hash.
    pub hash: IdentifierHash,
}

impl LookupRequest {
    /// Decodes every hash (at most `hashes_max`), dropping repeats.
    pub fn validate(self, hashes_max: usize) -> Result<Vec<LookupHash>, PayloadError> {
        if self.hashes.len() > hashes_max {
            return Err(PayloadError(format!("at most {hashes_max} hashes per lookup")));
        }
        let mut seen = HashSet::with_capacity(self.hashes.len());
        let mut hashes = Vec::with_capacity(self.hashes.len());
        for text in self.hashes {
            let decoded = base64::decode(text.as_bytes()).ok();
            let Some(hash) = decoded.and_then(|bytes| IdentifierHash::try_from(bytes).ok()) else {
                return Err(PayloadError(format!(
                    "each hash must be Base64 of {HASH_BYTES} bytes (the first bytes of SHA-256)"
                )));
            };
            if seen.insert(hash) {
                hashes.push(LookupHash { text, hash });
            }
        }
        Ok(hashes)
    }
}

/// One discoverable match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The hash as the client sent it.
    pub hash: String,
    /// The account discoverable by it.
    pub uuid: String,
}

/// `PUT /v1/directory/lookup` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookupResponse {
    /// Matches, in request order.
    pub contacts: Vec<Contact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bounded_and_printable() {
        let ok = DiscoverableRequest { identifier: "+15551234567".into() };
        assert_eq!(ok.validate().unwrap(), "+15551234567");
        for bad in ["", "a\nb", "\u{0}", &"9".repeat(IDENTIFIER_BYTES_MAX + 1)] {
            assert!(DiscoverableRequest { identifier: bad.into() }.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lookups_decode_ten_byte_hashes_and_drop_repeats() {
        let a = base64::encode(&[1; HASH_BYTES]);
        let b = base64::encode(&[2; HASH_BYTES]);
        let request = LookupRequest { hashes: vec![a.clone(), b.clone(), a.clone()] };
        let hashes = request.validate(3).unwrap();
        assert_eq!(hashes.len(), 2);
        assert_eq!((hashes[0].text.as_str(), hashes[0].hash), (a.as_str(), [1; HASH_BYTES]));
        assert_eq!(hashes[1].hash, [2; HASH_BYTES]);
    }

    #[test]
    fn bad_or_too_many_hashes_are_refused() {
        let short = base64::encode(&[1; 9]);
        let long = base64::encode(&[1; 11]);
        for bad in [short, long, "not base64!".into(), String::new()] {
            assert!(LookupRequest { hashes: vec![bad.clone()] }.validate(10).is_err(), "{bad}");
        }
        let many = vec![base64::encode(&[1; HASH_BYTES]); 3];
        assert!(LookupRequest { hashes: many }.validate(2).is_err());
    }
}
