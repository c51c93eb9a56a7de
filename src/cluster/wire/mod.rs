//! The binary encoding of calls between nodes: a [`Call`] with its header
//! (format version, map epoch, request id) as a NATS request, and the
//! [`Answer`] (the owner's [`Outcome`], a wrong owner, or unavailable) as
//! its reply.
//!
//! Encoding, format version 1: one byte [`WIRE_VERSION`], then one protobuf
//! message (prost, schema in `frames` and `answer_frames`): `CallFrame` for
//! a call, `AnswerFrame` for an answer. The version byte sits outside the
//! protobuf so a node refuses another version before reading any field.
//! Calls and answers travel on different subjects (request, reply inbox),
//! so the two frames need no tag telling them apart.
//!
//! What crosses is exactly what the local path passes over the rings: the
//! serving node runs the same owner-side code and its answer maps to the
//! same status and body. One mapping is lossy: a `StoreError::Rocks`
//! arrives as `StoreError::WriteFailed` with the same message (a
//! `rocksdb::Error` cannot be built outside its crate); both answer 503.
//! An `io::Error` inside `StoreError::DataDir` arrives as
//! `io::Error::other` with the same text.
//!
//! Invariants: decoding never panics on any input and allocates no more
//! than its input's length allows (prost checks every length prefix against
//! the bytes left; the input is at most [`WIRE_BYTES_MAX`]); what decodes is
//! a value the domain types allow (UUIDs of 16 bytes, device ids 1 to 127,
//! known enum values, the bounds the HTTP layer validated), else a typed
//! [`WireError`]; `decode(encode(x))` is `x` for every value the rings carry.
//!
//! Imports: `shard` (the messages), `protocol`, `accounts`, `directory`,
//! `push`, `store` (what the messages carry).

mod answer_frames;
mod call;
mod field;
mod format;
mod frames;
mod outcome;
mod payload;
mod refusal;

#[cfg(test)]
mod field_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod round_trip_tests;
#[cfg(test)]
mod samples;

pub use format::{WireError, WIRE_BYTES_MAX, WIRE_VERSION};
pub use outcome::Answer;

use crate::shard::msg::{Call, Outcome};
use prost::Message;

/// The fields every call and answer carries before its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version ([`WIRE_VERSION`]: decoding refuses any other).
    pub version: u8,
    /// A call: the map epoch the caller routed by (at least 1). An answer:
    /// the serving node's epoch (0 when it has no map yet).
    pub epoch: u64,
    /// Chosen by the caller, echoed in the answer; a retry of the same call
    /// carries the same id so the owner stores a send once.
    pub request_id: u128,
}

/// Encodes `call`, routed by map `epoch` (at least 1), as request `request_id`.
pub fn encode_call(epoch: u64, request_id: u128, call: &Call) -> Vec<u8> {
    assert!(epoch >= 1, "a call is routed by a map, whose epoch is at least 1");
    let frame = frames::CallFrame {
        epoch,
        request_id: request_id.to_be_bytes().to_vec(),
        call: Some(call::to_frame(call)),
    };
    with_version(&frame)
}

/// Decodes a call and its header.
pub fn decode_call(bytes: &[u8]) -> Result<(Header, Call), WireError> {
    let frame: frames::CallFrame = framed(bytes)?;
    if frame.epoch == 0 {
        return Err(WireError::ZeroEpoch);
    }
    let header = header(frame.epoch, &frame.request_id)?;
    let call = call::from_frame(field::required("call", frame.call)?)?;
    Ok((header, call))
}

/// Encodes `answer` to request `request_id`, from a node at map `epoch`.
pub fn encode_answer(epoch: u64, request_id: u128, answer: &Answer) -> Vec<u8> {
    if let Answer::WrongOwner { current_epoch } = answer {
        assert!(*current_epoch >= 1, "a wrong owner answers with its map's epoch");
    }
    let frame = answer_frames::AnswerFrame {
        epoch,
        request_id: request_id.to_be_bytes().to_vec(),
        answer: Some(outcome::to_frame(answer)),
    };
    with_version(&frame)
}

/// Encodes `Answer::Done(outcome)` without taking the outcome.
pub fn encode_outcome(epoch: u64, request_id: u128, outcome: &Outcome) -> Vec<u8> {
    let frame = answer_frames::AnswerFrame {
        epoch,
        request_id: request_id.to_be_bytes().to_vec(),
        answer: Some(outcome::outcome_to_frame(outcome)),
    };
    with_version(&frame)
}

/// Decodes an answer and its header.
pub fn decode_answer(bytes: &[u8]) -> Result<(Header, Answer), WireError> {
    let frame: answer_frames::AnswerFrame = framed(bytes)?;
    let header = header(frame.epoch, &frame.request_id)?;
    let answer = outcome::from_frame(field::required("answer", frame.answer)?)?;
    Ok((header, answer))
}

/// The version byte, then `frame`.
fn with_version(frame: &impl Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + frame.encoded_len());
    bytes.push(WIRE_VERSION);
    frame.encode(&mut bytes).expect("a Vec grows to fit");
    bytes
}

/// Checks the length and the version byte and decodes the frame after it.
fn framed<M: Message + Default>(bytes: &[u8]) -> Result<M, WireError> {
    if bytes.len() > WIRE_BYTES_MAX {
        return Err(WireError::TooLong(bytes.len()));
    }
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    Ok(M::decode(body)?)
}

fn header(epoch: u64, request_id: &[u8]) -> Result<Header, WireError> {
    let request_id = u128::from_be_bytes(field::fixed("request_id", request_id)?);
    Ok(Header { version: WIRE_VERSION, epoch, request_id })
}
