//! Round trips of every call, outcome and answer; the header; the one lossy
//! mapping (`StoreError::Rocks`); and the size of typical calls.
//!
//! `Call` and `Outcome` do not derive `PartialEq` (their refusals hold a
//! `StoreError`), so values are compared by their `Debug` text, which shows
//! every field.

use super::samples::{self, Rng};
use super::*;
use crate::accounts::SendRefused;
use crate::store::StoreError;

fn debug(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}")
}

#[test]
fn every_call_variant_round_trips() {
    let calls = samples::calls();
    let mut seen = [false; samples::CALL_VARIANTS];
    let mut rng = Rng(21);
    for call in &calls {
        seen[samples::call_variant(call)] = true;
        let (epoch, request_id) = (1 + rng.next() % 1000, u128::from(rng.next()) << 64 | 7);
        let bytes = encode_call(epoch, request_id, call);
        assert_eq!(bytes[0], WIRE_VERSION);
        let (header, back) = decode_call(&bytes).unwrap();
        assert_eq!(header, Header { version: WIRE_VERSION, epoch, request_id });
        assert_eq!(debug(&back), debug(call));
        assert_eq!(encode_call(epoch, request_id, &back), bytes, "{call:?}");
    }
    assert!(seen.iter().all(|&seen| seen), "a Call variant has no sample: {seen:?}");
    println!("{} calls round-trip", calls.len());
}

#[test]
fn every_outcome_variant_round_trips() {
    let outcomes = samples::outcomes();
    let mut seen = [false; samples::OUTCOME_VARIANTS];
    for outcome in &outcomes {
        seen[samples::outcome_variant(outcome)] = true;
        let bytes = encode_outcome(3, u128::MAX, outcome);
        let (header, back) = decode_answer(&bytes).unwrap();
        assert_eq!(header, Header { version: WIRE_VERSION, epoch: 3, request_id: u128::MAX });
        let Answer::Done(back) = back else { panic!("{outcome:?} came back as {back:?}") };
        assert_eq!(debug(&back), debug(outcome));
        assert_eq!(encode_outcome(3, u128::MAX, &back), bytes);
    }
    assert!(seen.iter().all(|&seen| seen), "an Outcome variant has no sample: {seen:?}");
    println!("{} outcomes round-trip", outcomes.len());
}

#[test]
fn every_answer_round_trips_and_done_encodes_as_its_outcome() {
    for answer in samples::answers() {
        let bytes = encode_answer(0, 42, &answer);
        let (header, back) = decode_answer(&bytes).unwrap();
        assert_eq!((header.epoch, header.request_id), (0, 42));
        assert_eq!(debug(&back), debug(&answer));
        if let Answer::Done(outcome) = &answer {
            assert_eq!(encode_outcome(0, 42, outcome), bytes);
        }
    }
}

#[test]
fn header_extremes_round_trip() {
    let call = Call::ConsumeVerification { id: samples::uuid(1) };
    for (epoch, request_id) in [(1, 0), (u64::MAX, u128::MAX), (1 << 40, 1 << 127)] {
        let (header, _) = decode_call(&encode_call(epoch, request_id, &call)).unwrap();
        assert_eq!((header.epoch, header.request_id), (epoch, request_id));
    }
}

#[test]
#[should_panic(expected = "epoch is at least 1")]
fn encoding_a_call_without_a_map_is_a_bug() {
    encode_call(0, 1, &Call::ConsumeVerification { id: samples::uuid(1) });
}

#[test]
fn unauthorized_reasons_keep_their_text_and_unknown_ones_stay_401() {
    for reason in refusal::UNAUTHORIZED_REASONS {
        let outcome = Outcome::MessageAccepted(Err(SendRefused::Unauthorized(reason)));
        let (_, back) = decode_answer(&encode_outcome(1, 1, &outcome)).unwrap();
        assert_eq!(debug(&back), debug(&Answer::Done(outcome)));
    }
    let outcome = Outcome::MessageAccepted(Err(SendRefused::Unauthorized("a new reason")));
    let (_, back) = decode_answer(&encode_outcome(1, 1, &outcome)).unwrap();
    let expected = SendRefused::Unauthorized(refusal::UNAUTHORIZED_OTHER);
    assert_eq!(debug(&back), debug(&Answer::Done(Outcome::MessageAccepted(Err(expected)))));
}

/// A real RocksDB error (opening a database under a regular file) crosses
/// as `WriteFailed` with the same message: both answer 503.
#[test]
fn a_rocksdb_error_arrives_as_write_failed_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = rocksdb::DB::open_default(file.join("db")).expect_err("cannot open under a file");
    let message = error.to_string();
    let outcome = Outcome::MessageAccepted(Err(SendRefused::Storage(StoreError::Rocks(error))));
    let (_, back) = decode_answer(&encode_outcome(1, 1, &outcome)).unwrap();
    let Answer::Done(Outcome::MessageAccepted(Err(SendRefused::Storage(back)))) = back else {
        panic!("{back:?}")
    };
    assert_eq!(debug(&back), debug(&StoreError::WriteFailed(message)));
}

/// The size of a typical send (160 bytes of content, Base64: 216
/// characters) and of a few others, printed for the record.
#[test]
fn a_typical_send_stays_small() {
    let epoch = 12;
    let request_id = u128::MAX / 3;
    for content_bytes in [120, 160] {
        let call = samples::typical_send(content_bytes);
        let Call::SendMessage { send, .. } = &call else { unreachable!() };
        let content_len = send.messages[0].content.len();
        let len = encode_call(epoch, request_id, &call).len();
        println!("SendMessage, {content_bytes} B content ({content_len} B Base64): {len} B");
        assert!(len <= content_len + 90, "{len} bytes for {content_len} of content");
    }
    assert!(encode_call(epoch, request_id, &samples::typical_send(120)).len() < 300);
    for call in samples::calls() {
        println!("{:>5} B  {}", encode_call(epoch, request_id, &call).len(), short(&call));
    }
    for answer in [Answer::Done(Outcome::MessageAccepted(Ok(()))), Answer::Unavailable] {
        println!("{:>5} B  {}", encode_answer(epoch, request_id, &answer).len(), short(&answer));
    }
}

fn short(value: &impl std::fmt::Debug) -> String {
    debug(value).chars().take(60).collect()
}
