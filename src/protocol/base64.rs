//! Base64 (standard alphabet) for bodies, keys and content on the wire.
//!
//! Decoding accepts padded input and, like Signal's clients produce at times,
//! unpadded input; anything else is a [`Base64Error`].

/// Input that is not Base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64")]
pub struct Base64Error;

/// Encodes bytes with the standard padded alphabet.
pub fn encode(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Appends the standard padded encoding of `bytes` to `out`.
pub fn encode_append(bytes: &[u8], out: &mut Vec<u8>) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// Decodes standard Base64, padded or not.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    if text.len().is_multiple_of(4) {
        base64_simd::STANDARD.decode_to_vec(text).map_err(|_| Base64Error)
    } else {
        base64_simd::STANDARD_NO_PAD.decode_to_vec(text).map_err(|_| Base64Error)
    }
}

/// Checks that `text` is standard Base64 (padded or not) without decoding
/// it, and returns it padded: content the server passes on as received.
pub fn checked_padded(mut text: String) -> Result<String, Base64Error> {
    if text.len().is_multiple_of(4) {
        base64_simd::STANDARD.check(text.as_bytes()).map_err(|_| Base64Error)?;
        return Ok(text);
    }
    base64_simd::STANDARD_NO_PAD.check(text.as_bytes()).map_err(|_| Base64Error)?;
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    Ok(text)
}

/// The decoded length of `encoded_len` Base64 characters, rounded up; lets a
/// caller refuse an over-long body before decoding it.
pub fn decoded_len_max(encoded_len: usize) -> usize {
    encoded_len.div_ceil(4) * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(decode(encode(&bytes).as_bytes()).unwrap(), bytes);
        }
    }

    #[test]
    fn accepts_unpadded() {
        assert_eq!(decode(b"YWI").unwrap(), b"ab");
    }

    #[test]
    fn checking_agrees_with_decoding_and_pads() {
        assert_eq!(checked_padded("YWI".into()).unwrap(), "YWI=");
        assert_eq!(checked_padded("YWJj".into()).unwrap(), "YWJj");
        assert_eq!(checked_padded(String::new()).unwrap(), "");
        for bad in ["*&^%", "YW=I", "Y", "YWJj\n", "YQ==YQ=="] {
            assert_eq!(checked_padded(bad.into()), Err(Base64Error), "{bad:?}");
            assert_eq!(decode(bad.as_bytes()), Err(Base64Error), "{bad:?}");
        }
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(91)).collect();
            let unpadded = base64_simd::STANDARD_NO_PAD.encode_to_string(&bytes);
            assert_eq!(checked_padded(unpadded).unwrap(), encode(&bytes));
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [&b"*&^%"[..], b"YW=I", b"Y", b"YWJj\n", b"\xff\xfe\xfd\xfc"] {
            assert_eq!(decode(bad), Err(Base64Error), "{bad:?}");
        }
    }

    #[test]
    fn decoded_len_bound_holds() {
        for len in 0..40 {
            let encoded = encode(&vec![7u8; len]);
            assert!(decoded_len_max(encoded.len()) >= len);
        }
    }
}
