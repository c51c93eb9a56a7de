//! [`Answer`] (and the [`Outcome`] inside it) to and from its frame, one arm
//! per variant in both directions; the refusals are in `refusal`.

use super::answer_frames::{AnswerKind, HashesFound, ResultFrame, Unit};
use super::field::{self, uuid_bytes};
use super::format::WireError;
use super::refusal::{self, result_from, result_to};
use crate::shard::msg::Outcome;
use uuid::Uuid;

/// What a serving node answers to a call.
#[derive(Debug)]
pub enum Answer {
    /// It owns the partition and ran the call: the outcome, exactly as the
    /// ring mesh would have carried it.
    Done(Outcome),
    /// It does not own the partition in its epoch `current_epoch` (the
    /// caller's map is stale, or the partition is moving): the caller waits
    /// for that epoch and retries once.
    WrongOwner {
        /// The serving node's map epoch (at least 1).
        current_epoch: u64,
    },
    /// It owns the partition but cannot serve it now (frozen for a move,
    /// shutting down): the caller answers 503 with `Retry-After`.
    Unavailable,
}

/// The frame of `answer` (copies what it carries).
pub(super) fn to_frame(answer: &Answer) -> AnswerKind {
    match answer {
        Answer::Done(outcome) => outcome_to_frame(outcome),
        Answer::WrongOwner { current_epoch } => AnswerKind::WrongOwner(*current_epoch),
        Answer::Unavailable => AnswerKind::Unavailable(Unit {}),
    }
}

/// The frame of `Answer::Done(outcome)`.
pub(super) fn outcome_to_frame(outcome: &Outcome) -> AnswerKind {
    match outcome {
        Outcome::AccountCreated(result) => {
            AnswerKind::AccountCreated(result_to(result, refusal::create_to))
        }
        Outcome::DeviceLinked(result) => AnswerKind::DeviceLinked(match result {
            Ok(device_id) => ResultFrame { value: *device_id, ..refusal::code(0) },
            Err(refused) => refusal::link_to(refused),
        }),
        Outcome::MessageAccepted(result) => {
            AnswerKind::MessageAccepted(result_to(result, refusal::send_to))
        }
        Outcome::FannedOut(result) => AnswerKind::FannedOut(result_to(result, refusal::fanout_to)),
        Outcome::Provisioned(result) => {
            AnswerKind::Provisioned(result_to(result, refusal::provision_to))
        }
        Outcome::HashClaimed(result) => {
            AnswerKind::HashClaimed(result_to(result, refusal::claim_to))
        }
        Outcome::HashReleased(result) => {
            AnswerKind::HashReleased(result_to(result, refusal::claim_to))
        }
        Outcome::HashesFound(holders) => {
            let holders =
                holders.iter().map(|holder| holder.as_ref().map_or(Vec::new(), uuid_bytes));
            AnswerKind::HashesFound(HashesFound { holders: holders.collect() })
        }
        Outcome::Verification(result) => {
            AnswerKind::Verification(result_to(result, refusal::verify_to))
        }
    }
}

/// The answer of a decoded frame, checked.
pub(super) fn from_frame(kind: AnswerKind) -> Result<Answer, WireError> {
    let outcome = match kind {
        AnswerKind::AccountCreated(frame) => {
            Outcome::AccountCreated(result_from(frame, refusal::create_from)?)
        }
        AnswerKind::DeviceLinked(frame) => Outcome::DeviceLinked(device_linked_from(frame)?),
        AnswerKind::MessageAccepted(frame) => {
            Outcome::MessageAccepted(result_from(frame, refusal::send_from)?)
        }
        AnswerKind::FannedOut(frame) => {
            Outcome::FannedOut(result_from(frame, refusal::fanout_from)?)
        }
        AnswerKind::Provisioned(frame) => {
            Outcome::Provisioned(result_from(frame, refusal::provision_from)?)
        }
        AnswerKind::HashClaimed(frame) => {
            Outcome::HashClaimed(result_from(frame, refusal::claim_from)?)
        }
        AnswerKind::HashReleased(frame) => {
            Outcome::HashReleased(result_from(frame, refusal::claim_from)?)
        }
        AnswerKind::HashesFound(frame) => Outcome::HashesFound(holders_from(frame)?),
        AnswerKind::Verification(frame) => {
            Outcome::Verification(result_from(frame, refusal::verify_from)?)
        }
        AnswerKind::WrongOwner(0) => return Err(WireError::ZeroEpoch),
        AnswerKind::WrongOwner(current_epoch) => return Ok(Answer::WrongOwner { current_epoch }),
        AnswerKind::Unavailable(Unit {}) => return Ok(Answer::Unavailable),
    };
    Ok(Answer::Done(outcome))
}

fn device_linked_from(
    frame: ResultFrame,
) -> Result<Result<u32, crate::accounts::LinkRefused>, WireError> {
    match frame.refused {
        0 => Ok(Ok(field::device_id("device_linked", frame.value)?)),
        _ => Ok(Err(refusal::link_from(frame)?)),
    }
}

fn holders_from(frame: HashesFound) -> Result<Vec<Option<Uuid>>, WireError> {
    let holder = |bytes: Vec<u8>| match bytes.is_empty() {
        true => Ok(None),
        false => field::uuid("hashes_found.holder", &bytes).map(Some),
    };
    frame.holders.into_iter().map(holder).collect()
}
