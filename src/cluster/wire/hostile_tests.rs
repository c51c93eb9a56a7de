//! Hostile bytes: empty, too long, foreign versions, every truncation of
//! every sample, lying length prefixes, and thousands of random and mutated
//! inputs (seeded xorshift). Decoding must answer a typed error or a value
//! that re-encodes to the same value, and never panic.

use super::samples::{self, Rng};
use super::*;

/// What decoding `bytes` as a call and as an answer gives, checking that
/// whatever decodes re-encodes and decodes to the same value. True when
/// either decoded.
fn decodes_stably(bytes: &[u8]) -> bool {
    let call = decode_call(bytes).map(|(header, call)| {
        let again = encode_call(header.epoch, header.request_id, &call);
        let (header_again, call_again) = decode_call(&again).expect("a re-encoded call decodes");
        assert_eq!(header_again, header);
        assert_eq!(format!("{call_again:?}"), format!("{call:?}"));
    });
    let answer = decode_answer(bytes).map(|(header, answer)| {
        let again = encode_answer(header.epoch, header.request_id, &answer);
        let (header_again, answer_again) = decode_answer(&again).expect("re-encoded answer");
        assert_eq!(header_again, header);
        assert_eq!(format!("{answer_again:?}"), format!("{answer:?}"));
    });
    call.is_ok() || answer.is_ok()
}

/// Every sample call and answer, encoded.
fn sample_encodings() -> Vec<Vec<u8>> {
    let calls = samples::calls().into_iter().map(|call| encode_call(7, 99, &call));
    let answers = samples::answers().into_iter().map(|answer| encode_answer(7, 99, &answer));
    calls.chain(answers).collect()
}

#[test]
fn empty_long_and_foreign_versions_are_typed_errors() {
    assert_eq!(decode_call(&[]).err(), Some(WireError::Empty));
    assert_eq!(decode_answer(&[]).err(), Some(WireError::Empty));
    let long = vec![WIRE_VERSION; WIRE_BYTES_MAX + 1];
    assert_eq!(decode_call(&long).err(), Some(WireError::TooLong(WIRE_BYTES_MAX + 1)));
    assert_eq!(decode_answer(&long).err(), Some(WireError::TooLong(WIRE_BYTES_MAX + 1)));
    for bytes in sample_encodings() {
        for version in [0, 2, 0x0a, 255] {
            let mut foreign = bytes.clone();
            foreign[0] = version;
            let expected = Some(WireError::UnsupportedVersion(version));
            assert_eq!(decode_call(&foreign).err(), expected);
            assert_eq!(decode_answer(&foreign).err(), expected);
        }
    }
}

/// The oneof is the last field and length-delimited, so every strict
/// prefix of a call or answer lacks a required part.
#[test]
fn every_truncation_is_refused() {
    let calls = samples::calls().into_iter().map(|call| encode_call(7, 99, &call));
    for bytes in calls {
        for len in 0..bytes.len() {
            assert!(decode_call(&bytes[..len]).is_err(), "{len} of {bytes:?}");
        }
    }
    for answer in samples::answers() {
        let bytes = encode_answer(7, 99, &answer);
        for len in 0..bytes.len() {
            assert!(decode_answer(&bytes[..len]).is_err(), "{len} of {answer:?}");
        }
    }
    assert_eq!(decode_call(&[WIRE_VERSION]).err(), Some(WireError::ZeroEpoch));
    let no_call = encode_call(7, 99, &samples::calls()[0]);
    assert_eq!(decode_call(&no_call[..21]).err(), Some(WireError::Missing("call")));
}

/// Length prefixes far beyond the input are refused before anything is
/// allocated for them (prost checks each against the bytes left).
#[test]
fn oversize_length_prefixes_are_refused() {
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f]; // 2^32 - 1
    for key in [0x12, 0x2a, 0x52, 0x6a] {
        // Field 2 (request id), 5 (send), 10 (hashes), 13 (a session id).
        let mut bytes = vec![WIRE_VERSION, 0x08, 0x01, key];
        bytes.extend(huge);
        bytes.extend([0; 64]);
        assert!(matches!(decode_call(&bytes), Err(WireError::Malformed(_))), "{key:#x}");
        assert!(matches!(decode_answer(&bytes), Err(WireError::Malformed(_))), "{key:#x}");
    }
    let mut send = encode_call(7, 99, &samples::typical_send(160));
    let content = send.len() - 216 - 2 - 9; // the content's 2-byte length
    assert_eq!(&send[content..content + 2], &[0xd8, 0x01]);
    send[content..content + 2].copy_from_slice(&[0xff, 0x7f]);
    assert!(matches!(decode_call(&send), Err(WireError::Malformed(_))));
    let mut varint = vec![WIRE_VERSION, 0x08];
    varint.extend([0xff; 11]);
    assert!(matches!(decode_call(&varint), Err(WireError::Malformed(_))));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5eed_2021);
    let mut decoded = 0;
    for _ in 0..5000 {
        let len = rng.below(300);
        let mut bytes = rng.bytes(len);
        if let Some(first) = bytes.first_mut().filter(|_| rng.below(4) != 0) {
            *first = WIRE_VERSION;
        }
        decoded += usize::from(decodes_stably(&bytes));
    }
    println!("{decoded} of 5000 random inputs decoded");
}

/// Valid encodings with a few bytes changed, inserted or removed reach far
/// deeper than random bytes: most still parse as protobuf.
#[test]
fn mutated_samples_never_panic() {
    let encodings = sample_encodings();
    let mut rng = Rng(0xfeed_0021);
    let (mut tried, mut decoded) = (0, 0);
    for bytes in &encodings {
        for _ in 0..100 {
            let mut mutated = bytes.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut mutated, &mut rng);
            }
            tried += 1;
            decoded += usize::from(decodes_stably(&mutated));
        }
    }
    println!("{decoded} of {tried} mutated samples decoded");
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    if bytes.len() < 2 {
        return;
    }
    // Keep the version byte: a foreign version is tested on its own.
    let at = 1 + rng.below(bytes.len() - 1);
    match rng.below(4) {
        0 => bytes[at] = rng.next() as u8,
        1 => bytes[at] ^= 1 << rng.below(8),
        2 => bytes.insert(at, rng.next() as u8),
        _ => {
            bytes.remove(at);
        }
    }
}
