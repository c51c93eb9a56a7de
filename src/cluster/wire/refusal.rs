//! The refusals outcomes carry, to and from a [`ResultFrame`], and the
//! [`StoreError`] inside their `Storage` variants.
//!
//! Codes (0 is always `Ok`; a code, once given, keeps its meaning):
//! - `CreateRefused`: 1 Exists, 2 Storage.
//! - `LinkRefused`: 1 NotPrimary, 2 InvalidCode, 3 Busy, 4 TooManyDevices, 5 Storage.
//! - `SendRefused`: 1 UnknownAccount, 2 and 3 Unauthorized with the reasons
//!   of [`UNAUTHORIZED_REASONS`], 4 MismatchedDevices, 5 StaleDevices,
//!   6 Storage, 7 Unauthorized with a reason not in the table (arrives as
//!   [`UNAUTHORIZED_OTHER`]: the status is the same 401).
//! - `FanoutRefused`: 1 UnknownAccount, 2 Storage.
//! - `ProvisionRefused`: 1 NoSuchAddress.
//! - `ClaimRefused`: 1 Taken, 2 Busy, 3 Storage.
//! - `VerifyRefused`: 1 NoSuchSession, 2 Challenge(Wrong),
//!   3 Challenge(Expired), 4 NotVerified, 5 Full.
//! - `StoreError` kinds: 1 WriteFailed (and Rocks, which cannot be rebuilt
//!   here), 2 ShardCountMismatch, 3 Corrupt, 4 DataDir, 5 WriterBusy.

use super::answer_frames::{ResultFrame, StoreErrorFrame};
use super::field;
use super::format::WireError;
use crate::accounts::{CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused};
use crate::directory::ClaimRefused;
use crate::push::challenge::ChallengeRefused;
use crate::push::verification::VerifyRefused;
use crate::store::StoreError;

/// The reasons of `SendRefused::Unauthorized` the owner gives, by code - 2.
pub(super) const UNAUTHORIZED_REASONS: [&str; 2] =
    ["authentication required", "unidentified access key does not match"];

/// The reason an unknown `Unauthorized` reason arrives as.
pub(super) const UNAUTHORIZED_OTHER: &str = "unauthorized";

/// A frame with only a refusal code.
pub(super) fn code(refused: u32) -> ResultFrame {
    ResultFrame { refused, ..ResultFrame::default() }
}

/// The frame of a `Result<(), E>`, writing a refusal with `refusal`.
pub(super) fn result_to<E>(result: &Result<(), E>, refusal: fn(&E) -> ResultFrame) -> ResultFrame {
    result.as_ref().err().map_or_else(|| code(0), refusal)
}

/// The `Result<(), E>` of a frame, reading a refusal with `refusal`.
pub(super) fn result_from<E>(
    frame: ResultFrame,
    refusal: fn(ResultFrame) -> Result<E, WireError>,
) -> Result<Result<(), E>, WireError> {
    match frame.refused {
        0 => Ok(Ok(())),
        _ => refusal(frame).map(Err),
    }
}

fn storage(refused: u32, error: &StoreError) -> ResultFrame {
    ResultFrame { refused, storage: Some(store_error_to(error)), ..ResultFrame::default() }
}

fn unknown(field: &'static str, frame: &ResultFrame) -> WireError {
    WireError::UnknownValue { field, value: frame.refused.into() }
}

pub(super) fn create_to(refused: &CreateRefused) -> ResultFrame {
    match refused {
        CreateRefused::Exists => code(1),
        CreateRefused::Storage(error) => storage(2, error),
    }
}

pub(super) fn create_from(frame: ResultFrame) -> Result<CreateRefused, WireError> {
    match frame.refused {
        1 => Ok(CreateRefused::Exists),
        2 => Ok(CreateRefused::Storage(store_error_from(frame.storage)?)),
        _ => Err(unknown("create_refused", &frame)),
    }
}

pub(super) fn link_to(refused: &LinkRefused) -> ResultFrame {
    match refused {
        LinkRefused::NotPrimary => code(1),
        LinkRefused::InvalidCode => code(2),
        LinkRefused::Busy => code(3),
        LinkRefused::TooManyDevices => code(4),
        LinkRefused::Storage(error) => storage(5, error),
    }
}

pub(super) fn link_from(frame: ResultFrame) -> Result<LinkRefused, WireError> {
    match frame.refused {
        1 => Ok(LinkRefused::NotPrimary),
        2 => Ok(LinkRefused::InvalidCode),
        3 => Ok(LinkRefused::Busy),
        4 => Ok(LinkRefused::TooManyDevices),
        5 => Ok(LinkRefused::Storage(store_error_from(frame.storage)?)),
        _ => Err(unknown("link_refused", &frame)),
    }
}

pub(super) fn send_to(refused: &SendRefused) -> ResultFrame {
    match refused {
        SendRefused::UnknownAccount => code(1),
        SendRefused::Unauthorized(reason) => match field::code_of(&UNAUTHORIZED_REASONS, reason) {
            Some(table_code) => code(table_code + 1),
            None => code(7),
        },
        SendRefused::MismatchedDevices { missing, extra } => {
            ResultFrame { missing: missing.clone(), extra: extra.clone(), ..code(4) }
        }
        SendRefused::StaleDevices { stale } => ResultFrame { stale: stale.clone(), ..code(5) },
        SendRefused::Storage(error) => storage(6, error),
    }
}

pub(super) fn send_from(frame: ResultFrame) -> Result<SendRefused, WireError> {
    match frame.refused {
        1 => Ok(SendRefused::UnknownAccount),
        2 | 3 => Ok(SendRefused::Unauthorized(UNAUTHORIZED_REASONS[frame.refused as usize - 2])),
        4 => Ok(SendRefused::MismatchedDevices {
            missing: field::ascending_device_ids("mismatched.missing", frame.missing)?,
            extra: field::ascending_device_ids("mismatched.extra", frame.extra)?,
        }),
        5 => Ok(SendRefused::StaleDevices {
            stale: field::ascending_device_ids("stale.stale", frame.stale)?,
        }),
        6 => Ok(SendRefused::Storage(store_error_from(frame.storage)?)),
        7 => Ok(SendRefused::Unauthorized(UNAUTHORIZED_OTHER)),
        _ => Err(unknown("send_refused", &frame)),
    }
}

pub(super) fn fanout_to(refused: &FanoutRefused) -> ResultFrame {
    match refused {
        FanoutRefused::UnknownAccount => code(1),
        FanoutRefused::Storage(error) => storage(2, error),
    }
}

pub(super) fn fanout_from(frame: ResultFrame) -> Result<FanoutRefused, WireError> {
    match frame.refused {
        1 => Ok(FanoutRefused::UnknownAccount),
        2 => Ok(FanoutRefused::Storage(store_error_from(frame.storage)?)),
        _ => Err(unknown("fanout_refused", &frame)),
    }
}

pub(super) fn provision_to(refused: &ProvisionRefused) -> ResultFrame {
    match refused {
        ProvisionRefused::NoSuchAddress => code(1),
    }
}

pub(super) fn provision_from(frame: ResultFrame) -> Result<ProvisionRefused, WireError> {
    match frame.refused {
        1 => Ok(ProvisionRefused::NoSuchAddress),
        _ => Err(unknown("provision_refused", &frame)),
    }
}

pub(super) fn claim_to(refused: &ClaimRefused) -> ResultFrame {
    match refused {
        ClaimRefused::Taken => code(1),
        ClaimRefused::Busy => code(2),
        ClaimRefused::Storage(error) => storage(3, error),
    }
}

pub(super) fn claim_from(frame: ResultFrame) -> Result<ClaimRefused, WireError> {
    match frame.refused {
        1 => Ok(ClaimRefused::Taken),
        2 => Ok(ClaimRefused::Busy),
        3 => Ok(ClaimRefused::Storage(store_error_from(frame.storage)?)),
        _ => Err(unknown("claim_refused", &frame)),
    }
}

pub(super) fn verify_to(refused: &VerifyRefused) -> ResultFrame {
    match refused {
        VerifyRefused::NoSuchSession => code(1),
        VerifyRefused::Challenge(ChallengeRefused::Wrong) => code(2),
        VerifyRefused::Challenge(ChallengeRefused::Expired) => code(3),
        VerifyRefused::NotVerified => code(4),
        VerifyRefused::Full => code(5),
    }
}

pub(super) fn verify_from(frame: ResultFrame) -> Result<VerifyRefused, WireError> {
    match frame.refused {
        1 => Ok(VerifyRefused::NoSuchSession),
        2 => Ok(VerifyRefused::Challenge(ChallengeRefused::Wrong)),
        3 => Ok(VerifyRefused::Challenge(ChallengeRefused::Expired)),
        4 => Ok(VerifyRefused::NotVerified),
        5 => Ok(VerifyRefused::Full),
        _ => Err(unknown("verify_refused", &frame)),
    }
}

fn store_error_to(error: &StoreError) -> StoreErrorFrame {
    let frame = |kind, text: String, place: &str| StoreErrorFrame {
        kind,
        text,
        place: place.to_owned(),
        ..StoreErrorFrame::default()
    };
    match error {
        StoreError::WriteFailed(reason) => frame(1, reason.clone(), ""),
        StoreError::Rocks(error) => frame(1, error.to_string(), ""),
        StoreError::ShardCountMismatch { dir, stored, wanted } => {
            StoreErrorFrame { stored: *stored, wanted: *wanted, ..frame(2, String::new(), dir) }
        }
        StoreError::Corrupt { family, reason } => frame(3, reason.clone(), family),
        StoreError::DataDir { dir, source } => frame(4, source.to_string(), dir),
        StoreError::WriterBusy => frame(5, String::new(), ""),
    }
}

fn store_error_from(frame: Option<StoreErrorFrame>) -> Result<StoreError, WireError> {
    let frame = field::required("storage", frame)?;
    Ok(match frame.kind {
        1 => StoreError::WriteFailed(frame.text),
        2 => StoreError::ShardCountMismatch {
            dir: frame.place,
            stored: frame.stored,
            wanted: frame.wanted,
        },
        3 => StoreError::Corrupt { family: frame.place, reason: frame.text },
        4 => StoreError::DataDir { dir: frame.place, source: std::io::Error::other(frame.text) },
        5 => StoreError::WriterBusy,
        kind => return Err(WireError::UnknownValue { field: "storage.kind", value: kind.into() }),
    })
}
