//! Checks of single decoded fields, shared by every conversion: presence,
//! fixed lengths, bounds, device ids. Each returns the typed [`WireError`]
//! naming the field.

use super::format::WireError;
use uuid::Uuid;

/// The highest device id (as `PUT /v1/messages` and Basic auth accept, and
/// `devices_per_account_max` is capped at).
pub(super) const DEVICE_ID_MAX: u32 = 127;

/// `value`, or [`WireError::Missing`] naming `field`.
pub(super) fn required<T>(field: &'static str, value: Option<T>) -> Result<T, WireError> {
    value.ok_or(WireError::Missing(field))
}

/// `bytes` as an array of exactly `N` bytes.
pub(super) fn fixed<const N: usize>(
    field: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::BadLength { field, len: bytes.len(), expected: N })
}

/// A UUID from its 16 bytes.
pub(super) fn uuid(field: &'static str, bytes: &[u8]) -> Result<Uuid, WireError> {
    Ok(Uuid::from_bytes(fixed(field, bytes)?))
}

/// A UUID's 16 bytes.
pub(super) fn uuid_bytes(uuid: &Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

/// Checks `min <= value <= max`.
pub(super) fn in_range(
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), WireError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(WireError::OutOfRange { field, value, min, max })
    }
}

/// Checks that `text` is `min` to `max` bytes long.
pub(super) fn text_len(
    field: &'static str,
    text: &str,
    min: usize,
    max: usize,
) -> Result<(), WireError> {
    in_range(field, text.len() as u64, min as u64, max as u64)
}

/// Checks a device id is 1 to [`DEVICE_ID_MAX`].
pub(super) fn device_id(field: &'static str, id: u32) -> Result<u32, WireError> {
    in_range(field, id.into(), 1, DEVICE_ID_MAX.into())?;
    Ok(id)
}

/// Checks a list of device ids: each in range, strictly ascending (so at
/// most [`DEVICE_ID_MAX`] of them).
pub(super) fn ascending_device_ids(
    field: &'static str,
    ids: Vec<u32>,
) -> Result<Vec<u32>, WireError> {
    for (index, &id) in ids.iter().enumerate() {
        device_id(field, id)?;
        if index > 0 && ids[index - 1] >= id {
            return Err(WireError::Invalid { field, reason: "device ids not strictly ascending" });
        }
    }
    Ok(ids)
}

/// The code of a domain enum's value in `table`, a list of its values
/// whose code is position + 1. `None` when `value` is not in the table.
pub(super) fn code_of<T: PartialEq>(table: &[T], value: &T) -> Option<u32> {
    let position = table.iter().position(|known| known == value)?;
    Some(position as u32 + 1)
}

/// The value of `code` in `table` (see [`code_of`]), or
/// [`WireError::UnknownValue`].
pub(super) fn of_code<T: Clone>(
    field: &'static str,
    table: &[T],
    code: u32,
) -> Result<T, WireError> {
    let position = (code as usize).checked_sub(1);
    let known = position.and_then(|position| table.get(position));
    known.cloned().ok_or(WireError::UnknownValue { field, value: code.into() })
}
